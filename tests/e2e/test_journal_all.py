"""End-to-end: every mutation is in the events journal (ADR-012). Row changes that change
nothing write nothing; file ingest (create, append, replace) and dataset delete are
journaled: create, append, delete and a replace without a primary key as one
dataset-level event, a replace of a dataset with a primary key as the field-level diff
of the rows it changed (or, above [catalog] max_diff_rows, one dataset-level event that
says so). Each events batch commits with its version, and survives a restart."""
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, WRITER, READER = "tok-admin-jrnl-0001", "tok-writer-jrnl-001", "tok-reader-jrnl-001"


def csv_of(rows):
    return "id,name,score\n" + "".join("%d,%s,%d\n" % r for r in rows)


class JournalBase(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
                  ("analyst", READER, ["reader"])]
    extra_toml = "\n[catalog]\ncompact_after_deltas = 0\n"

    def req(self, method, path, body=None, who="loader", status=None):
        st, _, out = self.srv.request(method, path, body, who=who)
        if status is not None:
            self.assertEqual(st, status, out)
        return st, out

    def ingest(self, name, rows, mode, key=None, status=201, source_object=None):
        params = {"dataset": name, "format": "csv", "mode": mode}
        if key:
            params["primary_key"] = key
        if source_object:
            params["source_object"] = source_object
        _, out = self.req("POST", "/ingest/file?" + urllib.parse.urlencode(params), csv_of(rows),
                          status=status)
        return out

    def events(self, name, **filters):
        filters["dataset"] = name
        filters.setdefault("limit", 10000)
        _, out = self.req("GET", "/journal/events?" + urllib.parse.urlencode(filters),
                          who="analyst", status=200)
        return out["events"]

    def version(self, name):
        _, out = self.req("GET", "/catalog/datasets/" + name, who="analyst", status=200)
        return out["version"]


class Journal(JournalBase):
    # ---- A: a no-op upsert --------------------------------------------------------------------
    def test_noop_upsert_is_unchanged(self):
        self.ingest("noop", [(1, "ann", 10), (2, "bob", 20)], "create", key="id")
        v = self.version("noop")
        n_events = len(self.events("noop"))
        st, out = self.req("POST", "/datasets/noop/rows",
                           {"upsert": [{"id": 1, "name": "ann", "score": 10},
                                       {"id": 2, "score": 20}]})
        self.assertEqual(st, 200, out)
        self.assertIs(out.get("unchanged"), True, out)
        self.assertEqual(out["version"], v)
        self.assertEqual(out["counts"]["updated"], 0, out)
        self.assertEqual(self.version("noop"), v)
        self.assertEqual(len(self.events("noop")), n_events)
        _, ds = self.req("GET", "/catalog/datasets/noop", who="analyst", status=200)
        self.assertEqual([f["kind"] for f in ds["files"] if f["kind"] != "events"], ["base"])

    def test_partly_unchanged_upsert_counts_only_changes(self):
        self.ingest("part", [(1, "ann", 10), (2, "bob", 20), (3, "cy", 30)], "create", key="id")
        _, out = self.req("POST", "/datasets/part/rows",
                          {"upsert": [{"id": 1, "score": 10}, {"id": 2, "score": 21},
                                      {"id": 4, "name": "di", "score": 40}],
                           "delete": [{"id": 9}]}, status=201)
        self.assertEqual(out["counts"]["updated"], 1, out)
        self.assertEqual(out["counts"]["inserted"], 1, out)
        self.assertEqual(out["counts"]["deleted"], 0, out)
        _, ds = self.req("GET", "/catalog/datasets/part", who="analyst", status=200)
        delta = [f for f in ds["files"] if f["kind"] == "delta"]
        self.assertEqual([f["rows"] for f in delta], [2])
        keys = {e["key"] for e in self.events("part") if e["version"] == 2}
        self.assertEqual(keys, {'{"id":2}', '{"id":4}'})

    # ---- B: file ingest and delete ------------------------------------------------------------
    def test_create_and_append_are_dataset_events(self):
        self.ingest("grow", [(1, "ann", 10), (2, "bob", 20)], "create", source_object="a.csv")
        self.ingest("grow", [(3, "cy", 30)], "append", source_object="b.csv")
        ev = self.events("grow")
        self.assertEqual([(e["op"], e["version"]) for e in ev], [("create", 1), ("append", 2)])
        for e, rows, total, src in zip(ev, [2, 1], [2, 3], ["a.csv", "b.csv"]):
            self.assertIsNone(e["key"])
            self.assertIsNone(e["field"])
            self.assertEqual(e["actor"], "loader")
            self.assertIn(src, e["source"])
            detail = json.loads(e["new_value"])
            self.assertEqual(detail["rows"], rows)
            self.assertEqual(detail["row_count"], total)

    def test_replace_without_key_is_one_dataset_event(self):
        self.ingest("flat", [(1, "ann", 10)], "create")
        out = self.ingest("flat", [(1, "ann", 11), (2, "bob", 20)], "replace")
        self.assertEqual(out["journal"]["level"], "dataset", out)
        ev = [e for e in self.events("flat") if e["version"] == 2]
        self.assertEqual(len(ev), 1, ev)
        self.assertEqual(ev[0]["op"], "replace")
        self.assertEqual(json.loads(ev[0]["new_value"])["rows"], 2)

    def test_replace_with_key_journals_the_diff(self):
        self.ingest("crm", [(1, "ann", 10), (2, "bob", 20), (3, "cy", 30), (4, "di", 40)],
                    "create", key="id")
        out = self.ingest("crm", [(1, "ann", 11), (3, "cy", 30), (4, "dora", 40), (5, "ed", 50)],
                          "replace")
        j = out["journal"]
        self.assertEqual(j["level"], "field", out)
        self.assertEqual((j["inserted"], j["updated"], j["deleted"]), (1, 2, 1), out)
        ev = [e for e in self.events("crm") if e["version"] == 2]
        self.assertEqual(j["events"], len(ev))
        got = sorted((e["key"], e["field"], e["op"], e["old_value"], e["new_value"]) for e in ev)
        want = sorted([
            ('{"id":1}', "score", "update", "10", "11"),
            ('{"id":4}', "name", "update", '"di"', '"dora"'),
            ('{"id":2}', "id", "delete", "2", None),
            ('{"id":2}', "name", "delete", '"bob"', None),
            ('{"id":2}', "score", "delete", "20", None),
            ('{"id":5}', "id", "insert", None, "5"),
            ('{"id":5}', "name", "insert", None, '"ed"'),
            ('{"id":5}', "score", "insert", None, "50"),
        ])
        self.assertEqual(got, want)
        self.assertTrue(all(e["actor"] == "loader" for e in ev))
        _, h = self.req("GET", "/datasets/crm/rows/1/history", who="analyst", status=200)
        self.assertEqual([x["version"] for x in h["history"]], [2], h)
        self.assertEqual(h["history"][0]["changes"], [{"field": "score", "old": 10, "new": 11}])
        self.assertEqual(h["history"][0]["row"]["score"], 11)
        # nothing changed: no field events, the version still journaled as the replace it is
        out = self.ingest("crm", [(1, "ann", 11), (3, "cy", 30), (4, "dora", 40), (5, "ed", 50)],
                          "replace")
        self.assertEqual(out["journal"]["events"], 0, out)
        # the batch commits with its version and survives a restart
        before = self.events("crm")
        self.srv.stop()
        self.srv.start()
        self.assertEqual(self.events("crm"), before)

    def test_replace_with_a_changed_key_type_is_a_dataset_event(self):
        self.ingest("kt", [(1, "ann", 10)], "create", key="id")
        params = {"dataset": "kt", "format": "csv", "mode": "replace"}
        _, out = self.req("POST", "/ingest/file?" + urllib.parse.urlencode(params),
                          "id,name,score\nx1,ann,10\n", status=201)
        self.assertEqual(out["journal"]["level"], "dataset", out)
        self.assertIn("primary key", out["journal"]["reason"])

    def test_delete_is_a_dataset_event(self):
        self.ingest("gone", [(1, "ann", 10)], "create", key="id")
        self.req("DELETE", "/catalog/datasets/gone", status=200)
        ev = self.events("gone")
        self.assertEqual([(e["op"], e["version"]) for e in ev], [("create", 1), ("delete", 2)])
        self.assertEqual(ev[1]["actor"], "loader")
        self.assertIsNone(ev[1]["key"])
        # the name can be used again, and its history goes on
        self.ingest("gone", [(7, "gil", 70)], "create")
        self.assertEqual([e["op"] for e in self.events("gone")], ["create", "delete", "create"])


class JournalDiffLimit(JournalBase):
    extra_toml = "\n[catalog]\ncompact_after_deltas = 0\nmax_diff_rows = 2\n"

    def test_replace_past_max_diff_rows_says_so(self):
        self.ingest("big", [(i, "n%d" % i, i) for i in range(1, 11)], "create", key="id")
        out = self.ingest("big", [(i, "m%d" % i, i) for i in range(1, 11)], "replace")
        j = out["journal"]
        self.assertEqual(j["level"], "dataset", out)
        self.assertIn("max_diff_rows", j["reason"])
        ev = [e for e in self.events("big") if e["version"] == 2]
        self.assertEqual(len(ev), 1, ev)
        detail = json.loads(ev[0]["new_value"])
        self.assertEqual(detail["diff"], "skipped")
        self.assertEqual((detail["rows"], detail["row_count"]), (10, 10))
        self.assertIn("max_diff_rows", detail["reason"])
        # within the limit: the diff
        out = self.ingest("big", [(i, "m%d" % i, i + (i == 3)) for i in range(1, 11)], "replace")
        self.assertEqual(out["journal"]["level"], "field", out)
        self.assertEqual(out["journal"]["updated"], 1, out)


if __name__ == "__main__":
    unittest.main()
