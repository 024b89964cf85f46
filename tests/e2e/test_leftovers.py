"""End-to-end: no silent data loss and no leftovers. An unreadable newest manifest is
served around (the newest valid version, with a warning and a journaled error) and the
next commit skips its number; a server killed mid-upload leaves nothing in its work folder
after a restart; the sweep removes old temporary files of fs buckets; an overlong key
segment is a 400; a burst of identical bucket errors is one record with a count."""
import glob
import json
import os
import signal
import socket
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN = "tok-admin-leftovers-01"


def ingest(name, mode):
    return "/ingest/file?" + urllib.parse.urlencode(
        {"dataset": name, "format": "csv", "mode": mode})


class ManifestFallback(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    def req(self, method, path, body=None):
        return self.srv.request(method, path, body=body, who="owner")

    def manifest_path(self, name, version):
        return os.path.join(self.srv.data_dir, "buckets", "primary", "datasets", name,
                            "_manifest", "v%020d.parquet" % version)

    def restart(self):
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()

    def count(self, name):
        st, _, body = self.req("POST", "/query", {"sql": "SELECT count(*) AS n FROM %s" % name})
        self.assertEqual(st, 200, body)
        return body["rows"][0][0] if isinstance(body["rows"][0], list) else body["rows"][0]["n"]

    def test_1_corrupt_newest_manifest(self):
        self.assertEqual(self.req("POST", ingest("fb", "create"), "id,v\n1,a\n")[0], 201)
        self.assertEqual(self.req("POST", ingest("fb", "append"), "id,v\n2,b\n")[0], 201)
        self.assertEqual(self.req("POST", ingest("fb", "append"), "id,v\n3,c\n")[0], 201)
        # v3 becomes garbage: a torn or damaged object
        path = self.manifest_path("fb", 3)
        os.unlink(path)  # the manifest may be a hard link of the work file: never write through
        with open(path, "wb") as f:
            f.write(b"PAR1 this is not a manifest")
        self.restart()
        st, _, ds = self.req("GET", "/catalog/datasets/fb")
        self.assertEqual(st, 200, ds)
        self.assertEqual(ds["version"], 2)
        self.assertEqual(len(ds["warnings"]), 1, ds)
        self.assertIn("manifest v3 could not be read", ds["warnings"][0])
        self.assertIn("serving v2", ds["warnings"][0])
        self.assertEqual(self.count("fb"), 2)
        st, _, lst = self.req("GET", "/catalog/datasets")
        entry = [d for d in lst["datasets"] if d["name"] == "fb"][0]
        self.assertEqual(entry["warnings"], ds["warnings"])
        st, _, errs = self.req("GET", "/storage/errors")
        bad = [e for e in errs["errors"] if e["op"] == "load_manifest"]
        self.assertEqual(len(bad), 1, errs)
        self.assertEqual(bad[0]["code"], "manifest_invalid")
        self.assertEqual(bad[0]["bucket"], "primary")
        self.assertEqual(bad[0]["key"], "datasets/fb/_manifest/v%020d.parquet" % 3)
        # the next commit takes a fresh number: v4, never the bad v3's
        st, _, out = self.req("POST", ingest("fb", "append"), "id,v\n4,d\n")
        self.assertEqual(st, 201, out)
        self.assertEqual(out["version"], 4)
        st, _, ds = self.req("GET", "/catalog/datasets/fb")
        self.assertEqual(ds["version"], 4)
        self.assertNotIn("warnings", ds)
        self.assertEqual(self.count("fb"), 3)  # v2's rows and the new one
        # and a restart comes back to v4, the bad v3 still in the bucket
        self.restart()
        st, _, ds = self.req("GET", "/catalog/datasets/fb")
        self.assertEqual((ds["version"], ds.get("warnings")), (4, None))
        st, _, vers = self.req("GET", "/catalog/datasets/fb/versions")
        self.assertEqual(st, 200, vers)

    def test_2_every_manifest_bad(self):
        self.assertEqual(self.req("POST", ingest("allbad", "create"), "id\n1\n")[0], 201)
        path = self.manifest_path("allbad", 1)
        os.unlink(path)
        with open(path, "wb") as f:
            f.write(b"garbage")
        self.restart()
        st, _, body = self.req("GET", "/catalog/datasets/allbad")
        self.assertEqual(st, 404, body)
        st, _, health = self.srv.request("GET", "/health")
        self.assertGreaterEqual(health["catalog"]["load_errors"], 1, health)


class WorkFolder(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    def test_1_kill_mid_upload_then_restart(self):
        work = os.path.join(self.srv.data_dir, "work")
        size = 50 * 1024 * 1024
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   "Content-Length: %d\r\n\r\n" % (ingest("big", "create"), ADMIN, size)).encode())
        chunk = b"id,v\n" + b"1,aaaaaaaaaaaaaaaaaaaa\n" * 40000
        sent = 0
        deadline = time.time() + 20
        while time.time() < deadline and sent < 4 * len(chunk):
            s.sendall(chunk)
            sent += len(chunk)
            time.sleep(0.05)
        deadline = time.time() + 10
        while time.time() < deadline and not glob.glob(os.path.join(work, "upload-*")):
            time.sleep(0.05)
        self.assertTrue(glob.glob(os.path.join(work, "upload-*")), os.listdir(work))
        # leftovers of an ingest's conversion too, in a sub-folder as well
        with open(os.path.join(work, "ingest-dead.parquet"), "wb") as f:
            f.write(b"x" * 1000)
        os.makedirs(os.path.join(work, "sub", "deeper"))
        with open(os.path.join(work, "sub", "deeper", "vec-1.bin"), "wb") as f:
            f.write(b"y" * 10)
        self.srv.proc.send_signal(signal.SIGKILL)
        self.srv.proc.wait()
        s.close()
        self.srv.log.close()
        self.srv.start()
        self.assertEqual(os.listdir(work), [])
        cleaned = [ln for ln in self.srv.log_lines()
                   if ln.get("msg", "").startswith("work folder: removed")]
        self.assertEqual(len(cleaned), 1, self.srv.log_text()[-3000:])
        self.assertGreaterEqual(cleaned[0]["files"], 3)
        self.assertGreater(cleaned[0]["bytes"], 1010)  # the upload's bytes and the planted ones
        # the server works on
        st, _, _ = self.srv.request("POST", ingest("small", "create"), "id\n1\n", who="owner")
        self.assertEqual(st, 201)

    def test_2_sweep_removes_old_temp_files(self):
        tmp = os.path.join(self.srv.data_dir, "buckets", "primary", ".lh-tmp")
        os.makedirs(tmp, exist_ok=True)
        planted = os.path.join(tmp, "0" * 32)
        with open(planted, "wb") as f:
            f.write(b"z" * 4096)
        old = time.time() - 7200
        os.utime(planted, (old, old))
        st, _, rep = self.srv.request("POST", "/maintenance/sweep?grace_s=3600&dry_run=true",
                                      who="owner")
        self.assertEqual(st, 200, rep)
        # its inode changed just now (ctime): a link made by a put in flight looks the same
        self.assertEqual((rep["temp_files_removed"], rep["temp_bytes_removed"]), (0, 0), rep)
        self.assertTrue(os.path.exists(planted))
        st, _, rep = self.srv.request("POST", "/maintenance/sweep?grace_s=0&dry_run=true",
                                      who="owner")
        self.assertEqual((rep["temp_files_removed"], rep["temp_bytes_removed"]), (1, 4096), rep)
        self.assertTrue(os.path.exists(planted))
        time.sleep(1.1)
        st, _, rep = self.srv.request("POST", "/maintenance/sweep?grace_s=1", who="owner")
        self.assertEqual(st, 200, rep)
        self.assertEqual((rep["temp_files_removed"], rep["temp_bytes_removed"]), (1, 4096), rep)
        self.assertFalse(os.path.exists(planted))
        # puts still work (the folder is made again when needed)
        st, _, _ = self.srv.request("PUT", "/storage/buckets/primary/objects/a/b.txt", "hi",
                                    who="owner")
        self.assertIn(st, (200, 201))


class KeysAndErrorBursts(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"])]

    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("leftovers")
        cls.gone = os.path.join(cls.tmp, "gone")
        extra = """
[storage]
probe_interval_ms = 0
[[bucket]]
name = "gone"
backend = "fs"
root = "%s"
""" % cls.gone
        cls.start_server(extra_toml=extra)

    def put(self, bucket, key, body="x"):
        return self.srv.request("PUT", "/storage/buckets/%s/objects/%s"
                                % (bucket, urllib.parse.quote(key, safe="/")), body, who="owner")

    def test_1_segment_length(self):
        st, _, body = self.put("primary", "a/" + "s" * 255)
        self.assertIn(st, (200, 201), body)
        st, _, body = self.put("primary", "a/" + "s" * 256 + "/c.txt")
        self.assertEqual(st, 400, body)
        err = body["error"]
        self.assertEqual(err["code"], "invalid_key")
        self.assertIn("segment 2", err["message"])
        self.assertIn("256 bytes", err["message"])
        self.assertIn("255", err["message"])
        self.assertTrue(err["hint"])
        st, _, body = self.srv.request("GET", "/storage/buckets/primary/objects/" + "q" * 300,
                                       who="owner")
        self.assertEqual(st, 400, body)
        # not a bucket failure: nothing journaled
        st, _, errs = self.srv.request("GET", "/storage/errors", who="owner")
        self.assertFalse([e for e in errs["errors"] if e["bucket"] == "primary"], errs)

    def test_2_burst_is_one_record(self):
        os.rmdir(self.gone)  # the bucket's folder disappears: every put is a 503
        try:
            for _ in range(40):
                st, _, body = self.put("gone", "k/same.txt")
                self.assertEqual(st, 503, body)
            st, _, body = self.put("gone", "k/other.txt")
            self.assertEqual(st, 503, body)
        finally:
            os.makedirs(self.gone)
        st, _, errs = self.srv.request("GET", "/storage/errors?bucket=gone", who="owner")
        self.assertEqual(len(errs["errors"]), 2, errs)
        newest, burst = errs["errors"]
        self.assertEqual((newest["key"], newest["count"]), ("k/other.txt", 1))
        self.assertEqual((burst["key"], burst["count"], burst["op"]), ("k/same.txt", 40, "put"))
        self.assertLessEqual(burst["first_time"], burst["last_time"])
        self.assertEqual(burst["time"], burst["first_time"])
        # the journal holds the same two records, in one or two batches
        st, _, _ = self.srv.request("POST", "/storage/errors/flush", who="owner")
        self.assertEqual(st, 200)
        folder = os.path.join(self.srv.data_dir, "buckets", "primary", "_errors", "bucket_errors")
        batches = sorted(glob.glob(os.path.join(folder, "*.jsonl")))
        self.assertLessEqual(len(batches), 2, batches)
        records = []
        for b in batches:
            with open(b) as f:
                records += [json.loads(line) for line in f if line.strip()]
        mine = [r for r in records if r["bucket"] == "gone"]
        self.assertEqual(sorted((r["key"], r["count"]) for r in mine),
                         [("k/other.txt", 1), ("k/same.txt", 40)], mine)
        # and a restart reads them back as they are
        self.assertEqual(self.srv.stop(), 0)
        self.srv.start()
        st, _, errs = self.srv.request("GET", "/storage/errors?bucket=gone", who="owner")
        self.assertEqual(sorted((e["key"], e["count"]) for e in errs["errors"]),
                         [("k/other.txt", 1), ("k/same.txt", 40)], errs)


if __name__ == "__main__":
    unittest.main()
