"""End-to-end: file ingest, the catalog and SQL over datasets — on the primary (fs)
bucket and on a real S3 wire-protocol server (s3rver) — across restarts, drift and
concurrent writers."""
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402

ADMIN, WRITER, READER = "tok-admin-cat-00001", "tok-writer-cat-0001", "tok-reader-cat-0001"
LIMITED = "tok-limited-cat-0001"
MIXED = "id,name,score,joined,note\n1,alice,10,2024-01-05,x\n2,bob,N/A,2024-02-01,\n3,carol,,2024-03-09,z\n"


def ingest_path(**params):
    return "/ingest/file?" + urllib.parse.urlencode(params)


class Catalog(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("catalog")
        cls.s3 = s3util.S3rver(os.path.join(cls.tmp, "s3data"), ["lake"]).start()
        cls.addClassCleanup(cls.s3.stop)
        secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[s3]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n')
        os.chmod(secrets, 0o600)
        cls.extra = ('\n[storage]\nprobe_interval_ms = 0\n[secrets]\nfile = "%s"\n[[bucket]]\n'
                     'name = "lake"\nbackend = "s3"\nendpoint = "http://127.0.0.1:%d"\nbucket = "lake"\n'
                     'secret_ref = "s3"\n' % (secrets, cls.s3.port))
        cls.principals = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
                          ("analyst", READER, ["reader"])]
        cls.start_server(principals=cls.principals + [("lake_only", LIMITED, ["writer"], ["lake"])],
                         extra_toml=cls.extra)

    def ingest(self, body, who="loader", **params):
        return self.srv.request("POST", ingest_path(**params), body=body, who=who,
                                headers={"Content-Type": "text/csv"})

    def sql(self, sql, who="analyst"):
        st, _, res = self.srv.request("POST", "/query", body={"sql": sql}, who=who)
        self.assertEqual(st, 200, res)
        return res["rows"]

    def test_1_mixed_csv_schema(self):
        st, _, res = self.ingest(MIXED, dataset="people", format="csv", description="staff list",
                                 tags="crm,hr", sensitivity="pii", freshness_sla_s="3600",
                                 source_system="ats", source_object="people.csv")
        self.assertEqual(st, 201, res)
        self.assertEqual((res["version"], res["rows"]), (1, 3))
        types = {c["name"]: c["type"] for c in res["columns"]}
        self.assertEqual(types, {"id": "BIGINT", "name": "VARCHAR", "score": "VARCHAR",
                                 "joined": "DATE", "note": "VARCHAR"})
        # the dataset is pii: a reader of clearance internal sees its columns masked
        masked = self.sql("SELECT id, score, note FROM people ORDER BY id")
        self.assertEqual(masked, [{"id": None, "score": None, "note": None}] * 3)
        rows = self.sql("SELECT id, score, note FROM people ORDER BY id", who="owner")
        self.assertEqual(rows, [{"id": 1, "score": "10", "note": "x"},
                                {"id": 2, "score": "N/A", "note": None},
                                {"id": 3, "score": None, "note": "z"}])
        st, _, d = self.srv.request("GET", "/catalog/datasets/people", who="analyst")
        self.assertEqual(st, 200)
        self.assertEqual(d["metadata"]["sensitivity"], "pii")
        self.assertEqual(d["metadata"]["tags"], ["crm", "hr"])
        self.assertEqual(d["metadata"]["lineage"]["source_system"], "ats")
        self.assertEqual(d["metadata"]["lineage"]["source_object"], "people.csv")
        self.assertEqual(d["metadata"]["lineage"]["ingested_by"], "loader")
        self.assertEqual(d["freshness"]["status"], "fresh")
        self.assertEqual(d["files"][0]["rows"], 3)
        # the manifest is an open-format Parquet file in the bucket
        mdir = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", "people", "_manifest")
        self.assertEqual(os.listdir(mdir), ["v%020d.parquet" % 1])
        # (user SQL reads datasets only, never files: the file's framing is checked here)
        with open(os.path.join(mdir, "v%020d.parquet" % 1), "rb") as f:
            blob = f.read()
        self.assertEqual((blob[:4], blob[-4:]), (b"PAR1", b"PAR1"))
        st, _, res = self.srv.request("POST", "/query", who="analyst", body={
            "sql": "SELECT * FROM read_parquet('%s/v%020d.parquet')" % (mdir, 1)})
        self.assertEqual((st, res["error"]["code"]), (403, "sql_forbidden"), res)

    def test_2_late_mixed_value_becomes_string(self):
        # a value that breaks the sampled type far down the file: still ingested, as text
        body = "code,label\n" + "".join("%d,l%d\n" % (i, i) for i in range(30000)) + "N/A,last\n"
        st, _, res = self.ingest(body, dataset="codes", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual({c["name"]: c["type"] for c in res["columns"]}["code"], "VARCHAR")
        self.assertEqual(res["rows"], 30001)

    def test_3_append_and_mismatch(self):
        self.assertEqual(self.ingest(MIXED, dataset="acct", format="csv")[0], 201)
        # same columns, numbers only in "score": the dataset's type wins
        st, _, res = self.ingest("id,name,score,joined,note\n4,dan,7,2024-04-01,w\n", dataset="acct",
                                 format="csv", mode="append")
        self.assertEqual((st, res["version"], res["total_rows"]), (201, 2, 4), res)
        cases = [("id,name,joined,note\n5,eve,2024-01-01,n\n", "score"),
                 ("id,name,score,joined,note,extra\n5,e,1,2024-01-01,n,1\n", "extra"),
                 ("id,nom,score,joined,note\n5,e,1,2024-01-01,n\n", "nom"),
                 ("id,name,score,joined,note\nfive,e,1,2024-01-01,n\n", "id")]
        for body, column in cases:
            st, _, err = self.ingest(body, dataset="acct", format="csv", mode="append")
            self.assertEqual(st, 400, err)
            self.assertIn(column, err["error"]["message"] + err["error"].get("detail", ""))
        # nothing visible changed: still version 2, 4 rows, no stray data files
        st, _, d = self.srv.request("GET", "/catalog/datasets/acct", who="analyst")
        self.assertEqual((d["version"], d["row_count"]), (2, 4))
        data_dir = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", "acct", "data")
        self.assertEqual(len(os.listdir(data_dir)), 2)
        self.assertEqual(os.listdir(os.path.join(self.srv.data_dir, "work")), [])
        st, _, res = self.ingest("a\n1\n", dataset="acct", format="csv", mode="replace")
        self.assertEqual((st, res["total_rows"]), (201, 1))
        self.assertEqual(self.sql("SELECT * FROM acct"), [{"a": 1}])

    def test_4_formats_and_bad_input(self):
        nd = '{"k": 1, "v": "a"}\n{"k": 2, "v": null}\n'
        self.assertEqual(self.ingest(nd, dataset="nd", format="ndjson")[0], 201)
        self.assertEqual(self.sql("SELECT k, v FROM nd ORDER BY k"), [{"k": 1, "v": "a"}, {"k": 2, "v": None}])
        arr = '[{"k": 1}, {"k": 2}, {"k": 3}]'
        self.assertEqual(self.ingest(arr, dataset="arr", format="json")[0], 201)
        self.assertEqual(self.sql("SELECT sum(k) AS s FROM arr"), [{"s": 6}])
        # Parquet in: reuse a data file we wrote
        src = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", "nd", "data")
        with open(os.path.join(src, os.listdir(src)[0]), "rb") as f:
            pq = f.read()
        self.assertEqual(self.ingest(pq, dataset="pq", format="parquet")[0], 201)
        self.assertEqual(self.sql("SELECT count(*) AS n FROM pq"), [{"n": 2}])
        bad = [(dict(format="csv"), 400, "invalid_parameter"),
               (dict(dataset="Bad-Name", format="csv"), 400, "invalid_parameter"),
               (dict(dataset="x1", format="xlsx"), 400, "invalid_parameter"),
               (dict(dataset="x1", format="csv", mode="upsert"), 400, "invalid_parameter"),
               (dict(dataset="x1", format="csv", colour="red"), 400, "invalid_parameter"),
               (dict(dataset="x1", format="csv", sensitivity="secret"), 400, "invalid_metadata"),
               (dict(dataset="x1", format="csv", freshness_sla_s="soon"), 400, "invalid_metadata"),
               (dict(dataset="x1", format="csv", bucket="nope"), 404, "bucket_not_found"),
               (dict(dataset="people", format="csv"), 409, "dataset_exists"),
               (dict(dataset="ghost", format="csv", mode="append"), 404, "dataset_not_found")]
        for params, status, code in bad:
            st, _, err = self.ingest("a\n1\n", **params)
            self.assertEqual((st, err["error"]["code"]), (status, code), params)
        st, _, err = self.ingest("", dataset="x1", format="csv")
        self.assertEqual((st, err["error"]["code"]), (400, "empty_body"))
        st, _, err = self.ingest('{"k": ', dataset="x1", format="json")
        self.assertEqual((st, err["error"]["code"]), (400, "invalid_file"))
        st, _, err = self.ingest(b"PAR1 not really", dataset="x1", format="parquet")
        self.assertEqual((st, err["error"]["code"]), (400, "invalid_file"))
        st, _, err = self.ingest("a\n1\n", who="analyst", dataset="x1", format="csv")
        self.assertEqual(st, 403)
        st, _, _ = self.srv.request("GET", "/catalog/datasets/x1", who="analyst")
        self.assertEqual(st, 404)  # none of that left a dataset behind

    def test_5_patch_delete_versions(self):
        self.assertEqual(self.ingest(MIXED, dataset="tmpds", format="csv")[0], 201)
        st, _, m = self.srv.request("PATCH", "/catalog/datasets/tmpds", who="loader",
                                    body={"owner": "finance", "tags": ["q3"], "freshness_sla_s": None})
        self.assertEqual((st, m["version"], m["metadata"]["owner"]), (200, 2, "finance"), m)
        for body, code in (({}, "invalid_metadata"), ({"sensitivity": "secret"}, "invalid_metadata"),
                           ({"colour": 1}, "invalid_metadata"),
                           ({"tags": "q3"}, "invalid_metadata"), ({"source_system": "x"}, "invalid_metadata")):
            st, _, err = self.srv.request("PATCH", "/catalog/datasets/tmpds", who="loader", body=body)
            self.assertEqual((st, err["error"]["code"]), (400, code), body)
        st, _, lst = self.srv.request("GET", "/catalog/datasets?tag=q3", who="analyst")
        self.assertEqual([d["name"] for d in lst["datasets"]], ["tmpds"])
        st, _, lst = self.srv.request("GET", "/catalog/datasets?owner=finance&q=", who="analyst")
        self.assertEqual([d["name"] for d in lst["datasets"]], ["tmpds"])
        st, _, lst = self.srv.request("GET", "/catalog/datasets?q=STAFF", who="analyst")
        self.assertIn("people", [d["name"] for d in lst["datasets"]])
        st, _, m = self.srv.request("DELETE", "/catalog/datasets/tmpds", who="loader")
        self.assertEqual((st, m["state"], m["version"]), (200, "deleted", 3))
        st, _, err = self.srv.request("POST", "/query", body={"sql": "SELECT * FROM tmpds"}, who="analyst")
        self.assertEqual(st, 400)
        st, _, lst = self.srv.request("GET", "/catalog/datasets", who="analyst")
        self.assertNotIn("tmpds", [d["name"] for d in lst["datasets"]])
        st, _, v = self.srv.request("GET", "/catalog/datasets/tmpds/versions", who="analyst")
        self.assertEqual([x["change"] for x in v["versions"]], ["create", "patch", "delete"])
        self.assertIsNone(v["next_from"])
        st, _, v = self.srv.request("GET", "/catalog/datasets/tmpds/versions?limit=2", who="analyst")
        self.assertEqual(([x["version"] for x in v["versions"]], v["next_from"]), ([1, 2], 3))
        st, _, v = self.srv.request("GET", "/catalog/datasets/tmpds/versions?from=3&limit=2", who="analyst")
        self.assertEqual(([x["version"] for x in v["versions"]], v["next_from"]), ([3], None))
        for bad in ("limit=0", "limit=5000", "from=x", "from=0"):
            st, _, err = self.srv.request("GET", "/catalog/datasets/tmpds/versions?" + bad, who="analyst")
            self.assertEqual(st, 400, bad)
        # the data is kept until a sweep, and the name can be used again
        self.assertEqual(self.ingest("b\n2\n", dataset="tmpds", format="csv")[2]["version"], 4)
        self.assertEqual(self.sql("SELECT * FROM tmpds"), [{"b": 2}])
        st, _, err = self.srv.request("DELETE", "/catalog/datasets/nosuch", who="loader")
        self.assertEqual(st, 404)

    def test_6_s3_dataset_and_cache(self):
        st, _, res = self.ingest(MIXED, dataset="remote_people", format="csv", bucket="lake")
        self.assertEqual(st, 201, res)
        st, _, d = self.srv.request("GET", "/catalog/datasets/remote_people", who="analyst")
        self.assertEqual(d["bucket"], "lake")
        self.assertEqual(self.sql("SELECT count(*) AS n FROM remote_people"), [{"n": 3}])
        _, _, h1 = self.srv.request("GET", "/health")
        for _ in range(3):
            self.sql("SELECT sum(id) AS s FROM remote_people")
        _, _, h2 = self.srv.request("GET", "/health")
        self.assertEqual(h1["cache"]["misses"], h2["cache"]["misses"])  # no bytes from S3
        # the objects really are in the S3 bucket
        st, _, page = self.srv.request("GET", "/storage/buckets/lake/objects?prefix=datasets/remote_people/",
                                       who="owner")
        keys = [o["key"] for o in page["objects"]]
        self.assertTrue(any("/_manifest/v00000000000000000001.parquet" in k for k in keys), keys)
        self.assertTrue(any("/data/" in k for k in keys), keys)

    def test_7_async_ingest_job(self):
        st, h, job = self.ingest(MIXED, dataset="async_people", format="csv", **{"async": "true"})
        self.assertEqual(st, 202, job)
        self.assertEqual(job["kind"], "ingest")
        for _ in range(200):
            st, _, job = self.srv.request("GET", "/jobs/" + job["id"], who="loader")
            if job["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(job["result"]["rows"], 3)
        self.assertEqual(job["progress"], {"done": 3, "total": 3, "unit": "rows"})
        # cancelling a long ingest stops DuckDB and leaves nothing behind
        big = "a,b,c\n" + "".join("%d,text %d,%d.5\n" % (i, i, i) for i in range(1500000))
        st, h, job = self.ingest(big, dataset="cancelled_ds", format="csv", **{"async": "true"})
        self.assertEqual(st, 202, job)
        time.sleep(0.05)
        self.srv.request("DELETE", "/jobs/" + job["id"], who="loader")
        for _ in range(400):
            st, _, job = self.srv.request("GET", "/jobs/" + job["id"], who="loader")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.05)
        self.assertIn(job["state"], ("cancelled", "succeeded"), job)
        if job["state"] == "cancelled":
            st, _, _ = self.srv.request("GET", "/catalog/datasets/cancelled_ds", who="analyst")
            self.assertEqual(st, 404)
            self.assertFalse(os.path.exists(os.path.join(self.srv.data_dir, "buckets", "primary",
                                                         "datasets", "cancelled_ds")))
        st, h, job = self.ingest("x\n1\n", dataset="people", format="csv", **{"async": "true"})
        for _ in range(200):
            st, _, job = self.srv.request("GET", "/jobs/" + job["id"], who="loader")
            if job["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        self.assertEqual((job["state"], job["error"]["code"]), ("failed", "dataset_exists"))

    def test_7b_buckets_and_names(self):
        # no bucket= means primary: a principal limited to "lake" may not write there
        st, _, err = self.ingest("a\n1\n", who="lake_only", dataset="sneaky", format="csv")
        self.assertEqual((st, err["error"]["code"]), (403, "forbidden"), err)
        st, _, res = self.ingest("a\n1\n", who="lake_only", dataset="lake_ok", format="csv", bucket="lake")
        self.assertEqual(st, 201, res)
        # datasets do not live in profile buckets
        st, _, err = self.ingest("a\n1\n", dataset="prof", format="csv", bucket="profile:loader")
        self.assertIn(st, (400, 404), err)
        # a deleted dataset keeps its bucket: re-creating it elsewhere is refused, plain works
        self.assertEqual(self.ingest("a\n1\n", dataset="moved", format="csv", bucket="lake")[0], 201)
        self.assertEqual(self.srv.request("DELETE", "/catalog/datasets/moved", who="loader")[0], 200)
        st, _, err = self.ingest("a\n1\n", dataset="moved", format="csv", bucket="primary")
        self.assertEqual((st, err["error"]["code"]), (409, "dataset_elsewhere"))
        st, _, res = self.ingest("a\n2\n", dataset="moved", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.sql("SELECT a FROM moved"), [{"a": 2}])
        # a column named like the row alias does not change the answer's shape
        rows = self.sql("SELECT 1 AS lh_row, 2 AS lh_row_1, 3 AS b")
        self.assertEqual(rows, [{"lh_row": 1, "lh_row_1": 2, "b": 3}])

    def test_7c_hostile_manifest_is_not_run(self):
        # a manifest planted in a bucket (admins can write there) whose column type is SQL
        evil_type = "INTEGER AS x WHERE false; COPY (SELECT 42) TO '%s/pwned.csv'; SELECT NULL::INTEGER" % (
            os.path.join(self.srv.data_dir, "buckets", "primary", "datasets"))
        sql = ("SELECT * FROM (VALUES ('dataset', 'evil', 1::BIGINT, 'live', 'create', '', '', 0::BIGINT, 0::BIGINT, '{}', "
               "NULL, NULL, NULL, NULL, NULL, NULL, NULL), ('column', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
               "NULL, NULL, NULL, NULL, 'c', '%s', 0)) t(record, name, version, state, change, created_at, created_by, "
               "row_count, bytes, metadata, path, file_bytes, file_rows, file_kind, column_name, column_type, position)"
               % evil_type.replace("'", "''"))
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        conn.request("POST", "/query", body=json.dumps({"sql": sql, "format": "parquet"}),
                     headers={"Authorization": "Bearer " + ADMIN, "Content-Type": "application/json"})
        resp = conn.getresponse()
        manifest = resp.read()
        conn.close()
        self.assertEqual(resp.status, 200, manifest[:300])
        st, _, _ = self.srv.request("PUT", "/storage/buckets/primary/objects/datasets/evil/_manifest/v%020d.parquet" % 1,
                                    body=manifest, who="owner")
        self.assertEqual(st, 201)
        self.assertEqual(self.srv.stop(), 0, self.srv.log_text()[-4000:])
        self.srv.start()
        self.assertFalse(os.path.exists(os.path.join(self.srv.data_dir, "buckets", "primary", "datasets",
                                                     "pwned.csv")))
        st, _, _ = self.srv.request("GET", "/catalog/datasets/evil", who="analyst")
        self.assertEqual(st, 404)
        _, _, health = self.srv.request("GET", "/health")
        self.assertGreaterEqual(health["catalog"]["load_errors"], 1)
        # clean up, so later restarts in this class start clean
        self.srv.request("DELETE", "/storage/buckets/primary/objects/datasets/evil/_manifest/v%020d.parquet" % 1,
                         who="owner")

    def test_8_restart_resync_and_conflict(self):
        before = self.sql("SELECT count(*) AS n, sum(id) AS s FROM people")
        _, _, lst_before = self.srv.request("GET", "/catalog/datasets", who="analyst")
        self.assertEqual(self.srv.stop(), 0, self.srv.log_text()[-4000:])
        self.srv.start()
        self.assertEqual(self.sql("SELECT count(*) AS n, sum(id) AS s FROM people"), before)
        _, _, lst_after = self.srv.request("GET", "/catalog/datasets", who="analyst")
        strip = lambda l: sorted((d["name"], d["version"], d["row_count"], d["bucket"]) for d in l["datasets"])
        self.assertEqual(strip(lst_after), strip(lst_before))
        _, _, health = self.srv.request("GET", "/health")
        self.assertGreaterEqual(health["catalog"]["datasets"], 5)
        self.assertIn("load_ms", health["catalog"])
        # drift: a data file replaced behind the catalog's back (same key, other rows)
        st, _, d = self.srv.request("GET", "/catalog/datasets/nd", who="analyst")
        key = [f["path"] for f in d["files"] if f["kind"] == "base"][0]
        src = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", "codes", "data")
        with open(os.path.join(src, os.listdir(src)[0]), "rb") as f:
            other = f.read()
        st, _, _ = self.srv.request("PUT", "/storage/buckets/primary/objects/" + key, body=other, who="owner")
        self.assertEqual(st, 201)
        st, _, res = self.srv.request("POST", "/catalog/resync-missing", who="owner")
        self.assertEqual(st, 200, res)
        self.assertIn("nd", res["resynced"])
        st, _, d = self.srv.request("GET", "/catalog/datasets/nd", who="analyst")
        data = [f for f in d["files"] if f["kind"] == "base"]
        self.assertEqual((d["row_count"], d["change"], data[0]["rows"]), (30001, "resync", 30001))
        self.assertEqual([c["name"] for c in d["columns"]], ["code", "label"])
        st, _, again = self.srv.request("POST", "/catalog/resync-missing", who="owner")
        self.assertEqual(again["resynced"], [])
        st, _, d = self.srv.request("POST", "/catalog/datasets/people/resync", who="loader")
        self.assertEqual((st, d["row_count"], d["change"]), (200, 3, "resync"))
        # a second server on the same bucket: whoever commits a version second gets 409
        other_srv = harness.Server(principals=self.principals, extra_toml=self.extra)
        with open(other_srv.config) as f:
            text = f.read()
        with open(other_srv.config, "w") as f:
            f.write(text.replace(other_srv.data_dir, self.srv.data_dir))
        other_srv.data_dir = self.srv.data_dir
        try:
            other_srv.start()
            row = "id,name,score,joined,note\n9,zed,1,2024-01-01,n\n"
            st, _, res = other_srv.request("POST", ingest_path(dataset="people", format="csv", mode="append"),
                                           body=row, who="loader")
            self.assertEqual(st, 201, res)
            st, _, err = self.ingest(row, dataset="people", format="csv", mode="append")
            self.assertEqual((st, err["error"]["code"]), (409, "manifest_conflict"), err)
        finally:
            other_srv.stop()
            harness.shutil.rmtree(other_srv.dir, ignore_errors=True)

    def test_9_sweep(self):
        put = lambda key: self.srv.request("PUT", "/storage/buckets/primary/objects/" + key, body=b"junk",
                                           who="owner")[0]
        self.assertEqual(put("datasets/people/data/00000000000000000001-dead-0.parquet"), 201)
        self.assertEqual(put("datasets/ghostds/data/leftover-0.parquet"), 201)
        before = self.sql("SELECT count(*) AS n FROM people")
        # young files are left alone (an ingest on another server may be about to commit)
        st, _, res = self.srv.request("POST", "/maintenance/sweep", who="owner")
        self.assertEqual((st, res["removed"]), (200, []), res)
        self.assertGreaterEqual(res["kept_young"], 2)
        st, _, res = self.srv.request("POST", "/maintenance/sweep?grace_s=0&dry_run=true", who="owner")
        dry = sorted(r["key"] for r in res["removed"])
        planted = ["datasets/ghostds/data/leftover-0.parquet",
                   "datasets/people/data/00000000000000000001-dead-0.parquet"]
        # the planted files, plus the data file of the commit that lost the race in test 8
        # (kept then, because the loser cannot be sure its manifest was not written)
        self.assertEqual([k for k in dry if k in planted], planted, res)
        self.assertEqual(len(dry), 3, res)
        root = os.path.join(self.srv.data_dir, "buckets", "primary")
        self.assertTrue(os.path.exists(os.path.join(root, dry[0])))
        st, _, res = self.srv.request("POST", "/maintenance/sweep?grace_s=0", who="owner")
        self.assertEqual(sorted(r["key"] for r in res["removed"]), dry)
        self.assertEqual(res["errors"], [])
        for key in dry:
            self.assertFalse(os.path.exists(os.path.join(root, key)))
        # everything any version references is still there: current data and history
        self.assertEqual(self.sql("SELECT count(*) AS n FROM people"), before)
        st, _, d = self.srv.request("GET", "/catalog/datasets/tmpds/versions", who="analyst")
        self.assertTrue(all("error" not in v for v in d["versions"]))
        for f in os.listdir(os.path.join(root, "datasets", "tmpds", "data")):
            self.assertTrue(f.endswith(".parquet"))
        self.assertEqual(len(os.listdir(os.path.join(root, "datasets", "tmpds", "data"))), 2)
        for bad in ("grace_s=-1", "grace_s=soon", "dry_run=maybe"):
            st, _, err = self.srv.request("POST", "/maintenance/sweep?" + bad, who="owner")
            self.assertEqual(st, 400, bad)
        st, _, err = self.srv.request("POST", "/maintenance/sweep", who="loader")
        self.assertEqual(st, 403)


    def test_9_sweep_failures_are_journaled(self):
        """The sweep works through the bucket layer: a bucket it cannot list is in its
        report and in /storage/errors, like any other failed bucket operation."""
        self.s3.stop()
        try:
            st, _, out = self.srv.request("POST", "/maintenance/sweep?grace_s=0", who="owner")
            self.assertEqual(st, 200, out)
            self.assertIn("lake", {e.get("bucket") for e in out["errors"]}, out)
            st, _, errors = self.srv.request("GET", "/storage/errors?bucket=lake&limit=1000",
                                             who="owner")
            self.assertEqual(st, 200, errors)
            self.assertIn(("list", "datasets/"), {(e["op"], e["key"]) for e in errors["errors"]})
        finally:
            self.s3.start()

    def test_9_row_changes_on_s3(self):
        """Deltas, events, time travel and compaction on a bucket behind the S3 protocol."""
        st, _, res = self.ingest("id,v\n1,a\n2,b\n", dataset="s3rows", format="csv",
                                 bucket="lake", primary_key="id")
        self.assertEqual(st, 201, res)
        st, _, res = self.srv.request("POST", "/datasets/s3rows/rows",
                                      body={"upsert": [{"id": 2, "v": "z"}], "delete": [{"id": 1}]},
                                      who="loader")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.sql("SELECT * FROM s3rows"), [{"id": 2, "v": "z"}])
        st, _, res = self.srv.request("POST", "/query", body={"sql": "SELECT count(*) AS n FROM s3rows",
                                                              "as_of": {"version": 1}}, who="analyst")
        self.assertEqual(res["rows"], [{"n": 2}])
        st, _, ev = self.srv.request("GET", "/journal/events?dataset=s3rows", who="analyst")
        self.assertEqual(sorted((e["op"], e["field"] or "") for e in ev["events"]),
                         [("create", ""), ("delete", "id"), ("delete", "v"), ("update", "v")])
        self.assertEqual(self.sql("SELECT count(*) AS n FROM _events WHERE dataset = 's3rows'"),
                         [{"n": 4}])
        st, _, res = self.srv.request("POST", "/datasets/s3rows/compact", who="loader")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.sql("SELECT * FROM s3rows"), [{"id": 2, "v": "z"}])

if __name__ == "__main__":
    unittest.main(verbosity=2)
