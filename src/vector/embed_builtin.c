/*
 * embed_builtin.c — the built-in embedding "builtin" (version builtin-v1): a lexical
 * embedding that needs no model file and no network, so vector search works offline and
 * the same text always gets the same vector, on every machine.
 *
 * Signed feature hashing (Weinberger et al.) of three kinds of features of the text:
 *   - words: maximal runs of ASCII letters and digits (ASCII lowercased) or of bytes of
 *     multi-byte UTF-8 characters, weight 1.0, hashed as "w:" + word;
 *   - word pairs: each word with the next, weight 0.7, hashed as "b:" + w1 + " " + w2;
 *   - character trigrams of "<" + word + ">", weight 0.5, hashed as "c:" + trigram.
 * Each feature's 64-bit FNV-1a hash h picks dimension h % 384 and sign (h >> 63 ? -1 : +1);
 * the sum is scaled to unit length (a text without features gives the zero vector).
 * Similar wording gives similar vectors; meaning without shared words does not — that is
 * what the remote providers are for.
 */
#include "vector/vector.h"

#include <string.h>

static uint64_t
fnv1a(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ULL;
    return h;
}

#define FNV_START 0xcbf29ce484222325ULL

static void
add(float *v, uint64_t h, float weight)
{
    v[h % LH_EMBED_BUILTIN_DIM] += (h >> 63) ? -weight : weight;
}

static bool
word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

void
lh_embed_builtin(const char *text, size_t len, float *out)
{
    memset(out, 0, LH_EMBED_BUILTIN_DIM * sizeof *out);
    char word[256], prev[256];
    size_t prev_len = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        size_t n = 0;
        while (i < len && word_byte((unsigned char)text[i])) {
            char c = text[i++];
            if (n < sizeof word - 2) /* long tokens are cut, not dropped */
                word[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        if (n == 0)
            break;
        add(out, fnv1a(fnv1a(FNV_START, "w:", 2), word, n), 1.0f);
        if (prev_len > 0) {
            uint64_t h = fnv1a(fnv1a(FNV_START, "b:", 2), prev, prev_len);
            h = fnv1a(fnv1a(h, " ", 1), word, n);
            add(out, h, 0.7f);
        }
        /* trigrams of <word> */
        char framed[260];
        framed[0] = '<';
        memcpy(framed + 1, word, n);
        framed[n + 1] = '>';
        for (size_t j = 0; j + 3 <= n + 2; j++)
            add(out, fnv1a(fnv1a(FNV_START, "c:", 2), framed + j, 3), 0.5f);
        memcpy(prev, word, n);
        prev_len = n;
    }
    lh_vec_normalise(out, LH_EMBED_BUILTIN_DIM);
}
