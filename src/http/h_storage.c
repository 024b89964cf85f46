/*
 * h_storage.c — /storage: buckets, reachability, objects, the bucket error journal.
 *
 * Object bodies never sit whole in memory: a PUT streams to an unlinked temporary file
 * (see LH_ROUTE_STREAM_BODY) which the store then reads; a GET of an fs object sends the
 * file itself; a GET of an S3 object goes through an unlinked temporary file.
 *
 * Keys whose first segment starts with '_' or is "datasets" belong to the system
 * (catalog manifests, journals): only admins may write or delete them here.
 */
#include "http/http_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The bucket that holds everyone's profile:{user} buckets is for admins only (or a
 * principal that lists it explicitly); everyone else reaches just their own profile
 * through "profile:<name>". */
static int
check_bucket(lh_req *req, const char *name, lh_err *err)
{
    if (lh_auth_bucket(req->principal, name, err) != 0)
        return LH_EPERM;
    const char *base = lh_buckets_profile_base_name(req->srv->buckets);
    const lh_principal *p = req->principal;
    if (base && strcmp(base, name) == 0 && !(p->roles & LH_ROLE_ADMIN) && !p->limit_buckets) {
        lh_err_set(err, LH_EPERM, 403, "forbidden", "bucket '%s' holds the profile buckets", name);
        lh_err_hint(err, "use your own profile as bucket 'profile:%s'", p->name);
        return LH_EPERM;
    }
    return 0;
}

static const char *
bucket_param(lh_req *req, lh_resp *resp, bool *failed)
{
    lh_err err;
    const char *name = lh_req_param(req, "bucket");
    *failed = false;
    if (check_bucket(req, name, &err) != 0) {
        lh_resp_error(resp, &err);
        *failed = true;
    }
    return name;
}

static bool
system_key(const char *key)
{
    return key[0] == '_' || strncmp(key, LH_LAYOUT_DATASETS, strlen(LH_LAYOUT_DATASETS)) == 0 ||
           strcmp(key, "datasets") == 0;
}

static void
set_object_headers(lh_req *req, lh_resp *resp, const lh_obj_info *info, bool rescue_used)
{
    if (info->etag[0])
        lh_resp_header(resp, "ETag", lh_arena_printf(req->arena, "\"%s\"", info->etag));
    if (info->mtime_us > 0) {
        char when[64];
        time_t t = (time_t)(info->mtime_us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        lh_resp_header(resp, "Last-Modified", lh_arena_strdup(req->arena, when));
    }
    lh_resp_header(resp, "Accept-Ranges", "bytes");
    if (rescue_used)
        lh_resp_header(resp, "X-Lakehouse-Rescue-Used", "true");
}

/* ---- buckets ----------------------------------------------------------------------------- */

static bool
visible_bucket(lh_req *req, const char *name)
{
    lh_err ignored;
    return check_bucket(req, name, &ignored) == 0;
}

static json_t *
filter_buckets(lh_req *req, json_t *arr, const char *name_field)
{
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item)
    {
        const char *name = json_string_value(json_object_get(item, name_field));
        if (name && visible_bucket(req, name))
            json_array_append(out, item);
    }
    return out;
}

int
lh_h_buckets_list(lh_req *req, lh_resp *resp)
{
    json_t *all = lh_buckets_list_json(req->srv->buckets);
    json_object_set_new(all, "buckets",
                        filter_buckets(req, json_object_get(all, "buckets"), "name"));
    return lh_resp_json(resp, 200, all);
}

int
lh_h_buckets_health(lh_req *req, lh_resp *resp)
{
    json_t *all = lh_buckets_probe_all(req->srv->buckets);
    json_t *mine = filter_buckets(req, json_object_get(all, "buckets"), "name");
    bool ok = true;
    size_t i;
    json_t *item;
    json_array_foreach(mine, i, item) ok &= json_is_true(json_object_get(item, "ok"));
    json_object_set_new(all, "buckets", mine);
    json_object_set_new(all, "ok", json_boolean(ok));
    return lh_resp_json(resp, 200, all);
}

/* ---- objects ------------------------------------------------------------------------------- */

int
lh_h_objects_list(lh_req *req, lh_resp *resp)
{
    lh_err err;
    bool failed;
    const char *bucket = bucket_param(req, resp, &failed);
    if (failed)
        return 0;
    int64_t limit;
    if (lh_req_query_int(req, "limit", 1000, 1, 1000, &limit, &err) != 0)
        return lh_resp_error(resp, &err);
    const char *prefix = lh_req_query(req, "prefix");
    const char *cursor = lh_req_query(req, "cursor");
    lh_list_page page;
    if (lh_buckets_list_objects(req->srv->buckets, bucket, prefix ? prefix : "", cursor,
                                (size_t)limit, &page, req->request_id, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *objects = json_array();
    for (size_t i = 0; i < page.n; i++) {
        char when[LH_TIME_MAX];
        lh_time_format(page.entries[i].mtime_us, when);
        json_array_append_new(objects, json_pack("{s:s, s:I, s:s, s:s}", "key", page.entries[i].key,
                                                 "size", (json_int_t)page.entries[i].size, "etag",
                                                 page.entries[i].etag, "last_modified", when));
    }
    json_t *body = json_object();
    json_object_set_new(body, "bucket", json_string(bucket));
    json_object_set_new(body, "objects", objects);
    json_object_set_new(body, "next_cursor",
                        page.next_cursor ? json_string(page.next_cursor) : json_null());
    lh_list_page_free(&page);
    return lh_resp_json(resp, 200, body);
}

/* Parse a Range header against an object of `size` bytes (RFC 9110 §14). One
 * "bytes=A-B", "bytes=A-" or "bytes=-N" range is served as a 206; a header we do not
 * understand (another unit, bad syntax, several ranges) is ignored and the whole object
 * is served; a well-formed range that misses the object is 416 (the caller adds
 * Content-Range: bytes *\/size). */
static int
parse_range(const char *header, int64_t size, bool *partial, int64_t *start, int64_t *len,
            lh_err *err)
{
    *partial = false;
    *start = 0;
    *len = size;
    if (header == NULL || strncmp(header, "bytes=", 6) != 0 || strchr(header, ','))
        return 0;
    const char *spec = header + 6;
    char *end = NULL;
    if (spec[0] == '-') {
        long long n = strtoll(spec + 1, &end, 10);
        if (end == spec + 1 || *end != '\0' || n < 0)
            return 0;
        if (n == 0 || size == 0)
            goto unsatisfiable;
        *start = n >= size ? 0 : size - n;
        *len = size - *start;
        *partial = true;
        return 0;
    }
    long long a = strtoll(spec, &end, 10);
    if (end == spec || *end != '-' || a < 0)
        return 0;
    const char *second = end + 1;
    long long b = size - 1;
    if (*second != '\0') {
        b = strtoll(second, &end, 10);
        if (end == second || *end != '\0' || b < a)
            return 0; /* not a valid range: ignored */
    }
    if (a >= size)
        goto unsatisfiable;
    if (b >= size)
        b = size - 1;
    *start = a;
    *len = b - a + 1;
    *partial = true;
    return 0;
unsatisfiable:
    lh_err_set(err, LH_EINVAL, 416, "invalid_range", "range '%s' is outside the object", header);
    lh_err_detail(err, "the object has %lld bytes", (long long)size);
    return LH_EINVAL;
}

static int
range_error(lh_req *req, lh_resp *resp, const lh_err *err, int64_t size)
{
    lh_resp_error(resp, err);
    lh_resp_header(resp, "Content-Range",
                   lh_arena_printf(req->arena, "bytes */%lld", (long long)size));
    return 0;
}

typedef struct fd_sink {
    int fd;
} fd_sink;

static int
write_fd(void *ctx, const void *data, size_t len)
{
    const fd_sink *s = ctx;
    return lh_write_all(s->fd, data, len);
}

int
lh_h_object_get(lh_req *req, lh_resp *resp)
{
    lh_err err;
    bool failed, rescue_used = false;
    const char *bucket = bucket_param(req, resp, &failed);
    if (failed)
        return 0;
    const char *key = lh_req_param(req, "key");
    lh_buckets *bs = req->srv->buckets;
    lh_obj_info info;
    bool head = strcmp(req->method, "HEAD") == 0;
    const char *range_header = lh_req_header(req, "Range");
    bool partial;
    int64_t start, len;

    /* fs: send the file itself */
    int fd = -1;
    int rc =
        lh_buckets_open_object(bs, bucket, key, &fd, &info, &rescue_used, req->request_id, &err);
    if (rc == 0) {
        if (parse_range(range_header, info.size, &partial, &start, &len, &err) != 0) {
            close(fd);
            return range_error(req, resp, &err, info.size);
        }
        set_object_headers(req, resp, &info, false);
        if (head) {
            close(fd);
            resp->status = 200;
            resp->content_type = "application/octet-stream";
            resp->head_len = info.size;
            return 0;
        }
        lh_resp_fd(resp, partial ? 206 : 200, "application/octet-stream", fd, start, len);
        if (partial)
            lh_resp_header(resp, "Content-Range",
                           lh_arena_printf(req->arena, "bytes %lld-%lld/%lld", (long long)start,
                                           (long long)(start + len - 1), (long long)info.size));
        return 0;
    }
    if (rc != LH_EUNAVAIL && !(rc == LH_EINVAL && strcmp(err.code, "not_local") == 0))
        return lh_resp_error(resp, &err);

    /* remote (or unreachable local) objects: size first, then the bytes */
    if (lh_buckets_head_object(bs, bucket, key, &info, &rescue_used, req->request_id, &err) != 0)
        return lh_resp_error(resp, &err);
    if (parse_range(range_header, info.size, &partial, &start, &len, &err) != 0)
        return range_error(req, resp, &err, info.size);
    if (head) {
        set_object_headers(req, resp, &info, rescue_used);
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->head_len = info.size;
        return 0;
    }
    if (lh_http__tmpfile(req->srv, &fd, &err) != 0)
        return lh_resp_error(resp, &err);
    fd_sink sink = {fd};
    lh_obj_info got;
    /* the target already failed over: do not make the client wait for it twice */
    const char *source = rescue_used ? lh_buckets_rescue_name(bs) : bucket;
    bool second_rescue = false;
    rc = lh_buckets_get_object(bs, source, key, partial ? start : 0, partial ? len : -1, write_fd,
                               &sink, &got, &second_rescue, req->request_id, &err);
    rescue_used |= second_rescue;
    if (rc != 0) {
        close(fd);
        return lh_resp_error(resp, &err);
    }
    off_t fetched = lseek(fd, 0, SEEK_END);
    set_object_headers(req, resp, &info, rescue_used);
    lh_resp_fd(resp, partial ? 206 : 200, "application/octet-stream", fd, 0, (int64_t)fetched);
    if (partial)
        lh_resp_header(resp, "Content-Range",
                       lh_arena_printf(req->arena, "bytes %lld-%lld/%lld", (long long)start,
                                       (long long)(start + (int64_t)fetched - 1),
                                       (long long)info.size));
    return 0;
}

static int
check_system_write(lh_req *req, const char *key, lh_err *err)
{
    if (system_key(key) && !(req->principal->roles & LH_ROLE_ADMIN)) {
        lh_err_set(err, LH_EPERM, 403, "forbidden",
                   "keys under '_...' and 'datasets/' are managed by lakehouse");
        lh_err_hint(err, "use the ingest and catalog endpoints; only admins may write these keys");
        return LH_EPERM;
    }
    return 0;
}

/* PUT and DELETE: the bucket and key a principal may write, or the answer is set. */
static bool
writable_target(lh_req *req, lh_resp *resp, const char **bucket, const char **key)
{
    lh_err err;
    bool failed;
    *bucket = bucket_param(req, resp, &failed);
    if (failed)
        return false;
    *key = lh_req_param(req, "key");
    if (lh_key_check(*key, &err) != 0 || check_system_write(req, *key, &err) != 0) {
        lh_resp_error(resp, &err);
        return false;
    }
    return true;
}

int
lh_h_object_put(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *bucket, *key;
    if (!writable_target(req, resp, &bucket, &key))
        return 0;
    const char *inm = lh_req_header(req, "If-None-Match");
    int flags = 0;
    if (inm) {
        if (strcmp(inm, "*") != 0) {
            lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                       "only 'If-None-Match: *' (create-only) is supported");
            return lh_resp_error(resp, &err);
        }
        flags |= LH_PUT_CREATE_ONLY;
    }
    lh_source src = {.fd = req->body_fd, .len = req->body_fd_len};
    lh_obj_info info;
    if (lh_buckets_put_object(req->srv->buckets, bucket, key, &src, flags, &info, req->request_id,
                              &err) != 0)
        return lh_resp_error(resp, &err);
    if (info.etag[0])
        lh_resp_header(resp, "ETag", lh_arena_printf(req->arena, "\"%s\"", info.etag));
    return lh_resp_json(resp, 201,
                        json_pack("{s:s, s:s, s:I, s:s}", "bucket", bucket, "key", key, "size",
                                  (json_int_t)req->body_fd_len, "etag", info.etag));
}

int
lh_h_object_delete(lh_req *req, lh_resp *resp)
{
    lh_err err;
    const char *bucket, *key;
    if (!writable_target(req, resp, &bucket, &key))
        return 0;
    if (lh_buckets_delete_object(req->srv->buckets, bucket, key, req->request_id, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_text(resp, 204, "application/json", "", 0);
}

/* ---- the error journal ------------------------------------------------------------------ */

int
lh_h_storage_errors(lh_req *req, lh_resp *resp)
{
    lh_err err;
    int64_t limit;
    if (lh_req_query_int(req, "limit", 100, 1, 100000, &limit, &err) != 0)
        return lh_resp_error(resp, &err);
    const char *bucket = lh_req_query(req, "bucket");
    if (bucket && check_bucket(req, bucket, &err) != 0)
        return lh_resp_error(resp, &err);
    json_t *events = lh_buckets_errors_json(req->srv->buckets, bucket, (size_t)limit);
    /* a principal limited to some buckets sees only their errors */
    json_t *mine = filter_buckets(req, events, "bucket");
    json_decref(events);
    json_t *body = json_object();
    json_object_set_new(body, "errors", mine);
    json_object_set_new(body, "journal", lh_buckets_health_json(req->srv->buckets));
    return lh_resp_json(resp, 200, body);
}

int
lh_h_storage_errors_flush(lh_req *req, lh_resp *resp)
{
    lh_err err;
    if (lh_buckets_errors_flush(req->srv->buckets, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, lh_buckets_health_json(req->srv->buckets));
}

int
lh_h_storage_errors_compact(lh_req *req, lh_resp *resp)
{
    lh_err err;
    int merged = 0;
    if (lh_buckets_errors_compact(req->srv->buckets, &merged, &err) != 0)
        return lh_resp_error(resp, &err);
    return lh_resp_json(resp, 200, json_pack("{s:i}", "merged_batches", merged));
}
