"""End-to-end: the real lakehouse binary over real HTTP on loopback.

Covers the gateway contract: /health, auth (401/403), JSON errors for 404/405/413/415/400,
request ids, metrics, jobs, graceful SIGTERM drain, first-start admin token, CLI errors."""
import json
import os
import re
import resource
import signal
import stat
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, READER, AGENT = "tok-admin-0123456789", "tok-reader-0123456789", "tok-agent-0123456789"


def assert_error(tc, status, headers, body, want_status, want_code):
    tc.assertEqual(status, want_status, body)
    tc.assertTrue(headers["content-type"].startswith("application/json"))
    tc.assertIsInstance(body, dict, body)
    tc.assertEqual(body["error"]["code"], want_code, body)
    tc.assertTrue(body["error"]["message"])
    tc.assertIn("x-request-id", headers)


class Gateway(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("analyst", READER, ["reader"]),
                  ("bot", AGENT, ["agent"])]
    server_env = {"LAKEHOUSE_SERVER_MAX_BODY_BYTES": "4096"}

    @classmethod
    def setUpClass(cls):
        cls.started = time.monotonic()
        super().setUpClass()

    def req(self, *a, **kw):
        return self.srv.request(*a, **kw)

    def test_health_is_public_and_proves_duckdb(self):
        status, headers, body = self.req("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertEqual(body["duckdb_version"], "v1.4.4")
        self.assertRegex(body["version"], r"^\d+\.\d+\.\d+$")
        # whole seconds since this class started the server (not ms, not since the epoch)
        self.assertIsInstance(body["uptime_s"], int)
        self.assertLessEqual(body["uptime_s"], time.monotonic() - self.started + 1)
        self.assertEqual(body["checks"]["engine"], "ok")
        self.assertRegex(headers["x-request-id"], r"^req_[0-9a-f]{20}$")

    def test_head_health(self):
        # http.client never reads a HEAD response's body: look at the bytes on the wire
        _, get_headers, _ = self.req("GET", "/health")
        resp = harness.raw_request(self.srv.port,
                                   b"HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, sep, rest = resp.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), resp[:300])
        self.assertEqual(sep, b"\r\n\r\n", resp[:300])
        self.assertEqual(rest, b"", "a HEAD answer carries no body")
        fields = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
        fields = {k.decode().lower(): v.decode() for k, v in fields.items()}
        self.assertTrue(fields["content-type"].startswith("application/json"))
        # the headers GET would send: the body's length, though no body follows
        self.assertGreater(int(fields["content-length"]), 0)
        self.assertEqual(fields["content-type"], get_headers["content-type"])

    def test_401_without_or_with_bad_token(self):
        for token, hdrs in ((None, None), ("wrong-token", None), (None, {"Authorization": "Basic YTpi"})):
            status, headers, body = self.req("GET", "/whoami", token=token, headers=hdrs)
            assert_error(self, status, headers, body, 401, "unauthenticated")
            self.assertIn("bearer", headers.get("www-authenticate", "").lower())
        # unknown paths do not leak their existence to anonymous callers
        status, headers, body = self.req("GET", "/no/such/thing")
        assert_error(self, status, headers, body, 401, "unauthenticated")

    def test_whoami(self):
        status, _, body = self.req("GET", "/whoami", who="analyst")
        self.assertEqual(status, 200)
        self.assertEqual(body["name"], "analyst")
        self.assertEqual(body["roles"], ["reader"])

    def test_403_reader_on_admin_route(self):
        status, headers, body = self.req("POST", "/jobs", body={"kind": "sleep", "seconds": 0},
                                         who="analyst")
        assert_error(self, status, headers, body, 403, "forbidden")
        self.assertIn("admin", body["error"]["detail"])
        # an agent may not read metrics either
        status, headers, body = self.req("GET", "/metrics", who="bot")
        assert_error(self, status, headers, body, 403, "forbidden")

    def test_404_and_405_json(self):
        status, headers, body = self.req("GET", "/nope", who="owner")
        assert_error(self, status, headers, body, 404, "not_found")
        status, headers, body = self.req("PUT", "/jobs", who="owner")
        assert_error(self, status, headers, body, 405, "method_not_allowed")
        self.assertEqual(headers["allow"], "GET, POST, HEAD")
        status, headers, body = self.req("POST", "/health", who="owner")
        assert_error(self, status, headers, body, 405, "method_not_allowed")

    def test_413_declared_and_chunked(self):
        big = b"{" + b" " * 5000 + b"}"
        status, headers, body = self.req("POST", "/jobs", body=big, who="owner",
                                         headers={"Content-Type": "application/json"})
        assert_error(self, status, headers, body, 413, "body_too_large")
        # no Content-Length: refused once the limit is crossed, answered when the body ends
        raw = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN.encode() +
               b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n")
        chunk = b" " * 1000
        for _ in range(8):
            raw += b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        raw += b"0\r\n\r\n"
        resp = harness.raw_request(self.srv.port, raw)
        self.assertTrue(resp.startswith(b"HTTP/1.1 413"), resp[:200])
        self.assertIn(b'"body_too_large"', resp)

    def test_415_and_400(self):
        status, headers, body = self.req("POST", "/jobs", body="kind=sleep", who="owner",
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_error(self, status, headers, body, 415, "unsupported_media_type")
        status, headers, body = self.req("POST", "/jobs", body='{"kind": "sleep",', who="owner",
                                         headers={"Content-Type": "application/json"})
        assert_error(self, status, headers, body, 400, "invalid_json")
        self.assertIn("line 1", body["error"]["detail"])
        status, headers, body = self.req("POST", "/jobs", body="[1,2]", who="owner",
                                         headers={"Content-Type": "application/json"})
        assert_error(self, status, headers, body, 400, "invalid_json")
        status, headers, body = self.req("POST", "/jobs", body="", who="owner",
                                         headers={"Content-Type": "application/json"})
        assert_error(self, status, headers, body, 400, "invalid_json")
        bad = [({"kind": 3, "seconds": 1}, "kind"), ({"kind": "sleep", "seconds": "x"}, "seconds"),
               ({"kind": "sleep", "seconds": -1}, "seconds"), ({"kind": "rm -rf", "seconds": 1}, "kind"),
               ({"kind": "sleep", "seconds": 1, "extra": 1}, "extra"), ({"seconds": 1}, "kind"),
               ({"kind": "sleep", "seconds": 1e9}, "seconds"), ({"kind": "sleep"}, "seconds")]
        for payload, word in bad:
            status, headers, body = self.req("POST", "/jobs", body=payload, who="owner")
            assert_error(self, status, headers, body, 400, "invalid_parameter")
            self.assertIn(word, body["error"]["message"])
        # JSON has no Infinity; NUL bytes and invalid UTF-8 are not JSON either
        for raw in (b'{"kind":"sleep","seconds":Infinity}', b'{"kind":"sl\u0000eep"}\x00',
                    b'{"kind":"\xff"}'):
            status, headers, body = self.req("POST", "/jobs", body=raw, who="owner",
                                             headers={"Content-Type": "application/json"})
            self.assertIn(status, (400,), body)
        # a duplicated key is ambiguous: refused
        status, headers, body = self.req("POST", "/jobs", body='{"kind":"sleep","kind":"sleep","seconds":0}',
                                         who="owner", headers={"Content-Type": "application/json"})
        assert_error(self, status, headers, body, 400, "invalid_json")

    def test_request_ids(self):
        _, h, _ = self.req("GET", "/health", headers={"X-Request-Id": "client-abc.123"})
        self.assertEqual(h["x-request-id"], "client-abc.123")
        _, h, _ = self.req("GET", "/health", headers={"X-Request-Id": "bad id\twith\"quotes"})
        self.assertRegex(h["x-request-id"], r"^req_[0-9a-f]{20}$")
        _, h, _ = self.req("GET", "/health", headers={"X-Request-Id": "x" * 200})
        self.assertRegex(h["x-request-id"], r"^req_[0-9a-f]{20}$")
        # errors carry it too, and the access log line uses the same id
        _, h, _ = self.req("GET", "/nope", who="owner", headers={"X-Request-Id": "trace-404"})
        self.assertEqual(h["x-request-id"], "trace-404")
        time.sleep(0.1)
        lines = [l for l in self.srv.log_lines() if l.get("request_id") == "trace-404"]
        self.assertTrue(lines and lines[-1]["status"] == 404, lines)

    def metric(self, text, route, method, status):
        m = re.search(r'^lakehouse_http_requests_total\{route="%s",method="%s",status="%d"\} (\d+)$'
                      % (re.escape(route), method, status), text, re.M)
        return int(m.group(1)) if m else 0

    def test_metrics_count_requests(self):
        _, h, before = self.req("GET", "/metrics", who="analyst")
        self.assertTrue(h["content-type"].startswith("text/plain"))
        self.req("GET", "/whoami", who="analyst")
        self.req("GET", "/whoami", who="analyst")
        self.req("GET", "/whoami")
        _, _, after = self.req("GET", "/metrics", who="analyst")
        self.assertEqual(self.metric(after, "/whoami", "GET", 200) - self.metric(before, "/whoami", "GET", 200), 2)
        self.assertEqual(self.metric(after, "/whoami", "GET", 401) - self.metric(before, "/whoami", "GET", 401), 1)
        self.assertRegex(after, r'lakehouse_http_request_duration_seconds_bucket\{route="/whoami",le="\+Inf"\} \d+')
        # only this request, once earlier tests' connections (cut short on purpose: slow or
        # oversized bodies) have been completed by the server
        for _ in range(60):
            if re.search(r"(?m)^lakehouse_http_requests_in_flight 1$", after):
                break
            time.sleep(0.05)
            _, _, after = self.req("GET", "/metrics", who="analyst")
        self.assertRegex(after, r"(?m)^lakehouse_http_requests_in_flight 1$")

    def test_handler_threads_are_reused(self):
        """Handlers that may wait (queries) run on threads of their own, kept for the next
        request: forty queries in a row start at most a couple of them."""
        def started():
            _, _, text = self.req("GET", "/metrics", who="analyst")
            return int(re.search(r"(?m)^lakehouse_http_handler_threads_started_total (\d+)$",
                                 text).group(1))
        before = started()
        for i in range(40):
            status, _, body = self.req("POST", "/query", {"sql": "SELECT %d AS n" % i},
                                       who="analyst")
            self.assertEqual(status, 200, body)
        self.assertLessEqual(started() - before, 2)

    def wait_job(self, job_id, who, states=("succeeded", "failed", "cancelled"), timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, _, body = self.req("GET", "/jobs/" + job_id, who=who)
            self.assertEqual(status, 200, body)
            if body["state"] in states:
                return body
            time.sleep(0.05)
        self.fail("job %s did not finish" % job_id)

    def test_jobs_lifecycle(self):
        status, h, job = self.req("POST", "/jobs", body={"kind": "sleep", "seconds": 0.2}, who="owner")
        self.assertEqual(status, 202, job)
        self.assertEqual(h["location"], "/jobs/" + job["id"])
        self.assertIn(job["state"], ("queued", "running"))
        done = self.wait_job(job["id"], "owner")
        self.assertEqual(done["state"], "succeeded")
        self.assertEqual(done["progress"], {"done": 200, "total": 200, "unit": "ms"})
        self.assertEqual(done["result"], {"slept_ms": 200})
        self.assertTrue(done["started_at"] and done["finished_at"])
        # cancel a long one
        _, _, job = self.req("POST", "/jobs", body={"kind": "sleep", "seconds": 60}, who="owner")
        status, _, body = self.req("DELETE", "/jobs/" + job["id"], who="owner")
        self.assertEqual(status, 202)
        self.assertTrue(body["cancel_requested"])
        done = self.wait_job(job["id"], "owner")
        self.assertEqual(done["state"], "cancelled")
        status, h, body = self.req("DELETE", "/jobs/" + job["id"], who="owner")
        assert_error(self, status, h, body, 409, "job_finished")
        # others cannot see the owner's jobs; the list filters
        status, h, body = self.req("GET", "/jobs/" + job["id"], who="analyst")
        assert_error(self, status, h, body, 404, "job_not_found")
        status, h, body = self.req("DELETE", "/jobs/" + job["id"], who="analyst")
        assert_error(self, status, h, body, 404, "job_not_found")
        _, _, listing = self.req("GET", "/jobs", who="analyst")
        self.assertEqual(listing["jobs"], [])
        _, _, listing = self.req("GET", "/jobs?state=cancelled", who="owner")
        self.assertIn(job["id"], [j["id"] for j in listing["jobs"]])
        self.assertTrue(all(j["state"] == "cancelled" for j in listing["jobs"]))
        status, h, body = self.req("GET", "/jobs?state=bogus", who="owner")
        assert_error(self, status, h, body, 400, "invalid_parameter")
        status, h, body = self.req("GET", "/jobs/job_nope", who="owner")
        assert_error(self, status, h, body, 404, "job_not_found")

    def test_log_lines_are_json(self):
        # two requests that carry the admin token, one with a path that is not UTF-8: each
        # gets one access line, a JSON object naming it, and the token appears nowhere
        status, h, _ = self.req("GET", "/whoami", who="owner")
        self.assertEqual(status, 200)
        raw = harness.raw_request(self.srv.port, b"GET /no\xff\xfesuch HTTP/1.1\r\nHost: x\r\n"
                                  b"Authorization: Bearer " + ADMIN.encode() +
                                  b"\r\nConnection: close\r\n\r\n")
        bad_status = int(raw.split(b" ", 2)[1])
        bad_id = re.search(rb"(?i)\r\nx-request-id: *(\S+)", raw).group(1).decode()
        ids = (h["x-request-id"], bad_id)
        deadline = time.time() + 10
        while time.time() < deadline:  # an access line is written once its request completed
            by_id = {l.get("request_id"): l for l in self.srv.log_lines() if "request_id" in l}
            if all(i in by_id for i in ids):
                break
            time.sleep(0.05)
        for line in self.srv.log_lines():
            self.assertNotIn("raw", line, "not a JSON log line: %r" % line)
            for key in ("time", "level", "msg"):
                self.assertIn(key, line)
        good, bad = by_id[ids[0]], by_id[ids[1]]
        self.assertEqual((good["msg"], good["method"], good["path"], good["status"],
                          good["principal"]), ("request", "GET", "/whoami", 200, "owner"))
        self.assertEqual((bad["msg"], bad["status"]), ("request", bad_status))
        self.assertIsInstance(bad["path"], str)
        self.assertTrue(bad["path"].startswith("/no"), bad)
        self.assertNotIn(ADMIN, self.srv.log_text())


class Lifecycle(unittest.TestCase):
    def test_sigterm_drains_in_flight_request(self):
        srv = harness.Server().start()
        try:
            token = srv.tokens["admin"].encode()
            body = json.dumps({"kind": "sleep", "seconds": 0}).encode()
            head = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                    b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            sock = harness.raw_request(srv.port, head + body[:5], read=False)
            time.sleep(0.3)  # the server has the headers: the request is in flight
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(srv.proc.poll(), "server exited with a request in flight")
            # while it drains, a new connection is turned away without an answer
            try:
                late = harness.raw_request(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n",
                                           timeout=5)
            except OSError:  # refused or reset: turned away as well
                late = b""
            self.assertEqual(late, b"")
            sock.sendall(body[5:])
            resp = b""
            while b"\r\n\r\n" not in resp or not resp.rstrip().endswith(b"}"):
                c = sock.recv(65536)
                if not c:
                    break
                resp += c
            sock.close()
            self.assertTrue(resp.startswith(b"HTTP/1.1 202"), resp[:300])
            self.assertEqual(srv.proc.wait(30), 0, srv.log_text()[-3000:])
            msgs = [l.get("msg") for l in srv.log_lines()]
            self.assertIn("shutting down: finishing in-flight requests", msgs)
            self.assertIn("stopped", msgs)
        finally:
            srv.stop()
            srv.cleanup()

    def test_full_job_queue_is_503(self):
        srv = harness.Server(env={"LAKEHOUSE_JOBS_WORKERS": "1", "LAKEHOUSE_JOBS_MAX_QUEUED": "1"}).start()
        try:
            sleep = {"kind": "sleep", "seconds": 60}
            ids = []
            for _ in range(2):  # one runs, one waits
                status, _, job = srv.request("POST", "/jobs", body=sleep, who="admin")
                self.assertEqual(status, 202, job)
                ids.append(job["id"])
                time.sleep(0.1)
            status, headers, body = srv.request("POST", "/jobs", body=sleep, who="admin")
            assert_error(self, status, headers, body, 503, "job_queue_full")
            self.assertIn("max_queued", body["error"]["detail"])
            # the queued one is cancelled at once, freeing the slot
            self.assertEqual(srv.request("DELETE", "/jobs/" + ids[1], who="admin")[0], 202)
            time.sleep(0.1)
            self.assertEqual(srv.request("POST", "/jobs", body=sleep, who="admin")[0], 202)
            # shutdown cancels running jobs instead of waiting a minute for them
            t0 = time.time()
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
            self.assertLess(time.time() - t0, 10)
        finally:
            srv.cleanup()

    def test_slow_body_gets_408(self):
        srv = harness.Server(env={"LAKEHOUSE_SERVER_REQUEST_TIMEOUT_MS": "400"}).start()
        try:
            token = srv.tokens["admin"].encode()
            body = json.dumps({"kind": "sleep", "seconds": 0}).encode()
            head = (b"POST /jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token +
                    b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            sock = harness.raw_request(srv.port, head + body[:5], read=False)
            time.sleep(0.7)
            sock.sendall(body[5:])
            resp = sock.recv(65536)
            sock.close()
            self.assertTrue(resp.startswith(b"HTTP/1.1 408"), resp[:300])
            self.assertIn(b'"request_timeout"', resp)
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            srv.cleanup()

    def test_body_the_disk_refuses_is_507(self):
        # every file the server writes is limited to 3 MiB (SIGXFSZ ignored, so a write past
        # it fails with EFBIG): a streamed body is gathered in 1 MiB and written as it fills,
        # and the write that fails must end in a 507 for the whole request, not a short file
        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (3 << 20, 3 << 20))
        srv = harness.Server()
        srv.preexec = limit
        srv.start()
        try:
            token = srv.tokens["admin"]
            obj = "/storage/buckets/primary/objects/big.bin"
            status, h, body = srv.request("PUT", obj, body=os.urandom(5 << 20), token=token)
            assert_error(self, status, h, body, 507, "tmp_full")
            self.assertEqual(srv.request("GET", obj, token=token)[0], 404)
            # the write that fails is the last, after the whole body arrived
            status, h, body = srv.request("PUT", obj, body=os.urandom((3 << 20) + 100000),
                                          token=token)
            assert_error(self, status, h, body, 507, "tmp_full")
            self.assertEqual(srv.request("GET", obj, token=token)[0], 404)
            # an upload for an ingest (kept in the work folder) alike, and nothing is left there
            status, h, body = srv.request(
                "POST", "/ingest/file?dataset=big&format=csv&mode=create",
                body=b"a,b\n" + b"1,2\n" * (5 << 18), token=token)
            assert_error(self, status, h, body, 507, "tmp_full")
            work = os.path.join(srv.data_dir, "work")
            left = lambda: [f for f in os.listdir(work) if f.startswith("upload-")]  # noqa: E731
            deadline = time.time() + 10  # removed when the request completes, after its answer
            while left() and time.time() < deadline:
                time.sleep(0.05)
            self.assertEqual(left(), [])
            # bodies under the limit still go through, whole
            small = os.urandom((2 << 20) + 12345)
            self.assertEqual(srv.request("PUT", obj, body=small, token=token)[0], 201)
            conn = harness.http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
            conn.request("GET", obj, headers={"Authorization": "Bearer " + token})
            resp = conn.getresponse()
            got = resp.read()
            conn.close()
            self.assertEqual((resp.status, got == small), (200, True))
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            srv.cleanup()

    def test_first_start_creates_admin_token(self):
        srv = harness.Server().start()
        try:
            path = os.path.join(srv.data_dir, "admin.token")
            st = os.stat(path)
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            token = srv.tokens["admin"]
            self.assertRegex(token, r"^lh_[0-9a-f]{64}$")
            status, _, body = srv.request("GET", "/whoami", token=token)
            self.assertEqual((status, body["name"], body["roles"]), (200, "admin", ["admin"]))
            self.assertIn(path, srv.log_text())
            self.assertNotIn(token, srv.log_text())
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
            # a second start reuses the same token
            srv.start()
            self.assertEqual(srv.request("GET", "/whoami", token=token)[0], 200)
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
            self.assertNotIn(token, srv.log_text())
        finally:
            srv.cleanup()

    def test_port_in_use_is_one_line(self):
        srv = harness.Server().start()
        try:
            rc, out, err = harness.run_cli(["serve", "--config", srv.config],
                                           env={"LAKEHOUSE_SERVER_PORT": str(srv.port)}, cwd=srv.dir)
            self.assertEqual(rc, 1)
            msg = [l for l in err.splitlines() if l.startswith("lakehouse:")]
            self.assertEqual(len(msg), 1, err)
            self.assertIn("address already in use", msg[0])
            self.assertIn(str(srv.port), msg[0])
        finally:
            srv.stop()
            srv.cleanup()

    def test_bad_config_exits_2_with_location(self):
        srv = harness.Server(extra_toml='\n[log]\nlevel = loud\n')
        try:
            rc, out, err = harness.run_cli(["serve", "--config", srv.config], cwd=srv.dir)
            self.assertEqual(rc, 2, err)
            self.assertRegex(err, r"lakehouse\.toml:\d+:\d+: ")
            rc, out, err = harness.run_cli(["serve", "--config", srv.config + ".missing"], cwd=srv.dir)
            self.assertEqual(rc, 2)
            self.assertIn("cannot open", err)
            srv2 = harness.Server()
            rc, out, err = harness.run_cli(["serve", "--config", srv2.config],
                                           env={"LAKEHOUSE_SERVER_PORT": "http"}, cwd=srv2.dir)
            srv2.cleanup()
            self.assertEqual(rc, 2)
            self.assertIn("LAKEHOUSE_SERVER_PORT", err)
        finally:
            srv.cleanup()

    def test_unknown_config_key_warns_and_env_override_applies(self):
        srv = harness.Server(extra_toml='\n[log]\nlevle = "debug"\n',
                             env={"LAKEHOUSE_SERVER_THREADS": "2"})
        try:
            srv.start()
            warns = [l for l in srv.log_lines() if l.get("level") == "warn"]
            self.assertTrue(any("levle" in l["msg"] for l in warns), warns)
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            srv.cleanup()

    def test_cli(self):
        rc, out, err = harness.run_cli(["version"])
        self.assertEqual(rc, 0)
        self.assertIn("DuckDB v1.4.4", out)
        rc, out, err = harness.run_cli(["frobnicate"])
        self.assertEqual(rc, 2)
        self.assertIn("unknown command 'frobnicate'", err)
        rc, out, err = harness.run_cli(["serve", "--bogus"])
        self.assertEqual(rc, 2)
        self.assertIn("unknown option '--bogus'", err)
        rc, out, err = harness.run_cli(["help", "serve"])
        self.assertEqual(rc, 0)
        self.assertIn("--config", out)
        rc, out, err = harness.run_cli(["help", "nothing"])
        self.assertEqual(rc, 2)
        rc, out, err = harness.run_cli([])
        self.assertEqual(rc, 2)
        self.assertIn("usage", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
