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

static int
search(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    Lakehouse__V1__SearchRequest *req = lakehouse__v1__search_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.SearchRequest");
    char index[LH_NAME_MAX];
    bool via_profile;
    json_t *res = NULL, *mode = NULL;
    lh_vhybrid hybrid;
    lh_vsearch s = {0};
    int rc = lh_search_index(c->deps->vectors, c->deps->catalog, c->principal, req->index, index,
                             &via_profile, err);
    if (rc == 0 && req->mode[0])
        mode = json_string(req->mode);
    if (rc == 0)
        rc = lh_vsearch_options(mode, NULL, &s, &hybrid, err);
    if (rc == 0) {
        s.query = req->query[0] ? req->query : NULL;
        s.vector = req->n_vector ? req->vector : NULL;
        s.n_vector = req->n_vector;
        s.k = req->k;
        s.ef = req->ef;
        s.filter = req->filter[0] ? req->filter : NULL;
        s.include = (const char **)req->include;
        s.n_include = req->n_include;
        s.exact = req->exact;
        if (c->deadline_mono_us != INT64_MAX) {
            int64_t left_ms = (c->deadline_mono_us - lh_mono_us()) / 1000;
            s.timeout_ms = left_ms > 0 ? left_ms : 1;
        }
        rc = lh_search_run(c->deps->vectors, c->deps->catalog, c->principal, c->config, index,
                           req->index, &s, &res, err);
    }
    json_decref(mode);
    lakehouse__v1__search_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__SearchResponse *r = response_of(res);
    json_decref(res);
    lh_grpc__pack(&r->base, out, out_len);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return 0;
}

const lh_gmethod lh_grpc__vectors[] = {
    {"/lakehouse.v1.Vectors/Search", LH_ALLOW_ANY, search, NULL},
};
const size_t lh_grpc__n_vectors = sizeof lh_grpc__vectors / sizeof lh_grpc__vectors[0];
