"""Shared helpers for end-to-end tests: start the real lakehouse binary on a free
loopback port with its own data dir and config, talk HTTP to it, stop it by PID.

Environment (set by CTest): LH_BIN (the binary), LH_TEST_TMP (scratch space)."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("LH_BIN", os.path.join(os.path.dirname(__file__), "../../build/lakehouse"))
TMP = os.environ.get("LH_TEST_TMP", tempfile.gettempdir())


def sha256_hex(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Server:
    """One lakehouse process. principals: list of (name, token, [roles]) or
    (name, token, [roles], [buckets]) for one limited to some buckets, or None for the
    first-start admin token. extra_toml is appended to the config file."""

    def __init__(self, principals=None, env=None, extra_toml=""):
        self.dir = tempfile.mkdtemp(prefix="e2e-", dir=TMP)
        self.data_dir = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "lakehouse.toml")
        self.log_path = os.path.join(self.dir, "server.log")
        # gRPC off unless a test asks for it (LAKEHOUSE_GRPC_PORT): tests run side by side
        lines = ["[server]", 'host = "127.0.0.1"', "port = 0",
                 'data_dir = "%s"' % self.data_dir, "threads = 4", "",
                 "[grpc]", "port = 0", ""]
        self.tokens = {}
        for name, token, roles, *buckets in principals or []:
            self.tokens[name] = token
            lines += ["[[principal]]", 'name = "%s"' % name,
                      'token_sha256 = "%s"' % sha256_hex(token),
                      "roles = [%s]" % ", ".join('"%s"' % r for r in roles)]
            if buckets:
                lines.append("buckets = [%s]" % ", ".join('"%s"' % b for b in buckets[0]))
            lines.append("")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + extra_toml)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None
        self.port = None
        self.preexec = None  # run in the child before exec (limits, signal dispositions)

    def start(self, timeout=20):
        self.port = None
        self.log = open(self.log_path, "ab")
        skip = len(self.log_lines())  # lines of an earlier run of this server
        self.proc = subprocess.Popen([BIN, "serve", "--config", self.config],
                                     stdout=self.log, stderr=self.log, env=self.env,
                                     cwd=self.dir, preexec_fn=self.preexec)
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.log_lines()[skip:]:
                if line.get("msg", "").startswith("listening on"):
                    self.port = line["port"]
                    break
            if self.port:
                break
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.log_text()))
            time.sleep(0.05)
        if not self.port:
            raise RuntimeError("server did not start:\n" + self.log_text())
        if not self.tokens:
            with open(os.path.join(self.data_dir, "admin.token")) as f:
                self.tokens["admin"] = f.read().strip()
        return self

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        out = []
        for raw in self.log_text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"raw": raw})
        return out

    def request(self, method, path, body=None, token=None, headers=None, who=None):
        """Returns (status, headers dict lowercased, parsed JSON or text)."""
        hdrs = dict(headers or {})
        if who is not None:
            token = self.tokens[who]
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            rh = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        ctype = rh.get("content-type", "")
        if ctype.startswith("application/json") and data:
            payload = json.loads(data)
        else:
            payload = data.decode("utf-8", "replace")
        return resp.status, rh, payload

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Stop by PID; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("server did not stop within %ss" % timeout)
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerTestCase(unittest.TestCase):
    """Base of the test classes whose tests share one server.

    setUpClass starts a Server from the class attributes principals, server_env and
    extra_toml. A class that needs more overrides setUpClass: it starts what the server
    depends on first (S3, PostgreSQL, a scratch folder from make_tmp), registering each
    one's stop with cls.addClassCleanup, then calls cls.start_server(...), and seeds data
    after it. tearDownClass stops the server by PID and, with clean_exit, requires exit
    status 0 (under the sanitizer build that also means no leak report). The clean-ups,
    the server's folder last-in first-out with the rest, run even when setUpClass fails."""
    principals = None
    server_env = None
    extra_toml = ""
    clean_exit = True

    @classmethod
    def setUpClass(cls):
        cls.start_server()

    @classmethod
    def start_server(cls, principals=None, env=None, extra_toml=None, configure=None):
        """Start cls.srv; arguments left None come from the class attributes. configure(srv)
        runs before the start (to add to srv.config, for instance)."""
        cls.srv = Server(principals=cls.principals if principals is None else principals,
                         env=cls.server_env if env is None else env,
                         extra_toml=cls.extra_toml if extra_toml is None else extra_toml)
        cls.addClassCleanup(cls.srv.cleanup)
        if configure:
            configure(cls.srv)
        return cls.srv.start()

    @classmethod
    def make_tmp(cls, tag):
        """A scratch folder removed after the class."""
        path = tempfile.mkdtemp(prefix="e2e-%s-" % tag, dir=TMP)
        cls.addClassCleanup(shutil.rmtree, path, ignore_errors=True)
        return path

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if cls.clean_exit:
            assert rc == 0, "server exit status %s\n%s" % (rc, cls.srv.log_text()[-4000:])


def raw_request(port, data, read=True, timeout=10):
    """Send raw bytes, return the raw response bytes (until the server closes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        if not read:
            return s
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)
    finally:
        if read:
            s.close()


def run_cli(args, env=None, cwd=None, timeout=30):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([BIN] + args, capture_output=True, env=e, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()
