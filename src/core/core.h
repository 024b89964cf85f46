/*
 * core.h — the shared bottom layer of lakehouse: errors, memory (wrappers, arenas,
 * growable buffers), logging, the TOML subset reader, configuration, the secrets
 * provider, time/random/hash helpers and the background job pool.
 *
 * Nothing here includes a header from another lakehouse module. Unless a function says
 * otherwise it is thread-safe for distinct objects and not for a shared object.
 */
#ifndef LH_CORE_H
#define LH_CORE_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#ifndef LH_VERSION
#define LH_VERSION "0.0.0"
#endif

#if defined(__GNUC__)
#define LH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LH_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------------------------
 * Errors
 *
 * A function that can fail returns 0 or a negative LH_E* code and fills the lh_err
 * passed last (which may be NULL when the caller does not care). The error carries an
 * HTTP status, a snake_case code for clients, and message/detail/hint texts: message
 * is short and lowercase, detail holds specifics, hint the remedy.
 * ------------------------------------------------------------------------------- */
enum {
    LH_OK = 0,
    LH_EINVAL = -1,    /* bad input from a client or a file */
    LH_ENOMEM = -2,    /* an allocation sized by data failed */
    LH_EIO = -3,       /* a system call or storage operation failed */
    LH_ENOTFOUND = -4, /* a named thing does not exist */
    LH_EEXIST = -5,    /* it exists already / create-only lost a race */
    LH_EPERM = -6,     /* not allowed */
    LH_ETOOBIG = -7,   /* over a configured limit */
    LH_ETIMEOUT = -8,  /* a deadline passed */
    LH_EUNAVAIL = -9,  /* a dependency is unreachable or we are shutting down */
    LH_ECANCELED = -10,
    LH_EINTERNAL = -11, /* our own fault */
};

#define LH_ERR_CODE_MAX 48
#define LH_ERR_TEXT_MAX 512

typedef struct lh_err {
    int rc;                     /* LH_E* or 0 */
    int http_status;            /* 4xx/5xx; 0 when unset */
    char code[LH_ERR_CODE_MAX]; /* snake_case, e.g. "invalid_json" */
    char message[LH_ERR_TEXT_MAX];
    char detail[LH_ERR_TEXT_MAX];
    char hint[LH_ERR_TEXT_MAX];
} lh_err;

/* Set *err (if not NULL) and return rc. message is a printf format. */
int lh_err_set(lh_err *err, int rc, int http_status, const char *code, const char *fmt, ...)
    LH_PRINTF(5, 6);
/* Add detail/hint to an already set error; no-ops when err is NULL. */
void lh_err_detail(lh_err *err, const char *fmt, ...) LH_PRINTF(2, 3);
void lh_err_hint(lh_err *err, const char *fmt, ...) LH_PRINTF(2, 3);
void lh_err_clear(lh_err *err);
/* The default HTTP status for an rc (LH_EINVAL → 400, LH_ENOTFOUND → 404, ...). */
int lh_err_status_for(int rc);
/* A JSON string from any bytes: invalid UTF-8 becomes U+FFFD instead of failing
 * (json_string returns NULL for it). Returns new. */
json_t *lh_json_text(const char *s);
/* 400 invalid_parameter "unknown field 'x'" (with hint) for the first member of obj not
 * among fields (NULL-ended); 0 when all are known. */
int lh_json_check_fields(const json_t *obj, const char *const *fields, const char *hint,
                         lh_err *err);
/* obj's member `field` as a string (borrowed) in *out, or NULL when absent or null; 400
 * invalid_parameter "'field' must be a non-empty string" when it is another type, empty
 * or holds a NUL byte. */
int lh_json_opt_string(const json_t *obj, const char *field, const char **out, lh_err *err);
/* An lh_time_format string of epoch_us, or JSON null when it is 0 (never happened).
 * Returns new. */
json_t *lh_json_time(int64_t epoch_us);
/* Render {"error":{"code","message","detail"?,"hint"?}}. Returns new (json_decref). */
json_t *lh_err_to_json(const lh_err *err);
/* Same as a compact string. Returns new (free). */
char *lh_err_to_body(const lh_err *err);

/* ---------------------------------------------------------------------------------
 * Memory
 *
 * lh_malloc & co. abort on out-of-memory: use them for small internal allocations.
 * Anything sized by a client or by data goes through lh_try_malloc/lh_try_realloc,
 * which return NULL and let the caller answer 413/503.
 * ------------------------------------------------------------------------------- */
void *lh_malloc(size_t n);
void *lh_calloc(size_t count, size_t size);
void *lh_realloc(void *p, size_t n);
char *lh_strdup(const char *s);
char *lh_strndup(const char *s, size_t n);
char *lh_sprintf(const char *fmt, ...) LH_PRINTF(1, 2);
void *lh_try_malloc(size_t n);
void *lh_try_realloc(void *p, size_t n);
/* Zero then free a secret string; accepts NULL. */
void lh_free_secret(char *s);
/* Zero n bytes at p (may be NULL) in a way the compiler keeps: secrets before a free. */
void lh_wipe(void *p, size_t n);
/* lh_wipe every string in a JSON value (accepts NULL): a document that held a secret. */
void lh_json_wipe(json_t *j);

/* Arena: bump allocation that dies as a whole, plus cleanup callbacks for non-memory
 * resources (run in reverse registration order by lh_arena_free). One thread at a time. */
typedef struct lh_arena lh_arena;
lh_arena *lh_arena_new(void);
void lh_arena_free(lh_arena *a); /* accepts NULL */
void *lh_arena_alloc(lh_arena *a, size_t n);
char *lh_arena_strdup(lh_arena *a, const char *s);
char *lh_arena_strndup(lh_arena *a, const char *s, size_t n);
char *lh_arena_printf(lh_arena *a, const char *fmt, ...) LH_PRINTF(2, 3);
void lh_arena_on_cleanup(lh_arena *a, void (*fn)(void *), void *arg);

/* Growable byte buffer, always NUL-terminated after len. Growth beyond what the caller
 * can trust uses lh_buf_try_* which report LH_ENOMEM instead of aborting. */
typedef struct lh_buf {
    char *data;
    size_t len;
    size_t cap;
} lh_buf;
void lh_buf_init(lh_buf *b);
void lh_buf_free(lh_buf *b);
int lh_buf_try_append(lh_buf *b, const void *data, size_t n);
/* Make room for extra more bytes without aborting; 0 or LH_ENOMEM. */
int lh_buf_try_reserve(lh_buf *b, size_t extra);
void lh_buf_append(lh_buf *b, const void *data, size_t n);
void lh_buf_puts(lh_buf *b, const char *s);
void lh_buf_printf(lh_buf *b, const char *fmt, ...) LH_PRINTF(2, 3);
/* Hand the bytes to the caller (free) and reset the buffer. */
char *lh_buf_steal(lh_buf *b);

/* Append j (not NULL) as compact JSON, exactly the text json_dumps(JSON_COMPACT |
 * JSON_PRESERVE_ORDER) makes for it, several times faster (json_dump.c). Where
 * json_dumps fails instead (a string made with *_nocheck that is not UTF-8, a scalar at
 * the top), the bytes are written as they are. Aborts when out of memory. */
void lh_json_dump(lh_buf *b, const json_t *j);
/* A number's significant digits (n of them, the first not 0, no trailing zeros) with its
 * decimal exponent, as JSON text into out: plain when plain_from <= exp10 < plain_to
 * (with ".0" rather than read as an integer), else d.ddde<exp10>. Returns the length;
 * out needs n + plain_to + 8 bytes. jansson's "%.17g" (-4, 17) and DuckDB's text (-6, 21)
 * are both this layout. */
size_t lh_json_decimal(char *out, bool negative, const char *digits, size_t n, int exp10,
                       int plain_from, int plain_to);

/* The top-level member `key` of the JSON object in text when it is an array of numbers,
 * read straight into floats (jansson would make a json_real per element): 1 with *out
 * (new, *n elements) and rest (appended: text with that array replaced by [], to parse as
 * usual); 0 when the member is absent, is not a non-empty array of JSON numbers, or text
 * is not an object as far as the scan saw — then parse text itself, whose errors are
 * jansson's to report. */
int lh_json_take_floats(const char *text, size_t len, const char *key, float **out, size_t *n,
                        lh_buf *rest);

/* ---------------------------------------------------------------------------------
 * Fault injection (SQLite's faultsim, for tests)
 *
 * Three kinds of call can be made to fail on purpose: fallible allocations
 * (lh_try_malloc, lh_try_realloc, hence lh_buf_try_*; lh_malloc aborts by design and is no
 * fault point), storage operations (the lh_store_* front: get, put, head, delete, list,
 * copy, probe, open_local) and the DuckDB statements the engine runs for lakehouse
 * (internal statements, conversions, writers' COPY, typed scans). Each fails as the real call
 * would: NULL, LH_EUNAVAIL 503 bucket_unavailable, LH_EIO 500 engine_error.
 *
 * The hooks are compiled into every build rather than a separate fault build, so the code
 * a fault test exercises is the code that ships; unarmed, a hook costs one relaxed atomic
 * load. Only a call to lh_fault_arm arms them: no environment variable, configuration key
 * or request can, so a production server never fails on purpose. Counting is global
 * (every thread); a test arms one kind, runs one operation and disarms.
 * ------------------------------------------------------------------------------- */
typedef enum { LH_FAULT_ALLOC, LH_FAULT_STORE, LH_FAULT_ENGINE, LH_FAULT_KINDS } lh_fault_kind;

/* Make the nth call of kind from now on (1 = the next one) fail; with persistent, every
 * later one fails too. Resets the counters. Disarms the other kinds. */
void lh_fault_arm(lh_fault_kind kind, int64_t nth, bool persistent);
void lh_fault_disarm(void);
/* Since the last arm: calls of kind that reached a fault point, and of those, failed. */
int64_t lh_fault_calls(lh_fault_kind kind);
int64_t lh_fault_hits(lh_fault_kind kind);

/* At a fault point: true when this call must fail. (C only: the C++ benchmarks that
 * include this header have no fault points.) */
#ifndef __cplusplus
extern atomic_int lh_fault__armed;
bool lh_fault__fire(lh_fault_kind kind);
static inline bool
lh_fault_hit(lh_fault_kind kind)
{
    return atomic_load_explicit(&lh_fault__armed, memory_order_relaxed) != 0 &&
           lh_fault__fire(kind);
}
#endif

/* ---------------------------------------------------------------------------------
 * Time, randomness, hashing, names
 * ------------------------------------------------------------------------------- */
int64_t lh_now_us(void);  /* wall clock, microseconds since the epoch */
int64_t lh_mono_us(void); /* monotonic clock */
/* Buffer sizes: a name of lh_name_valid with its NUL; an lh_time_format text with its NUL. */
#define LH_NAME_MAX 64
#define LH_TIME_MAX 32
/* RFC 3339 UTC with milliseconds, "2026-11-24T02:15:18.123Z", into out. */
void lh_time_format(int64_t epoch_us, char out[LH_TIME_MAX]);
/* Fill buf with n bytes from the kernel CSPRNG; 0 or LH_EIO. */
int lh_random_bytes(void *buf, size_t n, lh_err *err);
/* For names and ids that must not collide (scratch files, aliases, job and request ids):
 * n_bytes (at most 64) random bytes as 2*n_bytes hex digits into out (2*n_bytes+1
 * bytes), or a random 64-bit number. A kernel that cannot give random bytes is treated
 * like an exhausted heap (lh_malloc): the process aborts rather than hand out a
 * predictable name. */
void lh_random_hex(char *out, size_t n_bytes);
uint64_t lh_random_u64(void);
void lh_hex(const void *data, size_t n, char *out); /* out: 2n+1 chars */
/* Write all n bytes to fd, retrying short writes and EINTR. 0, or -1 with errno set
 * (ENOSPC for a write that makes no progress). */
int lh_write_all(int fd, const void *data, size_t n);
void lh_sha256(const void *data, size_t n, uint8_t out[32]);
void lh_sha256_hex(const void *data, size_t n, char out[65]);
/* HMAC-SHA256 of data under key, as 64 hex digits (and the NUL) into out. */
void lh_hmac_sha256_hex(const void *key, size_t key_len, const void *data, size_t n, char out[65]);
/* A 32-byte server key kept in the file `path`: read when it exists (refused unless a
 * regular file of mode 0600 owned by us, holding 64 hex digits), else created with
 * O_EXCL and mode 0600 from the kernel's random bytes. 0, or LH_EIO / LH_EPERM with
 * the path in the message. */
int lh_key_file(const char *path, uint8_t key[32], lh_err *err);

/* Sensitivity levels of datasets and columns and the clearance of principals, in order:
 * public < internal < confidential < pii. A level's rank is 1..4, 0 for anything else;
 * a reader of clearance c may see values of rank <= c. */
enum {
    LH_LEVEL_PUBLIC = 1,
    LH_LEVEL_INTERNAL = 2,
    LH_LEVEL_CONFIDENTIAL = 3,
    LH_LEVEL_PII = 4,
};
int lh_level_rank(const char *level);
const char *lh_level_name(int rank); /* "" for a rank out of range */
/* the levels in order, NULL-terminated, and as one phrase for messages */
extern const char *const LH_LEVELS[];
#define LH_LEVELS_TEXT "public, internal, confidential, pii"
/* Compare n bytes in time that does not depend on where they differ. */
bool lh_ct_equal(const void *a, const void *b, size_t n);
/* Names of datasets, buckets, indexes: [a-z][a-z0-9_]{0,62} (LH_NAME_MAX with the NUL). */
bool lh_name_valid(const char *name);
/* Create dir and its missing parents (mode 0700). 0 when it exists afterwards; LH_EIO
 * (data_dir_unusable, the path and errno in detail) otherwise. */
int lh_mkdirs(const char *dir, lh_err *err);

/* ---------------------------------------------------------------------------------
 * Logging: one JSON object per line on stderr:
 *   {"time":"...","level":"info","msg":"...","request_id":"...", <fields>}
 * Thread-safe; each line is written with one write(2).
 * ------------------------------------------------------------------------------- */
typedef enum { LH_LOG_DEBUG, LH_LOG_INFO, LH_LOG_WARN, LH_LOG_ERROR, LH_LOG_OFF } lh_log_level;
void lh_log_set_level(lh_log_level level);
lh_log_level lh_log_get_level(void);
/* Parse "debug|info|warn|error|off"; -1 when unknown. */
int lh_log_level_parse(const char *s);
bool lh_log_enabled(lh_log_level level);
/* fields: NULL or an object whose members are added to the line (borrowed). */
void lh_log(lh_log_level level, const char *request_id, json_t *fields, const char *fmt, ...)
    LH_PRINTF(4, 5);
/* Log an error with its code, detail and hint as fields. */
void lh_log_err(lh_log_level level, const char *request_id, const lh_err *err);
/* Tests capture log lines by pointing the sink at a descriptor. */
void lh_log_set_fd(int fd);

/* ---------------------------------------------------------------------------------
 * TOML subset: tables, arrays of tables, strings (basic and literal, single-line),
 * integers, floats, booleans and arrays. Dates, multi-line strings, inline tables and
 * dotted keys are refused with a clear message. The document is read-only once parsed.
 * ------------------------------------------------------------------------------- */
typedef enum {
    LH_TOML_STRING,
    LH_TOML_INT,
    LH_TOML_FLOAT,
    LH_TOML_BOOL,
    LH_TOML_ARRAY,
    LH_TOML_TABLE,
    LH_TOML_TABLE_ARRAY
} lh_toml_type;

typedef struct lh_toml lh_toml; /* a value of any type */

/* Parse text (len bytes, need not be NUL-terminated). path names the file in errors,
 * which read "path:line:col: what is wrong". Returns 0 and a new root table in *out
 * (free with lh_toml_free) or LH_EINVAL. */
int lh_toml_parse(const char *text, size_t len, const char *path, lh_toml **out, lh_err *err);
int lh_toml_parse_file(const char *path, lh_toml **out, lh_err *err);
void lh_toml_free(lh_toml *t);
/* Zero every string value in place (before freeing a document that held secrets). */
void lh_toml_wipe(lh_toml *t);
lh_toml_type lh_toml_type_of(const lh_toml *t);
const char *lh_toml_type_name(lh_toml_type type);
/* Table access: the value of key or NULL; members in file order. */
lh_toml *lh_toml_get(const lh_toml *table, const char *key);
size_t lh_toml_count(const lh_toml *t); /* members of a table, items of an array */
const char *lh_toml_key_at(const lh_toml *table, size_t i);
lh_toml *lh_toml_at(const lh_toml *t, size_t i); /* table member or array item */
/* Where the value was defined (1-based), for error messages. */
int lh_toml_line(const lh_toml *t);
int lh_toml_col(const lh_toml *t);
const char *lh_toml_str(const lh_toml *t); /* borrowed; valid while the document lives */
int64_t lh_toml_int(const lh_toml *t);
double lh_toml_float(const lh_toml *t); /* also accepts integers */
bool lh_toml_bool(const lh_toml *t);

/* ---------------------------------------------------------------------------------
 * Configuration: defaults < lakehouse.toml < LAKEHOUSE_<SECTION>_<KEY> environment.
 * Every known key is declared once in config.c (type, default, bounds, documentation);
 * unknown keys are warned about, wrong types and out-of-range values refuse the file.
 * A config is immutable after lh_config_load and may be shared between threads.
 * ------------------------------------------------------------------------------- */
typedef struct lh_config lh_config;

typedef struct lh_principal_cfg {
    const char *name;
    const char *token_sha256; /* 64 lowercase hex digits */
    const char **roles;
    size_t n_roles;
    bool limit_buckets; /* when true, only `buckets` may be used */
    const char **buckets;
    size_t n_buckets;
    const char *clearance; /* a level (LH_LEVELS) or NULL: the default for its roles */
    const char *profile;   /* the [[profile]] it uses, or NULL */
} lh_principal_cfg;

/* One "key=value" entry of a [[profile]] list (embed_models, bind). */
typedef struct lh_profile_pair {
    char *key, *value;
} lh_profile_pair;

/* A [[profile]]: a named bundle of models, dataset bindings, a default bucket and limits
 * that principals name with `profile = "..."`. Strings are borrowed from the config. */
typedef struct lh_profile_cfg {
    const char *name;
    const char *description;       /* or NULL */
    const char *embed_model;       /* the default embedding model ("builtin", "ollama:m", ...) */
    lh_profile_pair *embed_models; /* purpose → embedding model */
    size_t n_embed_models;
    lh_profile_pair *bind; /* dataset or logical name → index */
    size_t n_bind;
    const char *bucket; /* default bucket; "{user}" stands for the principal's name */
    /* an optional generation model: api "openai" or "ollama" (NULL: none configured) */
    const char *generate_api, *generate_url, *generate_model;
    const char *generate_secret_ref; /* secrets-file table whose api_key is sent, or NULL */
    int64_t max_k;                   /* most hits one search may ask for (0: [vector] max_k) */
    int64_t tool_calls_per_minute;   /* 0: [tools] max_calls_per_minute */
} lh_profile_cfg;

/* path may be NULL (embedded defaults only). env is a NULL-terminated environ-style
 * array (pass NULL for the process environment). Returns new (lh_config_free). */
int lh_config_load(const char *path, char *const *env, lh_config **out, lh_err *err);
void lh_config_free(lh_config *cfg);
/* Typed reads of "section.key"; asserting the key is declared with that type. */
const char *lh_config_str(const lh_config *cfg, const char *key);
/* A list key: its strings joined by commas ("" when empty). */
const char *lh_config_list(const lh_config *cfg, const char *key);
int64_t lh_config_int(const lh_config *cfg, const char *key);
double lh_config_float(const lh_config *cfg, const char *key);
bool lh_config_bool(const lh_config *cfg, const char *key);
/* The [[principal]] entries, validated. Borrowed; valid while cfg lives. */
const lh_principal_cfg *lh_config_principals(const lh_config *cfg, size_t *n);
/* The [[profile]] entries, validated (every principal's profile exists). Borrowed. */
const lh_profile_cfg *lh_config_profiles(const lh_config *cfg, size_t *n);
/* The profile called name, or NULL. Borrowed; valid while cfg lives. */
const lh_profile_cfg *lh_config_profile(const lh_config *cfg, const char *name);
/* What differs between two configs: a new array of "section.key" names, then "principal",
 * "profile" and "bucket" when those arrays of tables differ (in file order). */
json_t *lh_config_diff(const lh_config *a, const lh_config *b);
/* Warnings found while loading (unknown keys, ...): the caller logs them. Borrowed. */
const char *const *lh_config_warnings(const lh_config *cfg, size_t *n);
/* A [[name]] array of tables from the file (validated by the module that owns it), or
 * NULL. Borrowed; valid while cfg lives. */
const lh_toml *lh_config_table_array(const lh_config *cfg, const char *name);
/* The file the config came from, or NULL. */
const char *lh_config_path(const lh_config *cfg);
/* Write an annotated listing of every key and default (lakehouse.example.toml). */
void lh_config_write_reference(lh_buf *out);

/* ---------------------------------------------------------------------------------
 * Secrets provider: secret_ref → value, from a TOML file of tables
 *   [s3_local]
 *   access_key_id = "..."
 * The file must be a regular file (not a symlink) owned by the server's user with mode
 * 0600 or stricter, otherwise it is refused. Values never appear in errors or logs.
 * ------------------------------------------------------------------------------- */
typedef struct lh_secrets lh_secrets;
int lh_secrets_open(const char *path, lh_secrets **out, lh_err *err);
void lh_secrets_free(lh_secrets *s);
/* Returns a new copy of ref.field (free with lh_free_secret) or LH_ENOTFOUND. */
int lh_secrets_get(const lh_secrets *s, const char *ref, const char *field, char **out,
                   lh_err *err);
bool lh_secrets_has(const lh_secrets *s, const char *ref);

/* ---------------------------------------------------------------------------------
 * Background jobs: a bounded queue served by a fixed pool of worker threads.
 * A job runs fn(job, arg); it reports progress, checks for cancellation at safe points
 * and sets its result. Records stay (bounded by keep_finished) until restart.
 * All functions are thread-safe.
 * ------------------------------------------------------------------------------- */
/* ---- kept threads (kept.c) ---------------------------------------------------------- */

/* Threads for work that may block, kept for the next piece of work when done: at most
 * `keep` wait idle, each up to idle_s seconds. */
typedef struct lh_kept lh_kept;
lh_kept *lh_kept_new(int keep, int idle_s);
/* Run work(arg) on an idle kept thread, or a new one (work never waits for a busy
 * thread), then done(arg) (may be NULL) once the thread counts itself idle. 503 when
 * stopping or no thread could start; work is not run then. */
int lh_kept_run(lh_kept *k, void (*work)(void *), void (*done)(void *), void *arg, lh_err *err);
/* Work handed out, threads started, threads alive now and how many of them are idle. */
void lh_kept_stats(lh_kept *k, int64_t *handed, int64_t *started, int *threads, int *idle);
/* Stop taking work (lh_kept_run answers 503 from now on) and wait until the work running
 * has ended and every thread has exited; work queued for an idle thread still runs. The
 * pool stays valid (stats, runs refused) until lh_kept_free. Accepts NULL. */
void lh_kept_stop(lh_kept *k);
/* lh_kept_stop, then free. Accepts NULL. */
void lh_kept_free(lh_kept *k);

typedef struct lh_jobs lh_jobs;
typedef struct lh_job lh_job;
typedef enum {
    LH_JOB_QUEUED,
    LH_JOB_RUNNING,
    LH_JOB_SUCCEEDED,
    LH_JOB_FAILED,
    LH_JOB_CANCELLED
} lh_job_state;

/* The job function: return 0 (result set with lh_job_set_result) or an LH_E* code with
 * err filled. Returning LH_ECANCELED after lh_job_cancelled() marks the job cancelled. */
typedef int (*lh_job_fn)(lh_job *job, void *arg, lh_err *err);

int lh_jobs_start(int n_workers, int max_queued, int keep_finished, lh_jobs **out, lh_err *err);
/* Cancel queued and running jobs, wait for workers, free everything (accepts NULL). */
void lh_jobs_stop(lh_jobs *jobs);
/* Queue a job. kind: short label ("ingest"); owner: principal name. free_arg (may be
 * NULL) is called on arg when the job is done or could not be queued. On success the
 * new job's id is copied to id_out (LH_JOB_ID_MAX bytes). LH_EUNAVAIL when the queue
 * is full (503) or the pool is stopping. */
#define LH_JOB_ID_MAX 40
int lh_jobs_submit(lh_jobs *jobs, const char *kind, const char *owner, lh_job_fn fn, void *arg,
                   void (*free_arg)(void *), char id_out[LH_JOB_ID_MAX], lh_err *err);
/* Snapshot of one job as JSON (new) or NULL when unknown. */
json_t *lh_jobs_get_json(lh_jobs *jobs, const char *id);
/* Owner of a job (copied into owner_out, 128 bytes); false when unknown. */
bool lh_jobs_owner(lh_jobs *jobs, const char *id, char *owner_out, size_t owner_size);
/* All jobs (newest first), optionally only those of owner and/or in one state (-1 any). */
json_t *lh_jobs_list_json(lh_jobs *jobs, const char *owner, int state);
/* Whether job id is visible to the principal `name`: its own jobs, or every job when all
 * (admins). A job it may not see is answered like one that does not exist. */
bool lh_jobs_visible(lh_jobs *jobs, const char *id, const char *name, bool all);
/* 404 job_not_found for id, with a hint. */
int lh_jobs_not_found(lh_err *err, const char *id);
/* Request cancellation. 0; LH_ENOTFOUND; LH_EINVAL when already finished. */
int lh_jobs_cancel(lh_jobs *jobs, const char *id, lh_err *err);
const char *lh_job_state_name(lh_job_state s);
int lh_job_state_parse(const char *s); /* -1 when unknown */

/* Inside a job function: */
void lh_job_progress(lh_job *job, int64_t done, int64_t total, const char *unit);
bool lh_job_cancelled(const lh_job *job);
void lh_job_set_result(lh_job *job, json_t *result); /* takes ownership */
const char *lh_job_id(const lh_job *job);

#endif /* LH_CORE_H */
