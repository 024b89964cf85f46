"""S3 helpers for end-to-end tests.

S3rver: the real s3rver (npm) on a free loopback port, stopped by PID.
SigV4Proxy: a loopback HTTP proxy in front of s3rver that checks every request's AWS
Signature V4 with botocore (an independent implementation), because s3rver itself does
not check signatures. Failures are collected, not raised, so a test can assert on them."""
import http.client
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
S3RVER = os.path.join(HERE, "..", ".node", "node_modules", ".bin", "s3rver")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


class S3rver:
    def __init__(self, directory, buckets):
        self.dir = directory
        self.buckets = buckets
        self.port = free_port()
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        env = dict(os.environ, NODE_OPTIONS="--openssl-legacy-provider")
        args = [S3RVER, "-d", self.dir, "-p", str(self.port), "-a", "127.0.0.1", "--silent"]
        for b in self.buckets:
            args += ["--configure-bucket", b]
        self.log = open(os.path.join(self.dir, "..", "s3rver-%d.log" % self.port), "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log, env=env)
        wait_port(self.port)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.log.close()
        self.proc = None


class SigV4Proxy:
    """Forwards to upstream_port after verifying the request's signature."""

    def __init__(self, upstream_port, access_key, secret_key, region="us-east-1"):
        from botocore.credentials import Credentials  # Debian's python3-botocore
        self.creds = Credentials(access_key, secret_key)
        self.region = region
        self.upstream = upstream_port
        self.verified = 0
        self.requests = 0
        self.inject = []  # statuses to answer instead of forwarding, one per request
        self.failures = []
        self.seen_paths = []
        self.port = free_port()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.check(self.command, self.path, self.headers)
                proxy.requests += 1
                if proxy.inject:
                    status = proxy.inject.pop(0)
                    err = (b"<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>injected</Message>"
                           b"</Error>" % (b"SlowDown" if status >= 500 else b"AccessDenied"))
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(err)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(err)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                hdrs = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                hdrs["Host"] = "127.0.0.1:%d" % proxy.upstream
                try:
                    conn.request(self.command, self.path, body=body, headers=hdrs)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError:
                    self.send_error(502)
                    return
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def check(self, method, raw_path, headers):
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        try:
            auth = headers.get("Authorization", "")
            if not auth.startswith("AWS4-HMAC-SHA256 "):
                raise ValueError("not signed with SigV4: %r" % auth[:40])
            fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
            signed = fields["SignedHeaders"].split(";")
            cred_scope = fields["Credential"].split("/")
            if cred_scope[0] != self.creds.access_key or cred_scope[2] != self.region or cred_scope[3] != "s3":
                raise ValueError("unexpected credential scope %s" % fields["Credential"])
            want = {h: headers.get(h) for h in signed}
            url = "http://%s%s" % (headers.get("Host"), raw_path)
            req = AWSRequest(method=method, url=url, headers=want)
            amz_date = headers.get("X-Amz-Date")
            req.context["timestamp"] = amz_date
            signer = S3SigV4Auth(self.creds, "s3", self.region)
            # sign exactly the headers the client signed
            signer.headers_to_sign = lambda r: _headers_subset(r, signed)
            canonical = signer.canonical_request(req)
            sts = signer.string_to_sign(req, canonical)
            expected = signer.signature(sts, req)
            if expected != fields["Signature"]:
                raise ValueError("signature mismatch for %s %s canonical=%r auth=%r" % (method, raw_path, canonical, auth))
            self.verified += 1
            self.seen_paths.append(raw_path)
        except Exception as e:  # collected for the test to report
            self.failures.append("%s %s: %s" % (method, raw_path, e))


def _headers_subset(request, names):
    from botocore.awsrequest import HTTPHeaders
    out = HTTPHeaders()
    for name in names:
        value = request.headers.get(name)
        if value is not None:
            out[name] = value
    return out
