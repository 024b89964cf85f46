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
 *
 * Thread safety: `relations_lock` (a read-write lock) guards the registry; the scan
 * takes it for reading on DuckDB's binding thread and copies the SELECT into DuckDB's
 * value before it lets go.
 */
#include "engine/engine_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local const lh_resolver *thread_resolver;

void
lh_engine__resolver_set(const lh_resolver *r)
{
    thread_resolver = r && r->fn ? r : NULL;
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
    const char *select = json_string_value(json_object_get(eng->relations, name));
    if (select == NULL || r == NULL) { /* the common case: no copy, no call */
        if (select)
            resolve_to(info, select);
        pthread_rwlock_unlock(&eng->relations_lock);
        return;
    }
    /* the resolver may take locks of its own (the catalog's): not under ours */
    char *registered = lh_strdup(select);
    pthread_rwlock_unlock(&eng->relations_lock);
    lh_buf rewritten;
    lh_buf_init(&rewritten);
    lh_resolved how = r->fn(r->ctx, name, registered, &rewritten);
    if (how == LH_RESOLVE_AS_IS)
        resolve_to(info, registered);
    else if (how == LH_RESOLVE_REWRITTEN && rewritten.len > 0)
        resolve_to(info, rewritten.data);
    /* else absent: DuckDB answers as for a name nothing defines */
    lh_buf_free(&rewritten);
    free(registered);
}

void
lh_engine__relations_init(lh_engine *eng)
{
    pthread_rwlock_init(&eng->relations_lock, NULL);
    eng->relations = json_object();
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
    if (select)
        json_object_set_new(eng->relations, name, json_string_nocheck(select));
    else
        json_object_del(eng->relations, name);
    pthread_rwlock_unlock(&eng->relations_lock);
    lh_engine__views_changed(eng);
    return 0;
}
