/*
 * test_fault.c — fault injection, SQLite-style (core.h lh_fault_*): for each operation
 * that changes the store — a file ingest creating a dataset, an append, a row change and
 * a vector index build — and for each kind of fault (a fallible allocation, a storage
 * operation, a DuckDB statement), make the 1st, 2nd, 3rd, ... call of that kind fail
 * until the operation runs through without reaching the Nth. Every run must end in a
 * clean error (rc < 0 with a message) or a success, and the store must be all or
 * nothing: after a restart (everything reopened from the buckets) the dataset is at its
 * old version or its new one, its rows are queryable and every file its manifest names
 * exists; an index is absent or searchable. Leaks show up under ASan.
 *
 * Each run starts from a fresh house in a new scratch directory, so a run that half
 * succeeded cannot hide what the next one does.
 */
#include "testutil.h"

#include "agent/agent.h"
#include "ingest/ingest.h"
#include "vector/vector.h"

static char *no_env[] = {NULL};

/* The run in progress, for failure messages. */
static char current_run[1024];

/* ---- a house over a scratch directory ------------------------------------------------ */

typedef struct house {
    char *dir;      /* scratch: lakehouse.toml, the source files, data/ */
    char *slash;    /* dir + '/', the engine's allowed directory */
    char *work_dir; /* data/work */
    lh_config *cfg;
    lh_buckets *buckets;
    lh_engine *eng;
    lh_cache *cache;
    lh_catalog *cat;
    lh_vectors *vec;
    lh_tools *tools;
    json_t *records;  /* the audit records the registry made (test_audit_unavailable) */
    bool audit_fails; /* the audit trail refuses every record */
} house;

/* assert_int_equal naming the run */
#define expect_eq(actual, expected) expect_eq_at((int64_t)(actual), (int64_t)(expected), __LINE__)

static void
expect_eq_at(int64_t actual, int64_t expected, int line)
{
    if (actual == expected)
        return;
    print_error("[%s] line %d: %lld, expected %lld\n", current_run, line, (long long)actual,
                (long long)expected);
    fail();
}

static void
must(int rc, const lh_err *err, const char *what)
{
    if (rc != 0)
        print_error("[%s] %s: rc %d: %s (%s)\n", current_run, what, rc, err->message, err->detail);
    assert_int_equal(rc, 0);
}

/* The registry's audit trail: records kept in memory, or refused (503) when asked. */
static int
audit_record(void *ctx, const json_t *record, lh_err *err)
{
    house *h = ctx;
    if (h->audit_fails)
        return lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable", "the test refuses it");
    json_array_append_new(h->records, json_deep_copy(record));
    return 0;
}

/* Open everything over h->dir as `lakehouse serve` does (one engine for both roles). */
static void
house_start(house *h)
{
    lh_err err;
    lh_err_clear(&err);
    char *cfg_path = lh_sprintf("%s/lakehouse.toml", h->dir);
    must(lh_config_load(cfg_path, no_env, &h->cfg, &err), &err, "config");
    free(cfg_path);
    must(lh_buckets_open(h->cfg, &h->buckets, &err), &err, "buckets");
    const char *dirs[] = {h->slash, NULL};
    lh_engine_opts eo = {.threads = 1, .allowed_dirs = dirs};
    must(lh_engine_open(&eo, &h->eng, &err), &err, "engine");
    char *objects = lh_sprintf("%s/data/cache", h->dir);
    h->cache = lh_cache_new(objects, 64 << 20);
    free(objects);
    lh_catalog_deps cd = {.buckets = h->buckets,
                          .engine = h->eng,
                          .views = h->eng,
                          .cache = h->cache,
                          .work_dir = h->work_dir};
    must(lh_catalog_open(&cd, &h->cat, &err), &err, "catalog");
    lh_vectors_deps vd = {.config = h->cfg,
                          .buckets = h->buckets,
                          .catalog = h->cat,
                          .cache = h->cache,
                          .engine = h->eng,
                          .views = h->eng,
                          .work_dir = h->work_dir};
    must(lh_vectors_open(&vd, &h->vec, &err), &err, "vectors");
    lh_tools_deps td = {.config = h->cfg,
                        .buckets = h->buckets,
                        .catalog = h->cat,
                        .engine = h->eng,
                        .internal_engine = h->eng,
                        .vectors = h->vec,
                        .audit = audit_record,
                        .audit_ctx = h};
    must(lh_tools_open(&td, &h->tools, &err), &err, "tools");
}

static void
house_stop(house *h)
{
    lh_tools_close(h->tools);
    h->tools = NULL;
    lh_vectors_close(h->vec);
    lh_catalog_close(h->cat);
    lh_cache_free(h->cache);
    lh_buckets_close(h->buckets);
    lh_engine_close(h->eng);
    lh_config_free(h->cfg);
    h->vec = NULL;
    h->cat = NULL;
    h->cache = NULL;
    h->buckets = NULL;
    h->eng = NULL;
    h->cfg = NULL;
}

static void
house_open(house *h)
{
    memset(h, 0, sizeof *h);
    h->records = json_array();
    h->dir = lh_test_mkdtemp("fault_");
    h->slash = lh_sprintf("%s/", h->dir);
    h->work_dir = lh_sprintf("%s/data/work", h->dir);
    char *data = lh_sprintf("%s/data", h->dir);
    char *cache = lh_sprintf("%s/data/cache", h->dir);
    assert_int_equal(mkdir(data, 0700), 0);
    assert_int_equal(mkdir(h->work_dir, 0700), 0);
    assert_int_equal(mkdir(cache, 0700), 0);
    free(data);
    free(cache);
    char *cfg = lh_sprintf("[server]\n"
                           "data_dir = \"%s/data\"\n"
                           "\n"
                           "[storage]\n"
                           "probe_interval_ms = 0\n"
                           "journal_flush_ms = 3600000\n",
                           h->dir);
    char *cfg_path = lh_sprintf("%s/lakehouse.toml", h->dir);
    FILE *fp = fopen(cfg_path, "w");
    assert_non_null(fp);
    fputs(cfg, fp);
    fclose(fp);
    free(cfg_path);
    free(cfg);
    house_start(h);
}

static void
house_close(house *h)
{
    house_stop(h);
    json_decref(h->records);
    lh_test_rm_rf(h->dir);
    free(h->dir);
    free(h->slash);
    free(h->work_dir);
}

/* A restart: every in-memory state dropped and rebuilt from the buckets. */
static void
house_restart(house *h)
{
    house_stop(h);
    house_start(h);
}

/* A source file in the scratch directory (not in the data dir); returns its path (new). */
static char *
source_file(house *h, const char *name, const char *text)
{
    char *path = lh_sprintf("%s/%s", h->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

static int
ingest(house *h, const char *dataset, lh_ingest_mode mode, const char *format, const char *name,
       const char *text, const char *metadata, lh_err *err)
{
    char *path = source_file(h, name, text);
    json_t *meta = NULL;
    if (metadata) {
        json_t *given = json_loads(metadata, 0, NULL);
        must(lh_catalog_check_metadata(given, &meta, err), err, "metadata");
        json_decref(given);
    }
    lh_ingest_file_opts o = {.dataset = dataset,
                             .format = format,
                             .mode = mode,
                             .src_path = path,
                             .src_bytes = (int64_t)strlen(text),
                             .metadata = meta,
                             .source_object = name,
                             .actor = "test"};
    json_t *result = NULL;
    int rc = lh_ingest_file(h->cat, h->eng, h->buckets, &o, &result, err);
    json_decref(result);
    json_decref(meta);
    unlink(path);
    free(path);
    return rc;
}

/* ---- what a restart may show --------------------------------------------------------- */

/* The first column of the first row of sql as an integer (-1: NULL). */
static int64_t
scalar(house *h, const char *sql)
{
    lh_err err;
    lh_err_clear(&err);
    json_t *rows = NULL;
    must(lh_engine_rows(h->eng, sql, &rows, &err), &err, sql);
    json_t *row = json_array_get(rows, 0);
    json_t *v = json_object_iter_value(json_object_iter(row));
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
    json_decref(rows);
    return n;
}

/* The dataset's version (0: absent) after checking that its manifest's files all exist
 * and its view answers with the manifest's row count. */
static int64_t
dataset_state(house *h, const char *dataset)
{
    lh_err err;
    lh_err_clear(&err);
    json_t *m = NULL;
    int rc = lh_catalog_get(h->cat, dataset, &m, &err);
    if (rc == LH_ENOTFOUND)
        return 0;
    must(rc, &err, "catalog get");
    int64_t version = (int64_t)json_integer_value(json_object_get(m, "version"));
    lh_store *store = lh_buckets_primary(h->buckets);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(m, "files"), i, f)
    {
        const char *key = json_string_value(json_object_get(f, "path"));
        if (lh_store_head(store, key, NULL, &err) != 0) {
            print_error("version %lld names %s: %s\n", (long long)version, key, err.message);
            fail();
        }
    }
    char *sql = lh_sprintf("SELECT count(*) FROM \"%s\"", dataset);
    expect_eq(scalar(h, sql), json_integer_value(json_object_get(m, "row_count")));
    free(sql);
    json_decref(m);
    return version;
}

/* ---- the operations ------------------------------------------------------------------ */

#define PEOPLE_CSV "id,name,score\n1,ada,90\n2,bob,75\n3,cy,60\n"

typedef struct op {
    const char *name;
    void (*prepare)(house *h); /* runs unarmed */
    int (*run)(house *h, lh_err *err);
    /* after a restart: 0 when the house shows the state before the run, 1 after it */
    int (*state)(house *h);
} op;

static void
prepare_nothing(house *h)
{
}

static int
run_create(house *h, lh_err *err)
{
    return ingest(h, "people", LH_INGEST_CREATE, "csv", "people.csv", PEOPLE_CSV, NULL, err);
}

static int
state_create(house *h)
{
    int64_t version = dataset_state(h, "people");
    expect_eq(version == 0 || version == 1, 1);
    if (version == 1)
        expect_eq(scalar(h, "SELECT sum(score) FROM people"), 225);
    return (int)version;
}

static void
prepare_people(house *h)
{
    lh_err err;
    lh_err_clear(&err);
    must(ingest(h, "people", LH_INGEST_CREATE, "csv", "people.csv", PEOPLE_CSV,
                "{\"primary_key\": [\"id\"]}", &err),
         &err, "ingest people");
}

static int
run_append(house *h, lh_err *err)
{
    return ingest(h, "people", LH_INGEST_APPEND, "json", "more.json",
                  "[{\"id\": 4, \"name\": \"dee\", \"score\": 50},"
                  " {\"id\": 5, \"name\": \"eve\", \"score\": 40}]",
                  NULL, err);
}

static int
state_append(house *h)
{
    int64_t version = dataset_state(h, "people");
    expect_eq(version == 1 || version == 2, 1);
    expect_eq(scalar(h, "SELECT count(*) FROM people"), version == 1 ? 3 : 5);
    return (int)version - 1;
}

static int
run_rows(house *h, lh_err *err)
{
    json_t *upsert = json_loads("[{\"id\": 2, \"score\": 77}, {\"id\": 6, \"name\": \"fay\","
                                " \"score\": 30}, {\"id\": 7, \"name\": \"gus\", \"score\": 20}]",
                                0, NULL);
    json_t *deletes = json_loads("[{\"id\": 3}]", 0, NULL);
    lh_rows_opts o = {.dataset = "people",
                      .upsert = upsert,
                      .deletes = deletes,
                      .source = "test",
                      .actor = "test"};
    json_t *result = NULL;
    int rc = lh_ingest_rows(h->cat, h->eng, h->buckets, &o, &result, err);
    json_decref(result);
    json_decref(upsert);
    json_decref(deletes);
    return rc;
}

static int
state_rows(house *h)
{
    int64_t version = dataset_state(h, "people");
    expect_eq(version == 1 || version == 2, 1);
    expect_eq(scalar(h, "SELECT count(*) FROM people"), version == 1 ? 3 : 4);
    expect_eq(scalar(h, "SELECT score FROM people WHERE id = 2"), version == 1 ? 75 : 77);
    /* the events of a change are seen with it or not at all */
    lh_err err;
    lh_err_clear(&err);
    lh_events_filter f = {.dataset = "people", .limit = 100};
    json_t *events = NULL;
    must(lh_catalog_events(h->cat, &f, &events, &err), &err, "events");
    if (version == 1) /* only the create's dataset-level event */
        expect_eq(json_array_size(events), 1);
    else
        expect_eq(json_array_size(events) > 1, 1);
    json_decref(events);
    return (int)version - 1;
}

static void
prepare_docs(house *h)
{
    lh_buf csv;
    lh_buf_init(&csv);
    lh_buf_puts(&csv, "doc_id,body\n");
    static const char *const words[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};
    for (int i = 0; i < 24; i++)
        lh_buf_printf(&csv, "d%02d,%s %s report number %d\n", i, words[i % 6],
                      words[(i * 5 + 1) % 6], i);
    lh_err err;
    lh_err_clear(&err);
    must(ingest(h, "docs", LH_INGEST_CREATE, "csv", "docs.csv", csv.data, NULL, &err), &err,
         "ingest docs");
    lh_buf_free(&csv);
}

static int
run_index(house *h, lh_err *err)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", "docs_idx", "dataset", "docs",
                             "id_column", "doc_id", "text_column", "body", "model", "builtin");
    lh_vbuild *b = NULL;
    json_t *out = NULL;
    int rc = lh_vectors_create_begin(h->vec, body, "test", &b, err);
    if (rc == 0)
        rc = lh_vbuild_run(b, NULL, &out, err);
    lh_vbuild_free(b);
    json_decref(out);
    json_decref(body);
    return rc;
}

static int
state_index(house *h)
{
    expect_eq(dataset_state(h, "docs"), 1);
    lh_err err;
    lh_err_clear(&err);
    json_t *got = NULL;
    int rc = lh_vectors_get(h->vec, "docs_idx", &got, &err);
    json_decref(got);
    if (rc == LH_ENOTFOUND)
        return 0;
    must(rc, &err, "index get");
    lh_vsearch s = {.index = "docs_idx", .query = "alpha report", .k = 3};
    json_t *answer = NULL;
    must(lh_vectors_search(h->vec, &s, &answer, &err), &err, "search");
    expect_eq(json_array_size(json_object_get(answer, "hits")), 3);
    json_decref(answer);
    return 1;
}

/* ---- tools: defining one, and calling a write tool ------------------------------------ */

static const lh_principal ADMIN = {.name = "root", .roles = LH_ROLE_ADMIN};
static const lh_principal AGENT = {.name = "bot", .roles = LH_ROLE_AGENT};

#define BY_ID_TOOL                                                                                 \
    "{\"description\": \"a person by id\", \"kind\": \"sql\","                                     \
    " \"input_schema\": {\"type\": \"object\", \"required\": [\"id\"],"                            \
    " \"properties\": {\"id\": {\"type\": \"integer\"}}},"                                         \
    " \"binding\": {\"datasets\": [\"people\"], \"max_rows\": 10,"                                 \
    " \"query\": \"SELECT name, score FROM people WHERE id = $id\"},"                              \
    " \"allow\": {\"roles\": [\"agent\"]}}"
#define SET_SCORE_TOOL                                                                             \
    "{\"description\": \"change a score\", \"kind\": \"upsert\","                                  \
    " \"input_schema\": {\"type\": \"object\", \"required\": [\"id\", \"score\"],"                 \
    " \"properties\": {\"id\": {\"type\": \"integer\"}, \"score\": {\"type\": \"integer\"}}},"     \
    " \"binding\": {\"dataset\": \"people\", \"columns\": [\"score\"]},"                           \
    " \"allow\": {\"roles\": [\"agent\"]}, \"grants_write\": true}"

static int
put_tool(house *h, const char *name, const char *text, lh_err *err)
{
    json_t *def = json_loads(text, 0, NULL), *out = NULL;
    assert_non_null(def);
    int rc = lh_tools_put(h->tools, &ADMIN, name, def, true, &out, err);
    json_decref(out);
    json_decref(def);
    return rc;
}

static int
run_tool_put(house *h, lh_err *err)
{
    return put_tool(h, "by_id", BY_ID_TOOL, err);
}

/* 1 when the tool is defined and answers, 0 when it is absent. */
static int
state_tool_put(house *h)
{
    lh_err err;
    lh_err_clear(&err);
    json_t *got = NULL, *args = json_pack("{s:i}", "id", 2), *answer = NULL;
    int rc = lh_tools_get(h->tools, &ADMIN, "by_id", 0, &got, &err);
    json_decref(got);
    if (rc == LH_ENOTFOUND) {
        json_decref(args);
        return 0;
    }
    must(rc, &err, "tool get");
    lh_tool_call c = {.principal = &AGENT, .name = "by_id", .arguments = args, .via = "test"};
    must(lh_tools_call(h->tools, &c, &answer, NULL, &err), &err, "tool call");
    json_t *row = json_array_get(json_object_get(json_object_get(answer, "result"), "rows"), 0);
    expect_eq(json_integer_value(json_object_get(row, "score")), 75);
    json_decref(answer);
    json_decref(args);
    return 1;
}

static void
prepare_set_score(house *h)
{
    prepare_people(h);
    lh_err err;
    lh_err_clear(&err);
    must(put_tool(h, "set_score", SET_SCORE_TOOL, &err), &err, "put set_score");
}

static int
call_set_score(house *h, int64_t score, json_t **answer, lh_err *err)
{
    json_t *args = json_pack("{s:i, s:I}", "id", 2, "score", (json_int_t)score);
    lh_tool_call c = {.principal = &AGENT, .name = "set_score", .arguments = args, .via = "test"};
    int rc = lh_tools_call(h->tools, &c, answer, NULL, err);
    json_decref(args);
    return rc;
}

/* A write tool call: every outcome, failed or not, leaves exactly one audit record. */
static int
run_tool_call(house *h, lh_err *err)
{
    size_t before = json_array_size(h->records);
    json_t *answer = NULL;
    int rc = call_set_score(h, 77, &answer, err);
    json_decref(answer);
    expect_eq(json_array_size(h->records), before + 1);
    const json_t *record = json_array_get(h->records, before);
    expect_eq(strcmp(json_string_value(json_object_get(record, "outcome")), "ok") == 0, rc == 0);
    return rc;
}

static int
state_tool_call(house *h)
{
    int64_t version = dataset_state(h, "people");
    expect_eq(version == 1 || version == 2, 1);
    expect_eq(scalar(h, "SELECT score FROM people WHERE id = 2"), version == 1 ? 75 : 77);
    expect_eq(scalar(h, "SELECT count(*) FROM people"), 3);
    return (int)version - 1;
}

static const op ops[] = {
    {"csv ingest (create)", prepare_nothing, run_create, state_create},
    {"json ingest (append)", prepare_people, run_append, state_append},
    {"row changes", prepare_people, run_rows, state_rows},
    {"vector index build", prepare_docs, run_index, state_index},
    {"tool put", prepare_people, run_tool_put, state_tool_put},
    {"write tool call", prepare_set_score, run_tool_call, state_tool_call},
};

/* ---- the loop ------------------------------------------------------------------------ */

static const char *const kind_names[] = {"allocation", "storage", "duckdb"};

/* Fail the Nth call of kind (persistent: and every later one) for N = 1, 2, ... until the
 * operation no longer reaches N. Returns the number of runs. */
static int64_t
fault_loop(const op *o, lh_fault_kind kind, bool persistent)
{
    /* LH_FAULT_STRIDE=k: every kth point only (the sanitizer build; see CMakeLists.txt) */
    const char *stride_env = getenv("LH_FAULT_STRIDE");
    int64_t stride = stride_env ? strtoll(stride_env, NULL, 10) : 1;
    if (stride < 1)
        stride = 1;
    for (int64_t n = 1, runs = 1;; n += stride, runs++) {
        house h;
        house_open(&h);
        o->prepare(&h);
        lh_err err;
        lh_err_clear(&err);
        lh_fault_arm(kind, n, persistent);
        int rc = o->run(&h, &err);
        int64_t hits = lh_fault_hits(kind);
        lh_fault_disarm();
        snprintf(current_run, sizeof current_run, "%s, %s fault %lld%s: rc %d '%.300s' (%.300s)",
                 o->name, kind_names[kind], (long long)n, persistent ? " and on" : "", rc,
                 err.message, err.detail);
        if (rc != 0 && (hits == 0 || rc > 0 || err.message[0] == '\0'))
            print_error("%s, %s fault %lld: rc %d (%lld hit): '%s' (%s)\n", o->name,
                        kind_names[kind], (long long)n, rc, (long long)hits, err.message,
                        err.detail);
        assert_true(rc <= 0);
        if (rc < 0) {
            assert_true(hits > 0);       /* it failed because of the fault, */
            assert_true(err.message[0]); /* and says what failed */
        }
        /* What the process shows now, and what a restart shows, agree. Not after persistent
         * faults: a commit that is stored but whose view the failing engine could not
         * redefine leaves the old view until the next commit or a restart (logged). */
        strcat(current_run, " [live]");
        int live = persistent ? -1 : o->state(&h);
        house_restart(&h);
        strcat(current_run, " [restarted]");
        int after = o->state(&h);
        if (persistent)
            live = after;
        if (live != after || (rc == 0 && after != 1))
            print_error("%s, %s fault %lld: rc %d, state %d live / %d after a restart\n", o->name,
                        kind_names[kind], (long long)n, rc, live, after);
        assert_int_equal(live, after);
        if (rc == 0)
            assert_int_equal(after, 1);
        house_close(&h);
        if (hits == 0)
            return runs;
        assert_true(n < 5000);
    }
}

static void
test_faults(void **state)
{
    const op *o = *state;
    for (int kind = 0; kind < LH_FAULT_KINDS; kind++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            int64_t t0 = lh_mono_us();
            int64_t runs = fault_loop(o, (lh_fault_kind)kind, persistent);
            print_message("%s: %s faults%s: %lld runs (%lld ms)\n", o->name, kind_names[kind],
                          persistent ? " (the Nth and every later call)" : "", (long long)runs,
                          (long long)((lh_mono_us() - t0) / 1000));
        }
    }
}

/* The audit trail refusing a record: a read call answers 503 audit_unavailable and gives
 * no result; a write has committed by then (all of it: a restart shows the new version
 * whole) and its 503 names the committed version. */
static void
test_audit_unavailable(void **state)
{
    (void)state;
    house h;
    house_open(&h);
    prepare_set_score(&h);
    lh_err err;
    lh_err_clear(&err);
    must(put_tool(&h, "by_id", BY_ID_TOOL, &err), &err, "put by_id");
    h.audit_fails = true;
    json_t *args = json_pack("{s:i}", "id", 2), *answer = NULL;
    lh_tool_call c = {.principal = &AGENT, .name = "by_id", .arguments = args, .via = "test"};
    lh_tool_outcome o;
    assert_int_equal(lh_tools_call(h.tools, &c, &answer, &o, &err), LH_EUNAVAIL);
    assert_null(answer);
    assert_int_equal(err.http_status, 503);
    assert_string_equal(err.code, "audit_unavailable");
    assert_string_equal(err.detail, ""); /* a read committed nothing */
    json_decref(args);

    assert_int_equal(call_set_score(&h, 99, &answer, &err), LH_EUNAVAIL);
    assert_null(answer);
    assert_string_equal(err.code, "audit_unavailable");
    assert_non_null(strstr(err.detail, "committed"));
    assert_non_null(strstr(err.detail, "\"people\":2"));
    expect_eq(dataset_state(&h, "people"), 2);
    house_restart(&h);
    expect_eq(dataset_state(&h, "people"), 2);
    expect_eq(scalar(&h, "SELECT score FROM people WHERE id = 2"), 99);
    assert_int_equal(json_array_size(h.records), 0);
    house_close(&h);
}

/* The hooks themselves: unarmed nothing fails; armed, exactly the Nth (or every call from
 * the Nth on, persistent) of the armed kind does. */
static void
test_hooks(void **state)
{
    void *p = lh_try_malloc(16);
    assert_non_null(p);
    free(p);
    lh_fault_arm(LH_FAULT_ALLOC, 2, false);
    assert_false(lh_fault_hit(LH_FAULT_STORE));
    p = lh_try_malloc(16);
    assert_non_null(p);
    assert_null(lh_try_realloc(p, 32));
    p = lh_try_realloc(p, 64); /* the failed realloc left p alone */
    assert_non_null(p);
    assert_int_equal(lh_fault_calls(LH_FAULT_ALLOC), 3);
    assert_int_equal(lh_fault_hits(LH_FAULT_ALLOC), 1);
    lh_fault_arm(LH_FAULT_ALLOC, 1, true);
    lh_buf b;
    lh_buf_init(&b);
    assert_int_equal(lh_buf_try_append(&b, "x", 1), LH_ENOMEM);
    assert_int_equal(lh_buf_try_reserve(&b, 10), LH_ENOMEM);
    assert_int_equal(lh_fault_hits(LH_FAULT_ALLOC), 2);
    lh_fault_disarm();
    assert_int_equal(lh_buf_try_append(&b, "x", 1), 0);
    lh_buf_free(&b);
    free(p);

    char *dir = lh_test_mkdtemp("fault_store_");
    lh_store *s = NULL;
    lh_err err;
    lh_err_clear(&err);
    assert_int_equal(lh_store_fs_open(dir, &s, &err), 0);
    lh_fault_arm(LH_FAULT_STORE, 1, false);
    assert_int_equal(lh_store_put_buffer(s, "a/b", "hi", 2, 0, &err), LH_EUNAVAIL);
    assert_string_equal(err.code, "bucket_unavailable");
    assert_int_equal(lh_store_put_buffer(s, "a/b", "hi", 2, 0, &err), 0);
    lh_fault_disarm();
    assert_int_equal(lh_store_delete(s, "a/b", &err), 0);
    lh_store_free(s);
    lh_test_rm_rf(dir);
    free(dir);

    lh_engine *eng = NULL;
    lh_engine_opts eo = {.threads = 1};
    assert_int_equal(lh_engine_open(&eo, &eng, &err), 0);
    lh_fault_arm(LH_FAULT_ENGINE, 1, false);
    json_t *rows = NULL;
    assert_int_equal(lh_engine_rows(eng, "SELECT 1 AS x", &rows, &err), LH_EIO);
    assert_string_equal(err.code, "engine_error");
    assert_int_equal(lh_engine_rows(eng, "SELECT 1 AS x", &rows, &err), 0);
    lh_fault_disarm();
    json_decref(rows);
    lh_engine_close(eng);
}

int
main(void)
{
    lh_log_set_level(LH_LOG_OFF); /* failures are logged as warnings; keep the output clean */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hooks),
        {"faults_ingest_create", test_faults, NULL, NULL, (void *)&ops[0]},
        {"faults_ingest_append", test_faults, NULL, NULL, (void *)&ops[1]},
        {"faults_row_changes", test_faults, NULL, NULL, (void *)&ops[2]},
        {"faults_index_build", test_faults, NULL, NULL, (void *)&ops[3]},
        {"faults_tool_put", test_faults, NULL, NULL, (void *)&ops[4]},
        {"faults_tool_call", test_faults, NULL, NULL, (void *)&ops[5]},
        cmocka_unit_test(test_audit_unavailable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
