/*
 * h_vector.c — vector endpoints: POST /embed (texts to vectors, for agents and tools).
 */
#include "http/http_int.h"
#include "vector/vector.h"

#include <string.h>

#define EMBED_MAX_TEXTS 1024

int
lh_h_embed(lh_req *req, lh_resp *resp)
{
    lh_err err;
    json_t *body = NULL;
    if (lh_req_json(req, false, &body, &err) != 0)
        return lh_resp_error(resp, &err);
    static const char *const fields[] = {"model", "texts", NULL};
    int rc = lh_req_check_fields(body, fields, "POST /embed takes model and texts", &err);
    const json_t *model = json_object_get(body, "model"), *texts = json_object_get(body, "texts");
    if (rc == 0 && !json_is_string(model))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'model' must be a string, e.g. \"builtin\"");
    else if (rc == 0 && strcmp(json_string_value(model), "builtin") != 0) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "unknown_model",
                        "model '%s' is not available on this server", json_string_value(model));
        lh_err_hint(&err, "available: builtin");
    }
    else if (rc == 0 && (!json_is_array(texts) || json_array_size(texts) == 0 ||
                         json_array_size(texts) > EMBED_MAX_TEXTS))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'texts' must be an array of 1 to %d strings", EMBED_MAX_TEXTS);
    size_t i;
    json_t *t;
    json_array_foreach(texts, i, t)
    {
        if (rc == 0 && !json_is_string(t))
            rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                            "texts[%zu] must be a string", i);
    }
    if (rc != 0) {
        json_decref(body);
        return lh_resp_error(resp, &err);
    }
    json_t *vectors = json_array();
    float v[LH_EMBED_BUILTIN_DIM];
    json_array_foreach(texts, i, t)
    {
        lh_embed_builtin(json_string_value(t), json_string_length(t), v);
        json_t *row = json_array();
        for (size_t d = 0; d < LH_EMBED_BUILTIN_DIM; d++)
            json_array_append_new(row, json_real(v[d]));
        json_array_append_new(vectors, row);
    }
    json_decref(body);
    return lh_resp_json(resp, 200,
                        json_pack("{s:s, s:s, s:i, s:o}", "model", "builtin", "model_version",
                                  LH_EMBED_BUILTIN_VERSION, "dim", LH_EMBED_BUILTIN_DIM,
                                  "vectors", vectors));
}
