"""End-to-end: model profiles. Two principals with two [[profile]]s binding two indexes
with different embedding models (builtin, and a remote Ollama model served by a small stub
that speaks Ollama's documented POST /api/embed) over one dataset: each one's search of
the dataset uses its own index and model, shown in the answer, through HTTP and through a
tool, without touching anyone else's. /whoami and GET /profiles show profiles (never a
secret; a non-admin sees only its own), "profile" as a model name means the caller's
profile's model, a profile's max_k bounds its searches, and a reload that moves a
principal to another profile changes what its next search uses."""
import http.server
import json
import os
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

TOKENS = {"owner": "tok-prof-owner-00001", "rita": "tok-prof-rita-000001",
          "remy": "tok-prof-remy-000001", "bot": "tok-prof-bot-0000001",
          "plain": "tok-prof-plain-00001"}
API_KEY = "sk-profile-key-never-shown-42"


class FakeOllama(http.server.BaseHTTPRequestHandler):
    """Ollama's POST /api/embed: {"model", "input": [...]} → {"model", "embeddings"}. The
    vector of a text is [len(text), number of spaces, 1]."""
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOllama.seen.append((self.path, body))
        if self.path != "/api/embed":
            self.send_response(404)
            self.end_headers()
            return
        vecs = [[float(len(t)), float(t.count(" ")), 1.0] for t in body["input"]]
        data = json.dumps({"model": body["model"], "embeddings": vecs}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def principal(name, roles, profile=None):
    text = ('\n[[principal]]\nname = "%s"\ntoken_sha256 = "%s"\nroles = [%s]\n'
            % (name, harness.sha256_hex(TOKENS[name]), ", ".join('"%s"' % r for r in roles)))
    return text + ('profile = "%s"\n' % profile if profile else "")


PROFILES = '''
[[profile]]
name = "local"
description = "searches on the builtin model"
embed_model = "builtin"
bind = ["people=people_local"]
max_k = 3

[[profile]]
name = "remote"
embed_model = "ollama:nomic-embed-text"
embed_models = ["resumes=builtin"]
bind = ["people=people_remote", "talent=people_remote"]
bucket = "profile:{user}"
generate_api = "ollama"
generate_url = "http://127.0.0.1:11434"
generate_model = "llama3.2"
generate_secret_ref = "llm"
tool_calls_per_minute = 500
'''

SEARCH_TOOL = {
    "name": "find_people", "description": "People by meaning",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["q"],
                     "properties": {"q": {"type": "string", "minLength": 1}}},
    "kind": "search",
    "binding": {"index": "people_local", "query_param": "q", "k": 2, "profile": True},
    "allow": {"roles": ["agent", "reader"]}, "rate": {"per_minute": 6000, "burst": 1000}}


def config(rita_profile="local"):
    return (principal("rita", ["reader"], rita_profile) + principal("remy", ["reader"], "remote")
            + principal("bot", ["agent"], "remote") + principal("plain", ["reader"]) + PROFILES)


class ModelProfiles(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOllama)
        threading.Thread(target=cls.fake.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.fake.shutdown)
        url = "http://127.0.0.1:%d" % cls.fake.server_address[1]
        tmp = cls.make_tmp("prof")
        secrets = os.path.join(tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[llm]\napi_key = "%s"\n' % API_KEY)
        os.chmod(secrets, 0o600)
        cls.head = ('\n[secrets]\nfile = "%s"\n[vector]\nollama_url = "%s"\n'
                    % (secrets, url))

        def configure(srv):
            srv.tokens.update(TOKENS)

        cls.start_server(principals=[("owner", TOKENS["owner"], ["admin"])],
                         extra_toml=cls.head + config(), configure=configure)
        with open(cls.srv.config) as f:
            cls.base = f.read()
        rows = "".join('{"id": %d, "bio": "%s"}\n' % (i, " ".join(["w"] * i))
                       for i in range(1, 21))
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=people&format=ndjson"
                                   "&primary_key=id", rows, who="owner")
        assert st == 201, b
        for name, model in (("people_local", "builtin"),
                            ("people_remote", "ollama:nomic-embed-text")):
            st, _, b = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
                "name": name, "dataset": "people", "id_column": "id", "text_column": "bio",
                "model": model, "metric": "l2", "async": False})
            assert st == 201, b
        st, _, b = cls.srv.request("POST", "/tools", body=SEARCH_TOOL, who="owner")
        assert st == 201, b

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        assert API_KEY not in cls.srv.log_text()

    def search(self, who, name="people", **body):
        body.setdefault("query", "w w w")
        body.setdefault("k", 1)
        return self.srv.request("POST", "/vectors/indexes/%s/search" % name, body, who=who)

    def test_two_profiles_one_dataset(self):
        FakeOllama.seen.clear()
        st, _, a = self.search("rita")
        self.assertEqual(st, 200, a)
        self.assertEqual((a["index"], a["model"], a["profile"], a["requested"]),
                         ("people_local", "builtin", "local", "people"))
        self.assertEqual(FakeOllama.seen, [])  # rita's query never reached the remote model
        st, _, b = self.search("remy")
        self.assertEqual(st, 200, b)
        self.assertEqual((b["index"], b["model"], b["profile"]),
                         ("people_remote", "ollama:nomic-embed-text", "remote"))
        self.assertEqual([x[1]["input"] for x in FakeOllama.seen], [["w w w"]])
        self.assertEqual(b["hits"][0]["doc_id"], "3")  # [5, 2, 1] is exactly doc 3's vector
        # a logical name bound by one profile only
        self.assertEqual(self.search("remy", "talent")[2]["index"], "people_remote")
        st, _, e = self.search("rita", "talent")
        self.assertEqual((st, e["error"]["code"]), (404, "index_not_found"))
        # without a profile, the dataset name is no index; an index named outright is used
        st, _, e = self.search("plain")
        self.assertEqual((st, e["error"]["code"]), (404, "index_not_found"))
        st, _, c = self.search("rita", "people_remote")
        self.assertEqual((st, c["index"], c["model"]), (200, "people_remote",
                                                        "ollama:nomic-embed-text"))
        self.assertNotIn("requested", c)
        # rita's profile bounds k
        st, _, e = self.search("rita", k=4)
        self.assertEqual((st, e["error"]["code"]), (400, "invalid_parameter"))
        self.assertIn("at most 3", e["error"]["message"])
        self.assertEqual(self.search("remy", k=4)[0], 200)

    def test_tool_uses_the_callers_profile(self):
        got = {}
        for who in ("bot", "rita", "plain"):
            st, _, b = self.srv.request("POST", "/tools/find_people/call",
                                        body={"arguments": {"q": "w w"}}, who=who)
            self.assertEqual(st, 200, b)
            got[who] = (b["result"]["index"], b["result"]["model"])
        self.assertEqual(got, {"bot": ("people_remote", "ollama:nomic-embed-text"),
                               "rita": ("people_local", "builtin"),
                               "plain": ("people_local", "builtin")})
        # the same through MCP's tools/call
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}
        hdrs = {"Accept": "application/json, text/event-stream"}
        st, h, b = self.srv.request("POST", "/mcp", init, who="bot", headers=hdrs)
        self.assertEqual(st, 200, b)
        hdrs["Mcp-Session-Id"] = h["mcp-session-id"]
        hdrs["MCP-Protocol-Version"] = "2025-06-18"
        self.srv.request("POST", "/mcp", {"jsonrpc": "2.0", "method":
                                          "notifications/initialized"}, who="bot", headers=hdrs)
        st, _, b = self.srv.request("POST", "/mcp", {
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "find_people", "arguments": {"q": "w w"}}}, who="bot",
            headers=hdrs)
        self.assertEqual(st, 200, b)
        self.assertIn("people_remote", json.dumps(b["result"]))

    def test_whoami_and_profiles(self):
        st, _, me = self.srv.request("GET", "/whoami", who="remy")
        self.assertEqual(st, 200, me)
        self.assertEqual(me["profile"]["name"], "remote")
        self.assertEqual(me["default_bucket"], "profile:remy")
        self.assertEqual(me["profile"]["bindings"], {"people": "people_remote",
                                                     "talent": "people_remote"})
        self.assertEqual(me["profile"]["embedding_models"],
                         {"resumes": "builtin", "default": "ollama:nomic-embed-text"})
        gen = me["profile"]["generation"]
        self.assertEqual((gen["api"], gen["model"], gen["has_api_key"]),
                         ("ollama", "llama3.2", True))
        self.assertNotIn("secret_ref", gen)  # only admins see which table holds the key
        self.assertIsNone(self.srv.request("GET", "/whoami", who="plain")[2]["profile"])
        # a non-admin sees its own profile, an admin all of them
        names = lambda who: [p["name"] for p in
                             self.srv.request("GET", "/profiles", who=who)[2]["profiles"]]
        self.assertEqual(names("rita"), ["local"])
        self.assertEqual(names("bot"), ["remote"])
        self.assertEqual(names("plain"), [])
        self.assertEqual(names("owner"), ["local", "remote"])
        st, _, all_ = self.srv.request("GET", "/profiles", who="owner")
        self.assertEqual(all_["profiles"][1]["generation"]["secret_ref"], "llm")
        self.assertEqual(all_["profiles"][0]["limits"], {"max_k": 3})
        self.assertNotIn(API_KEY, json.dumps(all_))

    def test_profile_model_names(self):
        FakeOllama.seen.clear()
        st, _, b = self.srv.request("POST", "/embed", {"model": "profile", "texts": ["a b"]},
                                    who="remy")
        self.assertEqual((st, b["model"], b["vectors"]), (200, "ollama:nomic-embed-text",
                                                          [[3.0, 1.0, 1.0]]))
        st, _, b = self.srv.request("POST", "/embed", {"model": "profile:resumes",
                                                       "texts": ["a b"]}, who="remy")
        self.assertEqual((st, b["model"]), (200, "builtin"))
        st, _, b = self.srv.request("POST", "/embed", {"model": "profile:other",
                                                       "texts": ["a b"]}, who="rita")
        self.assertEqual((st, b["model"]), (200, "builtin"))  # no such purpose: the default
        st, _, b = self.srv.request("POST", "/embed", {"model": "profile", "texts": ["a"]},
                                    who="plain")
        self.assertEqual((st, b["error"]["code"]), (400, "no_profile_model"))
        self.assertIn("plain", b["error"]["message"])
        # an index made with the creator's profile's model keeps that model
        st, _, b = self.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "people_x", "dataset": "people", "id_column": "id", "text_column": "bio",
            "model": "profile", "async": False})
        self.assertEqual((st, b["error"]["code"]), (400, "no_profile_model"))

    def test_reload_moves_one_reader(self):
        try:
            with open(self.srv.config, "w") as f:
                f.write(self.base.replace(config(), config(rita_profile="remote")))
            st, _, rep = self.srv.request("POST", "/admin/reload", who="owner")
            self.assertEqual(st, 200, rep)
            self.assertEqual(rep["principals"]["changed"], ["rita"])
            self.assertEqual(rep["warnings"], [])  # the key's table is in the secrets file
            self.assertEqual(self.search("rita")[2]["index"], "people_remote")
            self.assertEqual(self.search("remy")[2]["index"], "people_remote")
            self.assertEqual(self.search("rita", k=4)[0], 200)  # remote has no max_k
        finally:
            with open(self.srv.config, "w") as f:
                f.write(self.base)
            st, _, rep = self.srv.request("POST", "/admin/reload", who="owner")
            self.assertEqual(st, 200, rep)
        self.assertEqual(self.search("rita")[2]["index"], "people_local")

    def test_missing_generation_key_is_a_warning(self):
        try:
            with open(self.srv.config, "w") as f:
                f.write(self.base.replace('generate_secret_ref = "llm"',
                                          'generate_secret_ref = "nokey"'))
            st, _, rep = self.srv.request("POST", "/admin/reload", who="owner")
            self.assertEqual(st, 200, rep)
            self.assertEqual(rep["warnings"], ["profile 'remote': generate_secret_ref 'nokey' "
                                               "is not a table of the secrets file"])
            self.assertNotIn(API_KEY, json.dumps(rep))
        finally:
            with open(self.srv.config, "w") as f:
                f.write(self.base)
            self.assertEqual(self.srv.request("POST", "/admin/reload", who="owner")[0], 200)


class BadProfiles(unittest.TestCase):
    def test_refused_at_start(self):
        cases = [('[[profile]]\nname = "Bad Name"\n', "'name' must be a name"),
                 ('[[profile]]\nname = "p"\nbind = ["people"]\n', "dataset=index"),
                 ('[[profile]]\nname = "p"\ngenerate_url = "http://x"\n', "generate_model"),
                 ('[[profile]]\nname = "p"\ngenerate_url = "ftp://x"\ngenerate_model = "m"\n',
                  "http://"),
                 ('[[profile]]\nname = "p"\nmax_k = 0\n', "max_k"),
                 ('[[profile]]\nname = "p"\n\n[[profile]]\nname = "p"\n', "defined twice")]
        for text, says in cases:
            srv = harness.Server(principals=[("owner", "tok-prof-owner-00001", ["admin"])],
                                 extra_toml="\n" + text)
            try:
                rc, _, err = harness.run_cli(["serve", "--config", srv.config], timeout=20)
                self.assertEqual(rc, 2, err)
                self.assertIn(srv.config + ":", err)
                self.assertIn(says, err)
            finally:
                srv.cleanup()


if __name__ == "__main__":
    unittest.main()
