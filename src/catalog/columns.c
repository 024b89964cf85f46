/*
 * columns.c — column governance: each column's sensitivity and mask (kept in the
 * manifest's metadata under "columns"), suggestions of likely personal data found at
 * ingest, the metadata a configuration requires, and the masking of column values for a
 * reader whose clearance is below a column's sensitivity.
 *
 * metadata.columns = {"<column>": {"sensitivity": level, "mask": "null"|"hash",
 *                                   "suggested_sensitivity": level, "suggestion_reason": text}}
 * A column without a sensitivity of its own has the dataset's. A reader of clearance c
 * sees a column of level l when l <= c; otherwise its values are NULL, or, with mask
 * "hash", HMAC-SHA256(server key, the value's text) as 64 hex digits, so equal values stay
 * equal (joins and GROUP BY still work) and the key never leaves the server. Everything
 * here reads immutable manifests; thread-safe.
 */
#include "catalog/catalog_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Column metadata keys a client may set (the suggestions are written by ingest). */
static const char *const COLUMN_KEYS[] = {"sensitivity", "mask", NULL};

/* ---- validation ------------------------------------------------------------------------- */

int
lh_catalog__check_columns_meta(const json_t *v, lh_err *err)
{
    if (!json_is_object(v) || json_object_size(v) == 0)
        return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                          "'columns' must be an object of column name to "
                          "{\"sensitivity\": level, \"mask\": \"null\"|\"hash\"}");
    const char *col;
    json_t *spec;
    json_object_foreach((json_t *)v, col, spec)
    {
        if (!json_is_object(spec) || json_object_size(spec) == 0)
            return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                              "columns.%s must be an object with 'sensitivity' and/or 'mask'", col);
        const char *key;
        json_t *val;
        json_object_foreach(spec, key, val)
        {
            bool known = false;
            for (const char *const *k = COLUMN_KEYS; *k; k++)
                known = known || strcmp(*k, key) == 0;
            if (!known) {
                lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                           "unknown field '%s' in columns.%s", key, col);
                lh_err_hint(err, "a column takes 'sensitivity' (" LH_LEVELS_TEXT
                                 ") and 'mask' (null or hash); null removes either");
                return LH_EINVAL;
            }
            if (json_is_null(val))
                continue;
            if (strcmp(key, "sensitivity") == 0 &&
                (!json_is_string(val) || lh_level_rank(json_string_value(val)) == 0))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                  "columns.%s.sensitivity must be one of " LH_LEVELS_TEXT, col);
            if (strcmp(key, "mask") == 0 &&
                (!json_is_string(val) || (strcmp(json_string_value(val), "null") != 0 &&
                                          strcmp(json_string_value(val), "hash") != 0)))
                return lh_err_set(err, LH_EINVAL, 400, "invalid_metadata",
                                  "columns.%s.mask must be \"null\" or \"hash\"", col);
        }
    }
    return 0;
}

static bool
has_column(const json_t *manifest, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "columns"), i, c)
    {
        if (strcmp(str_of(c, "name"), name) == 0)
            return true;
    }
    return false;
}

int
lh_catalog__merge_columns_meta(const json_t *current, const json_t *patch, json_t *meta,
                               lh_err *err)
{
    const char *col;
    json_t *spec;
    json_object_foreach((json_t *)patch, col, spec)
    {
        if (!has_column(current, col)) {
            lh_buf names;
            lh_buf_init(&names);
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(current, "columns"), i, c)
            {
                if (i < 20)
                    lh_buf_printf(&names, "%s%s", i ? ", " : "", str_of(c, "name"));
            }
            lh_err_set(err, LH_EINVAL, 400, "unknown_column", "dataset '%s' has no column '%s'",
                       str_of(current, "name"), col);
            lh_err_hint(err, "its columns: %s%s", names.data ? names.data : "",
                        json_array_size(json_object_get(current, "columns")) > 20 ? ", ..." : "");
            lh_buf_free(&names);
            return LH_EINVAL;
        }
    }
    json_t *cols = json_object_get(meta, "columns");
    if (!json_is_object(cols)) {
        cols = json_object();
        json_object_set_new(meta, "columns", cols);
    }
    json_object_foreach((json_t *)patch, col, spec)
    {
        json_t *entry = json_object_get(cols, col);
        if (!json_is_object(entry)) {
            entry = json_object();
            json_object_set_new(cols, col, entry);
        }
        const char *key;
        json_t *val;
        json_object_foreach(spec, key, val)
        {
            if (json_is_null(val))
                json_object_del(entry, key);
            else
                json_object_set(entry, key, val);
        }
        if (json_object_size(entry) == 0)
            json_object_del(cols, col);
    }
    return 0;
}

/* ---- reading ---------------------------------------------------------------------------- */

/* The rank of column `name` of manifest m: its own sensitivity, else the dataset's (a
 * dataset without one is internal, the default every ingest writes). */
static int
column_rank(const json_t *meta, const char *name)
{
    const json_t *own =
        json_object_get(json_object_get(json_object_get(meta, "columns"), name), "sensitivity");
    int rank = lh_level_rank(json_string_value(own));
    if (rank == 0)
        rank = lh_level_rank(json_string_value(json_object_get(meta, "sensitivity")));
    return rank ? rank : LH_LEVEL_INTERNAL;
}

void
lh_catalog_describe_columns(json_t *manifest)
{
    const json_t *meta = json_object_get(manifest, "metadata");
    const json_t *cols = json_object_get(meta, "columns");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "columns"), i, c)
    {
        const char *name = str_of(c, "name");
        json_object_set_new(c, "sensitivity", json_string(lh_level_name(column_rank(meta, name))));
        const json_t *entry = json_object_get(cols, name);
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)entry, key, val)
        {
            if (strcmp(key, "sensitivity") != 0)
                json_object_set(c, key, val);
        }
    }
}

json_t *
lh_catalog_mask_plan(const json_t *manifest, int clearance)
{
    if (clearance <= 0 || clearance >= LH_LEVEL_PII || manifest == NULL)
        return NULL; /* no principal (our own work), or one who may see everything */
    const json_t *meta = json_object_get(manifest, "metadata");
    const json_t *cols = json_object_get(meta, "columns");
    int dataset_rank = lh_level_rank(json_string_value(json_object_get(meta, "sensitivity")));
    if (dataset_rank <= clearance && json_object_size(cols) == 0)
        return NULL; /* the common case: nothing set per column, the dataset within reach */
    json_t *plan = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "columns"), i, c)
    {
        const char *name = str_of(c, "name");
        if (column_rank(meta, name) <= clearance)
            continue;
        const char *mask = json_string_value(json_object_get(json_object_get(cols, name), "mask"));
        if (plan == NULL)
            plan = json_object();
        json_object_set_new(plan, name,
                            json_string(mask && strcmp(mask, "hash") == 0 ? "hash" : "null"));
    }
    return plan;
}

/* The text a value is hashed as: a string's own characters, a number or boolean as SQL
 * casts it to VARCHAR (integers and booleans agree; other types as their JSON text). */
static char *
value_text(const json_t *v)
{
    if (json_is_string(v))
        return lh_strdup(json_string_value(v));
    if (json_is_integer(v))
        return lh_sprintf("%lld", (long long)json_integer_value(v));
    if (json_is_true(v))
        return lh_strdup("true");
    if (json_is_false(v))
        return lh_strdup("false");
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *copy = lh_strdup(s ? s : "");
    free(s);
    return copy;
}

json_t *
lh_catalog__mask_value(lh_catalog *c, const char *how, const json_t *v)
{
    if (v == NULL || json_is_null(v) || strcmp(how, "hash") != 0 || !c->mask_key_set)
        return json_null();
    char *text = value_text(v);
    char hex[65];
    lh_hmac_sha256_hex(c->mask_key, sizeof c->mask_key, text, strlen(text), hex);
    free(text);
    return json_string(hex);
}

void
lh_catalog_mask_row(lh_catalog *c, const json_t *plan, json_t *row)
{
    if (plan == NULL || !json_is_object(row))
        return;
    const char *col;
    json_t *how;
    json_object_foreach((json_t *)plan, col, how)
    {
        json_t *v = json_object_get(row, col);
        if (v)
            json_object_set_new(row, col, lh_catalog__mask_value(c, json_string_value(how), v));
    }
}

/* ---- SQL ----------------------------------------------------------------------------- */

static void
quote_ident(lh_buf *b, const char *name)
{
    lh_buf_puts(b, "\"");
    for (const char *p = name; *p; p++)
        lh_buf_printf(b, "%s", *p == '"' ? "\"\"" : (char[]){*p, 0});
    lh_buf_puts(b, "\"");
}

int
lh_catalog_masked_select_of(const json_t *manifest, int clearance, const char *select, char **out)
{
    json_t *plan = lh_catalog_mask_plan(manifest, clearance);
    if (plan == NULL) {
        *out = NULL;
        return 0;
    }
    lh_buf b;
    lh_buf_init(&b);
    lh_buf_puts(&b, "SELECT ");
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(manifest, "columns"), i, c)
    {
        const char *name = str_of(c, "name");
        const char *how = json_string_value(json_object_get(plan, name));
        if (i)
            lh_buf_puts(&b, ", ");
        if (how == NULL) {
            quote_ident(&b, name);
            continue;
        }
        if (strcmp(how, "hash") == 0) {
            lh_buf_puts(&b, LH_MASK_HASH_FN "(CAST(");
            quote_ident(&b, name);
            lh_buf_puts(&b, " AS VARCHAR))");
        } else {
            lh_buf_printf(&b, "CAST(NULL AS %s)", str_of(c, "type"));
        }
        lh_buf_puts(&b, " AS ");
        quote_ident(&b, name);
    }
    lh_buf_printf(&b, " FROM (%s) AS lh_masked", select);
    json_decref(plan);
    *out = lh_strdup(b.data);
    lh_buf_free(&b);
    return 1;
}

int
lh_catalog_masked_select(lh_catalog *c, const char *name, int clearance, const char *select,
                         char **out, lh_err *err)
{
    if (clearance <= 0 || clearance >= LH_LEVEL_PII) {
        *out = NULL;
        return 0;
    }
    json_t *m = NULL;
    int rc = lh_catalog_get(c, name, &m, err);
    if (rc != 0)
        return rc;
    char *sql = NULL;
    lh_catalog_masked_select_of(m, clearance, select, &sql);
    json_decref(m);
    *out = sql;
    return sql ? 1 : 0;
}

/* ---- answers that carry column values ------------------------------------------------------ */

int
lh_catalog_mask_history(lh_catalog *c, const char *name, int clearance, json_t *answer, lh_err *err)
{
    if (clearance <= 0 || clearance >= LH_LEVEL_PII)
        return 0;
    json_t *m = NULL;
    int rc = lh_catalog_get(c, name, &m, err);
    if (rc != 0)
        return rc;
    json_t *plan = lh_catalog_mask_plan(m, clearance);
    json_decref(m);
    if (plan == NULL)
        return 0;
    lh_catalog_mask_row(c, plan, json_object_get(answer, "current"));
    size_t i, j;
    json_t *h, *ch;
    json_array_foreach(json_object_get(answer, "history"), i, h)
    {
        lh_catalog_mask_row(c, plan, json_object_get(h, "row"));
        json_array_foreach(json_object_get(h, "changes"), j, ch)
        {
            const char *how = json_string_value(json_object_get(plan, str_of(ch, "field")));
            if (how == NULL)
                continue;
            json_object_set_new(ch, "old",
                                lh_catalog__mask_value(c, how, json_object_get(ch, "old")));
            json_object_set_new(ch, "new",
                                lh_catalog__mask_value(c, how, json_object_get(ch, "new")));
        }
    }
    /* the changes between versions: rows inserted, updated (before/after), deleted */
    const char *lists[] = {"inserted", "deleted", NULL};
    for (const char *const *l = lists; *l; l++)
        json_array_foreach(json_object_get(answer, *l), i, h) lh_catalog_mask_row(c, plan, h);
    json_array_foreach(json_object_get(answer, "updated"), i, h)
    {
        lh_catalog_mask_row(c, plan, json_object_get(h, "before"));
        lh_catalog_mask_row(c, plan, json_object_get(h, "after"));
    }
    json_decref(plan);
    return 0;
}

/* An event's value is JSON text (or null): a masked one is the text of the masked value. */
static void
mask_event_value(lh_catalog *c, json_t *event, const char *field, const char *how)
{
    const char *text = json_string_value(json_object_get(event, field));
    if (text == NULL)
        return;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *masked = lh_catalog__mask_value(c, how, v);
    json_decref(v);
    if (json_is_null(masked)) {
        json_object_set_new(event, field, json_null());
    } else {
        char *dumped = json_dumps(masked, JSON_COMPACT | JSON_ENCODE_ANY);
        json_object_set_new(event, field, json_string(dumped));
        free(dumped);
    }
    json_decref(masked);
}

void
lh_catalog_mask_events(lh_catalog *c, int clearance, json_t *events)
{
    if (clearance <= 0 || clearance >= LH_LEVEL_PII)
        return;
    json_t *plans = json_object(); /* dataset -> plan, or null when nothing to mask */
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e)
    {
        const char *ds_name = str_of(e, "dataset");
        const char *field = json_string_value(json_object_get(e, "field"));
        if (field == NULL) /* a dataset-level event carries counts, not values */
            continue;
        json_t *plan = json_object_get(plans, ds_name);
        if (plan == NULL) {
            json_t *m = NULL;
            lh_err ignored;
            json_t *p = lh_catalog_get(c, ds_name, &m, &ignored) == 0
                            ? lh_catalog_mask_plan(m, clearance)
                            : NULL;
            json_decref(m);
            plan = p ? p : json_null();
            json_object_set_new(plans, ds_name, plan);
        }
        const char *how = json_string_value(json_object_get(plan, field));
        if (how == NULL)
            continue;
        mask_event_value(c, e, "old_value", how);
        mask_event_value(c, e, "new_value", how);
    }
    json_decref(plans);
}

/* ---- required metadata --------------------------------------------------------------------- */

static bool
given(const json_t *v)
{
    return (json_is_string(v) && json_string_length(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0) || json_is_integer(v);
}

int
lh_catalog_check_required(lh_catalog *c, const json_t *client_meta, const json_t *current,
                          lh_err *err)
{
    if (c->require == NULL || c->require[0] == '\0')
        return 0;
    const json_t *have = current ? json_object_get(current, "metadata") : NULL;
    lh_buf missing;
    lh_buf_init(&missing);
    char *copy = lh_strdup(c->require), *save = NULL;
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save))
        if (!given(json_object_get(client_meta, f)) && !given(json_object_get(have, f)))
            lh_buf_printf(&missing, "%s%s", missing.len ? ", " : "", f);
    free(copy);
    int rc = 0;
    if (missing.len) {
        rc = lh_err_set(err, LH_EINVAL, 400, "metadata_required",
                        "this server requires metadata that the request lacks: %s", missing.data);
        lh_err_hint(err, "give them with the ingest (e.g. owner=..., description=..., "
                         "sensitivity=" LH_LEVELS_TEXT "); [catalog] require lists them");
    }
    lh_buf_free(&missing);
    return rc;
}

int
lh_catalog_require_for(lh_catalog *c, const char *name, const json_t *client_meta, lh_err *err)
{
    if (c->require == NULL)
        return 0;
    json_t *m = NULL;
    lh_err ignored;
    if (lh_catalog_get(c, name, &m, &ignored) == 0 && strcmp(str_of(m, "state"), "live") != 0) {
        json_decref(m);
        m = NULL;
    }
    int rc = lh_catalog_check_required(c, client_meta, m, err);
    json_decref(m);
    return rc;
}

/* ---- suggestions ---------------------------------------------------------------------------- */

/* Column names that usually hold personal data, as whole words of the lower-cased name
 * (words split at anything but letters and digits) or as the whole name. */
static const char *const PII_WORDS[] = {
    "email", "mail", "phone",   "mobile", "tel",      "telephone", "ssn",     "nin", "passport",
    "iban",  "dob",  "address", "street", "postcode", "zipcode",   "surname", NULL};
static const char *const PII_NAMES[] = {"e_mail",      "email_address", "phone_number",
                                        "national_id", "card_number",   "credit_card",
                                        "creditcard",  "first_name",    "last_name",
                                        "full_name",   "firstname",     "lastname",
                                        "fullname",    "date_of_birth", "birth_date",
                                        "birthdate",   "tax_id",        "social_security_number",
                                        "postal_code", "zip",           NULL};

static bool
name_suggests_pii(const char *name)
{
    char lower[256];
    size_t n = 0;
    for (; name[n] && n + 1 < sizeof lower; n++)
        lower[n] = (char)tolower((unsigned char)name[n]);
    lower[n] = '\0';
    for (const char *const *p = PII_NAMES; *p; p++) {
        const char *hit = strstr(lower, *p);
        size_t len = strlen(*p);
        if (hit && (hit == lower || !isalnum((unsigned char)hit[-1])) &&
            (hit[len] == '\0' || !isalnum((unsigned char)hit[len])))
            return true;
    }
    char *save = NULL;
    for (char *w = strtok_r(lower, " _-.", &save); w; w = strtok_r(NULL, " _-.", &save))
        for (const char *const *p = PII_WORDS; *p; p++)
            if (strcmp(w, *p) == 0)
                return true;
    return false;
}

static bool
looks_like_email(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || strchr(at + 1, '@') || strpbrk(s, " \t,;<>"))
        return false;
    const char *dot = strrchr(at, '.');
    return dot && dot > at + 1 && strlen(dot + 1) >= 2;
}

static bool
looks_like_date(const char *s)
{
    int a, b, c;
    char x, y;
    return sscanf(s, "%d%c%d%c%d", &a, &x, &b, &y, &c) == 5 && x == y &&
           (x == '-' || x == '/' || x == '.') && strpbrk(s, " ") == NULL;
}

/* Digits of s with spaces, hyphens, dots and parentheses left out; false when anything
 * else is in it. *seps counts the separators, *plus a leading '+'. */
static bool
digits_of(const char *s, char *out, size_t size, int *seps, bool *plus)
{
    size_t n = 0;
    *seps = 0;
    *plus = s[0] == '+';
    for (const char *p = s + (*plus ? 1 : 0); *p; p++) {
        if (isdigit((unsigned char)*p)) {
            if (n + 1 >= size)
                return false;
            out[n++] = *p;
        } else if (strchr(" -.()", *p)) {
            (*seps)++;
        } else {
            return false;
        }
    }
    out[n] = '\0';
    return n > 0;
}

static bool
luhn_ok(const char *digits)
{
    size_t n = strlen(digits);
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

/* What a sampled value looks like: "email", "phone", "card_number", "ssn" or NULL. */
static const char *
value_kind(const char *s)
{
    if (looks_like_email(s))
        return "email";
    size_t len = strlen(s);
    if (len == 11 && isdigit((unsigned char)s[0]) && s[3] == '-' && s[6] == '-') {
        bool ok = true;
        for (size_t i = 0; i < len; i++)
            ok = ok && (i == 3 || i == 6 || isdigit((unsigned char)s[i]));
        if (ok)
            return "ssn";
    }
    char digits[32];
    int seps;
    bool plus;
    if (!digits_of(s, digits, sizeof digits, &seps, &plus))
        return NULL;
    size_t n = strlen(digits);
    if (n >= 13 && n <= 19 && !plus && luhn_ok(digits))
        return "card_number";
    if (n >= 8 && n <= 15 && (plus || seps >= 2) && !looks_like_date(s))
        return "phone";
    return NULL;
}

/* Types whose values may hold the shapes above. */
static bool
samplable(const char *type)
{
    return strcmp(type, "VARCHAR") == 0 || strcmp(type, "BIGINT") == 0 ||
           strcmp(type, "UBIGINT") == 0 || strcmp(type, "HUGEINT") == 0 ||
           strncmp(type, "DECIMAL(", 8) == 0;
}

#define SAMPLE_ROWS 200
#define SAMPLE_MIN 3     /* non-NULL values needed before values suggest anything */
#define SAMPLE_SHARE 0.8 /* share of them that must have the same shape */
/* A text column whose values average more bytes than this (the file's own column chunk
 * sizes say, from its footer) holds prose, not emails (25 bytes on average in the demo),
 * phone or card numbers: it is not sampled. Sampling it decodes its whole column chunk
 * (LIMIT does not spare that): 18 ms of the demo candidates ingest (resumes of 111 bytes
 * on average), 50 ms with resumes of 230. */
#define SAMPLE_MAX_AVG_BYTES 64

/* Text columns of the Parquet file too wide to sample (a set: name -> true; new). A file
 * whose footer cannot be read gives none, and every column is sampled. */
static json_t *
wide_columns(lh_catalog *c, const char *local_parquet)
{
    json_t *wide = json_object(), *rows = NULL;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT path_in_schema AS name, sum(total_uncompressed_size) AS bytes, "
                      "sum(num_values) AS n FROM parquet_metadata(");
    lh_sql_quote(&sql, local_parquet);
    lh_buf_puts(&sql, ") GROUP BY ALL");
    lh_err err;
    if (lh_engine_rows(c->engine, sql.data, &rows, &err) == 0) {
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r)
        {
            json_int_t bytes = json_integer_value(json_object_get(r, "bytes"));
            json_int_t n = json_integer_value(json_object_get(r, "n"));
            const char *name = json_string_value(json_object_get(r, "name"));
            if (name && n > 0 && bytes / n > SAMPLE_MAX_AVG_BYTES)
                json_object_set_new(wide, name, json_true());
        }
    }
    json_decref(rows);
    lh_buf_free(&sql);
    return wide;
}

/* Per sampled column: the shape most of its values have, or NULL. */
static const char *
column_shape(const json_t *rows, const char *alias)
{
    static const char *const kinds[] = {"email", "phone", "card_number", "ssn"};
    int counts[4] = {0}, seen = 0;
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *s = json_string_value(json_object_get(r, alias));
        if (s == NULL || s[0] == '\0')
            continue;
        seen++;
        const char *k = value_kind(s);
        for (int j = 0; k && j < 4; j++)
            if (strcmp(k, kinds[j]) == 0)
                counts[j]++;
    }
    for (int j = 0; j < 4 && seen >= SAMPLE_MIN; j++)
        if (counts[j] >= SAMPLE_SHARE * seen)
            return kinds[j];
    return NULL;
}

int
lh_catalog_suggest_sensitivity(lh_catalog *c, const char *local_parquet, const json_t *columns,
                               json_t **out, lh_err *err)
{
    json_t *found = json_object(), *wide = wide_columns(c, local_parquet);
    lh_buf sql;
    lh_buf_init(&sql);
    size_t i, n_sampled = 0;
    json_t *col;
    json_array_foreach(columns, i, col)
    {
        const char *name = str_of(col, "name");
        if (name_suggests_pii(name))
            json_object_set_new(found, name,
                                json_pack("{s:s, s:s}", "suggested_sensitivity", "pii",
                                          "suggestion_reason", "name"));
        if (!samplable(str_of(col, "type")) || json_object_get(wide, name))
            continue;
        lh_buf_puts(&sql, n_sampled ? ", " : "SELECT ");
        lh_buf_puts(&sql, "CAST(");
        quote_ident(&sql, name);
        lh_buf_printf(&sql, " AS VARCHAR) AS c%zu", i);
        n_sampled++;
    }
    int rc = 0;
    json_t *rows = NULL;
    if (n_sampled > 0) {
        lh_buf_puts(&sql, " FROM read_parquet(");
        lh_sql_quote(&sql, local_parquet);
        lh_buf_printf(&sql, ") LIMIT %d", SAMPLE_ROWS);
        if ((rc = lh_engine_rows(c->engine, sql.data, &rows, err)) != 0)
            goto out;
        json_array_foreach(columns, i, col)
        {
            char alias[32];
            snprintf(alias, sizeof alias, "c%zu", i);
            const char *shape = json_object_get(rows ? json_array_get(rows, 0) : NULL, alias)
                                    ? column_shape(rows, alias)
                                    : NULL;
            if (shape == NULL)
                continue;
            const char *name = str_of(col, "name");
            json_t *entry = json_object_get(found, name);
            char *reason = lh_sprintf("%svalues: %s", entry ? "name, " : "", shape);
            json_object_set_new(found, name,
                                json_pack("{s:s, s:s}", "suggested_sensitivity", "pii",
                                          "suggestion_reason", reason));
            free(reason);
        }
    }
out:
    json_decref(rows);
    json_decref(wide);
    lh_buf_free(&sql);
    if (rc != 0) {
        json_decref(found);
        return rc;
    }
    *out = found;
    return 0;
}

void
lh_catalog_apply_suggestions(json_t *meta, const json_t *suggestions)
{
    if (json_object_size(suggestions) == 0)
        return;
    json_t *cols = json_object_get(meta, "columns");
    if (!json_is_object(cols)) {
        cols = json_object();
        json_object_set_new(meta, "columns", cols);
    }
    const char *name;
    json_t *s;
    json_object_foreach((json_t *)suggestions, name, s)
    {
        json_t *entry = json_object_get(cols, name);
        if (!json_is_object(entry)) {
            entry = json_object();
            json_object_set_new(cols, name, entry);
        }
        json_object_update(entry, s);
    }
}
