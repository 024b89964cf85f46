/*
 * core_int.h — internals shared by the files of src/core. Not used outside this folder.
 */
#ifndef LH_CORE_INT_H
#define LH_CORE_INT_H

#include "core.h"

#include <stdarg.h>

/* Format fmt with ap into memory that reserve(ctx, n + 1) provides, n being the length
 * of the formatted text (0 when the format fails: the text is then ""). Returns n.
 * reserve must not fail (it aborts on out-of-memory). The one vsnprintf
 * measure-then-write behind lh_sprintf, lh_arena_printf and lh_buf_printf. */
size_t lh_core__vformat(char *(*reserve)(void *ctx, size_t size), void *ctx, const char *fmt,
                        va_list ap);

/* A JSON number's text (checked against the grammar) as a double, the value strtod gives;
 * false for what jansson refuses (an integer past int64, a real past double's range).
 * Behind lh_json_take_floats; the tests compare it with strtod. */
bool lh_core__json_number(const char *p, size_t len, double *out);

#endif
