#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a comparison of two builds that
does not depend on how busy the machine is (bench/run.sh measures throughput, and
on a shared machine its ratios can move by ±0.1 between runs of the same binary).

    python3 bench/instructions.py BIN [BIN ...] [--requests N]

For each binary: a throw-away demo database (PBKDF2 at 1,000 iterations, seats
raised so licensed grants never run out), the server under
`valgrind --tool=callgrind` with one worker, one warm-up request per scenario,
then the counters are zeroed, N sequential keep-alive requests are sent, and the
counters are dumped. Every thread of the process is counted (HTTP worker, reader
and writer threads, checkpointer). Prints instructions per request per scenario.
"""
import argparse
import base64
import glob
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BASIC = "Basic " + base64.b64encode(b"demo:demo-secret").decode()
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": BASIC}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post(conn, path, body, headers):
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def grant(conn, scope):
    status, data = post(conn, "/token", f"grant_type=client_credentials&scope={scope}", FORM)
    assert status == 200, (status, data)
    return json.loads(data)


class Scenario:
    def __init__(self, name):
        self.name = name
        self.state = {}

    def setup(self, conn):
        if self.name in ("bearer_get", "put_product"):
            self.state["token"] = grant(conn, "all")["access_token"]
        if self.name == "refresh":
            self.state["refresh"] = grant(conn, "all")["refresh_token"]

    def once(self, conn):
        n = self.name
        if n == "view_grant":
            grant(conn, "view")
        elif n == "licensed_grant":
            grant(conn, "all")
        elif n == "refresh":
            status, data = post(conn, "/token",
                                f"grant_type=refresh_token&refresh_token={self.state['refresh']}", FORM)
            assert status == 200, (status, data)
            self.state["refresh"] = json.loads(data)["refresh_token"]
        elif n == "bearer_get":
            conn.request("GET", "/api/v1/products/BOLT-M6-20",
                         headers={"Authorization": "Bearer " + self.state["token"]})
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        elif n == "put_product":
            body = json.dumps({"sku": "BENCH-1", "name": "bench", "description": "",
                               "price_cents": 100, "stock": 1})
            conn.request("PUT", "/api/v1/products/BENCH-1", body=body,
                         headers={"Authorization": "Bearer " + self.state["token"],
                                  "Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            assert r.status in (200, 201), r.status
        elif n == "healthz":
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            assert r.status == 200


SCENARIOS = ["healthz", "view_grant", "licensed_grant", "refresh", "bearer_get", "put_product"]


def totals(path):
    with open(path) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(binary, requests):
    tmp = tempfile.mkdtemp(prefix="tollgate-instr-")
    db = os.path.join(tmp, "t.db")
    env = dict(os.environ, TOLLGATE_PBKDF2_ITERATIONS="1000", RUST_LOG="info")
    subprocess.run([binary, "init", "--demo", db], check=True, env=env, capture_output=True)
    subprocess.run([binary, "--db", db, "licences", "set", "1000000"], check=True, env=env,
                   capture_output=True)
    port = free_port()
    out = os.path.join(tmp, "callgrind.out")
    log = open(os.path.join(tmp, "server.log"), "w")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
         binary, "serve", "--db", db, "--listen", f"127.0.0.1:{port}", "--workers", "1"],
        env=env, stdout=log, stderr=log)
    try:
        deadline = time.time() + 120
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        result = {}
        for name in SCENARIOS:
            sc = Scenario(name)
            sc.setup(conn)
            sc.once(conn)  # warm-up: caches, prepared statements
            time.sleep(0.3)
            subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                           capture_output=True)
            for _ in range(requests):
                sc.once(conn)
            before = set(glob.glob(out + "*"))
            subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                           capture_output=True)
            dumps = sorted(set(glob.glob(out + "*")) - before, key=os.path.getmtime)
            if not dumps:
                raise RuntimeError("callgrind wrote no dump")
            result[name] = sum(totals(d) for d in dumps) / requests
            for d in dumps:
                os.remove(d)
        return result
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binaries", nargs="+")
    p.add_argument("--requests", type=int, default=300)
    a = p.parse_args()
    results = {b: measure(b, a.requests) for b in a.binaries}
    width = max(len(s) for s in SCENARIOS)
    print(f"instructions per request (callgrind, all threads, {a.requests} sequential requests each)")
    header = " " * width + "".join(f" | {os.path.basename(os.path.dirname(os.path.dirname(b)) or b)[:18]:>18}" for b in a.binaries)
    print(header)
    for s in SCENARIOS:
        row = f"{s:<{width}}"
        for b in a.binaries:
            row += f" | {results[b][s]:>18,.0f}"
        if len(a.binaries) == 2:
            x, y = results[a.binaries[0]][s], results[a.binaries[1]][s]
            row += f" | {100 * (y - x) / x:+.1f} %"
        print(row)


if __name__ == "__main__":
    sys.exit(main())
