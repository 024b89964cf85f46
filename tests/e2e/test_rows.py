"""End-to-end: row changes, the events journal, time travel and compaction — checked
against a reference model (the same operations applied to a dict in the test) after every
step, across compaction and restarts; a crash between storing a change and committing it
(kill -9 at that point) leaves either the whole change with its events or none of it;
concurrent writers: one wins, the other gets 409."""
import json
import os
import random
import sys
import threading
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

ADMIN, WRITER, READER = "tok-admin-rows-0001", "tok-writer-rows-001", "tok-reader-rows-001"
COLUMNS = ["id", "name", "score", "city"]


class Rows(harness.ServerTestCase):
    principals = [("owner", ADMIN, ["admin"]), ("loader", WRITER, ["writer"]),
                  ("analyst", READER, ["reader"])]
    extra_toml = "\n[catalog]\ncompact_after_deltas = 0\n"

    def req(self, method, path, body=None, who="loader", status=None):
        st, _, out = self.srv.request(method, path, body, who=who)
        if status is not None:
            self.assertEqual(st, status, out)
        return st, out

    def query(self, sql, as_of=None):
        body = {"sql": sql}
        if as_of:
            body["as_of"] = as_of
        _, out = self.req("POST", "/query", body, who="analyst", status=200)
        return out["rows"]

    def create(self, name, rows, key="id"):
        csv = "id,name,score,city\n" + "".join(
            "%d,%s,%d,%s\n" % (r["id"], r["name"], r["score"], r["city"]) for r in rows)
        path = "/ingest/file?" + urllib.parse.urlencode(
            {"dataset": name, "format": "csv", "primary_key": key})
        self.req("POST", path, csv, status=201)

    def state(self, name, as_of=None):
        rows = self.query("SELECT * FROM %s ORDER BY id" % name, as_of)
        return {r["id"]: r for r in rows}

    # ---- merge-on-read against a model ---------------------------------------------------------
    def test_model_through_changes_and_compaction(self):
        rnd = random.Random(7)
        cities = ["Chicago", "Austin", "Denver", None]
        model = {i: {"id": i, "name": "n%d" % i, "score": i * 10, "city": cities[i % 3]}
                 for i in range(1, 201)}
        self.create("model", list(model.values()))
        history = {1: {k: dict(v) for k, v in model.items()}}
        version = 1
        for step in range(12):
            upserts, deletes, touched = [], [], set()
            for _ in range(rnd.randint(1, 40)):
                k = rnd.randint(1, 260)
                if k in touched:
                    continue
                touched.add(k)
                if k in model and rnd.random() < 0.25:
                    deletes.append({"id": k})
                    del model[k]
                    continue
                row = {"id": k}
                for col in ("name", "score", "city"):
                    if k not in model or rnd.random() < 0.5:
                        row[col] = {"name": "s%d-%d" % (step, k), "score": rnd.randint(-5, 500),
                                    "city": rnd.choice(cities)}[col]
                base = model.get(k, {"id": k, "name": None, "score": None, "city": None})
                base.update(row)
                model[k] = base
                upserts.append(row)
            st, out = self.req("POST", "/datasets/model/rows",
                               {"upsert": upserts, "delete": deletes, "source": "test",
                                "workspace_id": "ws-%d" % step})
            self.assertIn(st, (200, 201), out)
            if st == 201:
                version = out["version"]
                history[version] = {k: dict(v) for k, v in model.items()}
                self.assertEqual(out["row_count"], len(model))
            self.assertEqual(self.state("model"), model, "after step %d" % step)
        # every earlier version, by time travel
        for v, want in history.items():
            self.assertEqual(self.state("model", {"version": v}), want, "as of version %d" % v)
        # compaction: the same rows, fewer files, the journal untouched
        _, before_events = self.req("GET", "/journal/events?dataset=model&limit=10000", who="analyst",
                                    status=200)
        _, out = self.req("POST", "/datasets/model/compact", status=201)
        self.assertEqual(out["files_after"], 1)
        self.assertEqual(self.state("model"), model)
        _, after_events = self.req("GET", "/journal/events?dataset=model&limit=10000", who="analyst",
                                   status=200)
        self.assertEqual(before_events, after_events)
        self.assertEqual(self.state("model", {"version": 2}), history[2])
        # and after a restart
        self.srv.stop()
        self.srv.start()
        self.assertEqual(self.state("model"), model)
        self.assertEqual(self.state("model", {"version": 3}), history[3])
        _, again = self.req("GET", "/journal/events?dataset=model&limit=10000", who="analyst",
                            status=200)
        self.assertEqual(again, before_events)

    # ---- events ---------------------------------------------------------------------------------
    def test_events_and_history(self):
        self.create("people", [{"id": 1, "name": "alice", "score": 10, "city": "Chicago"},
                               {"id": 2, "name": "bob", "score": 20, "city": "Austin"}])
        self.req("POST", "/datasets/people/rows",
                 {"upsert": [{"id": 2, "score": 25}, {"id": 3, "name": "carol", "score": 30}],
                  "delete": [{"id": 1}], "source": "crm-sync", "workspace_id": "ws-a"}, status=201)
        self.req("POST", "/datasets/people/rows", {"upsert": [{"id": 2, "city": None}]},
                 who="owner", status=201)
        _, out = self.req("GET", "/journal/events?dataset=people", who="analyst", status=200)
        ev = [(e["version"], e["op"], json.loads(e["key"])["id"], e["field"],
               e["old_value"] and json.loads(e["old_value"]),
               e["new_value"] and json.loads(e["new_value"]), e["actor"]) for e in out["events"]
              if e["key"]]  # the create is one dataset-level event (key null)
        self.assertEqual(sorted(ev, key=lambda x: (x[0], x[2], x[3])), [
            (2, "delete", 1, "city", "Chicago", None, "loader"),
            (2, "delete", 1, "id", 1, None, "loader"),
            (2, "delete", 1, "name", "alice", None, "loader"),
            (2, "delete", 1, "score", 10, None, "loader"),
            (2, "update", 2, "score", 20, 25, "loader"),
            (2, "insert", 3, "id", None, 3, "loader"),
            (2, "insert", 3, "name", None, "carol", "loader"),
            (2, "insert", 3, "score", None, 30, "loader"),
            (3, "update", 2, "city", "Austin", None, "owner"),
        ])
        first = [e for e in out["events"] if e["key"]][0]
        self.assertEqual((first["source"], first["workspace_id"]), ("crm-sync", "ws-a"))
        # filters and paging
        _, out = self.req("GET", "/journal/events?dataset=people&field=score&actor=loader",
                          who="analyst", status=200)
        self.assertEqual(len(out["events"]), 3)
        _, page1 = self.req("GET", "/journal/events?dataset=people&limit=4", who="analyst", status=200)
        _, page2 = self.req("GET", "/journal/events?dataset=people&limit=4&cursor=" +
                            page1["next_cursor"], who="analyst", status=200)
        _, page3 = self.req("GET", "/journal/events?dataset=people&limit=4&cursor=" +
                            page2["next_cursor"], who="analyst", status=200)
        self.assertEqual(len(page1["events"] + page2["events"] + page3["events"]), 10)
        self.assertIsNone(page3["next_cursor"])
        for path in ("/journal/events?dataset=people&colour=red",
                     "/journal/events?since=yesterday", "/journal/events?cursor=zz",
                     "/journal/events?limit=0", "/datasets/people/changes?sort=up"):
            st, out = self.req("GET", path, who="analyst")
            self.assertEqual((st, out["error"]["code"]), (400, "invalid_parameter"), path)
        st, out = self.req("GET", "/journal/events?dataset=nope", who="analyst")
        self.assertEqual(st, 404)
        _, out = self.req("GET", "/journal/events?dataset=people&until=2000-01-01", who="analyst",
                          status=200)
        self.assertEqual(out["events"], [])
        # the journal in SQL
        rows = self.query("SELECT op, count(*) AS n FROM _events WHERE dataset = 'people' "
                          "GROUP BY op ORDER BY op")
        self.assertEqual(rows, [{"op": "create", "n": 1}, {"op": "delete", "n": 4},
                                {"op": "insert", "n": 3}, {"op": "update", "n": 2}])
        # one record's history
        _, h = self.req("GET", "/datasets/people/rows/2/history", who="analyst", status=200)
        self.assertEqual(h["current"], {"id": 2, "name": "bob", "score": 25, "city": None})
        self.assertEqual([(x["version"], x["actor"], x["changes"]) for x in h["history"]], [
            (2, "loader", [{"field": "score", "old": 20, "new": 25}]),
            (3, "owner", [{"field": "city", "old": "Austin", "new": None}])])
        self.assertEqual(h["history"][0]["row"]["score"], 25)
        _, h = self.req("GET", "/datasets/people/rows/1/history", who="analyst", status=200)
        self.assertIsNone(h["current"])
        self.assertEqual(h["history"][0]["op"], "delete")
        st, out = self.req("GET", "/datasets/people/rows/notanumber/history", who="analyst")
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_key"))
        # the change feed
        _, ch = self.req("GET", "/datasets/people/changes?from_version=1&to_version=3",
                         who="analyst", status=200)
        self.assertEqual(ch["inserted"], [{"id": 3, "name": "carol", "score": 30, "city": None}])
        self.assertEqual(ch["deleted"], [{"id": 1, "name": "alice", "score": 10, "city": "Chicago"}])
        self.assertEqual(ch["updated"], [{"before": {"id": 2, "name": "bob", "score": 20, "city": "Austin"},
                                          "after": {"id": 2, "name": "bob", "score": 25, "city": None}}])
        st, out = self.req("GET", "/datasets/people/changes?from_version=3&to_version=2", who="analyst")
        self.assertEqual(st, 400)
        # as of a time before the first change
        _, ds = self.req("GET", "/catalog/datasets/people/versions", who="analyst", status=200)
        v1_time = ds["versions"][0]["created_at"]
        self.assertEqual(sorted(self.state("people", {"timestamp": v1_time})), [1, 2])
        st, out = self.req("POST", "/query", {"sql": "SELECT * FROM people",
                                              "as_of": {"timestamp": "1999-01-01"}}, who="analyst")
        self.assertEqual((st, out["error"]["code"]), (404, "dataset_not_found"))
        # appending files meets the deltas' keys: compact first; then the key is checked
        more = "/ingest/file?dataset=people&format=csv&mode=append"
        st, out = self.req("POST", more, "id,name,score,city\n7,gus,70,Boston\n")
        self.assertEqual((st, out["error"]["code"]), (409, "compaction_needed"))
        self.req("POST", "/datasets/people/compact", status=201)
        self.req("POST", more, "id,name,score,city\n7,gus,70,Boston\n", status=201)
        st, out = self.req("POST", more, "id,name,score,city\n7,gus,71,Boston\n")
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_primary_key"))
        self.assertEqual(sorted(self.state("people")), [2, 3, 7])
        _, ds = self.req("GET", "/catalog/datasets/people", who="analyst", status=200)
        self.assertEqual(ds["row_count"], 3)
        # resync of a dataset with deltas counts the merged rows
        self.req("POST", "/datasets/people/rows", {"delete": [{"id": 7}]}, status=201)
        _, out = self.req("POST", "/catalog/datasets/people/resync", status=200)
        self.assertEqual(out["row_count"], 2)

    # ---- bad input ----------------------------------------------------------------------------------
    def test_bad_rows(self):
        self.create("strict", [{"id": 1, "name": "a", "score": 1, "city": "x"}])
        before = self.state("strict")
        cases = [
            ({"upsert": [{"id": 2, "score": "high"}]}, "upsert[0]: 'score' must be BIGINT"),
            ({"upsert": [{"id": 2}, {"name": "no key"}]}, "upsert[1]: the primary key column 'id' is missing"),
            ({"upsert": [{"id": None}]}, "upsert[0]: the primary key column 'id' is null"),
            ({"upsert": [{"id": 2, "colour": "red"}]}, "upsert[0]: unknown column 'colour'"),
            ({"upsert": [{"id": 2}, {"id": 2}]}, "upsert[1] repeats the key of upsert[0]"),
            ({"upsert": [{"id": 2}], "delete": [{"id": 2}]}, "delete[0] repeats the key of upsert[0]"),
            ({"delete": [{"id": 1, "name": "a"}]}, "delete[0]: 'name' is not part of the primary key"),
            ({"upsert": ["not an object"]}, "upsert[0] is not an object"),
            ({"upsert": {"id": 1}}, "must be arrays"),
            ({}, "nothing to change"),
            ({"upsert": [{"id": 1}], "extra": 1}, "unknown field 'extra'"),
            ({"upsert": [{"id": 9}] * 1 + [{"id": 10, "score": 1.5}]}, "upsert[1]: 'score' must be BIGINT"),
        ]
        for body, words in cases:
            st, out = self.req("POST", "/datasets/strict/rows", body)
            self.assertEqual(st, 400, (body, out))
            self.assertIn(words, out["error"]["message"], body)
        self.assertEqual(self.state("strict"), before)
        _, ds = self.req("GET", "/catalog/datasets/strict", who="analyst", status=200)
        self.assertEqual(ds["version"], 1)
        st, out = self.req("POST", "/datasets/nope/rows", {"upsert": [{"id": 1}]})
        self.assertEqual(st, 404)
        st, out = self.req("POST", "/datasets/strict/rows", {"upsert": [{"id": 1}]}, who="analyst")
        self.assertEqual(st, 403)
        # a dataset without a primary key
        self.req("POST", "/ingest/file?dataset=nokey&format=csv", "a,b\n1,2\n", status=201)
        st, out = self.req("POST", "/datasets/nokey/rows", {"upsert": [{"a": 1}]})
        self.assertEqual((st, out["error"]["code"]), (400, "no_primary_key"))
        # declaring one later is checked against the data
        self.req("POST", "/ingest/file?dataset=dupes&format=csv", "a,b\n1,2\n1,3\n", status=201)
        st, out = self.req("PATCH", "/catalog/datasets/dupes", {"primary_key": ["a"]})
        self.assertEqual((st, out["error"]["code"]), (400, "invalid_primary_key"))
        self.assertIn('{"a":1}', out["error"]["message"])
        self.req("PATCH", "/catalog/datasets/nokey", {"primary_key": ["a"]}, status=200)
        self.req("POST", "/datasets/nokey/rows", {"upsert": [{"a": 1, "b": 5}]}, status=201)
        self.assertEqual(self.query("SELECT * FROM nokey"), [{"a": 1, "b": 5}])

    # ---- concurrency and crashes ---------------------------------------------------------------------
    def test_concurrent_writers_one_wins(self):
        self.create("race", [{"id": i, "name": "r", "score": 0, "city": "c"} for i in range(1, 5000)])
        big = {"upsert": [{"id": i, "score": 1} for i in range(1, 5000)]}
        results = []

        def write():
            results.append(self.srv.request("POST", "/datasets/race/rows", big, who="loader")[0])
        threads = [threading.Thread(target=write) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertIn(201, results)
        # 409: lost the race; 200 unchanged: began after the winner committed the same values
        self.assertTrue(all(s in (200, 201, 409) for s in results), results)
        _, ds = self.req("GET", "/catalog/datasets/race", who="analyst", status=200)
        self.assertEqual(ds["version"], 1 + results.count(201))

    def test_crash_between_store_and_commit(self):
        srv = harness.Server(principals=[("loader", WRITER, ["writer"])],
                             env={"LAKEHOUSE_FAULT_CRASH": "rows_before_manifest"}).start()
        try:
            csv = "id,name\n1,a\n2,b\n"
            st, _, _ = srv.request("POST", "/ingest/file?dataset=c&format=csv&primary_key=id", csv,
                                   who="loader")
            self.assertEqual(st, 201)
            with self.assertRaises(Exception):
                srv.request("POST", "/datasets/c/rows", {"upsert": [{"id": 1, "name": "changed"}]},
                            who="loader")
            srv.proc.wait(10)
            self.assertNotEqual(srv.proc.returncode, 0)
            # the change's files were stored: a delta and an events batch, but no version 2
            # (beside the create's batch)
            journal = os.path.join(srv.data_dir, "buckets", "primary", "_journal", "events")
            self.assertEqual(len(os.listdir(journal)), 2)
            srv.log.close()
            srv.env.pop("LAKEHOUSE_FAULT_CRASH")
            srv.start()
            st, _, ds = srv.request("GET", "/catalog/datasets/c", who="loader")
            self.assertEqual(ds["version"], 1)
            st, _, out = srv.request("POST", "/query", {"sql": "SELECT name FROM c ORDER BY id"},
                                     who="loader")
            self.assertEqual([r["name"] for r in out["rows"]], ["a", "b"])
            st, _, ev = srv.request("GET", "/journal/events", who="loader")
            # the orphaned batch is never served: only the create's event
            self.assertEqual([e["op"] for e in ev["events"]], ["create"])
            # the next change commits as version 2, and only its events count
            st, _, out = srv.request("POST", "/datasets/c/rows", {"upsert": [{"id": 2, "name": "z"}]},
                                     who="loader")
            self.assertEqual((st, out["version"]), (201, 2))
            srv.stop()
            srv.start()
            st, _, ev = srv.request("GET", "/journal/events", who="loader")
            self.assertEqual([(e["field"], e["new_value"]) for e in ev["events"] if e["key"]],
                             [("name", '"z"')])
        finally:
            srv.stop()
            srv.cleanup()

    def test_retention_expires_versions_keeps_history(self):
        import time
        srv = harness.Server(principals=[("owner", ADMIN, ["admin"])],
                             extra_toml="\n[catalog]\nretain_versions_s = 1\n"
                                        "compact_after_deltas = 0\n").start()
        try:
            def call(method, path, body=None, status=None):
                st, _, out = srv.request(method, path, body, who="owner")
                if status:
                    self.assertEqual(st, status, out)
                return out
            call("POST", "/ingest/file?dataset=r&format=csv&primary_key=id", "id,v\n1,a\n2,b\n",
                 status=201)
            call("POST", "/datasets/r/rows", {"upsert": [{"id": 1, "v": "x"}]}, status=201)
            call("POST", "/datasets/r/rows", {"delete": [{"id": 2}]}, status=201)
            call("POST", "/datasets/r/compact", status=201)  # version 4: one base file
            data = os.path.join(srv.data_dir, "buckets", "primary", "datasets", "r", "data")
            self.assertEqual(len(os.listdir(data)), 4)
            time.sleep(1.2)
            call("POST", "/datasets/r/rows", {"upsert": [{"id": 3, "v": "c"}]}, status=201)  # v5
            out = call("POST", "/maintenance/sweep?grace_s=0", status=200)
            # every version older than a second, never the newest
            self.assertEqual(sorted(e["version"] for e in out["expired"]), [1, 2, 3, 4])
            # the files only versions 1-3 used are gone; version 5 keeps the compacted base
            self.assertEqual(len(os.listdir(data)), 2)
            self.assertEqual(call("POST", "/query", {"sql": "SELECT * FROM r ORDER BY id"})["rows"],
                             [{"id": 1, "v": "x"}, {"id": 3, "v": "c"}])
            self.assertEqual(call("POST", "/query", {"sql": "SELECT count(*) AS n FROM r",
                                                     "as_of": {"version": 5}})["rows"], [{"n": 2}])
            st, _, out = srv.request("POST", "/query", {"sql": "SELECT * FROM r",
                                                        "as_of": {"version": 4}}, who="owner")
            self.assertEqual((st, out["error"]["code"]), (404, "version_not_found"))
            # history is never deleted: every event is still served, also after a restart
            srv.stop()
            srv.start()
            ev = call("GET", "/journal/events?dataset=r", status=200)["events"]
            self.assertEqual(sorted({e["version"] for e in ev}), [1, 2, 3, 5])
            h = call("GET", "/datasets/r/rows/2/history", status=200)
            self.assertEqual([x["op"] for x in h["history"]], ["delete"])
        finally:
            srv.stop()
            srv.cleanup()

    def test_kill_9_during_commits(self):
        """kill -9 at random moments while changes commit back to back: after each restart
        every committed change has its events and no event belongs to a change that did not
        commit."""
        import signal
        import time
        srv = harness.Server(principals=[("loader", WRITER, ["writer"])],
                             extra_toml="\n[catalog]\ncompact_after_deltas = 0\n").start()
        rnd = random.Random(11)
        try:
            st, _, _ = srv.request("POST", "/ingest/file?dataset=k&format=csv&primary_key=id",
                                   "id,v\n" + "".join("%d,0\n" % i for i in range(1, 200)),
                                   who="loader")
            self.assertEqual(st, 201)
            for round_ in range(3):
                stop = threading.Event()

                def writer(base=round_ * 1000000):
                    n = base  # values never repeat, so every commit changes a field
                    while not stop.is_set():
                        n += 1
                        try:
                            srv.request("POST", "/datasets/k/rows",
                                        {"upsert": [{"id": rnd.randint(1, 300), "v": n}]},
                                        who="loader")
                        except Exception:
                            return
                t = threading.Thread(target=writer)
                t.start()
                time.sleep(0.3 + rnd.random() * 0.7)
                srv.proc.send_signal(signal.SIGKILL)
                srv.proc.wait()
                stop.set()
                t.join()
                srv.log.close()
                srv.start()
                st, _, vs = srv.request("GET", "/catalog/datasets/k/versions?limit=1000", who="loader")
                rows_versions = {v["version"] for v in vs["versions"] if v["change"] == "rows"}
                st, _, ev = srv.request("GET", "/journal/events?dataset=k&limit=10000", who="loader")
                event_versions = {e["version"] for e in ev["events"] if e["key"]}
                self.assertTrue(rows_versions, "round %d committed nothing" % round_)
                self.assertEqual(event_versions, rows_versions, "round %d" % round_)
        finally:
            srv.stop()
            srv.cleanup()

    def test_crash_after_commit_keeps_both(self):
        srv = harness.Server(principals=[("loader", WRITER, ["writer"])],
                             env={"LAKEHOUSE_FAULT_CRASH": "rows_after_manifest"}).start()
        try:
            st, _, _ = srv.request("POST", "/ingest/file?dataset=d&format=csv&primary_key=id",
                                   "id,name\n1,a\n", who="loader")
            self.assertEqual(st, 201)
            with self.assertRaises(Exception):
                srv.request("POST", "/datasets/d/rows", {"upsert": [{"id": 1, "name": "b"}]},
                            who="loader")
            srv.proc.wait(10)
            srv.log.close()
            srv.env.pop("LAKEHOUSE_FAULT_CRASH")
            srv.start()
            st, _, out = srv.request("POST", "/query", {"sql": "SELECT name FROM d"}, who="loader")
            self.assertEqual(out["rows"], [{"name": "b"}])
            st, _, ev = srv.request("GET", "/journal/events?dataset=d", who="loader")
            self.assertEqual([(e["version"], e["new_value"]) for e in ev["events"] if e["key"]],
                             [(2, '"b"')])
        finally:
            srv.stop()
            srv.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
