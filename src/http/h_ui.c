/*
 * h_ui.c — the web console's files, compiled into the binary (ui_assets.h), served under
 * /ui/. The console is a client of the documented API like any other: these routes hand
 * out static files only and need no token (the console asks for one and sends it as a
 * bearer header on its API calls).
 *
 * Every file goes out with a strict Content-Security-Policy (scripts and styles only from
 * this origin: no inline script, no eval), no referrer, no framing and no sniffing; gzip
 * when the client takes it; an ETag and "no-cache", so a browser revalidates each time
 * (a 304 costs a round trip, not the body) and never runs files older than the server's.
 */
#include "http/http_int.h"
#include "http/ui_assets.h"

#include <string.h>

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const lh_ui_asset *
find_asset(const char *path)
{
    for (size_t i = 0; i < lh_ui_n_assets; i++)
        if (strcmp(lh_ui_assets[i].path, path) == 0)
            return &lh_ui_assets[i];
    return NULL;
}

/* Whether an Accept-Encoding value takes gzip (a "gzip" token whose q is not 0). */
static bool
takes_gzip(const char *accept)
{
    for (const char *p = accept; p && *p;) {
        p += strspn(p, " \t,");
        size_t n = strcspn(p, ",;");
        bool gzip = n == 4 && strncasecmp(p, "gzip", 4) == 0;
        p += n;
        bool zero = false;
        if (*p == ';') {
            const char *q = strstr(p, "q=");
            const char *end = p + strcspn(p, ",");
            if (q && q < end)
                zero = strtod(q + 2, NULL) == 0.0;
            p = end;
        }
        if (gzip && !zero)
            return true;
    }
    return false;
}

int
lh_h_ui(lh_req *req, lh_resp *resp)
{
    const char *rest = lh_req_param(req, "path");
    const char *path = rest ? lh_arena_printf(req->arena, "/ui/%s", rest) : "/ui/index.html";
    const lh_ui_asset *a = find_asset(path);
    if (a == NULL) {
        lh_err err;
        lh_err_set(&err, LH_ENOTFOUND, 404, "not_found", "the console has no file '%s'", path);
        lh_err_hint(&err, "the console starts at /ui/");
        return lh_resp_error(resp, &err);
    }
    lh_resp_header(resp, "Content-Security-Policy", csp);
    lh_resp_header(resp, "X-Content-Type-Options", "nosniff");
    lh_resp_header(resp, "Referrer-Policy", "no-referrer");
    lh_resp_header(resp, "X-Frame-Options", "DENY");
    lh_resp_header(resp, "Cache-Control", "no-cache");
    lh_resp_header(resp, "ETag", a->etag);
    lh_resp_header(resp, "Vary", "Accept-Encoding");
    resp->content_type = a->content_type;
    const char *inm = lh_req_header(req, "If-None-Match");
    if (inm && (strstr(inm, a->etag) || strcmp(inm, "*") == 0)) {
        resp->status = 304;
        return 0;
    }
    resp->status = 200;
    if (takes_gzip(lh_req_header(req, "Accept-Encoding"))) {
        lh_resp_header(resp, "Content-Encoding", "gzip");
        resp->static_body = a->gz;
        resp->static_len = a->gz_len;
    } else {
        resp->static_body = a->data;
        resp->static_len = a->len;
    }
    return 0;
}

int
lh_h_ui_redirect(lh_req *req, lh_resp *resp)
{
    static const char body[] = "{\"location\":\"/ui/\"}";
    lh_resp_header(resp, "Location", "/ui/");
    return lh_resp_text(resp, 308, "application/json", body, sizeof body - 1);
}
