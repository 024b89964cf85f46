"""End-to-end: live reload. POST /admin/reload and SIGHUP re-read the configuration file:
principals added and revoked take effect for the next request (an old token is 401 right
after), a tool rate limit and per-request limits change, keys that need a restart are
reported and not applied, a bad file is refused with file:line:col and the old set stays
in force, and a request in flight while the set is swapped finishes on the set it started
with. An S3 [[bucket]] the file adds (s3rver) is opened and the datasets it already holds
are loaded by the reload (a tenant principal limited to it reads them at once); an fs
bucket added, a bucket whose settings change, or one removed is reported as needing a
restart; a bucket that cannot be opened refuses the reload."""
import json
import os
import re
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402

OWNER, ALICE, BOB, CAROL = ("tok-reload-owner-0001", "tok-reload-alice-0001",
                            "tok-reload-bob-00001", "tok-reload-carol-0001")

ECHO = {
    "name": "echo", "description": "Says a number back",
    "input_schema": {"type": "object", "additionalProperties": False,
                     "required": ["n"], "properties": {"n": {"type": "integer"}}},
    "kind": "sql",
    "binding": {"datasets": ["nums"], "max_rows": 1, "query": "SELECT n FROM nums WHERE n = $n"},
    "allow": {"roles": ["agent"]}, "rate": {"per_minute": 60000, "burst": 10000}}


def principal(name, token, roles):
    return ('[[principal]]\nname = "%s"\ntoken_sha256 = "%s"\nroles = [%s]\n\n'
            % (name, harness.sha256_hex(token), ", ".join('"%s"' % r for r in roles)))


BASE_PRINCIPALS = [("owner", OWNER, ["admin"]), ("alice", ALICE, ["reader"]),
                   ("bob", BOB, ["agent"])]


class Reload(harness.ServerTestCase):
    principals = BASE_PRINCIPALS
    extra_toml = "\n[tools]\nmax_calls_per_minute = 1000\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.srv.tokens["carol"] = CAROL
        with open(cls.srv.config) as f:
            cls.base = f.read()
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=nums&format=ndjson",
                                   body="".join('{"n": %d}\n' % i for i in range(5)), who="owner")
        assert st == 201, b
        st, _, b = cls.srv.request("POST", "/tools", body=ECHO, who="owner")
        assert st == 201, b

    def tearDown(self):
        self.write(self.base)
        st, _, b = self.reload()
        self.assertEqual(st, 200, b)

    def write(self, text):
        with open(self.srv.config, "w") as f:
            f.write(text)

    def config(self, principals=BASE_PRINCIPALS, extra="\n[tools]\nmax_calls_per_minute = 1000\n",
               server=""):
        """The base file with other principals, more [server] keys and another tail."""
        head = self.base.split("[[principal]]")[0].replace("threads = 4\n", server or
                                                           "threads = 4\n")
        return head + "".join(principal(*p) for p in principals) + extra

    def reload(self, who="owner"):
        return self.srv.request("POST", "/admin/reload", who=who)

    def status(self, who, path="/whoami"):
        return self.srv.request("GET", path, who=who)[0]

    def test_add_and_revoke(self):
        self.assertEqual(self.status("carol"), 401)
        st, _, ws = self.srv.request("POST", "/workspaces", {"name": "w", "kind": "search"},
                                     who="owner")
        self.assertEqual(st, 201, ws)
        handoff = "/workspaces/%s/handoff" % ws["id"]
        st, _, b = self.srv.request("POST", handoff, {"to": "carol"}, who="owner")
        self.assertEqual(st, 400, b)  # no such principal yet
        self.write(self.config([("owner", OWNER, ["admin"]), ("bob", BOB, ["agent", "reader"]),
                                ("carol", CAROL, ["reader"])]))
        st, _, rep = self.reload()
        self.assertEqual(st, 200, rep)
        self.assertEqual(rep["principals"], {"added": ["carol"], "removed": ["alice"],
                                             "changed": ["bob"]})
        self.assertIn("principal", rep["applied"])
        self.assertEqual(rep["restart_required"], [])
        self.assertEqual(rep["config"], self.srv.config)
        # the revoked token fails right after, the new one works, the changed roles apply
        st, _, b = self.srv.request("GET", "/whoami", who="alice")
        self.assertEqual((st, b["error"]["code"]), (401, "unauthenticated"))
        st, _, b = self.srv.request("GET", "/whoami", who="carol")
        self.assertEqual((st, b["name"], b["roles"]), (200, "carol", ["reader"]))
        self.assertEqual(self.srv.request("GET", "/whoami", who="bob")[2]["roles"],
                         ["reader", "agent"])
        # workspaces know the new principal too
        st, _, b = self.srv.request("POST", handoff, {"to": "carol"}, who="owner")
        self.assertEqual((st, b.get("owner")), (200, "carol"), b)
        st, _, b = self.srv.request("POST", "/workspaces", {"name": "v", "kind": "search",
                                                           "members": ["alice"]}, who="owner")
        self.assertEqual(st, 400, b)  # alice is gone
        # reloading is for admins
        st, _, b = self.reload(who="carol")
        self.assertEqual((st, b["error"]["code"]), (403, "forbidden"))
        # a reload of an unchanged file changes nothing
        st, _, rep = self.reload()
        self.assertEqual((st, rep["changed"], rep["principals"]["added"]), (200, [], []))

    def test_bad_file_keeps_old_set(self):
        good_status = {who: self.status(who) for who in ("owner", "alice", "bob")}
        bad_files = [
            (self.config() + "\n[server\n", "invalid_toml"),
            (self.config() + "\n[engine]\nmax_queries_per_principal = -3\n", "invalid_config"),
            (self.config([("owner", OWNER, ["admin"])]) +
             '[[principal]]\nname = "dora"\ntoken_sha256 = "%s"\nroles = ["reader"]\n'
             'profile = "nobody"\n' % harness.sha256_hex("tok-dora-000000001"), "invalid_config"),
        ]
        for text, code in bad_files:
            self.write(text)
            st, _, b = self.reload()
            self.assertEqual((st, b["error"]["code"]), (400, code), b)
            # the message points at the file, line and column
            self.assertRegex(b["error"]["message"],
                             re.escape(self.srv.config) + r":\d+:\d+")
            self.assertIn("unchanged", b["error"]["hint"])
        self.assertIn("nobody", b["error"]["message"])
        self.assertEqual({who: self.status(who) for who in ("owner", "alice", "bob")},
                         good_status)
        self.assertEqual(self.status("carol"), 401)
        # a body is refused
        st, _, b = self.srv.request("POST", "/admin/reload", body={"x": 1}, who="owner")
        self.assertEqual((st, b["error"]["code"]), (400, "invalid_parameter"))

    def call_echo(self):
        return self.srv.request("POST", "/tools/echo/call", body={"arguments": {"n": 1}},
                                who="bob")

    def test_tool_rate_limit_and_limits(self):
        for _ in range(3):
            st, _, b = self.call_echo()
            self.assertEqual(st, 200, b)
        self.write(self.config(extra="\n[tools]\nmax_calls_per_minute = 2\n"
                                     "[engine]\nmax_queries_per_principal = 1\n",
                               server="threads = 3\nmax_body_bytes = 2048\n"))
        st, _, rep = self.reload()
        self.assertEqual(st, 200, rep)
        self.assertEqual(sorted(rep["applied"]), ["engine.max_queries_per_principal",
                                                  "server.max_body_bytes",
                                                  "tools.max_calls_per_minute"])
        self.assertEqual(rep["restart_required"], ["server.threads"])
        # a minute's worth is now 2 calls: the third is refused, naming the new ceiling
        self.assertEqual([self.call_echo()[0] for _ in range(2)], [200, 200])
        st, h, b = self.call_echo()
        self.assertEqual((st, b["error"]["code"]), (429, "rate_limited"))
        self.assertIn("at most 2 a minute", b["error"]["detail"])
        self.assertIn("retry-after", h)
        # the body limit applies to the next request
        st, _, b = self.srv.request("POST", "/query", who="owner",
                                    body={"sql": "SELECT 1 AS x -- " + "y" * 3000})
        self.assertEqual((st, b["error"]["code"]), (413, "body_too_large"))
        self.assertIn("2048", b["error"]["message"])
        # the old limits come back with the old file (tearDown reloads it)
        self.tearDown()
        st, _, b = self.srv.request("POST", "/query", who="owner",
                                    body={"sql": "SELECT 1 AS x -- " + "y" * 3000})
        self.assertEqual(st, 200, b)
        time.sleep(0.3)  # 1000 a minute refills the emptied bucket at about 16 a second
        self.assertEqual(self.call_echo()[0], 200)

    def wait_log(self, text, skip, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            lines = self.srv.log_lines()[skip:]
            found = [x for x in lines if text in json.dumps(x)]
            if found:
                return found
            time.sleep(0.05)
        self.fail("no log line with %r:\n%s" % (text, self.srv.log_text()[-3000:]))

    def test_sighup(self):
        skip = len(self.srv.log_lines())
        self.write(self.config([("owner", OWNER, ["admin"]), ("bob", BOB, ["agent"]),
                                ("carol", CAROL, ["reader"])]))
        self.srv.proc.send_signal(signal.SIGHUP)
        line = self.wait_log("configuration reloaded", skip)[0]
        self.assertEqual(line["signal"], "SIGHUP")
        self.assertEqual(line["principals"]["removed"], ["alice"])
        self.assertEqual((self.status("alice"), self.status("carol")), (401, 200))
        # a bad file: logged with file:line:col, the set in force stays
        skip = len(self.srv.log_lines())
        self.write(self.config() + "\nroles = [\n")
        self.srv.proc.send_signal(signal.SIGHUP)
        line = self.wait_log("not reloaded", skip)[0]
        self.assertRegex(json.dumps(self.srv.log_lines()[skip:]),
                         re.escape(self.srv.config) + r":\d+:\d+")
        self.assertEqual((self.status("alice"), self.status("carol"), self.status("bob")),
                         (401, 200, 200))
        self.assertIsNone(self.srv.proc.poll())

    def test_request_in_flight_finishes(self):
        """Alice's query has its headers in (authenticated) when a reload revokes her; its
        body arrives after the swap. It is answered on the set it started with, and her
        next request is refused."""
        body = json.dumps({"sql": "SELECT 41 + 1 AS answer"}).encode()
        head = ("POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n\r\n" % (ALICE, len(body))).encode()
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=20)
        try:
            s.sendall(head + body[:5])
            time.sleep(0.3)  # the headers are in: the request holds its set
            self.write(self.config([("owner", OWNER, ["admin"]), ("bob", BOB, ["agent"])]))
            st, _, rep = self.reload()
            self.assertEqual((st, rep["principals"]["removed"]), (200, ["alice"]))
            self.assertEqual(self.status("alice"), 401)
            s.sendall(body[5:])
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:300])
        self.assertIn(b'"answer":42', data.replace(b" ", b""))
        self.assertEqual(self.status("alice"), 401)


class NoFile(unittest.TestCase):
    def test_unknown_profile_at_start(self):
        """The same check at start: exit status 2 and file:line:col."""
        tmp = harness.Server(principals=[("owner", OWNER, ["admin"])])
        try:
            with open(tmp.config, "a") as f:
                f.write('\n[[principal]]\nname = "x"\ntoken_sha256 = "%s"\nroles = ["reader"]\n'
                        'profile = "ghost"\n' % harness.sha256_hex("tok-x-00000000001"))
            rc, _, err = harness.run_cli(["serve", "--config", tmp.config], timeout=20)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, re.escape(tmp.config) + r":\d+:\d+: principal 'x' names "
                                  r"profile 'ghost'")
        finally:
            tmp.cleanup()


AK, SK = "S3RVER", "S3RVER"  # the keys s3rver accepts


def s3_bucket(name, port, s3_name, prefix=""):
    return ('\n[[bucket]]\nname = "%s"\nbackend = "s3"\nendpoint = "http://127.0.0.1:%d"\n'
            'region = "us-east-1"\nbucket = "%s"\npath_style = true\nsecret_ref = "s3_local"\n'
            % (name, port, s3_name) + ('prefix = "%s"\n' % prefix if prefix else ""))


class BucketReload(harness.ServerTestCase):
    principals = [("owner", OWNER, ["admin"])]

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("reload-buckets")
        cls.s3 = s3util.S3rver(os.path.join(cls.tmp, "s3data"), ["tenant-b"]).start()
        cls.addClassCleanup(cls.s3.stop)
        secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[s3_local]\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' % (AK, SK))
        os.chmod(secrets, 0o600)
        cls.shared = '\n[secrets]\nfile = "%s"\n[storage]\nprobe_interval_ms = 0\n' % secrets
        cls.extra_toml = cls.shared
        super().setUpClass()
        with open(cls.srv.config) as f:
            cls.base = f.read()
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=nums&format=ndjson",
                                   body='{"n": 1}\n', who="owner")
        assert st == 201, b

    def reload_with(self, tail):
        with open(self.srv.config, "w") as f:
            f.write(self.base + tail)
        return self.srv.request("POST", "/admin/reload", who="owner")

    def test_added_buckets(self):
        # the S3 bucket already holds a dataset: another server's primary bucket
        other = harness.Server(principals=[("owner", OWNER, ["admin"])], extra_toml=(
            self.shared.replace("[storage]\n", '[storage]\nprimary = "tb"\n') +
            s3_bucket("tb", self.s3.port, "tenant-b")))
        self.addCleanup(other.cleanup)
        other.start()
        st, _, b = other.request("POST", "/ingest/file?dataset=tenant_rows&format=ndjson",
                                 body='{"k": 1}\n{"k": 2}\n{"k": 3}\n', who="owner")
        self.assertEqual(st, 201, b)
        self.assertEqual(other.stop(), 0)

        dora = principal("dora", "tok-reload-dora-00001", ["reader"]) + 'buckets = ["tenant_b"]\n'
        self.srv.tokens["dora"] = "tok-reload-dora-00001"
        local = '\n[[bucket]]\nname = "local_new"\nbackend = "fs"\nroot = "%s"\n' % (
            os.path.join(self.tmp, "local_new"))
        tail = s3_bucket("tenant_b", self.s3.port, "tenant-b") + local + "\n" + dora
        st, _, rep = self.reload_with(tail)
        self.assertEqual(st, 200, rep)
        self.assertEqual(rep["buckets"]["added"], [
            {"name": "tenant_b", "datasets": 1, "load_errors": 0,
             "vector_indexes_at_restart": False}], self.srv.log_text()[-3000:])
        # an fs folder joins the engines' sandboxes only at a start
        self.assertEqual(rep["buckets"]["added_at_restart"], ["local_new"])
        self.assertEqual(rep["restart_required"], ["bucket"])
        self.assertIn("principal", rep["applied"])
        # the tenant reads the dataset its new bucket holds, and nothing of the primary one
        st, _, b = self.srv.request("POST", "/query", {"sql": "SELECT sum(k) AS s FROM tenant_rows"},
                                    who="dora")
        self.assertEqual((st, b.get("rows")), (200, [{"s": 6}]), b)
        st, _, b = self.srv.request("POST", "/query", {"sql": "SELECT * FROM nums"}, who="dora")
        self.assertEqual(st, 400, b)
        st, _, b = self.srv.request("GET", "/catalog/datasets/tenant_rows", who="owner")
        self.assertEqual((st, b.get("bucket")), (200, "tenant_b"), b)
        # new data goes there; the fs bucket is not there yet
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=tenant_more&format=ndjson"
                                    "&bucket=tenant_b", body='{"k": 9}\n', who="owner")
        self.assertEqual(st, 201, b)
        st, _, b = self.srv.request("GET", "/storage/buckets", who="owner")
        names = [x["name"] for x in b["buckets"]]
        self.assertIn("tenant_b", names)
        self.assertNotIn("local_new", names)
        # a reload of the same file adds nothing again
        st, _, rep = self.reload_with(tail)
        self.assertEqual((st, rep["buckets"]["added"]), (200, []), rep)
        # changed settings need a restart; the bucket in force stays as it was
        moved = s3_bucket("tenant_b", self.s3.port, "tenant-b", prefix="elsewhere/")
        st, _, rep = self.reload_with(moved + "\n" + dora)
        self.assertEqual(st, 200, rep)
        self.assertEqual((rep["restart_required"], rep["buckets"]["changed"]),
                         (["bucket"], ["tenant_b"]))
        st, _, b = self.srv.request("POST", "/query", {"sql": "SELECT count(*) AS n FROM tenant_more"},
                                    who="dora")
        self.assertEqual((st, b.get("rows")), (200, [{"n": 1}]), b)
        # a bucket that cannot be opened refuses the whole reload
        broken = (s3_bucket("tenant_b", self.s3.port, "tenant-b") +
                  s3_bucket("tenant_c", self.s3.port, "tenant-c").replace("s3_local", "nope"))
        st, _, b = self.reload_with(broken + "\n" + dora)
        self.assertEqual(st, 400, b)
        self.assertRegex(b["error"]["message"], r"\[\[bucket\]\] #2")
        self.assertIn("unchanged", b["error"]["hint"])
        st, _, b = self.srv.request("GET", "/storage/buckets", who="owner")
        self.assertNotIn("tenant_c", [x["name"] for x in b["buckets"]], b)


if __name__ == "__main__":
    unittest.main()
