/*
 * search.c — a search as a principal asks it, whichever door it came through (HTTP,
 * gRPC): the index the name means for it (its profile may bind the name), whether it may
 * see that index, the rules of the request (one of text or vector, a finite vector, a
 * filter only for those who may write SQL, at most the profile's max_k hits) and the
 * resolver its filter names datasets through. A door only decodes its own wire format
 * into an lh_vsearch and renders the answer.
 */
#include "agent/profiles.h"

#include <math.h>
#include <string.h>

#define QUERY_MAX_BYTES (64 * 1024)
#define VECTOR_MAX_DIM 65536
#define INCLUDE_MAX 64

int
lh_search_index(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                char out[LH_NAME_MAX], bool *via_profile, lh_err *err)
{
    lh_profile_index(who, name, out, via_profile);
    return lh_index_visible(v, c, who, out, err);
}

static int
check(const lh_principal *who, const lh_vsearch *s, lh_err *err)
{
    if (s->query && (s->query[0] == '\0' || strlen(s->query) > QUERY_MAX_BYTES))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'query' must be a non-empty string of at most %d bytes",
                          QUERY_MAX_BYTES);
    if (s->query && s->vector)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "give exactly one of 'query' (text) or 'vector' (numbers)");
    if (s->vector && (s->n_vector == 0 || s->n_vector > VECTOR_MAX_DIM))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'vector' must be an array of 1 to %d numbers", VECTOR_MAX_DIM);
    for (size_t i = 0; s->vector && i < s->n_vector; i++)
        if (!isfinite(s->vector[i]))
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "vector[%zu] must be a finite number", i);
    /* a filter is free-form SQL: the same rule as POST /query (agents get none) */
    if (s->filter) {
        int rc = lh_auth_may_write_sql(who, err);
        if (rc != 0)
            return rc;
        if (s->filter[0] == '\0')
            return lh_err_set(
                err, LH_EINVAL, 400, "invalid_parameter",
                "'filter' must be a SQL condition as a string, e.g. \"city = 'Chicago'\"");
    }
    if (s->n_include > INCLUDE_MAX)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'include' must be an array of at most %d column names", INCLUDE_MAX);
    int64_t max_k = lh_profile_max_k(who, INT64_MAX);
    if ((int64_t)s->k > max_k) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                   "'k' may be at most %lld for profile '%s'", (long long)max_k,
                   who->profile->name);
        lh_err_hint(err, "the profile's max_k in lakehouse.toml sets the limit");
        return LH_EINVAL;
    }
    return 0;
}

bool
lh_search_is_quick(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *requested,
                   const lh_vsearch *s)
{
    if (s->n_include > 0 || s->mode != LH_VSEARCH_VECTOR)
        return false; /* included columns are a query; text and hybrid walk postings */
    lh_vsearch probe = *s;
    char index[LH_NAME_MAX];
    bool via_profile;
    lh_profile_index(who, requested, index, &via_profile);
    probe.index = index;
    if (!lh_vectors_search_is_quick(v, index, s->query != NULL, s->exact, (int64_t)s->k,
                                    (int64_t)s->ef))
        return false;
    lh_err refused;
    if (s->filter == NULL || lh_auth_may_write_sql(who, &refused) != 0)
        return true; /* no SQL to run, or a 403 at once */
    /* the view lh_search_run gives the search: the same view_key, so the same cache key;
     * building it takes no lock (the principal's name, roles, clearance and buckets). The
     * answer can be out of date by the time the search looks (an entry evicted, or a
     * dataset changed): the search then runs the filter's SQL on the door's thread, once;
     * it never uses a stale entry (lh_fcache_get checks again). */
    lh_catalog_view view;
    probe.resolver = lh_catalog_view_init(&view, c, who);
    bool cached = lh_vectors_filter_is_cached(v, &probe);
    lh_catalog_view_free(&view);
    return cached;
}

int
lh_search_run(lh_vectors *v, lh_catalog *c, const lh_principal *who, const lh_config *cfg,
              const char *index, const char *requested, lh_vsearch *s, json_t **out, lh_err *err)
{
    *out = NULL;
    if (s->k == 0)
        s->k = 10;
    int rc = check(who, s, err);
    if (rc != 0)
        return rc;
    s->index = index;
    s->clearance = who->clearance;
    /* the door may ask for less time (a gRPC deadline), never for more */
    int64_t limit = lh_config_int(cfg, "engine.query_timeout_ms");
    if (s->timeout_ms <= 0 || s->timeout_ms > limit)
        s->timeout_ms = limit;
    s->principal = who->name; /* a filter waits for a query slot as the caller */
    /* a filter names what the caller's SQL may name: the datasets it sees */
    lh_catalog_view view;
    s->resolver = lh_catalog_view_init(&view, c, who);
    rc = lh_vectors_search(v, s, out, err);
    lh_catalog_view_free(&view);
    if (rc != 0)
        return rc;
    if (who->profile)
        json_object_set_new(*out, "profile", json_string(who->profile->name));
    if (requested && strcmp(requested, index) != 0)
        json_object_set_new(*out, "requested", json_string(requested));
    return 0;
}
