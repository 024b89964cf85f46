/*
 * hnsw.c — our HNSW index (Malkov & Yashunin): multi-threaded build and search.
 *
 * Build: every position draws its level from (seed, position), so the graph's shape does
 * not depend on thread scheduling; the upper-level link lists are all allocated before
 * the threads start. Threads take positions from an atomic counter and insert them:
 * greedy descent through the upper levels, a beam search of ef_construction at each
 * level the node lives on, neighbours chosen by the diversity heuristic, links made both
 * ways (an overfull neighbour re-chooses its links by the same heuristic). A node's link
 * lists are read and written under its own mutex while building; the entry point and the
 * top level under `global`.
 *
 * Search needs no locks: the graph is immutable once built. Visited sets come from a
 * pool and are not cleared per query (epochs, see vector_int.h); the next candidate's
 * vector is prefetched while the current one is scored.
 */
#include "vector/vector_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
lh_metric_parse(const char *s)
{
    if (strcmp(s, "cosine") == 0)
        return LH_METRIC_COSINE;
    if (strcmp(s, "l2") == 0)
        return LH_METRIC_L2;
    if (strcmp(s, "dot") == 0)
        return LH_METRIC_DOT;
    return -1;
}

const char *
lh_metric_name(lh_metric m)
{
    return m == LH_METRIC_COSINE ? "cosine" : m == LH_METRIC_L2 ? "l2" : "dot";
}

/* ---- heaps of hits --------------------------------------------------------------------- */

/* (heap: see vector_int.h) */

static bool
above(const heap *h, const lh_hit *x, const lh_hit *y)
{
    return h->max ? x->distance > y->distance : x->distance < y->distance;
}

static int
heap_push(heap *h, lh_hit x)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        lh_hit *a = realloc(h->a, cap * sizeof *a);
        if (!a)
            return -1;
        h->a = a;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!above(h, &x, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = x;
    return 0;
}

static lh_hit
heap_pop(heap *h)
{
    lh_hit top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && above(h, &h->a[c + 1], &h->a[c]))
            c++;
        if (!above(h, &h->a[c], &last))
            break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n > 0)
        h->a[i] = last;
    return top;
}

static int
by_distance(const void *a, const void *b)
{
    float x = ((const lh_hit *)a)->distance, y = ((const lh_hit *)b)->distance;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* ---- visited sets ------------------------------------------------------------------------ */

visited *
lh_hnsw__visited_get(lh_hnsw *h)
{
    pthread_mutex_lock(&h->pool_lock);
    visited *v = h->pool;
    if (v)
        h->pool = v->next;
    pthread_mutex_unlock(&h->pool_lock);
    if (v == NULL || v->n < h->n) {
        if (v)
            lh_hnsw__visited_free(v);
        v = calloc(1, sizeof *v);
        if (!v || !(v->tags = calloc(h->n ? h->n : 1, sizeof *v->tags)) ||
            !(v->links = malloc((1 + (size_t)h->m0) * sizeof *v->links))) {
            if (v)
                free(v->tags);
            free(v);
            return NULL;
        }
        v->n = h->n;
    }
    if (++v->epoch == 0) { /* wrapped: now, and only now, clear */
        memset(v->tags, 0, v->n * sizeof *v->tags);
        v->epoch = 1;
    }
    return v;
}

void
lh_hnsw__visited_free(visited *v)
{
    free(v->tags);
    free(v->links);
    free(v->cand.a);
    free(v->top.a);
    free(v);
}

void
lh_hnsw__visited_put(lh_hnsw *h, visited *v)
{
    pthread_mutex_lock(&h->pool_lock);
    v->next = h->pool;
    h->pool = v;
    pthread_mutex_unlock(&h->pool_lock);
}

/* ---- the graph ----------------------------------------------------------------------------- */

/* The graph's own distance: squared L2, or -dot for both dot and cosine (cosine vectors
 * are unit length, so -dot orders them as 1 - dot does; lh_hnsw_search adds the 1). */
static inline float
dist(const lh_hnsw *h, const float *q, uint32_t id)
{
    const float *v = h->vectors + (size_t)id * h->dim;
    return h->metric == LH_METRIC_L2 ? h->k->l2(q, v, h->dim) : -h->k->dot(q, v, h->dim);
}

/*
 * A query as the walk scores it. On float vectors, f itself. On an int8 index's codes
 * (x_j = q_min[j] + q_scale[j] * c_j), the same distance with the scale and offset folded
 * into per-dimension weights w and a constant, so that scoring a code is one product:
 *   L2:   Σ (f_j - x_j)^2 = Σ a_j^2 + Σ (-2 q_scale[j] a_j) c_j + q_norm[id],  a = f - q_min
 *   dot:  -Σ f_j x_j      = -Σ f_j q_min[j] + Σ (-f_j q_scale[j]) c_j
 */
typedef struct probe {
    const float *f;
    const float *w; /* NULL: the walk reads float vectors */
    float base;
    const int8_t *r; /* w in signed bytes (w ≈ r_scale * r) for VNNI, or NULL */
    float r_scale;
    const uint16_t *b; /* while building: f as bfloat16, scored against h->bf16, or NULL */
    float b_norm;      /* L2: b's squared norm */
} probe;

static inline const void *
row(const lh_hnsw *h, const probe *p, uint32_t id)
{
    if (p->b)
        return h->bf16 + (size_t)id * h->dim;
    return p->w ? (const void *)(h->codes + (size_t)id * h->dim)
                : (const void *)(h->vectors + (size_t)id * h->dim);
}

static inline float
dist_p(const lh_hnsw *h, const probe *p, uint32_t id)
{
    if (p->b) {
        float dot = h->k->dot_bf16(p->b, h->bf16 + (size_t)id * h->dim, h->dim);
        return h->metric == LH_METRIC_L2 ? p->b_norm + h->bf16_norm[id] - 2 * dot : -dot;
    }
    if (!p->w)
        return dist(h, p->f, id);
    const uint8_t *c = h->codes + (size_t)id * h->dim;
    float d = p->base + (p->r ? p->r_scale * (float)h->k->dot_s8u8(p->r, c, h->dim)
                              : h->k->dot_u8(p->w, c, h->dim));
    return h->metric == LH_METRIC_L2 ? d + h->q_norm[id] : d;
}

/* The weights and constant of f for h's codes (w: room for dim floats; r: dim bytes). */
static void
probe_codes(const lh_hnsw *h, const float *f, float *w, int8_t *r, probe *p)
{
    double base = 0;
    for (uint32_t j = 0; j < h->dim; j++) {
        if (h->metric == LH_METRIC_L2) {
            float a = f[j] - h->q_min[j];
            base += (double)a * a;
            w[j] = -2.0f * h->q_scale[j] * a;
        } else {
            base -= (double)f[j] * h->q_min[j];
            w[j] = -f[j] * h->q_scale[j];
        }
    }
    *p = (probe){f, w, (float)base, NULL, 0, NULL, 0};
    if (!h->k->dot_s8u8)
        return;
    float top = 0;
    for (uint32_t j = 0; j < h->dim; j++)
        top = fabsf(w[j]) > top ? fabsf(w[j]) : top;
    if (top == 0)
        return;
    float scale = top / 127.0f;
    for (uint32_t j = 0; j < h->dim; j++)
        r[j] = (int8_t)lrintf(w[j] / scale);
    p->r = r;
    p->r_scale = scale;
}

/* A copy of node id's links at level into buf (room for 1 + m0), under its lock while
 * building. */
static uint32_t
read_links(lh_hnsw *h, uint32_t id, int level, bool lock, uint32_t *buf)
{
    uint32_t *l = lh_hnsw__links(h, id, level);
    if (!lock) {
        memcpy(buf, l, (1 + (size_t)l[0]) * sizeof *l);
        return l[0];
    }
    /* while building, without the node's lock: writers (under it) store each link and
     * then the count, all atomically, so a reader sees a count no larger than the list
     * and valid positions — at worst a mix of a list being re-chosen, which the search
     * tolerates (the lock was a tenth of the build's time) */
    uint32_t max_links = level == 0 ? h->m0 : h->params.m;
    uint32_t n = __atomic_load_n(&l[0], __ATOMIC_ACQUIRE);
    if (n > max_links)
        n = max_links;
    for (uint32_t j = 1; j <= n; j++)
        buf[j] = __atomic_load_n(&l[j], __ATOMIC_RELAXED);
    buf[0] = n;
    return n;
}

/* A list's link j and its count, stored for read_links' lock-free readers. */
static inline void
store_link(uint32_t *l, uint32_t j, uint32_t id)
{
    __atomic_store_n(&l[1 + j], id, __ATOMIC_RELAXED);
}

static inline void
store_count(uint32_t *l, uint32_t n)
{
    __atomic_store_n(&l[0], n, __ATOMIC_RELEASE);
}

/* Beam search at one level from ep (and the n_seeds positions of seeds, when given): the
 * ef best (allowed) nodes in *top (a max-heap). The candidate heap and link buffer are the
 * visited set's scratch, kept between searches, so a search allocates nothing once warm. */
static int
search_layer(lh_hnsw *h, const probe *q, uint32_t ep, float ep_d, const uint32_t *seeds,
             size_t n_seeds, size_t ef, int level, visited *vis, lh_vec_filter_fn filter, void *ctx,
             bool lock, heap *top)
{
    heap *cand = &vis->cand;
    cand->n = 0;
    cand->max = false;
    uint32_t *buf = vis->links;
    int rc = 0;
    vis->tags[ep] = vis->epoch;
    rc = heap_push(cand, (lh_hit){ep, ep_d});
    if (rc == 0 && (!filter || filter(ctx, ep)))
        rc = heap_push(top, (lh_hit){ep, ep_d});
    for (size_t s = 0; s < n_seeds && rc == 0; s++) {
        uint32_t id = seeds[s];
        if (vis->tags[id] == vis->epoch)
            continue;
        vis->tags[id] = vis->epoch;
        float d = dist_p(h, q, id);
        rc = heap_push(cand, (lh_hit){id, d});
        if (rc == 0 && (!filter || filter(ctx, id))) {
            rc = heap_push(top, (lh_hit){id, d});
            if (top->n > ef)
                heap_pop(top);
        }
    }
    float bound = top->n ? top->a[0].distance : INFINITY;
    while (rc == 0 && cand->n > 0) {
        lh_hit c = heap_pop(cand);
        if (c.distance > bound && top->n >= ef)
            break;
        const uint32_t *l = lock ? buf : lh_hnsw__links(h, c.id, level);
        uint32_t n_links = lock ? read_links(h, c.id, level, true, buf) : l[0];
        if (n_links > 0)
            __builtin_prefetch(row(h, q, l[1]));
        for (uint32_t j = 1; j <= n_links && rc == 0; j++) {
            uint32_t nb = l[j];
            if (j < n_links) {
                __builtin_prefetch(row(h, q, l[j + 1]));
                __builtin_prefetch(&vis->tags[l[j + 1]]);
            }
            if (vis->tags[nb] == vis->epoch)
                continue;
            vis->tags[nb] = vis->epoch;
            float d = dist_p(h, q, nb);
            if (top->n < ef || d < bound) {
                rc = heap_push(cand, (lh_hit){nb, d});
                if (level == 0 && rc == 0) /* its links row, for when it is expanded */
                    __builtin_prefetch(h->links0 + (size_t)nb * (1 + h->m0));
                if (rc == 0 && (!filter || filter(ctx, nb))) {
                    rc = heap_push(top, (lh_hit){nb, d});
                    if (top->n > ef)
                        heap_pop(top);
                }
                if (top->n)
                    bound = top->a[0].distance;
            }
        }
    }
    return rc;
}

/* Greedy descent from (*cur, *cur_d) through levels top..stop+1. */
static void
descend(lh_hnsw *h, const probe *q, int top, int stop, bool lock, uint32_t *cur, float *cur_d,
        uint32_t *buf)
{
    for (int level = top; level > stop; level--) {
        bool changed = true;
        while (changed) {
            changed = false;
            uint32_t n_links = read_links(h, *cur, level, lock, buf);
            for (uint32_t j = 1; j <= n_links; j++) {
                float d = dist_p(h, q, buf[j]);
                if (d < *cur_d) {
                    *cur_d = d;
                    *cur = buf[j];
                    changed = true;
                }
            }
        }
    }
}

/* The distance between positions a and b on their bfloat16 copies (building). */
static inline float
dist_bf16(const lh_hnsw *h, uint32_t a, uint32_t b)
{
    float dot = h->k->dot_bf16(h->bf16 + (size_t)a * h->dim, h->bf16 + (size_t)b * h->dim, h->dim);
    return h->metric == LH_METRIC_L2 ? h->bf16_norm[a] + h->bf16_norm[b] - 2 * dot : -dot;
}

/* The diversity heuristic: keep a candidate (closest first) only if it is nearer to the
 * base than to every candidate kept so far. cands is sorted ascending. With bf16, the
 * candidates' distances are the walk's bfloat16 ones and candidates are compared on
 * their bfloat16 copies too (rows the walk has just read). */
static size_t
select_neighbours(const lh_hnsw *h, const lh_hit *cands, size_t n, size_t m, bool bf16, lh_hit *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < m; i++) {
        const float *v = h->vectors + (size_t)cands[i].id * h->dim;
        bool good = true;
        for (size_t j = 0; j < k && good; j++)
            good = (bf16 ? dist_bf16(h, cands[i].id, out[j].id) : dist(h, v, out[j].id)) >=
                   cands[i].distance;
        if (good)
            out[k++] = cands[i];
    }
    return k;
}

/* Add a link from s to i at level, re-choosing s's links when they are full. */
static void
connect(lh_hnsw *h, uint32_t s, uint32_t i, int level, float d_si)
{
    uint32_t max_links = level == 0 ? h->m0 : h->params.m;
    pthread_mutex_lock(&h->node_locks[s]);
    uint32_t *l = lh_hnsw__links(h, s, level);
    if (l[0] < max_links) {
        store_link(l, l[0], i);
        store_count(l, l[0] + 1);
    } else {
        lh_hit cands[2 * 256 + 1], keep[2 * 256 + 1]; /* m is at most 256 */
        const float *sv = h->vectors + (size_t)s * h->dim;
        for (uint32_t j = 0; j < l[0]; j++)
            cands[j] = (lh_hit){l[1 + j], dist(h, sv, l[1 + j])};
        /* a bfloat16 distance while i chose its links: floats choose here */
        cands[l[0]] = (lh_hit){i, h->bf16 ? dist(h, sv, i) : d_si};
        qsort(cands, max_links + 1, sizeof *cands, by_distance);
        size_t k = select_neighbours(h, cands, max_links + 1, max_links, false, keep);
        for (size_t j = 0; j < k; j++)
            store_link(l, (uint32_t)j, keep[j].id);
        store_count(l, (uint32_t)k);
    }
    pthread_mutex_unlock(&h->node_locks[s]);
}

/* Insert position i. Its own lists are chosen level by level first, while no other node
 * links to it; only then is it linked in from its neighbours, all levels at once. So no
 * other thread ever walks into a half-made node (which would give it, and whatever it
 * links next, a poor neighbourhood), and no thread holds a node's lock while it waits
 * for another's: locks are only ever held one at a time. */
static int
insert(lh_hnsw *h, uint32_t i, visited *vis, uint32_t *buf)
{
    const probe q = {h->vectors + (size_t)i * h->dim,
                     NULL,
                     0,
                     NULL,
                     0,
                     h->bf16 ? h->bf16 + (size_t)i * h->dim : NULL,
                     h->bf16_norm ? h->bf16_norm[i] : 0};
    int level = h->levels[i];
    pthread_mutex_lock(&h->global);
    uint32_t cur = h->entry;
    int top = h->max_level;
    pthread_mutex_unlock(&h->global);
    float cur_d = dist_p(h, &q, cur);
    descend(h, &q, top, level, true, &cur, &cur_d, buf);
    int rc = 0;
    int from = level < top ? level : top;
    lh_hit *chosen = malloc((size_t)(from + 1) * ((size_t)h->params.m + 1) * sizeof *chosen);
    size_t n_chosen[LH_HNSW_MAX_LEVEL + 1] = {0};
    if (!chosen)
        return -1;
    for (int lev = from; lev >= 0 && rc == 0; lev--) {
        heap found = vis->top; /* the worker's, kept between inserts */
        found.n = 0;
        found.max = true;
        if (++vis->epoch == 0) {
            memset(vis->tags, 0, vis->n * sizeof *vis->tags);
            vis->epoch = 1;
        }
        rc = search_layer(h, &q, cur, cur_d, NULL, 0, h->params.ef_construction, lev, vis, NULL,
                          NULL, true, &found);
        if (rc == 0 && found.n > 0) {
            qsort(found.a, found.n, sizeof *found.a, by_distance);
            lh_hit *mine = chosen + (size_t)lev * (h->params.m + 1);
            size_t k = select_neighbours(h, found.a, found.n, h->params.m, q.b != NULL, mine);
            n_chosen[lev] = k;
            pthread_mutex_lock(&h->node_locks[i]);
            uint32_t *l = lh_hnsw__links(h, i, lev);
            for (size_t j = 0; j < k; j++)
                store_link(l, (uint32_t)j, mine[j].id);
            store_count(l, (uint32_t)k);
            pthread_mutex_unlock(&h->node_locks[i]);
            cur = found.a[0].id;
            cur_d = found.a[0].distance;
        }
        vis->top = found; /* its buffer, grown or not, for the next level and insert */
    }
    /* now link i in, from the top down */
    for (int lev = from; lev >= 0 && rc == 0; lev--) {
        const lh_hit *mine = chosen + (size_t)lev * (h->params.m + 1);
        for (size_t j = 0; j < n_chosen[lev]; j++)
            connect(h, mine[j].id, i, lev, mine[j].distance);
    }
    free(chosen);
    if (level > top) {
        pthread_mutex_lock(&h->global);
        if (level > h->max_level) {
            h->max_level = level;
            h->entry = i;
        }
        pthread_mutex_unlock(&h->global);
    }
    return rc;
}

/* ---- ways in ---------------------------------------------------------------------------- */

/*
 * The diversity heuristic prunes a neighbour's back link when the neighbour's list is full
 * of nearer, mutually distant nodes. For a point far from everything (one zoo resume among
 * thousands of office ones) that happens at every neighbour, and the point keeps its links
 * out but has no link in: no search, at any beam, can reach it through the graph. After
 * the build, every node left with fewer than WAYS_IN links in (at each level it lives on)
 * gets links back from its own nearest neighbours where they have a free slot. Taking a
 * full neighbour's slot instead (its link to the node with the most other ways in) was
 * tried: it cost inner-product graphs a tenth of their recall@10 in the unit test (0.998
 * to 0.894), so only free slots are used; the islands below cover the rest.
 */
#define WAYS_IN 2

static void
repair_level(lh_hnsw *h, int level, uint32_t *in)
{
    uint32_t max_links = level == 0 ? h->m0 : h->params.m;
    memset(in, 0, h->n * sizeof *in);
    for (size_t i = 0; i < h->n; i++) {
        if (h->levels[i] < level)
            continue;
        const uint32_t *l = lh_hnsw__links(h, (uint32_t)i, level);
        for (uint32_t j = 0; j < l[0]; j++)
            in[l[1 + j]]++;
    }
    for (size_t i = 0; i < h->n; i++) {
        if (h->levels[i] < level || in[i] >= WAYS_IN)
            continue;
        const uint32_t *mine = lh_hnsw__links(h, (uint32_t)i, level);
        for (uint32_t j = 0; j < mine[0] && in[i] < WAYS_IN; j++) {
            uint32_t s = mine[1 + j];
            uint32_t *l = lh_hnsw__links(h, s, level);
            bool linked = false;
            for (uint32_t t = 0; t < l[0] && !linked; t++)
                linked = l[1 + t] == (uint32_t)i;
            if (linked)
                continue;
            if (l[0] < max_links) {
                l[1 + l[0]++] = (uint32_t)i;
                in[i]++;
            }
        }
    }
}

/* Give every node WAYS_IN links in where its neighbours allow (single-threaded, after the
 * build's threads are done). Returns -1 when out of memory (the graph is then as built). */
static int
repair_ways_in(lh_hnsw *h)
{
    uint32_t *in = malloc((h->n ? h->n : 1) * sizeof *in);
    if (!in)
        return -1;
    for (int level = 0; level <= h->max_level; level++)
        repair_level(h, level, in);
    free(in);
    return 0;
}

/*
 * Islands. Repairing the ways in is not enough for a point far from everything: its
 * neighbours are no nearer to a query about it than any other node, so a beam rarely
 * passes them (the zoo resume among 3,000 office ones, asked for "giraffe trainer zoo
 * animals", was found at ef 1,280 only). The graph keeps its most isolated positions — the
 * largest distances to a nearest neighbour, read from each level-0 list, whose first link
 * is the nearest kept — and every search scores them along with its entry point (64
 * distances, a few microseconds): a query near one of them finds it at any beam.
 */
int
lh_hnsw__find_islands(lh_hnsw *h)
{
    size_t want = h->n < LH_HNSW_ISLANDS ? h->n : LH_HNSW_ISLANDS;
    free(h->islands);
    h->islands = NULL;
    h->n_islands = 0;
    if (want == 0 || h->n < 2 * LH_HNSW_ISLANDS)
        return 0;              /* a graph this small is searched whole by any beam */
    heap far = {.max = false}; /* the farthest so far, the nearest of them on top */
    for (size_t i = 0; i < h->n; i++) {
        const uint32_t *l = lh_hnsw__links(h, (uint32_t)i, 0);
        float d = l[0] ? dist(h, h->vectors + i * h->dim, l[1]) : INFINITY;
        if (far.n == want && d <= far.a[0].distance)
            continue;
        if (heap_push(&far, (lh_hit){(uint32_t)i, d}) != 0) {
            free(far.a);
            return -1;
        }
        if (far.n > want)
            heap_pop(&far);
    }
    h->islands = malloc(far.n * sizeof *h->islands);
    if (!h->islands) {
        free(far.a);
        return -1;
    }
    for (size_t i = 0; i < far.n; i++)
        h->islands[i] = far.a[i].id;
    h->n_islands = far.n;
    free(far.a);
    return 0;
}

/* ---- int8 codes ----------------------------------------------------------------------------- */

/*
 * Scalar quantization: each dimension's range over the index's vectors (min to max) is cut
 * into 255 equal steps and each value stored as the nearest step, one byte. The graph is
 * built on the float vectors (the same graph a float index has); searches walk it on the
 * codes, a quarter of the bytes per node, and re-score the candidates they keep on the
 * float vectors, so the order of the answer is exact among them.
 */
int
lh_hnsw__quantize(lh_hnsw *h)
{
    size_t n = h->n, dim = h->dim;
    h->codes = malloc(n > 0 && dim > 0 ? n * dim : 1);
    h->q_min = malloc(dim * sizeof *h->q_min);
    h->q_scale = malloc(dim * sizeof *h->q_scale);
    h->q_norm = malloc((n ? n : 1) * sizeof *h->q_norm);
    h->codes_heap = true;
    if (!h->codes || !h->q_min || !h->q_scale || !h->q_norm)
        return -1;
    float *max = malloc(dim * sizeof *max);
    if (!max)
        return -1;
    for (size_t j = 0; j < dim; j++) {
        h->q_min[j] = n ? INFINITY : 0;
        max[j] = n ? -INFINITY : 0;
    }
    for (size_t i = 0; i < n; i++) {
        const float *v = h->vectors + i * dim;
        for (size_t j = 0; j < dim; j++) {
            h->q_min[j] = v[j] < h->q_min[j] ? v[j] : h->q_min[j];
            max[j] = v[j] > max[j] ? v[j] : max[j];
        }
    }
    for (size_t j = 0; j < dim; j++)
        h->q_scale[j] = (max[j] - h->q_min[j]) / 255.0f;
    free(max);
    for (size_t i = 0; i < n; i++) {
        const float *v = h->vectors + i * dim;
        uint8_t *c = h->codes + i * dim;
        float norm = 0;
        for (size_t j = 0; j < dim; j++) {
            float step = h->q_scale[j] > 0 ? (v[j] - h->q_min[j]) / h->q_scale[j] : 0;
            long code = lrintf(step);
            c[j] = (uint8_t)(code < 0 ? 0 : code > 255 ? 255 : code);
            float x = h->q_scale[j] * c[j];
            norm += x * x;
        }
        h->q_norm[i] = norm;
    }
    return 0;
}

int
lh_hnsw_quantize(lh_hnsw *h, lh_err *err)
{
    if (h->codes || h->map)
        return lh_err_set(err, LH_EEXIST, 409, "conflict",
                          "only a float index built in this process can be quantized");
    if (lh_hnsw__quantize(h) != 0) {
        free(h->codes);
        free(h->q_min);
        free(h->q_scale);
        free(h->q_norm);
        h->codes = NULL;
        h->q_min = h->q_scale = h->q_norm = NULL;
        h->codes_heap = false;
        return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                          "not enough memory for the codes of %zu vectors", h->n);
    }
    h->params.quant = LH_QUANT_INT8;
    return 0;
}

int
lh_quant_parse(const char *s)
{
    if (strcmp(s, "none") == 0)
        return LH_QUANT_NONE;
    if (strcmp(s, "int8") == 0)
        return LH_QUANT_INT8;
    return -1;
}

const char *
lh_quant_name(lh_quant q)
{
    return q == LH_QUANT_INT8 ? "int8" : "none";
}

/* ---- building ----------------------------------------------------------------------------- */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static int
draw_level(uint64_t seed, uint32_t i, uint32_t m)
{
    double u = (double)(mix64(seed ^ mix64(i + 0x9e3779b97f4a7c15ULL)) >> 11) * 0x1.0p-53;
    if (u <= 0)
        u = 0x1.0p-53;
    double level = -log(u) / log((double)(m > 1 ? m : 2));
    return level >= LH_HNSW_MAX_LEVEL ? LH_HNSW_MAX_LEVEL : (int)level;
}

typedef struct builder {
    lh_hnsw *h;
    atomic_size_t next;
    atomic_int failed;
} builder;

static void *
build_worker(void *arg)
{
    builder *b = arg;
    lh_hnsw *h = b->h;
    visited vis = {.tags = calloc(h->n, sizeof *vis.tags),
                   .n = h->n,
                   .links = malloc((1 + (size_t)h->m0) * sizeof *vis.links)};
    uint32_t *buf = malloc((1 + (size_t)h->m0) * sizeof *buf);
    if (!vis.tags || !buf || !vis.links)
        atomic_store(&b->failed, 1);
    while (!atomic_load(&b->failed)) {
        size_t i = atomic_fetch_add(&b->next, 1);
        if (i >= h->n)
            break;
        if (insert(h, (uint32_t)i, &vis, buf) != 0)
            atomic_store(&b->failed, 1);
    }
    free(vis.tags);
    free(vis.links);
    free(vis.cand.a);
    free(vis.top.a);
    free(buf);
    return NULL;
}

static lh_hnsw *
alloc_index(uint32_t dim, lh_metric metric, const lh_hnsw_params *p, size_t n)
{
    lh_hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->dim = dim;
    h->metric = metric;
    h->params = *p;
    h->m0 = 2 * p->m;
    h->n = n;
    h->k = lh_vec__kernels();
    h->max_level = -1;
    pthread_mutex_init(&h->global, NULL);
    pthread_mutex_init(&h->pool_lock, NULL);
    return h;
}

static int
params_check(const lh_hnsw_params *in, lh_hnsw_params *p, uint32_t dim, lh_err *err)
{
    *p = in ? *in : (lh_hnsw_params){0};
    if (p->m == 0)
        p->m = 16;
    if (p->ef_construction == 0)
        p->ef_construction = 80;
    if (p->ef_search == 0)
        p->ef_search = 30;
    if (dim == 0 || dim > 65536)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "vectors need 1 to 65536 dimensions, not %u", dim);
    if (p->m < 2 || p->m > 256)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'m' must be from 2 to 256, not %u", p->m);
    if (p->ef_construction > 10000 || p->ef_search > 10000)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'ef_construction' and 'ef_search' must be at most 10000");
    if (p->quant != LH_QUANT_NONE && p->quant != LH_QUANT_INT8)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'quantization' must be none or int8");
    return 0;
}

int
lh_hnsw_build(const float *vectors, size_t n, uint32_t dim, lh_metric metric,
              const lh_hnsw_params *params, int threads, lh_hnsw **out, lh_err *err)
{
    lh_hnsw_params p;
    int rc = params_check(params, &p, dim, err);
    if (rc != 0)
        return rc;
    if (n > UINT32_MAX - 1)
        return lh_err_set(err, LH_ETOOBIG, 413, "too_many_vectors", "at most 2^32-2 vectors");
    lh_hnsw *h = alloc_index(dim, metric, &p, n);
    if (!h)
        goto oom;
    h->vectors = malloc((n ? n : 1) * dim * sizeof *h->vectors);
    h->links0 = calloc(n ? n : 1, (1 + (size_t)h->m0) * sizeof *h->links0);
    h->upper = calloc(n ? n : 1, sizeof *h->upper);
    h->levels = calloc(n ? n : 1, 1);
    h->node_locks = malloc((n ? n : 1) * sizeof *h->node_locks);
    if (!h->vectors || !h->links0 || !h->upper || !h->levels || !h->node_locks)
        goto oom;
    memcpy(h->vectors, vectors, n * dim * sizeof *h->vectors);
    for (size_t i = 0; i < n; i++) {
        if (metric == LH_METRIC_COSINE)
            lh_vec_normalise(h->vectors + i * dim, dim);
        pthread_mutex_init(&h->node_locks[i], NULL);
        int level = draw_level(p.seed, (uint32_t)i, p.m);
        h->levels[i] = (uint8_t)level;
        if (level > 0 &&
            !(h->upper[i] = calloc((size_t)level, (1 + (size_t)p.m) * sizeof *h->upper[i]))) {
            for (size_t j = i + 1; j < n; j++)
                pthread_mutex_init(&h->node_locks[j], NULL); /* so free can destroy all */
            goto oom;
        }
    }
    if (n > 0) {
        h->entry = 0;
        h->max_level = h->levels[0];
    }
    /* Where the CPU multiplies bfloat16 (AVX-512 BF16), a new node's walks and the choice
     * of its own links score bfloat16 copies of the vectors: half the bytes of a float row
     * and twice the products per instruction, and the rows a choice compares are the ones
     * its walk has just read. A full list re-chosen when a node is linked in is chosen on
     * floats (connect). L2 is |a|² + |b|² - 2a·b with the norms of the bfloat16 vectors
     * themselves: the squared distance between the rounded vectors, up to float rounding.
     * bench/vector and the unit test compare recall with float builds of the same data. */
    if (h->k->dot_bf16 && n > 1 && (h->bf16 = lh_try_malloc(n * dim * sizeof *h->bf16)) != NULL) {
        lh_vec__to_bf16(h->vectors, h->bf16, n * dim);
        if (metric == LH_METRIC_L2 &&
            (h->bf16_norm = lh_try_malloc(n * sizeof *h->bf16_norm)) == NULL) {
            free(h->bf16);
            h->bf16 = NULL;
        }
        for (size_t i = 0; h->bf16_norm && i < n; i++)
            h->bf16_norm[i] = h->k->dot_bf16(h->bf16 + i * dim, h->bf16 + i * dim, dim);
        h->built_bf16 = h->bf16 != NULL;
    }
    if (threads <= 0)
        threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    builder b = {.h = h};
    atomic_init(&b.next, 1);
    atomic_init(&b.failed, 0);
    pthread_t tids[64];
    int started = 0;
    for (int t = 1; t < threads && n > 1; t++)
        if (pthread_create(&tids[started], NULL, build_worker, &b) == 0)
            started++;
    if (n > 1)
        build_worker(&b);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    free(h->bf16);
    free(h->bf16_norm);
    h->bf16 = NULL;
    h->bf16_norm = NULL;
    if (atomic_load(&b.failed) || repair_ways_in(h) != 0 || lh_hnsw__find_islands(h) != 0 ||
        (p.quant == LH_QUANT_INT8 && lh_hnsw__quantize(h) != 0))
        goto oom;
    *out = h;
    return 0;
oom:
    lh_hnsw_free(h);
    return lh_err_set(err, LH_ENOMEM, 503, "out_of_memory",
                      "not enough memory to build an index of %zu vectors of %u dimensions", n,
                      dim);
}

void
lh_hnsw_free(lh_hnsw *h)
{
    if (h == NULL)
        return;
    free(h->bf16);
    free(h->bf16_norm);
    for (visited *v = h->pool, *next; v; v = next) {
        next = v->next;
        lh_hnsw__visited_free(v);
    }
    if (h->node_locks) {
        for (size_t i = 0; i < h->n; i++)
            pthread_mutex_destroy(&h->node_locks[i]);
        free(h->node_locks);
    }
    if (h->map) { /* vectors, links0 and levels live in the mapping */
        lh_hnsw__unmap(h);
    } else {
        free(h->vectors);
        free(h->links0);
        free(h->levels);
        for (size_t i = 0; h->upper && i < h->n; i++)
            free(h->upper[i]);
    }
    if (h->codes_heap) {
        free(h->codes);
        free(h->q_min);
        free(h->q_scale);
        free(h->q_norm);
    }
    free(h->upper_block);
    free(h->upper);
    free(h->islands);
    pthread_mutex_destroy(&h->global);
    pthread_mutex_destroy(&h->pool_lock);
    free(h);
}

/* ---- searching ----------------------------------------------------------------------------- */

/* An int8 walk's ef best, re-scored on the float vectors (prefetching the next), sorted. */
static void
rerank(const lh_hnsw *h, const float *q, lh_hit *hits, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            __builtin_prefetch(h->vectors + (size_t)hits[i + 1].id * h->dim);
        hits[i].distance = dist(h, q, hits[i].id);
    }
    qsort(hits, n, sizeof *hits, by_distance);
}

size_t
lh_hnsw_search(const lh_hnsw *hc, const float *query, size_t k, size_t ef, lh_vec_filter_fn filter,
               void *ctx, lh_hit *out)
{
    lh_hnsw *h = (lh_hnsw *)hc; /* the visited pool is the only thing a search changes */
    if (h->n == 0 || k == 0)
        return 0;
    float local[3 * 1024];
    float *q = h->dim <= 1024 ? local : malloc(3 * (size_t)h->dim * sizeof *q);
    visited *vis = lh_hnsw__visited_get(h);
    size_t got = 0;
    if (!q || !vis)
        goto out;
    memcpy(q, query, h->dim * sizeof *q);
    if (h->metric == LH_METRIC_COSINE)
        lh_vec_normalise(q, h->dim);
    probe p = {q, NULL, 0, NULL, 0, NULL, 0};
    if (h->codes)
        probe_codes(h, q, q + h->dim, (int8_t *)(q + 2 * (size_t)h->dim), &p);
    uint32_t cur = h->entry;
    float cur_d = dist_p(h, &p, cur);
    descend(h, &p, h->max_level, 0, false, &cur, &cur_d, vis->links);
    if (ef == 0)
        ef = h->params.ef_search;
    if (ef < k)
        ef = k;
    if (h->codes && ef < 2 * k) /* re-ranking needs candidates past the k-th to reorder */
        ef = 2 * k;
    heap *top = &vis->top;
    top->n = 0;
    top->max = true;
    if (search_layer(h, &p, cur, cur_d, h->islands, h->n_islands, ef, 0, vis, filter, ctx, false,
                     top) == 0) {
        if (h->codes) { /* every candidate the walk kept, in true distance order */
            rerank(h, q, top->a, top->n);
            got = top->n < k ? top->n : k;
            memcpy(out, top->a, got * sizeof *out);
        } else {
            while (top->n > k)
                heap_pop(top);
            got = top->n;
            for (size_t i = got; i > 0; i--)
                out[i - 1] = heap_pop(top);
        }
        for (size_t i = 0; i < got && h->metric == LH_METRIC_COSINE; i++)
            out[i].distance += 1.0f; /* 1 - dot */
    }
out:
    if (vis)
        lh_hnsw__visited_put(h, vis);
    if (q != local)
        free(q);
    return got;
}

size_t
lh_hnsw_count(const lh_hnsw *h)
{
    return h->n;
}

uint32_t
lh_hnsw_dim(const lh_hnsw *h)
{
    return h->dim;
}

lh_metric
lh_hnsw_metric(const lh_hnsw *h)
{
    return h->metric;
}

lh_hnsw_params
lh_hnsw_get_params(const lh_hnsw *h)
{
    return h->params;
}

const float *
lh_hnsw_vector(const lh_hnsw *h, uint32_t i)
{
    return h->vectors + (size_t)i * h->dim;
}

size_t
lh_hnsw_vector_bytes(const lh_hnsw *h)
{
    if (!h->codes)
        return h->n * h->dim * sizeof(float);
    return h->n * h->dim + h->n * sizeof *h->q_norm + 2 * (size_t)h->dim * sizeof(float);
}

size_t
lh_hnsw_mapped_bytes(const lh_hnsw *h)
{
    return h->codes && h->map ? h->n * h->dim * sizeof(float) : 0;
}

size_t
lh_hnsw_memory(const lh_hnsw *h)
{
    size_t bytes = sizeof *h + lh_hnsw_vector_bytes(h) +
                   h->n * (1 + (size_t)h->m0) * sizeof(uint32_t) + h->n + h->n * sizeof(uint32_t *);
    if (h->codes && !h->map) /* built here: the floats are held too, until it is reloaded */
        bytes += h->n * h->dim * sizeof(float);
    for (size_t i = 0; i < h->n; i++)
        bytes += (size_t)h->levels[i] * (1 + h->params.m) * sizeof(uint32_t);
    return bytes;
}

size_t
lh_hnsw_served_memory(const lh_hnsw *h)
{
    size_t bytes = lh_hnsw_memory(h);
    return h->codes && !h->map ? bytes - h->n * h->dim * sizeof(float) : bytes;
}
