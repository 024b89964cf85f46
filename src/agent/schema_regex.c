/*
 * schema_regex.c — JSON Schema "pattern" (ECMA-262 syntax) on POSIX extended regular
 * expressions (glibc regcomp/regexec).
 *
 * A pattern is translated once, at compile: the class escapes \d \w \s \D \W \S become
 * bracket expressions; "." becomes "any character but a line terminator" (as in ECMA);
 * (?:...) and (?<name>...) become plain groups (we never read captures); lazy quantifiers
 * lose their "?" (whether a match exists does not depend on laziness); \xHH, \uHHHH and
 * \cX become the characters they name; a "{" that starts no quantifier is a literal, as
 * ECMA's Annex B reads it. What POSIX cannot express is refused, naming the construct:
 * lookaround, backreferences, \p{...}, empty classes, NUL. Patterns are unanchored.
 *
 * Cost is bounded: patterns are at most LH_SCHEMA_MAX_PATTERN bytes, a counted repetition
 * at most 1000, and the automaton those counts expand to at most MAX_EXPANDED atoms
 * (regcomp copies a repeated group once per count). glibc's matcher simulates the
 * automaton over sets of states and, without backreferences, never backtracks; searched
 * from the start only (see lh_schema__regex_compile) a match costs time linear in the
 * text, about 3 s per MB for the costliest pattern these bounds let through, so
 * schema_validate.c also caps the text matched per validation (LH_SCHEMA_MAX_PATTERN_TEXT).
 *
 * Matching runs in the C.UTF-8 locale (uselocale, per thread) so that "." and classes
 * step over whole characters, whatever the process locale is. regexec is thread-safe.
 */
#include "agent/schema_int.h"

#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPEAT 1000
#define MAX_EXPANDED 1200
#define MAX_GROUP_DEPTH 64

/* ECMA line terminators: \n, \r, U+2028, U+2029. */
#define ANY_BUT_LINE_END "[^\n\r\xE2\x80\xA8\xE2\x80\xA9]"

static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static locale_t utf8_locale = (locale_t)0;

static void
utf8_locale_open(void)
{
    static const char *const names[] = {"C.UTF-8", "C.utf8", "en_US.UTF-8"};
    for (size_t k = 0; k < sizeof names / sizeof names[0] && utf8_locale == (locale_t)0; k++)
        utf8_locale = newlocale(LC_ALL_MASK, names[k], (locale_t)0);
}

/* Switch this thread to the UTF-8 locale; returns what to switch back to (0: nothing). */
static locale_t
enter_utf8(void)
{
    pthread_once(&utf8_once, utf8_locale_open);
    return utf8_locale ? uselocale(utf8_locale) : (locale_t)0;
}

static void
leave_utf8(locale_t previous)
{
    if (previous)
        uselocale(previous);
}

/* ---------------------------------------------------------------------------------
 * Translation
 * ------------------------------------------------------------------------------- */

typedef struct translator {
    const char *p; /* next unread byte of the pattern */
    lh_buf out;
    char *why;
    size_t why_size;
    int depth;                        /* open groups */
    size_t cost[MAX_GROUP_DEPTH + 1]; /* atoms so far, per open group */
    size_t last_atom;                 /* atoms of the last atom (what a quantifier repeats) */
} translator;

static int LH_PRINTF(2, 3) refuse(translator *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, t->why_size, fmt, ap);
    va_end(ap);
    return LH_EINVAL;
}

static int
add_atom(translator *t, size_t atoms)
{
    t->last_atom = atoms;
    t->cost[t->depth] += atoms;
    if (t->cost[t->depth] > MAX_EXPANDED)
        return refuse(t, "its counted repetitions expand to more than %d states", MAX_EXPANDED);
    return 0;
}

static void
put_utf8(lh_buf *out, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    lh_buf_append(out, b, n);
}

/* Decode the UTF-8 character at t->p (the pattern came from jansson: valid UTF-8). */
static unsigned
take_utf8(translator *t)
{
    const unsigned char *s = (const unsigned char *)t->p;
    unsigned cp;
    size_t n;
    if (s[0] < 0x80)
        cp = s[0], n = 1;
    else if ((s[0] >> 5) == 6)
        cp = s[0] & 0x1Fu, n = 2;
    else if ((s[0] >> 4) == 14)
        cp = s[0] & 0x0Fu, n = 3;
    else
        cp = s[0] & 0x07u, n = 4;
    for (size_t k = 1; k < n && s[k]; k++)
        cp = (cp << 6) | (s[k] & 0x3Fu);
    t->p += n;
    return cp;
}

static int
hex_digits(const char *s, int n, unsigned *out)
{
    unsigned v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[k];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + (unsigned)d;
    }
    *out = v;
    return 0;
}

/* An escape that names one character (t->p just past the backslash); 1 when it was one,
 * with the code point in *cp, 0 when it is something else, <0 when refused. */
static int
escape_char(translator *t, unsigned *cp)
{
    char c = *t->p;
    switch (c) {
    case 'n':
        *cp = '\n';
        break;
    case 't':
        *cp = '\t';
        break;
    case 'r':
        *cp = '\r';
        break;
    case 'f':
        *cp = '\f';
        break;
    case 'v':
        *cp = '\v';
        break;
    case '0':
        return refuse(t, "\\0 (the NUL character) is not supported");
    case 'c':
        if (!((t->p[1] >= 'a' && t->p[1] <= 'z') || (t->p[1] >= 'A' && t->p[1] <= 'Z')))
            return refuse(t, "\\c must be followed by a letter");
        *cp = (unsigned)t->p[1] & 31u;
        t->p += 2;
        return 1;
    case 'x':
        if (hex_digits(t->p + 1, 2, cp) != 0)
            return refuse(t, "\\x must be followed by two hex digits");
        t->p += 3;
        break;
    case 'u': {
        if (t->p[1] == '{')
            return refuse(t, "\\u{...} needs the 'u' flag, which patterns do not have");
        if (hex_digits(t->p + 1, 4, cp) != 0)
            return refuse(t, "\\u must be followed by four hex digits");
        t->p += 5;
        unsigned low;
        if (*cp >= 0xD800 && *cp <= 0xDBFF && t->p[0] == '\\' && t->p[1] == 'u' &&
            hex_digits(t->p + 2, 4, &low) == 0 && low >= 0xDC00 && low <= 0xDFFF) {
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (low - 0xDC00);
            t->p += 6;
        } else if (*cp >= 0xD800 && *cp <= 0xDFFF) {
            return refuse(t, "a lone surrogate \\u%04X is not supported", *cp);
        }
        break;
    }
    default:
        if (c >= '1' && c <= '9')
            return refuse(t, "backreferences (\\%c) are not supported", c);
        if (c == 'k')
            return refuse(t, "named backreferences (\\k<...>) are not supported");
        if (c == 'p' || c == 'P')
            return refuse(t, "Unicode property escapes (\\%c{...}) are not supported", c);
        if (c == '\0')
            return refuse(t, "the pattern ends with a lone backslash");
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return 0;
        *cp = take_utf8(t); /* an identity escape: \. \/ \- \\ ... */
        return 1;
    }
    if (c != 'x' && c != 'u')
        t->p++;
    if (*cp == 0)
        return refuse(t, "the NUL character is not supported");
    return 1;
}

/* One ECMA character outside a class, as an ERE literal. */
static void
put_literal(lh_buf *out, unsigned cp)
{
    if (cp < 0x80 && strchr(".[]\\()*+?{}|^$", (int)cp) != NULL)
        lh_buf_append(out, "\\", 1);
    put_utf8(out, cp);
}

/* A character class under construction: POSIX wants ']' first, '-' last, '^' anywhere but
 * first and '[' where it cannot open "[:", so literal ones are set aside and placed. */
typedef struct class_parts {
    lh_buf body;
    bool rbracket, dash, caret, lbracket;
} class_parts;

static void
class_add_char(class_parts *cls, unsigned cp)
{
    if (cp == ']')
        cls->rbracket = true;
    else if (cp == '-')
        cls->dash = true;
    else if (cp == '^')
        cls->caret = true;
    else if (cp == '[')
        cls->lbracket = true;
    else
        put_utf8(&cls->body, cp);
}

/* One class atom at t->p: 1 and *cp for a character, 2 for a set (\d \w \s, added
 * already), <0 when refused. */
static int
class_atom(translator *t, class_parts *cls, unsigned *cp)
{
    if (*t->p != '\\') {
        *cp = take_utf8(t);
        return 1;
    }
    t->p++;
    char c = *t->p;
    const char *set = c == 'd' ? "0-9" : c == 'w' ? "A-Za-z0-9_" : c == 's' ? "[:space:]" : NULL;
    if (set != NULL) {
        lh_buf_puts(&cls->body, set);
        t->p++;
        return 2;
    }
    if (c == 'D' || c == 'W' || c == 'S')
        return refuse(t, "\\%c inside a character class is not supported", c);
    if (c == 'b') { /* backspace, inside a class */
        *cp = '\b';
        t->p++;
        return 1;
    }
    int rc = escape_char(t, cp);
    if (rc == 0)
        return refuse(t, "the escape \\%c is not supported", c);
    return rc;
}

static int
translate_class(translator *t)
{
    class_parts cls = {0};
    lh_buf_init(&cls.body);
    int rc = 0;
    t->p++; /* '[' */
    bool negated = *t->p == '^';
    if (negated)
        t->p++;
    if (*t->p == ']') {
        rc = refuse(t, "the empty class %s is not supported", negated ? "[^]" : "[]");
        goto out;
    }
    while (*t->p != ']') {
        if (*t->p == '\0') {
            rc = refuse(t, "a character class is not closed with ']'");
            goto out;
        }
        unsigned low, high;
        int kind = class_atom(t, &cls, &low);
        if (kind < 0) {
            rc = kind;
            goto out;
        }
        if (kind == 1 && t->p[0] == '-' && t->p[1] != ']' && t->p[1] != '\0') {
            t->p++;
            int kind2 = class_atom(t, &cls, &high);
            if (kind2 < 0) {
                rc = kind2;
                goto out;
            }
            if (kind2 == 2) {
                rc = refuse(t, "a range cannot end in a class escape");
                goto out;
            }
            if (high < low) {
                rc = refuse(t, "a range is out of order");
                goto out;
            }
            if (strchr("[]-^", (int)low) || strchr("[]-^", (int)high)) {
                rc = refuse(t, "a range that starts or ends with [, ], - or ^ is not supported");
                goto out;
            }
            put_utf8(&cls.body, low);
            lh_buf_append(&cls.body, "-", 1);
            put_utf8(&cls.body, high);
        } else if (kind == 1) {
            class_add_char(&cls, low);
        }
    }
    t->p++; /* ']' */
    if (!negated && cls.body.len == 0 && !cls.rbracket && !cls.lbracket && cls.caret) {
        lh_buf_puts(&t->out, cls.dash ? "[-^]" : "\\^"); /* '^' cannot come first */
    } else {
        lh_buf_puts(&t->out, negated ? "[^" : "[");
        if (cls.rbracket)
            lh_buf_puts(&t->out, "]");
        if (cls.body.len)
            lh_buf_append(&t->out, cls.body.data, cls.body.len);
        if (cls.lbracket)
            lh_buf_puts(&t->out, "[");
        if (cls.caret)
            lh_buf_puts(&t->out, "^");
        if (cls.dash)
            lh_buf_puts(&t->out, "-");
        lh_buf_puts(&t->out, "]");
    }
    rc = add_atom(t, 1);
out:
    lh_buf_free(&cls.body);
    return rc;
}

static int
translate_escape(translator *t)
{
    t->p++; /* '\\' */
    static const struct {
        char c;
        const char *ere;
    } sets[] = {{'d', "[0-9]"},         {'D', "[^0-9]"},      {'w', "[A-Za-z0-9_]"},
                {'W', "[^A-Za-z0-9_]"}, {'s', "[[:space:]]"}, {'S', "[^[:space:]]"}};
    for (size_t k = 0; k < sizeof sets / sizeof sets[0]; k++)
        if (*t->p == sets[k].c) {
            lh_buf_puts(&t->out, sets[k].ere);
            t->p++;
            return add_atom(t, 1);
        }
    if (*t->p == 'b' || *t->p == 'B') { /* word boundaries: glibc's \b and \B */
        lh_buf_append(&t->out, t->p - 1, 2);
        t->p++;
        return 0;
    }
    char c = *t->p;
    unsigned cp;
    int rc = escape_char(t, &cp);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return refuse(t, "the escape \\%c is not supported", c);
    put_literal(&t->out, cp);
    return add_atom(t, 1);
}

/* "{n}", "{n,}" or "{n,m}" at t->p: 1 when it is one (and consumed), 0 when the brace is
 * a literal, <0 when refused. */
static int
translate_braces(translator *t)
{
    const char *s = t->p + 1;
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    unsigned long low = strtoul(s, &end, 10), high = low;
    bool unbounded = false;
    if (*end == ',') {
        s = end + 1;
        if (*s == '}') {
            unbounded = true;
            end = (char *)s;
        } else if (*s >= '0' && *s <= '9') {
            high = strtoul(s, &end, 10);
        } else {
            return 0;
        }
    }
    if (*end != '}')
        return 0;
    if (low > MAX_REPEAT || (!unbounded && high > MAX_REPEAT))
        return refuse(t, "a repetition count above %d is not supported", MAX_REPEAT);
    if (!unbounded && high < low)
        return refuse(t, "a repetition {%lu,%lu} is out of order", low, high);
    lh_buf_append(&t->out, t->p, (size_t)(end + 1 - t->p));
    t->p = end + 1;
    size_t times = unbounded ? low + 1 : high;
    if (times == 0)
        times = 1;
    size_t extra = t->last_atom * (times - 1);
    t->last_atom *= times;
    t->cost[t->depth] += extra;
    if (t->cost[t->depth] > MAX_EXPANDED)
        return refuse(t, "its counted repetitions expand to more than %d states", MAX_EXPANDED);
    return 1;
}

static int
translate_group_open(translator *t)
{
    if (t->p[1] == '?') {
        if (t->p[2] == ':') {
            t->p += 3;
        } else if (t->p[2] == '<' && t->p[3] != '=' && t->p[3] != '!') {
            const char *close = strchr(t->p + 3, '>');
            if (close == NULL)
                return refuse(t, "a named group is not closed with '>'");
            t->p = close + 1;
        } else {
            return refuse(t, "lookaround ((?=, (?!, (?<=, (?<!) is not supported");
        }
    } else {
        t->p++;
    }
    if (t->depth >= MAX_GROUP_DEPTH)
        return refuse(t, "groups nested deeper than %d", MAX_GROUP_DEPTH);
    lh_buf_puts(&t->out, "(");
    t->cost[++t->depth] = 0;
    return 0;
}

static int
translate(translator *t)
{
    int rc = 0;
    while (rc == 0 && *t->p) {
        char c = *t->p;
        switch (c) {
        case '\\':
            rc = translate_escape(t);
            break;
        case '[':
            rc = translate_class(t);
            break;
        case '(':
            rc = translate_group_open(t);
            break;
        case ')':
            if (t->depth == 0)
                return refuse(t, "a ')' closes no group");
            lh_buf_puts(&t->out, ")");
            t->p++;
            t->depth--;
            rc = add_atom(t, t->cost[t->depth + 1] ? t->cost[t->depth + 1] : 1);
            break;
        case '*':
        case '+':
        case '?':
            lh_buf_append(&t->out, t->p, 1);
            t->p++;
            if (*t->p == '?') /* lazy: same answer to "is there a match" */
                t->p++;
            break;
        case '{':
            rc = translate_braces(t);
            if (rc == 1) {
                rc = 0;
                if (*t->p == '?')
                    t->p++;
            } else if (rc == 0) {
                lh_buf_puts(&t->out, "\\{");
                t->p++;
                rc = add_atom(t, 1);
            }
            break;
        case '.':
            lh_buf_puts(&t->out, ANY_BUT_LINE_END);
            t->p++;
            rc = add_atom(t, 1);
            break;
        case '^':
        case '$':
        case '|':
            lh_buf_append(&t->out, t->p, 1);
            t->p++;
            break;
        default:
            put_literal(&t->out, take_utf8(t));
            rc = add_atom(t, 1);
            break;
        }
    }
    if (rc == 0 && t->depth != 0)
        return refuse(t, "a '(' is not closed");
    return rc;
}

int
lh_schema__regex_compile(const char *pattern, regex_t *out, char *why, size_t why_size)
{
    translator t = {.p = pattern, .why = why, .why_size = why_size};
    lh_buf_init(&t.out);
    /* Unanchored, but searched from the start only: glibc's regexec tries every start
     * position in turn (quadratic: 17 s for "(a+)+b" on 100 KB of "a"), while one pass of
     * a leading "any character, any number of times" finds the same matches in time
     * linear in the text. Without REG_NEWLINE "." matches line terminators; [[:cntrl:]]
     * adds the NUL, which "." never matches. */
    lh_buf_puts(&t.out, "^(.|[[:cntrl:]])*(");
    int rc = translate(&t);
    lh_buf_puts(&t.out, ")");
    if (rc == 0) {
        locale_t previous = enter_utf8();
        int re_rc = regcomp(out, t.out.data, REG_EXTENDED | REG_NOSUB);
        leave_utf8(previous);
        if (re_rc != 0) {
            char text[160];
            regerror(re_rc, out, text, sizeof text);
            snprintf(why, why_size, "%s", text);
            rc = LH_EINVAL;
        }
    }
    lh_buf_free(&t.out);
    return rc;
}

bool
lh_schema__regex_search(const regex_t *re, const char *text, size_t len)
{
    regmatch_t range[1] = {{.rm_so = 0, .rm_eo = (regoff_t)len}};
    locale_t previous = enter_utf8();
    int rc = regexec(re, text, 1, range, REG_STARTEND);
    leave_utf8(previous);
    return rc == 0;
}
