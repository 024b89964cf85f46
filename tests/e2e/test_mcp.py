"""End-to-end: the MCP server at /mcp (Streamable HTTP, MCP 2025-06-18) driven by the
official TypeScript SDK client (tests/e2e/mcp/client.mjs) and by raw HTTP for every bad
input the transport must refuse with the status and JSON-RPC error the spec gives."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "..", ".node")
CLIENT = os.path.join(HERE, "mcp", "client.mjs")

OWNER, ANALYST, ACME, AGENT = ("tok-mcp-owner-0001", "tok-mcp-analyst-001", "tok-mcp-acme-00001",
                               "tok-mcp-agent-00001")
PEOPLE = "id,name,score\n1,alice,10\n2,bob,7\n3,carol,9\n"
ORDERS = "id,total\n1,9.5\n2,12\n"
ACCEPT = "application/json, text/event-stream"
LATEST = "2025-06-18"


class Mcp(harness.ServerTestCase):
    principals = [("owner", OWNER, ["admin"]), ("analyst", ANALYST, ["reader"]),
                  ("acme", ACME, ["reader"], ["acme"]), ("agent", AGENT, ["agent"])]

    @classmethod
    def setUpClass(cls):
        def configure(srv):
            cls.acme_root = os.path.join(srv.dir, "acme-root")
            with open(srv.config, "a") as f:
                f.write('\n[storage]\nprobe_interval_ms = 0\n[mcp]\nmax_sessions = 64\n'
                        '[[bucket]]\nname = "acme"\nbackend = "fs"\nroot = "%s"\n' % cls.acme_root)
        cls.start_server(configure=configure, env={"LAKEHOUSE_SERVER_MAX_BODY_BYTES": "65536"})
        for name, csv, bucket in (("people", PEOPLE, None), ("acme_orders", ORDERS, "acme")):
            path = "/ingest/file?dataset=%s&format=csv&description=%s%s" % (
                name, name + "+list", "&bucket=" + bucket if bucket else "")
            st, _, res = cls.srv.request("POST", path, body=csv, who="owner",
                                         headers={"Content-Type": "text/csv"})
            assert st == 201, res

    # ---- helpers ------------------------------------------------------------------------

    def sdk(self, who, scenario="basic", reads=(), calls=()):
        env = dict(os.environ, LH_NODE_DIR=NODE_DIR, LH_READ_URIS=",".join(reads),
                   LH_TOOL_CALLS=json.dumps(list(calls)))
        url = "http://127.0.0.1:%d/mcp" % self.srv.port
        p = subprocess.run(["node", CLIENT, "http", url, self.srv.tokens[who], scenario],
                           capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return json.loads(p.stdout)

    def post(self, body, who="owner", session=None, version=LATEST, accept=ACCEPT,
             ctype="application/json", headers=None):
        h = {} if accept is None else {"Accept": accept}
        if ctype:
            h["Content-Type"] = ctype
        if session:
            h["Mcp-Session-Id"] = session
        if version:
            h["MCP-Protocol-Version"] = version
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        return self.srv.request("POST", "/mcp", body=body, who=who, headers=h)

    def init(self, who="owner", version=LATEST):
        st, h, res = self.post({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": {"protocolVersion": version, "capabilities": {},
                                           "clientInfo": {"name": "raw", "version": "1"}}},
                               who=who, version=None)
        self.assertEqual(st, 200, res)
        return h["mcp-session-id"], res

    def call(self, method, params=None, who="owner", session=None, rid=7):
        msg = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        return self.post(msg, who=who, session=session or self.init(who)[0])

    def assertRpcError(self, answer, status, code, rid=None):
        st, _, res = answer
        self.assertEqual(st, status, res)
        self.assertEqual(res["jsonrpc"], "2.0")
        self.assertEqual(res["id"], rid)
        self.assertEqual(res["error"]["code"], code, res)
        self.assertTrue(res["error"]["message"])
        return res["error"]

    # ---- the SDK client -------------------------------------------------------------------

    def test_sdk_connect_list_read(self):
        out = self.sdk("analyst", reads=["lakehouse://datasets/people",
                                         "lakehouse://datasets/nope"])
        self.assertNotIn("connectError", out)
        self.assertEqual(out["server"]["name"], "lakehouse")
        self.assertEqual(out["protocolVersion"], LATEST)  # the SDK asked for a newer one
        self.assertEqual(len(out["sessionId"]), 64)
        self.assertIn("tools", out["capabilities"])
        self.assertIn("resources", out["capabilities"])
        self.assertEqual(out["ping"], {"ok": {}})
        uris = sorted(r["uri"] for r in out["resources"]["ok"]["resources"])
        self.assertEqual(uris, ["lakehouse://datasets/acme_orders", "lakehouse://datasets/people"])
        res = out["reads"]["lakehouse://datasets/people"]["ok"]["contents"]
        self.assertEqual(len(res), 1)
        self.assertEqual(res[0]["mimeType"], "application/json")
        body = json.loads(res[0]["text"])
        self.assertEqual((body["name"], body["row_count"], body["version"]), ("people", 3, 1))
        self.assertEqual([c["name"] for c in body["columns"]], ["id", "name", "score"])
        self.assertEqual(body["metadata"]["description"], "people list")
        self.assertIn("freshness", body)
        self.assertIsInstance(body["files"], int)  # a count: agents name datasets, never files
        self.assertEqual(out["reads"]["lakehouse://datasets/nope"]["error"]["code"], -32002)
        self.assertIn("uriTemplate", out["templates"]["ok"]["resourceTemplates"][0])

    def test_sdk_sees_only_its_buckets(self):
        out = self.sdk("acme", reads=["lakehouse://datasets/people",
                                      "lakehouse://datasets/acme_orders"])
        self.assertEqual([r["uri"] for r in out["resources"]["ok"]["resources"]],
                         ["lakehouse://datasets/acme_orders"])
        # another bucket's dataset is exactly as absent as a missing one
        self.assertEqual(out["reads"]["lakehouse://datasets/people"]["error"]["code"], -32002)
        self.assertIn("ok", out["reads"]["lakehouse://datasets/acme_orders"])

    def test_sdk_agent_role_reads_no_catalog(self):
        # the catalog is for the roles that may read it at every door (GET /catalog/datasets)
        self.assertEqual(self.srv.request("GET", "/catalog/datasets", who="agent")[0], 403)
        out = self.sdk("agent", reads=["lakehouse://datasets/people"])
        self.assertEqual(out["resources"]["ok"]["resources"], [])
        self.assertEqual(out["reads"]["lakehouse://datasets/people"]["error"]["code"], -32002)

    def test_sdk_terminate_ends_session(self):
        out = self.sdk("owner", scenario="terminate")
        self.assertIn("error", out["afterTerminate"])

    def test_sdk_bad_token(self):
        env = dict(os.environ, LH_NODE_DIR=NODE_DIR)
        url = "http://127.0.0.1:%d/mcp" % self.srv.port
        p = subprocess.run(["node", CLIENT, "http", url, "wrong-token", "basic"],
                           capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("connectError", json.loads(p.stdout))

    # ---- tools: the registry's, through the SDK ------------------------------------------

    TOP_PEOPLE = {
        "name": "top_people", "description": "People at or above a score",
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["min_score"],
                         "properties": {"min_score": {"type": "integer", "minimum": 0}}},
        "kind": "sql",
        "binding": {"datasets": ["people"], "max_rows": 100,
                    "query": "SELECT name FROM people WHERE score >= $min_score ORDER BY name"},
        "allow": {"roles": ["agent"]}, "rate": {"per_minute": 6000, "burst": 1000}}

    def define_tool(self):
        st, _, res = self.srv.request("GET", "/tools/top_people", who="owner")
        if st == 404:
            st, _, res = self.srv.request("POST", "/tools", body=self.TOP_PEOPLE, who="owner")
            self.assertEqual(st, 201, res)

    def test_sdk_tools_list_and_call(self):
        self.define_tool()
        out = self.sdk("agent", calls=[
            {"name": "top_people", "arguments": {"min_score": 9}},
            {"name": "top_people", "arguments": {"min_score": -1}},
            {"name": "top_people", "arguments": {"min_score": 9, "x": "1' OR 1=1 --"}},
            {"name": "no_such_tool", "arguments": {}}])
        # (the builtin ws_* workspace tools are listed too)
        tools = [t for t in out["tools"]["ok"]["tools"] if not t["name"].startswith("ws_")]
        self.assertEqual([t["name"] for t in tools], ["top_people"])
        self.assertEqual(tools[0]["inputSchema"]["required"], ["min_score"])
        self.assertTrue(tools[0]["annotations"]["readOnlyHint"])
        ok, bad, extra, unknown = out["calls"]
        res = ok["ok"]
        self.assertFalse(res.get("isError"))
        rows = res["structuredContent"]["result"]["rows"]
        self.assertEqual([r["name"] for r in rows], ["alice", "carol"])
        self.assertEqual(json.loads(res["content"][0]["text"])["call_id"],
                         res["structuredContent"]["call_id"])
        # a tool's failure is a result the model reads, not a protocol error
        self.assertTrue(bad["ok"]["isError"])
        self.assertEqual(bad["ok"]["structuredContent"]["error"]["code"], "invalid_arguments")
        self.assertIn("/arguments/min_score: must be >= 0", bad["ok"]["content"][0]["text"])
        self.assertTrue(extra["ok"]["isError"])
        self.assertIn("/arguments/x", extra["ok"]["content"][0]["text"])
        self.assertEqual(unknown["error"]["code"], -32602)
        # every call, answered or refused, is an audit record made via mcp
        st, _, audit = self.srv.request("GET", "/audit?tool=top_people&limit=100", who="owner")
        self.assertEqual(st, 200, audit)
        vias = {(r["via"], r["outcome"]) for r in audit["records"]}
        self.assertIn(("mcp", "ok"), vias)
        self.assertIn(("mcp", "refused"), vias)
        call_id = res["structuredContent"]["call_id"]
        st, _, rec = self.srv.request("GET", "/audit/" + call_id, who="owner")
        self.assertEqual((st, rec["principal"], rec["via"]), (200, "agent", "mcp"), rec)

    def test_sdk_tool_not_allowed(self):
        self.define_tool()
        # the analyst is not in the tool's allow list: the list hides it, a call is refused
        out = self.sdk("analyst", calls=[{"name": "top_people", "arguments": {"min_score": 1}}])
        self.assertNotIn("top_people", [t["name"] for t in out["tools"]["ok"]["tools"]])
        call = out["calls"][0]
        if "ok" in call:
            self.assertTrue(call["ok"]["isError"])
            self.assertEqual(call["ok"]["structuredContent"]["error"]["status"], 403)
        else:  # or unknown to it, like a missing tool
            self.assertEqual(call["error"]["code"], -32602)

    def test_sdk_workspace_resource(self):
        st, _, ws = self.srv.request("POST", "/workspaces", who="owner", body={
            "name": "acme backend search", "kind": "search", "description": "find a backend dev",
            "tier": "weekly"})
        self.assertEqual(st, 201, ws)
        uri = "lakehouse://workspaces/" + ws["id"]
        st, _, _ = self.srv.request("POST", "/workspaces/%s/notes" % ws["id"], who="owner",
                                    body={"text": "client wants Go"})
        self.assertEqual(st, 201)
        out = self.sdk("owner", reads=[uri])
        self.assertIn(uri, [r["uri"] for r in out["resources"]["ok"]["resources"]])
        brief = json.loads(out["reads"][uri]["ok"]["contents"][0]["text"])
        self.assertEqual((brief["id"], brief["name"]), (ws["id"], "acme backend search"))
        self.assertIn("client wants Go", json.dumps(brief["notes"]))
        self.assertIn("lakehouse://workspaces/{id}",
                      [t["uriTemplate"] for t in out["templates"]["ok"]["resourceTemplates"]])
        # not a member: the workspace is as absent as a missing one
        out = self.sdk("analyst", reads=[uri, "lakehouse://workspaces/ws_nope"])
        self.assertNotIn(uri, [r["uri"] for r in out["resources"]["ok"]["resources"]])
        self.assertEqual(out["reads"][uri]["error"]["code"], -32002)
        self.assertEqual(out["reads"]["lakehouse://workspaces/ws_nope"]["error"]["code"], -32002)

    # ---- the life cycle, raw ----------------------------------------------------------------

    def test_initialize_negotiates(self):
        for asked, got in ((LATEST, LATEST), ("2025-03-26", "2025-03-26"),
                           ("2099-01-01", LATEST), ("2024-11-05", LATEST)):
            sid, res = self.init(version=asked)
            self.assertEqual(res["result"]["protocolVersion"], got)
            self.assertEqual(res["result"]["serverInfo"]["name"], "lakehouse")
            self.assertRegex(sid, "^[0-9a-f]{64}$")
        sid2, _ = self.init()
        self.assertNotEqual(sid, sid2)

    def test_initialized_notification_and_ping(self):
        sid, _ = self.init()
        st, _, body = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"},
                                session=sid)
        self.assertEqual((st, body), (202, ""))
        st, _, res = self.post({"jsonrpc": "2.0", "id": "p1", "method": "ping"}, session=sid)
        self.assertEqual((st, res), (200, {"jsonrpc": "2.0", "id": "p1", "result": {}}))
        # a response to us (we never ask anything) is accepted too
        st, _, body = self.post({"jsonrpc": "2.0", "id": 99, "result": {}}, session=sid)
        self.assertEqual(st, 202)

    def test_initialize_bad(self):
        self.assertRpcError(self.post({"jsonrpc": "2.0", "id": 3, "method": "initialize",
                                       "params": {}}, version=None), 200, -32602, rid=3)
        self.assertRpcError(self.post({"jsonrpc": "2.0", "id": 3, "method": "initialize",
                                       "params": {"protocolVersion": 5}}, version=None),
                            200, -32602, rid=3)
        sid, _ = self.init()
        self.assertRpcError(self.post({"jsonrpc": "2.0", "id": 4, "method": "initialize",
                                       "params": {"protocolVersion": LATEST}}, session=sid),
                            400, -32600, rid=4)

    def test_delete_session(self):
        sid, _ = self.init()
        st, _, res = self.srv.request("DELETE", "/mcp", who="analyst",
                                      headers={"Mcp-Session-Id": sid})
        self.assertEqual(st, 404, res)  # not analyst's session to end
        st, _, _ = self.srv.request("DELETE", "/mcp", who="owner", headers={"Mcp-Session-Id": sid})
        self.assertEqual(st, 200)
        self.assertRpcError(self.call("ping", session=sid), 404, -32001, rid=7)
        st, _, _ = self.srv.request("DELETE", "/mcp", who="owner", headers={"Mcp-Session-Id": sid})
        self.assertEqual(st, 404)
        st, _, res = self.srv.request("DELETE", "/mcp", who="owner")
        self.assertEqual(st, 400, res)

    def test_get_is_405(self):
        st, h, res = self.srv.request("GET", "/mcp", who="owner",
                                      headers={"Accept": "text/event-stream"})
        self.assertEqual(st, 405, res)
        self.assertEqual(h["allow"], "POST, DELETE")

    def test_sessions_bounded(self):
        # max_sessions = 64: a principal's new sessions replace its own oldest ones
        mine, _ = self.init(who="analyst")
        first, _ = self.init(who="agent")
        for _ in range(70):
            self.init(who="agent")
        self.assertRpcError(self.call("ping", who="agent", session=first), 404, -32001, rid=7)
        self.assertEqual(self.call("ping", who="analyst", session=mine)[0], 200)

    # ---- bad input, raw -------------------------------------------------------------------

    def test_malformed_json(self):
        sid, _ = self.init()
        for bad in ('{"jsonrpc": "2.0", "id": 1, "method": ', "\x00", "",
                    '{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}'):
            self.assertRpcError(self.post(bad, session=sid), 400, -32700)

    def test_invalid_requests(self):
        sid, _ = self.init()
        for msg, rid in (({"jsonrpc": "1.0", "id": 1, "method": "ping"}, 1),
                         ({"id": 1, "method": "ping"}, 1),
                         ({"jsonrpc": "2.0", "id": None, "method": "ping"}, None),
                         ({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}, None),
                         ({"jsonrpc": "2.0", "id": 1, "method": 5}, 1),
                         ({"jsonrpc": "2.0", "id": 1}, 1),
                         ("42", None), ('"ping"', None)):
            self.assertRpcError(self.post(msg, session=sid), 400, -32600, rid=rid)

    def test_batch_refused(self):
        sid, _ = self.init()
        err = self.assertRpcError(self.post([{"jsonrpc": "2.0", "id": 1, "method": "ping"}],
                                            session=sid), 400, -32600)
        self.assertIn("batch", err["message"])
        self.assertRpcError(self.post([], session=sid), 400, -32600)

    def test_unknown_method_and_bad_params(self):
        sid, _ = self.init()
        self.assertRpcError(self.call("tables/drop", session=sid), 200, -32601, rid=7)
        self.assertRpcError(self.call("resources/read", [1], session=sid), 200, -32602, rid=7)
        self.assertRpcError(self.call("resources/read", {}, session=sid), 200, -32602, rid=7)
        self.assertRpcError(self.call("resources/read", {"uri": 5}, session=sid), 200, -32602,
                            rid=7)
        self.assertRpcError(self.call("resources/list", {"cursor": "x"}, session=sid), 200,
                            -32602, rid=7)
        self.assertRpcError(self.call("tools/call", {}, session=sid), 200, -32602, rid=7)
        for uri in ("lakehouse://datasets/../x", "lakehouse://datasets/", "file:///etc/passwd",
                    "lakehouse://datasets/People", "lakehouse://datasets/people/extra"):
            err = self.assertRpcError(self.call("resources/read", {"uri": uri}, session=sid),
                                      200, -32002, rid=7)
            self.assertEqual(err["data"], {"uri": uri})
        # notifications are never answered, known or not
        st, _, _ = self.post({"jsonrpc": "2.0", "method": "notifications/whatever"}, session=sid)
        self.assertEqual(st, 202)

    def test_protocol_version_header(self):
        sid, _ = self.init()
        err = self.assertRpcError(self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                            session=sid, version="1999-01-01"), 400, -32000)
        self.assertEqual(err["data"]["requested"], "1999-01-01")
        self.assertIn(LATEST, err["data"]["supported"])
        # without the header the session's negotiated version is used
        st, _, _ = self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, session=sid,
                             version=None)
        self.assertEqual(st, 200)
        st, _, _ = self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"}, session=sid,
                             version="2025-03-26")
        self.assertEqual(st, 200)

    def test_sessions(self):
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        self.assertRpcError(self.post(ping), 400, -32000, rid=1)  # no session
        self.assertRpcError(self.post(ping, session="f" * 64), 404, -32001, rid=1)
        self.assertRpcError(self.post(ping, session="short"), 404, -32001, rid=1)
        sid, _ = self.init(who="owner")
        # another principal's token with this session id: as if it did not exist
        self.assertRpcError(self.post(ping, who="analyst", session=sid), 404, -32001, rid=1)
        self.assertEqual(self.post(ping, who="owner", session=sid)[0], 200)

    def test_accept_and_content_type(self):
        sid, _ = self.init()
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        for accept in ("application/json", "text/event-stream", "text/html", None):
            st, _, res = self.post(ping, session=sid, accept=accept)
            self.assertEqual(st, 406, (accept, res))
        self.assertEqual(self.post(ping, session=sid, accept="*/*")[0], 200)
        self.assertEqual(self.post(ping, session=sid,
                                   accept="text/event-stream;q=0.9, application/json")[0], 200)
        self.assertRpcError(self.post(ping, session=sid, ctype="text/plain"), 415, -32000)
        self.assertRpcError(self.post(ping, session=sid, ctype=None), 415, -32000)

    def test_origin(self):
        sid, _ = self.init()
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        self.assertRpcError(self.post(ping, session=sid,
                                      headers={"Origin": "http://evil.example"}), 403, -32000)
        self.assertRpcError(self.post(ping, session=sid, headers={"Origin": "null"}), 403, -32000)
        for ok in ("http://localhost:5173", "http://127.0.0.1", "http://127.0.0.1:%d" % self.srv.port):
            self.assertEqual(self.post(ping, session=sid, headers={"Origin": ok})[0], 200, ok)

    def test_oversized_body(self):
        sid, _ = self.init()
        big = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping",
                          "params": {"pad": "x" * 70000}})
        st, _, res = self.post(big, session=sid)
        self.assertEqual(st, 413, res)
        # the server is still fine
        self.assertEqual(self.post({"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                   session=sid)[0], 200)

    def test_no_token(self):
        for method in ("POST", "GET", "DELETE"):
            st, h, res = self.srv.request(method, "/mcp", body="{}" if method == "POST" else None,
                                          headers={"Content-Type": "application/json",
                                                   "Accept": ACCEPT})
            self.assertEqual(st, 401, res)
            self.assertTrue(h["www-authenticate"].startswith("Bearer"))
        st, _, _ = self.srv.request("POST", "/mcp", body="{}", token="nope",
                                    headers={"Content-Type": "application/json", "Accept": ACCEPT})
        self.assertEqual(st, 401)

    # ---- lakehouse mcp-stdio ----------------------------------------------------------------

    def bridge(self, token):
        env = dict(os.environ, LAKEHOUSE_URL="http://127.0.0.1:%d" % self.srv.port,
                   LAKEHOUSE_TOKEN=token)
        p = subprocess.Popen([harness.BIN, "mcp-stdio"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             cwd=self.srv.dir)
        self.addCleanup(lambda: p.poll() is None and (p.kill(), p.wait()))
        self.addCleanup(p.stdout.close)
        self.addCleanup(p.stderr.close)
        return p

    def exchange(self, p, line):
        p.stdin.write((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    def test_stdio_sdk(self):
        env = dict(os.environ, LH_NODE_DIR=NODE_DIR, LH_READ_URIS="lakehouse://datasets/people",
                   LAKEHOUSE_URL="http://127.0.0.1:%d" % self.srv.port, LAKEHOUSE_TOKEN=ANALYST)
        p = subprocess.run(["node", CLIENT, "stdio", harness.BIN, "basic"], capture_output=True,
                           env=env, timeout=60, cwd=self.srv.dir)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = json.loads(p.stdout)
        self.assertNotIn("connectError", out, p.stderr.decode())
        self.assertEqual(out["server"]["name"], "lakehouse")
        self.assertEqual(len(out["resources"]["ok"]["resources"]), 2)
        text = out["reads"]["lakehouse://datasets/people"]["ok"]["contents"][0]["text"]
        self.assertEqual(json.loads(text)["row_count"], 3)

    def test_stdio_errors_and_session_end(self):
        p = self.bridge(OWNER)
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": LATEST, "capabilities": {},
                           "clientInfo": {"name": "raw", "version": "1"}}}
        self.assertEqual(self.exchange(p, init)["result"]["protocolVersion"], LATEST)
        p.stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n\n')
        self.assertEqual(self.exchange(p, {"jsonrpc": "2.0", "id": 2, "method": "ping"}),
                         {"jsonrpc": "2.0", "id": 2, "result": {}})
        self.assertEqual(self.exchange(p, "{not json")["error"]["code"], -32700)
        self.assertEqual(self.exchange(p, "[]")["error"]["code"], -32600)
        self.assertEqual(self.exchange(p, {"jsonrpc": "2.0", "id": 3, "method": "x/y"})["error"]
                         ["code"], -32601)
        # the server ends the session (here: the owner opens more than max_sessions); the
        # bridge opens a new one with the client's initialize and the client never knows
        for _ in range(70):
            self.init(who="owner")
        self.assertEqual(self.exchange(p, {"jsonrpc": "2.0", "id": 4, "method": "ping"}),
                         {"jsonrpc": "2.0", "id": 4, "result": {}})
        big = {"jsonrpc": "2.0", "id": 5, "method": "ping", "params": {"pad": "x" * 70000}}
        err = self.exchange(p, big)
        self.assertEqual((err["id"], err["error"]["data"]["http_status"]), (5, 413))
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)
        self.assertIn("opened a new one", p.stderr.read().decode())

    def test_stdio_bad_token(self):
        p = self.bridge("wrong-token")
        err = self.exchange(p, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": {"protocolVersion": LATEST}})
        self.assertEqual(err["id"], 1)
        self.assertEqual(err["error"]["data"]["http_status"], 401)
        p.stdin.close()
        self.assertEqual(p.wait(30), 0)
        self.assertNotIn("wrong-token", p.stderr.read().decode())

    def test_token_never_in_log(self):
        self.sdk("owner")
        self.assertNotIn(OWNER, self.srv.log_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
