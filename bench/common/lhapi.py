"""A small client of the lakehouse HTTP API for the Python parts of the benchmarks: one
keep-alive connection, JSON in and out, any answer other than 2xx ends the run with the
answer printed. usage: api = lhapi.Api(url, token); api.call("GET", "/health")."""
import http.client
import json
import sys
import time
import urllib.parse


class Api:
    def __init__(self, url, token):
        self.url = urllib.parse.urlparse(url)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
        self.conn = self.connect()

    def connect(self):
        """A new connection of its own (for a second thread)."""
        return http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=3600)

    def call(self, method, path, body=None, conn=None):
        c = conn or self.conn
        c.request(method, path, body=json.dumps(body) if body is not None else None,
                  headers=self.headers)
        r = c.getresponse()
        data = json.loads(r.read() or b"null")
        if r.status >= 300:
            sys.exit("HTTP %d on %s: %s" % (r.status, path, data))
        return data

    def wait(self, answer):
        """Follow the job of a 202 answer to its end; its record when it succeeded."""
        while True:
            j = self.call("GET", "/jobs/" + answer["job_id"])
            if j["state"] not in ("queued", "running"):
                if j["state"] != "succeeded":
                    sys.exit("job failed: %s" % j)
                return j
            time.sleep(0.2)
