/*
 * index_ops.c — the changes of a vector index a principal asks for, from any door: a
 * new index (over a dataset it may see; "model": "profile" is its profile's model, fixed
 * in the index from then on), a refresh, a promotion, a rollback — each of an index whose
 * dataset it may see (else 404 as for none). A build is begun here and run by the door
 * (as a job with lh_vectors_submit, or in the request).
 */
#include "agent/profiles.h"

#include <string.h>

int
lh_index_visible(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                 lh_err *err)
{
    char dataset[LH_NAME_MAX];
    /* an index outliving its dataset hides nothing: it is still the caller's to see */
    if (name && lh_vectors_dataset_of(v, name, dataset, sizeof dataset) &&
        !lh_catalog_hides(c, who, dataset))
        return 0;
    return lh_vectors_index_not_found(err, name ? name : "");
}

/* A build's dataset must still be visible when it starts (a refresh reads it). */
static int
build_visible(lh_catalog *c, const lh_principal *who, lh_vbuild **b, lh_err *err)
{
    if (!lh_catalog_hides(c, who, lh_vbuild_dataset(*b)))
        return 0;
    int rc = lh_catalog_not_found(err, lh_vbuild_dataset(*b));
    lh_vbuild_free(*b);
    *b = NULL;
    return rc;
}

int
lh_index_create_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, json_t *body,
                   lh_vbuild **b, lh_err *err)
{
    *b = NULL;
    /* the dataset must be visible before anything is said about it */
    const char *dataset = json_string_value(json_object_get(body, "dataset"));
    if (dataset && lh_name_valid(dataset) && lh_catalog_hides(c, who, dataset))
        return lh_catalog_not_found(err, dataset);
    const char *model = json_string_value(json_object_get(body, "model")), *resolved;
    int rc;
    if (model && (rc = lh_profile_model(who, model, &resolved, err)) != 0)
        return rc;
    if (model && resolved != model)
        json_object_set_new(body, "model", json_string(resolved));
    if ((rc = lh_vectors_create_begin(v, body, who->name, b, err)) != 0)
        return rc;
    return build_visible(c, who, b, err);
}

int
lh_index_refresh_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                    lh_vbuild **b, lh_err *err)
{
    *b = NULL;
    int rc = lh_index_visible(v, c, who, name, err); /* before the index is reserved */
    if (rc == 0)
        rc = lh_vectors_refresh_begin(v, name, who->name, b, err);
    return rc ? rc : build_visible(c, who, b, err);
}

int
lh_index_promote_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                    const json_t *body, lh_vbuild **b, lh_err *err)
{
    *b = NULL;
    int rc = lh_index_visible(v, c, who, name, err);
    if (rc == 0)
        rc = lh_vectors_promote_begin(v, name, body, who->name, b, err);
    return rc ? rc : build_visible(c, who, b, err);
}

int
lh_index_rollback_as(lh_vectors *v, lh_catalog *c, const lh_principal *who, const char *name,
                     json_t **out, lh_err *err)
{
    *out = NULL;
    int rc = lh_index_visible(v, c, who, name, err);
    return rc ? rc : lh_vectors_rollback(v, name, who->name, out, err);
}
