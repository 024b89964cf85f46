/*
 * test_embedder.c — text chunking (sizes, overlap, whitespace and UTF-8 boundaries, every
 * byte covered), the embedding cache (hits, byte bound and eviction, same answers as a
 * fresh embedding) and the engine's typed Parquet round trip that embeddings files use.
 */
#include "testutil.h"
#include "vector/vector.h"
#include "testengine.h"

typedef struct chunks {
    size_t off[256], len[256], n;
} chunks;

static void
collect(void *ctx, size_t offset, size_t len)
{
    chunks *c = ctx;
    assert_true(c->n < 256);
    c->off[c->n] = offset;
    c->len[c->n++] = len;
}

static void
test_chunk_short_and_blank(void **state)
{
    (void)state;
    chunks c = {0};
    lh_chunk_text("  hello world  ", 15, 100, 10, collect, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.off[0], 2);
    assert_int_equal(c.len[0], 11);
    chunks blank = {0};
    lh_chunk_text(" \n\t ", 4, 100, 10, collect, &blank);
    assert_int_equal(blank.n, 0);
}

static void
test_chunk_long(void **state)
{
    (void)state;
    /* 200 words of 4 letters and a space: chunks of at most 64 bytes, cut at spaces,
     * overlapping, together covering every word */
    char text[1001];
    for (int i = 0; i < 200; i++)
        memcpy(text + 5 * i, "word ", 5);
    text[1000] = '\0';
    chunks c = {0};
    lh_chunk_text(text, 1000, 64, 16, collect, &c);
    assert_true(c.n > 1000 / 64);
    size_t covered = 0;
    for (size_t i = 0; i < c.n; i++) {
        assert_true(c.len[i] <= 64);
        assert_true(c.len[i] > 0);
        assert_true(text[c.off[i]] != ' ');                /* starts at a word */
        assert_true(text[c.off[i] + c.len[i] - 1] != ' '); /* ends at one */
        if (i > 0) {
            assert_true(c.off[i] > c.off[i - 1]);                    /* progress */
            assert_true(c.off[i] < c.off[i - 1] + c.len[i - 1] + 1); /* overlap or touch */
        }
        if (c.off[i] + c.len[i] > covered)
            covered = c.off[i] + c.len[i];
    }
    assert_int_equal(covered, 999); /* the last word, without the trailing space */
}

static void
test_chunk_utf8_and_no_spaces(void **state)
{
    (void)state;
    /* 100 two-byte characters and no whitespace: cuts never split a character */
    char text[201];
    for (int i = 0; i < 100; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[200] = '\0';
    chunks c = {0};
    lh_chunk_text(text, 200, 65, 10, collect, &c);
    assert_true(c.n >= 3);
    for (size_t i = 0; i < c.n; i++) {
        assert_int_equal(c.off[i] % 2, 0);
        assert_int_equal(c.len[i] % 2, 0);
        assert_true(c.len[i] <= 65);
    }
    assert_int_equal(c.off[c.n - 1] + c.len[c.n - 1], 200);
}

static void
test_embed_cache(void **state)
{
    (void)state;
    lh_config *cfg = NULL;
    lh_err err;
    assert_int_equal(lh_config_load(NULL, NULL, &cfg, &err), 0);
    lh_embed_cache_configure(3 * (LH_EMBED_BUILTIN_DIM * 4 + 128)); /* room for about 3 */
    lh_embedder *e = NULL;
    assert_int_equal(lh_embedder_open(cfg, "builtin", &e, &err), 0);
    assert_string_equal(lh_embedder_version(e), "builtin-v1");
    const char *texts[] = {"alpha beta", "gamma delta", "alpha beta"};
    size_t lens[] = {10, 11, 10};
    float *v = NULL;
    uint32_t dim = 0;
    size_t hits = 0;
    assert_int_equal(lh_embedder_embed(e, texts, lens, 3, &v, &dim, &hits, &err), 0);
    assert_int_equal(dim, LH_EMBED_BUILTIN_DIM);
    assert_int_equal(hits, 0); /* looked up before any was embedded */
    float fresh[LH_EMBED_BUILTIN_DIM];
    lh_embed_builtin("alpha beta", 10, fresh);
    assert_memory_equal(v, fresh, sizeof fresh);
    assert_memory_equal(v + 2 * dim, fresh, sizeof fresh);
    free(v);
    assert_int_equal(lh_embedder_embed(e, texts, lens, 2, &v, &dim, &hits, &err), 0);
    assert_int_equal(hits, 2);
    assert_memory_equal(v, fresh, sizeof fresh);
    free(v);
    /* more texts than the bound holds: the oldest go, the byte count stays bounded */
    const char *more[] = {"one", "two", "three", "four", "five"};
    size_t more_lens[] = {3, 3, 5, 4, 4};
    assert_int_equal(lh_embedder_embed(e, more, more_lens, 5, &v, &dim, NULL, &err), 0);
    free(v);
    json_t *stats = lh_embed_cache_stats();
    assert_true(json_integer_value(json_object_get(stats, "bytes")) <=
                json_integer_value(json_object_get(stats, "max_bytes")));
    assert_true(json_integer_value(json_object_get(stats, "evictions")) >= 2);
    json_decref(stats);
    /* unknown models are a 400 naming the choices */
    lh_embedder *bad = NULL;
    assert_int_equal(lh_embedder_open(cfg, "gpt-17", &bad, &err), LH_EINVAL);
    assert_int_equal(err.http_status, 400);
    assert_null(bad);
    lh_embedder_free(e);
    lh_embed_cache_configure(0);
    lh_config_free(cfg);
}

typedef struct seen {
    size_t rows;
    bool ok;
} seen;

static int
check_batch(void *ctx, const lh_batch *b)
{
    seen *s = ctx;
    for (size_t i = 0; i < lh_batch_rows(b); i++) {
        size_t len = 0, dim = 0;
        int64_t pos = -1;
        const char *id = lh_batch_str(b, 1, i, &len);
        const float *v = lh_batch_floats(b, 2, i, &dim);
        assert_true(lh_batch_int(b, 0, i, &pos));
        char want[32];
        snprintf(want, sizeof want, "doc-%lld", (long long)pos);
        s->ok = s->ok && pos == (int64_t)s->rows && id && len == strlen(want) &&
                memcmp(id, want, len) == 0 && dim == 3 && v[0] == (float)pos && v[2] == 0.5f;
        /* NULL text reads as NULL */
        s->ok = s->ok && (pos % 2 == 1) == (lh_batch_str(b, 3, i, &len) == NULL);
        s->rows++;
    }
    return 0;
}

static void
test_writer_scan_round_trip(void **state)
{
    (void)state;
    lh_test_engine t;
    lh_test_engine_open(&t, "writer");
    char *dir = t.dir;
    lh_engine *eng = t.eng;
    lh_err err;
    lh_writer *w = NULL;
    assert_int_equal(
        lh_writer_open(eng, "position INTEGER, id VARCHAR, v FLOAT[3], t VARCHAR", &w, &err), 0);
    enum { ROWS = 5000 }; /* more than one chunk */
    for (int i = 0; i < ROWS; i++) {
        char id[32];
        snprintf(id, sizeof id, "doc-%d", i);
        float v[3] = {(float)i, (float)(i % 7), 0.5f};
        lh_writer_int(w, 0, i);
        lh_writer_str(w, 1, id, strlen(id));
        lh_writer_floats(w, 2, v, 3);
        lh_writer_str(w, 3, i % 2 ? NULL : "text", 4);
        assert_int_equal(lh_writer_next_row(w, &err), 0);
    }
    char *path = lh_sprintf("%s/rows.parquet", dir);
    int64_t rows = 0;
    assert_int_equal(lh_writer_finish(w, path, &rows, &err), 0);
    assert_int_equal(rows, ROWS);
    lh_writer_free(w);
    char *sql = lh_sprintf("SELECT position, id, CAST(v AS FLOAT[]), t FROM read_parquet('%s') "
                           "ORDER BY position",
                           path);
    seen s = {0, true};
    lh_scan_opts so = {.sql = sql};
    assert_int_equal(lh_engine_scan(eng, &so, check_batch, &s, &err), 0);
    assert_int_equal(s.rows, ROWS);
    assert_true(s.ok);
    /* a scan is admitted like any user query: no writes, one statement */
    lh_scan_opts user = {.sql = "COPY (SELECT 1) TO '/tmp/x.csv'"};
    assert_int_not_equal(lh_engine_scan(eng, &user, check_batch, &s, &err), 0);
    assert_true(err.http_status == 403 || err.http_status == 400);
    lh_scan_opts two = {.sql = "SELECT 1; SELECT 2"};
    assert_int_equal(lh_engine_scan(eng, &two, check_batch, &s, &err), LH_EINVAL);
    free(sql);
    unlink(path);
    free(path);
    lh_test_engine_close(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_short_and_blank),    cmocka_unit_test(test_chunk_long),
        cmocka_unit_test(test_chunk_utf8_and_no_spaces), cmocka_unit_test(test_embed_cache),
        cmocka_unit_test(test_writer_scan_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
