/*
 * router.c — method + path matching over a static route table.
 *
 * Patterns are split on '/'; a segment "{name}" captures one non-empty path segment and a
 * last segment "{*name}" captures the rest of the path, slashes included.
 * Literal segments win over captures when several routes could match (so "/jobs/stats"
 * beats "/jobs/{id}"), by scoring the literal segments of each candidate.
 */
#include "http/http_int.h"

#include <string.h>

/* Compare one pattern against a path; on a match return the number of literal segments
 * (>= 0) and fill the captures; -1 when it does not match. */
static int
match_pattern(const char *pattern, const char *path, lh_arena *arena, lh_route_match *m)
{
    const char *p = pattern, *s = path;
    int literals = 0;
    size_t n_params = 0;
    if (*p != '/' || *s != '/')
        return -1;
    for (;;) {
        if (*p == '/' && *s == '/') {
            p++;
            s++;
        } else if (*p == '\0' && *s == '\0') {
            break;
        } else {
            return -1;
        }
        const char *pe = strchr(p, '/');
        size_t plen = pe ? (size_t)(pe - p) : strlen(p);
        const char *se = strchr(s, '/');
        size_t slen = se ? (size_t)(se - s) : strlen(s);
        if (plen >= 3 && p[0] == '{' && p[1] == '*' && p[plen - 1] == '}' && p[plen] == '\0') {
            /* "{*name}" as the last segment captures the rest of the path */
            size_t rest = strlen(s);
            if (rest == 0 || n_params == LH_MAX_PARAMS)
                return -1;
            if (m) {
                m->names[n_params] = p + 2;
                m->name_lens[n_params] = plen - 3;
                m->values[n_params] = lh_arena_strndup(arena, s, rest);
            }
            n_params++;
            p += plen;
            s += rest;
            continue;
        }
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || n_params == LH_MAX_PARAMS)
                return -1;
            if (m) {
                m->names[n_params] = p + 1;
                m->name_lens[n_params] = plen - 2;
                m->values[n_params] = lh_arena_strndup(arena, s, slen);
            }
            n_params++;
        } else {
            if (plen != slen || memcmp(p, s, plen) != 0)
                return -1;
            literals++;
        }
        p += plen;
        s += slen;
    }
    if (m)
        m->n_params = n_params;
    return literals;
}

int
lh_http__route(const lh_route *routes, size_t n_routes, const char *method, const char *path,
               lh_arena *arena, lh_route_match *m, char *allow_out, size_t allow_size)
{
    const char *want = strcmp(method, "HEAD") == 0 ? "GET" : method;
    int best = -1, best_score = -1;
    bool path_matched = false;
    for (size_t i = 0; i < n_routes; i++) {
        int score = match_pattern(routes[i].pattern, path, NULL, NULL);
        if (score < 0)
            continue;
        path_matched = true;
        if (strcmp(routes[i].method, want) == 0 && score > best_score) {
            best = (int)i;
            best_score = score;
        }
    }
    if (best >= 0) {
        memset(m, 0, sizeof *m);
        match_pattern(routes[best].pattern, path, arena, m);
        m->route = &routes[best];
        m->route_index = best;
        return 0;
    }
    if (!path_matched)
        return LH_ENOTFOUND;
    /* 405: list every method some route accepts for this path */
    size_t used = 0;
    allow_out[0] = '\0';
    bool has_get = false;
    for (size_t i = 0; i < n_routes; i++) {
        if (match_pattern(routes[i].pattern, path, NULL, NULL) < 0)
            continue;
        const char *meth = routes[i].method;
        if (strstr(allow_out, meth))
            continue; /* methods are distinct words; "GET" is not inside another */
        has_get |= strcmp(meth, "GET") == 0;
        int w = snprintf(allow_out + used, allow_size - used, "%s%s", used ? ", " : "", meth);
        if (w > 0 && (size_t)w < allow_size - used)
            used += (size_t)w;
        else
            allow_out[used] = '\0'; /* leave out a method that does not fit, not half of it */
    }
    if (has_get && used + 7 < allow_size)
        snprintf(allow_out + used, allow_size - used, ", HEAD");
    return LH_EPERM;
}
