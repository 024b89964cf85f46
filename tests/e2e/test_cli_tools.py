"""End-to-end: `lakehouse tools`, `lakehouse call` and `lakehouse audit` against a running
server, with an agent's and an admin's token: the list (table, json, openai), a call with
--arg values read as JSON or as strings and --json, errors printed with message, detail
and hint and a non-zero exit, and the audit table and one record."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, AGENT = "tok-admin-clitools-01", "tok-agent-clitools-01"

BY_CITY = {
    "name": "by_city", "description": "People in a city",
    "input_schema": {"type": "object", "additionalProperties": False, "required": ["city"],
                     "properties": {"city": {"type": "string"},
                                    "min_id": {"type": "integer", "minimum": 0}}},
    "kind": "sql",
    "binding": {"datasets": ["people"], "max_rows": 100,
                "query": "SELECT id, name FROM people WHERE city = $city "
                         "AND id >= coalesce($min_id, 0) ORDER BY id"},
    "allow": {"roles": ["agent"]}}


class CliTools(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("bot", AGENT, ["agent"])]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rows = [{"id": i, "name": "P%d" % i, "city": ["Paris", "Lyon"][i % 2]}
                for i in range(1, 11)]
        st, _, b = cls.srv.request("POST", "/ingest/file?dataset=people&format=ndjson",
                                   body="".join(json.dumps(r) + "\n" for r in rows), who="owner")
        assert st == 201, b
        st, _, b = cls.srv.request("POST", "/tools", body=BY_CITY, who="owner")
        assert st == 201, b
        cls.env = {"LAKEHOUSE_SERVER_PORT": str(cls.srv.port), "LAKEHOUSE_CONFIG": cls.srv.config}

    def cli(self, *args, token=AGENT):
        e = dict(self.env, LAKEHOUSE_TOKEN=token)
        return harness.run_cli(list(args), env=e, cwd=self.srv.dir, timeout=120)

    def test_1_tools(self):
        rc, out, err = self.cli("tools")
        self.assertEqual(rc, 0, err)
        self.assertIn("by_city", out)
        self.assertIn("People in a city", out)
        self.assertIn("(7 tools)", out)  # by_city and the six builtin ws_* tools
        rc, out, err = self.cli("tools", "--format", "openai")
        self.assertEqual(rc, 0, err)
        listed = json.loads(out)
        self.assertEqual(listed[0]["type"], "function")
        self.assertEqual(listed[0]["function"]["name"], "by_city")
        self.assertEqual(listed[0]["function"]["parameters"], BY_CITY["input_schema"])
        rc, out, err = self.cli("tools", "--format", "json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["tools"][0]["name"], "by_city")
        rc, out, err = self.cli("tools", "--format", "yaml")
        self.assertEqual(rc, 2)
        self.assertIn("--format", err)

    def test_2_call(self):
        # 2 parses as JSON (an integer); Paris does not, so it is a string
        rc, out, err = self.cli("call", "by_city", "--arg", "city=Paris", "--arg", "min_id=6")
        self.assertEqual(rc, 0, err)
        answer = json.loads(out)
        self.assertTrue(answer["call_id"].startswith("call_"))
        self.assertEqual([r["id"] for r in answer["result"]["rows"]], [6, 8, 10])
        rc, out, err = self.cli("call", "by_city", "--json", '{"city": "Lyon", "min_id": 8}',
                                "--workspace", "ws-cli")
        self.assertEqual(rc, 0, err)
        self.assertEqual([r["id"] for r in json.loads(out)["result"]["rows"]], [9])
        # --arg wins over --json; a quoted JSON string stays a string
        rc, out, err = self.cli("call", "by_city", "--json", '{"city": "Lyon"}',
                                "--arg", 'city="Paris"')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["result"]["row_count"], 5)
        # a value of the wrong type: the server's message, detail and hint, exit 2
        rc, out, err = self.cli("call", "by_city", "--arg", "city=Paris", "--arg", "min_id=-1")
        self.assertEqual(rc, 2)
        self.assertIn("/arguments/min_id: must be >= 0", err)
        self.assertIn("invalid_arguments", err)
        self.assertIn("hint:", err)
        rc, out, err = self.cli("call", "nope", "--arg", "x=1")
        self.assertEqual(rc, 2)
        self.assertIn("tool_not_found", err)
        # usage errors
        for args, text in ((["call"], "missing"), (["call", "by_city", "--arg", "novalue"],
                                                   "NAME=VALUE"),
                           (["call", "by_city", "--json", "[1]"], "object"),
                           (["call", "by_city", "--json", "{"], "--json"),
                           (["call", "by_city", "--frob"], "unknown option")):
            rc, out, err = self.cli(*args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn(text, err)

    def test_3_audit(self):
        rc, out, err = self.cli("call", "by_city", "--arg", "city=Paris")
        self.assertEqual(rc, 0, err)
        call_id = json.loads(out)["call_id"]
        rc, out, err = self.cli("audit", "--tool", "by_city", "--principal", "bot", "--limit",
                                "50", token=ADMIN)
        self.assertEqual(rc, 0, err)
        self.assertIn(call_id, out)
        self.assertIn("outcome", out)
        rc, out, err = self.cli("audit", "--outcome", "refused", token=ADMIN)
        self.assertEqual(rc, 0, err)
        self.assertNotIn(call_id, out)
        rc, out, err = self.cli("audit", call_id, token=ADMIN)
        self.assertEqual(rc, 0, err)
        record = json.loads(out)
        self.assertEqual(record["call_id"], call_id)
        self.assertEqual(record["arguments"], {"city": "Paris"})
        rc, out, err = self.cli("audit", "--since", "yesterday", token=ADMIN)
        self.assertEqual(rc, 2)
        self.assertIn("since", err)
        rc, out, err = self.cli("audit")  # an agent may not read the trail
        self.assertEqual(rc, 2)
        self.assertIn("forbidden", err)
        rc, out, err = self.cli("audit", "call_nope", token=ADMIN)
        self.assertEqual(rc, 2)
        self.assertIn("audit_record_not_found", err)

    def test_4_help(self):
        for cmd in ("tools", "call", "audit"):
            rc, out, err = harness.run_cli(["help", cmd])
            self.assertEqual(rc, 0, err)
            self.assertIn("usage: lakehouse " + cmd, out)
        rc, out, err = harness.run_cli(["help"])
        self.assertIn("call", out)


if __name__ == "__main__":
    unittest.main()
