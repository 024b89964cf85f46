/*
 * log.c — structured logging: one JSON object per line, written with a single write(2)
 * so lines from concurrent threads never interleave. The level is a process-wide
 * atomic set from configuration at start.
 */
#include "core.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int log_level = LH_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

void
lh_log_set_level(lh_log_level level)
{
    atomic_store(&log_level, (int)level);
}

lh_log_level
lh_log_get_level(void)
{
    return (lh_log_level)atomic_load(&log_level);
}

int
lh_log_level_parse(const char *s)
{
    for (int i = 0; i <= LH_LOG_OFF; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LH_LOG_WARN;
    return -1;
}

bool
lh_log_enabled(lh_log_level level)
{
    return level != LH_LOG_OFF && (int)level >= atomic_load(&log_level);
}

void
lh_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

static void
emit(lh_log_level level, const char *request_id, json_t *fields, const char *msg)
{
    char when[LH_TIME_MAX];
    lh_time_format(lh_now_us(), when);
    json_t *line = json_object();
    json_object_set_new(line, "time", json_string(when));
    json_object_set_new(line, "level", json_string(level_names[level]));
    /* json_string rejects invalid UTF-8; keep the line rather than lose it */
    json_object_set_new(line, "msg", lh_json_text(msg));
    if (request_id)
        json_object_set_new(line, "request_id", lh_json_text(request_id));
    if (fields) {
        const char *key;
        json_t *value;
        json_object_foreach(fields, key, value)
        {
            if (json_object_get(line, key) == NULL)
                json_object_set(line, key, value);
        }
    }
    char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(line);
    if (text == NULL)
        return;
    size_t n = strlen(text);
    text[n] = '\n'; /* replace the NUL: we write exactly n+1 bytes */
    (void)lh_write_all(atomic_load(&log_fd), text, n + 1); /* a log has nowhere to report */
    free(text);
}

void
lh_log(lh_log_level level, const char *request_id, json_t *fields, const char *fmt, ...)
{
    if (!lh_log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, request_id, fields, msg);
}

void
lh_log_err(lh_log_level level, const char *request_id, const lh_err *err)
{
    if (!lh_log_enabled(level))
        return;
    json_t *fields = json_object();
    json_object_set_new(fields, "code", lh_json_text(err->code));
    if (err->http_status)
        json_object_set_new(fields, "status", json_integer(err->http_status));
    if (err->detail[0])
        json_object_set_new(fields, "detail", lh_json_text(err->detail));
    if (err->hint[0])
        json_object_set_new(fields, "hint", lh_json_text(err->hint));
    emit(level, request_id, fields, err->message);
    json_decref(fields);
}
