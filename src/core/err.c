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
    case LH_OK: return 200;
    case LH_EINVAL: return 400;
    case LH_EPERM: return 403;
    case LH_ENOTFOUND: return 404;
    case LH_EEXIST: return 409;
    case LH_ETOOBIG: return 413;
    case LH_ETIMEOUT: return 408;
    case LH_EUNAVAIL: return 503;
    case LH_ENOMEM: return 503;
    case LH_ECANCELED: return 409;
    default: return 500;
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

json_t *
lh_err_to_json(const lh_err *err)
{
    json_t *inner = json_object();
    const char *code = err && err->code[0] ? err->code : "internal_error";
    const char *message = err && err->message[0] ? err->message : "internal error";
    json_object_set_new(inner, "code", json_string(code));
    json_object_set_new(inner, "message", json_string(message));
    if (err && err->detail[0])
        json_object_set_new(inner, "detail", json_string(err->detail));
    if (err && err->hint[0])
        json_object_set_new(inner, "hint", json_string(err->hint));
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
