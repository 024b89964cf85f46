/*
 * test_pg_binary.c — PostgreSQL's binary values decoded into a writer: every wire kind
 * round-trips through Parquet to the text DuckDB gives for it; numerics at the edges of
 * their precision and scale; infinities; values DuckDB cannot hold (422); values of the
 * wrong size and broken COPY streams (502).
 */
#include "ingest/ingest_int.h"
#include "testutil.h"
#include "testengine.h"

#include <math.h>

/* ---- encoders: what PostgreSQL's send functions produce ---------------------------------- */

typedef struct enc {
    char b[256];
    int len;
} enc;

static void
put16(enc *e, uint16_t v)
{
    e->b[e->len++] = (char)(v >> 8);
    e->b[e->len++] = (char)v;
}

static void
put32(enc *e, uint32_t v)
{
    put16(e, (uint16_t)(v >> 16));
    put16(e, (uint16_t)v);
}

static void
put64(enc *e, uint64_t v)
{
    put32(e, (uint32_t)(v >> 32));
    put32(e, (uint32_t)v);
}

/* numeric_send of a decimal literal ("-123.4500"): base-10000 groups aligned on the
 * decimal point, leading and trailing zero groups dropped, as PostgreSQL stores them. */
static enc
numeric(const char *text)
{
    bool neg = text[0] == '-';
    if (neg)
        text++;
    const char *dot = strchr(text, '.');
    size_t n_int = dot ? (size_t)(dot - text) : strlen(text);
    const char *frac = dot ? dot + 1 : "";
    size_t n_frac = strlen(frac);
    char digits[160] = {0};
    size_t pad = (4 - n_int % 4) % 4, n = 0;
    for (size_t i = 0; i < pad; i++)
        digits[n++] = '0';
    memcpy(digits + n, text, n_int);
    n += n_int;
    size_t int_groups = (pad + n_int) / 4;
    memcpy(digits + n, frac, n_frac);
    n += n_frac;
    while (n % 4)
        digits[n++] = '0';
    int groups[40], n_groups = (int)(n / 4), weight = (int)int_groups - 1;
    for (int g = 0; g < n_groups; g++)
        groups[g] = (digits[4 * g] - '0') * 1000 + (digits[4 * g + 1] - '0') * 100 +
                    (digits[4 * g + 2] - '0') * 10 + (digits[4 * g + 3] - '0');
    int first = 0, last = n_groups;
    while (first < last && groups[first] == 0)
        first++, weight--;
    while (last > first && groups[last - 1] == 0)
        last--;
    enc e = {0};
    put16(&e, (uint16_t)(last - first));
    put16(&e, (uint16_t)(first == last ? 0 : weight));
    put16(&e, neg ? 0x4000 : 0);
    put16(&e, (uint16_t)n_frac);
    for (int g = first; g < last; g++)
        put16(&e, (uint16_t)groups[g]);
    return e;
}

static enc
special_numeric(uint16_t sign)
{
    enc e = {0};
    put16(&e, 0);
    put16(&e, 0);
    put16(&e, sign);
    put16(&e, 0);
    return e;
}

static enc
i16(int16_t v)
{
    enc e = {0};
    put16(&e, (uint16_t)v);
    return e;
}

static enc
i32(int32_t v)
{
    enc e = {0};
    put32(&e, (uint32_t)v);
    return e;
}

static enc
i64(int64_t v)
{
    enc e = {0};
    put64(&e, (uint64_t)v);
    return e;
}

static enc
f64(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return i64((int64_t)bits);
}

static enc
bytes(const char *s, int len)
{
    enc e = {0};
    memcpy(e.b, s, (size_t)len);
    e.len = len;
    return e;
}

/* ---- the round trip ------------------------------------------------------------------------ */

enum { N_COLS = 10 };
static const char *const COLUMNS = "a DECIMAL(4,2), b DECIMAL(18,4), c DECIMAL(38,10), d DATE, "
                                   "e TIMESTAMP, f UUID, g VARCHAR, h DOUBLE, i SMALLINT, j BLOB";
static const lh_pg_field FIELDS[N_COLS] = {
    {"a", LH_PGW_NUMERIC, 4, 2}, {"b", LH_PGW_NUMERIC, 18, 4},  {"c", LH_PGW_NUMERIC, 38, 10},
    {"d", LH_PGW_DATE, 0, 0},    {"e", LH_PGW_TIMESTAMP, 0, 0}, {"f", LH_PGW_UUID, 0, 0},
    {"g", LH_PGW_TEXT, 0, 0},    {"h", LH_PGW_FLOAT8, 0, 0},    {"i", LH_PGW_INT2, 0, 0},
    {"j", LH_PGW_BYTEA, 0, 0},
};

typedef struct fixture {
    lh_test_engine t;
    char *dir;      /* t.dir */
    lh_engine *eng; /* t.eng */
    lh_writer *w;
} fixture;

/* An engine that may write in a scratch dir, and a writer of COLUMNS on it. */
static int
setup(void **state)
{
    fixture *f = lh_calloc(1, sizeof *f);
    lh_test_engine_open(&f->t, "pgbin");
    f->dir = f->t.dir;
    f->eng = f->t.eng;
    lh_err err;
    assert_int_equal(lh_writer_open(f->eng, COLUMNS, &f->w, &err), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;
    lh_writer_free(f->w);
    lh_test_engine_close(&f->t);
    free(f);
    return 0;
}

static void
put_ok(fixture *f, int col, const enc *e)
{
    lh_err err;
    int rc =
        lh_ingest__pg_put(f->w, (size_t)col, &FIELDS[col], e ? e->b : NULL, e ? e->len : 0, &err);
    if (rc != 0)
        fail_msg("column %s: %s (%s)", FIELDS[col].name, err.message, err.detail);
}

static void
put_fails(fixture *f, int col, const enc *e, int status, const char *detail_word)
{
    lh_err err;
    assert_int_not_equal(lh_ingest__pg_put(f->w, (size_t)col, &FIELDS[col], e->b, e->len, &err), 0);
    assert_int_equal(err.http_status, status);
    if (detail_word && !strstr(err.detail, detail_word))
        fail_msg("detail '%s' lacks '%s'", err.detail, detail_word);
}

/* Rows written, read back as DuckDB's text of each column. */
static json_t *
read_back(fixture *f, int64_t want_rows)
{
    lh_err err;
    char *path = lh_sprintf("%s/rows.parquet", f->dir);
    int64_t rows = 0;
    lh_writer_copy_opts opts = {.zstd_level = 1};
    assert_int_equal(lh_writer_finish_as(f->w, "*", path, &opts, &rows, &err), 0);
    assert_int_equal(rows, want_rows);
    char *sql = lh_sprintf("SELECT CAST(a AS VARCHAR) a, CAST(b AS VARCHAR) b, "
                           "CAST(c AS VARCHAR) c, CAST(d AS VARCHAR) d, CAST(e AS VARCHAR) e, "
                           "CAST(f AS VARCHAR) f, g, CAST(h AS VARCHAR) h, i, hex(j) j "
                           "FROM read_parquet('%s')",
                           path);
    json_t *out = NULL;
    assert_int_equal(lh_engine_rows(f->eng, sql, &out, &err), 0);
    unlink(path);
    free(path);
    free(sql);
    return out;
}

static void
assert_row(const json_t *rows, size_t r, const char *const want[N_COLS])
{
    const json_t *row = json_array_get(rows, r);
    for (int c = 0; c < N_COLS; c++) {
        const json_t *v = json_object_get(row, FIELDS[c].name);
        char got[200];
        if (json_is_string(v))
            snprintf(got, sizeof got, "%s", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(got, sizeof got, "%lld", (long long)json_integer_value(v));
        else
            snprintf(got, sizeof got, "NULL");
        if (strcmp(got, want[c]) != 0)
            fail_msg("row %zu column %s: got '%s', want '%s'", r, FIELDS[c].name, got, want[c]);
    }
}

static void
test_values_round_trip(void **state)
{
    fixture *f = *state;
    lh_err err;
    static const uint8_t uuid[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                                     0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
    static const uint8_t zero_uuid[16] = {0};
    static const uint8_t ff_uuid[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    enc v[N_COLS];
    v[0] = numeric("12.34");
    v[1] = numeric("-99999999999999.9999");
    v[2] = numeric("1234567890123456789012345678.0123456789");
    v[3] = i32(0);
    v[4] = i64(0);
    v[5] = bytes((const char *)uuid, 16);
    v[6] = bytes("h\xc3\xa9llo \xf0\x9f\x98\x80", 11);
    v[7] = f64(1.5);
    v[8] = i16(-32768);
    v[9] = bytes("\x00\xff", 2);
    for (int c = 0; c < N_COLS; c++)
        put_ok(f, c, &v[c]);
    assert_int_equal(lh_writer_next_row(f->w, &err), 0);

    v[0] = numeric("0");
    v[1] = numeric("0.0001");
    v[2] = numeric("-0.0000000001");
    v[3] = i32(INT32_MAX);
    v[4] = i64(INT64_MIN);
    v[5] = bytes((const char *)zero_uuid, 16);
    v[6] = bytes("", 0);
    v[7] = f64(-INFINITY);
    v[8] = i16(32767);
    v[9] = bytes("", 0);
    for (int c = 0; c < N_COLS; c++)
        put_ok(f, c, &v[c]);
    assert_int_equal(lh_writer_next_row(f->w, &err), 0);

    v[0] = numeric("-99.99");
    v[1] = numeric("100");                       /* one group, trailing zeros implied */
    v[2] = numeric("1000000000000000000000000"); /* 1e24: one group of weight 6 */
    v[3] = i32(INT32_MIN);
    v[4] = i64(-1);
    v[5] = bytes((const char *)ff_uuid, 16);
    for (int c = 0; c < 6; c++)
        put_ok(f, c, &v[c]);
    for (int c = 6; c < N_COLS; c++)
        put_ok(f, c, NULL);
    assert_int_equal(lh_writer_next_row(f->w, &err), 0);

    v[0] = numeric("-0.01");
    v[1] = numeric("99999999999999.9999");
    v[2] = numeric("-9999999999999999999999999999.9999999999");
    v[3] = i32(-730120); /* the day before 0001-01-01: 0001-12-31 BC */
    v[4] = i64(INT64_MAX);
    for (int c = 0; c < 5; c++)
        put_ok(f, c, &v[c]);
    for (int c = 5; c < N_COLS; c++)
        put_ok(f, c, NULL);
    assert_int_equal(lh_writer_next_row(f->w, &err), 0);

    json_t *rows = read_back(f, 4);
    assert_int_equal(json_array_size(rows), 4);
    const char *row0[N_COLS] = {"12.34",
                                "-99999999999999.9999",
                                "1234567890123456789012345678.0123456789",
                                "2000-01-01",
                                "2000-01-01 00:00:00",
                                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                                "h\xc3\xa9llo \xf0\x9f\x98\x80",
                                "1.5",
                                "-32768",
                                "00FF"};
    const char *row1[N_COLS] = {"0.00",     "0.0001",    "-0.0000000001",
                                "infinity", "-infinity", "00000000-0000-0000-0000-000000000000",
                                "",         "-inf",      "32767",
                                ""};
    const char *row2[N_COLS] = {"-99.99",
                                "100.0000",
                                "1000000000000000000000000.0000000000",
                                "-infinity",
                                "1999-12-31 23:59:59.999999",
                                "ffffffff-ffff-ffff-ffff-ffffffffffff",
                                "NULL",
                                "NULL",
                                "NULL",
                                "NULL"};
    const char *row3[N_COLS] = {"-0.01",
                                "99999999999999.9999",
                                "-9999999999999999999999999999.9999999999",
                                "0001-12-31 (BC)",
                                "infinity",
                                "NULL",
                                "NULL",
                                "NULL",
                                "NULL",
                                "NULL"};
    assert_row(rows, 0, row0);
    assert_row(rows, 1, row1);
    assert_row(rows, 2, row2);
    assert_row(rows, 3, row3);
    json_decref(rows);
}

static void
test_values_refused(void **state)
{
    fixture *f = *state;
    enc nan = special_numeric(0xC000), inf = special_numeric(0xD000);
    put_fails(f, 0, &nan, 422, "\"a\"");
    put_fails(f, 0, &inf, 422, "NaN");
    enc big = numeric("123.45"), fine = numeric("1.234");
    put_fails(f, 0, &big, 422, "precision");
    put_fails(f, 0, &fine, 422, "scale");
    enc over = numeric("123456789012345678901234567890.0000000001"); /* 40 digits in (38,10) */
    put_fails(f, 2, &over, 422, "precision");
    enc huge = numeric("1"
                       "0000000000"
                       "0000000000"
                       "0000000000"
                       "0000000000"
                       "0000000000");
    put_fails(f, 2, &huge, 422, "precision");

    enc late = i64(INT64_MAX - 1); /* past DuckDB's last timestamp once moved to 1970 */
    put_fails(f, 4, &late, 422, "timestamp");
    enc early = i64(INT64_MIN + 1); /* the earliest PostgreSQL can send: DuckDB holds it */
    put_ok(f, 4, &early);
    enc far_day = i32(INT32_MAX - 5); /* a date the shift to 1970 would overflow */
    put_fails(f, 3, &far_day, 422, "date");
    enc odd_sign = special_numeric(0x1234); /* no sign PostgreSQL writes */
    put_fails(f, 0, &odd_sign, 502, NULL);
    enc zero_far = special_numeric(0); /* zero with the largest weight: no long loop */
    zero_far.b[2] = 0x7f, zero_far.b[3] = (char)0xff;
    put_ok(f, 0, &zero_far);

    static const char *const bad_utf8[] = {"\xc3\x28",         "\xc0\xaf",    "\xed\xa0\x80",
                                           "\xf4\x90\x80\x80", "abc\xe2\x82", "\xff"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof *bad_utf8; i++) {
        enc t = bytes(bad_utf8[i], (int)strlen(bad_utf8[i]));
        put_fails(f, 6, &t, 422, "UTF-8");
    }

    enc short_int = bytes("\x00\x01\x02", 3);
    put_fails(f, 8, &short_int, 502, "\"i\"");
    put_fails(f, 3, &short_int, 502, NULL);
    put_fails(f, 5, &short_int, 502, NULL);
    enc numeric_cut = numeric("12.34");
    numeric_cut.len -= 1;
    put_fails(f, 0, &numeric_cut, 502, NULL);
}

/* ---- COPY streams ------------------------------------------------------------------------ */

typedef struct copy_ctx {
    lh_writer *w;
    int rows;
    size_t bytes;
} copy_ctx;

static lh_writer *
current(void *ctx)
{
    return ((copy_ctx *)ctx)->w;
}

static int
row_done(void *ctx, size_t n, lh_err *err)
{
    copy_ctx *c = ctx;
    c->rows++;
    c->bytes += n;
    return lh_writer_next_row(c->w, err);
}

static enc
copy_header(void)
{
    enc e = bytes("PGCOPY\n\377\r\n", 11);
    put32(&e, 0);
    put32(&e, 4); /* a header extension of four bytes, to be skipped */
    put32(&e, 0xdeadbeef);
    return e;
}

static void
copy_tuple(enc *e, int32_t a, const char *text)
{
    put16(e, 2);
    put32(e, 4);
    put32(e, (uint32_t)a);
    if (!text) {
        put32(e, UINT32_MAX); /* -1: NULL */
        return;
    }
    put32(e, (uint32_t)strlen(text));
    memcpy(e->b + e->len, text, strlen(text));
    e->len += (int)strlen(text);
}

static void
test_copy_stream(void **state)
{
    fixture *f = *state;
    lh_err err;
    static const lh_pg_field fields[2] = {{"n", LH_PGW_INT4, 0, 0}, {"t", LH_PGW_TEXT, 0, 0}};
    copy_ctx ctx = {0};
    assert_int_equal(lh_writer_open(f->eng, "n INTEGER, t VARCHAR", &ctx.w, &err), 0);
    lh_pg_copy copy = {
        .fields = fields, .n_fields = 2, .writer = current, .row_done = row_done, .ctx = &ctx};

    enc first = copy_header(); /* the header comes with the first row */
    copy_tuple(&first, 1, "one");
    assert_int_equal(lh_ingest__pg_copy_message(&copy, first.b, first.len, &err), 0);
    enc two = {0}; /* two rows in one message, one of them with a NULL */
    copy_tuple(&two, 2, NULL);
    copy_tuple(&two, 3, "three");
    assert_int_equal(lh_ingest__pg_copy_message(&copy, two.b, two.len, &err), 0);
    enc trailer = i16(-1);
    assert_int_equal(lh_ingest__pg_copy_message(&copy, trailer.b, trailer.len, &err), 0);
    assert_true(copy.ended);
    assert_int_equal(ctx.rows, 3);
    assert_int_equal(ctx.bytes, (size_t)(2 + 8 + 7) + (2 + 8 + 4) + (2 + 8 + 9));

    char *path = lh_sprintf("%s/copy.parquet", f->dir);
    lh_writer_copy_opts opts = {0};
    assert_int_equal(
        lh_writer_finish_as(ctx.w, "n, coalesce(t, '-') AS t", path, &opts, NULL, &err), 0);
    char *sql = lh_sprintf("SELECT string_agg(n || t, ',' ORDER BY n) AS s FROM '%s'", path);
    json_t *rows = NULL;
    assert_int_equal(lh_engine_rows(f->eng, sql, &rows, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "s")),
                        "1one,2-,3three");
    json_decref(rows);
    free(sql);
    unlink(path);
    free(path);

    /* broken streams: a bad signature, another field count, a field past the message */
    lh_pg_copy fresh = copy;
    fresh.header_seen = false;
    enc bad = bytes("PGCOPY\n\377\r\t", 11);
    put32(&bad, 0);
    put32(&bad, 0);
    assert_int_equal(lh_ingest__pg_copy_message(&fresh, bad.b, bad.len, &err), LH_EIO);
    assert_int_equal(err.http_status, 502);
    enc three = {0};
    put16(&three, 3);
    assert_int_equal(lh_ingest__pg_copy_message(&copy, three.b, three.len, &err), LH_EIO);
    enc cut = {0};
    copy_tuple(&cut, 4, "four");
    cut.len -= 2;
    assert_int_equal(lh_ingest__pg_copy_message(&copy, cut.b, cut.len, &err), LH_EIO);
    enc huge_ext = bytes("PGCOPY\n\377\r\n", 11);
    put32(&huge_ext, 0);
    put32(&huge_ext, 0x7fffffff);
    assert_int_equal(lh_ingest__pg_copy_message(&fresh, huge_ext.b, huge_ext.len, &err), LH_EIO);

    lh_writer_free(ctx.w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_values_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_stream, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
