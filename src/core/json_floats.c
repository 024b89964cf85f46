/*
 * json_floats.c — a long array of numbers in a JSON object, read straight into floats.
 *
 * jansson makes a json_real (an allocation, a locale-proof strtod through a copy) for
 * every element: a 768-number query vector cost a search about 200 us of parsing, more
 * than the search. lh_json_take_floats finds the member in the object's top level with a
 * small scanner, reads its numbers (checked against JSON's number grammar, then strtod)
 * and hands back the text with that array replaced by [] for jansson to parse as usual.
 *
 * The scanner only ever says "not this": anything it does not expect (a member that is
 * not a plain array of numbers, a malformed value, the member absent) returns 0 and the
 * caller parses the original text, so errors keep jansson's words and positions.
 */
#include "core/core_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct scan {
    const char *p, *end;
} scan;

static void
skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A string at s->p (the opening quote); its raw contents in [*from, *to). */
static bool
skip_string(scan *s, const char **from, const char **to)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *start = ++s->p;
    while (s->p < s->end && *s->p != '"') {
        if ((unsigned char)*s->p < 0x20)
            return false;
        if (*s->p == '\\' && ++s->p >= s->end)
            return false;
        s->p++;
    }
    if (s->p >= s->end)
        return false;
    if (from) {
        *from = start;
        *to = s->p;
    }
    s->p++;
    return true;
}

/* A JSON number at s->p: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
skip_number(scan *s)
{
    const char *p = s->p, *e = s->end;
#define DIGITS(min)                                                                                \
    do {                                                                                           \
        const char *d = p;                                                                         \
        while (p < e && *p >= '0' && *p <= '9')                                                    \
            p++;                                                                                   \
        if (p - d < (min))                                                                         \
            return false;                                                                          \
    } while (0)
    if (p < e && *p == '-')
        p++;
    if (p < e && *p == '0')
        p++;
    else
        DIGITS(1);
    if (p < e && *p == '.') {
        p++;
        DIGITS(1);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        DIGITS(1);
    }
#undef DIGITS
    s->p = p;
    return true;
}

/* Any value, nested ones counted by depth (strings skipped whole). */
static bool
skip_value(scan *s)
{
    int depth = 0;
    do {
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        char c = *s->p;
        if (c == '"') {
            if (!skip_string(s, NULL, NULL))
                return false;
        } else if (c == '{' || c == '[') {
            depth++;
            s->p++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return false;
            s->p++;
        } else if (c == ',' || c == ':') {
            if (depth == 0)
                return false;
            s->p++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (!skip_number(s))
                return false;
        } else {
            static const char *const words[] = {"true", "false", "null"};
            bool known = false;
            for (size_t i = 0; i < 3 && !known; i++) {
                size_t n = strlen(words[i]);
                if ((size_t)(s->end - s->p) >= n && memcmp(s->p, words[i], n) == 0) {
                    s->p += n;
                    known = true;
                }
            }
            if (!known)
                return false;
        }
    } while (depth > 0);
    return true;
}

/* The array at s->p as floats (new, *n); false unless every element is a number. */
static bool
read_floats(scan *s, float **out, size_t *n)
{
    size_t cap = 256, count = 0;
    float *v = lh_try_malloc(cap * sizeof *v);
    if (v == NULL)
        return false;
    s->p++; /* [ */
    skip_ws(s);
    bool ok = s->p < s->end && *s->p != ']';
    while (ok) {
        skip_ws(s);
        const char *start = s->p;
        if (!skip_number(s)) {
            ok = false;
            break;
        }
        char num[64];
        size_t len = (size_t)(s->p - start);
        if (len >= sizeof num) { /* digits past any float's precision: jansson decides */
            ok = false;
            break;
        }
        memcpy(num, start, len);
        num[len] = '\0';
        /* what jansson refuses stays refused: an integer past int64 ("too big integer"),
         * a real past double's range ("real number overflow") */
        bool integer = strpbrk(num, ".eE") == NULL;
        if (integer && len - (num[0] == '-') > 18) {
            ok = false;
            break;
        }
        errno = 0;
        double d = strtod(num, NULL);
        if (errno == ERANGE && (d > 1.0 || d < -1.0)) {
            ok = false;
            break;
        }
        if (count == cap) {
            float *grown = lh_try_realloc(v, 2 * cap * sizeof *v);
            if (grown == NULL) {
                ok = false;
                break;
            }
            v = grown;
            cap *= 2;
        }
        v[count++] = (float)d;
        skip_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        ok = s->p < s->end && *s->p == ']';
        if (ok)
            s->p++;
        break;
    }
    if (!ok) {
        free(v);
        return false;
    }
    *out = v;
    *n = count;
    return true;
}

int
lh_json_take_floats(const char *text, size_t len, const char *key, float **out, size_t *n,
                    lh_buf *rest)
{
    scan s = {text, text + len};
    size_t key_len = strlen(key);
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    s.p++;
    for (;;) {
        skip_ws(&s);
        const char *from, *to;
        if (!skip_string(&s, &from, &to))
            return 0;
        skip_ws(&s);
        if (s.p >= s.end || *s.p != ':')
            return 0;
        s.p++;
        skip_ws(&s);
        if ((size_t)(to - from) == key_len && memcmp(from, key, key_len) == 0) {
            if (s.p >= s.end || *s.p != '[')
                return 0;
            const char *array = s.p;
            if (!read_floats(&s, out, n))
                return 0;
            lh_buf_append(rest, text, (size_t)(array - text));
            lh_buf_puts(rest, "[]");
            lh_buf_append(rest, s.p, (size_t)(s.end - s.p));
            return 1;
        }
        if (!skip_value(&s))
            return 0;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        return 0; /* the end of the object (or not one): the key is not there */
    }
}
