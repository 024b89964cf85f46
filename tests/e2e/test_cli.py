"""End-to-end: the CLI client commands against a running server."""
import csv
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402


class Cli(harness.ServerTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = {"LAKEHOUSE_SERVER_PORT": str(cls.srv.port), "LAKEHOUSE_CONFIG": cls.srv.config}

    def cli(self, *args, env=None):
        e = dict(self.env)
        e.update(env or {})
        return harness.run_cli(list(args), env=e, cwd=self.srv.dir, timeout=300)

    def test_ingest_sql_datasets(self):
        path = os.path.join(self.srv.dir, "orders.csv")
        with open(path, "w") as f:
            f.write("order_id,client,amount\n1,acme,10.5\n2,globex,7\n3,acme,1\n")
        rc, out, err = self.cli("ingest", path, "--dataset", "orders", "--tags", "sales",
                                "--description", "order export")
        self.assertEqual(rc, 0, err)
        self.assertIn("orders: version 1, 3 rows", out)
        rc, out, err = self.cli("sql", "SELECT client, sum(amount) AS total FROM orders GROUP BY 1 ORDER BY 1")
        self.assertEqual(rc, 0, err)
        self.assertEqual(list(csv.reader(io.StringIO(out))), [["client", "total"], ["acme", "11.5"],
                                                              ["globex", "7.0"]])
        rc, out, err = self.cli("sql", "SELECT 1 AS one", "--format", "table")
        self.assertEqual(rc, 0, err)
        self.assertIn("one", out)
        self.assertIn("(1 row)", out)
        rc, out, err = self.cli("datasets")
        self.assertEqual(rc, 0, err)
        self.assertIn("orders", out)
        # errors are one clear message, non-zero
        rc, out, err = self.cli("sql", "SELECT * FROM nowhere")
        self.assertEqual(rc, 2)
        self.assertIn("invalid_sql", err)
        rc, out, err = self.cli("ingest", path, "--dataset", "orders")
        self.assertEqual(rc, 2)
        self.assertIn("dataset_exists", err)
        rc, out, err = self.cli("ingest", os.path.join(self.srv.dir, "missing.csv"), "--dataset", "m")
        self.assertEqual(rc, 2)
        self.assertIn("cannot read", err)
        rc, out, err = self.cli("ingest", path)
        self.assertEqual(rc, 2)
        self.assertIn("--dataset", err)
        rc, out, err = self.cli("sql", "SELECT 1", env={"LAKEHOUSE_TOKEN": "wrong"})
        self.assertEqual(rc, 2)
        self.assertIn("unauthenticated", err)
        rc, out, err = self.cli("sql", "SELECT 1", env={"LAKEHOUSE_URL": "http://127.0.0.1:1"})
        self.assertEqual(rc, 1)
        self.assertIn("cannot reach the server", err)

    def demo_workspaces(self):
        st, _, res = self.srv.request("GET", "/workspaces?q=demo", who="admin")
        self.assertEqual(st, 200, res)
        return [w for w in res["workspaces"] if w["name"].endswith("(demo)")]

    def test_demo_small(self):
        rc, out, err = self.cli("demo", "--scale", "0.002")
        self.assertEqual(rc, 0, err)
        self.assertIn("rows in 7 datasets", out)
        self.assertIn("Top 5 clients by invoiced amount", out)
        for table in ("candidates", "clients", "job_orders", "placements", "timesheets", "invoices",
                      "activities"):
            self.assertIn("ingested  " + table, err)
        st, _, res = self.srv.request("POST", "/query", who="admin", body={
            "sql": "SELECT count(*) AS n FROM placements p JOIN candidates c USING (candidate_id)"})
        self.assertEqual(res["rows"], [{"n": 100}])  # every foreign key resolves
        # the agents' tools over the demo data, callable at once
        st, _, res = self.srv.request("GET", "/tools", who="admin")
        self.assertEqual(sorted(t["name"] for t in res["tools"] if t["kind"] != "builtin"),
                         ["create_placement", "list_open_jobs", "search_candidates",
                          "update_phone"])
        st, _, res = self.srv.request("POST", "/tools/list_open_jobs/call", who="admin",
                                      body={"arguments": {}})
        self.assertEqual(st, 403, res)  # admins manage tools; the allow list says who calls
        self.assertEqual(res["error"]["code"], "not_allowed")
        # a workspace for one open job order: a shortlist picked by SQL and a note
        ws = self.demo_workspaces()
        self.assertEqual(len(ws), 1, ws)
        wid = ws[0]["id"]
        self.assertIn("workspace " + wid, err)
        first = self.srv.request("GET", "/workspaces/" + wid, who="admin")[2]
        finalists = first["shortlists"]["finalists"]["records"]
        self.assertEqual(len(finalists), 5)
        self.assertEqual({r["dataset"] for r in finalists}, {"candidates"})
        self.assertEqual(len(first["notes"]), 1)
        st, _, res = self.srv.request("POST", "/query", who="admin", body={
            "sql": "SELECT count(*) AS n FROM candidates c JOIN job_orders j ON c.city = j.city "
                   "WHERE j.job_order_id = %d AND c.candidate_id IN (%s)" % (
                       int(first["name"].split()[2]),
                       ",".join(str(r["key"]["candidate_id"]) for r in finalists))})
        self.assertEqual(res["rows"], [{"n": 5}], res)  # all in the job's city
        # a second run replaces the datasets instead of failing, and keeps the workspace
        rc, out, err = self.cli("demo", "--scale", "0.002")
        self.assertEqual(rc, 0, err)
        self.assertIn("kept from an earlier run", err)
        self.assertEqual([w["id"] for w in self.demo_workspaces()], [wid])
        again = self.srv.request("GET", "/workspaces/" + wid, who="admin")[2]
        self.assertEqual(again["shortlists"]["finalists"]["records"], finalists)
        self.assertEqual(again["notes"], first["notes"])
        rc, out, err = self.cli("demo", "--scale", "zero")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
