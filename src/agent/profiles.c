/*
 * profiles.c — what a principal's [[profile]] means for searches, embeddings and listings
 * (see profiles.h). The profile is immutable and lives as long as the principal set the
 * caller holds, so nothing here locks or copies it.
 */
#include "agent/profiles.h"

#include <stdio.h>
#include <string.h>

static const char *
pair_value(const lh_profile_pair *pairs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(pairs[i].key, key) == 0)
            return pairs[i].value;
    return NULL;
}

void
lh_profile_index(const lh_principal *who, const char *name, char out[LH_NAME_MAX],
                 bool *via_profile)
{
    const lh_profile_cfg *p = who ? who->profile : NULL;
    const char *bound = p ? pair_value(p->bind, p->n_bind, name) : NULL;
    snprintf(out, LH_NAME_MAX, "%s", bound ? bound : name);
    *via_profile = bound != NULL;
}

int
lh_profile_tool_index(lh_vectors *v, const lh_principal *who, const char *index,
                      const char *dataset, char out[LH_NAME_MAX], lh_err *err)
{
    const lh_profile_cfg *p = who ? who->profile : NULL;
    const char *bound = p ? pair_value(p->bind, p->n_bind, dataset) : NULL;
    if (bound == NULL && p)
        bound = pair_value(p->bind, p->n_bind, index);
    if (out != index) /* out may be index itself */
        snprintf(out, LH_NAME_MAX, "%s", index);
    if (bound == NULL || strcmp(bound, index) == 0)
        return 0;
    char over[LH_NAME_MAX];
    if (!lh_vectors_dataset_of(v, bound, over, sizeof over) || strcmp(over, dataset) != 0) {
        lh_err_set(err, LH_EEXIST, 409, "profile_binding_mismatch",
                   "profile '%s' binds index '%s', which is not an index over dataset '%s'",
                   p->name, bound, dataset);
        lh_err_hint(err, "the profile's bind list must name an index over the tool's dataset");
        return LH_EEXIST;
    }
    snprintf(out, LH_NAME_MAX, "%s", bound);
    return 0;
}

int
lh_profile_model(const lh_principal *who, const char *name, const char **model, lh_err *err)
{
    if (strcmp(name, "profile") != 0 && strncmp(name, "profile:", 8) != 0) {
        *model = name;
        return 0;
    }
    const lh_profile_cfg *p = who ? who->profile : NULL;
    const char *purpose = name[7] == ':' ? name + 8 : NULL;
    const char *found = NULL;
    if (p && purpose)
        found = pair_value(p->embed_models, p->n_embed_models, purpose);
    if (p && !found)
        found = p->embed_model;
    if (found == NULL) {
        if (p == NULL)
            lh_err_set(err, LH_EINVAL, 400, "no_profile_model",
                       "model '%s' means the caller's profile's model, and principal '%s' has "
                       "no profile",
                       name, who ? who->name : "?");
        else
            lh_err_set(err, LH_EINVAL, 400, "no_profile_model",
                       "profile '%s' names no embedding model for '%s'", p->name, name);
        lh_err_hint(err, "name a model (\"builtin\", \"ollama:<model>\", \"openai:<model>\"), "
                         "or set embed_model in the principal's [[profile]]");
        return LH_EINVAL;
    }
    *model = found;
    return 0;
}

int64_t
lh_profile_max_k(const lh_principal *who, int64_t max_k_default)
{
    const lh_profile_cfg *p = who ? who->profile : NULL;
    return p && p->max_k > 0 ? p->max_k : max_k_default;
}

void
lh_profile_bucket(const lh_principal *who, char *out, size_t size)
{
    const lh_profile_cfg *p = who->profile;
    const char *pattern = p && p->bucket ? p->bucket : "profile:{user}";
    const char *at = strstr(pattern, "{user}");
    if (at == NULL)
        snprintf(out, size, "%s", pattern);
    else
        snprintf(out, size, "%.*s%s%s", (int)(at - pattern), pattern, who->name, at + 6);
}

static json_t *
pairs_json(const lh_profile_pair *pairs, size_t n)
{
    json_t *out = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(out, pairs[i].key, json_string(pairs[i].value));
    return out;
}

json_t *
lh_profile_json(const lh_profile_cfg *p, bool admin)
{
    json_t *out = json_object();
    json_object_set_new(out, "name", json_string(p->name));
    if (p->description)
        json_object_set_new(out, "description", json_string(p->description));
    json_t *embed = pairs_json(p->embed_models, p->n_embed_models);
    if (p->embed_model)
        json_object_set_new(embed, "default", json_string(p->embed_model));
    json_object_set_new(out, "embedding_models", embed);
    json_object_set_new(out, "bindings", pairs_json(p->bind, p->n_bind));
    json_object_set_new(out, "bucket", json_string(p->bucket ? p->bucket : "profile:{user}"));
    if (p->generate_url) {
        json_t *gen =
            json_pack("{s:s, s:s, s:s, s:b}", "api", p->generate_api, "url", p->generate_url,
                      "model", p->generate_model, "has_api_key", p->generate_secret_ref != NULL);
        /* the name of the secrets-file table is not the key, but only admins need it */
        if (admin && p->generate_secret_ref)
            json_object_set_new(gen, "secret_ref", json_string(p->generate_secret_ref));
        json_object_set_new(out, "generation", gen);
    } else {
        json_object_set_new(out, "generation", json_null());
    }
    json_t *limits = json_object();
    if (p->max_k > 0)
        json_object_set_new(limits, "max_k", json_integer(p->max_k));
    if (p->tool_calls_per_minute > 0)
        json_object_set_new(limits, "tool_calls_per_minute",
                            json_integer(p->tool_calls_per_minute));
    json_object_set_new(out, "limits", limits);
    return out;
}

json_t *
lh_profiles_check(const lh_config *cfg)
{
    json_t *out = json_array();
    size_t n;
    const lh_profile_cfg *all = lh_config_profiles(cfg, &n);
    lh_secrets *secrets = NULL;
    lh_err err;
    bool tried = false;
    for (size_t i = 0; i < n; i++) {
        if (all[i].generate_secret_ref == NULL)
            continue;
        if (!tried) {
            tried = true;
            if (lh_secrets_open(lh_config_str(cfg, "secrets.file"), &secrets, &err) != 0)
                json_array_append_new(out, json_sprintf("profiles: the secrets file cannot be read "
                                                        "(%s); generation keys will not be found",
                                                        err.message));
        }
        if (secrets && !lh_secrets_has(secrets, all[i].generate_secret_ref))
            json_array_append_new(
                out, json_sprintf("profile '%s': generate_secret_ref '%s' is not a table of the "
                                  "secrets file",
                                  all[i].name, all[i].generate_secret_ref));
    }
    lh_secrets_free(secrets);
    return out;
}

json_t *
lh_profiles_list(const lh_auth *set, const lh_principal *who)
{
    bool admin = who && (who->roles & LH_ROLE_ADMIN);
    json_t *out = json_array();
    size_t n;
    const lh_profile_cfg *all = lh_config_profiles(set->config, &n);
    for (size_t i = 0; i < n; i++) {
        bool own = who && who->profile && strcmp(who->profile->name, all[i].name) == 0;
        if (admin || own)
            json_array_append_new(out, lh_profile_json(&all[i], admin));
    }
    return out;
}
