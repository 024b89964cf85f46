"""End-to-end: the local cache of remote (S3) data files is bounded and evicts copies
no live dataset reads, while queries keep working."""
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import s3util  # noqa: E402


class Cache(unittest.TestCase):
    def test_bounded_cache_evicts_unused_copies(self):
        tmp = harness.tempfile.mkdtemp(prefix="e2e-cache-", dir=harness.TMP)
        s3 = s3util.S3rver(os.path.join(tmp, "s3data"), ["lake"]).start()
        secrets = os.path.join(tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[s3]\naccess_key_id = "S3RVER"\nsecret_access_key = "S3RVER"\n')
        os.chmod(secrets, 0o600)
        extra = ('\n[storage]\nprobe_interval_ms = 0\n[secrets]\nfile = "%s"\n[[bucket]]\nname = "lake"\n'
                 'backend = "s3"\nendpoint = "http://127.0.0.1:%d"\nbucket = "lake"\nsecret_ref = "s3"\n'
                 % (secrets, s3.port))
        srv = harness.Server(env={"LAKEHOUSE_ENGINE_CACHE_MAX_BYTES": str(1 << 20)}, extra_toml=extra)
        try:
            srv.start()
            for i in range(4):
                body = "k,blob\n" + "".join("%d,%s\n" % (n, os.urandom(40).hex()) for n in range(8000))
                mode = "create" if i == 0 else "replace"
                st, _, res = srv.request("POST", "/ingest/file?" + urllib.parse.urlencode(
                    {"dataset": "blobs", "format": "csv", "mode": mode, "bucket": "lake"}),
                    body=body, who="admin")
                self.assertEqual(st, 201, res)
                st, _, q = srv.request("POST", "/query", who="admin",
                                       body={"sql": "SELECT count(*) AS n FROM blobs"})
                self.assertEqual(q["rows"], [{"n": 8000}])
            _, _, health = srv.request("GET", "/health")
            cache = health["cache"]
            self.assertGreater(cache["evictions"], 0, cache)
            self.assertLessEqual(cache["bytes"], cache["max_bytes"], cache)
            files = os.listdir(os.path.join(srv.data_dir, "cache", "objects"))
            self.assertLessEqual(len(files), cache["entries"])
            self.assertEqual(srv.stop(), 0, srv.log_text()[-4000:])
        finally:
            srv.cleanup()
            s3.stop()
            harness.shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
