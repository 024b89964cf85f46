/*
 * svc_journal.c — lakehouse.v1.Journal: the catalog's journal as the caller sees it
 * (lh_catalog_events_visible, _history_visible, _changes_visible). Events stream a page of
 * the journal at a time (memory: one page), and stop when the client goes away.
 */
#include "rpc/rpc_int.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/journal.pb-c.h"

#define PAGE 1000

static char *
text_of(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return lh_strdup(json_string_value(v));
    if (v == NULL || json_is_null(v))
        return lh_strdup("");
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *out = lh_strdup(t ? t : "");
    free(t);
    return out;
}

static const char *
opt(const char *s)
{
    return s && s[0] ? s : NULL;
}

static int
events(lh_gcall *c, const uint8_t *in, size_t in_len, lh_gstream *s, lh_err *err)
{
    Lakehouse__V1__EventsRequest *req = lakehouse__v1__events_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.EventsRequest");
    int64_t want = req->limit > 0 ? req->limit : INT64_MAX, sent = 0;
    int rc = 0;
    if (req->limit < 0)
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                        "'limit' must be 0 (every event) or more");
    for (int64_t offset = 0; rc == 0 && sent < want;) {
        lh_events_filter f = {.dataset = opt(req->dataset),
                              .key = opt(req->key),
                              .field = opt(req->field),
                              .actor = opt(req->actor),
                              .workspace_id = opt(req->workspace_id),
                              .since = opt(req->since),
                              .until = opt(req->until),
                              .limit = want - sent < PAGE ? want - sent : PAGE,
                              .offset = offset};
        json_t *page = NULL;
        rc = lh_catalog_events_visible(c->deps->catalog, c->principal, &f, &page, err);
        if (rc != 0)
            break;
        const json_t *rows = json_object_get(page, "events");
        for (size_t i = 0; rc == 0 && i < json_array_size(rows); i++) {
            const json_t *e = json_array_get(rows, i);
            Lakehouse__V1__Event ev = LAKEHOUSE__V1__EVENT__INIT;
            char *texts[10];
            static const char *const keys[10] = {"dataset",   "key",         "field", "old_value",
                                                 "new_value", "op",          "actor", "ts",
                                                 "source",    "workspace_id"};
            for (int k = 0; k < 10; k++)
                texts[k] = text_of(e, keys[k]);
            ev.dataset = texts[0];
            ev.key = texts[1];
            ev.field = texts[2];
            ev.old_value = texts[3];
            ev.new_value = texts[4];
            ev.op = texts[5];
            ev.actor = texts[6];
            ev.ts = texts[7];
            ev.source = texts[8];
            ev.workspace_id = texts[9];
            ev.version = json_integer_value(json_object_get(e, "version"));
            ev.seq = json_integer_value(json_object_get(e, "seq"));
            rc = lh_grpc__send(s, &ev.base, err);
            for (int k = 0; k < 10; k++)
                free(texts[k]);
            sent++;
        }
        bool more = json_is_string(json_object_get(page, "next_cursor"));
        offset += (int64_t)json_array_size(rows);
        json_decref(page);
        if (!more)
            break;
    }
    lakehouse__v1__events_request__free_unpacked(req, NULL);
    return rc;
}

static int
history(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    Lakehouse__V1__HistoryRequest *req = lakehouse__v1__history_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.HistoryRequest");
    json_t *h = NULL;
    int rc =
        lh_catalog_history_visible(c->deps->catalog, c->principal, req->dataset, req->key, &h, err);
    lakehouse__v1__history_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__HistoryResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__history_response__init(res);
    res->dataset = lh_grpc__str(json_string_value(json_object_get(h, "dataset")));
    res->version = json_integer_value(json_object_get(h, "version"));
    if (json_is_object(json_object_get(h, "key")))
        res->key = lh_grpc__struct(json_object_get(h, "key"));
    if (json_is_object(json_object_get(h, "current")))
        res->current = lh_grpc__struct(json_object_get(h, "current"));
    const json_t *items = json_object_get(h, "history");
    res->n_history = json_array_size(items);
    res->history = res->n_history ? lh_malloc(res->n_history * sizeof *res->history) : NULL;
    for (size_t i = 0; i < res->n_history; i++)
        res->history[i] = lh_grpc__struct(json_array_get(items, i));
    json_decref(h);
    lh_grpc__pack(&res->base, out, out_len);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    return 0;
}

static Google__Protobuf__Struct **
structs_of(const json_t *arr, size_t *n)
{
    *n = json_array_size(arr);
    Google__Protobuf__Struct **out = *n ? lh_malloc(*n * sizeof *out) : NULL;
    for (size_t i = 0; i < *n; i++)
        out[i] = lh_grpc__struct(json_array_get(arr, i));
    return out;
}

static int
changes(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len, lh_err *err)
{
    Lakehouse__V1__ChangesRequest *req = lakehouse__v1__changes_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ChangesRequest");
    json_t *ch = NULL;
    int rc =
        lh_catalog_changes_visible(c->deps->catalog, c->principal, req->dataset, req->from_version,
                                   req->to_version, req->limit ? req->limit : 10000, &ch, err);
    lakehouse__v1__changes_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__ChangesResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__changes_response__init(res);
    res->dataset = lh_grpc__str(json_string_value(json_object_get(ch, "dataset")));
    res->from_version = json_integer_value(json_object_get(ch, "from_version"));
    res->to_version = json_integer_value(json_object_get(ch, "to_version"));
    res->truncated = json_is_true(json_object_get(ch, "truncated"));
    res->inserted = structs_of(json_object_get(ch, "inserted"), &res->n_inserted);
    res->deleted = structs_of(json_object_get(ch, "deleted"), &res->n_deleted);
    const json_t *updated = json_object_get(ch, "updated");
    res->n_updated = json_array_size(updated);
    res->updated = res->n_updated ? lh_malloc(res->n_updated * sizeof *res->updated) : NULL;
    for (size_t i = 0; i < res->n_updated; i++) {
        const json_t *u = json_array_get(updated, i);
        Lakehouse__V1__RowChange *x = lh_malloc(sizeof *x);
        lakehouse__v1__row_change__init(x);
        x->before = lh_grpc__struct(json_object_get(u, "before"));
        x->after = lh_grpc__struct(json_object_get(u, "after"));
        res->updated[i] = x;
    }
    json_decref(ch);
    lh_grpc__pack(&res->base, out, out_len);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    return 0;
}

const lh_gmethod lh_grpc__journal[] = {
    {"/lakehouse.v1.Journal/Events", LH_ALLOW_READ, NULL, events, NULL, 0, NULL},
    {"/lakehouse.v1.Journal/History", LH_ALLOW_READ, history, NULL, NULL, LH_GOFFLOAD, NULL},
    {"/lakehouse.v1.Journal/Changes", LH_ALLOW_READ, changes, NULL, NULL, LH_GOFFLOAD, NULL},
};
const size_t lh_grpc__n_journal = sizeof lh_grpc__journal / sizeof lh_grpc__journal[0];
