"""End-to-end: request bodies over [server] max_body_bytes are 413 on the tool endpoints
(POST /tools, PUT /tools/{name}, POST /tools/{name}/call), before any tool work: no tool
is defined, no call is made (so no audit record), and the server goes on answering."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, AGENT = "tok-admin-limits-001", "tok-agent-limits-001"

ECHO = {
    "name": "echo", "description": "Says a number back",
    "input_schema": {"type": "object", "additionalProperties": False,
                     "properties": {"n": {"type": "integer"}, "note": {"type": "string"}}},
    "kind": "sql",
    "binding": {"datasets": ["nums"], "max_rows": 1,
                "query": "SELECT n FROM nums WHERE n = $n AND ($note IS NULL OR $note <> '')"},
    "allow": {"roles": ["agent"]}}


class ToolBodyLimits(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("bot", AGENT, ["agent"])]
    server_env = {"LAKEHOUSE_SERVER_MAX_BODY_BYTES": "4096"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=nums&format=ndjson",
                                   body="".join('{"n": %d}\n' % i for i in range(5)), who="owner")
        assert st == 201, b
        st, _, b = cls.srv.request("POST", "/tools", body=ECHO, who="owner")
        assert st == 201, b

    def audit_count(self):
        st, _, b = self.srv.request("GET", "/audit?tool=echo&limit=1000", who="owner")
        self.assertEqual(st, 200, b)
        return len(b["records"])

    def test_oversized_bodies(self):
        big = "x" * 8000
        before = self.audit_count()
        huge = dict(ECHO, name="huge", description=big)
        st, _, b = self.srv.request("POST", "/tools", body=huge, who="owner")
        self.assertEqual(st, 413, b)
        self.assertIn("4096", json.dumps(b["error"]))
        st, _, b = self.srv.request("PUT", "/tools/echo", body=dict(ECHO, description=big),
                                    who="owner")
        self.assertEqual(st, 413, b)
        st, _, b = self.srv.request("POST", "/tools/echo/call",
                                    body={"arguments": {"n": 1, "note": big}}, who="bot")
        self.assertEqual(st, 413, b)
        # nothing was defined, changed or called
        st, _, b = self.srv.request("GET", "/tools/huge", who="owner")
        self.assertEqual(st, 404, b)
        st, _, b = self.srv.request("GET", "/tools/echo", who="owner")
        self.assertEqual(b["version"], 1)
        self.assertEqual(self.audit_count(), before)
        # just under the limit is answered
        st, _, b = self.srv.request("POST", "/tools/echo/call",
                                    body={"arguments": {"n": 1, "note": "y" * 3000}}, who="bot")
        self.assertEqual(st, 200, b)
        self.assertEqual(b["result"]["rows"], [{"n": 1}])
        self.assertEqual(self.audit_count(), before + 1)


if __name__ == "__main__":
    unittest.main()
