/*
 * vrows.c — positions and documents gathered from a scan (lh_vrows): what a build reads
 * from a dataset and a load reads back from an embeddings file, before it becomes a
 * generation. Documents are the distinct ids in row order (rows come ordered by id, so
 * repeats are consecutive); each chunk of a document is a position. Arrays sized by data
 * grow with lh_try_realloc, so a dataset too big for memory is a 503, not a crash.
 * Not thread-safe: one scan fills one lh_vrows.
 */
#include "vector/vector_int.h"

#include <stdlib.h>
#include <string.h>

void
lh_vrows__init(lh_vrows *r, lh_err *err)
{
    memset(r, 0, sizeof *r);
    lh_buf_init(&r->texts);
    r->err = err;
}

int
lh_vrows__oom(lh_err *err)
{
    return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory", "not enough memory to build the index");
}

int
lh_vrows__grow(void **p, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t want = *cap ? *cap * 2 : 1024;
    void *q = lh_try_realloc(*p, want * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = want;
    return 0;
}

/* The per-position arrays share one capacity, r->cap. */
int
lh_vrows__add_position(lh_vrows *r, size_t text_off, size_t text_len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 1024;
        uint32_t *doc_of = lh_try_realloc(r->doc_of, cap * sizeof *doc_of);
        if (doc_of)
            r->doc_of = doc_of;
        int32_t *chunk_of = doc_of ? lh_try_realloc(r->chunk_of, cap * sizeof *chunk_of) : NULL;
        if (chunk_of)
            r->chunk_of = chunk_of;
        size_t *off = chunk_of ? lh_try_realloc(r->text_off, cap * sizeof *off) : NULL;
        if (off)
            r->text_off = off;
        uint32_t *len = off ? lh_try_realloc(r->text_len, cap * sizeof *len) : NULL;
        if (!len)
            return -1;
        r->text_len = len;
        r->cap = cap;
    }
    uint32_t doc = (uint32_t)(r->n_docs - 1);
    r->doc_of[r->n] = doc;
    r->chunk_of[r->n] = r->n > 0 && r->doc_of[r->n - 1] == doc ? r->chunk_of[r->n - 1] + 1 : 0;
    r->text_off[r->n] = text_off;
    r->text_len[r->n] = (uint32_t)text_len;
    r->n++;
    return 0;
}

int
lh_vrows__start_doc(lh_vrows *r, const char *id, size_t len)
{
    if (r->n_docs > 0 && strncmp(r->doc_ids[r->n_docs - 1], id, len) == 0 &&
        r->doc_ids[r->n_docs - 1][len] == '\0')
        return 0;
    if (lh_vrows__grow((void **)&r->doc_ids, &r->cap_docs, r->n_docs, sizeof *r->doc_ids) != 0)
        return -1;
    r->doc_ids[r->n_docs++] = lh_strndup(id, len);
    return 0;
}

void
lh_vrows__free(lh_vrows *r)
{
    for (size_t d = 0; r->doc_ids && d < r->n_docs; d++)
        free(r->doc_ids[d]);
    free(r->doc_ids);
    free(r->doc_of);
    free(r->chunk_of);
    free(r->text_off);
    free(r->text_len);
    free(r->vectors);
    lh_buf_free(&r->texts);
}

int
lh_vrows__into_gen(lh_vrows *r, lh_vgen *g, lh_err *err)
{
    g->n = r->n;
    g->doc_of = r->doc_of;
    g->chunk_of = r->chunk_of;
    g->n_docs = r->n_docs;
    g->doc_ids = r->doc_ids;
    r->doc_of = NULL;
    r->chunk_of = NULL;
    r->doc_ids = NULL;
    r->n_docs = 0;
    if (r->keep_texts && r->texts.len <= r->text_budget && r->text_off) {
        g->texts = r->texts.data ? r->texts.data : lh_strdup("");
        g->text_off = r->text_off;
        g->text_len = r->text_len;
        lh_buf_init(&r->texts);
        r->text_off = NULL;
        r->text_len = NULL;
    }
    return lh_vgen__index_docs(g, err);
}
