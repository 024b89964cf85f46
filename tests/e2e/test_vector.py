"""End-to-end: POST /embed with the built-in embedding — deterministic unit vectors of
384 dimensions, similar wording close, every bad input a clear 400; agents may call it."""
import json
import math
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, AGENT = "tok-admin-vec-00001", "tok-agent-vec-00001"


class Embed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(principals=[("owner", ADMIN, ["admin"]),
                                             ("bot", AGENT, ["agent"])]).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def embed(self, body, who="bot"):
        return self.srv.request("POST", "/embed", body, who=who)

    def test_builtin(self):
        texts = ["Senior Kubernetes engineer, Chicago", "kubernetes ENGINEER in chicago",
                 "Registered nurse, night shifts", ""]
        st, _, out = self.embed({"model": "builtin", "texts": texts})
        self.assertEqual(st, 200, out)
        self.assertEqual((out["model"], out["model_version"], out["dim"]),
                         ("builtin", "builtin-v1", 384))
        v = out["vectors"]
        self.assertEqual([len(x) for x in v], [384] * 4)
        dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
        self.assertAlmostEqual(dot(v[0], v[0]), 1.0, places=4)
        self.assertGreater(dot(v[0], v[1]), 0.5)
        self.assertLess(dot(v[0], v[2]), dot(v[0], v[1]) - 0.3)
        self.assertEqual(dot(v[3], v[3]), 0.0)
        st, _, again = self.embed({"model": "builtin", "texts": texts[:1]}, who="owner")
        self.assertEqual(again["vectors"][0], v[0])  # deterministic

    def test_bad_input(self):
        cases = [
            ({"model": "gpt-9", "texts": ["x"]}, "unknown_model"),
            ({"texts": ["x"]}, "invalid_parameter"),
            ({"model": "builtin", "texts": []}, "invalid_parameter"),
            ({"model": "builtin", "texts": "x"}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x", 5]}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x"] * 1025}, "invalid_parameter"),
            ({"model": "builtin", "texts": ["x"], "extra": 1}, "invalid_parameter"),
        ]
        for body, code in cases:
            st, _, out = self.embed(body)
            self.assertEqual((st, out["error"]["code"]), (400, code), body)
        st, _, out = self.srv.request("POST", "/embed", "{bad", who="bot",
                                      headers={"Content-Type": "application/json"})
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_json"))
        st, _, _ = self.srv.request("POST", "/embed", {"model": "builtin", "texts": ["x"]})
        self.assertEqual(st, 401)


if __name__ == "__main__":
    unittest.main(verbosity=2)
