/*
 * relations.c — dataset names resolved on demand. A dataset is not a view in DuckDB's
 * catalog: the engine keeps a registry (name -> the SELECT of its rows) and a
 * replacement scan that DuckDB calls while binding, for a table name its catalog does
 * not hold. The scan answers with DuckDB's query() table function over the registered
 * SELECT, so a statement binds only the datasets it names.
 *
 * Why not views: defining one view per dataset cost a DuckDB statement per dataset at
 * every start (two pool sweeps, a connection, a catalog write), and every view stays in
 * the database's catalog. With the registry, registering a dataset is a hash-table
 * insert, and a query pays for the datasets it names only.
 *
 * Names: DuckDB resolves its own catalog first (temporary views of time travel and
 * workspaces, CTEs), then calls the scan; the scan matches names case-insensitively, as SQL
 * folds unquoted names and dataset names are lowercase. The SELECT is never user text:
 * the user's statement is admitted as written, and the query() call the scan puts in
 * its place is not part of it.
 *
 * The resolver (lh_query_opts.resolver, engine.h): a query that carries one sets it, for
 * its thread, while its statements bind (DuckDB binds on the thread that prepares or
 * executes); the scan then asks it what the name is to this caller: absent (the scan
 * leaves it unresolved, and DuckDB answers exactly as for a name nothing defines), the
 * registered SELECT as it is, or a SELECT the resolver wrote around it (rows filtered,
 * columns masked). The registry is not DuckDB's catalog, so its names never appear in
 * DuckDB's "did you mean" suggestions either. Without a resolver the scan makes no copy
 * and no call.
 *
 * Generations: a change of the registry is a change of the views, so it moves the
 * engine's catalog generation before and after, as an internal statement does (pool.c).
 * Each registration also gets a stamp of its own, and a statement that records its reads
 * (lh_scan_opts.reads) notes the names it bound with their stamps: a caller that keeps the
 * answer knows it is still right while those names keep those stamps (lh_reads).
 *
 * The read check (lh_engine_set_read_check; the catalog's): asked for each registered
 * name the scan resolves, outside the lock, whether the rows can be read as registered.
 * It may answer another SELECT (rescue copies of a dataset whose bucket is unreachable)
 * or an error; both are noted for the binding thread (read_note), so the query reports
 * the rescue, or fails with the check's error instead of DuckDB's.
 *
 * Thread safety: `relations_lock` (a read-write lock) guards the registry and the read
 * check; the scan takes it for reading on DuckDB's binding thread and copies the SELECT
 * before it lets go.
 */
#include "engine/engine_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local const lh_resolver *thread_resolver;
static _Thread_local lh_reads *thread_reads;

void
lh_engine__resolver_set(const lh_resolver *r)
{
    thread_resolver = r && r->fn ? r : NULL;
}

void
lh_engine__reads_set(lh_reads *r)
{
    thread_reads = r;
    if (r) {
        r->stable = true;
        r->n = 0;
    }
}

/* Note that this thread's statement bound name, registered with stamp (under
 * relations_lock). */
static void
record_read(const char *name, uint64_t stamp)
{
    lh_reads *r = thread_reads;
    if (r == NULL || !r->stable)
        return;
    if (name[0] == '_') { /* lakehouse's own: guarded per principal, grows unregistered */
        r->stable = false;
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->read[i].name, name) == 0)
            return; /* bound twice (a self-join, a subquery) */
    if (r->n == LH_READS_MAX) {
        r->stable = false;
        return;
    }
    snprintf(r->read[r->n].name, sizeof r->read[r->n].name, "%s", name);
    r->read[r->n++].stamp = stamp;
}

bool
lh_engine_reads_current(lh_engine *eng, const lh_reads *r)
{
    bool current = true;
    pthread_rwlock_rdlock(&eng->relations_lock);
    for (size_t i = 0; i < r->n && current; i++) {
        const json_t *stamp = json_object_get(eng->relation_stamps, r->read[i].name);
        current = stamp && (uint64_t)json_integer_value(stamp) == r->read[i].stamp;
    }
    pthread_rwlock_unlock(&eng->relations_lock);
    return current;
}

/* Point DuckDB's binder at query(<select>). */
static void
resolve_to(duckdb_replacement_scan_info info, const char *select)
{
    duckdb_value sql = duckdb_create_varchar(select);
    duckdb_replacement_scan_set_function_name(info, "query");
    duckdb_replacement_scan_add_parameter(info, sql);
    duckdb_destroy_value(&sql);
}

/* What the read check said while this thread bound: a rescue copy read, the first
 * failure. */
typedef struct read_note {
    bool rescue_used, failed;
    lh_err err;
} read_note;

static _Thread_local read_note thread_note;

void
lh_engine__note_reset(void)
{
    thread_note.rescue_used = false;
    thread_note.failed = false;
}

int
lh_engine__note_finish(int rc, bool *rescue_used, lh_err *err)
{
    if (rescue_used)
        *rescue_used = thread_note.rescue_used;
    if (rc != 0 && thread_note.failed) {
        *err = thread_note.err;
        rc = err->rc;
    }
    lh_engine__note_reset();
    return rc;
}

void
lh_engine_set_read_check(lh_engine *eng, lh_read_check_fn fn, void *ctx)
{
    pthread_rwlock_wrlock(&eng->relations_lock);
    eng->read_check = fn;
    eng->read_check_ctx = ctx;
    pthread_rwlock_unlock(&eng->relations_lock);
}

/* Ask the read check about name (registered as select): the SELECT to bind (new), or
 * NULL when the statement must fail (noted; DuckDB gets the message). */
static char *
checked_select(duckdb_replacement_scan_info info, lh_read_check_fn check, void *ctx,
               const char *name, char *select)
{
    char *instead = NULL;
    bool rescue = false;
    lh_err err;
    lh_err_clear(&err);
    if (check(ctx, name, &instead, &rescue, &err) != 0) {
        if (!thread_note.failed) {
            thread_note.failed = true;
            thread_note.err = err;
        }
        duckdb_replacement_scan_set_error(info, err.message);
        free(select);
        return NULL;
    }
    thread_note.rescue_used |= rescue;
    if (instead == NULL)
        return select;
    free(select);
    return instead;
}

static void
replacement_scan(duckdb_replacement_scan_info info, const char *table_name, void *data)
{
    lh_engine *eng = data;
    char name[LH_NAME_MAX];
    size_t n = 0;
    for (; table_name[n] && n + 1 < sizeof name; n++)
        name[n] = (char)tolower((unsigned char)table_name[n]);
    if (table_name[n] != '\0')
        return; /* longer than any dataset name */
    name[n] = '\0';
    const lh_resolver *r = thread_resolver;
    pthread_rwlock_rdlock(&eng->relations_lock);
    const char *registered = json_string_value(json_object_get(eng->relations, name));
    if (registered)
        record_read(name,
                    (uint64_t)json_integer_value(json_object_get(eng->relation_stamps, name)));
    if (registered == NULL || (r == NULL && eng->read_check == NULL)) {
        /* the common case: no copy, no call */
        if (registered)
            resolve_to(info, registered);
        pthread_rwlock_unlock(&eng->relations_lock);
        return;
    }
    /* the resolver and the read check may take locks of their own (the catalog's) or
     * read a bucket: not under ours, so registrations never wait on them */
    char *select = lh_strdup(registered);
    lh_read_check_fn check = eng->read_check;
    void *check_ctx = eng->read_check_ctx;
    pthread_rwlock_unlock(&eng->relations_lock);
    lh_buf rewritten;
    lh_buf_init(&rewritten);
    /* the caller's view first: a name it may not see is absent before anything about
     * its bucket (reachable or not) can show */
    lh_resolved how = r ? r->fn(r->ctx, name, select, &rewritten) : LH_RESOLVE_AS_IS;
    if (how != LH_RESOLVE_ABSENT && check) {
        char *registered_copy = lh_strdup(select);
        select = checked_select(info, check, check_ctx, name, select);
        /* read elsewhere (rescue copies): the caller's rewrite wraps that instead */
        if (select && how == LH_RESOLVE_REWRITTEN && strcmp(select, registered_copy) != 0) {
            rewritten.len = 0;
            how = r->fn(r->ctx, name, select, &rewritten);
        }
        free(registered_copy);
    }
    if (select == NULL || how == LH_RESOLVE_ABSENT)
        ; /* failed (noted), or absent: DuckDB answers as for a name nothing defines */
    else if (how == LH_RESOLVE_REWRITTEN && rewritten.len > 0)
        resolve_to(info, rewritten.data);
    else if (how == LH_RESOLVE_AS_IS)
        resolve_to(info, select);
    lh_buf_free(&rewritten);
    free(select);
}

void
lh_engine__relations_init(lh_engine *eng)
{
    pthread_rwlock_init(&eng->relations_lock, NULL);
    eng->relations = json_object();
    eng->relation_stamps = json_object();
}

void
lh_engine__relations_attach(lh_engine *eng)
{
    duckdb_add_replacement_scan(eng->db, replacement_scan, eng, NULL);
}

void
lh_engine__relations_free(lh_engine *eng)
{
    json_decref(eng->relations);
    eng->relations = NULL;
    json_decref(eng->relation_stamps);
    eng->relation_stamps = NULL;
    pthread_rwlock_destroy(&eng->relations_lock);
}

int
lh_engine_set_dataset(lh_engine *eng, const char *name, const char *select, lh_err *err)
{
    int rc = 0;
    /* lakehouse's own relations are '_' + a name, which no dataset can take */
    if (!lh_name_valid(name[0] == '_' ? name + 1 : name))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_name", "invalid dataset name '%s'", name);
    if ((rc = lh_engine__fault(err)) != 0)
        return rc;
    lh_engine__views_changed(eng);
    pthread_rwlock_wrlock(&eng->relations_lock);
    if (select) {
        json_object_set_new(eng->relations, name, json_string_nocheck(select));
        json_object_set_new(eng->relation_stamps, name,
                            json_integer((json_int_t)++eng->relations_seq));
    } else {
        json_object_del(eng->relations, name);
        json_object_del(eng->relation_stamps, name);
    }
    pthread_rwlock_unlock(&eng->relations_lock);
    lh_engine__views_changed(eng);
    return 0;
}
