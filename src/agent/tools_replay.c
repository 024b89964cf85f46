/*
 * tools_replay.c — "why did the agent get this answer?": re-running a recorded read call
 * with its recorded arguments, at the tool version and the dataset versions its audit
 * record names, and comparing the result's hash with the recorded one.
 *
 * Only answered read calls replay: a write has changed the data (running it again would
 * change it again), a refused or failed call has no result to compare, and a call whose
 * arguments were redacted (x-sensitive) or truncated in its record cannot be re-run with
 * the same arguments. Each of these is 409 not_replayable, saying which. The replay is a
 * call of its own, audited with via "replay" and "replay_of" naming the original.
 *
 * Thread safety: as lh_tools_call.
 */
#include "agent/agent_int.h"

#include <string.h>

/* Whether the string "[redacted]" (lh_schema_redact's mark) occurs anywhere in v. */
static bool
has_redaction(const json_t *v)
{
    const char *key;
    size_t i;
    json_t *x;
    if (json_is_string(v))
        return strcmp(json_string_value(v), "[redacted]") == 0;
    if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            if (has_redaction(x))
                return true;
        }
    }
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, x)
        {
            if (has_redaction(x))
                return true;
        }
    }
    return false;
}

static int
not_replayable(lh_err *err, const char *call_id, const char *why)
{
    lh_err_set(err, LH_EEXIST, 409, "not_replayable", "call '%s' cannot be replayed: %s", call_id,
               why);
    return LH_EEXIST;
}

/* The record's own reasons not to replay it (0: none). */
static int
check_record(const json_t *record, const char *call_id, lh_err *err)
{
    const json_t *args = json_object_get(record, "arguments");
    if (strcmp(json_string_value(json_object_get(record, "outcome")) ?: "", "ok") != 0 ||
        !json_is_string(json_object_get(record, "result_sha256"))) {
        not_replayable(err, call_id, "it was not answered, so there is no result to compare");
        lh_err_detail(err, "outcome '%s', status %lld",
                      json_string_value(json_object_get(record, "outcome")) ?: "?",
                      (long long)json_integer_value(json_object_get(record, "status")));
        return LH_EEXIST;
    }
    if (!json_is_integer(json_object_get(record, "tool_version")) ||
        !json_is_object(json_object_get(record, "dataset_versions")) || !json_is_object(args))
        return not_replayable(err, call_id,
                              "its record lacks the tool version, the dataset "
                              "versions or the arguments");
    if (json_is_true(json_object_get(args, "truncated")) && json_object_size(args) == 1)
        return not_replayable(err, call_id, "its arguments were too large to keep in the record");
    if (has_redaction(args)) {
        not_replayable(err, call_id,
                       "arguments marked x-sensitive were redacted in its record, so it cannot "
                       "be re-run exactly");
        lh_err_hint(err, "call the tool again with the arguments; the audit trail never keeps "
                         "sensitive values");
        return LH_EEXIST;
    }
    return 0;
}

int
lh_tools_replay(lh_tools *reg, const lh_principal *who, const char *call_id, const char *request_id,
                json_t **out, lh_tool_outcome *o, lh_err *err)
{
    json_t *record = NULL, *result = NULL;
    lh_tool *t = NULL;
    lh_agent__replay rp = {0};
    lh_tool_outcome ignored;
    if (!o)
        o = &ignored;
    memset(o, 0, sizeof *o);
    int rc = 0;
    if (!who || !(who->roles & LH_ROLE_ADMIN)) {
        rc = lh_err_set(err, LH_EPERM, 403, "forbidden", "only admins may replay tool calls");
        goto out;
    }
    if (!reg->deps.audit_get) {
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable", "the audit trail is not open");
        goto out;
    }
    if ((rc = reg->deps.audit_get(reg->deps.audit_ctx, call_id, &record, err)) != 0)
        goto out;
    if ((rc = check_record(record, call_id, err)) != 0)
        goto out;
    const char *tool = json_string_value(json_object_get(record, "tool"));
    int64_t version = json_integer_value(json_object_get(record, "tool_version"));
    lh_err why;
    if ((t = lh_agent__tool_acquire_version(reg, tool ?: "", version, &why)) == NULL) {
        not_replayable(err, call_id, "the tool version it used cannot be read");
        lh_err_detail(err, "%s", why.message);
        rc = LH_EEXIST;
        goto out;
    }
    if (t->writes) {
        rc = not_replayable(err, call_id,
                            "its tool changes rows; only read calls (sql, search) replay");
        goto out;
    }
    lh_tool_call c = {
        .principal = who,
        .name = tool,
        .arguments = json_object_get(record, "arguments"),
        .workspace_id = json_string_value(json_object_get(record, "workspace_id")),
        .via = "replay",
        .request_id = request_id,
    };
    rp.at = json_object_get(record, "dataset_versions");
    rp.of = call_id;
    if ((rc = lh_agent__call(reg, &c, t, &rp, &result, o, err)) != 0)
        goto out;
    const char *original = json_string_value(json_object_get(record, "result_sha256"));
    *out = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:O, s:b}", "call_id", call_id,
                     "replayed_call_id", o->call_id, "tool", tool, "tool_version",
                     (json_int_t)version, "result_sha256", rp.sha256, "original_sha256", original,
                     "matches", strcmp(rp.sha256, original) == 0, "dataset_versions", rp.versions,
                     "at_recorded_versions", rp.pinned);
out:
    json_decref(rp.versions);
    json_decref(result);
    json_decref(record);
    lh_agent__tool_release(t);
    return rc;
}
