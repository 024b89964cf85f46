"""End-to-end: slow and hostile clients cannot hold the gateway.

A connection that trickles its request headers is closed when they are not complete by
[server] header_timeout_ms after its first byte (MHD's own timeout is an idle timeout
that every trickled byte resets). Connections that have not finished their headers are
the first to go when the server nears [server] max_connections, so /health keeps
answering; one address may hold at most [server] max_connections_per_ip; a request body
that does not arrive within [server] request_timeout_ms is answered 408.

The flooding connections come from other loopback addresses (127.0.0.2 and up) so that
the per-address cap does not also refuse this test's own /health requests."""
import http.client
import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-0123456789"


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def open_from(source_ip, port, first=b"GET /health HTTP/1.1\r\n"):
    """A connection from source_ip that has sent the start of a request."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source_ip, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(first)
    return s


def closed_by_server(s, wait=0.0):
    """True when the server has closed s (EOF or reset) within `wait` seconds."""
    s.settimeout(wait if wait > 0 else 0.001)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError):
        return True


def health_status(port, timeout):
    """Status of GET /health, or None when there was no answer within timeout seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def read_response(s, timeout):
    """Bytes the server sends on s until it closes or `timeout` seconds pass."""
    s.settimeout(0.2)
    end = time.monotonic() + timeout
    data = b""
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


class HeaderDeadline(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]
    server_env = {"LAKEHOUSE_SERVER_HEADER_TIMEOUT_MS": "2000",
                  "LAKEHOUSE_SERVER_REQUEST_TIMEOUT_MS": "3000"}

    def test_trickled_headers_are_cut_off(self):
        # one header line every 0.25 s resets any idle timeout; the deadline still holds
        s = open_from("127.0.0.1", self.srv.port)
        start = time.monotonic()
        closed = False
        try:
            i = 0
            while time.monotonic() - start < 20:
                try:
                    s.sendall(b"X-Trickle-%d: x\r\n" % i)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                i += 1
                if closed_by_server(s, 0.25):
                    closed = True
                    break
            took = time.monotonic() - start
        finally:
            s.close()
        self.assertTrue(closed, "a trickling connection was still open after 20 s")
        self.assertGreater(took, 1.0, "closed before the header deadline")
        self.assertEqual(health_status(self.srv.port, 10), 200)

    def test_keep_alive_connection_survives_quick_requests(self):
        # requests that finish their headers in time are untouched, across the deadline
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        try:
            for _ in range(3):
                conn.request("GET", "/health")
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
                time.sleep(0.8)
        finally:
            conn.close()

    def test_metrics_count_slow_connections(self):
        s = open_from("127.0.0.1", self.srv.port)
        try:
            self.assertTrue(closed_by_server(s, 15))
        finally:
            s.close()
        status, _, text = self.srv.request("GET", "/metrics", token=ADMIN)
        self.assertEqual(status, 200)
        values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                      if line.startswith("lakehouse_http_connections"))
        self.assertGreaterEqual(int(values["lakehouse_http_connections_open"]), 1)
        self.assertGreaterEqual(int(values["lakehouse_http_connections_closed_slow_total"]), 1)
        self.assertIn("lakehouse_http_connections_body_timeouts_total", values)

    def _slow_body(self, trickle):
        body = b'{"sql": "SELECT 1"}' + b" " * 80
        head = (b"POST /query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN.encode() +
                b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        s = open_from("127.0.0.1", self.srv.port, head + body[:10])
        start = time.monotonic()
        data = b""
        try:
            sent = 10
            s.settimeout(0.5)
            while time.monotonic() - start < 20 and b"\r\n\r\n" not in data:
                if trickle and sent < len(body) - 1:
                    try:
                        s.sendall(body[sent:sent + 1])
                        sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        data += read_response(s, 2)
                        break
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
            data += read_response(s, 1) if b"\r\n\r\n" in data else b""
        finally:
            s.close()
        return data, time.monotonic() - start

    def test_trickled_body_gets_408(self):
        data, took = self._slow_body(trickle=True)
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:200])
        self.assertIn(b"request_timeout", data)
        self.assertIn(b"X-Request-Id", data)
        self.assertGreater(took, 2.0)

    def test_stalled_body_gets_408(self):
        data, took = self._slow_body(trickle=False)
        self.assertTrue(data.startswith(b"HTTP/1.1 408"), data[:200])
        self.assertIn(b"request_timeout", data)

    def test_timeouts_are_logged(self):
        self._slow_body(trickle=False)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if any(l.get("msg") == "request" and l.get("status") == 408 and
                   l.get("path") == "/query" for l in self.srv.log_lines()):
                return
            time.sleep(0.1)
        self.fail("no access log line with status 408")


class ConnectionFlood(harness.ServerTestCase):
    """The header deadline is long here: room must come from dropping the slow ones."""
    principals = [("owner", ADMIN, ["admin"])]
    server_env = {"LAKEHOUSE_SERVER_HEADER_TIMEOUT_MS": "120000",
                  "LAKEHOUSE_SERVER_MAX_CONNECTIONS": "300",
                  "LAKEHOUSE_SERVER_MAX_CONNECTIONS_PER_IP": "200"}

    def test_flood_of_slow_connections_does_not_stop_health(self):
        n_ips, per_ip = 4, 150  # 600 connections, twice max_connections
        raise_fd_limit(n_ips * per_ip + 256)
        socks = []
        try:
            for i in range(n_ips):
                for _ in range(per_ip):
                    try:
                        socks.append(open_from("127.0.0.%d" % (i + 2), self.srv.port))
                    except OSError:
                        pass  # refused or reset: the server is defending itself
            start = time.monotonic()
            for _ in range(5):
                self.assertEqual(health_status(self.srv.port, 10), 200)
            self.assertLess(time.monotonic() - start, 30)
            # the oldest slow connections were the ones closed
            closed = [closed_by_server(s) for s in socks]
            self.assertGreater(sum(closed), 200)
            self.assertFalse(all(closed))
        finally:
            for s in socks:
                s.close()

    def test_per_ip_cap(self):
        raise_fd_limit(600)
        socks = []
        try:
            for _ in range(230):
                socks.append(open_from("127.0.0.9", self.srv.port))
            time.sleep(1.0)
            closed = sum(closed_by_server(s, 0.01) for s in socks)
            self.assertGreaterEqual(closed, 30)  # at most 200 stay
            self.assertLessEqual(closed, 60)
            self.assertEqual(health_status(self.srv.port, 10), 200)
        finally:
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
