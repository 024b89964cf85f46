/*
 * json_dump.c — a JSON value written compactly into a buffer, byte for byte what
 * json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) writes.
 *
 * jansson's dumper hands every token to a callback and walks strings a UTF-8 code point
 * at a time; on a search answer (ten hits with their chunk texts) that was about a sixth
 * of the request's CPU. Here strings are copied in runs between the bytes that need an
 * escape, integers are written by hand, and reals are jansson's "%.17g" with its two
 * touches (".0" when the text would read as an integer; no '+' or leading zeros in the
 * exponent), their digits found with integer arithmetic in the common range, so every
 * answer reads exactly as before (tests/unit/core/test_json_dump.c
 * compares the two on every kind of value).
 */
#include "core/core_int.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* lh_buf_append with the room check inline: a dump appends a few bytes at a time. */
static inline void
put(lh_buf *b, const void *data, size_t n)
{
    if (b->len + n < b->cap) {
        memcpy(b->data + b->len, data, n);
        b->len += n;
        b->data[b->len] = '\0';
    } else {
        lh_buf_append(b, data, n);
    }
}

/* 1 for the bytes a JSON string cannot hold as they are: controls, '"' and '\\'. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, ['\\'] = 1,
};

static void
dump_string(lh_buf *b, const char *s, size_t len)
{
    put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    while (p < end) {
        if (!needs_escape[*p]) {
            p++;
            continue;
        }
        if (p > run)
            put(b, run, (size_t)(p - run));
        char esc[8];
        switch (*p) {
        case '"':
            put(b, "\\\"", 2);
            break;
        case '\\':
            put(b, "\\\\", 2);
            break;
        case '\b':
            put(b, "\\b", 2);
            break;
        case '\f':
            put(b, "\\f", 2);
            break;
        case '\n':
            put(b, "\\n", 2);
            break;
        case '\r':
            put(b, "\\r", 2);
            break;
        case '\t':
            put(b, "\\t", 2);
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)*p);
            put(b, esc, 6);
        }
        run = ++p;
    }
    if (p > run)
        put(b, run, (size_t)(p - run));
    put(b, "\"", 1);
}

static void
dump_integer(lh_buf *b, json_int_t v)
{
    char text[24], *p = text + sizeof text;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(b, p, (size_t)(text + sizeof text - p));
}

/*
 * The 17 significant digits of v > 0 that printf("%.17g") shows, into digits[17], and v's
 * decimal exponent after rounding; false when v is outside the range done here. v is
 * m * 2^-s exactly (m < 2^53), so v * 10^k is the 128-bit integer m * 10^k shifted right by
 * s bits, and the bits shifted out say exactly how to round (half to even, as glibc does).
 * That needs k <= 22 (m * 10^k < 2^128) and s >= 0: values from 1e-6 to 2^53 (about
 * 9e15), which is where scores, distances, seconds and ratios live; others go to printf. printf's
 * general multi-precision path cost a search answer's twenty reals ~6 us.
 */
__extension__ typedef unsigned __int128 u128;

static bool
digits17(double v, char digits[17], int *exp10)
{
    static const uint64_t pow10[] = {1ULL,
                                     10ULL,
                                     100ULL,
                                     1000ULL,
                                     10000ULL,
                                     100000ULL,
                                     1000000ULL,
                                     10000000ULL,
                                     100000000ULL,
                                     1000000000ULL,
                                     10000000000ULL,
                                     100000000000ULL,
                                     1000000000000ULL,
                                     10000000000000ULL,
                                     100000000000000ULL,
                                     1000000000000000ULL,
                                     10000000000000000ULL,
                                     100000000000000000ULL,
                                     1000000000000000000ULL,
                                     10000000000000000000ULL};
    if (!(v >= 1e-6 && v < 9007199254740992.0))
        return false;
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int e2 = (int)(bits >> 52) - 1075; /* v = m * 2^e2, normal here */
    uint64_t m = (bits & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
    int s = -e2; /* 0 to 72 in this range */
    /* a first guess of floor(log10(v)) from the binary exponent: 0.30103 = log10(2); one
     * off at most, which the loop below corrects */
    int e = (int)floor((e2 + 52) * 0.30102999566398120);
    for (int attempt = 0; attempt < 4; attempt++) {
        int k = 16 - e;
        if (k < 0 || k > 22)
            return false;
        u128 x = (u128)m * pow10[k > 19 ? 19 : k];
        if (k > 19)
            x *= pow10[k - 19];
        u128 q = x >> s, rem = x & (((u128)1 << s) - 1);
        if (q < pow10[16]) { /* v < 10^e */
            e--;
            continue;
        }
        if (q >= pow10[17]) { /* v >= 10^(e+1) */
            e++;
            continue;
        }
        if (s > 0) {
            u128 half = (u128)1 << (s - 1);
            if (rem > half || (rem == half && (q & 1)))
                q++;
        }
        if (q == pow10[17]) { /* rounding carried into an 18th digit */
            q = pow10[16];
            e++;
        }
        uint64_t d = (uint64_t)q;
        for (int i = 16; i >= 0; i--) {
            digits[i] = (char)('0' + d % 10);
            d /= 10;
        }
        *exp10 = e;
        return true;
    }
    return false;
}

size_t
lh_json_decimal(char *out, bool negative, const char *digits, size_t n, int exp10, int plain_from,
                int plain_to)
{
    size_t t = 0;
    if (negative)
        out[t++] = '-';
    if (exp10 < plain_from || exp10 >= plain_to) {
        out[t++] = digits[0];
        if (n > 1) {
            out[t++] = '.';
            memcpy(&out[t], &digits[1], n - 1);
            t += n - 1;
        }
        t += (size_t)sprintf(&out[t], "e%d", exp10);
    } else if (exp10 >= 0) {
        size_t whole = (size_t)exp10 + 1;
        for (size_t i = 0; i < whole; i++)
            out[t++] = i < n ? digits[i] : '0';
        out[t++] = '.'; /* a fraction, or ".0": never read as an integer */
        if (n > whole) {
            memcpy(&out[t], &digits[whole], n - whole);
            t += n - whole;
        } else {
            out[t++] = '0';
        }
    } else {
        out[t++] = '0';
        out[t++] = '.';
        for (int i = -1; i > exp10; i--)
            out[t++] = '0';
        memcpy(&out[t], digits, n);
        t += n;
    }
    out[t] = '\0';
    return t;
}

/* jansson's jsonp_dtostr at its default precision: "%.17g", then ".0" when the text would
 * read as an integer, and no '+' or leading zeros in the exponent. */
static void
dump_real(lh_buf *b, double v)
{
    char text[48];
    char digits[17];
    int x, n = 0;
    if (digits17(fabs(v), digits, &x)) {
        int last = 16; /* %g drops trailing zeros */
        while (last > 0 && digits[last] == '0')
            last--;
        n = (int)lh_json_decimal(text, v < 0, digits, (size_t)last + 1, x, -4, 17);
        put(b, text, (size_t)n);
        return;
    }
    n = snprintf(text, sizeof text - 2, "%.17g", v);
    if (n < 0 || (size_t)n >= sizeof text - 2)
        n = 0;
    if (strspn(text, "0123456789-") == (size_t)n) {
        memcpy(text + n, ".0", 3);
        n += 2;
    }
    char *e = strchr(text, 'e');
    if (e) {
        char *start = e + 1, *digits_at = e + 2;
        if (*start == '-')
            start++;
        while (*digits_at == '0')
            digits_at++;
        if (digits_at != start) {
            memmove(start, digits_at, (size_t)(text + n + 1 - digits_at));
            n -= (int)(digits_at - start);
        }
    }
    put(b, text, (size_t)n);
}

void
lh_json_dump(lh_buf *b, const json_t *j)
{
    size_t i, key_len;
    const char *key;
    json_t *v;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        put(b, "{", 1);
        i = 0;
        json_object_keylen_foreach((json_t *)j, key, key_len, v)
        {
            if (i++)
                put(b, ",", 1);
            dump_string(b, key, key_len);
            put(b, ":", 1);
            lh_json_dump(b, v);
        }
        put(b, "}", 1);
        break;
    case JSON_ARRAY:
        put(b, "[", 1);
        json_array_foreach(j, i, v)
        {
            if (i)
                put(b, ",", 1);
            lh_json_dump(b, v);
        }
        put(b, "]", 1);
        break;
    case JSON_STRING:
        dump_string(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        dump_integer(b, json_integer_value(j));
        break;
    case JSON_REAL:
        dump_real(b, json_real_value(j));
        break;
    case JSON_TRUE:
        put(b, "true", 4);
        break;
    case JSON_FALSE:
        put(b, "false", 5);
        break;
    case JSON_NULL:
        put(b, "null", 4);
        break;
    }
}
