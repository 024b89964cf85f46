/*
 * toml.c — a reader for the subset of TOML 1.0 that lakehouse configuration uses.
 *
 * Supported: comments, [table] and [[array-of-tables]] headers with a single key, bare
 * and quoted keys, basic and literal single-line strings with all escapes, integers
 * (decimal, 0x/0o/0b, underscores), floats (incl. inf/nan), booleans, and arrays that
 * may span lines. Refused with a message that says so: dotted keys, inline tables,
 * multi-line strings, dates/times. Every error reads "path:line:col: what is wrong".
 *
 * The parser is a plain recursive descent over the bytes; values remember where they
 * were defined so configuration errors found later can point at the line as well.
 */
#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOML_MAX_FILE (4u << 20) /* configuration files are small; refuse absurd ones */
#define TOML_MAX_DEPTH 32

struct lh_toml {
    lh_toml_type type;
    int line, col;
    bool from_header; /* a table defined by a [header] (redefinition is an error) */
    union {
        char *s;
        int64_t i;
        double f;
        bool b;
        struct {
            lh_toml **items;
            char **keys; /* tables only */
            size_t n, cap;
        } c;
    } u;
};

typedef struct parser {
    const char *text;
    size_t len, pos;
    int line, col;
    const char *path;
    lh_err *err;
    int depth;
} parser;

/* ---- values -------------------------------------------------------------------- */

static lh_toml *
value_new(lh_toml_type type, int line, int col)
{
    lh_toml *t = lh_calloc(1, sizeof *t);
    t->type = type;
    t->line = line;
    t->col = col;
    return t;
}

void
lh_toml_free(lh_toml *t)
{
    if (t == NULL)
        return;
    switch (t->type) {
    case LH_TOML_STRING:
        free(t->u.s);
        break;
    case LH_TOML_ARRAY:
    case LH_TOML_TABLE:
    case LH_TOML_TABLE_ARRAY:
        for (size_t i = 0; i < t->u.c.n; i++) {
            lh_toml_free(t->u.c.items[i]);
            if (t->u.c.keys)
                free(t->u.c.keys[i]);
        }
        free(t->u.c.items);
        free(t->u.c.keys);
        break;
    default:
        break;
    }
    free(t);
}

void
lh_toml_wipe(lh_toml *t)
{
    if (t == NULL)
        return;
    if (t->type == LH_TOML_STRING && t->u.s) {
        volatile char *v = t->u.s;
        for (size_t i = 0; t->u.s[i]; i++)
            v[i] = 0;
    }
    if (t->type == LH_TOML_ARRAY || t->type == LH_TOML_TABLE || t->type == LH_TOML_TABLE_ARRAY)
        for (size_t i = 0; i < t->u.c.n; i++)
            lh_toml_wipe(t->u.c.items[i]);
}

static void
container_push(lh_toml *c, char *key, lh_toml *item)
{
    if (c->u.c.n == c->u.c.cap) {
        c->u.c.cap = c->u.c.cap ? c->u.c.cap * 2 : 8;
        c->u.c.items = lh_realloc(c->u.c.items, c->u.c.cap * sizeof *c->u.c.items);
        if (c->type == LH_TOML_TABLE)
            c->u.c.keys = lh_realloc(c->u.c.keys, c->u.c.cap * sizeof *c->u.c.keys);
    }
    c->u.c.items[c->u.c.n] = item;
    if (c->type == LH_TOML_TABLE)
        c->u.c.keys[c->u.c.n] = key;
    c->u.c.n++;
}

lh_toml_type
lh_toml_type_of(const lh_toml *t)
{
    return t->type;
}

const char *
lh_toml_type_name(lh_toml_type type)
{
    switch (type) {
    case LH_TOML_STRING:
        return "string";
    case LH_TOML_INT:
        return "integer";
    case LH_TOML_FLOAT:
        return "float";
    case LH_TOML_BOOL:
        return "boolean";
    case LH_TOML_ARRAY:
        return "array";
    case LH_TOML_TABLE:
        return "table";
    case LH_TOML_TABLE_ARRAY:
        return "array of tables";
    }
    return "?";
}

lh_toml *
lh_toml_get(const lh_toml *table, const char *key)
{
    if (table == NULL || table->type != LH_TOML_TABLE)
        return NULL;
    for (size_t i = 0; i < table->u.c.n; i++)
        if (strcmp(table->u.c.keys[i], key) == 0)
            return table->u.c.items[i];
    return NULL;
}

size_t
lh_toml_count(const lh_toml *t)
{
    if (t == NULL)
        return 0;
    if (t->type == LH_TOML_ARRAY || t->type == LH_TOML_TABLE || t->type == LH_TOML_TABLE_ARRAY)
        return t->u.c.n;
    return 0;
}

const char *
lh_toml_key_at(const lh_toml *table, size_t i)
{
    return table->type == LH_TOML_TABLE && i < table->u.c.n ? table->u.c.keys[i] : NULL;
}

lh_toml *
lh_toml_at(const lh_toml *t, size_t i)
{
    return i < lh_toml_count(t) ? t->u.c.items[i] : NULL;
}

int
lh_toml_line(const lh_toml *t)
{
    return t->line;
}

int
lh_toml_col(const lh_toml *t)
{
    return t->col;
}

const char *
lh_toml_str(const lh_toml *t)
{
    return t->type == LH_TOML_STRING ? t->u.s : NULL;
}

int64_t
lh_toml_int(const lh_toml *t)
{
    return t->type == LH_TOML_INT ? t->u.i : 0;
}

double
lh_toml_float(const lh_toml *t)
{
    if (t->type == LH_TOML_FLOAT)
        return t->u.f;
    return t->type == LH_TOML_INT ? (double)t->u.i : 0.0;
}

bool
lh_toml_bool(const lh_toml *t)
{
    return t->type == LH_TOML_BOOL && t->u.b;
}

/* ---- lexing helpers --------------------------------------------------------------- */

static int fail_at(parser *p, int line, int col, const char *fmt, ...) LH_PRINTF(4, 5);

static int
fail_at(parser *p, int line, int col, const char *fmt, ...)
{
    char what[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    lh_err_set(p->err, LH_EINVAL, 400, "invalid_toml", "%s:%d:%d: %s", p->path, line, col, what);
    return LH_EINVAL;
}

#define FAIL(p, ...) fail_at((p), (p)->line, (p)->col, __VA_ARGS__)

static int
peek(const parser *p)
{
    return p->pos < p->len ? (unsigned char)p->text[p->pos] : -1;
}

static int
peek_at(const parser *p, size_t ahead)
{
    return p->pos + ahead < p->len ? (unsigned char)p->text[p->pos + ahead] : -1;
}

static void
advance(parser *p)
{
    if (p->pos >= p->len)
        return;
    if (p->text[p->pos] == '\n') {
        p->line++;
        p->col = 1;
    } else if (((unsigned char)p->text[p->pos] & 0xC0) != 0x80) {
        p->col++; /* columns count characters, as check_utf8 does, not bytes */
    }
    p->pos++;
}

static void
skip_ws(parser *p)
{
    while (peek(p) == ' ' || peek(p) == '\t')
        advance(p);
}

static void
skip_comment(parser *p)
{
    if (peek(p) == '#')
        while (peek(p) != -1 && peek(p) != '\n')
            advance(p);
}

/* Whitespace, comments and newlines (inside arrays and between statements). */
static void
skip_ws_nl(parser *p)
{
    for (;;) {
        skip_ws(p);
        skip_comment(p);
        if (peek(p) == '\n') {
            advance(p);
        } else if (peek(p) == '\r' && peek_at(p, 1) == '\n') {
            advance(p);
            advance(p);
        } else {
            return;
        }
    }
}

/* After a statement: only spaces, a comment, then a newline or the end. */
static int
expect_eol(parser *p)
{
    skip_ws(p);
    skip_comment(p);
    if (peek(p) == -1)
        return 0;
    if (peek(p) == '\r' && peek_at(p, 1) == '\n')
        advance(p);
    if (peek(p) == '\n') {
        advance(p);
        return 0;
    }
    return FAIL(p, "unexpected '%c' after value; expected a newline", peek(p));
}

static int
check_utf8(parser *p)
{
    const unsigned char *s = (const unsigned char *)p->text;
    int line = 1, col = 1;
    for (size_t i = 0; i < p->len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = n > 0 && i + n <= p->len;
        for (size_t k = 1; ok && k < n; k++)
            ok = (s[i + k] & 0xC0) == 0x80;
        if (ok && n == 2)
            ok = c >= 0xC2;
        if (ok && n == 3) {
            unsigned cp = ((c & 15u) << 12) | ((s[i + 1] & 63u) << 6) | (s[i + 2] & 63u);
            ok = cp >= 0x800 && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok && n == 4) {
            unsigned cp = ((c & 7u) << 18) | ((s[i + 1] & 63u) << 12);
            ok = cp >= 0x10000 && cp <= 0x10FFFF;
        }
        if (!ok)
            return fail_at(p, line, col, "file is not valid UTF-8");
        if (c == 0)
            return fail_at(p, line, col, "NUL byte in file");
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return 0;
}

static void
utf8_put(lh_buf *b, uint32_t cp)
{
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 63));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 63));
        out[2] = (char)(0x80 | (cp & 63));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 63));
        out[2] = (char)(0x80 | ((cp >> 6) & 63));
        out[3] = (char)(0x80 | (cp & 63));
        n = 4;
    }
    lh_buf_append(b, out, n);
}

/* Parse a basic ("...") or literal ('...') single-line string. Returns new in *out. */
static int
parse_string(parser *p, char **out)
{
    int quote = peek(p);
    if (peek_at(p, 1) == quote && peek_at(p, 2) == quote)
        return FAIL(p, "multi-line strings are not supported; use a single-line string");
    int line = p->line, col = p->col;
    advance(p);
    lh_buf b;
    lh_buf_init(&b);
    for (;;) {
        int c = peek(p);
        if (c == -1 || c == '\n' || c == '\r') {
            lh_buf_free(&b);
            return fail_at(p, line, col, "unterminated string");
        }
        if (c == quote) {
            advance(p);
            break;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            lh_buf_free(&b);
            return FAIL(p, "control character in string; escape it");
        }
        if (c == '\\' && quote == '"') {
            advance(p);
            int e = peek(p);
            char simple = 0;
            switch (e) {
            case 'b':
                simple = '\b';
                break;
            case 't':
                simple = '\t';
                break;
            case 'n':
                simple = '\n';
                break;
            case 'f':
                simple = '\f';
                break;
            case 'r':
                simple = '\r';
                break;
            case '"':
                simple = '"';
                break;
            case '\\':
                simple = '\\';
                break;
            case 'u':
            case 'U': {
                int digits = e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                advance(p);
                for (int k = 0; k < digits; k++) {
                    int h = peek(p);
                    int v = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (v < 0) {
                        lh_buf_free(&b);
                        return FAIL(p, "\\%c escape needs %d hex digits", e, digits);
                    }
                    cp = cp * 16 + (uint32_t)v;
                    advance(p);
                }
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) {
                    lh_buf_free(&b);
                    return FAIL(p, "escape is not a valid Unicode scalar value");
                }
                utf8_put(&b, cp);
                continue;
            }
            default:
                lh_buf_free(&b);
                return FAIL(p, "unknown escape sequence");
            }
            lh_buf_append(&b, &simple, 1);
            advance(p);
            continue;
        }
        char ch = (char)c;
        lh_buf_append(&b, &ch, 1);
        advance(p);
    }
    *out = lh_buf_steal(&b);
    return 0;
}

static bool
is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int
parse_key(parser *p, char **out)
{
    int rc;
    char *key = NULL;
    if (peek(p) == '"' || peek(p) == '\'') {
        if ((rc = parse_string(p, &key)) != 0)
            return rc;
    } else {
        size_t start = p->pos;
        while (is_bare_key_char(peek(p)))
            advance(p);
        if (p->pos == start) {
            if (peek(p) == -1 || peek(p) == '\n')
                return FAIL(p, "expected a key");
            return FAIL(p, "unexpected '%c'; expected a key", peek(p));
        }
        key = lh_strndup(p->text + start, p->pos - start);
    }
    skip_ws(p);
    if (peek(p) == '.') {
        free(key);
        return FAIL(p, "dotted keys are not supported; use a [table] header");
    }
    *out = key;
    return 0;
}

static int parse_value(parser *p, lh_toml **out);

static int
parse_array(parser *p, lh_toml **out)
{
    lh_toml *arr = value_new(LH_TOML_ARRAY, p->line, p->col);
    if (++p->depth > TOML_MAX_DEPTH) {
        lh_toml_free(arr);
        return FAIL(p, "arrays nested too deeply");
    }
    advance(p); /* [ */
    for (;;) {
        skip_ws_nl(p);
        if (peek(p) == ']') {
            advance(p);
            break;
        }
        lh_toml *item = NULL;
        int rc = parse_value(p, &item);
        if (rc != 0) {
            lh_toml_free(arr);
            return rc;
        }
        container_push(arr, NULL, item);
        skip_ws_nl(p);
        if (peek(p) == ',') {
            advance(p);
            continue;
        }
        if (peek(p) == ']') {
            advance(p);
            break;
        }
        lh_toml_free(arr);
        return peek(p) == -1 ? FAIL(p, "unterminated array")
                             : FAIL(p, "expected ',' or ']' in array");
    }
    p->depth--;
    *out = arr;
    return 0;
}

static bool
digit_of_base(int c, int base)
{
    switch (base) {
    case 2:
        return c == '0' || c == '1';
    case 8:
        return c >= '0' && c <= '7';
    case 16:
        return isxdigit(c) != 0;
    default:
        return isdigit(c) != 0;
    }
}

static int
parse_number(parser *p, lh_toml **out)
{
    int line = p->line, col = p->col;
    size_t start = p->pos;
    while (peek(p) != -1 && (is_bare_key_char(peek(p)) || peek(p) == '+' || peek(p) == '.'))
        advance(p);
    size_t n = p->pos - start;
    const char *t = p->text + start;
    /* YYYY-: four digits then '-' (a float like 1.0e-9 also has '-' at index 4) */
    bool looks_like_date = n >= 5 && t[4] == '-' && isdigit((unsigned char)t[0]) &&
                           isdigit((unsigned char)t[1]) && isdigit((unsigned char)t[2]) &&
                           isdigit((unsigned char)t[3]);
    if (peek(p) == ':' || looks_like_date)
        return fail_at(p, line, col, "dates and times are not supported; quote the value");
    if (n == 0 || n > 64)
        return fail_at(p, line, col, "expected a value");
    char raw[65], clean[65];
    memcpy(raw, p->text + start, n);
    raw[n] = '\0';

    const char *body = raw + (raw[0] == '+' || raw[0] == '-');
    if (strcmp(body, "inf") == 0 || strcmp(body, "nan") == 0) {
        lh_toml *v = value_new(LH_TOML_FLOAT, line, col);
        v->u.f = body[0] == 'i' ? (raw[0] == '-' ? -INFINITY : INFINITY) : NAN;
        *out = v;
        return 0;
    }
    int base = 10;
    if (body[0] == '0' && (body[1] == 'x' || body[1] == 'o' || body[1] == 'b')) {
        base = body[1] == 'x' ? 16 : body[1] == 'o' ? 8 : 2;
        if (body != raw)
            return fail_at(p, line, col, "a sign is not allowed on hex, octal or binary integers");
        body += 2;
    }
    /* underscores only between digits; copy without them */
    size_t k = 0;
    if (base == 10 && raw[0] != body[0])
        clean[k++] = raw[0];
    bool is_float = false;
    for (const char *s = body; *s; s++) {
        if (*s == '_') {
            bool ok = s > body && s[1] && digit_of_base((unsigned char)s[-1], base) &&
                      digit_of_base((unsigned char)s[1], base);
            if (!ok)
                return fail_at(p, line, col, "'_' must sit between two digits");
            continue;
        }
        if (base == 10 && (*s == '.' || *s == 'e' || *s == 'E'))
            is_float = true;
        clean[k++] = *s;
    }
    clean[k] = '\0';
    if (k == 0)
        return fail_at(p, line, col, "expected a value");
    char *end = NULL;
    errno = 0;
    if (is_float) {
        /* TOML wants digits on both sides of '.', and no leading zeros */
        const char *dot = strchr(clean, '.');
        if (dot &&
            (dot == clean || !isdigit((unsigned char)dot[-1]) || !isdigit((unsigned char)dot[1])))
            return fail_at(p, line, col, "a '.' in a float needs digits on both sides");
        const char *int_part = clean + (clean[0] == '+' || clean[0] == '-');
        if (int_part[0] == '0' && isdigit((unsigned char)int_part[1]))
            return fail_at(p, line, col, "leading zeros are not allowed in '%s'", raw);
        double d = strtod(clean, &end);
        if (*end != '\0')
            return fail_at(p, line, col, "'%s' is not a valid number", raw);
        if (errno == ERANGE && isinf(d))
            return fail_at(p, line, col, "float '%s' is out of range", raw);
        lh_toml *v = value_new(LH_TOML_FLOAT, line, col);
        v->u.f = d;
        *out = v;
        return 0;
    }
    const char *digits = clean + (clean[0] == '+' || clean[0] == '-');
    if (base == 10 && digits[0] == '0' && digits[1] != '\0')
        return fail_at(p, line, col, "leading zeros are not allowed in '%s'", raw);
    if (base != 10)
        for (const char *s = clean; *s; s++)
            if (!digit_of_base((unsigned char)*s, base))
                return fail_at(p, line, col, "'%s' is not a valid value (strings need quotes)",
                               raw);
    long long ll = strtoll(clean, &end, base);
    if (*end != '\0' || !isxdigit((unsigned char)digits[0]))
        return fail_at(p, line, col, "'%s' is not a valid value (strings need quotes)", raw);
    if (errno == ERANGE)
        return fail_at(p, line, col, "integer '%s' does not fit in 64 bits", raw);
    lh_toml *v = value_new(LH_TOML_INT, line, col);
    v->u.i = ll;
    *out = v;
    return 0;
}

static int
parse_value(parser *p, lh_toml **out)
{
    int c = peek(p);
    int line = p->line, col = p->col;
    if (c == '"' || c == '\'') {
        char *s = NULL;
        int rc = parse_string(p, &s);
        if (rc != 0)
            return rc;
        lh_toml *v = value_new(LH_TOML_STRING, line, col);
        v->u.s = s;
        *out = v;
        return 0;
    }
    if (c == '[')
        return parse_array(p, out);
    if (c == '{')
        return FAIL(p, "inline tables are not supported; use a [table] header");
    if (c == 't' && p->len - p->pos >= 4 && memcmp(p->text + p->pos, "true", 4) == 0 &&
        !is_bare_key_char(peek_at(p, 4))) {
        for (int i = 0; i < 4; i++)
            advance(p);
        lh_toml *v = value_new(LH_TOML_BOOL, line, col);
        v->u.b = true;
        *out = v;
        return 0;
    }
    if (c == 'f' && p->len - p->pos >= 5 && memcmp(p->text + p->pos, "false", 5) == 0 &&
        !is_bare_key_char(peek_at(p, 5))) {
        for (int i = 0; i < 5; i++)
            advance(p);
        lh_toml *v = value_new(LH_TOML_BOOL, line, col);
        v->u.b = false;
        *out = v;
        return 0;
    }
    if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'i' || c == 'n')
        return parse_number(p, out);
    if (c == -1 || c == '\n' || c == '\r' || c == '#')
        return FAIL(p, "expected a value after '='");
    return FAIL(p, "unexpected '%c'; strings need quotes", c);
}

/* [name] or [[name]]: make current point at the table that following keys go to. */
static int
parse_header(parser *p, lh_toml *root, lh_toml **current)
{
    int line = p->line, col = p->col;
    bool is_array = peek_at(p, 1) == '[';
    advance(p);
    if (is_array)
        advance(p);
    skip_ws(p);
    char *key = NULL;
    int rc = parse_key(p, &key);
    if (rc != 0)
        return rc;
    skip_ws(p);
    if (peek(p) != ']' || (is_array && peek_at(p, 1) != ']')) {
        free(key);
        return FAIL(p, is_array ? "expected ']]' to close the header"
                                : "expected ']' to close the header");
    }
    advance(p);
    if (is_array)
        advance(p);

    lh_toml *existing = lh_toml_get(root, key);
    if (is_array) {
        if (existing && existing->type != LH_TOML_TABLE_ARRAY) {
            rc = fail_at(p, line, col, "'%s' is already defined as a %s at line %d", key,
                         lh_toml_type_name(existing->type), existing->line);
            free(key);
            return rc;
        }
        if (existing == NULL) {
            existing = value_new(LH_TOML_TABLE_ARRAY, line, col);
            container_push(root, key, existing);
        } else {
            free(key);
        }
        lh_toml *table = value_new(LH_TOML_TABLE, line, col);
        table->from_header = true;
        container_push(existing, NULL, table);
        *current = table;
        return expect_eol(p);
    }
    if (existing) {
        rc = fail_at(p, line, col, "'%s' is already defined at line %d", key, existing->line);
        free(key);
        return rc;
    }
    lh_toml *table = value_new(LH_TOML_TABLE, line, col);
    table->from_header = true;
    container_push(root, key, table);
    *current = table;
    return expect_eol(p);
}

/* key = value, into the current table. */
static int
parse_keyval(parser *p, lh_toml *current)
{
    int line = p->line, col = p->col;
    char *key = NULL;
    lh_toml *value = NULL;
    int rc = 0;
    if ((rc = parse_key(p, &key)) != 0)
        goto out;
    skip_ws(p);
    if (peek(p) != '=') {
        rc = FAIL(p, "expected '=' after key '%s'", key);
        goto out;
    }
    advance(p);
    skip_ws(p);
    lh_toml *dup = lh_toml_get(current, key);
    if (dup) {
        rc = fail_at(p, line, col, "duplicate key '%s' (first set at line %d)", key, dup->line);
        goto out;
    }
    if ((rc = parse_value(p, &value)) != 0)
        goto out;
    value->line = line;
    value->col = col;
    container_push(current, key, value);
    key = NULL;
    rc = expect_eol(p);
out:
    free(key);
    return rc;
}

int
lh_toml_parse(const char *text, size_t len, const char *path, lh_toml **out, lh_err *err)
{
    parser p = {.text = text,
                .len = len,
                .line = 1,
                .col = 1,
                .path = path ? path : "<config>",
                .err = err};
    int rc = check_utf8(&p);
    if (rc != 0)
        return rc;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p.pos = 3; /* byte order mark */
    lh_toml *root = value_new(LH_TOML_TABLE, 1, 1);
    lh_toml *current = root;
    for (;;) {
        skip_ws_nl(&p);
        int c = peek(&p);
        if (c == -1)
            break;
        rc = c == '[' ? parse_header(&p, root, &current) : parse_keyval(&p, current);
        if (rc != 0) {
            lh_toml_free(root);
            return rc;
        }
    }
    *out = root;
    return 0;
}

int
lh_toml_parse_file(const char *path, lh_toml **out, lh_err *err)
{
    char *text = NULL;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block us */
    if (fd < 0) {
        int e = errno;
        rc = lh_err_set(err, e == ENOENT ? LH_ENOTFOUND : LH_EIO, 0, "config_unreadable",
                        "%s: cannot open: %s", path, strerror(e));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (off_t)TOML_MAX_FILE) {
        rc = lh_err_set(err, LH_EINVAL, 0, "config_unreadable",
                        "%s: not a regular file of at most %u bytes", path, TOML_MAX_FILE);
        goto out;
    }
    text = lh_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    rc = lh_toml_parse(text, got, path, out, err);
out:
    free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}
