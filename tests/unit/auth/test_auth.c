/*
 * test_auth.c — bearer tokens to principals (src/http/auth.c): principals from
 * [[principal]] config, every 401 case, 403 with the roles named, and the admin token
 * bootstrap in <data_dir>/admin.token (created 0600, reused, refused when loose).
 */
#include "testutil.h"

#include "auth/auth.h"

static const char *const TOKENS[] = {"tok-reader", "tok-writer", "tok-admin", "tok-agent"};

/* A config with four principals, loaded from a temp file. data_dir points at a fresh
 * directory (returned in *data_dir, new) so a test can check nothing was written there. */
static lh_config *
load_principals_config(char **data_dir)
{
    char h[4][65];
    for (int i = 0; i < 4; i++)
        lh_sha256_hex(TOKENS[i], strlen(TOKENS[i]), h[i]);
    char long_token[301];
    memset(long_token, 'a', 300);
    long_token[300] = '\0';
    char h_long[65];
    lh_sha256_hex(long_token, 300, h_long);
    char text[2048];
    snprintf(text, sizeof text,
             "[[principal]]\nname = \"reader\"\ntoken_sha256 = \"%s\"\nroles = [\"reader\"]\n"
             "[[principal]]\nname = \"writer\"\ntoken_sha256 = \"%s\"\n"
             "roles = [\"writer\", \"reader\"]\n"
             "[[principal]]\nname = \"admin\"\ntoken_sha256 = \"%s\"\nroles = [\"admin\"]\n"
             "[[principal]]\nname = \"agent\"\ntoken_sha256 = \"%s\"\nroles = [\"agent\"]\n"
             "[[principal]]\nname = \"long\"\ntoken_sha256 = \"%s\"\nroles = [\"admin\"]\n",
             h[0], h[1], h[2], h[3], h_long);
    char *path = lh_test_write_file("auth_config_", text, 0600);
    *data_dir = lh_test_mkdtemp("auth_data_");
    char *data_env = lh_sprintf("LAKEHOUSE_SERVER_DATA_DIR=%s", *data_dir);
    char *env[] = {data_env, NULL};
    lh_config *cfg = NULL;
    lh_err err;
    int rc = lh_config_load(path, env, &cfg, &err);
    if (rc != 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    unlink(path);
    free(path);
    free(data_env);
    return cfg;
}

/* A config without principals whose data_dir is dir (not created yet). */
static lh_config *
load_bootstrap_config(const char *dir)
{
    char *data_env = lh_sprintf("LAKEHOUSE_SERVER_DATA_DIR=%s", dir);
    char *env[] = {data_env, NULL};
    lh_config *cfg = NULL;
    lh_err err;
    assert_int_equal(lh_config_load(NULL, env, &cfg, &err), 0);
    free(data_env);
    return cfg;
}

/* Check a header value; expect the principal named name (or a 401 when name is NULL). */
#define EXPECT_AUTH(auth, header, name, message)                                                   \
    expect_auth((auth), (header), (name), (message), __FILE__, __LINE__)

static void
expect_auth(const lh_auth *auth, const char *header, const char *name, const char *message,
            const char *file, int line)
{
    lh_err err;
    lh_err_clear(&err);
    const lh_principal *p = lh_auth_check(auth, header, &err);
    if (name != NULL) {
        if (p == NULL) {
            print_error("'%s' was refused: %s\n", header ? header : "(null)", err.message);
            _fail(file, line);
        }
        _assert_string_equal(p->name, name, file, line);
        _assert_true(p >= auth->principals && p < auth->principals + auth->n, "borrowed", file,
                     line);
        return;
    }
    if (p != NULL) {
        print_error("'%s' was accepted as %s\n", header ? header : "(null)", p->name);
        _fail(file, line);
    }
    _assert_int_equal(err.rc, LH_EPERM, file, line);
    _assert_int_equal(err.http_status, 401, file, line);
    _assert_string_equal(err.code, "unauthenticated", file, line);
    _assert_string_equal(err.message, message, file, line);
    _assert_true(err.hint[0] != '\0', "hint", file, line);
}

/* ---- principals from configuration -------------------------------------------------------- */

static void
test_principals_from_config(void **state)
{
    char *data_dir = NULL;
    lh_config *cfg = load_principals_config(&data_dir);
    lh_auth auth;
    lh_err err;
    assert_int_equal(lh_auth_init(&auth, cfg, &err), 0);
    assert_int_equal(auth.n, 5);
    assert_null(auth.token_file);
    static const char *const names[] = {"reader", "writer", "admin", "agent"};
    static const unsigned roles[] = {LH_ROLE_READER, LH_ROLE_WRITER | LH_ROLE_READER, LH_ROLE_ADMIN,
                                     LH_ROLE_AGENT};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(auth.principals[i].name, names[i]);
        assert_int_equal(auth.principals[i].roles, roles[i]);
        uint8_t digest[32];
        lh_sha256(TOKENS[i], strlen(TOKENS[i]), digest);
        assert_memory_equal(auth.principals[i].token_sha256, digest, 32);
    }
    /* with principals configured no admin token is written */
    char token_path[600];
    snprintf(token_path, sizeof token_path, "%s/admin.token", data_dir);
    assert_int_equal(access(token_path, F_OK), -1);

    lh_auth_free(&auth);
    assert_null(auth.principals);
    assert_int_equal(auth.n, 0);
    lh_config_free(cfg);
    lh_test_rm_rf(data_dir);
    free(data_dir);
}

/* A shared set owns its config and lives until its last reference: a request that took one
 * before a reload keeps its principal valid after the server dropped its own. */
static void
test_shared_set(void **state)
{
    (void)state;
    char *data_dir = NULL;
    lh_config *cfg = load_principals_config(&data_dir);
    lh_auth *set = NULL;
    lh_err err;
    assert_int_equal(lh_auth_new(cfg, true, &set, &err), 0);
    assert_ptr_equal(set->config, cfg);
    lh_auth *request = lh_auth_retain(set);
    const lh_principal *p = lh_auth_check(request, "Bearer tok-writer", &err);
    assert_non_null(p);
    assert_null(p->profile);
    assert_ptr_equal(lh_auth_find(set, "writer"), p);
    assert_null(lh_auth_find(set, "nobody"));
    lh_auth_release(set);                   /* the server swaps in another set */
    assert_string_equal(p->name, "writer"); /* still valid: the request holds it */
    assert_string_equal(lh_config_str(request->config, "server.data_dir"), data_dir);
    lh_auth_release(request); /* the last reference frees set and config (ASan: no leak) */
    lh_auth_release(NULL);
    rmdir(data_dir);
    free(data_dir);
}

static void
test_check_header(void **state)
{
    char *data_dir = NULL;
    lh_config *cfg = load_principals_config(&data_dir);
    lh_auth auth;
    lh_err err;
    assert_int_equal(lh_auth_init(&auth, cfg, &err), 0);

    EXPECT_AUTH(&auth, "Bearer tok-reader", "reader", NULL);
    EXPECT_AUTH(&auth, "Bearer tok-writer", "writer", NULL);
    EXPECT_AUTH(&auth, "Bearer tok-admin", "admin", NULL);
    EXPECT_AUTH(&auth, "Bearer tok-agent", "agent", NULL);
    /* the scheme is case-insensitive; spaces around the token are ignored */
    EXPECT_AUTH(&auth, "bearer tok-reader", "reader", NULL);
    EXPECT_AUTH(&auth, "BEARER tok-reader", "reader", NULL);
    EXPECT_AUTH(&auth, "BeArEr tok-admin", "admin", NULL);
    EXPECT_AUTH(&auth, "Bearer    tok-reader  ", "reader", NULL);

    /* missing */
    EXPECT_AUTH(&auth, NULL, NULL, "missing bearer token");
    EXPECT_AUTH(&auth, "", NULL, "missing bearer token");
    /* other schemes */
    EXPECT_AUTH(&auth, "Basic dG9rLXJlYWRlcg==", NULL, "authorization must use the Bearer scheme");
    EXPECT_AUTH(&auth, "tok-reader", NULL, "authorization must use the Bearer scheme");
    EXPECT_AUTH(&auth, "Bearer", NULL, "authorization must use the Bearer scheme");
    EXPECT_AUTH(&auth, "Bearertok-reader", NULL, "authorization must use the Bearer scheme");
    /* unknown tokens */
    EXPECT_AUTH(&auth, "Bearer tok-nobody", NULL, "unknown bearer token");
    EXPECT_AUTH(&auth, "Bearer tok-reader2", NULL, "unknown bearer token");
    EXPECT_AUTH(&auth, "Bearer tok-reade", NULL, "unknown bearer token");
    EXPECT_AUTH(&auth, "Bearer TOK-READER", NULL, "unknown bearer token"); /* tokens are exact */
    EXPECT_AUTH(&auth, "Bearer ", NULL, "unknown bearer token");
    EXPECT_AUTH(&auth, "Bearer    ", NULL, "unknown bearer token");
    EXPECT_AUTH(&auth, "Bearer tok-reader tok-admin", NULL, "unknown bearer token");
    /* a token longer than 256 bytes is refused even when its hash is configured */
    char header[7 + 300 + 1] = "Bearer ";
    memset(header + 7, 'a', 300);
    header[307] = '\0';
    EXPECT_AUTH(&auth, header, NULL, "unknown bearer token");

    /* a NULL err is accepted */
    assert_null(lh_auth_check(&auth, "Bearer nope", NULL));

    lh_auth_free(&auth);
    lh_config_free(cfg);
    lh_test_rm_rf(data_dir);
    free(data_dir);
}

static void
test_allow_roles(void **state)
{
    lh_principal reader = {.name = "reader", .roles = LH_ROLE_READER};
    lh_principal writer = {.name = "writer", .roles = LH_ROLE_WRITER | LH_ROLE_READER};
    lh_principal admin = {.name = "admin", .roles = LH_ROLE_ADMIN};
    lh_principal agent = {.name = "agent", .roles = LH_ROLE_AGENT};
    lh_principal nobody = {.name = "nobody", .roles = 0};
    lh_err err;

    assert_int_equal(lh_auth_allow(&reader, LH_ALLOW_READ, &err), 0);
    assert_int_equal(lh_auth_allow(&writer, LH_ALLOW_WRITE, &err), 0);
    assert_int_equal(lh_auth_allow(&admin, LH_ALLOW_ADMIN, &err), 0);
    assert_int_equal(lh_auth_allow(&admin, LH_ALLOW_READ, &err), 0);
    assert_int_equal(lh_auth_allow(&agent, LH_ALLOW_ANY, &err), 0);
    assert_int_equal(lh_auth_allow(NULL, LH_ALLOW_PUBLIC, &err), 0);
    assert_int_equal(lh_auth_allow(&nobody, LH_ALLOW_PUBLIC, &err), 0);

    lh_err_clear(&err);
    assert_int_equal(lh_auth_allow(&reader, LH_ALLOW_WRITE, &err), LH_EPERM);
    assert_int_equal(err.rc, LH_EPERM);
    assert_int_equal(err.http_status, 403);
    assert_string_equal(err.code, "forbidden");
    assert_string_equal(err.message, "principal 'reader' may not do this");
    assert_string_equal(err.detail, "needs one of the roles: admin, writer; has: reader");

    assert_int_equal(lh_auth_allow(&writer, LH_ALLOW_ADMIN, &err), LH_EPERM);
    assert_string_equal(err.detail, "needs one of the roles: admin; has: writer, reader");
    assert_int_equal(lh_auth_allow(&agent, LH_ALLOW_READ, &err), LH_EPERM);
    assert_string_equal(err.message, "principal 'agent' may not do this");
    assert_string_equal(err.detail, "needs one of the roles: admin, writer, reader; has: agent");
    assert_int_equal(lh_auth_allow(&nobody, LH_ALLOW_ANY, &err), LH_EPERM);
    assert_string_equal(err.detail,
                        "needs one of the roles: admin, writer, reader, agent; has: none");
    assert_int_equal(lh_auth_allow(NULL, LH_ALLOW_READ, &err), LH_EPERM);
    assert_string_equal(err.message, "principal '?' may not do this");
    assert_string_equal(err.detail, "needs one of the roles: admin, writer, reader; has: none");
    assert_int_equal(lh_auth_allow(&reader, LH_ALLOW_ADMIN, NULL), LH_EPERM);
}

static void
test_role_names(void **state)
{
    assert_int_equal(lh_role_bit("admin"), LH_ROLE_ADMIN);
    assert_int_equal(lh_role_bit("writer"), LH_ROLE_WRITER);
    assert_int_equal(lh_role_bit("reader"), LH_ROLE_READER);
    assert_int_equal(lh_role_bit("agent"), LH_ROLE_AGENT);
    assert_int_equal(lh_role_bit("root"), 0);
    assert_int_equal(lh_role_bit("Admin"), 0);
    assert_int_equal(lh_role_bit(""), 0);

    char out[64];
    lh_roles_str(LH_ROLE_ADMIN | LH_ROLE_READER, out, sizeof out);
    assert_string_equal(out, "admin, reader");
    lh_roles_str(LH_ALLOW_ANY, out, sizeof out);
    assert_string_equal(out, "admin, writer, reader, agent");
    lh_roles_str(0, out, sizeof out);
    assert_string_equal(out, "");
    /* a short buffer holds whole names only */
    lh_roles_str(LH_ALLOW_ANY, out, 10);
    assert_string_equal(out, "admin");
}

/* ---- the admin token bootstrap ----------------------------------------------------------- */

/* Point the log at a temp file; returns its fd (read back with read_log). */
static int
capture_log(char **path)
{
    *path = lh_test_write_file("auth_log_", "", 0600);
    int fd = open(*path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    lh_log_set_fd(fd);
    return fd;
}

static char *
end_capture_log(int fd, char *path)
{
    lh_log_set_fd(2);
    close(fd);
    char *text = lh_test_read_file(path, NULL);
    assert_non_null(text);
    unlink(path);
    free(path);
    return text;
}

static char *
read_token(const char *path)
{
    size_t len = 0;
    char *text = lh_test_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, 3 + 64 + 1);
    assert_prefix(text, "lh_");
    assert_int_equal(text[len - 1], '\n');
    text[len - 1] = '\0';
    assert_int_equal(strspn(text + 3, "0123456789abcdef"), 64);
    return text;
}

static void
test_bootstrap_admin_token(void **state)
{
    char *root = lh_test_mkdtemp("auth_boot_");
    char *data_dir = lh_sprintf("%s/sub/data", root); /* created, parents too */
    char *token_path = lh_sprintf("%s/admin.token", data_dir);
    lh_config *cfg = load_bootstrap_config(data_dir);
    lh_auth auth;
    lh_err err;

    /* first start: the token is created, 0600, and only its path is logged */
    char *log_path = NULL;
    int log_fd = capture_log(&log_path);
    int rc = lh_auth_init(&auth, cfg, &err);
    char *log = end_capture_log(log_fd, log_path);
    if (rc != 0)
        print_error("%s\n", err.message);
    assert_int_equal(rc, 0);
    assert_int_equal(auth.n, 1);
    assert_string_equal(auth.principals[0].name, "admin");
    assert_int_equal(auth.principals[0].roles, LH_ROLE_ADMIN);
    assert_string_equal(auth.token_file, token_path);

    struct stat st;
    assert_int_equal(lstat(token_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(stat(data_dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0);

    char *token = read_token(token_path);
    char *header = lh_sprintf("Bearer %s", token);
    EXPECT_AUTH(&auth, header, "admin", NULL);
    EXPECT_AUTH(&auth, "Bearer tok-admin", NULL, "unknown bearer token");
    assert_contains(log, "\"level\":\"warn\"");
    assert_contains(log, "created an admin token");
    assert_contains(log, token_path);
    assert_not_contains(log, token + 3);
    free(log);
    lh_auth_free(&auth);
    assert_null(auth.token_file);

    /* second start: the same token is reused */
    log_fd = capture_log(&log_path);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), 0);
    log = end_capture_log(log_fd, log_path);
    char *again = read_token(token_path);
    assert_string_equal(again, token);
    EXPECT_AUTH(&auth, header, "admin", NULL);
    assert_contains(log, "using the admin token");
    assert_not_contains(log, token + 3);
    free(log);
    free(again);
    lh_auth_free(&auth);

    /* a token file others can read is refused, and nothing is left allocated */
    assert_int_equal(chmod(token_path, 0644), 0);
    memset(&auth, 0x5A, sizeof auth);
    lh_err_clear(&err);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EPERM);
    assert_int_equal(err.rc, LH_EPERM);
    assert_string_equal(err.code, "token_file_refused");
    assert_contains(err.message, token_path);
    assert_contains(err.hint, "chmod 600");
    assert_not_contains(err.message, token + 3);
    assert_null(auth.principals);
    assert_null(auth.token_file);
    assert_int_equal(auth.n, 0);
    /* the refused file is left alone, not replaced */
    assert_int_equal(chmod(token_path, 0600), 0);
    char *still = read_token(token_path);
    assert_string_equal(still, token);
    free(still);

    free(header);
    free(token);
    lh_config_free(cfg);
    free(token_path);
    free(data_dir);
    lh_test_rm_rf(root);
    free(root);
}

/* Write content to path with mode (replacing it). */
static void
put_file(const char *path, const char *content, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_bootstrap_bad_token_files(void **state)
{
    char *data_dir = lh_test_mkdtemp("auth_bad_");
    char *token_path = lh_sprintf("%s/admin.token", data_dir);
    lh_config *cfg = load_bootstrap_config(data_dir);
    lh_auth auth;
    lh_err err;
    lh_log_set_level(LH_LOG_OFF);

    /* a token written by hand is accepted, with its line end (CRLF too) stripped */
    put_file(token_path, "my-own-token-0123456789\r\n", 0600);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), 0);
    EXPECT_AUTH(&auth, "Bearer my-own-token-0123456789", "admin", NULL);
    lh_auth_free(&auth);

    put_file(token_path, "", 0600);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EINVAL);
    assert_string_equal(err.code, "token_file_invalid");
    assert_contains(err.message, "is empty");
    assert_null(auth.principals);

    put_file(token_path, "short\n", 0600);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EINVAL);
    assert_contains(err.message, "holds no valid token");
    assert_not_contains(err.message, "short");

    put_file(token_path, "my-own-token-0123456789\n", 0640);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EPERM);
    assert_string_equal(err.code, "token_file_refused");

    /* a symlink is not followed */
    char *target = lh_sprintf("%s/elsewhere", data_dir);
    put_file(target, "my-own-token-0123456789\n", 0600);
    unlink(token_path);
    assert_int_equal(symlink(target, token_path), 0);
    assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EIO);
    assert_string_equal(err.code, "token_file_unreadable");
    assert_null(auth.principals);
    unlink(token_path);

    /* owned by someone else */
    if (geteuid() == 0) {
        put_file(token_path, "my-own-token-0123456789\n", 0600);
        if (chown(token_path, 65534, 65534) == 0) {
            assert_int_equal(lh_auth_init(&auth, cfg, &err), LH_EPERM);
            assert_string_equal(err.code, "token_file_refused");
        }
    }

    lh_log_set_level(LH_LOG_INFO);
    free(target);
    lh_config_free(cfg);
    free(token_path);
    lh_test_rm_rf(data_dir);
    free(data_dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_principals_from_config),
        cmocka_unit_test(test_check_header),
        cmocka_unit_test(test_shared_set),
        cmocka_unit_test(test_allow_roles),
        cmocka_unit_test(test_role_names),
        cmocka_unit_test(test_bootstrap_admin_token),
        cmocka_unit_test(test_bootstrap_bad_token_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
