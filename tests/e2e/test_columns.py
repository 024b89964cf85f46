"""End-to-end: column governance. Per-column sensitivity and masks set with PATCH (and its
bad bodies refused, nothing changed); likely personal data suggested at ingest from column
names and sampled values (and ordinary columns left alone); a principal's clearance from
its config, shown by /whoami (and a bad one refused at start with file:line:col); columns
above a reader's clearance masked in one record's history, the change feed, the events
journal and a vector search's `include` (NULL, or a keyed hash equal everywhere); metadata
that [catalog] require demands refused with 400 metadata_required before anything is
written, through every ingest door."""
import json
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, WRITER = "tok-admin-cols-00001", "tok-writer-cols-0001"
READER, PUBLIC = "tok-reader-cols-0001", "tok-public-cols-0001"

# resume: prose too wide to be sampled (values over 64 bytes), beside columns that are
PEOPLE = ("id,full_name,contact,reach,city,score,notes,resume\n" + "".join(
    "%d,Person %d,user%d@example.com,+47 22 33 %02d %02d,%s,%d,%s engineer in %s,%s\n" % (
        i, i, i, i, i + 10, ["Oslo", "Bergen", "Tromso"][i % 3], i * 10,
        ["Python", "Java", "Go"][i % 3], ["Oslo", "Bergen", "Tromso"][i % 3],
        "Ten years of shipping services; reach me at user%d@example.com. " % i * 4)
    for i in range(1, 13)))


def with_clearance(srv):
    """The harness writes [[principal]] entries; give two of them a clearance."""
    with open(srv.config) as f:
        text = f.read()
    text = text.replace('name = "analyst"\n', 'name = "analyst"\nclearance = "internal"\n')
    text = text.replace('name = "guest"\n', 'name = "guest"\nclearance = "public"\n')
    with open(srv.config, "w") as f:
        f.write(text)


class Columns(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
                  ("analyst", READER, ["reader"]), ("guest", PUBLIC, ["reader"])]
    extra_toml = '\n[catalog]\nrequire = ["owner", "description"]\n'

    @classmethod
    def setUpClass(cls):
        cls.start_server(configure=with_clearance)
        st, _, b = cls.srv.request("POST", "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": "people", "format": "csv", "primary_key": "id", "owner": "hr",
             "description": "people we placed"}), body=PEOPLE, who="loader",
            headers={"Content-Type": "text/csv"})
        assert st == 201, b

    def req(self, method, path, body=None, status=200, who="owner"):
        st, _, b = self.srv.request(method, path, body=body, who=who)
        self.assertEqual(st, status, b)
        return b

    def err(self, method, path, body, status, code, who="owner"):
        b = self.req(method, path, body, status, who)
        self.assertEqual(b["error"]["code"], code, b)
        return b["error"]

    def columns(self, name="people"):
        return {c["name"]: c for c in self.req("GET", "/catalog/datasets/" + name)["columns"]}

    # ---- clearance ------------------------------------------------------------------------
    def test_whoami_clearance(self):
        self.assertEqual(self.req("GET", "/whoami", who="owner")["clearance"], "pii")
        self.assertEqual(self.req("GET", "/whoami", who="loader")["clearance"], "internal")
        self.assertEqual(self.req("GET", "/whoami", who="analyst")["clearance"], "internal")
        self.assertEqual(self.req("GET", "/whoami", who="guest")["clearance"], "public")

    def test_bad_clearance_refused_at_start(self):
        srv = harness.Server(principals=[("x", "tok-x-cols-000000001", ["reader"])])
        self.addCleanup(srv.cleanup)
        with open(srv.config) as f:
            text = f.read()
        with open(srv.config, "w") as f:
            f.write(text.replace('name = "x"\n', 'name = "x"\nclearance = "secret"\n'))
        with self.assertRaises(RuntimeError) as ctx:
            srv.start()
        srv.log.close()
        self.assertIn("lakehouse.toml:", str(ctx.exception))
        self.assertIn("'clearance' must be one of public, internal, confidential, pii",
                      str(ctx.exception))

    # ---- suggestions ----------------------------------------------------------------------
    def test_0_suggestions_at_ingest(self):
        cols = self.columns()
        self.assertEqual(cols["full_name"]["suggested_sensitivity"], "pii")
        self.assertEqual(cols["full_name"]["suggestion_reason"], "name")
        self.assertEqual(cols["contact"]["suggestion_reason"], "values: email")
        self.assertEqual(cols["reach"]["suggestion_reason"], "values: phone")
        for plain in ("id", "city", "score", "notes", "resume"):
            self.assertNotIn("suggested_sensitivity", cols[plain], plain)
        # a suggestion changes nothing until confirmed: every column has the dataset's level
        self.assertEqual({c["sensitivity"] for c in cols.values()}, {"internal"})

    # ---- PATCH ----------------------------------------------------------------------------
    def test_patch_validation(self):
        before = self.req("GET", "/catalog/datasets/people")["version"]
        e = self.err("PATCH", "/catalog/datasets/people", {"columns": {"emial": {"sensitivity": "pii"}}},
                     400, "unknown_column")
        self.assertIn("'emial'", e["message"])
        self.assertIn("contact", e["hint"])
        e = self.err("PATCH", "/catalog/datasets/people", {"columns": {"contact": {"sensitivity": "top"}}},
                     400, "invalid_metadata")
        self.assertIn("public, internal, confidential, pii", e["message"])
        e = self.err("PATCH", "/catalog/datasets/people", {"columns": {"contact": {"mask": "blur"}}},
                     400, "invalid_metadata")
        self.assertIn('"null" or "hash"', e["message"])
        e = self.err("PATCH", "/catalog/datasets/people", {"columns": {"contact": {"colour": "red"}}},
                     400, "invalid_metadata")
        self.assertIn("colour", e["message"])
        self.err("PATCH", "/catalog/datasets/people", {"columns": []}, 400, "invalid_metadata")
        self.err("PATCH", "/catalog/datasets/people", {"columns": {"contact": {"sensitivity": "pii"}}},
                 403, "forbidden", who="analyst")
        self.assertEqual(self.req("GET", "/catalog/datasets/people")["version"], before)

    # ---- masking --------------------------------------------------------------------------
    def confirm(self):
        """Owner confirms: contact pii hashed, reach pii (null), score confidential."""
        body = {"columns": {"contact": {"sensitivity": "pii", "mask": "hash"},
                            "reach": {"sensitivity": "pii"},
                            "score": {"sensitivity": "confidential"}}}
        st, _, b = self.srv.request("PATCH", "/catalog/datasets/people", body=body, who="owner")
        self.assertEqual(st, 200, b)
        return b

    def test_masking_everywhere(self):
        v = self.req("GET", "/catalog/datasets/people")["version"]
        patched = self.confirm()
        self.assertEqual(patched["version"], v + 1)
        self.assertEqual(patched["change"], "patch")
        cols = self.columns()
        self.assertEqual((cols["contact"]["sensitivity"], cols["contact"]["mask"]), ("pii", "hash"))
        self.assertEqual(cols["reach"]["sensitivity"], "pii")
        self.assertEqual(cols["city"]["sensitivity"], "internal")
        # a change of row 2, then its history as each reader sees it
        self.req("POST", "/datasets/people/rows",
                 {"upsert": [{"id": 2, "contact": "new2@example.com", "reach": "+47 99 88 77 66",
                              "score": 21, "city": "Oslo"}]}, status=201, who="loader")
        full = self.req("GET", "/datasets/people/rows/2/history", who="owner")
        self.assertEqual(full["current"]["contact"], "new2@example.com")
        masked = self.req("GET", "/datasets/people/rows/2/history", who="analyst")
        hashed = masked["current"]["contact"]
        self.assertRegex(hashed, "^[0-9a-f]{64}$")
        self.assertIsNone(masked["current"]["reach"])
        self.assertIsNone(masked["current"]["score"])
        self.assertEqual(masked["current"]["city"], "Oslo")
        self.assertEqual(masked["current"]["full_name"], "Person 2")  # suggested, not confirmed
        changes = {c["field"]: c for c in masked["history"][-1]["changes"]}
        self.assertEqual(set(changes), {"contact", "reach", "score", "city"})  # fields still shown
        self.assertEqual(changes["contact"]["new"], hashed)
        self.assertRegex(changes["contact"]["old"], "^[0-9a-f]{64}$")
        self.assertNotEqual(changes["contact"]["old"], hashed)
        self.assertEqual((changes["reach"]["old"], changes["reach"]["new"]), (None, None))
        self.assertEqual((changes["score"]["old"], changes["score"]["new"]), (None, None))
        self.assertEqual((changes["city"]["old"], changes["city"]["new"]), ("Tromso", "Oslo"))
        # the public guest sees internal columns masked too (the dataset's level)
        guest = self.req("GET", "/datasets/people/rows/2/history", who="guest")
        self.assertIsNone(guest["current"]["city"])
        self.assertEqual(guest["current"]["contact"], hashed)  # same key, same hash
        # SQL: the same masks in /query (and a statement kept for the owner is not reused
        # for the analyst), in a join on the hashed column, and in time travel
        sql = {"sql": "SELECT contact, reach, score, city FROM people WHERE id = 2"}
        row = self.req("POST", "/query", sql, who="owner")["rows"][0]
        self.assertEqual((row["contact"], row["reach"]), ("new2@example.com", "+47 99 88 77 66"))
        row = self.req("POST", "/query", sql, who="analyst")["rows"][0]
        self.assertEqual((row["contact"], row["reach"], row["score"], row["city"]),
                         (hashed, None, None, "Oslo"))
        # the public guest: even the key is internal, so it filters on what it sees
        rows = self.req("POST", "/query", sql, who="guest")["rows"]
        self.assertEqual(rows, [])
        row = self.req("POST", "/query", {
            "sql": "SELECT id, contact, city FROM people WHERE contact = '%s'" % hashed},
            who="guest")["rows"][0]
        self.assertEqual((row["id"], row["contact"], row["city"]), (None, hashed, None))
        joined = self.req("POST", "/query", {
            "sql": "SELECT count(*) AS n FROM people a JOIN people b ON a.contact = b.contact"},
            who="analyst")["rows"][0]["n"]
        self.assertGreater(joined, 0)
        old = self.req("POST", "/query", dict(sql, as_of={"version": v}), who="analyst")["rows"]
        self.assertIsNone(old[0]["reach"])  # today's levels govern older versions too
        self.assertRegex(old[0]["contact"], "^[0-9a-f]{64}$")
        old = self.req("POST", "/query", dict(sql, as_of={"version": v}), who="owner")["rows"]
        self.assertIsNotNone(old[0]["reach"])
        st, _, out = self.srv.request("POST", "/query", who="analyst", body={
            "sql": "SELECT lh_mask_hash('new2@example.com') AS h"})
        self.assertIn(st, (400, 403), out)  # the hash is not a function users may call
        # workspaces: a shortlist's current rows, and staged rows read with workspace_id
        ws = self.req("POST", "/workspaces", {"name": "masks", "kind": "search",
                                              "members": {"analyst": "read"}}, status=201)["id"]
        self.req("POST", "/workspaces/%s/shortlists/l/records" % ws,
                 {"records": [{"dataset": "people", "key": 2}]})
        self.req("POST", "/workspaces/%s/datasets/people/rows" % ws,
                 {"upsert": [{"id": 2, "reach": "+47 11 22 33 44", "score": 22}]})
        rec = self.req("GET", "/workspaces/%s/shortlists/l" % ws, who="analyst")["records"][0]
        self.assertEqual((rec["row"]["contact"], rec["row"]["reach"], rec["row"]["city"]),
                         (hashed, None, "Oslo"))
        rec = self.req("GET", "/workspaces/%s/shortlists/l" % ws, who="owner")["records"][0]
        self.assertEqual(rec["row"]["reach"], "+47 99 88 77 66")
        staged = self.req("POST", "/query", dict(sql, workspace_id=ws), who="analyst")["rows"]
        self.assertEqual((staged[0]["reach"], staged[0]["score"], staged[0]["contact"]),
                         (None, None, hashed))
        staged = self.req("POST", "/query", dict(sql, workspace_id=ws), who="owner")["rows"]
        self.assertEqual(staged[0]["reach"], "+47 11 22 33 44")
        # the _events relation in SQL: masked fields' values are NULL, the fields still there
        ev_sql = {"sql": "SELECT field, old_value, new_value FROM _events WHERE dataset = "
                         "'people' AND op = 'update' AND field IN ('reach', 'contact', 'city') "
                         "ORDER BY field"}
        got = {r["field"]: r for r in self.req("POST", "/query", ev_sql, who="analyst")["rows"]}
        self.assertEqual(set(got), {"reach", "contact", "city"})
        self.assertEqual((got["reach"]["old_value"], got["reach"]["new_value"]), (None, None))
        self.assertIsNone(got["contact"]["new_value"])
        self.assertEqual(json.loads(got["city"]["new_value"]), "Oslo")
        got = {r["field"]: r for r in self.req("POST", "/query", ev_sql, who="owner")["rows"]}
        self.assertEqual(json.loads(got["reach"]["new_value"]), "+47 99 88 77 66")
        # the events journal
        ev = self.req("GET", "/journal/events?dataset=people&key=%7B%22id%22%3A2%7D",
                      who="analyst")["events"]
        by_field = {e["field"]: e for e in ev if e["op"] == "update"}
        self.assertEqual(json.loads(by_field["contact"]["new_value"]), hashed)
        self.assertIsNone(by_field["reach"]["new_value"])
        self.assertIsNone(by_field["reach"]["old_value"])
        self.assertEqual(json.loads(by_field["city"]["new_value"]), "Oslo")
        ev = self.req("GET", "/journal/events?dataset=people&key=%7B%22id%22%3A2%7D",
                      who="owner")["events"]
        by_field = {e["field"]: e for e in ev if e["op"] == "update"}
        self.assertEqual(json.loads(by_field["reach"]["new_value"]), "+47 99 88 77 66")
        # the change feed
        ch = self.req("GET", "/datasets/people/changes?from_version=%d" % (v + 1), who="analyst")
        self.assertEqual(ch["updated"][0]["after"]["contact"], hashed)
        self.assertIsNone(ch["updated"][0]["before"]["reach"])
        self.assertEqual(ch["updated"][0]["after"]["city"], "Oslo")
        ch = self.req("GET", "/datasets/people/changes?from_version=%d" % (v + 1), who="owner")
        self.assertEqual(ch["updated"][0]["after"]["reach"], "+47 99 88 77 66")
        # vector search include
        st, _, b = self.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "people_notes", "dataset": "people", "id_column": "id",
            "text_column": "notes", "model": "builtin"})
        self.assertEqual(st, 202, b)
        for _ in range(600):
            job = self.req("GET", "/jobs/" + b["job_id"])
            if job["state"] in ("succeeded", "failed", "cancelled"):
                self.assertEqual(job["state"], "succeeded", job)
                break
            time.sleep(0.05)
        q = {"query": "Python engineer", "k": 12, "include": ["contact", "reach", "city"]}
        hits = self.req("POST", "/vectors/indexes/people_notes/search", q, who="analyst")["hits"]
        self.assertEqual(len(hits), 12)
        by_id = {h["doc_id"]: h["columns"] for h in hits}
        self.assertEqual(by_id["2"]["contact"], hashed)
        self.assertIsNone(by_id["2"]["reach"])
        self.assertEqual(by_id["2"]["city"], "Oslo")
        hits = self.req("POST", "/vectors/indexes/people_notes/search", q, who="owner")["hits"]
        by_id = {h["doc_id"]: h["columns"] for h in hits}
        self.assertEqual(by_id["2"]["contact"], "new2@example.com")
        self.assertEqual(by_id["2"]["reach"], "+47 99 88 77 66")
        # a sensitivity removed (null) gives the column the dataset's level back
        self.req("PATCH", "/catalog/datasets/people", {"columns": {"reach": {"sensitivity": None}}})
        masked = self.req("GET", "/datasets/people/rows/2/history", who="analyst")
        self.assertEqual(masked["current"]["reach"], "+47 99 88 77 66")
        # and in SQL at once: a statement kept from before the change is not reused
        row = self.req("POST", "/query", sql, who="analyst")["rows"][0]
        self.assertEqual(row["reach"], "+47 99 88 77 66")

    # ---- required metadata ----------------------------------------------------------------
    def test_required_metadata(self):
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=bare&format=csv&owner=hr",
                                    body="a,b\n1,2\n", who="loader",
                                    headers={"Content-Type": "text/csv"})
        self.assertEqual((st, b["error"]["code"]), (400, "metadata_required"), b)
        self.assertIn("description", b["error"]["message"])
        self.assertNotIn("owner", b["error"]["message"])
        st, _, b = self.srv.request("POST", "/ingest/file?dataset=bare&format=csv&async=true",
                                    body="a,b\n1,2\n", who="loader",
                                    headers={"Content-Type": "text/csv"})
        self.assertEqual((st, b["error"]["code"]), (400, "metadata_required"), b)
        self.assertIn("owner, description", b["error"]["message"])
        self.err("GET", "/catalog/datasets/bare", None, 404, "dataset_not_found")
        # PostgreSQL ingest: refused before any connection is tried
        e = self.err("POST", "/ingest/db", {"dsn": "postgresql://u@127.0.0.1:1/db", "table": "t",
                                            "dataset": "bare", "description": "x"},
                     400, "metadata_required", who="loader")
        self.assertIn("owner", e["message"])
        self.err("GET", "/catalog/datasets/bare", None, 404, "dataset_not_found")
        # with them it goes in; an append then needs nothing more (the dataset has them)
        self.req("POST", "/ingest/file?dataset=bare&format=csv&owner=hr&description=d",
                 "a,b\n1,2\n", status=201, who="loader")
        self.req("POST", "/ingest/file?dataset=bare&format=csv&mode=append",
                 "a,b\n3,4\n", status=201, who="loader")


if __name__ == "__main__":
    unittest.main()
