/*
 * session.c — MCP sessions: opened by initialize, bound to the principal that opened it,
 * ended by DELETE or after [mcp] session_idle_s without use. A session id is 32 bytes from
 * the kernel CSPRNG, so ids cannot be guessed; even so a session is only found for the
 * principal that opened it, so a leaked id is no use with another token.
 *
 * The table is an array under one lock (a lookup is a scan: sessions are few, and the scan
 * is short next to the request around it). Bounded by [mcp] max_sessions.
 */
#include "mcp/mcp_int.h"

#include <stdio.h>
#include <string.h>

static void
drop(lh_mcp *mcp, size_t i)
{
    mcp->sessions[i] = mcp->sessions[--mcp->n_sessions];
}

static void
drop_expired_locked(lh_mcp *mcp, int64_t now)
{
    for (size_t i = mcp->n_sessions; i-- > 0;)
        if (now - mcp->sessions[i].last_used_mono_us > mcp->session_idle_us)
            drop(mcp, i);
}

/* The index of session id of principal, or -1. Expired sessions are dropped on the way. */
static long
find_locked(lh_mcp *mcp, const char *id, const char *principal, int64_t now)
{
    if (id == NULL || strlen(id) != LH_MCP_SESSION_ID_LEN)
        return -1;
    for (size_t i = 0; i < mcp->n_sessions; i++) {
        mcp_session *s = &mcp->sessions[i];
        if (!lh_ct_equal(s->id, id, LH_MCP_SESSION_ID_LEN))
            continue;
        if (now - s->last_used_mono_us > mcp->session_idle_us) {
            drop(mcp, i);
            return -1;
        }
        return strcmp(s->principal, principal) == 0 ? (long)i : -1;
    }
    return -1;
}

int
lh_mcp__session_open(lh_mcp *mcp, const char *principal, const char *protocol_version,
                     char id_out[LH_MCP_SESSION_ID_LEN + 1], lh_err *err)
{
    int64_t now = lh_mono_us();
    pthread_mutex_lock(&mcp->lock);
    drop_expired_locked(mcp, now);
    if (mcp->n_sessions >= mcp->max_sessions) {
        /* make room: the principal's own least recently used session, else anyone's (so
         * one principal opening sessions in a loop recycles its own and starves no one) */
        long own = -1, any = -1;
        for (size_t i = 0; i < mcp->n_sessions; i++) {
            int64_t used = mcp->sessions[i].last_used_mono_us;
            if (any < 0 || used < mcp->sessions[any].last_used_mono_us)
                any = (long)i;
            if (strcmp(mcp->sessions[i].principal, principal) == 0 &&
                (own < 0 || used < mcp->sessions[own].last_used_mono_us))
                own = (long)i;
        }
        drop(mcp, (size_t)(own >= 0 ? own : any));
    }
    if (mcp->n_sessions == mcp->cap_sessions) {
        mcp->cap_sessions = mcp->cap_sessions ? 2 * mcp->cap_sessions : 16;
        mcp->sessions = lh_realloc(mcp->sessions, mcp->cap_sessions * sizeof *mcp->sessions);
    }
    mcp_session *s = &mcp->sessions[mcp->n_sessions++];
    memset(s, 0, sizeof *s);
    lh_random_hex(s->id, LH_MCP_SESSION_ID_LEN / 2);
    snprintf(s->principal, sizeof s->principal, "%s", principal);
    snprintf(s->protocol_version, sizeof s->protocol_version, "%s", protocol_version);
    s->last_used_mono_us = now;
    memcpy(id_out, s->id, LH_MCP_SESSION_ID_LEN + 1);
    pthread_mutex_unlock(&mcp->lock);
    return 0;
}

int
lh_mcp__session_use(lh_mcp *mcp, const char *id, const char *principal,
                    char version_out[LH_MCP_VERSION_MAX])
{
    int64_t now = lh_mono_us();
    pthread_mutex_lock(&mcp->lock);
    long i = find_locked(mcp, id, principal, now);
    if (i >= 0) {
        mcp->sessions[i].last_used_mono_us = now;
        memcpy(version_out, mcp->sessions[i].protocol_version, LH_MCP_VERSION_MAX);
    }
    pthread_mutex_unlock(&mcp->lock);
    return i >= 0 ? 0 : LH_ENOTFOUND;
}

int
lh_mcp__session_close(lh_mcp *mcp, const char *id, const char *principal)
{
    pthread_mutex_lock(&mcp->lock);
    long i = find_locked(mcp, id, principal, lh_mono_us());
    if (i >= 0)
        drop(mcp, (size_t)i);
    pthread_mutex_unlock(&mcp->lock);
    return i >= 0 ? 0 : LH_ENOTFOUND;
}

size_t
lh_mcp_sessions(lh_mcp *mcp)
{
    pthread_mutex_lock(&mcp->lock);
    drop_expired_locked(mcp, lh_mono_us());
    size_t n = mcp->n_sessions;
    pthread_mutex_unlock(&mcp->lock);
    return n;
}
