"""End-to-end: POST /query — formats, limits, streaming, and the SQL sandbox."""
import csv
import io
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER, AGENT = "tok-admin-query-0001", "tok-reader-query-0001", "tok-agent-query-0001"


class Query(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("analyst", READER, ["reader"]),
                  ("bot", AGENT, ["agent"])]
    server_env = {"LAKEHOUSE_ENGINE_QUERY_TIMEOUT_MS": "1500",
                  "LAKEHOUSE_ENGINE_MAX_RESULT_BYTES": "2000000"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a file inside the data dir (readable) and one outside (not)
        os.makedirs(os.path.join(cls.srv.data_dir, "buckets", "primary", "datasets"), exist_ok=True)
        cls.inside = os.path.join(cls.srv.data_dir, "buckets", "primary", "datasets", "inside.csv")
        with open(cls.inside, "w") as f:
            f.write("a,b\n1,x\n2,y\n")
        cls.outside = os.path.join(cls.srv.dir, "outside.csv")
        with open(cls.outside, "w") as f:
            f.write("secret\nsauce\n")

    def q(self, body, who="analyst"):
        return self.srv.request("POST", "/query", body=body, who=who)

    def err(self, body, status, code, who="analyst"):
        st, h, res = self.q(body, who=who)
        self.assertEqual(st, status, res)
        self.assertEqual(res["error"]["code"], code, res)
        return res

    def load(self, name, text, mode):
        path = "/ingest/file?" + urllib.parse.urlencode({"dataset": name, "format": "csv",
                                                         "mode": mode})
        st, _, res = self.srv.request("POST", path, body=text, who="owner",
                                      headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), res)

    def open_files(self, dataset):
        """The server's open descriptors on a dataset's data files (Linux /proc)."""
        fd_dir = "/proc/%d/fd" % self.srv.proc.pid
        data = os.path.join("datasets", dataset, "data") + os.sep
        held = set()
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if data in target:
                held.add(target)
        return held

    def test_repeated_text_follows_the_data(self):
        """The server keeps prepared statements for repeated query texts: the same text
        must still see every change of the data (rows, schema, types, the dataset gone)."""
        sql = {"sql": "SELECT * FROM shifting ORDER BY 1"}
        csv_sql = {"sql": "SELECT * FROM shifting ORDER BY 1", "format": "csv"}
        self.load("shifting", "a,b\n1,x\n2,y\n", "create")
        for _ in range(6):  # enough to come back to the same pooled connection
            st, _, res = self.q(sql)
            self.assertEqual(st, 200, res)
            self.assertEqual(res["rows"], [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
            st, _, text = self.q(csv_sql)
            self.assertEqual(text, "a,b\n1,x\n2,y\n")
        self.load("shifting", "a,b\n3,z\n", "append")
        for _ in range(6):
            st, _, res = self.q(sql)
            self.assertEqual([r["a"] for r in res["rows"]], [1, 2, 3])
        held = self.open_files("shifting")
        self.assertTrue(held, "kept statements hold their first file open")
        # another schema under the same name: other columns, other types
        self.load("shifting", "a,c,d\n7,2024-01-02,[1]\n", "replace")
        # the replaced version's files are no longer held open by kept statements
        self.assertEqual(self.open_files("shifting") & held, set())
        for _ in range(6):
            st, _, res = self.q(sql)
            self.assertEqual(st, 200, res)
            self.assertEqual([c["name"] for c in res["columns"]], ["a", "c", "d"])
            self.assertEqual(res["columns"][1]["type"], "DATE")
            self.assertEqual(res["rows"], [{"a": 7, "c": "2024-01-02", "d": "[1]"}])
            st, _, text = self.q(csv_sql)
            self.assertEqual(text, "a,c,d\n7,2024-01-02,[1]\n")
        # a type rendered through to_json where every column was rendered natively before
        self.load("shifting", "a,t\n1,2024-01-02 03:04:05\n", "replace")
        for _ in range(6):
            st, _, res = self.q(sql)
            self.assertEqual(st, 200, res)
            self.assertEqual(res["columns"][1]["type"], "TIMESTAMP")
            self.assertEqual(res["rows"][0]["a"], 1)
            self.assertTrue(res["rows"][0]["t"].startswith("2024-01-02"), res)
        st, _, res = self.srv.request("DELETE", "/catalog/datasets/shifting", who="owner")
        self.assertEqual(st, 200, res)
        for _ in range(6):  # gone: the usual answer, never a stale result
            res = self.err(sql, 400, "invalid_sql")
            self.assertIn("shifting", res["error"]["detail"])
        self.load("shifting", "a,b\n5,q\n", "create")
        for _ in range(6):
            st, _, res = self.q(sql)
            self.assertEqual(res["rows"], [{"a": 5, "b": "q"}])

    def test_statement_ends(self):
        """Semicolons and comments after the statement are fine; inside strings, quoted
        names and dollar quotes they are text; a second statement is still refused."""
        cases = [
            ("SELECT 1 AS n; -- done", {"n": 1}),
            ("SELECT ';' AS s; /* note */ ;\n", {"s": ";"}),
            ("SELECT 'it''s -- not a comment' AS s;", {"s": "it's -- not a comment"}),
            ("SELECT $$a;--$$ AS s -- c", {"s": "a;--"}),
            ("SELECT $t$x$$;$t$ AS s;", {"s": "x$$;"}),
            ('SELECT 2 AS "a;--b";', {"a;--b": 2}),
            ("SELECT 1 /* a /* nested */ still */ AS n;", {"n": 1}),
            ("SELECT 1 --x\r+ 1 AS n", {"n": 2}),  # a carriage return ends a comment too
        ]
        for sql, row in cases:
            st, _, res = self.q({"sql": sql})
            self.assertEqual(st, 200, (sql, res))
            self.assertEqual(res["rows"], [row], sql)
        res = self.err({"sql": "SELECT 1; SELECT 2; -- two"}, 400, "invalid_sql")
        self.assertIn("one statement", res["error"]["message"])
        self.err({"sql": "SELECT 'unterminated; -- x"}, 400, "invalid_sql")
        self.err({"sql": "SELECT 1 /* open"}, 400, "invalid_sql")
        self.err({"sql": "-- only a comment\n;"}, 400, "invalid_sql")

    def test_setseed_stays_with_its_query(self):
        """setseed() seeds the connection's random numbers: a pooled connection must not
        carry that into another query."""
        seen = set()
        for _ in range(4):
            st, _, res = self.q({"sql": "SELECT setseed(0.5) AS s"})
            self.assertEqual(st, 200, res)
            st, _, res = self.q({"sql": "SELECT random() AS r"})
            self.assertEqual(st, 200, res)
            seen.add(res["rows"][0]["r"])
        self.assertGreater(len(seen), 1, "random() after setseed() repeats: %s" % seen)

    def test_json(self):
        st, h, res = self.q({"sql": "SELECT 1 AS n, 'a,b' AS s, [1, 2] AS l, DATE '2024-03-01' AS d, "
                                    "NULL AS z, 2.50::DECIMAL(5,2) AS m"})
        self.assertEqual(st, 200, res)
        self.assertEqual([c["name"] for c in res["columns"]], ["n", "s", "l", "d", "z", "m"])
        self.assertEqual(res["columns"][0]["type"], "INTEGER")
        self.assertEqual(res["rows"], [{"n": 1, "s": "a,b", "l": [1, 2], "d": "2024-03-01", "z": None,
                                        "m": 2.5}])
        self.assertEqual((res["row_count"], res["truncated"]), (1, False))

    def test_non_finite_numbers_are_null(self):
        # NaN and Infinity are not JSON: strict parsers must be able to read every answer
        sql = ("SELECT 'NaN'::DOUBLE AS a, 'inf'::DOUBLE AS b, -'inf'::FLOAT AS c, "
               "[1.5, 'nan'::DOUBLE] AS d, 'NaN -Infinity \\\" Infinity' AS s, {'x': 'inf'::DOUBLE} AS t")
        for fmt in ("json", "ndjson"):
            st, h, text = self.srv.request("POST", "/query", body={"sql": sql, "format": fmt},
                                           who="analyst")
            self.assertEqual(st, 200, text)
            raw = text if isinstance(text, str) else json.dumps(text)
            strict = json.loads(raw.splitlines()[0] if fmt == "ndjson" else raw,
                                parse_constant=lambda c: self.fail("bare %s in %s" % (c, fmt)))
            row = strict if fmt == "ndjson" else strict["rows"][0]
            self.assertEqual(row, {"a": None, "b": None, "c": None, "d": [1.5, None],
                                   "s": 'NaN -Infinity \\" Infinity', "t": {"x": None}})

    def test_ndjson_csv_and_limit(self):
        st, h, text = self.q({"sql": "SELECT range AS r FROM range(10) -- a trailing comment",
                              "format": "ndjson", "limit": 4})
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("application/x-ndjson"))
        self.assertEqual([json.loads(l)["r"] for l in text.splitlines()], [0, 1, 2, 3])
        st, h, text = self.q({"sql": "SELECT 'x,\"y\"' AS a, NULL AS b, 3 AS c;", "format": "csv"})
        self.assertEqual(st, 200)
        self.assertEqual(list(csv.reader(io.StringIO(text))), [["a", "b", "c"], ['x,"y"', "", "3"]])
        st, h, res = self.q({"sql": "SELECT * FROM range(7)", "limit": 5})
        self.assertEqual((len(res["rows"]), res["truncated"]), (5, True))
        st, h, res = self.q({"sql": "SELECT * FROM range(0)"})
        self.assertEqual((st, res["rows"], res["row_count"]), (200, [], 0))

    def test_parquet(self):
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        conn.request("POST", "/query", body=json.dumps({"sql": "SELECT range AS r, 'x' || range AS s FROM range(1000)",
                                                        "format": "parquet", "limit": 600}),
                     headers={"Authorization": "Bearer " + READER, "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.getheader("Content-Type"), "application/vnd.apache.parquet")
        self.assertEqual(resp.getheader("X-Lakehouse-Rows"), "600")
        self.assertTrue(data.startswith(b"PAR1") and data.endswith(b"PAR1"))
        # the file is real Parquet: ingest it back and query it as a dataset
        st, _, res = self.srv.request("POST", "/ingest/file?dataset=back&format=parquet", body=data,
                                      who="owner",
                                      headers={"Content-Type": "application/vnd.apache.parquet"})
        self.assertEqual(st, 201, res)
        st, h, res = self.q({"sql": "SELECT count(*) AS n, max(r) AS m FROM back"})
        self.assertEqual(res["rows"], [{"n": 600, "m": 599}])
        self.err({"sql": "COPY (SELECT 1) TO '/tmp/x.parquet'", "format": "parquet"}, 403, "sql_forbidden")
        self.err({"sql": "SELECT * FROM read_csv('/etc/passwd')", "format": "parquet"}, 403, "sql_forbidden")
        self.err({"sql": "SELECT count(*) FROM range(100000000000)", "format": "parquet"}, 408, "query_timeout")
        # stopped while it is written, not after: the file never grows far past the limit
        self.err({"sql": "SELECT md5(range::VARCHAR) || md5((range + 1)::VARCHAR) AS h FROM range(50000000)",
                  "format": "parquet", "limit": 50000000}, 413, "result_too_large")
        # nothing left in the work dir
        self.assertEqual([f for f in os.listdir(os.path.join(self.srv.data_dir, "cache", "results"))
                          if f.startswith("result-")], [])

    def test_large_result_streams(self):
        st, h, text = self.srv.request("POST", "/query", who="analyst",
                                       body={"sql": "SELECT range AS r FROM range(150000)",
                                             "format": "ndjson", "limit": 150000})
        self.assertEqual(st, 200)
        lines = text.splitlines()
        self.assertEqual(len(lines), 150000)
        self.assertEqual(json.loads(lines[-1]), {"r": 149999})

    def test_result_size_limit(self):
        # cut mid-stream: the NDJSON ends with an error line
        st, h, text = self.q({"sql": "SELECT repeat('x', 1000) AS s FROM range(5000)", "format": "ndjson",
                              "limit": 5000})
        self.assertEqual(st, 200)
        last = json.loads(text.splitlines()[-1])
        self.assertEqual(last["error"]["code"], "result_too_large")
        st, h, res = self.q({"sql": "SELECT repeat('x', 1000) AS s FROM range(5000)", "limit": 5000})
        self.assertEqual(res["error"]["code"], "result_too_large")
        # already too large in the first row: a 413 before any byte
        self.err({"sql": "SELECT repeat('x', 3000000) AS s"}, 413, "result_too_large")

    def test_timeout(self):
        self.err({"sql": "SELECT count(*) FROM range(100000000000)"}, 408, "query_timeout")
        # the server is fine afterwards
        self.assertEqual(self.q({"sql": "SELECT 1"})[0], 200)

    def test_sandbox(self):
        token = os.path.join(self.srv.data_dir, "admin.token")
        os.makedirs(os.path.join(self.srv.data_dir, "buckets", "primary", "_errors"), exist_ok=True)
        journal = os.path.join(self.srv.data_dir, "buckets", "primary", "_errors", "x.jsonl")
        with open(journal, "w") as f:
            f.write('{"bucket":"primary"}\n')
        for sql in ("SELECT * FROM read_csv('/etc/passwd')",
                    "SELECT * FROM read_csv('%s')" % self.outside,
                    # the data dir itself is off limits: tokens, journals, bodies in flight
                    "SELECT content FROM read_text('%s')" % token,
                    "SELECT * FROM read_json('%s')" % journal,
                    "SELECT * FROM glob('%s/**')" % self.srv.data_dir,
                    # uploads in flight and ingest scratch files belong to the server
                    "SELECT * FROM glob('%s/work/*')" % self.srv.data_dir,
                    "SELECT * FROM read_csv('%s/datasets/../../../admin.token')"
                    % os.path.join(self.srv.data_dir, "buckets", "primary"),
                    "SELECT * FROM read_text('/etc/hostname')",
                    "SELECT * FROM glob('/etc/*')"):
            self.err({"sql": sql}, 403, "sql_forbidden")
        for sql in ("COPY (SELECT 1) TO '/tmp/lh-escape.csv'",
                    "COPY (SELECT 1) TO '%s'" % os.path.join(self.srv.data_dir, "written.csv"),
                    "ATTACH '/tmp/lh-escape.db'", "INSTALL httpfs", "LOAD httpfs",
                    "SET enable_external_access = true", "SET allowed_directories = ['/']",
                    "RESET lock_configuration", "PRAGMA enable_profiling",
                    "CREATE TABLE t (a INT)", "EXPORT DATABASE '/tmp/lh-exp'",
                    "CALL pragma_version()", "USE memory", "CHECKPOINT", "VACUUM"):
            self.err({"sql": sql}, 403, "sql_forbidden")
        # statements that do not even bind are refused as invalid; never run
        for sql in ("INSERT INTO t VALUES (1)", "DROP TABLE x", "DETACH nothing"):
            st, h, res = self.q({"sql": sql})
            self.assertIn((st, res["error"]["code"]), ((400, "invalid_sql"), (403, "sql_forbidden")))
        self.assertFalse(os.path.exists("/tmp/lh-escape.csv"))
        self.assertFalse(os.path.exists(os.path.join(self.srv.data_dir, "written.csv")))
        # files inside the data path are off limits too: user SQL names datasets, never
        # files (tests/e2e/test_sql_sandbox.py)
        self.err({"sql": "SELECT * FROM read_csv('%s') ORDER BY a" % self.inside}, 403,
                 "sql_forbidden")

    def test_bad_input(self):
        self.err({"sql": "SELECT 1; SELECT 2"}, 400, "invalid_sql")
        self.err({"sql": "SELEC 1"}, 400, "invalid_sql")
        self.err({"sql": "SELECT * FROM no_such_table"}, 400, "invalid_sql")
        self.err({"sql": "PRAGMA version"}, 400, "invalid_sql")
        self.err({"sql": "-- only a comment"}, 400, "invalid_sql")
        for body in ({}, {"sql": ""}, {"sql": 42}, {"sql": "SELECT 1", "format": "xml"}, {"sql": "SELECT 1", "format": "PARQUET"},
                     {"sql": "SELECT 1", "limit": 0}, {"sql": "SELECT 1", "limit": "10"},
                     {"sql": "SELECT 1", "limit": 1.5}, {"sql": "SELECT 1", "extra": True},
                     {"sql": "SELECT 1", "format": None}):
            self.err(body, 400, "invalid_parameter")
        st, h, res = self.srv.request("POST", "/query", body='{"sql": "SELECT 1"', who="analyst",
                                      headers={"Content-Type": "application/json"})
        self.assertEqual((st, res["error"]["code"]), (400, "invalid_json"))
        st, h, res = self.srv.request("POST", "/query", body='{"sql": "SELECT \\u0000 1"}',
                                      who="analyst", headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400, res)
        # agents use named tools, not raw SQL
        self.err({"sql": "SELECT 1"}, 403, "sql_not_allowed", who="bot")


class TimeTravel(unittest.TestCase):
    """as_of over many datasets: its own server, without Query's short time limit (a query
    over 258 datasets at an old version reads 258 manifests and files)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(principals=[("owner", ADMIN, ["admin"]),
                                             ("analyst", READER, ["reader"])]).start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        log = cls.srv.log_text()
        cls.srv.cleanup()
        assert rc == 0, "server exit status %s\n%s" % (rc, log[-3000:])

    q = Query.q
    err = Query.err
    load = Query.load

    def test_time_travel_names_any_number_of_datasets(self):
        """as_of pins every dataset the query names, however many: more than 256 of them,
        globally or one by one, and a name that is only text (a string, an alias) is not
        a dataset the query reads."""
        many = ["tt%03d" % i for i in range(257)]
        for name in many:
            self.load(name, "a\n1\n", "create")
        self.load("ttz", "a\n1\n", "create")      # version 1: one row
        _, _, ds = self.srv.request("GET", "/catalog/datasets/ttz/versions", who="analyst")
        v1_time = ds["versions"][0]["created_at"]
        self.load("ttz", "a\n2\n", "append")      # version 2: two rows
        self.load("ttlater", "a\n1\n", "create")  # did not exist at v1_time
        # the global form: ttz comes after 257 other named datasets
        sql = ("SELECT n FROM (SELECT 'z' AS d, count(*) AS n FROM ttz" +
               "".join(" UNION ALL SELECT 'x', count(*) FROM %s" % name for name in many) +
               ") WHERE d = 'z'")
        st, _, res = self.q({"sql": sql, "as_of": {"version": 1}})
        self.assertEqual(st, 200, res)
        self.assertEqual(res["rows"], [{"n": 1}])
        st, _, res = self.q({"sql": sql})
        self.assertEqual(res["rows"], [{"n": 2}])
        # the per-dataset form with more than 256 entries
        per = {name: {"version": 1} for name in many + ["ttz"]}
        st, _, res = self.q({"sql": sql, "as_of": {"datasets": per}})
        self.assertEqual(st, 200, res)
        self.assertEqual(res["rows"], [{"n": 1}])
        # names in strings and aliases are not datasets read: ttlater did not exist then
        st, _, res = self.q({"sql": "SELECT 'ttlater' AS ttlater, count(*) AS n FROM ttz",
                             "as_of": {"timestamp": v1_time}})
        self.assertEqual(st, 200, res)
        self.assertEqual(res["rows"], [{"ttlater": "ttlater", "n": 1}])
        # a dataset the query does read still has to have existed then
        self.err({"sql": "SELECT * FROM ttz, ttlater", "as_of": {"timestamp": v1_time}}, 404,
                 "dataset_not_found")
        self.err({"sql": "SELECT * FROM \"TTLATER\"", "as_of": {"timestamp": v1_time}}, 404,
                 "dataset_not_found")
        self.err({"sql": "SELECT * FROM ttz", "as_of": {"version": 3}}, 404, "version_not_found")
        self.err({"sql": "SELECT * FROM ttz", "as_of": {"datasets": {"nope": {"version": 1}}}},
                 404, "dataset_not_found")
        for as_of in ([], {"version": 0}, {"version": 1, "timestamp": "2026-01-01"},
                      {"datasets": []}, {"datasets": {"ttz": {"version": "1"}}}):
            self.err({"sql": "SELECT * FROM ttz", "as_of": as_of}, 400, "invalid_parameter")


if __name__ == "__main__":
    unittest.main(verbosity=2)
