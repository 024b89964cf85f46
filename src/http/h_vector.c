/*
 * h_vector.c — vector endpoints: POST /embed (texts to vectors, for agents and tools).
 */
#include "http/http_int.h"
#include "vector/vector.h"

#include <string.h>

#define EMBED_MAX_TEXTS 1024

/* ollama:<model> / openai:<model> through the configured provider: *vectors and *answer
 * (the answer's other members) are new. */
static int
embed_remote(lh_req *req, const char *name, const json_t *texts, json_t **vectors,
             json_t **answer, lh_err *err)
{
    const lh_config *cfg = req->srv->config;
    bool openai = strncmp(name, "openai:", 7) == 0;
    lh_embed_provider p = {.kind = openai ? "openai" : "ollama",
                           .url = lh_config_str(cfg, openai ? "vector.openai_url" : "vector.ollama_url"),
                           .model = name + 7,
                           .timeout_ms = (int)lh_config_int(cfg, "vector.embed_timeout_ms"),
                           .batch = (size_t)lh_config_int(cfg, "vector.embed_batch")};
    if (!p.url || !*p.url) {
        lh_err_set(err, LH_EINVAL, 400, "unknown_model", "no %s provider is configured", p.kind);
        lh_err_hint(err, "set [vector] %s_url", p.kind);
        return LH_EINVAL;
    }
    char *key = NULL;
    const char *ref = lh_config_str(cfg, "vector.openai_secret_ref");
    if (openai && ref && *ref) {
        lh_secrets *secrets = NULL;
        lh_err serr;
        if (lh_secrets_open(lh_config_str(cfg, "secrets.file"), &secrets, &serr) != 0 ||
            lh_secrets_get(secrets, ref, "api_key", &key, &serr) != 0) {
            lh_secrets_free(secrets);
            lh_err_set(err, LH_EINTERNAL, 500, "provider_misconfigured",
                       "the API key of the openai provider could not be read");
            lh_err_detail(err, "%s", serr.message);
            return LH_EINTERNAL;
        }
        lh_secrets_free(secrets);
        p.api_key = key;
    }
    size_t n = json_array_size(texts);
    const char **list = lh_calloc(n, sizeof *list);
    for (size_t i = 0; i < n; i++)
        list[i] = json_string_value(json_array_get(texts, i));
    float *v = NULL;
    uint32_t dim = 0;
    int rc = lh_embed_remote(&p, list, n, &v, &dim, err);
    free(list);
    lh_free_secret(key);
    if (rc != 0)
        return rc;
    *vectors = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array();
        for (uint32_t d = 0; d < dim; d++)
            json_array_append_new(row, json_real(v[i * dim + d]));
        json_array_append_new(*vectors, row);
    }
    free(v);
    /* a remote model's version is the provider's business: not known here */
    *answer = json_pack("{s:s, s:n, s:I}", "model", name, "model_version", "dim",
                        (json_int_t)dim);
    return 0;
}

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
    const char *name = json_string_value(model);
    bool remote = name && (strncmp(name, "ollama:", 7) == 0 || strncmp(name, "openai:", 7) == 0);
    if (rc == 0 && !json_is_string(model))
        rc = lh_err_set(&err, LH_EINVAL, 400, "invalid_parameter",
                        "'model' must be a string, e.g. \"builtin\"");
    else if (rc == 0 && strcmp(name, "builtin") != 0 && (!remote || name[7] == '\0')) {
        rc = lh_err_set(&err, LH_EINVAL, 400, "unknown_model",
                        "model '%s' is not available on this server", name);
        lh_err_hint(&err, "models: builtin, ollama:<model> (e.g. ollama:nomic-embed-text), "
                          "openai:<model>");
    } else if (rc == 0 && (!json_is_array(texts) || json_array_size(texts) == 0 ||
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
    json_t *vectors = NULL, *answer = NULL;
    if (rc == 0 && remote)
        rc = embed_remote(req, name, texts, &vectors, &answer, &err);
    if (rc == 0 && !remote) {
        vectors = json_array();
        float v[LH_EMBED_BUILTIN_DIM];
        json_array_foreach(texts, i, t)
        {
            lh_embed_builtin(json_string_value(t), json_string_length(t), v);
            json_t *row = json_array();
            for (size_t d = 0; d < LH_EMBED_BUILTIN_DIM; d++)
                json_array_append_new(row, json_real(v[d]));
            json_array_append_new(vectors, row);
        }
        answer = json_pack("{s:s, s:s, s:i}", "model", "builtin", "model_version",
                           LH_EMBED_BUILTIN_VERSION, "dim", LH_EMBED_BUILTIN_DIM);
    }
    json_decref(body);
    if (rc != 0)
        return lh_resp_error(resp, &err);
    json_object_set_new(answer, "vectors", vectors);
    return lh_resp_json(resp, 200, answer);
}
