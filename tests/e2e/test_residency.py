"""End-to-end: residency. A text index over a dataset in the `client_eu` bucket, with an
eval set and a trial run: every object derived from the dataset (generations, live log,
eval set, trial journal) is in client_eu, and no object of any other bucket names the
index or the eval set or holds a byte of the dataset's text values (the buckets are fs
folders: every file is listed and read). Rows staged in a workspace over that dataset (their
delta files and the values left to publish), and the row changes its publish journals, are
in client_eu too; the workspace's versions in the primary bucket hold keys and hashes only. After a restart the index is loaded from
client_eu and searches; an index of the old layout (its files in the primary bucket) still
loads from there."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-residency-1"
WORDS = ["marzipan", "quokka", "tundra", "zeppelin", "obsidian", "fjord", "lantern", "saffron",
         "walrus", "juniper", "halcyon", "quasar"]


def note(i):
    # a distinctive phrase per row: none of these strings occurs anywhere by chance
    return "eutext%04d %s %s %s residentvalue%04d" % (
        i, WORDS[i % 12], WORDS[(i * 5) % 12], WORDS[(i * 7) % 12], i)


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        for n in names:
            out.append(os.path.join(d, n))
    return out


class Residency(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("residency")
        cls.eu_root = os.path.join(cls.tmp, "client_eu")
        os.makedirs(cls.eu_root)
        cls.extra_toml = '\n[[bucket]]\nname = "client_eu"\nbackend = "fs"\nroot = "%s"\n' % (
            cls.eu_root)
        super().setUpClass()
        cls.primary_root = os.path.join(cls.srv.data_dir, "buckets", "primary")
        csv = "note_id,body\n" + "".join("%d,%s\n" % (i, note(i)) for i in range(40))
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=eu_notes&format=csv&bucket=client_eu"
                                   "&primary_key=note_id",
                                   csv, who="owner", headers={"Content-Type": "text/csv"})
        assert st == 201, b
        for name in ("eu_idx", "legacy_idx"):
            st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
                "name": name, "dataset": "eu_notes", "id_column": "note_id", "text_column": "body",
                "async": False})
            assert st == 201, b

    def req(self, method, path, body=None, status=200):
        st, _, b = self.srv.request(method, path, body=body, who="owner")
        self.assertEqual(st, status, b)
        return b

    def wait_job(self, job_id):
        for _ in range(1200):
            job = self.req("GET", "/jobs/" + job_id)
            if job["state"] in ("succeeded", "failed", "cancelled"):
                self.assertEqual(job["state"], "succeeded", job)
                return job
            time.sleep(0.05)
        self.fail("job did not finish")

    def other_roots(self):
        """Every bucket folder but client_eu's (the primary one; the data dir holds it)."""
        return [self.primary_root]

    def assert_nothing_outside(self, names, values=()):
        needles = [n.encode() for n in names] + [note(i).encode() for i in range(40)]
        needles += [v.encode() for v in values]
        needles += [b"eutext%04d" % i for i in range(40)] + [b"residentvalue%04d" % i
                                                             for i in range(40)]
        for root in self.other_roots():
            for path in files_under(root):
                rel = os.path.relpath(path, root)
                for n in names:
                    self.assertNotIn(n, rel, "%s is outside client_eu" % rel)
                with open(path, "rb") as f:
                    data = f.read()
                for needle in needles:
                    self.assertNotIn(needle, data, "%s holds %r" % (rel, needle))

    def test_a_everything_in_client_eu(self):
        self.assertEqual(self.req("GET", "/vectors/indexes/eu_idx")["bucket"], "client_eu")
        ev = self.req("POST", "/vectors/hnsw/evals/eu_eval/autogen",
                      {"index": "eu_idx", "n_queries": 20, "k": 3}, 201)
        self.assertEqual(ev["queries"], 20)
        self.req("POST", "/vectors/hnsw/evals/eu_eval/autogen", {"index": "eu_idx"}, 409)
        b = self.req("POST", "/vectors/hnsw/trial", {
            "index": "eu_idx", "eval": "eu_eval",
            "configs": [{"m": 4, "ef_construction": 8, "ef_search": 4},
                        {"m": 8, "ef_construction": 40, "ef_search": 20}]}, 202)
        self.wait_job(b["job_id"])
        self.assertEqual(len(self.req("GET", "/vectors/hnsw/trials/eu_idx")["trials"]), 2)
        rows = self.req("POST", "/query", {
            "sql": "SELECT count(*) AS n FROM _hnsw_trials WHERE index = 'eu_idx'"})["rows"]
        self.assertEqual(rows[0]["n"], 2)
        self.assertIn("eu_eval", [e["eval"] for e in self.req("GET", "/vectors/hnsw/evals")["evals"]])
        # a refresh and a promotion write there too
        self.req("POST", "/vectors/indexes/eu_idx/refresh", {"async": False}, 200)
        got = self.req("POST", "/vectors/indexes/eu_idx/promote",
                       {"hnsw": {"m": 8, "ef_construction": 40, "ef_search": 20}}, 202)
        self.wait_job(got["job_id"])

        eu = [os.path.relpath(p, self.eu_root) for p in files_under(self.eu_root)]
        for want in ("_vectors/eu_idx/gen-000001/index.json",
                     "_vectors/eu_idx/gen-000001/embeddings.parquet",
                     "_vectors/eu_idx/gen-000001/hnsw.bin",
                     "_vectors/eu_idx/gen-000001/bm25.parquet",  # the chunks' words
                     "_vectors/eu_idx/gen-000003/index.json",
                     "_vectors/eu_idx/gen-000003/bm25.parquet",
                     "_hnsw/evals/eu_eval.parquet"):
            self.assertIn(want, eu)
        self.assertTrue(any(p.startswith("_vectors/eu_idx/_live/") for p in eu), eu)
        self.assertTrue(any(p.startswith("_hnsw/trials/batch_") for p in eu), eu)
        self.srv.request("POST", "/storage/errors/flush", who="owner")
        self.assert_nothing_outside(["eu_idx", "legacy_idx", "eu_eval"])

    def test_b_restart_loads_from_client_eu_and_old_layout(self):
        before = self.req("POST", "/vectors/indexes/eu_idx/search", {"query": "quokka tundra",
                                                                     "k": 3})["hits"]
        self.assertEqual(len(before), 3)
        self.assertEqual(self.srv.stop(), 0)
        # the old layout: an index over client_eu data whose files are in the primary bucket
        src = os.path.join(self.eu_root, "_vectors", "legacy_idx")
        dst = os.path.join(self.primary_root, "_vectors", "legacy_idx")
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.move(src, dst)
        self.srv.start()
        got = self.req("GET", "/vectors/indexes/eu_idx")
        self.assertEqual((got["bucket"], got["state"]), ("client_eu", "ready"))
        after = self.req("POST", "/vectors/indexes/eu_idx/search", {"query": "quokka tundra",
                                                                    "k": 3})["hits"]
        self.assertEqual([h["doc_id"] for h in after], [h["doc_id"] for h in before])
        self.assertEqual(len(self.req("GET", "/vectors/hnsw/trials/eu_idx")["trials"]), 2)
        rows = self.req("POST", "/query", {
            "sql": "SELECT count(*) AS n FROM _hnsw_trials WHERE index = 'eu_idx'"})["rows"]
        self.assertEqual(rows[0]["n"], 2)
        self.assertEqual(self.req("GET", "/vectors/hnsw/evals/eu_eval")["index"], "eu_idx")
        legacy = self.req("GET", "/vectors/indexes/legacy_idx")
        self.assertEqual((legacy["bucket"], legacy["state"]), ("primary", "ready"))
        hits = self.req("POST", "/vectors/indexes/legacy_idx/search", {"query": "walrus",
                                                                        "k": 2})["hits"]
        self.assertEqual(len(hits), 2)
        # an old-layout index keeps writing where it lives; dropping removes it from there
        self.req("POST", "/vectors/indexes/legacy_idx/refresh", {"async": False}, 200)
        self.assertTrue(os.path.exists(os.path.join(dst, "gen-000002", "index.json")))
        self.req("DELETE", "/vectors/indexes/legacy_idx", None, 200)
        self.assertFalse(os.path.exists(os.path.join(dst, "gen-000001")))

    def test_c_workspace_staging_stays_in_client_eu(self):
        ws = self.req("POST", "/workspaces", {"name": "eu review", "kind": "search"}, 201)["id"]
        staged = ["wsstaged%02d quokka" % i for i in range(3)]
        self.req("POST", "/workspaces/%s/datasets/eu_notes/rows" % ws, {
            "upsert": [{"note_id": 100 + i, "body": staged[i]} for i in range(2)]}, 200)
        self.req("POST", "/workspaces/%s/datasets/eu_notes/rows" % ws, {
            "upsert": [{"note_id": 3, "body": staged[2]}], "delete": [{"note_id": 4}]}, 200)
        got = self.req("POST", "/query", {"sql": "SELECT body FROM eu_notes WHERE note_id >= 100 "
                                          "OR note_id IN (3, 4) ORDER BY note_id",
                                          "workspace_id": ws})["rows"]
        self.assertEqual([r["body"] for r in got], [staged[2], staged[0], staged[1]])
        eu = [os.path.relpath(p, self.eu_root) for p in files_under(self.eu_root)]
        prefix = "_workspaces/%s/delta/eu_notes/" % ws
        self.assertEqual(len([p for p in eu if p.startswith(prefix) and p.endswith(".parquet")]), 2)
        self.assertEqual(len([p for p in eu if p.startswith(prefix) and p.endswith(".json")]), 2)
        self.assert_nothing_outside(["eu_idx", "eu_eval"], staged)
        # the publish reads the values from client_eu; the row changes it journals stay there
        out = self.req("POST", "/workspaces/%s/publish" % ws, {}, 200)
        self.assertEqual(out["published"][0]["dataset"], "eu_notes")
        got = self.req("POST", "/query", {"sql": "SELECT note_id, body FROM eu_notes WHERE "
                                          "note_id >= 100 OR note_id IN (3, 4) ORDER BY note_id"})
        self.assertEqual([(r["note_id"], r["body"]) for r in got["rows"]],
                         [(3, staged[2]), (100, staged[0]), (101, staged[1])])
        hist = self.req("GET", "/datasets/eu_notes/rows/3/history")
        self.assertIn(staged[2], str(hist))
        self.srv.request("POST", "/storage/errors/flush", who="owner")
        self.assert_nothing_outside(["eu_idx", "eu_eval"], staged)


if __name__ == "__main__":
    unittest.main()
