"""End-to-end: text (BM25) and hybrid search over the demo candidates' resumes, with answers
known in advance: a rare word that the builtin model's hashed vector of a long resume
dilutes is found first by its words; hybrid fusion puts the resume that is strong in both
rankings first and its scores are the reciprocal-rank formula; weights of 0 give back
either ranking; filters and included columns work in every mode; a refresh indexes the
changed words; promotion, rollback and a restart keep text search; a generation written
before there were text index files gets one built at load; an index over a vector column
has none; every bad input is a clear 400."""
import glob
import json
import os
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-hybrid-0001"
INDEX = "candidate_resumes"  # the demo's index over candidates.resume_text

TEMPLATE = ("Experienced Data Engineer with 9 years in Finance. Strong in Python and SQL; has "
            "led teams in Chicago. ")
ROWS = [
    # a long resume with one mention of Snowflake: the word is one feature among many in
    # the hashed vector, so the builtin model ranks template resumes above it
    {"candidate_id": 5001, "full_name": "Ada Stone", "city": "Chicago",
     "resume_text": TEMPLATE + "Led the migration of the warehouse to Snowflake, built streaming "
     "pipelines with Kafka and Flink, mentored analysts, and holds the Databricks "
     "certification."},
    # close to a template query by wording, and holds the rare word once
    {"candidate_id": 5003, "full_name": "Cy Moss", "city": "Chicago",
     "resume_text": "Experienced Data Engineer with 9 years in Finance. Strong in Python and "
     "Snowflake; has led teams in Chicago."},
    # the rare word four times, nothing else of the query
    {"candidate_id": 5004, "full_name": "Di Park", "city": "Denver",
     "resume_text": "Snowflake consultant: Snowflake migrations, Snowflake cost tuning, "
     "Snowflake training."},
]


class Hybrid(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        env = {"LAKEHOUSE_SERVER_PORT": str(cls.srv.port), "LAKEHOUSE_CONFIG": cls.srv.config,
               "LAKEHOUSE_TOKEN": ADMIN}
        rc, out, err = harness.run_cli(["demo", "--scale", "0.01"], env=env, cwd=cls.srv.dir,
                                       timeout=300)
        assert rc == 0, err

    def req(self, method, path, body=None, status=200):
        st, _, b = self.srv.request(method, path, body=body, who="owner")
        self.assertEqual(st, status, b)
        return b

    def search(self, body, status=200, index=INDEX):
        return self.req("POST", "/vectors/indexes/%s/search" % index, body, status)

    def ids(self, body, index=INDEX):
        return [h["doc_id"] for h in self.search(body, index=index)["hits"]]

    def refresh(self, index=INDEX):
        return self.req("POST", "/vectors/indexes/%s/refresh" % index, {"async": False})

    def gen_dir(self, generation, index=INDEX):
        return glob.glob(os.path.join(self.srv.data_dir, "**", "_vectors", index,
                                      "gen-%06d" % generation), recursive=True)[0]

    def bad(self, body, status, *words, index=INDEX):
        b = self.search(body, status, index=index)
        message = b["error"]["message"] + " " + b["error"].get("hint", "")
        for w in words:
            self.assertIn(w, message, b)
        return b

    def test_a_rare_word(self):
        self.req("PATCH", "/catalog/datasets/candidates", {"primary_key": ["candidate_id"]})
        self.req("POST", "/datasets/candidates/rows", {"upsert": ROWS[:1]}, 201)
        self.assertEqual(self.refresh()["generation"], 2)
        q = {"query": "Snowflake", "k": 10}
        # the lexical vector misses it even searched exactly; the words find it first
        self.assertNotIn("5001", self.ids(dict(q, exact=True)))
        text = self.search(dict(q, mode="text"))
        self.assertEqual(text["mode"], "text")
        self.assertEqual(text["method"], "bm25")
        self.assertEqual([h["doc_id"] for h in text["hits"]], ["5001"])  # no other has it
        self.assertEqual(text["text"]["terms"], [{"term": "snowflake", "documents": 1}])
        self.assertIn("Snowflake", text["hits"][0]["chunk_text"])
        self.assertGreater(text["hits"][0]["score"], 0)
        self.assertNotIn("model", text)
        hybrid = self.search(dict(q, mode="hybrid"))
        self.assertEqual(hybrid["hits"][0]["doc_id"], "5001")
        self.assertIsNone(hybrid["hits"][0]["vector"])
        self.assertEqual(hybrid["hits"][0]["text"]["rank"], 1)
        # the vector answer is what it always was, and says its mode
        plain = self.search(q)
        self.assertEqual(plain["mode"], "vector")
        self.assertIn(plain["method"], ("hnsw", "exact"))
        self.assertEqual(self.search(dict(q, mode="vector"))["hits"], plain["hits"])
        # the generation's files: the text index beside the embeddings, named by index.json
        gen = self.gen_dir(2)
        self.assertTrue(os.path.exists(os.path.join(gen, "bm25.parquet")))
        with open(os.path.join(gen, "index.json")) as f:
            files = json.load(f)["files"]
        self.assertTrue(files["bm25"].endswith("gen-000002/bm25.parquet"))
        self.assertGreater(files["bm25_bytes"], 0)
        # the command line passes the mode
        env = {"LAKEHOUSE_SERVER_PORT": str(self.srv.port), "LAKEHOUSE_CONFIG": self.srv.config,
               "LAKEHOUSE_TOKEN": ADMIN}
        rc, out, err = harness.run_cli(["search", INDEX, "Snowflake", "--mode", "text",
                                        "--format", "json"], env=env, cwd=self.srv.dir)
        self.assertEqual(rc, 0, err)
        self.assertEqual([h["doc_id"] for h in json.loads(out)["hits"]], ["5001"])
        rc, out, err = harness.run_cli(["search", INDEX, "Snowflake", "--mode", "words"],
                                       env=env, cwd=self.srv.dir)
        self.assertEqual(rc, 2)
        self.assertIn("hybrid", err)
        d = self.req("GET", "/vectors/indexes/" + INDEX)
        self.assertEqual(d["text_index"]["source"], "build")
        self.assertGreater(d["text_index"]["terms"], 50)

    def test_b_hybrid_strong_in_both(self):
        self.req("POST", "/datasets/candidates/rows", {"upsert": ROWS[1:]}, 201)
        self.refresh()
        q = {"query": "engineer with Snowflake in Chicago", "k": 5}
        vector = self.ids(dict(q, exact=True))
        text = self.ids(dict(q, mode="text"))
        # the words alone prefer the resume that repeats the rare word; the vector alone
        # does not see that one at all; the resume near the top of both wins the fusion
        self.assertEqual(text[:2], ["5004", "5003"])
        self.assertEqual(vector[0], "5003")
        self.assertNotIn("5004", vector)
        hybrid = self.search(dict(q, mode="hybrid"))
        self.assertEqual(hybrid["mode"], "hybrid")
        self.assertEqual(hybrid["method"], "rrf")
        self.assertEqual(hybrid["hits"][0]["doc_id"], "5003")
        self.assertEqual(hybrid["hits"][0]["vector"]["rank"], 1)
        self.assertEqual(hybrid["hits"][0]["text"]["rank"], 2)
        self.assertEqual(hybrid["hybrid"], {"vector_weight": 1.0, "text_weight": 1.0,
                                            "rrf_k": 60, "depth": 30})
        self.assertEqual(hybrid["vector"]["hits"], 30)
        self.assertEqual(hybrid["text"]["hits"], 30)

    def test_c_fusion_arithmetic_and_weights(self):
        q = {"query": "Data Engineer Python Spark Seattle", "k": 20}
        h = {"vector_weight": 2, "text_weight": 0.5, "rrf_k": 10, "depth": 40}
        ans = self.search(dict(q, mode="hybrid", hybrid=h))
        self.assertEqual(ans["hybrid"], {"vector_weight": 2.0, "text_weight": 0.5, "rrf_k": 10,
                                         "depth": 40})
        # the parts' ranks are the two rankings' own, taken to the depth
        vec = self.search(dict(q, k=40))["hits"]
        txt = self.search(dict(q, k=40, mode="text"))["hits"]
        vrank = {(x["doc_id"], x["chunk_id"]): i + 1 for i, x in enumerate(vec)}
        trank = {(x["doc_id"], x["chunk_id"]): i + 1 for i, x in enumerate(txt)}
        want = {}
        for key in set(vrank) | set(trank):
            want[key] = ((2 / (10 + vrank[key]) if key in vrank else 0) +
                         (0.5 / (10 + trank[key]) if key in trank else 0))
        best = sorted(want.values(), reverse=True)[:20]
        got = []
        for hit in ans["hits"]:
            key = (hit["doc_id"], hit["chunk_id"])
            self.assertAlmostEqual(hit["score"], want[key], places=9)
            self.assertEqual(hit["vector"]["rank"] if hit["vector"] else None, vrank.get(key))
            self.assertEqual(hit["text"]["rank"] if hit["text"] else None, trank.get(key))
            got.append(hit["score"])
        self.assertEqual(got, sorted(got, reverse=True))
        for a, b in zip(got, best):
            self.assertAlmostEqual(a, b, places=9)
        # a weight of 0 leaves the other ranking as it was
        only_v = self.ids(dict(q, mode="hybrid", hybrid={"text_weight": 0, "depth": 20}))
        self.assertEqual(only_v, [x["doc_id"] for x in vec[:20]])
        only_t = self.ids(dict(q, mode="hybrid", hybrid={"vector_weight": 0, "depth": 20}))
        self.assertEqual(only_t, [x["doc_id"] for x in txt[:20]])

    def test_d_filter_and_include(self):
        city = "Seattle"
        n_city = self.req("POST", "/query", {
            "sql": "SELECT count(*) AS n FROM candidates WHERE city = 'Seattle' AND "
                   "lower(resume_text) LIKE '%python%'"})["rows"][0]["n"]
        self.assertGreater(n_city, 3)
        for mode in ("text", "hybrid"):
            body = {"query": "Python", "k": 50, "mode": mode, "filter": "city = '%s'" % city,
                    "include": ["city", "full_name"]}
            ans = self.search(body)
            self.assertGreater(len(ans["hits"]), 3)
            self.assertGreater(ans["filter"]["matched_documents"], 0)
            for hit in ans["hits"]:
                self.assertEqual(hit["columns"]["city"], city, hit)
                self.assertTrue(hit["columns"]["full_name"])
            if mode == "text":  # every hit holds the word; every resume that has it is here
                self.assertEqual(len(ans["hits"]), n_city)
                for hit in ans["hits"]:
                    self.assertIn("python", hit["chunk_text"].lower())
            # the same filter again: its positions come from the filter cache
            self.assertTrue(self.search(body)["filter"]["cached"])
        # a filter that leaves the only holder of the word out
        none = self.search({"query": "Databricks", "mode": "text", "filter": "city <> 'Chicago'"})
        self.assertEqual(none["hits"], [])

    def test_e_refresh_indexes_new_words(self):
        q = {"query": "zorblax", "mode": "text"}
        self.assertEqual(self.search(q)["hits"], [])
        self.req("POST", "/datasets/candidates/rows", {"upsert": [{
            "candidate_id": 7, "resume_text": "Experienced Zorblax wrangler in Phoenix."}]}, 201)
        gen = self.refresh()["generation"]
        hits = self.search(q)["hits"]
        self.assertEqual([h["doc_id"] for h in hits], ["7"])
        self.assertEqual(self.search(dict(q, mode="hybrid"))["hits"][0]["doc_id"], "7")
        self.assertEqual(self.search(q)["generation"], gen)

    def promote(self, m):
        st, _, b = self.srv.request("POST", "/vectors/indexes/%s/promote" % INDEX,
                                    body={"hnsw": {"m": m}, "async": False}, who="owner")
        self.assertIn(st, (200, 201), b)
        return b["generation"]

    def restart_and_source(self):
        self.srv.stop()
        self.srv.start()
        return self.req("GET", "/vectors/indexes/" + INDEX)["text_index"]["source"]

    def test_f_promote_rollback_restart(self):
        q = {"query": "Snowflake Kafka Flink", "k": 5, "mode": "text"}
        before = self.search(q)
        live = before["generation"]
        promoted = self.promote(8)
        self.assertEqual(promoted, live + 1)
        after = self.search(q)
        self.assertEqual(after["generation"], promoted)
        self.assertEqual(after["hits"], before["hits"])
        self.assertTrue(os.path.exists(os.path.join(self.gen_dir(promoted), "bm25.parquet")))
        with open(os.path.join(self.gen_dir(promoted), "index.json")) as f:
            self.assertTrue(json.load(f)["files"]["bm25"].endswith(
                "gen-%06d/bm25.parquet" % promoted))
        self.req("POST", "/vectors/indexes/%s/rollback" % INDEX, {})
        back = self.search(q)
        self.assertEqual(back["generation"], live)
        self.assertEqual(back["hits"], before["hits"])
        # restart: read from the generation's file, the same answers
        self.assertEqual(self.restart_and_source(), "file")
        self.assertEqual(self.search(q)["hits"], before["hits"])
        # a file that cannot be read: built from the chunk texts instead, logged
        gen = self.gen_dir(live)
        with open(os.path.join(gen, "bm25.parquet"), "wb") as f:
            f.write(b"PAR1 not a parquet file")
        self.assertEqual(self.restart_and_source(), "chunk_texts")
        self.assertEqual(self.search(q)["hits"], before["hits"])
        self.assertTrue(any("building the text index" in l.get("msg", "")
                            for l in self.srv.log_lines()))
        # a generation from before text index files (index.json names none): the same
        with open(os.path.join(gen, "index.json")) as f:
            desc = json.load(f)
        del desc["files"]["bm25"]
        del desc["files"]["bm25_bytes"]
        self.srv.stop()
        with open(os.path.join(gen, "index.json"), "w") as f:
            json.dump(desc, f)
        os.remove(os.path.join(gen, "bm25.parquet"))
        self.srv.start()
        self.assertEqual(self.req("GET", "/vectors/indexes/" + INDEX)["text_index"]["source"],
                         "chunk_texts")
        self.assertEqual(self.search(q)["hits"], before["hits"])
        # its promotion has no file to copy: text search still works, then and after a start
        again = self.promote(12)
        self.assertFalse(os.path.exists(os.path.join(self.gen_dir(again), "bm25.parquet")))
        self.assertEqual(self.search(q)["hits"], before["hits"])
        self.assertEqual(self.restart_and_source(), "chunk_texts")
        self.assertEqual(self.search(q)["generation"], again)
        self.assertEqual(self.search(q)["hits"], before["hits"])

    def test_h_tool(self):
        """A search tool's binding chooses the mode; the search validates it for every door."""
        tool = {"name": "search_words", "description": "resumes by meaning and words",
                "input_schema": {"type": "object", "additionalProperties": False,
                                 "required": ["query"],
                                 "properties": {"query": {"type": "string", "minLength": 1}}},
                "kind": "search",
                "binding": {"index": INDEX, "query_param": "query", "k": 3, "mode": "hybrid",
                            "hybrid": {"text_weight": 2}, "include": ["full_name"]},
                "allow": {"principals": ["owner"]}}
        self.req("POST", "/tools", tool, 201)
        got = self.req("POST", "/tools/search_words/call", {"arguments": {"query": "Snowflake"}})
        result = got.get("result", got)
        want = self.search({"query": "Snowflake", "k": 3, "mode": "hybrid",
                            "hybrid": {"text_weight": 2}, "include": ["full_name"]})
        self.assertEqual(result["mode"], "hybrid")
        self.assertEqual(result["hits"], want["hits"])
        self.assertIn("text", result["hits"][0])
        for binding, words in (({"mode": "fuzzy"}, "'mode'"),
                               ({"mode": "text", "hybrid": {"rrf_k": 5}}, "hybrid"),
                               ({"mode": "hybrid", "hybrid": {"vector_weight": -2}},
                                "hybrid.vector_weight")):
            bad = dict(tool, name="bad_words", binding=dict(tool["binding"], **binding))
            if "hybrid" not in binding:
                del bad["binding"]["hybrid"]
            b = self.req("POST", "/tools", bad, 400)
            self.assertEqual(b["error"]["code"], "invalid_tool")
            self.assertIn("binding", b["error"]["message"])
            self.assertIn(words, b["error"]["message"])

    def test_g_bad_input(self):
        self.bad({"query": "x", "mode": "semantic"}, 400, "vector", "text", "hybrid")
        self.bad({"query": "x", "mode": 3}, 400, "'mode'")
        self.bad({"query": "x", "mode": "text", "hybrid": {}}, 400, "hybrid")
        self.bad({"query": "x", "hybrid": {"rrf_k": 60}}, 400, "hybrid")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": []}, 400, "'hybrid' must be an object")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"alpha": 1}}, 400, "hybrid.alpha",
                 "vector_weight")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"vector_weight": -1}}, 400,
                 "hybrid.vector_weight")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"text_weight": "1"}}, 400,
                 "hybrid.text_weight")
        self.bad({"query": "x", "mode": "hybrid",
                  "hybrid": {"vector_weight": 0, "text_weight": 0}}, 400, "both be 0")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"rrf_k": 0}}, 400, "hybrid.rrf_k")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"rrf_k": 1.5}}, 400, "hybrid.rrf_k")
        self.bad({"query": "x", "mode": "hybrid", "hybrid": {"depth": 0}}, 400, "hybrid.depth")
        self.bad({"vector": [0.1] * 384, "mode": "text"}, 400, "text 'query'")
        self.bad({"vector": [0.1] * 384, "mode": "hybrid"}, 400, "text 'query'")
        self.bad({"query": "?! --", "mode": "text"}, 400, "no words")
        self.bad({"query": "...", "mode": "hybrid"}, 400, "no words")
        self.bad({"query": "x", "mode": "text", "exact": True}, 400, "'exact'")
        self.bad({"query": "x", "mode": "text", "ef": 50}, 400, "'ef'")
        # a raw vector takes mode vector only
        st, _, b = self.srv.request(
            "POST", "/vectors/indexes/%s/search?mode=text" % INDEX,
            body=struct.pack("<384f", *([0.05] * 384)),
            headers={"Content-Type": "application/octet-stream"}, who="owner")
        self.assertEqual(st, 400, b)
        self.assertIn("text 'query'", b["error"]["message"])
        st, _, b = self.srv.request(
            "POST", "/vectors/indexes/%s/search?mode=vector&k=2" % INDEX,
            body=struct.pack("<384f", *([0.05] * 384)),
            headers={"Content-Type": "application/octet-stream"}, who="owner")
        self.assertEqual(st, 200, b)
        self.assertEqual(len(b["hits"]), 2)
        # an index over a vector column has no texts to search
        rows = [{"id": i, "emb": [float(i), 1.0, 0.0]} for i in range(1, 21)]
        self.req("POST", "/ingest/file?dataset=vecs&format=ndjson",
                 "\n".join(json.dumps(r) for r in rows) + "\n", 201)
        self.req("POST", "/vectors/indexes", {"name": "vecs_idx", "dataset": "vecs",
                                              "id_column": "id", "vector_column": "emb",
                                              "async": False}, 201)
        self.assertIsNone(self.req("GET", "/vectors/indexes/vecs_idx")["text_index"])
        self.bad({"vector": [1, 1, 0], "mode": "text"}, 400, "vectors from column", "no texts",
                 "text_column", index="vecs_idx")
        self.bad({"vector": [1, 1, 0], "mode": "hybrid"}, 400, "no texts", index="vecs_idx")
        self.assertEqual(len(self.search({"vector": [1, 1, 0], "k": 3},
                                         index="vecs_idx")["hits"]), 3)
        gen = self.gen_dir(1, index="vecs_idx")
        self.assertFalse(os.path.exists(os.path.join(gen, "bm25.parquet")))


if __name__ == "__main__":
    unittest.main()
