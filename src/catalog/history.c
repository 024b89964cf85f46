/*
 * history.c — time travel: a dataset as it was at a version or at a time. Manifests are
 * immutable and never deleted, so any version can be read back and its files queried.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <string.h>

static const char *
str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* A client's time as our created_at text (UTC, milliseconds, 'Z'), or 400. */
static int
normalise_time(lh_catalog *c, const char *text, char *out, size_t size, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT strftime(CAST(TRY_CAST(");
    lh_sql_quote(&sql, text);
    lh_buf_puts(&sql, " AS TIMESTAMPTZ) AS TIMESTAMP), '%Y-%m-%dT%H:%M:%S.%gZ') AS t");
    json_t *rows = NULL;
    int rc = lh_engine_rows(c->engine, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    const char *t = json_string_value(json_object_get(json_array_get(rows, 0), "t"));
    if (!t) {
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'%s' is not a time: use ISO 8601, e.g. 2026-03-01T09:00:00Z", text);
    } else {
        snprintf(out, size, "%s", t);
    }
    json_decref(rows);
    return rc;
}

int
lh_catalog_manifest_at(lh_catalog *c, const char *name, const lh_as_of *at, json_t **out,
                       lh_err *err)
{
    json_t *cur = NULL;
    int rc = lh_catalog_get(c, name, &cur, err);
    if (rc != 0)
        return rc;
    int64_t latest = json_integer_value(json_object_get(cur, "version"));
    char bucket[80];
    snprintf(bucket, sizeof bucket, "%s", str_of(cur, "bucket"));
    json_decref(cur);
    json_t *m = NULL;
    if (!at->timestamp) {
        if (at->version < 1 || at->version > latest) {
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "version_not_found",
                            "dataset '%s' has versions 1 to %lld, not %lld", name,
                            (long long)latest, (long long)at->version);
            return rc;
        }
        if ((rc = lh_catalog__load_manifest(c, bucket, name, at->version, &m, err)) != 0)
            return rc;
    } else {
        char when[40];
        if ((rc = normalise_time(c, at->timestamp, when, sizeof when, err)) != 0)
            return rc;
        /* newest first: questions are mostly about the recent past */
        for (int64_t v = latest; v >= 1 && m == NULL; v--) {
            json_t *candidate = NULL;
            if ((rc = lh_catalog__load_manifest(c, bucket, name, v, &candidate, err)) != 0)
                return rc;
            if (strcmp(str_of(candidate, "created_at"), when) <= 0)
                m = candidate;
            else
                json_decref(candidate);
        }
        if (m == NULL) {
            rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found",
                            "dataset '%s' did not exist yet at %s", name, when);
            return rc;
        }
    }
    if (strcmp(str_of(m, "state"), "live") != 0) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "dataset_not_found",
                        "dataset '%s' was deleted at version %lld", name,
                        (long long)json_integer_value(json_object_get(m, "version")));
        json_decref(m);
        return rc;
    }
    *out = m;
    return 0;
}
