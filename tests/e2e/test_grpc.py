"""End-to-end: the gRPC door (:3101 in production; a free port here), driven by Debian's
python3-grpcio with stubs compiled from proto/ by python3-grpc-tools in the test: health,
reflection, every lakehouse.v1 service (Ingest against a real PostgreSQL server), and the
errors every door must give the
same way — no token, a wrong token, a role that may not, a tenant that may not see,
unknown names, malformed and oversized messages, deadlines, unknown methods — with the
API's code, detail and hint in the google.rpc.Status details."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import pgutil  # noqa: E402
from s3util import free_port  # noqa: E402

import grpc  # noqa: E402

SOURCE = os.environ.get("LH_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
OWNER, READER, AGENT, ACME = ("tok-grpc-owner-0001", "tok-grpc-reader-001", "tok-grpc-agent-0001",
                              "tok-grpc-acme-00001")
PEOPLE = "id,name,city,score\n1,alice,Chicago,10\n2,bob,Austin,7\n3,carol,Chicago,9\n"
ORDERS = "id,total\n1,9.5\n2,12\n"
PG_APP_PASSWORD = "grpc-app-Pw-4e1b77"
MAX_UPLOAD = 65536


def compile_protos(dest):
    """Stubs for the client. lakehouse/v1/* compile as they are (package lakehouse.v1,
    importing each other); the standard grpc.* and google.rpc files under a package of their
    own (lhproto.*), so the generated grpc.health.v1 modules do not shadow the grpc
    library."""
    shutil.copytree(os.path.join(SOURCE, "proto", "lakehouse"), os.path.join(dest, "lakehouse"))
    root = os.path.join(dest, "lhproto")
    shutil.copytree(os.path.join(SOURCE, "proto"), root)
    ours = ["lakehouse/v1/" + f for f in sorted(os.listdir(os.path.join(dest, "lakehouse", "v1")))]
    std = ["lhproto/grpc/health/v1/health.proto",
           "lhproto/grpc/reflection/v1alpha/reflection.proto", "lhproto/google/rpc/status.proto"]
    for files in (ours, std):
        subprocess.run(["/usr/bin/python3", "-m", "grpc_tools.protoc", "-I.", "-I/usr/include",
                        "--python_out=.", "--grpc_python_out=."] + files, cwd=dest, check=True)
    sys.path.insert(0, dest)


class Grpc(harness.ServerTestCase):
    principals = [("owner", OWNER, ["admin"]), ("reader", READER, ["reader"]),
                  ("agent", AGENT, ["agent"]), ("acme", ACME, ["writer"], ["acme"])]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="e2e-grpc-", dir=harness.TMP)
        cls.addClassCleanup(shutil.rmtree, cls.tmp, ignore_errors=True)
        compile_protos(cls.tmp)
        global c_pb, c_grpc, v_pb, v_grpc, h_pb, h_grpc, r_pb, r_grpc, st_pb, q_pb, q_grpc
        from lakehouse.v1 import query_pb2 as q_pb, query_pb2_grpc as q_grpc
        global t_pb, t_grpc, j_pb, j_grpc, w_pb, w_grpc, jobs_pb, jobs_grpc, i_pb, i_grpc
        from lakehouse.v1 import jobs_pb2 as jobs_pb, jobs_pb2_grpc as jobs_grpc
        from lakehouse.v1 import ingest_pb2 as i_pb, ingest_pb2_grpc as i_grpc
        from lakehouse.v1 import rows_pb2 as w_pb, rows_pb2_grpc as w_grpc
        from lakehouse.v1 import journal_pb2 as j_pb, journal_pb2_grpc as j_grpc
        from lakehouse.v1 import tools_pb2 as t_pb, tools_pb2_grpc as t_grpc
        from lakehouse.v1 import catalog_pb2 as c_pb, catalog_pb2_grpc as c_grpc
        from lakehouse.v1 import vectors_pb2 as v_pb, vectors_pb2_grpc as v_grpc
        from lhproto.grpc.health.v1 import health_pb2 as h_pb, health_pb2_grpc as h_grpc
        from lhproto.grpc.reflection.v1alpha import reflection_pb2 as r_pb
        from lhproto.grpc.reflection.v1alpha import reflection_pb2_grpc as r_grpc
        from lhproto.google.rpc import status_pb2 as st_pb
        cls.port = free_port()
        cls.pg = pgutil.Postgres().start()
        cls.addClassCleanup(cls.pg.stop)
        cls.pg.psql("CREATE ROLE app LOGIN PASSWORD '%s';"
                    "CREATE TABLE staff (id int PRIMARY KEY, name text, rate numeric(8,2));"
                    "INSERT INTO staff SELECT g, 'worker ' || g, g * 1.5 FROM generate_series(1, 5000) g;"
                    "GRANT SELECT ON staff TO app;" % PG_APP_PASSWORD)
        secrets = os.path.join(cls.tmp, "secrets.toml")
        with open(secrets, "w") as f:
            f.write('[pg_app]\npassword = "%s"\n' % PG_APP_PASSWORD)
        os.chmod(secrets, 0o600)

        def configure(srv):
            with open(srv.config, "a") as f:
                f.write('[[bucket]]\nname = "acme"\nbackend = "fs"\nroot = "%s"\n'
                        % os.path.join(srv.dir, "acme-root"))
                f.write('[secrets]\nfile = "%s"\n' % secrets)
        cls.start_server(configure=configure, env={
            "LAKEHOUSE_GRPC_PORT": str(cls.port), "LAKEHOUSE_GRPC_MAX_MESSAGE_BYTES": "1048576",
            "LAKEHOUSE_CATALOG_COMPACT_AFTER_DELTAS": "3",
            "LAKEHOUSE_INGEST_MAX_ROWS_PER_REQUEST": "50",
            "LAKEHOUSE_STORAGE_MAX_OBJECT_BYTES": str(MAX_UPLOAD)})
        for name, csv, extra in (("people", PEOPLE, "&primary_key=id"),
                                 ("ledger", "id,amount\n1,10\n2,20\n", "&primary_key=id"),
                                 ("acme_orders", ORDERS, "&bucket=acme")):
            st, _, res = cls.srv.request("POST", "/ingest/file?dataset=%s&format=csv%s" % (name, extra),
                                         body=csv, who="owner", headers={"Content-Type": "text/csv"})
            assert st == 201, res
        st, _, res = cls.srv.request("POST", "/vectors/indexes", who="owner", body={
            "name": "people_idx", "dataset": "people", "id_column": "id", "text_column": "name",
            "async": False})
        assert st in (200, 201), res
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        cls.addClassCleanup(cls.channel.close)
        cls.catalog = c_grpc.CatalogStub(cls.channel)
        cls.vectors = v_grpc.VectorsStub(cls.channel)
        cls.query = q_grpc.QueryStub(cls.channel)
        cls.tools = t_grpc.ToolsStub(cls.channel)
        cls.journal = j_grpc.JournalStub(cls.channel)
        cls.rows = w_grpc.RowsStub(cls.channel)
        cls.jobs = jobs_grpc.JobsStub(cls.channel)
        cls.ingest = i_grpc.IngestStub(cls.channel)
        for name, rate in (("people_in", {"per_minute": 6000, "burst": 1000}),
                           ("people_slow", {"per_minute": 1, "burst": 1})):
            st, _, res = cls.srv.request("POST", "/tools", who="owner", body={
                "name": name, "description": "People of a city with a least score",
                "input_schema": {"type": "object", "additionalProperties": False,
                                 "required": ["city"],
                                 "properties": {"city": {"type": "string"},
                                                "min_score": {"type": "integer", "minimum": 0}}},
                "kind": "sql", "binding": {"datasets": ["people"], "max_rows": 10, "query":
                    "SELECT id, name FROM people WHERE city = $city AND score >= "
                    "coalesce($min_score, 0) ORDER BY id"},
                "allow": {"roles": ["agent", "reader"]}, "rate": rate})
            assert st == 201, res
        # a second version of people, for time travel
        st, _, res = cls.srv.request("POST", "/datasets/people/rows", who="owner",
                                     body={"upsert": [{"id": 4, "name": "dave", "city": "Miami",
                                                       "score": 4}]})
        assert st == 201, res

    def md(self, who):
        return [("authorization", "Bearer " + self.srv.tokens[who])]

    def fails(self, code, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kw)
        e = cm.exception
        self.assertEqual(e.code(), code, e.details())
        info = None
        for k, v in e.trailing_metadata() or ():
            if k == "grpc-status-details-bin":
                st = st_pb.Status.FromString(v)
                self.assertEqual(st.code, code.value[0])
                self.assertEqual(st.message, e.details())
                for d in st.details:
                    if d.type_url.endswith("google.rpc.ErrorInfo"):
                        info = st_pb.ErrorInfo.FromString(d.value)
        return e, info

    # ---- health and reflection --------------------------------------------------------

    def test_health(self):
        h = h_grpc.HealthStub(self.channel)
        self.assertEqual(h.Check(h_pb.HealthCheckRequest()).status,
                         h_pb.HealthCheckResponse.SERVING)
        self.assertEqual(h.Check(h_pb.HealthCheckRequest(service="lakehouse.v1.Vectors")).status,
                         h_pb.HealthCheckResponse.SERVING)
        self.fails(grpc.StatusCode.NOT_FOUND, h.Check, h_pb.HealthCheckRequest(service="nope.Svc"))
        # Watch: the status now; a watch the client cancels ends, the server goes on
        w = h.Watch(h_pb.HealthCheckRequest(service="lakehouse.v1.Query"))
        self.assertEqual(next(w).status, h_pb.HealthCheckResponse.SERVING)
        w.cancel()
        u = h.Watch(h_pb.HealthCheckRequest(service="nope.Svc"))
        self.assertEqual(next(u).status, h_pb.HealthCheckResponse.SERVICE_UNKNOWN)
        u.cancel()
        self.assertEqual(h.Check(h_pb.HealthCheckRequest()).status, h_pb.HealthCheckResponse.SERVING)
        # one left open until the server stops: it must not hold the shutdown up (the
        # class's clean exit checks that), and it says NOT_SERVING before it ends
        Grpc.open_watch = h.Watch(h_pb.HealthCheckRequest())
        self.assertEqual(next(Grpc.open_watch).status, h_pb.HealthCheckResponse.SERVING)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()  # stops the server (SIGTERM), which must exit 0
        if getattr(cls, "open_watch", None) is not None:
            rest = [m.status for m in cls.open_watch]
            assert rest == [h_pb.HealthCheckResponse.NOT_SERVING], rest

    def test_reflection(self):
        r = r_grpc.ServerReflectionStub(self.channel)
        reqs = [r_pb.ServerReflectionRequest(list_services=""),
                r_pb.ServerReflectionRequest(file_containing_symbol="lakehouse.v1.Vectors.Search"),
                r_pb.ServerReflectionRequest(file_containing_symbol="lakehouse.v1.Dataset"),
                r_pb.ServerReflectionRequest(file_by_filename="google/protobuf/struct.proto"),
                r_pb.ServerReflectionRequest(file_containing_symbol="no.Such")]
        out = list(r.ServerReflectionInfo(iter(reqs)))
        self.assertEqual(len(out), 5)
        names = {s.name for s in out[0].list_services_response.service}
        self.assertTrue({"lakehouse.v1.Catalog", "lakehouse.v1.Vectors", "grpc.health.v1.Health",
                         "grpc.reflection.v1alpha.ServerReflection"} <= names, names)
        from google.protobuf import descriptor_pb2
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in out[1].file_descriptor_response.file_descriptor_proto]
        self.assertEqual(files[0].name, "lakehouse/v1/vectors.proto")
        self.assertIn("google/protobuf/struct.proto", [f.name for f in files])  # its import
        self.assertEqual([m.name for m in files[0].service[0].method],
                         ["Search", "CreateIndex", "RefreshIndex", "PromoteIndex", "RollbackIndex"])
        self.assertEqual(descriptor_pb2.FileDescriptorProto.FromString(
            out[2].file_descriptor_response.file_descriptor_proto[0]).name, "lakehouse/v1/catalog.proto")
        self.assertEqual(out[4].error_response.error_code, 5)
        self.assertEqual(out[1].original_request.file_containing_symbol, "lakehouse.v1.Vectors.Search")

    # ---- catalog ------------------------------------------------------------------------

    # ---- query ---------------------------------------------------------------------------

    def run_query(self, who="owner", **kw):
        return list(self.query.Run(q_pb.QueryRequest(**kw), metadata=self.md(who)))

    def test_query_typed_batches(self):
        sql = ("SELECT i AS a, i * 1.5 AS b, 'x' || i AS s, i % 2 = 0 AS t, "
               "CASE WHEN i = 1 THEN NULL ELSE i END AS n, DATE '2024-01-02' + i::INTEGER AS d, "
               "[i, i] AS l, {'k': i} AS st FROM range(5) t(i) ORDER BY i")
        batches = self.run_query(sql=sql, batch_rows=2)
        self.assertEqual([b.rows for b in batches], [2, 2, 1])
        self.assertEqual([(c.name, c.type) for c in batches[0].columns],
                         [("a", "BIGINT"), ("b", "DECIMAL"), ("s", "VARCHAR"), ("t", "BOOLEAN"),
                          ("n", "BIGINT"), ("d", "DATE"), ("l", "LIST"), ("st", "STRUCT")])
        self.assertEqual(len(batches[1].columns), 0)  # the first batch only
        col = lambda i, f: [x for b in batches for x in getattr(b.values[i], f)]  # noqa: E731
        self.assertEqual(col(0, "ints"), [0, 1, 2, 3, 4])
        self.assertEqual(col(1, "doubles"), [0.0, 1.5, 3.0, 4.5, 6.0])
        self.assertEqual(col(2, "strings"), ["x0", "x1", "x2", "x3", "x4"])
        self.assertEqual(col(3, "bools"), [True, False, True, False, True])
        self.assertEqual(col(4, "ints"), [0, 0, 2, 3, 4])
        self.assertEqual(list(batches[0].values[4].nulls), [False, True])
        self.assertEqual(list(batches[1].values[4].nulls), [])  # no NULL in that batch
        self.assertEqual(col(5, "strings")[:2], ["2024-01-02", "2024-01-03"])
        self.assertEqual(col(6, "strings")[0], "[0,0]")
        self.assertEqual(col(7, "strings")[1], '{"k":1}')
        self.assertTrue(batches[-1].last)
        self.assertEqual((batches[-1].row_count, batches[-1].truncated), (5, False))
        # tricky text survives the cutting of rows out of the rendered answer
        tricky = ['a"b', "c\\d", "e}f]g,h", "{\"x\": [1]}", "\u00e9\u4e2d", ""]
        sql = "SELECT * FROM (VALUES %s) v(x)" % ", ".join(
            "('%s')" % t.replace("'", "''") for t in tricky)
        b = self.run_query(sql=sql)
        self.assertEqual(list(b[0].values[0].strings), tricky)
        # values past 64 bits and nested reals come as the engine wrote them, never as NULL
        b = self.run_query(sql="SELECT 18446744073709551615::UBIGINT AS u, [0.1::DOUBLE, NULL] AS l, "
                               "'NaN'::DOUBLE AS nan, NULL::UBIGINT AS n")
        v = b[0].values
        self.assertEqual((list(v[0].strings), list(v[0].nulls)), (["18446744073709551615"], []))
        self.assertEqual(list(v[1].strings), ["[0.1,null]"])
        self.assertEqual(list(v[2].nulls), [True])  # as POST /query writes NaN: null
        self.assertEqual(list(v[3].nulls), [True])

    def test_query_limits_and_parity(self):
        b = self.run_query(sql="SELECT * FROM range(10)", limit=3)
        self.assertEqual((sum(x.rows for x in b), b[-1].row_count, b[-1].truncated), (3, 3, True))
        big = self.run_query(sql="SELECT i, 'row ' || i AS s FROM range(200000) t(i)", limit=200000)
        self.assertEqual(sum(x.rows for x in big), 200000)
        self.assertGreater(len(big), 100)  # streamed in batches, not one message
        self.assertEqual(big[-1].row_count, 200000)
        sql = "SELECT id, name, city, score FROM people ORDER BY id"
        st, _, http = self.srv.request("POST", "/query", who="reader", body={"sql": sql})
        g = self.run_query("reader", sql=sql)
        self.assertEqual([x for b in g for x in b.values[1].strings],
                         [r["name"] for r in http["rows"]])
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.run_query,
                             sql="SELECT 1", batch_rows=1000000)

    def test_query_time_travel_and_tenants(self):
        now = self.run_query(sql="SELECT count(*) AS n FROM people")
        v1 = self.run_query(sql="SELECT count(*) AS n FROM people", as_of=q_pb.AsOf(version=1))
        self.assertEqual((now[0].values[0].ints[0], v1[0].values[0].ints[0]), (4, 3))
        per = self.run_query(sql="SELECT count(*) AS n FROM people",
                             as_of=q_pb.AsOf(datasets={"people": q_pb.AsOfPoint(version=1)}))
        self.assertEqual(per[0].values[0].ints[0], 3)
        e, info = self.fails(grpc.StatusCode.NOT_FOUND, self.run_query,
                             sql="SELECT count(*) FROM people", as_of=q_pb.AsOf(version=99))
        # a tenant's SQL does not see another bucket's datasets: as for an unknown name
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.run_query, "acme",
                             sql="SELECT * FROM people")
        self.assertIn("does not exist", info.metadata["detail"])
        b = self.run_query("acme", sql="SELECT count(*) FROM acme_orders")
        self.assertEqual(b[0].values[0].ints[0], 2)

    def test_query_refusals(self):
        e, info = self.fails(grpc.StatusCode.PERMISSION_DENIED, self.run_query, "agent",
                             sql="SELECT 1")
        e, info = self.fails(grpc.StatusCode.PERMISSION_DENIED, self.run_query,
                             sql="SELECT * FROM read_csv('/etc/passwd')")
        self.assertEqual(info.reason, "sql_forbidden")
        for sql in ("DELETE FROM people", "SELECT 1; SELECT 2", "ATTACH 'x.db'"):
            with self.assertRaises(grpc.RpcError) as cm:
                self.run_query(sql=sql)
            self.assertIn(cm.exception.code(), (grpc.StatusCode.PERMISSION_DENIED,
                                                grpc.StatusCode.INVALID_ARGUMENT), sql)
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.run_query, sql="")
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.run_query, sql="SELECT nope")
        self.assertEqual(info.reason, "invalid_sql")
        self.assertIn("nope", info.metadata["detail"])
        self.fails(grpc.StatusCode.UNAUTHENTICATED, lambda: list(self.query.Run(
            q_pb.QueryRequest(sql="SELECT 1"))))

    def test_query_deadline_cancel_and_dropped_client(self):
        t0 = time.time()
        with self.assertRaises(grpc.RpcError) as cm:
            list(self.query.Run(q_pb.QueryRequest(sql="SELECT count(*) FROM range(20000000000)"),
                                metadata=self.md("owner"), timeout=1.0))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        # cancelled mid-stream: the server stops, and every query slot comes back
        for _ in range(6):
            r = self.query.Run(q_pb.QueryRequest(sql="SELECT i FROM range(100000000) t(i)",
                                                 limit=100000000), metadata=self.md("owner"))
            next(r)
            r.cancel()
        # a client that goes away mid-stream
        ch = grpc.insecure_channel("127.0.0.1:%d" % self.port)
        r = q_grpc.QueryStub(ch).Run(q_pb.QueryRequest(sql="SELECT i FROM range(100000000) t(i)",
                                                       limit=100000000), metadata=self.md("owner"))
        next(r)
        ch.close()
        time.sleep(0.5)
        t0 = time.time()
        for _ in range(8):  # more than the principal's query slots, one after the other
            b = self.run_query(sql="SELECT 42 AS x")
            self.assertEqual(b[0].values[0].ints[0], 42)
        # a leaked slot would make these wait (2 slots per principal on 2 cores)
        self.assertLess(time.time() - t0, 10)

    # ---- journal -------------------------------------------------------------------------

    def test_journal(self):
        md = self.md("reader")
        evs = list(self.journal.Events(j_pb.EventsRequest(dataset="people"), metadata=md))
        st, _, http = self.srv.request("GET", "/journal/events?dataset=people", who="reader")
        self.assertEqual([(e.op, e.version, e.key, e.seq) for e in evs],
                         [(e["op"], e["version"], e["key"] or "", e["seq"]) for e in http["events"]])
        self.assertTrue(any(e.version == 2 and e.key for e in evs))  # the row of version 2
        self.assertEqual(evs[0].op, "create")
        self.assertEqual(len(list(self.journal.Events(j_pb.EventsRequest(dataset="people", limit=1),
                                                      metadata=md))), 1)
        # every dataset, for one not limited to buckets; a tenant must name its dataset
        self.assertGreaterEqual(len(list(self.journal.Events(j_pb.EventsRequest(), metadata=md))),
                                len(evs))
        self.fails(grpc.StatusCode.PERMISSION_DENIED, lambda: list(self.journal.Events(
            j_pb.EventsRequest(), metadata=self.md("acme"))))
        self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.journal.Events(
            j_pb.EventsRequest(dataset="people"), metadata=self.md("acme"))))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, lambda: list(self.journal.Events(
            j_pb.EventsRequest(dataset="people", since="yesterday"), metadata=md)))
        h = self.journal.History(j_pb.HistoryRequest(dataset="people", key="4"), metadata=md)
        self.assertEqual(h.current.fields["name"].string_value, "dave")
        self.assertEqual(h.key.fields["id"].number_value, 4)
        self.assertGreaterEqual(len(h.history), 1)
        ch = self.journal.Changes(j_pb.ChangesRequest(dataset="people", from_version=1,
                                                      to_version=2), metadata=md)
        self.assertEqual(([r.fields["name"].string_value for r in ch.inserted], len(ch.updated),
                          len(ch.deleted)), (["dave"], 0, 0))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.journal.Changes,
                   j_pb.ChangesRequest(dataset="people", from_version=99), metadata=md)
        self.fails(grpc.StatusCode.NOT_FOUND, self.journal.History,
                   j_pb.HistoryRequest(dataset="people", key="1"), metadata=self.md("acme"))
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.journal.History,
                   j_pb.HistoryRequest(dataset="people", key="1"), metadata=self.md("agent"))

    # ---- rows ----------------------------------------------------------------------------

    def test_rows(self):
        from google.protobuf import struct_pb2

        def s(d):
            x = struct_pb2.Struct()
            x.update(d)
            return x
        md = self.md("owner")
        r = self.rows.Change(w_pb.ChangeRowsRequest(dataset="ledger", upsert=[s({"id": 3, "amount": 30}),
                                                                         s({"id": 1, "amount": 11})],
                                                   source="grpc-test"), metadata=md)
        self.assertEqual((r.inserted, r.updated, r.deleted, r.row_count, r.version), (1, 1, 0, 3, 2))
        st, _, h = self.srv.request("GET", "/datasets/ledger/rows/1/history", who="owner")
        self.assertEqual(h["current"]["amount"], 11)
        self.assertEqual(h["history"][-1]["actor"], "owner")
        r = self.rows.Change(w_pb.ChangeRowsRequest(dataset="ledger", deletes=[s({"id": 99})]),
                             metadata=md)
        self.assertTrue(r.unchanged)
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.rows.Change,
                             w_pb.ChangeRowsRequest(dataset="ledger", upsert=[s({"id": 4, "colour": "red"})]),
                             metadata=md)
        self.assertEqual(info.reason, "invalid_row")
        self.assertIn("colour", e.details())
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.rows.Change,
                   w_pb.ChangeRowsRequest(dataset="ledger"), metadata=md)
        self.fails(grpc.StatusCode.RESOURCE_EXHAUSTED, self.rows.Change,
                   w_pb.ChangeRowsRequest(dataset="ledger",
                                          upsert=[s({"id": i, "amount": i}) for i in range(100, 160)]),
                   metadata=md)
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.rows.Change,
                   w_pb.ChangeRowsRequest(dataset="ledger", deletes=[s({"id": 1})]),
                   metadata=self.md("reader"))
        self.fails(grpc.StatusCode.NOT_FOUND, self.rows.Change,
                   w_pb.ChangeRowsRequest(dataset="ledger", deletes=[s({"id": 1})]),
                   metadata=self.md("acme"))
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.rows.Change,
                             w_pb.ChangeRowsRequest(dataset="acme_orders", deletes=[s({"id": 1})]),
                             metadata=self.md("acme"))
        self.assertEqual(info.reason, "no_primary_key")
        st, _, ds = self.srv.request("GET", "/catalog/datasets/ledger", who="owner")
        self.assertEqual(ds["version"], 2)  # nothing refused reached the dataset
        # the third delta file starts a compaction in the background
        for i in (5, 6):
            self.rows.Change(w_pb.ChangeRowsRequest(dataset="ledger", upsert=[s({"id": i, "amount": i})]),
                             metadata=md)
        deadline = time.time() + 60
        while time.time() < deadline:
            st, _, ds = self.srv.request("GET", "/catalog/datasets/ledger", who="owner")
            if ds["change"] == "compact":
                break
            time.sleep(0.1)
        self.assertEqual(ds["change"], "compact")
        st, _, jobs = self.srv.request("GET", "/jobs", who="owner")
        self.assertIn("compact", [j["kind"] for j in jobs["jobs"]])

    # ---- tools ---------------------------------------------------------------------------

    def test_tools(self):
        listed = self.tools.ListTools(t_pb.ListToolsRequest(), metadata=self.md("agent"))
        names = [t.name for t in listed.tools]
        self.assertIn("people_in", names)
        t = [t for t in listed.tools if t.name == "people_in"][0]
        self.assertEqual((t.kind, t.version, t.grants_write), ("sql", 1, False))
        self.assertEqual(t.input_schema.fields["required"].list_value.values[0].string_value, "city")
        from google.protobuf import struct_pb2
        args = struct_pb2.Struct()
        args.update({"city": "Chicago", "min_score": 10})
        r = self.tools.CallTool(t_pb.CallToolRequest(name="people_in", arguments=args),
                                metadata=self.md("agent"))
        rows = r.result.fields["rows"].list_value.values
        self.assertEqual([row.struct_value.fields["name"].string_value for row in rows], ["alice"])
        st, _, ds = self.srv.request("GET", "/catalog/datasets/people", who="owner")
        self.assertEqual(dict(r.dataset_versions)["people"], ds["version"])
        self.assertTrue(r.call_id.startswith("call_"))
        st, _, rec = self.srv.request("GET", "/audit/" + r.call_id, who="owner")
        self.assertEqual((st, rec["via"], rec["principal"], rec["outcome"]), (200, "grpc", "agent", "ok"))
        # bad arguments, as the schema names them
        bad = struct_pb2.Struct()
        bad.update({"city": "Chicago", "min_score": 1.5})
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.tools.CallTool,
                             t_pb.CallToolRequest(name="people_in", arguments=bad),
                             metadata=self.md("agent"))
        self.assertEqual(info.reason, "invalid_arguments")
        self.assertIn("/arguments/min_score", e.details() + info.metadata.get("detail", ""))
        self.fails(grpc.StatusCode.NOT_FOUND, self.tools.CallTool,
                   t_pb.CallToolRequest(name="no_such_tool"), metadata=self.md("agent"))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.tools.CallTool,
                   t_pb.CallToolRequest(name="people_in", arguments=args, workspace_id="w" * 200),
                   metadata=self.md("agent"))
        # acme may not read people's bucket: the tool is not there for it
        self.fails(grpc.StatusCode.NOT_FOUND, self.tools.CallTool,
                   t_pb.CallToolRequest(name="people_in", arguments=args), metadata=self.md("acme"))
        # a rate limit: RESOURCE_EXHAUSTED with the wait in google.rpc.RetryInfo
        slow = t_pb.CallToolRequest(name="people_slow", arguments=args)
        self.tools.CallTool(slow, metadata=self.md("reader"))
        with self.assertRaises(grpc.RpcError) as cm:
            self.tools.CallTool(slow, metadata=self.md("reader"))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        retry = None
        for k, v in cm.exception.trailing_metadata():
            if k == "grpc-status-details-bin":
                for d in st_pb.Status.FromString(v).details:
                    if d.type_url.endswith("google.rpc.RetryInfo"):
                        retry = st_pb.RetryInfo.FromString(d.value)
        self.assertIsNotNone(retry)
        self.assertGreaterEqual(retry.retry_delay.seconds, 1)

    def test_catalog_list_get_versions(self):
        res = self.catalog.ListDatasets(c_pb.ListDatasetsRequest(), metadata=self.md("owner"))
        self.assertEqual(sorted(d.name for d in res.datasets), ["acme_orders", "ledger", "people"])
        people = [d for d in res.datasets if d.name == "people"][0]
        self.assertEqual((people.row_count, people.column_count, people.freshness.status),
                         (4, 4, "unknown"))
        self.assertEqual(people.lineage.fields["format"].string_value, "csv")
        d = self.catalog.GetDataset(c_pb.GetDatasetRequest(name="people"), metadata=self.md("reader"))
        self.assertEqual([(c.name, c.type) for c in d.columns],
                         [("id", "BIGINT"), ("name", "VARCHAR"), ("city", "VARCHAR"), ("score", "BIGINT")])
        self.assertEqual(list(d.primary_key), ["id"])
        v = self.catalog.ListVersions(c_pb.ListVersionsRequest(name="people", limit=1),
                                      metadata=self.md("owner"))
        self.assertEqual(v.dataset, "people")
        self.assertEqual(v.versions[0].version, 1)
        # the same answer as the HTTP door
        st, _, http = self.srv.request("GET", "/catalog/datasets/people", who="reader")
        self.assertEqual(d.version, http["version"])
        self.assertEqual(d.created_at, http["created_at"])

    def test_patch(self):
        d = self.catalog.PatchDataset(c_pb.PatchDatasetRequest(
            name="people", paths=["description", "tags"], description="from gRPC", tags=["a", "b"]),
            metadata=self.md("owner"))
        self.assertEqual((d.description, list(d.tags), d.change), ("from gRPC", ["a", "b"], "patch"))
        st, _, http = self.srv.request("GET", "/catalog/datasets/people", who="owner")
        self.assertEqual(http["metadata"]["description"], "from gRPC")
        self.assertEqual(http["created_by"], "owner")
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.catalog.PatchDataset,
                             c_pb.PatchDatasetRequest(name="people", paths=["colour"]),
                             metadata=self.md("owner"))
        self.assertEqual(info.reason, "invalid_metadata")
        self.assertIn("hint", info.metadata)
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.catalog.PatchDataset,
                             c_pb.PatchDatasetRequest(name="people", paths=["sensitivity"],
                                                      sensitivity="secret"),
                             metadata=self.md("owner"))
        # readers may not
        e, info = self.fails(grpc.StatusCode.PERMISSION_DENIED, self.catalog.PatchDataset,
                             c_pb.PatchDatasetRequest(name="people", paths=["description"]),
                             metadata=self.md("reader"))
        self.assertEqual(info.reason, "forbidden")
        st, _, http = self.srv.request("GET", "/catalog/datasets/people", who="owner")
        self.assertEqual(http["metadata"]["description"], "from gRPC")  # nothing changed

    def test_tenant_sees_only_its_bucket(self):
        res = self.catalog.ListDatasets(c_pb.ListDatasetsRequest(), metadata=self.md("acme"))
        self.assertEqual([d.name for d in res.datasets], ["acme_orders"])
        e, info = self.fails(grpc.StatusCode.NOT_FOUND, self.catalog.GetDataset,
                             c_pb.GetDatasetRequest(name="people"), metadata=self.md("acme"))
        e2, info2 = self.fails(grpc.StatusCode.NOT_FOUND, self.catalog.GetDataset,
                               c_pb.GetDatasetRequest(name="never_was"), metadata=self.md("acme"))
        self.assertEqual(info.reason, "dataset_not_found")
        self.assertEqual(e.details().replace("people", "X"), e2.details().replace("never_was", "X"))
        self.fails(grpc.StatusCode.NOT_FOUND, self.vectors.Search,
                   v_pb.SearchRequest(index="people_idx", query="alice"), metadata=self.md("acme"))

    def test_auth(self):
        e, info = self.fails(grpc.StatusCode.UNAUTHENTICATED, self.catalog.ListDatasets,
                             c_pb.ListDatasetsRequest())
        self.assertEqual(info.domain, "lakehouse")
        self.fails(grpc.StatusCode.UNAUTHENTICATED, self.catalog.ListDatasets,
                   c_pb.ListDatasetsRequest(), metadata=[("authorization", "Bearer wrong-token-1234")])
        self.fails(grpc.StatusCode.UNAUTHENTICATED, self.catalog.ListDatasets,
                   c_pb.ListDatasetsRequest(), metadata=[("authorization", "Basic abc")])
        # agents use tools and search, not the catalog
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.catalog.ListDatasets,
                   c_pb.ListDatasetsRequest(), metadata=self.md("agent"))
        # no token ever reaches the log
        self.assertNotIn("wrong-token-1234", self.srv.log_text())

    # ---- search -------------------------------------------------------------------------

    def test_search(self):
        r = self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="alice", k=2,
                                                   include=["city"]), metadata=self.md("reader"))
        self.assertEqual(r.hits[0].doc_id, "1")
        self.assertEqual(r.hits[0].columns.fields["city"].string_value, "Chicago")
        self.assertEqual(len(r.hits), 2)
        st, _, http = self.srv.request("POST", "/vectors/indexes/people_idx/search", who="reader",
                                       body={"query": "alice", "k": 2, "include": ["city"]})
        self.assertEqual([h.doc_id for h in r.hits], [h["doc_id"] for h in http["hits"]])
        self.assertAlmostEqual(r.hits[0].score, http["hits"][0]["score"], places=6)
        # a filter
        r = self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="alice",
                                                   filter="city = 'Austin'"), metadata=self.md("owner"))
        self.assertEqual([h.doc_id for h in r.hits], ["2"])
        self.assertEqual(r.filter_matched_documents, 1)
        # agents search, but may not write SQL filters
        self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="bob"), metadata=self.md("agent"))
        e, info = self.fails(grpc.StatusCode.PERMISSION_DENIED, self.vectors.Search,
                             v_pb.SearchRequest(index="people_idx", query="bob", filter="1=1"),
                             metadata=self.md("agent"))

    def test_search_cached_filter(self):
        """A repeated filter is answered by the filter cache over gRPC too, and such a
        Search runs on the completion-queue thread (lh_search_is_quick decides for both
        doors); the cache key is the same from both doors. A change to a dataset the filter
        reads makes the next search run the filter again and see the change."""
        st, _, res = self.srv.request("POST", "/ingest/file?dataset=grpc_probe&format=csv",
                                      body="id\n1\n", who="owner",
                                      headers={"Content-Type": "text/csv"})
        self.assertEqual(st, 201, res)
        req = v_pb.SearchRequest(index="people_idx", query="alice",
                                 filter="id IN (SELECT id FROM grpc_probe)")

        def search():
            r = self.vectors.Search(req, metadata=self.md("owner"))
            return sorted(h.doc_id for h in r.hits), r.filter_matched_documents, r.filter_cached
        self.assertEqual(search(), (["1"], 1, False))
        self.assertEqual(search(), (["1"], 1, True))
        # the same caller over HTTP finds the entry the gRPC search made: no hand-off there
        import re

        def handed():
            _, _, text = self.srv.request("GET", "/metrics", who="owner")
            return int(re.search(r"(?m)^lakehouse_http_handler_offloaded_total (\d+)$",
                                 text).group(1))
        before = handed()
        st, _, http = self.srv.request("POST", "/vectors/indexes/people_idx/search", who="owner",
                                       body={"query": "alice", "filter": req.filter})
        self.assertEqual((st, http["filter"]["cached"], handed()), (200, True, before), http)
        # callers refused are refused before any cache is looked at
        self.fails(grpc.StatusCode.UNAUTHENTICATED, self.vectors.Search, req,
                   metadata=[("authorization", "Bearer wrong-token-1234")])
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.vectors.Search, req,
                   metadata=self.md("agent"))
        st, _, res = self.srv.request("POST", "/ingest/file?dataset=grpc_probe&format=csv"
                                      "&mode=append", body="id\n3\n", who="owner",
                                      headers={"Content-Type": "text/csv"})
        self.assertIn(st, (200, 201), res)
        self.assertEqual(search(), (["1", "3"], 2, False))
        self.assertEqual(search(), (["1", "3"], 2, True))

    def test_index_jobs(self):
        md = self.md("owner")
        ups = list(self.vectors.CreateIndex(v_pb.CreateIndexRequest(
            name="people_names", dataset="people", id_column="id", text_column="name",
            hnsw=v_pb.HnswSettings(m=8)), metadata=md))
        self.assertEqual(ups[-1].state, "succeeded", ups[-1])
        self.assertTrue(ups[-1].job_id.startswith("job_"))
        self.assertEqual(ups[-1].kind, "vector_index")
        self.assertEqual(ups[-1].result.fields["generation"].number_value, 1)
        self.assertEqual(len({(u.state, u.done) for u in ups}), len(ups))  # only changes are sent
        st, _, job = self.srv.request("GET", "/jobs/" + ups[-1].job_id, who="owner")
        self.assertEqual(job["state"], "succeeded")
        r = self.vectors.Search(v_pb.SearchRequest(index="people_names", query="carol"), metadata=md)
        self.assertEqual(r.hits[0].doc_id, "3")
        ups = list(self.vectors.RefreshIndex(v_pb.IndexRequest(name="people_names"), metadata=md))
        self.assertEqual((ups[-1].state, ups[-1].result.fields["generation"].number_value),
                         ("succeeded", 2))
        ups = list(self.vectors.PromoteIndex(v_pb.PromoteIndexRequest(
            name="people_names", hnsw=v_pb.HnswSettings(ef_search=50)), metadata=md))
        self.assertEqual(ups[-1].state, "succeeded", ups[-1])
        st, _, ix = self.srv.request("GET", "/vectors/indexes/people_names", who="owner")
        self.assertEqual((ix["generation"], ix["hnsw"]["ef_search"], ix["hnsw"]["m"]), (3, 50, 8))
        rb = self.vectors.RollbackIndex(v_pb.IndexRequest(name="people_names"), metadata=md)
        self.assertEqual(rb.result.fields["generation"].number_value, 2)
        # refusals
        e, info = self.fails(grpc.StatusCode.ALREADY_EXISTS, lambda: list(self.vectors.CreateIndex(
            v_pb.CreateIndexRequest(name="people_names", dataset="people", id_column="id",
                                    text_column="name"), metadata=md)))
        e, info = self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.vectors.CreateIndex(
            v_pb.CreateIndexRequest(name="bad_one", dataset="people", id_column="id",
                                    text_column="nope"), metadata=md)))
        self.assertIn("no column 'nope'", e.details())  # as POST /vectors/indexes answers
        self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.vectors.CreateIndex(
            v_pb.CreateIndexRequest(name="acme_try", dataset="people", id_column="id",
                                    text_column="name"), metadata=self.md("acme"))))
        self.fails(grpc.StatusCode.PERMISSION_DENIED, lambda: list(self.vectors.RefreshIndex(
            v_pb.IndexRequest(name="people_names"), metadata=self.md("reader"))))
        self.fails(grpc.StatusCode.NOT_FOUND, self.vectors.RollbackIndex,
                   v_pb.IndexRequest(name="people_names"), metadata=self.md("acme"))
        e, info = self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.vectors.RefreshIndex(
            v_pb.IndexRequest(name="people_names"), metadata=self.md("acme"))))
        self.assertEqual(info.reason, "index_not_found")  # not busy: it was never reserved
        self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.vectors.PromoteIndex(
            v_pb.PromoteIndexRequest(name="people_names", trial_id="tr_none"), metadata=md)))

    def test_search_bad_input(self):
        md = self.md("owner")
        cases = [
            (v_pb.SearchRequest(index="nope", query="x"), grpc.StatusCode.NOT_FOUND, "index_not_found"),
            (v_pb.SearchRequest(index="people_idx", query="x", vector=[0.1] * 384),
             grpc.StatusCode.INVALID_ARGUMENT, "invalid_parameter"),
            (v_pb.SearchRequest(index="people_idx", vector=[float("nan")] * 384),
             grpc.StatusCode.INVALID_ARGUMENT, "invalid_parameter"),
            (v_pb.SearchRequest(index="people_idx", query="x", mode="sideways"),
             grpc.StatusCode.INVALID_ARGUMENT, None),
            (v_pb.SearchRequest(index="people_idx", query="x", filter="nope = 1"),
             grpc.StatusCode.INVALID_ARGUMENT, "invalid_filter"),
            (v_pb.SearchRequest(index="people_idx", query="x", filter="1=1; DROP TABLE people"),
             None, None),
            (v_pb.SearchRequest(index="people_idx", query="x",
                                filter="id IN (SELECT 1 FROM read_csv('/etc/passwd'))"),
             grpc.StatusCode.PERMISSION_DENIED, None),
        ]
        for req, code, reason in cases:
            with self.assertRaises(grpc.RpcError, msg=str(req)) as cm:
                self.vectors.Search(req, metadata=md)
            if code:
                self.assertEqual(cm.exception.code(), code, (str(req)[:80], cm.exception.details()))
            else:
                self.assertIn(cm.exception.code(), (grpc.StatusCode.INVALID_ARGUMENT,
                                                    grpc.StatusCode.PERMISSION_DENIED))
            if reason:
                _, info = self.fails(cm.exception.code(), self.vectors.Search, req, metadata=md)
                self.assertEqual(info.reason, reason)
        # the server still answers
        self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="alice"), metadata=md)

    def test_malformed_oversized_unknown(self):
        raw = self.channel.unary_unary("/lakehouse.v1.Catalog/GetDataset",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        e, info = self.fails(grpc.StatusCode.INVALID_ARGUMENT, raw, b"\xff\xff\xff\xff\x0f",
                             metadata=self.md("owner"))
        self.assertEqual(info.reason, "invalid_argument")
        # over [grpc] max_message_bytes (1 MiB here)
        with self.assertRaises(grpc.RpcError) as cm:
            self.vectors.Search(v_pb.SearchRequest(index="people_idx", vector=[0.5] * 300000),
                                metadata=self.md("owner"))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        unknown = self.channel.unary_unary("/lakehouse.v1.Catalog/DropEverything",
                                           request_serializer=lambda b: b,
                                           response_deserializer=lambda b: b)
        e, info = self.fails(grpc.StatusCode.UNIMPLEMENTED, unknown, b"", metadata=self.md("owner"))
        self.assertIn("DropEverything", e.details())
        self.catalog.ListDatasets(c_pb.ListDatasetsRequest(), metadata=self.md("owner"))

    # ---- ingest and jobs ------------------------------------------------------------------

    def upload(self, header, chunks, who="owner"):
        def parts():
            yield i_pb.UploadRequest(header=header)
            for c in chunks:
                yield i_pb.UploadRequest(chunk=c)
        return self.ingest.UploadFile(parts(), metadata=self.md(who))

    def uploads_left(self):
        work = [os.path.join(r, f) for r, _, fs in os.walk(self.srv.dir) for f in fs
                if f.startswith("upload-")]
        return work

    def test_upload_file(self):
        csv = "id,name,city\n" + "".join("%d,name %d,city %d\n" % (i, i, i % 7) for i in range(1, 2001))
        data = csv.encode()
        chunks = [data[i:i + 1000] for i in range(0, len(data), 1000)]  # lines cut mid-way
        res = self.upload(i_pb.UploadHeader(
            dataset="grpc_upload", format="csv", source_object="crm/export.csv",
            metadata=i_pb.DatasetMetadata(owner="ops", tags=["crm", "daily"],
                                          primary_key=["id"], sensitivity="internal")), chunks)
        r = res.result.fields
        self.assertEqual((r["dataset"].string_value, r["rows"].number_value,
                          r["version"].number_value), ("grpc_upload", 2000, 1))
        st, _, ds = self.srv.request("GET", "/catalog/datasets/grpc_upload", who="owner")
        m = ds["metadata"]
        self.assertEqual((ds["row_count"], m["owner"], m["tags"], m["primary_key"]),
                         (2000, "ops", ["crm", "daily"], ["id"]), ds)
        self.assertEqual(m["lineage"]["source_object"], "crm/export.csv")
        # NDJSON and Parquet travel the same way (the Parquet file from the server's export)
        nd = b'{"k": 1, "v": "a"}\n{"k": 2, "v": "b"}\n'
        res = self.upload(i_pb.UploadHeader(dataset="grpc_nd", format="ndjson"), [nd[:7], nd[7:]])
        self.assertEqual(res.result.fields["rows"].number_value, 2)
        import http.client
        import json
        conn = http.client.HTTPConnection("127.0.0.1", self.srv.port, timeout=30)
        conn.request("POST", "/query", body=json.dumps(
            {"sql": "SELECT * FROM people", "format": "parquet"}),
            headers={"Authorization": "Bearer " + OWNER, "Content-Type": "application/json"})
        pq = conn.getresponse().read()
        conn.close()
        self.assertEqual(pq[:4], b"PAR1")
        res = self.upload(i_pb.UploadHeader(dataset="grpc_pq", format="parquet"),
                          [pq[i:i + 100] for i in range(0, len(pq), 100)])
        self.assertEqual(res.result.fields["rows"].number_value, 4)
        # append with a job, followed through Jobs/WatchJob
        more = "id,name,city\n2001,late,city 1\n".encode()
        res = self.upload(i_pb.UploadHeader(dataset="grpc_upload", format="csv", mode="append",
                                            **{"async": True}), [more])
        self.assertTrue(res.job_id.startswith("job_"))
        self.assertFalse(res.HasField("result"))
        ups = list(self.jobs.WatchJob(jobs_pb.JobRequest(id=res.job_id), metadata=self.md("owner")))
        self.assertEqual((ups[-1].state, ups[-1].kind, ups[-1].owner),
                         ("succeeded", "ingest", "owner"), ups[-1])
        self.assertEqual(ups[-1].result.fields["total_rows"].number_value, 2001)
        self.assertTrue(ups[-1].finished_at)
        self.assertEqual(self.uploads_left(), [])

    def test_upload_refusals(self):
        H = i_pb.UploadHeader
        cases = [
            (H(dataset="Bad Name", format="csv"), [b"a\n1\n"], grpc.StatusCode.INVALID_ARGUMENT,
             "'dataset' must be a name"),
            (H(dataset="x_up", format="xlsx"), [b"a\n1\n"], grpc.StatusCode.INVALID_ARGUMENT,
             "'format' must be"),
            (H(dataset="x_up", format="parquet", on_bad_rows="skip"), [b"x"],
             grpc.StatusCode.INVALID_ARGUMENT, "format=csv only"),
            (H(dataset="x_up", format="csv", bucket="nope"), [b"a\n1\n"],
             grpc.StatusCode.NOT_FOUND, "nope"),
            (H(dataset="x_up", format="csv", metadata=i_pb.DatasetMetadata(sensitivity="secret")),
             [b"a\n1\n"], grpc.StatusCode.INVALID_ARGUMENT, "sensitivity"),
            (H(dataset="x_up", format="csv"), [], grpc.StatusCode.INVALID_ARGUMENT, "empty"),
            (H(dataset="x_up", format="csv"), [b"a,b\n1,2\n", b"x" * (MAX_UPLOAD - 4)],
             grpc.StatusCode.RESOURCE_EXHAUSTED, "over the limit"),
            (H(dataset="people", format="csv"), [b"a\n1\n"], grpc.StatusCode.ALREADY_EXISTS, None),
            (H(dataset="x_up", format="csv"), [b"a,b\n1,2,3\n"], grpc.StatusCode.INVALID_ARGUMENT,
             None),
        ]
        for header, chunks, code, text in cases:
            with self.subTest(header=str(header)):
                e, info = self.fails(code, self.upload, header, chunks)
                if text:
                    self.assertIn(text, e.details() + (info.metadata["detail"] if info else ""))
                st, _, _ = self.srv.request("GET", "/catalog/datasets/x_up", who="owner")
                self.assertEqual(st, 404, "after " + str(header))
        # the same refusals HTTP gives: a reader may not, a tenant may not use another bucket
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.upload,
                   H(dataset="x_up", format="csv"), [b"a\n1\n"], who="reader")
        self.fails(grpc.StatusCode.PERMISSION_DENIED, self.upload,
                   H(dataset="x_up", format="csv", bucket="primary"), [b"a\n1\n"], who="acme")
        # the first message must be the header; only the first
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.ingest.UploadFile,
                   iter([i_pb.UploadRequest(chunk=b"a\n1\n")]), metadata=self.md("owner"))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.ingest.UploadFile,
                   iter([i_pb.UploadRequest(header=H(dataset="x_up", format="csv")),
                         i_pb.UploadRequest(header=H(dataset="x_up", format="csv"))]),
                   metadata=self.md("owner"))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.ingest.UploadFile, iter([]),
                   metadata=self.md("owner"))
        # a client that cancels mid-upload leaves nothing: no dataset, no spooled file
        import threading
        gate = threading.Event()

        def parts():
            yield i_pb.UploadRequest(header=H(dataset="x_cancelled", format="csv"))
            yield i_pb.UploadRequest(chunk=b"a,b\n1,2\n")
            gate.wait(10)
        fut = self.ingest.UploadFile.future(parts(), metadata=self.md("owner"))
        time.sleep(0.5)
        self.assertTrue(fut.cancel())
        gate.set()
        deadline = time.time() + 10
        while self.uploads_left() and time.time() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.uploads_left(), [])
        st, _, _ = self.srv.request("GET", "/catalog/datasets/x_up", who="owner")
        self.assertEqual(st, 404)
        st, _, _ = self.srv.request("GET", "/catalog/datasets/x_cancelled", who="owner")
        self.assertEqual(st, 404)

    def test_from_postgres(self):
        dsn = "postgresql://app@127.0.0.1:%d/postgres" % self.pg.port
        ups = list(self.ingest.FromPostgres(i_pb.PostgresRequest(
            dsn=dsn, secret_ref="pg_app", table="public.staff", dataset="grpc_staff",
            batch_rows=1000, metadata=i_pb.DatasetMetadata(primary_key=["id"])),
            metadata=self.md("owner")))
        last = ups[-1]
        self.assertEqual((last.state, last.kind), ("succeeded", "ingest_db"), last)
        self.assertEqual(last.result.fields["rows"].number_value, 5000)
        self.assertIn("app:***@", last.result.fields["source"].string_value)
        self.assertGreaterEqual(len(ups), 2)  # queued or running first, then the end
        st, _, out = self.srv.request("POST", "/query", {"sql": "SELECT sum(rate) AS s FROM grpc_staff"},
                                      who="owner")
        self.assertEqual(float(out["rows"][0]["s"]), 5000 * 5001 / 2 * 1.5)
        # refusals, and never the password in an answer or the log
        pw_dsn = "postgresql://app:%s@127.0.0.1:%d/postgres" % (PG_APP_PASSWORD, self.pg.port)
        cases = [
            (i_pb.PostgresRequest(dsn=pw_dsn, dataset="g2"), grpc.StatusCode.INVALID_ARGUMENT),
            (i_pb.PostgresRequest(dsn=pw_dsn, table="staff", query="SELECT 1", dataset="g2"),
             grpc.StatusCode.INVALID_ARGUMENT),
            (i_pb.PostgresRequest(dsn="host=127.0.0.1 passfile=/etc/shadow", table="staff",
                                  dataset="g2"), grpc.StatusCode.INVALID_ARGUMENT),
            (i_pb.PostgresRequest(dsn=dsn, secret_ref="no_such", table="staff", dataset="g2"),
             grpc.StatusCode.INVALID_ARGUMENT),
            (i_pb.PostgresRequest(dsn=pw_dsn, table="staff", dataset="g2", parallel=99),
             grpc.StatusCode.INVALID_ARGUMENT),
            (i_pb.PostgresRequest(dsn=pw_dsn, table="staff", dataset="g2",
                                  metadata=i_pb.DatasetMetadata(source_system="crm")),
             grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for req, code in cases:
            e, info = self.fails(code, lambda: list(self.ingest.FromPostgres(
                req, metadata=self.md("owner"))))
            self.assertNotIn(PG_APP_PASSWORD, e.details() + str(e.trailing_metadata()))
        # a job that fails streams its error as the last update
        ups = list(self.ingest.FromPostgres(i_pb.PostgresRequest(
            dsn=pw_dsn, table="no_such_table", dataset="g3"), metadata=self.md("owner")))
        self.assertEqual((ups[-1].state, ups[-1].error_code), ("failed", "source_table_not_found"))
        self.assertNotIn(PG_APP_PASSWORD, str(ups))
        self.fails(grpc.StatusCode.PERMISSION_DENIED, lambda: list(self.ingest.FromPostgres(
            i_pb.PostgresRequest(dsn=pw_dsn, table="staff", dataset="g4"),
            metadata=self.md("reader"))))
        self.assertNotIn(PG_APP_PASSWORD, self.srv.log_text())

    def test_jobs(self):
        st, _, job = self.srv.request("POST", "/jobs", {"kind": "sleep", "seconds": 30}, who="owner")
        self.assertEqual(st, 202, job)
        jid = job["id"]
        got = self.jobs.GetJob(jobs_pb.JobRequest(id=jid), metadata=self.md("owner"))
        self.assertEqual((got.job_id, got.kind, got.owner), (jid, "sleep", "owner"))
        self.assertIn(jid, [j.job_id for j in self.jobs.ListJobs(
            jobs_pb.ListJobsRequest(state="running"), metadata=self.md("owner")).jobs] +
            [j.job_id for j in self.jobs.ListJobs(jobs_pb.ListJobsRequest(state="queued"),
                                                   metadata=self.md("owner")).jobs])
        # someone else's job is not there for them, in any call
        for call in (self.jobs.GetJob, self.jobs.CancelJob):
            e, info = self.fails(grpc.StatusCode.NOT_FOUND, call, jobs_pb.JobRequest(id=jid),
                                 metadata=self.md("reader"))
            self.assertEqual(info.reason, "job_not_found")
        self.fails(grpc.StatusCode.NOT_FOUND, lambda: list(self.jobs.WatchJob(
            jobs_pb.JobRequest(id=jid), metadata=self.md("reader"))))
        self.assertNotIn(jid, [j.job_id for j in self.jobs.ListJobs(
            jobs_pb.ListJobsRequest(), metadata=self.md("reader")).jobs])
        # watch, cancel from another call: the watch ends with the cancelled state
        w = self.jobs.WatchJob(jobs_pb.JobRequest(id=jid), metadata=self.md("owner"))
        first = next(w)
        self.assertIn(first.state, ("queued", "running"))
        c = self.jobs.CancelJob(jobs_pb.JobRequest(id=jid), metadata=self.md("owner"))
        self.assertEqual(c.job_id, jid)
        rest = list(w)
        self.assertEqual(rest[-1].state, "cancelled")
        e, info = self.fails(grpc.StatusCode.FAILED_PRECONDITION, self.jobs.CancelJob,
                             jobs_pb.JobRequest(id=jid), metadata=self.md("owner"))
        self.assertEqual(info.reason, "job_finished")
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.jobs.GetJob, jobs_pb.JobRequest(),
                   metadata=self.md("owner"))
        self.fails(grpc.StatusCode.INVALID_ARGUMENT, self.jobs.ListJobs,
                   jobs_pb.ListJobsRequest(state="sleeping"), metadata=self.md("owner"))
        self.fails(grpc.StatusCode.NOT_FOUND, self.jobs.GetJob, jobs_pb.JobRequest(id="job_x"),
                   metadata=self.md("owner"))

    def test_slow_calls_leave_the_server_free(self):
        """Searches waiting for query slots or running a slow filter run on threads of their
        own: with more of them than the server has completion-queue threads (4), a health
        check and a catalog call still answer at once."""
        from concurrent.futures import ThreadPoolExecutor
        slow = "id > (SELECT count(*) FROM range(20000000000))"
        h = h_grpc.HealthStub(self.channel)
        with ThreadPoolExecutor(8) as pool:
            futs = [pool.submit(lambda: self.vectors.Search(
                v_pb.SearchRequest(index="people_idx", query="x", filter=slow),
                metadata=self.md("owner"), timeout=3)) for _ in range(8)]
            time.sleep(0.5)
            t0 = time.time()
            self.assertEqual(h.Check(h_pb.HealthCheckRequest(), timeout=2).status,
                             h_pb.HealthCheckResponse.SERVING)
            self.catalog.GetDataset(c_pb.GetDatasetRequest(name="people"),
                                    metadata=self.md("owner"), timeout=2)
            self.assertLess(time.time() - t0, 1.0)
            for f in futs:
                with self.assertRaises(grpc.RpcError) as cm:
                    f.result()
                self.assertIn(cm.exception.code(), (grpc.StatusCode.DEADLINE_EXCEEDED,
                                                    grpc.StatusCode.RESOURCE_EXHAUSTED))

    def test_tool_call_cancel_stops_its_query(self):
        st, _, res = self.srv.request("POST", "/tools", who="owner", body={
            "name": "people_crawl", "description": "A slow scan", "kind": "sql",
            "input_schema": {"type": "object", "additionalProperties": False, "properties": {}},
            "binding": {"datasets": ["people"], "max_rows": 10, "query":
                        "SELECT id FROM people WHERE id > (SELECT count(*) FROM range(20000000000))"},
            "allow": {"roles": ["agent"]}})
        self.assertEqual(st, 201, res)
        fut = self.tools.CallTool.future(t_pb.CallToolRequest(name="people_crawl"),
                                         metadata=self.md("agent"))
        time.sleep(0.5)
        t0 = time.time()
        fut.cancel()
        # the call's audit record is written when the tool stops: soon, not at the query's
        # time limit
        rec = None
        while time.time() - t0 < 10 and rec is None:
            st, _, out = self.srv.request("GET", "/audit?tool=people_crawl", who="owner")
            rec = (out.get("records") or [None])[0]
            time.sleep(0.1)
        self.assertIsNotNone(rec, "no audit record")
        self.assertEqual((rec["outcome"], rec["error_code"], rec["via"]),
                         ("failed", "client_gone", "grpc"), rec)
        self.assertLess(time.time() - t0, 5)

    def test_streams_per_principal(self):
        """[grpc] max_streams_per_principal (32): the 33rd open stream of one principal is
        refused, others are not held up, and a closed stream frees its place. (Public
        health watches have only the server's 256.)"""
        st, _, job = self.srv.request("POST", "/jobs", {"kind": "sleep", "seconds": 60}, who="owner")
        self.assertEqual(st, 202, job)
        req = jobs_pb.JobRequest(id=job["id"])
        watches, refused = [], None
        try:
            while len(watches) < 40 and refused is None:
                w = self.jobs.WatchJob(req, metadata=self.md("owner"))
                try:
                    next(w)
                    watches.append(w)
                except grpc.RpcError as e:
                    refused = e
            self.assertIsNotNone(refused)
            self.assertEqual(refused.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("owner has 32 streaming calls", refused.details())
            self.assertEqual(len(watches), 32)
            # another principal still streams, and so does the public
            rows = list(self.query.Run(q_pb.QueryRequest(sql="SELECT 1 AS x"),
                                       metadata=self.md("reader")))
            self.assertEqual(rows[-1].row_count, 1)
            h = h_grpc.HealthStub(self.channel)
            hw = h.Watch(h_pb.HealthCheckRequest())
            self.assertEqual(next(hw).status, h_pb.HealthCheckResponse.SERVING)
            hw.cancel()
        finally:
            for w in watches:
                w.cancel()
        deadline = time.time() + 10
        while True:
            try:
                w = self.jobs.WatchJob(req, metadata=self.md("owner"))
                next(w)
                w.cancel()
                break
            except grpc.RpcError:
                self.assertLess(time.time(), deadline, "a closed watch kept its place")
                time.sleep(0.1)
        self.jobs.CancelJob(req, metadata=self.md("owner"))

    def test_deadlines(self):
        # a filter that would run for long is stopped by the call's deadline
        slow = "id > (SELECT count(*) FROM range(20000000000))"
        t0 = time.time()
        with self.assertRaises(grpc.RpcError) as cm:
            self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="x", filter=slow),
                                metadata=self.md("owner"), timeout=1.0)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertLess(time.time() - t0, 5)
        # the server stopped the query: the next one does not wait behind it
        t0 = time.time()
        r = self.vectors.Search(v_pb.SearchRequest(index="people_idx", query="alice",
                                                   filter="city = 'Chicago'"),
                                metadata=self.md("owner"), timeout=10)
        self.assertTrue(r.hits)
        self.assertLess(time.time() - t0, 5)


if __name__ == "__main__":
    unittest.main()
