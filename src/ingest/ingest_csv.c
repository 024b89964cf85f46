/*
 * ingest_csv.c — a CSV upload → one zstd Parquet file, without silent reshaping or loss.
 *
 * DuckDB's sniffer decides dialect, header and types, but left alone it reshapes a file
 * whose rows disagree with its header (it takes the widest rows as the shape and skips
 * the lines before them) and types integers past int64 DOUBLE, losing digits. So:
 *
 * - The sniffer is told the header is the first line (skip = 0) and to ignore bad rows
 *   while it decides; the reader then keeps every row that disagrees with the header's
 *   field count, every value that does not fit its type, in its reject table
 *   (store_rejects), which we read on the same connection after the conversion. Rows of
 *   the wrong width are a 400 ragged_rows naming the line — or, when the client asked
 *   (on_bad_rows), skipped or padded with NULLs and reported in the answer.
 * - ADR-010: a value that does not fit the type sniffed from the sample makes us
 *   convert again with the sniffer reading the whole file (sample_size = -1), which
 *   types a mixed column VARCHAR.
 * - A column the sniffer typed DOUBLE is read as DOUBLE, and the written file's footer
 *   tells whether that was exact: when every value's magnitude is below 10^15, no value was an
 *   integer of 16 or more digits (which DOUBLE may not hold exactly). Otherwise the
 *   column is read again as text and cast by us: such an integer stops the conversion,
 *   and the column is converted again as DECIMAL(38,0) when every value is an integer of
 *   at most 38 digits, else as VARCHAR.
 * - The first, strict conversion trusts a sniff of SMALL_SAMPLE rows, about half the
 *   cost of the sniffer's default 20,480 (most of a sniff is trying dialects on the
 *   sample). A smaller sample changes the answer in three ways only, and each is caught:
 *   a value it did not foresee fails the strict conversion (which then starts over with
 *   the default sample, as every failure does); a column empty in every sampled row is
 *   typed VARCHAR, so a VARCHAR column with empty values has the default sample's sniff
 *   confirm the plan; and a sample without quotes has no quote character, so a file with
 *   quote characters is sniffed with the default sample at once.
 *
 * - The reader is given the dialect and every column's name and type the sniffer found
 *   (auto_detect off), so a conversion reads the file once and never sniffs it again.
 * - A file that must fail on its first bad row (on_bad_rows=error, the default) is first
 *   converted strictly — no reject tables, which cost the reader a fifth to a third of a
 *   clean conversion. A clean file is done in that one pass. A type the sample got wrong is
 *   retried as above, still strictly; any other refusal (a row of the wrong width) means
 *   the careful passes above run, which find and name the bad rows.
 *
 * Every attempt is a full conversion; the retries happen only for files that need them.
 */
#include "ingest/ingest_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* the conversion stops with this text (and the column's number) when a DOUBLE column
 * holds an integer too long for it, or an exact column holds a value that is not one */
#define RETYPE_MARK "lh_retype_column:"
#define RETYPE_ERROR "Invalid Input Error: " RETYPE_MARK
#define FIRST_LINES 10
#define SMALL_SAMPLE 2048
/* a DOUBLE column whose values all stay below this in magnitude held no integer of 16 or
 * more digits: every one was exact */
#define EXACT_DOUBLE_BELOW "1e15"

/* how a column the sniffer typed DOUBLE is converted: as sniffed, exact, or as text */
enum { AS_SNIFFED = 0, AS_EXACT_INT = 1, AS_TEXT = LH_INGEST__AS_TEXT };

void
lh_ingest__number_select(lh_buf *select, const char *name, size_t idx, bool exact)
{
    lh_buf id;
    lh_buf_init(&id);
    lh_sql_ident(&id, name);
    if (exact)
        lh_buf_printf(select,
                      "CASE WHEN %s IS NULL OR regexp_full_match(%s, '\\s*[+-]?[0-9]{1,38}\\s*') "
                      "THEN CAST(trim(%s) AS DECIMAL(38,0)) ELSE error('" RETYPE_MARK
                      "%zu') END AS %s",
                      id.data, id.data, id.data, idx, id.data);
    else
        lh_buf_printf(select,
                      "CASE WHEN length(%s) > 15 AND regexp_full_match(%s, "
                      "'\\s*[+-]?[0-9]{16,}\\s*') THEN error('" RETYPE_MARK
                      "%zu') ELSE CAST(%s AS DOUBLE) END AS %s",
                      id.data, id.data, idx, id.data, id.data);
    lh_buf_free(&id);
}

bool
lh_ingest__retype_next(const json_t *columns, json_t *retype, const char *detail)
{
    const char *mark = strstr(detail, RETYPE_ERROR);
    if (mark == NULL)
        return false;
    size_t idx = (size_t)strtoull(mark + strlen(RETYPE_ERROR), NULL, 10);
    const char *name = json_string_value(json_object_get(json_array_get(columns, idx), "name"));
    if (name == NULL)
        return false;
    int how = (int)json_integer_value(json_object_get(retype, name));
    if (how == AS_TEXT)
        return false;
    json_object_set_new(retype, name, json_integer(how + 1));
    return true;
}

typedef struct csv_state {
    const lh_ingest_file_opts *o;
    const json_t *append_columns; /* the dataset's columns for append, else NULL */
    bool full_sniff;
    bool small_sample;    /* the first strict conversion: a sniff of SMALL_SAMPLE rows */
    bool doubles_as_text; /* DOUBLE columns read as text and cast (lh_ingest__number_select) */
    int64_t sniffed_rows; /* the sample of the sniff that made sniffed (sample_rows) */
    bool null_pad;        /* read with null_padding (on_bad_rows=null_pad, after a first pass) */
    json_t *sniffed;      /* [{"name","type"}] */
    char *dialect;        /* the reader's options for what the sniffer found (auto_detect off) */
    json_t *retype;       /* {"name": AS_*} */
    int64_t bad_count;    /* rows of the wrong width, from the pass that found them */
    json_t *bad_lines;    /* their first line numbers */
} csv_state;

static const char *
dataset_type(const json_t *append_columns, const char *name)
{
    size_t i;
    json_t *c;
    json_array_foreach(append_columns, i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "name")), name) == 0)
            return json_string_value(json_object_get(c, "type"));
    }
    return NULL;
}

/* One of the sniffer's dialect fields as read_csv takes it: "(empty)" is its word for none. */
static void
dialect_option(lh_buf *out, const json_t *row, const char *field, const char *option)
{
    const char *v = json_string_value(json_object_get(row, field));
    if (v == NULL)
        return;
    lh_buf_printf(out, ", %s = ", option);
    lh_sql_quote(out, strcmp(v, "(empty)") == 0 ? "" : v);
}

/* The reader's options for the dialect the sniffer found (new): given to read_csv with
 * auto_detect off, so the conversion does not sniff the file a second time. */
static char *
dialect_of(const json_t *row)
{
    lh_buf out;
    lh_buf_init(&out);
    lh_buf_puts(&out, ", auto_detect = false");
    dialect_option(&out, row, "Delimiter", "delim");
    dialect_option(&out, row, "Quote", "quote");
    dialect_option(&out, row, "Escape", "escape");
    dialect_option(&out, row, "NewLineDelimiter", "new_line");
    dialect_option(&out, row, "Comment", "comment");
    dialect_option(&out, row, "DateFormat", "dateformat");
    dialect_option(&out, row, "TimestampFormat", "timestampformat");
    lh_buf_printf(&out, ", header = %s",
                  json_is_true(json_object_get(row, "HasHeader")) ? "true" : "false");
    return lh_buf_steal(&out);
}

/* Whether the file holds a character the sniffer may take for a quote ('"' or '\''):
 * a sample that saw none has no quote character, which is right only if the file has
 * none either. An unreadable file says yes: the default sniff then reports it. */
static bool
has_quote_chars(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0)
            close(fd);
        return true;
    }
    if (st.st_size == 0) {
        close(fd);
        return false;
    }
    /* mapped, not read: copying a 44 MB file through read() cost 34 ms, this 6 */
    size_t len = (size_t)st.st_size;
    const char *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
        return true;
    madvise((void *)p, len, MADV_SEQUENTIAL);
    bool found = memchr(p, '"', len) || memchr(p, '\'', len);
    munmap((void *)p, len);
    return found;
}

/* How many rows the sniff reads: the whole file after a value the sample did not
 * foresee, SMALL_SAMPLE for the first strict conversion, else the sniffer's default. */
static int64_t
sample_rows(const csv_state *s)
{
    return s->full_sniff ? -1 : s->small_sample ? SMALL_SAMPLE : 0;
}

/* The sniffer always ignores bad rows while it decides: without that, a file with a row
 * of the wrong width is sniffed as one column holding whole lines, which a strict reader
 * then reads without complaint (tried; test_csv_input's ragged files caught it). */
static int
sniff(lh_engine *eng, csv_state *s, lh_err *err)
{
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql, "SELECT Columns AS columns, Delimiter, Quote, Escape, NewLineDelimiter, "
                      "Comment, HasHeader, DateFormat, TimestampFormat FROM sniff_csv(");
    lh_sql_quote(&sql, s->o->src_path);
    lh_buf_puts(&sql, ", skip = 0, ignore_errors = true");
    s->sniffed_rows = sample_rows(s);
    if (s->sniffed_rows != 0)
        lh_buf_printf(&sql, ", sample_size = %lld", (long long)s->sniffed_rows);
    lh_buf_puts(&sql, ")");
    json_t *rows = NULL;
    int rc = lh_engine_rows(eng, sql.data, &rows, err);
    lh_buf_free(&sql);
    if (rc != 0)
        return rc;
    const json_t *row = json_array_get(rows, 0);
    json_t *columns = json_object_get(row, "columns");
    json_decref(s->sniffed);
    s->sniffed = json_is_array(columns) ? json_incref(columns) : json_array();
    free(s->dialect);
    s->dialect = json_array_size(s->sniffed) ? dialect_of(row) : NULL;
    const char *quote = json_string_value(json_object_get(row, "Quote"));
    bool quotes_unseen = s->sniffed_rows == SMALL_SAMPLE &&
                         (quote == NULL || strcmp(quote, "(empty)") == 0) &&
                         has_quote_chars(s->o->src_path);
    json_decref(rows);
    if (quotes_unseen) { /* the sample saw none: the default one decides */
        s->small_sample = false;
        return sniff(eng, s, err);
    }
    return 0;
}

/* The column's type given to the reader (NULL: as sniffed) and its select expression. */
static const char *
column_plan(const csv_state *s, size_t idx, const char *name, const char *type, lh_buf *select)
{
    const char *fixed = s->append_columns ? dataset_type(s->append_columns, name) : NULL;
    int how = (int)json_integer_value(json_object_get(s->retype, name));
    lh_buf id;
    lh_buf_init(&id);
    lh_sql_ident(&id, name);
    const char *read_as = NULL;
    if (fixed) {
        read_as = fixed;
        lh_buf_puts(select, id.data);
    } else if (how == AS_TEXT) {
        read_as = "VARCHAR";
        lh_buf_puts(select, id.data);
    } else if (how == AS_EXACT_INT || (strcmp(type, "DOUBLE") == 0 && s->doubles_as_text)) {
        read_as = "VARCHAR";
        lh_ingest__number_select(select, name, idx, how == AS_EXACT_INT);
    } else {
        lh_buf_puts(select, id.data);
    }
    lh_buf_free(&id);
    return read_as;
}

/* strict: a reader that fails on the first bad row instead of keeping rejects (the
 * reject tables cost about two thirds of a clean conversion); used for the first try. */
static void
convert_sql(const csv_state *s, const char *out, bool strict, lh_buf *sql)
{
    lh_buf select, types;
    lh_buf_init(&select);
    lh_buf_init(&types);
    size_t i;
    json_t *c;
    json_array_foreach(s->sniffed, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        if (name == NULL || type == NULL)
            continue;
        if (select.len)
            lh_buf_puts(&select, ", ");
        const char *read_as = column_plan(s, i, name, type, &select);
        /* every column named and typed: with the dialect, nothing is left to sniff */
        lh_buf_puts(&types, types.len ? ", " : ", columns = {");
        lh_sql_quote(&types, name);
        lh_buf_puts(&types, ": ");
        lh_sql_quote(&types, read_as ? read_as : type);
    }
    lh_buf_printf(sql, "COPY (SELECT %s FROM read_csv(", select.len ? select.data : "*");
    lh_sql_quote(sql, s->o->src_path);
    lh_buf_puts(sql, strict ? ", skip = 0" : ", skip = 0, store_rejects = true");
    if (s->dialect && types.len) {
        lh_buf_puts(sql, s->dialect);
        lh_buf_printf(sql, "%s}", types.data);
    } else if (s->full_sniff) {
        lh_buf_puts(sql, ", sample_size = -1"); /* nothing sniffed: let the reader try */
    }
    if (s->null_pad)
        lh_buf_puts(sql, ", null_padding = true");
    lh_buf_puts(sql, ")) TO ");
    lh_sql_quote(sql, out);
    lh_buf_puts(sql, " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)");
    lh_buf_free(&select);
    lh_buf_free(&types);
}

static const char REJECTS_SQL[] =
    "SELECT CAST(error_type AS VARCHAR) AS kind, count(DISTINCT line) AS n, min(line) AS line, "
    "arg_min(line_byte_position, line) AS byte, arg_min(error_message, line) AS message, "
    "arg_min(column_name, line) AS column_name, arg_min(line, line, 10) AS lines "
    "FROM reject_errors GROUP BY ALL ORDER BY line";

static bool
is_ragged(const char *kind)
{
    return strcmp(kind, "MISSING COLUMNS") == 0 || strcmp(kind, "TOO MANY COLUMNS") == 0;
}

/* Fields DuckDB found on a ragged line ("Expected Number of Columns: 3 Found: 2"). */
static long long
found_fields(const char *message)
{
    const char *f = message ? strstr(message, "Found: ") : NULL;
    return f ? strtoll(f + 7, NULL, 10) : -1;
}

static int
cmp_line(const void *a, const void *b)
{
    json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
    return x < y ? -1 : x > y;
}

/* The first FIRST_LINES of the lines of both kinds of ragged rows, in order (new). */
static json_t *
first_lines(const json_t *lines)
{
    size_t n = json_array_size(lines);
    json_int_t *v = lh_calloc(n ? n : 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_integer_value(json_array_get(lines, i));
    qsort(v, n, sizeof *v, cmp_line);
    json_t *out = json_array();
    for (size_t i = 0; i < n && i < FIRST_LINES; i++)
        json_array_append_new(out, json_integer(v[i]));
    free(v);
    return out;
}

static int
ragged_error(const csv_state *s, const json_t *first, int64_t count, bool long_only, lh_err *err)
{
    long long line = json_integer_value(json_object_get(first, "line"));
    long long byte = json_integer_value(json_object_get(first, "byte"));
    long long found = found_fields(json_string_value(json_object_get(first, "message")));
    size_t expected = json_array_size(s->sniffed);
    lh_err_set(err, LH_EINVAL, 400, "ragged_rows", "line %lld has %lld fields, the header has %zu",
               line, found, expected);
    if (long_only) {
        lh_err_detail(err,
                      "%lld line(s) have more fields than the header's %zu, the first at line %lld "
                      "(byte %lld); on_bad_rows=null_pad fills missing fields only",
                      (long long)count, expected, line, byte);
        lh_err_hint(err,
                    "fix those lines, or load the file with on_bad_rows=skip to leave them out");
    } else {
        lh_err_detail(err,
                      "%lld %s disagree with the header's %zu fields, the first at line %lld (byte "
                      "%lld; the header is line 1, a quoted field over several lines counts once)",
                      (long long)count, count == 1 ? "line" : "lines", expected, line, byte);
        lh_err_hint(err, "fix those lines, or load the file with on_bad_rows=skip (leave them out) "
                         "or on_bad_rows=null_pad (fill missing fields with NULL)");
    }
    return LH_EINVAL;
}

static int
value_error(const csv_state *s, const json_t *first, lh_err *err)
{
    const char *column = json_string_value(json_object_get(first, "column_name"));
    lh_err_set(err, LH_EINVAL, 400, "invalid_file", "line %lld of the file cannot be read%s%s",
               (long long)json_integer_value(json_object_get(first, "line")),
               column ? ": column " : "", column ? column : "");
    lh_err_detail(err, "%s", json_string_value(json_object_get(first, "message")));
    lh_err_hint(err, s->append_columns ? "a value does not fit the dataset's column type"
                                       : "check format= and the file's contents");
    return LH_EINVAL;
}

/* Judge the reader's rejects. 0: the conversion stands; 1: convert again (s changed);
 * else an error. */
static int
judge_rejects(csv_state *s, const json_t *groups, lh_err *err)
{
    const json_t *first_ragged = NULL, *first_cast = NULL;
    int64_t n_ragged = 0;
    bool any_short = false;
    json_t *lines = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        const char *kind = json_string_value(json_object_get(g, "kind"));
        kind = kind ? kind : "";
        if (is_ragged(kind)) {
            first_ragged = first_ragged ? first_ragged : g;
            n_ragged += json_integer_value(json_object_get(g, "n"));
            any_short |= strcmp(kind, "MISSING COLUMNS") == 0;
            json_array_extend(lines, json_object_get(g, "lines"));
        } else if (strcmp(kind, "CAST") == 0) {
            first_cast = g;
        } else {
            json_decref(lines);
            return value_error(s, g, err); /* unquoted value, bad encoding, line too long */
        }
    }
    int rc = 0;
    if (first_cast && !s->full_sniff && !s->append_columns) {
        s->full_sniff = true; /* ADR-010: let the whole file decide the types */
        rc = 1;
    } else if (first_cast) {
        rc = value_error(s, first_cast, err);
    } else if (n_ragged > 0) {
        lh_bad_rows action = s->o->on_bad_rows;
        bool any_long = false;
        json_array_foreach(groups, i, g)
        {
            any_long |=
                strcmp(json_string_value(json_object_get(g, "kind")), "TOO MANY COLUMNS") == 0;
        }
        if (action == LH_BAD_ROWS_ERROR) {
            rc = ragged_error(s, first_ragged, n_ragged, false, err);
        } else if (action == LH_BAD_ROWS_NULL_PAD && any_long) {
            const json_t *first_long = NULL;
            int64_t n_long = 0;
            json_array_foreach(groups, i, g)
            {
                if (strcmp(json_string_value(json_object_get(g, "kind")), "TOO MANY COLUMNS") ==
                    0) {
                    first_long = g;
                    n_long = json_integer_value(json_object_get(g, "n"));
                }
            }
            rc = ragged_error(s, first_long, n_long, true, err);
        } else {
            s->bad_count = n_ragged;
            json_decref(s->bad_lines);
            s->bad_lines = first_lines(lines);
            if (action == LH_BAD_ROWS_NULL_PAD && any_short && !s->null_pad) {
                s->null_pad = true;
                rc = 1;
            }
        }
    }
    json_decref(lines);
    return rc;
}

/* An error a retry can fix: a column to retype, or a value past the sampled type. */
static bool
retry_after_error(csv_state *s, const char *detail)
{
    if (strstr(detail, RETYPE_ERROR))
        return lh_ingest__retype_next(s->sniffed, s->retype, detail);
    if (!s->full_sniff && !s->append_columns && strstr(detail, "Conversion Error")) {
        s->full_sniff = true; /* ADR-010, a value the DOUBLE cast refused */
        return true;
    }
    return false;
}

/* The small sample's plan checked by the default sample's sniff (a VARCHAR column with
 * empty values may have been empty in every sampled row). 0: it stands; 1: it changed
 * (convert again); else an error. */
static int
confirm_sample(lh_engine *eng, csv_state *s, lh_err *err)
{
    json_t *plan = json_incref(s->sniffed);
    char *dialect = s->dialect ? lh_strdup(s->dialect) : NULL;
    s->small_sample = false;
    int rc = sniff(eng, s, err);
    if (rc == 0 && (!json_equal(plan, s->sniffed) || !dialect || !s->dialect ||
                    strcmp(dialect, s->dialect) != 0))
        rc = 1;
    json_decref(plan);
    free(dialect);
    return rc;
}

/* After a conversion that stands, whether what it took on trust holds, read from the
 * written file's footer (its statistics per column): the small sample's plan, when a
 * VARCHAR column has empty values (confirm_sample); every DOUBLE column exact, its
 * magnitude below EXACT_DOUBLE_BELOW (a column without statistics, as NaN leaves one, is
 * read again as text). 0: the file stands; 1: convert again (s changed); else an error. */
static int
confirm(lh_engine *eng, csv_state *s, const char *out, lh_err *err)
{
    bool small = s->sniffed_rows == SMALL_SAMPLE;
    lh_buf sql;
    lh_buf_init(&sql);
    lh_buf_puts(&sql,
                "SELECT path_in_schema AS name, "
                "sum(coalesce(stats_null_count, num_values)) > 0 AS empties, "
                "bool_or(stats_min_value IS NULL AND coalesce(stats_null_count, -1) < "
                "num_values) OR coalesce(max(greatest(abs(TRY_CAST(stats_min_value AS DOUBLE)), "
                "abs(TRY_CAST(stats_max_value AS DOUBLE)))) >= " EXACT_DOUBLE_BELOW
                ", false) AS inexact FROM parquet_metadata(");
    lh_sql_quote(&sql, out);
    lh_buf_puts(&sql, ") GROUP BY ALL");
    json_t *stats = NULL;
    int rc = lh_engine_rows(eng, sql.data, &stats, err);
    lh_buf_free(&sql);
    bool resniff = false, inexact = false;
    size_t i, j;
    json_t *c, *st;
    json_array_foreach(rc == 0 ? s->sniffed : NULL, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *type = json_string_value(json_object_get(c, "type"));
        if (name == NULL || type == NULL ||
            (s->append_columns && dataset_type(s->append_columns, name)) ||
            json_integer_value(json_object_get(s->retype, name)) != AS_SNIFFED)
            continue; /* typed by the dataset, or already read as text */
        bool is_double = strcmp(type, "DOUBLE") == 0 && !s->doubles_as_text;
        if (!is_double && !(small && strcmp(type, "VARCHAR") == 0))
            continue;
        const json_t *found = NULL; /* a column the footer does not name is not trusted */
        json_array_foreach(stats, j, st)
        {
            const char *col = json_string_value(json_object_get(st, "name"));
            if (col && strcmp(col, name) == 0)
                found = st;
        }
        if (is_double)
            inexact |= !found || !json_is_false(json_object_get(found, "inexact"));
        else
            resniff |= !found || !json_is_false(json_object_get(found, "empties"));
    }
    json_decref(stats);
    if (rc == 0 && resniff)
        rc = confirm_sample(eng, s, err);
    if (rc == 0 && inexact) {
        s->doubles_as_text = true;
        rc = 1;
    }
    return rc;
}

static int
report(void *ctx, int64_t done, int64_t total)
{
    lh_job *job = ctx;
    lh_job_progress(job, done, total > 0 ? total : -1, "rows");
    return lh_job_cancelled(job) ? 1 : 0;
}

int
lh_ingest__csv_convert(lh_engine *eng, const lh_ingest_file_opts *o, const json_t *append_columns,
                       const char *out, int64_t *rows, json_t **bad_rows, lh_err *err)
{
    csv_state s = {.o = o, .append_columns = append_columns, .retype = json_object()};
    /* careful: convert keeping rejects, to say what is wrong; a file that must fail on a
     * bad row is first read strictly, which costs less, and on a small sample's sniff */
    bool careful = o->on_bad_rows != LH_BAD_ROWS_ERROR;
    s.small_sample = !careful;
    int rc = 0;
    for (int attempt = 0;; attempt++) {
        if (s.sniffed == NULL || s.sniffed_rows != sample_rows(&s)) {
            if ((rc = sniff(eng, &s, err)) != 0)
                break;
        }
        /* each column moves at most twice, plus the full sniff, the padding pass, the
         * careful pass after a strict one, the default sample's plan and DOUBLE as text */
        if (attempt > 8 + 2 * (int)json_array_size(s.sniffed)) {
            rc = lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file is not valid csv");
            lh_err_detail(err, "the column types did not settle after %d conversions", attempt);
            break;
        }
        lh_buf sql;
        lh_buf_init(&sql);
        if (!careful) {
            convert_sql(&s, out, true, &sql);
            lh_err strict_err;
            lh_err_clear(&strict_err);
            rc = lh_engine_exec_watch(eng, sql.data, rows, o->job ? report : NULL, o->job,
                                      &strict_err);
            lh_buf_free(&sql);
            if (rc == 0 && (rc = confirm(eng, &s, out, err)) != 1)
                break;
            unlink(out);
            if (rc == 1) {
                rc = 0;
                continue;
            }
            if (rc != LH_EINVAL) { /* cancelled, out of time or space: not the file's fault */
                if (err)
                    *err = strict_err;
                break;
            }
            rc = 0;
            s.small_sample = false; /* what failed is judged on the default sample */
            if (!retry_after_error(&s, strict_err.detail))
                careful = true; /* a bad row: the careful pass finds and names it */
            continue;
        }
        convert_sql(&s, out, false, &sql);
        json_t *groups = NULL;
        rc = lh_engine_exec_then_rows(eng, sql.data, rows, o->job ? report : NULL, o->job,
                                      REJECTS_SQL, &groups, err);
        lh_buf_free(&sql);
        if (rc == 0) {
            rc = judge_rejects(&s, groups, err);
            json_decref(groups);
            if (rc == 0 && (rc = confirm(eng, &s, out, err)) == 0)
                break;
            unlink(out);
            if (rc == 1)
                continue;
            break;
        }
        unlink(out);
        if (rc == LH_EINVAL && retry_after_error(&s, err ? err->detail : ""))
            continue;
        if (rc == LH_EINVAL && err) {
            char copy[LH_ERR_TEXT_MAX];
            snprintf(copy, sizeof copy, "%s", err->detail);
            lh_err_set(err, LH_EINVAL, 400, "invalid_file", "the file is not valid csv");
            lh_err_detail(err, "%s", copy);
            lh_err_hint(err, append_columns ? "a value does not fit the dataset's column type"
                                            : "check format= and the file's contents");
        }
        break;
    }
    if (rc == 0 && s.bad_count > 0)
        *bad_rows = json_pack("{s:I, s:s, s:O}", "count", (json_int_t)s.bad_count, "action",
                              o->on_bad_rows == LH_BAD_ROWS_SKIP ? "skipped" : "null_padded",
                              "first_lines", s.bad_lines);
    json_decref(s.sniffed);
    free(s.dialect);
    json_decref(s.retype);
    json_decref(s.bad_lines);
    return rc;
}
