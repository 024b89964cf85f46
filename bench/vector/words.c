/*
 * bench/vector/words.c — a real data set from a Debian package: the words of
 * /usr/share/dict/american-english (package wamerican), embedded with the builtin model
 * (hashed character n-grams, 384 dims). Every 100th word is held out as a query; the
 * rest are the base. Writes OUT.base and OUT.queries as little-endian float32 rows, for
 * bench.cpp's BENCH_DATA=file:OUT.
 * usage: words [WORDLIST] OUT
 */
#define _POSIX_C_SOURCE 200809L
#include "vector/vector.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main(int argc, char **argv)
{
    const char *list = argc > 2 ? argv[1] : "/usr/share/dict/american-english";
    const char *out = argv[argc > 2 ? 2 : 1];
    if (argc < 2) {
        fprintf(stderr, "usage: words [WORDLIST] OUT\n");
        return 2;
    }
    FILE *in = fopen(list, "r");
    if (!in) {
        fprintf(stderr, "words: cannot read %s (scripts/setup.sh installs wamerican)\n", list);
        return 1;
    }
    lh_config *cfg = NULL;
    lh_embedder *e = NULL;
    lh_err err;
    if (lh_config_load(NULL, NULL, &cfg, &err) != 0 ||
        lh_embedder_open(cfg, "builtin", &e, &err) != 0) {
        fprintf(stderr, "words: %s\n", err.message);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.base", out);
    FILE *base = fopen(path, "wb");
    snprintf(path, sizeof path, "%s.queries", out);
    FILE *queries = fopen(path, "wb");
    if (!base || !queries) {
        fprintf(stderr, "words: cannot write %s.*\n", out);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, n = 0, nq = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, in)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        const char *texts[] = {line};
        size_t lens[] = {(size_t)len};
        float *v = NULL;
        uint32_t dim = 0;
        if (lh_embedder_embed(e, texts, lens, 1, &v, &dim, NULL, &err) != 0) {
            fprintf(stderr, "words: %s\n", err.message);
            return 1;
        }
        FILE *to = (n + nq) % 100 == 99 ? queries : base;
        fwrite(v, sizeof *v, dim, to);
        *(to == queries ? &nq : &n) += 1;
        free(v);
    }
    fclose(base);
    fclose(queries);
    fclose(in);
    free(line);
    lh_embedder_free(e);
    lh_config_free(cfg);
    printf("words: %zu base and %zu query vectors of 384 dims from %s\n", n, nq, list);
    return 0;
}
