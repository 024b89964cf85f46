/*
 * svc_tools.c — lakehouse.v1.Tools: the registry's lh_tools_list and lh_tools_call, as
 * every door calls them (via "grpc" in the audit record). A refusal by a rate limit
 * carries the registry's wait in the status's google.rpc.RetryInfo.
 */
#include "rpc/rpc_int.h"

#include <stdlib.h>
#include <string.h>

#include "lakehouse/v1/tools.pb-c.h"

static int
list_tools(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
           lh_err *err)
{
    Lakehouse__V1__ListToolsRequest *req =
        lakehouse__v1__list_tools_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.ListToolsRequest");
    lakehouse__v1__list_tools_request__free_unpacked(req, NULL);
    json_t *tools = lh_tools_list(c->deps->tools, c->principal, LH_TOOLS_NATIVE);
    Lakehouse__V1__ListToolsResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__list_tools_response__init(res);
    res->n_tools = json_array_size(tools);
    res->tools = res->n_tools ? lh_malloc(res->n_tools * sizeof *res->tools) : NULL;
    for (size_t i = 0; i < res->n_tools; i++) {
        const json_t *t = json_array_get(tools, i);
        Lakehouse__V1__Tool *x = lh_malloc(sizeof *x);
        lakehouse__v1__tool__init(x);
        x->name = lh_grpc__str(json_string_value(json_object_get(t, "name")));
        x->description = lh_grpc__str(json_string_value(json_object_get(t, "description")));
        x->kind = lh_grpc__str(json_string_value(json_object_get(t, "kind")));
        x->version = json_integer_value(json_object_get(t, "version"));
        x->grants_write = json_is_true(json_object_get(t, "grants_write"));
        x->input_schema = lh_grpc__struct(json_object_get(t, "input_schema"));
        x->definition = lh_grpc__struct(t);
        res->tools[i] = x;
    }
    json_decref(tools);
    lh_grpc__pack(&res->base, out, out_len);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    return 0;
}

static int
call_tool(lh_gcall *c, const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len,
          lh_err *err)
{
    Lakehouse__V1__CallToolRequest *req =
        lakehouse__v1__call_tool_request__unpack(NULL, in_len, in);
    if (req == NULL)
        return lh_grpc__bad_message(err, "lakehouse.v1.CallToolRequest");
    json_t *args = lh_grpc__json_of_struct(req->arguments), *answer = NULL;
    lh_tool_outcome o = {0};
    lh_tool_call call = {.principal = c->principal,
                         .name = req->name,
                         .arguments = args,
                         .workspace_id = req->workspace_id[0] ? req->workspace_id : NULL,
                         .via = "grpc",
                         .gone = c->gone};
    int rc = lh_tools_call(c->deps->tools, &call, &answer, &o, err);
    json_decref(args);
    lakehouse__v1__call_tool_request__free_unpacked(req, NULL);
    if (rc != 0) {
        c->retry_after_s = o.retry_after_s;
        return rc;
    }
    Lakehouse__V1__CallToolResponse *res = lh_malloc(sizeof *res);
    lakehouse__v1__call_tool_response__init(res);
    res->call_id = lh_grpc__str(json_string_value(json_object_get(answer, "call_id")));
    res->took_us = json_integer_value(json_object_get(answer, "took_us"));
    const json_t *result = json_object_get(answer, "result");
    res->result = lh_grpc__struct(json_is_object(result) ? result : NULL);
    const json_t *versions = json_object_get(answer, "dataset_versions");
    size_t n = json_is_object(versions) ? json_object_size(versions) : 0;
    res->dataset_versions = n ? lh_malloc(n * sizeof *res->dataset_versions) : NULL;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)versions, key, v)
    {
        Lakehouse__V1__CallToolResponse__DatasetVersionsEntry *e = lh_malloc(sizeof *e);
        lakehouse__v1__call_tool_response__dataset_versions_entry__init(e);
        e->key = lh_strdup(key);
        e->value = json_integer_value(v);
        res->dataset_versions[res->n_dataset_versions++] = e;
    }
    json_decref(answer);
    lh_grpc__pack(&res->base, out, out_len);
    protobuf_c_message_free_unpacked(&res->base, NULL);
    return 0;
}

const lh_gmethod lh_grpc__tools[] = {
    {"/lakehouse.v1.Tools/ListTools", LH_ALLOW_ANY, list_tools, NULL, NULL, 0, NULL},
    {"/lakehouse.v1.Tools/CallTool", LH_ALLOW_ANY, call_tool, NULL, NULL, LH_GOFFLOAD | LH_GWATCH,
     NULL},
};
const size_t lh_grpc__n_tools = sizeof lh_grpc__tools / sizeof lh_grpc__tools[0];
