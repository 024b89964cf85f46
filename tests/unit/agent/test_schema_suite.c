/*
 * test_schema_suite.c — the validator (src/agent/schema*.c) against the official JSON
 * Schema Test Suite, as Debian packages it (json-schema-test-suite 2.0.0: drafts 3, 4, 6
 * and 7; no 2020-12). We run the newest packaged draft, draft-7: every group of every
 * top-level file, plus the optional files for the formats we assert and for number
 * handling.
 *
 * Each group either runs — its schema compiles and every case's verdict matches "valid" —
 * or is skipped because its schema uses a keyword we refuse (then compiling it must fail
 * with invalid_schema, so "skipped" always means "refused", never "ignored"). Skips are
 * found by walking the schema, not by trusting the compiler. Any mismatch fails the test.
 *
 * Draft-7 and 2020-12 differ in ways these files touch, handled explicitly (draft_notes):
 * a draft-7 "items": [..] array is 2020-12's "prefixItems": [..] (with no
 * additionalItems, which we refuse anyway), so those groups run translated.
 *
 * LH_SCHEMA_SUITE_DIR overrides where the draft7 folder is.
 */
#include "testutil.h"

#include "agent/schema.h"

#include <jansson.h>

#define DEFAULT_SUITE "/usr/share/json-schema-test-suite/tests/draft7"

/* Draft-7 keywords the validator refuses (a group using one is skipped). */
static const char *const refused[] = {
    "$ref",
    "definitions",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "dependencies",
    "patternProperties",
    "propertyNames",
    "contains",
    "additionalItems",
    "contentMediaType",
    "contentEncoding",
};
#define N_REFUSED (sizeof refused / sizeof refused[0])

/* The optional files we run: formats we assert, and number handling. bignum's integers
 * do not fit in 64 bits, so it is read with every number as a double. */
static const struct {
    const char *path;
    size_t load_flags;
} optional_files[] = {
    {"optional/format/date.json", 0},
    {"optional/format/date-time.json", 0},
    {"optional/format/email.json", 0},
    {"optional/zeroTerminatedFloats.json", 0},
    {"optional/bignum.json", JSON_DECODE_INT_AS_REAL},
};

typedef struct suite_stats {
    size_t cases_passed, groups_run, groups_skipped, groups_translated, mismatches;
    size_t refused_hits[N_REFUSED];
} suite_stats;

/* Mark in hits every refused keyword the schema uses; recurse into the subschema
 * positions draft-7 has. */
static void
find_refused(const json_t *schema, bool *hits)
{
    if (!json_is_object(schema))
        return;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)schema, key, value)
    {
        for (size_t k = 0; k < N_REFUSED; k++)
            if (strcmp(key, refused[k]) == 0)
                hits[k] = true;
        if (strcmp(key, "properties") == 0 || strcmp(key, "definitions") == 0 ||
            strcmp(key, "patternProperties") == 0 || strcmp(key, "dependencies") == 0) {
            const char *name;
            json_t *sub;
            json_object_foreach(value, name, sub)
            {
                find_refused(sub, hits);
            }
        } else if (json_is_array(value) && strcmp(key, "enum") != 0 && strcmp(key, "const") != 0 &&
                   strcmp(key, "required") != 0 && strcmp(key, "type") != 0 &&
                   strcmp(key, "examples") != 0) {
            size_t i;
            json_t *sub;
            json_array_foreach(value, i, sub)
            {
                find_refused(sub, hits);
            }
        } else if (json_is_object(value) && strcmp(key, "const") != 0 &&
                   strcmp(key, "default") != 0) {
            find_refused(value, hits);
        }
    }
}

/* Draft-7 → 2020-12: "items": [...] becomes "prefixItems": [...]. Returns how many
 * places changed. */
static int
translate_draft7(json_t *schema)
{
    if (!json_is_object(schema))
        return 0;
    int changed = 0;
    json_t *items = json_object_get(schema, "items");
    if (json_is_array(items) && json_object_get(schema, "additionalItems") == NULL) {
        json_object_set(schema, "prefixItems", items);
        json_object_del(schema, "items");
        changed++;
    }
    const char *key;
    json_t *value;
    json_object_foreach(schema, key, value)
    {
        if (strcmp(key, "properties") == 0) {
            const char *name;
            json_t *sub;
            json_object_foreach(value, name, sub)
            {
                changed += translate_draft7(sub);
            }
        } else if (strcmp(key, "prefixItems") == 0) {
            size_t i;
            json_t *sub;
            json_array_foreach(value, i, sub)
            {
                changed += translate_draft7(sub);
            }
        } else if (strcmp(key, "items") == 0 || strcmp(key, "additionalProperties") == 0) {
            changed += translate_draft7(value);
        }
    }
    return changed;
}

static void
run_group(const char *file, json_t *group, suite_stats *stats)
{
    const char *description = json_string_value(json_object_get(group, "description"));
    json_t *schema = json_deep_copy(json_object_get(group, "schema"));
    bool hits[N_REFUSED] = {false};
    find_refused(schema, hits);
    bool skip = false;
    for (size_t k = 0; k < N_REFUSED; k++)
        if (hits[k]) {
            stats->refused_hits[k]++;
            skip = true;
        }

    lh_schema *compiled = NULL;
    lh_err err;
    lh_err_clear(&err);
    if (skip) {
        /* skipped means refused: the compiler must say no */
        int rc = lh_schema_compile(schema, &compiled, &err);
        if (rc == 0 || strcmp(err.code, "invalid_schema") != 0) {
            printf("MISMATCH %s: \"%s\": a schema with a refused keyword compiled\n", file,
                   description);
            stats->mismatches++;
        }
        lh_schema_free(compiled);
        stats->groups_skipped++;
        json_decref(schema);
        return;
    }
    if (translate_draft7(schema) > 0) {
        printf("  draft-7 'items' array run as 2020-12 'prefixItems': %s: \"%s\"\n", file,
               description);
        stats->groups_translated++;
    }
    if (lh_schema_compile(schema, &compiled, &err) != 0) {
        printf("MISMATCH %s: \"%s\": schema refused: %s\n", file, description, err.message);
        stats->mismatches += json_array_size(json_object_get(group, "tests"));
        json_decref(schema);
        return;
    }
    stats->groups_run++;
    size_t i;
    json_t *test;
    json_array_foreach(json_object_get(group, "tests"), i, test)
    {
        json_t *data = json_object_get(test, "data");
        bool expected = json_is_true(json_object_get(test, "valid"));
        json_t *errors = json_array();
        bool got = lh_schema_validate(compiled, data, "", errors);
        bool got_quick = lh_schema_validate(compiled, data, "", NULL);
        /* an invalid verdict always comes with at least one well-formed error */
        bool shape_ok = got ? json_array_size(errors) == 0 : json_array_size(errors) > 0;
        size_t e;
        json_t *error;
        json_array_foreach(errors, e, error)
        {
            shape_ok = shape_ok && json_is_string(json_object_get(error, "pointer")) &&
                       json_is_string(json_object_get(error, "keyword")) &&
                       json_is_string(json_object_get(error, "message"));
        }
        if (got != expected || got_quick != got || !shape_ok) {
            printf("MISMATCH %s: \"%s\" / \"%s\": expected %s, got %s%s\n", file, description,
                   json_string_value(json_object_get(test, "description")),
                   expected ? "valid" : "invalid", got ? "valid" : "invalid",
                   shape_ok ? "" : " (malformed errors)");
            stats->mismatches++;
        } else {
            stats->cases_passed++;
        }
        json_decref(errors);
    }
    lh_schema_free(compiled);
    json_decref(schema);
}

static void
run_file(const char *dir, const char *name, size_t flags, suite_stats *stats)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_error_t jerr;
    json_t *groups = json_load_file(path, flags, &jerr);
    if (groups == NULL) {
        printf("MISMATCH %s: could not read: %s (line %d)\n", name, jerr.text, jerr.line);
        stats->mismatches++;
        return;
    }
    size_t i;
    json_t *group;
    json_array_foreach(groups, i, group)
    {
        run_group(name, group, stats);
    }
    json_decref(groups);
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_draft7_suite(void **state)
{
    const char *dir = getenv("LH_SCHEMA_SUITE_DIR");
    if (dir == NULL || dir[0] == '\0')
        dir = DEFAULT_SUITE;
    DIR *d = opendir(dir);
    if (d == NULL) {
        printf("the JSON Schema Test Suite is not installed at %s: run scripts/setup.sh "
               "(Debian package json-schema-test-suite)\n",
               dir);
        fail();
    }
    char *names[256];
    size_t n_names = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL && n_names < 256) {
        size_t len = strlen(entry->d_name);
        if (len > 5 && strcmp(entry->d_name + len - 5, ".json") == 0)
            names[n_names++] = strdup(entry->d_name);
    }
    closedir(d);
    qsort(names, n_names, sizeof names[0], name_cmp);

    suite_stats stats = {0};
    for (size_t k = 0; k < n_names; k++) {
        run_file(dir, names[k], 0, &stats);
        free(names[k]);
    }
    for (size_t k = 0; k < sizeof optional_files / sizeof optional_files[0]; k++)
        run_file(dir, optional_files[k].path, optional_files[k].load_flags, &stats);

    char keywords[1024] = "";
    size_t len = 0;
    for (size_t k = 0; k < N_REFUSED; k++)
        if (stats.refused_hits[k])
            len += (size_t)snprintf(keywords + len, sizeof keywords - len, "%s%s", len ? ", " : "",
                                    refused[k]);
    printf("%zu files + %zu optional: %zu groups run (%zu translated from draft-7), "
           "%zu mismatches\n",
           n_names, sizeof optional_files / sizeof optional_files[0], stats.groups_run,
           stats.groups_translated, stats.mismatches);
    printf("%zu cases passed, %zu groups skipped (keywords: %s)\n", stats.cases_passed,
           stats.groups_skipped, keywords);
    assert_true(n_names > 0);
    assert_true(stats.cases_passed > 0);
    assert_int_equal(stats.mismatches, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_draft7_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
