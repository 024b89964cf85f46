"""End-to-end: the web console at /ui/, served by the server from files compiled into the
binary, driven in headless Chromium (Debian's chromium through puppeteer-core,
tests/e2e/ui/console.mjs): sign in, the catalog and a dataset's page, SQL (a 100,000-row
grid, a chart, completion, time travel, downloads, an error as the API gives it), search,
the trials plot and promote, a job's progress bar moving and its cancel, storage, agents,
a reader's view, and every page at phone width. Each page is also checked for console
errors, Content-Security-Policy violations and controls without labels. Screenshots go to
build*/tmp/ui-screens/. Also the file serving itself: gzip, ETag/304, headers, 404s.

Under the sanitizer build only the file serving runs: the browser scenarios call the
documented API, whose handlers the other suites already run under the sanitizers, and they
take a minute and more of a two-core machine there."""
import gzip
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "..", ".node")
DRIVER = os.path.join(HERE, "ui", "console.mjs")
SHOTS = os.path.join(harness.TMP, "ui-screens")
BROWSER = os.environ.get("LH_SANITIZED", "0") in ("", "0")

OWNER, READER = "tok-ui-owner-000001", "tok-ui-reader-00001"
PEOPLE = "id,name,city,score\n" + "".join(
    "%d,%s,%s,%d\n" % (i, n, c, s) for i, (n, c, s) in enumerate(
        [("alice", "Chicago", 10), ("bob", "Austin", 7), ("carol", "Chicago", 9),
         ("dave", "Miami", 4), ("erin", "Austin", 12)], start=1))
WORDS = ["kubernetes", "terraform", "nurse", "forklift", "payroll", "python", "welder",
         "recruiter", "chicago", "austin", "senior", "junior", "devops", "accountant"]


def docs_csv(n):
    lines = ["doc_id,body"]
    for i in range(n):
        w = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(8)]
        lines.append("%d,%s engineer %d" % (i, " ".join(w), i))
    return "\n".join(lines) + "\n"


class Console(harness.ServerTestCase):
    principals = [("owner", OWNER, ["admin"]), ("reader", READER, ["reader"])]

    @classmethod
    def setUpClass(cls):
        cls.start_server()
        if BROWSER:
            cls.seed()

    def setUp(self):
        if not BROWSER and not self._testMethodName.startswith(("test_files", "test_redirects")):
            self.skipTest("browser scenarios run in the release build only")

    @classmethod
    def seed(cls):
        os.makedirs(SHOTS, exist_ok=True)
        srv = cls.srv

        def ok(st, res, want=(200, 201, 202)):
            assert st in want, (st, res)
            return res

        ok(*srv.request("POST", "/ingest/file?dataset=people&format=csv&primary_key=id",
                        body=PEOPLE, who="owner", headers={"Content-Type": "text/csv"})[::2])
        ok(*srv.request("POST", "/datasets/people/rows", who="owner",
                        body={"upsert": [{"id": 2, "score": 25}, {"id": 6, "name": "frank",
                                                                   "city": "Boston", "score": 3}]})[::2])
        ok(*srv.request("POST", "/ingest/file?dataset=docs&format=csv", body=docs_csv(6000),
                        who="owner", headers={"Content-Type": "text/csv"})[::2])
        ok(*srv.request("POST", "/vectors/indexes", who="owner",
                        body={"name": "people_idx", "dataset": "people", "id_column": "id",
                              "text_column": "name", "async": False})[::2])
        ok(*srv.request("POST", "/vectors/indexes", who="owner",
                        body={"name": "docs_idx", "dataset": "docs", "id_column": "doc_id",
                              "text_column": "body", "async": False})[::2])
        ok(*srv.request("POST", "/vectors/hnsw/evals/e1/autogen", who="owner",
                        body={"index": "docs_idx", "n_queries": 20, "k": 5})[::2])
        st, _, res = srv.request("POST", "/vectors/hnsw/trial", who="owner", body={
            "index": "docs_idx", "eval": "e1",
            "configs": [{"m": m, "ef_construction": 40, "ef_search": ef}
                        for m in (8, 16) for ef in (10, 40, 80)]})
        ok(st, res)
        cls.wait_job(res["job_id"])
        ok(*srv.request("POST", "/tools", who="owner", body={
            "name": "people_in", "description": "People in one city",
            "input_schema": {"type": "object", "additionalProperties": False,
                             "required": ["city"], "properties": {"city": {"type": "string"}}},
            "kind": "sql", "binding": {"datasets": ["people"], "max_rows": 10,
                                       "query": "SELECT id, name FROM people WHERE city = $city"},
            "allow": {"roles": ["admin", "reader"]}})[::2])
        ok(*srv.request("POST", "/tools/people_in/call", who="owner",
                        body={"arguments": {"city": "Chicago"}})[::2])
        ok(*srv.request("POST", "/workspaces", who="owner",
                        body={"name": "chicago hires", "kind": "search"})[::2])

    @classmethod
    def wait_job(cls, job_id, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, _, job = cls.srv.request("GET", "/jobs/" + job_id, who="owner")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.1)
        raise AssertionError("job %s did not finish" % job_id)

    def drive(self, scenario, env=None):
        e = dict(os.environ, LH_NODE_DIR=NODE_DIR,
                 LH_TOKENS=json.dumps(self.srv.tokens), **(env or {}))
        p = subprocess.run(["node", DRIVER, "http://127.0.0.1:%d" % self.srv.port, scenario, SHOTS],
                           capture_output=True, env=e, timeout=240)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        out = json.loads(p.stdout)
        self.assertEqual(out["failures"], [], "%s (screenshots in %s)" % (out["failures"], SHOTS))
        return out["seen"]

    # ---- the files ----------------------------------------------------------------------

    def test_files_headers_gzip_etag(self):
        st, h, body = self.srv.request("GET", "/ui/")
        self.assertEqual(st, 200)
        self.assertIn("text/html", h["content-type"])
        self.assertIn('<script type="module" src="app.js">', body)
        csp = h["content-security-policy"]
        for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                     "frame-ancestors 'none'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe", csp)
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertEqual(h["referrer-policy"], "no-referrer")
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertNotIn("content-encoding", h)
        # gzip when asked, the same bytes once inflated
        st, hz, _ = self.srv.request("GET", "/ui/app.js", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(hz["content-encoding"], "gzip")
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=10)
        c.request("GET", "/ui/app.js", headers={"Accept-Encoding": "gzip, deflate"})
        r = c.getresponse()
        z = r.read()
        c.request("GET", "/ui/app.js", headers={"Accept-Encoding": "gzip;q=0"})
        r2 = c.getresponse()
        plain = r2.read()
        c.close()
        self.assertIsNone(r2.getheader("Content-Encoding"))
        self.assertEqual(gzip.decompress(z), plain)
        self.assertIn(b"import", plain)
        # ETag: a revalidation costs no body
        etag = h["etag"]
        st, h304, body = self.srv.request("GET", "/ui/", headers={"If-None-Match": etag})
        self.assertEqual(st, 304)
        self.assertEqual(body, "")
        st, _, _ = self.srv.request("GET", "/ui/", headers={"If-None-Match": 'W/"0000"'})
        self.assertEqual(st, 200)
        # the pinned libraries are there, with their types
        for path, ctype in (("/ui/lib/codemirror.js", "text/javascript"),
                            ("/ui/lib/uPlot.esm.js", "text/javascript"),
                            ("/ui/lib/codemirror.css", "text/css"), ("/ui/style.css", "text/css")):
            st, h, _ = self.srv.request("GET", path)
            self.assertEqual((st, h["content-type"].split(";")[0]), (200, ctype), path)
        # HEAD: headers, no body
        st, h, body = self.srv.request("HEAD", "/ui/app.js")
        self.assertEqual((st, body), (200, ""))

    def test_redirects_and_bad_paths(self):
        for path in ("/", "/ui"):
            st, h, body = self.srv.request("GET", path)
            self.assertEqual((st, h["location"]), (308, "/ui/"), path)
        for path in ("/ui/nope.js", "/ui/../health", "/ui/%2e%2e/%2e%2e/etc/passwd",
                     "/ui/lib/../../etc/passwd", "/ui/index.html%00.js", "/ui/" + "a" * 5000,
                     "/ui/lib/", "/ui//app.js"):
            st, h, body = self.srv.request("GET", path)
            self.assertIn(st, (404, 400, 414), path)
            if st == 404 and isinstance(body, dict) and "error" in body:
                self.assertIn(body["error"]["code"], ("not_found", "route_not_found"), path)
        st, h, body = self.srv.request("POST", "/ui/app.js", body="x", who="owner")
        self.assertEqual(st, 405)
        self.assertIn("GET", h["allow"])

    def test_files_need_no_token_and_api_still_does(self):
        st, _, _ = self.srv.request("GET", "/ui/app.js", token="wrong-token-000000")
        self.assertEqual(st, 200)
        st, _, body = self.srv.request("GET", "/catalog/datasets")
        self.assertEqual(st, 401)

    # ---- in the browser -----------------------------------------------------------------

    def test_sign_in_first_load_and_keyboard(self):
        seen = self.drive("signin")
        self.assertIn("token", seen["bad_token_error"].lower())
        self.assertEqual(seen["stored"], ["lakehouse.token"])
        self.assertNotIn(OWNER, seen["url"])
        first = seen["first_load"]
        paths = {f["url"] for f in first}
        self.assertTrue({"/ui/", "/ui/app.js", "/ui/lib/codemirror.js", "/ui/lib/uPlot.esm.js"}
                        <= paths, paths)
        total = sum(f["encoded"] for f in first)
        self.assertLess(total, 400 * 1024, first)
        self.assertLess(total, sum(f["decoded"] for f in first) / 2)  # it was compressed
        self.assertEqual(seen["first_tab"], "Search")
        self.assertEqual(seen["first_focusable"], "Skip to content")
        self.assertEqual(seen["tab_order"][:4], ["Skip to content", "lakehouse", "Catalog", "SQL"])
        self.assertEqual(seen["after_skip"], "view")
        print("first load: %d bytes compressed, %d decoded" % (
            total, sum(f["decoded"] for f in first)), file=sys.stderr)

    def test_catalog_and_dataset_page(self):
        seen = self.drive("catalog")
        self.assertEqual(sorted(seen["datasets"]), ["docs", "people"])
        self.assertEqual(seen["fresh_badges"], ["unknown", "unknown"])
        self.assertEqual(seen["filtered"], ["people"])
        self.assertEqual(seen["columns"][:4], ["id", "name", "city", "score"])
        self.assertEqual(seen["preview_rows"], 6)
        self.assertRegex(seen["saved"], r"Saved as version \d+")
        self.assertTrue(seen["changes"].startswith("1 inserted, 1 updated, 0 deleted"), seen["changes"])
        self.assertTrue(any(h.startswith("History (") and h != "History (0)" for h in seen["history"]),
                        seen["history"])
        self.assertGreaterEqual(len(seen["versions"]), 3)
        st, _, ds = self.srv.request("GET", "/catalog/datasets/people", who="owner")
        self.assertEqual(ds["metadata"]["description"], "people of the console test")

    def test_sql(self):
        seen = self.drive("sql")
        self.assertIn("100,000 rows", seen["status"])
        self.assertEqual(seen["aria_rowcount"], "100001")
        self.assertLess(seen["drawn_rows"], 80)  # virtual: only what is in view
        self.assertLess(seen["drawn_after_scroll"], 80)
        self.assertEqual(seen["last_row"], "99999")
        print("grid: %.1f ms per scroll step over 100,000 rows" % seen["scroll_ms"], file=sys.stderr)
        self.assertGreater(seen["chart_canvas"][0], 100)
        self.assertIn("people", seen["hints"])
        self.assertEqual(seen["count_now"], "6")
        self.assertEqual(seen["count_v1"], "5")
        self.assertEqual(seen["error"]["message"], "the query is not valid")
        self.assertIn("400 invalid_sql", seen["error"]["code"])
        self.assertIn("nope", seen["error"]["detail"])
        self.assertEqual(seen["error"]["role"], "alert")
        self.assertEqual(seen["csv"], "a\n1\n")
        with open(os.path.join(SHOTS, "result.parquet"), "rb") as f:
            self.assertEqual(f.read(4), b"PAR1")
        with open(os.path.join(SHOTS, "result.csv")) as f:
            self.assertEqual(f.read().split("\n")[:3], ["i", "0", "1"])

    def test_search(self):
        seen = self.drive("search")
        self.assertTrue(seen["hits"])
        self.assertIn("name", seen["hit_headers"])
        self.assertIn("Score", seen["hit_headers"])
        self.assertIn("nope", seen["filter_error"])

    def test_trials_and_promote(self):
        seen = self.drive("trials")
        self.assertGreaterEqual(seen["trial_rows"], 6)
        self.assertIn("Pareto front", seen["legend"])
        self.assertTrue(seen["picked"].startswith("tr_"))
        st, _, jobs = self.srv.request("GET", "/jobs", who="owner")
        promote = [j for j in jobs["jobs"] if j["kind"] == "vector_promote" or
                   (j["result"] or {}).get("promoted_from")]
        job_id = seen["promoted"].split("job ")[1].split(" ")[0]
        job = self.wait_job(job_id)
        self.assertEqual(job["state"], "succeeded", job)
        self.assertEqual(job["result"]["promoted_from"]["trial_id"], seen["picked"])
        del promote
        self.assertEqual(seen["generations"], ["generation 2 live", "generation 1 "])
        self.assertEqual(seen["rolled_back"], "Generation 1 is live again.")

    def test_job_progress_and_cancel(self):
        st, _, res = self.srv.request("POST", "/vectors/hnsw/trial", who="owner", body={
            "index": "docs_idx", "eval": "e1",
            "configs": [{"m": 4 + i, "ef_construction": 100 + 4 * i, "ef_search": 20}
                        for i in range(64)]})
        self.assertEqual(st, 202, res)
        seen = self.drive("jobs", env={"LH_JOB_ID": res["job_id"]})
        moving = [v for v in seen["progress_values"] if not v.startswith("0/")]
        self.assertGreaterEqual(len(seen["progress_values"]), 2, seen)
        self.assertTrue(moving, seen)
        job = self.wait_job(res["job_id"])
        self.assertEqual(job["state"], "cancelled")
        self.assertLess(job["progress"]["done"], 64)

    def test_storage(self):
        seen = self.drive("storage")
        self.assertTrue(any("primary" in b and "ok" in b for b in seen["buckets"]), seen)

    def test_agents(self):
        seen = self.drive("agents")
        self.assertTrue(any(t.startswith("people_in") for t in seen["tools"]), seen)
        self.assertTrue(any("people_in" in r for r in seen["audit"]), seen)
        self.assertIn("replay matches", seen["replay"])
        self.assertIn("chicago hires", seen["workspace"])

    def test_reader_sees_no_edit_form(self):
        seen = self.drive("reader")
        self.assertEqual(seen["edit_forms"], 0)

    def test_phone_width(self):
        seen = self.drive("phone")
        for page, width in seen["overflow"].items():
            self.assertLessEqual(width, 390, "%s is %d px wide at 390 px" % (page, width))


if __name__ == "__main__":
    unittest.main()
