/*
 * test_config.c — configuration loading (src/core/config.c): defaults, file values,
 * environment overrides, every refusal with the file position or variable it names,
 * warnings for unknown names, [[principal]] validation, and the checked-in
 * lakehouse.example.toml against lh_config_write_reference.
 */
#include "testutil.h"

#include "core/core.h"

/* Two valid token hashes (64 lowercase hex digits). */
#define HASH_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HASH_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static char *no_env[] = {NULL};

/* Write text to a temp file and load it. The file is removed again; its name is left in
 * path (for the messages that cite it). Returns lh_config_load's rc. */
static int
load_text(const char *text, char *const *env, lh_config **out, lh_err *err, char *path,
          size_t path_size)
{
    char *file = lh_test_write_file("config_", text, 0600);
    snprintf(path, path_size, "%s", file);
    lh_err_clear(err);
    int rc = lh_config_load(file, env, out, err);
    unlink(file);
    free(file);
    return rc;
}

/* Load text that must be refused; the message must be "<path>:<where>: <what>". */
#define EXPECT_REFUSED(text, env, where, what)                                                     \
    expect_refused((text), (env), "invalid_config", (where), (what), __FILE__, __LINE__)
/* The same for TOML syntax errors, which keep the parser's code. */
#define EXPECT_TOML_REFUSED(text, where, what)                                                     \
    expect_refused((text), no_env, "invalid_toml", (where), (what), __FILE__, __LINE__)

static void
expect_refused(const char *text, char *const *env, const char *code, const char *where,
               const char *what, const char *file, int line)
{
    lh_config *cfg = (lh_config *)(uintptr_t)0x1;
    lh_err err;
    char path[512];
    int rc = load_text(text, env, &cfg, &err, path, sizeof path);
    if (rc != LH_EINVAL) {
        print_error("expected LH_EINVAL for <<%s>>, got %d (%s)\n", text, rc, err.message);
        if (rc == 0)
            lh_config_free(cfg);
        _fail(file, line);
    }
    _assert_true(cfg == (lh_config *)(uintptr_t)0x1, "out untouched", file, line);
    _assert_int_equal(err.rc, LH_EINVAL, file, line);
    _assert_string_equal(err.code, code, file, line);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:%s: ", path, where);
    lh_test_assert_prefix(err.message, prefix, file, line);
    lh_test_assert_contains(err.message, what, file, line);
}

/* Load with env only (no file) and expect a refusal whose message contains what. */
static void
expect_env_refused(const char *var, const char *what)
{
    char *env[] = {(char *)var, NULL};
    lh_config *cfg = (lh_config *)(uintptr_t)0x1;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_config_load(NULL, env, &cfg, &err);
    if (rc != LH_EINVAL) {
        print_error("expected LH_EINVAL for %s, got %d\n", var, rc);
        if (rc == 0)
            lh_config_free(cfg);
        fail();
    }
    assert_true(cfg == (lh_config *)(uintptr_t)0x1);
    assert_string_equal(err.code, "invalid_config");
    assert_int_equal(err.http_status, 400);
    assert_contains(err.message, what);
}

static void
assert_no_warnings(const lh_config *cfg)
{
    size_t n = 99;
    const char *const *w = lh_config_warnings(cfg, &n);
    for (size_t i = 0; i < n; i++)
        print_error("unexpected warning: %s\n", w[i]);
    assert_int_equal(n, 0);
}

/* ---- values ------------------------------------------------------------------------ */

static void
test_defaults(void **state)
{
    lh_config *cfg = NULL;
    lh_err err;
    assert_int_equal(lh_config_load(NULL, no_env, &cfg, &err), 0);
    assert_string_equal(lh_config_str(cfg, "server.host"), "127.0.0.1");
    assert_int_equal(lh_config_int(cfg, "server.port"), 3100);
    assert_string_equal(lh_config_str(cfg, "server.data_dir"), "./data");
    assert_int_equal(lh_config_int(cfg, "server.threads"), 4);
    assert_int_equal(lh_config_int(cfg, "server.max_connections"), 1024);
    assert_int_equal(lh_config_int(cfg, "server.max_body_bytes"), 16 << 20);
    assert_int_equal(lh_config_int(cfg, "server.request_timeout_ms"), 30000);
    assert_int_equal(lh_config_int(cfg, "server.shutdown_grace_ms"), 30000);
    assert_string_equal(lh_config_str(cfg, "log.level"), "info");
    assert_true(lh_config_bool(cfg, "log.access"));
    assert_string_equal(lh_config_str(cfg, "secrets.file"), "/etc/lakehouse/secrets.toml");
    assert_int_equal(lh_config_int(cfg, "jobs.workers"), 2);
    assert_int_equal(lh_config_int(cfg, "jobs.max_queued"), 256);
    assert_int_equal(lh_config_int(cfg, "jobs.keep_finished"), 1000);
    assert_null(lh_config_path(cfg));
    size_t n = 99;
    lh_config_principals(cfg, &n);
    assert_int_equal(n, 0);
    assert_no_warnings(cfg);
    lh_config_free(cfg);
    lh_config_free(NULL);
}

static void
test_process_environment(void **state)
{
    /* env == NULL reads the process environment */
    assert_int_equal(setenv("LAKEHOUSE_JOBS_WORKERS", "7", 1), 0);
    lh_config *cfg = NULL;
    lh_err err;
    int rc = lh_config_load(NULL, NULL, &cfg, &err);
    unsetenv("LAKEHOUSE_JOBS_WORKERS");
    assert_int_equal(rc, 0);
    assert_int_equal(lh_config_int(cfg, "jobs.workers"), 7);
    lh_config_free(cfg);
}

static void
test_file_values(void **state)
{
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("# all sections\n"
                               "[server]\n"
                               "host = \"0.0.0.0\"\n"
                               "port = 0\n"
                               "data_dir = '/var/lib/lakehouse'\n"
                               "threads = 256\n"
                               "max_body_bytes = 1_048_576\n"
                               "[log]\n"
                               "level = \"debug\"\n"
                               "access = false\n"
                               "[secrets]\n"
                               "file = \"/run/secrets.toml\"\n"
                               "[jobs]\n"
                               "workers = 0x10\n"
                               "keep_finished = 0\n",
                               no_env, &cfg, &err, path, sizeof path),
                     0);
    assert_string_equal(lh_config_path(cfg), path);
    assert_string_equal(lh_config_str(cfg, "server.host"), "0.0.0.0");
    assert_int_equal(lh_config_int(cfg, "server.port"), 0);
    assert_string_equal(lh_config_str(cfg, "server.data_dir"), "/var/lib/lakehouse");
    assert_int_equal(lh_config_int(cfg, "server.threads"), 256);
    assert_int_equal(lh_config_int(cfg, "server.max_body_bytes"), 1048576);
    assert_string_equal(lh_config_str(cfg, "log.level"), "debug");
    assert_false(lh_config_bool(cfg, "log.access"));
    assert_string_equal(lh_config_str(cfg, "secrets.file"), "/run/secrets.toml");
    assert_int_equal(lh_config_int(cfg, "jobs.workers"), 16);
    assert_int_equal(lh_config_int(cfg, "jobs.keep_finished"), 0);
    /* keys the file does not set keep their defaults */
    assert_int_equal(lh_config_int(cfg, "server.max_connections"), 1024);
    assert_int_equal(lh_config_int(cfg, "jobs.max_queued"), 256);
    assert_no_warnings(cfg);
    lh_config_free(cfg);

    /* an empty file is all defaults */
    assert_int_equal(load_text("", no_env, &cfg, &err, path, sizeof path), 0);
    assert_int_equal(lh_config_int(cfg, "server.port"), 3100);
    assert_no_warnings(cfg);
    lh_config_free(cfg);
}

static void
test_env_beats_file(void **state)
{
    char *env[] = {"HOME=/root",
                   "LAKEHOUSE_SERVER_PORT=3200",
                   "LAKEHOUSE_SERVER_HOST=::1",
                   "LAKEHOUSE_SERVER_DATA_DIR=/tmp/lh data",
                   "LAKEHOUSE_LOG_LEVEL=warn",
                   "LAKEHOUSE_LOG_ACCESS=0",
                   "LAKEHOUSE_JOBS_WORKERS=3",
                   "LAKEHOUSE_JOBS_WORKERS=5", /* the last one wins */
                   "LAKEHOUSE_SERVER_MAX_BODY_BYTES=1099511627776",
                   NULL};
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("[server]\nport = 4000\nhost = \"10.0.0.1\"\nthreads = 8\n"
                               "[log]\nlevel = \"error\"\naccess = true\n",
                               env, &cfg, &err, path, sizeof path),
                     0);
    assert_int_equal(lh_config_int(cfg, "server.port"), 3200);
    assert_string_equal(lh_config_str(cfg, "server.host"), "::1");
    assert_string_equal(lh_config_str(cfg, "server.data_dir"), "/tmp/lh data");
    assert_int_equal(lh_config_int(cfg, "server.threads"), 8); /* file, not overridden */
    assert_string_equal(lh_config_str(cfg, "log.level"), "warn");
    assert_false(lh_config_bool(cfg, "log.access"));
    assert_int_equal(lh_config_int(cfg, "jobs.workers"), 5);
    assert_true(lh_config_int(cfg, "server.max_body_bytes") == INT64_C(1) << 40);
    assert_no_warnings(cfg);
    lh_config_free(cfg);

    /* every boolean spelling */
    static const struct {
        const char *var;
        bool value;
    } bools[] = {{"LAKEHOUSE_LOG_ACCESS=true", true},
                 {"LAKEHOUSE_LOG_ACCESS=1", true},
                 {"LAKEHOUSE_LOG_ACCESS=false", false},
                 {"LAKEHOUSE_LOG_ACCESS=0", false}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        char *benv[] = {(char *)bools[i].var, NULL};
        assert_int_equal(
            load_text(bools[i].value ? "[log]\naccess = false\n" : "[log]\naccess = true\n", benv,
                      &cfg, &err, path, sizeof path),
            0);
        assert_int_equal(lh_config_bool(cfg, "log.access"), bools[i].value);
        lh_config_free(cfg);
    }
}

static void
test_env_names_not_matching(void **state)
{
    char *env[] = {"PATH=/usr/bin",
                   "lakehouse_server_port=1",              /* not our prefix: ignored silently */
                   "LAKEHOUSE_NO_EQUALS_SIGN",             /* not an assignment: ignored */
                   "LAKEHOUSE_CONFIG=/etc/lakehouse.toml", /* names the file: no warning */
                   "LAKEHOUSE_SERVER_PROT=1",
                   "LAKEHOUSE_server_port=2",
                   NULL};
    lh_config *cfg = NULL;
    lh_err err;
    assert_int_equal(lh_config_load(NULL, env, &cfg, &err), 0);
    assert_int_equal(lh_config_int(cfg, "server.port"), 3100);
    size_t n = 0;
    const char *const *w = lh_config_warnings(cfg, &n);
    assert_int_equal(n, 2);
    assert_string_equal(w[0], "environment variable LAKEHOUSE_SERVER_PROT matches no "
                              "configuration key; ignored");
    assert_contains(w[1], "LAKEHOUSE_server_port");
    lh_config_free(cfg);
}

static void
test_bad_env_values(void **state)
{
    expect_env_refused("LAKEHOUSE_SERVER_PORT=abc",
                       "LAKEHOUSE_SERVER_PORT: 'abc' is not an integer");
    expect_env_refused("LAKEHOUSE_SERVER_PORT=", "LAKEHOUSE_SERVER_PORT: '' is not an integer");
    expect_env_refused("LAKEHOUSE_SERVER_PORT=12x",
                       "LAKEHOUSE_SERVER_PORT: '12x' is not an integer");
    expect_env_refused("LAKEHOUSE_SERVER_PORT=3.5",
                       "LAKEHOUSE_SERVER_PORT: '3.5' is not an integer");
    expect_env_refused("LAKEHOUSE_SERVER_MAX_BODY_BYTES=99999999999999999999",
                       "LAKEHOUSE_SERVER_MAX_BODY_BYTES: '99999999999999999999' is not an integer");
    expect_env_refused("LAKEHOUSE_SERVER_PORT=70000",
                       "LAKEHOUSE_SERVER_PORT: [server] port = 70000 is out of range (0..65535)");
    expect_env_refused("LAKEHOUSE_SERVER_PORT=-1",
                       "LAKEHOUSE_SERVER_PORT: [server] port = -1 is out of range (0..65535)");
    expect_env_refused("LAKEHOUSE_SERVER_MAX_BODY_BYTES=1099511627777",
                       "LAKEHOUSE_SERVER_MAX_BODY_BYTES: [server] max_body_bytes = 1099511627777 "
                       "is out of range (1024..1099511627776)");
    expect_env_refused("LAKEHOUSE_JOBS_WORKERS=0",
                       "LAKEHOUSE_JOBS_WORKERS: [jobs] workers = 0 is out of range (1..64)");
    expect_env_refused("LAKEHOUSE_LOG_ACCESS=yes",
                       "LAKEHOUSE_LOG_ACCESS: 'yes' is not a boolean (true/false/1/0)");
    expect_env_refused("LAKEHOUSE_LOG_ACCESS=", "LAKEHOUSE_LOG_ACCESS: '' is not a boolean");
    expect_env_refused("LAKEHOUSE_LOG_LEVEL=verbose",
                       "LAKEHOUSE_LOG_LEVEL: [log] level = \"verbose\" is not one of: debug, "
                       "info, warn, error, off");
    expect_env_refused("LAKEHOUSE_LOG_LEVEL=INFO", "LAKEHOUSE_LOG_LEVEL: [log] level = \"INFO\"");
    /* required strings may not be emptied from the environment either */
    expect_env_refused("LAKEHOUSE_SERVER_HOST=", "[server] host must not be empty");
    expect_env_refused("LAKEHOUSE_SERVER_DATA_DIR=", "[server] data_dir must not be empty");

    /* a bad variable refuses a good file too */
    char *env[] = {"LAKEHOUSE_SERVER_THREADS=many", NULL};
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("[server]\nthreads = 2\n", env, &cfg, &err, path, sizeof path),
                     LH_EINVAL);
    assert_null(cfg);
    assert_string_equal(err.message, "LAKEHOUSE_SERVER_THREADS: 'many' is not an integer");
}

/* ---- refusals in the file ------------------------------------------------------------- */

static void
test_file_wrong_types(void **state)
{
    EXPECT_REFUSED("[server]\nport = \"3100\"\n", no_env, "2:1",
                   "[server] port must be a integer, not a string");
    EXPECT_REFUSED("[server]\nhost = 1\n", no_env, "2:1",
                   "[server] host must be a string, not a integer");
    EXPECT_REFUSED("[log]\naccess = \"yes\"\n", no_env, "2:1",
                   "[log] access must be a boolean, not a string");
    EXPECT_REFUSED("[jobs]\nworkers = 2.5\n", no_env, "2:1",
                   "[jobs] workers must be a integer, not a float");
    EXPECT_REFUSED("[server]\nport = [3100]\n", no_env, "2:1",
                   "[server] port must be a integer, not a array");
    EXPECT_REFUSED("[log]\nlevel = true\n", no_env, "2:1",
                   "[log] level must be a string, not a boolean");
    EXPECT_REFUSED("[server]\nhost = \"h\"\n\n   threads = true  # eight\n", no_env, "4:4",
                   "[server] threads must be a integer, not a boolean");
    /* the position is in the file even when the environment would override the key */
    char *env[] = {"LAKEHOUSE_SERVER_PORT=3200", NULL};
    EXPECT_REFUSED("[server]\nport = \"x\"\n", env, "2:1", "[server] port must be a integer");
}

static void
test_file_out_of_range(void **state)
{
    EXPECT_REFUSED("[server]\nport = 65536\n", no_env, "2:1",
                   "[server] port = 65536 is out of range (0..65535)");
    EXPECT_REFUSED("[server]\nport = -1\n", no_env, "2:1", "[server] port = -1 is out of range");
    EXPECT_REFUSED("[server]\nthreads = 0\n", no_env, "2:1",
                   "[server] threads = 0 is out of range (1..256)");
    EXPECT_REFUSED("[server]\nthreads = 257\n", no_env, "2:1",
                   "[server] threads = 257 is out of range (1..256)");
    EXPECT_REFUSED("\n[jobs]\nmax_queued = 100001\n", no_env, "3:1",
                   "[jobs] max_queued = 100001 is out of range (1..100000)");
    EXPECT_REFUSED("[log]\nlevel = \"verbose\"\n", no_env, "2:1",
                   "[log] level = \"verbose\" is not one of: debug, info, warn, error, off");

    /* the bounds themselves are accepted */
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("[server]\nport = 65535\nthreads = 1\nmax_connections = 65536\n"
                               "[jobs]\nworkers = 64\nmax_queued = 1\n",
                               no_env, &cfg, &err, path, sizeof path),
                     0);
    assert_int_equal(lh_config_int(cfg, "server.port"), 65535);
    assert_int_equal(lh_config_int(cfg, "server.threads"), 1);
    assert_int_equal(lh_config_int(cfg, "server.max_connections"), 65536);
    assert_int_equal(lh_config_int(cfg, "jobs.workers"), 64);
    lh_config_free(cfg);

    /* an empty host has no position: it is checked after the environment */
    assert_int_equal(load_text("[server]\nhost = \"\"\n", no_env, &cfg, &err, path, sizeof path),
                     LH_EINVAL);
    assert_string_equal(err.message, "[server] host must not be empty");
}

static void
test_file_syntax_and_missing(void **state)
{
    /* TOML errors pass through with their position */
    EXPECT_TOML_REFUSED("[server]\nport = 31OO\n", "2:8", "is not a valid value");
    EXPECT_TOML_REFUSED("[server]\nport = 1\n[server]\n", "3:1",
                        "'server' is already defined at line 1");

    /* a missing file is an error, not defaults */
    char *dir = lh_test_mkdtemp("config_missing_");
    char path[600];
    snprintf(path, sizeof path, "%s/lakehouse.toml", dir);
    lh_config *cfg = (lh_config *)(uintptr_t)0x1;
    lh_err err;
    assert_int_equal(lh_config_load(path, no_env, &cfg, &err), LH_ENOTFOUND);
    assert_true(cfg == (lh_config *)(uintptr_t)0x1);
    assert_int_equal(err.rc, LH_ENOTFOUND);
    assert_prefix(err.message, path);
    assert_contains(err.message, "cannot open");
    /* a directory is no file either */
    assert_int_equal(lh_config_load(dir, no_env, &cfg, &err), LH_EINVAL);
    assert_contains(err.message, "not a regular file");
    assert_true(cfg == (lh_config *)(uintptr_t)0x1);
    lh_test_rm_rf(dir);
    free(dir);
}

static void
test_unknown_names_warn(void **state)
{
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("toplevel = 1\n"     /* 1 */
                               "[server]\n"         /* 2 */
                               "prot = 3100\n"      /* 3 */
                               "port = 3101\n"      /* 4 */
                               "[sever]\n"          /* 5 */
                               "port = 1\n"         /* 6 */
                               "[storage]\n"        /* 7: a known section */
                               "anything = \"x\"\n" /* 8 */
                               "[[bucket]]\n"       /* 9: reserved too */
                               "name = \"b\"\n"
                               "[[unknown_arr]]\n" /* 11 */
                               "[log]\n"
                               "  colour = true\n", /* 13 */
                               no_env, &cfg, &err, path, sizeof path),
                     0);
    assert_int_equal(lh_config_int(cfg, "server.port"), 3101);
    size_t n = 0;
    const char *const *w = lh_config_warnings(cfg, &n);
    assert_int_equal(n, 6);
    char expect[700];
    snprintf(expect, sizeof expect,
             "%s:1:1: unknown top-level key 'toplevel' ignored (keys belong in a [section])", path);
    assert_string_equal(w[0], expect);
    snprintf(expect, sizeof expect, "%s:3:1: unknown key 'prot' in [server] ignored", path);
    assert_string_equal(w[1], expect);
    snprintf(expect, sizeof expect, "%s:5:1: unknown section [sever] ignored", path);
    assert_string_equal(w[2], expect);
    snprintf(expect, sizeof expect, "%s:8:1: unknown key 'anything' in [storage] ignored", path);
    assert_string_equal(w[3], expect);
    snprintf(expect, sizeof expect, "%s:11:1:", path);
    assert_prefix(w[4], expect);
    assert_contains(w[4], "'unknown_arr'");
    snprintf(expect, sizeof expect, "%s:13:3: unknown key 'colour' in [log] ignored", path);
    assert_string_equal(w[5], expect);
    lh_config_free(cfg);
}

/* ---- principals --------------------------------------------------------------------- */

static void
test_principals_valid(void **state)
{
    char hash_a[65];
    lh_sha256_hex("tok-a", 5, hash_a);
    char text[1024];
    snprintf(text, sizeof text,
             "[[principal]]\n"
             "name = \"alice\"\n"
             "token_sha256 = \"%s\"\n"
             "roles = [\"admin\"]\n"
             "\n"
             "[[principal]]\n"
             "name = \"bot\"\n"
             "token_sha256 = \"" HASH_B "\"\n"
             "roles = [\"reader\", \"agent\", \"writer\"]\n"
             "comment = \"nightly jobs\"\n",
             hash_a);
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text(text, no_env, &cfg, &err, path, sizeof path), 0);
    size_t n = 0;
    const lh_principal_cfg *p = lh_config_principals(cfg, &n);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].name, "alice");
    assert_string_equal(p[0].token_sha256, hash_a);
    assert_int_equal(p[0].n_roles, 1);
    assert_string_equal(p[0].roles[0], "admin");
    assert_string_equal(p[1].name, "bot");
    assert_string_equal(p[1].token_sha256, HASH_B);
    assert_int_equal(p[1].n_roles, 3);
    assert_string_equal(p[1].roles[0], "reader");
    assert_string_equal(p[1].roles[1], "agent");
    assert_string_equal(p[1].roles[2], "writer");
    /* an unknown key in an entry is a warning naming the entry */
    const char *const *w = lh_config_warnings(cfg, &n);
    assert_int_equal(n, 1);
    char expect[700];
    snprintf(expect, sizeof expect, "%s:6:1: [[principal]] #2: unknown key 'comment' ignored",
             path);
    assert_string_equal(w[0], expect);
    lh_config_free(cfg);
}

static void
test_profiles(void **state)
{
    (void)state;
    static const char text[] = "[[principal]]\n"
                               "name = \"bot\"\n"
                               "token_sha256 = \"" HASH_B "\"\n"
                               "roles = [\"agent\"]\n"
                               "profile = \"remote\"\n"
                               "\n"
                               "[[profile]]\n"
                               "name = \"remote\"\n"
                               "embed_model = \"ollama:m\"\n"
                               "embed_models = [\"resumes=builtin\"]\n"
                               "bind = [\"people=people_remote\"]\n"
                               "generate_url = \"http://127.0.0.1:1\"\n"
                               "generate_model = \"llama\"\n"
                               "max_k = 7\n";
    lh_config *cfg = NULL, *plain = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text(text, no_env, &cfg, &err, path, sizeof path), 0);
    size_t n = 0;
    const lh_principal_cfg *pc = lh_config_principals(cfg, &n);
    assert_string_equal(pc[0].profile, "remote");
    const lh_profile_cfg *p = lh_config_profile(cfg, "remote");
    assert_non_null(p);
    assert_null(lh_config_profile(cfg, "other"));
    assert_string_equal(p->embed_model, "ollama:m");
    assert_int_equal(p->n_embed_models, 1);
    assert_string_equal(p->embed_models[0].key, "resumes");
    assert_string_equal(p->embed_models[0].value, "builtin");
    assert_string_equal(p->bind[0].key, "people");
    assert_string_equal(p->bind[0].value, "people_remote");
    assert_string_equal(p->generate_api, "openai"); /* the default api */
    assert_int_equal(p->max_k, 7);
    assert_int_equal(p->tool_calls_per_minute, 0);
    /* the diff against defaults names the arrays that differ, and nothing for itself */
    assert_int_equal(lh_config_load(NULL, no_env, &plain, &err), 0);
    json_t *diff = lh_config_diff(plain, cfg);
    char *text_diff = json_dumps(diff, JSON_COMPACT);
    assert_string_equal(text_diff, "[\"principal\",\"profile\"]");
    free(text_diff);
    json_decref(diff);
    diff = lh_config_diff(cfg, cfg);
    assert_int_equal(json_array_size(diff), 0);
    json_decref(diff);
    lh_config_free(plain);
    lh_config_free(cfg);

    EXPECT_REFUSED("[[principal]]\nname = \"bot\"\ntoken_sha256 = \"" HASH_B "\"\n"
                   "roles = [\"agent\"]\nprofile = \"ghost\"\n",
                   no_env, "5:1", "principal 'bot' names profile 'ghost'");
    EXPECT_REFUSED("[[profile]]\nname = \"p\"\nbind = [\"x\"]\n", no_env, "1:1",
                   "\"dataset=index\"");
    EXPECT_REFUSED("[[profile]]\nname = \"p\"\nbind = [\"x=y\", \"x=z\"]\n", no_env, "1:1",
                   "names 'x' twice");
    EXPECT_REFUSED("[[profile]]\nname = \"p\"\ngenerate_model = \"m\"\n", no_env, "1:1",
                   "needs both");
    EXPECT_REFUSED("[[profile]]\nname = \"p\"\nmax_k = 0\n", no_env, "1:1", "max_k");
    EXPECT_REFUSED("[[profile]]\nname = \"p\"\n[[profile]]\nname = \"p\"\n", no_env, "3:1",
                   "defined twice");
    EXPECT_REFUSED("[profile]\nname = \"p\"\n", no_env, "1:1", "[[profile]] entries");
}

static void
test_principals_invalid(void **state)
{
    static const char name_err[] =
        "[[principal]] #1: 'name' must be a string of 1 to 64 characters";
    static const char hash_err[] = "[[principal]] #1: 'token_sha256' must be 64 lowercase hex "
                                   "digits";
    static const char roles_err[] = "[[principal]] #1: 'roles' must be a non-empty array";
    static const char role_err[] = "[[principal]] #1: unknown role; roles are admin, writer, "
                                   "reader, agent";
    /* name */
    EXPECT_REFUSED("[[principal]]\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"admin\"]\n", no_env,
                   "1:1", name_err);
    EXPECT_REFUSED("[[principal]]\nname = \"\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", name_err);
    EXPECT_REFUSED("[[principal]]\nname = 7\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", name_err);
    EXPECT_REFUSED("[[principal]]\nname = \"12345678901234567890123456789012345678901234567890"
                   "123456789012345\"\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", name_err);
    /* token_sha256 */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\nroles = [\"admin\"]\n", no_env, "1:1", hash_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"0123456789ABCDEF0123456789abcdef"
                   "0123456789abcdef0123456789abcdef\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", hash_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"123456789abcdef0123456789abcdef"
                   "0123456789abcdef0123456789abcdef\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", hash_err); /* 63 digits */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "0\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", hash_err); /* 65 digits */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"g123456789abcdef0123456789abcdef"
                   "0123456789abcdef0123456789abcdef\"\nroles = [\"admin\"]\n",
                   no_env, "1:1", hash_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = 5\nroles = [\"admin\"]\n", no_env,
                   "1:1", hash_err);
    /* roles */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A "\"\n", no_env, "1:1",
                   roles_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A "\"\nroles = []\n",
                   no_env, "1:1", roles_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = \"admin\"\n",
                   no_env, "1:1", roles_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"reader\", \"root\"]\n",
                   no_env, "1:1", role_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A "\"\nroles = [1]\n",
                   no_env, "1:1", role_err);
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"Admin\"]\n",
                   no_env, "1:1", role_err);
    /* duplicates: the second entry is named, with its own position */
    EXPECT_REFUSED(
        "[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"admin\"]\n"
        "[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_B "\"\nroles = [\"reader\"]\n",
        no_env, "5:1", "[[principal]] #2: principal 'a' is defined twice");
    EXPECT_REFUSED(
        "[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"admin\"]\n"
        "\n[[principal]]\nname = \"b\"\ntoken_sha256 = \"" HASH_A "\"\nroles = [\"reader\"]\n",
        no_env, "6:1", "[[principal]] #2: principals 'a' and 'b' share a token");
    /* an error in a later entry after a valid one */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"admin\"]\n"
                   "[[principal]]\nname = \"b\"\ntoken_sha256 = \"" HASH_B "\"\nroles = [\"x\"]\n",
                   no_env, "5:1", "[[principal]] #2: unknown role");
    /* principal must be an array of tables */
    EXPECT_REFUSED("principal = 1\n", no_env, "1:1",
                   "'principal' must be written as [[principal]] entries");
    EXPECT_REFUSED("[server]\nport = 1\n[principal]\nname = \"a\"\n", no_env, "3:1",
                   "'principal' must be written as [[principal]] entries");
}

/* ---- column governance: clearance, [catalog] require ---------------------------------- */

static void
test_clearance_and_require(void **state)
{
    (void)state;
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    assert_int_equal(load_text("[catalog]\nrequire = [\"owner\", \"sensitivity\"]\n"
                               "[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                               "\"\nroles = [\"reader\"]\nclearance = \"public\"\n"
                               "[[principal]]\nname = \"b\"\ntoken_sha256 = \"" HASH_B
                               "\"\nroles = [\"admin\"]\n",
                               no_env, &cfg, &err, path, sizeof path),
                     0);
    assert_no_warnings(cfg);
    assert_string_equal(lh_config_list(cfg, "catalog.require"), "owner,sensitivity");
    size_t n = 0;
    const lh_principal_cfg *p = lh_config_principals(cfg, &n);
    assert_int_equal(n, 2);
    assert_string_equal(p[0].clearance, "public");
    assert_null(p[1].clearance);
    lh_config_free(cfg);
    /* defaults and the environment (comma-separated) */
    char *env[] = {"LAKEHOUSE_CATALOG_REQUIRE=owner,description", NULL};
    assert_int_equal(lh_config_load(NULL, no_env, &cfg, &err), 0);
    assert_string_equal(lh_config_list(cfg, "catalog.require"), "");
    lh_config_free(cfg);
    assert_int_equal(lh_config_load(NULL, env, &cfg, &err), 0);
    assert_string_equal(lh_config_list(cfg, "catalog.require"), "owner,description");
    lh_config_free(cfg);
    expect_env_refused("LAKEHOUSE_CATALOG_REQUIRE=owner,colour", "colour");
    /* refused with the value's place */
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"reader\"]\nclearance = \"secret\"\n",
                   no_env, "5:1",
                   "[[principal]] #1: 'clearance' must be one of public, internal, confidential, "
                   "pii");
    EXPECT_REFUSED("[[principal]]\nname = \"a\"\ntoken_sha256 = \"" HASH_A
                   "\"\nroles = [\"reader\"]\nclearance = 3\n",
                   no_env, "5:1", "'clearance' must be one of");
    EXPECT_REFUSED("[catalog]\nrequire = [\"owner\", \"colour\"]\n", no_env, "2:1",
                   "[catalog] require = \"colour\" is not one of: owner, description");
    EXPECT_REFUSED("[catalog]\nrequire = \"owner\"\n", no_env, "2:1",
                   "[catalog] require must be a");
    EXPECT_REFUSED("[catalog]\nrequire = [1]\n", no_env, "2:1",
                   "[catalog] require must be an array of strings");
}

/* ---- the reference file ----------------------------------------------------------------- */

static char *
example_path(void)
{
    const char *src = getenv("LH_SOURCE_DIR");
    if (src == NULL || src[0] == '\0')
        return NULL;
    return lh_sprintf("%s/lakehouse.example.toml", src);
}

static void
test_example_file_is_reference(void **state)
{
    char *path = example_path();
    if (path == NULL) {
        print_message("LH_SOURCE_DIR is not set (run through ctest); skipping\n");
        skip();
    }
    size_t len = 0;
    char *checked_in = lh_test_read_file(path, &len);
    if (checked_in == NULL) {
        print_error("cannot read %s\n", path);
        free(path);
        fail();
    }
    lh_buf ref;
    lh_buf_init(&ref);
    lh_config_write_reference(&ref);
    if (len != ref.len || memcmp(checked_in, ref.data, len) != 0) {
        /* show the first line that differs */
        size_t i = 0, line = 1;
        while (i < len && i < ref.len && checked_in[i] == ref.data[i])
            line += checked_in[i++] == '\n';
        print_error("%s differs from lh_config_write_reference at line %zu; regenerate it\n", path,
                    line);
    }
    assert_int_equal(len, ref.len);
    assert_memory_equal(checked_in, ref.data, len);
    lh_buf_free(&ref);
    free(checked_in);
    free(path);
}

static void
test_example_file_loads(void **state)
{
    char *path = example_path();
    if (path == NULL) {
        print_message("LH_SOURCE_DIR is not set (run through ctest); skipping\n");
        skip();
    }
    lh_config *cfg = NULL;
    lh_err err;
    lh_err_clear(&err);
    int rc = lh_config_load(path, no_env, &cfg, &err);
    if (rc != 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_no_warnings(cfg);
    /* it lists the defaults */
    assert_string_equal(lh_config_str(cfg, "server.host"), "127.0.0.1");
    assert_int_equal(lh_config_int(cfg, "server.port"), 3100);
    assert_int_equal(lh_config_int(cfg, "server.max_body_bytes"), 16 << 20);
    assert_string_equal(lh_config_str(cfg, "log.level"), "info");
    size_t n = 99;
    lh_config_principals(cfg, &n);
    assert_int_equal(n, 0);
    lh_config_free(cfg);
    free(path);
}

static void
test_reference_is_valid_toml_of_every_key(void **state)
{
    /* independent of the checked-in copy: the generated text loads cleanly */
    lh_buf ref;
    lh_buf_init(&ref);
    lh_config_write_reference(&ref);
    lh_config *cfg = NULL;
    lh_err err;
    char path[512];
    lh_err_clear(&err);
    int rc = load_text(ref.data, no_env, &cfg, &err, path, sizeof path);
    if (rc != 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_no_warnings(cfg);
    lh_config_free(cfg);
    /* and documents the environment variable of each key */
    assert_contains(ref.data, "(LAKEHOUSE_SERVER_PORT)");
    assert_contains(ref.data, "(LAKEHOUSE_JOBS_KEEP_FINISHED)");
    assert_contains(ref.data, "# [[principal]]");
    lh_buf_free(&ref);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_clearance_and_require),
        cmocka_unit_test(test_process_environment),
        cmocka_unit_test(test_file_values),
        cmocka_unit_test(test_env_beats_file),
        cmocka_unit_test(test_env_names_not_matching),
        cmocka_unit_test(test_bad_env_values),
        cmocka_unit_test(test_file_wrong_types),
        cmocka_unit_test(test_file_out_of_range),
        cmocka_unit_test(test_file_syntax_and_missing),
        cmocka_unit_test(test_unknown_names_warn),
        cmocka_unit_test(test_principals_valid),
        cmocka_unit_test(test_principals_invalid),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_example_file_is_reference),
        cmocka_unit_test(test_example_file_loads),
        cmocka_unit_test(test_reference_is_valid_toml_of_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
