"""End-to-end: tenants are isolated at every door (invariant 11). Two tenant buckets,
client_a and client_eu, hold datasets of the same shape; principals limited to each
(reader, writer, agent, and an admin limited to client_a) see their own and get "does
not exist" for the other's — in SQL (joins, CTEs, subqueries, UNION, time travel,
workspace_id, _events, _audit, _hnsw_trials, search filters), the catalog, the journal,
vector indexes, tools, MCP resources and workspaces — answered exactly as for a name
nothing defines, with no other tenant's dataset name in any error the request did not
name. Kept statements are per view: the same SQL text from two tenants, and from a tenant
after an admin, gets each its own answer."""
import json
import os
import re
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

OWNER, A_ADMIN = "tok-ten-owner-00001", "tok-ten-a-admin-0001"
A_READ, A_WRITE, A_AGENT = "tok-ten-a-read-00001", "tok-ten-a-write-0001", "tok-ten-a-agent-0001"
EU_READ, EU_WRITE, EU_AGENT = ("tok-ten-eu-read-0001", "tok-ten-eu-write-001",
                               "tok-ten-eu-agent-001")
CITIES = ["Berlin", "Paris", "Austin", "Lyon"]

# names only the other tenant's requests mention: no error given to a tenant may hold them
A_NAMES = ["a_people", "a_orders", "a_resumes", "a_by_city"]
EU_NAMES = ["eu_people", "eu_orders", "eu_resumes", "eu_by_city", "client_eu"]


def people_csv(tag):
    rows = ["id,name,city,resume_text"]
    for i in range(1, 31):
        rows.append("%d,%s person %d,%s,%s welder with %d years in %s" % (
            i, tag, i, CITIES[i % 4], ["Python", "Java", "Go", "SQL"][i % 4], i % 9,
            CITIES[i % 4]))
    return "\n".join(rows) + "\n"


def orders_csv():
    return "order_id,person_id,total\n1,1,10\n2,2,20\n3,3,30\n"


class Tenancy(harness.ServerTestCase):
    principals = [("owner", OWNER, ["admin"]),
                  ("a_admin", A_ADMIN, ["admin"], ["client_a"]),
                  ("a_reader", A_READ, ["reader"], ["client_a"]),
                  ("a_writer", A_WRITE, ["writer"], ["client_a"]),
                  ("a_agent", A_AGENT, ["agent"], ["client_a"]),
                  ("eu_reader", EU_READ, ["reader"], ["client_eu"]),
                  ("eu_writer", EU_WRITE, ["writer"], ["client_eu"]),
                  ("eu_agent", EU_AGENT, ["agent"], ["client_eu"])]
    extra_toml = "\n[tools]\nmax_calls_per_minute = 100000\n"

    @classmethod
    def setUpClass(cls):
        def configure(srv):
            with open(srv.config, "a") as f:
                f.write("\n[storage]\nprobe_interval_ms = 0\n")
                for b in ("client_a", "client_eu"):
                    f.write('[[bucket]]\nname = "%s"\nbackend = "fs"\nroot = "%s"\n'
                            % (b, os.path.join(srv.dir, b + "-root")))
        cls.start_server(configure=configure)
        for t, who in (("a", "a_writer"), ("eu", "eu_writer")):
            bucket = "client_" + t
            cls.ingest(t + "_people", people_csv(t), bucket, who)
            cls.ingest(t + "_orders", orders_csv(), bucket, who)
            # a row change: events beyond the create
            st, _, b = cls.srv.request("POST", "/datasets/%s_people/rows" % t, who=who, body={
                "upsert": [{"id": 1, "name": "%s renamed" % t, "city": "Berlin",
                            "resume_text": "x"}]})
            assert st in (200, 201), b
            st, _, b = cls.srv.request("POST", "/vectors/indexes", who=who, body={
                "name": t + "_resumes", "dataset": t + "_people", "id_column": "id",
                "text_column": "resume_text", "model": "builtin"})
            assert st == 202, b
            cls.wait_job(b["job_id"])
            st, _, b = cls.srv.request("POST", "/vectors/hnsw/evals/%s_eval/autogen" % t,
                                       who=who, body={"index": t + "_resumes", "n_queries": 5,
                                                      "k": 3})
            assert st == 201, b
            st, _, b = cls.srv.request("POST", "/vectors/hnsw/trial", who=who, body={
                "index": t + "_resumes", "eval": t + "_eval",
                "configs": [{"m": 8, "ef_construction": 16, "ef_search": 8}]})
            assert st == 202, b
            cls.wait_job(b["job_id"])
            st, _, b = cls.srv.request("POST", "/tools", who="owner", body={
                "name": t + "_by_city", "description": "people of a city",
                "input_schema": {"type": "object", "additionalProperties": False,
                                 "required": ["city"],
                                 "properties": {"city": {"type": "string"}}},
                "kind": "sql",
                "binding": {"datasets": [t + "_people"], "max_rows": 100,
                            "query": "SELECT id, name FROM %s_people WHERE city = $city "
                                     "ORDER BY id" % t},
                "allow": {"roles": ["agent", "reader"]},
                "rate": {"per_minute": 6000, "burst": 1000}})
            assert st == 201, b
            # a tool call each: audit records naming each tenant's dataset
            st, _, b = cls.srv.request("POST", "/tools/%s_by_city/call" % t, who=t + "_agent",
                                       body={"arguments": {"city": "Paris"}})
            assert st == 200, b

    @classmethod
    def ingest(cls, name, csv, bucket, who):
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": name, "format": "csv", "bucket": bucket, "primary_key": "id"
             if "people" in name else "order_id"})
        st, _, b = cls.srv.request("POST", path, body=csv, who=who,
                                   headers={"Content-Type": "text/csv"})
        assert st == 201, b

    @classmethod
    def wait_job(cls, job_id):
        for _ in range(1200):
            st, _, job = cls.srv.request("GET", "/jobs/" + job_id, who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                assert job["state"] == "succeeded", job
                return job
            time.sleep(0.05)
        raise AssertionError("job %s did not finish" % job_id)

    # ---- helpers ---------------------------------------------------------------------------

    def req(self, method, path, body=None, status=200, who="owner", headers=None):
        st, _, b = self.srv.request(method, path, body=body, who=who, headers=headers)
        self.assertEqual(st, status, (method, path, body, who, b))
        return b

    def sql(self, sql, who, status=200, **extra):
        body = dict(extra, sql=sql)
        return self.req("POST", "/query", body, status, who)

    def rows(self, sql, who, **extra):
        return self.sql(sql, who, **extra)["rows"]

    def assert_no_leak(self, payload, request, names):
        """No name in names appears in payload unless the request itself carried it."""
        text = json.dumps(payload)
        asked = json.dumps(request)
        for n in names:
            if n not in asked:
                self.assertNotIn(n, text, (request, payload))

    def assert_absent(self, sql, who, missing, **extra):
        """The query fails exactly as one naming a table nothing defines."""
        got = self.sql(sql, who, 400, **extra)["error"]
        self.assertEqual(got["code"], "invalid_sql", got)
        self.assertIn("Table with name %s does not exist" % missing, json.dumps(got))
        # the same shape as a name nothing defines
        unknown = self.sql(sql.replace(missing, "zz_nothing_here"), who, 400, **extra)["error"]
        for field in ("code", "message", "hint"):
            self.assertEqual(got.get(field), unknown.get(field))
        # DuckDB's "did you mean" offers names of its own catalog alike to the name given
        # (pg_depend, ...), never a dataset: compare what is left
        def bare(detail):
            return re.sub(r"\nDid you mean [^\n]*", "", detail)
        self.assertEqual(bare(got["detail"]).replace(missing, "zz_nothing_here"),
                         bare(unknown["detail"]))
        others = EU_NAMES if who.startswith("a_") else A_NAMES
        self.assert_no_leak(got, {"sql": sql, "extra": extra}, others)
        return got

    # ---- SQL ---------------------------------------------------------------------------------

    def test_sql_own_and_others(self):
        for me, other in (("a", "eu"), ("eu", "a")):
            for role in ("reader", "writer"):
                who = "%s_%s" % (me, role)
                self.assertEqual(self.rows("SELECT count(*) AS n FROM %s_people" % me, who),
                                 [{"n": 30}])
                for sql in (
                        "SELECT * FROM {o}_people",
                        "SELECT count(*) FROM {m}_people p JOIN {o}_people q ON p.id = q.id",
                        "WITH x AS (SELECT * FROM {o}_people) SELECT count(*) FROM x",
                        "SELECT count(*) FROM {m}_people WHERE id IN (SELECT id FROM {o}_people)",
                        "SELECT id FROM {m}_people UNION ALL SELECT id FROM {o}_people",
                        "SELECT (SELECT max(total) FROM {o}_orders) AS t",
                        "SELECT * FROM {m}_orders o, LATERAL (SELECT * FROM {o}_people "
                        "WHERE id = o.person_id) AS l"):
                    missing = other + ("_orders" if "{o}_orders" in sql else "_people")
                    self.assert_absent(sql.format(m=me, o=other), who, missing)
        # the admin sees both, and a join across them works
        self.assertEqual(self.rows("SELECT count(*) AS n FROM a_people p JOIN eu_people q "
                                   "ON p.id = q.id", "owner"), [{"n": 30}])
        # an admin limited to client_a is a tenant too
        self.assert_absent("SELECT * FROM eu_people", "a_admin", "eu_people")
        self.assertEqual(self.rows("SELECT count(*) AS n FROM a_people", "a_admin"),
                         [{"n": 30}])

    def test_no_suggestions_leak(self):
        # a near miss of the other tenant's name: DuckDB suggests nothing of it
        got = self.sql("SELECT * FROM eu_peopl", "a_reader", 400)["error"]
        self.assertNotIn("eu_people", json.dumps(got))
        got = self.sql("SELECT * FROM a_peopl", "eu_reader", 400)["error"]
        self.assertNotIn("a_people", json.dumps(got))
        # a column error in one's own dataset names no other tenant's
        got = self.sql("SELECT nope FROM a_people", "a_reader", 400)["error"]
        self.assert_no_leak(got, {}, EU_NAMES)

    def test_kept_statements_per_view(self):
        for _ in range(3):  # repeated: the pooled connections keep the statements
            for sql, expect in (("SELECT count(*) AS n FROM eu_people", 30),
                                ("SELECT count(DISTINCT dataset) AS n FROM _events", 4)):
                self.assertEqual(self.rows(sql, "owner"), [{"n": expect}])
            self.assert_absent("SELECT count(*) AS n FROM eu_people", "a_reader", "eu_people")
            self.assertEqual(self.rows("SELECT count(*) AS n FROM eu_people", "eu_reader"),
                             [{"n": 30}])
            for who, expect in (("a_reader", ["a_orders", "a_people"]),
                                ("eu_reader", ["eu_orders", "eu_people"]),
                                ("owner", ["a_orders", "a_people", "eu_orders", "eu_people"])):
                got = self.rows("SELECT DISTINCT dataset FROM _events ORDER BY dataset", who)
                self.assertEqual([r["dataset"] for r in got], expect, who)
        # every format keeps its own statements too
        for fmt in ("ndjson", "csv"):
            self.assertEqual(self.sql("SELECT count(*) AS n FROM eu_people", "owner",
                                      format=fmt).strip().splitlines()[-1].strip('{}"n: '),
                             "30")
            st, _, _ = self.srv.request("POST", "/query", who="a_reader", body={
                "sql": "SELECT count(*) AS n FROM eu_people", "format": fmt})
            self.assertEqual(st, 400)

    def test_time_travel(self):
        own = self.rows("SELECT count(*) AS n FROM a_people", "a_reader",
                        as_of={"version": 1})
        self.assertEqual(own, [{"n": 30}])
        for as_of in ({"version": 1}, {"datasets": {"eu_people": {"version": 1}}}):
            got = self.sql("SELECT count(*) AS n FROM eu_people", "a_reader", 404,
                           as_of=as_of)["error"]
            unknown = self.sql("SELECT count(*) AS n FROM zz_nothing_here", "a_reader", 404,
                               as_of={"datasets": {"zz_nothing_here": {"version": 1}}})["error"]
            self.assertEqual(got["code"], "dataset_not_found")
            self.assertEqual(got["message"].replace("eu_people", "X"),
                             unknown["message"].replace("zz_nothing_here", "X"))
            self.assertEqual(got.get("hint"), unknown.get("hint"))
            self.assertNotIn("client_eu", json.dumps(got))
        # a join of one's own at a version with the other's: still absent
        got = self.sql("SELECT count(*) FROM a_people JOIN eu_people USING (id)", "a_reader", 404,
                       as_of={"version": 1})["error"]
        self.assertNotIn("client_eu", json.dumps(got))
        # the admin travels in both
        self.assertEqual(self.rows("SELECT count(*) AS n FROM eu_people", "owner",
                                   as_of={"version": 1}), [{"n": 30}])

    def test_workspaces(self):
        # eu_writer stages a change to eu_people in a workspace it shares with a_reader
        ws = self.req("POST", "/workspaces", {"name": "shared", "kind": "search",
                                              "members": {"a_reader": "read"}}, 201,
                      who="eu_writer")
        wid = ws["id"]
        self.req("POST", "/workspaces/%s/datasets/eu_people/rows" % wid,
                 {"upsert": [{"id": 2, "name": "staged", "city": "Paris", "resume_text": "y"}]},
                 who="eu_writer")
        self.assertEqual(self.rows("SELECT name FROM eu_people WHERE id = 2", "eu_writer",
                                   workspace_id=wid), [{"name": "staged"}])
        # a_reader's query with that workspace: its own datasets answer, and nothing
        # names the staged dataset it does not see
        got = self.sql("SELECT count(*) AS n FROM a_people", "a_reader", workspace_id=wid)
        self.assertEqual(got["rows"], [{"n": 30}])
        self.assert_no_leak(got, {}, EU_NAMES)
        self.assert_absent("SELECT * FROM eu_people", "a_reader", "eu_people", workspace_id=wid)
        # a_writer cannot stage into the other tenant's dataset: as if it did not exist
        ws_a = self.req("POST", "/workspaces", {"name": "mine", "kind": "search"}, 201,
                        who="a_writer")["id"]
        got = self.req("POST", "/workspaces/%s/datasets/eu_people/rows" % ws_a,
                       {"upsert": [{"id": 2}]}, 404, who="a_writer")["error"]
        unknown = self.req("POST", "/workspaces/%s/datasets/zz_nothing_here/rows" % ws_a,
                           {"upsert": [{"id": 2}]}, 404, who="a_writer")["error"]
        self.assertEqual(got["code"], unknown["code"])
        self.assertEqual(got["message"].replace("eu_people", "X"),
                         unknown["message"].replace("zz_nothing_here", "X"))
        self.assertNotIn("client_eu", json.dumps(got))
        # a saved query runs as its runner sees
        self.req("PUT", "/workspaces/%s/queries/peek" % ws_a,
                 {"sql": "SELECT count(*) AS n FROM eu_people"}, who="a_writer")
        got = self.req("POST", "/workspaces/%s/queries/peek/run" % ws_a, None, 400,
                       who="a_writer")["error"]
        self.assertIn("Table with name eu_people does not exist", json.dumps(got))
        # shortlists of records in unseen datasets are refused as unknown datasets
        got = self.req("POST", "/workspaces/%s/shortlists/top/records" % ws_a,
                       {"records": [{"dataset": "eu_people", "key": 1}]}, 404,
                       who="a_writer")["error"]
        self.assertEqual(got["code"], "dataset_not_found")
        self.assertNotIn("client_eu", json.dumps(got))

    # ---- lakehouse's own relations -----------------------------------------------------------

    def test_events_view(self):
        for who, mine in (("a_reader", "a_"), ("eu_reader", "eu_"), ("a_writer", "a_")):
            got = self.rows("SELECT dataset, count(*) AS n FROM _events GROUP BY dataset "
                            "ORDER BY dataset", who)
            self.assertTrue(got, who)
            for r in got:
                self.assertTrue(r["dataset"].startswith(mine), (who, got))
        # a filter on the other's name finds nothing (not an error: the view exists)
        self.assertEqual(self.rows("SELECT count(*) AS n FROM _events WHERE dataset = "
                                   "'eu_people'", "a_reader"), [{"n": 0}])
        got = {r["dataset"] for r in self.rows("SELECT DISTINCT dataset FROM _events", "owner")}
        self.assertEqual(got, {"a_people", "a_orders", "eu_people", "eu_orders"})

    def test_audit_view(self):
        for who in ("a_reader", "a_writer", "eu_reader"):
            self.assert_absent("SELECT count(*) FROM _audit", who, "_audit")
        # the admin limited to client_a sees the records of its datasets only
        got = self.rows("SELECT tool FROM _audit ORDER BY tool", "a_admin")
        tools = {r["tool"] for r in got}
        self.assertIn("a_by_city", tools)
        self.assertNotIn("eu_by_city", tools)
        tools = {r["tool"] for r in self.rows("SELECT DISTINCT tool FROM _audit", "owner")}
        self.assertTrue({"a_by_city", "eu_by_city"} <= tools, tools)
        # GET /audit: the same records for the limited admin
        recs = self.req("GET", "/audit?limit=1000", who="a_admin")["records"]
        self.assertIn("a_by_city", {r["tool"] for r in recs})
        self.assertNotIn("eu_by_city", {r["tool"] for r in recs})
        eu = [r for r in self.req("GET", "/audit?limit=1000&tool=eu_by_city")["records"]]
        self.assertTrue(eu)
        got = self.req("GET", "/audit/" + eu[0]["call_id"], status=404, who="a_admin")["error"]
        self.assertEqual(got["code"], "audit_record_not_found")
        self.assertNotIn("eu_people", json.dumps(got))
        self.req("GET", "/audit/" + eu[0]["call_id"])

    def test_trials_view(self):
        for who, mine, theirs in (("a_reader", "a_resumes", "eu_resumes"),
                                  ("eu_reader", "eu_resumes", "a_resumes")):
            got = {r["index"] for r in self.rows("SELECT DISTINCT \"index\" FROM _hnsw_trials",
                                                 who)}
            self.assertEqual(got, {mine}, who)
        got = {r["index"] for r in self.rows("SELECT DISTINCT \"index\" FROM _hnsw_trials",
                                             "owner")}
        self.assertEqual(got, {"a_resumes", "eu_resumes"})
        # the trials endpoint answers the same
        self.req("GET", "/vectors/hnsw/trials/a_resumes", who="a_reader")
        self.req("GET", "/vectors/hnsw/trials/eu_resumes", status=404, who="a_reader")

    # ---- search -------------------------------------------------------------------------------

    def test_search(self):
        body = {"query": "python welder", "k": 3}
        self.assertTrue(self.req("POST", "/vectors/indexes/a_resumes/search", body,
                                 who="a_reader")["hits"])
        got = self.req("POST", "/vectors/indexes/eu_resumes/search", body, 404,
                       who="a_reader")["error"]
        unknown = self.req("POST", "/vectors/indexes/zz_nothing_here/search", body, 404,
                           who="a_reader")["error"]
        self.assertEqual(got["code"], unknown["code"])
        self.assertEqual(got["message"].replace("eu_resumes", "X"),
                         unknown["message"].replace("zz_nothing_here", "X"))
        # a filter naming the other's dataset: does not exist
        got = self.req("POST", "/vectors/indexes/a_resumes/search",
                       dict(body, filter="id IN (SELECT id FROM eu_people)"), 400,
                       who="a_reader")["error"]
        self.assertIn("Table with name eu_people does not exist", json.dumps(got))
        # ... and _events in a filter holds only one's own
        got = self.req("POST", "/vectors/indexes/a_resumes/search",
                       dict(body, filter="id IN (SELECT 1 FROM _events WHERE dataset = "
                                         "'eu_people')"), who="a_reader")
        self.assertEqual(got["hits"], [])
        # index listing
        names = [i["name"] for i in self.req("GET", "/vectors/indexes", who="a_reader")["indexes"]]
        self.assertEqual(names, ["a_resumes"])
        self.req("GET", "/vectors/indexes/eu_resumes", status=404, who="a_reader")
        evals = [e["eval"] for e in self.req("GET", "/vectors/hnsw/evals", who="a_reader")["evals"]]
        self.assertNotIn("eu_eval", evals)

    # ---- catalog and journal -----------------------------------------------------------------

    def test_catalog_and_journal(self):
        for me, other in (("a", "eu"), ("eu", "a")):
            who = me + "_reader"
            names = sorted(d["name"] for d in
                           self.req("GET", "/catalog/datasets", who=who)["datasets"])
            self.assertEqual(names, [me + "_orders", me + "_people"])
            for path in ("/catalog/datasets/{}_people", "/catalog/datasets/{}_people/versions",
                         "/datasets/{}_people/rows/1/history",
                         "/datasets/{}_people/changes?from_version=1",
                         "/journal/events?dataset={}_people"):
                self.req("GET", path.format(me), who=who)
                got = self.req("GET", path.format(other), status=404, who=who)["error"]
                unknown = self.req("GET", path.format("zz_nothing_here").replace(
                    "zz_nothing_here_people", "zz_nothing_here"), status=404, who=who)["error"]
                self.assertEqual(got["code"], unknown["code"], path)
                self.assertEqual(re.sub(r"'[^']*'", "'X'", got["message"]),
                                 re.sub(r"'[^']*'", "'X'", unknown["message"]), path)
                self.assertEqual(got.get("hint"), unknown.get("hint"), path)
                self.assertNotIn("client_" + other, json.dumps(got))
            # writes into the other's dataset: as absent, its bucket never named
            st, _, got = self.srv.request("POST", "/datasets/%s_people/rows" % other,
                                          who=me + "_writer",
                                          body={"upsert": [{"id": 1, "name": "x"}]})
            self.assertEqual((st, got["error"]["code"]), (404, "dataset_not_found"), got)
            self.assertNotIn("client_" + other, json.dumps(got))
            st, _, got = self.srv.request(
                "POST", "/ingest/file?dataset=%s_orders&format=csv&mode=append" % other,
                body=orders_csv(), who=me + "_writer", headers={"Content-Type": "text/csv"})
            self.assertEqual((st, got["error"]["code"]), (404, "dataset_not_found"), got)
            self.assertNotIn("client_" + other, json.dumps(got))
        # the journal without dataset= is the admin's
        self.req("GET", "/journal/events", who="owner")

    # ---- tools and MCP -----------------------------------------------------------------------

    def test_tools(self):
        for me, other in (("a", "eu"), ("eu", "a")):
            who = me + "_agent"
            listed = [t["name"] for t in self.req("GET", "/tools", who=who)["tools"]
                      if t["kind"] != "builtin"]
            self.assertEqual(listed, [me + "_by_city"])
            got = self.req("POST", "/tools/%s_by_city/call" % me, {"arguments": {"city": "Paris"}},
                           who=who)
            self.assertTrue(got["result"]["rows"])
            got = self.req("POST", "/tools/%s_by_city/call" % other,
                           {"arguments": {"city": "Paris"}}, 404, who=who)["error"]
            unknown = self.req("POST", "/tools/zz_nothing_here/call",
                               {"arguments": {"city": "Paris"}}, 404, who=who)["error"]
            self.assertEqual(got["code"], "tool_not_found")
            self.assertEqual(got["message"].replace(other + "_by_city", "X"),
                             unknown["message"].replace("zz_nothing_here", "X"))
            self.assertEqual(got.get("hint"), unknown.get("hint"))
            self.assertNotIn(other + "_people", json.dumps(got))
            self.req("GET", "/tools/%s_by_city" % other, status=404, who=who)

    def mcp(self, who, method, params=None):
        h = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        st, hdr, res = self.srv.request("POST", "/mcp", who=who, headers=h, body={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}})
        self.assertEqual(st, 200, res)
        h.update({"Mcp-Session-Id": hdr["mcp-session-id"], "MCP-Protocol-Version": "2025-06-18"})
        msg = {"jsonrpc": "2.0", "id": 2, "method": method}
        if params is not None:
            msg["params"] = params
        return self.srv.request("POST", "/mcp", who=who, headers=h, body=msg)

    def test_mcp(self):
        for me, other in (("a", "eu"), ("eu", "a")):
            who = me + "_reader"
            st, _, res = self.mcp(who, "resources/list")
            self.assertEqual(st, 200, res)
            uris = sorted(r["uri"] for r in res["result"]["resources"]
                          if r["uri"].startswith("lakehouse://datasets/"))
            self.assertEqual(uris, ["lakehouse://datasets/%s_orders" % me,
                                    "lakehouse://datasets/%s_people" % me])
            st, _, res = self.mcp(who, "resources/read",
                                  {"uri": "lakehouse://datasets/%s_people" % me})
            self.assertEqual(st, 200, res)
            st, _, got = self.mcp(who, "resources/read",
                                  {"uri": "lakehouse://datasets/%s_people" % other})
            st2, _, unknown = self.mcp(who, "resources/read",
                                       {"uri": "lakehouse://datasets/zz_nothing_here"})
            self.assertEqual(st, st2)
            self.assertEqual(got["error"]["code"], unknown["error"]["code"])
            self.assertEqual(got["error"]["message"], unknown["error"]["message"])
            self.assertNotIn("client_" + other, json.dumps(got))
            # tools/list of the agent holds only its tenant's tools
            st, _, res = self.mcp(me + "_agent", "tools/list")
            names = [t["name"] for t in res["result"]["tools"] if not t["name"].startswith("ws_")]
            self.assertEqual(names, [me + "_by_city"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
