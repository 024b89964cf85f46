/*
 * tools_call.c — calling a tool: the checks in a fixed order, the run, and the audit
 * record every outcome produces.
 *
 * Order: the tool exists and every dataset it reads or writes is one the caller sees
 * (lh_catalog_may_see; else the same 404 tool_not_found) → the caller is in its allow
 * list (403 not_allowed) → a write tool is called by a writer or admin, or grants_write
 * (403 write_forbidden) → one token from the (principal, tool) and the principal's
 * buckets (429 rate_limited) → the arguments validate (400 invalid_arguments) → run.
 * Refusals come before the rate limit takes a token, so a caller who may not call a
 * tool cannot use up anyone's budget; bad arguments do take one (they cost a check).
 *
 * The audit record is written through deps.audit before lh_tools_call returns, and the
 * door sends the answer only after that: a call whose answer was sent is on record.
 */
#include "agent/agent_int.h"
#include "agent/profiles.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- running each kind -------------------------------------------------------------------- */

static int
dataset_version(lh_tools *reg, const char *name, json_t *versions, json_t **manifest, lh_err *err)
{
    json_t *m = NULL;
    int rc = lh_catalog_get(reg->deps.catalog, name, &m, err);
    if (rc != 0)
        return rc;
    json_object_set(versions, name, json_object_get(m, "version"));
    if (manifest)
        *manifest = m;
    else
        json_decref(m);
    return 0;
}

/* The whole rendered JSON answer of a started query (new), or an error. */
static int
read_answer(lh_query *q, json_t **out, lh_err *err)
{
    lh_buf text;
    lh_buf_init(&text);
    bool end = false, failed = false;
    char chunk[16384];
    int rc = 0;
    while (!end) {
        size_t got = lh_query_read(q, chunk, sizeof chunk, &end, &failed, err);
        lh_buf_append(&text, chunk, got);
        if (failed) {
            rc = err->rc ? err->rc : LH_EIO;
            break;
        }
    }
    json_t *answer = rc == 0 ? json_loadb(text.data, text.len, 0, NULL) : NULL;
    lh_buf_free(&text);
    if (rc == 0 && !json_is_object(answer))
        rc = lh_err_set(err, LH_EINTERNAL, 500, "internal_error",
                        "the query's answer did not parse");
    if (rc != 0) {
        json_decref(answer);
        return rc;
    }
    *out = answer;
    return 0;
}

/* The bound values of the names in params, from the arguments (absent: NULL). */
static lh_sql_param *
bind_args(const json_t *params, const json_t *args, size_t *n)
{
    *n = json_array_size(params);
    lh_sql_param *p = lh_calloc(*n ? *n : 1, sizeof *p);
    for (size_t i = 0; i < *n; i++) {
        p[i].name = json_string_value(json_array_get(params, i));
        const json_t *v = json_object_get(args, p[i].name);
        p[i].value = v ? v : json_null();
    }
    return p;
}

/* The time travel views that make sql read every dataset of t at the version `at` names
 * (a replay): *views new, versions filled from at. 409 not_replayable when at lacks one. */
static int
views_at(lh_tools *reg, const lh_tool *t, const char *sql, const json_t *at, json_t *versions,
         int clearance, lh_as_of_views **views, lh_err *err)
{
    json_t *per = json_object(), *d;
    size_t i;
    int rc = 0;
    json_array_foreach(json_object_get(t->derived, "datasets"), i, d)
    {
        const json_t *v = json_object_get(at, json_string_value(d));
        if (!json_is_integer(v)) {
            rc = lh_err_set(err, LH_EEXIST, 409, "not_replayable",
                            "the record names no version of dataset '%s', which the tool reads",
                            json_string_value(d));
            break;
        }
        json_object_set(versions, json_string_value(d), (json_t *)v);
        json_object_set_new(per, json_string_value(d), json_pack("{s:O}", "version", v));
    }
    json_t *as_of = json_pack("{s:o}", "datasets", per);
    if (rc == 0)
        rc = lh_catalog_as_of(reg->deps.catalog, as_of, sql, NULL, NULL, clearance, views, err);
    json_decref(as_of);
    return rc;
}

static int
run_sql(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, const json_t *at, json_t *versions,
        int64_t *rows, json_t **result, lh_err *err)
{
    const json_t *b = json_object_get(t->def, "binding");
    const char *sql = json_string_value(json_object_get(b, "query"));
    size_t i, n_params = 0;
    json_t *d;
    lh_as_of_views *views = NULL;
    if (at) {
        int rc = views_at(reg, t, sql, at, versions, c->principal ? c->principal->clearance : 0,
                          &views, err);
        if (rc != 0)
            return rc;
    }
    json_array_foreach(json_object_get(t->derived, "datasets"), i, d)
    {
        int rc = at ? 0 : dataset_version(reg, json_string_value(d), versions, NULL, err);
        if (rc != 0)
            return rc;
    }
    lh_sql_param *params =
        bind_args(json_object_get(t->derived, "params"), c->arguments, &n_params);
    lh_query_opts opts = {
        .sql = sql,
        .format = LH_QUERY_JSON,
        .row_limit = json_integer_value(json_object_get(b, "max_rows")),
        .max_bytes = lh_config_int(reg->deps.config, "engine.max_result_bytes"),
        .timeout_ms = lh_config_int(reg->deps.config, "engine.query_timeout_ms"),
        .principal = c->principal->name,
        .gone = c->gone,
        .params = params,
        .n_params = n_params,
    };
    if (views)
        opts.prelude = lh_as_of_views_sql(views, &opts.n_prelude);
    /* the tool's SQL sees what its caller sees (_events, _audit rows included) */
    lh_catalog_view view;
    opts.resolver = lh_catalog_view_init(&view, reg->deps.catalog, c->principal);
    bool rescue_used = false;
    opts.rescue_used = &rescue_used;
    lh_query *q = NULL;
    json_t *answer = NULL;
    int rc = lh_query_start(reg->deps.engine, &opts, &q, err);
    lh_catalog_view_free(&view);
    if (rc == 0)
        rc = read_answer(q, &answer, err);
    lh_query_free(q);
    lh_catalog_as_of_free(views);
    free(params);
    if (rc != 0)
        return rc;
    *rows = json_integer_value(json_object_get(answer, "row_count"));
    *result = json_pack("{s:O, s:O, s:O}", "rows", json_object_get(answer, "rows"), "row_count",
                        json_object_get(answer, "row_count"), "truncated",
                        json_object_get(answer, "truncated"));
    if (rescue_used) /* invariant 7: a read that fell back says so, through every door */
        json_object_set_new(*result, "rescue_used", json_true());
    json_decref(answer);
    return 0;
}

/* The index and the dataset are searched as they are now (an index keeps no old
 * generations to search); *pinned says whether that is the version `at` names. */
static int
run_search(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, const json_t *at,
           json_t *versions, int64_t *rows, json_t **result, bool *pinned, lh_err *err)
{
    const json_t *b = json_object_get(t->def, "binding");
    const char *ds = json_string_value(json_array_get(json_object_get(t->derived, "datasets"), 0));
    int rc = dataset_version(reg, ds, versions, NULL, err);
    if (rc != 0)
        return rc;
    if (at && !json_equal(json_object_get(at, ds), json_object_get(versions, ds)))
        *pinned = false;
    const json_t *include = json_object_get(b, "include");
    size_t n_include = json_array_size(include), n_params = 0;
    const char **names = lh_calloc(n_include ? n_include : 1, sizeof *names);
    for (size_t i = 0; i < n_include; i++)
        names[i] = json_string_value(json_array_get(include, i));
    /* binding.profile: the caller's profile may name the index of this dataset it uses */
    char index[LH_NAME_MAX];
    snprintf(index, sizeof index, "%s", json_string_value(json_object_get(b, "index")));
    bool by_profile = json_is_true(json_object_get(b, "profile"));
    if (by_profile &&
        (rc = lh_profile_tool_index(reg->deps.vectors, c->principal, index, ds, index, err)) != 0)
        return rc;
    int64_t k = json_integer_value(json_object_get(b, "k"));
    if (k > lh_profile_max_k(c->principal, k))
        k = lh_profile_max_k(c->principal, k);
    lh_sql_param *params =
        bind_args(json_object_get(t->derived, "params"), c->arguments, &n_params);
    const char *text = json_string_value(
        json_object_get(c->arguments, json_string_value(json_object_get(b, "query_param"))));
    lh_vsearch s = {
        .index = index,
        .query = text,
        .k = (size_t)k,
        .filter = json_string_value(json_object_get(b, "filter")),
        .filter_params = params,
        .n_filter_params = n_params,
        .include = names,
        .n_include = n_include,
        .timeout_ms = lh_config_int(reg->deps.config, "engine.query_timeout_ms"),
        .principal = c->principal->name,
        .clearance = c->principal->clearance,
    };
    lh_vhybrid hybrid;
    lh_catalog_view view; /* the filter sees what the caller sees */
    s.resolver = lh_catalog_view_init(&view, reg->deps.catalog, c->principal);
    json_t *answer = NULL;
    /* binding.mode and binding.hybrid were checked by the same call when the tool was
     * defined */
    rc = lh_vsearch_options(json_object_get(b, "mode"), json_object_get(b, "hybrid"), &s, &hybrid,
                            err);
    if (rc == 0 && (!text || !text[0]))
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_arguments",
                        "/arguments/%s: must be a non-empty text to search for",
                        json_string_value(json_object_get(b, "query_param")));
    else if (rc == 0)
        rc = lh_vectors_search(reg->deps.vectors, &s, &answer, err);
    lh_catalog_view_free(&view);
    free(names);
    free(params);
    if (rc != 0)
        return rc;
    *rows = (int64_t)json_array_size(json_object_get(answer, "hits"));
    *result = json_pack("{s:O, s:O, s:O}", "hits", json_object_get(answer, "hits"), "index",
                        json_object_get(answer, "index"), "generation",
                        json_object_get(answer, "generation"));
    if (by_profile) /* which model embedded the query, as a direct search says */
        json_object_set(*result, "model", json_object_get(answer, "model"));
    if (json_object_get(b, "mode")) /* what ranked the hits, when the binding chose */
        json_object_set(*result, "mode", json_object_get(answer, "mode"));
    json_decref(answer);
    return 0;
}

/* insert: each reference names a row that exists in its dataset now. */
static int
check_references(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, json_t *versions,
                 lh_err *err)
{
    const json_t *refs = json_object_get(json_object_get(t->def, "binding"), "references");
    const char *column;
    json_t *target;
    json_object_foreach((json_t *)refs, column, target)
    {
        const json_t *value = json_object_get(c->arguments, column);
        if (!value || json_is_null(value))
            continue; /* nothing referenced */
        json_t *m = NULL, *rows = NULL;
        int rc = dataset_version(reg, json_string_value(target), versions, &m, err);
        if (rc != 0)
            return rc;
        const char *pk = json_string_value(
            json_array_get(json_object_get(json_object_get(m, "metadata"), "primary_key"), 0));
        lh_buf sql;
        lh_buf_init(&sql);
        lh_buf_puts(&sql, "SELECT count(*) AS n FROM ");
        lh_sql_ident(&sql, json_string_value(target));
        lh_buf_puts(&sql, " WHERE CAST(");
        lh_sql_ident(&sql, pk);
        lh_buf_puts(&sql, " AS VARCHAR) = CAST($v AS VARCHAR)");
        lh_sql_param p = {.name = "v", .value = value};
        lh_query_opts opts = {.sql = sql.data,
                              .format = LH_QUERY_JSON,
                              .timeout_ms =
                                  lh_config_int(reg->deps.config, "engine.query_timeout_ms"),
                              .principal = c->principal->name,
                              .params = &p,
                              .n_params = 1};
        lh_catalog_view view;
        opts.resolver = lh_catalog_view_init(&view, reg->deps.catalog, c->principal);
        lh_query *q = NULL;
        rc = lh_query_start(reg->deps.engine, &opts, &q, err);
        lh_catalog_view_free(&view);
        if (rc == 0)
            rc = read_answer(q, &rows, err);
        lh_query_free(q);
        lh_buf_free(&sql);
        json_decref(m);
        if (rc != 0)
            return rc;
        int64_t n = json_integer_value(
            json_object_get(json_array_get(json_object_get(rows, "rows"), 0), "n"));
        json_decref(rows);
        if (n == 0) {
            char *shown = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
            lh_err_set(err, LH_EINVAL, 400, "invalid_reference",
                       "/arguments/%s: %.80s does not exist in dataset '%s'", column, shown,
                       json_string_value(target));
            free(shown);
            return LH_EINVAL;
        }
    }
    return 0;
}

static int
run_change(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, json_t *versions, int64_t *rows,
           json_t **result, lh_err *err)
{
    const json_t *b = json_object_get(t->def, "binding");
    const char *ds = json_string_value(json_object_get(b, "dataset"));
    int rc = t->kind == LH_TOOL_INSERT ? check_references(reg, t, c, versions, err) : 0;
    if (rc != 0)
        return rc;
    char *source = lh_sprintf("tool:%s", t->name);
    json_t *list = json_pack("[O]", c->arguments), *answer = NULL;
    lh_rows_opts o = {
        .dataset = ds,
        .upsert = list,
        .source = source,
        .workspace_id = c->workspace_id,
        .actor = c->principal->name,
        .allow_bucket = lh_catalog_bucket_access,
        .allow_ctx = (void *)c->principal,
        .mode = t->kind == LH_TOOL_INSERT                            ? LH_ROWS_INSERT_ONLY
                : json_is_true(json_object_get(b, "create_missing")) ? LH_ROWS_UPSERT
                                                                     : LH_ROWS_UPDATE_ONLY,
    };
    rc = lh_ingest_rows(reg->deps.catalog, reg->deps.internal_engine, reg->deps.buckets, &o,
                        &answer, err);
    free(source);
    json_decref(list);
    if (rc != 0 && strncmp(err->message, "upsert[0]: ", 11) == 0) {
        /* the row is the call's arguments: say so in the caller's terms */
        char rest[sizeof err->message];
        snprintf(rest, sizeof rest, "%s", err->message + 11);
        snprintf(err->message, sizeof err->message, "/arguments: %s", rest);
    }
    if (rc != 0)
        return rc;
    json_object_set(versions, ds, json_object_get(answer, "version"));
    const json_t *counts = json_object_get(answer, "counts");
    *rows = json_integer_value(json_object_get(counts, "inserted")) +
            json_integer_value(json_object_get(counts, "updated"));
    *result = json_pack("{s:s, s:O, s:O, s:b}", "dataset", ds, "version",
                        json_object_get(answer, "version"), "counts", counts, "unchanged",
                        json_is_true(json_object_get(answer, "unchanged")));
    json_decref(answer);
    return 0;
}

int
lh_agent__run(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, const json_t *at,
              json_t *versions, int64_t *rows, json_t **result, bool *pinned, lh_err *err)
{
    *pinned = true;
    switch (t->kind) {
    case LH_TOOL_SQL:
        return run_sql(reg, t, c, at, versions, rows, result, err);
    case LH_TOOL_SEARCH:
        return run_search(reg, t, c, at, versions, rows, result, pinned, err);
    case LH_TOOL_BUILTIN:
        return lh_agent__run_builtin(reg, t, c, rows, result, err);
    default:
        return run_change(reg, t, c, versions, rows, result, err);
    }
}

/* ---- checks ------------------------------------------------------------------------------ */

static int
check_permissions(lh_tools *reg, const lh_tool *t, const lh_principal *who, lh_err *err)
{
    /* a tool over datasets the caller does not see does not exist for it (tenants): the
     * same 404 as an unknown tool, before anything that would say it exists */
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(t->derived, "datasets"), i, d)
    {
        if (!lh_catalog_may_see(reg->deps.catalog, who, json_string_value(d))) {
            lh_err_set(err, LH_ENOTFOUND, 404, "tool_not_found", "no tool named '%s'", t->name);
            lh_err_hint(err, "GET /tools lists the tools you may call");
            return LH_ENOTFOUND;
        }
    }
    if (!lh_agent__allowed(t, who)) {
        lh_err_set(err, LH_EPERM, 403, "not_allowed",
                   "principal '%s' is not in the allow list of tool '%s'", who->name, t->name);
        lh_err_hint(err, "an admin adds the principal or one of its roles to the tool's "
                         "\"allow\"");
        return LH_EPERM;
    }
    if (t->writes && !(who->roles & (LH_ROLE_ADMIN | LH_ROLE_WRITER)) &&
        !json_is_true(json_object_get(t->def, "grants_write"))) {
        lh_err_set(err, LH_EPERM, 403, "write_forbidden",
                   "tool '%s' changes rows, and principal '%s' has no write role", t->name,
                   who->name);
        lh_err_hint(err, "give the principal the writer role, or an admin sets \"grants_write\": "
                         "true on the tool");
        return LH_EPERM;
    }
    return 0;
}

static int64_t
now_us(const lh_tools *reg)
{
    return reg->deps.now_us ? reg->deps.now_us() : lh_mono_us();
}

static int
take_rate(lh_tools *reg, const lh_tool *t, const lh_principal *who, int64_t *retry_after_s,
          lh_err *err)
{
    char *pair = lh_sprintf("tool\n%s\n%s", who->name, t->name);
    char *own = lh_sprintf("principal\n%s", who->name);
    /* the principal's profile may set its own ceiling instead of [tools]' */
    double ceiling = who->profile && who->profile->tool_calls_per_minute > 0
                         ? (double)who->profile->tool_calls_per_minute
                         : (double)atomic_load(&reg->max_calls_per_minute);
    lh_rate_limit limits[2] = {
        {.key = pair, .per_minute = t->per_minute, .burst = t->burst},
        {.key = own, .per_minute = ceiling, .burst = ceiling},
    };
    int64_t wait_us = 0;
    bool ok = lh_agent__rate_take(reg->rate, limits, 2, now_us(reg), &wait_us);
    free(pair);
    free(own);
    if (ok)
        return 0;
    *retry_after_s = (wait_us + 999999) / 1000000;
    lh_err_set(err, LH_EUNAVAIL, 429, "rate_limited",
               "principal '%s' is calling tool '%s' too often", who->name, t->name);
    lh_err_detail(err,
                  "the tool allows %g calls a minute (bursts of %g) per principal; this "
                  "principal at most %g a minute in all",
                  t->per_minute, t->burst, ceiling);
    lh_err_hint(err, "retry after %lld s (Retry-After)", (long long)*retry_after_s);
    return LH_EUNAVAIL;
}

/* ---- the audit record --------------------------------------------------------------------- */

void
lh_agent__result_sha256(const json_t *result, char sha[65])
{
    char *canonical = json_dumps(result, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    lh_sha256_hex(canonical, strlen(canonical), sha);
    free(canonical);
}

static json_t *
audit_record(const lh_tool_call *c, const lh_tool *t, const char *call_id, int64_t ts_us,
             const json_t *result, const json_t *versions, int64_t rows, int64_t duration_us,
             const char *replay_of, const lh_err *failure)
{
    char ws[128];
    snprintf(ws, sizeof ws, "%s", c->workspace_id ? c->workspace_id : "");
    if (t && t->kind == LH_TOOL_BUILTIN)
        lh_agent__builtin_workspace(t, c, result, ws, sizeof ws);
    char ts[LH_TIME_MAX];
    lh_time_format(ts_us, ts);
    json_t *roles = json_array();
    for (const char *const *r = (const char *const[]){"admin", "writer", "reader", "agent", NULL};
         *r; r++)
        if (c->principal->roles & lh_role_bit(*r))
            json_array_append_new(roles, json_string(*r));
    json_t *args =
        t && t->schema ? lh_schema_redact(t->schema, c->arguments) : json_deep_copy(c->arguments);
    const char *outcome = "ok";
    int status = 200;
    if (failure) {
        status = failure->http_status ? failure->http_status : 500;
        outcome =
            status == 400 || status == 403 || status == 404 || status == 429 ? "refused" : "failed";
    }
    char sha[65] = "";
    if (result)
        lh_agent__result_sha256(result, sha);
    json_t *r = json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:o?, s:o, s:s?, s:s, s:i, s:s?, s:I, s:s?, s:O, s:I, s:s?, "
        "s:s, s:s?}",
        "call_id", call_id, "ts", ts, "principal", c->principal->name, "roles", roles, "tool",
        c->name, "tool_version", t ? json_integer(t->version) : NULL, "arguments",
        args ? args : json_null(), "workspace_id", ws[0] ? ws : NULL, "outcome", outcome, "status",
        status, "error_code", failure ? failure->code : NULL, "rows", (json_int_t)rows,
        "result_sha256", result ? sha : NULL, "dataset_versions", versions, "duration_us",
        (json_int_t)duration_us, "request_id", c->request_id, "via", c->via ? c->via : "?",
        "replay_of", replay_of);
    return r;
}

/* The checks a call passes before it runs (a replay passes none: the replaying admin was
 * checked by lh_tools_replay, and the tool version is the one the record names). */
static int
admit(lh_tools *reg, const lh_tool *t, const lh_tool_call *c, lh_tool_outcome *o, lh_err *err)
{
    int rc = 0;
    if (!t || t->deleted) {
        rc = lh_err_set(err, LH_ENOTFOUND, 404, "tool_not_found", "no tool named '%s'", c->name);
        lh_err_hint(err, "GET /tools lists the tools you may call");
    } else {
        rc = check_permissions(reg, t, c->principal, err);
    }
    if (rc == 0 && !json_is_object(c->arguments))
        rc = lh_err_set(err, LH_EINVAL, 400, "invalid_arguments", "/arguments: must be an object");
    if (rc == 0)
        rc = take_rate(reg, t, c->principal, &o->retry_after_s, err);
    return rc;
}

int
lh_agent__call(lh_tools *reg, const lh_tool_call *c, lh_tool *pinned_tool, lh_agent__replay *rp,
               json_t **result, lh_tool_outcome *o, lh_err *err)
{
    int64_t started = lh_mono_us(), ts = lh_now_us();
    lh_tool_outcome ignored;
    if (!o)
        o = &ignored;
    memset(o, 0, sizeof *o);
    char hex[33];
    lh_random_hex(hex, 16);
    snprintf(o->call_id, sizeof o->call_id, "call_%s", hex);
    json_t *versions = json_object(), *out = NULL, *record = NULL;
    int64_t rows = 0;
    bool pinned = true;
    lh_tool *t = pinned_tool ? pinned_tool : lh_agent__tool_acquire(reg, c->name);
    int rc = rp ? 0 : admit(reg, t, c, o, err);
    if (rc == 0)
        rc = lh_schema_check(t->schema, c->arguments, "/arguments", err);
    if (rc == 0)
        rc = lh_agent__run(reg, t, c, rp ? rp->at : NULL, versions, &rows, &out, &pinned, err);
    int64_t took = lh_mono_us() - started;
    record = audit_record(c, t && !t->deleted ? t : NULL, o->call_id, ts, rc == 0 ? out : NULL,
                          versions, rows, took, rp ? rp->of : NULL, rc == 0 ? NULL : err);
    lh_err audit_err;
    if (reg->deps.audit(reg->deps.audit_ctx, record, &audit_err) != 0) {
        char *text = json_dumps(record, JSON_COMPACT);
        json_t *fields = json_pack("{s:s, s:s}", "record", text, "audit_error", audit_err.message);
        lh_log(LH_LOG_ERROR, c->request_id, fields, "tool call not audited");
        json_decref(fields);
        free(text);
        bool wrote = rc == 0 && t->writes;
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable",
                        "the call could not be recorded in the audit log, so its answer is "
                        "withheld");
        if (wrote) {
            char *committed = json_dumps(versions, JSON_COMPACT);
            lh_err_detail(err,
                          "the change was committed (dataset versions %s); the record is "
                          "in the server log",
                          committed ? committed : "?");
            free(committed);
        }
        lh_err_hint(err, "see GET /health and the server log; retry once the audit log is "
                         "writable");
    }
    if (rc == 0 && rp) {
        lh_agent__result_sha256(out, rp->sha256);
        rp->pinned = pinned;
        rp->versions = json_incref(versions);
    }
    if (rc == 0)
        *result = json_pack("{s:s, s:O, s:I, s:O}", "call_id", o->call_id, "result", out, "took_us",
                            (json_int_t)took, "dataset_versions", versions);
    json_decref(out);
    json_decref(record);
    json_decref(versions);
    if (!pinned_tool)
        lh_agent__tool_release(t);
    return rc;
}

int
lh_tools_call(lh_tools *reg, const lh_tool_call *c, json_t **result, lh_tool_outcome *o,
              lh_err *err)
{
    /* the audit record keeps a workspace id whole: one longer than it can hold is refused */
    if (c->workspace_id && (c->workspace_id[0] == '\0' || strlen(c->workspace_id) > 128)) {
        if (o)
            memset(o, 0, sizeof *o);
        *result = NULL;
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'workspace_id' must be a non-empty string of at most 128 bytes");
    }
    return lh_agent__call(reg, c, NULL, NULL, result, o, err);
}
