/*
 * buf.c — growable, NUL-terminated byte buffers.
 */
#include "core_int.h"

#include <stdlib.h>
#include <string.h>

void
lh_buf_init(lh_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
lh_buf_free(lh_buf *b)
{
    free(b->data);
    lh_buf_init(b);
}

static int
grow(lh_buf *b, size_t extra, bool may_fail)
{
    if (extra > SIZE_MAX - b->len - 1) {
        if (may_fail)
            return LH_ENOMEM;
        abort();
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = may_fail ? lh_try_realloc(b->data, cap) : lh_realloc(b->data, cap);
    if (p == NULL)
        return LH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
lh_buf_try_append(lh_buf *b, const void *data, size_t n)
{
    if (grow(b, n, true) != 0)
        return LH_ENOMEM;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void
lh_buf_append(lh_buf *b, const void *data, size_t n)
{
    grow(b, n, false);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
lh_buf_puts(lh_buf *b, const char *s)
{
    lh_buf_append(b, s, strlen(s));
}

/* Room for size bytes (the text and its NUL) at the end of the buffer. */
static char *
reserve_tail(void *ctx, size_t size)
{
    lh_buf *b = ctx;
    grow(b, size - 1, false);
    return b->data + b->len;
}

void
lh_buf_printf(lh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    b->len += lh_core__vformat(reserve_tail, b, fmt, ap);
    va_end(ap);
}

char *
lh_buf_steal(lh_buf *b)
{
    if (b->data == NULL)
        lh_buf_append(b, "", 0);
    char *p = b->data;
    lh_buf_init(b);
    return p;
}

int
lh_buf_try_reserve(lh_buf *b, size_t extra)
{
    return grow(b, extra, true);
}
