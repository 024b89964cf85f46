/*
 * h_system.c — GET /health, GET /whoami, GET /metrics.
 */
#include "http/http_int.h"

#include <string.h>

/* Load balancers poll /health many times a second; a query through DuckDB costs far
 * more than the rest of the request, so a success is trusted for this long. Failures
 * are never cached: every call re-checks until the engine answers again. */
#define ENGINE_CHECK_TTL_US 1000000

int
lh_h_health(lh_req *req, lh_resp *resp)
{
    lh_server *srv = req->srv;
    lh_err err;
    char started[LH_TIME_MAX];
    lh_time_format(srv->started_us, started);
    int64_t now = lh_mono_us();
    bool engine_ok = now - atomic_load(&srv->engine_ok_mono_us) < ENGINE_CHECK_TTL_US;
    if (!engine_ok && lh_engine_ping(srv->engine, &err) == 0) {
        engine_ok = true;
        atomic_store(&srv->engine_ok_mono_us, now);
    }
    json_t *checks = json_object();
    json_object_set_new(checks, "engine", engine_ok ? json_string("ok") : lh_err_to_json(&err));
    json_t *body = json_object();
    json_object_set_new(body, "status", json_string(engine_ok ? "ok" : "degraded"));
    json_object_set_new(body, "version", json_string(LH_VERSION));
    json_object_set_new(body, "started_at", json_string(started));
    json_object_set_new(body, "uptime_s", json_integer((lh_now_us() - srv->started_us) / 1000000));
    json_object_set_new(body, "duckdb_version", json_string(lh_engine_version()));
    json_object_set_new(body, "checks", checks);
    if (srv->buckets)
        json_object_set_new(body, "storage", lh_buckets_health_json(srv->buckets));
    if (srv->catalog)
        json_object_set_new(body, "catalog", lh_catalog_stats(srv->catalog));
    if (srv->cache)
        json_object_set_new(body, "cache", lh_cache_stats_json(srv->cache));
    if (srv->audit) {
        json_t *audit = json_object();
        lh_audit_stats(srv->audit, audit);
        json_object_set_new(body, "audit", audit);
    }
    return lh_resp_json(resp, engine_ok ? 200 : 503, body);
}

int
lh_h_whoami(lh_req *req, lh_resp *resp)
{
    json_t *roles = json_array();
    static const char *const names[] = {"admin", "writer", "reader", "agent"};
    for (unsigned i = 0; i < 4; i++)
        if (req->principal->roles & (1u << i))
            json_array_append_new(roles, json_string(names[i]));
    json_t *body = json_object();
    json_object_set_new(body, "name", json_string(req->principal->name));
    json_object_set_new(body, "roles", roles);
    json_object_set_new(body, "clearance", json_string(lh_level_name(req->principal->clearance)));
    const lh_profile_cfg *profile = req->principal->profile;
    json_object_set_new(body, "profile",
                        profile ? lh_profile_json(profile, (req->principal->roles & LH_ROLE_ADMIN))
                                : json_null());
    char bucket[LH_NAME_MAX + 80];
    lh_profile_bucket(req->principal, bucket, sizeof bucket);
    json_object_set_new(body, "default_bucket", json_string(bucket));
    json_object_set_new(body, "request_id", json_string(req->request_id));
    return lh_resp_json(resp, 200, body);
}

int
lh_h_metrics(lh_req *req, lh_resp *resp)
{
    lh_buf out;
    lh_buf_init(&out);
    lh_http__metrics_render(req->srv->metrics, &out, atomic_load(&req->srv->in_flight));
    int threads, idle;
    int64_t started, handed;
    lh_kept_stats(req->srv->offload, &handed, &started, &threads, &idle);
    lh_buf_printf(&out,
                  "# HELP lakehouse_http_handler_threads Threads of the handlers that may wait "
                  "(queries, searches, tool calls), idle ones included.\n"
                  "# TYPE lakehouse_http_handler_threads gauge\n"
                  "lakehouse_http_handler_threads %d\n"
                  "# HELP lakehouse_http_handler_threads_idle Those waiting for a request.\n"
                  "# TYPE lakehouse_http_handler_threads_idle gauge\n"
                  "lakehouse_http_handler_threads_idle %d\n"
                  "# HELP lakehouse_http_handler_threads_started_total Handler threads started "
                  "(an idle one is reused first).\n"
                  "# TYPE lakehouse_http_handler_threads_started_total counter\n"
                  "lakehouse_http_handler_threads_started_total %lld\n"
                  "# HELP lakehouse_http_handler_offloaded_total Requests handed to a handler "
                  "thread (the others ran on the HTTP worker).\n"
                  "# TYPE lakehouse_http_handler_offloaded_total counter\n"
                  "lakehouse_http_handler_offloaded_total %lld\n",
                  threads, idle, (long long)started, (long long)handed);
    lh_engine_load_stats load;
    lh_engine_load(req->srv->engine, &load);
    lh_buf_printf(&out,
                  "# HELP lakehouse_queries_running User queries holding a slot now.\n"
                  "# TYPE lakehouse_queries_running gauge\n"
                  "lakehouse_queries_running %d\n"
                  "# HELP lakehouse_queries_max_concurrent The most user queries running at "
                  "once ([engine] max_concurrent_queries).\n"
                  "# TYPE lakehouse_queries_max_concurrent gauge\n"
                  "lakehouse_queries_max_concurrent %d\n"
                  "# HELP lakehouse_queries_queued User queries waiting for a slot now.\n"
                  "# TYPE lakehouse_queries_queued gauge\n"
                  "lakehouse_queries_queued %d\n"
                  "# HELP lakehouse_queries_cancelled_total User queries stopped because "
                  "their client went away.\n"
                  "# TYPE lakehouse_queries_cancelled_total counter\n"
                  "lakehouse_queries_cancelled_total %lld\n"
                  "# HELP lakehouse_queries_queue_timeouts_total User queries that waited "
                  "for a slot past their time limit (408).\n"
                  "# TYPE lakehouse_queries_queue_timeouts_total counter\n"
                  "lakehouse_queries_queue_timeouts_total %lld\n"
                  "# HELP lakehouse_queries_refused_total User queries refused because "
                  "their principal had too many waiting (429).\n"
                  "# TYPE lakehouse_queries_refused_total counter\n"
                  "lakehouse_queries_refused_total %lld\n",
                  load.running, load.max_running, load.queued, load.cancelled, load.queue_timeouts,
                  load.refused);
    long open = 0;
    int64_t closed_slow = 0, body_timeouts = 0;
    lh_http__conns_stats(req->srv->conns, &open, &closed_slow, &body_timeouts);
    lh_buf_printf(&out,
                  "# HELP lakehouse_http_connections_open Client connections open now.\n"
                  "# TYPE lakehouse_http_connections_open gauge\n"
                  "lakehouse_http_connections_open %ld\n"
                  "# HELP lakehouse_http_connections_closed_slow_total Connections closed for "
                  "not sending their request headers in time, or to make room.\n"
                  "# TYPE lakehouse_http_connections_closed_slow_total counter\n"
                  "lakehouse_http_connections_closed_slow_total %lld\n"
                  "# HELP lakehouse_http_connections_body_timeouts_total Requests answered 408 "
                  "because their body did not arrive in time.\n"
                  "# TYPE lakehouse_http_connections_body_timeouts_total counter\n"
                  "lakehouse_http_connections_body_timeouts_total %lld\n",
                  open, (long long)closed_slow, (long long)body_timeouts);
    lh_resp_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", out.data, out.len);
    lh_buf_free(&out);
    return 0;
}

int
lh_h_profiles(lh_req *req, lh_resp *resp)
{
    return lh_resp_json(
        resp, 200, json_pack("{s:o}", "profiles", lh_profiles_list(req->auth, req->principal)));
}
