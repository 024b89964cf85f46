/*
 * ingest_pg.c — PostgreSQL streaming ingest: a table or a SELECT, read from one
 * consistent snapshot, written batch by batch as zstd Parquet, committed as one version.
 *
 * The pipeline has two threads. The caller's thread drives libpq: it opens a
 * REPEATABLE READ READ ONLY transaction, describes the source, and streams the rows in
 * PostgreSQL's binary format (COPY (...) TO STDOUT WITH (FORMAT binary), or FETCH from a
 * server-side cursor with binary results), decoding each value straight into a typed
 * batch (pg_binary.c; lh_writer: a DuckDB temporary table). Every batch_rows rows (or
 * BATCH_BYTES of values) it hands the batch to a converter thread and starts the next;
 * the converter has DuckDB write the batch as zstd Parquet and stores it in the bucket.
 * Memory stays bounded by two batches whatever the table's size, and PostgreSQL keeps
 * sending while DuckDB writes.
 *
 * Types are decided from the source's column types (pg_type), not guessed from values:
 * see pg_map() and the table in docs/API.md. Scalars whose binary form maps onto a DuckDB
 * type arrive as such (no text on either side); the rest travel as PostgreSQL's text for
 * them (arrays as JSON) and DuckDB casts that text. Anything without a faithful Parquet
 * type stays text. Intervals are such a case: Parquet's INTERVAL holds neither negative
 * parts nor microseconds, so an interval is kept as its ISO 8601 text
 * (P1Y2M3DT4H5M6.789S), which every engine parses.
 *
 * Secrets: the password (from the DSN or a secret_ref) is passed to libpq and to nothing
 * else. Every message that came from libpq or the server is scrubbed of it before it
 * reaches an error, and the source is named postgresql://user:***@host:port/db.
 * Every libpq status and SQLSTATE is translated into our errors in pg_fail() only.
 */
#include "ingest/ingest_int.h"

#include <ctype.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a batch is handed over after batch_rows rows or this many bytes of values */
#define BATCH_BYTES (INT64_C(128) << 20)
#define CURSOR_FETCH_ROWS 10000
#define CANCEL_CHECK_ROWS 16384

/* ---- secrets in messages -------------------------------------------------------------- */

static void
wipe(char *s)
{
    for (volatile char *p = s; p && *p; p++)
        *p = '\0';
}

/* A copy of msg with every occurrence of each non-empty secret replaced by "***" (new). */
static char *
scrubbed(const char *msg, const char *const *secrets, size_t n_secrets)
{
    char *text = lh_strdup(msg ? msg : "");
    for (size_t i = 0; i < n_secrets; i++) {
        const char *s = secrets[i];
        size_t n = s ? strlen(s) : 0;
        if (n == 0)
            continue;
        lh_buf out;
        lh_buf_init(&out);
        const char *p = text, *hit;
        while ((hit = strstr(p, s)) != NULL) {
            lh_buf_append(&out, p, (size_t)(hit - p));
            lh_buf_puts(&out, "***");
            p = hit + n;
        }
        lh_buf_puts(&out, p);
        free(text);
        text = lh_buf_steal(&out);
    }
    /* libpq ends its messages with a newline; our details are one line */
    size_t len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    return text;
}

/* What in a DSN that libpq could not parse may be a password, so that its error message
 * (which may quote a piece of the DSN) can be scrubbed: the userinfo password of a URI,
 * a password= value, and the whole text after "password" in case the quoting is broken.
 * Fills up to 3 guesses (new; free each). */
static size_t
password_guesses(const char *dsn, char *out[3])
{
    size_t n = 0;
    const char *scheme = strstr(dsn, "://");
    if (scheme) {
        const char *auth = scheme + 3;
        const char *end = auth + strcspn(auth, "/?#");
        const char *at = NULL;
        for (const char *p = auth; p < end; p++)
            if (*p == '@')
                at = p;
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon && at > colon + 1)
            out[n++] = lh_strndup(colon + 1, (size_t)(at - colon - 1));
    }
    const char *pw = strstr(dsn, "password");
    if (pw) {
        const char *v = pw + 8;
        while (*v == ' ' || *v == '=')
            v++;
        if (*v == '\'')
            v++;
        size_t len = strcspn(v, " '&\t\n");
        if (len > 0)
            out[n++] = lh_strndup(v, len);
        if (v[0] && v[len])
            out[n++] = lh_strdup(v);
    }
    return n;
}

/* ---- the DSN ---------------------------------------------------------------------------- */

/* Keys that would make libpq read files of the lakehouse server (or its service file),
 * and so let a client borrow the server's credentials or probe its disk. */
static const char *const REFUSED_KEYS[] = {"passfile", "service", "sslcert", "sslkey",
                                           "sslrootcert", "sslcrl", "sslcrldir",
                                           "sslpassword", "requirepeer", NULL};

typedef struct pg_dsn {
    const char **keys;
    const char **values;
    size_t n;
    PQconninfoOption *opts; /* owns the parsed strings */
    char *password;         /* the effective password (lh_free_secret) or NULL */
    char *redacted;         /* postgresql://user:***@host:port/db */
} pg_dsn;

static void
dsn_free(pg_dsn *d)
{
    free(d->keys);
    free(d->values);
    if (d->opts) {
        for (PQconninfoOption *o = d->opts; o->keyword; o++)
            if (o->val && strcmp(o->keyword, "password") == 0)
                wipe(o->val);
        PQconninfoFree(d->opts);
    }
    lh_free_secret(d->password);
    free(d->redacted);
    memset(d, 0, sizeof *d);
}

static const char *
opt_value(const PQconninfoOption *opts, const char *key)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

static int
dsn_parse(const char *dsn, const char *secret_password, pg_dsn *d, lh_err *err)
{
    memset(d, 0, sizeof *d);
    char *msg = NULL;
    d->opts = PQconninfoParse(dsn, &msg);
    if (d->opts == NULL) {
        char *guesses[3] = {0};
        size_t n = password_guesses(dsn, guesses);
        char *clean = scrubbed(msg ? msg : "out of memory", (const char *const *)guesses, n);
        for (size_t i = 0; i < n; i++)
            lh_free_secret(guesses[i]);
        if (msg) {
            wipe(msg);
            PQfreemem(msg);
        }
        int rc = lh_err_set(err, LH_EINVAL, 400, "invalid_dsn", "the DSN is not valid");
        lh_err_detail(err, "%s", clean);
        lh_err_hint(err, "use postgresql://user@host:port/dbname or "
                         "'host=... port=... dbname=... user=...'");
        free(clean);
        return rc;
    }
    size_t n_opts = 0;
    for (PQconninfoOption *o = d->opts; o->keyword; o++)
        n_opts++;
    d->keys = lh_calloc(n_opts + 8, sizeof *d->keys);
    d->values = lh_calloc(n_opts + 8, sizeof *d->values);
    for (PQconninfoOption *o = d->opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        for (const char *const *r = REFUSED_KEYS; *r; r++)
            if (strcmp(*r, o->keyword) == 0) {
                int rc = lh_err_set(err, LH_EINVAL, 400, "invalid_dsn",
                                    "the DSN key '%s' is not allowed", o->keyword);
                lh_err_detail(err, "it would make the lakehouse server read its own files");
                lh_err_hint(err, "give the password in the DSN or by secret_ref");
                dsn_free(d);
                return rc;
            }
        if (strcmp(o->keyword, "password") == 0 ||
            strcmp(o->keyword, "client_encoding") == 0 ||
            strcmp(o->keyword, "application_name") == 0)
            continue; /* set below */
        d->keys[d->n] = o->keyword;
        d->values[d->n++] = o->val;
    }
    const char *pw = secret_password ? secret_password : opt_value(d->opts, "password");
    if (pw && *pw) {
        d->password = lh_strdup(pw);
        d->keys[d->n] = "password";
        d->values[d->n++] = d->password;
    }
    /* the server's own ~/.pgpass must not answer for a client's connection */
    d->keys[d->n] = "passfile";
    d->values[d->n++] = "/dev/null";
    d->keys[d->n] = "client_encoding";
    d->values[d->n++] = "UTF8";
    const char *app = opt_value(d->opts, "application_name");
    d->keys[d->n] = "application_name";
    d->values[d->n++] = app ? app : "lakehouse";
    if (!opt_value(d->opts, "connect_timeout")) {
        d->keys[d->n] = "connect_timeout";
        d->values[d->n++] = "10";
    }
    d->keys[d->n] = NULL;
    d->values[d->n] = NULL;

    const char *user = opt_value(d->opts, "user");
    const char *host = opt_value(d->opts, "host");
    if (!host)
        host = opt_value(d->opts, "hostaddr");
    const char *port = opt_value(d->opts, "port");
    const char *db = opt_value(d->opts, "dbname");
    d->redacted = lh_sprintf("postgresql://%s%s%s%s%s%s/%s", user ? user : "",
                             d->password ? ":***" : "", user || d->password ? "@" : "",
                             host ? host : "localhost", port ? ":" : "", port ? port : "",
                             db ? db : (user ? user : ""));
    return 0;
}

int
lh_ingest_db_check_dsn(const char *dsn, lh_err *err)
{
    pg_dsn d;
    int rc = dsn_parse(dsn, NULL, &d, err);
    if (rc == 0)
        dsn_free(&d);
    return rc;
}

/* ---- errors ------------------------------------------------------------------------------- */

typedef struct pg_src {
    PGconn *conn;
    pg_dsn dsn;
    const char *what; /* "the table x" / "the query" for messages */
} pg_src;

/* Translate a failed libpq call (res may be NULL: a connection-level failure) into err.
 * The one place that reads SQLSTATEs and libpq's words. */
static int
pg_fail(pg_src *s, const PGresult *res, const char *doing, lh_err *err)
{
    const char *secrets[1] = {s->dsn.password};
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *raw = res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res)
                                                          : PQerrorMessage(s->conn);
    char *detail = scrubbed(raw, secrets, 1);
    int rc;
    bool lost = PQstatus(s->conn) == CONNECTION_BAD;
    if (state && strcmp(state, "42501") == 0) {
        rc = lh_err_set(err, LH_EPERM, 403, "source_permission_denied",
                        "the PostgreSQL user may not read %s", s->what);
        lh_err_hint(err, "GRANT SELECT to the user in the DSN, or use another user");
    } else if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0)) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "source_table_not_found",
                        "a table or schema in %s does not exist", s->what);
        lh_err_hint(err, "check the name and schema (schema.table)");
    } else if (state && strcmp(state, "25006") == 0) {
        rc = lh_err_set(err, LH_EINVAL, 400, "query_not_select",
                        "the query tries to change data; ingest reads only");
    } else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)) {
        rc = lh_err_set(err, LH_EIO, 502, "source_connection_lost",
                        "the PostgreSQL server dropped the connection while %s", doing);
        lh_err_hint(err, "nothing was committed; try again");
    } else if (state && (strncmp(state, "42", 2) == 0 || strncmp(state, "22", 2) == 0 ||
                         strncmp(state, "0A", 2) == 0 || strncmp(state, "2F", 2) == 0)) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_query", "PostgreSQL refused %s", s->what);
        lh_err_hint(err, "fix the query; the detail has PostgreSQL's words");
    } else if (lost || !state) {
        rc = lh_err_set(err, LH_EIO, 502, "source_connection_lost",
                        "the PostgreSQL server dropped the connection while %s", doing);
        lh_err_hint(err, "nothing was committed; try again");
    } else {
        rc = lh_err_set(err, LH_EIO, 502, "source_error", "PostgreSQL failed while %s", doing);
    }
    lh_err_detail(err, "%s%s%s", state ? state : "", state ? ": " : "", detail);
    free(detail);
    return rc;
}

static int
pg_connect(pg_src *s, lh_err *err)
{
    s->conn = PQconnectdbParams(s->dsn.keys, s->dsn.values, 0);
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    const char *secrets[1] = {s->dsn.password};
    char *detail = scrubbed(s->conn ? PQerrorMessage(s->conn) : "out of memory", secrets, 1);
    int rc;
    if (strstr(detail, "password authentication failed") || strstr(detail, "no password") ||
        strstr(detail, "authentication failed") || strstr(detail, "password is required") ||
        strstr(detail, "pg_hba.conf")) {
        rc = lh_err_set(err, LH_EINVAL, 400, "source_auth_failed",
                        "PostgreSQL refused the sign-in to %s", s->dsn.redacted);
        lh_err_hint(err, "check the user and the password (or the secret_ref)");
    } else if (strstr(detail, "does not exist")) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "source_database_not_found",
                        "%s: the database or role does not exist", s->dsn.redacted);
    } else {
        rc = lh_err_set(err, LH_EIO, 502, "source_unreachable", "could not connect to %s",
                        s->dsn.redacted);
        lh_err_hint(err, "check host and port, and that the server accepts connections");
    }
    lh_err_detail(err, "%s", detail);
    free(detail);
    return rc;
}

/* res if its status is `want`; else pg_fail, clear it and NULL. */
static PGresult *
pg_check(pg_src *s, PGresult *res, ExecStatusType want, const char *doing, lh_err *err)
{
    if (res && PQresultStatus(res) == want)
        return res;
    pg_fail(s, res, doing, err);
    PQclear(res);
    return NULL;
}

/* Run a statement expecting `want`; else pg_fail. Returns the result (PQclear it) or
 * NULL. */
static PGresult *
pg_run(pg_src *s, const char *sql, int n_params, const char *const *params,
       ExecStatusType want, const char *doing, lh_err *err)
{
    PGresult *res = n_params ? PQexecParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0)
                             : PQexec(s->conn, sql);
    return pg_check(s, res, want, doing, err);
}

/* ---- the source and its types ------------------------------------------------------------ */

/* One column: what PostgreSQL selects, how its binary values arrive (and the DuckDB type
 * of the batch table's column that holds them), and the DuckDB expression over that
 * column that gives the dataset's column. */
typedef struct pg_col {
    char *name;      /* the dataset's column name (unique) */
    char *pg_expr;   /* over lh_src.c{i} */
    lh_pg_wire wire;
    int precision, scale; /* LH_PGW_NUMERIC */
    char *wire_type; /* DuckDB type of the batch column c{i} */
    char *duck_expr; /* over c{i} */
} pg_col;

typedef struct pg_type {
    Oid oid;
    char category; /* typcategory */
    char kind;     /* typtype */
    Oid elem;      /* arrays */
    Oid base;      /* domains */
    int base_typmod;
} pg_type;

/* First keyword of a query, skipping blanks, comments and opening parentheses. */
static bool
query_is_select(const char *q)
{
    for (;;) {
        while (isspace((unsigned char)*q) || *q == '(')
            q++;
        if (q[0] == '-' && q[1] == '-') {
            q += strcspn(q, "\n");
            continue;
        }
        if (q[0] == '/' && q[1] == '*') {
            const char *end = strstr(q + 2, "*/");
            if (!end)
                return false;
            q = end + 2;
            continue;
        }
        break;
    }
    static const char *const ok[] = {"select", "with", "values", "table", NULL};
    for (const char *const *w = ok; *w; w++) {
        size_t n = strlen(*w);
        if (strncasecmp(q, *w, n) == 0 && !isalnum((unsigned char)q[n]) && q[n] != '_')
            return true;
    }
    return false;
}

static int
type_lookup(pg_src *s, Oid oid, pg_type *t, lh_err *err)
{
    char oid_text[16];
    snprintf(oid_text, sizeof oid_text, "%u", oid);
    const char *params[1] = {oid_text};
    PGresult *res = pg_run(s,
                           "SELECT typcategory, typtype, typelem, typbasetype, typtypmod "
                           "FROM pg_catalog.pg_type WHERE oid = $1::oid",
                           1, params, PGRES_TUPLES_OK, "reading column types", err);
    if (!res)
        return err->rc;
    memset(t, 0, sizeof *t);
    t->oid = oid;
    if (PQntuples(res) == 1) {
        t->category = PQgetvalue(res, 0, 0)[0];
        t->kind = PQgetvalue(res, 0, 1)[0];
        t->elem = (Oid)strtoul(PQgetvalue(res, 0, 2), NULL, 10);
        t->base = (Oid)strtoul(PQgetvalue(res, 0, 3), NULL, 10);
        t->base_typmod = atoi(PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    return 0;
}

/* Resolve domains to their base type (and its typmod). */
static int
type_resolve(pg_src *s, Oid oid, int *typmod, pg_type *t, lh_err *err)
{
    for (int depth = 0; depth < 8; depth++) {
        if (type_lookup(s, oid, t, err) != 0)
            return err->rc;
        if (t->kind != 'd' || t->base == 0)
            return 0;
        oid = t->base;
        if (t->base_typmod >= 0)
            *typmod = t->base_typmod;
    }
    return 0;
}

/* Scalar types by their fixed OIDs (pg_type.dat): DuckDB's type for it and, when its
 * binary value maps straight onto that type, how it arrives (*wire); else *direct is false
 * and the value travels as PostgreSQL's text for it, cast by DuckDB. NULL: no DuckDB type. */
static const char *
scalar_type(Oid oid, int typmod, char *buf, size_t size, bool *direct, pg_col *c)
{
    *direct = true;
    switch (oid) {
    case 16: c->wire = LH_PGW_BOOL; return "BOOLEAN";
    case 20: c->wire = LH_PGW_INT8; return "BIGINT";
    case 21: c->wire = LH_PGW_INT2; return "SMALLINT";
    case 23: c->wire = LH_PGW_INT4; return "INTEGER";
    case 26: c->wire = LH_PGW_OID; return "BIGINT";
    case 700: c->wire = LH_PGW_FLOAT4; return "FLOAT";
    case 701: c->wire = LH_PGW_FLOAT8; return "DOUBLE";
    case 1700: { /* numeric(p,s): DECIMAL when it fits DuckDB's 38 digits */
        if (typmod < 4)
            return NULL;
        int precision = ((typmod - 4) >> 16) & 0xffff;
        int scale = (((typmod - 4) & 0x7ff) ^ 1024) - 1024;
        if (precision < 1 || precision > 38 || scale < 0 || scale > precision)
            return NULL;
        c->wire = LH_PGW_NUMERIC;
        c->precision = precision;
        c->scale = scale;
        snprintf(buf, size, "DECIMAL(%d,%d)", precision, scale);
        return buf;
    }
    /* "char" (18) is one byte, not always a character: it travels as its text */
    case 18: *direct = false; return "VARCHAR";
    case 19: case 25: case 1042: case 1043: c->wire = LH_PGW_TEXT; return "VARCHAR";
    case 1083: c->wire = LH_PGW_TIME; return "TIME";
    case 1114: c->wire = LH_PGW_TIMESTAMP; return "TIMESTAMP";
    case 1184: c->wire = LH_PGW_TIMESTAMP; return "TIMESTAMPTZ";
    case 2950: c->wire = LH_PGW_UUID; return "UUID";
    case 1082: c->wire = LH_PGW_DATE; return "DATE";
    case 17: c->wire = LH_PGW_BYTEA; return "BLOB";
    case 1266: *direct = false; return "TIMETZ";
    case 114: case 3802: *direct = false; return "JSON";
    default: return NULL;
    }
}

/* How column i (source name `name`, quoted as `q` on the PostgreSQL side) travels. */
static int
pg_map(pg_src *s, int i, const char *q, Oid oid, int typmod, pg_col *c, lh_err *err)
{
    pg_type t;
    if (type_resolve(s, oid, &typmod, &t, err) != 0)
        return err->rc;
    char buf[40], ebuf[40], var[24];
    snprintf(var, sizeof var, "c%d", i);
    bool direct;
    const char *duck = scalar_type(t.oid, typmod, buf, sizeof buf, &direct, c);
    if (t.kind == 'e') /* enums: their labels */
        duck = "VARCHAR", direct = true, c->wire = LH_PGW_TEXT;
    if (duck && direct) {
        c->pg_expr = lh_strdup(q);
        c->wire_type = lh_strdup(duck);
        c->duck_expr = lh_strdup(var);
        return 0;
    }
    /* everything else arrives as text */
    c->wire = LH_PGW_TEXT;
    c->wire_type = lh_strdup("VARCHAR");
    if (duck) { /* JSON, TIMETZ, "char": cast from their text */
        c->pg_expr = lh_sprintf("%s::text", q);
        c->duck_expr = strcmp(duck, "VARCHAR") == 0 ? lh_strdup(var)
                                                    : lh_sprintf("CAST(%s AS %s)", var, duck);
    } else if (t.category == 'A' && t.elem != 0) {
        /* Arrays travel as JSON arrays of the elements' text, which DuckDB casts to a
         * list of the element type; elements without a DuckDB type stay text. */
        int elem_typmod = typmod;
        pg_type e;
        if (type_resolve(s, t.elem, &elem_typmod, &e, err) != 0)
            return err->rc;
        bool elem_direct;
        pg_col unused = {0};
        const char *elem =
            scalar_type(e.oid, elem_typmod, ebuf, sizeof ebuf, &elem_direct, &unused);
        if (e.kind == 'e')
            elem = "VARCHAR", elem_direct = true;
        if (elem && (e.oid == 114 || e.oid == 3802)) {
            c->pg_expr = lh_sprintf("array_to_json(%s)::text", q);
            c->duck_expr = lh_sprintf("CAST(CAST(%s AS JSON) AS JSON[])", var);
        } else if (elem && e.oid == 1082) { /* PostgreSQL writes "0044-03-15 BC" */
            c->pg_expr = lh_sprintf("array_to_json(%s::text[])::text", q);
            c->duck_expr = lh_sprintf(
                "list_transform(CAST(CAST(%s AS JSON) AS VARCHAR[]), x -> CAST(CASE WHEN "
                "ends_with(x, ' BC') THEN replace(x, ' BC', ' (BC)') ELSE x END AS DATE))",
                var);
        } else if (elem && e.oid != 17 && (elem_direct || e.oid == 1266 || e.oid == 18)) {
            c->pg_expr = lh_sprintf("array_to_json(%s::text[])::text", q);
            c->duck_expr = lh_sprintf("CAST(CAST(%s AS JSON) AS %s[])", var, elem);
        } else {
            c->pg_expr = lh_sprintf("%s::text", q);
            c->duck_expr = lh_strdup(var);
        }
    } else { /* anything else: PostgreSQL's text for it */
        c->pg_expr = lh_sprintf("%s::text", q);
        c->duck_expr = lh_strdup(var);
    }
    return 0;
}

static void
cols_free(pg_col *cols, int n)
{
    for (int i = 0; cols && i < n; i++) {
        free(cols[i].name);
        free(cols[i].pg_expr);
        free(cols[i].wire_type);
        free(cols[i].duck_expr);
    }
    free(cols);
}

/* The source as a SELECT: the query as given, or every column of the table. */
static int
source_sql(pg_src *s, const lh_ingest_db_opts *o, char **out, lh_err *err)
{
    if (o->query) {
        if (!query_is_select(o->query))
            return lh_err_set(err, LH_EINVAL, 400, "query_not_select",
                              "'query' must be a SELECT (or WITH ... SELECT, VALUES, TABLE)");
        /* a trailing ';' would end the subquery we wrap it in */
        size_t len = strlen(o->query);
        while (len > 0 && (isspace((unsigned char)o->query[len - 1]) || o->query[len - 1] == ';'))
            len--;
        *out = lh_strndup(o->query, len);
        return 0;
    }
    const char *params[1] = {o->table};
    PGresult *res = pg_run(s,
                           "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) "
                           "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                           "ON n.oid = c.relnamespace WHERE c.oid = pg_catalog.to_regclass($1)",
                           1, params, PGRES_TUPLES_OK, "looking up the table", err);
    if (!res) {
        if (err->http_status == 400)
            lh_err_hint(err, "a table is [schema.]name");
        return err->rc;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        int rc = lh_err_set(err, LH_ENOTFOUND, 404, "source_table_not_found",
                            "no table '%s' in the PostgreSQL database", o->table);
        lh_err_hint(err, "names are case-sensitive when quoted; give schema.table");
        return rc;
    }
    *out = lh_sprintf("SELECT * FROM %s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Describe the source's columns and decide how each travels. */
static int
describe(pg_src *s, const char *src, pg_col **out, int *n_out, lh_err *err)
{
    char *sql = lh_sprintf("SELECT * FROM (%s) AS lh_src", src);
    const char *doing = "reading the source's columns";
    PGresult *res = pg_check(s, PQprepare(s->conn, "", sql, 0, NULL), PGRES_COMMAND_OK, doing, err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    if (!(res = pg_check(s, PQdescribePrepared(s->conn, ""), PGRES_COMMAND_OK, doing, err)))
        return err->rc;
    int n = PQnfields(res);
    if (n == 0) {
        PQclear(res);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_query", "the source has no columns");
    }
    pg_col *cols = lh_calloc((size_t)n, sizeof *cols);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const char *name = PQfname(res, i);
        /* a result may repeat a name (SELECT 1, 1); a dataset may not */
        char *unique = lh_strdup(name);
        for (int k = 2, clash = 1; clash; k++) {
            clash = 0;
            for (int j = 0; j < i; j++)
                if (strcmp(cols[j].name, unique) == 0)
                    clash = 1;
            if (clash) {
                free(unique);
                unique = lh_sprintf("%s_%d", name, k);
            }
        }
        cols[i].name = unique;
        char q[32]; /* the source's columns are renamed c0, c1, ... (see source_alias) */
        snprintf(q, sizeof q, "lh_src.c%d", i);
        rc = pg_map(s, i, q, PQftype(res, i), PQfmod(res, i), &cols[i], err);
    }
    PQclear(res);
    if (rc != 0) {
        cols_free(cols, n);
        return rc;
    }
    *out = cols;
    *n_out = n;
    return 0;
}

/* ---- batches: writers handed to the converter ------------------------------------------ */

typedef struct converter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    lh_writer *pending; /* a batch handed over, not yet taken */
    bool busy;          /* converting a batch */
    bool finished;      /* the reader is done: convert what is pending, then stop */
    int rc;             /* first failure; the reader stops at its next hand-off */
    lh_err err;

    lh_catalog *cat;
    lh_ingest__target *target;
    const char *select_list; /* "c0 AS "a", CAST(c1 AS JSON) AS "b", ..." */
    const char *dir;         /* the work dir, for the Parquet files */
    int batch_no;
    json_t *columns;         /* from the first Parquet file */
    const json_t *append_to; /* the dataset's columns for append, else NULL */
    bool keep_order;         /* the source is a query with ORDER BY */
    int64_t rows_done;
    int64_t convert_us;
} converter;

static int
convert_batch(converter *cv, lh_writer *w, lh_err *err)
{
    char *parquet = lh_sprintf("%s/pg-%s-%d.parquet", cv->dir, cv->target->tag, cv->batch_no++);
    /* zstd level 1: on typical tables 10% faster than DuckDB's default level 3 and no
     * bigger, and conversion is what limits a streamed ingest (bench/pg_ingest). A table
     * has no order, so DuckDB may write row groups in parallel; a query that sorts keeps
     * its order. */
    lh_writer_copy_opts opts = {.row_group_size = 122880, .zstd_level = 1,
                                .preserve_order = cv->keep_order};
    int64_t rows = 0, t0 = lh_mono_us();
    int rc = lh_writer_finish_as(w, cv->select_list, parquet, &opts, &rows, err);
    cv->convert_us += lh_mono_us() - t0;
    if (rc != 0 && err->http_status == 400) {
        /* our SQL over our batch: a failure is a value DuckDB could not take */
        char copy[LH_ERR_TEXT_MAX];
        snprintf(copy, sizeof copy, "%s", err->detail);
        rc = lh_err_set(err, LH_EINVAL, 422, "unconvertible_value",
                        "a source value has no faithful DuckDB form");
        lh_err_detail(err, "%s", copy);
        lh_err_hint(err, "cast the column in a query (e.g. col::text) and ingest the query");
    }
    if (rc == 0 && cv->columns == NULL) {
        rc = lh_catalog_schema_of(cv->cat, parquet, &cv->columns, err);
        if (rc == 0 && cv->append_to)
            rc = lh_ingest__check_schema(cv->append_to, cv->columns, "the source", err);
    }
    if (rc == 0)
        rc = lh_ingest__store(cv->target, parquet, rows, err);
    if (rc == 0)
        cv->rows_done += rows;
    unlink(parquet);
    free(parquet);
    return rc;
}

static void *
converter_main(void *arg)
{
    converter *cv = arg;
    pthread_mutex_lock(&cv->mu);
    for (;;) {
        while (!cv->pending && !cv->finished)
            pthread_cond_wait(&cv->cv, &cv->mu);
        if (!cv->pending)
            break;
        lh_writer *w = cv->pending;
        cv->pending = NULL;
        cv->busy = true;
        bool skip = cv->rc != 0;
        pthread_mutex_unlock(&cv->mu);
        lh_err err;
        int rc = skip ? 0 : convert_batch(cv, w, &err);
        lh_writer_free(w);
        pthread_mutex_lock(&cv->mu);
        cv->busy = false;
        if (rc != 0 && cv->rc == 0) {
            cv->rc = rc;
            cv->err = err;
        }
        pthread_cond_broadcast(&cv->cv);
    }
    pthread_mutex_unlock(&cv->mu);
    return NULL;
}

/* Give the converter a finished batch (takes ownership, also on failure); waits until
 * the converter is free, so that at most two batches are in memory: this one being
 * written and the next being filled. (A queue would not help: the reader is the slower
 * side, see bench/pg_ingest.) Returns the converter's failure, if any. */
static int
converter_hand(converter *cv, lh_writer *w, lh_err *err)
{
    pthread_mutex_lock(&cv->mu);
    while ((cv->pending || cv->busy) && cv->rc == 0)
        pthread_cond_wait(&cv->cv, &cv->mu);
    int rc = cv->rc;
    if (rc == 0) {
        cv->pending = w;
        w = NULL;
        pthread_cond_broadcast(&cv->cv);
    } else {
        *err = cv->err;
    }
    pthread_mutex_unlock(&cv->mu);
    lh_writer_free(w);
    return rc;
}

/* Let the converter finish and join it; its failure, if any. */
static int
converter_finish(converter *cv, pthread_t th, lh_err *err)
{
    pthread_mutex_lock(&cv->mu);
    cv->finished = true;
    pthread_cond_broadcast(&cv->cv);
    pthread_mutex_unlock(&cv->mu);
    pthread_join(th, NULL);
    if (cv->rc != 0)
        *err = cv->err;
    return cv->rc;
}

/* The reader's side: the batch being filled. */
typedef struct batch_writer {
    converter *cv;
    lh_engine *eng;
    const char *columns; /* the batch table: "c0 BIGINT, c1 VARCHAR, ..." */
    const lh_pg_field *fields;
    int n_fields;
    lh_writer *w;
    int64_t rows_in_batch, bytes_in_batch, rows_total, batch_rows;
    int handed; /* batches given to the converter */
    lh_job *job;
} batch_writer;

static int
writer_open(batch_writer *b, lh_err *err)
{
    b->rows_in_batch = 0;
    b->bytes_in_batch = 0;
    return lh_writer_open(b->eng, b->columns, &b->w, err);
}

/* Hand the current batch over (even when empty: the first batch carries the schema of
 * an empty source). */
static int
writer_hand(batch_writer *b, lh_err *err)
{
    lh_writer *w = b->w;
    b->w = NULL;
    b->handed++;
    return converter_hand(b->cv, w, err);
}

static lh_writer *
writer_current(void *ctx)
{
    return ((batch_writer *)ctx)->w;
}

/* A row of `bytes` bytes of values has been set in the current batch. */
static int
writer_row(void *ctx, size_t bytes, lh_err *err)
{
    batch_writer *b = ctx;
    int rc = lh_writer_next_row(b->w, err);
    if (rc != 0)
        return rc;
    b->rows_in_batch++;
    b->rows_total++;
    b->bytes_in_batch += (int64_t)bytes;
    if (b->rows_in_batch >= b->batch_rows || b->bytes_in_batch >= BATCH_BYTES) {
        if ((rc = writer_hand(b, err)) != 0 || (rc = writer_open(b, err)) != 0)
            return rc;
    }
    if (b->job && b->rows_total % CANCEL_CHECK_ROWS == 0) {
        lh_job_progress(b->job, b->rows_total, -1, "rows");
        if (lh_job_cancelled(b->job))
            return LH_ECANCELED;
    }
    return 0;
}

/* ---- streaming --------------------------------------------------------------------------- */

static int
stream_copy(pg_src *s, const char *select, batch_writer *b, lh_err *err)
{
    char *sql = lh_sprintf("COPY (%s) TO STDOUT WITH (FORMAT binary)", select);
    PGresult *res = pg_check(s, PQexec(s->conn, sql), PGRES_COPY_OUT, "starting the copy", err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    lh_pg_copy copy = {.fields = b->fields, .n_fields = b->n_fields, .writer = writer_current,
                       .row_done = writer_row, .ctx = b};
    int rc = 0;
    for (;;) {
        char *msg = NULL;
        int n = PQgetCopyData(s->conn, &msg, 0);
        if (n > 0) {
            rc = lh_ingest__pg_copy_message(&copy, msg, n, err);
            PQfreemem(msg);
            if (rc != 0)
                return rc; /* the caller closes the connection, which ends the copy */
            continue;
        }
        if (n == -2)
            return pg_fail(s, NULL, "streaming rows", err);
        break; /* -1: done; the final status follows */
    }
    res = PQgetResult(s->conn);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, res, "streaming rows", err);
    PQclear(res);
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    return rc;
}

static int
stream_cursor(pg_src *s, const char *select, batch_writer *b, lh_err *err)
{
    char *sql = lh_sprintf("DECLARE lh_cursor NO SCROLL CURSOR FOR %s", select);
    PGresult *res = pg_run(s, sql, 0, NULL, PGRES_COMMAND_OK, "opening the cursor", err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    char fetch[64];
    snprintf(fetch, sizeof fetch, "FETCH FORWARD %d FROM lh_cursor", CURSOR_FETCH_ROWS);
    for (;;) {
        /* binary results: the same values COPY (FORMAT binary) sends */
        res = pg_check(s, PQexecParams(s->conn, fetch, 0, NULL, NULL, NULL, NULL, 1),
                       PGRES_TUPLES_OK, "streaming rows", err);
        if (!res)
            return err->rc;
        int n_rows = PQntuples(res), rc = 0;
        if (PQnfields(res) != b->n_fields)
            rc = lh_err_set(err, LH_EIO, 502, "source_error",
                            "PostgreSQL sent rows of another shape than described");
        for (int r = 0; r < n_rows && rc == 0; r++) {
            size_t bytes = 0;
            for (int c = 0; c < b->n_fields && rc == 0; c++) {
                bool null = PQgetisnull(res, r, c);
                int len = null ? 0 : PQgetlength(res, r, c);
                rc = lh_ingest__pg_put(b->w, (size_t)c, &b->fields[c],
                                       null ? NULL : PQgetvalue(res, r, c), len, err);
                bytes += (size_t)len;
            }
            if (rc == 0)
                rc = writer_row(b, bytes, err);
        }
        PQclear(res);
        if (rc != 0)
            return rc;
        if (n_rows < CURSOR_FETCH_ROWS)
            return 0;
    }
}

/* Whether a query sorts its rows: an ORDER BY anywhere (a subquery's too: erring on the
 * side of keeping the order only costs speed). */
static bool
has_order_by(const char *q)
{
    for (const char *p = q; (p = strcasestr(p, "order")) != NULL; p += 5) {
        const char *r = p + 5;
        while (isspace((unsigned char)*r))
            r++;
        if (strncasecmp(r, "by", 2) == 0 && (p == q || !isalnum((unsigned char)p[-1])))
            return true;
    }
    return false;
}

/* ---- the ingest -------------------------------------------------------------------------- */

/* DuckDB's side of every batch: the batch table's columns (c0 <type>, ...) and the select
 * list that turns them into the dataset's columns. */
static void
duck_select(const pg_col *cols, int n, char **columns, char **select_list)
{
    lh_buf c, sel;
    lh_buf_init(&c);
    lh_buf_init(&sel);
    for (int i = 0; i < n; i++) {
        lh_buf_printf(&c, "%sc%d %s", i ? ", " : "", i, cols[i].wire_type);
        lh_buf_printf(&sel, "%s%s AS ", i ? ", " : "", cols[i].duck_expr);
        lh_sql_ident(&sel, cols[i].name);
    }
    *columns = lh_buf_steal(&c);
    *select_list = lh_buf_steal(&sel);
}

/* The watermark the dataset's last incremental ingest left for this column, or NULL. */
static const char *
old_watermark(const json_t *cur, const char *column)
{
    const json_t *wm = json_object_get(json_object_get(json_object_get(cur, "metadata"),
                                                       "lineage"),
                                       "watermark");
    const char *c = json_string_value(json_object_get(wm, "column"));
    return c && strcmp(c, column) == 0 ? json_string_value(json_object_get(wm, "value")) : NULL;
}

/* Incremental ingest: the filter for rows newer than the last watermark `old` (none:
 * every row) and the newest value of the column in the snapshot (*new_wm, new; NULL when
 * no row qualifies). Both are read in the same snapshot, so the next run starts exactly
 * where this one ended. */
static int
watermark_range(pg_src *s, const pg_col *cols, int n_cols, const char *column,
                const char *from_src, const char *old, char **where, char **new_wm, lh_err *err)
{
    int k = 0;
    while (k < n_cols && strcmp(cols[k].name, column) != 0)
        k++;
    if (k == n_cols)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'since_column' names '%s', which the source does not have", column);
    char *lit = old ? PQescapeLiteral(s->conn, old, strlen(old)) : NULL;
    *where = old ? lh_sprintf(" WHERE lh_src.c%d > %s", k, lit) : lh_strdup("");
    PQfreemem(lit);
    char *sql = lh_sprintf("SELECT max(lh_src.c%d)::text%s%s", k, from_src, *where);
    PGresult *res = pg_run(s, sql, 0, NULL, PGRES_TUPLES_OK, "reading the watermark", err);
    free(sql);
    if (!res)
        return err->rc;
    if (!PQgetisnull(res, 0, 0))
        *new_wm = lh_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Connect and open the snapshot everything is read from; *snapshot_at (new) is its time
 * in UTC. The session's settings make PostgreSQL print values in forms DuckDB reads back
 * exactly. */
static int
pg_open_snapshot(pg_src *s, const lh_ingest_db_opts *o, char **snapshot_at, lh_err *err)
{
    int rc = dsn_parse(o->dsn, o->password, &s->dsn, err);
    if (rc == 0)
        rc = pg_connect(s, err);
    if (rc != 0)
        return rc;
    PGresult *res = pg_run(s,
                           "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; "
                           "SET IntervalStyle = 'iso_8601'; SET bytea_output = 'hex'; "
                           "SET extra_float_digits = 1; "
                           "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                           0, NULL, PGRES_COMMAND_OK, "starting the snapshot", err);
    if (!res)
        return err->rc;
    PQclear(res);
    res = pg_run(s, "SELECT to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", 0, NULL,
                 PGRES_TUPLES_OK, "starting the snapshot", err);
    if (!res)
        return err->rc;
    *snapshot_at = lh_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

typedef struct pipeline_out {
    json_t *columns; /* new */
    int64_t rows, read_us, convert_us;
} pipeline_out;

/* Stream `select` from the source into batches while the converter turns each into a
 * stored Parquet file of the write t. Closes the connection once the snapshot is read. */
static int
pipeline_run(pg_src *s, const char *select, const pg_col *cols, int n_cols,
             lh_ingest__target *t, lh_catalog *cat, lh_engine *eng,
             const lh_ingest_db_opts *o, pipeline_out *out, lh_err *err)
{
    char *columns = NULL, *select_list = NULL;
    duck_select(cols, n_cols, &columns, &select_list);
    lh_pg_field *fields = lh_calloc((size_t)n_cols, sizeof *fields);
    for (int i = 0; i < n_cols; i++)
        fields[i] = (lh_pg_field){.name = cols[i].name, .wire = cols[i].wire,
                                  .precision = cols[i].precision, .scale = cols[i].scale};
    converter cv = {.cat = cat, .target = t, .select_list = select_list,
                    .dir = lh_catalog_work_dir(cat)};
    pthread_mutex_init(&cv.mu, NULL);
    pthread_cond_init(&cv.cv, NULL);
    cv.append_to = o->mode == LH_INGEST_APPEND ? json_object_get(t->cur, "columns") : NULL;
    cv.keep_order = o->query && has_order_by(o->query);
    batch_writer b = {.cv = &cv, .eng = eng, .columns = columns, .fields = fields,
                      .n_fields = n_cols, .job = o->job,
                      .batch_rows = o->batch_rows > 0 ? o->batch_rows : LH_PG_BATCH_ROWS};
    pthread_t th;
    int rc = 0;
    if (pthread_create(&th, NULL, converter_main, &cv) != 0) {
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "overloaded", "could not start a converter");
        goto out;
    }
    int64_t t_read = lh_mono_us();
    if ((rc = writer_open(&b, err)) == 0)
        rc = o->method == LH_PG_CURSOR ? stream_cursor(s, select, &b, err)
                                       : stream_copy(s, select, &b, err);
    if (rc == 0 && (b.rows_in_batch > 0 || b.handed == 0))
        rc = writer_hand(&b, err);
    out->read_us = lh_mono_us() - t_read;
    /* the snapshot is read: let the source go before the last conversion */
    PQfinish(s->conn);
    s->conn = NULL;
    if (rc != 0) { /* failed while reading: nothing pending is converted */
        pthread_mutex_lock(&cv.mu);
        if (cv.rc == 0)
            cv.rc = rc;
        pthread_mutex_unlock(&cv.mu);
    }
    lh_err cerr;
    int crc = converter_finish(&cv, th, &cerr);
    if (rc == 0 && crc != 0) {
        rc = crc;
        *err = cerr;
    }
    if (rc == 0 && o->job && lh_job_cancelled(o->job))
        rc = LH_ECANCELED;
    if (rc == 0) {
        out->columns = cv.columns;
        cv.columns = NULL;
        out->rows = cv.rows_done;
        out->convert_us = cv.convert_us;
    }
out:
    lh_writer_free(b.w);
    json_decref(cv.columns);
    pthread_mutex_destroy(&cv.mu);
    pthread_cond_destroy(&cv.cv);
    free(fields);
    free(columns);
    free(select_list);
    return rc;
}

static json_t *
watermark_json(const char *column, const char *value)
{
    return column && value ? json_pack("{s:s, s:s}", "column", column, "value", value)
                           : json_null();
}

int
lh_ingest_db(lh_catalog *cat, lh_engine *eng, lh_buckets *buckets, const lh_ingest_db_opts *o,
             json_t **result, lh_err *err)
{
    int64_t t_start = lh_mono_us();
    pg_src s = {.what = o->query ? "the query" : "the table"};
    lh_ingest__target t;
    pg_col *cols = NULL;
    int n_cols = 0;
    char *src = NULL, *where = NULL, *select = NULL;
    char *new_wm = NULL, *snapshot_at = NULL, *from_src = NULL;
    json_t *committed = NULL;
    pipeline_out piped = {0};

    int rc = lh_ingest__begin(cat, buckets, o->dataset, o->bucket, o->mode, o->job != NULL,
                              o->allow_bucket, o->allow_ctx, &t, err);
    if (rc != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, 0, -1, "rows");
    if ((rc = pg_open_snapshot(&s, o, &snapshot_at, err)) != 0 ||
        (rc = source_sql(&s, o, &src, err)) != 0 ||
        (rc = describe(&s, src, &cols, &n_cols, err)) != 0)
        goto out;

    /* the source with its columns renamed c0, c1, ...: names may repeat or be odd */
    lh_buf from;
    lh_buf_init(&from);
    lh_buf_printf(&from, " FROM (%s) AS lh_src(", src);
    for (int i = 0; i < n_cols; i++)
        lh_buf_printf(&from, "%sc%d", i ? ", " : "", i);
    lh_buf_puts(&from, ")");
    from_src = lh_buf_steal(&from);

    const char *wm = NULL;
    if (o->since_column) {
        wm = o->mode == LH_INGEST_APPEND ? old_watermark(t.cur, o->since_column) : NULL;
        if ((rc = watermark_range(&s, cols, n_cols, o->since_column, from_src, wm, &where,
                                  &new_wm, err)) != 0)
            goto out;
        if (wm && !new_wm) { /* nothing newer: no new version */
            *result = json_pack("{s:s, s:O, s:i, s:b, s:s, s:s, s:o}", "dataset", o->dataset,
                                "version", json_object_get(t.cur, "version"), "rows", 0,
                                "unchanged", 1, "source", s.dsn.redacted, "snapshot_at",
                                snapshot_at, "watermark", watermark_json(o->since_column, wm));
            goto out;
        }
    }

    lh_buf sel;
    lh_buf_init(&sel);
    lh_buf_puts(&sel, "SELECT ");
    for (int i = 0; i < n_cols; i++)
        lh_buf_printf(&sel, "%s%s", i ? ", " : "", cols[i].pg_expr);
    lh_buf_printf(&sel, "%s%s", from_src, where ? where : "");
    select = lh_buf_steal(&sel);
    if ((rc = pipeline_run(&s, select, cols, n_cols, &t, cat, eng, o, &piped, err)) != 0)
        goto out;

    const char *method = o->method == LH_PG_CURSOR ? "cursor" : "copy";
    json_t *lineage = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "source_system",
                                "postgresql", "source", s.dsn.redacted, "source_object",
                                o->query ? "query" : o->table, "ingest", "db", "method", method,
                                "mode", lh_ingest__mode_name(o->mode), "snapshot_at", snapshot_at);
    json_object_set_new(lineage, o->query ? "query" : "table",
                        json_string(o->query ? o->query : o->table));
    if (o->since_column) /* the new watermark, or the last one kept */
        json_object_set_new(lineage, "watermark",
                            watermark_json(o->since_column, new_wm ? new_wm : wm));
    if ((rc = lh_ingest__commit(&t, piped.columns, o->metadata, lineage, o->actor, &committed,
                                err)) != 0)
        goto out;
    if (o->job)
        lh_job_progress(o->job, piped.rows, piped.rows, "rows");
    *result = json_pack("{s:s, s:O, s:I, s:O, s:O, s:O, s:s, s:s, s:s, s:o, s:{s:I, s:I, s:I}}",
                        "dataset", o->dataset, "version", json_object_get(committed, "version"),
                        "rows", (json_int_t)piped.rows, "total_rows",
                        json_object_get(committed, "row_count"), "columns",
                        json_object_get(committed, "columns"), "files",
                        json_object_get(committed, "files"), "source", s.dsn.redacted,
                        "snapshot_at", snapshot_at, "method", method, "watermark",
                        watermark_json(o->since_column, new_wm), "timings_ms", "read",
                        (json_int_t)(piped.read_us / 1000), "convert",
                        (json_int_t)(piped.convert_us / 1000), "total",
                        (json_int_t)((lh_mono_us() - t_start) / 1000));
out:
    if (s.conn)
        PQfinish(s.conn);
    lh_ingest__end(&t);
    dsn_free(&s.dsn);
    cols_free(cols, n_cols);
    json_decref(committed);
    json_decref(piped.columns);
    free(src);
    free(from_src);
    free(where);
    free(select);
    free(new_wm);
    free(snapshot_at);
    return rc;
}
