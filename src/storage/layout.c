/*
 * layout.c — the key shapes of layout.h. Pure string building; thread-safe.
 */
#include "storage/storage.h"

#include <stdlib.h>
#include <string.h>

char *
lh_layout_manifest_key(const char *dataset, int64_t version)
{
    return lh_sprintf(LH_LAYOUT_DATASETS "%s/_manifest/v%020lld.parquet", dataset,
                      (long long)version);
}

bool
lh_layout_manifest_folder(const char *folder)
{
    size_t plen = strlen(LH_LAYOUT_DATASETS);
    if (strncmp(folder, LH_LAYOUT_DATASETS, plen) != 0)
        return strncmp(LH_LAYOUT_DATASETS, folder, strlen(folder)) == 0; /* on the way there */
    const char *slash = strchr(folder + plen, '/');
    return slash == NULL || slash[1] == '\0' || strcmp(slash + 1, "_manifest/") == 0;
}

char *
lh_layout_manifest_prefix(const char *dataset)
{
    return lh_sprintf(LH_LAYOUT_DATASETS "%s/_manifest/", dataset);
}

char *
lh_layout_data_prefix(const char *dataset)
{
    return lh_sprintf(LH_LAYOUT_DATASETS "%s/data/", dataset);
}

char *
lh_layout_data_key(const char *dataset, const char *commit, size_t n)
{
    return lh_sprintf(LH_LAYOUT_DATASETS "%s/data/%s-%zu.parquet", dataset, commit, n);
}

char *
lh_layout_index_prefix(const char *index)
{
    return lh_sprintf(LH_LAYOUT_VECTORS "%s/", index);
}

char *
lh_layout_gen_key(const char *index, int64_t generation, const char *file)
{
    return lh_sprintf(LH_LAYOUT_VECTORS "%s/gen-%06lld/%s", index, (long long)generation, file);
}

char *
lh_layout_live_prefix(const char *index)
{
    return lh_sprintf(LH_LAYOUT_VECTORS "%s/_live/", index);
}

char *
lh_layout_live_key(const char *index, int64_t seq)
{
    return lh_sprintf(LH_LAYOUT_VECTORS "%s/_live/v%06lld.json", index, (long long)seq);
}

char *
lh_layout_events_key(const char *tag, const char *dataset, int64_t version)
{
    return lh_sprintf(LH_LAYOUT_JOURNAL "batch_%s_%s_v%lld.parquet", tag, dataset,
                      (long long)version);
}

char *
lh_layout_workspace_key(const char *id, int64_t version)
{
    return lh_sprintf(LH_LAYOUT_WORKSPACES "%s/v%010lld.json", id, (long long)version);
}

char *
lh_layout_workspace_delta_key(const char *id, const char *dataset, const char *tag)
{
    return lh_sprintf(LH_LAYOUT_WORKSPACES "%s/delta/%s/%s.parquet", id, dataset, tag);
}

char *
lh_layout_workspace_values_key(const char *id, const char *dataset, const char *tag)
{
    return lh_sprintf(LH_LAYOUT_WORKSPACES "%s/delta/%s/%s.values.json", id, dataset, tag);
}

int
lh_layout_parse_workspace_key(const char *key, char *id, size_t id_size, int64_t *version)
{
    size_t plen = strlen(LH_LAYOUT_WORKSPACES);
    if (strncmp(key, LH_LAYOUT_WORKSPACES, plen) != 0)
        return -1;
    const char *i = key + plen, *slash = strchr(i, '/');
    if (slash == NULL || slash == i || (size_t)(slash - i) >= id_size || slash[1] != 'v')
        return -1;
    char *end = NULL;
    long long v = strtoll(slash + 2, &end, 10);
    if (end == slash + 2 || v < 1 || strcmp(end, ".json") != 0)
        return -1;
    memcpy(id, i, (size_t)(slash - i));
    id[slash - i] = '\0';
    *version = v;
    return 0;
}

char *
lh_layout_checkpoint_key(int64_t seq)
{
    return lh_sprintf(LH_LAYOUT_CHECKPOINTS "c%020lld.parquet", (long long)seq);
}

char *
lh_layout_eval_key(const char *eval)
{
    return lh_sprintf(LH_LAYOUT_EVALS "%s.parquet", eval);
}

char *
lh_layout_audit_batch_key(const char *segment)
{
    if (strncmp(segment, "seg_", 4) == 0)
        segment += 4;
    return lh_sprintf(LH_LAYOUT_AUDIT "batch_%s", segment);
}

int
lh_layout_parse_manifest_key(const char *key, char *name, size_t name_size, int64_t *version)
{
    static const char manifest[] = "/_manifest/v";
    size_t plen = strlen(LH_LAYOUT_DATASETS);
    if (strncmp(key, LH_LAYOUT_DATASETS, plen) != 0)
        return -1;
    const char *n = key + plen;
    const char *slash = strchr(n, '/');
    if (slash == NULL || (size_t)(slash - n) >= name_size)
        return -1;
    if (strncmp(slash, manifest, sizeof manifest - 1) != 0)
        return -1;
    const char *digits = slash + sizeof manifest - 1;
    char *end = NULL;
    long long v = strtoll(digits, &end, 10);
    if (end != digits + 20 || strcmp(end, ".parquet") != 0 || v < 1)
        return -1;
    memcpy(name, n, (size_t)(slash - n));
    name[slash - n] = '\0';
    *version = v;
    return lh_name_valid(name) ? 0 : -1;
}

int
lh_layout_parse_checkpoint_key(const char *key, int64_t *seq)
{
    size_t plen = strlen(LH_LAYOUT_CHECKPOINTS "c");
    if (strncmp(key, LH_LAYOUT_CHECKPOINTS "c", plen) != 0)
        return -1;
    const char *digits = key + plen;
    char *end = NULL;
    long long n = strtoll(digits, &end, 10);
    if (digits[0] < '0' || digits[0] > '9' || end != digits + 20 || strcmp(end, ".parquet") != 0 ||
        n < 1)
        return -1;
    *seq = n;
    return 0;
}

int
lh_layout_parse_vector_key(const char *key, char *index, size_t index_size, int64_t *generation,
                           const char **file)
{
    static const char gen[] = "gen-";
    size_t plen = strlen(LH_LAYOUT_VECTORS);
    if (strncmp(key, LH_LAYOUT_VECTORS, plen) != 0)
        return -1;
    const char *n = key + plen;
    const char *slash = strchr(n, '/');
    if (slash == NULL || slash == n || (size_t)(slash - n) >= index_size)
        return -1;
    memcpy(index, n, (size_t)(slash - n));
    index[slash - n] = '\0';
    if (!lh_name_valid(index))
        return -1;
    const char *rest = slash + 1;
    *generation = 0;
    *file = rest;
    if (strncmp(rest, gen, sizeof gen - 1) == 0) {
        const char *digits = rest + sizeof gen - 1;
        char *end = NULL;
        long long g = strtoll(digits, &end, 10);
        if (end != digits && *end == '/' && g > 0 && digits[0] >= '0' && digits[0] <= '9') {
            *generation = g;
            *file = end + 1;
        }
    }
    return 0;
}

int
lh_layout_parse_live_key(const char *key, int64_t *seq)
{
    static const char live[] = "/_live/v";
    const char *at = strstr(key, live);
    if (strncmp(key, LH_LAYOUT_VECTORS, strlen(LH_LAYOUT_VECTORS)) != 0 || at == NULL)
        return -1;
    const char *digits = at + sizeof live - 1;
    char *end = NULL;
    long long n = strtoll(digits, &end, 10);
    if (end == digits || digits[0] < '0' || digits[0] > '9' || strcmp(end, ".json") != 0)
        return -1;
    *seq = n;
    return 0;
}

char *
lh_layout_tool_key(const char *name, int64_t version)
{
    return lh_sprintf(LH_LAYOUT_TOOLS "%s/v%06lld.json", name, (long long)version);
}

char *
lh_layout_tool_prefix(const char *name)
{
    return lh_sprintf(LH_LAYOUT_TOOLS "%s/", name);
}

int
lh_layout_parse_tool_key(const char *key, char *name, size_t name_size, int64_t *version)
{
    size_t plen = strlen(LH_LAYOUT_TOOLS);
    if (strncmp(key, LH_LAYOUT_TOOLS, plen) != 0)
        return -1;
    const char *slash = strchr(key + plen, '/');
    if (slash == NULL || slash == key + plen || (size_t)(slash - key - plen) >= name_size ||
        slash[1] != 'v')
        return -1;
    const char *digits = slash + 2;
    char *end = NULL;
    long long n = strtoll(digits, &end, 10);
    if (end == digits || digits[0] < '0' || digits[0] > '9' || strcmp(end, ".json") != 0 || n < 1)
        return -1;
    memcpy(name, key + plen, (size_t)(slash - key - plen));
    name[slash - key - plen] = '\0';
    *version = n;
    return 0;
}
