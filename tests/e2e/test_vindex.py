"""End-to-end: vector indexes over datasets — the demo candidates' resumes indexed with the
built-in model, searched (text, filters, included columns, exact), restarted (the sidecar
is mapped, a corrupt one rebuilt), refreshed after row changes (only changed text is
embedded again), bring-your-own vectors, several indexes side by side, every bad input,
permissions, deletion. The remote providers are covered against servers speaking their
documented wire formats in test_vector.py; here one such server stands in for an Ollama
that goes down during a build."""
import glob
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402

ADMIN, READER, AGENT = "tok-admin-vidx-0001", "tok-reader-vidx-001", "tok-agent-vidx-0001"
ELSEWHERE = "tok-elsewhere-vidx-01"  # a reader limited to another bucket


class Indexes(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("viewer", READER, ["reader"]),
                  ("bot", AGENT, ["agent"]), ("elsewhere", ELSEWHERE, ["reader"], ["other"])]
    extra_toml = '\n[vector]\nollama_url = "http://127.0.0.1:1"\nembed_timeout_ms = 500\n'

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = {"LAKEHOUSE_SERVER_PORT": str(cls.srv.port), "LAKEHOUSE_CONFIG": cls.srv.config,
               "LAKEHOUSE_TOKEN": ADMIN}
        cls.env = env
        rc, out, err = harness.run_cli(["demo", "--scale", "0.02"], env=env, cwd=cls.srv.dir,
                                       timeout=300)
        assert rc == 0, err
        # the demo's candidates: 2,000 rows with resume_text
        st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "resumes", "dataset": "candidates", "id_column": "candidate_id",
            "text_column": "resume_text", "model": "builtin"})
        assert st == 202, b
        cls.wait_job(b["job_id"])

    @classmethod
    def wait_job(cls, job_id, state="succeeded"):
        for _ in range(600):
            st, _, job = cls.srv.request("GET", "/jobs/" + job_id, who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                assert job["state"] == state, job
                return job
            time.sleep(0.05)
        raise AssertionError("job did not finish")

    def req(self, method, path, body=None, status=200, who="owner"):
        st, _, b = self.srv.request(method, path, body=body, who=who)
        self.assertEqual(st, status, b)
        return b

    def search(self, body, status=200, index="resumes", who="owner"):
        return self.req("POST", "/vectors/indexes/%s/search" % index, body, status, who)

    def sql(self, q):
        return self.req("POST", "/query", {"sql": q})["rows"]

    def exact_top(self, body, index="resumes"):
        b = dict(body)
        b["exact"] = True
        return [(h["doc_id"], h["chunk_id"]) for h in self.search(b, index=index)["hits"]]

    def test_a_describe(self):
        d = self.req("GET", "/vectors/indexes/resumes")
        self.assertEqual(d["state"], "ready")
        self.assertEqual((d["model"], d["model_version"], d["dim"], d["metric"]),
                         ("builtin", "builtin-v1", 384, "cosine"))
        self.assertEqual(d["hnsw"], {"m": 16, "ef_construction": 80, "ef_search": 30,
                                     "quantization": "none"})
        self.assertEqual(d["quantization"], "none")
        self.assertEqual(d["vector_bytes"], d["vectors"] * 384 * 4)
        self.assertEqual(d["mapped_vector_bytes"], 0)
        self.assertEqual(d["documents"], 2000)
        self.assertGreaterEqual(d["vectors"], 2000)
        self.assertGreater(d["memory_bytes"], 2000 * 384 * 4)
        self.assertEqual([g["live"] for g in d["generations"]], [True])
        self.assertEqual(d["texts"], "in_memory")
        listed = self.req("GET", "/vectors/indexes", who="bot")
        self.assertIn("resumes", [x["name"] for x in listed["indexes"]])
        self.assertIn("hits", listed["embedding_cache"])
        # the files of generation 1 are in the bucket, in open formats
        gen = os.path.join(self.srv.data_dir, "buckets", "primary", "_vectors", "resumes")
        if not os.path.isdir(gen):
            gen = glob.glob(os.path.join(self.srv.data_dir, "**", "_vectors", "resumes"),
                            recursive=True)[0]
        files = sorted(os.listdir(os.path.join(gen, "gen-000001")))
        self.assertEqual(files, ["bm25.parquet", "embeddings.parquet", "hnsw.bin", "index.json"])

    def test_b_search_text(self):
        res = self.search({"query": "Data Analyst", "k": 5,
                           "include": ["full_name", "title", "city"]}, who="bot")
        self.assertEqual(len(res["hits"]), 5)
        self.assertEqual(res["method"], "hnsw")
        for h in res["hits"]:
            self.assertIn("chunk_text", h)
            self.assertEqual(set(h["columns"]), {"full_name", "title", "city"})
        scores = [h["score"] for h in res["hits"]]
        self.assertEqual(scores, sorted(scores, reverse=True))
        self.assertIsInstance(res["took_us"], int)
        # the best hits are about what was asked, as their own texts say
        self.assertIn("Data Analyst", res["hits"][0]["chunk_text"])
        self.assertEqual(res["hits"][0]["columns"]["title"], "Data Analyst")
        # HNSW agrees with exact search on this small index at the default ef
        self.assertEqual([(h["doc_id"], h["chunk_id"]) for h in res["hits"]],
                         self.exact_top({"query": "Data Analyst", "k": 5}))

    def handed(self):
        """How many requests the HTTP workers have handed to a kept handler thread."""
        import re
        _, _, text = self.srv.request("GET", "/metrics", who="owner")
        return int(re.search(r"(?m)^lakehouse_http_handler_offloaded_total (\d+)$",
                             text).group(1))

    def test_b2_quick_searches_stay_on_the_worker(self):
        """A search that cannot wait (no filter, no included columns, the builtin model)
        runs on the HTTP worker; one with a filter the cache cannot answer yet goes to a
        kept handler thread."""
        handed = self.handed
        before = handed()
        for i in range(10):
            self.search({"query": "Data Analyst %d" % i, "k": 3})
        self.assertEqual(handed(), before)
        # each of these may wait (SQL, a whole scan, a wide beam): each is handed over
        slow = [{"query": "Data Analyst", "k": 3, "filter": "candidate_id > 1"},
                {"query": "Data Analyst", "k": 3, "include": ["city"]},
                {"query": "Data Analyst", "k": 3, "exact": True},
                {"query": "Data Analyst", "k": 500},
                {"query": "Data Analyst", "k": 3, "ef": 5000}]
        for body in slow:
            self.search(body)
        self.assertEqual(handed(), before + len(slow))

    def test_b3_cached_filter_stays_on_the_worker(self):
        """A filter the filter cache answers runs no SQL, so its search stays on the HTTP
        worker (JSON body and raw vector alike); after a change to a dataset the filter
        reads, the next search is handed to a handler thread again and runs the SQL."""
        import struct
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=worker_probe&format=csv",
                                    body="candidate_id\n7\n", who="owner",
                                    headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), b)
        flt = "candidate_id IN (SELECT candidate_id FROM worker_probe)"
        q = {"query": "Data Analyst", "k": 5, "filter": flt}

        def search(body=q, who="owner"):
            before = self.handed()
            res = self.search(body, who=who)
            return res, self.handed() - before
        res, n = search()
        self.assertEqual((n, res["filter"]["cached"], [h["doc_id"] for h in res["hits"]]),
                         (1, False, ["7"]))
        for _ in range(3):
            res, n = search()
            self.assertEqual((n, res["filter"]["cached"], [h["doc_id"] for h in res["hits"]]),
                             (0, True, ["7"]))
        # a raw vector with the same filter finds the same entry: on the worker too
        vec = self.req("POST", "/embed", {"model": "builtin", "texts": ["Data Analyst"]})
        raw = struct.pack("<%df" % len(vec["vectors"][0]), *vec["vectors"][0])
        path = "/vectors/indexes/resumes/search?k=5&filter=" + urllib.parse.quote(flt)
        before = self.handed()
        st, _, res = self.srv.request("POST", path, body=raw, who="owner",
                                      headers={"Content-Type": "application/octet-stream"})
        self.assertEqual(st, 200, res)
        self.assertEqual((self.handed() - before, res["filter"]["cached"],
                          [h["doc_id"] for h in res["hits"]]), (0, True, ["7"]))
        # still handed over: an exact search asked for, included columns (a query), or the
        # same filter through another caller's view (another entry)
        for body, who in ((dict(q, exact=True), "owner"), (dict(q, include=["city"]), "owner"),
                          (q, "viewer")):
            res, n = search(body, who)
            self.assertEqual(n, 1, (body, who))
        res, n = search(q, "viewer")
        self.assertEqual((n, res["filter"]["cached"]), (0, True))
        # the dataset the filter reads changes: the kept answer is stale, the next search
        # goes to a handler thread, runs the SQL and sees the new row
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=worker_probe&format=csv"
                                    "&mode=append", body="candidate_id\n8\n", who="owner",
                                    headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), b)
        res, n = search()
        self.assertEqual((n, res["filter"]["cached"], res["filter"]["matched_documents"]),
                         (1, False, 2))
        self.assertEqual(sorted(h["doc_id"] for h in res["hits"]), ["7", "8"])
        res, n = search()
        self.assertEqual((n, res["filter"]["cached"], res["filter"]["matched_documents"]),
                         (0, True, 2))

    def test_c_filter(self):
        city = self.sql("SELECT city FROM candidates GROUP BY city ORDER BY count(*) LIMIT 1")[0]["city"]
        q = {"query": "Python developer", "k": 10, "filter": "city = '%s'" % city,
             "include": ["city"]}
        res = self.search(q)
        n_city = self.sql("SELECT count(*) AS n FROM candidates WHERE city = '%s'" % city)[0]["n"]
        self.assertEqual(res["filter"]["matched_documents"], n_city)
        self.assertTrue(all(h["columns"]["city"] == city for h in res["hits"]))
        self.assertEqual(len(res["hits"]), min(10, res["filter"]["matched_vectors"]))
        self.assertEqual([(h["doc_id"], h["chunk_id"]) for h in res["hits"]], self.exact_top(q))
        # a broad filter walks the graph, skipping what does not match
        broad = {"query": "Python developer", "k": 10, "filter": "candidate_id > 10",
                 "include": ["candidate_id"]}
        res = self.search(broad)
        self.assertEqual(res["method"], "hnsw")
        self.assertTrue(all(h["columns"]["candidate_id"] > 10 for h in res["hits"]))
        self.assertEqual(len(res["hits"]), 10)
        self.assertGreaterEqual(len({(h["doc_id"], h["chunk_id"]) for h in res["hits"]} &
                                    set(self.exact_top(broad))), 9)
        # a very selective filter goes to exact search and still finds its rows
        one = self.search({"query": "Python developer", "k": 10, "filter": "candidate_id = 7"})
        self.assertEqual(one["method"], "exact")
        self.assertEqual([h["doc_id"] for h in one["hits"]], ["7"])
        none = self.search({"query": "Python developer", "filter": "candidate_id < 0"})
        self.assertEqual(none["hits"], [])

    def test_c2_filter_cache(self):
        """A filter's matching positions are kept for the next search with the same filter,
        caller and parameters, and never outlive a change to the rows the filter read."""
        def stats():
            return self.req("GET", "/vectors/indexes")["filter_cache"]
        q = {"query": "Python developer", "k": 5, "filter": "city = 'Zzyzx'"}
        first = self.search(q)
        self.assertEqual((first["filter"]["matched_documents"], first["filter"]["cached"]),
                         (0, False))
        before, handed = stats(), self.handed()
        again = self.search(q)
        self.assertEqual((again["filter"]["matched_documents"], again["filter"]["cached"]),
                         (0, True))
        self.assertEqual(self.handed(), handed)  # answered on the HTTP worker
        self.assertEqual(stats()["hits"], before["hits"] + 1)
        # another caller's view is another entry (its datasets and masks may differ)
        self.assertFalse(self.search(q, who="viewer")["filter"]["cached"])
        self.assertTrue(self.search(q, who="viewer")["filter"]["cached"])
        # a row change moves a candidate into the city: the kept answer is not used
        self.req("PATCH", "/catalog/datasets/candidates", {"primary_key": ["candidate_id"]})
        row = self.sql("SELECT * FROM candidates WHERE candidate_id = 5")[0]
        row["city"] = "Zzyzx"
        self.req("POST", "/datasets/candidates/rows", {"upsert": [row]}, 201)
        handed = self.handed()
        after = self.search(q)
        self.assertEqual((after["filter"]["matched_documents"], after["filter"]["cached"]),
                         (1, False))
        self.assertEqual(self.handed(), handed + 1)  # the stale entry: SQL on a handler thread
        self.assertEqual([h["doc_id"] for h in after["hits"]], ["5"])
        self.assertGreaterEqual(stats()["stale"], before["stale"] + 1)
        self.assertEqual(self.search(q)["filter"]["matched_documents"], 1)
        self.assertTrue(self.search(q)["filter"]["cached"])
        # the same change seen by the other caller: its entry is stale too
        viewer = self.search(q, who="viewer")
        self.assertEqual((viewer["filter"]["matched_documents"], viewer["filter"]["cached"]),
                         (1, False))
        # filters whose answer changes by themselves are never kept
        for changing in ("random() < 2", "candidate_id > 0 AND current_date > DATE '2000-01-01'",
                         "candidate_id > now()::DATE - DATE '2100-01-01'",
                         "candidate_id IN (SELECT candidate_id FROM candidates "
                         "USING SAMPLE 50 PERCENT (bernoulli))"):
            for _ in range(2):
                res = self.search({"query": "Python developer", "k": 5, "filter": changing})
                self.assertFalse(res["filter"]["cached"], changing)
        # a filter reading another dataset is checked against that one too
        sub = {"query": "Python developer", "k": 5,
               "filter": "candidate_id IN (SELECT candidate_id FROM cache_probe)"}
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=cache_probe&format=csv",
                                    body="candidate_id\n7\n", who="owner",
                                    headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), b)
        self.assertEqual(self.search(sub)["filter"]["matched_documents"], 1)
        self.assertTrue(self.search(sub)["filter"]["cached"])
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=cache_probe&format=csv"
                                    "&mode=append", body="candidate_id\n8\n", who="owner",
                                    headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), b)
        res = self.search(sub)
        self.assertEqual((res["filter"]["matched_documents"], res["filter"]["cached"]), (2, False))

    def test_c3_obvious_match(self):
        """The issue's case as a new user meets it: 3,000 resumes from one template and one
        zoo keeper. The zoo resume is far from all the others, so the graph's beam used to
        pass it by at any ef; the graph's islands (its most isolated positions, scored by
        every search) make it the first hit. A small index is searched exactly."""
        import random
        rnd = random.Random(1)
        titles = ["Software Engineer", "Data Analyst", "Project Manager", "Nurse", "Accountant",
                  "Sales Associate", "Warehouse Operator", "Electrician", "Teacher"]
        skills = ["Python", "Excel", "SQL", "customer care", "forklift", "scheduling", "Java",
                  "bookkeeping", "wiring", "lesson planning"]
        cities = ["Chicago", "Austin", "Denver", "Boston", "Seattle", "Miami"]
        lines = ["id,resume"]
        for i in range(3000):
            lines.append("%d,%s with %d years of experience in %s and %s in %s" % (
                i, rnd.choice(titles), rnd.randint(1, 20), rnd.choice(skills), rnd.choice(skills),
                rnd.choice(cities)))
        lines.append("3000,zebra keeper and giraffe trainer at the city zoo exotic animal "
                     "husbandry")
        for name, rows in (("zoo_big", lines), ("zoo_small", lines[:400] + lines[-1:])):
            st, _, b = self.srv.request("POST", "/ingest/file?dataset=%s&format=csv" % name,
                                        body="\n".join(rows) + "\n", who="owner",
                                        headers={"Content-Type": "text/csv"})
            self.assertIn(st, (200, 201), b)
            job = self.req("POST", "/vectors/indexes", {"name": name, "dataset": name,
                                                        "id_column": "id",
                                                        "text_column": "resume"}, 202)
            self.wait_job(job["job_id"])
        q = {"query": "giraffe trainer zoo animals", "k": 3}
        exact = self.search(dict(q, exact=True), index="zoo_big")
        self.assertEqual(exact["hits"][0]["doc_id"], "3000")
        self.assertEqual(exact["exact_reason"], "asked")
        for ef in (None, 10, 100):
            res = self.search(dict(q, ef=ef) if ef else q, index="zoo_big")
            self.assertEqual(res["method"], "hnsw")
            self.assertNotIn("exact_reason", res)
            self.assertEqual(res["hits"][0]["doc_id"], "3000", (ef, res["hits"]))
            self.assertAlmostEqual(res["hits"][0]["score"], exact["hits"][0]["score"], places=5)
        small = self.search(q, index="zoo_small")
        self.assertEqual((small["method"], small["exact_reason"], small["ef"]),
                         ("exact", "small_index", 0))
        self.assertEqual(small["hits"][0]["doc_id"], "3000")
        for name in ("zoo_big", "zoo_small"):
            self.req("DELETE", "/vectors/indexes/" + name)

    def test_d_bad_input(self):
        cases = [
            ({"query": "x", "k": 0}, 400, "invalid_parameter"),
            ({"query": "x", "k": -3}, 400, "invalid_parameter"),
            ({"query": "x", "k": 10 ** 9}, 400, "invalid_parameter"),
            ({"query": "x", "k": "ten"}, 400, "invalid_parameter"),
            ({"query": "x", "ef": 0}, 400, "invalid_parameter"),
            ({"k": 3}, 400, "invalid_parameter"),
            ({"query": "x", "vector": [1.0]}, 400, "invalid_parameter"),
            ({"vector": [1.0, 2.0]}, 400, "invalid_parameter"),  # wrong dimension
            ({"vector": ["a"] * 384}, 400, "invalid_parameter"),
            ({"query": ""}, 400, "invalid_parameter"),
            ({"query": "x", "include": ["no_such_column"]}, 400, "invalid_parameter"),
            ({"query": "x", "include": "city"}, 400, "invalid_parameter"),
            ({"query": "x", "surprise": 1}, 400, "invalid_parameter"),
            ({"query": "x", "filter": "no_such_column = 1"}, 400, "invalid_filter"),
            ({"query": "x", "filter": "city = "}, 400, "invalid_filter"),
            ({"query": "x", "filter": "true); DROP TABLE candidates; --"}, 400, None),
            ({"query": "x", "filter": "city IN (SELECT * FROM read_csv('/etc/passwd'))"}, 403,
             "sql_forbidden"),
        ]
        for body, status, code in cases:
            with self.subTest(body=body):
                b = self.search(body, status=status)
                if code:
                    self.assertEqual(b["error"]["code"], code)
                self.assertTrue(b["error"]["message"])
        st, _, b = self.srv.request("POST", "/vectors/indexes/resumes/search", body="{nope",
                                    who="owner", headers={"Content-Type": "application/json"})
        self.assertEqual(st, 400)
        b = self.search({"query": "x"}, status=404, index="nothing_here")
        self.assertEqual(b["error"]["code"], "index_not_found")
        self.search({"query": "x"}, status=404, index="..%2Fetc")
        # creating: each mistake named
        bad_creates = [
            ({"name": "Bad Name", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text"}, 400),
            ({"name": "x1", "dataset": "nope", "id_column": "a", "text_column": "b"}, 404),
            ({"name": "x1", "dataset": "candidates", "id_column": "nope",
              "text_column": "resume_text"}, 404),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id"}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "vector_column": "skills"}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "model": "gpt-17"}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "metric": "manhattan"}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "hnsw": {"m": 1}}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "hnsw": {"ef_search": "fast"}}, 400),
            ({"name": "x1", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text", "chunk": {"size": 10}}, 400),
            ({"name": "resumes", "dataset": "candidates", "id_column": "candidate_id",
              "text_column": "resume_text"}, 409),
        ]
        for body, status in bad_creates:
            with self.subTest(body=body):
                b = self.req("POST", "/vectors/indexes", body, status)
                self.assertTrue(b["error"]["message"])
        names = [x["name"] for x in self.req("GET", "/vectors/indexes")["indexes"]]
        self.assertNotIn("x1", names)

    def test_e_permissions(self):
        body = {"name": "r2", "dataset": "candidates", "id_column": "candidate_id",
                "text_column": "resume_text"}
        self.req("POST", "/vectors/indexes", body, 403, who="viewer")
        self.req("POST", "/vectors/indexes", body, 403, who="bot")
        self.req("DELETE", "/vectors/indexes/resumes", None, 403, who="bot")
        self.req("POST", "/vectors/indexes/resumes/refresh", {}, 403, who="viewer")
        self.search({"query": "nurse"}, who="viewer")
        # a principal limited to another bucket does not see an index over the primary's
        # data: the same 404 as for no index, and not in the list
        self.search({"query": "nurse"}, status=404, who="elsewhere")
        self.req("GET", "/vectors/indexes/resumes", None, 404, who="elsewhere")
        listed = self.req("GET", "/vectors/indexes", who="elsewhere")["indexes"]
        self.assertNotIn("resumes", [x["name"] for x in listed])

    def test_f_byo_vectors(self):
        rows = [{"id": i, "label": "p%d" % i, "emb": [float(i), float(i % 7), 1.0]}
                for i in range(1, 301)]
        body = "\n".join(json.dumps(r) for r in rows) + "\n"
        self.req("POST", "/ingest/file?dataset=points&format=ndjson", body, 201)
        b = self.req("POST", "/vectors/indexes", {"name": "pts", "dataset": "points",
                                                   "id_column": "id", "vector_column": "emb",
                                                   "metric": "l2", "async": False}, 201)
        self.assertEqual(b["vectors"], 300)
        res = self.search({"vector": [42.0, 0.0, 1.0], "k": 3, "include": ["label"]}, index="pts")
        self.assertEqual(res["hits"][0]["doc_id"], "42")
        self.assertEqual(res["hits"][0]["columns"], {"label": "p42"})
        self.assertAlmostEqual(res["hits"][0]["distance"], 0.0, places=4)
        self.assertNotIn("chunk_text", res["hits"][0])
        b = self.search({"query": "forty two"}, status=400, index="pts")
        self.assertIn("vector", b["error"]["message"])
        self.search({"vector": [1.0, 2.0]}, status=400, index="pts")
        # a JSON vector is read straight into floats, yet bad JSON stays a 400 with
        # jansson's words, and good JSON answers as before
        for text, code in (('{"vector":[42,0,1],"k":}', "invalid_json"),
                           ('{"vector":[42,0,1],"vector":[1,2,3]}', "invalid_json"),
                           ('{"vector":[99999999999999999999,0,1]}', "invalid_json"),
                           ('{"vector":[1e400,0,1]}', "invalid_json"),
                           ('{"vector":[42,0,1],"query":"x"}', "invalid_parameter"),
                           ('{"vector":[42,0,1]} x', "invalid_json")):
            st, _, b = self.srv.request("POST", "/vectors/indexes/pts/search", body=text,
                                        headers={"Content-Type": "application/json"},
                                        who="owner")
            self.assertEqual((st, b["error"]["code"]), (400, code), text)
        st, _, b = self.srv.request("POST", "/vectors/indexes/pts/search",
                                    body='{ "k" : 3, "vector" : [ 42.0 , 0 , 1e0 ] }',
                                    headers={"Content-Type": "application/json"}, who="owner")
        self.assertEqual([h["doc_id"] for h in b["hits"]], [h["doc_id"] for h in res["hits"]])
        # raw little-endian float32 bodies, the other fields in the query string
        import struct

        def raw(vec, query="", status=200, who="owner", data=None):
            st, _, b = self.srv.request(
                "POST", "/vectors/indexes/pts/search" + query, who=who,
                body=data if data is not None else struct.pack("<%df" % len(vec), *vec),
                headers={"Content-Type": "application/octet-stream"})
            self.assertEqual(st, status, b)
            return b
        r = raw([42.0, 0.0, 1.0], "?k=3&include=label,id")
        self.assertEqual([h["doc_id"] for h in r["hits"]], [h["doc_id"] for h in res["hits"]])
        self.assertEqual(r["hits"][0]["columns"], {"label": "p42", "id": 42})
        r = raw([42.0, 0.0, 1.0], "?k=2&ef=50&filter=" + "id%20%3E%2050&exact=true")
        self.assertEqual((len(r["hits"]), r["exact_reason"], r["filter"]["matched_documents"]),
                         (2, "asked", 250))
        self.assertTrue(all(int(h["doc_id"]) > 50 for h in r["hits"]))
        self.assertIn("multiple of 4", raw([], data=b"\x00\x00\x80", status=400)["error"]["message"])
        self.assertIn("dimensions", raw([1.0, 2.0], status=400)["error"]["message"])
        self.assertIn("finite", raw([float("nan"), 0.0, 1.0], status=400)["error"]["message"])
        self.assertIn("'k'", raw([1.0, 2.0, 3.0], "?k=0", status=400)["error"]["message"])
        self.assertIn("unknown parameter 'vector'",
                      raw([1.0, 2.0, 3.0], "?vector=1", status=400)["error"]["message"])
        self.assertIn("'exact'", raw([1.0, 2.0, 3.0], "?exact=yes", status=400)["error"]["message"])
        # an agent gets no filter through the query string either
        self.assertEqual(raw([1.0, 2.0, 3.0], "?filter=id%3E1", status=403,
                             who="bot")["error"]["code"], "sql_not_allowed")
        st, _, b = self.srv.request("POST", "/vectors/indexes/pts/search", body=b"abc",
                                    headers={"Content-Type": "text/plain"}, who="owner")
        self.assertEqual(st, 415, b)
        self.assertIn("octet-stream", b["error"]["message"])
        # a ragged vector column is refused, naming the row
        ragged = [{"id": 1, "emb": [1.0, 2.0]}, {"id": 2, "emb": [1.0, 2.0, 3.0]}]
        self.req("POST", "/ingest/file?dataset=ragged&format=ndjson",
                 "\n".join(json.dumps(r) for r in ragged), 201)
        b = self.req("POST", "/vectors/indexes", {"name": "rg", "dataset": "ragged",
                                                   "id_column": "id", "vector_column": "emb",
                                                   "async": False}, 400)
        self.assertIn("'2'", b["error"]["message"])
        words = [{"id": 1, "emb": ["a", "b"]}]
        self.req("POST", "/ingest/file?dataset=wordvec&format=ndjson", json.dumps(words[0]) + "\n",
                 201)
        b = self.req("POST", "/vectors/indexes", {"name": "wv", "dataset": "wordvec",
                                                   "id_column": "id", "vector_column": "emb",
                                                   "async": False}, 400)
        self.assertIn("'1'", b["error"]["message"])
        names = [x["name"] for x in self.req("GET", "/vectors/indexes")["indexes"]]
        self.assertNotIn("rg", names)
        self.assertNotIn("wv", names)

    def test_f2_blank_texts(self):
        # rows whose text is only whitespace are skipped, not kept as documents without
        # vectors (a filter matching one finds nothing rather than reading past the index)
        self.req("POST", "/ingest/file?dataset=blanks&format=csv",
                 "id,note\n1,alpha beta\n2,\"   \"\n3,gamma delta\n4,\n", 201)
        b = self.req("POST", "/vectors/indexes", {"name": "blanks_ix", "dataset": "blanks",
                                                   "id_column": "id", "text_column": "note",
                                                   "async": False}, 201)
        self.assertEqual((b["documents"], b["vectors"], b["skipped_rows"]), (2, 2, 2))
        for flt in ("id = 2", "id IN (2, 4)", "id >= 2"):
            res = self.search({"query": "alpha", "filter": flt}, index="blanks_ix")
            self.assertEqual([h["doc_id"] for h in res["hits"]], [] if flt != "id >= 2" else ["3"])
        self.req("DELETE", "/vectors/indexes/blanks_ix")

    def test_g_two_models_and_failed_build(self):
        # a second index over the same data with other settings coexists
        b = self.req("POST", "/vectors/indexes", {
            "name": "resumes_small", "dataset": "candidates", "id_column": "candidate_id",
            "text_column": "resume_text", "metric": "dot", "chunk": {"size": 64, "overlap": 16},
            "hnsw": {"m": 8, "ef_construction": 40}, "async": False}, 201)
        self.assertGreater(b["vectors"], 2000)  # short chunks: several per resume
        res = self.search({"query": "nurse", "k": 3}, index="resumes_small")
        self.assertEqual(res["metric"], "dot")
        self.assertEqual(len(res["hits"]), 3)
        # the builtin cache answered the texts both indexes share
        # an index on a provider that is down: the job fails with 502, nothing remains
        st, _, b = self.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "remote", "dataset": "candidates", "id_column": "candidate_id",
            "text_column": "resume_text", "model": "ollama:nomic-embed-text"})
        self.assertEqual(st, 202, b)
        job = self.wait_job(b["job_id"], state="failed")
        self.assertEqual(job["error"]["code"], "provider_unreachable")
        self.assertIn("ollama:nomic-embed-text", job["error"]["message"])
        self.req("GET", "/vectors/indexes/remote", None, 404)
        self.req("DELETE", "/vectors/indexes/resumes_small")
        self.req("GET", "/vectors/indexes/resumes_small", None, 404)

    def test_h_cli(self):
        rc, out, err = harness.run_cli(["search", "resumes", "Registered Nurse", "--k", "3",
                                        "--include", "city", "--format", "json"],
                                       env=self.env, cwd=self.srv.dir)
        self.assertEqual(rc, 0, err)
        res = json.loads(out)
        self.assertEqual(len(res["hits"]), 3)
        self.assertIn("city", res["hits"][0]["columns"])
        rc, out, err = harness.run_cli(["search", "resumes", "nurse", "--format", "table"],
                                       env=self.env, cwd=self.srv.dir)
        self.assertEqual(rc, 0, err)
        self.assertIn("10 hits", out)
        rc, out, err = harness.run_cli(["search", "nope", "nurse"], env=self.env, cwd=self.srv.dir)
        self.assertEqual(rc, 2)
        self.assertIn("index_not_found", err)
        rc, out, err = harness.run_cli(["search", "resumes", "nurse", "--k", "0"], env=self.env,
                                       cwd=self.srv.dir)
        self.assertEqual(rc, 2)

    def test_q_int8(self):
        """An int8 index: a quarter of the vector bytes in memory, the float vectors left in
        the mapped sidecar for re-ranking, the same answers as the float index with exact
        scores, through a restart; promotion switches between float and int8 and rollback
        goes back; bad values are 400s."""
        body = {"name": "resumes8", "dataset": "candidates", "id_column": "candidate_id",
                "text_column": "resume_text", "model": "builtin",
                "hnsw": {"quantization": "int8"}, "async": False}
        for bad in ("int4", 8, None, ""):
            b = dict(body, hnsw={"quantization": bad})
            err = self.req("POST", "/vectors/indexes", b, 400)
            self.assertIn("quantization", err["error"]["message"])
        self.req("POST", "/vectors/indexes", body, 201)
        d = self.req("GET", "/vectors/indexes/resumes8")
        f = self.req("GET", "/vectors/indexes/resumes")
        self.assertEqual(d["quantization"], "int8")
        self.assertEqual(d["hnsw"]["quantization"], "int8")
        self.assertEqual(d["sidecar"], "mapped",  # the build's floats are not kept in memory
                         [l for l in self.srv.log_lines() if "int8" in l.get("msg", "")])
        self.assertEqual(d["mapped_vector_bytes"], d["vectors"] * 384 * 4)
        self.assertGreaterEqual(d["vectors"] * 384 * 4 / d["vector_bytes"], 3.5)
        self.assertLess(d["memory_bytes"], f["memory_bytes"] - d["vectors"] * 384 * 2)
        queries = ["Data Analyst", "Python developer with Django", "nurse night shifts",
                   "Senior Data Engineer with Spark", "forklift warehouse"]

        def answers():
            out = []
            for q in queries:
                res = self.search({"query": q, "k": 5}, index="resumes8")
                self.assertEqual(res["method"], "hnsw")
                out.append([(h["doc_id"], h["chunk_id"], round(h["score"], 5))
                            for h in res["hits"]])
            return out
        got = answers()
        for q, hits in zip(queries, got):
            # scores are the float ones (re-ranked): the exact search's, hit for hit
            exact = self.search({"query": q, "k": 5, "exact": True}, index="resumes8")["hits"]
            self.assertEqual(hits, [(h["doc_id"], h["chunk_id"], round(h["score"], 5))
                                    for h in exact])
        filtered = self.search({"query": "Data Analyst", "k": 5, "filter": "candidate_id > 100",
                                "include": ["candidate_id"]}, index="resumes8")
        self.assertTrue(all(h["columns"]["candidate_id"] > 100 for h in filtered["hits"]))
        self.assertEqual(len(filtered["hits"]), 5)
        # promotion to float and back: the codes go and come with the settings
        promoted = self.req("POST", "/vectors/indexes/resumes8/promote",
                            {"hnsw": {"quantization": "none"}, "async": False}, 200)
        self.assertEqual(promoted["hnsw"]["quantization"], "none")
        d = self.req("GET", "/vectors/indexes/resumes8")
        self.assertEqual((d["quantization"], d["mapped_vector_bytes"]), ("none", 0))
        self.req("POST", "/vectors/indexes/resumes8/rollback", {}, 200)
        self.assertEqual(self.req("GET", "/vectors/indexes/resumes8")["quantization"], "int8")
        self.req("POST", "/vectors/indexes/resumes8/promote", {"hnsw": {"quantization": "q"}},
                 400)
        # a restart maps the int8 sidecar and answers the same
        self.srv.stop()
        self.srv.start()
        d = self.req("GET", "/vectors/indexes/resumes8")
        self.assertEqual((d["quantization"], d["sidecar"]), ("int8", "mapped"))
        self.assertEqual(answers(), got)
        self.req("DELETE", "/vectors/indexes/resumes8")

    def test_z_refresh_restart(self):
        q = {"query": "Senior Data Engineer with Spark", "k": 5, "include": ["full_name"]}
        before = self.search(q)
        # change two resumes and delete one through the row API
        top = before["hits"][0]["doc_id"]
        self.req("PATCH", "/catalog/datasets/candidates", {"primary_key": ["candidate_id"]})
        self.req("POST", "/datasets/candidates/rows", {
            "upsert": [{"candidate_id": 3, "resume_text": "Deep sea welding diver, saturation "
                        "certified, offshore platforms"},
                       {"candidate_id": 4, "resume_text": "Pastry chef: croissants and "
                        "laminated doughs"}],
            "delete": [{"candidate_id": int(top)}]}, 201)
        st, _, b = self.srv.request("POST", "/vectors/indexes/resumes/refresh", body={},
                                    who="owner")
        self.assertEqual(st, 202, b)
        # searches keep being answered while the new generation builds, from the old one
        # until the swap
        generations, failures = set(), 0
        while True:
            st, _, res = self.srv.request("POST", "/vectors/indexes/resumes/search", body=q,
                                          who="owner")
            if st != 200:
                failures += 1
            else:
                generations.add(res["generation"])
            _, _, job = self.srv.request("GET", "/jobs/" + b["job_id"], who="owner")
            if job["state"] not in ("queued", "running"):
                break
        self.assertEqual(failures, 0)
        self.assertIn(1, generations)
        job = self.wait_job(b["job_id"])
        result = job["result"]
        self.assertEqual(result["generation"], 2)
        self.assertEqual(result["embedded"], 2)  # only the changed text
        self.assertEqual(result["documents"], 1999)
        self.assertGreater(result["reused"], 1990)
        after = self.search(q)
        self.assertEqual(after["generation"], 2)
        self.assertNotIn(top, [h["doc_id"] for h in after["hits"]])
        diver = self.search({"query": "welding diver offshore", "k": 1})
        self.assertEqual(diver["hits"][0]["doc_id"], "3")
        d = self.req("GET", "/vectors/indexes/resumes")
        self.assertEqual([(g["generation"], g["live"]) for g in d["generations"]],
                         [(1, False), (2, True)])

        # restart: the sidecar is mapped, the answers are the same
        self.srv.stop()
        self.srv.start()
        again = self.search(q)
        self.assertEqual(after["hits"], again["hits"])
        self.assertEqual(self.req("GET", "/vectors/indexes/resumes")["sidecar"], "mapped")
        # a corrupt sidecar is detected at start and rebuilt from the embeddings
        path = glob.glob(os.path.join(self.srv.data_dir, "**", "_vectors", "resumes",
                                      "gen-000002", "hnsw.bin"), recursive=True)[0]
        with open(path, "r+b") as f:
            f.seek(200)
            f.write(b"\xff" * 64)
        # and what a build that died before its descriptor left is removed
        stray = os.path.join(os.path.dirname(os.path.dirname(path)), "gen-000003")
        os.makedirs(stray)
        with open(os.path.join(stray, "embeddings.parquet"), "wb") as f:
            f.write(b"PAR1 half written")
        self.srv.stop()
        self.srv.start()
        self.assertFalse(os.path.exists(os.path.join(stray, "embeddings.parquet")))
        self.assertTrue(any("rebuilding the graph" in l.get("msg", "")
                            for l in self.srv.log_lines()))
        rebuilt = self.search(q)
        self.assertEqual([h["doc_id"] for h in rebuilt["hits"]],
                         [h["doc_id"] for h in again["hits"]])
        # deleted: gone from the registry and the bucket, and stays gone after a restart
        self.req("DELETE", "/vectors/indexes/resumes")
        self.search(q, status=404)
        self.assertEqual(glob.glob(os.path.join(self.srv.data_dir, "**", "_vectors", "resumes",
                                                "*", "*"), recursive=True), [])
        self.srv.stop()
        self.srv.start()
        self.search(q, status=404)


class UploadFailure(unittest.TestCase):
    """A vector upload is a bucket write like any other: when the bucket refuses it the
    build fails with the bucket's error, the failure is in /storage/errors (the one place
    operators look), and nothing of the uncommitted generation is left behind."""

    def test_failed_upload_is_journaled(self):
        srv = harness.Server(principals=[("owner", ADMIN, ["admin"])]).start()
        try:
            csv = "id,note\n" + "".join("%d,note %d about %s\n" % (
                i, i, ["pumps", "valves"][i % 2]) for i in range(1, 21))
            st, _, b = srv.request("POST", "/ingest/file?dataset=notes&format=csv", csv, who="owner")
            self.assertEqual(st, 201, b)
            # the primary bucket's temporary folder becomes a file: every put into the
            # bucket now fails as the bucket's fault (503 bucket_unavailable)
            tmp = os.path.join(srv.data_dir, "buckets", "primary", ".lh-tmp")
            harness.shutil.rmtree(tmp, ignore_errors=True)
            with open(tmp, "w") as f:
                f.write("in the way\n")
            try:
                st, _, b = srv.request("POST", "/vectors/indexes", who="owner", body={
                    "name": "notes_ix", "dataset": "notes", "id_column": "id",
                    "text_column": "note"})
                self.assertEqual(st, 202, b)
                job = None
                for _ in range(600):
                    st, _, job = srv.request("GET", "/jobs/" + b["job_id"], who="owner")
                    if job["state"] in ("succeeded", "failed", "cancelled"):
                        break
                    time.sleep(0.05)
                self.assertEqual(job["state"], "failed", job)
                self.assertEqual(job["error"]["code"], "bucket_unavailable", job)
                st, _, errors = srv.request("GET", "/storage/errors?limit=1000", who="owner")
                self.assertEqual(st, 200, errors)
                puts = [e for e in errors["errors"] if e["op"] == "put" and
                        (e["key"] or "").startswith("_vectors/notes_ix/gen-000001/")]
                self.assertTrue(puts, errors)
                self.assertEqual(puts[0]["bucket"], "primary")
                self.assertEqual(puts[0]["code"], "bucket_unavailable")
            finally:
                os.unlink(tmp)
            # the name was released and nothing of the failed generation remains
            st, _, _ = srv.request("GET", "/vectors/indexes/notes_ix", who="owner")
            self.assertEqual(st, 404)
            st, _, b = srv.request("POST", "/vectors/indexes", who="owner", body={
                "name": "notes_ix", "dataset": "notes", "id_column": "id",
                "text_column": "note", "async": False})
            self.assertEqual(st, 201, b)
            self.assertEqual(b["generation"], 1)
            st, _, objs = srv.request("GET", "/storage/buckets/primary/objects?prefix=_vectors/",
                                      who="owner")
            self.assertEqual(sorted(o["key"] for o in objs["objects"]),
                             ["_vectors/notes_ix/_live/v000001.json"] +
                             ["_vectors/notes_ix/gen-000001/" + n for n in
                              ("bm25.parquet", "embeddings.parquet", "hnsw.bin", "index.json")])
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            srv.cleanup()


class OnS3(unittest.TestCase):
    """The same life cycle with the primary bucket on an S3 server (s3rver): generations
    are uploaded, read back through the local cache at search and at start, deleted."""

    def test_life_cycle(self):
        tmp = harness.tempfile.mkdtemp(prefix="e2e-vidx-s3-", dir=harness.TMP)
        s3 = s3util.S3rver(os.path.join(tmp, "s3data"), ["lake"]).start()
        srv = None
        try:
            secrets = os.path.join(tmp, "secrets.toml")
            with open(secrets, "w") as f:
                f.write('[s3]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n')
            os.chmod(secrets, 0o600)
            srv = harness.Server(principals=[("owner", ADMIN, ["admin"])], extra_toml=(
                '\n[vector]\ntexts_in_memory_bytes = 0\n'
                '\n[storage]\nprimary = "lake"\nprobe_interval_ms = 0\n[secrets]\nfile = "%s"\n'
                '[[bucket]]\nname = "lake"\nbackend = "s3"\nendpoint = "http://127.0.0.1:%d"\n'
                'bucket = "lake"\nsecret_ref = "s3"\n' % (secrets, s3.port))).start()
            csv = "id,note\n" + "".join("%d,note number %d about %s\n" % (
                i, i, ["pumps", "valves", "boilers"][i % 3]) for i in range(1, 61))
            st, _, b = srv.request("POST", "/ingest/file?dataset=notes&format=csv", csv, who="owner")
            self.assertEqual(st, 201, b)
            st, _, b = srv.request("POST", "/vectors/indexes", who="owner", body={
                "name": "notes_ix", "dataset": "notes", "id_column": "id", "text_column": "note",
                "async": False})
            self.assertEqual(st, 201, b)
            st, _, objs = srv.request("GET", "/storage/buckets/lake/objects?prefix=_vectors/",
                                      who="owner")
            keys = sorted(o["key"] for o in objs["objects"])
            self.assertEqual(keys, ["_vectors/notes_ix/_live/v000001.json"] +
                             ["_vectors/notes_ix/gen-000001/" + n for n in
                              ("bm25.parquet", "embeddings.parquet", "hnsw.bin", "index.json")])
            q = {"query": "valves", "k": 5, "include": ["note"]}
            st, _, first = srv.request("POST", "/vectors/indexes/notes_ix/search", body=q,
                                       who="owner")
            self.assertEqual(st, 200, first)
            self.assertTrue(all("valves" in h["chunk_text"] for h in first["hits"]))
            srv.stop()
            srv.start()
            st, _, again = srv.request("POST", "/vectors/indexes/notes_ix/search", body=q,
                                       who="owner")
            self.assertEqual(st, 200, again)
            self.assertEqual(first["hits"], again["hits"])
            st, _, d = srv.request("GET", "/vectors/indexes/notes_ix", who="owner")
            self.assertEqual(d["sidecar"], "mapped", srv.log_text()[-2000:])
            self.assertEqual(d["texts"], "read_from_file")  # the limit is 0 here
            st, _, _ = srv.request("DELETE", "/vectors/indexes/notes_ix", who="owner")
            self.assertEqual(st, 200)
            st, _, objs = srv.request("GET", "/storage/buckets/lake/objects?prefix=_vectors/",
                                      who="owner")
            self.assertEqual(objs["objects"], [])
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            if srv:
                srv.cleanup()
            s3.stop()
            harness.shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
