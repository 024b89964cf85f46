/*
 * resources.c — the catalog as MCP resources: one resource per live dataset the principal
 * may read, lakehouse://datasets/{name}, whose content (application/json) is what an agent
 * needs to query it: columns, metadata, freshness, row count, version. Who may read what is
 * the catalog's rule at every door (src/auth): the roles that may read the catalog, and
 * only the datasets of buckets the principal may use. A dataset the principal may not see
 * is "not found", exactly like one that does not exist. Data file paths are left out:
 * agents name datasets, never files.
 *
 * Workspaces the principal may read (the workspace module decides: owner, members,
 * admins) are resources too, lakehouse://workspaces/{id}, whose content is the
 * workspace's brief — what an agent picking it up needs (purpose, shortlists with their
 * top records, staged changes, saved queries, last actions, notes).
 */
#include "mcp/mcp_int.h"

#include <stdlib.h>
#include <string.h>

#define URI_PREFIX "lakehouse://datasets/"
#define WS_PREFIX "lakehouse://workspaces/"
#define MIME_JSON "application/json"

static bool
may_read_catalog(const lh_principal *who)
{
    lh_err ignored;
    return lh_auth_allow(who, LH_ALLOW_READ, &ignored) == 0;
}

static json_t *
resource_of(const json_t *summary)
{
    const char *name = json_string_value(json_object_get(summary, "name"));
    const char *description =
        json_string_value(json_object_get(json_object_get(summary, "metadata"), "description"));
    char *uri = lh_sprintf(URI_PREFIX "%s", name);
    json_t *r = json_pack("{s:s, s:s, s:s}", "uri", uri, "name", name, "mimeType", MIME_JSON);
    free(uri);
    if (description && description[0])
        json_object_set_new(r, "description", lh_json_text(description));
    else
        json_object_set_new(r, "description", json_string("dataset (no description yet)"));
    return r;
}

static void
append_workspaces(const mcp_call *call, json_t *resources)
{
    json_t *list = NULL;
    lh_err err;
    lh_workspace_filter f = {0};
    if (call->mcp->workspaces == NULL ||
        lh_workspace_list(call->mcp->workspaces, call->who, &f, &list, &err) != 0)
        return;
    size_t i;
    json_t *ws;
    json_array_foreach(list, i, ws)
    {
        const char *id = json_string_value(json_object_get(ws, "id"));
        const char *name = json_string_value(json_object_get(ws, "name"));
        if (id == NULL)
            continue;
        char *uri = lh_sprintf(WS_PREFIX "%s", id);
        json_array_append_new(resources,
                              json_pack("{s:s, s:o, s:s, s:s}", "uri", uri, "name",
                                        lh_json_text(name ? name : id), "description",
                                        "workspace: its brief (purpose, shortlists, staged "
                                        "changes, saved queries, last actions, notes)",
                                        "mimeType", MIME_JSON));
        free(uri);
    }
    json_decref(list);
}

int
lh_mcp__resources_list(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    const json_t *cursor = json_object_get(call->params, "cursor");
    if (cursor) /* we never hand out a next cursor: every resource is on the one page */
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL, "unknown cursor");
    json_t *resources = json_array();
    if (may_read_catalog(call->who)) {
        lh_catalog_filter live = {0};
        json_t *all = lh_catalog_list(call->mcp->catalog, &live);
        size_t i;
        json_t *summary;
        json_array_foreach(all, i, summary)
        {
            if (lh_catalog_may_see_manifest(call->who, summary))
                json_array_append_new(resources, resource_of(summary));
        }
        json_decref(all);
    }
    append_workspaces(call, resources);
    *result = json_pack("{s:o}", "resources", resources);
    return 0;
}

int
lh_mcp__resource_templates(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    *result = json_pack("{s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:s, s:s}]}", "resourceTemplates",
                        "uriTemplate", URI_PREFIX "{name}", "name", "dataset", "description",
                        "a dataset: columns, metadata, freshness, row count, version", "mimeType",
                        MIME_JSON, "uriTemplate", WS_PREFIX "{id}", "name", "workspace",
                        "description", "a workspace's brief", "mimeType", MIME_JSON);
    return 0;
}

/* The dataset's description for an agent (new): the manifest without its files. */
static json_t *
describe(const json_t *m)
{
    static const char *const keys[] = {
        "name",      "version",  "state",      "row_count",  "bytes",  "columns", "metadata",
        "freshness", "warnings", "created_at", "created_by", "change", NULL};
    json_t *d = json_object();
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(m, *k);
        if (v)
            json_object_set(d, *k, v);
    }
    json_object_set_new(d, "files",
                        json_integer((json_int_t)json_array_size(json_object_get(m, "files"))));
    return d;
}

/* resources/read's answer with content (taken) as its JSON text. */
static int
contents(const json_t *uri, json_t *content, json_t **result)
{
    char *text = json_dumps(content, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(content);
    if (text == NULL)
        abort(); /* only on out-of-memory */
    *result = json_pack("{s:[{s:O, s:s, s:s}]}", "contents", "uri", uri, "mimeType", MIME_JSON,
                        "text", text);
    free(text);
    return 0;
}

int
lh_mcp__resources_read(const mcp_call *call, json_t **result, mcp_rpc_err *e)
{
    const json_t *uri_j = json_object_get(call->params, "uri");
    const char *uri = json_string_value(uri_j);
    if (uri == NULL)
        return lh_mcp__fail(e, LH_MCP_INVALID_PARAMS, NULL,
                            "resources/read needs params.uri (a string)");
    const char *name =
        strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)) == 0 ? uri + strlen(URI_PREFIX) : NULL;
    json_t *m = NULL;
    lh_err err;
    if (strncmp(uri, WS_PREFIX, strlen(WS_PREFIX)) == 0 && call->mcp->workspaces &&
        lh_workspace_brief(call->mcp->workspaces, call->who, uri + strlen(WS_PREFIX), &m, &err) ==
            0)
        return contents(uri_j, m, result);
    if (name && lh_name_valid(name) && may_read_catalog(call->who) &&
        lh_catalog_get_visible(call->mcp->catalog, call->who, name, &m, &err) == 0 &&
        strcmp(json_string_value(json_object_get(m, "state")), "live") == 0) {
        json_t *content = describe(m);
        json_decref(m);
        return contents(uri_j, content, result);
    }
    json_decref(m);
    return lh_mcp__fail(e, LH_MCP_RESOURCE_NOT_FOUND, json_pack("{s:O}", "uri", uri_j),
                        "Resource not found");
}
