#!/usr/bin/env python3
"""What an extra mount costs (API.md §12): starts the release binary on 1, 2 and 3
SQLite demo databases (--mount), and on one with --db, reads VmRSS and Threads from
/proc/PID/status when idle and after 50 grants and 50 /api/v1/me per mount, and
prints a Markdown table of the medians of 3 starts. Standard library only.

    python3 bench/mounts_cost.py [--bin target/release/tollgate] [--workers 2]
"""
import argparse, base64, http.client, json, os, statistics, subprocess, tempfile, time

AUTH = "Basic " + base64.b64encode(b"demo:demo-secret").decode()


def status(pid):
    d = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status"))
    return int(d["VmRSS"].split()[0]), int(d["Threads"])


def traffic(port, prefix):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(50):
        c.request("POST", prefix + "/token", "grant_type=client_credentials&scope=view",
                  {"Authorization": AUTH, "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        doc = json.loads(r.read())
        assert r.status == 200, doc
        c.request("GET", prefix + "/api/v1/me", headers={"Authorization": "Bearer " + doc["access_token"]})
        r = c.getresponse()
        r.read()
        assert r.status == 200


def run(a, cwd, n, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env["RUST_LOG"] = "warn"
    if n == 0:
        args, prefixes = ["--db", "m0.db", "serve"], [""]
    else:
        args = ["serve"] + sum([["--mount", f"/m{i}=m{i}.db"] for i in range(n)], [])
        prefixes = [f"/m{i}" for i in range(n)]
    p = subprocess.Popen([a.bin, *args, "--listen", f"127.0.0.1:{port}", "--workers", str(a.workers)],
                         env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port)
                c.request("GET", "/healthz")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1.5)
        idle = status(p.pid)
        for prefix in prefixes:
            traffic(port, prefix)
        time.sleep(1.5)
        return idle, status(p.pid)
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release/tollgate"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--port", type=int, default=18400)
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    cwd = tempfile.mkdtemp(prefix="tollgate-mounts-")
    for i in range(3):
        subprocess.run([a.bin, "init", f"m{i}.db", "--demo"], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    print("| databases | --workers | idle VmRSS MiB | idle threads | after traffic VmRSS MiB | after traffic threads |")
    print("|---|---|---|---|---|---|")
    for label, n in [("`--db` (one)", 0), ("`--mount` x1", 1), ("`--mount` x2", 2), ("`--mount` x3", 3)]:
        runs = [run(a, cwd, n, a.port + n) for _ in range(3)]
        med = lambda f: statistics.median(f(r) for r in runs)
        print(f"| {label} | {a.workers} | {med(lambda r: r[0][0]) / 1024:.1f} | {med(lambda r: r[0][1]):.0f} "
              f"| {med(lambda r: r[1][0]) / 1024:.1f} | {med(lambda r: r[1][1]):.0f} |")


if __name__ == "__main__":
    main()
