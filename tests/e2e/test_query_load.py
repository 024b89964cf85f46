"""End-to-end: user queries under load — a bounded number run at once, each principal
gets a share, queued queries wait within their time limit, a dropped client's query is
cancelled, and /health never waits behind queries."""
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

R1, R2 = "tok-load-reader-0001", "tok-load-reader-0002"
# runs for minutes on any machine unless interrupted
SLOW_SQL = "SELECT count(*) AS n FROM range(10000000000) t(i) WHERE i % 7 = 3"


def query_raw(port, token, sql, timeout=60):
    """POST /query; returns (status, headers, body, seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("POST", "/query", body=json.dumps({"sql": sql}),
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    body = json.loads(data) if data else None
    return resp.status, hdrs, body, time.monotonic() - started


def metric(srv, name):
    """The value of an unlabelled metric line in GET /metrics (None when absent)."""
    st, _, text = srv.request("GET", "/metrics", who="r2")
    assert st == 200, text
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class Background:
    """Slow queries sent from threads; results collected when joined."""

    def __init__(self, port, token, n, sql=SLOW_SQL):
        self.results = [None] * n
        self.threads = [threading.Thread(target=self._run, args=(i, port, token, sql))
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, i, port, token, sql):
        try:
            self.results[i] = query_raw(port, token, sql)
        except Exception as e:  # noqa: BLE001 -- reported by the test
            self.results[i] = ("exception", repr(e))

    def join(self):
        for t in self.threads:
            t.join(90)
        return self.results


class QueryLoad(harness.ServerTestCase):
    """Four slots, two per principal, two waiting per principal; slow queries are cut
    at 8 s."""
    principals = [("r1", R1, ["reader"]), ("r2", R2, ["reader"])]
    server_env = {"LAKEHOUSE_ENGINE_QUERY_TIMEOUT_MS": "8000",
                  "LAKEHOUSE_ENGINE_THREADS": "2",
                  "LAKEHOUSE_ENGINE_MAX_CONCURRENT_QUERIES": "4",
                  "LAKEHOUSE_ENGINE_MAX_QUERIES_PER_PRINCIPAL": "2",
                  "LAKEHOUSE_ENGINE_MAX_QUEUED_PER_PRINCIPAL": "2"}

    def setUp(self):
        # every test starts with no query running
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 0, 20),
                        "queries still running from an earlier test")

    def test_health_other_principal_and_excess(self):
        """Six slow queries from r1: two run, two wait, two are refused at once with 429
        and Retry-After; /health and r2's small query answer promptly meanwhile."""
        bg = Background(self.srv.port, R1, 6)
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 2, 10))
        started = time.monotonic()
        st, _, res = self.srv.request("GET", "/health")
        self.assertEqual(st, 200, res)
        self.assertLess(time.monotonic() - started, 2.0, "/health waited behind queries")
        st, _, res, secs = query_raw(self.srv.port, R2, "SELECT 42 AS answer")
        self.assertEqual(st, 200, res)
        self.assertEqual(res["rows"], [{"answer": 42}])
        self.assertLess(secs, 2.0, "another principal's small query waited")
        self.assertEqual(metric(self.srv, "lakehouse_queries_queued"), 2)
        results = bg.join()
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [408, 408, 408, 408, 429, 429], results)
        for st, hdrs, body, secs in results:
            if st == 429:
                self.assertEqual(body["error"]["code"], "too_many_queries", body)
                self.assertTrue(body["error"]["hint"], body)
                self.assertGreaterEqual(int(hdrs["retry-after"]), 1)
                self.assertLess(secs, 2.0, "the refusal should be immediate")
            else:
                # running or waiting, each is answered within its 8 s plus a margin
                self.assertEqual(body["error"]["code"], "query_timeout", body)
                self.assertLess(secs, 8 + 3, body)

    def test_dropped_client_is_cancelled(self):
        """A client that goes away while its query runs (or waits) stops it."""
        before = metric(self.srv, "lakehouse_queries_cancelled_total") or 0
        body = json.dumps({"sql": SLOW_SQL}).encode()
        socks = []
        for _ in range(3):  # two run, one waits for a slot
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
            s.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      R1.encode() + b"\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            socks.append(s)
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 2, 10))
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_queued") == 1, 10))
        dropped = time.monotonic()
        for s in socks:
            s.close()
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 0 and
                                 metric(self.srv, "lakehouse_queries_queued") == 0, 4),
                        "the queries ran on after their clients left")
        self.assertLess(time.monotonic() - dropped, 4)
        self.assertEqual(metric(self.srv, "lakehouse_queries_cancelled_total"), before + 3)
        # the access log says what happened, with the time the request took
        lines = [ln for ln in self.srv.log_lines()
                 if ln.get("msg") == "request" and ln.get("path") == "/query"]
        self.assertTrue(any(ln.get("status") == 499 for ln in lines), lines[-5:])


class QueueTimeout(harness.ServerTestCase):
    """One slot, held by a client that stops reading its streamed answer: a query waiting
    for it gets 408 within its own limit, and the access log's duration counts the
    wait."""
    principals = [("r1", R1, ["reader"]), ("r2", R2, ["reader"])]
    server_env = {"LAKEHOUSE_ENGINE_QUERY_TIMEOUT_MS": "2500",
                  "LAKEHOUSE_ENGINE_THREADS": "2",
                  "LAKEHOUSE_ENGINE_MAX_CONCURRENT_QUERIES": "1"}

    def test_queued_query_times_out_within_its_limit(self):
        # a large streamed answer its client does not read: the slot stays taken
        body = json.dumps({"sql": "SELECT i, repeat('x', 200) AS pad FROM range(100000000) t(i)",
                           "format": "ndjson", "limit": 100000000}).encode()
        hog = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                    R1.encode() + b"\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 1, 10))
        st, _, res, secs = query_raw(self.srv.port, R2, "SELECT 1 AS one")
        self.assertEqual(st, 408, res)
        self.assertEqual(res["error"]["code"], "query_timeout", res)
        self.assertIn("slot", res["error"]["message"])
        self.assertIn("max_concurrent_queries", res["error"]["hint"])
        self.assertGreater(secs, 1.5)
        self.assertLess(secs, 2.5 + 1.5)
        # the hog leaves: its query is cancelled and the slot frees
        hog.close()
        self.assertTrue(wait_for(lambda: metric(self.srv, "lakehouse_queries_running") == 0, 4))
        st, _, res, secs = query_raw(self.srv.port, R2, "SELECT 1 AS one")
        self.assertEqual(st, 200, res)
        self.assertLess(secs, 2.0)
        lines = [ln for ln in self.srv.log_lines()
                 if ln.get("msg") == "request" and ln.get("path") == "/query"
                 and ln.get("status") == 408 and ln.get("principal") == "r2"]
        self.assertTrue(lines)
        self.assertGreater(lines[-1]["duration_ms"], 1500)


if __name__ == "__main__":
    unittest.main()
