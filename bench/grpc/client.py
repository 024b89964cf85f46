"""Vector search over gRPC (lakehouse.v1.Vectors/Search) beside the same search over HTTP
keep-alive (POST /vectors/indexes/{index}/search), and a small query (Query/Run beside
POST /query: ten rows of a dataset), at 1, 8 and 64 concurrent clients: each
client is a process of its own with its own channel or connection, making CALLS calls in a
row. Prints one line per (door, clients): p50 and p99 of a call's round trip (ms), the
calls per second of all clients together, and the server's CPU time per call (µs, from
/proc/SERVER_PID/stat: the door's own cost without the clients', which share the cores).
usage: client.py HOST HTTP_PORT GRPC_PORT TOKEN STUBS_DIR INDEX QUERY CALLS SERVER_PID SQL"""
import http.client
import json
import multiprocessing as mp
import os
import queue
import sys
import time

host, http_port, grpc_port, token, stubs, index, query, calls, server_pid, sql = sys.argv[1:11]
calls = int(calls)
TICK = os.sysconf("SC_CLK_TCK")


def server_cpu():
    with open("/proc/%s/stat" % server_pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def http_client(n, start, out, what):
    conn = http.client.HTTPConnection(host, int(http_port), timeout=60)
    h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    if what == "search":
        path, body = "/vectors/indexes/%s/search" % index, {"query": query, "k": 10}
    else:
        path, body = "/query", {"sql": sql}
    body = json.dumps(body).encode()
    times = []
    start.wait()
    for i in range(n + 1):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit("HTTP %d: %s" % (r.status, data[:200]))
        if i:
            times.append(time.perf_counter() - t0)
    out.put(times)


def grpc_client(n, start, out, what):
    sys.path.insert(0, stubs)
    import grpc
    from lakehouse.v1 import vectors_pb2, vectors_pb2_grpc, query_pb2, query_pb2_grpc
    ch = grpc.insecure_channel("%s:%s" % (host, grpc_port))
    md = [("authorization", "Bearer " + token)]
    if what == "search":
        stub = vectors_pb2_grpc.VectorsStub(ch)
        req = vectors_pb2.SearchRequest(index=index, query=query, k=10)
        call = lambda: len(stub.Search(req, metadata=md).hits)  # noqa: E731
    else:
        stub = query_pb2_grpc.QueryStub(ch)
        req = query_pb2.QueryRequest(sql=sql)
        call = lambda: sum(b.rows for b in stub.Run(req, metadata=md))  # noqa: E731
    times = []
    start.wait()
    for i in range(n + 1):
        t0 = time.perf_counter()
        if call() == 0:
            sys.exit("gRPC %s found nothing" % what)
        if i:
            times.append(time.perf_counter() - t0)
    out.put(times)


def run(fn, clients, what):
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    n = max(20, calls // clients)
    ps = [ctx.Process(target=fn, args=(n, start, out, what)) for _ in range(clients)]
    for p in ps:
        p.start()
    time.sleep(1.0 + clients * 0.05)  # let every client connect and import
    cpu0 = server_cpu()
    t0 = time.perf_counter()
    start.set()
    times, got = [], 0
    while got < clients:  # a client that failed sends nothing: stop, do not wait for it
        try:
            times += out.get(timeout=1)
            got += 1
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in ps):
                sys.exit("a client failed")
    wall = time.perf_counter() - t0
    cpu = server_cpu() - cpu0
    for p in ps:
        p.join()
        if p.exitcode:
            sys.exit("a client failed")
    times.sort()
    return (times[len(times) // 2], times[int(len(times) * 0.99)], len(times) / wall,
            cpu / len(times))


if __name__ == "__main__":
    for what in ("search", "query"):
        for clients in (1, 8, 64):
            for door, fn in (("http", http_client), ("grpc", grpc_client)):
                p50, p99, rate, cpu = run(fn, clients, what)
                print("%s %s %d %.4f %.4f %.1f %.1f" % (what, door, clients, p50 * 1000, p99 * 1000,
                                                        rate, cpu * 1e6), flush=True)
