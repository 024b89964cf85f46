/*
 * test_mcp.c — the MCP module without HTTP (src/mcp): the transport's answers to every
 * bad message, version negotiation, sessions bound to their principal, their bound and
 * their expiry. The catalog is not needed here (resources are covered end to end by
 * tests/e2e/test_mcp.py); each test checks with ASan that it leaked nothing.
 */
#include "testutil.h"

#include "mcp/mcp_int.h"

static const lh_principal ALICE = {.name = "alice", .roles = LH_ROLE_READER};
static const lh_principal BOB = {.name = "bob", .roles = LH_ROLE_READER};
static const lh_mcp_http POST = {.method = "POST",
                                 .accept = "application/json, text/event-stream",
                                 .content_type = "application/json"};

static lh_mcp *
new_mcp(const char *max_sessions)
{
    char *env_line = lh_sprintf("LAKEHOUSE_MCP_MAX_SESSIONS=%s", max_sessions);
    char *env[] = {env_line, NULL};
    lh_config *cfg = NULL;
    lh_err err;
    assert_int_equal(lh_config_load(NULL, env, &cfg, &err), 0);
    free(env_line);
    lh_mcp_deps deps = {.config = cfg, .catalog = NULL};
    lh_mcp *mcp = NULL;
    assert_int_equal(lh_mcp_new(&deps, &mcp, &err), 0);
    lh_config_free(cfg); /* lh_mcp keeps nothing of it */
    return mcp;
}

/* POST text as who with session; returns the parsed answer (new; NULL when no body). */
static json_t *
post_as(lh_mcp *mcp, const lh_principal *who, const char *session, const char *text,
        lh_mcp_answer *a)
{
    lh_mcp_handle(mcp, who, session, text, strlen(text), &POST, a);
    return a->body ? json_loads(a->body, 0, NULL) : NULL;
}

static int
error_code(const json_t *answer)
{
    return (int)json_integer_value(json_object_get(json_object_get(answer, "error"), "code"));
}

/* initialize as who; the session id into sid. Returns the negotiated version (static). */
static const char *
initialize(lh_mcp *mcp, const lh_principal *who, const char *version, char sid[65])
{
    static char negotiated[32];
    char *text = lh_sprintf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
                            "\"params\":{\"protocolVersion\":\"%s\"}}",
                            version);
    lh_mcp_answer a;
    json_t *j = post_as(mcp, who, NULL, text, &a);
    free(text);
    assert_int_equal(a.status, 200);
    assert_int_equal(strlen(a.session_id), 64);
    memcpy(sid, a.session_id, 65);
    snprintf(negotiated, sizeof negotiated, "%s",
             json_string_value(json_object_get(json_object_get(j, "result"), "protocolVersion")));
    json_decref(j);
    lh_mcp_answer_free(&a);
    return negotiated;
}

static void
expect(lh_mcp *mcp, const lh_principal *who, const char *session, const char *text, int status,
       int code)
{
    lh_mcp_answer a;
    json_t *j = post_as(mcp, who, session, text, &a);
    if (a.status != status || (code && error_code(j) != code))
        print_error("for %s: got %d %s\n", text, a.status, a.body ? a.body : "(no body)");
    assert_int_equal(a.status, status);
    if (code)
        assert_int_equal(error_code(j), code);
    json_decref(j);
    lh_mcp_answer_free(&a);
}

static void
test_negotiation(void **state)
{
    lh_mcp *mcp = new_mcp("10");
    char sid[65];
    assert_string_equal(initialize(mcp, &ALICE, "2025-06-18", sid), "2025-06-18");
    assert_string_equal(initialize(mcp, &ALICE, "2025-03-26", sid), "2025-03-26");
    assert_string_equal(initialize(mcp, &ALICE, "2099-12-31", sid), LH_MCP_LATEST_VERSION);
    expect(mcp, &ALICE, NULL, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}", 200,
           LH_MCP_INVALID_PARAMS);
    lh_mcp_free(mcp);
}

static void
test_bad_messages(void **state)
{
    lh_mcp *mcp = new_mcp("10");
    char sid[65];
    initialize(mcp, &ALICE, "2025-06-18", sid);
    expect(mcp, &ALICE, sid, "{", 400, LH_MCP_PARSE_ERROR);
    expect(mcp, &ALICE, sid, "", 400, LH_MCP_PARSE_ERROR);
    expect(mcp, &ALICE, sid, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", 400,
           LH_MCP_INVALID_REQUEST);
    expect(mcp, &ALICE, sid, "7", 400, LH_MCP_INVALID_REQUEST);
    expect(mcp, &ALICE, sid, "{\"id\":1,\"method\":\"ping\"}", 400, LH_MCP_INVALID_REQUEST);
    expect(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}", 400,
           LH_MCP_INVALID_REQUEST);
    expect(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}", 200,
           LH_MCP_METHOD_NOT_FOUND);
    expect(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":[]}",
           200, LH_MCP_INVALID_PARAMS);
    expect(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 200, 0);
    expect(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", 202,
           0);
    /* headers */
    lh_mcp_http h = POST;
    h.protocol_version = "2020-01-01";
    lh_mcp_answer a;
    lh_mcp_handle(mcp, &ALICE, sid, "{}", 2, &h, &a);
    assert_int_equal(a.status, 400);
    lh_mcp_answer_free(&a);
    h = POST;
    h.accept = "application/json";
    lh_mcp_handle(mcp, &ALICE, sid, "{}", 2, &h, &a);
    assert_int_equal(a.status, 406);
    lh_mcp_answer_free(&a);
    h = POST;
    h.origin = "https://attacker.example";
    h.host = "127.0.0.1:3100";
    lh_mcp_handle(mcp, &ALICE, sid, "{}", 2, &h, &a);
    assert_int_equal(a.status, 403);
    lh_mcp_answer_free(&a);
    h.origin = "http://127.0.0.1:3100";
    h.host = "127.0.0.1:3100";
    lh_mcp_handle(mcp, &ALICE, sid, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", 40, &h,
                  &a);
    assert_int_equal(a.status, 200);
    lh_mcp_answer_free(&a);
    h = POST;
    h.method = "GET";
    lh_mcp_handle(mcp, &ALICE, sid, NULL, 0, &h, &a);
    assert_int_equal(a.status, 405);
    assert_string_equal(a.allow, "POST, DELETE");
    lh_mcp_answer_free(&a);
    lh_mcp_free(mcp);
}

static void
test_sessions_bound_to_principal(void **state)
{
    lh_mcp *mcp = new_mcp("10");
    char sid[65], other[65];
    initialize(mcp, &ALICE, "2025-06-18", sid);
    initialize(mcp, &ALICE, "2025-06-18", other);
    assert_string_not_equal(sid, other);
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    expect(mcp, &BOB, sid, ping, 404, LH_MCP_SESSION_NOT_FOUND);
    expect(mcp, &ALICE, NULL, ping, 400, LH_MCP_BAD_TRANSPORT);
    expect(mcp, &ALICE, "nope", ping, 404, LH_MCP_SESSION_NOT_FOUND);
    expect(mcp, &ALICE, sid, ping, 200, 0);
    lh_mcp_http del = {.method = "DELETE"};
    lh_mcp_answer a;
    lh_mcp_handle(mcp, &BOB, sid, NULL, 0, &del, &a);
    assert_int_equal(a.status, 404);
    lh_mcp_answer_free(&a);
    lh_mcp_handle(mcp, &ALICE, sid, NULL, 0, &del, &a);
    assert_int_equal(a.status, 200);
    assert_null(a.body);
    lh_mcp_answer_free(&a);
    expect(mcp, &ALICE, sid, ping, 404, LH_MCP_SESSION_NOT_FOUND);
    assert_int_equal(lh_mcp_sessions(mcp), 1);
    lh_mcp_free(mcp);
}

static void
test_bound_and_expiry(void **state)
{
    lh_mcp *mcp = new_mcp("3");
    const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}";
    char bob[65], a1[65], a2[65], a3[65], a4[65];
    initialize(mcp, &BOB, "2025-06-18", bob);
    initialize(mcp, &ALICE, "2025-06-18", a1);
    initialize(mcp, &ALICE, "2025-06-18", a2);
    initialize(mcp, &ALICE, "2025-06-18", a3); /* full: alice's oldest makes room */
    assert_int_equal(lh_mcp_sessions(mcp), 3);
    expect(mcp, &ALICE, a1, ping, 404, LH_MCP_SESSION_NOT_FOUND);
    expect(mcp, &BOB, bob, ping, 200, 0);
    initialize(mcp, &ALICE, "2025-06-18", a4);
    expect(mcp, &ALICE, a2, ping, 404, LH_MCP_SESSION_NOT_FOUND);
    expect(mcp, &BOB, bob, ping, 200, 0);
    /* idle sessions expire */
    mcp->session_idle_us = 1;
    usleep(2000);
    expect(mcp, &ALICE, a4, ping, 404, LH_MCP_SESSION_NOT_FOUND);
    assert_int_equal(lh_mcp_sessions(mcp), 0);
    lh_mcp_free(mcp);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_sessions_bound_to_principal),
        cmocka_unit_test(test_bound_and_expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
