/*
 * pg_describe.c — the source of a PostgreSQL ingest as a SELECT, and how each of its
 * columns travels.
 *
 * Types are decided from the source's column types (pg_type), not guessed from values:
 * see pg_map() and the table in docs/API.md. Scalars whose binary form maps onto a DuckDB
 * type arrive as such (no text on either side); the rest travel as PostgreSQL's text for
 * them (arrays as JSON) and DuckDB casts that text. Anything without a faithful Parquet
 * type stays text. Intervals are such a case: Parquet's INTERVAL holds neither negative
 * parts nor microseconds, so an interval is kept as its ISO 8601 text
 * (P1Y2M3DT4H5M6.789S), which every engine parses. Used by one thread at a time.
 */
#include "ingest/pg_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
type_lookup(lh_pg_src *s, Oid oid, pg_type *t, lh_err *err)
{
    char oid_text[16];
    snprintf(oid_text, sizeof oid_text, "%u", oid);
    const char *params[1] = {oid_text};
    PGresult *res =
        lh_ingest__pg_run(s,
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
type_resolve(lh_pg_src *s, Oid oid, int *typmod, pg_type *t, lh_err *err)
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
scalar_type(Oid oid, int typmod, char *buf, size_t size, bool *direct, lh_pg_col *c)
{
    *direct = true;
    switch (oid) {
    case 16:
        c->wire = LH_PGW_BOOL;
        return "BOOLEAN";
    case 20:
        c->wire = LH_PGW_INT8;
        return "BIGINT";
    case 21:
        c->wire = LH_PGW_INT2;
        return "SMALLINT";
    case 23:
        c->wire = LH_PGW_INT4;
        return "INTEGER";
    case 26:
        c->wire = LH_PGW_OID;
        return "BIGINT";
    case 700:
        c->wire = LH_PGW_FLOAT4;
        return "FLOAT";
    case 701:
        c->wire = LH_PGW_FLOAT8;
        return "DOUBLE";
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
    case 18:
        *direct = false;
        return "VARCHAR";
    case 19:
    case 25:
    case 1042:
    case 1043:
        c->wire = LH_PGW_TEXT;
        return "VARCHAR";
    case 1083:
        c->wire = LH_PGW_TIME;
        return "TIME";
    case 1114:
        c->wire = LH_PGW_TIMESTAMP;
        return "TIMESTAMP";
    case 1184:
        c->wire = LH_PGW_TIMESTAMP;
        return "TIMESTAMPTZ";
    case 2950:
        c->wire = LH_PGW_UUID;
        return "UUID";
    case 1082:
        c->wire = LH_PGW_DATE;
        return "DATE";
    case 17:
        c->wire = LH_PGW_BYTEA;
        return "BLOB";
    case 1266:
        *direct = false;
        return "TIMETZ";
    case 114:
    case 3802:
        *direct = false;
        return "JSON";
    default:
        return NULL;
    }
}

/* How column i (source name `name`, quoted as `q` on the PostgreSQL side) travels. */
static int
pg_map(lh_pg_src *s, int i, const char *q, Oid oid, int typmod, lh_pg_col *c, lh_err *err)
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
        c->duck_expr =
            strcmp(duck, "VARCHAR") == 0 ? lh_strdup(var) : lh_sprintf("CAST(%s AS %s)", var, duck);
    } else if (t.category == 'A' && t.elem != 0) {
        /* Arrays travel as JSON arrays of the elements' text, which DuckDB casts to a
         * list of the element type; elements without a DuckDB type stay text. */
        int elem_typmod = typmod;
        pg_type e;
        if (type_resolve(s, t.elem, &elem_typmod, &e, err) != 0)
            return err->rc;
        bool elem_direct;
        lh_pg_col unused = {0};
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

void
lh_ingest__pg_cols_free(lh_pg_col *cols, int n)
{
    for (int i = 0; cols && i < n; i++) {
        free(cols[i].name);
        free(cols[i].pg_expr);
        free(cols[i].wire_type);
        free(cols[i].duck_expr);
    }
    free(cols);
}

int
lh_ingest__pg_source_sql(lh_pg_src *s, const lh_ingest_db_opts *o, char **out, Oid *relid,
                         lh_err *err)
{
    *relid = 0;
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
    PGresult *res =
        lh_ingest__pg_run(s,
                          "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.oid "
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
    *relid = (Oid)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 0;
}

int
lh_ingest__pg_describe(lh_pg_src *s, const char *src, lh_pg_col **out, int *n_out, lh_err *err)
{
    char *sql = lh_sprintf("SELECT * FROM (%s) AS lh_src", src);
    const char *doing = "reading the source's columns";
    PGresult *res =
        lh_ingest__pg_check(s, PQprepare(s->conn, "", sql, 0, NULL), PGRES_COMMAND_OK, doing, err);
    free(sql);
    if (!res)
        return err->rc;
    PQclear(res);
    if (!(res = lh_ingest__pg_check(s, PQdescribePrepared(s->conn, ""), PGRES_COMMAND_OK, doing,
                                    err)))
        return err->rc;
    int n = PQnfields(res);
    if (n == 0) {
        PQclear(res);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_query", "the source has no columns");
    }
    lh_pg_col *cols = lh_calloc((size_t)n, sizeof *cols);
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
        char q[32]; /* the source's columns are renamed c0, c1, ... by ingest_pg.c */
        snprintf(q, sizeof q, "lh_src.c%d", i);
        rc = pg_map(s, i, q, PQftype(res, i), PQfmod(res, i), &cols[i], err);
    }
    PQclear(res);
    if (rc != 0) {
        lh_ingest__pg_cols_free(cols, n);
        return rc;
    }
    *out = cols;
    *n_out = n;
    return 0;
}