/*
 * json_floats.c — a long array of numbers in a JSON object, read straight into floats.
 *
 * jansson makes a json_real (an allocation, a locale-proof strtod through a copy) for
 * every element: a 768-number query vector cost a search about 200 us of parsing, more
 * than the search. lh_json_take_floats finds the member in the object's top level with a
 * small scanner, reads its numbers (each checked against JSON's number grammar and read in
 * the same pass: the double strtod would give, mostly without strtod, see number_at) and
 * hands back the text with that array replaced by [] for jansson to parse as usual.
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

/* The value of the digits in [p, end) appended to m (at most 19 digits in all): eight at
 * a time where there are eight (the usual SWAR reduction of eight ASCII digits). */
static uint64_t
digits_value(uint64_t m, const char *p, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; end - p >= 8; p += 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v -= 0x3030303030303030u;
        v = v * 10 + (v >> 8); /* pairs */
        v = (((v & 0x000000ff000000ffu) * (100 + (1000000ull << 32))) +
             (((v >> 16) & 0x000000ff000000ffu) * (1 + (10000ull << 32)))) >>
            32;
        m = m * 100000000u + (uint32_t)v;
    }
#endif
    for (; p < end; p++)
        m = m * 10 + (uint64_t)(*p - '0');
    return m;
}

/*
 * m * 10^exp10 as the nearest double, as strtod would give it, where one rounding is
 * provably exact; false where strtod must decide. In double arithmetic m times or over an
 * exact power of ten is the nearest double when m <= 2^53 and the power is at most 10^22
 * (both exact: Clinger's fast path). In x87 extended arithmetic (64-bit significands,
 * powers to 10^27 exact) the one rounding is to 64 bits, and rounding that to a double
 * gives the nearest double unless it landed exactly halfway between two, which is
 * checked.
 */
static bool
scaled(uint64_t m, int exp10, double *out)
{
    static const double pow10d[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (m == 0) {
        *out = 0.0;
        return true;
    }
    if (m <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        *out = exp10 < 0 ? (double)m / pow10d[-exp10] : (double)m * pow10d[exp10];
        return true;
    }
#if defined(__x86_64__) && LDBL_MANT_DIG == 64
    static const long double pow10l[] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,
                                         1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L,
                                         1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L,
                                         1e24L, 1e25L, 1e26L, 1e27L}; /* 5^27 < 2^64: exact */
    if (exp10 < -27 || exp10 > 27)
        return false;
    long double p10 = pow10l[exp10 < 0 ? -exp10 : exp10];
    long double x = exp10 < 0 ? (long double)m / p10 : (long double)m * p10;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits); /* the 64-bit significand */
    if ((bits & 0x7ff) == 0x400)
        return false; /* halfway between two doubles: strtod decides */
    *out = (double)x;
    return true;
#else
    return false;
#endif
}

#define IS_DIGIT(c) ((unsigned)((c) - '0') < 10u)

/*
 * The JSON number at p (before e) read in one pass: checked against the grammar
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, its end in *end and its value in *out,
 * the double strtod gives. False when it is not a number, or is one jansson refuses (an
 * integer past int64, "too big integer"; a real past double's range, "real number
 * overflow"). Up to 19 significant digits make an exact integer scaled above; anything
 * else goes to strtod. strtod cost a 384-number query vector ~40 us.
 */
static bool
number_at(const char *p, const char *e, const char **end, double *out)
{
    const char *start = p;
    bool neg = p < e && *p == '-';
    p += neg;
    const char *ia = p;
    if (p < e && *p == '0') {
        p++;
    } else {
        while (p < e && IS_DIGIT(*p))
            p++;
        if (p == ia)
            return false;
    }
    const char *ie = p, *fa = p, *fe = p;
    if (p < e && *p == '.') {
        fa = ++p;
        while (p < e && IS_DIGIT(*p))
            p++;
        if (p == fa)
            return false;
        fe = p;
    }
    int exp = 0;
    bool has_exp = false, exp_big = false;
    if (p < e && (*p == 'e' || *p == 'E')) {
        has_exp = true;
        p++;
        bool eneg = p < e && *p == '-';
        p += (p < e && (*p == '-' || *p == '+'));
        const char *xa = p;
        for (; p < e && IS_DIGIT(*p); p++) {
            if (exp < 100000)
                exp = exp * 10 + (*p - '0');
            else
                exp_big = true;
        }
        if (p == xa)
            return false;
        if (eneg)
            exp = -exp;
    }
    *end = p;
    if (fa == fe && !has_exp && ie - ia > 18)
        return false;            /* an integer past int64 (jansson: "too big integer") */
    const char *a = ia, *b = fa; /* the significant digits: no leading zeros */
    while (a < ie && *a == '0')
        a++;
    if (a == ie)
        while (b < fe && *b == '0')
            b++;
    double d;
    if ((ie - a) + (fe - b) <= 19 && !exp_big && fe - fa < 100000 &&
        scaled(digits_value(digits_value(0, a, ie), b, fe), exp - (int)(fe - fa), &d)) {
        *out = neg ? -d : d;
        return true;
    }
    char num[64];
    size_t len = (size_t)(p - start);
    if (len >= sizeof num) /* digits past any float's precision: jansson decides */
        return false;
    memcpy(num, start, len);
    num[len] = '\0';
    errno = 0;
    d = strtod(num, NULL);
    if (errno == ERANGE && (d > 1.0 || d < -1.0))
        return false; /* past double's range (jansson: "real number overflow") */
    *out = d;
    return true;
}

bool
lh_core__json_number(const char *p, size_t len, double *out)
{
    const char *end;
    return number_at(p, p + len, &end, out) && end == p + len;
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
        double d;
        if (!number_at(s->p, s->end, &s->p, &d)) {
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
