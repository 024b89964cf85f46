"""End-to-end: the builtin workspace tools (ws_create, ws_note, ws_shortlist_add,
ws_run_query, ws_brief, ws_handoff) under the registry's validation, permissions and audit;
an agent works a job order and hands it to a second agent who reads the brief; builtins
cannot be redefined or deleted; saved queries of kind tool run through the registry."""
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, WRITER, READER = "tok-admin-wst-0001", "tok-writer-wst-001", "tok-reader-wst-001"
AGENT1, AGENT2 = "tok-agent1-wst-001", "tok-agent2-wst-001"
PRINCIPALS = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
              ("analyst", READER, ["reader"]), ("scout", AGENT1, ["agent"]),
              ("closer", AGENT2, ["agent"])]
BUILTINS = ["ws_brief", "ws_create", "ws_handoff", "ws_note", "ws_run_query",
            "ws_shortlist_add"]


class WorkspaceTools(harness.ServerTestCase):
    principals = PRINCIPALS

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        csv = "id,name,city\n" + "".join(
            "%d,c%d,%s\n" % (i, i, "Austin" if i % 2 else "Tulsa") for i in range(1, 21))
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": "candidates", "format": "csv", "primary_key": "id"})
        st, _, out = cls.srv.request("POST", path, csv, who="loader")
        assert st == 201, out

    def req(self, method, path, body=None, who="owner", status=200):
        st, _, out = self.srv.request(method, path, body, who=who)
        self.assertEqual(st, status, out)
        return out

    def call(self, name, args, who="scout", status=200, ws=None):
        body = {"arguments": args}
        if ws:
            body["workspace_id"] = ws
        st, h, out = self.srv.request("POST", "/tools/%s/call" % name, body, who=who)
        self.assertEqual(st, status, out)
        return out, h

    def test_listed_with_fixed_schemas(self):
        tools = {t["name"]: t for t in self.req("GET", "/tools", who="scout")["tools"]}
        for name in BUILTINS:
            self.assertEqual(tools[name]["kind"], "builtin")
            self.assertEqual(tools[name]["binding"], {"operation": name})
            self.assertEqual(tools[name]["input_schema"]["type"], "object")
        mcp = [t["name"] for t in self.req("GET", "/tools?format=mcp", who="scout")["tools"]]
        self.assertTrue(set(BUILTINS) <= set(mcp))
        # a reader may read a brief, not create workspaces
        mine = [t["name"] for t in self.req("GET", "/tools", who="analyst")["tools"]]
        self.assertIn("ws_brief", mine)
        self.assertNotIn("ws_create", mine)
        _, h = self.call("ws_create", {"name": "x", "kind": "search"}, who="analyst", status=403)
        self.assertEqual(self.req("GET", "/audit/" + h["x-lakehouse-call-id"])["outcome"],
                         "refused")
        self.assertEqual(self.req("GET", "/tools/ws_note/versions")["versions"][0]["version"], 1)

    def test_builtins_cannot_be_changed(self):
        d = self.req("GET", "/tools/ws_note")
        for method, path, body in (("PUT", "/tools/ws_note", {"description": "x"}),
                                   ("POST", "/tools", dict(d, name="ws_note")),
                                   ("DELETE", "/tools/ws_brief", None)):
            e = self.req(method, path, body, status=409)["error"]
            self.assertEqual(e["code"], "builtin_tool", e)
            self.assertIn("built into the server", e["message"])
        bad = {"name": "mine", "description": "x", "kind": "builtin",
               "binding": {"operation": "ws_note"},
               "input_schema": {"type": "object", "properties": {}},
               "allow": {"roles": ["agent"]}}
        e = self.req("POST", "/tools", bad, status=400)["error"]
        self.assertIn("reserved", e["message"])
        self.assertEqual(self.req("GET", "/tools/ws_note")["version"], 1)

    def test_job_order_worked_and_handed_off(self):
        ws, _ = self.call("ws_create", {"name": "job order 42", "kind": "search",
                                        "tier": "weekly", "description": "welder in Austin",
                                        "tags": ["welding"]})
        wid = ws["result"]["id"]
        self.assertEqual(ws["result"]["owner"], "scout")
        self.call("ws_note", {"workspace_id": wid, "text": "Austin only, nights ok"})
        out, _ = self.call("ws_shortlist_add", {
            "workspace_id": wid, "list": "finalists",
            "records": [{"dataset": "candidates", "key": 3, "note": "strong"},
                        {"dataset": "candidates", "key": {"id": 5}}]})
        # a saved SQL query, run by the tool
        self.req("PUT", "/workspaces/%s/queries/austin" % wid,
                 {"sql": "SELECT id FROM candidates WHERE city = 'Austin' ORDER BY id"},
                 who="scout")
        run, _ = self.call("ws_run_query", {"workspace_id": wid, "name": "austin"})
        self.assertEqual(run["result"]["row_count"], 10)
        self.assertEqual(len(run["result"]["sha256"]), 64)
        self.assertIn("candidates", run["result"]["datasets"])
        # bad arguments: 400 with the pointer, audited with the workspace
        for args, pointer in (({"workspace_id": wid}, "/arguments"),
                              ({"workspace_id": wid, "text": 7}, "/arguments/text"),
                              ({"workspace_id": wid, "text": "x", "extra": 1}, "/arguments")):
            e, h = self.call("ws_note", args, status=400)
            self.assertEqual(e["error"]["code"], "invalid_arguments")
            self.assertTrue(e["error"]["message"].startswith(pointer), e)
            rec = self.req("GET", "/audit/" + h["x-lakehouse-call-id"])
            self.assertEqual((rec["outcome"], rec["workspace_id"]), ("refused", wid))
        e, _ = self.call("ws_shortlist_add", {"workspace_id": wid, "list": "finalists",
                                              "records": [{"dataset": "candidates",
                                                           "key": 999}]}, status=404)
        e, _ = self.call("ws_note", {"workspace_id": wid, "text": "x"}, ws="ws_other", status=400)
        self.assertIn("/arguments/workspace_id", e["error"]["message"])
        # not the owner: the second agent cannot read it yet (404, ids do not leak)
        self.call("ws_brief", {"workspace_id": wid}, who="closer", status=404)
        self.call("ws_handoff", {"workspace_id": wid, "to": "closer", "note": "yours now"})
        brief, _ = self.call("ws_brief", {"workspace_id": wid}, who="closer")
        b = brief["result"]
        self.assertEqual((b["owner"], b["purpose"]), ("closer", "welder in Austin"))
        self.assertEqual([s["name"] for s in b["shortlists"]], ["finalists"])
        self.assertEqual(b["shortlists"][0]["records"], 2)
        self.assertIn("Austin only, nights ok", [n["text"] for n in b["notes"]])
        q = [x for x in b["queries"] if x["name"] == "austin"][0]
        self.assertEqual(q["last_run"]["row_count"], 10)
        # the previous owner keeps read access, no longer owns it
        self.call("ws_handoff", {"workspace_id": wid, "to": "scout"}, status=403)
        # every call is on record with the workspace's id
        recs = self.req("GET", "/audit?limit=1000&workspace_id=" + wid)["records"]
        ok = sorted(r["tool"] for r in recs if r["outcome"] == "ok")
        self.assertEqual(ok, ["ws_brief", "ws_create", "ws_handoff", "ws_note",
                              "ws_run_query", "ws_shortlist_add"])
        # ... and shows in the workspace's activity
        act = self.req("GET", "/workspaces/%s/activity?kind=tool_call&limit=100" % wid,
                       who="closer")["activity"]
        self.assertGreaterEqual(len(act), 6)

    def test_saved_tool_query_runs_through_registry(self):
        tool = {"name": "by_city", "description": "candidates in a city", "kind": "sql",
                "binding": {"query": "SELECT id FROM candidates WHERE city = $city ORDER BY id",
                            "datasets": ["candidates"]},
                "input_schema": {"type": "object", "required": ["city"],
                                 "properties": {"city": {"type": "string"}}},
                "allow": {"roles": ["agent"]}}
        self.req("POST", "/tools", tool, status=201)
        ws, _ = self.call("ws_create", {"name": "saved tool", "kind": "search"})
        wid = ws["result"]["id"]
        self.req("PUT", "/workspaces/%s/queries/tulsa" % wid,
                 {"tool": "by_city", "arguments": {"city": "Tulsa"}}, who="scout")
        run = self.req("POST", "/workspaces/%s/queries/tulsa/run" % wid, {}, who="scout")
        self.assertEqual(run["row_count"], 10)
        self.assertEqual([r["id"] for r in run["rows"]], list(range(2, 21, 2)))
        self.assertEqual(len(run["sha256"]), 64)
        self.assertIn("version", run["datasets"]["candidates"])
        rec = self.req("GET", "/audit/" + run["call_id"])
        self.assertEqual((rec["tool"], rec["principal"], rec["workspace_id"]),
                         ("by_city", "scout", wid))
        again, _ = self.call("ws_run_query", {"workspace_id": wid, "name": "tulsa"})
        self.assertEqual(again["result"]["sha256"], run["sha256"])
        # as the caller: a reader is not in the tool's allow list
        self.req("PATCH", "/workspaces/" + wid, {"members": {"analyst": "write"}}, who="scout")
        e = self.req("POST", "/workspaces/%s/queries/tulsa/run" % wid, {}, who="analyst",
                     status=403)["error"]
        self.assertEqual(e["code"], "not_allowed")
        # a saved query may not call a builtin tool
        self.req("PUT", "/workspaces/%s/queries/loop" % wid,
                 {"tool": "ws_run_query", "arguments": {"workspace_id": wid, "name": "loop"}},
                 who="scout")
        e = self.req("POST", "/workspaces/%s/queries/loop/run" % wid, {}, who="scout",
                     status=400)["error"]
        self.assertEqual(e["code"], "not_runnable")


if __name__ == "__main__":
    unittest.main()
