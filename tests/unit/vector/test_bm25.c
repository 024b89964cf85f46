/*
 * test_bm25.c — the text index of a generation: how text is split into words (ASCII
 * folded, UTF-8 kept inside words, long runs dropped), BM25 scores against the formula
 * computed here independently, filters, k and ties, and the Parquet file's round trip
 * (the same answers after reading it back; a file that does not add up is refused).
 */
#include "testutil.h"
#include "vector/vector_int.h"
#include "testengine.h"

#include <math.h>

typedef struct words {
    char w[32][80];
    size_t n;
} words;

static int
collect(void *ctx, const char *word, size_t len)
{
    words *ws = ctx;
    assert_true(ws->n < 32 && len < 80);
    memcpy(ws->w[ws->n], word, len);
    ws->w[ws->n++][len] = '\0';
    return 0;
}

static words
split(const char *text)
{
    words ws;
    memset(&ws, 0, sizeof ws);
    assert_int_equal(lh_bm25__words(text, strlen(text), collect, &ws), 0);
    return ws;
}

static void
test_words(void **state)
{
    (void)state;
    words ws = split("Hello, World! caf\xc3\xa9-au-lait x2 foo_bar \xc3\x80"
                     "B C++/SQL 2024-01-31");
    const char *want[] = {"hello",
                          "world",
                          "caf\xc3\xa9",
                          "au",
                          "lait",
                          "x2",
                          "foo",
                          "bar",
                          "\xc3\x80"
                          "b",
                          "c",
                          "sql",
                          "2024",
                          "01",
                          "31"};
    assert_int_equal(ws.n, sizeof want / sizeof *want);
    for (size_t i = 0; i < ws.n; i++)
        assert_string_equal(ws.w[i], want[i]);
    /* only separators: no words */
    assert_int_equal(split("  ,.;!?-- \t\n").n, 0);
    assert_false(lh_bm25__has_words("--- !!", 6));
    assert_true(lh_bm25__has_words("-- a --", 7));
    assert_true(lh_bm25__has_words("\xc3\xa9", 2));
    /* a run of LH_BM25_WORD_MAX bytes is a word; one byte more is dropped */
    char text[200];
    memset(text, 'a', LH_BM25_WORD_MAX);
    strcpy(text + LH_BM25_WORD_MAX, " b ");
    memset(text + LH_BM25_WORD_MAX + 3, 'c', LH_BM25_WORD_MAX + 1);
    strcpy(text + 2 * LH_BM25_WORD_MAX + 4, " d");
    ws = split(text);
    assert_int_equal(ws.n, 3);
    assert_int_equal(strlen(ws.w[0]), LH_BM25_WORD_MAX);
    assert_string_equal(ws.w[1], "b");
    assert_string_equal(ws.w[2], "d");
}

static const char *const DOCS[] = {
    "Giraffe keeper at the city zoo",      "zoo zoo zoo",
    "Data engineer: Spark, Kafka and SQL", "",
    "Senior data engineer with Spark",     "Senior data engineer with Spark",
};
#define N_DOCS (sizeof DOCS / sizeof *DOCS)

static lh_bm25 *
build(const char *const *docs, size_t n)
{
    lh_err err;
    lh_bm25_builder b;
    lh_bm25 *bm = NULL;
    assert_int_equal(lh_bm25__builder_init(&b, n, &err), 0);
    for (size_t p = 0; p < n; p++)
        assert_int_equal(lh_bm25__add_text(&b, (uint32_t)p, docs[p], strlen(docs[p])), 0);
    assert_int_equal(lh_bm25__finish(&b, "build", &bm, &err), 0);
    lh_bm25__builder_free(&b);
    return bm;
}

/* The score of a document for query words, straight from the formula. */
static double
expected(const char *const *docs, size_t n, const char *const *query, size_t n_query, size_t doc)
{
    double total = 0;
    size_t lens[16];
    for (size_t p = 0; p < n; p++)
        lens[p] = split(docs[p]).n;
    for (size_t p = 0; p < n; p++)
        total += (double)lens[p];
    double avg = total / (double)n, score = 0;
    for (size_t q = 0; q < n_query; q++) {
        size_t df = 0, tf = 0;
        for (size_t p = 0; p < n; p++) {
            words ws = split(docs[p]);
            size_t here = 0;
            for (size_t i = 0; i < ws.n; i++)
                here += strcmp(ws.w[i], query[q]) == 0;
            df += here > 0;
            if (p == doc)
                tf = here;
        }
        if (tf == 0)
            continue;
        double idf = log(1 + ((double)n - (double)df + 0.5) / ((double)df + 0.5));
        score += idf * (double)tf * 2.2 /
                 ((double)tf + 1.2 * (1 - 0.75 + 0.75 * (double)lens[doc] / avg));
    }
    return score;
}

static void
test_scores(void **state)
{
    (void)state;
    lh_bm25 *bm = build(DOCS, N_DOCS);
    assert_int_equal(bm->n, N_DOCS);
    assert_int_equal(bm->lengths[0], 6);
    assert_int_equal(bm->lengths[3], 0);
    lh_scored out[8];
    size_t n = 0;
    json_t *terms = NULL;
    lh_err err;
    const char *query = "ZOO giraffe, zoo!";
    assert_int_equal(lh_bm25__search(bm, query, strlen(query), NULL, 8, out, &n, &terms, &err), 0);
    /* distinct words once each, with how many positions hold them */
    assert_int_equal(json_array_size(terms), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(terms, 0), "term")),
                        "zoo");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(terms, 0), "documents")), 2);
    json_decref(terms);
    const char *q[] = {"zoo", "giraffe"};
    assert_int_equal(n, 2);
    /* the keeper holds the rare word: above the document that only repeats the common one */
    assert_int_equal(out[0].id, 0);
    assert_int_equal(out[1].id, 1);
    assert_float_equal(out[0].score, expected(DOCS, N_DOCS, q, 2, 0), 1e-5);
    assert_float_equal(out[1].score, expected(DOCS, N_DOCS, q, 2, 1), 1e-5);
    assert_true(expected(DOCS, N_DOCS, q, 2, 0) > expected(DOCS, N_DOCS, q, 2, 1));

    const char *q2[] = {"data", "engineer", "spark", "kafka"};
    const char *query2 = "data engineer spark kafka";
    assert_int_equal(lh_bm25__search(bm, query2, strlen(query2), NULL, 8, out, &n, NULL, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].id, 2); /* the only one with kafka */
    for (size_t i = 0; i < n; i++)
        assert_float_equal(out[i].score, expected(DOCS, N_DOCS, q2, 4, out[i].id), 1e-5);
    /* equal documents tie: the lower position first */
    assert_int_equal(out[1].id, 4);
    assert_int_equal(out[2].id, 5);
    assert_float_equal(out[1].score, out[2].score, 0);
    lh_bm25__release(bm);
}

static void
test_filter_k_and_nothing(void **state)
{
    (void)state;
    lh_bm25 *bm = build(DOCS, N_DOCS);
    lh_scored out[8];
    size_t n = 0;
    lh_err err;
    const char *query = "senior data engineer spark";
    /* k = 1: the best only */
    assert_int_equal(lh_bm25__search(bm, query, strlen(query), NULL, 1, out, &n, NULL, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 4);
    /* a filter that allows positions 1, 2 and 5 */
    uint64_t bits[2] = {(1u << 1) | (1u << 2) | (1u << 5), 0};
    assert_int_equal(lh_bm25__search(bm, query, strlen(query), bits, 8, out, &n, NULL, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0].id, 5);
    assert_int_equal(out[1].id, 2);
    /* words no position holds, and a query without words: no hits */
    assert_int_equal(lh_bm25__search(bm, "okapi", 5, NULL, 8, out, &n, NULL, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(lh_bm25__search(bm, "?!", 2, NULL, 8, out, &n, NULL, &err), 0);
    assert_int_equal(n, 0);
    /* a repeated query word counts once */
    lh_scored once[1], twice[1];
    assert_int_equal(lh_bm25__search(bm, "zoo", 3, NULL, 1, once, &n, NULL, &err), 0);
    assert_int_equal(lh_bm25__search(bm, "zoo zoo", 7, NULL, 1, twice, &n, NULL, &err), 0);
    assert_float_equal(once[0].score, twice[0].score, 0);
    lh_bm25__release(bm);
}

static void
test_idf(void **state)
{
    (void)state;
    /* rarer words weigh more; a word in every document still weighs a little, never < 0 */
    assert_true(lh_bm25__idf(1000, 1) > lh_bm25__idf(1000, 10));
    assert_true(lh_bm25__idf(1000, 1000) > 0);
    assert_float_equal(lh_bm25__idf(10, 2), log(1 + 8.5 / 2.5), 1e-12);
}

static void
test_utf8_and_case(void **state)
{
    (void)state;
    const char *docs[] = {"Herr M\xc3\xbcller, Z\xc3\xbcrich", "Mueller Zurich"};
    lh_bm25 *bm = build(docs, 2);
    lh_scored out[2];
    size_t n = 0;
    lh_err err;
    const char *q = "m\xc3\xbcller";
    assert_int_equal(lh_bm25__search(bm, q, strlen(q), NULL, 2, out, &n, NULL, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 0);
    assert_int_equal(lh_bm25__search(bm, "ZURICH", 6, NULL, 2, out, &n, NULL, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0].id, 1);
    lh_bm25__release(bm);
}

static void
test_file_round_trip(void **state)
{
    (void)state;
    lh_test_engine t;
    lh_test_engine_open(&t, "bm25");
    lh_err err;
    lh_bm25 *bm = build(DOCS, N_DOCS), *back = NULL;
    char *path = lh_sprintf("%s/bm25.parquet", t.dir);
    assert_int_equal(lh_bm25__write(t.eng, bm, path, &err), 0);
    assert_int_equal(lh_bm25__read(t.eng, path, N_DOCS, &back, &err), 0);
    assert_string_equal(back->source, "file");
    assert_int_equal(back->n_terms, bm->n_terms);
    assert_int_equal(back->n_postings, bm->n_postings);
    assert_float_equal(back->avg_len, bm->avg_len, 0);
    assert_memory_equal(back->lengths, bm->lengths, N_DOCS * sizeof *bm->lengths);
    assert_memory_equal(back->term_chars, bm->term_chars, bm->term_off[bm->n_terms]);
    const char *query = "senior data engineer with spark at the zoo";
    lh_scored a[8], b[8];
    size_t na = 0, nb = 0;
    assert_int_equal(lh_bm25__search(bm, query, strlen(query), NULL, 8, a, &na, NULL, &err), 0);
    assert_int_equal(lh_bm25__search(back, query, strlen(query), NULL, 8, b, &nb, NULL, &err), 0);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].id, b[i].id);
        assert_float_equal(a[i].score, b[i].score, 1e-6);
    }
    lh_bm25__release(back);
    back = NULL;
    /* for a generation of another size it does not add up: refused, nothing leaked */
    assert_int_not_equal(lh_bm25__read(t.eng, path, N_DOCS - 1, &back, &err), 0);
    assert_int_equal(err.http_status, 422);
    assert_int_not_equal(lh_bm25__read(t.eng, path, N_DOCS + 1, &back, &err), 0);
    assert_int_equal(err.http_status, 422);
    assert_null(back);
    /* a posting with a count of zero */
    lh_writer *w = NULL;
    assert_int_equal(lh_writer_open(t.eng, "term VARCHAR, position INTEGER, tf INTEGER", &w, &err),
                     0);
    lh_writer_null(w, 0);
    lh_writer_int(w, 1, 0);
    lh_writer_int(w, 2, 1);
    assert_int_equal(lh_writer_next_row(w, &err), 0);
    lh_writer_str(w, 0, "zoo", 3);
    lh_writer_int(w, 1, 0);
    lh_writer_int(w, 2, 0);
    assert_int_equal(lh_writer_next_row(w, &err), 0);
    assert_int_equal(lh_writer_finish(w, path, NULL, &err), 0);
    lh_writer_free(w);
    assert_int_not_equal(lh_bm25__read(t.eng, path, 1, &back, &err), 0);
    assert_int_equal(err.http_status, 422);
    unlink(path);
    free(path);
    lh_bm25__release(bm);
    lh_test_engine_close(&t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words),
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_filter_k_and_nothing),
        cmocka_unit_test(test_idf),
        cmocka_unit_test(test_utf8_and_case),
        cmocka_unit_test(test_file_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
