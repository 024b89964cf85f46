/*
 * err.c — the lh_err error object and its one JSON rendering. Errors from libraries are
 * translated into lh_err where the library is called; this file knows none of them.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

static void
vformat(char *dst, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(dst, size, fmt, ap);
    if (n < 0)
        dst[0] = '\0';
}

int
lh_err_status_for(int rc)
{
    switch (rc) {
    case LH_OK:
        return 200;
    case LH_EINVAL:
        return 400;
    case LH_EPERM:
        return 403;
    case LH_ENOTFOUND:
        return 404;
    case LH_EEXIST:
        return 409;
    case LH_ETOOBIG:
        return 413;
    case LH_ETIMEOUT:
        return 408;
    case LH_EUNAVAIL:
        return 503;
    case LH_ENOMEM:
        return 503;
    case LH_ECANCELED:
        return 409;
    default:
        return 500;
    }
}

int
lh_err_set(lh_err *err, int rc, int http_status, const char *code, const char *fmt, ...)
{
    if (err == NULL)
        return rc;
    err->rc = rc;
    err->http_status = http_status ? http_status : lh_err_status_for(rc);
    snprintf(err->code, sizeof err->code, "%s", code ? code : "error");
    va_list ap;
    va_start(ap, fmt);
    vformat(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->detail[0] = '\0';
    err->hint[0] = '\0';
    return rc;
}

void
lh_err_detail(lh_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vformat(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
}

void
lh_err_hint(lh_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vformat(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
}

void
lh_err_clear(lh_err *err)
{
    if (err != NULL)
        memset(err, 0, sizeof *err);
}

/* Length of the valid UTF-8 sequence at s, or 0 when the byte there starts none. */
static size_t
utf8_seq_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    for (size_t k = 1; k < n; k++) /* stops at the NUL, which is no continuation byte */
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    if (n == 2 && c < 0xC2)
        return 0;
    if (n == 3) {
        unsigned cp = ((c & 15u) << 12) | ((s[1] & 63u) << 6);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
    }
    if (n == 4) {
        unsigned cp = ((c & 7u) << 18) | ((s[1] & 63u) << 12);
        if (cp < 0x10000 || cp > 0x10FFFF)
            return 0;
    }
    return n;
}

/* json_string refuses invalid UTF-8, which an error text can hold (a client's bytes
 * echoed in a message, or a character cut in half by truncation to LH_ERR_TEXT_MAX).
 * Replace each bad byte with U+FFFD so that no member of the body is ever dropped. */
json_t *
lh_json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    lh_buf clean;
    lh_buf_init(&clean);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t n = utf8_seq_len(p);
        if (n == 0) {
            lh_buf_puts(&clean, "\xEF\xBF\xBD");
            p++;
        } else {
            lh_buf_append(&clean, p, n);
            p += n;
        }
    }
    j = json_string(clean.data ? clean.data : "");
    lh_buf_free(&clean);
    return j;
}

json_t *
lh_err_to_json(const lh_err *err)
{
    json_t *inner = json_object();
    const char *code = err && err->code[0] ? err->code : "internal_error";
    const char *message = err && err->message[0] ? err->message : "internal error";
    json_object_set_new(inner, "code", lh_json_text(code));
    json_object_set_new(inner, "message", lh_json_text(message));
    if (err && err->detail[0])
        json_object_set_new(inner, "detail", lh_json_text(err->detail));
    if (err && err->hint[0])
        json_object_set_new(inner, "hint", lh_json_text(err->hint));
    json_t *outer = json_object();
    json_object_set_new(outer, "error", inner);
    return outer;
}

char *
lh_err_to_body(const lh_err *err)
{
    json_t *j = lh_err_to_json(err);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        abort();
    /* jansson allocates with malloc unless told otherwise, so free() is right. */
    return s;
}

int
lh_json_check_fields(const json_t *obj, const char *const *fields, const char *hint, lh_err *err)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        bool known = false;
        for (const char *const *f = fields; *f && !known; f++)
            known = strcmp(*f, key) == 0;
        if (!known) {
            lh_err_set(err, LH_EINVAL, 400, "invalid_parameter", "unknown field '%s'", key);
            lh_err_hint(err, "%s", hint);
            return LH_EINVAL;
        }
    }
    return 0;
}

int
lh_json_opt_string(const json_t *obj, const char *field, const char **out, lh_err *err)
{
    const json_t *v = json_object_get(obj, field);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v))
        return lh_err_set(err, LH_EINVAL, 400, "invalid_parameter",
                          "'%s' must be a non-empty string", field);
    *out = json_string_value(v);
    return 0;
}

void
lh_json_wipe(json_t *j)
{
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_string(j)) {
        lh_wipe((char *)json_string_value(j), json_string_length(j));
    } else if (json_is_object(j)) {
        json_object_foreach(j, key, v) lh_json_wipe(v);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) lh_json_wipe(v);
    }
}
