"""End-to-end: a dataset read through SQL while its bucket is unreachable (an fs bucket
whose folder is gone). With a rescue copy, POST /query answers from it and says so
(X-Lakehouse-Rescue-Used: true, "rescue_used": true) and /storage/errors records the
failed read with the rescue that served it; search filters and a tool's SQL read it the
same way. Without
one, the answer is 503 bucket_unreachable naming the bucket, never a bare engine error.
An S3 bucket that is down keeps answering from the local copies its views read."""
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-rescue-sql-1"


class RescueSql(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("rescuesql")
        cls.roots = {n: os.path.join(cls.tmp, n) for n in ("fsa", "fsb", "rescue")}
        for r in cls.roots.values():
            os.makedirs(r)
        cls.extra_toml = "\n[storage]\nrescue = \"rescue\"\nprobe_interval_ms = 0\n" + "".join(
            '[[bucket]]\nname = "%s"\nbackend = "fs"\nroot = "%s"\n' % (n, r)
            for n, r in cls.roots.items())
        super().setUpClass()
        for name, bucket in (("kept", "fsa"), ("lost", "fsb")):
            st, _, b = cls.srv.request(
                "POST", "/ingest/file?dataset=%s&format=csv&bucket=%s" % (name, bucket),
                "id,body\n1,alpha one\n2,beta two\n3,gamma three\n", who="owner")
            assert st == 201, b
        # the rescue bucket holds a copy of fsa's datasets only (as a mirror would)
        shutil.copytree(os.path.join(cls.roots["fsa"], "datasets"),
                        os.path.join(cls.roots["rescue"], "datasets"))
        st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "kept_idx", "dataset": "kept", "id_column": "id", "text_column": "body",
            "async": False})
        assert st == 201, b
        st, _, b = cls.srv.request("POST", "/tools", who="owner", body={
            "name": "count_kept", "description": "How many rows kept holds", "kind": "sql",
            "input_schema": {"type": "object", "additionalProperties": False, "properties": {}},
            "binding": {"datasets": ["kept"], "max_rows": 1,
                        "query": "SELECT count(*) AS n FROM kept"},
            "allow": {"roles": ["admin"]}})
        assert st == 201, b
        for name in ("fsa", "fsb"):
            shutil.move(cls.roots[name], cls.roots[name] + ".gone")

    def query(self, sql):
        return self.srv.request("POST", "/query", {"sql": sql}, who="owner")

    def test_a_rescue_copy_serves_and_says_so(self):
        for _ in range(2):  # a kept statement rebinds: the second answer says so too
            st, h, b = self.query("SELECT count(*) AS n, min(body) AS first FROM kept")
            self.assertEqual(st, 200, b)
            self.assertEqual(b["rows"], [{"n": 3, "first": "alpha one"}])
            self.assertEqual(h.get("x-lakehouse-rescue-used"), "true")
            self.assertIs(b.get("rescue_used"), True)
        errors = self.srv.request("GET", "/storage/errors?bucket=fsa", who="owner")[2]["errors"]
        rescued = [e for e in errors if e.get("rescue") == "rescue"]
        self.assertTrue(rescued, errors)
        self.assertEqual(rescued[0]["code"], "bucket_unavailable")
        self.assertTrue(rescued[0]["key"].startswith("datasets/kept/data/"), rescued[0])
        # a search filter reads the dataset through the same check
        st, h, b = self.srv.request("POST", "/vectors/indexes/kept_idx/search", who="owner", body={
            "query": "beta", "k": 2, "filter": "id > 1"})
        self.assertEqual(st, 200, b)
        self.assertTrue(b["hits"] and {h["doc_id"] for h in b["hits"]} <= {"2", "3"}, b)
        self.assertIs(b.get("rescue_used"), True)
        self.assertEqual(h.get("x-lakehouse-rescue-used"), "true")
        # so does a tool's SQL, and its answer says so
        st, h, b = self.srv.request("POST", "/tools/count_kept/call", who="owner",
                                    body={"arguments": {}})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["result"]["rows"], [{"n": 3}])
        self.assertIs(b["result"].get("rescue_used"), True)
        self.assertEqual(h.get("x-lakehouse-rescue-used"), "true")

    def test_b_no_rescue_copy_is_503_naming_the_bucket(self):
        for sql in ("SELECT count(*) FROM lost", "SELECT * FROM kept JOIN lost USING (id)"):
            st, h, b = self.query(sql)
            self.assertEqual(st, 503, b)
            self.assertEqual(b["error"]["code"], "bucket_unreachable")
            self.assertIn("'fsb'", b["error"]["message"])
            self.assertIn("'lost'", b["error"]["message"])
            self.assertIn("rescue", b["error"]["hint"])
            self.assertNotIn("No files found", str(b))
            self.assertNotIn(self.tmp, str(b))
        # a dataset of a reachable bucket is unaffected
        st, h, b = self.query("SELECT 1 AS one")
        self.assertEqual((st, h.get("x-lakehouse-rescue-used")), (200, None))

    def test_c_back_again(self):
        shutil.move(self.roots["fsa"] + ".gone", self.roots["fsa"])
        try:
            st, h, b = self.query("SELECT count(*) AS n FROM kept")
            self.assertEqual((st, b["rows"][0]["n"]), (200, 3))
            self.assertIsNone(h.get("x-lakehouse-rescue-used"))
            self.assertNotIn("rescue_used", b)
            st, h, b = self.srv.request("POST", "/tools/count_kept/call", who="owner",
                                        body={"arguments": {}})
            self.assertEqual((st, b["result"]["rows"]), (200, [{"n": 3}]))
            self.assertNotIn("rescue_used", b["result"])
        finally:
            shutil.move(self.roots["fsa"], self.roots["fsa"] + ".gone")


if __name__ == "__main__":
    unittest.main()
