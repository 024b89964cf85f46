/*
 * h_vector.c — vector endpoints: POST /embed (texts to vectors, for agents and tools),
 * the index registry (/vectors/indexes...) and search. An index is visible to whoever may
 * see its dataset; builds run as jobs unless "async": false.
 */
#include "http/http_int.h"
#include "vector/vector.h"

#include <math.h>
#include <string.h>

#define EMBED_MAX_TEXTS 1024
#define QUERY_MAX_BYTES (64 * 1024)
#define VECTOR_MAX_DIM 65536
#define INCLUDE_MAX 64

/* The texts of a POST /embed body: an array of 1 to EMBED_MAX_TEXTS strings. */
static int
check_texts(const json_t *texts, lh_err *err)
{
    if (!json_is_array(texts) || json_array_size(texts) == 0 ||
        json_array_size(texts) > EMBED_MAX_TEXTS)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'texts' must be an array of 1 to %d strings", EMBED_MAX_TEXTS);
    size_t i;
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        if (!json_is_string(t))
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "texts[%zu] must be a string", i);
    }
    return 0;
}

/* {model, model_version, dim, cache_hits, vectors} (new) for n vectors of dim floats. */
static json_t *
render_vectors(const lh_embedder *e, const float *v, size_t n, uint32_t dim, size_t hits)
{
    json_t *vectors = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        for (uint32_t d = 0; d < dim; d++)
            json_array_append_new(row, json_real(v[i * dim + d]));
        json_array_append_new(vectors, row);
    }
    return json_pack("{s:s, s:s, s:i, s:I, s:o}", "model", lh_embedder_model(e), "model_version",
                     lh_embedder_version(e), "dim", (int)dim, "cache_hits", (json_int_t)hits,
                     "vectors", vectors);
}

int
lh_h_embed(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *answer = NULL;
    lh_embedder *e = NULL;
    float *v = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {"model", "texts", NULL};
    int rc = lh_json_check_fields(body, fields, "POST /embed takes model and texts", &err);
    if (rc != 0)
        goto out;
    const json_t *model = json_object_get(body, "model"), *texts = json_object_get(body, "texts");
    if (!json_is_string(model)) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'model' must be a string, e.g. \"builtin\"");
        goto out;
    }
    const char *model_name; /* "profile" or "profile:<purpose>": the caller's profile's */
    if ((rc = lh_profile_model(req->principal, json_string_value(model), &model_name, &err)) != 0 ||
        (rc = lh_embedder_open(req->srv->config, model_name, &e, &err)) != 0)
        goto out;
    if ((rc = check_texts(texts, &err)) != 0)
        goto out;
    size_t n = json_array_size(texts), i;
    const char **list = lh_arena_alloc(req->arena, n * sizeof *list);
    size_t *lens = lh_arena_alloc(req->arena, n * sizeof *lens);
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        list[i] = json_string_value(t);
        lens[i] = json_string_length(t);
    }
    uint32_t dim = 0;
    size_t hits = 0;
    if ((rc = lh_embedder_embed(e, list, lens, n, &v, &dim, &hits, &err)) != 0)
        goto out;
    answer = render_vectors(e, v, n, dim, hits);
out:
    free(v);
    lh_embedder_free(e);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, answer);
}

/* ---- builds ---------------------------------------------------------------------------- */

/* Queue a build or a trial (takes it, also on failure) and answer 202 with the job. */
static int
submit(lh_req *req, lh_resp *resp, const char *index, lh_vbuild *b, lh_vtrial *t)
{
    lh_err err;
    char id[LH_JOB_ID_MAX];
    /* made before queueing: the job may be done and index freed as soon as it is queued */
    json_t *wrap = json_pack("{s:s}", "index", index);
    if (lh_vectors_submit(req->srv->jobs, req->principal->name, b, t, id, &err) != 0) {
        json_decref(wrap);
        return lh_resp_error(resp, &err);
    }
    return lh_http__answer_job(req, resp, id, wrap);
}

/* Run b as a job (202) or here (201/200); takes b. */
static int
start_build(lh_req *req, lh_resp *resp, lh_vbuild *b, bool async, int done_status)
{
    lh_err err;
    if (async)
        return submit(req, resp, lh_vbuild_index(b), b, NULL);
    json_t *result = NULL;
    int rc = lh_vbuild_run(b, NULL, &result, &err);
    lh_vbuild_free(b);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, done_status, result);
}

static int
async_of(const json_t *body, bool *async, lh_err *err)
{
    const json_t *a = json_object_get(body, "async");
    if (a && !json_is_boolean(a))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'async' must be true or false");
    *async = a ? json_is_true(a) : true;
    return 0;
}

int
lh_h_vindex_create(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    bool async = true;
    lh_vbuild *b = NULL;
    int rc = async_of(body, &async, &err);
    if (rc == 0)
        rc = lh_index_create_as(req->srv->vectors, req->srv->catalog, req->principal, body, &b,
                                &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return start_build(req, resp, b, async, 201);
}

int
lh_h_vindex_refresh(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, true, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {"async", NULL};
    bool async = true;
    lh_vbuild *b = NULL;
    int rc = lh_json_check_fields(body, fields, "refresh takes only async", &err);
    if (rc == 0)
        rc = async_of(body, &async, &err);
    if (rc == 0)
        rc = lh_index_refresh_as(req->srv->vectors, req->srv->catalog, req->principal,
                                 lh_req_param(req, "name"), &b, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return start_build(req, resp, b, async, 200);
}

/* ---- registry ------------------------------------------------------------------------ */

/* Whether the caller may see dataset's bucket. A dataset that is gone (an index outliving
 * it) hides nothing: the index is still the caller's to see or drop. */
static bool
dataset_ok(lh_req *req, const char *dataset)
{
    return dataset == NULL || !lh_catalog_hides(req->srv->catalog, req->principal, dataset);
}

/* Whether the caller may see index (an unknown index: yes, its evals and trials are
 * history). */
static bool
index_ok(lh_req *req, const char *index)
{
    char dataset[LH_NAME_MAX];
    return !lh_vectors_dataset_of(req->srv->vectors, index, dataset, sizeof dataset) ||
           dataset_ok(req, dataset);
}

/* The index must exist and its dataset be visible to the caller; else 404 (answered). */
static bool
index_visible(lh_req *req, lh_resp *resp, const char *name)
{
    lh_err err;
    if (lh_index_visible(req->srv->vectors, req->srv->catalog, req->principal, name, &err) == 0)
        return true;
    lh_resp_error(resp, &err);
    return false;
}

int
lh_h_vindex_list(lh_req *req, lh_resp *resp)
{
    json_t *visible =
        lh_http__filter(req, lh_vectors_list(req->srv->vectors), "dataset", dataset_ok);
    return lh_resp_json(resp, 200,
                        json_pack("{s:o, s:o, s:o}", "indexes", visible, "embedding_cache",
                                  lh_embed_cache_stats(), "filter_cache",
                                  lh_vectors_filter_cache_stats(req->srv->vectors)));
}

int
lh_h_vindex_get(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!index_visible(req, resp, name))
        return 0;
    lh_err err;
    json_t *out = NULL;
    if (lh_vectors_get(req->srv->vectors, name, &out, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

int
lh_h_vindex_delete(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!index_visible(req, resp, name))
        return 0;
    lh_err err;
    if (lh_vectors_drop(req->srv->vectors, name, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, json_pack("{s:s, s:b}", "index", name, "deleted", 1));
}

/* ---- search -------------------------------------------------------------------------- */

static int
parse_search(lh_req *req, const json_t *body, lh_vsearch *s, lh_err *err)
{
    static const char *const fields[] = {"query",   "vector", "k",    "ef",     "filter",
                                         "include", "exact",  "mode", "hybrid", NULL};
    int rc = lh_json_check_fields(
        body, fields, "search takes query or vector, k, ef, filter, include, exact, mode, hybrid",
        err);
    if (rc != 0)
        return rc;
    lh_vhybrid *hybrid = lh_arena_alloc(req->arena, sizeof *hybrid);
    if ((rc = lh_vsearch_options(json_object_get(body, "mode"), json_object_get(body, "hybrid"), s,
                                 hybrid, err)) != 0)
        return rc;
    const json_t *query = json_object_get(body, "query"), *vector = json_object_get(body, "vector");
    const json_t *k = json_object_get(body, "k"), *ef = json_object_get(body, "ef");
    const json_t *filter = json_object_get(body, "filter"),
                 *include = json_object_get(body, "include");
    const json_t *exact = json_object_get(body, "exact");
    if (query && !json_is_string(query))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'query' must be a non-empty string of at most %d bytes",
                          QUERY_MAX_BYTES);
    if (vector && (!json_is_array(vector) || json_array_size(vector) == 0 ||
                   json_array_size(vector) > VECTOR_MAX_DIM))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'vector' must be an array of 1 to %d numbers", VECTOR_MAX_DIM);
    if (k && (!json_is_integer(k) || json_integer_value(k) <= 0))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'k' must be a positive integer");
    if (ef && (!json_is_integer(ef) || json_integer_value(ef) <= 0))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'ef' must be a positive integer");
    if (filter && !json_is_string(filter))
        return lh_err_set(
            err, LH_EINVAL, 400, "invalid_parameter",
            "'filter' must be a SQL condition as a string, e.g. \"city = 'Chicago'\"");
    if (exact && !json_is_boolean(exact))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'exact' must be true or false");
    if (include && !json_is_array(include))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'include' must be an array of at most %d column names", INCLUDE_MAX);
    s->query = json_string_value(query);
    s->k = k ? (size_t)json_integer_value(k) : 10;
    s->ef = ef ? (size_t)json_integer_value(ef) : 0;
    s->filter = json_string_value(filter);
    s->exact = json_is_true(exact);
    if (vector) {
        size_t n = json_array_size(vector), i;
        float *v = lh_arena_alloc(req->arena, n * sizeof *v);
        json_t *x;
        json_array_foreach(vector, i, x)
        {
            double d = json_number_value(x);
            if (!json_is_number(x) || !isfinite((float)d))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                  "vector[%zu] must be a finite number", i);
            v[i] = (float)d;
        }
        s->vector = v;
        s->n_vector = n;
    }
    if (include) {
        size_t n = json_array_size(include), i;
        const char **names = lh_arena_alloc(req->arena, (n ? n : 1) * sizeof *names);
        json_t *x;
        json_array_foreach(include, i, x)
        {
            if (!json_is_string(x))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                                  "include[%zu] must be a column name", i);
            names[i] = json_string_value(x);
        }
        s->include = names;
        s->n_include = n;
    }
    return 0;
}

/* The fields of a raw vector search (application/octet-stream), from the query string: k,
 * ef, exact, filter, include (comma-separated), mode (a vector searches in mode vector
 * only: the module says so), into *body (new) as a JSON body holds them for parse_search. */
static int
binary_search_fields(lh_req *req, json_t **body, lh_err *err)
{
    static const char *const known[] = {"k", "ef", "exact", "filter", "include", "mode", NULL};
    int rc = lh_req_check_query(req, known, NULL,
                                "a raw vector search takes k, ef, exact, filter, include and mode "
                                "in the query string",
                                err);
    int64_t k = 10, ef = 0;
    if (rc == 0)
        rc = lh_req_query_int(req, "k", 10, 1, INT32_MAX, &k, err);
    if (rc == 0 && lh_req_query(req, "ef"))
        rc = lh_req_query_int(req, "ef", 0, 1, INT32_MAX, &ef, err);
    const char *exact = lh_req_query(req, "exact"), *filter = lh_req_query(req, "filter");
    const char *include = lh_req_query(req, "include"), *mode = lh_req_query(req, "mode");
    if (rc == 0 && exact && strcmp(exact, "true") != 0 && strcmp(exact, "false") != 0)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "'exact' must be true or false");
    if (rc != 0)
        return rc;
    json_t *b = json_object();
    json_object_set_new(b, "k", json_integer(k));
    if (ef)
        json_object_set_new(b, "ef", json_integer(ef));
    if (exact)
        json_object_set_new(b, "exact", json_boolean(strcmp(exact, "true") == 0));
    if (filter)
        json_object_set_new(b, "filter", json_string(filter));
    if (mode)
        json_object_set_new(b, "mode", json_string(mode));
    if (include) {
        json_t *names = json_array();
        for (const char *p = include; *p;) {
            const char *comma = strchr(p, ',');
            size_t n_name = comma ? (size_t)(comma - p) : strlen(p);
            json_array_append_new(names, json_stringn(p, n_name));
            p += n_name + (comma ? 1 : 0);
        }
        json_object_set_new(b, "include", names);
    }
    *body = b;
    return 0;
}

/* A raw query vector (application/octet-stream: little-endian float32, the index's
 * dimension) with the other fields in the query string (binary_search_fields, into *body,
 * new); the vector goes to s. Saves parsing a long list of JSON numbers for clients that
 * hold raw vectors. */
static int
binary_search_body(lh_req *req, lh_vsearch *s, json_t **body, lh_err *err)
{
    json_t *b = NULL;
    int rc = binary_search_fields(req, &b, err);
    if (rc != 0)
        return rc;
    size_t len = req->body.len;
    if (len == 0 || len % 4 != 0 || len / 4 > VECTOR_MAX_DIM) {
        json_decref(b);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "an application/octet-stream body must be 1 to %d little-endian "
                          "float32 values (a multiple of 4 bytes), not %zu bytes",
                          VECTOR_MAX_DIM, len);
    }
    size_t n = len / 4;
    float *v = lh_arena_alloc(req->arena, n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)req->body.data + 4 * i;
        uint32_t bits =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&v[i], &bits, sizeof bits);
        if (!isfinite(v[i])) {
            json_decref(b);
            return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                              "vector[%zu] must be a finite number", i);
        }
    }
    s->vector = v;
    s->n_vector = n;
    *body = b;
    return 0;
}

/* Whether a search may wait: for a query slot (included columns, a filter the filter cache
 * does not answer: SQL), for a remote model embedding its text, or on CPU (an exact search
 * asked for, a wide beam, text and hybrid searches walking postings). lh_search_is_quick
 * decides, as for the gRPC door; this only decodes the request as the handler will (its
 * JSON body is parsed once and kept on the request; a raw vector's floats are left for the
 * handler). Any other search runs on the MHD worker without the thread hand-off. */
bool
lh_h_vindex_search_may_wait(lh_req *req)
{
    if (!lh_req_binary(req) && req->body.len > 256 * 1024)
        return true; /* parsing it would hold the worker's other connections up */
    json_t *body = NULL;
    lh_err err;
    const float *floats;
    size_t n_floats;
    int rc = lh_req_binary(req)
                 ? binary_search_fields(req, &body, &err)
                 : lh_req_json_floats(req, "vector", &body, &floats, &n_floats, &err);
    lh_vsearch s = {0}; /* borrows body */
    if (rc == 0)
        rc = parse_search(req, body, &s, &err);
    bool waits = rc == 0 && !lh_search_is_quick(req->srv->vectors, req->srv->catalog,
                                                req->principal, lh_req_param(req, "name"), &s);
    json_decref(body);
    return waits; /* a request in error: the handler answers 400 at once */
}

int
lh_h_vindex_search(lh_req *req, lh_resp *resp)
{
    /* a name the caller's profile binds (a dataset, a logical name) means its index */
    const char *name = lh_req_param(req, "name");
    char index[LH_NAME_MAX];
    bool via_profile;
    lh_err err;
    if (lh_search_index(req->srv->vectors, req->srv->catalog, req->principal, name, index,
                        &via_profile, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *body = NULL, *out = NULL;
    lh_vsearch s = {0};
    const float *floats = NULL;
    size_t n_floats = 0;
    if ((lh_req_binary(req)
             ? binary_search_body(req, &s, &body, &err)
             : lh_req_json_floats(req, "vector", &body, &floats, &n_floats, &err)) != 0)
        return lh_resp_error(resp, &err);
    int rc = parse_search(req, body, &s, &err);
    if (rc == 0 && floats) { /* the vector, read without jansson (lh_req_json_floats) */
        if (s.query)
            rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                            "give exactly one of 'query' (text) or 'vector' (numbers)");
        s.vector = floats;
        s.n_vector = n_floats;
    }
    if (rc == 0)
        rc = lh_search_run(req->srv->vectors, req->srv->catalog, req->principal, req->config, index,
                           name, &s, &out, &err);
    json_decref(body);
    if (rc != 0 && err.http_status == 429)
        lh_resp_header(resp, "Retry-After", "1");
    if (rc != 0)
        return lh_resp_error(resp, &err);
    if (json_is_true(json_object_get(out, "rescue_used")))
        lh_resp_header(resp, "X-Lakehouse-Rescue-Used", "true");
    return lh_resp_json(resp, 200, out);
}

/* ---- promotion and rollback ------------------------------------------------------------ */

int
lh_h_vindex_promote(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!index_visible(req, resp, name))
        return 0; /* 404 before a 400 for the body */
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    bool async = true;
    lh_vbuild *b = NULL;
    int rc = async_of(body, &async, &err);
    if (rc == 0)
        rc = lh_index_promote_as(req->srv->vectors, req->srv->catalog, req->principal, name, body,
                                 &b, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return start_build(req, resp, b, async, 200);
}

int
lh_h_vindex_rollback(lh_req *req, lh_resp *resp)
{
    const char *name = lh_req_param(req, "name");
    if (!index_visible(req, resp, name))
        return 0;
    lh_err err;
    json_t *body = NULL, *out = NULL;
    if (lh_req_json(req, true, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {NULL};
    int rc = lh_json_check_fields(body, fields, "rollback takes no fields", &err);
    if (rc != 0)
        goto out;
    rc = lh_index_rollback_as(req->srv->vectors, req->srv->catalog, req->principal, name, &out,
                              &err);
out:
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

/* ---- eval sets and trials -------------------------------------------------------------- */

int
lh_h_eval_autogen(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL, *out = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    const char *index = json_string_value(json_object_get(body, "index"));
    if (index && !index_visible(req, resp, index)) {
        json_decref(body);
        return 0;
    }
    int rc =
        lh_vectors_eval_autogen(req->srv->vectors, lh_req_param(req, "name"), body, &out, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 201, out);
}

int
lh_h_evals_list(lh_req *req, lh_resp *resp)
{
    json_t *visible = lh_http__filter(req, lh_vectors_evals(req->srv->vectors), "index", index_ok);
    return lh_resp_json(resp, 200, json_pack("{s:o}", "evals", visible));
}

int
lh_h_eval_get(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *out = NULL;
    const char *name = lh_req_param(req, "name");
    if (lh_vectors_eval_get(req->srv->vectors, name, &out, &err) != 0)
        return lh_resp_error(resp, &err);
    if (!index_ok(req, json_string_value(json_object_get(out, "index")))) {
        json_decref(out);
        lh_err_set(&err, LH_ENOTFOUND, 404, "eval_not_found", "no eval set named '%s'", name);
        return lh_resp_error(resp, &err);
    }
    return lh_resp_json(resp, 200, out);
}

int
lh_h_trial(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    const char *index = json_string_value(json_object_get(body, "index"));
    if (index && !index_visible(req, resp, index)) {
        json_decref(body);
        return 0;
    }
    lh_vtrial *t = NULL;
    int rc = lh_vectors_trial_begin(req->srv->vectors, body, req->principal->name, &t, &err);
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return submit(req, resp, lh_vtrial_index(t), NULL, t);
}

int
lh_h_trials_list(lh_req *req, lh_resp *resp)
{
    const char *index = lh_req_param(req, "index");
    lh_err err;
    json_t *out = NULL;
    if (!index_ok(req, index))
        lh_vectors_index_not_found(&err, index);
    else if (lh_vectors_trials(req->srv->vectors, index, &out, &err) == 0)
        return lh_resp_json(resp, 200, json_pack("{s:s, s:o}", "index", index, "trials", out));
    return lh_resp_error(resp, &err);
}

/* A query argument as a number in [min, max]; absent: *out untouched, false. */
static int
query_number(lh_req *req, const char *name, double min, double max, double *out, bool *given,
             lh_err *err)
{
    const char *s = lh_req_query(req, name);
    *given = s != NULL;
    if (!s)
        return 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || !(v >= min && v <= max))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' must be a number from %g to %g", name, min, max);
    *out = v;
    return 0;
}

int
lh_h_trials_best(lh_req *req, lh_resp *resp)
{
    const char *index = lh_req_param(req, "index");
    lh_err err;
    static const char *const known[] = {"min_recall", "max_p95_us", NULL};
    double min_recall = -1, max_p95 = -1;
    bool has_recall = false, has_p95 = false;
    int rc = lh_req_check_query(req, known, NULL, "best takes min_recall or max_p95_us", &err);
    if (rc == 0)
        rc = query_number(req, "min_recall", 0, 1, &min_recall, &has_recall, &err);
    if (rc == 0)
        rc = query_number(req, "max_p95_us", 0, 1e12, &max_p95, &has_p95, &err);
    if (rc == 0 && has_recall == has_p95)
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "give exactly one of min_recall (e.g. 0.99) or max_p95_us");
    if (rc == 0 && !index_ok(req, index))
        rc = lh_vectors_index_not_found(&err, index);
    json_t *out = NULL;
    if (rc == 0)
        rc = lh_vectors_trial_best(req->srv->vectors, index, has_recall ? min_recall : -1, max_p95,
                                   &out, &err);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, out);
}

int
lh_h_trial_cache(lh_req *req, lh_resp *resp)
{
    return lh_resp_json(resp, 200, lh_vectors_trial_cache_stats(req->srv->vectors));
}
