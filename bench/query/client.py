"""Times one HTTP request REPS times over a single keep-alive connection (as a service
client would), printing seconds per request. The last answer's body goes to BODY_FILE.
Each "@REP@" in the body becomes the rep's number (a text the server has not seen).
usage: client.py HOST PORT TOKEN METHOD PATH BODY_JSON_OR_- REPS BODY_FILE"""
import http.client
import sys
import time

host, port, token, method, path, body, reps, out = sys.argv[1:9]
conn = http.client.HTTPConnection(host, int(port), timeout=300)
headers = {"Authorization": "Bearer " + token}
payload = None
if body != "-":
    payload = body.encode()
    headers["Content-Type"] = "application/json"
data = b""
for rep in range(int(reps)):
    this = payload.replace(b"@REP@", str(rep).encode()) if payload else None
    t0 = time.perf_counter()
    conn.request(method, path, body=this, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        sys.stderr.write("HTTP %d: %s\n" % (resp.status, data[:300]))
        sys.exit(1)
    print("%.6f" % dt)
with open(out, "wb") as f:
    f.write(data)
