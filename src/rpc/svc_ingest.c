/*
 * svc_ingest.c — lakehouse.v1.Ingest: UploadFile (client streaming) and FromPostgres
 * (a job's progress, streamed) on the ingest module's tasks (src/ingest/ingest_as.c), as
 * POST /ingest/file and POST /ingest/db call them.
 *
 * An upload's header is checked before its bytes are read (lh_ingest_file_check), so a bad
 * request is refused before anything is spooled. The bytes go to a file in the work
 * directory as they arrive, at most [storage] max_object_bytes; the task takes the file
 * once the client half-closes, and removes it when it ends. A call that breaks before
 * then removes it here.
 */
#include "rpc/rpc_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lakehouse/v1/ingest.pb-c.h"

static lh_ingest_deps
deps_of(const lh_gcall *c)
{
    return (lh_ingest_deps){.catalog = c->deps->catalog,
                            .engine = c->deps->internal_engine,
                            .buckets = c->deps->buckets,
                            .jobs = c->deps->jobs,
                            .secrets = c->deps->secrets};
}

static void
set_str(json_t *o, const char *key, const char *v)
{
    if (v && v[0])
        json_object_set_new(o, key, lh_json_text(v));
}

static void
set_list(json_t *o, const char *key, char **v, size_t n)
{
    if (n == 0)
        return;
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, lh_json_text(v[i]));
    json_object_set_new(o, key, a);
}

/* A new dataset's metadata into o, as the ingest module takes it (unset fields left out). */
static void
set_metadata(json_t *o, const Lakehouse__V1__DatasetMetadata *m)
{
    if (m == NULL)
        return;
    set_str(o, "owner", m->owner);
    set_str(o, "sensitivity", m->sensitivity);
    set_str(o, "description", m->description);
    set_list(o, "tags", m->tags, m->n_tags);
    if (m->freshness_sla_s)
        json_object_set_new(o, "freshness_sla_s", json_integer(m->freshness_sla_s));
    set_str(o, "source_system", m->source_system);
    set_list(o, "primary_key", m->primary_key, m->n_primary_key);
}

/* ---- UploadFile ----------------------------------------------------------------------- */

static int
answer_upload(lh_gstream *s, const json_t *result, const char *job_id, lh_err *err)
{
    Lakehouse__V1__IngestResponse res = LAKEHOUSE__V1__INGEST_RESPONSE__INIT;
    res.job_id = (char *)(job_id ? job_id : "");
    if (result)
        res.result = lh_grpc__struct(result);
    int rc = lh_grpc__send(s, &res.base, err);
    if (res.result)
        protobuf_c_message_free_unpacked(&res.result->base, NULL);
    return rc;
}

/* The next message of an upload, which must be a `want` part (*req new), or *req NULL at
 * the end of the messages. */
static int
next_part(lh_gstream *s, Lakehouse__V1__UploadRequest__PartCase want,
          Lakehouse__V1__UploadRequest **req, lh_err *err)
{
    uint8_t *msg;
    size_t len;
    *req = NULL;
    int rc = lh_grpc__recv(s, &msg, &len, err);
    if (rc != 0 || msg == NULL)
        return rc;
    Lakehouse__V1__UploadRequest *r = lakehouse__v1__upload_request__unpack(NULL, len, msg);
    free(msg);
    if (r == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.UploadRequest");
    if (r->part_case != want) {
        lakehouse__v1__upload_request__free_unpacked(r, NULL);
        return lh_err_set(err, LH_EINVAL, 400, "invalid_argument", "%s",
                          want == LAKEHOUSE__V1__UPLOAD_REQUEST__PART_HEADER
                              ? "the first message must be the header (dataset, format, ...)"
                              : "only the first message may be the header; the rest carry "
                                "chunks");
    }
    *req = r;
    return 0;
}

/* The upload's bytes, each chunk message after the header, into fd; *bytes the total. */
static int
spool(lh_gcall *c, lh_gstream *s, int fd, int64_t *bytes, lh_err *err)
{
    int64_t limit = lh_config_int(c->config, "storage.max_object_bytes");
    *bytes = 0;
    for (;;) {
        Lakehouse__V1__UploadRequest *req;
        int rc = next_part(s, LAKEHOUSE__V1__UPLOAD_REQUEST__PART_CHUNK, &req, err);
        if (rc != 0 || req == NULL)
            return rc;
        size_t len = req->chunk.len;
        if (*bytes + (int64_t)len > limit) {
            lh_err_set(err, LH_ETOOBIG, 413, "payload_too_large",
                       "the file is over the limit of %lld bytes", (long long)limit);
            lh_err_hint(err, "send less, or raise [storage] max_object_bytes");
            rc = LH_ETOOBIG;
        } else if (lh_write_all(fd, req->chunk.data, len) != 0) {
            rc = lh_err_set(err, LH_EIO, 507, "insufficient_storage",
                            "the upload could not be spooled: %s", strerror(errno));
        }
        *bytes += (int64_t)len;
        lakehouse__v1__upload_request__free_unpacked(req, NULL);
        if (rc != 0)
            return rc;
    }
}

/* The header (the first message) as the module's params (new), and its async. */
static int
read_header(lh_gstream *s, json_t **params, bool *async, lh_err *err)
{
    Lakehouse__V1__UploadRequest *req;
    int rc = next_part(s, LAKEHOUSE__V1__UPLOAD_REQUEST__PART_HEADER, &req, err);
    if (rc != 0)
        return rc;
    if (req == NULL)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_argument",
                          "the call sent no message: the first must be the header");
    const Lakehouse__V1__UploadHeader *h = req->header;
    json_t *p = json_object();
    set_str(p, "dataset", h->dataset);
    set_str(p, "format", h->format);
    set_str(p, "mode", h->mode);
    set_str(p, "bucket", h->bucket);
    set_str(p, "on_bad_rows", h->on_bad_rows);
    set_str(p, "source_object", h->source_object);
    set_metadata(p, h->metadata);
    *async = h->async;
    lakehouse__v1__upload_request__free_unpacked(req, NULL);
    *params = p;
    return 0;
}

static int
upload_file(lh_gcall *c, lh_gstream *s, lh_err *err)
{
    json_t *params = NULL;
    bool async = false;
    int rc = read_header(s, &params, &async, err);
    if (rc != 0)
        return rc;
    lh_ingest_deps d = deps_of(c);
    if ((rc = lh_ingest_file_check(&d, c->principal, params, err)) != 0) {
        json_decref(params);
        return rc;
    }
    char *path = lh_sprintf("%s/upload-XXXXXX", c->deps->work_dir ? c->deps->work_dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        rc =
            lh_err_set(err, LH_EIO, 500, "internal", "no room for the upload: %s", strerror(errno));
        free(path);
        json_decref(params);
        return rc;
    }
    int64_t bytes = 0;
    rc = spool(c, s, fd, &bytes, err);
    close(fd);
    lh_ingest_task *t = NULL;
    if (rc == 0)
        rc = lh_ingest_file_prepare(&d, c->principal, params, &path, bytes, &t, err);
    json_decref(params);
    if (path) { /* not taken: the call broke or was refused */
        unlink(path);
        free(path);
    }
    if (rc != 0)
        return rc;
    if (async) {
        char id[LH_JOB_ID_MAX];
        if ((rc = lh_ingest_task_submit(t, id, err)) != 0)
            return rc;
        return answer_upload(s, NULL, id, err);
    }
    json_t *result = NULL;
    rc = lh_ingest_task_run(t, NULL, &result, err);
    lh_ingest_task_free(t);
    if (rc == 0)
        rc = answer_upload(s, result, NULL, err);
    json_decref(result);
    return rc;
}

/* ---- FromPostgres --------------------------------------------------------------------- */

/* The request as POST /ingest/db's body (*body new), or 400. */
static int
body_of(const Lakehouse__V1__PostgresRequest *req, json_t **body, lh_err *err)
{
    *body = NULL;
    if (req->metadata && req->metadata->source_system[0])
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'metadata.source_system' is the PostgreSQL server for this ingest: "
                          "leave it unset");
    /* the DSN goes in as it is: a copy made to mend bad UTF-8 would not be wiped */
    json_t *dsn = req->dsn[0] ? json_string(req->dsn) : NULL;
    if (req->dsn[0] && dsn == NULL)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_dsn", "the DSN is not valid UTF-8");
    json_t *b = json_object();
    if (dsn)
        json_object_set_new(b, "dsn", dsn);
    set_str(b, "secret_ref", req->secret_ref);
    set_str(b, "table", req->table);
    set_str(b, "query", req->query);
    set_str(b, "dataset", req->dataset);
    set_str(b, "mode", req->mode);
    set_str(b, "bucket", req->bucket);
    set_str(b, "method", req->method);
    set_str(b, "since_column", req->since_column);
    if (req->batch_rows)
        json_object_set_new(b, "batch_rows", json_integer(req->batch_rows));
    if (req->parallel)
        json_object_set_new(b, "parallel", json_integer(req->parallel));
    set_metadata(b, req->metadata);
    *body = b;
    return 0;
}

static int
from_postgres(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__PostgresRequest *req = lakehouse__v1__postgres_request__unpack(NULL, in_len, in);
    lh_wipe((void *)in, in_len); /* the packed copy holds the DSN too; in is begin_call's */
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.PostgresRequest");
    json_t *body = NULL;
    int rc = body_of(req, &body, err);
    lh_wipe(req->dsn, strlen(req->dsn));
    lakehouse__v1__postgres_request__free_unpacked(req, NULL);
    lh_ingest_task *t = NULL;
    if (rc == 0) {
        lh_ingest_deps d = deps_of(c);
        rc = lh_ingest_db_prepare(&d, c->principal, c->config, body, &t, err);
    }
    lh_json_wipe(body);
    json_decref(body);
    if (rc != 0)
        return rc;
    char id[LH_JOB_ID_MAX];
    if ((rc = lh_ingest_task_submit(t, id, err)) != 0)
        return rc;
    return lh_grpc__watch_job(c, id, s, err);
}

const lh_gmethod lh_grpc__ingest[] = {
    {"/lakehouse.v1.Ingest/UploadFile", LH_ALLOW_WRITE, NULL, NULL, upload_file, 0, NULL},
    {"/lakehouse.v1.Ingest/FromPostgres", LH_ALLOW_WRITE, NULL, from_postgres, NULL, LH_GSECRET,
     NULL},
};
const size_t lh_grpc__n_ingest = sizeof lh_grpc__ingest / sizeof lh_grpc__ingest[0];
