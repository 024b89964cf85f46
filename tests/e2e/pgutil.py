"""A real PostgreSQL server for end-to-end tests: initdb in a fresh temp dir, started on a
free loopback port (password auth over TCP), stopped by PID. PostgreSQL refuses to run
as root, so when the tests run as root the server runs as the `postgres` user."""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import s3util

SUPERUSER_PASSWORD = "pg-super-Secr3t-9f1c"


def bin_dir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")


class Postgres:
    def __init__(self):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix="lh-pg-")  # under /tmp: the postgres user must reach it
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postgres.log")
        self.port = s3util.free_port()
        self.proc = None
        self.as_user = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.as_user = (pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)

    def _demote(self):
        if self.as_user:
            os.setgid(self.as_user[1])
            os.setuid(self.as_user[0])

    def start(self):
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(SUPERUSER_PASSWORD + "\n")
        if self.as_user:
            os.chown(pwfile, *self.as_user)
        subprocess.run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                        "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256",
                        "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True, preexec_fn=self._demote)
        os.unlink(pwfile)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
             "-h", "127.0.0.1", "-k", self.dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "log_min_messages=warning"],
            stdout=log, stderr=log, preexec_fn=self._demote)
        log.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run(["psql", "-XAtq", "-d", self.dsn(), "-c", "SELECT 1"],
                               capture_output=True, env=self._env())
            if r.returncode == 0:
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("postgres did not start:\n" + open(self.log_path).read())

    def dsn(self, user="postgres", password=None, db="postgres"):
        if password is None and user == "postgres":
            password = SUPERUSER_PASSWORD
        auth = user + (":" + password if password else "")
        return "postgresql://%s@127.0.0.1:%d/%s" % (auth, self.port, db)

    def _env(self):
        e = dict(os.environ)
        e.pop("PGPASSWORD", None)
        return e

    def psql(self, sql, db="postgres", check=True):
        """Run SQL as the superuser; returns stdout (unaligned, tuples only, '|' between
        fields)."""
        r = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(db=db),
                            "-c", sql], capture_output=True, env=self._env())
        if check and r.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql[:200], r.stderr.decode()))
        return r.stdout.decode()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: clients are cut off
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
