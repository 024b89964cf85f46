/*
 * pg_binary.c — PostgreSQL's binary wire format for values, decoded straight into a
 * writer's typed columns: the rows of COPY ... TO STDOUT (FORMAT binary) and of a cursor
 * FETCH asked for binary results. No value goes through text on either side, which is
 * cheaper for the server (no output functions for numbers and timestamps) and for us
 * (no CSV to parse). The formats are each type's send function in PostgreSQL's source
 * (int2send, numeric_send, timestamp_send, uuid_send, ...), all big-endian:
 *
 *   type                   bytes  value
 *   bool                   1      0 or 1
 *   int2 / int4 / int8     2/4/8  two's complement
 *   oid                    4      unsigned
 *   float4 / float8        4/8    IEEE 754
 *   numeric                8+2n   int16 ndigits, int16 weight, uint16 sign, int16 dscale,
 *                                 then ndigits base-10000 digits; value =
 *                                 sum(digit[i] * 10000^(weight - i)); sign 0x4000 is
 *                                 negative, 0xC000 NaN, 0xD000/0xF000 +/-Infinity
 *   date                   4      days since 2000-01-01; INT32_MAX/MIN are +/-infinity
 *   time                   8      microseconds since midnight
 *   timestamp[tz]          8      microseconds since 2000-01-01 (UTC for timestamptz);
 *                                 INT64_MAX/MIN are +/-infinity
 *   uuid                   16     the bytes in RFC 4122 order
 *   text, varchar, bpchar, name, enum labels
 *                          n      the characters, in the client encoding (UTF-8)
 *   bytea                  n      the bytes
 *
 * A COPY binary stream is an 11-byte signature, an int32 of flags and an int32-sized
 * header extension, then per row an int16 field count and per field an int32 length
 * (-1: NULL) and the value; a field count of -1 ends it. The server sends each row in
 * its own message, the header with the first.
 *
 * Values DuckDB cannot hold faithfully (a NaN in a DECIMAL column, a timestamp past
 * DuckDB's range, text that is not UTF-8) are a 422 naming the column; a value whose
 * size does not fit its type is a broken stream (502). Thread safety: none needed.
 */
#include "ingest/ingest_int.h"

#include <string.h>

__extension__ typedef __int128 i128;

#define PG_EPOCH_DAYS 10957                  /* 2000-01-01 in days since 1970-01-01 */
#define PG_EPOCH_US INT64_C(946684800000000) /* the same in microseconds */

static inline uint16_t
be16(const char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return __builtin_bswap16(v);
}

static inline uint32_t
be32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

static inline uint64_t
be64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static int
unconvertible(const lh_pg_field *f, lh_err *err, const char *why)
{
    lh_err_set(err, LH_EINVAL, 422, "unconvertible_value",
               "a source value has no faithful DuckDB form");
    lh_err_detail(err, "column \"%s\": %s", f->name, why);
    lh_err_hint(err, "cast the column in a query (e.g. col::text) and ingest the query");
    return LH_EINVAL;
}

static int
malformed(const lh_pg_field *f, lh_err *err)
{
    lh_err_set(err, LH_EIO, 502, "source_error", "PostgreSQL sent a value that could not be read");
    if (f)
        lh_err_detail(err, "column \"%s\": a value of the wrong size for its type", f->name);
    return LH_EIO;
}

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF). Mostly ASCII in practice, which is checked eight bytes at a time. */
static bool
utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t word;
            memcpy(&word, s + i, 8);
            if ((word & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
            n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            n = 4, cp = c & 0x07, min = 0x10000;
        else
            return false;
        if (i + n > len)
            return false;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n;
    }
    return true;
}

/* A numeric as the unscaled integer of DECIMAL(precision, scale). */
static int
put_numeric(lh_writer *w, size_t col, const lh_pg_field *f, const char *v, int len, lh_err *err)
{
    if (len < 8)
        return malformed(f, err);
    int ndigits = (int16_t)be16(v), weight = (int16_t)be16(v + 2);
    uint16_t sign = be16(v + 4);
    if (ndigits < 0 || len != 8 + 2 * ndigits)
        return malformed(f, err);
    if (sign == 0xC000 || sign == 0xD000 || sign == 0xF000)
        return unconvertible(f, err, "NaN and Infinity have no DECIMAL form");
    if (sign != 0x0000 && sign != 0x4000)
        return malformed(f, err);
    if (ndigits == 0) { /* zero, whatever its weight */
        lh_writer_int(w, col, 0);
        return 0;
    }
    /* Horner over the decimal digits down to the column's scale: the digit d of the
     * base-10000 group i, k places from its left, stands for 10^(4 * (weight - i) + 3 - k).
     * Every step stays below 10^precision <= 10^38, so nothing overflows. */
    i128 limit = 1, acc = 0;
    for (int i = 0; i < f->precision; i++)
        limit *= 10;
    int lowest = 4 * (weight + 1); /* decimal exponent of the last digit taken */
    for (int i = 0; i < ndigits; i++) {
        int group = be16(v + 8 + 2 * i);
        if (group > 9999)
            return malformed(f, err);
        for (int k = 0, div = 1000; k < 4; k++, div /= 10) {
            int digit = group / div % 10, exponent = 4 * (weight - i) + 3 - k;
            if (exponent < -f->scale) {
                if (digit != 0)
                    return unconvertible(f, err, "more decimal places than the column's scale");
                continue;
            }
            if (acc > (limit - 1 - digit) / 10)
                return unconvertible(f, err, "more digits than the column's precision");
            acc = acc * 10 + digit;
            lowest = exponent;
        }
    }
    for (; lowest > -f->scale; lowest--) { /* trailing zeros PostgreSQL does not send */
        if (acc > (limit - 1) / 10)
            return unconvertible(f, err, "more digits than the column's precision");
        acc *= 10;
    }
    if (sign == 0x4000)
        acc = -acc;
    lh_writer_int128(w, col, (int64_t)(acc >> 64), (uint64_t)acc);
    return 0;
}

/* A date: days since 2000-01-01, with PostgreSQL's infinities as DuckDB's. */
static int
put_date(lh_writer *w, size_t col, const lh_pg_field *f, const char *v, int len, lh_err *err)
{
    if (len != 4)
        return malformed(f, err);
    int32_t days = (int32_t)be32(v);
    if (days == INT32_MAX || days == INT32_MIN) {
        lh_writer_date(w, col, days == INT32_MAX ? INT32_MAX : -INT32_MAX);
        return 0;
    }
    /* PostgreSQL's dates end long before this; a server that sends more is refused */
    if (days >= INT32_MAX - PG_EPOCH_DAYS)
        return unconvertible(f, err, "a date past DuckDB's range");
    lh_writer_date(w, col, days + PG_EPOCH_DAYS);
    return 0;
}

/* A timestamp: microseconds since 2000-01-01, with PostgreSQL's infinities as DuckDB's. */
static int
put_timestamp(lh_writer *w, size_t col, const lh_pg_field *f, const char *v, int len, lh_err *err)
{
    if (len != 8)
        return malformed(f, err);
    int64_t us = (int64_t)be64(v), unix_us;
    if (us == INT64_MAX || us == INT64_MIN) {
        lh_writer_micros(w, col, us == INT64_MAX ? INT64_MAX : -INT64_MAX);
        return 0;
    }
    /* the shift cannot take a value below DuckDB's first timestamp (290309 BC), but
     * it can take one past its last */
    if (__builtin_add_overflow(us, PG_EPOCH_US, &unix_us) || unix_us == INT64_MAX)
        return unconvertible(f, err, "a timestamp past the year 294246");
    lh_writer_micros(w, col, unix_us);
    return 0;
}

int
lh_ingest__pg_put(lh_writer *w, size_t col, const lh_pg_field *f, const char *v, int len,
                  lh_err *err)
{
    if (v == NULL) {
        lh_writer_null(w, col);
        return 0;
    }
    switch (f->wire) {
    case LH_PGW_TEXT:
        if (!utf8_valid((const unsigned char *)v, (size_t)len))
            return unconvertible(f, err, "text that is not valid UTF-8");
        lh_writer_str(w, col, v, (size_t)len);
        return 0;
    case LH_PGW_BYTEA:
        lh_writer_str(w, col, v, (size_t)len);
        return 0;
    case LH_PGW_BOOL:
        if (len != 1)
            return malformed(f, err);
        lh_writer_bool(w, col, v[0] != 0);
        return 0;
    case LH_PGW_INT2:
        if (len != 2)
            return malformed(f, err);
        lh_writer_int(w, col, (int16_t)be16(v));
        return 0;
    case LH_PGW_INT4:
        if (len != 4)
            return malformed(f, err);
        lh_writer_int(w, col, (int32_t)be32(v));
        return 0;
    case LH_PGW_OID:
        if (len != 4)
            return malformed(f, err);
        lh_writer_int(w, col, (int64_t)be32(v));
        return 0;
    case LH_PGW_INT8:
        if (len != 8)
            return malformed(f, err);
        lh_writer_int(w, col, (int64_t)be64(v));
        return 0;
    case LH_PGW_FLOAT4: {
        if (len != 4)
            return malformed(f, err);
        uint32_t bits = be32(v);
        float x;
        memcpy(&x, &bits, sizeof x);
        lh_writer_double(w, col, x);
        return 0;
    }
    case LH_PGW_FLOAT8: {
        if (len != 8)
            return malformed(f, err);
        uint64_t bits = be64(v);
        double x;
        memcpy(&x, &bits, sizeof x);
        lh_writer_double(w, col, x);
        return 0;
    }
    case LH_PGW_NUMERIC:
        return put_numeric(w, col, f, v, len, err);
    case LH_PGW_DATE:
        return put_date(w, col, f, v, len, err);
    case LH_PGW_TIME:
        if (len != 8)
            return malformed(f, err);
        lh_writer_micros(w, col, (int64_t)be64(v));
        return 0;
    case LH_PGW_TIMESTAMP:
        return put_timestamp(w, col, f, v, len, err);
    case LH_PGW_UUID:
        if (len != 16)
            return malformed(f, err);
        lh_writer_uuid(w, col, (const uint8_t *)v);
        return 0;
    }
    return malformed(f, err);
}

int
lh_ingest__pg_copy_message(lh_pg_copy *c, const char *msg, int len, lh_err *err)
{
    static const char signature[11] = "PGCOPY\n\377\r\n";
    const char *p = msg, *end = msg + len;
    if (!c->header_seen) {
        if (len < 19 || memcmp(p, signature, sizeof signature) != 0)
            return malformed(NULL, err);
        uint32_t ext = be32(p + 15);
        if (ext > (uint32_t)(len - 19))
            return malformed(NULL, err);
        p += 19 + ext;
        c->header_seen = true;
    }
    while (p < end) {
        const char *row = p;
        if (end - p < 2)
            return malformed(NULL, err);
        int n_fields = (int16_t)be16(p);
        p += 2;
        if (n_fields == -1) {
            c->ended = true;
            return 0;
        }
        if (n_fields != c->n_fields)
            return malformed(NULL, err);
        lh_writer *w = c->writer(c->ctx); /* may change between rows (a new batch) */
        for (int i = 0; i < n_fields; i++) {
            if (end - p < 4)
                return malformed(&c->fields[i], err);
            int32_t flen = (int32_t)be32(p);
            p += 4;
            if (flen < -1 || flen > end - p)
                return malformed(&c->fields[i], err);
            int rc = lh_ingest__pg_put(w, (size_t)i, &c->fields[i], flen < 0 ? NULL : p,
                                       flen < 0 ? 0 : flen, err);
            if (rc != 0)
                return rc;
            if (flen > 0)
                p += flen;
        }
        int rc = c->row_done(c->ctx, (size_t)(p - row), err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
