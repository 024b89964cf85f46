/*
 * client.c — the CLI's HTTP client for a running server (libcurl).
 *
 * Where the server is: [server] host/port of the same configuration `serve` would use
 * (--config, $LAKEHOUSE_CONFIG, ./lakehouse.toml, defaults, LAKEHOUSE_* overrides), or
 * $LAKEHOUSE_URL. The token: $LAKEHOUSE_TOKEN, else <data_dir>/admin.token.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct lh_client {
    char *base_url;
    char *auth_header;
};

static char *
read_token(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char buf[512];
    char *got = fgets(buf, sizeof buf, f);
    fclose(f);
    if (got == NULL)
        return NULL;
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf[0] ? lh_strdup(buf) : NULL;
}

int
lh_client_open(const char *config_path, lh_client **out)
{
    lh_err err;
    lh_config *cfg = NULL;
    if (config_path == NULL)
        config_path = getenv("LAKEHOUSE_CONFIG");
    struct stat st;
    if (config_path == NULL && stat("lakehouse.toml", &st) == 0)
        config_path = "lakehouse.toml";
    if (lh_config_load(config_path, NULL, &cfg, &err) != 0) {
        fprintf(stderr, "lakehouse: %s\n", err.message);
        return 2;
    }
    lh_client *c = lh_calloc(1, sizeof *c);
    const char *url = getenv("LAKEHOUSE_URL");
    if (url && url[0]) {
        c->base_url = lh_strdup(url);
    } else {
        const char *host = lh_config_str(cfg, "server.host");
        bool v6 = strchr(host, ':') != NULL;
        c->base_url = lh_sprintf("http://%s%s%s:%lld", v6 ? "[" : "", host, v6 ? "]" : "",
                                 (long long)lh_config_int(cfg, "server.port"));
    }
    const char *env_token = getenv("LAKEHOUSE_TOKEN");
    char *token = env_token && env_token[0] ? lh_strdup(env_token) : NULL;
    if (token == NULL) {
        char *path = lh_sprintf("%s/admin.token", lh_config_str(cfg, "server.data_dir"));
        token = read_token(path);
        if (token == NULL) {
            fprintf(stderr,
                    "lakehouse: no token: set LAKEHOUSE_TOKEN or run where %s is readable\n", path);
            free(path);
            free(c->base_url);
            free(c);
            lh_config_free(cfg);
            return 2;
        }
        free(path);
    }
    c->auth_header = lh_sprintf("Authorization: Bearer %s", token);
    lh_free_secret(token);
    lh_config_free(cfg);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    *out = c;
    return 0;
}

void
lh_client_close(lh_client *c)
{
    if (c == NULL)
        return;
    free(c->base_url);
    lh_free_secret(c->auth_header);
    free(c);
}

static size_t
to_buf(char *data, size_t size, size_t n, void *ud)
{
    lh_buf_append(ud, data, size * n);
    return size * n;
}

typedef struct upload {
    FILE *f;
} upload;

static size_t
from_file(char *buf, size_t size, size_t n, void *ud)
{
    upload *u = ud;
    return fread(buf, 1, size * n, u->f);
}

int
lh_client_request(lh_client *c, const char *method, const char *path, const char *json_body,
                  const char *upload_path, long *status, lh_buf *out)
{
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, c->auth_header);
    char *url = lh_sprintf("%s%s", c->base_url, path);
    FILE *f = NULL;
    upload up = {0};
    int rc = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (json_body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json_body);
    } else if (upload_path) {
        f = fopen(upload_path, "rb");
        struct stat st;
        if (f == NULL || fstat(fileno(f), &st) != 0) {
            fprintf(stderr, "lakehouse: cannot read %s: %s\n", upload_path, strerror(errno));
            rc = 2;
            goto out;
        }
        up.f = f;
        headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
        headers = curl_slist_append(headers, "Expect:");
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, from_file);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "lakehouse: cannot reach the server at %s: %s\n", c->base_url,
                curl_easy_strerror(cc));
        fprintf(stderr, "lakehouse: hint: start it with 'lakehouse serve' or set LAKEHOUSE_URL\n");
        rc = 1;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
out:
    if (f)
        fclose(f);
    free(url);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}

typedef struct session_header {
    char *out;
    size_t size;
} session_header;

/* Keeps the value of an Mcp-Session-Id answer header (visible ASCII only, as the spec
 * says a session id is). */
static size_t
on_header(char *data, size_t size, size_t n, void *ud)
{
    session_header *sh = ud;
    size_t len = size * n;
    static const char name[] = "mcp-session-id:";
    if (len > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t vlen = len - (sizeof name - 1);
        while (vlen && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
            vlen--;
        bool visible = vlen > 0 && vlen < sh->size;
        for (size_t i = 0; i < vlen && visible; i++)
            visible = v[i] > 0x20 && v[i] < 0x7f;
        if (visible) {
            memcpy(sh->out, v, vlen);
            sh->out[vlen] = '\0';
        }
    }
    return len;
}

int
lh_client_mcp(lh_client *c, const char *method, const char *body, size_t len,
              const char *session_id, const char *protocol_version, long *status, lh_buf *out,
              char *session_out, size_t session_size)
{
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, c->auth_header);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json, text/event-stream");
    headers = curl_slist_append(headers, "Expect:");
    char *line = NULL;
    if (session_id) {
        line = lh_sprintf("Mcp-Session-Id: %s", session_id);
        headers = curl_slist_append(headers, line);
        free(line);
    }
    if (protocol_version) {
        line = lh_sprintf("MCP-Protocol-Version: %s", protocol_version);
        headers = curl_slist_append(headers, line);
        free(line);
    }
    char *url = lh_sprintf("%s/mcp", c->base_url);
    session_header sh = {session_out, session_size};
    int rc = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buf);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &sh);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        fprintf(stderr, "lakehouse: cannot reach the server at %s: %s\n", c->base_url,
                curl_easy_strerror(cc));
        rc = 1;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    }
    free(url);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return rc;
}

int
lh_client_print_error(long status, const lh_buf *body)
{
    json_t *j = body->len ? json_loadb(body->data, body->len, 0, NULL) : NULL;
    json_t *e = json_object_get(j, "error");
    if (e) {
        fprintf(stderr, "lakehouse: %s (HTTP %ld %s)\n",
                json_string_value(json_object_get(e, "message")), status,
                json_string_value(json_object_get(e, "code")));
        const char *detail = json_string_value(json_object_get(e, "detail"));
        const char *hint = json_string_value(json_object_get(e, "hint"));
        if (detail)
            fprintf(stderr, "lakehouse: detail: %s\n", detail);
        if (hint)
            fprintf(stderr, "lakehouse: hint: %s\n", hint);
    } else {
        fprintf(stderr, "lakehouse: the server answered HTTP %ld\n", status);
    }
    json_decref(j);
    return status >= 500 ? 1 : 2;
}

/* ---- a table on a terminal ----------------------------------------------------------- */

static char *
cell_text(json_t *v)
{
    if (json_is_string(v))
        return lh_strdup(json_string_value(v));
    if (json_is_null(v))
        return lh_strdup("NULL");
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(15));
    return s ? s : lh_strdup("?");
}

/* Display width of UTF-8 text: one column per code point (good enough for a table). */
static size_t
width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void
lh_client_print_table(FILE *out, json_t *columns, json_t *rows)
{
    size_t nc = json_array_size(columns), nr = json_array_size(rows);
    size_t *w = lh_calloc(nc ? nc : 1, sizeof *w);
    char ***cells = lh_calloc(nr ? nr : 1, sizeof *cells);
    for (size_t c = 0; c < nc; c++)
        w[c] = width(json_string_value(json_object_get(json_array_get(columns, c), "name")));
    for (size_t r = 0; r < nr; r++) {
        cells[r] = lh_calloc(nc ? nc : 1, sizeof **cells);
        json_t *row = json_array_get(rows, r);
        for (size_t c = 0; c < nc; c++) {
            const char *name =
                json_string_value(json_object_get(json_array_get(columns, c), "name"));
            cells[r][c] = cell_text(json_object_get(row, name));
            if (width(cells[r][c]) > 60) {
                /* cut after 57 characters, not bytes, so UTF-8 stays whole */
                char *p = cells[r][c];
                size_t chars = 0;
                while (*p && chars < 57) {
                    p++;
                    while ((*p & 0xC0) == 0x80)
                        p++;
                    chars++;
                }
                strcpy(p, "...");
            }
            if (width(cells[r][c]) > w[c])
                w[c] = width(cells[r][c]);
        }
    }
    for (size_t c = 0; c < nc; c++) {
        const char *name = json_string_value(json_object_get(json_array_get(columns, c), "name"));
        fprintf(out, "%s%s%*s", c ? " | " : "", name, (int)(w[c] - width(name)), "");
    }
    fprintf(out, "\n");
    for (size_t c = 0; c < nc; c++) {
        fprintf(out, "%s", c ? "-+-" : "");
        for (size_t k = 0; k < w[c]; k++)
            fputc('-', out);
    }
    fprintf(out, "\n");
    for (size_t r = 0; r < nr; r++) {
        for (size_t c = 0; c < nc; c++) {
            fprintf(out, "%s%s%*s", c ? " | " : "", cells[r][c], (int)(w[c] - width(cells[r][c])),
                    "");
            free(cells[r][c]);
        }
        fprintf(out, "\n");
        free(cells[r]);
    }
    free(cells);
    free(w);
}
