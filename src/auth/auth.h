/*
 * auth.h — principals, their roles and the buckets they may use; bearer tokens to
 * principals. Below every door (HTTP, MCP, gRPC): a door authenticates a request into an
 * lh_principal and the modules decide what it may do with it.
 */
#ifndef LH_AUTH_H
#define LH_AUTH_H

#include "core/core.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    LH_ROLE_ADMIN = 1u << 0,
    LH_ROLE_WRITER = 1u << 1,
    LH_ROLE_READER = 1u << 2,
    LH_ROLE_AGENT = 1u << 3,
};
/* Who may call a route: role bits, or LH_ALLOW_PUBLIC for no authentication. */
#define LH_ALLOW_PUBLIC 0u
#define LH_ALLOW_ADMIN (LH_ROLE_ADMIN)
#define LH_ALLOW_WRITE (LH_ROLE_ADMIN | LH_ROLE_WRITER)
#define LH_ALLOW_READ (LH_ROLE_ADMIN | LH_ROLE_WRITER | LH_ROLE_READER)
#define LH_ALLOW_ANY (LH_ROLE_ADMIN | LH_ROLE_WRITER | LH_ROLE_READER | LH_ROLE_AGENT)

typedef struct lh_principal {
    char name[65];
    uint8_t token_sha256[32];
    unsigned roles;
    bool limit_buckets; /* when set, only the buckets listed may be used */
    char **buckets;
    size_t n_buckets;
    /* the most sensitive level whose values it may see (LH_LEVEL_*): columns above it come
     * back masked; [[principal]] clearance, else pii for admins and internal for others */
    int clearance;
    /* its [[profile]] (models, bindings, limits), or NULL; borrowed from the config of the
     * lh_auth it belongs to, so valid while that set is (a copy must not keep it) */
    const lh_profile_cfg *profile;
} lh_principal;

/* A set of principals. lh_auth_init fills one in place (its owner frees it); lh_auth_new
 * makes a shared, immutable, reference-counted set that a server swaps on reload: a
 * request holds a reference for its whole life, so its principal (and the principal's
 * profile, and the set's config) stay valid until it ends, whatever is swapped in. */
typedef struct lh_auth {
    lh_principal *principals;
    size_t n;
    char *token_file;        /* set when the admin token was bootstrapped */
    atomic_long refs;        /* lh_auth_new sets: references (lh_auth_retain/lh_auth_release) */
    const lh_config *config; /* the configuration the set was made from (borrowed or owned) */
    lh_config *owned_config; /* freed with the set, or NULL */
} lh_auth;

/* Build principals from config. With none configured, use (or create, mode 0600)
 * <data_dir>/admin.token and one admin principal "admin" for it. */
int lh_auth_init(lh_auth *auth, const lh_config *cfg, lh_err *err);
void lh_auth_free(lh_auth *auth);
/* A shared set made from cfg, with one reference. With own_config the set takes ownership
 * of cfg (also on failure) and frees it with its last reference; else cfg must outlive the
 * set. Returns new (lh_auth_release). */
int lh_auth_new(lh_config *cfg, bool own_config, lh_auth **out, lh_err *err);
/* Another reference to a shared set (returns a). Thread-safe. */
lh_auth *lh_auth_retain(lh_auth *a);
/* Drop a reference; the last one frees the set (and its owned config). Accepts NULL. */
void lh_auth_release(lh_auth *a);
/* The principal called name, or NULL. Borrowed; valid while auth is. */
const lh_principal *lh_auth_find(const lh_auth *auth, const char *name);
/* Check an Authorization header value (may be NULL). Returns the principal or NULL
 * with a 401 error. Compares every principal's hash in constant time. */
const lh_principal *lh_auth_check(const lh_auth *auth, const char *authorization, lh_err *err);
/* 0 when the principal holds one of allowed; else a 403 error naming the roles. */
int lh_auth_allow(const lh_principal *p, unsigned allowed, lh_err *err);
/* Free-form SQL — POST /query, a vector search's `filter` — needs the reader, writer or
 * admin role: an agent reaches data through named tools, whose filters and queries are
 * built only from bound parameters. 0, or a 403 sql_not_allowed saying so. */
int lh_auth_may_write_sql(const lh_principal *p, lh_err *err);
/* 0 when p may use bucket `name`; else a 403 error. Admins may use every bucket unless
 * limited; anyone may use "profile:<own name>". */
int lh_auth_bucket(const lh_principal *p, const char *name, lh_err *err);
/* A copy of src that may outlive src's set (a job's): its own bucket list, no profile.
 * Free with lh_principal_copy_free. */
void lh_principal_copy(lh_principal *dst, const lh_principal *src);
void lh_principal_copy_free(lh_principal *p);
/* The clearance a principal of these roles has when its config names none. */
int lh_auth_default_clearance(unsigned roles);
/* "admin,reader" into out. */
void lh_roles_str(unsigned roles, char *out, size_t size);
unsigned lh_role_bit(const char *name);

#endif
