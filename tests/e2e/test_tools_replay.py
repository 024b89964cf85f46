"""End-to-end: replaying a recorded tool call (POST /audit/{call_id}/replay). A sql call
replays at the dataset versions its record names, so it still matches after the data
changed; a call whose tool changed since replays at the tool version it used; a search
call replays on the index as it is now and says whether its dataset moved. Write calls,
refused calls and calls with redacted (x-sensitive) arguments are 409 not_replayable;
an unknown call id is 404; non-admins are 403; the replay is audited with via "replay"."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER, AGENT = "tok-admin-replay-001", "tok-reader-replay-01", "tok-agent-replay-001"

BY_CITY = {
    "name": "by_city", "description": "Candidates in a city",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["city"],
                     "properties": {"city": {"type": "string"}}},
    "kind": "sql",
    "binding": {"datasets": ["people"], "max_rows": 100,
                "query": "SELECT id, name, phone FROM people WHERE city = $city ORDER BY id"},
    "allow": {"roles": ["agent"]}, "rate": {"per_minute": 6000, "burst": 1000}}
SECRET = {
    "name": "by_secret", "description": "Look someone up by a secret",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["city"],
                     "properties": {"city": {"type": "string"},
                                    "pin": {"type": "string", "x-sensitive": True}}},
    "kind": "sql",
    "binding": {"datasets": ["people"], "max_rows": 10,
                "query": "SELECT id FROM people WHERE city = $city AND $pin IS NOT NULL"},
    "allow": {"roles": ["agent"]}}
SET_PHONE = {
    "name": "set_phone", "description": "Change a phone number",
    "input_schema": {"type": "object", "additionalProperties": False,
                     "required": ["id", "phone"],
                     "properties": {"id": {"type": "integer"}, "phone": {"type": "string"}}},
    "kind": "upsert", "binding": {"dataset": "people", "columns": ["phone"]},
    "allow": {"roles": ["agent"]}, "grants_write": True}
SEARCH = {
    "name": "find_people", "description": "Search people by notes",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["q"],
                     "properties": {"q": {"type": "string", "minLength": 1}}},
    "kind": "search",
    "binding": {"index": "notes", "query_param": "q", "k": 3, "include": ["name"]},
    "allow": {"roles": ["agent"]}}


class Replay(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("viewer", READER, ["reader"]),
                  ("bot", AGENT, ["agent"])]
    extra_toml = "\n[tools]\nmax_calls_per_minute = 100000\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rows = [{"id": i, "name": "P%d" % i, "city": ["Paris", "Lyon"][i % 2],
                 "phone": "555-%04d" % i, "notes": "%s engineer in %s" % (
                     ["python", "java"][i % 2], ["Paris", "Lyon"][i % 2])} for i in range(1, 21)]
        body = "".join(json.dumps(r) + "\n" for r in rows)
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=people&format=ndjson"
                                   "&primary_key=id", body=body, who="owner")
        assert st == 201, b
        st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "notes", "dataset": "people", "id_column": "id", "text_column": "notes",
            "model": "builtin"})
        assert st == 202, b
        for _ in range(600):
            st, _, job = cls.srv.request("GET", "/jobs/" + b["job_id"], who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                assert job["state"] == "succeeded", job
                break
            time.sleep(0.05)
        for d in (BY_CITY, SECRET, SET_PHONE, SEARCH):
            st, _, b = cls.srv.request("POST", "/tools", body=d, who="owner")
            assert st == 201, b

    def req(self, method, path, body=None, status=200, who="owner"):
        st, _, b = self.srv.request(method, path, body=body, who=who)
        self.assertEqual(st, status, b)
        return b

    def call(self, name, args, status=200):
        return self.req("POST", "/tools/%s/call" % name, {"arguments": args}, status, "bot")

    def replay(self, call_id, status=200, who="owner"):
        return self.req("POST", "/audit/%s/replay" % call_id, None, status, who)

    def version(self):
        return self.req("GET", "/catalog/datasets/people")["version"]

    def test_1_sql_replay_after_the_data_changed(self):
        v0 = self.version()
        first = self.call("by_city", {"city": "Paris"})
        # the data changes: a Paris row's phone, through the row API
        self.req("POST", "/datasets/people/rows", {"upsert": [{"id": 2, "phone": "999"}]}, 201)
        self.assertGreater(self.version(), v0)
        now = self.call("by_city", {"city": "Paris"})
        self.assertNotEqual(now["result"], first["result"])
        r = self.replay(first["call_id"])
        self.assertTrue(r["matches"], r)
        self.assertEqual(r["result_sha256"], r["original_sha256"])
        self.assertEqual(r["dataset_versions"], {"people": v0})
        self.assertTrue(r["at_recorded_versions"])
        self.assertEqual(r["call_id"], first["call_id"])
        # the replay is a call of its own, on record
        rec = self.req("GET", "/audit/" + r["replayed_call_id"])
        self.assertEqual(rec["via"], "replay")
        self.assertEqual(rec["replay_of"], first["call_id"])
        self.assertEqual(rec["principal"], "owner")
        self.assertEqual(rec["dataset_versions"], {"people": v0})
        self.assertEqual(rec["result_sha256"], r["original_sha256"])
        # the newer call replays at the newer version, and matches too
        r2 = self.replay(now["call_id"])
        self.assertTrue(r2["matches"], r2)
        self.assertEqual(r2["dataset_versions"], {"people": self.version()})

    def test_2_replay_at_the_old_tool_version(self):
        first = self.call("by_city", {"city": "Lyon"})
        old = self.req("GET", "/tools/by_city")["version"]
        changed = dict(BY_CITY)
        changed["binding"] = dict(BY_CITY["binding"],
                                  query="SELECT id, name FROM people WHERE city = $city "
                                        "ORDER BY id DESC")
        self.assertGreater(self.req("PUT", "/tools/by_city", changed)["version"], old)
        now = self.call("by_city", {"city": "Lyon"})
        self.assertNotEqual(now["result"], first["result"])
        r = self.replay(first["call_id"])
        self.assertTrue(r["matches"], r)
        self.assertEqual(r["tool_version"], old)
        self.assertEqual(self.req("GET", "/audit/" + r["replayed_call_id"])["tool_version"], old)
        self.req("PUT", "/tools/by_city", BY_CITY)

    def test_3_search_replay(self):
        first = self.call("find_people", {"q": "python engineer"})
        r = self.replay(first["call_id"])
        self.assertTrue(r["matches"], r)
        self.assertTrue(r["at_recorded_versions"])
        self.req("POST", "/datasets/people/rows", {"upsert": [{"id": 3, "phone": "111"}]}, 201)
        r = self.replay(first["call_id"])
        self.assertFalse(r["at_recorded_versions"], r)

    def test_4_not_replayable(self):
        w = self.call("set_phone", {"id": 1, "phone": "123"})
        e = self.replay(w["call_id"], 409)["error"]
        self.assertEqual(e["code"], "not_replayable")
        self.assertIn("changes rows", e["message"])
        s = self.call("by_secret", {"city": "Paris", "pin": "0000"})
        e = self.replay(s["call_id"], 409)["error"]
        self.assertEqual(e["code"], "not_replayable")
        self.assertIn("x-sensitive", e["message"])
        st, h, b = self.srv.request("POST", "/tools/by_city/call",
                                    body={"arguments": {"town": "x"}}, who="bot")
        self.assertEqual(st, 400, b)
        refused = h.get("x-lakehouse-call-id")
        self.assertTrue(refused)
        e = self.replay(refused, 409)["error"]
        self.assertEqual(e["code"], "not_replayable")
        self.assertIn("not answered", e["message"])
        self.assertEqual(self.replay("call_nope", 404)["error"]["code"],
                         "audit_record_not_found")
        ok = self.call("by_city", {"city": "Paris"})
        for who in ("viewer", "bot"):
            self.assertEqual(self.replay(ok["call_id"], 403, who)["error"]["code"], "forbidden")
        st, _, _ = self.srv.request("POST", "/audit/%s/replay" % ok["call_id"])
        self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main()
