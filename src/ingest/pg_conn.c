/*
 * pg_conn.c — the PostgreSQL side of an ingest: the DSN (checked without connecting, and
 * refused when a key would make libpq read the server's own files), the connection, the
 * snapshot every row is read from, and the translation of libpq's statuses and SQLSTATEs
 * into our errors (lh_ingest__pg_fail, the only place that reads them).
 *
 * Secrets: the password (from the DSN or a secret_ref) is passed to libpq and to nothing
 * else. Every message that came from libpq or the server is scrubbed of it before it
 * reaches an error, the parsed copy is wiped before it is freed, and the source is named
 * postgresql://user:***@host:port/db. Used by one thread at a time.
 */
#include "ingest/pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static const char *const REFUSED_KEYS[] = {"passfile",    "service", "sslcert",   "sslkey",
                                           "sslrootcert", "sslcrl",  "sslcrldir", "sslpassword",
                                           "requirepeer", NULL};

static void
dsn_free(lh_pg_dsn *d)
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
dsn_parse(const char *dsn, const char *secret_password, lh_pg_dsn *d, lh_err *err)
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
        if (strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "client_encoding") == 0 ||
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
    d->redacted =
        lh_sprintf("postgresql://%s%s%s%s%s%s/%s", user ? user : "", d->password ? ":***" : "",
                   user || d->password ? "@" : "", host ? host : "localhost", port ? ":" : "",
                   port ? port : "", db ? db : (user ? user : ""));
    return 0;
}

int
lh_ingest_db_check_dsn(const char *dsn, lh_err *err)
{
    lh_pg_dsn d;
    int rc = dsn_parse(dsn, NULL, &d, err);
    if (rc == 0)
        dsn_free(&d);
    return rc;
}

void
lh_ingest__pg_close(lh_pg_src *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    dsn_free(&s->dsn);
}

/* ---- errors ------------------------------------------------------------------------------- */

int
lh_ingest__pg_fail(lh_pg_src *s, const PGresult *res, const char *doing, lh_err *err)
{
    const char *secrets[1] = {s->dsn.password};
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *raw =
        res && PQresultErrorMessage(res)[0] ? PQresultErrorMessage(res) : PQerrorMessage(s->conn);
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
pg_connect(lh_pg_src *s, lh_err *err)
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

PGresult *
lh_ingest__pg_check(lh_pg_src *s, PGresult *res, ExecStatusType want, const char *doing,
                    lh_err *err)
{
    if (res && PQresultStatus(res) == want)
        return res;
    lh_ingest__pg_fail(s, res, doing, err);
    PQclear(res);
    return NULL;
}

PGresult *
lh_ingest__pg_run(lh_pg_src *s, const char *sql, int n_params, const char *const *params,
                  ExecStatusType want, const char *doing, lh_err *err)
{
    PGresult *res = n_params ? PQexecParams(s->conn, sql, n_params, NULL, params, NULL, NULL, 0)
                             : PQexec(s->conn, sql);
    return lh_ingest__pg_check(s, res, want, doing, err);
}

/* ---- the snapshot ----------------------------------------------------------------------- */

/* Every connection of an ingest: settings that make PostgreSQL print values in forms
 * DuckDB reads back exactly, then the transaction everything is read in. */
#define SESSION_SQL                                                                                \
    "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; "           \
    "SET bytea_output = 'hex'; SET extra_float_digits = 1; "                                       \
    "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"

int
lh_ingest__pg_open(lh_pg_src *s, const lh_ingest_db_opts *o, char **snapshot_at, lh_err *err)
{
    int rc = dsn_parse(o->dsn, o->password, &s->dsn, err);
    if (rc == 0)
        rc = pg_connect(s, err);
    if (rc != 0)
        return rc;
    PGresult *res =
        lh_ingest__pg_run(s, SESSION_SQL, 0, NULL, PGRES_COMMAND_OK, "starting the snapshot", err);
    if (!res)
        return err->rc;
    PQclear(res);
    res = lh_ingest__pg_run(s, "SELECT to_char(now(), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", 0,
                            NULL, PGRES_TUPLES_OK, "starting the snapshot", err);
    if (!res)
        return err->rc;
    *snapshot_at = lh_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int
lh_ingest__pg_export_snapshot(lh_pg_src *s, char **id, lh_err *err)
{
    PGresult *res = lh_ingest__pg_run(s, "SELECT pg_catalog.pg_export_snapshot()", 0, NULL,
                                      PGRES_TUPLES_OK, "sharing the snapshot", err);
    if (!res)
        return err->rc;
    *id = lh_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int
lh_ingest__pg_join(lh_pg_src *s, const lh_ingest_db_opts *o, const char *id, int n_streams,
                   lh_err *err)
{
    int rc = dsn_parse(o->dsn, o->password, &s->dsn, err);
    if (rc != 0)
        return rc;
    if ((rc = pg_connect(s, err)) != 0) {
        lh_err_hint(err,
                    "the table is read over %d connections ('parallel'); ask for fewer, or "
                    "let the PostgreSQL user open more",
                    n_streams);
        return rc;
    }
    /* SET TRANSACTION SNAPSHOT must come before any query of the transaction */
    char *lit = PQescapeLiteral(s->conn, id, strlen(id));
    if (!lit)
        return lh_ingest__pg_fail(s, NULL, "joining the snapshot", err);
    char *sql = lh_sprintf(SESSION_SQL "; SET TRANSACTION SNAPSHOT %s", lit);
    PQfreemem(lit);
    PGresult *res =
        lh_ingest__pg_run(s, sql, 0, NULL, PGRES_COMMAND_OK, "joining the snapshot", err);
    free(sql);
    if (!res) {
        if (strcmp(err->code, "source_connection_lost") != 0) {
            char detail[LH_ERR_TEXT_MAX];
            snprintf(detail, sizeof detail, "%s", err->detail);
            lh_err_set(err, LH_EIO, 502, "source_error",
                       "another connection could not join the snapshot");
            lh_err_detail(err, "%s", detail);
            lh_err_hint(err, "'parallel': 1 reads the table on one connection");
        }
        return err->rc;
    }
    PQclear(res);
    return 0;
}
