/*
 * cmd_client.c — `lakehouse sql`, `ingest`, `datasets` and `search`: clients of a
 * running server.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Shared option parsing: --config FILE plus command-specific flags with values. */
typedef struct opt {
    const char *name; /* "--dataset" */
    const char **value;
} opt;

static int
parse(const char *cmd, int argc, char **argv, opt *opts, const char **positional, int n_positional,
      const char **config)
{
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (++i >= argc) {
                fprintf(stderr, "lakehouse %s: %s needs a value\n", cmd, a);
                return 2;
            }
            *config = argv[i];
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            bool found = false;
            for (opt *o = opts; o && o->name; o++)
                if (strcmp(o->name, a) == 0) {
                    if (++i >= argc) {
                        fprintf(stderr, "lakehouse %s: %s needs a value\n", cmd, a);
                        return 2;
                    }
                    *o->value = argv[i];
                    found = true;
                }
            if (!found) {
                fprintf(stderr, "lakehouse %s: unknown option '%s'; see 'lakehouse help %s'\n", cmd,
                        a, cmd);
                return 2;
            }
            continue;
        }
        if (pos >= n_positional) {
            fprintf(stderr, "lakehouse %s: unexpected argument '%s'\n", cmd, a);
            return 2;
        }
        positional[pos++] = a;
    }
    if (pos < n_positional) {
        fprintf(stderr, "lakehouse %s: missing argument; see 'lakehouse help %s'\n", cmd, cmd);
        return 2;
    }
    return 0;
}

/* ---- sql ---------------------------------------------------------------------------------- */

void
lh_cmd_sql_help(void)
{
    printf("usage: lakehouse sql \"SELECT ...\" [--format table|csv|json|ndjson] [--limit N]\n"
           "                     [--config FILE]\n\n"
           "Runs one SELECT on the running server. On a terminal the answer is a table; when\n"
           "piped it is CSV unless --format says otherwise. The server is found through the\n"
           "configuration (or LAKEHOUSE_URL); the token is LAKEHOUSE_TOKEN or the data dir's\n"
           "admin.token.\n");
}

int
lh_cmd_sql(int argc, char **argv)
{
    const char *config = NULL, *format = NULL, *limit = NULL, *sql = NULL;
    opt opts[] = {{"--format", &format}, {"--limit", &limit}, {NULL, NULL}};
    lh_client *c = NULL;
    char *body = NULL;
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = 0;
    if ((rc = parse("sql", argc, argv, opts, &sql, 1, &config)) != 0)
        goto out;
    if (format == NULL)
        format = isatty(STDOUT_FILENO) ? "table" : "csv";
    if (strcmp(format, "table") && strcmp(format, "csv") && strcmp(format, "json") &&
        strcmp(format, "ndjson")) {
        fprintf(stderr, "lakehouse sql: --format is table, csv, json or ndjson\n");
        rc = 2;
        goto out;
    }
    if ((rc = lh_client_open(config, &c)) != 0)
        goto out;
    json_t *req = json_pack("{s:s, s:s}", "sql", sql, "format",
                            strcmp(format, "table") == 0 ? "json" : format);
    if (limit)
        json_object_set_new(req, "limit", json_integer(strtoll(limit, NULL, 10)));
    body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if ((rc = lh_client_request(c, "POST", "/query", body, NULL, &status, &out)) != 0)
        goto out;
    if (status != 200) {
        rc = lh_client_print_error(status, &out);
    } else if (strcmp(format, "table") == 0) {
        json_t *res = json_loadb(out.data, out.len, 0, NULL);
        lh_client_print_table(stdout, json_object_get(res, "columns"),
                              json_object_get(res, "rows"));
        json_int_t n = json_integer_value(json_object_get(res, "row_count"));
        printf("(%lld row%s%s)\n", (long long)n, n == 1 ? "" : "s",
               json_is_true(json_object_get(res, "truncated")) ? ", more were cut by the limit"
                                                               : "");
        json_t *e = json_object_get(res, "error");
        if (e) {
            fprintf(stderr, "lakehouse: %s\n", json_string_value(json_object_get(e, "message")));
            rc = 1;
        }
        json_decref(res);
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
out:
    free(body);
    lh_buf_free(&out);
    lh_client_close(c);
    return rc;
}

/* ---- ingest ------------------------------------------------------------------------------- */

void
lh_cmd_ingest_help(void)
{
    printf("usage: lakehouse ingest FILE --dataset NAME [--format csv|json|ndjson|parquet]\n"
           "                        [--mode create|append|replace] [--bucket NAME]\n"
           "                        [--description TEXT] [--owner NAME] [--sensitivity LEVEL]\n"
           "                        [--tags a,b] [--config FILE]\n"
           "       lakehouse ingest postgresql://USER@HOST:PORT/DB --dataset NAME\n"
           "                        (--table [SCHEMA.]TABLE | --query 'SELECT ...')\n"
           "                        [--secret-ref REF] [--since-column COLUMN]\n"
           "                        [--batch-rows N] [--method copy|cursor] [--parallel N]\n"
           "                        [the options above]\n\n"
           "Uploads FILE to the running server as a dataset (the format defaults to the file's\n"
           "extension), or has the server read a PostgreSQL table or query from one snapshot.\n"
           "Prints the new version, rows and columns. Give a PostgreSQL password by --secret-ref\n"
           "(a [REF] table with password = \"...\" in the server's secrets file) rather than in\n"
           "the URL, which other users of this machine can see in the process list.\n");
}

static const char *
format_of(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot == NULL)
        return NULL;
    if (strcmp(dot, ".csv") == 0 || strcmp(dot, ".tsv") == 0 || strcmp(dot, ".txt") == 0)
        return "csv";
    if (strcmp(dot, ".json") == 0)
        return "json";
    if (strcmp(dot, ".ndjson") == 0 || strcmp(dot, ".jsonl") == 0)
        return "ndjson";
    if (strcmp(dot, ".parquet") == 0)
        return "parquet";
    return NULL;
}

int
lh_client_ingest(lh_client *c, const char *file, const char *const *params, json_t **result)
{
    lh_buf path;
    lh_buf_init(&path);
    lh_buf_puts(&path, "/ingest/file?");
    CURL *h = curl_easy_init();
    for (size_t i = 0; params[i]; i += 2) {
        if (params[i + 1] == NULL)
            continue;
        char *v = curl_easy_escape(h, params[i + 1], 0);
        lh_buf_printf(&path, "%s%s=%s", path.data[path.len - 1] == '?' ? "" : "&", params[i], v);
        curl_free(v);
    }
    curl_easy_cleanup(h);
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = 0;
    if ((rc = lh_client_request(c, "POST", path.data, NULL, file, &status, &out)) != 0)
        goto out;
    if (status != 201)
        rc = lh_client_print_error(status, &out);
    else
        *result = json_loadb(out.data, out.len, 0, NULL);
out:
    lh_buf_free(&out);
    lh_buf_free(&path);
    return rc;
}

/* A request whose answer must have status `expect` and be JSON: *json (new), or the
 * server's error printed and 1. */
static int
request_json(lh_client *c, const char *method, const char *path, const char *body, long expect,
             json_t **json)
{
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = 0;
    if ((rc = lh_client_request(c, method, path, body, NULL, &status, &out)) != 0)
        goto out;
    if (status != expect)
        rc = lh_client_print_error(status, &out);
    else if ((*json = json_loadb(out.data, out.len, 0, NULL)) == NULL)
        rc = 1;
out:
    lh_buf_free(&out);
    return rc;
}

/* POST /ingest/db as a job, following its progress on stderr; the result (new) or 1. */
static int
ingest_db(lh_client *c, json_t *body, json_t **result)
{
    json_object_set_new(body, "async", json_true());
    char *text = json_dumps(body, JSON_COMPACT);
    char *path = NULL;
    json_t *job = NULL;
    bool tty = isatty(STDERR_FILENO);
    int rc = 0;
    if ((rc = request_json(c, "POST", "/ingest/db", text, 202, &job)) != 0)
        goto out;
    path = lh_sprintf("/jobs/%s", json_string_value(json_object_get(job, "id")));
    for (;;) {
        const char *state = json_string_value(json_object_get(job, "state"));
        if (state && strcmp(state, "succeeded") == 0) {
            *result = json_incref(json_object_get(job, "result"));
            break;
        }
        if (state && (strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)) {
            json_t *e = json_object_get(job, "error");
            fprintf(stderr, "lakehouse: %s\n",
                    json_string_value(json_object_get(e, "message"))
                        ? json_string_value(json_object_get(e, "message"))
                        : state);
            const char *detail = json_string_value(json_object_get(e, "detail"));
            const char *hint = json_string_value(json_object_get(e, "hint"));
            if (detail && *detail)
                fprintf(stderr, "lakehouse: detail: %s\n", detail);
            if (hint && *hint)
                fprintf(stderr, "lakehouse: hint: %s\n", hint);
            rc = 1;
            break;
        }
        if (tty)
            fprintf(stderr, "\r%lld rows read...",
                    (long long)json_integer_value(
                        json_object_get(json_object_get(job, "progress"), "done")));
        usleep(200 * 1000);
        json_decref(job);
        job = NULL;
        if ((rc = request_json(c, "GET", path, NULL, 200, &job)) != 0)
            break;
    }
    if (tty)
        fprintf(stderr, "\r\033[K");
out:
    free(path);
    json_decref(job);
    free(text);
    return rc;
}

static bool
is_pg_url(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* `lakehouse ingest postgresql://...`: the fields (name, value pairs; NULL values left
 * out) as the body of POST /ingest/db. */
/* A positive number from a command-line option (value may be NULL: *out 0); else 2. */
static int
positive_option(const char *name, const char *value, long long *out)
{
    char *end = NULL;
    *out = value ? strtoll(value, &end, 10) : 0;
    if (value && (*end != '\0' || *out < 1)) {
        fprintf(stderr, "lakehouse ingest: %s needs a positive number\n", name);
        return 2;
    }
    return 0;
}

static int
ingest_pg_cmd(const char *config, const char *dsn, const char *dataset, const char *const *fields,
              const char *batch_rows, const char *parallel, const char *tags)
{
    long long n, streams;
    if (positive_option("--batch-rows", batch_rows, &n) != 0 ||
        positive_option("--parallel", parallel, &streams) != 0)
        return 2;
    json_t *body = json_pack("{s:s, s:s}", "dsn", dsn, "dataset", dataset);
    for (size_t i = 0; fields[i]; i += 2)
        if (fields[i + 1])
            json_object_set_new(body, fields[i], json_string(fields[i + 1]));
    if (batch_rows)
        json_object_set_new(body, "batch_rows", json_integer(n));
    if (parallel) /* the server checks the range */
        json_object_set_new(body, "parallel", json_integer(streams));
    if (tags) {
        json_t *list = json_array();
        char *copy = lh_strdup(tags);
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            json_array_append_new(list, json_string(tok));
        free(copy);
        json_object_set_new(body, "tags", list);
    }
    lh_client *c = NULL;
    json_t *result = NULL;
    int rc = 0;
    if ((rc = lh_client_open(config, &c)) != 0 || (rc = ingest_db(c, body, &result)) != 0)
        goto out;
    if (json_is_true(json_object_get(result, "unchanged")))
        printf("%s: unchanged, no rows newer than the watermark\n", dataset);
    else
        printf("%s: version %lld, %lld rows from %s, %lld in all, %zu columns\n", dataset,
               (long long)json_integer_value(json_object_get(result, "version")),
               (long long)json_integer_value(json_object_get(result, "rows")),
               json_string_value(json_object_get(result, "source")),
               (long long)json_integer_value(json_object_get(result, "total_rows")),
               json_array_size(json_object_get(result, "columns")));
out:
    json_decref(body);
    json_decref(result);
    lh_client_close(c);
    return rc;
}

int
lh_cmd_ingest(int argc, char **argv)
{
    const char *config = NULL, *file = NULL, *dataset = NULL, *format = NULL, *mode = NULL,
               *bucket = NULL, *description = NULL, *owner = NULL, *sensitivity = NULL,
               *tags = NULL, *table = NULL, *query = NULL, *secret_ref = NULL, *since = NULL,
               *batch_rows = NULL, *method = NULL, *parallel = NULL;
    opt opts[] = {{"--dataset", &dataset},
                  {"--format", &format},
                  {"--mode", &mode},
                  {"--bucket", &bucket},
                  {"--description", &description},
                  {"--owner", &owner},
                  {"--sensitivity", &sensitivity},
                  {"--tags", &tags},
                  {"--table", &table},
                  {"--query", &query},
                  {"--secret-ref", &secret_ref},
                  {"--since-column", &since},
                  {"--batch-rows", &batch_rows},
                  {"--method", &method},
                  {"--parallel", &parallel},
                  {NULL, NULL}};
    int rc = parse("ingest", argc, argv, opts, &file, 1, &config);
    if (rc != 0)
        return rc;
    if (dataset == NULL) {
        fprintf(stderr, "lakehouse ingest: --dataset NAME is required\n");
        return 2;
    }
    bool pg = is_pg_url(file);
    if (!pg && (table || query || secret_ref || since || batch_rows || method || parallel)) {
        fprintf(stderr, "lakehouse ingest: --table, --query, --secret-ref, --since-column, "
                        "--batch-rows, --method and --parallel are for postgresql:// sources\n");
        return 2;
    }
    if (pg && !table == !query) {
        fprintf(stderr, "lakehouse ingest: give --table or --query (one of them)\n");
        return 2;
    }
    if (pg) {
        const char *fields[] = {
            "table",       table,       "query", query,  "secret_ref",  secret_ref,  "since_column",
            since,         "method",    method,  "mode", mode,          "bucket",    bucket,
            "description", description, "owner", owner,  "sensitivity", sensitivity, NULL};
        return ingest_pg_cmd(config, file, dataset, fields, batch_rows, parallel, tags);
    }
    if (format == NULL && (format = format_of(file)) == NULL) {
        fprintf(stderr, "lakehouse ingest: cannot tell the format of %s; give --format\n", file);
        return 2;
    }
    lh_client *c = NULL;
    json_t *result = NULL;
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    const char *params[] = {"dataset", dataset,         "format",      format,        "mode",
                            mode,      "bucket",        bucket,        "description", description,
                            "owner",   owner,           "sensitivity", sensitivity,   "tags",
                            tags,      "source_object", base,          NULL};
    if ((rc = lh_client_open(config, &c)) != 0 ||
        (rc = lh_client_ingest(c, file, params, &result)) != 0)
        goto out;
    printf("%s: version %lld, %lld rows in this file, %lld in all, %zu columns\n", dataset,
           (long long)json_integer_value(json_object_get(result, "version")),
           (long long)json_integer_value(json_object_get(result, "rows")),
           (long long)json_integer_value(json_object_get(result, "total_rows")),
           json_array_size(json_object_get(result, "columns")));
out:
    json_decref(result);
    lh_client_close(c);
    return rc;
}

/* ---- datasets ------------------------------------------------------------------------------ */

void
lh_cmd_datasets_help(void)
{
    printf("usage: lakehouse datasets [--config FILE]\n\nLists the datasets of the running "
           "server: name, bucket, version, rows, columns, freshness.\n");
}

/* The datasets answer as a table. */
static void
print_datasets(json_t *res)
{
    json_t *cols = json_array(), *rows = json_array();
    const char *names[] = {"name",    "bucket",    "version", "rows",
                           "columns", "freshness", "owner",   "sensitivity"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        json_array_append_new(cols, json_pack("{s:s}", "name", names[i]));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(res, "datasets"), i, d)
    {
        json_t *meta = json_object_get(d, "metadata");
        json_array_append_new(
            rows,
            json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "name",
                      json_object_get(d, "name"), "bucket", json_object_get(d, "bucket"), "version",
                      json_object_get(d, "version"), "rows", json_object_get(d, "row_count"),
                      "columns", json_object_get(d, "columns"), "freshness",
                      json_object_get(json_object_get(d, "freshness"), "status"), "owner",
                      json_object_get(meta, "owner"), "sensitivity",
                      json_object_get(meta, "sensitivity")));
    }
    lh_client_print_table(stdout, cols, rows);
    json_decref(cols);
    json_decref(rows);
}

int
lh_cmd_datasets(int argc, char **argv)
{
    const char *config = NULL;
    int rc = parse("datasets", argc, argv, NULL, NULL, 0, &config);
    if (rc != 0)
        return rc;
    lh_client *c = NULL;
    json_t *res = NULL;
    if ((rc = lh_client_open(config, &c)) != 0 ||
        (rc = request_json(c, "GET", "/catalog/datasets", NULL, 200, &res)) != 0)
        goto out;
    print_datasets(res);
out:
    json_decref(res);
    lh_client_close(c);
    return rc;
}

/* ---- search ------------------------------------------------------------------------------- */

void
lh_cmd_search_help(void)
{
    printf("usage: lakehouse search INDEX \"text\" [--k N] [--mode vector|text|hybrid]\n"
           "                        [--filter SQL] [--include a,b,...] [--ef N] [--exact true]\n"
           "                        [--format table|json] [--config FILE]\n\n"
           "Searches an index of the running server; the k best chunks come back, best first,\n"
           "with their document id, score and text. --mode vector (the default) embeds the\n"
           "text with the index's model and finds the nearest vectors: with a remote model\n"
           "(ollama:..., openai:...) that is similarity of meaning; the builtin model is\n"
           "lexical (hashed words, word pairs and character trigrams), so it finds similar\n"
           "wording, not meaning. --mode text ranks chunks by the query's words (BM25); --mode\n"
           "hybrid fuses both rankings. --filter is a SQL condition on the index's dataset\n"
           "(\"city = 'Chicago'\"); --include adds dataset columns to each hit. On a terminal\n"
           "the answer is a table; when piped it is the JSON answer.\n");
}

/* The search request's JSON body from the options (new), or NULL after saying which
 * option is wrong. */
static char *
search_body(const char *query, const char *k, const char *ef, const char *filter, const char *exact,
            const char *include, const char *mode)
{
    char *end = NULL;
    long long k_value = k ? strtoll(k, &end, 10) : 10;
    if (k && (*k == '\0' || *end != '\0' || k_value <= 0)) {
        fprintf(stderr, "lakehouse search: --k takes a positive number\n");
        return NULL;
    }
    long long ef_value = ef ? strtoll(ef, &end, 10) : 0;
    if (ef && (*ef == '\0' || *end != '\0' || ef_value <= 0)) {
        fprintf(stderr, "lakehouse search: --ef takes a positive number\n");
        return NULL;
    }
    if (exact && strcmp(exact, "true") && strcmp(exact, "false")) {
        fprintf(stderr, "lakehouse search: --exact is true or false\n");
        return NULL;
    }
    json_t *req = json_pack("{s:s, s:I}", "query", query, "k", (json_int_t)k_value);
    if (ef)
        json_object_set_new(req, "ef", json_integer(ef_value));
    if (filter)
        json_object_set_new(req, "filter", json_string(filter));
    if (exact)
        json_object_set_new(req, "exact", json_boolean(strcmp(exact, "true") == 0));
    if (mode) /* the server names the modes when this is not one */
        json_object_set_new(req, "mode", json_string(mode));
    json_t *names = json_array();
    for (const char *p = include; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0)
            json_array_append_new(names, json_stringn(p, len));
        p = comma ? comma + 1 : p + len;
    }
    json_object_set_new(req, "include", names);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    return body;
}

/* A search answer as a table: doc_id, score, the included columns, the text. */
static void
print_hits(const lh_buf *out)
{
    json_t *res = json_loadb(out->data, out->len, 0, NULL);
    json_t *cols = json_array(), *rows = json_array();
    json_array_append_new(cols, json_pack("{s:s}", "name", "doc_id"));
    json_array_append_new(cols, json_pack("{s:s}", "name", "score"));
    size_t i;
    json_t *hit;
    json_array_foreach(json_object_get(res, "hits"), i, hit)
    {
        json_t *row = json_pack("{s:O?, s:O?}", "doc_id", json_object_get(hit, "doc_id"), "score",
                                json_object_get(hit, "score"));
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(hit, "columns"), key, value)
        {
            json_object_set(row, key, value);
            if (i == 0)
                json_array_append_new(cols, json_pack("{s:s}", "name", key));
        }
        json_object_set(row, "text", json_object_get(hit, "chunk_text"));
        json_array_append_new(rows, row);
    }
    json_array_append_new(cols, json_pack("{s:s}", "name", "text"));
    lh_client_print_table(stdout, cols, rows);
    printf("(%zu hit%s, %s search in %lld us)\n", json_array_size(rows),
           json_array_size(rows) == 1 ? "" : "s", json_string_value(json_object_get(res, "method")),
           (long long)json_integer_value(json_object_get(res, "took_us")));
    json_decref(cols);
    json_decref(rows);
    json_decref(res);
}

int
lh_cmd_search(int argc, char **argv)
{
    const char *config = NULL, *k = NULL, *filter = NULL, *include = NULL, *ef = NULL,
               *exact = NULL, *format = NULL, *mode = NULL;
    const char *positional[2] = {NULL, NULL};
    opt opts[] = {{"--k", &k},       {"--filter", &filter}, {"--include", &include},
                  {"--ef", &ef},     {"--exact", &exact},   {"--format", &format},
                  {"--mode", &mode}, {NULL, NULL}};
    char *body = NULL, *path = NULL;
    lh_client *c = NULL;
    lh_buf out;
    lh_buf_init(&out);
    long status = 0;
    int rc = 0;
    if ((rc = parse("search", argc, argv, opts, positional, 2, &config)) != 0)
        goto out;
    if (format == NULL)
        format = isatty(STDOUT_FILENO) ? "table" : "json";
    if (strcmp(format, "table") && strcmp(format, "json")) {
        fprintf(stderr, "lakehouse search: --format is table or json\n");
        rc = 2;
        goto out;
    }
    if ((body = search_body(positional[1], k, ef, filter, exact, include, mode)) == NULL) {
        rc = 2;
        goto out;
    }
    if ((rc = lh_client_open(config, &c)) != 0)
        goto out;
    /* the index name goes into the path: refuse anything that is not a name */
    if (!lh_name_valid(positional[0])) {
        fprintf(stderr, "lakehouse search: '%s' is not an index name\n", positional[0]);
        rc = 2;
        goto out;
    }
    path = lh_sprintf("/vectors/indexes/%s/search", positional[0]);
    if ((rc = lh_client_request(c, "POST", path, body, NULL, &status, &out)) != 0)
        goto out;
    if (status != 200) {
        rc = lh_client_print_error(status, &out);
    } else if (strcmp(format, "json") == 0) {
        fwrite(out.data, 1, out.len, stdout);
        if (out.len && out.data[out.len - 1] != '\n')
            fputc('\n', stdout);
    } else {
        print_hits(&out);
    }
out:
    lh_buf_free(&out);
    free(path);
    free(body);
    lh_client_close(c);
    return rc;
}
