"""End-to-end: the catalog checkpoint. A start reads the newest checkpoint of the primary
bucket, lists the buckets, and reads only the manifests the checkpoint does not hold;
manifests stay the source of truth, so a stale entry, a damaged checkpoint or one of
another format is detected and ignored (src/catalog/checkpoint.c). A bucket that cannot be
listed at start (its S3 server down) is listed again until it answers, and its datasets
then load without a restart (src/catalog/relist.c)."""
import ctypes
import glob
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402

ADMIN = "tok-admin-ckpt-0001"
LOCAL = ["ds_%d" % i for i in range(8)]
REMOTE = ["rds_0", "rds_1"]
SRC = os.environ.get("LH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))


def duckdb(sql):
    """Run one statement in an in-memory DuckDB (the library the server uses), to craft
    checkpoints no server would write."""
    lib = ctypes.CDLL(os.path.join(SRC, "third_party", "duckdb", "lib", "libduckdb.so"))
    lib.duckdb_result_error.restype = ctypes.c_char_p
    db, con = ctypes.c_void_p(), ctypes.c_void_p()
    res = ctypes.create_string_buffer(256)  # duckdb_result is smaller
    assert lib.duckdb_open(None, ctypes.byref(db)) == 0
    assert lib.duckdb_connect(db, ctypes.byref(con)) == 0
    try:
        state = lib.duckdb_query(con, sql.encode(), res)
        error = lib.duckdb_result_error(res) if state != 0 else None
        lib.duckdb_destroy_result(res)
        assert state == 0, error
    finally:
        lib.duckdb_disconnect(ctypes.byref(con))
        lib.duckdb_close(ctypes.byref(db))


class CatalogCheckpoint(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        tmp = cls.make_tmp("ckpt")
        cls.s3 = s3util.S3rver(os.path.join(tmp, "s3data"), ["lake"]).start()
        cls.addClassCleanup(cls.s3.stop)
        secrets = os.path.join(tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[s3]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n')
        os.chmod(secrets, 0o600)
        extra = ('\n[storage]\nprobe_interval_ms = 0\n[secrets]\nfile = "%s"\n'
                 '[catalog]\ncheckpoint_after_commits = 0\n[[bucket]]\nname = "lake"\n'
                 'backend = "s3"\nendpoint = "http://127.0.0.1:%d"\nbucket = "lake"\n'
                 'secret_ref = "s3"\n' % (secrets, cls.s3.port))
        cls.start_server(principals=[("owner", ADMIN, ["admin"])], extra_toml=extra)
        for i, name in enumerate(LOCAL):
            cls.ingest(name, "id,v\n%d,a\n" % i, "create")
        for i, name in enumerate(REMOTE):
            cls.ingest(name, "id,v\n%d,r\n" % i, "create", bucket="lake")
        cls.written = 0  # checkpoints written so far, from the log

    @classmethod
    def ingest(cls, name, csv, mode, status=None, **params):
        params.update({"dataset": name, "format": "csv", "mode": mode})
        st, _, res = cls.srv.request("POST", "/ingest/file?" + urllib.parse.urlencode(params),
                                     body=csv, who="owner", headers={"Content-Type": "text/csv"})
        assert st == (status or 201), (st, res)
        return res

    # ---- helpers ---------------------------------------------------------------------

    def bucket_path(self, *parts):
        return os.path.join(self.srv.data_dir, "buckets", "primary", *parts)

    def checkpoints(self):
        return sorted(glob.glob(self.bucket_path("_catalog", "checkpoint", "c*.parquet")))

    def written_log(self):
        return [l for l in self.srv.log_lines() if l.get("msg") == "catalog: checkpoint written"]

    def wait_written(self, count):
        deadline = time.time() + 30
        while len(self.written_log()) < count:
            self.assertLess(time.time(), deadline, self.srv.log_text()[-3000:])
            time.sleep(0.05)
        return self.written_log()[count - 1]

    def restart(self, between=None):
        self.assertEqual(self.srv.stop(), 0, self.srv.log_text()[-4000:])
        if between:
            between()
        self.srv.start()

    def catalog(self):
        st, _, health = self.srv.request("GET", "/health")
        self.assertEqual(st, 200)
        return health["catalog"]

    def sql(self, sql, status=200):
        st, _, res = self.srv.request("POST", "/query", body={"sql": sql}, who="owner")
        self.assertEqual(st, status, res)
        return res.get("rows", res)

    def all_rows(self):
        rows = {}
        for name in LOCAL + REMOTE:
            st, _, res = self.srv.request("POST", "/query", who="owner",
                                          body={"sql": "SELECT * FROM %s ORDER BY id" % name})
            rows[name] = res.get("rows") if st == 200 else st
        return rows

    def events(self):
        return self.sql("SELECT dataset, version, op FROM _events ORDER BY ALL")

    def fresh_start_uses_checkpoint(self):
        """Once the index matches the checkpoint, a start reads no manifest at all."""
        cat = self.catalog()
        self.assertEqual(cat["manifests_read"], 0, cat)
        self.assertGreaterEqual(cat["from_checkpoint"], cat["datasets"], cat)
        self.assertNotIn("checkpoint_ignored", cat)

    def settle(self):
        """Restart until a start reads no manifest (a stale start writes a new one)."""
        for _ in range(3):
            n = len(self.written_log())
            self.restart()
            cat = self.catalog()
            if cat["manifests_read"] == 0 and "checkpoint_ignored" not in cat:
                return
            self.wait_written(n + 1)
        self.fail("the checkpoint did not settle: %s" % self.catalog())

    # ---- tests -----------------------------------------------------------------------

    def test_1_written_after_a_start_and_read_by_the_next(self):
        before, events = self.all_rows(), self.events()
        self.assertEqual(self.checkpoints(), [])  # none yet: commits write none here
        self.restart()
        cat = self.catalog()
        self.assertEqual((cat["from_checkpoint"], cat["manifests_read"]), (0, 10), cat)
        line = self.wait_written(1)
        self.assertEqual((line["datasets"], line["batches"]), (10, 10), line)
        self.assertEqual(len(self.checkpoints()), 1)
        self.assertEqual(self.catalog()["checkpoint"], 1)
        self.restart()
        cat = self.catalog()
        self.assertEqual((cat["from_checkpoint"], cat["manifests_read"], cat["load_errors"]),
                         (10, 0, 0), cat)
        self.assertNotIn("checkpoint_ignored", cat)
        self.assertEqual(self.all_rows(), before)
        self.assertEqual(self.events(), events)
        # nothing changed: no new checkpoint
        time.sleep(0.5)
        self.assertEqual(len(self.written_log()), 1)

    def test_2_newer_manifests_are_read_and_deleted_datasets_dropped(self):
        self.ingest("ds_1", "id,v\n100,b\n", "append")
        self.ingest("rds_1", "id,v\n100,b\n", "append", bucket="lake")
        st, _, _ = self.srv.request("DELETE", "/catalog/datasets/ds_2", who="owner")
        self.assertEqual(st, 200)
        before, events = self.all_rows(), self.events()
        n = len(self.written_log())
        # ds_3 disappears from the bucket while the server is down
        self.restart(between=lambda: harness.shutil.rmtree(self.bucket_path("datasets", "ds_3")))
        cat = self.catalog()
        self.assertEqual((cat["from_checkpoint"], cat["manifests_read"], cat["load_errors"]),
                         (6, 3, 0), cat)
        before["ds_3"] = 400
        self.assertEqual(self.all_rows(), before)
        self.assertEqual(self.events(), [e for e in events if e["dataset"] != "ds_3"])
        st, _, _ = self.srv.request("GET", "/catalog/datasets/ds_3", who="owner")
        self.assertEqual(st, 404)
        self.wait_written(n + 1)  # it was stale
        self.restart()
        cat = self.catalog()
        self.assertEqual((cat["from_checkpoint"], cat["manifests_read"]), (9, 0), cat)
        self.assertEqual(self.all_rows(), before)
        self.assertEqual(self.events(), [e for e in events if e["dataset"] != "ds_3"])
        self.assertEqual(len(self.checkpoints()), 2)  # the last two are kept

    def test_3_an_entry_whose_manifest_is_gone_or_damaged_is_not_used(self):
        self.ingest("ds_4", "id,v\n400,b\n", "append")
        self.ingest("ds_5", "id,v\n500,b\n", "append")
        n = len(self.written_log())
        self.restart()  # the checkpoint now holds v2 of both
        self.wait_written(n + 1)
        v2 = lambda name: self.bucket_path("datasets", name, "_manifest", "v%020d.parquet" % 2)

        def tamper():
            os.unlink(v2("ds_4"))  # v2 no longer exists: v1 is the newest
            with open(v2("ds_5"), "wb") as f:  # damaged: the checkpoint's copy is not used
                f.write(b"PAR1 not a manifest")
        self.restart(between=tamper)
        cat = self.catalog()
        self.assertEqual((cat["manifests_read"], cat["load_errors"]), (2, 0), cat)
        self.assertEqual(self.sql("SELECT id FROM ds_4 ORDER BY id"), [{"id": 4}])
        self.assertEqual(self.sql("SELECT id FROM ds_5 ORDER BY id"), [{"id": 5}])
        st, _, ds = self.srv.request("GET", "/catalog/datasets/ds_5", who="owner")
        self.assertEqual(ds["version"], 1)
        self.assertIn("manifest v2 could not be read", ds["warnings"][0])
        # a commit repairs ds_5 (v3); the damaged v2 stays where it is
        self.ingest("ds_5", "id,v\n501,c\n", "append")
        self.assertEqual(self.sql("SELECT id FROM ds_5 ORDER BY id"), [{"id": 5}, {"id": 501}])

    def test_4_a_damaged_checkpoint_is_ignored(self):
        self.settle()
        before, events = self.all_rows(), self.events()
        n = len(self.written_log())
        newest = self.checkpoints()[-1]

        def damage():  # cut short: no footer
            size = os.path.getsize(newest)
            with open(newest, "r+b") as f:
                f.truncate(size // 2)
        self.restart(between=damage)
        cat = self.catalog()
        self.assertIn("cannot be read", cat.get("checkpoint_ignored", ""), cat)
        self.assertEqual((cat["from_checkpoint"], cat["manifests_read"], cat["load_errors"]),
                         (0, 9, 0), cat)
        self.assertEqual(self.all_rows(), before)
        self.assertEqual(self.events(), events)
        self.wait_written(n + 1)  # a good one replaces it
        self.restart()
        self.fresh_start_uses_checkpoint()

    def rewrite_newest(self, select, where=""):
        """Write checkpoint N+1 as SELECT select FROM checkpoint N where (server down)."""
        src = self.checkpoints()[-1]
        seq = int(os.path.basename(src)[1:21]) + 1
        dst = os.path.join(os.path.dirname(src), "c%020d.parquet" % seq)
        duckdb("COPY (SELECT %s FROM read_parquet('%s') %s) TO '%s' (FORMAT parquet)"
               % (select, src, where, dst))

    def test_5_another_format_or_a_checkpoint_that_does_not_add_up_is_ignored(self):
        before = self.all_rows()
        cases = [
            ("* REPLACE (CASE WHEN record = 'checkpoint' THEN 2 ELSE format END AS format)", "",
             "format 2"),
            ("*", "WHERE name IS DISTINCT FROM 'ds_6'", "does not add up"),
            ("* REPLACE (CASE WHEN record = 'dataset' THEN 'elephant' ELSE record END AS record)",
             "", "does not add up"),
        ]
        self.settle()
        for select, where, why in cases:
            n = len(self.written_log())
            self.restart(between=lambda: self.rewrite_newest(select, where))
            cat = self.catalog()
            self.assertIn(why, cat.get("checkpoint_ignored", ""), (select, cat))
            self.assertEqual((cat["from_checkpoint"], cat["load_errors"]), (0, 0), cat)
            self.assertEqual(self.all_rows(), before)
            self.wait_written(n + 1)
            self.assertEqual(len(self.checkpoints()), 2)

    def test_6_a_hostile_entry_is_checked_like_a_manifest(self):
        # an entry whose column type is SQL, not a type: not used, the manifest is read
        n = len(self.written_log())
        self.restart(between=lambda: self.rewrite_newest(
            "* REPLACE (CASE WHEN name = 'ds_7' AND record = 'dataset' THEN "
            "replace(manifest, '\"BIGINT\"', '\"BIGINT); SELECT 1; --\"') ELSE manifest END "
            "AS manifest)"))
        cat = self.catalog()
        self.assertNotIn("checkpoint_ignored", cat)
        self.assertEqual((cat["manifests_read"], cat["load_errors"]), (1, 0), cat)
        self.assertEqual(self.sql("SELECT id, v FROM ds_7"), [{"id": 7, "v": "a"}])
        self.wait_written(n + 1)

    def test_7_written_after_commits_never_by_them(self):
        self.srv.env["LAKEHOUSE_CATALOG_CHECKPOINT_AFTER_COMMITS"] = "3"
        try:
            self.settle()
            n = len(self.written_log())
            for i in range(3):
                self.ingest("ds_0", "id,v\n%d,c\n" % (1000 + i), "append")
            self.wait_written(n + 1)
            self.assertEqual(len(self.checkpoints()), 2)
            self.restart()
            self.fresh_start_uses_checkpoint()
            self.assertEqual(self.sql("SELECT count(*) AS n FROM ds_0"), [{"n": 4}])
        finally:
            del self.srv.env["LAKEHOUSE_CATALOG_CHECKPOINT_AFTER_COMMITS"]

    def test_8_turned_off(self):
        self.srv.env["LAKEHOUSE_CATALOG_CHECKPOINT"] = "false"
        try:
            n, cps = len(self.written_log()), self.checkpoints()
            self.restart()
            cat = self.catalog()
            self.assertEqual((cat["from_checkpoint"], cat["load_errors"]), (0, 0), cat)
            self.assertNotIn("checkpoint", cat)
            self.ingest("ds_0", "id,v\n2000,d\n", "append")
            time.sleep(0.3)
            self.assertEqual((len(self.written_log()), self.checkpoints()), (n, cps))
        finally:
            del self.srv.env["LAKEHOUSE_CATALOG_CHECKPOINT"]

    def test_9_a_bucket_down_at_start_loads_when_back(self):
        self.srv.env["LAKEHOUSE_CATALOG_RELIST_INTERVAL_MS"] = "200"
        count_events = "SELECT count(*) AS n FROM _events WHERE dataset = 'rds_1'"
        events_before = self.sql(count_events)
        try:
            self.restart(between=self.s3.stop)
            cat = self.catalog()
            self.assertEqual(cat["buckets_unlisted"], ["lake"], cat)
            self.assertEqual(self.sql("SELECT * FROM rds_0", status=400)["error"]["code"],
                             "invalid_sql")
            self.assertTrue(self.sql("SELECT * FROM ds_1"))  # the primary's are unaffected
            self.s3.start()
            deadline = time.time() + 30
            while self.catalog()["buckets_unlisted"]:
                self.assertLess(time.time(), deadline, self.srv.log_text()[-3000:])
                time.sleep(0.1)
            self.assertEqual(self.sql("SELECT * FROM rds_0"), [{"id": 0, "v": "r"}])
            self.assertEqual(self.sql(count_events), events_before)
            logged = [l for l in self.srv.log_lines() if l.get("msg") == "catalog: bucket listed again"]
            self.assertEqual((logged[-1]["bucket"], logged[-1]["datasets"]), ("lake", 2))
        finally:
            del self.srv.env["LAKEHOUSE_CATALOG_RELIST_INTERVAL_MS"]
            if self.s3.proc is None:
                self.s3.start()


if __name__ == "__main__":
    unittest.main()
