/*
 * auth.c — bearer tokens to principals.
 *
 * Configured principals carry the SHA-256 of their token, never the token. A presented
 * token is hashed once and compared against every principal's hash with a constant-time
 * comparison, visiting all of them, so timing tells nothing about which bytes matched.
 * With no principal configured, the first start writes a random admin token to
 * <data_dir>/admin.token (created 0600 with O_EXCL) and later starts reuse it.
 */
#include "auth/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_PREFIX "lh_"
#define TOKEN_MAX 256

static const char *const role_names[] = {"admin", "writer", "reader", "agent"};

unsigned
lh_role_bit(const char *name)
{
    for (unsigned i = 0; i < 4; i++)
        if (strcmp(name, role_names[i]) == 0)
            return 1u << i;
    return 0;
}

int
lh_auth_default_clearance(unsigned roles)
{
    return roles & LH_ROLE_ADMIN ? LH_LEVEL_PII : LH_LEVEL_INTERNAL;
}

void
lh_roles_str(unsigned roles, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++) {
        if (!(roles & (1u << i)))
            continue;
        int w = snprintf(out + used, size - used, "%s%s", used ? ", " : "", role_names[i]);
        if (w > 0 && (size_t)w < size - used)
            used += (size_t)w;
        else
            out[used] = '\0'; /* leave out a name that does not fit, not half of it */
    }
}

static int
hex_to_bytes(const char *hex, uint8_t out[32])
{
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

/* Read an existing token file, refusing one others can read. */
static int
read_token_file(const char *path, char *token, size_t size, lh_err *err)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? LH_ENOTFOUND
                               : lh_err_set(err, LH_EIO, 0, "token_file_unreadable",
                                            "could not read %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
        st.st_uid != geteuid()) {
        close(fd);
        lh_err_set(err, LH_EPERM, 0, "token_file_refused",
                   "%s must be a regular file of mode 0600 owned by the server's user", path);
        lh_err_hint(err, "chmod 600 %s, or delete it to have a new token created", path);
        return LH_EPERM;
    }
    ssize_t n = read(fd, token, size - 1);
    close(fd);
    if (n <= 0)
        return lh_err_set(err, LH_EINVAL, 0, "token_file_invalid", "%s is empty", path);
    token[n] = '\0';
    token[strcspn(token, "\r\n")] = '\0';
    if (strlen(token) < 16)
        return lh_err_set(err, LH_EINVAL, 0, "token_file_invalid", "%s holds no valid token", path);
    return 0;
}

static int
create_token_file(const char *path, char *token, size_t size, lh_err *err)
{
    uint8_t raw[32];
    char hex[65];
    int rc = lh_random_bytes(raw, sizeof raw, err);
    if (rc != 0)
        return rc;
    lh_hex(raw, sizeof raw, hex);
    snprintf(token, size, TOKEN_PREFIX "%s", hex);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return lh_err_set(err, LH_EIO, 0, "token_file_unwritable", "could not create %s: %s", path,
                          strerror(errno));
    size_t len = strlen(token);
    bool ok = write(fd, token, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        return lh_err_set(err, LH_EIO, 0, "token_file_unwritable", "could not write %s", path);
    }
    return 0;
}

int
lh_auth_init(lh_auth *auth, const lh_config *cfg, lh_err *err)
{
    memset(auth, 0, sizeof *auth);
    size_t n;
    const lh_principal_cfg *pcs = lh_config_principals(cfg, &n);
    if (n > 0) {
        auth->principals = lh_calloc(n, sizeof *auth->principals);
        auth->n = n;
        for (size_t i = 0; i < n; i++) {
            lh_principal *p = &auth->principals[i];
            snprintf(p->name, sizeof p->name, "%s", pcs[i].name);
            hex_to_bytes(pcs[i].token_sha256, p->token_sha256); /* validated by config */
            for (size_t r = 0; r < pcs[i].n_roles; r++)
                p->roles |= lh_role_bit(pcs[i].roles[r]);
            p->limit_buckets = pcs[i].limit_buckets;
            p->n_buckets = pcs[i].n_buckets;
            p->buckets = lh_calloc(p->n_buckets ? p->n_buckets : 1, sizeof *p->buckets);
            for (size_t k = 0; k < p->n_buckets; k++)
                p->buckets[k] = lh_strdup(pcs[i].buckets[k]);
            p->clearance = pcs[i].clearance ? lh_level_rank(pcs[i].clearance)
                                            : lh_auth_default_clearance(p->roles);
            p->profile = lh_config_profile(cfg, pcs[i].profile); /* validated by config */
        }
        auth->config = cfg;
        return 0;
    }
    const char *data_dir = lh_config_str(cfg, "server.data_dir");
    int rc = lh_mkdirs(data_dir, err);
    if (rc != 0)
        return rc;
    auth->token_file = lh_sprintf("%s/admin.token", data_dir);
    char token[TOKEN_MAX];
    bool created = false;
    rc = read_token_file(auth->token_file, token, sizeof token, err);
    if (rc == LH_ENOTFOUND) {
        rc = create_token_file(auth->token_file, token, sizeof token, err);
        created = true;
    }
    if (rc != 0) {
        lh_auth_free(auth);
        return rc;
    }
    auth->principals = lh_calloc(1, sizeof *auth->principals);
    auth->n = 1;
    snprintf(auth->principals[0].name, sizeof auth->principals[0].name, "admin");
    lh_sha256(token, strlen(token), auth->principals[0].token_sha256);
    auth->principals[0].roles = LH_ROLE_ADMIN;
    auth->principals[0].clearance = lh_auth_default_clearance(LH_ROLE_ADMIN);
    auth->config = cfg;
    memset(token, 0, sizeof token);
    json_t *fields = json_pack("{s:s}", "token_file", auth->token_file);
    lh_log(created ? LH_LOG_WARN : LH_LOG_INFO, NULL, fields,
           created ? "no principals configured: created an admin token; read it from token_file"
                   : "no principals configured: using the admin token in token_file");
    json_decref(fields);
    return 0;
}

void
lh_auth_free(lh_auth *auth)
{
    for (size_t i = 0; i < auth->n; i++) {
        for (size_t k = 0; k < auth->principals[i].n_buckets; k++)
            free(auth->principals[i].buckets[k]);
        free(auth->principals[i].buckets);
    }
    free(auth->principals);
    free(auth->token_file);
    memset(auth, 0, sizeof *auth);
}

int
lh_auth_new(lh_config *cfg, bool own_config, lh_auth **out, lh_err *err)
{
    lh_auth *a = lh_calloc(1, sizeof *a);
    int rc = lh_auth_init(a, cfg, err);
    if (rc != 0) {
        free(a);
        if (own_config)
            lh_config_free(cfg);
        return rc;
    }
    atomic_init(&a->refs, 1);
    a->owned_config = own_config ? cfg : NULL;
    *out = a;
    return 0;
}

lh_auth *
lh_auth_retain(lh_auth *a)
{
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void
lh_auth_release(lh_auth *a)
{
    if (a == NULL || atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
        return;
    lh_config *owned = a->owned_config;
    lh_auth_free(a);
    free(a);
    lh_config_free(owned);
}

const lh_principal *
lh_auth_find(const lh_auth *auth, const char *name)
{
    for (size_t i = 0; i < auth->n; i++)
        if (strcmp(auth->principals[i].name, name) == 0)
            return &auth->principals[i];
    return NULL;
}

const lh_principal *
lh_auth_check(const lh_auth *auth, const char *authorization, lh_err *err)
{
    if (authorization == NULL || authorization[0] == '\0') {
        lh_err_set(err, LH_EPERM, 401, "unauthenticated", "missing bearer token");
        lh_err_hint(err, "send 'Authorization: Bearer <token>'");
        return NULL;
    }
    if (strncasecmp(authorization, "Bearer ", 7) != 0) {
        lh_err_set(err, LH_EPERM, 401, "unauthenticated",
                   "authorization must use the Bearer scheme");
        lh_err_hint(err, "send 'Authorization: Bearer <token>'");
        return NULL;
    }
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len > 0 && token[len - 1] == ' ')
        len--;
    uint8_t digest[32];
    lh_sha256(token, len, digest);
    const lh_principal *found = NULL;
    for (size_t i = 0; i < auth->n; i++) {
        bool same = lh_ct_equal(digest, auth->principals[i].token_sha256, sizeof digest);
        if (same && found == NULL)
            found = &auth->principals[i];
    }
    if (found == NULL || len == 0 || len > TOKEN_MAX) {
        lh_err_set(err, LH_EPERM, 401, "unauthenticated", "unknown bearer token");
        lh_err_hint(err, "check the token; its SHA-256 must match a [[principal]] token_sha256");
        return NULL;
    }
    return found;
}

int
lh_auth_allow(const lh_principal *p, unsigned allowed, lh_err *err)
{
    if (allowed == LH_ALLOW_PUBLIC || (p && (p->roles & allowed)))
        return 0;
    char need[64], have[64];
    lh_roles_str(allowed, need, sizeof need);
    lh_roles_str(p ? p->roles : 0, have, sizeof have);
    lh_err_set(err, LH_EPERM, 403, "forbidden", "principal '%s' may not do this",
               p ? p->name : "?");
    lh_err_detail(err, "needs one of the roles: %s; has: %s", need, have[0] ? have : "none");
    return LH_EPERM;
}

int
lh_auth_may_write_sql(const lh_principal *p, lh_err *err)
{
    if (p && (p->roles & LH_ALLOW_READ))
        return 0;
    char have[64];
    lh_roles_str(p ? p->roles : 0, have, sizeof have);
    lh_err_set(err, LH_EPERM, 403, "sql_not_allowed",
               "principal '%s' may not send free-form SQL (a query or a search filter)",
               p ? p->name : "?");
    lh_err_detail(err, "free-form SQL needs one of the roles: admin, writer, reader; has: %s",
                  have[0] ? have : "none");
    lh_err_hint(err, "agents filter through the parameters of named tools: GET /tools lists "
                     "the ones you may call");
    return LH_EPERM;
}

void
lh_principal_copy(lh_principal *dst, const lh_principal *src)
{
    *dst = *src;
    dst->profile = NULL; /* belongs to src's principal set, which the copy outlives */
    dst->buckets = lh_calloc(src->n_buckets ? src->n_buckets : 1, sizeof *dst->buckets);
    for (size_t i = 0; i < src->n_buckets; i++)
        dst->buckets[i] = lh_strdup(src->buckets[i]);
}

void
lh_principal_copy_free(lh_principal *p)
{
    for (size_t i = 0; i < p->n_buckets; i++)
        free(p->buckets[i]);
    free(p->buckets);
    p->buckets = NULL;
    p->n_buckets = 0;
}

int
lh_auth_bucket(const lh_principal *p, const char *name, lh_err *err)
{
    if (strncmp(name, "profile:", 8) == 0 && strcmp(name + 8, p->name) == 0)
        return 0;
    if (p->limit_buckets) {
        for (size_t i = 0; i < p->n_buckets; i++)
            if (strcmp(p->buckets[i], name) == 0)
                return 0;
    } else if (strncmp(name, "profile:", 8) != 0 || (p->roles & LH_ROLE_ADMIN)) {
        return 0;
    }
    lh_err_set(err, LH_EPERM, 403, "forbidden", "principal '%s' may not use bucket '%s'", p->name,
               name);
    lh_err_hint(
        err, "the principal's 'buckets' list in lakehouse.toml decides which buckets it may use");
    return LH_EPERM;
}
