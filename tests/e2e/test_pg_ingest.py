"""End-to-end: POST /ingest/db against a real PostgreSQL server (initdb in a temp dir,
loopback port, stopped by PID): every mapped type round-trips (values compared through
SQL on both sides), COPY and cursor agree, a 1,000,000-row table ingests in flat memory
with one stream and with several, incremental appends follow the watermark, a table read
by several streams in one snapshot gives exactly the rows one stream gives and is never
torn by a concurrent writer, every failure (a stream's included) is a clear error that
leaves no version, no file and no connection, and no password appears anywhere."""
import json
import math
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import pgutil  # noqa: E402

ADMIN, READER = "tok-admin-pg-000001", "tok-reader-pg-00001"
APP_PASSWORD = "app-Pw-7c1e-do-not-leak"
SECRET_PASSWORD = "sec-Pw-51aa-from-secret-ref"

# (column, PostgreSQL type, lakehouse type, values as SQL literals)
TYPES = [
    ("c_smallint", "smallint", "SMALLINT", ["-32768", "32767", "0"]),
    ("c_int", "integer", "INTEGER", ["-2147483648", "2147483647", "42"]),
    ("c_bigint", "bigint", "BIGINT", ["-9223372036854775808", "9223372036854775807", "9007199254740993"]),
    ("c_numeric", "numeric(12,3)", "DECIMAL(12,3)", ["123456789.125", "-0.001", "0"]),
    ("c_numeric38", "numeric(38,10)", "DECIMAL(38,10)", ["1234567890123456789012345678.0123456789", "-1", "0.0000000001"]),
    ("c_numeric_free", "numeric", "VARCHAR", ["1e40", "'NaN'", "3.14159265358979323846264338327950288"]),
    ("c_real", "real", "FLOAT", ["1.5", "'Infinity'", "-3.25e-20"]),
    ("c_double", "double precision", "DOUBLE", ["'NaN'", "2.718281828459045", "-1e300"]),
    ("c_text", "text", "VARCHAR", ["'héllo, \"world\"'", "''", "E'line1\\nline2\\r\\n,\"q\"'"]),
    ("c_varchar", "varchar(20)", "VARCHAR", ["'v'", "'with space '", "'ümlaut'"]),
    ("c_char", "char(4)", "VARCHAR", ["'ab'", "'abcd'", "''"]),
    ("c_bool", "boolean", "BOOLEAN", ["true", "false", "true"]),
    ("c_date", "date", "DATE", ["'2024-02-29'", "'0044-03-15 BC'", "'infinity'"]),
    ("c_time", "time", "TIME", ["'00:00:00'", "'23:59:59.999999'", "'24:00:00'"]),
    ("c_timestamp", "timestamp", "TIMESTAMP", ["'2024-01-02 03:04:05.123456'", "'0044-03-15 12:00:00 BC'", "'-infinity'"]),
    ("c_timestamptz", "timestamptz", "TIMESTAMP WITH TIME ZONE", ["'2024-01-02 03:04:05+02'", "'2000-06-30 23:59:59.5-07:30'", "'infinity'"]),
    ("c_interval", "interval", "VARCHAR", ["'-1 year 2 mons -3 days 04:05:06.789'", "'0'", "'36 hours 0.000001 seconds'"]),
    ("c_uuid", "uuid", "UUID", ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "'00000000-0000-0000-0000-000000000000'", "gen_random_uuid()"]),
    ("c_json", "json", "JSON", ["'{\"a\": [1, 2.5, \"x\"]}'", "'[]'", "'\"s\"'"]),
    ("c_jsonb", "jsonb", "JSON", ["'{\"b\": null, \"c\": {\"d\": true}}'", "'1'", "'[{\"e\": \"ü\"}]'"]),
    ("c_bytea", "bytea", "BLOB", ["'\\x00ff41'::bytea", "''::bytea", "'\\x0a0d2c22'::bytea"]),
    ("c_mood", "mood", "VARCHAR", ["'happy'", "'sad'", "'ok'"]),
    ("c_int_arr", "integer[]", "INTEGER[]", ["'{1,NULL,3}'", "'{}'", "'{-5}'"]),
    ("c_text_arr", "text[]", "VARCHAR[]", ["'{\"a,b\",\"\",NULL,\"q\\\"uote\"}'", "'{}'", "'{x}'"]),
    ("c_num_arr", "numeric(10,2)[]", "DECIMAL(10,2)[]", ["'{1.25,NULL,-99999999.99}'", "'{}'", "'{0}'"]),
    ("c_date_arr", "date[]", "DATE[]", ["'{2024-01-01,0044-03-15 BC}'", "'{}'", "'{NULL}'"]),
    ("c_bool_arr", "boolean[]", "BOOLEAN[]", ["'{t,f,NULL}'", "'{}'", "'{t}'"]),
    ("c_ts_arr", "timestamptz[]", "TIMESTAMP WITH TIME ZONE[]", ["'{\"2024-01-01 00:00:00+00\"}'", "'{}'", "'{NULL}'"]),
    ("c_uuid_arr", "uuid[]", "UUID[]", ["'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'", "'{}'", "'{}'"]),
    ("c_jsonb_arr", "jsonb[]", "JSON[]", ["ARRAY['{\"k\": 1}'::jsonb, '[2]'::jsonb]", "'{}'", "'{}'"]),
    ("c_inet", "inet", "VARCHAR", ["'192.168.0.1/24'", "'::1'", "'10.0.0.1'"]),
    ("c_money_like_domain", "positive_int", "INTEGER", ["1", "2", "3"]),
]

# How each side renders a column as comparable text: PostgreSQL (after SET TimeZone UTC,
# IntervalStyle iso_8601) and DuckDB. None: compare the JSON values.
PG_TEXT = {
    "c_bytea": "encode({c}, 'hex')",
    "c_char": "rpad({c}, 4)",  # ::text would drop char(n)'s padding, which COPY keeps
    "c_date": "replace({c}::text, ' BC', ' (BC)')",
    "c_timestamp": "regexp_replace({c}::text, '^(\\S+) (\\S+) BC$', '\\1 (BC) \\2')",
}
DUCK_TEXT = {
    "c_bytea": "lower(hex({c}))",
}


def norm_float(s):
    if s is None:
        return None
    v = float(s)
    return "nan" if math.isnan(v) else repr(v)


class PgIngest(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pgutil.Postgres().start()
        cls.addClassCleanup(cls.pg.stop)
        cls.pg.psql("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');"
                    "CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);"
                    "CREATE ROLE app LOGIN PASSWORD '%s';"
                    "CREATE ROLE nobody LOGIN PASSWORD 'nobody-pw';" % APP_PASSWORD)
        cols = ", ".join("%s %s" % (c, t) for c, t, _, _ in TYPES)
        cls.pg.psql("CREATE TABLE public.alltypes (id int PRIMARY KEY, %s)" % cols)
        for i in range(3):
            vals = ", ".join(v[i] for _, _, _, v in TYPES)
            cls.pg.psql("INSERT INTO alltypes VALUES (%d, %s)" % (i + 1, vals))
        cls.pg.psql("INSERT INTO alltypes (id) VALUES (4)")  # NULL in every column
        cls.pg.psql("CREATE SCHEMA crm; CREATE TABLE crm.\"Mixed Case\" (\"Id\" int, \"Name\" text);"
                    "INSERT INTO crm.\"Mixed Case\" VALUES (1, 'one'), (2, 'two');"
                    "GRANT USAGE ON SCHEMA crm TO app; GRANT SELECT ON ALL TABLES IN SCHEMA crm TO app;"
                    "GRANT SELECT ON alltypes TO app;"
                    "CREATE TABLE secret_salaries (id int, amount int);")
        cls.tmp = cls.make_tmp("pg")
        secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[pg_app]\npassword = "%s"\n' % APP_PASSWORD)
        os.chmod(secrets, 0o600)
        env = {}
        if "ASAN_OPTIONS" in os.environ:  # keep freed memory from piling up in quarantine,
            # which would look like growth in the flat-memory test
            env["ASAN_OPTIONS"] = os.environ["ASAN_OPTIONS"] + ":quarantine_size_mb=8"
        cls.start_server(principals=[("owner", ADMIN, ["admin"]), ("analyst", READER, ["reader"])],
                         extra_toml='\n[secrets]\nfile = "%s"\n' % secrets, env=env)

    # ---- helpers ---------------------------------------------------------------------------
    def ingest(self, body, status=None, who="owner"):
        st, _, out = self.srv.request("POST", "/ingest/db", body, token=self.srv.tokens[who])
        if status is not None:
            self.assertEqual(st, status, out)
        for secret in (APP_PASSWORD, SECRET_PASSWORD, pgutil.SUPERUSER_PASSWORD):
            self.assertNotIn(secret, json.dumps(out))
        return st, out

    def query(self, sql):
        st, _, out = self.srv.request("POST", "/query", {"sql": sql}, who="owner")
        self.assertEqual(st, 200, out)
        return out["rows"]

    def assert_no_trace(self, dataset):
        st, _, _ = self.srv.request("GET", "/catalog/datasets/" + dataset, who="owner")
        self.assertEqual(st, 404)
        data = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", dataset)
        left = [os.path.join(r, f) for r, _, fs in os.walk(data) for f in fs]
        self.assertEqual(left, [])
        work = os.path.join(self.srv.data_dir, "work")
        self.assertEqual([f for f in os.listdir(work) if f.startswith("pg-")], [])

    def wait_job(self, job_id, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, _, job = self.srv.request("GET", "/jobs/" + job_id, who="owner")
            self.assertEqual(st, 200)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        self.fail("job did not finish")

    # ---- types ------------------------------------------------------------------------------
    def test_types_round_trip(self):
        _, out = self.ingest({"dsn": self.pg.dsn(), "table": "alltypes", "dataset": "alltypes",
                              "description": "every mapped type", "tags": ["pg"]}, 201)
        self.assertEqual(out["rows"], 4)
        self.assertEqual(out["method"], "copy")
        types = {c["name"]: c["type"] for c in out["columns"]}
        for col, _, want, _ in TYPES:
            self.assertEqual(types[col], want, col)
        self.compare_values("alltypes")
        # the cursor path gives the same dataset
        _, out2 = self.ingest({"dsn": self.pg.dsn(), "table": "public.alltypes",
                               "dataset": "alltypes_cursor", "method": "cursor",
                               "batch_rows": 2}, 201)
        self.assertEqual(out2["method"], "cursor")
        # 4 rows, batches of 2 (and the version's events batch)
        self.assertEqual(len([f for f in out2["files"] if f["kind"] == "base"]), 2)
        self.assertEqual(out2["columns"], out["columns"])
        self.compare_values("alltypes_cursor")

    def compare_values(self, dataset):
        for col, _, _, _ in TYPES:
            if col.endswith("_arr") or col in ("c_json", "c_jsonb", "c_text"):
                self.compare_json(dataset, col)
                continue
            pg_expr = PG_TEXT.get(col, "{c}::text").format(c=col)
            out = self.pg.psql("SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; "
                               "SELECT coalesce(%s, '<NULL>') FROM alltypes ORDER BY id" % pg_expr)
            want = out.rstrip("\n").split("\n")
            duck = DUCK_TEXT.get(col, "CAST({c} AS VARCHAR)").format(c=col)
            got = [r["v"] for r in self.query(
                "SELECT coalesce(%s, '<NULL>') AS v FROM %s ORDER BY id" % (duck, dataset))]
            if col in ("c_real", "c_double"):
                want = [w if w == "<NULL>" else norm_float(w) for w in want]
                got = [g if g == "<NULL>" else norm_float(g) for g in got]
            if col == "c_bool":
                want = [{"t": "true", "f": "false"}.get(w, w) for w in want]
            self.assertEqual(got, want, col)

    def compare_json(self, dataset, col):
        """Values that may hold newlines, and nested ones: compared as JSON."""
        out = self.pg.psql("SELECT json_agg(to_json(%s) ORDER BY id) FROM alltypes" % col)
        want = json.loads(out)
        got = [None if r["v"] is None else json.loads(r["v"]) for r in self.query(
            "SELECT CAST(to_json(%s) AS VARCHAR) AS v FROM %s ORDER BY id" % (col, dataset))]
        if col == "c_date_arr":  # PostgreSQL writes BC dates its own way
            want = [None if v is None else
                    [None if d is None else d.replace(" BC", " (BC)") for d in v] for v in want]
        if col == "c_ts_arr":  # ISO 8601 "T" and "+00:00" in PostgreSQL's JSON
            want = [None if v is None else
                    [None if d is None else d.replace("T", " ").replace("+00:00", "+00")
                     for d in v] for v in want]
        self.assertEqual(got, want, col)

    def test_query_source_and_quoted_names(self):
        _, out = self.ingest({"dsn": self.pg.dsn(user="app", password=APP_PASSWORD),
                              "table": 'crm."Mixed Case"', "dataset": "mixed"}, 201)
        self.assertEqual([c["name"] for c in out["columns"]], ["Id", "Name"])
        self.assertEqual(out["source"], "postgresql://app:***@127.0.0.1:%d/postgres" % self.pg.port)
        _, out = self.ingest({"dsn": self.pg.dsn(),
                              "query": "-- a comment\nWITH x AS (SELECT g FROM generate_series(1, 5) g) "
                                       "SELECT g, g * 2 AS twice, 1 AS g FROM x;",
                              "dataset": "from_query"}, 201)
        self.assertEqual([c["name"] for c in out["columns"]], ["g", "twice", "g_2"])
        # a query that sorts keeps its order, across batches too
        self.ingest({"dsn": self.pg.dsn(), "dataset": "sorted", "batch_rows": 50000,
                     "query": "SELECT g FROM generate_series(1, 300000) g ORDER BY g DESC"}, 201)
        rows = self.query("SELECT count(*) AS n FROM (SELECT g, row_number() OVER () AS r "
                          "FROM sorted) WHERE g <> 300001 - r")
        self.assertEqual(rows, [{"n": 0}])
        self.assertEqual(self.query("SELECT sum(twice) AS s FROM from_query")[0]["s"], 30)
        st, _, ds = self.srv.request("GET", "/catalog/datasets/from_query", who="owner")
        lineage = ds["metadata"]["lineage"]
        self.assertEqual(lineage["source_system"], "postgresql")
        self.assertEqual(lineage["ingest"], "db")
        self.assertIn("generate_series", lineage["query"])
        self.assertRegex(lineage["snapshot_at"], r"^\d{4}-\d\d-\d\dT")
        # an empty result is still a dataset with its columns
        _, out = self.ingest({"dsn": self.pg.dsn(), "query": "SELECT 1 AS a WHERE false",
                              "dataset": "empty_src"}, 201)
        self.assertEqual(out["rows"], 0)
        self.assertEqual(out["columns"], [{"name": "a", "type": "INTEGER"}])

    def test_secret_ref_password(self):
        dsn = "host=127.0.0.1 port=%d dbname=postgres user=app" % self.pg.port
        _, out = self.ingest({"dsn": dsn, "secret_ref": "pg_app", "table": "alltypes",
                              "dataset": "via_secret"}, 201)
        self.assertEqual(out["rows"], 4)
        self.assertTrue(out["source"].startswith("postgresql://app:***@127.0.0.1:"))
        st, out = self.ingest({"dsn": dsn, "secret_ref": "nope", "table": "alltypes",
                               "dataset": "via_secret2"}, 400)
        self.assertEqual(out["error"]["code"], "invalid_secret_ref")

    def test_metadata_survives_the_wiped_request(self):
        """The request is wiped once the ingest is checked (its DSN may hold a password):
        the metadata it gave must reach the new dataset whole."""
        dsn = "host=127.0.0.1 port=%d dbname=postgres user=app" % self.pg.port
        _, out = self.ingest({"dsn": dsn, "secret_ref": "pg_app", "table": "alltypes",
                              "dataset": "with_meta", "primary_key": ["id"], "owner": "crm",
                              "tags": ["pg", "daily"], "async": True}, 202)
        job = out
        for _ in range(300):
            st, _, job = self.srv.request("GET", "/jobs/" + out["id"], who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)
        self.assertEqual(job["state"], "succeeded", job)
        st, _, ds = self.srv.request("GET", "/catalog/datasets/with_meta", who="owner")
        m = ds["metadata"]
        self.assertEqual((m["primary_key"], m["owner"], m["tags"]), (["id"], "crm", ["pg", "daily"]))

    def test_secret_ref_rotation(self):
        """A password rotated in the secrets file takes effect on the next request, without a
        restart, whether the file is rewritten in place (same size) or renamed over; a file
        whose mode became too open is refused at once."""
        secrets = os.path.join(self.tmp, "secrets.toml")
        with open(secrets) as f:
            original = f.read()
        passwords = ["rot-Pw-1111-rotated", "rot-Pw-2222-rotated", "rot-Pw-3333-rotated"]

        def write_secrets(password, rename=False):
            text = original + '[pg_rot]\npassword = "%s"\n' % password
            path = secrets + ".new" if rename else secrets
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
            if rename:
                os.replace(path, secrets)

        def ingest_as_rot(dataset, status):
            dsn = "host=127.0.0.1 port=%d dbname=postgres user=rot" % self.pg.port
            _, out = self.ingest({"dsn": dsn, "secret_ref": "pg_rot", "table": "alltypes",
                                  "dataset": dataset}, status)
            for pw in passwords:
                self.assertNotIn(pw, json.dumps(out))
            return out

        self.pg.psql("CREATE ROLE rot LOGIN PASSWORD '%s'; GRANT SELECT ON alltypes TO rot"
                     % passwords[0])
        try:
            write_secrets(passwords[0])
            ingest_as_rot("rot_1", 201)
            # the database moves on first: the kept password no longer signs in
            self.pg.psql("ALTER ROLE rot PASSWORD '%s'" % passwords[1])
            out = ingest_as_rot("rot_2", 400)
            self.assertEqual(out["error"]["code"], "source_auth_failed")
            # rewritten in place, same size: read again on the next request
            write_secrets(passwords[1])
            ingest_as_rot("rot_2", 201)
            # replaced by a rename (a new inode)
            self.pg.psql("ALTER ROLE rot PASSWORD '%s'" % passwords[2])
            write_secrets(passwords[2], rename=True)
            ingest_as_rot("rot_3", 201)
            # opened up to others: refused at once, accepted again once fixed
            os.chmod(secrets, 0o644)
            out = ingest_as_rot("rot_4", 400)
            self.assertEqual(out["error"]["code"], "invalid_secret_ref")
            self.assertIn("readable or writable by others", out["error"]["detail"])
            os.chmod(secrets, 0o600)
            ingest_as_rot("rot_4", 201)
            # gone: the same answer as before the provider kept a copy
            os.rename(secrets, secrets + ".away")
            out = ingest_as_rot("rot_5", 400)
            self.assertEqual(out["error"]["code"], "invalid_secret_ref")
            os.rename(secrets + ".away", secrets)
        finally:
            with open(secrets + ".new", "w") as f:
                f.write(original)
            os.chmod(secrets + ".new", 0o600)
            os.replace(secrets + ".new", secrets)
            self.pg.psql("DROP OWNED BY rot; DROP ROLE rot")

    # ---- incremental -------------------------------------------------------------------------
    def test_incremental_append(self):
        self.pg.psql("CREATE TABLE events (id int, updated_at timestamptz, what text);"
                     "INSERT INTO events SELECT g, '2024-01-01'::timestamptz + g * interval '1 hour', "
                     "'e' || g FROM generate_series(1, 100) g")
        body = {"dsn": self.pg.dsn(), "table": "events", "dataset": "events",
                "since_column": "updated_at"}
        _, out = self.ingest(body, 201)
        self.assertEqual(out["rows"], 100)
        self.assertEqual(out["watermark"]["value"], "2024-01-05 04:00:00+00")
        self.pg.psql("INSERT INTO events SELECT g, '2024-01-01'::timestamptz + g * interval '1 hour', "
                     "'e' || g FROM generate_series(101, 130) g")
        _, out = self.ingest(dict(body, mode="append"), 201)
        self.assertEqual(out["rows"], 30)
        self.assertEqual(out["total_rows"], 130)
        self.assertEqual(out["version"], 2)
        # nothing newer: no new version
        st, out = self.ingest(dict(body, mode="append"), 200)
        self.assertTrue(out["unchanged"])
        self.assertEqual(out["version"], 2)
        rows = self.query("SELECT count(*) AS n, count(DISTINCT id) AS d, max(id) AS m FROM events")
        self.assertEqual(rows, [{"n": 130, "d": 130, "m": 130}])
        st, _, ds = self.srv.request("GET", "/catalog/datasets/events", who="owner")
        self.assertEqual(ds["metadata"]["lineage"]["watermark"],
                         {"column": "updated_at", "value": "2024-01-06 10:00:00+00"})
        st, out = self.ingest(dict(body, mode="append", since_column="nope"), 400)
        self.assertIn("nope", out["error"]["message"])

    def test_append_schema_mismatch(self):
        self.ingest({"dsn": self.pg.dsn(), "query": "SELECT 1 AS a, 'x' AS b",
                     "dataset": "shape"}, 201)
        st, out = self.ingest({"dsn": self.pg.dsn(), "query": "SELECT 1 AS a, 2 AS b",
                               "dataset": "shape", "mode": "append"}, 400)
        self.assertEqual(out["error"]["code"], "schema_mismatch")
        self.assertIn("'b'", out["error"]["message"])
        st, _, ds = self.srv.request("GET", "/catalog/datasets/shape", who="owner")
        self.assertEqual(ds["version"], 1)
        files = os.listdir(os.path.join(self.srv.data_dir, "buckets", "primary", "datasets",
                                        "shape", "data"))
        self.assertEqual(len(files), 1)

    # ---- a large table, flat memory --------------------------------------------------------------
    def test_million_rows_flat_memory(self):
        self.pg.psql("CREATE TABLE big AS SELECT g AS id, 'name-' || g AS name, g * 1.5 AS score, "
                     "(g % 2 = 0) AS even, '2020-01-01'::date + (g % 1000) AS day, "
                     "md5(g::text) AS hash FROM generate_series(1, 1000000) g;"
                     "CREATE TABLE small AS SELECT * FROM big WHERE id <= 400000")
        pid = self.srv.proc.pid

        def peak_after(body):
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")  # reset the peak resident size
            st, out = self.ingest(dict(body, **{"async": True}), 202)
            job = self.wait_job(out["id"])
            self.assertEqual(job["state"], "succeeded", job)
            with open("/proc/%d/status" % pid) as f:
                hwm = [int(line.split()[1]) for line in f if line.startswith("VmHWM")][0]
            return job, hwm * 1024

        job_small, peak_small = peak_after({"dsn": self.pg.dsn(), "table": "small",
                                            "dataset": "small", "batch_rows": 200000,
                                            "parallel": 1})
        job_big, peak_big = peak_after({"dsn": self.pg.dsn(), "table": "big", "dataset": "big",
                                        "batch_rows": 200000, "parallel": 1})
        self.assertEqual(job_big["result"]["rows"], 1000000)
        self.assertEqual(job_big["progress"]["done"], 1000000)
        self.assertEqual(len([f for f in job_big["result"]["files"] if f["kind"] == "base"]), 5)
        # Two batches fill the pipeline (one written while the next is read); five are
        # two and a half times the rows through the same pipeline: memory must not grow
        self.assertLess(peak_big, peak_small * 1.25 + 64 * 1024 * 1024,
                        "peak RSS %d MiB for 1M rows vs %d MiB for 400k"
                        % (peak_big >> 20, peak_small >> 20))
        rows = self.query("SELECT count(*) AS n, sum(id) AS s, count(DISTINCT hash) AS h FROM big")
        self.assertEqual(rows, [{"n": 1000000, "s": 500000500000, "h": 1000000}])
        # Two streams hold at most two batches each: the same comparison, each stream
        # going through several batches of both tables
        job_small, peak_small = peak_after({"dsn": self.pg.dsn(), "table": "small",
                                            "dataset": "small_par", "batch_rows": 50000,
                                            "parallel": 2})
        job_big, peak_big = peak_after({"dsn": self.pg.dsn(), "table": "big",
                                        "dataset": "big_par", "batch_rows": 50000,
                                        "parallel": 2})
        self.assertEqual(job_small["result"]["parallel"]["streams"], 2, job_small["result"])
        self.assertEqual(job_big["result"]["parallel"]["streams"], 2, job_big["result"])
        self.assertEqual(job_big["result"]["rows"], 1000000)
        self.assertEqual(job_big["progress"]["done"], 1000000)
        self.assertLess(peak_big, peak_small * 1.25 + 64 * 1024 * 1024,
                        "two streams: peak RSS %d MiB for 1M rows vs %d MiB for 400k"
                        % (peak_big >> 20, peak_small >> 20))
        rows = self.query("SELECT count(*) AS n, sum(id) AS s, count(DISTINCT hash) AS h "
                          "FROM big_par")
        self.assertEqual(rows, [{"n": 1000000, "s": 500000500000, "h": 1000000}])

    # ---- several streams in one snapshot ---------------------------------------------------------
    def table_digest(self, dataset, columns):
        """Order-independent content of a dataset: count, and the md5 of its rows sorted."""
        row = " || '|' || ".join("coalesce(CAST(%s AS VARCHAR), '<NULL>')" % c for c in columns)
        return self.query("SELECT count(*) AS n, md5(string_agg(%s, chr(10) ORDER BY %s)) AS h "
                          "FROM %s" % (row, ", ".join(columns), dataset))[0]

    def test_parallel_same_rows(self):
        """A table read by four streams (ctid slices, four connections in one snapshot) is
        exactly the table one stream reads, each stream writing its own files; with
        since_column the slices are filtered like the whole."""
        self.pg.psql("CREATE TABLE par AS SELECT g AS id, 'name-' || g AS name, "
                     "(g % 1000)::numeric(8,2) / 8 AS amount, '2024-01-01'::timestamptz "
                     "+ g * interval '1 minute' AS happened, CASE WHEN g % 7 = 0 THEN NULL ELSE "
                     "md5(g::text) END AS note, repeat('x', 120) AS pad "
                     "FROM generate_series(1, 200000) g;"
                     "DELETE FROM par WHERE id % 10 = 3")  # holes in every page
        pages = int(self.pg.psql("SELECT pg_relation_size('par') / 8192").strip())
        self.assertGreaterEqual(pages, 4 * 1024)  # worth four streams
        want = self.pg.psql("SELECT count(*), sum(id) FROM par").strip()
        _, one = self.ingest({"dsn": self.pg.dsn(), "table": "par", "dataset": "par_one",
                              "parallel": 1, "batch_rows": 30000}, 201)
        self.assertEqual(one["parallel"], {"requested": 1, "streams": 1})
        _, four = self.ingest({"dsn": self.pg.dsn(), "table": "par", "dataset": "par_four",
                               "parallel": 4, "batch_rows": 30000}, 201)
        self.assertEqual(four["parallel"], {"requested": 4, "streams": 4})
        self.assertEqual(four["rows"], 180000)
        self.assertEqual(four["columns"], one["columns"])
        # each stream writes its own files: 45,000 rows each, two batches of 30,000 at most
        base = [f for f in four["files"] if f["kind"] == "base"]
        self.assertGreaterEqual(len(base), 8)
        self.assertEqual(sum(f["rows"] for f in base), 180000)
        cols = ["id", "name", "amount", "happened", "note", "pad"]
        self.assertEqual(self.table_digest("par_four", cols), self.table_digest("par_one", cols))
        got = self.query("SELECT count(*) AS n, sum(id) AS s, count(DISTINCT id) AS d "
                         "FROM par_four")[0]
        self.assertEqual("%d|%d" % (got["n"], got["s"]), want)
        self.assertEqual(got["d"], got["n"])
        # the cursor method splits the same way
        _, cur = self.ingest({"dsn": self.pg.dsn(), "table": "par", "dataset": "par_cursor",
                              "parallel": 3, "method": "cursor"}, 201)
        self.assertEqual(cur["parallel"], {"requested": 3, "streams": 3})
        self.assertEqual(self.table_digest("par_cursor", cols), self.table_digest("par_one", cols))
        # incremental: the watermark filter applies to every slice
        body = {"dsn": self.pg.dsn(), "table": "par", "dataset": "par_inc", "parallel": 4,
                "since_column": "id"}
        _, out = self.ingest(body, 201)
        self.assertEqual((out["rows"], out["parallel"]["streams"]), (180000, 4))
        self.pg.psql("INSERT INTO par SELECT g, 'name-' || g, 1, now(), NULL, 'y' "
                     "FROM generate_series(200001, 200500) g")
        _, out = self.ingest(dict(body, mode="append"), 201)
        self.assertEqual((out["rows"], out["total_rows"]), (500, 180500))
        self.assertEqual(self.query("SELECT count(DISTINCT id) AS d FROM par_inc"), [{"d": 180500}])
        # a partitioned table: every partition is cut at the same pages (of the largest),
        # and an inheritance parent's slices apply to its child too
        self.pg.psql("CREATE TABLE par_parts (id int, k int, pad text) PARTITION BY RANGE (k);"
                     "CREATE TABLE par_p0 PARTITION OF par_parts FOR VALUES FROM (0) TO (1);"
                     "CREATE TABLE par_p1 PARTITION OF par_parts FOR VALUES FROM (1) TO (3);"
                     "INSERT INTO par_parts SELECT g, least(g % 3, 1), repeat('q', 300) "
                     "FROM generate_series(1, 120000) g;"
                     "CREATE TABLE par_inh (id int, pad text);"
                     "CREATE TABLE par_inh_child () INHERITS (par_inh);"
                     "INSERT INTO par_inh SELECT g, repeat('r', 300) FROM generate_series(1, 60000) g;"
                     "INSERT INTO par_inh_child SELECT g, repeat('r', 300) "
                     "FROM generate_series(60001, 100000) g")
        for table, n, streams in (("par_parts", 120000, 3), ("par_inh", 100000, 2)):
            _, out = self.ingest({"dsn": self.pg.dsn(), "table": table, "dataset": table,
                                  "parallel": 4}, 201)
            self.assertEqual((out["rows"], out["parallel"]["streams"]), (n, streams), out)
            self.assertEqual(self.query("SELECT count(DISTINCT id) AS d, sum(id) AS s FROM "
                                        + table), [{"d": n, "s": n * (n + 1) // 2}])
        self.assertIn("largest partition", self.ingest(
            {"dsn": self.pg.dsn(), "table": "par_parts", "dataset": "par_parts_16",
             "parallel": 16}, 201)[1]["parallel"]["reason"])
        # every slice empty (the pages are still there): one empty file keeps the columns
        self.pg.psql("DELETE FROM par")
        _, out = self.ingest({"dsn": self.pg.dsn(), "table": "par", "dataset": "par_four",
                              "mode": "replace", "parallel": 4}, 201)
        self.assertEqual((out["rows"], out["parallel"]["streams"]), (0, 4))
        self.assertEqual(out["columns"], one["columns"])
        self.assertEqual(len([f for f in out["files"] if f["kind"] == "base"]), 1)

    def test_parallel_one_snapshot_under_writes(self):
        """A writer commits all through the ingest: it moves balance between rows, and adds
        and removes rows keeping a count in row 0, each in one transaction. Rows it updates
        get new versions elsewhere in the table, so slices read in different snapshots
        would see a row twice or not at all. Every ingest must show one snapshot: the total
        balance, unique ids, and the row count row 0 states."""
        self.pg.psql("""
            CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, n_rows bigint,
                                   pad text);
            INSERT INTO accounts SELECT g, 100, NULL, repeat('p', 150)
                FROM generate_series(1, 200000) g;
            INSERT INTO accounts VALUES (0, 0, 200001, '');
            CREATE SEQUENCE extra_ids START 1000001;
            CREATE PROCEDURE churn(seconds float) LANGUAGE plpgsql AS $$
            DECLARE a int; b int; i int := 0; gone bigint;
                    stop timestamptz := clock_timestamp() + seconds * interval '1 second';
            BEGIN
              WHILE clock_timestamp() < stop LOOP
                i := i + 1;
                a := 1 + floor(random() * 200000)::int;
                b := 1 + floor(random() * 200000)::int;
                IF i % 4 < 2 THEN
                  INSERT INTO accounts VALUES (nextval('extra_ids'), 7, NULL, repeat('n', 150));
                  UPDATE accounts SET balance = balance - 7 WHERE id = a;
                  UPDATE accounts SET n_rows = n_rows + 1 WHERE id = 0;
                ELSIF i % 4 = 2 THEN
                  DELETE FROM accounts WHERE id = (SELECT min(id) FROM accounts WHERE id > 1000000)
                      RETURNING balance INTO gone;
                  IF FOUND THEN
                    UPDATE accounts SET balance = balance + gone WHERE id = b;
                    UPDATE accounts SET n_rows = n_rows - 1 WHERE id = 0;
                  END IF;
                ELSE
                  UPDATE accounts SET balance = balance - 5 WHERE id = a;
                  UPDATE accounts SET balance = balance + 5 WHERE id = b;
                END IF;
                COMMIT;
              END LOOP;
            END $$;""")
        writer = subprocess.Popen(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", self.pg.dsn(),
                                   "-c", "CALL churn(60)"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=self.pg._env())
        try:
            deadline = time.time() + 20
            while self.pg.psql("SELECT n_rows FROM accounts WHERE id = 0").strip() == "200001":
                self.assertIsNone(writer.poll(), "the writer failed")
                self.assertLess(time.time(), deadline, "the writer never committed")
                time.sleep(0.05)
            for i in range(3):
                _, out = self.ingest({"dsn": self.pg.dsn(), "table": "accounts",
                                      "dataset": "accounts_%d" % i, "parallel": 4,
                                      "batch_rows": 20000}, 201)
                self.assertEqual(out["parallel"]["streams"], 4, out["parallel"])
                got = self.query("SELECT count(*) AS n, count(DISTINCT id) AS d, "
                                 "sum(balance) AS total, max(n_rows) AS stated "
                                 "FROM accounts_%d" % i)[0]
                self.assertEqual(got["total"], 200000 * 100, got)
                self.assertEqual(got["d"], got["n"], got)
                self.assertEqual(got["n"], got["stated"], got)
                self.assertEqual(got["n"], out["rows"])
            self.assertIsNone(writer.poll(), "the writer stopped before the ingests ended")
        finally:
            writer.kill()
            writer.communicate()
            self.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE query LIKE 'CALL churn%'")
        # the writer really changed the table meanwhile
        self.assertNotEqual(self.pg.psql("SELECT n_rows FROM accounts WHERE id = 0").strip(),
                            "200001")

    def test_parallel_says_why_one_stream(self):
        self.pg.psql("CREATE TABLE IF NOT EXISTS par_src AS SELECT g AS id, repeat('z', 200) AS pad "
                     "FROM generate_series(1, 60000) g;"
                     "CREATE VIEW par_view AS SELECT * FROM par_src")
        cases = [
            ({"query": "SELECT * FROM par_src"}, "query"),
            ({"table": "par_view"}, "view"),
            ({"table": "alltypes"}, "pages"),  # a tiny table
        ]
        for i, (src, word) in enumerate(cases):
            body = dict({"dsn": self.pg.dsn(), "dataset": "why_%d" % i, "parallel": 4}, **src)
            _, out = self.ingest(body, 201)
            self.assertEqual(out["parallel"]["requested"], 4, src)
            self.assertEqual(out["parallel"]["streams"], 1, src)
            self.assertIn(word, out["parallel"]["reason"], src)
        # 60,000 rows of ~230 bytes: about 1,900 pages, one stream's worth
        _, out = self.ingest({"dsn": self.pg.dsn(), "dataset": "why_small", "table": "par_src",
                              "parallel": 16}, 201)
        self.assertEqual(out["parallel"]["streams"], 1)
        self.assertIn("pages", out["parallel"]["reason"])
        # the default: the cores, at most four, never more than the table warrants
        _, out = self.ingest({"dsn": self.pg.dsn(), "dataset": "why_default",
                              "table": "alltypes"}, 201)
        self.assertIn(out["parallel"]["requested"], (1, 2, 3, 4))
        self.assertEqual(out["parallel"]["streams"], 1)

    def test_parallel_stream_failures(self):
        """A stream that cannot connect, or loses its connection mid-stream, fails the whole
        ingest: nothing committed, no file left, every connection closed."""
        self.pg.psql("""
            CREATE ROLE solo LOGIN PASSWORD 'solo-Pw-3e1d' CONNECTION LIMIT 1;
            CREATE TABLE slow_par AS SELECT g AS id, repeat('s', 200) AS pad
                FROM generate_series(1, 130000) g;
            GRANT SELECT ON slow_par TO solo, app;
            -- reading slow_par as app takes a few seconds: a policy sleeps now and then
            CREATE FUNCTION lh_slow(id int) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN IF id % 4000 = 0 THEN PERFORM pg_sleep(0.2); END IF; RETURN true; END $$;
            ALTER TABLE slow_par ENABLE ROW LEVEL SECURITY;
            CREATE POLICY slow ON slow_par FOR SELECT TO app USING (lh_slow(id));""")

        def lakehouse_backends():
            return int(self.pg.psql("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE application_name = 'lakehouse'").strip())

        def wait_backends_gone():
            deadline = time.time() + 10
            while lakehouse_backends() and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(lakehouse_backends(), 0)

        # the second connection is refused: the role may hold only one
        st, out = self.ingest({"dsn": self.pg.dsn(user="solo", password="solo-Pw-3e1d"),
                               "table": "slow_par", "dataset": "par_refused", "parallel": 2})
        self.assertEqual((st, out["error"]["code"]), (502, "source_unreachable"), out)
        self.assertIn("too many connections", out["error"]["detail"])
        self.assertIn("parallel", out["error"]["hint"])
        self.assertNotIn("solo-Pw-3e1d", json.dumps(out))
        self.assert_no_trace("par_refused")
        wait_backends_gone()
        # one of three streams is cut off while rows flow: the others are stopped too
        st, out = self.ingest({"dsn": self.pg.dsn(user="app", password=APP_PASSWORD),
                               "table": "slow_par", "dataset": "par_cut", "parallel": 3,
                               "batch_rows": 5000, "async": True}, 202)
        deadline = time.time() + 30
        while time.time() < deadline:
            n = int(self.pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name "
                                 "= 'lakehouse' AND query LIKE 'COPY%'").strip())
            st, _, job = self.srv.request("GET", "/jobs/" + out["id"], who="owner")
            if (n == 3 and job["progress"]["done"] > 0) or job["state"] != "running":
                break
            time.sleep(0.02)
        self.assertEqual(job["state"], "running", job)
        self.pg.psql("SELECT pg_terminate_backend(max(pid)) FROM pg_stat_activity "
                     "WHERE application_name = 'lakehouse' AND query LIKE 'COPY%'")
        job = self.wait_job(out["id"])
        self.assertEqual(job["state"], "failed", job)
        self.assertEqual(job["error"]["code"], "source_connection_lost", job)
        self.assert_no_trace("par_cut")
        wait_backends_gone()
        # the same ingest with nothing cut off succeeds
        _, out = self.ingest({"dsn": self.pg.dsn(user="app", password=APP_PASSWORD),
                              "table": "slow_par", "dataset": "par_whole", "parallel": 3}, 201)
        self.assertEqual((out["rows"], out["parallel"]["streams"]), (130000, 3))

    # ---- failures ---------------------------------------------------------------------------------
    def test_failures_leave_no_trace(self):
        port = self.pg.port
        cases = [
            ({"dsn": "host='unterminated"}, 400, "invalid_dsn"),
            ({"dsn": "postgresql://[::1/db"}, 400, "invalid_dsn"),
            ({"dsn": "host=127.0.0.1 bogus_key=1"}, 400, "invalid_dsn"),
            ({"dsn": "host=127.0.0.1 passfile=/etc/shadow"}, 400, "invalid_dsn"),
            ({"dsn": "postgresql://u:%s@127.0.0.1:%d/db?sslkey=/etc/ssl/private/x" % (APP_PASSWORD, port)},
             400, "invalid_dsn"),
            ({"dsn": "postgresql://postgres:x@127.0.0.1:%d/postgres" % harness_free_port()}, 502,
             "source_unreachable"),
            ({"dsn": self.pg.dsn(user="app", password="wrong-password")}, 400, "source_auth_failed"),
            ({"dsn": self.pg.dsn(db="no_such_db")}, 404, "source_database_not_found"),
            ({"dsn": self.pg.dsn(), "table": "no_such_table"}, 404, "source_table_not_found"),
            ({"dsn": self.pg.dsn(), "table": "a.b.c.d"}, 400, "invalid_query"),
            ({"dsn": self.pg.dsn(), "query": "DELETE FROM alltypes"}, 400, "query_not_select"),
            ({"dsn": self.pg.dsn(), "query": "SELECT 1; DROP TABLE alltypes"}, 400, "invalid_query"),
            ({"dsn": self.pg.dsn(), "query": "WITH d AS (DELETE FROM alltypes RETURNING *) SELECT * FROM d"},
             400, "invalid_query"),
            ({"dsn": self.pg.dsn(), "query": "SELECT nextval('nope_seq')"}, 404, "source_table_not_found"),
            ({"dsn": self.pg.dsn(), "query": "SELECT no_such_column FROM alltypes"}, 400, "invalid_query"),
            ({"dsn": self.pg.dsn(user="nobody", password="nobody-pw"), "table": "secret_salaries"},
             403, "source_permission_denied"),
            ({"dsn": self.pg.dsn(), "query": "SELECT 'NaN'::numeric(5,2) AS n"},
             422, "unconvertible_value"),
            ({"dsn": self.pg.dsn(), "query": "SELECT '294276-12-31 23:59:59'::timestamp AS t"},
             422, "unconvertible_value"),
            ({"dsn": self.pg.dsn(), "query": "SELECT ARRAY[[1, 2], [3, 4]] AS m"},
             422, "unconvertible_value"),
        ]
        for body, status, code in cases:
            full = {"table": "alltypes", "dataset": "failed_ingest"}
            full.update(body)
            if "query" in full:
                del full["table"]
            st, out = self.ingest(full)
            shown = {k: v for k, v in full.items() if k != "dsn"}  # it may hold a password
            self.assertEqual((st, out.get("error", {}).get("code")), (status, code), shown)
            self.assertTrue(out["error"]["message"])
            self.assert_no_trace("failed_ingest")
        # a value DuckDB cannot hold is named by its column
        st, out = self.ingest({"dsn": self.pg.dsn(), "dataset": "failed_ingest",
                               "query": "SELECT 1 AS ok, 'NaN'::numeric(5,2) AS price"}, 422)
        self.assertIn('column "price"', out["error"]["detail"])
        self.assert_no_trace("failed_ingest")
        # the table survived the DELETE/DROP attempts
        self.assertEqual(self.pg.psql("SELECT count(*) FROM alltypes").strip(), "4")

    def test_connection_dropped_mid_stream(self):
        slow = ("SELECT g, repeat('x', 100) AS pad, (SELECT 1 FROM pg_sleep(CASE WHEN g % 2000 = 0 "
                "THEN 0.25 ELSE 0 END)) AS s FROM generate_series(1, 40000) g")
        st, out = self.ingest({"dsn": self.pg.dsn(), "query": slow, "dataset": "dropped",
                               "batch_rows": 5000, "async": True}, 202)
        deadline = time.time() + 30
        while time.time() < deadline:  # wait until rows are flowing, then cut the connection
            st, _, job = self.srv.request("GET", "/jobs/" + out["id"], who="owner")
            if job["progress"]["done"] > 0 or job["state"] != "running":
                break
            time.sleep(0.05)
        time.sleep(0.6)
        self.pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = 'lakehouse'")
        job = self.wait_job(out["id"])
        self.assertEqual(job["state"], "failed", job)
        self.assertEqual(job["error"]["code"], "source_connection_lost", job)
        self.assert_no_trace("dropped")

    def test_bad_requests(self):
        srv = self.srv
        st, _, out = srv.request("POST", "/ingest/db", "{not json", who="owner",
                                 headers={"Content-Type": "application/json"})
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_json"))
        cases = [
            ({"table": "t", "dataset": "x"}, "dsn"),
            ({"dsn": 5, "table": "t", "dataset": "x"}, "dsn"),
            ({"dsn": "host=h", "dataset": "x"}, "exactly one"),
            ({"dsn": "host=h", "table": "t", "query": "SELECT 1", "dataset": "x"}, "exactly one"),
            ({"dsn": "host=h", "table": "t", "dataset": "Bad-Name"}, "dataset"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "mode": "merge"}, "mode"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "batch_rows": "many"}, "batch_rows"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "batch_rows": 0}, "batch_rows"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "method": "magic"}, "method"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": 0}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": 17}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": -1}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": "4"}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": 2.5}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": True}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "parallel": None}, "'parallel'"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "async": "yes"}, "async"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "sensitivity": "top"}, "sensitivity"),
            ({"dsn": "host=h", "table": "t", "dataset": "x", "password": "p"}, "password"),
            ({"dsn": "host=h", "table": "t\u0000x", "dataset": "x"}, "JSON"),
        ]
        for body, word in cases:
            st, _, out = srv.request("POST", "/ingest/db", body, who="owner")
            self.assertEqual(st, 400, (body, out))
            self.assertIn(word, out["error"]["message"], body)
        st, _, out = srv.request("POST", "/ingest/db", {"dsn": self.pg.dsn(), "table": "alltypes",
                                                        "dataset": "x"}, who="analyst")
        self.assertEqual(st, 403)
        # a dataset that exists already
        self.ingest({"dsn": self.pg.dsn(), "query": "SELECT 1 AS a", "dataset": "twice"}, 201)
        st, out = self.ingest({"dsn": self.pg.dsn(), "query": "SELECT 1 AS a", "dataset": "twice"}, 409)
        self.assertEqual(out["error"]["code"], "dataset_exists")

    def test_cli(self):
        env = {"LAKEHOUSE_URL": "http://127.0.0.1:%d" % self.srv.port, "LAKEHOUSE_TOKEN": ADMIN}
        rc, out, err = harness.run_cli(["ingest", "postgresql://app@127.0.0.1:%d/postgres" % self.pg.port,
                                        "--secret-ref", "pg_app", "--table", "alltypes",
                                        "--dataset", "cli_pg"], env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn("cli_pg: version 1, 4 rows from postgresql://app:***@", out)
        rc, out, err = harness.run_cli(["ingest", self.pg.dsn(), "--table", "alltypes",
                                        "--dataset", "cli_pg_par", "--parallel", "2"], env=env)
        self.assertEqual(rc, 0, err)
        self.assertIn("cli_pg_par: version 1, 4 rows", out)
        rc, out, err = harness.run_cli(["ingest", self.pg.dsn(), "--table", "alltypes",
                                        "--dataset", "cli_pg_par2", "--parallel", "two"], env=env)
        self.assertEqual(rc, 2)
        self.assertIn("--parallel needs a positive number", err)
        rc, out, err = harness.run_cli(["ingest", self.pg.dsn(), "--table", "alltypes",
                                        "--dataset", "cli_pg_par3", "--parallel", "17"], env=env)
        self.assertNotEqual(rc, 0)
        self.assertIn("'parallel' must be an integer from 1 to 16", err)
        rc, out, err = harness.run_cli(["ingest", self.pg.dsn(), "--dataset", "cli_pg2"], env=env)
        self.assertEqual(rc, 2)
        self.assertIn("--table or --query", err)
        rc, out, err = harness.run_cli(["ingest", self.pg.dsn(user="app", password="bad-pw"),
                                        "--table", "alltypes", "--dataset", "cli_pg3"], env=env)
        self.assertEqual(rc, 1)
        self.assertIn("sign-in", err)
        self.assertNotIn("bad-pw", out + err)

    # ---- last: no password anywhere ----------------------------------------------------------------
    def test_zz_no_password_anywhere(self):
        st, _, jobs = self.srv.request("GET", "/jobs", who="owner")
        st, _, metrics = self.srv.request("GET", "/metrics", who="owner")
        blobs = [json.dumps(jobs), metrics, self.srv.log_text()]
        for root, _, files in os.walk(self.srv.dir):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    blobs.append(fh.read().decode("latin-1"))
        for secret in (APP_PASSWORD, pgutil.SUPERUSER_PASSWORD):
            hits = [i for i, b in enumerate(blobs) if secret in b]
            # the secrets file itself is the one place the app password may be
            self.assertEqual(hits, [], secret)


def harness_free_port():
    import s3util
    return s3util.free_port()


if __name__ == "__main__":
    unittest.main(verbosity=2)
