/*
 * svc_catalog.c — lakehouse.v1.Catalog: the catalog module's answers for the caller
 * (lh_catalog_list_visible, lh_catalog_get_visible, lh_catalog_versions_visible,
 * lh_catalog_patch), as typed messages.
 */
#include "rpc/rpc_int.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/catalog.pb-c.h"

static const char *
str_of(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int64_t
int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static char **
strings_of(const json_t *arr, size_t *n)
{
    *n = json_is_array(arr) ? json_array_size(arr) : 0;
    if (*n == 0)
        return NULL;
    char **out = lh_malloc(*n * sizeof *out);
    for (size_t i = 0; i < *n; i++)
        out[i] = lh_grpc__str(json_string_value(json_array_get(arr, i)));
    return out;
}

/* A manifest or a listing's summary as a Dataset (malloc'd all through). */
static Lakehouse__V1__Dataset *
dataset_of(const json_t *m)
{
    Lakehouse__V1__Dataset *d = lh_malloc(sizeof *d);
    lakehouse__v1__dataset__init(d);
    const json_t *meta = json_object_get(m, "metadata");
    d->name = lh_grpc__str(str_of(m, "name"));
    d->bucket = lh_grpc__str(str_of(m, "bucket"));
    d->version = int_of(m, "version");
    d->state = lh_grpc__str(str_of(m, "state"));
    d->row_count = int_of(m, "row_count");
    d->bytes = int_of(m, "bytes");
    d->owner = lh_grpc__str(str_of(meta, "owner"));
    d->sensitivity = lh_grpc__str(str_of(meta, "sensitivity"));
    d->description = lh_grpc__str(str_of(meta, "description"));
    d->tags = strings_of(json_object_get(meta, "tags"), &d->n_tags);
    d->freshness_sla_s = int_of(meta, "freshness_sla_s");
    d->primary_key = strings_of(json_object_get(meta, "primary_key"), &d->n_primary_key);
    d->created_at = lh_grpc__str(str_of(m, "created_at"));
    d->created_by = lh_grpc__str(str_of(m, "created_by"));
    d->change = lh_grpc__str(str_of(m, "change"));
    const json_t *cols = json_object_get(m, "columns");
    if (json_is_array(cols)) {
        d->column_count = (int64_t)json_array_size(cols);
        d->n_columns = json_array_size(cols);
        d->columns = d->n_columns ? lh_malloc(d->n_columns * sizeof *d->columns) : NULL;
        for (size_t i = 0; i < d->n_columns; i++) {
            const json_t *c = json_array_get(cols, i);
            Lakehouse__V1__Column *col = lh_malloc(sizeof *col);
            lakehouse__v1__column__init(col);
            col->name = lh_grpc__str(str_of(c, "name"));
            col->type = lh_grpc__str(str_of(c, "type"));
            col->sensitivity = lh_grpc__str(str_of(c, "sensitivity"));
            col->mask = lh_grpc__str(str_of(c, "mask"));
            d->columns[i] = col;
        }
    } else {
        d->column_count = int_of(m, "columns");
    }
    const json_t *f = json_object_get(m, "freshness");
    if (json_is_object(f)) {
        d->freshness = lh_malloc(sizeof *d->freshness);
        lakehouse__v1__freshness__init(d->freshness);
        d->freshness->status = lh_grpc__str(str_of(f, "status"));
        d->freshness->sla_s = int_of(f, "sla_s");
        d->freshness->age_s = int_of(f, "age_s");
        d->freshness->last_ingested_at = lh_grpc__str(str_of(f, "last_ingested_at"));
    }
    const json_t *lineage = json_object_get(meta, "lineage");
    if (json_is_object(lineage))
        d->lineage = lh_grpc__struct(lineage);
    return d;
}

static int
pack_free(ProtobufCMessage *m, uint8_t **out, size_t *len)
{
    lh_grpc__pack(m, out, len);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

static int
list_datasets(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
              lh_err *err)
{
    Lakehouse__V1__ListDatasetsRequest *req =
        lakehouse__v1__list_datasets_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ListDatasetsRequest");
    lh_catalog_filter f = {
        .tag = req->tag[0] ? req->tag : NULL,
        .owner = req->owner[0] ? req->owner : NULL,
        .sensitivity = req->sensitivity[0] ? req->sensitivity : NULL,
        .text = req->text[0] ? req->text : NULL,
        .include_deleted = req->include_deleted,
    };
    json_t *all = lh_catalog_list_visible(c->deps->catalog, c->principal, &f);
    lakehouse__v1__list_datasets_request__free_unpacked(req, NULL);
    Lakehouse__V1__ListDatasetsResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__list_datasets_response__init(res);
    res->n_datasets = json_array_size(all);
    res->datasets = res->n_datasets ? lh_malloc(res->n_datasets * sizeof *res->datasets) : NULL;
    for (size_t i = 0; i < res->n_datasets; i++)
        res->datasets[i] = dataset_of(json_array_get(all, i));
    json_decref(all);
    return pack_free(&res->base, out, out_len);
}

static int
get_dataset(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
            lh_err *err)
{
    Lakehouse__V1__GetDatasetRequest *req =
        lakehouse__v1__get_dataset_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.GetDatasetRequest");
    json_t *m = NULL;
    int rc = lh_catalog_get_visible(c->deps->catalog, c->principal, req->name, &m, err);
    lakehouse__v1__get_dataset_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    lh_catalog_describe_columns(m);
    Lakehouse__V1__Dataset *d = dataset_of(m);
    json_decref(m);
    return pack_free(&d->base, out, out_len);
}

static int
list_versions(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
              lh_err *err)
{
    Lakehouse__V1__ListVersionsRequest *req =
        lakehouse__v1__list_versions_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ListVersionsRequest");
    json_t *page = NULL;
    int rc = lh_catalog_versions_visible(c->deps->catalog, c->principal, req->name,
                                         req->from_version ? req->from_version : 1,
                                         req->limit ? req->limit : 100, &page, err);
    lakehouse__v1__list_versions_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    Lakehouse__V1__ListVersionsResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__list_versions_response__init(res);
    res->dataset = lh_grpc__str(str_of(page, "dataset"));
    res->next_from = int_of(page, "next_from");
    const json_t *vs = json_object_get(page, "versions");
    res->n_versions = json_array_size(vs);
    res->versions = res->n_versions ? lh_malloc(res->n_versions * sizeof *res->versions) : NULL;
    for (size_t i = 0; i < res->n_versions; i++) {
        const json_t *v = json_array_get(vs, i);
        Lakehouse__V1__Version *x = lh_malloc(sizeof *x);
        lakehouse__v1__version__init(x);
        x->version = int_of(v, "version");
        x->state = lh_grpc__str(str_of(v, "state"));
        x->change = lh_grpc__str(str_of(v, "change"));
        x->created_at = lh_grpc__str(str_of(v, "created_at"));
        x->created_by = lh_grpc__str(str_of(v, "created_by"));
        x->row_count = int_of(v, "row_count");
        x->bytes = int_of(v, "bytes");
        x->files = int_of(v, "files");
        res->versions[i] = x;
    }
    json_decref(page);
    return pack_free(&res->base, out, out_len);
}

static json_t *
strings_json(char **s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(s[i]));
    return a;
}

/* The PATCH body the named paths make (the catalog validates the values, as for HTTP). */
static int
patch_body(const Lakehouse__V1__PatchDatasetRequest *req, json_t **out, lh_err *err)
{
    json_t *b = json_object();
    for (size_t i = 0; i < req->n_paths; i++) {
        const char *p = req->paths[i];
        json_t *v;
        if (strcmp(p, "owner") == 0)
            v = json_string(req->owner);
        else if (strcmp(p, "sensitivity") == 0)
            v = json_string(req->sensitivity);
        else if (strcmp(p, "description") == 0)
            v = json_string(req->description);
        else if (strcmp(p, "tags") == 0)
            v = strings_json(req->tags, req->n_tags);
        else if (strcmp(p, "freshness_sla_s") == 0)
            v = req->freshness_sla_s ? json_integer(req->freshness_sla_s) : json_null();
        else if (strcmp(p, "primary_key") == 0)
            v = strings_json(req->primary_key, req->n_primary_key);
        else {
            json_decref(b);
            lh_err_set(err, LH_EINVAL, 400, "invalid_metadata", "unknown path '%s'", p);
            lh_err_hint(err, "paths are owner, sensitivity, description, tags, freshness_sla_s "
                             "and primary_key");
            return LH_EINVAL;
        }
        json_object_set_new(b, p, v);
    }
    *out = b;
    return 0;
}

static int
patch_dataset(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
              lh_err *err)
{
    Lakehouse__V1__PatchDatasetRequest *req =
        lakehouse__v1__patch_dataset_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.PatchDatasetRequest");
    json_t *m = NULL, *body = NULL, *committed = NULL;
    int rc = lh_catalog_get_visible(c->deps->catalog, c->principal, req->name, &m, err);
    json_decref(m);
    if (rc == 0)
        rc = patch_body(req, &body, err);
    if (rc == 0)
        rc = lh_catalog_patch(c->deps->catalog, req->name, body, c->principal->name, &committed,
                              err);
    json_decref(body);
    lakehouse__v1__patch_dataset_request__free_unpacked(req, NULL);
    if (rc != 0)
        return rc;
    lh_catalog_describe_columns(committed);
    Lakehouse__V1__Dataset *d = dataset_of(committed);
    json_decref(committed);
    return pack_free(&d->base, out, out_len);
}

const lh_gmethod lh_grpc__catalog[] = {
    {"/lakehouse.v1.Catalog/ListDatasets", LH_ALLOW_READ, list_datasets, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Catalog/GetDataset", LH_ALLOW_READ, get_dataset, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Catalog/ListVersions", LH_ALLOW_READ, list_versions, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Catalog/PatchDataset", LH_ALLOW_WRITE, patch_dataset, NULL, NULL, LH_GOFFLOAD,
     NULL},
};
const size_t lh_grpc__n_catalog = sizeof lh_grpc__catalog / sizeof lh_grpc__catalog[0];
