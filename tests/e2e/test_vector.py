"""End-to-end: POST /embed — the built-in embedding (deterministic unit vectors of 384
dimensions, similar wording close, every bad input a clear 400; agents may call it) and
the remote providers. Ollama and OpenAI-compatible servers cannot run here, so the tests
stand up small HTTP servers that speak their documented wire formats (Ollama
POST /api/embed, OpenAI POST /v1/embeddings) and check what we send and how we read the
answers, including a provider that is down or answers with the wrong shape."""
import http.server
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, AGENT = "tok-admin-vec-00001", "tok-agent-vec-00001"
API_KEY = "sk-test-key-never-logged-123"


class FakeProvider(http.server.BaseHTTPRequestHandler):
    """Ollama's /api/embed and OpenAI's /v1/embeddings, per their documentation. The
    vector of a text is [len(text), number of spaces, 1] (or a wrong shape on request)."""
    seen = []
    mode = "ok"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeProvider.seen.append((self.path, body, self.headers.get("Authorization")))
        texts = body["input"]
        vecs = [[float(len(t)), float(t.count(" ")), 1.0] for t in texts]
        if FakeProvider.mode == "ragged":
            vecs[-1] = [1.0]
        if FakeProvider.mode == "wide":
            vecs = [v + [0.0] for v in vecs]
        if FakeProvider.mode == "error":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model exploded")
            return
        if self.path == "/api/embed":
            out = {"model": body["model"], "embeddings": vecs}
        elif self.path == "/v1/embeddings":
            # the spec does not promise order: answer reversed, by index
            out = {"object": "list", "model": body["model"],
                   "data": [{"object": "embedding", "index": i, "embedding": v}
                            for i, v in reversed(list(enumerate(vecs)))]}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Embed(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeProvider)
        threading.Thread(target=cls.fake.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.fake.shutdown)
        url = "http://127.0.0.1:%d" % cls.fake.server_address[1]
        cls.tmp = cls.make_tmp("vec")
        secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[llm]\napi_key = "%s"\n' % API_KEY)
        os.chmod(secrets, 0o600)
        cls.start_server(
            principals=[("owner", ADMIN, ["admin"]), ("bot", AGENT, ["agent"])],
            extra_toml='\n[secrets]\nfile = "%s"\n[vector]\nollama_url = "%s"\n'
                       'openai_url = "%s"\nopenai_secret_ref = "llm"\nembed_batch = 2\n'
                       'embed_timeout_ms = 3000\n' % (secrets, url, url))

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        assert API_KEY not in cls.srv.log_text()

    def test_remote_providers(self):
        texts = ["a b c", "hello", "x y"]
        for model, path in (("ollama:nomic-embed-text", "/api/embed"),
                            ("openai:text-embedding-3-small", "/v1/embeddings")):
            FakeProvider.seen.clear()
            st, _, out = self.embed({"model": model, "texts": texts})
            self.assertEqual(st, 200, out)
            self.assertEqual((out["model"], out["dim"]), (model, 3))
            self.assertEqual(out["vectors"], [[5.0, 2.0, 1.0], [5.0, 0.0, 1.0], [3.0, 1.0, 1.0]])
            # batches of 2 (embed_batch), sent concurrently (in any order), the provider's
            # model name, the key for openai only
            self.assertEqual(sorted((p, b["input"]) for p, b, _ in FakeProvider.seen),
                             sorted([(path, texts[:2]), (path, texts[2:])]))
            self.assertEqual(FakeProvider.seen[0][1]["model"], model.split(":", 1)[1])
            self.assertEqual(FakeProvider.seen[0][2],
                             "Bearer " + API_KEY if model.startswith("openai") else None)
        # a provider answering wrongly, failing, or not there: 502 naming it
        try:
            FakeProvider.mode = "ragged"
            st, _, out = self.embed({"model": "ollama:m", "texts": ["a", "b"]})
            self.assertEqual((st, out["error"]["code"]), (502, "provider_bad_response"))
            self.assertIn("ollama:m", out["error"]["message"])
            FakeProvider.mode = "error"
            st, _, out = self.embed({"model": "openai:m", "texts": ["a"]})
            self.assertEqual((st, out["error"]["code"]), (502, "provider_error"))
            self.assertNotIn(API_KEY, json.dumps(out))
        finally:
            FakeProvider.mode = "ok"
        down = harness.Server(principals=[("bot", AGENT, ["agent"])],
                              extra_toml='\n[vector]\nollama_url = "http://127.0.0.1:9"\n').start()
        try:
            st, _, out = down.request("POST", "/embed", {"model": "ollama:m", "texts": ["a"]},
                                      who="bot")
            self.assertEqual((st, out["error"]["code"]), (502, "provider_unreachable"))
            st, _, out = down.request("POST", "/embed", {"model": "openai:m", "texts": ["a"]},
                                      who="bot")
            self.assertEqual((st, out["error"]["code"]), (400, "unknown_model"))  # no openai_url
        finally:
            down.stop()
            down.cleanup()

    def embed(self, body, who="bot"):
        return self.srv.request("POST", "/embed", body, who=who)

    def test_index_on_remote_model(self):
        """An index embedded by a remote model beside a builtin one over the same data:
        batches through the provider, queries embedded by the same model, a refresh that
        asks the provider only for changed text, and a provider that changes dimension."""
        rows = "id,note\n" + "".join("%d,%s\n" % (i, " ".join(["w"] * i)) for i in range(1, 31))
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=notes&format=csv&primary_key=id",
                                    rows, who="owner")
        self.assertEqual(st, 201, b)
        for name, model in (("notes_remote", "ollama:nomic-embed-text"), ("notes_local", "builtin")):
            FakeProvider.seen.clear()
            st, _, b = self.srv.request("POST", "/vectors/indexes", who="owner", body={
                "name": name, "dataset": "notes", "id_column": "id", "text_column": "note",
                "model": model, "metric": "l2", "async": False})
            self.assertEqual(st, 201, b)
            self.assertEqual(b["vectors"], 30)
            if model.startswith("ollama"):  # 30 texts in batches of 2
                self.assertEqual(sum(len(x[1]["input"]) for x in FakeProvider.seen), 30)
                self.assertEqual(len(FakeProvider.seen), 15)
        st, _, d = self.srv.request("GET", "/vectors/indexes/notes_remote", who="owner")
        self.assertEqual((d["model"], d["model_version"], d["dim"]),
                         ("ollama:nomic-embed-text", "nomic-embed-text", 3))
        # the fake's vector of a text is [length, spaces, 1]: "w w w" is [5, 2, 1], doc 3
        FakeProvider.seen.clear()
        st, _, res = self.srv.request("POST", "/vectors/indexes/notes_remote/search",
                                      {"query": "x y z", "k": 1}, who="bot")
        self.assertEqual(st, 200, res)
        self.assertEqual(res["hits"][0]["doc_id"], "3")
        self.assertEqual([x[1]["input"] for x in FakeProvider.seen], [["x y z"]])
        # one row changes: the refresh asks the provider for that text only
        st, _, b = self.srv.request("POST", "/datasets/notes/rows", who="owner",
                                    body={"upsert": [{"id": 2, "note": "changed text here"}]})
        self.assertEqual(st, 201, b)
        FakeProvider.seen.clear()
        st, _, b = self.srv.request("POST", "/vectors/indexes/notes_remote/refresh",
                                    {"async": False}, who="owner")
        self.assertEqual(st, 200, b)
        self.assertEqual((b["embedded"], b["reused"]), (1, 29))
        self.assertEqual([x[1]["input"] for x in FakeProvider.seen], [["changed text here"]])
        # a provider that now answers with another dimension: 502, the index stays as it was
        try:
            FakeProvider.mode = "wide"
            self.srv.request("POST", "/datasets/notes/rows", who="owner",
                             body={"upsert": [{"id": 5, "note": "another change"}]})
            st, _, b = self.srv.request("POST", "/vectors/indexes/notes_remote/refresh",
                                        {"async": False}, who="owner")
            self.assertEqual((st, b["error"]["code"]), (502, "provider_bad_response"))
        finally:
            FakeProvider.mode = "ok"
        st, _, d = self.srv.request("GET", "/vectors/indexes/notes_remote", who="owner")
        self.assertEqual((d["generation"], d["building"]), (2, False))

    def test_builtin(self):
        texts = ["Senior Kubernetes engineer, Chicago", "kubernetes ENGINEER in chicago",
                 "Registered nurse, night shifts", ""]
        st, _, out = self.embed({"model": "builtin", "texts": texts})
        self.assertEqual(st, 200, out)
        self.assertEqual((out["model"], out["model_version"], out["dim"]),
                         ("builtin", "builtin-v1", 384))
        v = out["vectors"]
        self.assertEqual([len(x) for x in v], [384] * 4)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
        self.assertAlmostEqual(dot(v[0], v[0]), 1.0, places=4)
        self.assertGreater(dot(v[0], v[1]), 0.5)
        self.assertLess(dot(v[0], v[2]), dot(v[0], v[1]) - 0.3)
        self.assertEqual(dot(v[3], v[3]), 0.0)
        st, _, again = self.embed({"model": "builtin", "texts": texts[:1]}, who="owner")
        self.assertEqual(again["vectors"][0], v[0])  # deterministic

    def test_bad_input(self):
        cases = [
            ({"model": "gpt-9", "texts": ["x"]}, "unknown_model"),
            ({"model": "ollama:", "texts": ["x"]}, "unknown_model"),
            ({"texts": ["x"]}, "invalid_parameter"),
            ({"model": "builtin", "texts": []}, "invalid_parameter"),
            ({"model": "builtin", "texts": "x"}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x", 5]}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x"] * 1025}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x"], "extra": 1}, "invalid_parameter"),
        ]
        for body, code in cases:
            st, _, out = self.embed(body)
            self.assertEqual((st, out["error"]["code"]), (400, code), body)
        st, _, out = self.srv.request("POST", "/embed", "{bad", who="bot",
                                      headers={"Content-Type": "application/json"})
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_json"))
        st, _, _ = self.srv.request("POST", "/embed", {"model": "builtin", "texts": ["x"]})
        self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
