"""End-to-end: agents and named tools. The free-form `filter` hole is closed (an agent's
search filter and /query are refused, the payroll oracle answers nothing); tools of each
kind (sql, search, upsert, insert) are defined, validated, listed, called with bound
parameters (injection stays inert), permission-checked, rate-limited, audited, and
survive a restart with their version history."""
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER, WRITER = "tok-admin-tools-0001", "tok-reader-tools-001", "tok-writer-tools-001"
AGENT, AGENT2, FAR = "tok-agent-tools-0001", "tok-agent-tools-0002", "tok-agent-far-000001"

CITIES = ["Chicago", "Austin", "Denver", "Seattle"]


def candidates():
    rows = []
    for i in range(1, 41):
        rows.append({"candidate_id": i, "full_name": "Person %d" % i, "city": CITIES[i % 4],
                     "years_experience": i % 12, "phone": "555-%04d" % i,
                     "resume_text": "%s engineer with %d years in %s" % (
                         ["Python", "Java", "Go", "SQL"][i % 4], i % 12, CITIES[i % 4])})
    return rows


class Tools(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("viewer", READER, ["reader"]),
                  ("editor", WRITER, ["writer"]), ("bot", AGENT, ["agent"]),
                  ("bot2", AGENT2, ["agent"]), ("far", FAR, ["agent"], ["other"])]
    extra_toml = "\n[tools]\nmax_calls_per_minute = 100000\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ingest("candidates", candidates(), "candidate_id")
        cls.ingest("payroll", [{"id": i, "ssn": "123-45-%04d" % i, "salary": 1000 * i}
                               for i in range(1, 6)], "id")
        cls.ingest("placements", [{"placement_id": 1, "candidate_id": 1, "job": "x"}],
                   "placement_id")
        st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "resumes", "dataset": "candidates", "id_column": "candidate_id",
            "text_column": "resume_text", "model": "builtin"})
        assert st == 202, b
        for _ in range(600):
            st, _, job = cls.srv.request("GET", "/jobs/" + b["job_id"], who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                assert job["state"] == "succeeded", job
                break
            time.sleep(0.05)

    @classmethod
    def ingest(cls, name, rows, key):
        body = "".join(json.dumps(r) + "\n" for r in rows)
        st, _, b = cls.srv.request(
            "POST", "/ingest/file?dataset=%s&format=ndjson&primary_key=%s" % (name, key),
            body=body, who="owner")
        assert st == 201, b

    def req(self, method, path, body=None, status=200, who="owner"):
        st, _, b = self.srv.request(method, path, body=body, who=who)
        self.assertEqual(st, status, b)
        return b

    def err(self, method, path, body, status, code, who="owner"):
        b = self.req(method, path, body, status, who)
        self.assertEqual(b["error"]["code"], code, b)
        return b["error"]

    # ---- the free-form filter hole ---------------------------------------------------------
    def test_agent_filter_refused(self):
        oracle = "id = (SELECT count(*) FROM payroll WHERE ssn LIKE '123%')"
        for f in (oracle, "city = 'Chicago'"):
            e = self.err("POST", "/vectors/indexes/resumes/search",
                         {"query": "python", "k": 3, "filter": f}, 403, "sql_not_allowed",
                         who="bot")
            self.assertIn("tools", e["hint"])
            self.assertIn("free-form", e["message"])
        # the same body from a reader is answered (the rule is about the role)
        b = self.req("POST", "/vectors/indexes/resumes/search",
                     {"query": "python", "k": 3, "filter": "city = 'Chicago'"}, who="viewer")
        self.assertTrue(b["hits"])
        # no filter: agents still search
        self.assertTrue(self.req("POST", "/vectors/indexes/resumes/search",
                                 {"query": "python", "k": 3}, who="bot")["hits"])
        # and /query answers with the same rule
        self.err("POST", "/query", {"sql": "SELECT 1"}, 403, "sql_not_allowed", who="bot")
        self.req("POST", "/query", {"sql": "SELECT 1 AS x"}, who="viewer")

    # ---- definitions -------------------------------------------------------------------------
    SEARCH = {
        "name": "search_candidates", "description": "Find candidates by resume text",
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["query", "city"],
                         "properties": {"query": {"type": "string", "minLength": 1},
                                        "city": {"type": "string"},
                                        "min_years": {"type": "integer", "minimum": 0}}},
        "kind": "search",
        "binding": {"index": "resumes", "query_param": "query", "k": 5,
                    "filter": "city = $city AND years_experience >= coalesce($min_years, 0)",
                    "include": ["full_name", "city", "years_experience"]},
        "allow": {"roles": ["agent"]}, "rate": {"per_minute": 6000, "burst": 1000}}
    BY_CITY = {
        "name": "by_city", "description": "Candidates in a city",
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["city"],
                         "properties": {"city": {"type": "string"},
                                        "ssn_hint": {"type": "string", "x-sensitive": True}}},
        "kind": "sql",
        "binding": {"datasets": ["candidates"], "max_rows": 100,
                    "query": "SELECT candidate_id, full_name FROM candidates WHERE city = $city "
                             "AND ($ssn_hint IS NULL OR $ssn_hint <> 'x') ORDER BY candidate_id"},
        "allow": {"roles": ["agent", "reader"]}, "rate": {"per_minute": 6000, "burst": 1000}}
    UPDATE_PHONE = {
        "name": "update_phone", "description": "Change a candidate's phone number",
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["candidate_id", "phone"],
                         "properties": {"candidate_id": {"type": "integer"},
                                        "phone": {"type": "string", "maxLength": 20}}},
        "kind": "upsert", "binding": {"dataset": "candidates", "columns": ["phone"]},
        "allow": {"roles": ["agent"]}, "grants_write": True}
    CREATE_PLACEMENT = {
        "name": "create_placement", "description": "Place a candidate on a job",
        "input_schema": {"type": "object", "additionalProperties": False,
                         "required": ["placement_id", "candidate_id"],
                         "properties": {"placement_id": {"type": "integer"},
                                        "candidate_id": {"type": "integer"},
                                        "job": {"type": "string"}}},
        "kind": "insert",
        "binding": {"dataset": "placements", "columns": ["placement_id", "candidate_id", "job"],
                    "references": {"candidate_id": "candidates"}},
        "allow": {"roles": ["agent"], "principals": ["editor"]}, "grants_write": True}

    def define(self, d):
        st, _, b = self.srv.request("POST", "/tools", body=d, who="owner")
        if st == 409:
            b = self.req("PUT", "/tools/" + d["name"], d)
        else:
            self.assertEqual(st, 201, b)
        return b

    def call(self, name, args, status=200, who="bot", ws=None):
        body = {"arguments": args}
        if ws:
            body["workspace_id"] = ws
        st, h, b = self.srv.request("POST", "/tools/%s/call" % name, body=body, who=who)
        self.assertEqual(st, status, b)
        return b if status != 429 else (b, h)

    def audit(self, call_id=None, **filters):
        """The durable audit trail: one record by id, or the records matching filters."""
        if call_id:
            return [self.req("GET", "/audit/" + call_id)]
        query = "&".join("%s=%s" % kv for kv in sorted(filters.items()))
        return self.req("GET", "/audit?limit=1000&" + query)["records"]

    def test_sql_tool_bound_and_inert(self):
        d = self.define(self.BY_CITY)
        self.assertGreaterEqual(d["version"], 1)
        out = self.call("by_city", {"city": "Chicago", "ssn_hint": "123"}, ws="ws-1")
        ids = [r["candidate_id"] for r in out["result"]["rows"]]
        self.assertEqual(ids, [i for i in range(1, 41) if CITIES[i % 4] == "Chicago"])
        self.assertTrue(out["call_id"].startswith("call_"))
        self.assertIn("took_us", out)
        rec = self.audit(out["call_id"])[0]
        self.assertEqual((rec["outcome"], rec["status"], rec["tool"], rec["principal"]),
                         ("ok", 200, "by_city", "bot"))
        self.assertEqual(rec["arguments"], {"city": "Chicago", "ssn_hint": "[redacted]"})
        self.assertEqual(rec["rows"], len(ids))
        self.assertEqual(rec["workspace_id"], "ws-1")
        self.assertIn("candidates", rec["dataset_versions"])
        self.assertEqual(len(rec["result_sha256"]), 64)
        self.assertEqual(rec["via"], "http")
        # injection attempts are values, never SQL
        for evil in ("x' OR 1=1 --", "Chicago'; DROP TABLE candidates; --",
                     "' UNION SELECT ssn, 1 FROM payroll --", "$city"):
            out = self.call("by_city", {"city": evil})
            self.assertEqual(out["result"]["rows"], [], evil)
        self.assertEqual(len(self.req("POST", "/query", {
            "sql": "SELECT * FROM candidates"}, who="viewer")["rows"]), 40)

    def test_search_tool(self):
        self.define(self.SEARCH)
        out = self.call("search_candidates", {"query": "python engineer", "city": "Austin",
                                              "min_years": 3})
        hits = out["result"]["hits"]
        self.assertTrue(hits)
        for h in hits:
            self.assertEqual(h["columns"]["city"], "Austin")
            self.assertGreaterEqual(h["columns"]["years_experience"], 3)
        out = self.call("search_candidates", {"query": "python", "city": "x' OR 1=1 --"})
        self.assertEqual(out["result"]["hits"], [])
        # the same arguments again: the filter cache answers, with the same hits; other
        # values of the same filter are their own entries
        cache = lambda: self.req("GET", "/vectors/indexes")["filter_cache"]  # noqa: E731
        before = cache()
        again = self.call("search_candidates", {"query": "python engineer", "city": "Austin",
                                                "min_years": 3})
        self.assertEqual(again["result"]["hits"], hits)
        self.assertEqual(cache()["hits"], before["hits"] + 1)
        other = self.call("search_candidates", {"query": "python engineer", "city": "Austin",
                                                "min_years": 9})
        self.assertEqual(cache()["hits"], before["hits"] + 1)
        self.assertTrue(all(h["columns"]["years_experience"] >= 9
                            for h in other["result"]["hits"]))
        e = self.call("search_candidates", {"query": "python", "city": "Austin",
                                            "min_years": -1}, 400)["error"]
        self.assertEqual(e["code"], "invalid_arguments")
        self.assertEqual(e["message"], "/arguments/min_years: must be >= 0")
        e = self.call("search_candidates", {"query": "python"}, 400)["error"]
        self.assertEqual(e["message"], "/arguments: missing required property 'city'")
        e = self.call("search_candidates", {"query": "p", "city": "A", "sql": "1"}, 400)["error"]
        self.assertIn("/arguments/sql", e["message"])
        e = self.call("search_candidates", {"query": 5, "city": "A"}, 400)["error"]
        self.assertEqual(e["message"], "/arguments/query: must be a string")
        refused = self.audit(tool="search_candidates", outcome="refused")
        self.assertGreaterEqual(len(refused), 4)
        self.assertTrue(all(r["status"] == 400 for r in refused))

    def test_write_tools_journal_the_agent(self):
        self.define(self.UPDATE_PHONE)
        self.define(self.CREATE_PLACEMENT)
        out = self.call("update_phone", {"candidate_id": 7, "phone": "555-7777"}, ws="ws-9")
        self.assertEqual(out["result"]["counts"]["updated"], 1)
        rows = self.req("POST", "/query", {"sql": "SELECT phone FROM candidates WHERE "
                                                  "candidate_id = 7"}, who="viewer")["rows"]
        self.assertEqual(rows, [{"phone": "555-7777"}])
        ev = self.req("GET", "/journal/events?dataset=candidates", who="viewer")
        evs = ev.get("events", ev)
        mine = [e for e in evs if e.get("source") == "tool:update_phone"]
        self.assertTrue(mine, evs)
        self.assertEqual((mine[-1]["actor"], mine[-1]["workspace_id"]), ("bot", "ws-9"))
        rec = self.audit(out["call_id"])[0]
        self.assertEqual(rec["dataset_versions"]["candidates"], out["result"]["version"])
        # only the declared column: anything else is refused by the schema
        e = self.call("update_phone", {"candidate_id": 7, "phone": "1", "city": "X"}, 400)
        self.assertIn("/arguments/city", e["error"]["message"])
        # an update tool does not create rows
        self.assertEqual(self.call("update_phone", {"candidate_id": 999, "phone": "1"},
                                   404)["error"]["code"], "row_not_found")
        # insert: references checked, keys not overwritten
        out = self.call("create_placement", {"placement_id": 2, "candidate_id": 3, "job": "y"})
        self.assertEqual(out["result"]["counts"]["inserted"], 1)
        self.assertEqual(self.call("create_placement", {"placement_id": 3, "candidate_id": 999},
                                   400)["error"]["code"], "invalid_reference")
        # a value the column cannot hold is named in the caller's terms
        e = self.call("update_phone", {"candidate_id": 7, "phone": "1" * 21}, 400)["error"]
        self.assertEqual(e["message"], "/arguments/phone: must be at most 20 characters long")
        st, h, b = self.srv.request("POST", "/tools/create_placement/call", who="bot",
                                    body={"arguments": {"placement_id": 2, "candidate_id": 3}})
        self.assertEqual((st, b["error"]["code"]), (409, "row_exists"))
        rec = self.audit(h["x-lakehouse-call-id"])[0]
        self.assertEqual((rec["outcome"], rec["status"], rec["error_code"]),
                         ("failed", 409, "row_exists"))
        self.assertIsNone(rec.get("result_sha256"))
        self.assertIn("candidates", rec["dataset_versions"])  # the reference it checked

    def test_permissions(self):
        self.define(self.BY_CITY)
        self.define(self.UPDATE_PHONE)
        far = dict(self.BY_CITY, name="far_city", allow={"principals": ["far"]})
        self.define(far)
        # not in allow
        st, h, b = self.srv.request("POST", "/tools/by_city/call", who="editor",
                                    body={"arguments": {"city": "A", "ssn_hint": "secret"}})
        self.assertEqual((st, b["error"]["code"]), (403, "not_allowed"))
        rec = self.audit(h["x-lakehouse-call-id"])[0]
        self.assertEqual((rec["outcome"], rec["status"], rec["principal"], rec["roles"]),
                         ("refused", 403, "editor", ["writer"]))
        self.assertGreaterEqual(rec["tool_version"], 1)
        self.assertEqual(rec["arguments"]["ssn_hint"], "[redacted]")  # refused calls too
        self.assertNotIn("secret", self.srv.log_text())
        # over a bucket the principal may not use: as absent as an unknown tool
        e = self.call("far_city", {"city": "A"}, 404, who="far")["error"]
        self.assertEqual(e["code"], "tool_not_found")
        # ... and a tenant does not see tools over other buckets' data
        self.assertEqual([t["name"] for t in self.req("GET", "/tools", who="far")["tools"]
                          if t["kind"] != "builtin"], [])
        self.err("GET", "/tools/far_city", None, 404, "tool_not_found", who="far")
        # a write tool without grants_write needs a write role
        nowrite = dict(self.UPDATE_PHONE, name="phone_nogrant", grants_write=False,
                       allow={"roles": ["agent", "writer"]})
        self.define(nowrite)
        e = self.call("phone_nogrant", {"candidate_id": 1, "phone": "1"}, 403)["error"]
        self.assertEqual(e["code"], "write_forbidden")
        self.call("phone_nogrant", {"candidate_id": 1, "phone": "555-0001"}, who="editor")
        # managing is for admins
        for who in ("bot", "editor", "viewer"):
            self.err("POST", "/tools", dict(self.BY_CITY, name="x1"), 403, "forbidden", who=who)
            self.err("DELETE", "/tools/by_city", None, 403, "forbidden", who=who)
        # unknown tool
        st, h, b = self.srv.request("POST", "/tools/nope/call", who="bot", body={})
        self.assertEqual((st, b["error"]["code"]), (404, "tool_not_found"))
        rec = self.audit(h["x-lakehouse-call-id"])[0]
        self.assertEqual((rec["outcome"], rec["tool"], rec.get("tool_version")),
                         ("refused", "nope", None))
        # listing shows only what the caller may call
        names = [t["name"] for t in self.req("GET", "/tools", who="bot")["tools"]]
        self.assertIn("by_city", names)
        self.assertNotIn("far_city", names)
        oa = self.req("GET", "/tools?format=openai", who="bot")
        f = [x for x in oa if x["function"]["name"] == "by_city"][0]
        self.assertEqual(f["type"], "function")
        self.assertEqual(f["function"]["parameters"], self.BY_CITY["input_schema"])
        self.assertEqual(f["function"]["description"], self.BY_CITY["description"])
        self.err("GET", "/tools?format=xml", None, 400, "invalid_parameter", who="bot")
        self.err("GET", "/tools/far_city", None, 404, "tool_not_found", who="bot")

    def test_validation_errors(self):
        base = self.BY_CITY
        cases = [
            (dict(base, name="v1", binding=dict(base["binding"], datasets=["nosuch"])),
             "invalid_tool", "nosuch"),
            (dict(base, name="v2", binding=dict(base["binding"], query="SELECT nocol FROM "
                                                "candidates WHERE city = $city")),
             "invalid_tool", "nocol"),
            (dict(base, name="v3", binding=dict(base["binding"], query="SELECT * FROM payroll "
                                                "WHERE $city = $ssn_hint")),
             "invalid_tool", "payroll"),
            (dict(base, name="v4", binding=dict(base["binding"], query="SELECT 1 FROM candidates"
                                                " WHERE city = $town")),
             "invalid_tool", "$town"),
            (dict(base, name="v5", input_schema=dict(base["input_schema"], properties=dict(
                base["input_schema"]["properties"], unused={"type": "string"}))),
             "invalid_tool", "unused"),
            (dict(base, name="v6", input_schema=dict(base["input_schema"], patternX="a")),
             "invalid_schema", "patternX"),
            (dict(self.SEARCH, name="v7", binding=dict(self.SEARCH["binding"], index="noidx")),
             "invalid_tool", "noidx"),
            (dict(self.SEARCH, name="v8", binding=dict(self.SEARCH["binding"],
                                                       include=["nocolumn"])),
             "invalid_tool", "nocolumn"),
            (dict(self.UPDATE_PHONE, name="v9", binding={"dataset": "candidates",
                                                         "columns": ["phon"]}),
             "invalid_tool", "phon"),
            (dict(base, name="v10", kind="shell"), "invalid_tool", "shell"),
            (dict(base, name="v11", extra=1), "invalid_tool", "extra"),
            (dict(base, name="Bad-Name"), "invalid_name", "[a-z]"),
            (dict(base, name="v12", rate={"per_minute": 0}), "invalid_tool", "per_minute"),
            (dict(base, name="v13", allow={"roles": ["root"]}), "invalid_tool", "allow.roles"),
            (dict(base, name="v14", binding=dict(base["binding"], query="SELECT 1 FROM "
                                                 "candidates WHERE city = $1")),
             "invalid_tool", "positional"),
            (dict(base, name="v15", binding=dict(base["binding"],
                                                 query="DELETE FROM candidates")),
             None, None),
            (dict(self.CREATE_PLACEMENT, name="v16", binding=dict(
                self.CREATE_PLACEMENT["binding"], references={"candidate_id": "nosuchds"})),
             "invalid_tool", "nosuchds"),
        ]
        for d, code, word in cases:
            st, _, b = self.srv.request("POST", "/tools", body=d, who="owner")
            self.assertIn(st, (400, 403), (d["name"], b))
            if code:
                self.assertEqual(b["error"]["code"], code, (d["name"], b))
                self.assertIn(word, b["error"]["message"], (d["name"], b))
        # malformed bodies
        st, _, b = self.srv.request("POST", "/tools", body="{not json", who="owner",
                                    headers={"Content-Type": "application/json"})
        self.assertEqual((st, b["error"]["code"]), (400, "invalid_json"))
        self.define(base)
        for body in ({"arguments": [1]}, {"arguments": {}, "x": 1}, {"workspace_id": 5}):
            st, _, b = self.srv.request("POST", "/tools/by_city/call", body=body, who="bot")
            self.assertEqual(st, 400, b)
        self.err("POST", "/tools", base, 409, "tool_exists")
        self.err("PUT", "/tools/never_made", base, 404, "tool_not_found")

    def test_rate_limit(self):
        d = dict(self.BY_CITY, name="slow_city", rate={"per_minute": 2, "burst": 3})
        self.define(d)
        results = []

        def go():
            st, h, b = self.srv.request("POST", "/tools/slow_city/call",
                                        body={"arguments": {"city": "A"}}, who="bot2")
            results.append((st, h, b))
        threads = [threading.Thread(target=go) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r[0] for r in results)
        self.assertEqual(codes.count(200), 3, codes)
        self.assertEqual(codes.count(429), 9, codes)
        for st, h, b in results:
            if st == 429:
                self.assertEqual(b["error"]["code"], "rate_limited")
                self.assertGreaterEqual(int(h["retry-after"]), 1)
                self.assertLessEqual(int(h["retry-after"]), 30)
        refused = [r for r in self.audit(tool="slow_city") if r["status"] == 429]
        self.assertEqual(len(refused), 9)
        # another principal has its own bucket
        self.call("slow_city", {"city": "A"}, who="bot")

    def test_versions_survive_restart(self):
        d = dict(self.BY_CITY, name="hist")
        self.define(d)
        d2 = dict(d, description="second")
        v2 = self.req("PUT", "/tools/hist", d2)
        self.assertEqual(v2["version"], 2)
        self.req("DELETE", "/tools/hist")
        self.err("GET", "/tools/hist", None, 404, "tool_not_found")
        self.call("hist", {"city": "A"}, 404)
        self.srv.stop()
        self.srv.start()
        vs = self.req("GET", "/tools/hist/versions")["versions"]
        self.assertEqual([(v["version"], v["deleted"]) for v in vs],
                         [(1, False), (2, False), (3, True)])
        self.assertEqual(self.req("GET", "/tools/hist?version=2")["description"], "second")
        self.assertEqual(self.req("GET", "/tools/hist?version=1")["description"],
                         d["description"])
        self.err("GET", "/tools/hist?version=9", None, 404, "version_not_found")
        # re-created: numbering goes on
        self.assertEqual(self.define(d)["version"], 4)
        self.call("hist", {"city": "Chicago"})
        # and the other tools are back
        self.assertTrue(self.req("GET", "/tools")["tools"])


if __name__ == "__main__":
    unittest.main()
