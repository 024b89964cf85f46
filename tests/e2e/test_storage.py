"""End-to-end: object storage through the real binary, on an fs bucket and on a real
S3 wire-protocol server (s3rver on loopback) behind a proxy that verifies every request's
SigV4 signature with botocore. The same conformance suite runs against both backends;
then the fault paths: s3rver stopped mid-run → rescue reads with the header, writes 503,
both in /storage/errors, surviving a flush and a restart."""
import json
import os
import stat
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402

ADMIN, WRITER, READER, LIMITED = ("tok-admin-storage-01", "tok-writer-storage-01",
                                  "tok-reader-storage-01", "tok-limited-storage-01")
AK, SK = "S3RVER", "S3RVER"


def q(key):
    return urllib.parse.quote(key, safe="/")


class Storage(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = cls.make_tmp("storage")
        cls.s3 = s3util.S3rver(os.path.join(cls.tmp, "s3data"), ["tenant-b"]).start()
        cls.addClassCleanup(cls.s3.stop)
        cls.proxy = s3util.SigV4Proxy(cls.s3.port, AK, SK).start()
        cls.addClassCleanup(cls.proxy.stop)
        cls.secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(cls.secrets, "w") as f:
            f.write('[s3_local]\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' % (AK, SK))
        os.chmod(cls.secrets, 0o600)
        extra = """
[storage]
rescue = "rescue"
multipart_threshold = 5242880
part_size = 5242880
retries = 1
probe_interval_ms = 0
[secrets]
file = "%s"
[[bucket]]
name = "fsb"
backend = "fs"
root = "%s"
[[bucket]]
name = "s3b"
backend = "s3"
endpoint = "http://127.0.0.1:%d"
region = "us-east-1"
bucket = "tenant-b"
path_style = true
secret_ref = "s3_local"
[[bucket]]
name = "rescue"
backend = "fs"
root = "%s"
[[bucket]]
name = "s3ghost"
backend = "s3"
endpoint = "http://127.0.0.1:%d"
bucket = "no-such-bucket"
secret_ref = "s3_local"
""" % (cls.secrets, os.path.join(cls.tmp, "fsb"), cls.proxy.port, os.path.join(cls.tmp, "rescue"),
       cls.proxy.port)
        principals = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
                      ("analyst", READER, ["reader"]),
                      ("tenant_only", LIMITED, ["writer"], ["fsb"])]  # limited to one bucket
        cls.start_server(principals=principals, extra_toml=extra)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        log = cls.srv.log_text()
        assert SK not in log and "S3RVER" not in log, "a credential reached the log"

    def req(self, method, path, body=None, who="owner", headers=None):
        return self.srv.request(method, path, body=body, who=who, headers=headers)

    def obj(self, bucket, key):
        return "/storage/buckets/%s/objects/%s" % (bucket, q(key))

    # ---- the conformance suite, run once per backend --------------------------------------
    def conformance(self, bucket):
        keys = ["plain.txt", "dir/sub/deep.csv", "with space/é ü 日本.txt", "tilde~and+plus=.bin",
                "semi;colon,comma!(x)'*.dat"]
        for i, key in enumerate(keys):
            body = ("content %d of %s\n" % (i, key)).encode()
            status, h, meta = self.req("PUT", self.obj(bucket, key), body=body)
            self.assertEqual(status, 201, meta)
            self.assertEqual(meta["key"], key)
            self.assertEqual(meta["size"], len(body))
            status, h, got = self.srv.request("GET", self.obj(bucket, key), who="analyst")
            self.assertEqual(status, 200, got)
            self.assertEqual(got.encode(), body)
            self.assertTrue(h["etag"].startswith('"'))
            self.assertNotIn("x-lakehouse-rescue-used", h)
        # HEAD
        status, h, got = self.req("HEAD", self.obj(bucket, "plain.txt"))
        self.assertEqual((status, h["content-length"], got), (200, str(len("content 0 of plain.txt\n")), ""))
        # ranges
        status, h, got = self.req("GET", self.obj(bucket, "plain.txt"), headers={"Range": "bytes=0-6"})
        self.assertEqual((status, got), (206, "content"))
        self.assertEqual(h["content-range"], "bytes 0-6/23")
        status, h, got = self.req("GET", self.obj(bucket, "plain.txt"), headers={"Range": "bytes=-6"})
        self.assertEqual((status, got), (206, "plain.txt\n"[-6:]))
        status, h, got = self.req("GET", self.obj(bucket, "plain.txt"), headers={"Range": "bytes=8-"})
        self.assertEqual((status, got), (206, "0 of plain.txt\n"))
        for bad in ("bytes=100-200", "bytes=23-", "bytes=-0"):
            status, h, err = self.req("GET", self.obj(bucket, "plain.txt"), headers={"Range": bad})
            self.assertEqual(status, 416, (bad, err))
            self.assertEqual(err["error"]["code"], "invalid_range")
            self.assertEqual(h["content-range"], "bytes */23")
        # ranges we do not serve are ignored (RFC 9110): the whole object, 200
        for odd in ("bytes=5-2", "items=0-1", "bytes=0-1,3-4", "bytes=abc"):
            status, h, got = self.req("GET", self.obj(bucket, "plain.txt"), headers={"Range": odd})
            self.assertEqual((status, got), (200, "content 0 of plain.txt\n"), odd)
        # list with pagination, byte order, prefixes
        seen, cursor = [], None
        while True:
            path = "/storage/buckets/%s/objects?limit=2" % bucket
            if cursor:
                path += "&cursor=" + urllib.parse.quote(cursor)
            status, _, page = self.req("GET", path)
            self.assertEqual(status, 200, page)
            self.assertLessEqual(len(page["objects"]), 2)
            seen += [o["key"] for o in page["objects"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        mine = [k for k in seen if k in keys]
        self.assertEqual(sorted(mine, key=lambda k: k.encode()), mine)
        self.assertEqual(set(mine), set(keys))
        status, _, page = self.req("GET", "/storage/buckets/%s/objects?prefix=dir/" % bucket)
        self.assertEqual([o["key"] for o in page["objects"]], ["dir/sub/deep.csv"])
        status, _, page = self.req("GET", "/storage/buckets/%s/objects?prefix=%s" % (bucket, q("with sp")))
        self.assertEqual([o["key"] for o in page["objects"]], ["with space/é ü 日本.txt"])
        # create-only
        status, _, err = self.req("PUT", self.obj(bucket, "plain.txt"), body=b"new",
                                  headers={"If-None-Match": "*"})
        self.assertEqual(status, 409, err)
        self.assertEqual(err["error"]["code"], "object_exists")
        self.assertEqual(self.req("GET", self.obj(bucket, "plain.txt"))[2], "content 0 of plain.txt\n")
        status, _, meta = self.req("PUT", self.obj(bucket, "fresh/only-once"), body=b"1",
                                   headers={"If-None-Match": "*"})
        self.assertEqual(status, 201, meta)
        # overwrite, delete
        self.assertEqual(self.req("PUT", self.obj(bucket, "plain.txt"), body=b"v2")[0], 201)
        self.assertEqual(self.req("GET", self.obj(bucket, "plain.txt"))[2], "v2")
        self.assertEqual(self.req("DELETE", self.obj(bucket, "plain.txt"))[0], 204)
        status, _, err = self.req("GET", self.obj(bucket, "plain.txt"))
        self.assertEqual((status, err["error"]["code"]), (404, "object_not_found"))
        status, _, err = self.req("DELETE", self.obj(bucket, "plain.txt"))
        self.assertEqual(status, 404, err)
        # empty object
        self.assertEqual(self.req("PUT", self.obj(bucket, "empty"), body=b"")[0], 201)
        status, h, got = self.req("GET", self.obj(bucket, "empty"))
        self.assertEqual((status, got), (200, ""))
        # a large object, streamed (multipart on S3: 12 MiB over a 5 MiB threshold)
        big = os.urandom(12 * 1024 * 1024 + 123)
        status, _, meta = self.req("PUT", self.obj(bucket, "big/blob.bin"), body=big)
        self.assertEqual((status, meta["size"]), (201, len(big)), meta)
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)
        conn.request("GET", self.obj(bucket, "big/blob.bin"), headers={"Authorization": "Bearer " + ADMIN})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.assertEqual(resp.status, 200)
        self.assertTrue(data == big, "large object differs after a round trip")
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=60)
        conn.request("GET", self.obj(bucket, "big/blob.bin"),
                     headers={"Authorization": "Bearer " + ADMIN, "Range": "bytes=6000000-6000009"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        self.assertEqual((resp.status, data), (206, big[6000000:6000010]))
        # hostile keys never escape the bucket
        self.hostile(bucket)

    def hostile(self, bucket):
        raw_paths = ["/storage/buckets/%s/objects/..%%2F..%%2Fetc%%2Fpasswd" % bucket,
                     "/storage/buckets/%s/objects/a/../../b" % bucket,
                     "/storage/buckets/%s/objects/%%2Fetc%%2Fpasswd" % bucket,
                     "/storage/buckets/%s/objects/a%%00b" % bucket,
                     "/storage/buckets/%s/objects/a%%5Cb" % bucket,
                     "/storage/buckets/%s/objects/a//b" % bucket,
                     "/storage/buckets/%s/objects/.lh-tmp/x" % bucket,
                     "/storage/buckets/%s/objects/%s" % (bucket, "k" * 1100),
                     "/storage/buckets/%s/objects/bad%%FFutf8" % bucket]
        for path in raw_paths:
            status, _, err = self.req("PUT", path, body=b"x")
            self.assertEqual(status, 400, (path, err))
            self.assertEqual(err["error"]["code"], "invalid_key", path)
            status, _, err = self.req("GET", path)
            self.assertIn(status, (400,), (path, err))
        # nothing was written outside the bucket roots
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "etc")))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "b")))

    def test_1_fs_conformance(self):
        self.conformance("fsb")
        # atomic writes leave no temporary files behind
        tmpdir = os.path.join(self.tmp, "fsb", ".lh-tmp")
        self.assertEqual(os.listdir(tmpdir) if os.path.isdir(tmpdir) else [], [])

    def test_1b_fs_symlink_escape(self):
        # a link inside the bucket folder to a folder outside it is never followed
        root = os.path.join(self.tmp, "fsb")
        outside = harness.tempfile.mkdtemp(prefix="outside-", dir=self.tmp)
        with open(os.path.join(outside, "s.txt"), "w") as f:
            f.write("outside secret")
        link = os.path.join(root, "link")
        leaf = os.path.join(root, "leak.txt")
        os.symlink(outside, link)
        os.symlink(os.path.join(outside, "s.txt"), leaf)
        try:
            for key in ("link/s.txt", "leak.txt"):
                for method in ("GET", "HEAD"):
                    status, _, err = self.req(method, self.obj("fsb", key))
                    self.assertEqual(status, 404, (method, key, err))
                status, _, err = self.req("GET", self.obj("fsb", key))
                self.assertEqual(err["error"]["code"], "object_not_found")
                self.assertNotIn("outside secret", json.dumps(err))
                status, _, err = self.req("DELETE", self.obj("fsb", key))
                self.assertEqual(status, 404, (key, err))
            for key in ("link/new.txt", "link/deeper/new.txt", "link/s.txt", "leak.txt"):
                for headers in (None, {"If-None-Match": "*"}):
                    status, _, err = self.req("PUT", self.obj("fsb", key), body=b"planted",
                                              headers=headers)
                    self.assertEqual(status, 409, (key, headers, err))
                    self.assertEqual(err["error"]["code"], "key_conflict")
            # nothing outside was read, written or removed, and the links are still links
            self.assertEqual(sorted(os.listdir(outside)), ["s.txt"])
            with open(os.path.join(outside, "s.txt")) as f:
                self.assertEqual(f.read(), "outside secret")
            self.assertTrue(os.path.islink(link) and os.path.islink(leaf))
            # listings neither show nor enter links
            status, _, page = self.req("GET", "/storage/buckets/fsb/objects?prefix=link/")
            self.assertEqual((status, page["objects"]), (200, []))
            status, _, page = self.req("GET", "/storage/buckets/fsb/objects?limit=1000")
            keys = [o["key"] for o in page["objects"]]
            self.assertNotIn("link/s.txt", keys)
            self.assertNotIn("leak.txt", keys)
            # prefixes with "." or ".." segments are refused (./ once showed .lh-tmp files)
            for prefix in ("./", "./.lh-tmp/", "../", "a//b"):
                status, _, err = self.req("GET", "/storage/buckets/fsb/objects?prefix=" +
                                          urllib.parse.quote(prefix))
                self.assertEqual(status, 400, (prefix, err))
                self.assertEqual(err["error"]["code"], "invalid_key")
        finally:
            os.unlink(link)
            os.unlink(leaf)
            harness.shutil.rmtree(outside, ignore_errors=True)

    def test_2_s3_conformance_and_signatures(self):
        self.conformance("s3b")
        self.assertEqual(self.proxy.failures, [], "\n".join(self.proxy.failures[:3]))
        self.assertGreater(self.proxy.verified, 40)
        # the signed requests covered encoded keys and list queries
        paths = "\n".join(self.proxy.seen_paths)
        self.assertIn("%20", paths)
        self.assertIn("%E6%97%A5", paths)
        self.assertIn("~", paths)
        self.assertIn("list-type=2", paths)
        self.assertIn("uploadId=", paths)

    def test_3_buckets_and_health(self):
        status, _, body = self.req("GET", "/storage/buckets")
        self.assertEqual(status, 200)
        by_name = {b["name"]: b for b in body["buckets"]}
        self.assertEqual(set(by_name), {"primary", "fsb", "s3b", "rescue", "s3ghost"})
        self.assertEqual(by_name["primary"]["class"], "primary")
        self.assertEqual(by_name["rescue"]["class"], "rescue")
        self.assertEqual(by_name["s3b"]["backend"], "s3")
        self.assertNotIn(SK, json.dumps(body))
        status, _, health = self.req("GET", "/storage/bucket-health", who="analyst")
        self.assertEqual(status, 200)
        ok = {b["name"]: b["ok"] for b in health["buckets"]}
        self.assertEqual(ok, {"primary": True, "fsb": True, "s3b": True, "rescue": True,
                              "s3ghost": False}, health)
        self.assertFalse(health["ok"])
        self.assertTrue(all(isinstance(b["latency_us"], int) for b in health["buckets"]))

    def test_4_roles_and_bucket_limits(self):
        status, _, err = self.req("PUT", self.obj("fsb", "r.txt"), body=b"x", who="analyst")
        self.assertEqual((status, err["error"]["code"]), (403, "forbidden"))
        self.assertEqual(self.req("PUT", self.obj("fsb", "w.txt"), body=b"x", who="loader")[0], 201)
        self.assertEqual(self.req("GET", self.obj("fsb", "w.txt"), who="analyst")[0], 200)
        self.assertEqual(self.req("PUT", self.obj("fsb", "t.txt"), body=b"x", who="tenant_only")[0], 201)
        status, _, err = self.req("GET", self.obj("s3b", "x"), who="tenant_only")
        self.assertEqual((status, err["error"]["code"]), (403, "forbidden"))
        status, _, body = self.req("GET", "/storage/buckets", who="tenant_only")
        self.assertEqual([b["name"] for b in body["buckets"]], ["fsb"])
        # system-managed keys: admins only
        for key in ("_errors/fake.jsonl", "datasets/x/_manifest/v1.parquet"):
            status, _, err = self.req("PUT", self.obj("primary", key), body=b"x", who="loader")
            self.assertEqual(status, 403, err)
        status, _, err = self.req("GET", self.obj("nosuch", "k"))
        self.assertEqual((status, err["error"]["code"]), (404, "bucket_not_found"))
        status, _, err = self.req("GET", "/storage/buckets/fsb/objects?limit=0")
        self.assertEqual(status, 400)
        status, _, err = self.req("PUT", self.obj("fsb", "x"), body=b"x", headers={"If-None-Match": "\"abc\""})
        self.assertEqual(status, 400)

    def test_4c_deleted_s3_bucket_reads_from_rescue(self):
        # a HEAD of a missing bucket looks like a missing key; it must count as unreachable
        self.assertEqual(self.req("PUT", self.obj("rescue", "ghost/k.txt"), body=b"kept safe")[0], 201)
        status, h, got = self.req("GET", self.obj("s3ghost", "ghost/k.txt"))
        self.assertEqual((status, got, h.get("x-lakehouse-rescue-used")), (200, "kept safe", "true"))
        status, _, err = self.req("PUT", self.obj("s3ghost", "x"), body=b"x")
        self.assertEqual(status, 503, err)

    def test_4b_retries_transient_not_4xx(self):
        before = self.proxy.requests
        self.proxy.inject = [503]
        status, _, meta = self.req("PUT", self.obj("s3b", "retry/me.txt"), body=b"after a 503")
        self.assertEqual(status, 201, meta)
        self.assertEqual(self.proxy.requests - before, 2)  # the 503, then the retry
        self.assertEqual(self.req("GET", self.obj("s3b", "retry/me.txt"))[2], "after a 503")
        before = self.proxy.requests
        self.proxy.inject = [403]
        status, _, err = self.req("PUT", self.obj("s3b", "retry/denied.txt"), body=b"x")
        self.assertEqual(status, 502, err)
        self.assertEqual(err["error"]["code"], "bucket_access_denied")
        self.assertEqual(self.proxy.requests - before, 1)  # 4xx: never retried
        self.proxy.inject = []

    def test_5_s3_down_rescue_and_error_journal(self):
        key = "reports/q3.csv"
        self.assertEqual(self.req("PUT", self.obj("s3b", key), body=b"primary copy")[0], 201)
        self.assertEqual(self.req("PUT", self.obj("rescue", key), body=b"rescue copy")[0], 201)
        self.s3.stop()
        try:
            status, h, got = self.req("GET", self.obj("s3b", key), who="analyst")
            self.assertEqual((status, got), (200, "rescue copy"))
            self.assertEqual(h.get("x-lakehouse-rescue-used"), "true")
            status, h, got = self.req("HEAD", self.obj("s3b", key))
            self.assertEqual((status, h.get("x-lakehouse-rescue-used")), (200, "true"))
            status, h, err = self.req("PUT", self.obj("s3b", "new.csv"), body=b"x", who="loader")
            self.assertEqual(status, 503, err)
            self.assertEqual(err["error"]["code"], "bucket_unreachable")
            self.assertIn("never fall back", err["error"]["hint"])
            # not written to the rescue bucket either
            self.assertEqual(self.req("GET", self.obj("rescue", "new.csv"))[0], 404)
            # a key only the dead bucket had: 503, not 404
            status, _, err = self.req("GET", self.obj("s3b", "only-there"))
            self.assertEqual(status, 503, err)
            status, _, health = self.req("GET", "/storage/bucket-health")
            self.assertFalse(health["ok"])
            status, _, errors = self.req("GET", "/storage/errors?bucket=s3b")
            ops = {(e["op"], e["key"]) for e in errors["errors"]}
            self.assertTrue({("get", key), ("head", key)} & ops, ops)
            self.assertIn(("put", "new.csv"), ops)
            for e in errors["errors"]:
                self.assertEqual(e["bucket"], "s3b")
                self.assertTrue(e["request_id"] is None or e["request_id"].startswith("req_"))
            self.assertNotIn(SK, json.dumps(errors))
            status, _, flushed = self.req("POST", "/storage/errors/flush")
            self.assertEqual((status, flushed["errors_unwritten"]), (200, 0))
            status, _, err = self.req("POST", "/storage/errors/flush", who="analyst")
            self.assertEqual(status, 403)
            # one more failure left buffered: a graceful stop must write it
            self.assertEqual(self.req("PUT", self.obj("s3b", "after-flush.csv"), body=b"x")[0], 503)
        finally:
            self.s3.start()
        # the journal survives a restart (read back from primary://_errors/)
        self.assertEqual(self.srv.stop(), 0, self.srv.log_text()[-4000:])
        self.srv.start()
        status, _, errors = self.req("GET", "/storage/errors?bucket=s3b&limit=1000")
        ops = {(e["op"], e["key"]) for e in errors["errors"]}
        self.assertIn(("put", "new.csv"), ops)
        self.assertIn(("put", "after-flush.csv"), ops)
        primary_root = os.path.join(self.srv.data_dir, "buckets", "primary", "_errors", "bucket_errors")
        batches = sorted(os.listdir(primary_root))
        self.assertTrue(batches and all(b.startswith("batch_") and b.endswith(".jsonl") for b in batches))
        for b in batches:
            with open(os.path.join(primary_root, b)) as f:
                for line in f:
                    json.loads(line)
        status, _, res = self.req("POST", "/storage/errors/compact")
        self.assertEqual(status, 200, res)
        after = sorted(os.listdir(primary_root))
        self.assertEqual(len(after), 1 if len(batches) > 1 else len(batches))
        status, _, errors2 = self.req("GET", "/storage/errors?bucket=s3b&limit=1000")
        self.assertEqual(len(errors2["errors"]), len(errors["errors"]))


class SecretsRefused(unittest.TestCase):
    def test_secrets_0644_refused_at_start(self):
        srv = harness.Server()
        try:
            secrets = os.path.join(srv.dir, "secrets.toml")
            with open(secrets, "w") as f:
                f.write('[s]\naccess_key_id = "AKIDSECRET"\nsecret_access_key = "VERYSECRETVALUE"\n')
            os.chmod(secrets, 0o644)
            with open(srv.config, "a") as f:
                f.write('\n[secrets]\nfile = "%s"\n[[bucket]]\nname = "x"\nbackend = "s3"\n'
                        'endpoint = "http://127.0.0.1:1"\nbucket = "b"\nsecret_ref = "s"\n' % secrets)
            rc, out, err = harness.run_cli(["serve", "--config", srv.config], cwd=srv.dir)
            self.assertEqual(rc, 2, err)
            self.assertIn("readable or writable by others", err)
            self.assertIn("chmod 600", err)
            self.assertRegex(err, r"lakehouse\.toml:\d+:\d+: \[\[bucket\]\]")
            self.assertNotIn("VERYSECRETVALUE", err + out)
        finally:
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
