"""End-to-end: profile:{user} buckets are created on demand under [storage]
profile_bucket and are isolated: a principal reaches only its own profile, and the
bucket holding all profiles is for admins."""
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, ALICE, BOB = "tok-admin-prof-0001", "tok-alice-prof-0001", "tok-bob-prof-00001"


class Profiles(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("alice", ALICE, ["writer"]), ("bob", BOB, ["writer"])]

    @classmethod
    def setUpClass(cls):
        def configure(srv):
            cls.base = os.path.join(srv.dir, "profiles-root")
            with open(srv.config, "a") as f:
                f.write('\n[storage]\nprofile_bucket = "people"\nprobe_interval_ms = 0\n'
                        '[[bucket]]\nname = "people"\nbackend = "fs"\nroot = "%s"\n' % cls.base)
        cls.start_server(configure=configure)

    def obj(self, bucket, key):
        return "/storage/buckets/%s/objects/%s" % (urllib.parse.quote(bucket, safe=""), key)

    def test_isolation(self):
        st, _, meta = self.srv.request("PUT", self.obj("profile:alice", "notes/a.txt"), body=b"mine",
                                       who="alice")
        self.assertEqual(st, 201, meta)
        with open(os.path.join(self.base, "profiles", "alice", "notes", "a.txt"), "rb") as f:
            self.assertEqual(f.read(), b"mine")
        self.assertEqual(self.srv.request("GET", self.obj("profile:alice", "notes/a.txt"), who="alice")[2],
                         "mine")
        # bob can reach neither alice's profile nor the bucket that holds all profiles
        for path in (self.obj("profile:alice", "notes/a.txt"),
                     self.obj("people", "profiles/alice/notes/a.txt"),
                     "/storage/buckets/people/objects?prefix=profiles/"):
            st, _, err = self.srv.request("GET", path, who="bob")
            self.assertEqual((st, err["error"]["code"]), (403, "forbidden"), path)
        st, _, body = self.srv.request("GET", "/storage/buckets", who="bob")
        self.assertNotIn("people", [b["name"] for b in body["buckets"]])
        # the admin sees everything
        st, _, got = self.srv.request("GET", self.obj("people", "profiles/alice/notes/a.txt"), who="owner")
        self.assertEqual((st, got), (200, "mine"))
        # a profile name must be a valid name
        st, _, err = self.srv.request("GET", self.obj("profile:Bad!", "x"), who="owner")
        self.assertEqual(st, 404, err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
