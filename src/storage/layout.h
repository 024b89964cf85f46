/*
 * layout.h — where things live inside a bucket: the one place each key prefix and key
 * shape is spelled. Every module that names an object (catalog manifests and data files,
 * the events journal, the error journal, vector generations, eval sets, trials) builds
 * the key here, so a change of layout is a change of this file. Included by storage.h.
 *
 *   datasets/{name}/_manifest/v{N:020}.parquet   dataset snapshot N
 *   datasets/{name}/data/{commit}-{n}.parquet     base and delta data files
 *   _journal/events/batch_{tag}_{dataset}_v{N}.parquet   events of dataset version N
 *   _errors/bucket_errors/batch_{epoch_us}.jsonl  bucket operation failures
 *   _vectors/{index}/gen-{G:06}/{file}            one generation of an index
 *   _vectors/{index}/_live/v{N:06}.json           the index's live log
 *   _audit/batch_{segment}.jsonl                  agent tool call records (src/agent)
 *   _hnsw/evals/{name}.parquet                    eval sets
 *   _hnsw/trials/batch_{epoch_us}.jsonl           HNSW trial journal
 *   _tools/{name}/v{N:06}.json                    version N of a tool definition
 *   _workspaces/{id}/v{N:010}.json                workspace version N (primary bucket)
 *   _workspaces/{id}/delta/{dataset}/{tag}.parquet  rows staged in a workspace (the
 *                                                 dataset's bucket)
 *   _catalog/checkpoint/c{N:020}.parquet          catalog checkpoint N (primary bucket)
 */
#ifndef LH_STORAGE_LAYOUT_H
#define LH_STORAGE_LAYOUT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define LH_LAYOUT_DATASETS "datasets/"
#define LH_LAYOUT_JOURNAL "_journal/events/"
#define LH_LAYOUT_ERRORS "_errors/bucket_errors/"
#define LH_LAYOUT_VECTORS "_vectors/"
#define LH_LAYOUT_EVALS "_hnsw/evals/"
#define LH_LAYOUT_TRIALS "_hnsw/trials/"
#define LH_LAYOUT_TOOLS "_tools/"
#define LH_LAYOUT_AUDIT "_audit/"
#define LH_LAYOUT_WORKSPACES "_workspaces/"
#define LH_LAYOUT_CHECKPOINTS "_catalog/checkpoint/"

/* Each returns a new string (free). */
char *lh_layout_manifest_key(const char *dataset, int64_t version);
char *lh_layout_manifest_prefix(const char *dataset);
/* Whether the folder key (ending in '/') under datasets/ may hold manifests: a dataset's
 * own folder and its _manifest/ folder, not its data/ (a walk of the manifests skips the
 * rest). */
bool lh_layout_manifest_folder(const char *folder);
char *lh_layout_data_prefix(const char *dataset);
char *lh_layout_data_key(const char *dataset, const char *commit, size_t n);
char *lh_layout_index_prefix(const char *index);
char *lh_layout_gen_key(const char *index, int64_t generation, const char *file);
char *lh_layout_live_prefix(const char *index);
char *lh_layout_live_key(const char *index, int64_t seq);
char *lh_layout_eval_key(const char *eval);
/* Version N of tool `name` (create-only; a deleted tool is a tombstone version). */
char *lh_layout_tool_key(const char *name, int64_t version);
char *lh_layout_tool_prefix(const char *name);
/* The events batch of version `version` of `dataset`, written by the commit `tag`
 * ("{epoch_us}-{random}"): the name says which manifest must list it (catalog/journal.c). */
char *lh_layout_events_key(const char *tag, const char *dataset, int64_t version);
/* Catalog checkpoint N (N >= 1), in the primary bucket (catalog/checkpoint.c). */
char *lh_layout_checkpoint_key(int64_t seq);

/* The audit batch shipped from the local segment file `segment` ("seg_....jsonl"):
 * "_audit/batch_{segment without seg_}". Named after its segment, so shipping the same
 * segment again after a crash finds the batch it stored. */
char *lh_layout_audit_batch_key(const char *segment);
/* Workspaces (src/workspace): version N of workspace `id`, a delta file of rows staged
 * in it for `dataset` (written by the stage `tag`), and the values that stage leaves to
 * publish (JSON, beside the delta file in the dataset's bucket). */
char *lh_layout_workspace_key(const char *id, int64_t version);
char *lh_layout_workspace_delta_key(const char *id, const char *dataset, const char *tag);
char *lh_layout_workspace_values_key(const char *id, const char *dataset, const char *tag);
/* Parse "_workspaces/{id}/v{N}.json": 0 with id (id_size bytes) and *version set, else -1
 * (delta files and other keys). */
int lh_layout_parse_workspace_key(const char *key, char *id, size_t id_size, int64_t *version);

/* Parse "datasets/{name}/_manifest/v{N:020}.parquet": 0 with name (name_size bytes)
 * and version set when key is one, -1 otherwise. */
int lh_layout_parse_manifest_key(const char *key, char *name, size_t name_size, int64_t *version);
/* Parse "_catalog/checkpoint/c{N:020}.parquet": 0 with *seq = N, -1 otherwise. */
int lh_layout_parse_checkpoint_key(const char *key, int64_t *seq);

/* Parse a key under "_vectors/{index}/": 0 with index (index_size bytes) set, and
 * *generation = G and *file pointing into key after "gen-{G}/" when the key is in a
 * generation's folder, else *generation = 0 and *file after "{index}/" (the live log).
 * -1 when key is not under an index's folder. */
int lh_layout_parse_vector_key(const char *key, char *index, size_t index_size, int64_t *generation,
                               const char **file);
/* Parse "_tools/{name}/v{N}.json": 0 with name and *version set, -1 otherwise. */
int lh_layout_parse_tool_key(const char *key, char *name, size_t name_size, int64_t *version);
/* Parse "_vectors/{index}/_live/v{N}.json" (any index): 0 with *seq = N, else -1. */
int lh_layout_parse_live_key(const char *key, int64_t *seq);

#endif /* LH_STORAGE_LAYOUT_H */
