/*
 * bm25.c — the full-text index of a generation: words, the inverted index over the same
 * positions (chunks) the vectors hold, Okapi BM25 scoring, and its Parquet file.
 *
 * Words: ASCII letters and digits, lower-cased, and every byte of a UTF-8 multibyte
 * sequence; anything else separates words. A word longer than LH_BM25_WORD_MAX bytes is
 * dropped (a hash, a base64 blob). The same function splits chunk texts and queries, so
 * a query word matches exactly the words it would be indexed as.
 *
 * In memory: terms sorted bytewise, each with its postings (position, tf) contiguous in
 * two parallel arrays; the length in words of every position and their average. A built
 * index is immutable and reference-counted (a promotion shares it with the generation it
 * was promoted from), so any number of threads may search it at once.
 *
 * The file (README.md, "Indexes over datasets"): one row per (term, position) with the
 * term's count there, and one row per position with a NULL term whose tf is the position's
 * length. Reading it goes through the same builder as indexing texts, which checks what it
 * is given; a file that does not add up is 422 index_corrupt.
 */
#include "vector/vector_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- words ----------------------------------------------------------------------------- */

static bool
word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

int
lh_bm25__words(const char *text, size_t len, int (*fn)(void *ctx, const char *word, size_t len),
               void *ctx)
{
    char word[LH_BM25_WORD_MAX];
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t start = i, n = 0;
        while (i < len && word_byte((unsigned char)text[i])) {
            unsigned char c = (unsigned char)text[i++];
            if (n < sizeof word)
                word[n] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
            n++;
        }
        if (i > start && n <= sizeof word) {
            int rc = fn(ctx, word, n);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int
found_word(void *ctx, const char *word, size_t len)
{
    (void)ctx;
    (void)word;
    (void)len;
    return 1;
}

bool
lh_bm25__has_words(const char *text, size_t len)
{
    return lh_bm25__words(text, len, found_word, NULL) != 0;
}

/* ---- building -------------------------------------------------------------------------- */

static uint64_t
hash_word(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int
oom(lh_err *err)
{
    return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                      "not enough memory for the index's text index");
}

static int
corrupt(lh_err *err, const char *what)
{
    return lh_err_set(err, LH_EINVAL, 422, "index_corrupt", "the text index file %s", what);
}

/* Room for n + 1 elements of elem bytes in *p (capacity *cap, doubling). */
static int
grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 256;
    void *q = lh_try_realloc(*p, want * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = want;
    return 0;
}

int
lh_bm25__builder_init(lh_bm25_builder *b, size_t n_positions, lh_err *err)
{
    memset(b, 0, sizeof *b);
    lh_buf_init(&b->chars);
    b->err = err;
    b->n = n_positions;
    b->lengths = lh_try_malloc((n_positions ? n_positions : 1) * sizeof *b->lengths);
    b->has_length = lh_try_malloc(n_positions ? n_positions : 1);
    b->n_slots = 1024;
    b->slots = lh_try_malloc(b->n_slots * sizeof *b->slots);
    if (!b->lengths || !b->has_length || !b->slots)
        return oom(err);
    memset(b->lengths, 0, n_positions * sizeof *b->lengths);
    memset(b->has_length, 0, n_positions);
    memset(b->slots, 0, b->n_slots * sizeof *b->slots);
    return 0;
}

void
lh_bm25__builder_free(lh_bm25_builder *b)
{
    free(b->lengths);
    free(b->has_length);
    free(b->slots);
    free(b->term_at);
    free(b->term_len);
    free(b->term_last);
    free(b->e_term);
    free(b->e_pos);
    free(b->e_tf);
    lh_buf_free(&b->chars);
    memset(b, 0, sizeof *b);
}

/* Double the term table and place every term again. */
static int
rehash(lh_bm25_builder *b)
{
    size_t size = b->n_slots * 2;
    uint32_t *slots = lh_try_malloc(size * sizeof *slots);
    if (!slots)
        return -1;
    memset(slots, 0, size * sizeof *slots);
    for (size_t t = 0; t < b->n_terms; t++) {
        size_t i = (size_t)hash_word(b->chars.data + b->term_at[t], b->term_len[t]) & (size - 1);
        while (slots[i] != 0)
            i = (i + 1) & (size - 1);
        slots[i] = (uint32_t)t + 1;
    }
    free(b->slots);
    b->slots = slots;
    b->n_slots = size;
    return 0;
}

/* The id of word (added when new); -1 when out of memory. */
static int64_t
term_id(lh_bm25_builder *b, const char *word, size_t len)
{
    size_t mask = b->n_slots - 1;
    size_t i = (size_t)hash_word(word, len) & mask;
    for (; b->slots[i] != 0; i = (i + 1) & mask) {
        uint32_t t = b->slots[i] - 1;
        if (b->term_len[t] == len && memcmp(b->chars.data + b->term_at[t], word, len) == 0)
            return t;
    }
    size_t cap = b->cap_terms;
    if (grow((void **)&b->term_at, &cap, b->n_terms, sizeof *b->term_at) != 0)
        return -1;
    cap = b->cap_terms;
    if (grow((void **)&b->term_len, &cap, b->n_terms, sizeof *b->term_len) != 0)
        return -1;
    cap = b->cap_terms;
    if (grow((void **)&b->term_last, &cap, b->n_terms, sizeof *b->term_last) != 0)
        return -1;
    b->cap_terms = cap;
    size_t at = b->chars.len;
    if (lh_buf_try_append(&b->chars, word, len) != 0)
        return -1;
    uint32_t t = (uint32_t)b->n_terms++;
    b->term_at[t] = at;
    b->term_len[t] = (uint32_t)len;
    b->term_last[t] = 0;
    b->slots[i] = t + 1;
    if (2 * b->n_terms > b->n_slots && rehash(b) != 0)
        return -1;
    return t;
}

/* One more (term, position, tf) entry. */
static int
add_entry(lh_bm25_builder *b, uint32_t t, uint32_t pos, uint32_t tf)
{
    size_t cap = b->cap_entries;
    if (grow((void **)&b->e_term, &cap, b->n_entries, sizeof *b->e_term) != 0)
        return -1;
    cap = b->cap_entries;
    if (grow((void **)&b->e_pos, &cap, b->n_entries, sizeof *b->e_pos) != 0)
        return -1;
    cap = b->cap_entries;
    if (grow((void **)&b->e_tf, &cap, b->n_entries, sizeof *b->e_tf) != 0)
        return -1;
    b->cap_entries = cap;
    b->e_term[b->n_entries] = t;
    b->e_pos[b->n_entries] = pos;
    b->e_tf[b->n_entries] = tf;
    b->n_entries++;
    b->term_last[t] = b->n_entries; /* entry index + 1 */
    return 0;
}

typedef struct text_ctx {
    lh_bm25_builder *b;
    uint32_t pos;
} text_ctx;

static int
on_word(void *ctx, const char *word, size_t len)
{
    text_ctx *c = ctx;
    lh_bm25_builder *b = c->b;
    int64_t t = term_id(b, word, len);
    if (t < 0)
        return oom(b->err);
    b->lengths[c->pos]++;
    size_t last = b->term_last[t];
    if (last > 0 && b->e_pos[last - 1] == c->pos) { /* again in the same position */
        b->e_tf[last - 1]++;
        return 0;
    }
    return add_entry(b, (uint32_t)t, c->pos, 1) == 0 ? 0 : oom(b->err);
}

int
lh_bm25__add_text(lh_bm25_builder *b, uint32_t pos, const char *text, size_t len)
{
    if (pos >= b->n)
        return corrupt(b->err, "names a position past the last chunk");
    text_ctx c = {.b = b, .pos = pos};
    b->has_length[pos] = 1;
    return lh_bm25__words(text, len, on_word, &c);
}

int
lh_bm25__add_posting(lh_bm25_builder *b, const char *term, size_t len, int64_t pos, int64_t tf)
{
    if (pos < 0 || (uint64_t)pos >= b->n)
        return corrupt(b->err, "names a position past the last chunk");
    if (term == NULL) { /* the position's length */
        if (tf < 0 || tf > UINT32_MAX || b->has_length[pos])
            return corrupt(b->err, "holds a bad or repeated length");
        b->lengths[pos] = (uint32_t)tf;
        b->has_length[pos] = 1;
        return 0;
    }
    if (len == 0 || len > LH_BM25_WORD_MAX || tf < 1 || tf > UINT32_MAX)
        return corrupt(b->err, "holds a bad term or count");
    int64_t t = term_id(b, term, len);
    if (t < 0 || add_entry(b, (uint32_t)t, (uint32_t)pos, (uint32_t)tf) != 0)
        return oom(b->err);
    return 0;
}

/* A term and its id, to be sorted bytewise. */
typedef struct term_ref {
    const char *s;
    uint32_t len, id;
} term_ref;

static int
cmp_term(const void *a, const void *b)
{
    const term_ref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

void
lh_bm25__free(lh_bm25 *bm)
{
    if (bm == NULL)
        return;
    free(bm->lengths);
    free(bm->term_chars);
    free(bm->term_off);
    free(bm->post_off);
    free(bm->post_pos);
    free(bm->post_tf);
    free(bm);
}

lh_bm25 *
lh_bm25__retain(lh_bm25 *bm)
{
    if (bm)
        atomic_fetch_add(&bm->refs, 1);
    return bm;
}

void
lh_bm25__release(lh_bm25 *bm)
{
    if (bm && atomic_fetch_sub(&bm->refs, 1) == 1)
        lh_bm25__free(bm);
}

/* The terms in order with their postings (every array sized by the data is fallible). */
static void
lay_out(lh_bm25_builder *b, lh_bm25 *bm, term_ref *refs, uint32_t *rank)
{
    for (size_t t = 0; t < b->n_terms; t++)
        refs[t] = (term_ref){b->chars.data + b->term_at[t], b->term_len[t], (uint32_t)t};
    qsort(refs, b->n_terms, sizeof *refs, cmp_term);
    bm->term_off[0] = 0;
    for (size_t r = 0; r < b->n_terms; r++) {
        rank[refs[r].id] = (uint32_t)r;
        memcpy(bm->term_chars + bm->term_off[r], refs[r].s, refs[r].len);
        bm->term_off[r + 1] = bm->term_off[r] + refs[r].len;
    }
    memset(bm->post_off, 0, (b->n_terms + 1) * sizeof *bm->post_off);
    for (size_t e = 0; e < b->n_entries; e++)
        bm->post_off[rank[b->e_term[e]] + 1]++;
    for (size_t r = 0; r < b->n_terms; r++)
        bm->post_off[r + 1] += bm->post_off[r];
    /* entries in the order they came (a term's positions ascending when indexed from
     * texts); refs[r].id is no longer needed, so it serves as each term's cursor */
    for (size_t r = 0; r < b->n_terms; r++)
        refs[r].id = (uint32_t)bm->post_off[r];
    for (size_t e = 0; e < b->n_entries; e++) {
        uint32_t at = refs[rank[b->e_term[e]]].id++;
        bm->post_pos[at] = b->e_pos[e];
        bm->post_tf[at] = b->e_tf[e];
    }
}

int
lh_bm25__finish(lh_bm25_builder *b, const char *source, lh_bm25 **out, lh_err *err)
{
    bool from_file = strcmp(source, "file") == 0;
    for (size_t p = 0; from_file && p < b->n; p++)
        if (!b->has_length[p])
            return corrupt(err, "lacks the length of a chunk");
    lh_bm25 *bm = lh_calloc(1, sizeof *bm);
    atomic_init(&bm->refs, 1);
    term_ref *refs = lh_try_malloc((b->n_terms ? b->n_terms : 1) * sizeof *refs);
    uint32_t *rank = lh_try_malloc((b->n_terms ? b->n_terms : 1) * sizeof *rank);
    bm->term_chars = lh_try_malloc(b->chars.len + 1);
    bm->term_off = lh_try_malloc((b->n_terms + 1) * sizeof *bm->term_off);
    bm->post_off = lh_try_malloc((b->n_terms + 1) * sizeof *bm->post_off);
    bm->post_pos = lh_try_malloc((b->n_entries ? b->n_entries : 1) * sizeof *bm->post_pos);
    bm->post_tf = lh_try_malloc((b->n_entries ? b->n_entries : 1) * sizeof *bm->post_tf);
    int rc = 0;
    if (!refs || !rank || !bm->term_chars || !bm->term_off || !bm->post_off || !bm->post_pos ||
        !bm->post_tf) {
        rc = oom(err);
        goto out;
    }
    lay_out(b, bm, refs, rank);
    bm->n = b->n;
    bm->n_terms = b->n_terms;
    bm->n_postings = b->n_entries;
    bm->source = source;
    bm->lengths = b->lengths; /* taken */
    b->lengths = NULL;
    uint64_t total = 0;
    for (size_t p = 0; p < bm->n; p++)
        total += bm->lengths[p];
    bm->avg_len = bm->n ? (double)total / (double)bm->n : 0;
    *out = bm;
    bm = NULL;
out:
    free(refs);
    free(rank);
    lh_bm25__free(bm);
    return rc;
}

size_t
lh_bm25__memory(const lh_bm25 *bm)
{
    if (bm == NULL)
        return 0;
    return sizeof *bm + bm->n * sizeof *bm->lengths + bm->term_off[bm->n_terms] +
           (bm->n_terms + 1) * (sizeof *bm->term_off + sizeof *bm->post_off) +
           bm->n_postings * (sizeof *bm->post_pos + sizeof *bm->post_tf);
}

/* ---- scoring --------------------------------------------------------------------------- */

/* The index of term in bm's sorted terms, or -1. */
static int64_t
find_term(const lh_bm25 *bm, const char *term, size_t len)
{
    size_t lo = 0, hi = bm->n_terms;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        term_ref a = {bm->term_chars + bm->term_off[mid],
                      (uint32_t)(bm->term_off[mid + 1] - bm->term_off[mid]), 0};
        term_ref q = {term, (uint32_t)len, 0};
        int c = cmp_term(&a, &q);
        if (c == 0)
            return (int64_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

double
lh_bm25__idf(size_t n, size_t df)
{
    return log(1.0 + ((double)n - (double)df + 0.5) / ((double)df + 0.5));
}

/* The query's distinct words (a word given twice counts once), at most
 * LH_BM25_QUERY_WORDS_MAX of them. */
typedef struct query_words {
    char word[LH_BM25_QUERY_WORDS_MAX][LH_BM25_WORD_MAX];
    size_t len[LH_BM25_QUERY_WORDS_MAX];
    size_t n;
} query_words;

static int
on_query_word(void *ctx, const char *word, size_t len)
{
    query_words *q = ctx;
    for (size_t i = 0; i < q->n; i++)
        if (q->len[i] == len && memcmp(q->word[i], word, len) == 0)
            return 0;
    if (q->n < LH_BM25_QUERY_WORDS_MAX) {
        memcpy(q->word[q->n], word, len);
        q->len[q->n++] = len;
    }
    return 0;
}

/* Whether a is a better hit than b: a higher score, then a lower position. */
static bool
better(const lh_scored *a, const lh_scored *b)
{
    return a->score > b->score || (a->score == b->score && a->id < b->id);
}

/* The worst of the kept hits sits at the root (a heap ordered by "worse first"). */
static void
sift_down(lh_scored *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l]))
            w = l;
        if (r < n && better(&h[w], &h[r]))
            w = r;
        if (w == i)
            return;
        lh_scored tmp = h[i];
        h[i] = h[w];
        h[w] = tmp;
        i = w;
    }
}

static void
sift_up(lh_scored *h, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!better(&h[parent], &h[i]))
            return;
        lh_scored tmp = h[i];
        h[i] = h[parent];
        h[parent] = tmp;
        i = parent;
    }
}

static int
cmp_scored(const void *a, const void *b)
{
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

int
lh_bm25__search(const lh_bm25 *bm, const char *query, size_t len, const uint64_t *allowed, size_t k,
                lh_scored *out, size_t *n_out, json_t **terms, lh_err *err)
{
    query_words *q = lh_calloc(1, sizeof *q);
    lh_bm25__words(query, len, on_query_word, q);
    json_t *shown = json_array();
    float *scores = NULL;
    uint32_t *touched = NULL;
    size_t n_touched = 0, n = 0;
    int rc = 0;
    if (q->n > 0 && bm->n > 0 && k > 0) {
        scores = lh_try_malloc(bm->n * sizeof *scores);
        touched = lh_try_malloc(bm->n * sizeof *touched);
        if (!scores || !touched) {
            rc = lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to search");
            goto out;
        }
        memset(scores, 0, bm->n * sizeof *scores);
    }
    double avg = bm->avg_len > 0 ? bm->avg_len : 1;
    for (size_t i = 0; i < q->n; i++) {
        int64_t ti = find_term(bm, q->word[i], q->len[i]);
        size_t df = ti < 0 ? 0 : bm->post_off[ti + 1] - bm->post_off[ti];
        json_t *term = json_stringn(q->word[i], q->len[i]); /* NULL: not UTF-8, not shown */
        if (term)
            json_array_append_new(
                shown, json_pack("{s:o, s:I}", "term", term, "documents", (json_int_t)df));
        if (df == 0 || !scores)
            continue;
        double idf = lh_bm25__idf(bm->n, df);
        for (size_t e = bm->post_off[ti]; e < bm->post_off[ti + 1]; e++) {
            uint32_t p = bm->post_pos[e];
            if (allowed && !((allowed[p >> 6] >> (p & 63)) & 1u))
                continue;
            double tf = bm->post_tf[e];
            double norm = LH_BM25_K1 * (1 - LH_BM25_B + LH_BM25_B * bm->lengths[p] / avg);
            if (scores[p] == 0)
                touched[n_touched++] = p;
            scores[p] += (float)(idf * tf * (LH_BM25_K1 + 1) / (tf + norm));
        }
    }
    for (size_t j = 0; j < n_touched; j++) {
        lh_scored s = {.id = touched[j], .score = scores[touched[j]]};
        if (n < k) {
            out[n] = s;
            sift_up(out, n++);
        } else if (better(&s, &out[0])) {
            out[0] = s;
            sift_down(out, n, 0);
        }
    }
    qsort(out, n, sizeof *out, cmp_scored);
    *n_out = n;
    if (terms) {
        *terms = shown;
        shown = NULL;
    }
out:
    json_decref(shown);
    free(scores);
    free(touched);
    free(q);
    return rc;
}

/* ---- the file ---------------------------------------------------------------------------- */

int
lh_bm25__write(lh_engine *eng, const lh_bm25 *bm, const char *path, lh_err *err)
{
    lh_writer *w = NULL;
    int rc = lh_writer_open(eng, "term VARCHAR, position INTEGER, tf INTEGER", &w, err);
    for (size_t p = 0; rc == 0 && p < bm->n; p++) {
        lh_writer_null(w, 0);
        lh_writer_int(w, 1, (int64_t)p);
        lh_writer_int(w, 2, bm->lengths[p]);
        rc = lh_writer_next_row(w, err);
    }
    for (size_t t = 0; rc == 0 && t < bm->n_terms; t++) {
        for (size_t e = bm->post_off[t]; rc == 0 && e < bm->post_off[t + 1]; e++) {
            lh_writer_str(w, 0, bm->term_chars + bm->term_off[t],
                          bm->term_off[t + 1] - bm->term_off[t]);
            lh_writer_int(w, 1, bm->post_pos[e]);
            lh_writer_int(w, 2, bm->post_tf[e]);
            rc = lh_writer_next_row(w, err);
        }
    }
    if (rc == 0)
        rc = lh_writer_finish(w, path, NULL, err);
    lh_writer_free(w);
    return rc;
}

static int
on_file_batch(void *ctx, const lh_batch *batch)
{
    lh_bm25_builder *b = ctx;
    for (size_t i = 0; i < lh_batch_rows(batch); i++) {
        size_t len = 0;
        int64_t pos = -1, tf = -1;
        const char *term = lh_batch_str(batch, 0, i, &len);
        if (!lh_batch_int(batch, 1, i, &pos) || !lh_batch_int(batch, 2, i, &tf))
            return corrupt(b->err, "holds a row without position or tf");
        int rc = lh_bm25__add_posting(b, term, len, pos, tf);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
lh_bm25__read(lh_engine *eng, const char *path, size_t n_positions, lh_bm25 **out, lh_err *err)
{
    lh_bm25_builder b;
    int rc = lh_bm25__builder_init(&b, n_positions, err);
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT term, position, tf FROM read_parquet(");
    lh_sql_quote(&sql, path);
    lh_buf_puts(&sql, ")");
    lh_scan_opts opts = {.sql = sql.data};
    if (rc == 0)
        rc = lh_engine_scan(eng, &opts, on_file_batch, &b, err);
    if (rc == 0)
        rc = lh_bm25__finish(&b, "file", out, err);
    lh_buf_free(&sql);
    lh_bm25__builder_free(&b);
    return rc;
}
