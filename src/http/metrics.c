/*
 * metrics.c — request counters and latency histograms in Prometheus text format.
 *
 * Series are keyed by route pattern (not the raw path, so cardinality stays bounded),
 * method and status. One mutex guards everything; observe is a few array updates.
 */
#include "http/http_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                 0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

typedef struct series {
    int route_index;
    char method[8];
    int status;
    uint64_t count;
} series;

typedef struct histogram {
    uint64_t buckets[N_BUCKETS]; /* non-cumulative; summed when rendered */
    uint64_t count;
    double sum;
} histogram;

struct lh_metrics {
    pthread_mutex_t lock;
    const lh_route *routes;
    size_t n_routes;
    series *series;
    size_t n_series, cap_series;
    histogram *hist; /* n_routes + 1 (the last for unmatched requests) */
};

lh_metrics *
lh_http__metrics_new(const lh_route *routes, size_t n_routes)
{
    lh_metrics *m = lh_calloc(1, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->routes = routes;
    m->n_routes = n_routes;
    m->hist = lh_calloc(n_routes + 1, sizeof *m->hist);
    return m;
}

void
lh_http__metrics_free(lh_metrics *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->series);
    free(m->hist);
    free(m);
}

void
lh_http__metrics_observe(lh_metrics *m, int route_index, const char *method, int status,
                         double seconds)
{
    /* Methods outside the known set collapse to one label to keep cardinality bounded. */
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    const char *label = "OTHER";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            label = known[i];
    pthread_mutex_lock(&m->lock);
    series *s = NULL;
    for (size_t i = 0; i < m->n_series; i++)
        if (m->series[i].route_index == route_index && m->series[i].status == status &&
            strcmp(m->series[i].method, label) == 0) {
            s = &m->series[i];
            break;
        }
    if (s == NULL) {
        if (m->n_series == m->cap_series) {
            m->cap_series = m->cap_series ? m->cap_series * 2 : 32;
            m->series = lh_realloc(m->series, m->cap_series * sizeof *m->series);
        }
        s = &m->series[m->n_series++];
        memset(s, 0, sizeof *s);
        s->route_index = route_index;
        s->status = status;
        snprintf(s->method, sizeof s->method, "%s", label);
    }
    s->count++;
    histogram *h = &m->hist[route_index >= 0 ? (size_t)route_index : m->n_routes];
    for (size_t b = 0; b < N_BUCKETS; b++)
        if (seconds <= BUCKETS[b]) {
            h->buckets[b]++;
            break;
        }
    h->count++;
    h->sum += seconds;
    pthread_mutex_unlock(&m->lock);
}

static const char *
route_label(const lh_metrics *m, int index)
{
    return index >= 0 ? m->routes[index].pattern : "unmatched";
}

void
lh_http__metrics_render(lh_metrics *m, lh_buf *out, long in_flight)
{
    pthread_mutex_lock(&m->lock);
    lh_buf_puts(out, "# HELP lakehouse_http_requests_total HTTP requests answered, by route "
                     "pattern, method and status.\n"
                     "# TYPE lakehouse_http_requests_total counter\n");
    for (size_t i = 0; i < m->n_series; i++) {
        const series *s = &m->series[i];
        lh_buf_printf(out,
                      "lakehouse_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} "
                      "%llu\n",
                      route_label(m, s->route_index), s->method, s->status,
                      (unsigned long long)s->count);
    }
    lh_buf_puts(out, "# HELP lakehouse_http_request_duration_seconds Time from the first "
                     "byte of a request to its response, by route pattern.\n"
                     "# TYPE lakehouse_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r <= m->n_routes; r++) {
        const histogram *h = &m->hist[r];
        if (h->count == 0)
            continue;
        const char *route = route_label(m, r < m->n_routes ? (int)r : -1);
        uint64_t cumulative = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            cumulative += h->buckets[b];
            lh_buf_printf(out,
                          "lakehouse_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} "
                          "%llu\n",
                          route, BUCKETS[b], (unsigned long long)cumulative);
        }
        lh_buf_printf(out,
                      "lakehouse_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                      "%llu\n"
                      "lakehouse_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                      "lakehouse_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                      route, (unsigned long long)h->count, route, h->sum, route,
                      (unsigned long long)h->count);
    }
    pthread_mutex_unlock(&m->lock);
    lh_buf_printf(out,
                  "# HELP lakehouse_http_requests_in_flight Requests being received or "
                  "answered now.\n"
                  "# TYPE lakehouse_http_requests_in_flight gauge\n"
                  "lakehouse_http_requests_in_flight %ld\n",
                  in_flight);
}
