/*
 * audit_int.h — the audit trail's shared internals (audit.c, audit_ship.c,
 * audit_read.c). Not used outside src/agent.
 *
 * Locks, always taken in this order and never the other way round:
 *   ship_lock   one shipper at a time (the thread, open, close); held across bucket I/O
 *   files_lock  (read-write) the set of files readers see: readers hold it for reading
 *               across their DuckDB statement, the shipper for writing while it swaps a
 *               shipped segment for its batch and removes the segment file
 *   lock        the active segment, the sequence numbers of group commit, the sealed
 *               list and the counters; held for a write(2), never across an fdatasync
 *               except when the shipper seals a segment whose last lines no sync covered
 */
#ifndef LH_AGENT_AUDIT_INT_H
#define LH_AGENT_AUDIT_INT_H

#include "agent/audit.h"

#include <pthread.h>

/* A record without its arguments still over this is refused (a caller's bug). */
#define LH_AUDIT__HARD_MAX (1024 * 1024)

struct lh_audit {
    lh_audit_deps deps; /* dir points at our copy below */
    char *dir;
    lh_store *primary;
    const char *bucket; /* the primary bucket's name (the registry's) */

    pthread_mutex_t ship_lock;
    pthread_rwlock_t files_lock;
    pthread_mutex_t lock;
    pthread_cond_t synced; /* a sync finished */
    pthread_cond_t wake;   /* the shipper has work (or must stop) */

    /* the active segment: appended to, fdatasync'ed by group commit */
    int fd;       /* -1 when none is open */
    char *active; /* its file name (in dir), or NULL */
    int64_t active_records, active_bytes;
    uint64_t written_seq; /* lines written so far (all segments) */
    uint64_t synced_seq;  /* lines an fdatasync covered */
    uint64_t failed_seq;  /* lines up to here were in a sync that failed */
    bool syncing;         /* one appender is in fdatasync now */

    /* sealed segments waiting to ship, oldest first (file names in dir) */
    char **sealed;
    int64_t *sealed_records;
    size_t n_sealed, cap_sealed;
    int64_t pending;        /* records in sealed segments and the active one */
    int64_t oldest_mono_us; /* when the oldest pending record was appended; 0: none */
    bool view_stale;        /* the file set changed: redefine the view */

    /* shipped batches: local paths (fs: the object's file; else pinned cache copies) */
    char **batch_paths;
    size_t n_batches, cap_batches;

    pthread_t shipper;
    bool shipper_started;
    bool stopping;

    /* counters (under lock) */
    int64_t appended, fsyncs, shipped_batches, shipped_records, errors;
    char last_error[LH_ERR_TEXT_MAX];
};

/* audit.c */
/* Note a failure: count it, keep its message for stats, log it. */
void lh_audit__failed(lh_audit *a, const lh_err *err);
/* Open a fresh active segment. Caller holds lock. */
int lh_audit__open_segment(lh_audit *a, lh_err *err);
/* fsync the folder (a segment created or removed). */
void lh_audit__sync_dir(lh_audit *a);

/* audit_ship.c */
/* Make the recovered segments (names, oldest first) shippable, then ship everything;
 * list the stored batches first. Called by open, before the shipper starts. */
int lh_audit__load_batches(lh_audit *a, lh_err *err);
/* Seal the active segment if it holds records, ship every sealed one and redefine the
 * view when the file set changed. Takes ship_lock. */
void lh_audit__ship(lh_audit *a, bool seal);
void *lh_audit__shipper_main(void *arg);
/* Redefine the `_audit` view over the files readers see. Caller holds files_lock. */
void lh_audit__define_view(lh_audit *a);
/* The SQL list of every file readers see now ('a', 'b'), or an empty buffer. Caller holds
 * files_lock (for reading at least). */
void lh_audit__file_list(lh_audit *a, lh_buf *out);

#endif
