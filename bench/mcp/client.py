"""One keep-alive client timing a tool call two ways, alternating, REPS times each:
  http  POST /tools/{tool}/call {"arguments": ...}
  mcp   POST /mcp tools/call on one session (initialize once, untimed)
Prints "http <seconds>" and "mcp <seconds>" lines; fails on any non-success answer or on
answers whose rows differ.
usage: client.py HOST PORT TOKEN TOOL ARGUMENTS_JSON REPS"""
import http.client
import json
import sys
import time

host, port, token, tool, args, reps = sys.argv[1:7]
args = json.loads(args)
conn = http.client.HTTPConnection(host, int(port), timeout=120)
auth = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
mcp_h = dict(auth, Accept="application/json, text/event-stream")


def post(path, body, headers):
    conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        sys.exit("%s answered %d: %s" % (path, resp.status, data[:300]))
    return resp, json.loads(data)


resp, _ = post("/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                   "clientInfo": {"name": "bench", "version": "1"}}}, mcp_h)
mcp_h["Mcp-Session-Id"] = resp.getheader("Mcp-Session-Id")
mcp_h["MCP-Protocol-Version"] = "2025-06-18"
call = {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": tool, "arguments": args}}
want = None
for rep in range(int(reps) + 1):  # the first of each is a warm-up
    t0 = time.perf_counter()
    _, a = post("/tools/%s/call" % tool, {"arguments": args}, auth)
    t1 = time.perf_counter()
    call["id"] = rep + 1
    _, b = post("/mcp", call, mcp_h)
    t2 = time.perf_counter()
    if "error" in b or b["result"].get("isError"):
        sys.exit("tools/call failed: %s" % json.dumps(b)[:300])
    rows = (a["result"], b["result"]["structuredContent"]["result"])
    if rows[0] != rows[1]:
        sys.exit("the two doors answered different rows")
    if rep:
        print("http %.6f" % (t1 - t0))
        print("mcp %.6f" % (t2 - t1))
