"""End-to-end: what file ingest makes of awkward input. Rows whose field count disagrees
with the header are refused (or, when asked, skipped or padded and reported), never
reshaped; integers past int64 stay exact (DECIMAL(38,0)) or become strings."""
import os
import sys
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

WRITER, READER = "tok-writer-csv-0001", "tok-reader-csv-0001"


def ingest_path(**params):
    return "/ingest/file?" + urllib.parse.urlencode(params)


def ragged_1000():
    lines = ["id,name,score"]
    for i in range(1, 1001):
        lines.append("%d,n%d,%d%s" % (i, i, i * 2, ",extra" if i == 500 else ""))
    return "\n".join(lines) + "\n"


class CsvInput(harness.ServerTestCase):
    principals = [("loader", WRITER, ["writer"]), ("analyst", READER, ["reader"])]

    def ingest(self, body, **params):
        return self.srv.request("POST", ingest_path(**params), body=body, who="loader",
                                headers={"Content-Type": "text/csv"})

    def sql(self, sql):
        st, _, res = self.srv.request("POST", "/query", body={"sql": sql}, who="analyst")
        self.assertEqual(st, 200, res)
        return res["rows"]

    def exists(self, name):
        st, _, _ = self.srv.request("GET", "/catalog/datasets/" + name, who="analyst")
        return st == 200

    def wait_job(self, job):
        for _ in range(400):
            st, _, job = self.srv.request("GET", "/jobs/" + job["id"], who="loader")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        self.fail("job did not end: %s" % job)

    def types(self, res):
        return {c["name"]: c["type"] for c in res["columns"]}

    # ---- finding 1: ragged rows ----------------------------------------------------------

    def assert_ragged(self, st, err, line, expected, found):
        self.assertEqual(st, 400, err)
        e = err["error"]
        self.assertEqual(e["code"], "ragged_rows", e)
        self.assertIn("line %d" % line, e["message"] + " " + e["detail"])
        text = e["message"] + " " + e["detail"]
        self.assertIn("%d" % expected, text)
        self.assertIn("%d" % found, text)
        self.assertIn("on_bad_rows", e["hint"])

    def test_ragged_short_and_long_rows_are_refused(self):
        st, _, err = self.ingest("a,b,c\n1,2,3\n4,5\n6,7,8,9\n", dataset="rag1", format="csv")
        self.assert_ragged(st, err, 3, 3, 2)
        self.assertIn("2 lines", err["error"]["detail"])
        self.assertFalse(self.exists("rag1"))

    def test_ragged_row_in_the_middle_is_refused(self):
        st, _, err = self.ingest(ragged_1000(), dataset="rag1000", format="csv")
        self.assert_ragged(st, err, 501, 3, 4)
        self.assertFalse(self.exists("rag1000"))

    def test_ragged_row_after_the_sample_is_refused(self):
        lines = ["id,name"] + ["%d,x%d" % (i, i) for i in range(1, 100001)]
        lines[90001] += ",oops"
        st, _, err = self.ingest("\n".join(lines) + "\n", dataset="rag_late", format="csv")
        self.assert_ragged(st, err, 90002, 2, 3)

    def test_ragged_async_job_fails_the_same_way(self):
        st, _, job = self.ingest(ragged_1000(), dataset="rag_async", format="csv",
                                 **{"async": "true"})
        self.assertEqual(st, 202, job)
        job = self.wait_job(job)
        self.assertEqual(job["state"], "failed", job)
        self.assertEqual(job["error"]["code"], "ragged_rows", job)
        self.assertIn("line 501", job["error"]["message"] + job["error"]["detail"])

    def test_on_bad_rows_skip(self):
        st, _, res = self.ingest(ragged_1000(), dataset="rag_skip", format="csv",
                                 on_bad_rows="skip")
        self.assertEqual(st, 201, res)
        self.assertEqual(res["rows"], 999)
        self.assertEqual(self.types(res), {"id": "BIGINT", "name": "VARCHAR", "score": "BIGINT"})
        self.assertEqual(res["bad_rows"], {"count": 1, "action": "skipped", "first_lines": [501]})
        self.assertEqual(self.sql("SELECT count(*) AS n FROM rag_skip WHERE id = 500"), [{"n": 0}])

    def test_on_bad_rows_null_pad(self):
        st, _, res = self.ingest("a,b,c\n1,2,3\n4,5\n7,8,9\n", dataset="rag_pad", format="csv",
                                 on_bad_rows="null_pad")
        self.assertEqual(st, 201, res)
        self.assertEqual(res["rows"], 3)
        self.assertEqual(res["bad_rows"], {"count": 1, "action": "null_padded", "first_lines": [3]})
        self.assertEqual(self.sql("SELECT a, b, c FROM rag_pad ORDER BY a"),
                         [{"a": 1, "b": 2, "c": 3}, {"a": 4, "b": 5, "c": None},
                          {"a": 7, "b": 8, "c": 9}])
        # a line with too many fields cannot be padded: refused, naming it
        st, _, err = self.ingest("a,b,c\n1,2,3\n4,5\n6,7,8,9\n", dataset="rag_pad2", format="csv",
                                 on_bad_rows="null_pad")
        self.assert_ragged(st, err, 4, 3, 4)

    def test_on_bad_rows_is_checked(self):
        st, _, err = self.ingest("a\n1\n", dataset="rag_param", format="csv", on_bad_rows="drop")
        self.assertEqual((st, err["error"]["code"]), (400, "invalid_parameter"), err)
        self.assertIn("on_bad_rows", err["error"]["message"])

    def test_ragged_append_is_refused(self):
        st, _, res = self.ingest("a,b,c\n1,2,3\n", dataset="rag_app", format="csv")
        self.assertEqual(st, 201, res)
        st, _, err = self.ingest("a,b,c\n4,5,6\n7,8\n", dataset="rag_app", format="csv",
                                 mode="append")
        self.assert_ragged(st, err, 3, 3, 2)
        st, _, res = self.ingest("a,b,c\n4,5,6\n7,8\n", dataset="rag_app", format="csv",
                                 mode="append", on_bad_rows="skip")
        self.assertEqual(st, 201, res)
        self.assertEqual((res["rows"], res["total_rows"]), (1, 2))
        self.assertEqual(res["bad_rows"]["first_lines"], [3])

    def test_well_formed_awkward_files_still_load(self):
        # quoted fields with embedded newlines and delimiters
        st, _, res = self.ingest('id,txt,n\n1,"a,b\nc",3\n2,"x",4\n3,,5\n', dataset="quoted",
                                 format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(res["rows"], 3)
        self.assertNotIn("bad_rows", res)
        self.assertEqual(self.sql("SELECT txt FROM quoted WHERE id = 1"), [{"txt": "a,b\nc"}])
        # CRLF line ends and a trailing empty line are not ragged
        st, _, res = self.ingest("a,b,c\r\n1,2,3\r\n4,5,6\r\n", dataset="crlf", format="csv")
        self.assertEqual((st, res.get("rows")), (201, 2), res)
        st, _, res = self.ingest("a,b,c\n1,2,3\n4,5,6\n\n", dataset="trailing_blank", format="csv")
        self.assertEqual((st, res.get("rows")), (201, 2), res)
        # ADR-010: a mixed column after the sniffer's sample becomes VARCHAR
        lines = ["id,code"] + ["%d,%s" % (i, "N/A" if i == 25000 else i) for i in range(1, 30001)]
        st, _, res = self.ingest("\n".join(lines) + "\n", dataset="late_mixed", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual((res["rows"], self.types(res)["code"]), (30000, "VARCHAR"))

    # ---- finding 2: integers past int64 ---------------------------------------------------

    def test_big_integers_stay_exact(self):
        body = ("id,acct,neg,small\n"
                "1,9223372036854775808,-9223372036854775809,1\n"
                "2,12345678901234567890123,-12345678901234567890123,2\n"
                "3,12345678901234567890123456789012345678,-5,3\n"
                "4,,7,4\n")
        st, _, res = self.ingest(body, dataset="accounts", format="csv")
        self.assertEqual(st, 201, res)
        t = self.types(res)
        self.assertEqual(t["id"], "BIGINT")
        self.assertEqual(t["acct"], "DECIMAL(38,0)")
        self.assertEqual(t["neg"], "DECIMAL(38,0)")
        rows = self.sql("SELECT id, CAST(acct AS VARCHAR) AS acct, CAST(neg AS VARCHAR) AS neg "
                        "FROM accounts ORDER BY id")
        self.assertEqual([(r["acct"], r["neg"]) for r in rows],
                         [("9223372036854775808", "-9223372036854775809"),
                          ("12345678901234567890123", "-12345678901234567890123"),
                          ("12345678901234567890123456789012345678", "-5"),
                          (None, "7")])

    def test_too_wide_integers_become_strings(self):
        forty = "1234567890123456789012345678901234567890"
        st, _, res = self.ingest("id,acct\n1,%s\n2,5\n" % forty, dataset="wide", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.types(res)["acct"], "VARCHAR")
        self.assertEqual(self.sql("SELECT acct FROM wide ORDER BY id"),
                         [{"acct": forty}, {"acct": "5"}])
        # a big integer beside a decimal: no exact numeric type holds both → string
        st, _, res = self.ingest("id,v\n1,1.5\n2,12345678901234567890123\n", dataset="wide_mixed",
                                 format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.types(res)["v"], "VARCHAR")
        self.assertEqual(self.sql("SELECT v FROM wide_mixed WHERE id = 2"),
                         [{"v": "12345678901234567890123"}])

    def test_big_integer_after_the_sample(self):
        lines = ["id,acct"] + ["%d,%d" % (i, i) for i in range(1, 30001)]
        lines[25000] = "25000,12345678901234567890123"
        st, _, res = self.ingest("\n".join(lines) + "\n", dataset="late_big", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.types(res)["acct"], "DECIMAL(38,0)")
        self.assertEqual(self.sql("SELECT CAST(acct AS VARCHAR) AS a FROM late_big WHERE id = 25000"),
                         [{"a": "12345678901234567890123"}])

    def test_decimals_stay_double(self):
        st, _, res = self.ingest("id,x\n1,1.5\n2,2\n3,-0.25\n", dataset="decimals", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.types(res)["x"], "DOUBLE")
        # read as DOUBLE, then checked on the written file: 15 digits are exact, 16 are not
        st, _, res = self.ingest("id,x\n1,0.5\n2,999999999999999\n3,-999999999999999\n",
                                 dataset="decimals15", format="csv")
        self.assertEqual((st, self.types(res).get("x")), (201, "DOUBLE"), res)
        self.assertEqual(self.sql("SELECT CAST(CAST(x AS BIGINT) AS VARCHAR) AS x FROM decimals15 "
                                  "WHERE id > 1 ORDER BY id"),
                         [{"x": "999999999999999"}, {"x": "-999999999999999"}])
        st, _, res = self.ingest("id,x\n1,0.5\n2,1234567890123457\n", dataset="decimals16",
                                 format="csv")
        self.assertEqual((st, self.types(res).get("x")), (201, "VARCHAR"), res)
        self.assertEqual(self.sql("SELECT x FROM decimals16 WHERE id = 2"), [{"x": "1234567890123457"}])
        # a NaN fails the check too (it is larger than any number) and stays a DOUBLE NaN
        st, _, res = self.ingest("id,x\n1,0.5\n2,nan\n", dataset="decimals_nan", format="csv")
        self.assertEqual((st, self.types(res).get("x")), (201, "DOUBLE"), res)
        self.assertEqual(self.sql("SELECT isnan(x) AS n FROM decimals_nan WHERE id = 2"), [{"n": True}])

    # ---- the first conversion's small sample ------------------------------------------------

    def test_small_sample_is_confirmed(self):
        # quotes appear only after the rows a small sample reads: the sniff that decides
        # must see them, or every later value would keep its quote marks
        lines = ["id,n,name"] + ["%d,%d,%s" % (i, 2 * i, ('"x%d"' if i > 3000 else "x%d") % i)
                                 for i in range(1, 30001)]
        st, _, res = self.ingest("\n".join(lines) + "\n", dataset="late_quotes", format="csv")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.sql("SELECT name FROM late_quotes WHERE id IN (2999, 29000) ORDER BY id"),
                         [{"name": "x2999"}, {"name": "x29000"}])
        # a column empty in every row a small sample reads: typed by the default sample
        lines = ["id,late"] + ["%d,%s" % (i, "" if i <= 3000 else str(i)) for i in range(1, 30001)]
        st, _, res = self.ingest("\n".join(lines) + "\n", dataset="late_values", format="csv")
        self.assertEqual((st, self.types(res).get("late")), (201, "BIGINT"), res)
        self.assertEqual(self.sql("SELECT count(late) AS n FROM late_values"), [{"n": 27000}])

    def test_big_integers_in_json(self):
        body = ('[{"id": 1, "acct": 12345678901234567890123, "x": 1.5},'
                ' {"id": 2, "acct": -9223372036854775809, "x": 2}]')
        st, _, res = self.ingest(body, dataset="json_big", format="json")
        self.assertEqual(st, 201, res)
        t = self.types(res)
        self.assertEqual((t["acct"], t["x"]), ("DECIMAL(38,0)", "DOUBLE"))
        self.assertEqual(self.sql("SELECT CAST(acct AS VARCHAR) AS a FROM json_big ORDER BY id"),
                         [{"a": "12345678901234567890123"}, {"a": "-9223372036854775809"}])
        body = '{"id": 1, "acct": 1234567890123456789012345678901234567890}\n{"id": 2, "acct": 3}\n'
        st, _, res = self.ingest(body, dataset="ndjson_big", format="ndjson")
        self.assertEqual(st, 201, res)
        self.assertEqual(self.types(res)["acct"], "VARCHAR")
        self.assertEqual(self.sql("SELECT acct FROM ndjson_big ORDER BY id"),
                         [{"acct": "1234567890123456789012345678901234567890"}, {"acct": "3"}])


if __name__ == "__main__":
    unittest.main()
