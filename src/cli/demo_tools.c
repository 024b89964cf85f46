/*
 * demo_tools.c — the demo's agent side: an index over the candidates' resumes and four
 * named tools over the demo data (search_candidates, list_open_jobs, update_phone,
 * create_placement), registered through the API as an admin would. A second run makes
 * each tool's next version. Definitions are data (JSON text below), so they read as
 * docs/API.md's examples do.
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
