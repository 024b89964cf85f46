/*
 * fault.c — fault injection for tests (core.h): counters behind the hooks in
 * lh_try_malloc/lh_try_realloc, the lh_store_* front and the engine's statement runners.
 *
 * lh_fault__armed is the only thing an unarmed hook reads (relaxed: a test arms before it
 * starts the operation and disarms after it ended, so no ordering is needed beyond what
 * starting and joining its threads gives). The counters are atomics because DuckDB's and
 * the job pool's threads may reach fault points too.
 */
#include "core.h"

atomic_int lh_fault__armed;

static atomic_int armed_kind;
static atomic_bool persistent_faults;
static atomic_int_fast64_t nth_call;
static atomic_int_fast64_t calls[LH_FAULT_KINDS];
static atomic_int_fast64_t hits[LH_FAULT_KINDS];

void
lh_fault_arm(lh_fault_kind kind, int64_t nth, bool persistent)
{
    atomic_store(&lh_fault__armed, 0);
    for (int k = 0; k < LH_FAULT_KINDS; k++) {
        atomic_store(&calls[k], 0);
        atomic_store(&hits[k], 0);
    }
    atomic_store(&armed_kind, (int)kind);
    atomic_store(&persistent_faults, persistent);
    atomic_store(&nth_call, nth < 1 ? 1 : nth);
    atomic_store(&lh_fault__armed, 1);
}

void
lh_fault_disarm(void)
{
    atomic_store(&lh_fault__armed, 0);
}

int64_t
lh_fault_calls(lh_fault_kind kind)
{
    return atomic_load(&calls[kind]);
}

int64_t
lh_fault_hits(lh_fault_kind kind)
{
    return atomic_load(&hits[kind]);
}

bool
lh_fault__fire(lh_fault_kind kind)
{
    if (atomic_load(&armed_kind) != (int)kind)
        return false;
    int64_t call = atomic_fetch_add(&calls[kind], 1) + 1;
    int64_t nth = atomic_load(&nth_call);
    if (call != nth && !(call > nth && atomic_load(&persistent_faults)))
        return false;
    atomic_fetch_add(&hits[kind], 1);
    return true;
}
