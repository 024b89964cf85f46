/*
 * store_s3.c — the S3 backend: libcurl with CURLOPT_AWS_SIGV4, path-style or
 * virtual-host URLs, retries with backoff for transient failures, multipart uploads
 * above a threshold, ListObjectsV2 with start-after cursors. The one place where curl
 * codes and S3 XML error codes become lh_err.
 *
 * Signing: curl signs each request (SigV4, service "s3"). We send
 * x-amz-content-sha256: UNSIGNED-PAYLOAD so bodies stream without hashing them first,
 * and we build URLs whose path is already percent-encoded per segment and whose query is
 * already canonical (sorted by name, every byte but unreserved ones percent-encoded), so
 * the canonical request curl signs is exactly what the server reconstructs.
 *
 * Create-only puts send If-None-Match: * (honoured by AWS S3 and most servers); because
 * some servers ignore it, a HEAD first turns the common case into a clear conflict too.
 *
 * Threads: easy handles are pooled (reusing connections) under a mutex; each request
 * uses one handle at a time.
 */
#include "storage/storage_int.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL_MAX 16
#define ERROR_BODY_MAX (64 * 1024)
#define XML_BODY_MAX (16 * 1024 * 1024)

typedef struct s3_store {
    char *scheme_host; /* "http://127.0.0.1:9000" (path style) */
    char *vhost_base;  /* "http://bucket.host:port" (virtual host style) */
    char *bucket;
    char *prefix;
    bool path_style, tls_verify;
    char *userpwd; /* "AK:SK" — wiped on free */
    char *sigv4;   /* "aws:amz:region:s3" */
    int retries;
    int64_t connect_timeout_ms, request_timeout_ms, multipart_threshold, part_size;
    pthread_mutex_t lock;
    CURL *pool[POOL_MAX];
    int n_pool;
} s3_store;

static s3_store *
impl(lh_store *s)
{
    return s->impl;
}

/* ---- encoding ------------------------------------------------------------------------ */

static void
encode(lh_buf *out, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved || (keep_slash && c == '/')) {
            char ch = (char)c;
            lh_buf_append(out, &ch, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            lh_buf_append(out, esc, 3);
        }
    }
}

typedef struct qparam {
    const char *name, *value; /* value NULL: "name=" (S3 accepts an empty value) */
} qparam;

static int
cmp_param(const void *a, const void *b)
{
    return strcmp(((const qparam *)a)->name, ((const qparam *)b)->name);
}

/* URL for key (may be NULL for the bucket itself) with a canonical query. */
static char *
build_url(lh_store *s, const char *key, qparam *params, size_t n_params)
{
    s3_store *s3 = impl(s);
    lh_buf url;
    lh_buf_init(&url);
    if (s3->path_style) {
        lh_buf_puts(&url, s3->scheme_host);
        lh_buf_puts(&url, "/");
        encode(&url, s3->bucket, false);
    } else {
        lh_buf_puts(&url, s3->vhost_base);
    }
    lh_buf_puts(&url, "/");
    if (key) {
        encode(&url, s3->prefix, true);
        encode(&url, key, true);
    }
    if (n_params > 1)
        qsort(params, n_params, sizeof *params, cmp_param);
    for (size_t i = 0; i < n_params; i++) {
        lh_buf_puts(&url, i == 0 ? "?" : "&");
        encode(&url, params[i].name, false);
        lh_buf_puts(&url, "=");
        if (params[i].value)
            encode(&url, params[i].value, false);
    }
    return lh_buf_steal(&url);
}

/* ---- handle pool --------------------------------------------------------------------------- */

static CURL *
take_handle(s3_store *s3)
{
    pthread_mutex_lock(&s3->lock);
    CURL *h = s3->n_pool > 0 ? s3->pool[--s3->n_pool] : NULL;
    pthread_mutex_unlock(&s3->lock);
    if (h == NULL)
        h = curl_easy_init();
    else
        curl_easy_reset(h);
    return h;
}

static void
give_handle(s3_store *s3, CURL *h)
{
    pthread_mutex_lock(&s3->lock);
    if (s3->n_pool < POOL_MAX) {
        s3->pool[s3->n_pool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s3->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* ---- one HTTP exchange ----------------------------------------------------------------------- */

typedef struct exchange {
    /* request */
    const char *method;
    char *url;
    struct curl_slist *headers;
    const lh_source *src; /* upload body, or NULL */
    int64_t src_offset, src_len;
    const void *small_body; /* POST body held in memory */
    size_t small_len;
    /* response */
    long status;
    lh_sink_fn sink; /* body of a 2xx goes here; otherwise to errbody */
    void *sink_ctx;
    int sink_rc;       /* what the sink returned when it stopped the transfer; 0 while it goes on */
    bool want_partial; /* a Range was asked for: only a 206 may reach the sink */
    bool range_ignored; /* the server answered a ranged GET with the whole object */
    bool no_retry;      /* probes: one attempt, a quick answer */
    int64_t delivered;
    lh_buf body; /* error bodies and XML answers */
    size_t body_max;
    char etag[LH_ETAG_MAX];
    int64_t content_length;
    int64_t last_modified_us;
    /* state */
    int64_t read_pos;
} exchange;

static size_t
on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    exchange *x = userdata;
    int64_t left = x->src_len - x->read_pos;
    size_t want = size * nitems;
    if ((int64_t)want > left)
        want = (size_t)left;
    if (want == 0)
        return 0;
    if (x->src) {
        if (lh_storage__source_read(x->src, x->src_offset + x->read_pos, buf, want, NULL) != 0)
            return CURL_READFUNC_ABORT;
    } else {
        memcpy(buf, (const char *)x->small_body + x->read_pos, want);
    }
    x->read_pos += (int64_t)want;
    return want;
}

static int
on_seek(void *userdata, curl_off_t offset, int origin)
{
    exchange *x = userdata;
    if (origin != SEEK_SET || offset < 0 || offset > x->src_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->read_pos = offset;
    return CURL_SEEKFUNC_OK;
}

static size_t
on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
    exchange *x = userdata;
    size_t n = size * nmemb;
    bool ok_body = x->status >= 200 && x->status < 300;
    if (ok_body && x->want_partial && x->status != 206) {
        x->range_ignored = true;
        return 0; /* abort: these are not the bytes that were asked for */
    }
    if (ok_body && x->sink) {
        int sink_rc = x->sink(x->sink_ctx, data, n);
        if (sink_rc != 0) {
            x->sink_rc = sink_rc;
            return 0;
        }
        x->delivered += (int64_t)n;
        return n;
    }
    if (x->body.len + n > x->body_max)
        return ok_body ? 0 : n; /* error bodies are truncated, answers refused */
    lh_buf_append(&x->body, data, n);
    return n;
}

static void
trim_copy(char *dst, size_t size, const char *src, size_t len)
{
    while (len > 0 && (src[len - 1] == '\r' || src[len - 1] == '\n' || src[len - 1] == ' '))
        len--;
    while (len > 0 && *src == ' ') {
        src++;
        len--;
    }
    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static size_t
on_header(char *data, size_t size, size_t nitems, void *userdata)
{
    exchange *x = userdata;
    size_t n = size * nitems;
    if (n >= 9 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after 100-continue, or a retry): remember its status */
        const char *sp = memchr(data, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->etag[0] = '\0';
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (colon == NULL)
        return n;
    size_t name_len = (size_t)(colon - data);
    const char *value = colon + 1;
    size_t value_len = n - name_len - 1;
    char tmp[128];
    if (name_len == 4 && strncasecmp(data, "etag", 4) == 0) {
        trim_copy(tmp, sizeof tmp, value, value_len);
        const char *v = tmp;
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v++;
            vl -= 2;
        }
        snprintf(x->etag, sizeof x->etag, "%.*s", (int)vl, v);
    } else if (name_len == 14 && strncasecmp(data, "content-length", 14) == 0) {
        trim_copy(tmp, sizeof tmp, value, value_len);
        x->content_length = strtoll(tmp, NULL, 10);
    } else if (name_len == 13 && strncasecmp(data, "last-modified", 13) == 0) {
        trim_copy(tmp, sizeof tmp, value, value_len);
        time_t t = curl_getdate(tmp, NULL);
        x->last_modified_us = t > 0 ? (int64_t)t * 1000000 : 0;
    }
    return n;
}

/* Pull <Code> and <Message> out of an S3 error document. */
static void
parse_s3_error(const lh_buf *body, char *code, size_t code_size, char *message, size_t msg_size)
{
    code[0] = message[0] = '\0';
    if (body->len == 0)
        return;
    xmlDocPtr doc = xmlReadMemory(body->data, (int)body->len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL)
        return;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        xmlChar *text = xmlNodeGetContent(n);
        if (xmlStrcmp(n->name, (const xmlChar *)"Code") == 0)
            snprintf(code, code_size, "%s", (const char *)text);
        else if (xmlStrcmp(n->name, (const xmlChar *)"Message") == 0)
            snprintf(message, msg_size, "%s", (const char *)text);
        xmlFree(text);
    }
    xmlFreeDoc(doc);
}

static bool
transient_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static bool
transient_status(long status)
{
    return status == 500 || status == 502 || status == 503 || status == 504 || status == 429;
}

/* Translate a finished exchange's failure into err. key may be NULL. */
static int
s3_error(lh_store *s, exchange *x, CURLcode cc, const char *op, const char *key, lh_err *err)
{
    if (cc != CURLE_OK) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unreachable", "the S3 server cannot be reached");
        lh_err_detail(err, "%s %s: %s", op, key ? key : "(bucket)", curl_easy_strerror(cc));
        lh_err_hint(err, "check that %s is up and reachable", lh_store_describe(s));
        return LH_EUNAVAIL;
    }
    char code[64], message[256];
    parse_s3_error(&x->body, code, sizeof code, message, sizeof message);
    const char *what = message[0] ? message : code[0] ? code : "no error document";
    if (x->status == 404 && strcmp(code, "NoSuchBucket") == 0) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unreachable", "the S3 bucket does not exist");
        lh_err_detail(err, "%s: %s", lh_store_describe(s), what);
        return LH_EUNAVAIL;
    }
    if (x->status == 404) {
        lh_err_set(err, LH_ENOTFOUND, 404, "object_not_found", "no object '%s'", key ? key : "");
        return LH_ENOTFOUND;
    }
    if (x->status == 412 || x->status == 409) {
        lh_err_set(err, LH_EEXIST, 409, "object_exists", "object '%s' already exists",
                   key ? key : "");
        lh_err_hint(err, "create-only writes never replace an object");
        return LH_EEXIST;
    }
    if (x->status == 416) {
        lh_err_set(err, LH_EINVAL, 416, "invalid_range", "the range is outside the object");
        return LH_EINVAL;
    }
    if (x->status == 401 || x->status == 403) {
        lh_err_set(err, LH_EPERM, 502, "bucket_access_denied",
                   "the S3 server refused our credentials");
        lh_err_detail(err, "%s %s: HTTP %ld %s: %s", op, key ? key : "(bucket)", x->status, code,
                      what);
        lh_err_hint(err, "check the bucket's secret_ref credentials and permissions");
        return LH_EPERM;
    }
    if (transient_status(x->status)) {
        lh_err_set(err, LH_EUNAVAIL, 503, "bucket_unreachable", "the S3 server is failing");
        lh_err_detail(err, "%s %s: HTTP %ld %s: %s", op, key ? key : "(bucket)", x->status, code,
                      what);
        return LH_EUNAVAIL;
    }
    lh_err_set(err, LH_EIO, 502, "bucket_error", "the S3 server refused the request");
    lh_err_detail(err, "%s %s: HTTP %ld %s: %s", op, key ? key : "(bucket)", x->status, code, what);
    return LH_EIO;
}

static void
backoff(int attempt)
{
    /* 100 ms, 200 ms, 400 ms, ... with up to 50% jitter, capped at 5 s */
    int64_t ms = 100LL << (attempt < 6 ? attempt : 6);
    if (ms > 5000)
        ms = 5000;
    uint16_t r = (uint16_t)lh_random_u64();
    ms = ms / 2 + (ms / 2) * r / 65535;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run x with retries; 0 on a 2xx, else the translated error. */
static int
perform(lh_store *s, exchange *x, const char *op, const char *key, lh_err *err)
{
    s3_store *s3 = impl(s);
    int rc = 0;
    x->headers = curl_slist_append(x->headers, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    for (int attempt = 0;; attempt++) {
        CURL *h = take_handle(s3);
        x->status = 0;
        x->read_pos = 0;
        x->etag[0] = '\0';
        x->content_length = -1;
        x->last_modified_us = 0;
        lh_buf_free(&x->body);
        curl_easy_setopt(h, CURLOPT_URL, x->url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, x->method);
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s3->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, s3->userpwd);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, x->headers);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s3->connect_timeout_ms);
        /* fail when a transfer makes (almost) no progress, not on total time: big
         * objects may legitimately take long */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)((s3->request_timeout_ms + 999) / 1000));
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, s3->tls_verify ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, s3->tls_verify ? 2L : 0L);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
        if (strcmp(x->method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
        if (x->src || x->small_body) {
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(h, CURLOPT_READDATA, x);
            curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->src_len);
        }
        CURLcode cc = curl_easy_perform(h);
        give_handle(s3, h);
        if (x->sink_rc != 0)
            return lh_storage__sink_error(err, x->sink_rc, key ? key : "");
        bool ok = cc == CURLE_OK && x->status >= 200 && x->status < 300;
        if (ok)
            return 0;
        /* never retry once bytes reached the sink: they cannot be taken back */
        bool again = (transient_curl(cc) || (cc == CURLE_OK && transient_status(x->status))) &&
                     attempt < (x->no_retry ? 0 : s3->retries) && x->delivered == 0;
        if (!again) {
            rc = s3_error(s, x, cc, op, key, err);
            break;
        }
        backoff(attempt);
    }
    return rc;
}

static void
exchange_init(exchange *x, const char *method, char *url)
{
    memset(x, 0, sizeof *x);
    x->method = method;
    x->url = url;
    x->body_max = ERROR_BODY_MAX;
    lh_buf_init(&x->body);
    x->content_length = -1;
}

static void
exchange_free(exchange *x)
{
    free(x->url);
    curl_slist_free_all(x->headers);
    lh_buf_free(&x->body);
}

static void
fill_info_from(const exchange *x, lh_obj_info *info)
{
    snprintf(info->etag, sizeof info->etag, "%s", x->etag);
    info->mtime_us = x->last_modified_us;
    info->size = x->content_length;
}

/* ---- operations -------------------------------------------------------------------------------
 */

static int s3_list_impl(lh_store *s, const char *prefix, const char *cursor, size_t limit,
                        lh_list_page *page, bool no_retry, lh_err *err);

static int
s3_head(lh_store *s, const char *key, lh_obj_info *info, lh_err *err)
{
    exchange x;
    exchange_init(&x, "HEAD", build_url(s, key, NULL, 0));
    int rc = perform(s, &x, "HEAD", key, err);
    if (rc == 0)
        fill_info_from(&x, info);
    exchange_free(&x);
    if (rc == LH_ENOTFOUND) {
        /* A HEAD answer has no body, so "no such key" and "no such bucket" look alike;
         * a deleted bucket must read as unreachable (rescue reads), not as a missing
         * object. One list request tells them apart. */
        lh_list_page page;
        memset(&page, 0, sizeof page);
        lh_err lerr;
        if (s3_list_impl(s, "", NULL, 1, &page, true, &lerr) == LH_EUNAVAIL) {
            if (err)
                *err = lerr;
            rc = LH_EUNAVAIL;
        }
        lh_list_page_free(&page);
    }
    return rc;
}

static int
s3_get(lh_store *s, const char *key, int64_t offset, int64_t len, lh_sink_fn sink, void *ctx,
       lh_obj_info *info, lh_err *err)
{
    if (len == 0)
        return s3_head(s, key, info, err);
    exchange x;
    exchange_init(&x, "GET", build_url(s, key, NULL, 0));
    if (offset > 0 || len > 0) {
        char range[96];
        if (len > 0)
            snprintf(range, sizeof range, "Range: bytes=%lld-%lld", (long long)offset,
                     (long long)(offset + len - 1));
        else
            snprintf(range, sizeof range, "Range: bytes=%lld-", (long long)offset);
        x.headers = curl_slist_append(x.headers, range);
        x.want_partial = offset > 0 || len > 0;
    }
    x.sink = sink;
    x.sink_ctx = ctx;
    int rc = perform(s, &x, "GET", key, err);
    if (x.range_ignored) {
        rc = lh_err_set(err, LH_EIO, 502, "bucket_error",
                        "the S3 server ignored a Range request and sent the whole object");
        lh_err_detail(err, "GET %s: HTTP %ld instead of 206", key, x.status);
    }
    if (rc == 0) {
        fill_info_from(&x, info);
        info->size = x.delivered; /* for ranges, the bytes returned */
    }
    exchange_free(&x);
    return rc;
}

static int
single_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
           lh_err *err)
{
    exchange x;
    exchange_init(&x, "PUT", build_url(s, key, NULL, 0));
    x.src = src;
    x.src_len = src->len;
    x.headers = curl_slist_append(x.headers, "Content-Type: application/octet-stream");
    if (flags & LH_PUT_CREATE_ONLY)
        x.headers = curl_slist_append(x.headers, "If-None-Match: *");
    int rc = perform(s, &x, "PUT", key, err);
    if (rc == 0) {
        fill_info_from(&x, info);
        info->size = src->len;
        info->mtime_us = lh_now_us();
    }
    exchange_free(&x);
    return rc;
}

/* Text of the first element called name anywhere under node (new, xmlFree) or NULL. */
static xmlChar *
find_text(xmlNodePtr node, const char *name)
{
    for (xmlNodePtr n = node; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcmp(n->name, (const xmlChar *)name) == 0)
            return xmlNodeGetContent(n);
        xmlChar *t = find_text(n->children, name);
        if (t)
            return t;
    }
    return NULL;
}

static int
abort_multipart(lh_store *s, const char *key, const char *upload_id)
{
    qparam q[] = {{"uploadId", upload_id}};
    exchange x;
    exchange_init(&x, "DELETE", build_url(s, key, q, 1));
    lh_err ignored;
    int rc = perform(s, &x, "abort multipart", key, &ignored);
    exchange_free(&x);
    return rc;
}

/* Start a multipart upload of key; *upload_id (new) on success. */
static int
multipart_start(lh_store *s, const char *key, char **upload_id, lh_err *err)
{
    qparam q_init[] = {{"uploads", NULL}};
    exchange x;
    exchange_init(&x, "POST", build_url(s, key, q_init, 1));
    x.body_max = XML_BODY_MAX;
    x.small_body = "";
    x.small_len = 0;
    x.headers = curl_slist_append(x.headers, "Content-Type: application/octet-stream");
    xmlDocPtr doc = NULL;
    xmlChar *id = NULL;
    int rc = perform(s, &x, "create multipart upload", key, err);
    if (rc != 0)
        goto out;
    doc = xmlReadMemory(x.body.data ? x.body.data : "", (int)x.body.len, NULL, NULL,
                        XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    id = doc ? find_text(xmlDocGetRootElement(doc), "UploadId") : NULL;
    if (id == NULL) {
        rc = lh_err_set(err, LH_EIO, 502, "bucket_error",
                        "the S3 server started a multipart upload without an UploadId");
        goto out;
    }
    *upload_id = lh_strdup((const char *)id);
out:
    xmlFree(id);
    xmlFreeDoc(doc);
    exchange_free(&x);
    return rc;
}

/* Upload src in parts, appending each part's <Part> to complete. */
static int
multipart_parts(lh_store *s, const char *key, const lh_source *src, const char *upload_id,
                lh_buf *complete, lh_err *err)
{
    /* S3 allows at most 10,000 parts: grow the parts for very large objects */
    int64_t part_size = impl(s)->part_size;
    if ((src->len + part_size - 1) / part_size > 10000)
        part_size = (src->len + 9999) / 10000;
    int part = 0;
    for (int64_t off = 0; off < src->len; off += part_size) {
        part++;
        char part_str[16];
        snprintf(part_str, sizeof part_str, "%d", part);
        qparam q[] = {{"partNumber", part_str}, {"uploadId", upload_id}};
        exchange px;
        exchange_init(&px, "PUT", build_url(s, key, q, 2));
        px.src = src;
        px.src_offset = off;
        px.src_len = src->len - off < part_size ? src->len - off : part_size;
        int rc = perform(s, &px, "upload part", key, err);
        if (rc == 0)
            lh_buf_printf(complete, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>",
                          part, px.etag);
        exchange_free(&px);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Complete the upload from the parts listed in complete. */
static int
multipart_complete(lh_store *s, const char *key, const char *upload_id, const lh_buf *complete,
                   lh_err *err)
{
    qparam q[] = {{"uploadId", upload_id}};
    exchange cx;
    exchange_init(&cx, "POST", build_url(s, key, q, 1));
    cx.small_body = complete->data;
    cx.small_len = complete->len;
    cx.src_len = (int64_t)complete->len;
    cx.body_max = XML_BODY_MAX;
    cx.headers = curl_slist_append(cx.headers, "Content-Type: application/xml");
    int rc = perform(s, &cx, "complete multipart upload", key, err);
    /* S3 may answer 200 with an <Error> document inside */
    if (rc == 0 && cx.body.data && strstr(cx.body.data, "<Error>")) {
        cx.status = 500;
        rc = s3_error(s, &cx, CURLE_OK, "complete multipart upload", key, err);
    }
    exchange_free(&cx);
    return rc;
}

/* A put in parts; on any failure the upload is aborted, so no parts are left behind. */
static int
multipart_put(lh_store *s, const char *key, const lh_source *src, lh_obj_info *info, lh_err *err)
{
    char *upload_id = NULL;
    lh_buf complete;
    lh_buf_init(&complete);
    int rc = multipart_start(s, key, &upload_id, err);
    if (rc != 0)
        goto out;
    lh_buf_puts(&complete, "<CompleteMultipartUpload>");
    if ((rc = multipart_parts(s, key, src, upload_id, &complete, err)) != 0)
        goto out;
    lh_buf_puts(&complete, "</CompleteMultipartUpload>");
    if ((rc = multipart_complete(s, key, upload_id, &complete, err)) != 0)
        goto out;
    info->size = src->len;
    info->mtime_us = lh_now_us();
    lh_obj_info head;
    lh_err ignored;
    if (s3_head(s, key, &head, &ignored) == 0)
        *info = head;
out:
    if (rc != 0 && upload_id)
        abort_multipart(s, key, upload_id);
    lh_buf_free(&complete);
    free(upload_id);
    return rc;
}

static int
s3_put(lh_store *s, const char *key, const lh_source *src, int flags, lh_obj_info *info,
       lh_err *err)
{
    if (flags & LH_PUT_CREATE_ONLY) {
        lh_obj_info existing;
        lh_err head_err;
        int rc = s3_head(s, key, &existing, &head_err);
        if (rc == 0) {
            lh_err_set(err, LH_EEXIST, 409, "object_exists", "object '%s' already exists", key);
            lh_err_hint(err, "create-only writes never replace an object");
            return LH_EEXIST;
        }
        if (rc != LH_ENOTFOUND) {
            if (err)
                *err = head_err;
            return rc;
        }
    }
    /* multipart cannot be made conditional portably; create-only objects are small
     * (manifests), so they always go in one request */
    if (src->len > impl(s)->multipart_threshold && !(flags & LH_PUT_CREATE_ONLY))
        return multipart_put(s, key, src, info, err);
    return single_put(s, key, src, flags, info, err);
}

static int
s3_del(lh_store *s, const char *key, lh_err *err)
{
    /* S3 answers 204 for missing keys; we report 404 like the fs backend */
    lh_obj_info info;
    int rc = s3_head(s, key, &info, err);
    if (rc != 0)
        return rc;
    exchange x;
    exchange_init(&x, "DELETE", build_url(s, key, NULL, 0));
    rc = perform(s, &x, "DELETE", key, err);
    exchange_free(&x);
    return rc;
}

static int64_t
parse_iso_time(const char *s)
{
    struct tm tm = {0};
    int ms = 0;
    if (sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000000 + (int64_t)ms * 1000;
}

static int
s3_list(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
        lh_err *err)
{
    return s3_list_impl(s, prefix, cursor, limit, page, false, err);
}

static int
s3_list_impl(lh_store *s, const char *prefix, const char *cursor, size_t limit, lh_list_page *page,
             bool no_retry, lh_err *err)
{
    s3_store *s3 = impl(s);
    char max_keys[24];
    snprintf(max_keys, sizeof max_keys, "%zu", limit > 1000 ? (size_t)1000 : limit);
    char *full_prefix = lh_sprintf("%s%s", s3->prefix, prefix);
    char *full_cursor = cursor ? lh_sprintf("%s%s", s3->prefix, cursor) : NULL;
    qparam q[4] = {{"list-type", "2"}, {"max-keys", max_keys}, {"prefix", full_prefix}};
    size_t nq = 3;
    if (full_cursor)
        q[nq++] = (qparam){"start-after", full_cursor};
    exchange x;
    exchange_init(&x, "GET", build_url(s, NULL, q, nq));
    x.body_max = XML_BODY_MAX;
    x.no_retry = no_retry;
    int rc = perform(s, &x, "LIST", prefix, err);
    free(full_prefix);
    free(full_cursor);
    if (rc != 0) {
        exchange_free(&x);
        return rc;
    }
    xmlDocPtr doc = xmlReadMemory(x.body.data ? x.body.data : "", (int)x.body.len, NULL, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (root == NULL) {
        xmlFreeDoc(doc);
        exchange_free(&x);
        return lh_err_set(err, LH_EIO, 502, "bucket_error",
                          "the S3 server sent an unreadable list");
    }
    size_t cap = 0, plen = strlen(s3->prefix);
    bool truncated = false;
    for (xmlNodePtr n = root->children; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrcmp(n->name, (const xmlChar *)"IsTruncated") == 0) {
            xmlChar *t = xmlNodeGetContent(n);
            truncated = t && xmlStrcmp(t, (const xmlChar *)"true") == 0;
            xmlFree(t);
            continue;
        }
        if (xmlStrcmp(n->name, (const xmlChar *)"Contents") != 0)
            continue;
        xmlChar *key = find_text(n->children, "Key");
        xmlChar *size = find_text(n->children, "Size");
        xmlChar *etag = find_text(n->children, "ETag");
        xmlChar *mtime = find_text(n->children, "LastModified");
        if (key && strlen((const char *)key) >= plen) {
            if (page->n == cap) {
                cap = cap ? cap * 2 : 64;
                page->entries = lh_realloc(page->entries, cap * sizeof *page->entries);
            }
            lh_list_entry *e = &page->entries[page->n++];
            memset(e, 0, sizeof *e);
            e->key = lh_strdup((const char *)key + plen);
            e->size = size ? strtoll((const char *)size, NULL, 10) : 0;
            e->mtime_us = mtime ? parse_iso_time((const char *)mtime) : 0;
            const char *et = etag ? (const char *)etag : "";
            size_t el = strlen(et);
            if (el >= 2 && et[0] == '"' && et[el - 1] == '"')
                snprintf(e->etag, sizeof e->etag, "%.*s", (int)el - 2, et + 1);
            else
                snprintf(e->etag, sizeof e->etag, "%s", et);
        }
        xmlFree(key);
        xmlFree(size);
        xmlFree(etag);
        xmlFree(mtime);
    }
    xmlFreeDoc(doc);
    exchange_free(&x);
    if (truncated && page->n > 0)
        page->next_cursor = lh_strdup(page->entries[page->n - 1].key);
    return 0;
}

static int
s3_copy(lh_store *s, const char *src_key, const char *dst_key, lh_err *err)
{
    s3_store *s3 = impl(s);
    exchange x;
    exchange_init(&x, "PUT", build_url(s, dst_key, NULL, 0));
    lh_buf source;
    lh_buf_init(&source);
    lh_buf_puts(&source, "x-amz-copy-source: /");
    encode(&source, s3->bucket, false);
    lh_buf_puts(&source, "/");
    encode(&source, s3->prefix, true);
    encode(&source, src_key, true);
    x.headers = curl_slist_append(x.headers, source.data);
    x.small_body = "";
    x.body_max = XML_BODY_MAX;
    int rc = perform(s, &x, "COPY", src_key, err);
    if (rc == 0 && x.body.data && strstr(x.body.data, "<Error>")) {
        x.status = 500;
        rc = s3_error(s, &x, CURLE_OK, "COPY", src_key, err);
    }
    lh_buf_free(&source);
    exchange_free(&x);
    return rc;
}

static int
s3_probe(lh_store *s, lh_err *err)
{
    lh_list_page page;
    memset(&page, 0, sizeof page);
    /* one attempt: a probe must answer quickly, and the prober runs again anyway */
    int rc = s3_list_impl(s, "", NULL, 1, &page, true, err);
    lh_list_page_free(&page);
    return rc;
}

static void
s3_free(lh_store *s)
{
    s3_store *s3 = impl(s);
    for (int i = 0; i < s3->n_pool; i++)
        curl_easy_cleanup(s3->pool[i]);
    pthread_mutex_destroy(&s3->lock);
    lh_free_secret(s3->userpwd);
    free(s3->scheme_host);
    free(s3->vhost_base);
    free(s3->bucket);
    free(s3->prefix);
    free(s3->sigv4);
    free(s3);
}

static const lh_store_ops S3_OPS = {
    .name = "s3",
    .get = s3_get,
    .put = s3_put,
    .head = s3_head,
    .del = s3_del,
    .list = s3_list,
    .copy = s3_copy,
    .probe = s3_probe,
    .open_local = NULL,
    .free = s3_free,
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static void
global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
}

int
lh_store_s3_open(const lh_s3_options *opt, lh_store **out, lh_err *err)
{
    pthread_once(&global_once, global_init);
    const char *ep = opt->endpoint;
    const char *after_scheme = ep ? strstr(ep, "://") : NULL;
    if (after_scheme == NULL || (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "endpoint must start with http:// or https:// (got '%s')", ep ? ep : "");
    if (opt->bucket == NULL || opt->bucket[0] == '\0')
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "an s3 bucket needs 'bucket'");
    if (!opt->access_key_id || !opt->secret_access_key)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "an s3 bucket needs credentials");
    if (strchr(opt->access_key_id, ':'))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "access_key_id must not contain ':'");
    s3_store *s3 = lh_calloc(1, sizeof *s3);
    size_t ep_len = strlen(ep);
    while (ep_len > 0 && ep[ep_len - 1] == '/')
        ep_len--;
    s3->scheme_host = lh_strndup(ep, ep_len);
    size_t scheme_len = (size_t)(after_scheme - ep) + 3;
    s3->vhost_base = lh_sprintf("%.*s%s.%.*s", (int)scheme_len, ep, opt->bucket,
                                (int)(ep_len - scheme_len), ep + scheme_len);
    s3->bucket = lh_strdup(opt->bucket);
    s3->prefix = lh_strdup(opt->prefix ? opt->prefix : "");
    s3->path_style = opt->path_style;
    s3->tls_verify = opt->tls_verify;
    s3->userpwd = lh_sprintf("%s:%s", opt->access_key_id, opt->secret_access_key);
    s3->sigv4 =
        lh_sprintf("aws:amz:%s:s3", opt->region && opt->region[0] ? opt->region : "us-east-1");
    s3->retries = opt->retries;
    s3->connect_timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms : 5000;
    s3->request_timeout_ms = opt->request_timeout_ms > 0 ? opt->request_timeout_ms : 30000;
    s3->multipart_threshold = opt->multipart_threshold > 0 ? opt->multipart_threshold : 64 << 20;
    s3->part_size = opt->part_size >= (5 << 20) ? opt->part_size : 16 << 20;
    pthread_mutex_init(&s3->lock, NULL);
    lh_store *s = lh_calloc(1, sizeof *s);
    s->ops = &S3_OPS;
    s->impl = s3;
    s->describe = s3->path_style ? lh_sprintf("s3:%s/%s", s3->scheme_host, s3->bucket)
                                 : lh_sprintf("s3:%s", s3->vhost_base);
    /* S3 keys are at most 1024 bytes, the bucket's prefix included */
    s->max_key = strlen(s3->prefix) < LH_KEY_MAX ? LH_KEY_MAX - strlen(s3->prefix) : 1;
    *out = s;
    return 0;
}
