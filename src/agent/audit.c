/*
 * audit.c — the audit trail's local half: segment files, group commit, recovery.
 *
 * A record is one line of compact JSON appended to the active segment file
 * {dir}/seg_{created_epoch_us:020}_{16 hex}.jsonl. Group commit: an appender writes its
 * line under `lock` and takes the next sequence number; then, unless an fdatasync that
 * started after its write already finished (synced_seq >= its number), it either waits
 * for the sync in progress or, when none is, becomes the syncer: it notes the highest
 * number written so far, drops the lock, calls fdatasync once for all of them and wakes
 * the waiters. So N concurrent appenders pay about two syncs, not N.
 *
 * A failed fdatasync breaks the trail until restart (`broken`): Linux may have dropped
 * the unsynced pages and a later sync would report success over lost lines, so no later
 * sync may vouch for them. Lines a successful sync covered before stay durable; every
 * other append answers 503 audit_unavailable. The shipper still ships what is on disk.
 *
 * Recovery at open: segments are read line by line; the first line that is not a
 * complete JSON object ends the good part (a crash mid-write leaves a torn last line;
 * unsynced garbage after a power loss can only follow the last acknowledged record,
 * since every acknowledged record's sync covered all lines before it). The rest is cut
 * off (ftruncate, fdatasync) and logged; complete lines are kept and shipped.
 */
#include "agent/audit_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool broken_locked(const lh_audit *a);

/* ---- errors and counters -------------------------------------------------------------- */

void
lh_audit__failed(lh_audit *a, const lh_err *err)
{
    pthread_mutex_lock(&a->lock);
    a->errors++;
    snprintf(a->last_error, sizeof a->last_error, "%s%s%s", err->message,
             err->detail[0] ? ": " : "", err->detail);
    pthread_mutex_unlock(&a->lock);
    lh_log_err(LH_LOG_ERROR, NULL, err);
}

static int
unavailable(lh_err *err, const char *what, const char *path, int errnum)
{
    lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable", "the audit trail could not %s", what);
    lh_err_detail(err, "%s: %s", path, strerror(errnum));
    lh_err_hint(err, "check the disk of the data dir (space, permissions); the call was not "
                     "recorded");
    return LH_EUNAVAIL;
}

/* ---- segment files ---------------------------------------------------------------------- */

void
lh_audit__sync_dir(lh_audit *a)
{
    int dfd = open(a->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int
lh_audit__open_segment(lh_audit *a, lh_err *err)
{
    char hex[17], name[64];
    lh_random_hex(hex, 8);
    snprintf(name, sizeof name, "seg_%020lld_%s.jsonl", (long long)lh_now_us(), hex);
    char *path = lh_sprintf("%s/%s", a->dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    int rc = fd < 0 ? unavailable(err, "create a segment file", path, errno) : 0;
    free(path);
    if (rc != 0)
        return rc;
    lh_audit__sync_dir(a); /* the new name survives a crash */
    a->fd = fd;
    free(a->active);
    a->active = lh_strdup(name);
    a->active_records = a->active_bytes = 0;
    a->view_stale = true;
    return 0;
}

static int
write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The good part of a segment: complete lines that are JSON objects. *good_bytes is where
 * the first bad (or torn) line starts, *records how many good ones precede it. */
static int
scan_segment(FILE *f, int64_t *good_bytes, int64_t *records)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t good = 0, count = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n')
            break; /* torn: the write never finished */
        json_t *j = json_loadb(line, (size_t)n - 1, 0, NULL);
        bool ok = json_is_object(j);
        json_decref(j);
        if (!ok)
            break;
        good += n;
        count++;
    }
    free(line);
    *good_bytes = good;
    *records = count;
    return 0;
}

/* Cut a recovered segment to its good part. *records: its complete records. */
static int
recover_segment(lh_audit *a, const char *name, int64_t *records, lh_err *err)
{
    char *path = lh_sprintf("%s/%s", a->dir, name);
    int rc = 0;
    FILE *f = fopen(path, "r+e");
    if (f == NULL) {
        rc = unavailable(err, "read a segment file", path, errno);
        goto out;
    }
    int64_t good = 0, size = 0;
    scan_segment(f, &good, records);
    fseeko(f, 0, SEEK_END);
    size = (int64_t)ftello(f);
    if (good < size) {
        if (ftruncate(fileno(f), good) != 0 || fdatasync(fileno(f)) != 0) {
            rc = unavailable(err, "cut a torn record off a segment file", path, errno);
            goto out;
        }
        json_t *fields =
            json_pack("{s:s, s:I, s:I}", "segment", name, "kept_records", (json_int_t)*records,
                      "dropped_bytes", (json_int_t)(size - good));
        lh_log(LH_LOG_WARN, NULL, fields,
               "audit: dropped an incomplete last record of %s (a crash cut its write short)",
               name);
        json_decref(fields);
    }
out:
    if (f)
        fclose(f);
    free(path);
    return rc;
}

static int
name_cmp(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The segment files a crash (or a clean stop whose shipment failed) left, oldest first,
 * each cut to its good part; empty ones are removed. They become sealed. */
static int
recover_segments(lh_audit *a, lh_err *err)
{
    DIR *d = opendir(a->dir);
    if (d == NULL)
        return unavailable(err, "read its folder", a->dir, errno);
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, "seg_", 4) != 0 || len < 10 ||
            strcmp(de->d_name + len - 6, ".jsonl") != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = lh_realloc(names, cap * sizeof *names);
        }
        names[n++] = lh_strdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(names, n, sizeof *names, name_cmp);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t records = 0;
        if (rc == 0 && (rc = recover_segment(a, names[i], &records, err)) == 0 && records == 0) {
            char *path = lh_sprintf("%s/%s", a->dir, names[i]);
            unlink(path);
            free(path);
        } else if (rc == 0) {
            if (a->n_sealed == a->cap_sealed) {
                a->cap_sealed = a->cap_sealed ? 2 * a->cap_sealed : 16;
                a->sealed = lh_realloc(a->sealed, a->cap_sealed * sizeof *a->sealed);
                a->sealed_records =
                    lh_realloc(a->sealed_records, a->cap_sealed * sizeof *a->sealed_records);
            }
            a->sealed[a->n_sealed] = names[i];
            a->sealed_records[a->n_sealed++] = records;
            a->pending += records;
            names[i] = NULL;
        }
        free(names[i]);
    }
    free(names);
    if (a->pending > 0)
        a->oldest_mono_us = lh_mono_us();
    return rc;
}

/* ---- open and close ----------------------------------------------------------------------- */

int
lh_audit_open(const lh_audit_deps *deps, lh_audit **out, lh_err *err)
{
    lh_audit *a = lh_calloc(1, sizeof *a);
    a->deps = *deps;
    a->dir = lh_strdup(deps->dir);
    a->deps.dir = a->dir;
    if (a->deps.ship_ms <= 0)
        a->deps.ship_ms = 1000;
    if (a->deps.ship_records <= 0)
        a->deps.ship_records = 1000;
    a->fd = -1;
    a->primary = lh_buckets_primary(deps->buckets);
    a->bucket = lh_buckets_primary_name(deps->buckets);
    pthread_mutex_init(&a->ship_lock, NULL);
    pthread_rwlock_init(&a->files_lock, NULL);
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->synced, NULL);
    pthread_cond_init(&a->wake, NULL);
    int rc = lh_mkdirs(a->dir, err);
    if (rc == 0)
        rc = recover_segments(a, err);
    if (rc == 0)
        rc = lh_audit__load_batches(a, err);
    if (rc == 0) {
        pthread_mutex_lock(&a->lock);
        rc = lh_audit__open_segment(a, err);
        pthread_mutex_unlock(&a->lock);
    }
    if (rc != 0) {
        lh_audit_close(a);
        return rc;
    }
    /* leftovers of a crash go first, before any new record */
    lh_audit__ship(a, false);
    if (pthread_create(&a->shipper, NULL, lh_audit__shipper_main, a) == 0)
        a->shipper_started = true;
    else
        lh_log(LH_LOG_ERROR, NULL, NULL, "audit: could not start the shipper thread");
    *out = a;
    return 0;
}

void
lh_audit_close(lh_audit *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->wake);
    pthread_cond_broadcast(&a->synced);
    pthread_mutex_unlock(&a->lock);
    if (a->shipper_started)
        pthread_join(a->shipper, NULL);
    if (a->primary) /* a failed open may have nothing to ship with */
        lh_audit__ship(a, true);
    if (a->fd >= 0)
        close(a->fd);
    if (a->active && a->active_records == 0) { /* an empty segment is no record */
        char *path = lh_sprintf("%s/%s", a->dir, a->active);
        unlink(path);
        free(path);
    }
    free(a->active);
    for (size_t i = 0; i < a->n_sealed; i++)
        free(a->sealed[i]);
    free(a->sealed);
    free(a->sealed_records);
    for (size_t i = 0; i < a->n_batches; i++) {
        if (a->deps.cache)
            lh_cache_unpin(a->deps.cache, a->batch_paths[i]);
        free(a->batch_paths[i]);
    }
    free(a->batch_paths);
    pthread_cond_destroy(&a->wake);
    pthread_cond_destroy(&a->synced);
    pthread_mutex_destroy(&a->lock);
    pthread_rwlock_destroy(&a->files_lock);
    pthread_mutex_destroy(&a->ship_lock);
    free(a->dir);
    free(a);
}

/* ---- append ------------------------------------------------------------------------------- */

/* The record's line (new, with its newline), arguments truncated when too large. */
static int
record_line(const json_t *record, char **line_out, size_t *len_out, lh_err *err)
{
    const char *call_id = json_string_value(json_object_get(record, "call_id"));
    const char *ts = json_string_value(json_object_get(record, "ts"));
    int64_t ts_us = 0;
    if (!json_is_object(record) || call_id == NULL || call_id[0] == '\0' || ts == NULL ||
        lh_audit_parse_time(ts, &ts_us) != 0) {
        lh_err_set(err, LH_EINTERNAL, 500, "audit_record_invalid",
                   "an audit record needs a call_id and an RFC 3339 ts");
        lh_err_detail(err, "call_id %s, ts %s", call_id ? "present" : "missing",
                      ts ? "not RFC 3339" : "missing");
        return LH_EINTERNAL;
    }
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    char *line = json_dumps(record, flags);
    if (line && strlen(line) > LH_AUDIT_RECORD_MAX) {
        json_t *cut = json_copy((json_t *)record); /* shallow: only "arguments" changes */
        json_object_set_new(cut, "arguments", json_pack("{s:b}", "truncated", 1));
        free(line);
        line = json_dumps(cut, flags);
        json_decref(cut);
    }
    if (line == NULL || strlen(line) > LH_AUDIT__HARD_MAX) {
        lh_err_set(err, LH_EINTERNAL, 500, "audit_record_invalid",
                   "an audit record is too large even without its arguments");
        lh_err_detail(err, "call_id %s", call_id);
        free(line);
        return LH_EINTERNAL;
    }
    size_t len = strlen(line);
    line = lh_realloc(line, len + 2);
    line[len++] = '\n';
    line[len] = '\0';
    *line_out = line;
    *len_out = len;
    return 0;
}

static bool
broken_locked(const lh_audit *a)
{
    return a->failed_seq != 0;
}

/* Wait until a sync covers line seq (becoming the syncer when none runs). Caller holds
 * lock. 0 when the line is durable. */
static int
wait_synced(lh_audit *a, uint64_t seq, lh_err *err)
{
    while (a->synced_seq < seq && !broken_locked(a)) {
        if (a->syncing) {
            pthread_cond_wait(&a->synced, &a->lock);
            continue;
        }
        a->syncing = true;
        uint64_t target = a->written_seq;
        int fd = a->fd; /* a segment is not sealed while a sync runs (audit_ship.c) */
        pthread_mutex_unlock(&a->lock);
        int rc = fdatasync(fd);
        int errnum = errno;
        pthread_mutex_lock(&a->lock);
        a->syncing = false;
        if (rc == 0) {
            a->synced_seq = target;
            a->fsyncs++;
        } else {
            a->failed_seq = target;
            a->errors++;
            snprintf(a->last_error, sizeof a->last_error, "fdatasync of %s: %s", a->active,
                     strerror(errnum));
            lh_log(LH_LOG_ERROR, NULL, NULL,
                   "audit: fdatasync of %s failed (%s): the trail takes no more records until "
                   "restart",
                   a->active, strerror(errnum));
        }
        pthread_cond_broadcast(&a->synced);
    }
    if (a->synced_seq >= seq)
        return 0;
    lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable",
               "the audit trail could not make the record durable");
    lh_err_detail(err, "%s", a->last_error);
    lh_err_hint(err, "check the disk of the data dir, then restart the server");
    return LH_EUNAVAIL;
}

int
lh_audit_append(lh_audit *a, const json_t *record, lh_err *err)
{
    char *line = NULL;
    size_t len = 0;
    int rc = record_line(record, &line, &len, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&a->lock);
    if (a->stopping || broken_locked(a)) {
        rc = lh_err_set(err, LH_EUNAVAIL, 503, "audit_unavailable",
                        "the audit trail takes no records now");
        lh_err_detail(err, "%s", a->stopping ? "the server is stopping" : a->last_error);
        goto out;
    }
    if (a->fd < 0 && (rc = lh_audit__open_segment(a, err)) != 0)
        goto out;
    if (write_all(a->fd, line, len) != 0) {
        int errnum = errno;
        /* no half line may stay in front of the next record */
        if (ftruncate(a->fd, a->active_bytes) != 0)
            a->failed_seq = a->written_seq + 1; /* the file is in an unknown state */
        char *path = lh_sprintf("%s/%s", a->dir, a->active);
        rc = unavailable(err, "write a record", path, errnum);
        free(path);
        a->errors++;
        snprintf(a->last_error, sizeof a->last_error, "%s", err->detail);
        goto out;
    }
    a->active_bytes += (int64_t)len;
    a->active_records++;
    a->appended++;
    if (a->pending++ == 0)
        a->oldest_mono_us = lh_mono_us();
    uint64_t seq = ++a->written_seq;
    if (a->pending >= a->deps.ship_records)
        pthread_cond_signal(&a->wake);
    rc = wait_synced(a, seq, err);
out:
    pthread_mutex_unlock(&a->lock);
    free(line);
    return rc;
}

/* ---- small things ------------------------------------------------------------------------- */

bool
lh_audit_may_read(const lh_principal *p)
{
    return p != NULL && (p->roles & LH_ROLE_ADMIN) != 0;
}

bool
lh_audit_record_visible(lh_catalog *c, const lh_principal *who, const json_t *record)
{
    if (lh_catalog_sees_all(who))
        return true;
    const char *dataset;
    const json_t *version;
    json_object_foreach((json_t *)json_object_get(record, "dataset_versions"), dataset, version)
    {
        if (!lh_catalog_may_see(c, who, dataset))
            return false;
    }
    return true;
}

void
lh_audit_keep_visible(lh_catalog *c, const lh_principal *who, json_t *page)
{
    json_t *records = json_object_get(page, "records");
    for (size_t i = json_array_size(records); i-- > 0;)
        if (!lh_audit_record_visible(c, who, json_array_get(records, i)))
            json_array_remove(records, i);
}

lh_resolved
lh_audit_guard(void *ctx, const lh_catalog_view *v, const char *select, lh_buf *out)
{
    (void)ctx;
    if (!lh_audit_may_read(v->who))
        return LH_RESOLVE_ABSENT;
    if (!v->who->limit_buckets)
        return LH_RESOLVE_AS_IS;
    lh_buf_printf(out,
                  "SELECT * FROM (%s) AS lh_audit WHERE dataset_versions IS NULL OR "
                  "list_has_all([",
                  select);
    lh_catalog_view_datasets_sql(v, out);
    lh_buf_puts(out, "], json_keys(dataset_versions))");
    return LH_RESOLVE_REWRITTEN;
}

void
lh_audit_stats(lh_audit *a, json_t *into)
{
    if (a == NULL || into == NULL)
        return;
    pthread_mutex_lock(&a->lock);
    json_object_set_new(into, "pending", json_integer(a->pending));
    json_object_set_new(into, "segments", json_integer((json_int_t)a->n_sealed + (a->active != 0)));
    json_object_set_new(into, "appended", json_integer(a->appended));
    json_object_set_new(into, "fsyncs", json_integer(a->fsyncs));
    json_object_set_new(into, "shipped_batches", json_integer(a->shipped_batches));
    json_object_set_new(into, "shipped_records", json_integer(a->shipped_records));
    json_object_set_new(into, "errors", json_integer(a->errors));
    json_object_set_new(into, "last_error",
                        a->last_error[0] ? json_string(a->last_error) : json_null());
    pthread_mutex_unlock(&a->lock);
}

/* Digits of s: exactly n of them into *out, or false. */
static bool
digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

int
lh_audit_parse_time(const char *s, int64_t *epoch_us)
{
    int year, mon, day, hour = 0, min = 0, sec = 0;
    int64_t frac_us = 0, offset_s = 0;
    if (s == NULL || !digits(&s, 4, &year) || *s++ != '-' || !digits(&s, 2, &mon) || *s++ != '-' ||
        !digits(&s, 2, &day) || mon < 1 || mon > 12 || day < 1 || day > 31)
        return -1;
    if (*s != '\0') {
        if ((*s != 'T' && *s != 't' && *s != ' ') || (s++, !digits(&s, 2, &hour)) || *s++ != ':' ||
            !digits(&s, 2, &min) || *s++ != ':' || !digits(&s, 2, &sec) || hour > 23 || min > 59 ||
            sec > 60)
            return -1;
        if (*s == '.') {
            s++;
            int n = 0;
            for (; *s >= '0' && *s <= '9'; s++, n++)
                if (n < 6)
                    frac_us = frac_us * 10 + (*s - '0');
            if (n == 0)
                return -1;
            for (; n < 6; n++)
                frac_us *= 10;
        }
        if (*s == 'Z' || *s == 'z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s++ == '-' ? -1 : 1, oh, om;
            if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_s = sign * (oh * 3600 + om * 60);
        } else {
            return -1;
        }
        if (*s != '\0')
            return -1;
    }
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = hour,
                    .tm_min = min,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    if (tm.tm_mday != day) /* 2026-02-30 rolled over */
        return -1;
    *epoch_us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return 0;
}
