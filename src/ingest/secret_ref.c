/*
 * secret_ref.c — the passwords that ingest requests name by secret_ref, read from the
 * secrets file through core's provider (lh_secrets_open: the mode, owner and symlink
 * checks, and no value in any error).
 *
 * The file is parsed on first use and kept; each later call compares the file's lstat
 * (device, inode, size, mode, owner, mtime and ctime, to the nanosecond) with what was
 * parsed and reads the file again when any differs. So a rotated password (rewritten in
 * place or renamed over the old file) takes effect on the next request without a restart,
 * and a file whose mode or owner became wrong (chmod and chown change ctime) is refused at
 * once: the kept copy is dropped whenever a read fails.
 *
 * File times come from a coarse clock (a few milliseconds), so a file rewritten twice in
 * one tick with the same size looks unchanged. As git does for its index, a copy read
 * within RACY_NS of the file's last change is not trusted: it is read again on the next
 * call, until the change is old enough that a later write must show a later time.
 *
 * Thread-safe: one mutex guards the kept copy, held while the file is read (a few small
 * reads, only when it changed).
 */
#include "ingest/ingest.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* a copy read this soon after the file changed is read again on the next call */
static int64_t RACY_NS = INT64_C(1000000000); /* not const: the unit test sets it */

/* What identifies one version of the file. */
typedef struct file_version {
    dev_t dev;
    ino_t ino;
    off_t size;
    mode_t mode;
    uid_t uid;
    struct timespec mtime, ctime;
} file_version;

struct lh_ingest_secrets {
    pthread_mutex_t mu;
    char *path;
    lh_secrets *parsed;   /* the file as last read, or NULL */
    file_version version; /* of `parsed` */
    bool racy;            /* `parsed` was read too soon after a change to be trusted */
};

lh_ingest_secrets *
lh_ingest_secrets_new(const char *path)
{
    lh_ingest_secrets *s = lh_calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->path = lh_strdup(path ? path : "");
    return s;
}

void
lh_ingest_secrets_free(lh_ingest_secrets *s)
{
    if (s == NULL)
        return;
    lh_secrets_free(s->parsed);
    pthread_mutex_destroy(&s->mu);
    free(s->path);
    free(s);
}

static bool
same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static int64_t
ns_of(struct timespec ts)
{
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Whether a change at the file's times could still go unseen by them. */
static bool
too_recent(const file_version *v)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t changed = ns_of(v->mtime) > ns_of(v->ctime) ? ns_of(v->mtime) : ns_of(v->ctime);
    return ns_of(now) - changed < RACY_NS;
}

static bool
same_version(const file_version *a, const file_version *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mode == b->mode &&
           a->uid == b->uid && same_time(a->mtime, b->mtime) && same_time(a->ctime, b->ctime);
}

/* The parsed file, read again when it changed since the last read. Called with s->mu
 * held; the result is valid until the mutex is released. */
static const lh_secrets *
current(lh_ingest_secrets *s, lh_err *err)
{
    struct stat st;
    file_version now = {0};
    bool known = lstat(s->path, &st) == 0;
    if (known) {
        now = (file_version){.dev = st.st_dev,
                             .ino = st.st_ino,
                             .size = st.st_size,
                             .mode = st.st_mode,
                             .uid = st.st_uid,
                             .mtime = st.st_mtim,
                             .ctime = st.st_ctim};
        if (s->parsed && !s->racy && same_version(&now, &s->version))
            return s->parsed;
    }
    /* changed, never read, or gone: lh_secrets_open checks it again and words any failure
     * (a missing file included) */
    lh_secrets_free(s->parsed);
    s->parsed = NULL;
    lh_secrets *fresh = NULL;
    if (lh_secrets_open(s->path, &fresh, err) != 0)
        return NULL;
    s->parsed = fresh;
    /* Stamped with the version seen before the read: a change during the read only makes
     * the next call read the file once more. */
    s->version = now;
    s->racy = !known || too_recent(&now);
    return s->parsed;
}

int
lh_ingest_secret_password(lh_ingest_secrets *s, const char *ref, char **out, lh_err *err)
{
    lh_err serr;
    lh_err_clear(&serr);
    char *password = NULL;
    pthread_mutex_lock(&s->mu);
    const lh_secrets *parsed = current(s, &serr);
    int rc = parsed ? lh_secrets_get(parsed, ref, "password", &password, &serr) : serr.rc;
    pthread_mutex_unlock(&s->mu);
    if (rc != 0) {
        lh_err_set(err, LH_EINVAL, 400, "invalid_secret_ref",
                   "could not read a password for secret_ref '%s'", ref);
        lh_err_detail(err, "%s", serr.message);
        lh_err_hint(err, "the secrets file needs [%s] with password = \"...\"", ref);
        return LH_EINVAL;
    }
    *out = password;
    return 0;
}
