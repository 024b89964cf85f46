"""End-to-end: agent workspaces — create/list/get/patch/archive with access for owners,
members and strangers (404 so ids do not leak, 403 for read-only members writing); notes
and shortlists resolved to current rows and flagged when changed or deleted; handoff between
two agents with zero data objects copied; staged rows visible only in queries made with the
workspace; publish through the row-change path, a publish conflict and workspace_wins;
kill -9 during publish leaving all or nothing; activity; saved queries; snapshots, tiers and
rollback; the _workspaces, _workspace_activity and _shortlists views."""
import os
import signal
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, WRITER, READER = "tok-admin-ws-00001", "tok-writer-ws-0001", "tok-reader-ws-0001"
AGENT1, AGENT2, STRANGER = "tok-agent1-ws-0001", "tok-agent2-ws-0001", "tok-strange-ws-001"
PRINCIPALS = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
              ("analyst", READER, ["reader"]), ("scout", AGENT1, ["agent"]),
              ("closer", AGENT2, ["agent"]), ("stranger", STRANGER, ["agent"])]


def bucket_usage(data_dir):
    """(objects, bytes, paths) of every object in the buckets under the data dir (the
    server's own folders — cache, work, spill, tmp — left out)."""
    n = size = 0
    files = set()
    for d, _, names in os.walk(data_dir):
        rel = os.path.relpath(d, data_dir).split(os.sep)[0]
        if rel in ("cache", "work", "spill", "tmp", "results"):
            continue
        for name in names:
            p = os.path.join(d, name)
            files.add(p)
            n += 1
            size += os.path.getsize(p)
    return n, size, files


class Workspaces(harness.ServerTestCase):
    principals = PRINCIPALS
    extra_toml = "\n[catalog]\ncompact_after_deltas = 0\n"

    def req(self, method, path, body=None, who="scout", status=None):
        st, _, out = self.srv.request(method, path, body, who=who)
        if status is not None:
            self.assertEqual(st, status, out)
        return st, out

    def create_dataset(self, name, n=10):
        csv = "id,name,score\n" + "".join("%d,n%d,%d\n" % (i, i, i * 10) for i in range(1, n + 1))
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": name, "format": "csv", "primary_key": "id"})
        self.req("POST", path, csv, who="loader", status=201)

    def new_ws(self, who="scout", **fields):
        body = {"name": "job order 17", "kind": "search", "tier": "weekly",
                "description": "find a welder in Austin", "tags": ["welding"]}
        body.update(fields)
        _, out = self.req("POST", "/workspaces", body, who=who, status=201)
        return out["id"]

    def query(self, sql, who="loader", workspace_id=None, status=200):
        body = {"sql": sql}
        if workspace_id:
            body["workspace_id"] = workspace_id
        _, out = self.req("POST", "/query", body, who=who, status=status)
        return out.get("rows") if status == 200 else out

    # ---- workspaces and access ----------------------------------------------------------------
    def test_create_list_get_patch_archive(self):
        wid = self.new_ws(members={"analyst": "read", "closer": "write"})
        _, ws = self.req("GET", "/workspaces/" + wid, status=200)
        self.assertEqual(ws["owner"], "scout")
        self.assertEqual(ws["version"], 1)
        self.assertEqual(ws["change"]["op"], "created")
        self.assertEqual(ws["change"]["actor"], "scout")
        _, lst = self.req("GET", "/workspaces?kind=search&q=welder", who="analyst", status=200)
        self.assertIn(wid, [w["id"] for w in lst["workspaces"]])
        _, lst = self.req("GET", "/workspaces", who="stranger", status=200)
        self.assertNotIn(wid, [w["id"] for w in lst["workspaces"]])
        _, lst = self.req("GET", "/workspaces?owner=scout", who="owner", status=200)
        self.assertIn(wid, [w["id"] for w in lst["workspaces"]])
        # strangers get 404, read-only members 403 on writes, write members may write
        st, out = self.req("GET", "/workspaces/" + wid, who="stranger")
        self.assertEqual(st, 404, out)
        self.assertEqual(out["error"]["code"], "workspace_not_found")
        st, out = self.req("PATCH", "/workspaces/" + wid, {"description": "x"}, who="analyst")
        self.assertEqual(st, 403, out)
        st, out = self.req("POST", "/workspaces/%s/notes" % wid, {"text": "x"}, who="stranger")
        self.assertEqual(st, 404, out)
        _, ws = self.req("PATCH", "/workspaces/" + wid, {"tier": "daily"}, who="closer",
                         status=200)
        self.assertEqual(ws["tier"], "daily")
        self.assertEqual(ws["change"], {**ws["change"], "op": "updated", "actor": "closer"})
        # only the owner changes members
        st, out = self.req("PATCH", "/workspaces/" + wid, {"members": {"stranger": "read"}},
                           who="closer")
        self.assertEqual(st, 403, out)
        # bad input
        for body, code in [({"name": ""}, 400), ({"kind": "x"}, 400), ({"tier": "hourly"}, 400),
                           ({"tags": "a"}, 400), ({"bogus": 1}, 400),
                           ({"members": {"nobody": "read"}}, 400),
                           ({"members": {"analyst": "admin"}}, 400)]:
            st, out = self.req("PATCH", "/workspaces/" + wid, body, who="scout")
            self.assertEqual(st, code, (body, out))
            self.assertIn("message", out["error"])
        st, out = self.req("POST", "/workspaces", {"kind": "search"})
        self.assertEqual(st, 400, out)
        st, out = self.req("POST", "/workspaces", "not json")
        self.assertIn(st, (400, 415))
        # archive: read-only, hidden from lists unless asked
        st, out = self.req("POST", "/workspaces/%s/archive" % wid, who="closer")
        self.assertEqual(st, 403, out)
        self.req("POST", "/workspaces/%s/archive" % wid, who="scout", status=200)
        st, out = self.req("POST", "/workspaces/%s/notes" % wid, {"text": "late"})
        self.assertEqual(st, 409, out)
        _, lst = self.req("GET", "/workspaces", status=200)
        self.assertNotIn(wid, [w["id"] for w in lst["workspaces"]])
        _, lst = self.req("GET", "/workspaces?archived=true", status=200)
        self.assertIn(wid, [w["id"] for w in lst["workspaces"]])

    # ---- notes, shortlists ------------------------------------------------------------------------
    def test_shortlists(self):
        self.create_dataset("cands")
        wid = self.new_ws(members={"analyst": "read"})
        base = "/workspaces/%s/shortlists/welders" % wid
        _, sl = self.req("POST", base + "/records",
                         {"records": [{"dataset": "cands", "key": 1, "note": "strong"},
                                      {"dataset": "cands", "key": {"id": 2}},
                                      {"dataset": "cands", "key": 3}]}, status=200)
        self.assertEqual([r["rank"] for r in sl["records"]], [1, 2, 3])
        self.assertEqual(sl["records"][0]["added_by"], "scout")
        st, out = self.req("POST", base + "/records", {"records": [{"dataset": "cands",
                                                                     "key": 999}]})
        self.assertEqual(st, 404, out)
        st, out = self.req("POST", base + "/records", {"records": [{"dataset": "nope",
                                                                     "key": 1}]})
        self.assertEqual(st, 404, out)
        st, out = self.req("POST", base + "/records", {"records": [{"dataset": "cands",
                                                                     "key": {"x": 1}}]})
        self.assertEqual(st, 400, out)
        _, sl = self.req("POST", base + "/reorder",
                         {"order": [{"dataset": "cands", "key": 3}]}, status=200)
        self.assertEqual([r["key"]["id"] for r in sl["records"]], [3, 1, 2])
        # the dataset changes under the shortlist: 1 updated, 2 deleted
        self.req("POST", "/datasets/cands/rows",
                 {"upsert": [{"id": 1, "score": 999}], "delete": [{"id": 2}]}, who="loader",
                 status=201)
        _, sl = self.req("GET", base + "?columns=name,score", status=200)
        status = {r["key"]["id"]: r["status"] for r in sl["records"]}
        self.assertEqual(status, {3: "unchanged", 1: "changed", 2: "deleted"})
        self.assertEqual(sl["records"][1]["row"], {"name": "n1", "score": 999})
        st, out = self.req("GET", base + "?columns=nope")
        self.assertEqual(st, 400, out)
        # bad bodies for remove and reorder: 400 (404 for a list that does not exist), and
        # the shortlist is unchanged
        for path, body in (("/reorder", {"order": "x"}), ("/reorder", {"order": [5]}),
                           ("/remove", {"records": 5}),
                           ("/remove", {"records": [{"dataset": "cands"}]}),
                           ("/remove", {"records": [], "extra": 1})):
            st, out = self.req("POST", base + path, body)
            self.assertEqual(st, 400, (path, body, out))
            self.assertIn("message", out["error"])
        st, _, out = self.srv.request("POST", base + "/reorder", body=b'{"order": [',
                                   who="scout", headers={"Content-Type": "application/json"})
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_json"), out)
        st, out = self.req("POST", "/workspaces/%s/shortlists/none/reorder" % wid,
                           {"order": [{"dataset": "cands", "key": 3}]})
        self.assertEqual(st, 404, out)
        _, sl = self.req("GET", base, status=200)
        self.assertEqual([r["key"]["id"] for r in sl["records"]], [3, 1, 2])
        _, sl = self.req("POST", base + "/remove", {"records": [{"dataset": "cands", "key": 2}]},
                         status=200)
        self.assertEqual([r["key"]["id"] for r in sl["records"]], [3, 1])
        st, out = self.req("GET", "/workspaces/%s/shortlists/none" % wid)
        self.assertEqual(st, 404, out)
        self.req("POST", "/workspaces/%s/notes" % wid, {"text": "called n3"}, status=201)
        st, out = self.req("POST", "/workspaces/%s/notes" % wid, {"text": ""})
        self.assertEqual(st, 400, out)
        # the SQL views hold only what the caller may read
        # (agents call named tools, not SQL: a reader member and a writer who is not one)
        rows = self.query("SELECT workspace_id, shortlist, rank FROM _shortlists "
                          "WHERE workspace_id = '%s' ORDER BY rank" % wid, who="analyst")
        self.assertEqual([r["rank"] for r in rows], [1, 2])
        self.assertEqual(self.query("SELECT count(*) AS n FROM _shortlists WHERE "
                                    "workspace_id = '%s'" % wid, who="loader")[0]["n"], 0)
        rows = self.query("SELECT kind FROM _workspace_activity WHERE workspace_id = '%s' "
                          "ORDER BY version" % wid, who="analyst")
        self.assertEqual([r["kind"] for r in rows][:2], ["created", "shortlist_add"])
        rows = self.query("SELECT id, owner FROM _workspaces WHERE id = '%s'" % wid,
                          who="analyst")
        self.assertEqual(rows, [{"id": wid, "owner": "scout"}])
        self.assertEqual(self.query("SELECT count(*) AS n FROM _workspaces WHERE id = '%s'"
                                    % wid, who="loader")[0]["n"], 0)

    # ---- handoff ---------------------------------------------------------------------------------
    def test_handoff_zero_copy(self):
        self.create_dataset("pool")
        wid = self.new_ws(who="scout")
        self.req("POST", "/workspaces/%s/shortlists/top/records" % wid,
                 {"records": [{"dataset": "pool", "key": 4}]}, status=200)
        self.req("POST", "/workspaces/%s/notes" % wid, {"text": "waiting on n4"}, status=201)
        self.req("POST", "/workspaces/%s/datasets/pool/rows" % wid,
                 {"upsert": [{"id": 4, "score": 1}]}, status=200)
        self.req("PUT", "/workspaces/%s/queries/n4" % wid,
                 {"sql": "SELECT score FROM pool WHERE id = 4"}, status=200)
        st, out = self.req("GET", "/workspaces/" + wid, who="closer")
        self.assertEqual(st, 404, out)
        n0, b0, f0 = bucket_usage(self.srv.data_dir)
        st, out = self.req("POST", "/workspaces/%s/handoff" % wid, {"to": "closer"},
                           who="closer")
        self.assertEqual(st, 404, out)
        for body in [{"to": "nobody"}, {"to": ""}, {"to": "closer", "x": 1}, {"to": "scout"}]:
            st, out = self.req("POST", "/workspaces/%s/handoff" % wid, body)
            self.assertEqual(st, 400, (body, out))
        _, ws = self.req("POST", "/workspaces/%s/handoff" % wid,
                         {"to": "closer", "note": "n4 needs a call"}, status=200)
        self.assertEqual(ws["owner"], "closer")
        n1, b1, f1 = bucket_usage(self.srv.data_dir)
        new = f1 - f0
        self.assertEqual(n1 - n0, 1, new)
        self.assertEqual(len(new), 1)
        only = new.pop()
        self.assertIn("/_workspaces/%s/v" % wid, only)
        self.assertEqual(b1 - b0, os.path.getsize(only))
        # the receiver sees everything
        _, brief = self.req("GET", "/workspaces/%s/brief" % wid, who="closer", status=200)
        self.assertEqual(brief["owner"], "closer")
        self.assertEqual(brief["purpose"], "find a welder in Austin")
        self.assertEqual(brief["shortlists"][0]["name"], "top")
        self.assertEqual(brief["staged"][0]["dataset"], "pool")
        self.assertEqual(brief["notes"][0]["text"], "waiting on n4")
        self.assertEqual(brief["last_actions"][0]["op"], "handoff")
        _, run = self.req("POST", "/workspaces/%s/queries/n4/run" % wid, who="closer",
                          status=200)
        self.assertEqual(run["rows"], [{"score": 1}])  # the staged change, merged on read
        _, act = self.req("GET", "/workspaces/%s/activity?kind=handoff" % wid, who="closer",
                          status=200)
        self.assertEqual(len(act["activity"]), 1)
        self.assertEqual(act["activity"][0]["detail"]["to"], "closer")
        # the previous owner keeps read access only
        self.req("GET", "/workspaces/" + wid, who="scout", status=200)
        st, out = self.req("POST", "/workspaces/%s/notes" % wid, {"text": "x"}, who="scout")
        self.assertEqual(st, 403, out)

    # ---- the delta layer -----------------------------------------------------------------------------
    def test_staged_rows_visible_only_in_workspace_then_publish(self):
        self.create_dataset("jobs")
        wid = self.new_ws(who="loader")
        _, out = self.req("POST", "/workspaces/%s/datasets/jobs/rows" % wid,
                          {"upsert": [{"id": 1, "score": 111}, {"id": 50, "name": "new"}],
                           "delete": [{"id": 2}]}, who="loader", status=200)
        self.assertEqual(out["counts"]["inserted"], 1)
        # later staging builds on earlier staging
        self.req("POST", "/workspaces/%s/datasets/jobs/rows" % wid,
                 {"upsert": [{"id": 50, "score": 5}]}, who="loader", status=200)
        inside = self.query("SELECT id, name, score FROM jobs WHERE id IN (1, 2, 50) ORDER BY id",
                            workspace_id=wid)
        self.assertEqual(inside, [{"id": 1, "name": "n1", "score": 111},
                                  {"id": 50, "name": "new", "score": 5}])
        outside = self.query("SELECT id, score FROM jobs WHERE id IN (1, 2, 50) ORDER BY id")
        self.assertEqual(outside, [{"id": 1, "score": 10}, {"id": 2, "score": 20}])
        st, out = self.req("POST", "/query", {"sql": "SELECT 1", "workspace_id": wid},
                           who="analyst")
        self.assertEqual(st, 404, out)
        for body in [{"upsert": []}, {"upsert": [{"id": 1, "nope": 1}]}, {"bogus": 1},
                     {"upsert": [{"id": "x"}]}]:
            st, out = self.req("POST", "/workspaces/%s/datasets/jobs/rows" % wid, body,
                               who="loader")
            self.assertEqual(st, 400, (body, out))
        st, out = self.req("POST", "/workspaces/%s/datasets/nope/rows" % wid,
                           {"upsert": [{"id": 1}]}, who="loader")
        self.assertEqual(st, 404, out)
        # an agent member may stage but not publish (a writer role publishes)
        _, before = self.req("GET", "/catalog/datasets/jobs", who="loader", status=200)
        _, pub = self.req("POST", "/workspaces/%s/publish" % wid, {}, who="loader", status=200)
        self.assertEqual(pub["published"][0]["version"], before["version"] + 1)
        outside = self.query("SELECT id, name, score FROM jobs WHERE id IN (1, 2, 50) "
                             "ORDER BY id")
        self.assertEqual(outside, [{"id": 1, "name": "n1", "score": 111},
                                   {"id": 50, "name": "new", "score": 5}])
        _, ev = self.req("GET", "/journal/events?dataset=jobs&workspace_id=" + wid,
                         who="loader", status=200)
        self.assertTrue(ev["events"])
        self.assertTrue(all(e["source"] == "workspace:" + wid and e["actor"] == "loader"
                            for e in ev["events"]))
        self.assertEqual({e["version"] for e in ev["events"]}, {before["version"] + 1})
        _, ws = self.req("GET", "/workspaces/" + wid, who="loader", status=200)
        self.assertEqual(ws["staged"], {})
        st, out = self.req("POST", "/workspaces/%s/publish" % wid, {}, who="loader")
        self.assertEqual(st, 404, out)
        _, act = self.req("GET", "/workspaces/%s/activity?kind=row_change" % wid, who="loader",
                          status=200)
        self.assertTrue(act["activity"])
        _, act = self.req("GET", "/workspaces/%s/activity?limit=2" % wid, who="loader",
                          status=200)
        self.assertEqual(len(act["activity"]), 2)
        self.assertTrue(act["next_cursor"])

    def test_publish_conflict_and_discard(self):
        self.create_dataset("deals")
        wid = self.new_ws(who="loader", members={"scout": "write"})
        self.req("POST", "/workspaces/%s/datasets/deals/rows" % wid,
                 {"upsert": [{"id": 3, "score": 1}, {"id": 4, "score": 2}]}, who="scout",
                 status=200)
        st, out = self.req("POST", "/workspaces/%s/publish" % wid, {}, who="scout")
        self.assertEqual(st, 403, out)
        self.req("POST", "/datasets/deals/rows", {"upsert": [{"id": 3, "score": 77}]},
                 who="loader", status=201)
        st, out = self.req("POST", "/workspaces/%s/publish" % wid, {}, who="loader")
        self.assertEqual(st, 409, out)
        self.assertEqual(out["error"]["code"], "publish_conflict")
        self.assertIn('"id":3', out["error"]["detail"])
        self.assertNotIn('"id":4', out["error"]["detail"])
        self.assertEqual(self.query("SELECT score FROM deals WHERE id = 3"), [{"score": 77}])
        st, out = self.req("POST", "/workspaces/%s/publish" % wid, {"on_conflict": "maybe"},
                           who="loader")
        self.assertEqual(st, 400, out)
        _, out = self.req("POST", "/workspaces/%s/publish" % wid,
                          {"on_conflict": "workspace_wins"}, who="loader", status=200)
        self.assertTrue(out["published"][0]["conflicts_overridden"])
        self.assertEqual(self.query("SELECT id, score FROM deals WHERE id IN (3, 4) ORDER BY id"),
                         [{"id": 3, "score": 1}, {"id": 4, "score": 2}])
        # discard
        self.req("POST", "/workspaces/%s/datasets/deals/rows" % wid,
                 {"delete": [{"id": 5}]}, who="scout", status=200)
        self.assertEqual(self.query("SELECT count(*) AS n FROM deals WHERE id = 5",
                                    workspace_id=wid), [{"n": 0}])
        self.req("POST", "/workspaces/%s/discard" % wid, {}, who="scout", status=200)
        self.assertEqual(self.query("SELECT count(*) AS n FROM deals WHERE id = 5",
                                    workspace_id=wid), [{"n": 1}])

    # ---- saved queries, snapshots, rollback ---------------------------------------------------------
    def test_saved_queries_and_snapshots(self):
        self.create_dataset("temps")
        wid = self.new_ws(who="loader")
        self.req("POST", "/workspaces/%s/datasets/temps/rows" % wid,
                 {"upsert": [{"id": 99, "name": "staged"}]}, who="loader", status=200)
        self.req("PUT", "/workspaces/%s/queries/big" % wid,
                 {"sql": "SELECT id FROM temps WHERE id > 5 ORDER BY id",
                  "description": "the later ones"}, who="loader", status=200)
        self.req("PUT", "/workspaces/%s/queries/by_tool" % wid,
                 {"tool": "search_candidates", "arguments": {"q": "welder"}}, who="loader",
                 status=200)
        for body in [{}, {"sql": "SELECT 1", "tool": "x"}, {"sql": 5}, {"tool": "x",
                                                                         "arguments": 3}]:
            st, out = self.req("PUT", "/workspaces/%s/queries/q" % wid, body, who="loader")
            self.assertEqual(st, 400, (body, out))
        _, run = self.req("POST", "/workspaces/%s/queries/big/run" % wid, who="loader",
                          status=200)
        self.assertEqual(run["row_count"], 6)  # 6..10 and the staged 99
        self.assertEqual(len(run["sha256"]), 64)
        self.assertIn("temps", run["datasets"])
        _, run2 = self.req("POST", "/workspaces/%s/queries/big/run" % wid, who="loader",
                           status=200)
        self.assertEqual(run["sha256"], run2["sha256"])
        # a saved tool call runs through the registry (test_ws_tools.py): no such tool here
        st, out = self.req("POST", "/workspaces/%s/queries/by_tool/run" % wid, who="loader")
        self.assertEqual((st, out["error"]["code"]), (404, "tool_not_found"), out)
        st, out = self.req("POST", "/workspaces/%s/queries/none/run" % wid, who="loader")
        self.assertEqual(st, 404, out)
        _, ws = self.req("GET", "/workspaces/" + wid, who="loader", status=200)
        self.assertEqual(ws["queries"]["big"]["last_run"]["sha256"], run["sha256"])
        # snapshot, change, roll back
        _, snap = self.req("POST", "/workspaces/%s/snapshots" % wid, {"note": "before"},
                           who="loader", status=201)
        self.assertEqual(snap["datasets"]["temps"], 1)
        self.req("POST", "/workspaces/%s/notes" % wid, {"text": "after"}, who="loader",
                 status=201)
        self.req("POST", "/workspaces/%s/discard" % wid, {}, who="loader", status=200)
        _, lst = self.req("GET", "/workspaces/%s/snapshots" % wid, who="loader", status=200)
        self.assertEqual(lst["tier"], "weekly")
        self.assertEqual(len(lst["snapshots"]), 1)
        _, ws = self.req("POST", "/workspaces/%s/snapshots/%d/rollback" % (wid, snap["id"]),
                         who="loader", status=200)
        self.assertEqual(ws["notes"], [])
        self.assertIn("temps", ws["staged"])
        st, out = self.req("POST", "/workspaces/%s/snapshots/9/rollback" % wid, who="loader")
        self.assertEqual(st, 404, out)

    # ---- restart ------------------------------------------------------------------------------------------
    def test_state_survives_restart(self):
        wid = self.new_ws(who="closer", name="restart me")
        self.req("POST", "/workspaces/%s/notes" % wid, {"text": "kept"}, who="closer",
                 status=201)
        self.srv.stop()
        self.srv.start()
        _, ws = self.req("GET", "/workspaces/" + wid, who="closer", status=200)
        self.assertEqual(ws["name"], "restart me")
        self.assertEqual(ws["notes"][0]["text"], "kept")
        self.assertEqual(ws["version"], 2)


class Tiers(harness.ServerTestCase):
    principals = PRINCIPALS
    extra_toml = "\n[workspace]\ntick_s = 1\ndaily_s = 1\n"

    def test_automatic_snapshots_follow_the_tier(self):
        _, _, ws = self.srv.request("POST", "/workspaces", {"name": "fast", "tier": "daily"},
                                    who="scout")
        wid = ws["id"]
        _, _, weekly = self.srv.request("POST", "/workspaces", {"name": "slow", "tier": "weekly"},
                                        who="scout")
        deadline = time.time() + 30
        snaps = []
        while time.time() < deadline:
            _, _, out = self.srv.request("GET", "/workspaces/%s/snapshots" % wid, who="scout")
            snaps = [s for s in out["snapshots"] if s["auto"]]
            if len(snaps) >= 9:
                break
            time.sleep(0.5)
        # a daily workspace keeps 7 automatic snapshots, however many were taken
        _, _, out = self.srv.request("GET", "/workspaces/%s/snapshots" % wid, who="scout")
        autos = [s for s in out["snapshots"] if s["auto"]]
        self.assertEqual(len(autos), 7, out)
        self.assertGreater(autos[-1]["id"], 7)
        _, _, out = self.srv.request("GET", "/workspaces/%s/snapshots" % weekly["id"],
                                     who="scout")
        self.assertEqual(out["snapshots"], [])


class PublishCrash(harness.ServerTestCase):
    principals = PRINCIPALS

    def setUp(self):
        if self.srv.proc.poll() is not None:
            self.srv.start()

    def stage(self, name):
        csv = "id,name,score\n" + "".join("%d,n%d,%d\n" % (i, i, i) for i in range(1, 6))
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": name, "format": "csv", "primary_key": "id"})
        st, _, out = self.srv.request("POST", path, csv, who="loader")
        self.assertEqual(st, 201, out)
        st, _, ws = self.srv.request("POST", "/workspaces", {"name": name}, who="loader")
        wid = ws["id"]
        st, _, out = self.srv.request("POST", "/workspaces/%s/datasets/%s/rows" % (wid, name),
                                      {"upsert": [{"id": 1, "score": 100}, {"id": 9}],
                                       "delete": [{"id": 2}]}, who="loader")
        self.assertEqual(st, 200, out)
        return wid

    def crash_publish(self, wid, point):
        self.srv.stop()
        self.srv.env["LAKEHOUSE_FAULT_CRASH"] = point
        self.srv.start()
        try:
            self.srv.request("POST", "/workspaces/%s/publish" % wid, {}, who="loader")
        except Exception:  # the connection dies with the server
            pass
        self.srv.proc.wait(10)
        self.assertNotEqual(self.srv.proc.returncode, 0)
        self.srv.stop()
        del self.srv.env["LAKEHOUSE_FAULT_CRASH"]
        self.srv.start()

    def rows(self, name):
        st, _, out = self.srv.request("POST", "/query",
                                      {"sql": "SELECT id, score FROM %s ORDER BY id" % name},
                                      who="loader")
        self.assertEqual(st, 200, out)
        return [(r["id"], r["score"]) for r in out["rows"]]

    def test_crash_after_dataset_commit_is_recognised(self):
        wid = self.stage("after")
        self.crash_publish(wid, "rows_after_manifest")
        self.assertEqual(self.rows("after"), [(1, 100), (3, 3), (4, 4), (5, 5), (9, None)])
        _, _, ws = self.srv.request("GET", "/workspaces/" + wid, who="loader")
        self.assertEqual(ws["staged"], {})
        self.assertEqual(ws["published"][0]["dataset"], "after")
        self.assertNotIn("publishing", ws)

    def test_crash_before_dataset_commit_keeps_changes_staged(self):
        wid = self.stage("before")
        self.crash_publish(wid, "rows_before_manifest")
        self.assertEqual(self.rows("before"), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)])
        _, _, ws = self.srv.request("GET", "/workspaces/" + wid, who="loader")
        self.assertIn("before", ws["staged"])
        self.assertNotIn("publishing", ws)
        # and a publish now goes through
        st, _, out = self.srv.request("POST", "/workspaces/%s/publish" % wid, {}, who="loader")
        self.assertEqual(st, 200, out)
        self.assertEqual(self.rows("before"), [(1, 100), (3, 3), (4, 4), (5, 5), (9, None)])

    def test_sigkill_right_after_intent(self):
        wid = self.stage("intent")
        self.crash_publish(wid, "ws_publish_started")
        self.assertEqual(self.rows("intent"), [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)])
        _, _, ws = self.srv.request("GET", "/workspaces/" + wid, who="loader")
        self.assertIn("intent", ws["staged"])
        self.assertEqual(ws["change"]["op"], "publish_abandoned")


class DeltaSweep(harness.ServerTestCase):
    """POST /maintenance/sweep removes delta files of published or discarded staging that
    neither a workspace's current version nor a snapshot stages, respecting grace_s."""
    principals = PRINCIPALS
    extra_toml = Workspaces.extra_toml
    req, query = Workspaces.req, Workspaces.query
    create_dataset, new_ws = Workspaces.create_dataset, Workspaces.new_ws

    def test_sweep_removes_unreferenced_deltas(self):
        self.create_dataset("swept")
        stage = lambda wid, rows: self.req(  # noqa: E731
            "POST", "/workspaces/%s/datasets/swept/rows" % wid, {"upsert": rows}, who="loader",
            status=200)
        published, discarded, kept, pinned = (self.new_ws(who="loader") for _ in range(4))
        stage(published, [{"id": 1, "score": 5}])
        stage(published, [{"id": 2, "score": 6}])
        stage(discarded, [{"id": 3, "score": 7}])
        stage(kept, [{"id": 4, "score": 8}])
        stage(pinned, [{"id": 5, "score": 9}])

        def on_disk():
            out = set()
            for d, _, names in os.walk(self.srv.data_dir):
                for n in names:
                    p = os.path.join(d, n).replace(os.sep, "/")
                    if "/_workspaces/" in p and "/delta/" in p:
                        out.add(p[p.index("_workspaces/"):])
            return out
        # each stage wrote a delta file and the values it leaves to publish
        staged = on_disk()
        self.assertEqual(len([p for p in staged if p.endswith(".values.json")]), 5)
        gone = {p for p in staged if published in p or discarded in p}
        stay = staged - gone
        self.assertEqual((len(gone), len(stay)), (6, 4))
        _, ws = self.req("GET", "/workspaces/" + kept, who="loader", status=200)
        self.assertIn(ws["staged"]["swept"]["values"], stay)
        self.assertNotIn("values", ws["staged"]["swept"]["ops"]['["4"]'])
        self.req("POST", "/workspaces/%s/publish" % published, {}, who="loader", status=200)
        self.req("POST", "/workspaces/%s/discard" % discarded, {}, who="loader", status=200)
        _, snap = self.req("POST", "/workspaces/%s/snapshots" % pinned, {}, who="loader",
                           status=201)
        self.req("POST", "/workspaces/%s/discard" % pinned, {}, who="loader", status=200)
        self.assertEqual(on_disk(), staged)
        # young files are kept
        _, rep = self.req("POST", "/maintenance/sweep?grace_s=3600", who="owner", status=200)
        self.assertEqual(rep["workspace_deltas_removed"], 0)
        self.assertGreaterEqual(rep["kept_young"], 6)
        # a dry run names them and removes nothing
        _, rep = self.req("POST", "/maintenance/sweep?grace_s=0&dry_run=true", who="owner",
                          status=200)
        named = {r["key"] for r in rep["removed"] if "/delta/" in r["key"]}
        self.assertEqual(named, gone)
        self.assertEqual(on_disk(), staged)
        _, rep = self.req("POST", "/maintenance/sweep?grace_s=0", who="owner", status=200)
        self.assertEqual(rep["workspace_deltas_removed"], 6, rep)
        self.assertEqual(rep["errors"], [])
        self.assertEqual(on_disk(), stay)
        # what is still staged reads as before; the snapshot's staging comes back whole
        self.assertEqual(self.query("SELECT score FROM swept WHERE id = 4", workspace_id=kept),
                         [{"score": 8}])
        self.req("POST", "/workspaces/%s/snapshots/%d/rollback" % (pinned, snap["id"]), {},
                 who="loader", status=200)
        self.assertEqual(self.query("SELECT score FROM swept WHERE id = 5", workspace_id=pinned),
                         [{"score": 9}])
        # the published rows are in the dataset
        self.assertEqual(self.query("SELECT score FROM swept WHERE id IN (1, 2) ORDER BY id"),
                         [{"score": 5}, {"score": 6}])


if __name__ == "__main__":
    unittest.main()
