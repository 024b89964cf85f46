"""End-to-end: the audit trail of agent tool calls. GET /audit and GET /audit/{call_id}
are for admins only (401 without a token, 403 for readers and agents); bad parameters are
400s naming the parameter; the `_audit` view answers non-admins exactly as a table that
does not exist would; and records appended by a process killed with SIGKILL right after
its appends returned are listed, and shipped to the bucket, once a server (itself killed
with SIGKILL before) starts again — a torn last line is dropped, the rest kept."""
import glob
import json
import os
import signal
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER, AGENT = "tok-admin-audit-0001", "tok-reader-audit-0001", "tok-agent-audit-0001"
CRASH_BIN = os.environ.get("LH_AUDIT_CRASH_BIN",
                           os.path.join(os.path.dirname(__file__), "../../build/audit_crash"))


def audit_path(**params):
    return "/audit" + ("?" + urllib.parse.urlencode(params) if params else "")


class AuditTrail(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("analyst", READER, ["reader"]),
                  ("bot", AGENT, ["agent"])]

    def req(self, method, path, body=None, who="owner"):
        return self.srv.request(method, path, body=body, who=who)

    def query(self, sql, who="owner"):
        return self.req("POST", "/query", {"sql": sql}, who=who)

    def list_all(self, **params):
        records, cursor, pages = [], None, 0
        while True:
            p = dict(params)
            if cursor:
                p["cursor"] = cursor
            st, _, body = self.req("GET", audit_path(**p))
            self.assertEqual(st, 200, body)
            records += body["records"]
            pages += 1
            cursor = body["next"]
            if cursor is None:
                return records, pages

    # ---- who may read -------------------------------------------------------------------------

    def test_1_admins_only(self):
        st, _, body = self.srv.request("GET", "/audit")
        self.assertEqual(st, 401, body)
        for who in ("analyst", "bot"):
            for path in ("/audit", "/audit/some-call"):
                st, _, body = self.req("GET", path, who=who)
                self.assertEqual(st, 403, (who, path, body))
                self.assertEqual(body["error"]["code"], "forbidden")
        st, _, body = self.req("GET", "/audit")
        self.assertEqual(st, 200, body)
        self.assertIn("records", body)
        self.assertIn("next", body)
        st, _, body = self.req("GET", "/audit/no-such-call")
        self.assertEqual(st, 404, body)
        self.assertEqual(body["error"]["code"], "audit_record_not_found")

    def test_2_bad_parameters(self):
        cases = [
            ({"since": "yesterday"}, "invalid_parameter", "since"),
            ({"until": "2026-13-01"}, "invalid_parameter", "until"),
            ({"since": "2026-03-02", "until": "2026-03-01"}, "invalid_parameter", "since"),
            ({"limit": "0"}, "invalid_parameter", "limit"),
            ({"limit": "1001"}, "invalid_parameter", "limit"),
            ({"limit": "ten"}, "invalid_parameter", "limit"),
            ({"outcome": "maybe"}, "invalid_parameter", "outcome"),
            ({"tool": ""}, "invalid_parameter", "tool"),
            ({"colour": "red"}, "invalid_parameter", "colour"),
            ({"cursor": "garbage"}, "invalid_cursor", "cursor"),
            ({"cursor": "v1.12.zz"}, "invalid_cursor", "cursor"),
        ]
        for params, code, named in cases:
            st, _, body = self.req("GET", audit_path(**params))
            self.assertEqual(st, 400, (params, body))
            self.assertEqual(body["error"]["code"], code, (params, body))
            self.assertIn(named, body["error"]["message"], (params, body))

    # ---- the view ----------------------------------------------------------------------------

    def test_3_view_admins_only(self):
        sql = "SELECT count(*) AS n FROM _audit"
        for _ in range(2):  # the second may reuse a kept statement
            st, _, body = self.query(sql)
            self.assertEqual(st, 200, body)
        st, _, refused = self.query(sql, who="analyst")
        self.assertEqual(st, 400, refused)
        self.assertIn("Table with name _audit does not exist", refused["error"]["detail"])
        st, _, missing = self.query("SELECT count(*) AS n FROM _no_such_table", who="analyst")
        self.assertEqual(st, 400, missing)
        self.assertEqual(refused["error"]["code"], missing["error"]["code"])
        self.assertEqual(refused["error"]["message"], missing["error"]["message"])
        # DuckDB's own words (its "did you mean" follows the name typed, so not compared)
        self.assertEqual(refused["error"]["detail"].split("\n")[0].replace("_audit", "X"),
                         missing["error"]["detail"].split("\n")[0].replace("_no_such_table", "X"))
        self.assertNotIn("Did you mean \"_audit\"", refused["error"]["detail"])
        # hidden inside a subquery or a join too
        st, _, body = self.query("SELECT 1 AS x WHERE EXISTS (SELECT 1 FROM _audit)",
                                 who="analyst")
        self.assertEqual(st, 400, body)
        self.assertIn("does not exist", body["error"]["detail"])
        # agents may not query at all
        st, _, body = self.query(sql, who="bot")
        self.assertEqual(st, 403, body)

    def test_3b_search_filter_gated(self):
        """A search filter is user SQL too: `_audit` in it is as absent for a reader."""
        rows = "id,note\n" + "".join("%d,note %d\n" % (i, i) for i in range(1, 6))
        st, _, b = self.req("POST", "/ingest/file?dataset=notes&format=csv&primary_key=id", rows)
        self.assertEqual(st, 201, b)
        st, _, b = self.req("POST", "/vectors/indexes", {
            "name": "notes_idx", "dataset": "notes", "id_column": "id", "text_column": "note",
            "model": "builtin", "metric": "l2", "async": False})
        self.assertEqual(st, 201, b)
        q = {"query": "note", "k": 3, "filter": "id > (SELECT count(*) FROM _audit)"}
        st, _, body = self.req("POST", "/vectors/indexes/notes_idx/search", q, who="analyst")
        self.assertEqual(st, 400, body)
        self.assertIn("Table with name _audit does not exist", body["error"]["detail"])
        st, _, body = self.req("POST", "/vectors/indexes/notes_idx/search", q)
        self.assertEqual(st, 200, body)

    # ---- durability ----------------------------------------------------------------------------

    def test_4_survives_kill_9(self):
        self.assertEqual(self.srv.stop(sig=signal.SIGKILL), -signal.SIGKILL)
        proc = subprocess.run([CRASH_BIN, self.srv.config, "5", "crash"], capture_output=True,
                              timeout=60, cwd=self.srv.dir)
        self.assertEqual(proc.returncode, -signal.SIGKILL, proc.stderr)
        self.assertEqual(proc.stdout.strip(), b"ok")
        # its writes of a sixth record were cut short by the crash
        audit_dir = os.path.join(self.srv.data_dir, "audit")
        segments = [p for p in sorted(glob.glob(os.path.join(audit_dir, "seg_*.jsonl")))
                    if os.path.getsize(p) > 0]
        self.assertEqual(len(segments), 1, segments)
        with open(segments[0], "ab") as f:
            f.write(b'{"call_id":"crash-torn","ts":"2026-03-01T0')
        self.srv.start()

        records, pages = self.list_all(tool="crash_test", limit="2")
        self.assertEqual(pages, 3)
        self.assertEqual(sorted(r["call_id"] for r in records),
                         ["crash-%d" % i for i in range(5)])
        self.assertEqual([r["call_id"] for r in records],
                         sorted((r["call_id"] for r in records),
                                key=lambda c: [x for x in records if x["call_id"] == c][0]["ts"],
                                reverse=True))
        st, _, one = self.req("GET", "/audit/crash-3")
        self.assertEqual(st, 200, one)
        self.assertEqual(one["arguments"], {"i": 3})
        self.assertEqual(one["principal"], "agent1")
        st, _, body = self.req("GET", "/audit/crash-torn")
        self.assertEqual(st, 404, body)
        self.assertTrue(any("dropped an incomplete last record" in line.get("msg", "")
                            for line in self.srv.log_lines()))

        # shipped to the primary bucket at start, once
        batches = glob.glob(os.path.join(self.srv.data_dir, "buckets", "primary", "_audit",
                                         "batch_*.jsonl"))
        shipped = []
        for path in batches:
            with open(path) as f:
                shipped += [json.loads(line)["call_id"] for line in f]
        self.assertEqual(sorted(c for c in shipped if c.startswith("crash-")),
                         ["crash-%d" % i for i in range(5)])
        st, _, health = self.srv.request("GET", "/health")
        self.assertEqual(health["audit"]["pending"], 0, health)
        self.assertGreaterEqual(health["audit"]["shipped_records"], 5, health)

        # filters over the shipped records
        self.assertEqual(len(self.list_all(principal="agent1", outcome="ok")[0]), 5)
        self.assertEqual(len(self.list_all(outcome="failed")[0]), 0)
        self.assertEqual(len(self.list_all(tool="crash_test", until="2000-01-01")[0]), 0)
        self.assertEqual(len(self.list_all(tool="crash_test", since="2000-01-01T00:00:00Z")[0]),
                         5)
        # and the view
        st, _, body = self.query("SELECT count(*) AS n, min(roles[1]) AS role, "
                                 "sum(\"rows\") AS r FROM _audit WHERE tool = 'crash_test'")
        self.assertEqual(st, 200, body)
        row = body["rows"][0]
        if isinstance(row, list):
            row = dict(zip([c["name"] for c in body["columns"]], row))
        self.assertEqual((row["n"], row["role"], row["r"]), (5, "agent", 5), body)


if __name__ == "__main__":
    unittest.main()
