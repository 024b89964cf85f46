/*
 * config.c — lakehouse configuration: embedded defaults, then lakehouse.toml, then
 * LAKEHOUSE_<SECTION>_<KEY> environment variables, in that order of precedence.
 *
 * Every key is declared once in the table below with its type, default, bounds and one
 * line of documentation; lakehouse.example.toml is generated from the same table (a
 * unit test keeps the checked-in copy true). Unknown keys and sections are warned
 * about, never silently used; wrong types and out-of-range values refuse the file with
 * "file:line:col: ...". The loaded config is immutable and safe to share.
 */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct key_def {
    const char *section;
    const char *key;
    lh_toml_type type;
    const char *def_str;
    int64_t def_int; /* also the boolean default (0/1) */
    double def_float;
    int64_t min, max;           /* integers: inclusive bounds */
    const char *const *choices; /* strings: allowed values, NULL-terminated, or NULL */
    const char *doc;
} key_def;

static const char *const log_levels[] = {"debug", "info", "warn", "error", "off", NULL};

#define STR(s, k, d, doc)                                                                          \
    {                                                                                              \
        s, k, LH_TOML_STRING, d, 0, 0, 0, 0, NULL, doc                                             \
    }
#define STRC(s, k, d, ch, doc)                                                                     \
    {                                                                                              \
        s, k, LH_TOML_STRING, d, 0, 0, 0, 0, ch, doc                                               \
    }
#define INT(s, k, d, lo, hi, doc)                                                                  \
    {                                                                                              \
        s, k, LH_TOML_INT, NULL, d, 0, lo, hi, NULL, doc                                           \
    }
/* A list of strings from `ch` (a TOML array; in the environment, comma-separated), kept
 * as one comma-separated string (lh_config_list). */
#define LIST(s, k, ch, doc)                                                                        \
    {                                                                                              \
        s, k, LH_TOML_ARRAY, "", 0, 0, 0, 0, ch, doc                                               \
    }
#define BOOL(s, k, d, doc)                                                                         \
    {                                                                                              \
        s, k, LH_TOML_BOOL, NULL, d, 0, 0, 1, NULL, doc                                            \
    }

static const char *const metadata_fields[] = {"owner", "description",     "sensitivity",
                                              "tags",  "freshness_sla_s", NULL};

static const key_def KEYS[] = {
    STR("server", "host", "127.0.0.1", "address to listen on (IPv4 or IPv6 literal)"),
    INT("server", "port", 3100, 0, 65535, "HTTP port; 0 picks a free port and logs it"),
    STR("server", "data_dir", "./data",
        "local state: admin token, caches, the default primary bucket"),
    INT("server", "threads", 4, 1, 256, "HTTP worker threads (epoll thread pool)"),
    INT("server", "max_connections", 1024, 4, 65536,
        "concurrent connections accepted; near the limit the oldest connections still sending "
        "their request headers are closed to make room"),
    INT("server", "max_connections_per_ip", 512, 0, 65536,
        "concurrent connections from one client address (0: no cap); keep it above the "
        "clients of one host, e.g. a load test on loopback"),
    INT("server", "header_timeout_ms", 10000, 100, 3600000,
        "a connection must send complete request headers this soon after it opens or after "
        "its previous answer, or it is closed (however slowly bytes keep coming)"),
    INT("server", "max_body_bytes", 16 << 20, 1024, INT64_C(1) << 40,
        "largest request body accepted by JSON endpoints (413 above)"),
    INT("server", "request_timeout_ms", 30000, 100, 86400000,
        "a request that takes longer to arrive or to answer gets 408"),
    INT("server", "shutdown_grace_ms", 30000, 0, 3600000,
        "on SIGTERM/SIGINT, how long in-flight requests may take to finish"),
    STRC("log", "level", "info", log_levels, "debug | info | warn | error | off"),
    BOOL("log", "access", 1, "one log line per HTTP request"),
    STR("secrets", "file", "/etc/lakehouse/secrets.toml",
        "secrets TOML (mode 0600, owned by the server user); tables are secret_refs"),
    STR("storage", "primary", "primary",
        "the primary bucket: a [[bucket]] of that name, else an fs bucket in "
        "data_dir/buckets/primary"),
    STR("storage", "rescue", "",
        "optional [[bucket]] that reads fall back to when a target is unreachable"),
    STR("storage", "profile_bucket", "",
        "optional [[bucket]] under which profile:{user} buckets are created on demand"),
    STR("storage", "profile_prefix", "profiles/",
        "key prefix of profile buckets inside profile_bucket"),
    INT("storage", "probe_interval_ms", 30000, 0, 86400000,
        "how often every bucket is probed for reachability (0: only on demand)"),
    INT("storage", "max_object_bytes", INT64_C(5) << 30, 1, INT64_C(5) << 40,
        "largest object accepted by PUT /storage/buckets/{b}/objects/{key} (413 above)"),
    INT("storage", "multipart_threshold", 64 << 20, 5 << 20, INT64_C(5) << 30,
        "S3 objects larger than this are uploaded in parts"),
    INT("storage", "part_size", 16 << 20, 5 << 20, INT64_C(5) << 30, "S3 multipart part size"),
    INT("storage", "retries", 3, 0, 10, "extra attempts for transient S3 failures (5xx, timeouts)"),
    INT("storage", "connect_timeout_ms", 5000, 100, 600000, "S3 connection timeout"),
    INT("storage", "request_timeout_ms", 30000, 1000, 3600000,
        "an S3 transfer making no progress for this long fails"),
    INT("storage", "error_ring", 1000, 10, 1000000, "recent bucket errors kept in memory"),
    INT("storage", "journal_flush_events", 100, 1, 1000000,
        "error journal: write a batch after this many events"),
    INT("storage", "journal_flush_ms", 5000, 10, 86400000,
        "error journal: write a batch when the oldest event is this old"),
    INT("storage", "error_coalesce_ms", 10000, 0, 86400000,
        "error journal: identical errors (bucket, op, key, code) within this long of the first "
        "are one record with a count, journaled when the window ends (0: one record each)"),
    INT("engine", "threads", 0, 0, 256, "DuckDB worker threads (0: one per core)"),
    STR("engine", "memory_limit", "",
        "DuckDB memory limit, e.g. \"8GB\" (empty: DuckDB's default)"),
    INT("engine", "cache_max_bytes", INT64_C(10) << 30, 1 << 20, INT64_C(1) << 50,
        "local copies of remote (S3) data files kept for queries; least recently used go first"),
    INT("engine", "spill_bytes", INT64_C(10) << 30, 0, INT64_C(1) << 50,
        "what a query cannot keep in memory goes to data_dir/spill, up to this many bytes in "
        "all (0: nothing; such a query fails with 503)"),
    INT("engine", "query_timeout_ms", 30000, 100, 86400000,
        "a query running longer is interrupted and answered 408"),
    INT("engine", "max_result_bytes", INT64_C(1) << 30, 1024, INT64_C(1) << 40,
        "largest rendered query result; 413 before the first byte, else the stream ends in an "
        "error"),
    INT("engine", "max_concurrent_queries", 0, 0, 4096,
        "user queries (POST /query, search filters) running at once; more wait for a slot, "
        "and the wait counts against query_timeout_ms (0: twice the cores, at least 4)"),
    INT("engine", "max_queries_per_principal", 0, 0, 4096,
        "slots one principal may hold at once, so others still get one (0: half of "
        "max_concurrent_queries, at least 1)"),
    INT("engine", "max_queued_per_principal", 16, 0, 65536,
        "queries of one principal waiting for a slot; the next is answered 429 with "
        "Retry-After (0: no bound)"),
    INT("engine", "default_row_limit", 100000, 1, INT64_C(1) << 40,
        "rows returned by POST /query when the request gives no limit"),
    INT("engine", "max_row_limit", 100000000, 1, INT64_C(1) << 40,
        "largest 'limit' POST /query accepts"),
    INT("catalog", "compact_after_deltas", 64, 0, 1000000,
        "a dataset is compacted in the background once it holds this many delta files (0: only "
        "when asked)"),
    INT("catalog", "retain_versions_s", 0, 0, INT64_C(1) << 40,
        "POST /maintenance/sweep expires versions older than this, never a dataset's newest, "
        "and removes files only they used (0: keep every version)"),
    INT("catalog", "max_diff_rows", 1000000, 0, INT64_C(1) << 40,
        "a replace of a dataset with a primary key is journaled as the changed fields of the rows "
        "it changed; when it changes more rows than this, as one dataset-level event that says "
        "so (0: always one event)"),
    INT("catalog", "load_threads", 4, 1, 64,
        "manifests are read this many batches at a time when the catalog loads at start"),
    BOOL("catalog", "checkpoint", 1,
         "keep a catalog checkpoint in the primary bucket (_catalog/checkpoint/): a start reads it "
         "and then only the manifests newer than it; manifests stay the source of truth"),
    INT("catalog", "checkpoint_after_commits", 100, 0, 1000000000,
        "write a new checkpoint, in the background, after this many commits (0: only after a "
        "start that found it stale)"),
    INT("catalog", "relist_interval_ms", 10000, 100, 86400000,
        "a bucket whose datasets could not be listed at start (unreachable) is listed again "
        "this often until it answers, and its datasets are then loaded"),
    LIST("catalog", "require", metadata_fields,
         "metadata every file or database ingest must have, given with it or already the "
         "dataset's (owner, description, sensitivity, tags, freshness_sla_s; comma-separated "
         "in the environment); without it the ingest is refused with 400 metadata_required "
         "and nothing is written"),
    INT("ingest", "max_rows_per_request", 100000, 1, 10000000,
        "upserts plus deletes one POST /datasets/{name}/rows may carry"),
    INT("ingest", "pg_parallel", 0, 0, 16,
        "POST /ingest/db reads a table over this many connections in one snapshot, each a "
        "slice of its pages, when the request gives no 'parallel' (0: half the cores, 1 to 4); "
        "a small table, a query or a PostgreSQL before 14 is read with one"),
    INT("workspace", "tick_s", 60, 0, 86400,
        "how often the workspaces' tier timer takes due automatic snapshots and compacts old "
        "activity (0: never; POST /workspaces/{id}/snapshots still works)"),
    INT("workspace", "daily_s", 86400, 1, INT64_C(1) << 40,
        "length of a 'daily' tier period: the cadence of its automatic snapshots"),
    INT("workspace", "weekly_s", 604800, 1, INT64_C(1) << 40, "length of a 'weekly' tier period"),
    INT("workspace", "monthly_s", 2592000, 1, INT64_C(1) << 40,
        "length of a 'monthly' tier period"),
    STR("vector", "ollama_url", "http://127.0.0.1:11434",
        "where models named ollama:<model> are served (Ollama's /api/embed)"),
    STR("vector", "openai_url", "",
        "an OpenAI-compatible server (/v1/embeddings) for models named openai:<model>"),
    STR("vector", "openai_secret_ref", "",
        "secrets-file table whose api_key is sent to openai_url (empty: none)"),
    INT("vector", "embed_timeout_ms", 30000, 100, 600000,
        "one request to an embedding provider may take this long"),
    INT("vector", "embed_batch", 64, 1, 4096, "texts per request to an embedding provider"),
    INT("vector", "embed_concurrency", 4, 1, 32, "requests at a time to an embedding provider"),
    INT("vector", "embed_cache_bytes", 268435456, 0, 68719476736,
        "embedding cache: vectors of texts already embedded, by model and content hash"),
    INT("vector", "chunk_size", 1000, 64, 1048576,
        "index text is cut into chunks of at most this many bytes (per index: chunk.size)"),
    INT("vector", "chunk_overlap", 100, 0, 524288,
        "consecutive chunks share about this many bytes (per index: chunk.overlap)"),
    INT("vector", "build_threads", 0, 0, 256, "threads for building a graph (0: one per core)"),
    INT("vector", "texts_in_memory_bytes", 268435456, 0, 68719476736,
        "an index generation keeps its chunk texts in memory up to this size (else searches "
        "read them from its embeddings file)"),
    INT("vector", "max_k", 1000, 1, 100000, "the most hits one search may ask for"),
    INT("vector", "trial_cache_bytes", 1073741824, 0, 68719476736,
        "vectors of index generations kept in memory for HNSW trials"),
    INT("vector", "filter_cache_bytes", 67108864, 0, 68719476736,
        "a search filter's matching positions are kept for the next search with the same "
        "filter, index generation, caller and parameters, up to this much memory (0: off); "
        "an entry is dropped when a dataset its filter read changes"),
    INT("vector", "exact_below_vectors", 500, 0, 1000000,
        "an index of at most this many vectors (fewer above 384 dimensions, in proportion) "
        "is searched exactly: scoring every vector then costs about what a graph walk does "
        "(bench/vector/crossing), and the answer is the true top-k"),
    INT("vector", "exact_below_permille", 50, 0, 1000,
        "a filtered search matching fewer than this share (per mille) of an index's vectors "
        "is answered by exact search, which is then both faster and exact"),
    INT("audit", "ship_ms", 1000, 10, 3600000,
        "agent tool call records waiting locally are shipped to the primary bucket at least "
        "this often"),
    INT("audit", "ship_records", 1000, 1, 1000000, "... or as soon as this many are waiting"),
    INT("jobs", "workers", 2, 1, 64, "background job worker threads"),
    INT("jobs", "max_queued", 256, 1, 100000, "jobs waiting beyond this are refused with 503"),
    INT("jobs", "keep_finished", 1000, 0, 1000000,
        "finished job records kept for GET /jobs (until restart)"),
    INT("tools", "max_calls_per_minute", 600, 1, 10000000,
        "tool calls one principal may make per minute across all tools, on top of each tool's "
        "own rate (a burst of up to a minute's worth); beyond it, 429 with Retry-After"),
    INT("mcp", "max_sessions", 1000, 1, 1000000,
        "MCP sessions open at once; when full, a new session replaces the least recently used "
        "one of the same principal, or of anyone when it has none"),
    INT("mcp", "session_idle_s", 3600, 10, 604800,
        "an MCP session unused this long ends (its next request gets 404)"),
    STR("mcp", "allowed_origins", "",
        "comma-separated browser origins allowed to call /mcp besides the server's own and "
        "loopback ones (an Origin header outside them gets 403)"),
    INT("grpc", "port", 3101, 0, 65535,
        "gRPC port (on [server] host, plaintext HTTP/2); 0 turns gRPC off"),
    INT("grpc", "threads", 4, 1, 256,
        "threads taking gRPC calls from the completion queue (quick calls run on them; calls "
        "that may wait and streams run on kept threads of their own); more cost CPU on every "
        "call, 16 doubled a search's"),
    INT("grpc", "max_streams_per_principal", 32, 1, 256,
        "streaming gRPC calls (queries, watches, uploads) one principal may have open at once "
        "(RESOURCE_EXHAUSTED beyond); the server takes 256 in all"),
    INT("grpc", "max_message_bytes", 4 * 1024 * 1024, 1024, 64 * 1024 * 1024,
        "largest gRPC message received; larger ones get RESOURCE_EXHAUSTED"),
};
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])

/* Arrays of tables and the keys their entries take. */
static const char *const PRINCIPAL_KEYS[] = {"name",      "token_sha256", "roles", "buckets",
                                             "clearance", "profile",      NULL};
static const char *const PROFILE_KEYS[] = {"name",
                                           "description",
                                           "embed_model",
                                           "embed_models",
                                           "bind",
                                           "bucket",
                                           "generate_api",
                                           "generate_url",
                                           "generate_model",
                                           "generate_secret_ref",
                                           "max_k",
                                           "tool_calls_per_minute",
                                           NULL};
static const char *const GENERATE_APIS[] = {"openai", "ollama", NULL};
static const char *const ROLE_NAMES[] = {"admin", "writer", "reader", "agent", NULL};
/* Sections later modules own; accepted without warning so newer files still load. */
static const char *const RESERVED_SECTIONS[] = {"agent", NULL};
/* Arrays of tables validated by the module that owns them (lh_config_table_array). */
static const char *const TABLE_ARRAYS[] = {"bucket", NULL};

typedef struct value {
    char *s;
    int64_t i;
    double f;
    bool b;
} value;

struct lh_config {
    char *path;
    lh_toml *doc; /* keeps principal strings alive */
    value values[N_KEYS];
    lh_principal_cfg *principals;
    size_t n_principals;
    const lh_toml **principal_profile; /* where each principal names its profile */
    lh_profile_cfg *profiles;
    size_t n_profiles;
    char **warnings;
    size_t n_warnings;
};

static bool
in_list(const char *const *list, const char *s)
{
    for (; list && *list; list++)
        if (strcmp(*list, s) == 0)
            return true;
    return false;
}

static void warn(lh_config *cfg, const char *fmt, ...) LH_PRINTF(2, 3);

static void
warn(lh_config *cfg, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cfg->warnings = lh_realloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof *cfg->warnings);
    cfg->warnings[cfg->n_warnings++] = lh_strdup(msg);
}

static const key_def *
find_key(const char *section, const char *key, size_t *index)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0 && strcmp(KEYS[i].key, key) == 0) {
            if (index)
                *index = i;
            return &KEYS[i];
        }
    return NULL;
}

static bool
section_known(const char *section)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0)
            return true;
    return false;
}

static int
check_range(const key_def *def, int64_t v, const char *where, lh_err *err)
{
    if (v < def->min || v > def->max)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: [%s] %s = %lld is out of range (%lld..%lld)", where, def->section,
                          def->key, (long long)v, (long long)def->min, (long long)def->max);
    return 0;
}

static int
check_choice(const key_def *def, const char *s, const char *where, lh_err *err)
{
    if (def->choices == NULL || in_list(def->choices, s))
        return 0;
    lh_buf allowed;
    lh_buf_init(&allowed);
    for (const char *const *c = def->choices; *c; c++)
        lh_buf_printf(&allowed, "%s%s", c == def->choices ? "" : ", ", *c);
    lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: [%s] %s = \"%s\" is not one of: %s", where,
               def->section, def->key, s, allowed.data);
    lh_buf_free(&allowed);
    return LH_EINVAL;
}

/* Store a value from the file; types must match (an integer is accepted for a float). */
static int
set_from_toml(lh_config *cfg, size_t index, const lh_toml *v, lh_err *err)
{
    const key_def *def = &KEYS[index];
    char where[600];
    snprintf(where, sizeof where, "%s:%d:%d", cfg->path, lh_toml_line(v), lh_toml_col(v));
    lh_toml_type got = lh_toml_type_of(v);
    bool ok = got == def->type || (def->type == LH_TOML_FLOAT && got == LH_TOML_INT);
    if (!ok)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: [%s] %s must be a %s, not a %s",
                          where, def->section, def->key, lh_toml_type_name(def->type),
                          lh_toml_type_name(got));
    value *slot = &cfg->values[index];
    switch (def->type) {
    case LH_TOML_STRING:
        if (check_choice(def, lh_toml_str(v), where, err) != 0)
            return LH_EINVAL;
        free(slot->s);
        slot->s = lh_strdup(lh_toml_str(v));
        return 0;
    case LH_TOML_INT:
        if (check_range(def, lh_toml_int(v), where, err) != 0)
            return LH_EINVAL;
        slot->i = lh_toml_int(v);
        return 0;
    case LH_TOML_FLOAT:
        slot->f = lh_toml_float(v);
        return 0;
    case LH_TOML_BOOL:
        slot->b = lh_toml_bool(v);
        return 0;
    case LH_TOML_ARRAY: {
        lh_buf joined;
        lh_buf_init(&joined);
        lh_buf_puts(&joined, "");
        for (size_t i = 0; i < lh_toml_count(v); i++) {
            const lh_toml *e = lh_toml_at(v, i);
            if (lh_toml_type_of(e) != LH_TOML_STRING) {
                lh_buf_free(&joined);
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: [%s] %s must be an array of strings", where, def->section,
                                  def->key);
            }
            if (check_choice(def, lh_toml_str(e), where, err) != 0) {
                lh_buf_free(&joined);
                return LH_EINVAL;
            }
            lh_buf_printf(&joined, "%s%s", i ? "," : "", lh_toml_str(e));
        }
        free(slot->s);
        slot->s = lh_strdup(joined.data);
        lh_buf_free(&joined);
        return 0;
    }
    default:
        return 0;
    }
}

static int
set_from_env(lh_config *cfg, size_t index, const char *name, const char *text, lh_err *err)
{
    const key_def *def = &KEYS[index];
    value *slot = &cfg->values[index];
    char *end = NULL;
    errno = 0;
    switch (def->type) {
    case LH_TOML_STRING:
        if (check_choice(def, text, name, err) != 0)
            return LH_EINVAL;
        free(slot->s);
        slot->s = lh_strdup(text);
        return 0;
    case LH_TOML_INT: {
        long long v = strtoll(text, &end, 10);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: '%s' is not an integer",
                              name, text);
        if (check_range(def, v, name, err) != 0)
            return LH_EINVAL;
        slot->i = v;
        return 0;
    }
    case LH_TOML_FLOAT: {
        double v = strtod(text, &end);
        if (text[0] == '\0' || *end != '\0')
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: '%s' is not a number", name,
                              text);
        slot->f = v;
        return 0;
    }
    case LH_TOML_ARRAY: {
        char *copy = lh_strdup(text), *save = NULL;
        int rc = 0;
        for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
             item = strtok_r(NULL, ",", &save))
            rc = check_choice(def, item, name, err);
        free(copy);
        if (rc != 0)
            return rc;
        free(slot->s);
        slot->s = lh_strdup(text);
        return 0;
    }
    case LH_TOML_BOOL:
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0)
            slot->b = true;
        else if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            slot->b = false;
        else
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: '%s' is not a boolean (true/false/1/0)", name, text);
        return 0;
    default:
        return 0;
    }
}

static void
env_name(const key_def *def, char *out, size_t size)
{
    snprintf(out, size, "LAKEHOUSE_%s_%s", def->section, def->key);
    for (char *c = out; *c; c++)
        *c = (char)toupper((unsigned char)*c);
}

static int
load_principals(lh_config *cfg, const lh_toml *arr, lh_err *err)
{
    size_t n = lh_toml_count(arr);
    cfg->principals = lh_calloc(n ? n : 1, sizeof *cfg->principals);
    cfg->principal_profile = lh_calloc(n ? n : 1, sizeof *cfg->principal_profile);
    for (size_t i = 0; i < n; i++) {
        const lh_toml *t = lh_toml_at(arr, i);
        char where[600];
        snprintf(where, sizeof where, "%s:%d:%d: [[principal]] #%zu", cfg->path, lh_toml_line(t),
                 lh_toml_col(t), i + 1);
        for (size_t k = 0; k < lh_toml_count(t); k++)
            if (!in_list(PRINCIPAL_KEYS, lh_toml_key_at(t, k)))
                warn(cfg, "%s: unknown key '%s' ignored", where, lh_toml_key_at(t, k));
        const lh_toml *name = lh_toml_get(t, "name");
        const lh_toml *hash = lh_toml_get(t, "token_sha256");
        const lh_toml *roles = lh_toml_get(t, "roles");
        if (!name || lh_toml_type_of(name) != LH_TOML_STRING || lh_toml_str(name)[0] == '\0' ||
            strlen(lh_toml_str(name)) > 64)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: 'name' must be a string of 1 to 64 characters", where);
        if (!hash || lh_toml_type_of(hash) != LH_TOML_STRING || strlen(lh_toml_str(hash)) != 64 ||
            strspn(lh_toml_str(hash), "0123456789abcdef") != 64)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: 'token_sha256' must be 64 lowercase hex digits "
                              "(sha256sum of the token)",
                              where);
        if (!roles || lh_toml_type_of(roles) != LH_TOML_ARRAY || lh_toml_count(roles) == 0)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: 'roles' must be a non-empty array of admin, writer, reader, "
                              "agent",
                              where);
        lh_principal_cfg *pc = &cfg->principals[i];
        pc->name = lh_toml_str(name);
        pc->token_sha256 = lh_toml_str(hash);
        pc->n_roles = lh_toml_count(roles);
        pc->roles = lh_calloc(pc->n_roles, sizeof *pc->roles);
        cfg->n_principals = i + 1;
        for (size_t r = 0; r < pc->n_roles; r++) {
            const lh_toml *role = lh_toml_at(roles, r);
            if (lh_toml_type_of(role) != LH_TOML_STRING || !in_list(ROLE_NAMES, lh_toml_str(role)))
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: unknown role; roles are admin, writer, reader, agent",
                                  where);
            pc->roles[r] = lh_toml_str(role);
        }
        const lh_toml *buckets = lh_toml_get(t, "buckets");
        if (buckets) {
            if (lh_toml_type_of(buckets) != LH_TOML_ARRAY)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: 'buckets' must be an array of bucket names", where);
            pc->n_buckets = lh_toml_count(buckets);
            pc->buckets = lh_calloc(pc->n_buckets ? pc->n_buckets : 1, sizeof *pc->buckets);
            for (size_t k = 0; k < pc->n_buckets; k++) {
                const lh_toml *b = lh_toml_at(buckets, k);
                if (lh_toml_type_of(b) != LH_TOML_STRING)
                    return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                      "%s: 'buckets' must be an array of bucket names", where);
                pc->buckets[k] = lh_toml_str(b);
            }
            pc->limit_buckets = true;
        }
        const lh_toml *clearance = lh_toml_get(t, "clearance");
        if (clearance) {
            char at[600];
            snprintf(at, sizeof at, "%s:%d:%d: [[principal]] #%zu", cfg->path,
                     lh_toml_line(clearance), lh_toml_col(clearance), i + 1);
            if (lh_toml_type_of(clearance) != LH_TOML_STRING ||
                lh_level_rank(lh_toml_str(clearance)) == 0)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: 'clearance' must be one of " LH_LEVELS_TEXT, at);
            pc->clearance = lh_toml_str(clearance);
        }
        const lh_toml *profile = lh_toml_get(t, "profile");
        if (profile) {
            if (lh_toml_type_of(profile) != LH_TOML_STRING || !lh_name_valid(lh_toml_str(profile)))
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: 'profile' must name a [[profile]] ([a-z][a-z0-9_]*)", where);
            pc->profile = lh_toml_str(profile);
            cfg->principal_profile[i] = profile;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->principals[j].name, pc->name) == 0)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: principal '%s' is defined twice", where, pc->name);
            if (strcmp(cfg->principals[j].token_sha256, pc->token_sha256) == 0)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s: principals '%s' and '%s' share a token", where,
                                  cfg->principals[j].name, pc->name);
        }
    }
    return 0;
}

/* An optional string member of a [[profile]]: NULL when absent, else non-empty. */
static int
profile_str(const lh_toml *t, const char *key, const char *where, const char **out, lh_err *err)
{
    const lh_toml *v = lh_toml_get(t, key);
    *out = NULL;
    if (v == NULL)
        return 0;
    if (lh_toml_type_of(v) != LH_TOML_STRING || lh_toml_str(v)[0] == '\0')
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: '%s' must be a non-empty string", where, key);
    *out = lh_toml_str(v);
    return 0;
}

static int
profile_int(const lh_toml *t, const char *key, int64_t max, const char *where, int64_t *out,
            lh_err *err)
{
    const lh_toml *v = lh_toml_get(t, key);
    *out = 0;
    if (v == NULL)
        return 0;
    if (lh_toml_type_of(v) != LH_TOML_INT || lh_toml_int(v) < 1 || lh_toml_int(v) > max)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: '%s' must be an integer from 1 to %lld", where, key, (long long)max);
    *out = lh_toml_int(v);
    return 0;
}

/* A list of "key=value" strings (embed_models: purpose=model, bind: name=index). */
static int
profile_pairs(const lh_toml *t, const char *key, bool value_is_name, const char *where,
              lh_profile_pair **out, size_t *n_out, lh_err *err)
{
    const lh_toml *arr = lh_toml_get(t, key);
    if (arr == NULL)
        return 0;
    const char *shape = value_is_name ? "\"dataset=index\"" : "\"purpose=model\"";
    if (lh_toml_type_of(arr) != LH_TOML_ARRAY)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: '%s' must be an array of %s strings", where, key, shape);
    size_t n = lh_toml_count(arr);
    *out = lh_calloc(n ? n : 1, sizeof **out);
    for (size_t i = 0; i < n; i++) {
        const lh_toml *v = lh_toml_at(arr, i);
        const char *text = lh_toml_type_of(v) == LH_TOML_STRING ? lh_toml_str(v) : NULL;
        const char *eq = text ? strchr(text, '=') : NULL;
        if (eq == NULL || eq == text || eq[1] == '\0')
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: %s[%zu] must be a %s string", where, key, i, shape);
        lh_profile_pair *pair = &(*out)[i];
        pair->key = lh_strndup(text, (size_t)(eq - text));
        pair->value = lh_strdup(eq + 1);
        *n_out = i + 1;
        if (!lh_name_valid(pair->key) || (value_is_name && !lh_name_valid(pair->value)))
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: %s[%zu] = \"%s\": names must match [a-z][a-z0-9_]*", where, key,
                              i, text);
        for (size_t j = 0; j < i; j++)
            if (strcmp((*out)[j].key, pair->key) == 0)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config", "%s: %s names '%s' twice",
                                  where, key, pair->key);
    }
    return 0;
}

static int
load_profile(lh_config *cfg, const lh_toml *t, size_t i, lh_err *err)
{
    char where[600];
    snprintf(where, sizeof where, "%s:%d:%d: [[profile]] #%zu", cfg->path, lh_toml_line(t),
             lh_toml_col(t), i + 1);
    for (size_t k = 0; k < lh_toml_count(t); k++)
        if (!in_list(PROFILE_KEYS, lh_toml_key_at(t, k)))
            warn(cfg, "%s: unknown key '%s' ignored", where, lh_toml_key_at(t, k));
    lh_profile_cfg *pc = &cfg->profiles[i];
    cfg->n_profiles = i + 1;
    const lh_toml *name = lh_toml_get(t, "name");
    if (!name || lh_toml_type_of(name) != LH_TOML_STRING || !lh_name_valid(lh_toml_str(name)))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: 'name' must be a name ([a-z][a-z0-9_]*, at most 63 characters)",
                          where);
    pc->name = lh_toml_str(name);
    int rc;
    if ((rc = profile_str(t, "description", where, &pc->description, err)) != 0 ||
        (rc = profile_str(t, "embed_model", where, &pc->embed_model, err)) != 0 ||
        (rc = profile_str(t, "bucket", where, &pc->bucket, err)) != 0 ||
        (rc = profile_str(t, "generate_api", where, &pc->generate_api, err)) != 0 ||
        (rc = profile_str(t, "generate_url", where, &pc->generate_url, err)) != 0 ||
        (rc = profile_str(t, "generate_model", where, &pc->generate_model, err)) != 0 ||
        (rc = profile_str(t, "generate_secret_ref", where, &pc->generate_secret_ref, err)) != 0 ||
        (rc = profile_int(t, "max_k", 100000, where, &pc->max_k, err)) != 0 ||
        (rc = profile_int(t, "tool_calls_per_minute", 10000000, where, &pc->tool_calls_per_minute,
                          err)) != 0 ||
        (rc = profile_pairs(t, "embed_models", false, where, &pc->embed_models, &pc->n_embed_models,
                            err)) != 0 ||
        (rc = profile_pairs(t, "bind", true, where, &pc->bind, &pc->n_bind, err)) != 0)
        return rc;
    bool generates =
        pc->generate_api || pc->generate_url || pc->generate_model || pc->generate_secret_ref;
    if (generates && (!pc->generate_url || !pc->generate_model))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: a generation model needs both 'generate_url' and "
                          "'generate_model'",
                          where);
    if (generates && !pc->generate_api)
        pc->generate_api = "openai";
    if (pc->generate_api && !in_list(GENERATE_APIS, pc->generate_api))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: 'generate_api' must be \"openai\" or \"ollama\"", where);
    if (pc->generate_url && strncmp(pc->generate_url, "http://", 7) != 0 &&
        strncmp(pc->generate_url, "https://", 8) != 0)
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: 'generate_url' must be an http:// or https:// URL", where);
    if (pc->generate_secret_ref && !lh_name_valid(pc->generate_secret_ref))
        return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                          "%s: 'generate_secret_ref' must name a table of the secrets file "
                          "(the key itself never goes in this file)",
                          where);
    for (size_t j = 0; j < i; j++)
        if (strcmp(cfg->profiles[j].name, pc->name) == 0)
            return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                              "%s: profile '%s' is defined twice", where, pc->name);
    return 0;
}

static int
load_profiles(lh_config *cfg, const lh_toml *arr, lh_err *err)
{
    size_t n = lh_toml_count(arr);
    cfg->profiles = lh_calloc(n ? n : 1, sizeof *cfg->profiles);
    for (size_t i = 0; i < n; i++) {
        int rc = load_profile(cfg, lh_toml_at(arr, i), i, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Every principal's profile must exist (profiles may come after principals in the file). */
static int
check_principal_profiles(lh_config *cfg, lh_err *err)
{
    for (size_t i = 0; i < cfg->n_principals; i++) {
        const lh_principal_cfg *pc = &cfg->principals[i];
        if (pc->profile == NULL || lh_config_profile(cfg, pc->profile) != NULL)
            continue;
        const lh_toml *v = cfg->principal_profile[i];
        lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                   "%s:%d:%d: principal '%s' names profile '%s', which no [[profile]] defines",
                   cfg->path, lh_toml_line(v), lh_toml_col(v), pc->name, pc->profile);
        lh_err_hint(err, "add a [[profile]] with name = \"%s\", or fix the name", pc->profile);
        return LH_EINVAL;
    }
    return 0;
}

static int
apply_file(lh_config *cfg, lh_err *err)
{
    int rc = lh_toml_parse_file(cfg->path, &cfg->doc, err);
    if (rc != 0)
        return rc;
    const lh_toml *root = cfg->doc;
    for (size_t i = 0; i < lh_toml_count(root); i++) {
        const char *section = lh_toml_key_at(root, i);
        const lh_toml *t = lh_toml_at(root, i);
        if (strcmp(section, "principal") == 0) {
            if (lh_toml_type_of(t) != LH_TOML_TABLE_ARRAY)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s:%d:%d: 'principal' must be written as [[principal]] entries",
                                  cfg->path, lh_toml_line(t), lh_toml_col(t));
            if ((rc = load_principals(cfg, t, err)) != 0)
                return rc;
            continue;
        }
        if (strcmp(section, "profile") == 0) {
            if (lh_toml_type_of(t) != LH_TOML_TABLE_ARRAY)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s:%d:%d: 'profile' must be written as [[profile]] entries",
                                  cfg->path, lh_toml_line(t), lh_toml_col(t));
            if ((rc = load_profiles(cfg, t, err)) != 0)
                return rc;
            continue;
        }
        if (in_list(TABLE_ARRAYS, section)) {
            if (lh_toml_type_of(t) != LH_TOML_TABLE_ARRAY)
                return lh_err_set(err, LH_EINVAL, 0, "invalid_config",
                                  "%s:%d:%d: '%s' must be written as [[%s]] entries", cfg->path,
                                  lh_toml_line(t), lh_toml_col(t), section, section);
            continue;
        }
        if (lh_toml_type_of(t) != LH_TOML_TABLE) {
            if (in_list(RESERVED_SECTIONS, section))
                continue;
            warn(cfg, "%s:%d:%d: unknown top-level key '%s' ignored (keys belong in a [section])",
                 cfg->path, lh_toml_line(t), lh_toml_col(t), section);
            continue;
        }
        if (!section_known(section)) {
            if (!in_list(RESERVED_SECTIONS, section))
                warn(cfg, "%s:%d:%d: unknown section [%s] ignored", cfg->path, lh_toml_line(t),
                     lh_toml_col(t), section);
            continue;
        }
        for (size_t k = 0; k < lh_toml_count(t); k++) {
            const char *key = lh_toml_key_at(t, k);
            const lh_toml *v = lh_toml_at(t, k);
            size_t index;
            if (find_key(section, key, &index) == NULL) {
                warn(cfg, "%s:%d:%d: unknown key '%s' in [%s] ignored", cfg->path, lh_toml_line(v),
                     lh_toml_col(v), key, section);
                continue;
            }
            if ((rc = set_from_toml(cfg, index, v, err)) != 0)
                return rc;
        }
    }
    return check_principal_profiles(cfg, err);
}

static int
apply_env(lh_config *cfg, char *const *env, lh_err *err)
{
    for (char *const *e = env; e && *e; e++) {
        if (strncmp(*e, "LAKEHOUSE_", 10) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        size_t name_len = (size_t)(eq - *e);
        bool matched = false;
        for (size_t i = 0; i < N_KEYS; i++) {
            char name[128];
            env_name(&KEYS[i], name, sizeof name);
            if (strlen(name) == name_len && strncmp(name, *e, name_len) == 0) {
                int rc = set_from_env(cfg, i, name, eq + 1, err);
                if (rc != 0)
                    return rc;
                matched = true;
                break;
            }
        }
        /* LAKEHOUSE_CONFIG names the file; other unknown names are likely typos */
        if (!matched && strncmp(*e, "LAKEHOUSE_CONFIG=", 17) != 0)
            warn(cfg, "environment variable %.*s matches no configuration key; ignored",
                 (int)name_len, *e);
    }
    return 0;
}

int
lh_config_load(const char *path, char *const *env, lh_config **out, lh_err *err)
{
    lh_config *cfg = lh_calloc(1, sizeof *cfg);
    for (size_t i = 0; i < N_KEYS; i++) {
        if (KEYS[i].def_str)
            cfg->values[i].s = lh_strdup(KEYS[i].def_str);
        cfg->values[i].i = KEYS[i].def_int;
        cfg->values[i].f = KEYS[i].def_float;
        cfg->values[i].b = KEYS[i].def_int != 0;
    }
    int rc = 0;
    if (path) {
        cfg->path = lh_strdup(path);
        if ((rc = apply_file(cfg, err)) != 0)
            goto out;
    }
    if ((rc = apply_env(cfg, env ? env : environ, err)) != 0)
        goto out;
    if (lh_config_str(cfg, "server.host")[0] == '\0') {
        rc = lh_err_set(err, LH_EINVAL, 0, "invalid_config", "[server] host must not be empty");
        goto out;
    }
    if (lh_config_str(cfg, "server.data_dir")[0] == '\0')
        rc = lh_err_set(err, LH_EINVAL, 0, "invalid_config", "[server] data_dir must not be empty");
out:
    if (rc != 0) {
        lh_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void
lh_config_free(lh_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        free(cfg->values[i].s);
    for (size_t i = 0; i < cfg->n_principals; i++) {
        free(cfg->principals[i].roles);
        free(cfg->principals[i].buckets);
    }
    free(cfg->principals);
    free(cfg->principal_profile);
    for (size_t i = 0; i < cfg->n_profiles; i++) {
        lh_profile_cfg *pc = &cfg->profiles[i];
        for (size_t k = 0; k < pc->n_embed_models; k++) {
            free(pc->embed_models[k].key);
            free(pc->embed_models[k].value);
        }
        for (size_t k = 0; k < pc->n_bind; k++) {
            free(pc->bind[k].key);
            free(pc->bind[k].value);
        }
        free(pc->embed_models);
        free(pc->bind);
    }
    free(cfg->profiles);
    for (size_t i = 0; i < cfg->n_warnings; i++)
        free(cfg->warnings[i]);
    free(cfg->warnings);
    lh_toml_free(cfg->doc);
    free(cfg->path);
    free(cfg);
}

static const value *
lookup(const lh_config *cfg, const char *dotted, lh_toml_type type)
{
    const char *dot = strchr(dotted, '.');
    char section[64];
    size_t n = dot ? (size_t)(dot - dotted) : 0;
    if (dot == NULL || n >= sizeof section)
        abort();
    memcpy(section, dotted, n);
    section[n] = '\0';
    size_t index;
    const key_def *def = find_key(section, dot + 1, &index);
    if (def == NULL || def->type != type) {
        /* a programming error: every key read must be declared with this type */
        fprintf(stderr, "lakehouse: config key %s is not declared as %s\n", dotted,
                lh_toml_type_name(type));
        abort();
    }
    return &cfg->values[index];
}

const char *
lh_config_str(const lh_config *cfg, const char *key)
{
    return lookup(cfg, key, LH_TOML_STRING)->s;
}

const char *
lh_config_list(const lh_config *cfg, const char *key)
{
    return lookup(cfg, key, LH_TOML_ARRAY)->s;
}

int64_t
lh_config_int(const lh_config *cfg, const char *key)
{
    return lookup(cfg, key, LH_TOML_INT)->i;
}

double
lh_config_float(const lh_config *cfg, const char *key)
{
    return lookup(cfg, key, LH_TOML_FLOAT)->f;
}

bool
lh_config_bool(const lh_config *cfg, const char *key)
{
    return lookup(cfg, key, LH_TOML_BOOL)->b;
}

const lh_principal_cfg *
lh_config_principals(const lh_config *cfg, size_t *n)
{
    *n = cfg->n_principals;
    return cfg->principals;
}

const lh_profile_cfg *
lh_config_profiles(const lh_config *cfg, size_t *n)
{
    *n = cfg->n_profiles;
    return cfg->profiles;
}

const lh_profile_cfg *
lh_config_profile(const lh_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_profiles; i++)
        if (strcmp(cfg->profiles[i].name, name) == 0)
            return &cfg->profiles[i];
    return NULL;
}

/* Whether two TOML values are the same (types, values, members in order). */
static bool
toml_equal(const lh_toml *a, const lh_toml *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (lh_toml_type_of(a) != lh_toml_type_of(b))
        return false;
    switch (lh_toml_type_of(a)) {
    case LH_TOML_STRING:
        return strcmp(lh_toml_str(a), lh_toml_str(b)) == 0;
    case LH_TOML_INT:
        return lh_toml_int(a) == lh_toml_int(b);
    case LH_TOML_FLOAT:
        return lh_toml_float(a) == lh_toml_float(b);
    case LH_TOML_BOOL:
        return lh_toml_bool(a) == lh_toml_bool(b);
    default:
        break;
    }
    if (lh_toml_count(a) != lh_toml_count(b))
        return false;
    bool table = lh_toml_type_of(a) == LH_TOML_TABLE;
    for (size_t i = 0; i < lh_toml_count(a); i++) {
        if (table && strcmp(lh_toml_key_at(a, i), lh_toml_key_at(b, i)) != 0)
            return false;
        if (!toml_equal(lh_toml_at(a, i), lh_toml_at(b, i)))
            return false;
    }
    return true;
}

json_t *
lh_config_diff(const lh_config *a, const lh_config *b)
{
    json_t *out = json_array();
    for (size_t i = 0; i < N_KEYS; i++) {
        const value *x = &a->values[i], *y = &b->values[i];
        bool same;
        switch (KEYS[i].type) {
        case LH_TOML_STRING:
            same = strcmp(x->s ? x->s : "", y->s ? y->s : "") == 0;
            break;
        case LH_TOML_FLOAT:
            same = x->f == y->f;
            break;
        case LH_TOML_BOOL:
            same = x->b == y->b;
            break;
        default:
            same = x->i == y->i;
            break;
        }
        if (!same)
            json_array_append_new(out, json_sprintf("%s.%s", KEYS[i].section, KEYS[i].key));
    }
    static const char *const arrays[] = {"principal", "profile", "bucket"};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        const lh_toml *x = a->doc ? lh_toml_get(a->doc, arrays[i]) : NULL;
        const lh_toml *y = b->doc ? lh_toml_get(b->doc, arrays[i]) : NULL;
        if (!toml_equal(x, y))
            json_array_append_new(out, json_string(arrays[i]));
    }
    return out;
}

const lh_toml *
lh_config_table_array(const lh_config *cfg, const char *name)
{
    const lh_toml *t = cfg->doc ? lh_toml_get(cfg->doc, name) : NULL;
    return t && lh_toml_type_of(t) == LH_TOML_TABLE_ARRAY ? t : NULL;
}

const char *
lh_config_path(const lh_config *cfg)
{
    return cfg->path;
}

const char *const *
lh_config_warnings(const lh_config *cfg, size_t *n)
{
    *n = cfg->n_warnings;
    return (const char *const *)cfg->warnings;
}

void
lh_config_write_reference(lh_buf *out)
{
    lh_buf_puts(out,
                "# lakehouse.example.toml — every configuration key with its default.\n"
                "# All keys are optional. Each key can be overridden by the environment variable\n"
                "# LAKEHOUSE_<SECTION>_<KEY>, e.g. LAKEHOUSE_SERVER_PORT=3200.\n"
                "# Credentials never go here: see [secrets] and secret_ref.\n");
    const char *section = "";
    for (size_t i = 0; i < N_KEYS; i++) {
        const key_def *d = &KEYS[i];
        if (strcmp(section, d->section) != 0) {
            section = d->section;
            lh_buf_printf(out, "\n[%s]\n", section);
        }
        char env[128];
        env_name(d, env, sizeof env);
        lh_buf_printf(out, "# %s (%s)\n", d->doc, env);
        switch (d->type) {
        case LH_TOML_STRING:
            lh_buf_printf(out, "%s = \"%s\"\n", d->key, d->def_str);
            break;
        case LH_TOML_INT:
            lh_buf_printf(out, "%s = %lld\n", d->key, (long long)d->def_int);
            break;
        case LH_TOML_FLOAT:
            lh_buf_printf(out, "%s = %g\n", d->key, d->def_float);
            break;
        case LH_TOML_BOOL:
            lh_buf_printf(out, "%s = %s\n", d->key, d->def_int ? "true" : "false");
            break;
        case LH_TOML_ARRAY:
            lh_buf_printf(out, "%s = []\n", d->key);
            break;
        default:
            break;
        }
    }
    lh_buf_puts(out,
                "\n# Principals: who may call the API. Without any, the first start creates an\n"
                "# admin token in <data_dir>/admin.token (mode 0600) and logs where it is.\n"
                "# token_sha256 is the SHA-256 of the bearer token: printf %s TOKEN | sha256sum\n"
                "# roles: admin (everything), writer (ingest, change data), reader (query, read),\n"
                "# agent (named tools only). Not overridable from the environment.\n"
                "#\n"
                "# [[principal]]\n"
                "# name = \"owner\"\n"
                "# token_sha256 = \"<64 hex digits>\"\n"
                "# roles = [\"admin\"]\n"
                "# buckets = [\"primary\", \"client_a\"]   # optional: only these buckets\n"
                "# clearance = \"internal\"   # optional: public, internal, confidential or pii;\n"
                "#                           # columns above it come back masked (default:\n"
                "#                           # pii for admins, internal for the others)\n"
                "# profile = \"recruiting\"     # optional: a [[profile]] below\n"
                "\n"
                "# Profiles: a named bundle of models, dataset bindings, a default bucket and\n"
                "# limits; a principal uses one with profile = \"<name>\". A search that names a\n"
                "# dataset (or a logical name) a profile binds uses the bound index, and so that\n"
                "# index's embedding model; model \"profile\" (or \"profile:<purpose>\") in\n"
                "# POST /embed and POST /vectors/indexes means the caller's profile's model.\n"
                "# POST /admin/reload or SIGHUP re-reads principals and profiles.\n"
                "#\n"
                "# [[profile]]\n"
                "# name = \"recruiting\"               # [a-z][a-z0-9_]{0,62}\n"
                "# description = \"recruiters' searches\"\n"
                "# embed_model = \"ollama:nomic-embed-text\"   # the default embedding model\n"
                "# embed_models = [\"resumes=builtin\"]  # per purpose: \"purpose=model\"\n"
                "# bind = [\"candidates=candidates_minilm\"]   # \"dataset or name=index\"\n"
                "# bucket = \"profile:{user}\"          # default bucket; {user}: the principal\n"
                "# generate_api = \"openai\"            # or \"ollama\": an optional chat model\n"
                "# generate_url = \"http://127.0.0.1:11434\"\n"
                "# generate_model = \"llama3.2\"\n"
                "# generate_secret_ref = \"llm\"        # secrets-file table with api_key\n"
                "# max_k = 50                          # most hits one search may ask for\n"
                "# tool_calls_per_minute = 60          # on top of [tools] max_calls_per_minute\n"
                "\n"
                "# Buckets: named object stores besides the primary. Credentials come from the\n"
                "# secrets file through secret_ref (a table there with access_key_id and\n"
                "# secret_access_key), never from this file.\n"
                "#\n"
                "# [[bucket]]\n"
                "# name = \"client_a\"          # [a-z][a-z0-9_]{0,62}\n"
                "# backend = \"s3\"             # or \"fs\" with root = \"/path/to/folder\"\n"
                "# endpoint = \"http://127.0.0.1:9000\"\n"
                "# region = \"us-east-1\"\n"
                "# bucket = \"client-a\"        # the S3 bucket name\n"
                "# prefix = \"\"                # optional key prefix inside the S3 bucket\n"
                "# path_style = true           # false: https://bucket.host/ URLs\n"
                "# tls_verify = true\n"
                "# secret_ref = \"s3_local\"\n");
}
