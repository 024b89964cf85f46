"""End-to-end: the cost of a large catalog. Datasets are loaded at start in batches on
several threads, and resolved by name when a query names them instead of being views
in DuckDB's catalog (speed itself is measured in bench/catalog_scale, not here)."""
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-scale-0001"
N_DATASETS = 70  # more than one load batch (64)
WIDE_COLUMNS = 300


def name_of(i):
    return "ds_%03d" % i


class CatalogScale(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]
    extra_toml = "\n[storage]\nprobe_interval_ms = 0\n[catalog]\nload_threads = 3\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for i in range(N_DATASETS):
            cls.create(name_of(i), "id,v\n%d,a\n%d,b\n" % (i, i + 1000))
        header = ",".join("c%d" % i for i in range(WIDE_COLUMNS))
        row = ",".join(["1", "x", "2024-01-02", "1.5"] * (WIDE_COLUMNS // 4))
        cls.create("wide", header + "\n" + row + "\n")

    @classmethod
    def create(cls, name, csv):
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": name, "format": "csv", "mode": "create"})
        st, _, res = cls.srv.request("POST", path, body=csv, who="owner",
                                     headers={"Content-Type": "text/csv"})
        assert st == 201, (st, res)

    def sql(self, sql, status=200):
        st, _, res = self.srv.request("POST", "/query", body={"sql": sql}, who="owner")
        self.assertEqual(st, status, res)
        return res.get("rows", res)

    def restart(self):
        self.assertEqual(self.srv.stop(), 0, self.srv.log_text()[-4000:])
        # what is tested is that every dataset loads; how fast is bench/catalog_scale's
        # figure (a sanitizer build on a busy machine takes far longer than 20 s)
        self.srv.start(timeout=180)

    def check_all(self):
        for i in range(N_DATASETS):
            rows = self.sql("SELECT id, v FROM %s ORDER BY id" % name_of(i))
            self.assertEqual(rows, [{"id": i, "v": "a"}, {"id": i + 1000, "v": "b"}], name_of(i))

    def test_1_datasets_are_not_catalog_views(self):
        # a query pays only for what it names: the datasets are no entries of DuckDB's
        # catalog that every statement's binder and every connection carries
        # (user SQL may not list DuckDB's catalog at all; relations.c keeps the names)
        res = self.sql("SELECT count(*) AS n FROM duckdb_views()", status=403)
        self.assertEqual(res["error"]["code"], "sql_forbidden")
        self.assertEqual(self.sql("SELECT count(*) AS n FROM ds_001"), [{"n": 2}])

    def test_2_names_resolve_like_views(self):
        self.assertEqual(self.sql("SELECT count(*) AS n FROM DS_002"), [{"n": 2}])
        self.assertEqual(self.sql('SELECT x.id FROM "ds_003" AS x WHERE x.v = \'a\''),
                         [{"id": 3}])
        rows = self.sql("SELECT a.id FROM ds_004 a JOIN ds_005 b ON a.id + 1 = b.id ORDER BY 1")
        self.assertEqual(rows, [{"id": 4}, {"id": 1004}])
        # a CTE of the same name wins, as over a view
        self.assertEqual(self.sql("WITH ds_006 AS (SELECT 7 AS id) SELECT id FROM ds_006"),
                         [{"id": 7}])
        res = self.sql("SELECT * FROM no_such_dataset", status=400)
        self.assertIn("no_such_dataset", json.dumps(res["error"]))

    def test_3_every_dataset_loads_after_restart(self):
        self.restart()
        st, _, health = self.srv.request("GET", "/health")
        self.assertEqual(health["catalog"]["datasets"], N_DATASETS + 1)
        self.assertEqual(health["catalog"]["load_errors"], 0)
        self.check_all()
        cols = self.sql("SELECT * FROM wide")
        self.assertEqual(len(cols[0]), WIDE_COLUMNS)
        st, _, ds = self.srv.request("GET", "/catalog/datasets/wide", who="owner")
        types = [c["type"] for c in ds["columns"]]
        self.assertEqual(types[:4], ["BIGINT", "VARCHAR", "DATE", "DOUBLE"])

    def test_4_a_damaged_manifest_does_not_take_its_batch(self):
        # one file of a batch that DuckDB cannot read fails the batch's statement; the
        # others of that batch still load, one by one
        key = os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", "ds_010",
                           "_manifest", "v%020d.parquet" % 2)
        with open(key, "wb") as f:
            f.write(b"PAR1 not a manifest")
        try:
            self.restart()
            for i in range(N_DATASETS):
                if i != 10:
                    self.assertEqual(self.sql("SELECT count(*) AS n FROM %s" % name_of(i)),
                                     [{"n": 2}], name_of(i))
        finally:
            os.unlink(key)
            self.restart()

    def test_5_deleted_and_changed_datasets(self):
        st, _, res = self.srv.request("DELETE", "/catalog/datasets/ds_020", who="owner")
        self.assertEqual(st, 200, res)
        self.sql("SELECT * FROM ds_020", status=400)
        self.create("ds_020", "id,w\n5,z\n")
        self.assertEqual(self.sql("SELECT * FROM ds_020"), [{"id": 5, "w": "z"}])
        self.restart()
        self.assertEqual(self.sql("SELECT * FROM ds_020"), [{"id": 5, "w": "z"}])


if __name__ == "__main__":
    unittest.main()
