/*
 * visible.c — what a principal may see (invariant 11): the one rule deciding whether a
 * principal sees a dataset (its bucket is one the principal may use, lh_auth_bucket), and
 * the resolver that makes user SQL see exactly that (engine.h, lh_resolver).
 *
 * Every door asks here: the HTTP handlers, MCP resources, tools, workspaces, time travel
 * and the resolver of SQL. A dataset a principal may not see is answered as one that does
 * not exist (404 dataset_not_found at the doors, DuckDB's "Table with name X does not
 * exist" in SQL).
 *
 * The resolver: a dataset name resolves as registered when the principal sees the
 * dataset, else it is absent. lakehouse's own relations ('_' + name) are resolved by the
 * guard registered for them (lh_catalog_set_guard): `_events` by the catalog (rows of the
 * datasets the principal sees), `_audit` and `_hnsw_trials` by the modules that own them,
 * wired by `lakehouse serve`. A relation without a guard is absent to every principal but
 * the one who sees everything (an admin not limited to buckets), which gets no resolver
 * at all: its names resolve as registered and cost nothing more.
 *
 * Thread safety: guards are set at start, before any query, and cleared at close, after
 * the last; `lock` guards the table all the same, and a guard runs outside it.
 */
#include "catalog/catalog_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool
lh_catalog_may_see_bucket(const lh_principal *who, const char *bucket)
{
    lh_err ignored;
    return who != NULL && bucket != NULL && lh_auth_bucket(who, bucket, &ignored) == 0;
}

bool
lh_catalog_bucket_access(void *principal, const char *bucket)
{
    return lh_catalog_may_see_bucket(principal, bucket);
}

bool
lh_catalog_may_see_manifest(const lh_principal *who, const json_t *manifest)
{
    return lh_catalog_may_see_bucket(who, json_string_value(json_object_get(manifest, "bucket")));
}

bool
lh_catalog_sees_all(const lh_principal *who)
{
    return who != NULL && (who->roles & LH_ROLE_ADMIN) != 0 && !who->limit_buckets;
}

bool
lh_catalog_masks(const lh_principal *who)
{
    return who != NULL && who->clearance > 0 && who->clearance < LH_LEVEL_PII;
}

/* The bucket of dataset name into bucket (of its size); false when the catalog does not
 * know it (with_manifest: or knows it without a manifest). */
static bool
bucket_of(lh_catalog *c, const char *name, bool with_manifest, char *bucket, size_t size)
{
    pthread_mutex_lock(&c->lock);
    const dataset *ds = lh_catalog__find_locked(c, name);
    bool found = ds && (!with_manifest || ds->manifest);
    if (found)
        snprintf(bucket, size, "%s", ds->bucket);
    pthread_mutex_unlock(&c->lock);
    return found;
}

bool
lh_catalog_may_see(lh_catalog *c, const lh_principal *who, const char *name)
{
    char bucket[sizeof((dataset *)0)->bucket];
    return lh_catalog_sees_all(who) || (bucket_of(c, name, false, bucket, sizeof bucket) &&
                                        lh_catalog_may_see_bucket(who, bucket));
}

bool
lh_catalog_hides(lh_catalog *c, const lh_principal *who, const char *name)
{
    char bucket[sizeof((dataset *)0)->bucket];
    return !lh_catalog_sees_all(who) && bucket_of(c, name, true, bucket, sizeof bucket) &&
           !lh_catalog_may_see_bucket(who, bucket);
}

int
lh_catalog_not_found(lh_err *err, const char *name)
{
    return lh_catalog__not_found(err, name);
}

int
lh_catalog_get_visible(lh_catalog *c, const lh_principal *who, const char *name, json_t **out,
                       lh_err *err)
{
    json_t *m = NULL;
    int rc = lh_catalog_get(c, name, &m, err);
    if (rc != 0)
        return rc;
    if (!lh_catalog_may_see_manifest(who, m)) {
        json_decref(m);
        return lh_catalog__not_found(err, name);
    }
    *out = m;
    return 0;
}

json_t *
lh_catalog_list_visible(lh_catalog *c, const lh_principal *who, const lh_catalog_filter *f)
{
    json_t *all = lh_catalog_list(c, f), *kept = json_array();
    size_t i;
    json_t *x;
    json_array_foreach(all, i, x)
    {
        if (lh_catalog_may_see_manifest(who, x))
            json_array_append(kept, x);
    }
    json_decref(all);
    return kept;
}

int
lh_catalog_versions_visible(lh_catalog *c, const lh_principal *who, const char *name, int64_t from,
                            int64_t limit, json_t **out, lh_err *err)
{
    *out = NULL;
    if (from < 1 || limit < 1 || limit > 1000)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "versions are read from version 1 or later, 1 to 1000 at a time");
    json_t *m = NULL;
    int rc = lh_catalog_get_visible(c, who, name, &m, err);
    if (rc != 0)
        return rc;
    int64_t latest = json_integer_value(json_object_get(m, "version"));
    json_decref(m);
    json_t *versions = NULL;
    if ((rc = lh_catalog_versions(c, name, from, limit, &versions, err)) != 0)
        return rc;
    size_t got = json_array_size(versions);
    json_t *last = json_array_get(versions, got ? got - 1 : 0);
    int64_t next =
        got == (size_t)limit ? json_integer_value(json_object_get(last, "version")) + 1 : 0;
    *out = json_pack("{s:s, s:o}", "dataset", name, "versions", versions);
    json_object_set_new(*out, "next_from",
                        next && next <= latest ? json_integer(next) : json_null());
    return 0;
}

/* A timestamp parameter: ISO 8601, at least the date. */
static bool
looks_like_time(const char *s)
{
    int y, m, d;
    return s && sscanf(s, "%4d-%2d-%2d", &y, &m, &d) == 3 && m >= 1 && m <= 12 && d >= 1 && d <= 31;
}

int
lh_catalog_events_visible(lh_catalog *c, const lh_principal *who, lh_events_filter *f, json_t **out,
                          lh_err *err)
{
    *out = NULL;
    if (f->limit < 1 || f->limit > 10000)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'limit' must be an integer from 1 to 10000");
    if ((f->since && !looks_like_time(f->since)) || (f->until && !looks_like_time(f->until)))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'since' and 'until' must be ISO 8601 times (2026-03-01 or "
                          "2026-03-01T09:00:00Z)");
    if (f->dataset) {
        json_t *m = NULL;
        int rc = lh_catalog_get_visible(c, who, f->dataset, &m, err);
        json_decref(m);
        if (rc != 0)
            return rc;
    } else if (who->limit_buckets) {
        return lh_err_set(err, LH_EPERM, 403, "forbidden",
                          "your token is limited to some buckets: give dataset=");
    }
    int64_t limit = f->limit;
    lh_events_filter one_more = *f;
    one_more.limit = limit + 1; /* one more tells whether there is a next page */
    json_t *rows = NULL;
    int rc = lh_catalog_events(c, &one_more, &rows, err);
    if (rc != 0)
        return rc;
    lh_catalog_mask_events(c, who->clearance, rows);
    json_t *next = json_null();
    if ((int64_t)json_array_size(rows) > limit) {
        json_array_remove(rows, (size_t)limit);
        char cursor[32];
        snprintf(cursor, sizeof cursor, "o%lld", (long long)(f->offset + limit));
        next = json_string(cursor);
    }
    *out = json_pack("{s:o, s:o}", "events", rows, "next_cursor", next);
    return 0;
}

int
lh_catalog_history_visible(lh_catalog *c, const lh_principal *who, const char *name,
                           const char *key_text, json_t **out, lh_err *err)
{
    *out = NULL;
    json_t *m = NULL;
    int rc = lh_catalog_get_visible(c, who, name, &m, err);
    json_decref(m);
    if (rc == 0)
        rc = lh_catalog_record_history(c, name, key_text, out, err);
    if (rc == 0)
        rc = lh_catalog_mask_history(c, name, who->clearance, *out, err);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

int
lh_catalog_changes_visible(lh_catalog *c, const lh_principal *who, const char *name, int64_t from,
                           int64_t to, int64_t limit, json_t **out, lh_err *err)
{
    *out = NULL;
    json_t *m = NULL;
    int rc = lh_catalog_get_visible(c, who, name, &m, err);
    int64_t latest = json_integer_value(json_object_get(m, "version"));
    json_decref(m);
    if (rc != 0)
        return rc;
    if (to == 0)
        to = latest;
    if (from < 0 || from > latest)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'from_version' must be an integer from 0 to %lld", (long long)latest);
    if (to < 1 || to > latest)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'to_version' must be an integer from 1 to %lld", (long long)latest);
    if (limit < 1 || limit > 1000000)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'limit' must be an integer from 1 to 1000000");
    rc = lh_catalog_changes(c, name, from, to, limit, out, err);
    if (rc == 0)
        rc = lh_catalog_mask_history(c, name, who->clearance, *out, err);
    if (rc != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return rc;
}

void
lh_catalog_view_datasets_sql(const lh_catalog_view *v, lh_buf *out)
{
    lh_catalog *c = v->catalog;
    size_t before = out->len;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        const dataset *ds = c->items[i];
        if (!lh_catalog_may_see_bucket(v->who, ds->bucket))
            continue;
        lh_buf_puts(out, out->len > before ? ", " : "");
        lh_sql_quote(out, ds->name);
    }
    pthread_mutex_unlock(&c->lock);
    if (out->len == before)
        lh_buf_puts(out, "NULL"); /* x IN (NULL) holds for no row */
}

/* ---- guards of lakehouse's own relations ------------------------------------------------ */

void
lh_catalog_set_guard(lh_catalog *c, const char *relation, lh_catalog_guard_fn fn, void *ctx)
{
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->n_guards && strcmp(c->guards[i].relation, relation) != 0)
        i++;
    if (i == c->n_guards && fn && i < LH_CATALOG_MAX_GUARDS) {
        snprintf(c->guards[i].relation, sizeof c->guards[i].relation, "%s", relation);
        c->n_guards++;
    }
    if (i < c->n_guards) {
        c->guards[i].fn = fn;
        c->guards[i].ctx = ctx;
    }
    pthread_mutex_unlock(&c->lock);
}

/* The fields of the datasets `who` sees that are masked for it, as SQL strings
 * 'dataset.field' (a dataset name holds no '.') separated by commas; empty: none. */
static void
masked_fields_sql(const lh_catalog_view *v, lh_buf *out)
{
    lh_catalog *c = v->catalog;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        const dataset *ds = c->items[i];
        if (ds->manifest == NULL || !lh_catalog_may_see_bucket(v->who, ds->bucket))
            continue;
        json_t *plan = lh_catalog_mask_plan(ds->manifest, v->who->clearance);
        const char *field;
        json_t *how;
        json_object_foreach(plan, field, how)
        {
            char *both = lh_sprintf("%s.%s", ds->name, field);
            lh_buf_puts(out, out->len ? ", " : "");
            lh_sql_quote(out, both);
            free(both);
        }
        json_decref(plan);
    }
    pthread_mutex_unlock(&c->lock);
}

/* `_events`: the events of the datasets the principal sees; the old and new values of a
 * field masked for it are NULL (in SQL a hashed column's values are NULL too: a JSON text
 * is not the column's value, so its hash would match nothing). */
static lh_resolved
events_guard(void *ctx, const lh_catalog_view *v, const char *select, lh_buf *out)
{
    (void)ctx;
    lh_buf masked;
    lh_buf_init(&masked);
    if (lh_catalog_masks(v->who))
        masked_fields_sql(v, &masked);
    if (masked.len > 0)
        lh_buf_printf(out,
                      "SELECT * REPLACE (CASE WHEN concat(dataset, '.', field) IN (%s) THEN NULL "
                      "ELSE old_value END AS old_value, CASE WHEN concat(dataset, '.', field) "
                      "IN (%s) THEN NULL ELSE new_value END AS new_value) ",
                      masked.data, masked.data);
    else
        lh_buf_puts(out, "SELECT * ");
    lh_buf_free(&masked);
    lh_buf_printf(out, "FROM (%s) AS lh_events WHERE dataset IN (", select);
    lh_catalog_view_datasets_sql(v, out);
    lh_buf_puts(out, ")");
    return LH_RESOLVE_REWRITTEN;
}

void
lh_catalog__guards_init(lh_catalog *c)
{
    lh_catalog_set_guard(c, LH_CATALOG_EVENTS_VIEW, events_guard, NULL);
}

static lh_resolved
resolve(void *ctx, const char *name, const char *select, lh_buf *out)
{
    const lh_catalog_view *v = ctx;
    lh_catalog *c = v->catalog;
    if (name[0] != '_') {
        if (!lh_catalog_may_see(c, v->who, name))
            return LH_RESOLVE_ABSENT;
        /* columns above the reader's clearance: NULL, or their keyed hash (columns.c) */
        char *masked = NULL;
        lh_err ignored;
        int rc = lh_catalog_masked_select(c, name, v->who ? v->who->clearance : 0, select, &masked,
                                          &ignored);
        if (rc < 0 || rc > 1)
            return LH_RESOLVE_ABSENT; /* gone since the name was bound: as absent */
        if (rc == 0)
            return LH_RESOLVE_AS_IS;
        lh_buf_puts(out, masked);
        free(masked);
        return LH_RESOLVE_REWRITTEN;
    }
    lh_catalog_guard_fn fn = NULL;
    void *guard_ctx = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n_guards; i++)
        if (strcmp(c->guards[i].relation, name) == 0) {
            fn = c->guards[i].fn;
            guard_ctx = c->guards[i].ctx;
        }
    pthread_mutex_unlock(&c->lock);
    return fn ? fn(guard_ctx, v, select, out) : LH_RESOLVE_ABSENT;
}

const lh_resolver *
lh_catalog_view_init(lh_catalog_view *v, lh_catalog *c, const lh_principal *who)
{
    *v = (lh_catalog_view){.catalog = c, .who = who};
    if (c == NULL || (lh_catalog_sees_all(who) && !lh_catalog_masks(who)))
        return NULL;
    /* everything the answers depend on but the registry: who (profile buckets are per
     * name), its roles and its buckets */
    lh_buf key;
    lh_buf_init(&key);
    lh_buf_printf(&key, "%s/%u/%d/", who ? who->name : "", who ? who->roles : 0u,
                  who ? who->clearance : 0);
    if (who && who->limit_buckets)
        for (size_t i = 0; i < who->n_buckets; i++)
            lh_buf_printf(&key, "%s%s", i ? "," : "", who->buckets[i]);
    else
        lh_buf_puts(&key, "*");
    v->view_key = lh_buf_steal(&key);
    v->resolver = (lh_resolver){.fn = resolve, .ctx = v, .view_key = v->view_key};
    return &v->resolver;
}

void
lh_catalog_view_free(lh_catalog_view *v)
{
    if (v == NULL)
        return;
    free(v->view_key);
    v->view_key = NULL;
}
