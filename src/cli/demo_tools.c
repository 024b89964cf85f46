/*
 * demo_tools.c — the demo's agent side: an index over the candidates' resumes and four
 * named tools over the demo data (search_candidates, list_open_jobs, update_phone,
 * create_placement), registered through the API as an admin would. A second run makes
 * each tool's next version. Definitions are data (JSON text below), so they read as
 * docs/API.md's examples do. Then a workspace for one open job order, as an agent would
 * leave it: a shortlist of candidates picked by SQL and a note; a second run finds it by
 * name and leaves it as it is.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_INDEX "candidate_resumes"

/* clang-format off */
static const char *const DEMO_TOOLS[] = {
    "{\"name\": \"search_candidates\","
    " \"description\": \"Find candidates whose resume matches a text, optionally in one city and "
    "with at least some years of experience\","
    " \"input_schema\": {\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"query\"],"
    "  \"properties\": {\"query\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 1000},"
    "                 \"city\": {\"type\": \"string\"},"
    "                 \"min_years\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 60}}},"
    " \"kind\": \"search\","
    " \"binding\": {\"index\": \"" DEMO_INDEX "\", \"query_param\": \"query\", \"k\": 10,"
    "  \"filter\": \"($city IS NULL OR city = $city) AND years_experience >= coalesce($min_years, 0)\","
    "  \"include\": [\"full_name\", \"title\", \"city\", \"years_experience\", \"status\"]},"
    " \"allow\": {\"roles\": [\"agent\", \"reader\", \"writer\"]},"
    " \"rate\": {\"per_minute\": 120, \"burst\": 20}}",

    "{\"name\": \"list_open_jobs\","
    " \"description\": \"Open job orders, newest first, optionally in one city or with one title\","
    " \"input_schema\": {\"type\": \"object\", \"additionalProperties\": false,"
    "  \"properties\": {\"city\": {\"type\": \"string\"}, \"title\": {\"type\": \"string\"}}},"
    " \"kind\": \"sql\","
    " \"binding\": {\"datasets\": [\"job_orders\"], \"max_rows\": 50,"
    "  \"query\": \"SELECT job_order_id, title, city, bill_rate, opened_at FROM job_orders WHERE "
    "status = 'open' AND ($city IS NULL OR city = $city) AND ($title IS NULL OR title = $title) "
    "ORDER BY opened_at DESC, job_order_id\"},"
    " \"allow\": {\"roles\": [\"agent\", \"reader\", \"writer\"]},"
    " \"rate\": {\"per_minute\": 120, \"burst\": 20}}",

    "{\"name\": \"update_phone\","
    " \"description\": \"Change the phone number of an existing candidate\","
    " \"input_schema\": {\"type\": \"object\", \"additionalProperties\": false,"
    "  \"required\": [\"candidate_id\", \"phone\"],"
    "  \"properties\": {\"candidate_id\": {\"type\": \"integer\", \"minimum\": 1},"
    "                 \"phone\": {\"type\": \"string\", \"minLength\": 3, \"maxLength\": 32}}},"
    " \"kind\": \"upsert\", \"binding\": {\"dataset\": \"candidates\", \"columns\": [\"phone\"]},"
    " \"allow\": {\"roles\": [\"agent\", \"writer\"]}, \"grants_write\": true,"
    " \"rate\": {\"per_minute\": 30, \"burst\": 5}}",

    "{\"name\": \"create_placement\","
    " \"description\": \"Place a candidate on a job order from a start date (YYYY-MM-DD)\","
    " \"input_schema\": {\"type\": \"object\", \"additionalProperties\": false,"
    "  \"required\": [\"placement_id\", \"candidate_id\", \"job_order_id\", \"start_date\"],"
    "  \"properties\": {\"placement_id\": {\"type\": \"integer\", \"minimum\": 1},"
    "                 \"candidate_id\": {\"type\": \"integer\", \"minimum\": 1},"
    "                 \"job_order_id\": {\"type\": \"integer\", \"minimum\": 1},"
    "                 \"start_date\": {\"type\": \"string\", \"minLength\": 10, \"maxLength\": 10}}},"
    " \"kind\": \"insert\","
    " \"binding\": {\"dataset\": \"placements\","
    "  \"columns\": [\"placement_id\", \"candidate_id\", \"job_order_id\", \"start_date\"],"
    "  \"references\": {\"candidate_id\": \"candidates\", \"job_order_id\": \"job_orders\"}},"
    " \"allow\": {\"roles\": [\"agent\", \"writer\"]}, \"grants_write\": true,"
    " \"rate\": {\"per_minute\": 30, \"burst\": 5}}",
};
/* clang-format on */

/* One request with a JSON body; 0 with *status and *out (new, may be NULL). */
static int
call(lh_client *c, const char *method, const char *path, const char *body, long *status,
     json_t **out)
{
    lh_buf text;
    lh_buf_init(&text);
    int rc = lh_client_request(c, method, path, body, NULL, status, &text);
    *out = rc == 0 ? json_loadb(text.data ? text.data : "", text.len, 0, NULL) : NULL;
    if (rc == 0 && (*status < 200 || *status >= 300))
        rc = lh_client_print_error(*status, &text);
    lh_buf_free(&text);
    return rc;
}

/* The resume index, built once (a later run keeps it; refresh it through the API). */
static int
ensure_index(lh_client *c)
{
    long status = 0;
    json_t *out = NULL;
    lh_buf probe;
    lh_buf_init(&probe);
    int rc =
        lh_client_request(c, "GET", "/vectors/indexes/" DEMO_INDEX, NULL, NULL, &status, &probe);
    lh_buf_free(&probe);
    if (rc != 0 || status == 200)
        return rc;
    int64_t t0 = lh_mono_us();
    rc = call(c, "POST", "/vectors/indexes",
              "{\"name\": \"" DEMO_INDEX "\", \"dataset\": \"candidates\", \"id_column\": "
              "\"candidate_id\", \"text_column\": \"resume_text\", \"model\": \"builtin\"}",
              &status, &out);
    char *job =
        rc == 0 ? lh_sprintf("/jobs/%s", json_string_value(json_object_get(out, "job_id"))) : NULL;
    json_decref(out);
    out = NULL;
    for (; rc == 0;) {
        if ((rc = call(c, "GET", job, NULL, &status, &out)) != 0)
            break;
        const char *state = json_string_value(json_object_get(out, "state"));
        if (state && strcmp(state, "succeeded") == 0)
            break;
        if (!state || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0) {
            fprintf(stderr, "lakehouse demo: the resume index was not built (%s)\n",
                    json_string_value(json_object_get(json_object_get(out, "error"), "message")));
            rc = 1;
            break;
        }
        json_decref(out);
        out = NULL;
        usleep(100 * 1000);
    }
    json_decref(out);
    free(job);
    if (rc == 0)
        fprintf(stderr, "  indexed   resumes    in %.2f s (" DEMO_INDEX ")\n",
                (double)(lh_mono_us() - t0) / 1e6);
    return rc;
}

int
lh_demo_tools(lh_client *c)
{
    int rc = ensure_index(c);
    for (size_t i = 0; rc == 0 && i < sizeof DEMO_TOOLS / sizeof DEMO_TOOLS[0]; i++) {
        json_t *def = json_loads(DEMO_TOOLS[i], 0, NULL), *out = NULL;
        const char *name = json_string_value(json_object_get(def, "name"));
        long status = 0;
        lh_buf text;
        lh_buf_init(&text);
        rc = lh_client_request(c, "POST", "/tools", DEMO_TOOLS[i], NULL, &status, &text);
        if (rc == 0 && status == 409) { /* there from an earlier run: its next version */
            char *path = lh_sprintf("/tools/%s", name);
            lh_buf_free(&text);
            lh_buf_init(&text);
            rc = lh_client_request(c, "PUT", path, DEMO_TOOLS[i], NULL, &status, &text);
            free(path);
        }
        if (rc == 0 && status >= 300)
            rc = lh_client_print_error(status, &text);
        out = rc == 0 ? json_loadb(text.data, text.len, 0, NULL) : NULL;
        if (rc == 0)
            fprintf(stderr, "  tool      %-18s version %lld\n", name,
                    (long long)json_integer_value(json_object_get(out, "version")));
        lh_buf_free(&text);
        json_decref(out);
        json_decref(def);
    }
    return rc;
}

/* The rows of one query (new), or NULL after printing why. */
static json_t *
query_rows(lh_client *c, const char *sql)
{
    json_t *req = json_pack("{s:s}", "sql", sql), *out = NULL;
    char *body = json_dumps(req, JSON_COMPACT);
    long status = 0;
    int rc = call(c, "POST", "/query", body, &status, &out);
    free(body);
    json_decref(req);
    json_t *rows = rc == 0 ? json_incref(json_object_get(out, "rows")) : NULL;
    json_decref(out);
    return rows;
}

/* The id of the live workspace named name (into id), "" when there is none. */
static int
find_workspace(lh_client *c, const char *name, char *id, size_t size)
{
    long status = 0;
    json_t *out = NULL;
    int rc = call(c, "GET", "/workspaces?kind=search&q=demo", NULL, &status, &out);
    size_t i;
    json_t *ws;
    id[0] = '\0';
    json_array_foreach(json_object_get(out, "workspaces"), i, ws)
    {
        const char *n = json_string_value(json_object_get(ws, "name"));
        if (n && strcmp(n, name) == 0 && !id[0])
            snprintf(id, size, "%s", json_string_value(json_object_get(ws, "id")));
    }
    json_decref(out);
    return rc;
}

/* POST path with body (taken) → *out (new, may be NULL); prints the error. */
static int
post(lh_client *c, const char *path, json_t *body, json_t **out)
{
    char *text = json_dumps(body, JSON_COMPACT);
    long status = 0;
    int rc = call(c, "POST", path, text, &status, out);
    free(text);
    json_decref(body);
    return rc;
}

int
lh_demo_workspace(lh_client *c)
{
    /* one open job order and the five most experienced candidates in its city: a SQL pick,
     * so the same data gives the same shortlist */
    json_t *jobs = query_rows(c, "SELECT job_order_id, title, city FROM job_orders WHERE "
                                 "status = 'open' ORDER BY job_order_id LIMIT 1");
    json_t *job = json_array_get(jobs, 0);
    if (!job) {
        json_decref(jobs);
        fprintf(stderr, "lakehouse demo: no open job order to make a workspace for\n");
        return jobs ? 1 : 2;
    }
    long long job_id = (long long)json_integer_value(json_object_get(job, "job_order_id"));
    const char *title = json_string_value(json_object_get(job, "title"));
    const char *city = json_string_value(json_object_get(job, "city"));
    char *sql = lh_sprintf("SELECT c.candidate_id FROM candidates c JOIN job_orders j ON c.city = "
                           "j.city WHERE j.job_order_id = %lld ORDER BY c.years_experience DESC, "
                           "c.candidate_id LIMIT 5",
                           job_id);
    json_t *picks = query_rows(c, sql);
    free(sql);
    char *name = lh_sprintf("job order %lld (demo)", job_id);
    char *purpose =
        lh_sprintf("fill job order %lld: %s in %s", job_id, title ? title : "?", city ? city : "?");
    char id[128] = "";
    json_t *out = NULL;
    int rc = picks ? find_workspace(c, name, id, sizeof id) : 2;
    bool made = false;
    if (rc == 0 && !id[0]) { /* a re-run keeps the one made before */
        rc = post(c, "/workspaces",
                  json_pack("{s:s, s:s, s:s, s:s, s:[s,s]}", "name", name, "kind", "search", "tier",
                            "weekly", "description", purpose, "tags", "demo", "staffing"),
                  &out);
        if (rc == 0)
            snprintf(id, sizeof id, "%s", json_string_value(json_object_get(out, "id")));
        made = rc == 0;
        json_decref(out);
        out = NULL;
    }
    /* only what is not on the list yet: a re-run changes nothing */
    json_t *have = NULL;
    if (rc == 0 && !made) {
        long status = 0;
        char *path_get = lh_sprintf("/workspaces/%s", id);
        rc = call(c, "GET", path_get, NULL, &status, &have);
        free(path_get);
    }
    const json_t *listed = json_object_get(
        json_object_get(json_object_get(have, "shortlists"), "finalists"), "records");
    json_t *records = json_array();
    size_t i, j;
    json_t *r, *x;
    json_array_foreach(picks, i, r)
    {
        const json_t *cand = json_object_get(r, "candidate_id");
        bool there = false;
        json_array_foreach(listed, j, x)
        {
            there = there || json_equal(json_object_get(json_object_get(x, "key"), "candidate_id"),
                                        (json_t *)cand);
        }
        if (!there)
            json_array_append_new(records,
                                  json_pack("{s:s, s:O, s:s}", "dataset", "candidates", "key", cand,
                                            "note", "most years in the job's city"));
    }
    json_decref(have);
    char *path = lh_sprintf("/workspaces/%s/shortlists/finalists/records", id);
    if (rc == 0 && json_array_size(records) > 0)
        rc = post(c, path, json_pack("{s:o}", "records", records), &out);
    else
        json_decref(records);
    free(path);
    json_decref(out);
    out = NULL;
    if (rc == 0 && made) {
        path = lh_sprintf("/workspaces/%s/notes", id);
        rc = post(c, path,
                  json_pack("{s:s}", "text",
                            "shortlist: the five candidates with the most years of experience "
                            "in the job's city; call them before the end of the week"),
                  &out);
        free(path);
        json_decref(out);
    }
    if (rc == 0)
        fprintf(stderr, "  workspace %-18s %s, %zu on the shortlist%s\n", id, name,
                json_array_size(picks), made ? "" : " (kept from an earlier run)");
    json_decref(picks);
    json_decref(jobs);
    free(purpose);
    free(name);
    return rc;
}
