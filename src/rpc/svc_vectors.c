/*
 * svc_vectors.c — lakehouse.v1.Vectors: Search through the functions every door shares
 * (lh_search_index, lh_search_run in src/agent/search.c), with the call's deadline as the
 * time its filter may take when that is shorter than [engine] query_timeout_ms.
 */
#include "rpc/rpc_int.h"

#include "agent/profiles.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/vectors.pb-c.h"

static char *
dup_of(const json_t *o, const char *key)
{
    return lh_grpc__str(json_string_value(json_object_get(o, key)));
}

static Lakehouse__V1__SearchResponse *
response_of(const json_t *r)
{
    Lakehouse__V1__SearchResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__search_response__init(res);
    res->index = dup_of(r, "index");
    res->generation = json_integer_value(json_object_get(r, "generation"));
    res->mode = dup_of(r, "mode");
    res->model = dup_of(r, "model");
    res->metric = dup_of(r, "metric");
    res->method = dup_of(r, "method");
    res->took_us = json_integer_value(json_object_get(r, "took_us"));
    res->profile = dup_of(r, "profile");
    res->requested = dup_of(r, "requested");
    const json_t *f = json_object_get(r, "filter");
    res->filter_matched_documents = json_integer_value(json_object_get(f, "matched_documents"));
    res->filter_cached = json_is_true(json_object_get(f, "cached"));
    const json_t *hits = json_object_get(r, "hits");
    res->n_hits = json_array_size(hits);
    res->hits = res->n_hits ? lh_malloc(res->n_hits * sizeof *res->hits) : NULL;
    for (size_t i = 0; i < res->n_hits; i++) {
        const json_t *h = json_array_get(hits, i);
        Lakehouse__V1__Hit *x = lh_malloc(sizeof *x);
        lakehouse__v1__hit__init(x);
        x->doc_id = dup_of(h, "doc_id");
        x->chunk_id = json_integer_value(json_object_get(h, "chunk_id"));
        x->score = json_number_value(json_object_get(h, "score"));
        x->distance = json_number_value(json_object_get(h, "distance"));
        x->chunk_text = dup_of(h, "chunk_text");
        const json_t *cols = json_object_get(h, "columns");
        if (json_is_object(cols))
            x->columns = lh_grpc__struct(cols);
        res->hits[i] = x;
    }
    return res;
}

/* The request's fields into s (as lh_search_run takes them; s borrows req, and hybrid,
 * which must live as long as s). 400 for a mode that is not one. */
static int
decode(const Lakehouse__V1__SearchRequest *req, lh_vsearch *s, lh_vhybrid *hybrid, lh_err *err)
{
    json_t *mode = req->mode[0] ? json_string(req->mode) : NULL;
    int rc = lh_vsearch_options(mode, NULL, s, hybrid, err);
    json_decref(mode);
    if (rc != 0)
        return rc;
    s->query = req->query[0] ? req->query : NULL;
    s->vector = req->n_vector ? req->vector : NULL;
    s->n_vector = req->n_vector;
    s->k = req->k ? req->k : 10; /* lh_search_run's default */
    s->ef = req->ef;
    s->filter = req->filter[0] ? req->filter : NULL;
    s->include = (const char **)req->include;
    s->n_include = req->n_include;
    s->exact = req->exact;
    return 0;
}

/* Whether a search is answered from memory at once (lh_search_is_quick: no included
 * columns, no filter or one the filter cache answers, a quick search otherwise): then it
 * runs on the completion-queue thread. */
static bool
search_quick(const lh_gcall *c, const uint8_t *in, size_t in_len)
{
    Lakehouse__V1__SearchRequest *req = lakehouse__v1__search_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return true; /* refused at once */
    lh_vsearch s = {0};
    lh_vhybrid hybrid;
    lh_err err;
    bool quick =
        decode(req, &s, &hybrid, &err) != 0 ||
        lh_search_is_quick(c->deps->vectors, c->deps->catalog, c->principal, req->index, &s);
    lakehouse__v1__search_request__free_unpacked(req, NULL);
    return quick;
}

static int
search(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    Lakehouse__V1__SearchRequest *req = lakehouse__v1__search_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.SearchRequest");
    char index[LH_NAME_MAX];
    bool via_profile;
    json_t *res = NULL;
    lh_vhybrid hybrid;
    lh_vsearch s = {0};
    int rc = lh_search_index(c->deps->vectors, c->deps->catalog, c->principal, req->index, index,
                             &via_profile, err);
    if (rc == 0)
        rc = decode(req, &s, &hybrid, err);
    if (rc == 0) {
        s.timeout_ms = lh_grpc__time_limit(c, 0); /* lh_search_run caps it by the config */
        rc = lh_search_run(c->deps->vectors, c->deps->catalog, c->principal, c->config, index,
                           req->index, &s, &res, err);
    }
    lakehouse__v1__search_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__SearchResponse *r = response_of(res);
    json_decref(res);
    lh_grpc__pack(&r->base, out, out_len);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

/* ---- index changes: begun by the agent module's functions, run as jobs, watched ---------- */

static json_t *
hnsw_json(const Lakehouse__V1__HnswSettings *h)
{
    json_t *o = json_object();
    if (h == NULL)
        return o;
    if (h->m)
        json_object_set_new(o, "m", json_integer(h->m));
    if (h->ef_construction)
        json_object_set_new(o, "ef_construction", json_integer(h->ef_construction));
    if (h->ef_search)
        json_object_set_new(o, "ef_search", json_integer(h->ef_search));
    if (h->quantization[0])
        json_object_set_new(o, "quantization", json_string(h->quantization));
    return o;
}

/* Queue b as a job of the caller and stream its record while it changes, until it ends. */
static int
watch_build(lh_gcall *c, lh_vbuild *b, lh_gstream *s, lh_err *err)
{
    char id[LH_JOB_ID_MAX];
    int rc = lh_vectors_submit(c->deps->jobs, c->principal->name, b, NULL, id, err);
    return rc ? rc : lh_grpc__watch_job(c, id, s, err);
}

static int
create_index(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__CreateIndexRequest *req =
        lakehouse__v1__create_index_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.CreateIndexRequest");
    json_t *body = json_object();
    const char *strs[][2] = {{"name", req->name},
                             {"dataset", req->dataset},
                             {"id_column", req->id_column},
                             {"text_column", req->text_column},
                             {"vector_column", req->vector_column},
                             {"model", req->model},
                             {"metric", req->metric}};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i][1][0])
            json_object_set_new(body, strs[i][0], json_string(strs[i][1]));
    if (req->hnsw)
        json_object_set_new(body, "hnsw", hnsw_json(req->hnsw));
    if (req->chunk_size || req->chunk_overlap) {
        json_t *chunk = json_object();
        if (req->chunk_size)
            json_object_set_new(chunk, "size", json_integer(req->chunk_size));
        if (req->chunk_overlap)
            json_object_set_new(chunk, "overlap", json_integer(req->chunk_overlap));
        json_object_set_new(body, "chunk", chunk);
    }
    lakehouse__v1__create_index_request__free_unpacked(req, NULL);
    lh_vbuild *b = NULL;
    int rc = lh_index_create_as(c->deps->vectors, c->deps->catalog, c->principal, body, &b, err);
    json_decref(body);
    return rc ? rc : watch_build(c, b, s, err);
}

static int
refresh_index(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__IndexRequest *req = lakehouse__v1__index_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.IndexRequest");
    lh_vbuild *b = NULL;
    int rc =
        lh_index_refresh_as(c->deps->vectors, c->deps->catalog, c->principal, req->name, &b, err);
    lakehouse__v1__index_request__free_unpacked(req, NULL);
    return rc ? rc : watch_build(c, b, s, err);
}

static int
promote_index(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__PromoteIndexRequest *req =
        lakehouse__v1__promote_index_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.PromoteIndexRequest");
    json_t *body = json_object();
    if (req->trial_id[0])
        json_object_set_new(body, "trial_id", json_string(req->trial_id));
    if (req->hnsw)
        json_object_set_new(body, "hnsw", hnsw_json(req->hnsw));
    lh_vbuild *b = NULL;
    int rc = lh_index_promote_as(c->deps->vectors, c->deps->catalog, c->principal, req->name, body,
                                 &b, err);
    json_decref(body);
    lakehouse__v1__promote_index_request__free_unpacked(req, NULL);
    return rc ? rc : watch_build(c, b, s, err);
}

static int
rollback_index(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
               lh_err *err)
{
    Lakehouse__V1__IndexRequest *req = lakehouse__v1__index_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.IndexRequest");
    json_t *result = NULL;
    int rc = lh_index_rollback_as(c->deps->vectors, c->deps->catalog, c->principal, req->name,
                                  &result, err);
    lakehouse__v1__index_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__RollbackIndexResponse res = LAKEHOUSE__V1__ROLLBACK_INDEX_RESPONSE__INIT;
    res.result = lh_grpc__struct(result);
    json_decref(result);
    lh_grpc__pack(&res.base, out, out_len);
    protobuf_c_message_free_unpacked(&res.result->base, NULL);
    return 0;
}

const lh_gmethod lh_grpc__vectors[] = {
    {"/lakehouse.v1.Vectors/Search", LH_ALLOW_ANY, search, NULL, NULL, LH_GOFFLOAD, search_quick},
    {"/lakehouse.v1.Vectors/CreateIndex", LH_ALLOW_WRITE, NULL, create_index, NULL, 0, NULL},
    {"/lakehouse.v1.Vectors/RefreshIndex", LH_ALLOW_WRITE, NULL, refresh_index, NULL, 0, NULL},
    {"/lakehouse.v1.Vectors/PromoteIndex", LH_ALLOW_WRITE, NULL, promote_index, NULL, 0, NULL},
    {"/lakehouse.v1.Vectors/RollbackIndex", LH_ALLOW_WRITE, rollback_index, NULL, NULL, LH_GOFFLOAD,
     NULL},
};
const size_t lh_grpc__n_vectors = sizeof lh_grpc__vectors / sizeof lh_grpc__vectors[0];
