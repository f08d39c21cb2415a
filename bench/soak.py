#!/usr/bin/env python3
"""tollgate soak test (issue 5). Run it through bench/soak.sh.

Serves a throw-away demo database with a short refresh TTL and a short sweep
interval, drives it with a sustained mix of every kind of request (wrk with
bench/soak.lua, or Python threads when wrk is missing) for a bounded time, samples
the server's RSS and the database size every few seconds, and judges:

  - RSS is flat: it grew by at most --rss-growth-pct from the sweep horizon (or the
    30-second mark, if later) to the end: before the horizon nothing has been swept
    yet, and tables, SQLite's page caches and the allocator are still filling;
  - the database is bounded by the sweep: no growth past the sweep horizon
    (refresh TTL + the sweep's grace for dead sessions + the sweep interval);
  - no answer other than the expected ones (2xx; 403 licence_unavailable), no
    socket errors, and the server is still up and stops cleanly.

Exit status: 0 every check passed; 1 a check failed; 2 the soak could not run;
3 the other checks passed but the sweep horizon lies beyond the run, so the
database bound could not be shown. Standard library only.
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
LUA = os.path.join(HERE, "soak.lua")
DEMO_AUTH = "Basic " + base64.b64encode(b"demo:demo-secret").decode()
FORM = "application/x-www-form-urlencoded"
# src/store/maintenance.rs SWEEP_GRACE_SECS: sessions and tokens dead for longer than this are deleted.
SWEEP_GRACE_S = 20  # the server's --sweep-grace (hidden flag, TOLLGATE_SWEEP_GRACE)
RSS_BASELINE_S = 30


class Fail(Exception):
    pass


def env_int(name, default):
    return int(os.environ.get(name, default))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
    except OSError:
        pass
    return None


def size(path):
    return os.path.getsize(path) if os.path.exists(path) else 0


def mib(n):
    return n / 1048576


class Client:
    """One keep-alive connection, as in bench/bench.py."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, body=None, headers=None):
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            raise
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return r.status, doc

    def token(self, body):
        return self.call("POST", "/token", body, {"Content-Type": FORM, "Authorization": DEMO_AUTH})


class Soak:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="tollgate-soak-", dir=a.tmpdir)
        self.db = os.path.join(self.tmp, "soak.db")
        self.tokens_path = os.path.join(self.tmp, "tokens")
        self.port = free_port()
        self.server = None
        self.samples = []
        self.sessions = {}  # reader / writer: the refresh token that keeps it alive
        self.seats_max = 0
        self.over_granted = []  # (t, seats held) whenever more than the pool
        # A private copy, so that a concurrent `cargo build` cannot swap the binary mid-run.
        self.bin = os.path.join(self.tmp, "tollgate")
        shutil.copy2(a.bin, self.bin)

    # -- server
    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
        subprocess.run([self.bin, "init", self.db, "--demo"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = sqlite3.connect(self.db)
        c.execute("UPDATE licence SET seats = ?", (self.a.seats,))
        c.commit()
        c.close()
        env["RUST_LOG"] = self.a.rust_log
        env["TOLLGATE_SWEEP_INTERVAL"] = str(self.a.sweep_interval)
        env["TOLLGATE_SWEEP_GRACE"] = str(self.a.sweep_grace)
        # The audit trail is bounded by its retention, not the sweep: keep it as short.
        env["TOLLGATE_AUDIT_RETENTION"] = f"{self.a.sweep_grace}s"
        self.log = open(os.path.join(self.tmp, "server.log"), "wb")
        cmd = [self.bin, "--db", self.db, "serve", "--listen", f"127.0.0.1:{self.port}",
               "--refresh-ttl", str(self.a.refresh_ttl)]
        self.server = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.server.poll() is not None:
                raise Fail(f"server exited with {self.server.returncode}; log: {self.tmp}/server.log")
            try:
                if Client(self.port).call("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise Fail("server did not answer /healthz within 30 s")

    def stop(self):
        """SIGTERM, as an operator stops it; the exit code, or None if it had to be killed."""
        if not self.server or self.server.poll() is not None:
            return self.server.returncode if self.server else None
        self.server.send_signal(signal.SIGTERM)
        try:
            return self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
            return None

    # -- the two long-lived sessions the load reads and writes with
    def keep_sessions(self):
        """Opens (first call) or refreshes the reader and writer sessions, and publishes
        their access tokens for the load generator."""
        c = Client(self.port)  # a new connection: the server closes idle ones
        tokens = {}
        for name, grant in (("reader", "scope=view"), ("writer", "scope=all")):
            if name in self.sessions:
                body = f"grant_type=refresh_token&refresh_token={self.sessions[name]}"
            else:
                body = f"grant_type=client_credentials&{grant}"
            try:
                status, doc = c.token(body)
            except (http.client.HTTPException, OSError) as e:
                raise Fail(f"{name} session: {e}")
            if status != 200 or not isinstance(doc, dict):
                raise Fail(f"{name} session: HTTP {status} {doc}")
            self.sessions[name] = doc["refresh_token"]
            tokens[name] = doc["access_token"]
        tmp = self.tokens_path + ".new"
        with open(tmp, "w") as f:
            f.write(f"reader {tokens['reader']}\nwriter {tokens['writer']}\n")
        os.replace(tmp, self.tokens_path)

    # -- sampling
    def snapshot(self):
        """A read transaction, then the time. In that order: every grant the snapshot holds
        read its clock before it committed, so no session whose seat it took still looks
        live here (the other order can count a seat twice across a second boundary)."""
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5, isolation_level=None)
        c.execute("BEGIN")
        c.execute("SELECT count(*) FROM licence").fetchone()
        return c, int(time.time())

    def rows(self):
        try:
            c, now = self.snapshot()
            q = lambda sql, *p: c.execute(sql, p).fetchone()[0]
            r = {
                "sessions": q("SELECT count(*) FROM sessions"),
                "sessions_live": q("SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > ?", now),
                "seats_held": q("SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL "
                                "AND expires_at > ?", now),
                "access_tokens": q("SELECT count(*) FROM access_tokens"),
                "refresh_tokens": q("SELECT count(*) FROM refresh_tokens"),
                "audit": q("SELECT count(*) FROM audit"),
                "products": q("SELECT count(*) FROM products"),
            }
            c.close()
            return r
        except sqlite3.Error as e:
            return {"error": str(e)}

    def probe_seats(self, t0):
        """API.md §2: never more seats held than the pool has. Cheap (a partial index), so
        it runs every second: an over-grant lasts only until a session expires."""
        try:
            c, now = self.snapshot()
            held = c.execute("SELECT count(*) FROM sessions WHERE licensed = 1 AND revoked_at IS NULL "
                             "AND expires_at > ?", (now,)).fetchone()[0]
            c.close()
        except sqlite3.Error:
            return
        self.seats_max = max(self.seats_max, held)
        if held > self.a.seats:
            self.over_granted.append((round(time.monotonic() - t0, 1), held))

    def sample(self, t0):
        pid = self.server.pid
        s = {
            "t": round(time.monotonic() - t0, 1),
            "rss_kib": proc_status(pid, "VmRSS"),
            "hwm_kib": proc_status(pid, "VmHWM"),
            "threads": proc_status(pid, "Threads"),
            "db_bytes": size(self.db),
            "wal_bytes": size(self.db + "-wal"),
            "rows": self.rows(),
        }
        s["db_wal_bytes"] = s["db_bytes"] + s["wal_bytes"]
        self.samples.append(s)
        held = s["rows"].get("seats_held")
        if held is not None:
            self.seats_max = max(self.seats_max, held)
            if held > self.a.seats:
                self.over_granted.append((s["t"], held))
        r = s["rows"]
        print(f"  t={s['t']:6.1f}s  RSS {s['rss_kib'] / 1024:6.1f} MiB  DB+WAL {mib(s['db_wal_bytes']):7.1f} MiB  "
              f"sessions {r.get('sessions', '?'):>7} (live {r.get('sessions_live', '?')}, "
              f"seats {r.get('seats_held', '?')})  audit {r.get('audit', '?'):>7}", file=sys.stderr, flush=True)

    # -- the load
    def run_wrk(self, out):
        env = dict(os.environ, SOAK_OUT=out, SOAK_TOKENS=self.tokens_path, SOAK_AUTH=DEMO_AUTH,
                   SOAK_REFRESH_TTL=str(self.a.refresh_ttl))
        cmd = ["wrk", "-t1", f"-c{self.a.connections}", f"-d{self.a.duration}s", "--timeout=10s",
               "-s", LUA, f"http://127.0.0.1:{self.port}"]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def run_python(self, stop, result):
        """The fallback load: the same mix from Python threads (far slower than wrk)."""
        counts = {"statuses": Counter(), "unexpected": Counter(), "sent": Counter(), "errors": Counter()}
        lock = threading.Lock()

        def worker():
            c = Client(self.port)
            stack, n = [], 0
            while not stop.is_set():
                n += 1
                k = n % 20
                with open(self.tokens_path) as f:
                    tok = dict(line.split() for line in f if line.strip())
                rd = {"Authorization": f"Bearer {tok['reader']}"}
                fresh = [t for t, at in stack if time.time() - at < self.a.refresh_ttl - 5]
                if k < 10:
                    kind, req = "read", ("GET", "/api/v1/products/NUT-M6", None, rd)
                elif k == 10:
                    kind, req = "list", ("GET", "/api/v1/products?limit=20&q=soak", None, rd)
                elif k == 11:
                    kind, req = "me", ("GET", "/api/v1/me", None, rd)
                elif k == 14:
                    kind, req = "licensed_grant", ("POST", "/token", "grant_type=client_credentials", None)
                elif k in (15, 16, 17) and fresh:
                    t = fresh[-1]
                    stack = [(x, at) for x, at in stack if x != t]
                    if k == 17:
                        kind, req = "revoke", ("POST", "/revoke", f"token_type_hint=refresh_token&token={t}", None)
                    else:
                        kind, req = "refresh", ("POST", "/token", f"grant_type=refresh_token&refresh_token={t}", None)
                elif k >= 18:
                    sku = f"SOAK-{n % 200}"
                    body = json.dumps({"sku": sku, "name": f"Soak part {n}", "description": "written by bench/soak",
                                       "price_cents": n % 10000, "stock": n % 5000})
                    kind, req = "write", ("PUT", f"/api/v1/products/{sku}", body,
                                          {"Authorization": f"Bearer {tok['writer']}",
                                           "Content-Type": "application/json"})
                else:
                    kind, req = "view_grant", ("POST", "/token", "grant_type=client_credentials&scope=view", None)
                method, path, body, headers = req
                if headers is None:
                    headers = {"Content-Type": FORM, "Authorization": DEMO_AUTH}
                try:
                    status, doc = c.call(method, path, body, headers)
                except (http.client.HTTPException, OSError) as e:
                    with lock:
                        counts["errors"][type(e).__name__] += 1
                    continue
                if 200 <= status < 300 and isinstance(doc, dict) and "refresh_token" in doc:
                    stack = stack[-511:] + [(doc["refresh_token"], time.time())]
                with lock:
                    counts["sent"][kind] += 1
                    counts["statuses"][str(status)] += 1
                    if not (200 <= status < 300 or (status == 403 and isinstance(doc, dict)
                                                     and doc.get("error") == "licence_unavailable")):
                        code = (doc or {}).get("error") or (doc or {}).get("title") or ""
                        counts["unexpected"][f"{status} {code}"] += 1

        t0 = time.monotonic()
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.a.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dur = time.monotonic() - t0
        result.update({"requests": sum(counts["statuses"].values()), "duration_us": int(dur * 1e6),
                       "errors": dict(counts["errors"]), "statuses": dict(counts["statuses"]),
                       "unexpected": dict(counts["unexpected"]), "sent": dict(counts["sent"])})

    def main(self):
        a = self.a
        print(f"soak: {a.duration} s of mixed load ({a.load}, {a.connections} connections), "
              f"refresh TTL {a.refresh_ttl} s, sweep every {a.sweep_interval} s, {a.seats} seats; "
              f"sampling every {a.sample} s", file=sys.stderr, flush=True)
        self.start()
        self.keep_sessions()
        out = os.path.join(self.tmp, "load.json")
        t0 = time.monotonic()
        stop = threading.Event()
        result = {}
        if a.load == "wrk":
            load = self.run_wrk(out)
            running = lambda: load.poll() is None
        else:
            load = threading.Thread(target=self.run_python, args=(stop, result), daemon=True)
            load.start()
            running = load.is_alive
        self.sample(t0)
        next_sample = t0 + a.sample
        next_refresh = t0 + max(1, a.refresh_ttl // 3)
        next_probe = t0 + 1
        try:
            while running():
                now = time.monotonic()
                if a.load != "wrk" and now - t0 >= a.duration:
                    stop.set()
                if now >= next_refresh:
                    self.keep_sessions()
                    next_refresh += max(1, a.refresh_ttl // 3)
                if now >= next_probe:
                    self.probe_seats(t0)
                    next_probe += 1
                if now >= next_sample:
                    self.sample(t0)
                    next_sample += a.sample
                if self.server.poll() is not None:
                    raise Fail(f"server died during the load (exit {self.server.returncode}); "
                               f"log: {self.tmp}/server.log")
                time.sleep(0.2)
        finally:
            stop.set()
            if a.load == "wrk" and load.poll() is None:
                load.terminate()
                load.wait()
        self.sample(t0)
        if a.load == "wrk":
            text = load.stdout.read()
            if load.returncode != 0 or not os.path.exists(out):
                raise Fail(f"wrk failed ({load.returncode}): {text[-2000:]}")
            with open(out) as f:
                result = json.load(f)
        up = Client(self.port).call("GET", "/healthz")[0] == 200
        exit_code = self.stop()
        self.db_after = size(self.db)
        return self.report(result, up, exit_code)

    # -- judgement
    def report(self, r, up, exit_code):
        a, s = self.a, self.samples
        problems, notes = [], []
        dur = r["duration_us"] / 1e6
        print("", file=sys.stderr)
        lines = [f"requests: {r['requests']:,} in {dur:.0f} s ({r['requests'] / dur:,.0f}/s); "
                 f"by status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["statuses"].items())),
                 "sent: " + ", ".join(f"{k} {v:,}" for k, v in sorted(r["sent"].items()))]
        if "latency_us" in r:
            lat = r["latency_us"]
            lines.append(f"latency (as wrk reports it): p50 {lat['p50'] / 1000:.2f} ms, p99 {lat['p99'] / 1000:.2f} ms, "
                         f"max {lat['max'] / 1000:.1f} ms")
        if r["unexpected"]:
            problems.append("unexpected answers: " + ", ".join(f"{k} x{v}" for k, v in r["unexpected"].items()))
        errors = {k: v for k, v in r["errors"].items() if v}
        if errors:
            problems.append(f"socket errors/timeouts: {errors}")
        lines.append(f"seats held: at most {self.seats_max} of {a.seats} (checked every second)")
        if self.over_granted:
            problems.append(f"more seats held than the pool has ({a.seats}): "
                            + ", ".join(f"{n} at {t:.0f} s" for t, n in self.over_granted[:10]))
        if not up:
            problems.append("the server did not answer /healthz after the load")
        if exit_code != 0:
            problems.append(f"the server did not stop cleanly on SIGTERM (exit {exit_code})")

        # RSS: flat from the sweep horizon (at least the 30-second mark) to the end.
        horizon = a.refresh_ttl + a.sweep_grace + a.sweep_interval
        baseline_s = max(RSS_BASELINE_S, horizon)
        start, end = s[0], s[-1]
        base = next((x for x in s if x["t"] >= baseline_s), None)
        lines.append(f"RSS: start {start['rss_kib'] / 1024:.1f} MiB, "
                     + (f"at {base['t']:.0f} s {base['rss_kib'] / 1024:.1f} MiB, " if base else "")
                     + f"end {end['rss_kib'] / 1024:.1f} MiB, peak (VmHWM) {end['hwm_kib'] / 1024:.1f} MiB; "
                     f"threads {start['threads']} -> {end['threads']}")
        if base and base is not end:
            growth = 100 * (end["rss_kib"] - base["rss_kib"]) / base["rss_kib"]
            lines.append(f"RSS growth from {base['t']:.0f} s to the end: {growth:+.1f} % (limit {a.rss_growth_pct} %)")
            if growth > a.rss_growth_pct:
                problems.append(f"RSS grew {growth:.1f} % after the {baseline_s}-second mark")
        else:
            notes.append(f"RSS growth not judged: the run is shorter than {baseline_s} s plus one sample")

        # Database: bounded once the sweep horizon has passed.
        peak = max(s, key=lambda x: x["db_wal_bytes"])
        rate = (end["db_wal_bytes"] - start["db_wal_bytes"]) / max(1, end["t"] - start["t"]) * 60
        lines.append(f"DB+WAL: start {mib(start['db_wal_bytes']):.1f} MiB, end {mib(end['db_wal_bytes']):.1f} MiB, "
                     f"max {mib(peak['db_wal_bytes']):.1f} MiB (at {peak['t']:.0f} s); "
                     f"{mib(rate):.2f} MiB/min over the run; {mib(self.db_after):.1f} MiB after shutdown")
        rows = end["rows"]
        lines.append("rows at the end: " + ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                                    for k, v in rows.items()))
        past = [x for x in s if x["t"] >= horizon]
        db_bound_shown = False
        if len(past) >= 2:
            grew = past[-1]["db_wal_bytes"] - past[0]["db_wal_bytes"]
            lines.append(f"DB+WAL from the sweep horizon ({horizon} s) to the end: {grew / 1048576:+.1f} MiB")
            if grew > 0.1 * past[0]["db_wal_bytes"]:
                problems.append(f"the database kept growing past the sweep horizon ({horizon} s): "
                                f"{mib(past[0]['db_wal_bytes']):.1f} -> {mib(past[-1]['db_wal_bytes']):.1f} MiB")
            else:
                db_bound_shown = True
        else:
            notes.append(
                f"DB bound NOT SHOWN: the sweep horizon is {horizon} s (refresh TTL {a.refresh_ttl} + sweep grace "
                f"{a.sweep_grace} + interval {a.sweep_interval}) and the run lasted {a.duration} s. The sweep "
                f"deletes sessions dead for longer than its grace (TOLLGATE_SWEEP_GRACE) and audit rows older than "
                f"--audit-retention (set to the same here), so the file grows until then.")

        lines += [f"PROBLEM: {p}" for p in problems] + [f"note: {n}" for n in notes]
        lines.append(f"soak: {'FAILED' if problems else 'ok'}"
                     + ("" if problems or db_bound_shown else " (but the database bound was not shown)"))
        text = "\n".join(lines)
        print(text)
        doc = {"config": vars(a), "load": r, "samples": s, "db_bytes_after_shutdown": self.db_after,
               "problems": problems, "notes": notes, "table": text}
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(f"\nJSON: {os.path.relpath(a.json, os.getcwd())}")
        if a.keep:
            print(f"kept: {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            return 1
        return 0 if db_bound_shown else 3


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(os.path.dirname(HERE), "target/release/tollgate"))
    p.add_argument("--duration", type=int, default=env_int("DURATION", 180),
                   help="seconds of load (default: $DURATION or 180)")
    p.add_argument("--connections", type=int, default=env_int("SOAK_CONNECTIONS", 16))
    p.add_argument("--refresh-ttl", type=int, default=env_int("SOAK_REFRESH_TTL", 30))
    p.add_argument("--sweep-interval", type=int, default=env_int("SOAK_SWEEP_INTERVAL", 5))
    p.add_argument("--sweep-grace", type=int, default=env_int("SOAK_SWEEP_GRACE", SWEEP_GRACE_S),
                   help="the server's grace before it deletes dead sessions (compiled in: %(default)s s)")
    p.add_argument("--seats", type=int, default=env_int("SOAK_SEATS", 50))
    p.add_argument("--sample", type=int, default=env_int("SOAK_SAMPLE", 10), help="seconds between samples")
    p.add_argument("--rss-growth-pct", type=float, default=20.0)
    p.add_argument("--load", choices=["wrk", "python"], default=os.environ.get("SOAK_LOAD") or
                   ("wrk" if shutil.which("wrk") else "python"))
    p.add_argument("--rust-log", default="info", help="server RUST_LOG (default info, as shipped)")
    p.add_argument("--tmpdir", help="where the throw-away database goes (default: the system temp directory)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "soak-latest.json"))
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (database, server log)")
    a = p.parse_args()
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"soak: no executable at {a.bin}; run cargo build --release")
    s = Soak(a)
    try:
        return s.main()
    except Fail as e:
        print(f"soak: FAILED: {e}", file=sys.stderr)
        return 2
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(main())
