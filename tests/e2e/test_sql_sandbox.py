"""End-to-end: user SQL names datasets, never files.

POST /query may call only the table functions on the allow-list (range, unnest, ...);
datasets are reachable only as views. File-reading functions (read_*, glob, parquet_*,
sniff_csv), replacement scans ('file.parquet' as a table), and the functions and views
that show the server's settings or paths are refused with 403 sql_forbidden, even for
files inside the allowed folders. Spill goes under data_dir, capped by
[engine] spill_bytes. Dataset names that shadow schemas, catalogs, system views or SQL
keywords are refused at create."""
import glob
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER = "tok-admin-sandbox-0001", "tok-reader-sandbox-0001"
PRINCIPALS = [("owner", ADMIN, ["admin"]), ("analyst", READER, ["reader"])]


class SandboxBase(harness.ServerTestCase):
    principals = PRINCIPALS

    def q(self, body, who="analyst"):
        return self.srv.request("POST", "/query", body=body, who=who)

    def rows(self, sql, **extra):
        body = dict({"sql": sql}, **extra)
        st, _, res = self.q(body)
        self.assertEqual(st, 200, (sql, res))
        return res["rows"]

    def refused(self, sql, fmt="json"):
        st, _, res = self.q({"sql": sql, "format": fmt})
        self.assertEqual(st, 403, (sql, fmt, res))
        e = res["error"]
        self.assertEqual(e["code"], "sql_forbidden", (sql, res))
        self.assertTrue(e["message"] and e.get("hint"), res)
        # the answer never shows where the server keeps its files (unless the query did)
        if self.srv.data_dir not in sql:
            self.assertNotIn(self.srv.data_dir, str(res), (sql, res))
        return e

    def ingest(self, name, text, mode="create"):
        path = "/ingest/file?" + urllib.parse.urlencode({"dataset": name, "format": "csv",
                                                         "mode": mode})
        return self.srv.request("POST", path, body=text, who="owner",
                                headers={"Content-Type": "text/csv"})


class FilesRefused(SandboxBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for name, text in (("people", "id,name,city\n1,ann,oslo\n2,bob,rome\n3,cy,oslo\n"),
                           ("orders", "oid,person,amount\n10,1,5.5\n11,1,2.5\n12,3,7\n")):
            st, _, res = cls.ingest(cls, name, text)
            assert st == 201, res
        bucket = os.path.join(cls.srv.data_dir, "buckets", "primary")
        cls.data_file = glob.glob(os.path.join(bucket, "datasets", "people", "data", "*.parquet"))[0]
        cls.manifest = glob.glob(os.path.join(bucket, "datasets", "people", "_manifest", "*"))[0]
        # a CSV inside an allowed folder, for sniff_csv and read_csv
        cls.csv = os.path.join(bucket, "datasets", "people", "data", "x.csv")
        with open(cls.csv, "w") as f:
            f.write("a,b\n1,2\n")
        cls.results = os.path.join(cls.srv.data_dir, "cache", "results")

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.csv)
        super().tearDownClass()

    def test_file_functions_refused(self):
        d, m = self.data_file, self.manifest
        for sql in ("SELECT * FROM read_parquet('%s')" % d,
                    "SELECT * FROM read_parquet('%s')" % m,
                    "SELECT * FROM parquet_scan('%s')" % d,
                    "SELECT * FROM glob('**')",
                    "SELECT * FROM glob('%s/**')" % self.srv.data_dir,
                    "SELECT * FROM glob('%s/*')" % self.results,
                    "SELECT * FROM parquet_metadata('%s')" % d,
                    "SELECT * FROM parquet_schema('%s')" % d,
                    "SELECT * FROM parquet_file_metadata('%s')" % d,
                    "SELECT * FROM parquet_kv_metadata('%s')" % m,
                    "SELECT * FROM sniff_csv('%s')" % self.csv,
                    "SELECT * FROM read_csv('%s')" % self.csv,
                    "SELECT * FROM read_csv_auto('%s')" % self.csv,
                    "SELECT * FROM read_json('%s')" % self.csv,
                    "SELECT * FROM read_ndjson_objects('%s')" % self.csv,
                    "SELECT * FROM read_text('%s')" % self.csv,
                    "SELECT * FROM read_blob('%s')" % d,
                    # SQL text run by a function would escape the check
                    "SELECT * FROM query('SELECT 1')",
                    "SELECT * FROM query_table('people')",
                    # hidden inside other parts of a statement
                    "WITH x AS (SELECT * FROM read_parquet('%s')) SELECT * FROM x" % d,
                    "SELECT * FROM people JOIN read_parquet('%s') USING (id)" % d,
                    "SELECT (SELECT count(*) FROM read_parquet('%s')) AS n" % d,
                    "SELECT * FROM people WHERE id IN (SELECT id FROM read_parquet('%s'))" % d,
                    "SELECT 1 AS a UNION ALL SELECT count(*) FROM glob('**')",
                    "SELECT * FROM READ_PARQUET('%s')" % d,
                    "SELECT * FROM main.read_parquet('%s')" % d,
                    "SELECT * FROM system.main.read_parquet('%s')" % d,
                    # DESCRIBE / SUMMARIZE as a table: they read what they name
                    "SELECT * FROM (SUMMARIZE people)",
                    "SELECT * FROM (DESCRIBE SELECT * FROM people)"):
            self.refused(sql)
        # the other result paths admit the same way
        for fmt in ("parquet", "csv", "ndjson"):
            self.refused("SELECT * FROM read_parquet('%s')" % d, fmt=fmt)

    def test_replacement_scans_refused(self):
        """A string (or quoted name) that looks like a file, used as a table, would make
        DuckDB read that file."""
        d = self.data_file
        rel = os.path.relpath(d, self.srv.dir)  # the server runs in srv.dir
        for sql in ("SELECT * FROM '%s'" % d, 'SELECT * FROM "%s"' % d,
                    "FROM '%s'" % d, "SELECT * FROM '%s'" % rel,
                    "SELECT * FROM '%s'" % self.csv, "SELECT * FROM '%s/*.parquet'"
                    % os.path.dirname(d), "SELECT * FROM people, '%s' AS f" % d,
                    "SELECT * FROM 'people.parquet'"):
            self.refused(sql)
        # schema.table spelled like a file name: never a file
        st, _, res = self.q({"sql": "SELECT * FROM main.parquet"})
        self.assertIn(st, (400, 403), res)

    def test_server_state_refused(self):
        for sql in ("SELECT current_setting('temp_directory') AS t",
                    "SELECT current_setting('allowed_directories') AS t",
                    "SELECT * FROM duckdb_settings()",
                    "SELECT * FROM pg_settings",
                    "SELECT * FROM pg_catalog.pg_settings",
                    "SELECT * FROM duckdb_databases()",
                    "SELECT * FROM duckdb_databases",
                    "SELECT * FROM duckdb_extensions()",
                    "SELECT * FROM duckdb_temporary_files()",
                    "SELECT * FROM duckdb_views()",
                    "SELECT * FROM duckdb_views",
                    "SELECT * FROM system.main.duckdb_views",
                    "SELECT * FROM information_schema.views",
                    "SELECT * FROM information_schema.tables",
                    "SELECT * FROM pragma_database_list",
                    "SELECT * FROM pragma_database_list()",
                    "SELECT * FROM pragma_storage_info('people')",
                    "SELECT * FROM sqlite_master",
                    "SELECT pg_get_viewdef(1) AS v",
                    "SELECT json_serialize_plan('SELECT * FROM people') AS p",
                    "SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))",
                    "SELECT getvariable('x') AS v",
                    "SELECT write_log('x') AS v"):
            self.refused(sql)

    def test_datasets_and_values_still_work(self):
        self.assertEqual(self.rows("SELECT name FROM people ORDER BY id"),
                         [{"name": "ann"}, {"name": "bob"}, {"name": "cy"}])
        self.assertEqual(self.rows('SELECT count(*) AS n FROM main.people p, "orders" o '
                                   "WHERE o.person = p.id"), [{"n": 3}])
        self.assertEqual(
            self.rows("WITH big AS (SELECT person, sum(amount) AS s FROM orders GROUP BY 1) "
                      "SELECT p.name, b.s FROM people p JOIN big b ON b.person = p.id "
                      "ORDER BY b.s DESC"),
            [{"name": "ann", "s": 8.0}, {"name": "cy", "s": 7.0}])
        self.assertEqual(self.rows("SELECT name FROM people WHERE id IN "
                                   "(SELECT person FROM orders WHERE amount > 6)"),
                         [{"name": "cy"}])
        self.assertEqual(self.rows("SELECT sum(i) AS s FROM range(5) t(i)"), [{"s": 10}])
        self.assertEqual(self.rows("SELECT count(*) AS n FROM generate_series(1, 10)"), [{"n": 10}])
        self.assertEqual(self.rows("SELECT * FROM unnest([3, 4]) AS t(x)"), [{"x": 3}, {"x": 4}])
        self.assertEqual(self.rows("SELECT unnest([1, 2]) AS x"), [{"x": 1}, {"x": 2}])
        self.assertEqual(self.rows("SELECT a FROM (VALUES (1), (2)) v(a) ORDER BY a"),
                         [{"a": 1}, {"a": 2}])
        self.assertEqual(self.rows("SELECT count(*) AS n FROM json_each('{\"a\":1,\"b\":2}')"),
                         [{"n": 2}])
        # words of the refused functions as values and names are just text
        self.assertEqual(self.rows("SELECT 'read_parquet(''/etc/passwd'')' AS \"glob\""),
                         [{"glob": "read_parquet('/etc/passwd')"}])
        self.assertEqual(self.rows("SELECT list_transform([1, 2], x -> x * 2) AS l, "
                                   "row_number() OVER (ORDER BY id) AS r FROM people "
                                   "ORDER BY id LIMIT 1"), [{"l": [2, 4], "r": 1}])
        self.assertEqual(self.rows("SELECT city, count(*) AS n FROM people GROUP BY city "
                                   "ORDER BY city"), [{"city": "oslo", "n": 2},
                                                      {"city": "rome", "n": 1}])
        # a recursive CTE, and the journal view
        self.assertEqual(self.rows("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL "
                                   "SELECT n + 1 FROM c WHERE n < 4) SELECT max(n) AS m FROM c"),
                         [{"m": 4}])
        st, _, res = self.q({"sql": "SELECT count(*) AS n FROM _events"})
        self.assertEqual(st, 200, res)
        # time travel runs on views of its own
        self.assertEqual(self.rows("SELECT count(*) AS n FROM people", as_of={"version": 1}),
                         [{"n": 3}])
        # Parquet and CSV answers
        st, _, res = self.q({"sql": "SELECT * FROM people", "format": "parquet"})
        self.assertEqual(st, 200)
        st, _, res = self.q({"sql": "SELECT * FROM range(3)", "format": "csv"})
        self.assertEqual(st, 200)

    def test_refusal_names_what(self):
        e = self.refused("SELECT * FROM read_parquet('%s')" % self.data_file)
        self.assertIn("read_parquet", e["message"] + e.get("detail", ""))
        e = self.refused("SELECT * FROM '%s'" % self.data_file)
        self.assertIn("file", e["message"] + e.get("detail", ""))


class ReservedNames(SandboxBase):
    def test_shadowing_names_refused_at_create(self):
        for name, why in (("main", "schema"), ("system", "catalog"), ("temp", "catalog"),
                          ("pg_catalog", "schema"), ("information_schema", "schema"),
                          ("select", "keyword"), ("from", "keyword"), ("table", "keyword"),
                          ("join", "keyword"), ("pg_settings", "system view"),
                          ("duckdb_tables", "system view")):
            st, _, res = self.ingest(name, "a\n1\n")
            self.assertEqual(st, 400, (name, res))
            e = res["error"]
            self.assertEqual(e["code"], "reserved_name", res)
            self.assertIn(name, e["message"])
            self.assertIn(why, e["message"])
            self.assertTrue(e.get("hint"), res)
            st, _, res = self.srv.request("GET", "/catalog/datasets/%s" % name, who="owner")
            self.assertEqual(st, 404, res)
        # unreserved keywords stay usable as names
        for name in ("data", "name", "year", "position"):
            st, _, res = self.ingest(name, "a\n1\n")
            self.assertEqual(st, 201, (name, res))
            self.assertEqual(self.rows("SELECT a FROM %s" % name), [{"a": 1}])


class Spill(SandboxBase):
    """A query that needs more memory than it has spills under data_dir/spill, never into
    the working directory (the cap, [engine] spill_bytes, is checked by the engine's unit
    test test_query_allow.c: how much a query spills is DuckDB's to choose)."""
    server_env = {"LAKEHOUSE_ENGINE_MEMORY_LIMIT": "48MB", "LAKEHOUSE_ENGINE_THREADS": "2",
                  "LAKEHOUSE_ENGINE_QUERY_TIMEOUT_MS": "60000"}
    SORT = ("SELECT count(*) AS n, max(s) AS m FROM (SELECT i, md5(i::VARCHAR) AS s "
            "FROM range(2500000) t(i) ORDER BY s LIMIT 2000000)")

    def spill_dir(self):
        return os.path.join(self.srv.data_dir, "spill", "user")

    def test_1_spill_goes_under_data_dir(self):
        seen, stop = set(), threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    seen.update(os.listdir(self.spill_dir()))
                except OSError:
                    pass
                time.sleep(0.005)
        t = threading.Thread(target=watch)
        t.start()
        try:
            st, _, res = self.q({"sql": self.SORT})
        finally:
            stop.set()
            t.join()
        self.assertEqual(st, 200, res)
        self.assertEqual(res["rows"][0]["n"], 2000000)
        self.assertTrue(seen, "no spill file appeared in %s" % self.spill_dir())
        self.assertFalse(os.path.exists(os.path.join(self.srv.dir, ".tmp")))


if __name__ == "__main__":
    unittest.main()
