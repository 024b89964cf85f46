/*
 * http_probe.c — the HTTP path of a vector search measured from a client that adds
 * nothing of its own: one keep-alive connection, requests written whole from prepared
 * bytes, answers read by Content-Length. Interleaves GET /health, a search with the query
 * vector as JSON numbers and the same search as a raw float32 body, and prints for each the
 * p50 and p99 of the round trip minus the answer's took_us (the index's own time).
 *
 * usage: http_probe PORT TOKEN INDEX VECTORS_FILE ROUNDS [FILTER ...]
 *   VECTORS_FILE: a first line "DIM", then query vectors as little-endian float32, DIM
 *   floats each (bench/vector/api.sh writes it).
 *   FILTER: a filter, URL-encoded, for a raw search with it; printed as
 *   "filter<i> <p50 round trip> <p50 took_us>" after the interleaved three.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int
by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char answer[1 << 20];

/* One request and its whole answer; the round trip in us, took_us in *took. */
static double
round_trip(int fd, const char *req, size_t n, long *took)
{
    double t0 = now_us();
    for (size_t off = 0; off < n;) {
        ssize_t k = write(fd, req + off, n - off);
        if (k <= 0) {
            perror("write");
            exit(1);
        }
        off += (size_t)k;
    }
    size_t got = 0;
    long body_len = -1;
    char *body = NULL;
    for (;;) {
        ssize_t k = read(fd, answer + got, sizeof answer - 1 - got);
        if (k <= 0) {
            fprintf(stderr, got == sizeof answer - 1 ? "an answer over 1 MiB\n"
                                                      : "the server closed the connection\n");
            exit(1);
        }
        got += (size_t)k;
        answer[got] = '\0';
        if (body == NULL && (body = strstr(answer, "\r\n\r\n")) != NULL) {
            body += 4;
            const char *cl = strstr(answer, "Content-Length: ");
            if (cl == NULL || strncmp(answer, "HTTP/1.1 200", 12) != 0) {
                fprintf(stderr, "unexpected answer: %.300s\n", answer);
                exit(1);
            }
            body_len = atol(cl + 16);
        }
        if (body && (long)(got - (size_t)(body - answer)) >= body_len)
            break;
    }
    double us = now_us() - t0;
    const char *t = strstr(body, "\"took_us\":");
    *took = t ? atol(t + 10) : 0;
    return us;
}

int
main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: http_probe PORT TOKEN INDEX VECTORS_FILE ROUNDS [FILTER ...]\n");
        return 2;
    }
    const char *token = argv[2], *index = argv[3];
    int rounds = atoi(argv[5]);
    FILE *f = fopen(argv[4], "rb");
    char line[32];
    int dim = 0;
    /* the first line alone (fscanf's "\n" would also eat whitespace bytes of the floats) */
    if (f == NULL || fgets(line, sizeof line, f) == NULL || (dim = atoi(line)) <= 0 ||
        dim > 4096) {
        fprintf(stderr, "cannot read %s\n", argv[4]);
        return 2;
    }
    size_t cap = 64, n_vec = 0;
    float *vecs = malloc(cap * (size_t)dim * sizeof *vecs);
    while (vecs && fread(vecs + n_vec * (size_t)dim, sizeof *vecs, (size_t)dim, f) == (size_t)dim) {
        if (++n_vec == cap) {
            float *grown = realloc(vecs, (cap *= 2) * (size_t)dim * sizeof *vecs);
            if (grown == NULL)
                free(vecs);
            vecs = grown;
        }
    }
    fclose(f);
    if (vecs == NULL || n_vec == 0 || rounds <= 0) {
        fprintf(stderr, "no vectors in %s\n", argv[4]);
        return 2;
    }

    /* the requests, prepared: [3 * i] health, [3 * i + 1] JSON, [3 * i + 2] raw */
    char **req = calloc(3 * n_vec, sizeof *req);
    size_t *req_len = calloc(3 * n_vec, sizeof *req_len);
    size_t body_cap = (size_t)dim * 32 + 64;
    char *json = malloc(body_cap);
    for (size_t i = 0; i < n_vec; i++) {
        const float *v = vecs + i * (size_t)dim;
        size_t jl = (size_t)sprintf(json, "{\"vector\":[");
        for (int d = 0; d < dim; d++) /* as numpy's tolist() and json.dumps write a float32 */
            jl += (size_t)sprintf(json + jl, "%s%.17g", d ? "," : "", (double)v[d]);
        jl += (size_t)sprintf(json + jl, "],\"k\":10}");
        size_t head = 512 + strlen(token) + strlen(index);
        req[3 * i] = malloc(head);
        req_len[3 * i] = (size_t)snprintf(
            req[3 * i], head,
            "GET /health HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer %s\r\n\r\n", token);
        req[3 * i + 1] = malloc(head + jl);
        req_len[3 * i + 1] = (size_t)snprintf(
            req[3 * i + 1], head + jl,
            "POST /vectors/indexes/%s/search HTTP/1.1\r\nHost: probe\r\nAuthorization: Bearer "
            "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
            index, token, jl, json);
        size_t raw = (size_t)dim * sizeof(float);
        req[3 * i + 2] = malloc(head + raw);
        int hl = snprintf(req[3 * i + 2], head,
                          "POST /vectors/indexes/%s/search?k=10 HTTP/1.1\r\nHost: "
                          "probe\r\nAuthorization: Bearer %s\r\nContent-Type: "
                          "application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                          index, token, raw);
        memcpy(req[3 * i + 2] + hl, v, raw);
        req_len[3 * i + 2] = (size_t)hl + raw;
    }

    signal(SIGPIPE, SIG_IGN); /* a closed connection is reported by write, not a signal */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("connect");
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    size_t total = (size_t)rounds * n_vec;
    double *res[3];
    for (int k = 0; k < 3; k++)
        res[k] = malloc(total * sizeof(double));
    for (int pass = 0; pass < 2; pass++) { /* the first pass warms up */
        for (size_t r = 0; r < total; r++) {
            size_t i = r % n_vec;
            for (int k = 0; k < 3; k++) {
                long took;
                double us = round_trip(fd, req[3 * i + k], req_len[3 * i + k], &took);
                if (pass == 1)
                    res[k][r] = us - (double)took;
            }
        }
    }
    static const char *const names[] = {"health", "json", "raw"};
    for (int k = 0; k < 3; k++) {
        qsort(res[k], total, sizeof(double), by_value);
        printf("%s %.0f %.0f\n", names[k], res[k][total / 2], res[k][total * 99 / 100]);
    }

    /* filtered searches, each filter on its own (the filter cache keeps its positions
     * after the first), the round trip itself and took_us */
    double *took_us = malloc(total * sizeof(double));
    for (int fi = 6; fi < argc; fi++) {
        size_t raw = (size_t)dim * sizeof(float);
        size_t cap_f = 1024 + strlen(token) + strlen(index) + strlen(argv[fi]) + raw;
        char *fr = malloc(cap_f);
        for (int pass = 0; pass < 2; pass++) {
            for (size_t r = 0; r < total; r++) {
                size_t i = r % n_vec;
                int hl =
                    snprintf(fr, cap_f,
                             "POST /vectors/indexes/%s/search?k=10&filter=%s HTTP/1.1\r\nHost: "
                             "probe\r\nAuthorization: Bearer %s\r\nContent-Type: "
                             "application/octet-stream\r\nContent-Length: %zu\r\n\r\n",
                             index, argv[fi], token, raw);
                memcpy(fr + hl, vecs + i * (size_t)dim, raw);
                long took;
                double us = round_trip(fd, fr, (size_t)hl + raw, &took);
                if (pass == 1) {
                    res[0][r] = us;
                    took_us[r] = (double)took;
                }
            }
        }
        qsort(res[0], total, sizeof(double), by_value);
        qsort(took_us, total, sizeof(double), by_value);
        printf("filter%d %.0f %.0f\n", fi - 5, res[0][total / 2], took_us[total / 2]);
        free(fr);
    }
    free(took_us);
    close(fd);
    return 0;
}
