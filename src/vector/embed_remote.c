/*
 * embed_remote.c — embedding providers across HTTP (ADR-014), by their documented wire
 * formats:
 *   ollama  POST {url}/api/embed       {"model", "input": [texts]} -> {"embeddings": [[..]]}
 *   openai  POST {url}/v1/embeddings   {"model", "input": [texts]} -> {"data": [{"index",
 *           "embedding": [..]}]}, with "Authorization: Bearer <key>" when a key is set
 *           (any OpenAI-compatible server: llama.cpp, vLLM, LM Studio).
 * Texts go in batches, up to `concurrency` requests at a time; a batch that times out or
 * gets 429/5xx is retried with backoff.
 * Every failure is a 502 naming the provider: unreachable, an HTTP error, or an answer
 * that is not what the format promises (wrong count, ragged or non-numeric vectors, a
 * dimension other than the first batch's). The API key never reaches an error or a log.
 * Thread safety: each request has its own curl handle; batches are handed out by an
 * atomic counter and each writes only its own slot.
 */
#include "vector/vector.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t
collect(char *data, size_t size, size_t n, void *ud)
{
    lh_buf *b = ud;
    if (b->len + size * n > (256u << 20)) /* an answer that big is not embeddings */
        return 0;
    return lh_buf_try_append(b, data, size * n) == 0 ? size * n : 0;
}

static int
fail(lh_err *err, const lh_embed_provider *p, int rc, const char *code, const char *what,
     const char *detail)
{
    lh_err_set(err, rc, 502, code, "embedding provider %s:%s %s", p->kind, p->model, what);
    if (detail && *detail)
        lh_err_detail(err, "%s", detail);
    lh_err_hint(err, "check that the provider runs at %s and serves model '%s'", p->url, p->model);
    return rc;
}

/* One request; *answer (new) on a 200 with a JSON body. retry: worth trying again. */
static int
post(const lh_embed_provider *p, const char *body, json_t **answer, bool *retry, lh_err *err)
{
    *retry = false;
    bool openai = strcmp(p->kind, "openai") == 0;
    char *url = lh_sprintf("%s%s", p->url, openai ? "/v1/embeddings" : "/api/embed");
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    char *auth = NULL;
    if (openai && p->api_key && *p->api_key) {
        auth = lh_sprintf("Authorization: Bearer %s", p->api_key);
        headers = curl_slist_append(headers, auth);
    }
    lh_buf out;
    lh_buf_init(&out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(p->timeout_ms > 0 ? p->timeout_ms : 30000));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = 0;
    if (cc != CURLE_OK) {
        *retry = cc == CURLE_OPERATION_TIMEDOUT;
        rc = fail(err, p, LH_EUNAVAIL, "provider_unreachable", "could not be reached",
                  curl_easy_strerror(cc));
    } else if (status != 200) {
        *retry = status == 429 || status >= 500;
        char detail[200];
        snprintf(detail, sizeof detail, "HTTP %ld: %.150s", status, out.data ? out.data : "");
        rc = fail(err, p, LH_EIO, "provider_error", "answered with an error", detail);
    } else if ((*answer = json_loadb(out.data ? out.data : "", out.len, 0, NULL)) == NULL) {
        rc =
            fail(err, p, LH_EIO, "provider_bad_response", "answered with something not JSON", NULL);
    }
    lh_buf_free(&out);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    free(url);
    return rc;
}

/* The i-th vector of an answer, in the provider's format, or NULL. */
static const json_t *
vector_at(const lh_embed_provider *p, const json_t *answer, size_t i, size_t n)
{
    if (strcmp(p->kind, "openai") != 0) {
        const json_t *e = json_object_get(answer, "embeddings");
        return json_array_size(e) == n ? json_array_get(e, i) : NULL;
    }
    const json_t *data = json_object_get(answer, "data");
    if (json_array_size(data) != n)
        return NULL;
    size_t k;
    json_t *d;
    json_array_foreach(data, k, d) /* by "index": the spec does not promise order */
        if (json_is_integer(json_object_get(d, "index")) &&
            (size_t)json_integer_value(json_object_get(d, "index")) ==
                i) return json_object_get(d, "embedding");
    return NULL;
}

/* One batch: its vectors (new, count * *dim floats) or an error. */
static int
embed_batch(const lh_embed_provider *p, const char *const *texts, size_t first, size_t count,
            float **out, uint32_t *dim_out, lh_err *err)
{
    json_t *input = json_array();
    for (size_t i = 0; i < count; i++)
        json_array_append_new(input, lh_json_text(texts[first + i]));
    json_t *req = json_pack("{s:s, s:o}", "model", p->model, "input", input);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *answer = NULL;
    int rc;
    for (int attempt = 0;; attempt++) {
        bool retry = false;
        rc = post(p, body, &answer, &retry, err);
        if (rc == 0 || !retry || attempt >= (p->retries > 0 ? p->retries : 2))
            break;
        struct timespec ts = {0, (long)(100 << (2 * attempt)) * 1000000L};
        nanosleep(&ts, NULL);
    }
    free(body);
    float *vectors = NULL;
    uint32_t dim = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const json_t *v = vector_at(p, answer, i, count);
        size_t d = json_array_size(v);
        if (!json_is_array(v) || d == 0 || d > 65536 || (dim && d != dim)) {
            char detail[120];
            snprintf(detail, sizeof detail, "text %zu: %s", first + i,
                     !json_is_array(v) ? "no vector for it"
                                       : "a vector of another dimension than the others");
            rc = fail(err, p, LH_EIO, "provider_bad_response", "answered wrongly", detail);
            break;
        }
        if (!dim) {
            dim = (uint32_t)d;
            vectors = malloc(count * dim * sizeof *vectors);
            if (!vectors) {
                rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                                "not enough memory for the embeddings");
                break;
            }
        }
        for (size_t j = 0; j < d && rc == 0; j++) {
            const json_t *x = json_array_get(v, j);
            if (!json_is_number(x))
                rc = fail(err, p, LH_EIO, "provider_bad_response", "answered wrongly",
                          "a vector holds something that is not a number");
            else
                vectors[i * dim + j] = (float)json_number_value(x);
        }
    }
    json_decref(answer);
    if (rc != 0) {
        free(vectors);
        return rc;
    }
    *out = vectors;
    *dim_out = dim;
    return 0;
}

/* Batches shared by the requesting threads. */
typedef struct batches {
    const lh_embed_provider *p;
    const char *const *texts;
    size_t n, size, count;
    atomic_size_t next;
    atomic_bool failed;
    float **vectors; /* per batch */
    uint32_t *dims;
    int *rcs;
    lh_err *errs;
} batches;

static void *
worker(void *arg)
{
    batches *b = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= b->count || atomic_load(&b->failed))
            return NULL;
        size_t first = i * b->size, count = b->n - first < b->size ? b->n - first : b->size;
        b->rcs[i] =
            embed_batch(b->p, b->texts, first, count, &b->vectors[i], &b->dims[i], &b->errs[i]);
        if (b->rcs[i] != 0)
            atomic_store(&b->failed, true);
    }
}

int
lh_embed_remote(const lh_embed_provider *p, const char *const *texts, size_t n, float **out,
                uint32_t *dim_out, lh_err *err)
{
    batches b = {.p = p, .texts = texts, .n = n, .size = p->batch > 0 ? p->batch : 64};
    b.count = (n + b.size - 1) / b.size;
    atomic_init(&b.next, 0);
    atomic_init(&b.failed, false);
    size_t slots = b.count ? b.count : 1;
    b.vectors = lh_calloc(slots, sizeof *b.vectors);
    b.dims = lh_calloc(slots, sizeof *b.dims);
    b.rcs = lh_calloc(slots, sizeof *b.rcs);
    b.errs = lh_calloc(slots, sizeof *b.errs);
    size_t threads = p->concurrency > 0 ? (size_t)p->concurrency : 1;
    if (threads > b.count)
        threads = b.count ? b.count : 1;
    if (threads > 32)
        threads = 32;
    pthread_t tids[32];
    bool started[32] = {false};
    for (size_t t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, worker, &b) == 0;
    worker(&b); /* this thread too; batches a thread could not take are left to it */
    for (size_t t = 1; t < threads; t++)
        if (started[t])
            pthread_join(tids[t], NULL);
    /* the first failed batch in order is the error; then every batch must agree on the
     * dimension */
    int rc = 0;
    uint32_t dim = b.count ? b.dims[0] : 0;
    float *vectors = NULL;
    for (size_t i = 0; i < b.count && rc == 0; i++) {
        if (b.rcs[i] != 0) {
            rc = b.rcs[i];
            if (err)
                *err = b.errs[i];
        } else if (b.vectors[i] == NULL) {
            rc = fail(err, p, LH_EIO, "provider_error", "did not answer", "a batch was skipped");
        } else if (b.dims[i] != dim) {
            rc = fail(err, p, LH_EIO, "provider_bad_response", "answered wrongly",
                      "vectors of different dimensions in different batches");
        }
    }
    if (rc == 0 && b.count > 0) {
        vectors = malloc(n * (size_t)dim * sizeof *vectors);
        if (!vectors)
            rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                            "not enough memory for the embeddings");
        for (size_t i = 0; vectors && i < b.count; i++) {
            size_t first = i * b.size, count = n - first < b.size ? n - first : b.size;
            memcpy(vectors + first * dim, b.vectors[i], count * dim * sizeof *vectors);
        }
    }
    for (size_t i = 0; i < b.count; i++)
        free(b.vectors[i]);
    free(b.vectors);
    free(b.dims);
    free(b.rcs);
    free(b.errs);
    if (rc != 0) {
        free(vectors);
        return rc;
    }
    *out = vectors;
    *dim_out = dim;
    return 0;
}
