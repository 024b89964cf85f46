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
#include <float.h>
#include <stdint.h>
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

/*
 * The double nearest a JSON number's decimal (already checked against the grammar), as
 * strtod would give it, without strtod where that is safe: up to 19 significant digits
 * make an exact 64-bit integer m, and m times or over an exact power of ten is rounded
 * once. In double arithmetic that is the nearest double when m < 2^53 and the power is at
 * most 10^22 (both exact); in x87 extended arithmetic (64-bit significands, powers to
 * 10^27 exact) the one rounding is to 64 bits, and rounding that to a double gives the
 * nearest double unless it landed exactly halfway between two, which is checked. Anything
 * else goes to strtod. strtod cost a 384-number query vector ~40 us; this ~4.
 */
static bool
decimal_fast(const char *p, const char *e, double *out)
{
    static const double pow10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = p < e && *p == '-';
    p += neg;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    for (; p < e && *p >= '0' && *p <= '9'; p++) {
        if (m == 0 && *p == '0')
            continue; /* leading zeros are not significant */
        if (++digits > 19)
            return false;
        m = m * 10 + (uint64_t)(*p - '0');
    }
    if (p < e && *p == '.') {
        for (p++; p < e && *p >= '0' && *p <= '9'; p++) {
            if (m == 0 && *p == '0') {
                exp10--;
                continue;
            }
            if (++digits > 19)
                return false;
            m = m * 10 + (uint64_t)(*p - '0');
            exp10--;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = p < e && *p == '-';
        p += (p < e && (*p == '-' || *p == '+'));
        int x = 0;
        for (; p < e && *p >= '0' && *p <= '9'; p++) {
            if (x > 10000)
                return false;
            x = x * 10 + (*p - '0');
        }
        exp10 += eneg ? -x : x;
    }
    if (m == 0) {
        *out = neg ? -0.0 : 0.0;
        return true;
    }
    double d;
    if (m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        d = (double)m;
        d = exp10 < 0 ? d / pow10d[-exp10] : d * pow10d[exp10];
    } else {
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
        if (exp10 < -27 || exp10 > 27)
            return false;
        static const long double pow10l[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                             1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L,
                                             1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L,
                                             1e24L, 1e25L, 1e26L, 1e27L}; /* 5^27 < 2^64: exact */
        long double p10 = pow10l[exp10 < 0 ? -exp10 : exp10];
        long double x = exp10 < 0 ? (long double)m / p10 : (long double)m * p10;
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits); /* the 64-bit significand */
        if ((bits & 0x7ff) == 0x400)
            return false; /* halfway between two doubles: strtod decides */
        d = (double)x;
#else
        return false;
#endif
    }
    *out = neg ? -d : d;
    return true;
}

bool
lh_core__json_number(const char *p, size_t len, double *out)
{
    bool integer =
        memchr(p, '.', len) == NULL && memchr(p, 'e', len) == NULL && memchr(p, 'E', len) == NULL;
    if (integer && len - (*p == '-') > 18)
        return false;
    if (decimal_fast(p, p + len, out))
        return true;
    char num[64];
    if (len >= sizeof num) /* digits past any float's precision: jansson decides */
        return false;
    memcpy(num, p, len);
    num[len] = '\0';
    errno = 0;
    double d = strtod(num, NULL);
    if (errno == ERANGE && (d > 1.0 || d < -1.0))
        return false;
    *out = d;
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
        double d;
        if (!lh_core__json_number(start, (size_t)(s->p - start), &d)) {
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
