#!/usr/bin/env python3
"""tollgate benchmark driver (issue 7). Run it through bench/run.sh.

Creates a throw-away database, starts the server pinned to one core, drives it
with wrk from the other core, and prints one table plus a JSON file. Standard
library only.
"""
import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LUA = os.path.join(HERE, "wrk.lua")
CLK_TCK = os.sysconf("SC_CLK_TCK")

PBKDF2_ITERATIONS = 600_000  # tollgate's default (OWASP 2023)
SEATS = 1_000_000
PRODUCT = "NUT-M6"
PRODUCT_BODY = json.dumps(
    {"sku": PRODUCT, "name": "Hex nut M6", "description": "DIN 934", "price_cents": 5, "stock": 8000},
    separators=(",", ":"),
)
FORM = "application/x-www-form-urlencoded"

# Issue 7 targets, as ratios to scenario 1 (GET /healthz) of the same run.
TARGETS = {"view_grant": 0.40, "licensed_grant": 0.25, "bearer_get": 0.60}
GRANT_P99_MS = 2.0
GRANT_SCENARIOS = ("view_grant", "licensed_grant", "refresh_grant")
RSS_MIB = 30.0
# Issue 17 targets on PostgreSQL: every grant scenario at least as many req/s as
# pgbench's one-row INSERT transactions/s at the same client count, grant p99 <= 10 ms.
PG_TARGET_RATIO = 1.0
PG_GRANT_P99_MS = 10.0
PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PGBENCH_SCRIPT = "INSERT INTO bench_ref (v) VALUES (1);\n"


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


DEMO_AUTH = basic("demo", "demo-secret")
# --mounts N: the path of the mount under load (/m0); "" with one database.
PREFIX = ""


class Fail(Exception):
    pass


# ---------------------------------------------------------------- HTTP helpers

class Client:
    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method, path, body=None, headers=None):
        try:
            self.conn.request(method, PREFIX + path, body=body, headers=headers or {})
            r = self.conn.getresponse()
            data = r.read()
        except (http.client.HTTPException, OSError):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            raise
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = None
        return r.status, doc

    def token(self, body, auth=DEMO_AUTH):
        return self.call("POST", "/token", body, {"Content-Type": FORM, "Authorization": auth})

    def grant(self, scope=None, auth=DEMO_AUTH):
        body = "grant_type=client_credentials" + (f"&scope={scope}" if scope else "")
        status, doc = self.token(body, auth)
        check_token(status, doc, f"client_credentials grant (scope={scope or 'default'})")
        return doc

    def me(self, access):
        return self.call("GET", "/api/v1/me", headers={"Authorization": f"Bearer {access}"})


def check_token(status, doc, what):
    if status != 200 or not isinstance(doc, dict):
        raise Fail(f"{what}: HTTP {status} {doc}")
    for k in ("access_token", "refresh_token"):
        if len(doc.get(k) or "") < 43:
            raise Fail(f"{what}: no real {k} in {doc}")
    if doc.get("token_type") != "Bearer":
        raise Fail(f"{what}: token_type {doc.get('token_type')!r}")


def check_real_access(client, access, scope, seat):
    """The token is real: /api/v1/me knows it, with the expected scope and seat."""
    status, doc = client.me(access)
    if status != 200 or doc.get("scope") != scope or doc.get("seat") is not seat:
        raise Fail(f"/api/v1/me with the new token: HTTP {status} {doc}")


# ---------------------------------------------------------------- /proc helpers

def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, all threads


def context_switches(pid):
    """Context switches (voluntary + involuntary) of all the process's threads so far."""
    n = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/status") as f:
                    for line in f:
                        if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                            n += int(line.split()[1])
            except OSError:
                pass  # a thread that ended meanwhile
    except OSError:
        pass
    return n


def system_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user + nice + system + irq + softirq: what processes are charged for (not idle, iowait, steal)
    return v[0] + v[1] + v[2] + v[5] + v[6]


def all_proc_ticks():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[int(d)] = (comm, int(fields[11]) + int(fields[12]))
    return out


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- database setup

def pbkdf2_phc(secret, iterations):
    salt = secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    return f"$pbkdf2-sha256$i={iterations}${b64(salt)}${b64(dk)}"


def prepare_db(db, n_users):
    """Seats high enough never to run out, plus n_users distinct API users for
    scenario 8. They share one PBKDF2 hash (computed once here, at the server's
    iteration count): the server's verified-credential record is keyed by client
    id, so each of them still costs the server one full PBKDF2 verification."""
    phc = pbkdf2_phc("bench-secret", PBKDF2_ITERATIONS)
    c = sqlite3.connect(db)
    c.execute("UPDATE licence SET seats = ?", (SEATS,))
    cols = [r[1] for r in c.execute("PRAGMA table_info(USERS)")]
    now = int(time.time())
    names = [f"bench-{i:05d}" for i in range(n_users)] + ["bench-check"]
    for name in names:
        if "CREATED_AT" in cols:
            c.execute('INSERT INTO USERS (NICKNAME, "PASSWORD", APIUSER, ENABLED, CREATED_AT) '
                      "VALUES (?, ?, 1, 1, ?)", (name, phc, now))
        else:
            c.execute('INSERT INTO USERS (NICKNAME, "PASSWORD", APIUSER, ENABLED) VALUES (?, ?, 1, 1)',
                      (name, phc))
        c.execute("INSERT INTO user_scopes (user_id, scope) VALUES (?, 'view')", (c.execute(
            "SELECT ID FROM USERS WHERE NICKNAME = ?", (name,)).fetchone()[0],))
    c.commit()
    c.close()
    return names[:-1]


def psql(url, sql):
    """Runs SQL on a PostgreSQL URL with psql; the rows, tab-separated."""
    out = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qAtF", "\t", "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def prepare_pg(url, n_users):
    """prepare_db on PostgreSQL."""
    phc = pbkdf2_phc("bench-secret", PBKDF2_ITERATIONS)
    now = int(time.time())
    names = [f"bench-{i:05d}" for i in range(n_users)] + ["bench-check"]
    values = ",".join(f"('{n}', '{phc}', 1, 1, {now})" for n in names)
    psql(url, f"UPDATE licence SET seats = {SEATS};"
              f'INSERT INTO users (nickname, "PASSWORD", apiuser, enabled, created_at) VALUES {values};'
              "INSERT INTO user_scopes (user_id, scope) SELECT id, 'view' FROM users "
              "WHERE nickname LIKE 'bench-%';")
    return names[:-1]


def pg_row_counts(url):
    out = {}
    for t in ("sessions", "access_tokens", "refresh_tokens", "audit", "products", "users"):
        out[t] = int(psql(url, f"SELECT count(*) FROM {t}")[0][0])
    return out


def row_counts(db):
    c = sqlite3.connect(db)
    out = {}
    for t in ("sessions", "access_tokens", "refresh_tokens", "audit", "products", "USERS"):
        try:
            out[t] = c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        except sqlite3.Error:
            pass
    c.close()
    return out


# ---------------------------------------------------------------- the run

class Bench:
    def __init__(self, a):
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="tollgate-bench-", dir=a.tmpdir)
        self.db = os.path.join(self.tmp, "bench.db")
        self.pg_admin = a.postgres
        if self.pg_admin:
            # A throw-away database on that server, dropped after the run.
            self.pg_name = f"tollgate_bench_{os.getpid()}"
            base, _, _ = self.pg_admin.rpartition("/")
            self.db = f"{base}/{self.pg_name}"
            self.pgb_name = f"tollgate_pgbench_{os.getpid()}"
            self.pgb_url = f"{base}/{self.pgb_name}"
            self.pgb_script = os.path.join(self.tmp, "pgbench-insert.sql")
        self.ports = [free_port() for _ in range(a.instances)]
        self.port = self.ports[0]
        self.base = f"http://127.0.0.1:{self.port}"
        self.server = None
        self.servers = []
        self.pgbench = []
        cpus = a.server_cpu.split(",")
        self.pin_servers = [["taskset", "-c", cpus[i % len(cpus)]] if a.pin else []
                            for i in range(a.instances)]
        self.pin_server = self.pin_servers[0]
        self.pin_client = ["taskset", "-c", a.client_cpu] if a.pin and a.client_cpu else []
        self.results = []
        self.pbkdf2_users = []
        # A private copy, so that a concurrent `cargo build` cannot swap the binary mid-run.
        self.bin = os.path.join(self.tmp, "tollgate")
        shutil.copy2(a.bin, self.bin)

    # -- server
    def start(self):
        env = dict(os.environ)
        env["RUST_LOG"] = self.a.rust_log
        for k in list(env):
            if k.startswith("TOLLGATE_"):
                del env[k]
        for i, port in enumerate(self.ports):
            log = open(os.path.join(self.tmp, f"server{i or ''}.log"), "wb")
            dbs = ["--db", self.db] if self.a.mounts == 1 else []
            cmd = self.pin_servers[i] + [self.bin, *dbs, "serve", *self.mount_args(),
                                         "--listen", f"127.0.0.1:{port}", "--workers", str(self.a.workers),
                                         *self.a.server_arg]
            self.servers.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        self.server = self.servers[0]
        for server, port in zip(self.servers, self.ports):
            deadline = time.time() + 30
            while True:
                if server.poll() is not None:
                    raise Fail(f"server exited with {server.returncode}; log: {self.tmp}/server*.log")
                try:
                    status, _ = Client(port).call("GET", "/healthz")
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.time() > deadline:
                    raise Fail("server did not answer /healthz within 30 s")
                time.sleep(0.1)

    def mount_args(self):
        """--mounts N: the prepared database under /m0 (the one under load) and a copy of
        it under each of /m1 … (idle)."""
        if self.a.mounts == 1:
            return []
        args = ["--mount", f"/m0={self.db}"]
        for i in range(1, self.a.mounts):
            copy = os.path.join(self.tmp, f"bench-m{i}.db")
            shutil.copy2(self.db, copy)
            args += ["--mount", f"/m{i}={copy}"]
        return args

    def stop(self):
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()

    # -- one wrk run
    def split_lines(self, path, n):
        """BENCH_LINES for n load generators: each its own share, so that no refresh
        token or first-time credential goes to two instances."""
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l]
        parts = []
        for i in range(n):
            part = f"{path}.{i}"
            with open(part, "w") as f:
                f.write("".join(l + "\n" for l in lines[i::n]))
            parts.append(part)
        return parts

    def wrk(self, path, env, seconds, connections, timeout_s, perf_name=None):
        n = len(self.ports)
        outs = [os.path.join(self.tmp, f"wrk-out{i}.json") for i in range(n)]
        for out in outs:
            if os.path.exists(out):
                os.remove(out)
        lines = self.split_lines(env["BENCH_LINES"], n) if n > 1 and env.get("BENCH_LINES") else None
        cmds, envs = [], []
        for i, port in enumerate(self.ports):
            e = dict(os.environ)
            e.update({k: v for k, v in env.items() if v is not None})
            e["BENCH_OUT"] = outs[i]
            e["BENCH_PREFIX"] = PREFIX
            if lines:
                e["BENCH_LINES"] = lines[i]
            conns = connections // n + (1 if i < connections % n else 0)
            cmds.append(self.pin_client + ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s",
                                           f"--timeout={timeout_s}s", "-s", LUA,
                                           f"http://127.0.0.1:{port}" + PREFIX + path])
            envs.append(e)
        pids = [s.pid for s in self.servers]
        t0_srv = sum(proc_ticks(p) for p in pids)
        t0_cs = sum(context_switches(p) for p in pids)
        t0_sys = system_busy_ticks()
        t0_kids = children_cpu_s()
        t0_all = all_proc_ticks()
        perf = None
        if perf_name and self.a.perf:
            os.makedirs(self.a.perf, exist_ok=True)
            perf = subprocess.Popen(self.pin_client + [
                "perf", "record", "-q", "-e", "cpu-clock", "-F", str(self.a.perf_freq),
                "--call-graph", "dwarf,32768", "-p", str(self.server.pid),
                "-o", os.path.join(self.a.perf, perf_name + ".perf.data")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        w0 = time.monotonic()
        procs = [subprocess.Popen(c, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                 for c, e in zip(cmds, envs)]
        outputs = [p.communicate()[0] for p in procs]
        wall = time.monotonic() - w0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        srv = (sum(proc_ticks(p) for p in pids) - t0_srv) / CLK_TCK
        r_cs = sum(context_switches(p) for p in pids) - t0_cs
        busy = (system_busy_ticks() - t0_sys) / CLK_TCK
        kids = children_cpu_s() - t0_kids
        t1_all = all_proc_ticks()
        others = {}
        for pid, (comm, ticks) in t1_all.items():
            if pid in pids or pid == os.getpid():
                continue
            d = ticks - t0_all.get(pid, (comm, 0))[1]
            if d > 0:
                key = comm.split("/")[0]
                others[key] = others.get(key, 0) + d / CLK_TCK
        parts = []
        for p, out, text in zip(procs, outs, outputs):
            if p.returncode != 0 or not os.path.exists(out):
                raise Fail(f"wrk failed ({p.returncode}): {text[-2000:]}")
            with open(out) as f:
                parts.append(json.load(f))
        r = merge_wrk(parts)
        r["server_cpu_s"] = srv
        r["server_context_switches"] = r_cs
        r["loadgen_cpu_s"] = kids
        r["other_cpu_s"] = max(0.0, busy - srv - kids)
        r["other_top"] = sorted(((round(v, 2), k) for k, v in others.items()), reverse=True)[:4]
        r["wall_s"] = wall
        return r

    # -- scenarios: each returns (path, wrk env, connections, seconds, note)
    def s_healthz(self, c):
        status, doc = c.call("GET", "/healthz")
        if status != 200:
            raise Fail(f"GET /healthz: HTTP {status} {doc}")
        return "/healthz", {"BENCH_MODE": "static"}, None

    def s_view_grant(self, c):
        doc = c.grant("view")  # the first one pays PBKDF2; later ones hit the verified record
        check_real_access(c, doc["access_token"], "view", False)
        return "/token", {"BENCH_MODE": "static", "BENCH_METHOD": "POST", "BENCH_CTYPE": FORM,
                          "BENCH_AUTH": DEMO_AUTH,
                          "BENCH_BODY": "grant_type=client_credentials&scope=view"}, None

    def s_licensed_grant(self, c):
        doc = c.grant()
        if doc.get("scope") != "all view":
            raise Fail(f"licensed grant: scope {doc.get('scope')!r}")
        check_real_access(c, doc["access_token"], "all view", True)
        return "/token", {"BENCH_MODE": "static", "BENCH_METHOD": "POST", "BENCH_CTYPE": FORM,
                          "BENCH_AUTH": DEMO_AUTH,
                          "BENCH_BODY": "grant_type=client_credentials"}, \
            f"seats = {SEATS:,}; every grant opens a licensed session"

    def seed_refresh_tokens(self, c, n, scope=None):
        path = os.path.join(self.tmp, f"seed-{secrets.token_hex(4)}.txt")
        with open(path, "w") as f:
            for _ in range(n):
                f.write(c.grant(scope)["refresh_token"] + "\n")
        return path

    def s_refresh_grant(self, c):
        doc = c.grant()
        status, new = c.token(f"grant_type=refresh_token&refresh_token={doc['refresh_token']}")
        check_token(status, new, "refresh grant")
        if new["refresh_token"] == doc["refresh_token"]:
            raise Fail("refresh grant did not rotate the refresh token")
        check_real_access(c, new["access_token"], "all view", True)
        return "/token", {"BENCH_MODE": "refresh", "BENCH_GRANT_AUTH": DEMO_AUTH,
                          "BENCH_LINES": self.seed_refresh_tokens(c, 4 * self.a.connections)}, \
            "licensed sessions; each request presents a fresh refresh token (the one the previous refresh returned)"

    def s_bearer_get(self, c):
        access = c.grant("view")["access_token"]
        status, doc = c.call("GET", f"/api/v1/products/{PRODUCT}", headers={"Authorization": f"Bearer {access}"})
        if status != 200 or doc.get("sku") != PRODUCT:
            raise Fail(f"GET product: HTTP {status} {doc}")
        return f"/api/v1/products/{PRODUCT}", {"BENCH_MODE": "static", "BENCH_AUTH": f"Bearer {access}"}, \
            "view token"

    def s_product_write(self, c):
        access = c.grant()["access_token"]
        h = {"Authorization": f"Bearer {access}", "Content-Type": "application/json"}
        status, doc = c.call("PUT", f"/api/v1/products/{PRODUCT}", PRODUCT_BODY, h)
        if status != 200 or doc.get("sku") != PRODUCT:
            raise Fail(f"PUT product: HTTP {status} {doc}")
        return f"/api/v1/products/{PRODUCT}", {"BENCH_MODE": "static", "BENCH_METHOD": "PUT",
                                               "BENCH_AUTH": f"Bearer {access}",
                                               "BENCH_CTYPE": "application/json",
                                               "BENCH_BODY": PRODUCT_BODY}, "PUT, `all` token"

    def s_mixed(self, c):
        access = c.grant("view")["access_token"]
        status, _ = c.call("GET", f"/api/v1/products/{PRODUCT}", headers={"Authorization": f"Bearer {access}"})
        if status != 200:
            raise Fail(f"GET product: HTTP {status}")
        return f"/api/v1/products/{PRODUCT}", {
            "BENCH_MODE": "mixed", "BENCH_GRANT_AUTH": DEMO_AUTH, "BENCH_BEARER": f"Bearer {access}",
            "BENCH_READ_PATH": f"/api/v1/products/{PRODUCT}",
            "BENCH_LINES": self.seed_refresh_tokens(c, 4 * self.a.connections, "view")}, \
            "45 Bearer GETs, 4 view grants, 1 refresh in every 50 requests"

    def s_pbkdf2(self, c):
        doc = c.grant("view", auth=basic("bench-check", "bench-secret"))
        check_real_access(c, doc["access_token"], "view", False)
        path = os.path.join(self.tmp, "pbkdf2-auth.txt")
        with open(path, "w") as f:
            for name in self.pbkdf2_users:
                f.write(basic(name, "bench-secret") + "\n")
        return "/token", {"BENCH_MODE": "walk_auth", "BENCH_METHOD": "POST", "BENCH_CTYPE": FORM,
                          "BENCH_BODY": "grant_type=client_credentials&scope=view",
                          "BENCH_LINES": path}, \
            (f"{len(self.pbkdf2_users):,} distinct API users, each used once: every request is a "
             f"successful first-time verification (PBKDF2-HMAC-SHA256, {PBKDF2_ITERATIONS:,} iterations)")

    def s_script_get(self, c):
        status, doc = c.token("grant_type=client_credentials&scope=admin", auth=basic("ops", "ops-secret"))
        check_token(status, doc, "admin grant")
        admin = {"Authorization": f"Bearer {doc['access_token']}", "Content-Type": "application/json"}
        status, doc = c.call("PUT", "/admin/v1/scripts/bench-hello",
                             json.dumps({"source": "#{ hello: request.client_id }"}), admin)
        if status not in (200, 201):
            raise Fail(f"PUT script: HTTP {status} {doc}")
        access = c.grant("view")["access_token"]
        status, doc = c.call("GET", "/api/v1/custom/bench-hello", headers={"Authorization": f"Bearer {access}"})
        if status != 200 or doc.get("hello") != "demo":
            raise Fail(f"GET script handler: HTTP {status} {doc}")
        return "/api/v1/custom/bench-hello", {"BENCH_MODE": "static", "BENCH_AUTH": f"Bearer {access}"}, \
            "a trivial Rhai handler (API.md §11), view token"

    SCENARIOS = [
        (1, "healthz", "GET /healthz (ceiling)", "s_healthz"),
        (2, "view_grant", "view grant, verified credential", "s_view_grant"),
        (3, "licensed_grant", "licensed grant", "s_licensed_grant"),
        (4, "refresh_grant", "refresh grant", "s_refresh_grant"),
        (5, "bearer_get", "GET product, Bearer", "s_bearer_get"),
        (6, "product_write", "PUT product, `all` token", "s_product_write"),
        (7, "mixed", "mixed 90/8/2 read/grant/refresh", "s_mixed"),
        (8, "pbkdf2", "first-time credential (PBKDF2)", "s_pbkdf2"),
        (9, "script_get", "GET a trivial script handler, Bearer", "s_script_get"),
    ]

    def run_scenario(self, num, key, title, method):
        a = self.a
        pb = key == "pbkdf2"
        conns = a.pbkdf2_connections if pb else a.connections
        seconds = a.pbkdf2_duration if pb else a.duration
        res = {"n": num, "key": key, "title": title, "connections": conns, "duration_s": seconds}
        c = Client(self.port)
        problems = []
        try:
            path, env, note = getattr(self, method)(c)
            res["note"] = note
            if a.warmup > 0 and not pb:
                # warm-up gets its own fresh seed tokens, so the measured run never sees a used one
                wenv = dict(env)
                if "BENCH_LINES" in env:
                    _, wenv, _ = getattr(self, method)(c)
                w = self.wrk(path, wenv, a.warmup, conns, a.timeout)
                werr = self.error_count(w)
                if werr:
                    problems.append(f"warm-up: {werr} errors")
            r = self.wrk(path, env, seconds, conns, a.pbkdf2_timeout if pb else a.timeout,
                         perf_name=f"{num}-{key}")
        except Fail as e:
            res.update(status="FAILED", problems=[str(e)], rps=None)
            return res
        dur = r["duration_us"] / 1e6
        res["rps"] = r["requests"] / dur if dur else 0.0
        res["requests"] = r["requests"]
        res["p50_ms"] = r["latency_us"]["p50"] / 1000
        res["p99_ms"] = r["latency_us"]["p99"] / 1000
        res["latency_us"] = r["latency_us"]
        res["non2xx"] = r["non2xx"] if r["non2xx"] is not None else r["errors"]["status"]
        res["socket_errors"] = {k: v for k, v in r["errors"].items() if k != "status" and v}
        res["server_cpu_pct"] = 100 * r["server_cpu_s"] / dur if dur else 0
        res["server_cpu_us_per_req"] = 1e6 * r["server_cpu_s"] / r["requests"] if r["requests"] else None
        res["server_switches_per_req"] = (r["server_context_switches"] / r["requests"]
                                          if r["requests"] else None)
        res["loadgen_cpu_pct"] = 100 * r["loadgen_cpu_s"] / dur if dur else 0
        res["other_cpu_pct"] = 100 * r["other_cpu_s"] / dur if dur else 0
        res["other_cpu_top_s"] = r["other_top"]  # (CPU seconds, command) of other processes seen
        # The whole machine: server, load generator and everything else (PostgreSQL).
        machine_s = r["server_cpu_s"] + r["loadgen_cpu_s"] + r["other_cpu_s"]
        res["machine_busy_pct"] = 100 * machine_s / dur if dur else 0
        res["machine_cpu_us_per_req"] = 1e6 * machine_s / r["requests"] if r["requests"] else None
        if r.get("sent") and any(r["sent"].values()):
            res["sent"] = r["sent"]
        if res["non2xx"]:
            problems.append(f"{res['non2xx']} non-2xx responses")
        if res["socket_errors"]:
            problems.append(f"socket errors/timeouts {res['socket_errors']}")
        if r["starved"]:
            problems.append(f"{r['starved']} refresh requests found no fresh token")
        if r["exhausted"]:
            problems.append(f"ran out of distinct users ({r['exhausted']} repeats); raise --pbkdf2-users")
        if r["requests"] == 0:
            problems.append("no request completed")
        res["problems"] = problems
        res["status"] = "FAILED" if problems else "ok"
        if res["other_cpu_pct"] > a.disturbed_pct:
            res["disturbed"] = True
        res["rss_kib_after"] = proc_status(self.server.pid, "VmRSS")
        return res

    @staticmethod
    def error_count(r):
        n = r["non2xx"] if r["non2xx"] is not None else r["errors"]["status"]
        return n + sum(v for k, v in r["errors"].items() if k != "status") + r["starved"] + r["exhausted"]

    def main(self):
        a = self.a
        t_start = time.time()
        env = dict(os.environ, TOLLGATE_PBKDF2_ITERATIONS=str(PBKDF2_ITERATIONS))
        if self.pg_admin:
            psql(self.pg_admin, f"DROP DATABASE IF EXISTS {self.pg_name}")
            psql(self.pg_admin, f"CREATE DATABASE {self.pg_name}")
            if a.pgbench:
                psql(self.pg_admin, f"DROP DATABASE IF EXISTS {self.pgb_name}")
                psql(self.pg_admin, f"CREATE DATABASE {self.pgb_name}")
                psql(self.pgb_url, "CREATE TABLE bench_ref (id BIGSERIAL PRIMARY KEY, v INTEGER NOT NULL)")
                with open(self.pgb_script, "w") as f:
                    f.write(PGBENCH_SCRIPT)
        subprocess.run([self.bin, "init", self.db, "--demo"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.pg_admin:
            self.pbkdf2_users = prepare_pg(self.db, a.pbkdf2_users)
        else:
            self.pbkdf2_users = prepare_db(self.db, a.pbkdf2_users)
        self.start()
        wanted = set(a.only.split(",")) if a.only else None
        try:
            rounds = []
            for rnd in range(1, a.rounds + 1):
                runs = []
                pgb = None
                if self.pg_admin and a.pgbench:
                    print(f"  [round {rnd}/{a.rounds}] pgbench -c{a.connections} one-row INSERT ...",
                          file=sys.stderr, flush=True)
                    tps, lat, p99, cores = run_pgbench(self.pgb_url, a.connections, a.duration,
                                                       self.pgb_script, self.pin_client)
                    pgb = {"round": rnd, "tps": tps, "latency_avg_ms": lat, "p99_ms": p99,
                           "machine_busy_pct": 100 * cores, "machine_cpu_us_per_tx": 1e6 * cores / tps}
                    self.pgbench.append(pgb)
                for num, key, title, method in self.SCENARIOS:
                    if wanted and str(num) not in wanted and key not in wanted:
                        continue
                    if key == "pbkdf2" and rnd > 1:
                        continue  # seconds per request: one round says all there is
                    print(f"  [round {rnd}/{a.rounds}] [{num}/8] {title} ...", file=sys.stderr, flush=True)
                    r = self.run_scenario(num, key, title, method)
                    r["round"] = rnd
                    runs.append(r)
                # Each run's ratio is to the ceiling measured in the same round, minutes apart
                # at most: the host's speed drifts by 10-20 % over a run on a shared machine.
                base = next((r for r in runs if r["key"] == "healthz" and r.get("rps")), None)
                for r in runs:
                    r["ratio"] = (r["rps"] / base["rps"]) if base and r.get("rps") else None
                    r["pg_ratio"] = (r["rps"] / pgb["tps"]) if pgb and r.get("rps") else None
                rounds.append(runs)
            self.runs = [r for runs in rounds for r in runs]
            self.results = median_runs(rounds)
            self.hwm_kib = proc_status(self.server.pid, "VmHWM")
            self.rss_kib = proc_status(self.server.pid, "VmRSS")
            self.threads = proc_status(self.server.pid, "Threads")
            if self.pg_admin:
                self.wal_bytes = 0
                self.db_bytes_live = int(psql(self.db, "SELECT pg_database_size(current_database())")[0][0])
            else:
                self.wal_bytes = os.path.getsize(self.db + "-wal") if os.path.exists(self.db + "-wal") else 0
                self.db_bytes_live = os.path.getsize(self.db)
        finally:
            self.stop()
        if self.pg_admin:
            self.db_bytes = self.db_bytes_live
            self.rows = pg_row_counts(self.db)
            psql(self.pg_admin, f"DROP DATABASE IF EXISTS {self.pg_name}")
            if a.pgbench:
                psql(self.pg_admin, f"DROP DATABASE IF EXISTS {self.pgb_name}")
        else:
            self.db_bytes = os.path.getsize(self.db)
            self.rows = row_counts(self.db)
        self.elapsed = time.time() - t_start
        return self.report()

    # -- output
    def report(self):
        a = self.a
        by = {r["key"]: r for r in self.results}

        targets = []
        def t(name, ok, value, goal):
            targets.append({"target": name, "met": ok, "value": value, "goal": goal})
        for key, goal in TARGETS.items():
            r = by.get(key)
            if r and r.get("ratio") is not None:
                t(f"{key} ratio", r["status"] == "ok" and r["ratio"] >= goal, round(r["ratio"], 3), f">= {goal}")
        for key in GRANT_SCENARIOS:
            r = by.get(key)
            if r and r.get("p99_ms") is not None:
                t(f"{key} p99", r["status"] == "ok" and r["p99_ms"] <= GRANT_P99_MS, round(r["p99_ms"], 2),
                  f"<= {GRANT_P99_MS} ms")
        t("server peak RSS", self.hwm_kib / 1024 <= RSS_MIB, round(self.hwm_kib / 1024, 1), f"<= {RSS_MIB} MiB")
        pg_targets = []
        if self.pgbench:
            for key in GRANT_SCENARIOS:
                r = by.get(key)
                if r and r.get("pg_ratio") is not None:
                    pg_targets.append({"target": f"{key} req/s vs pgbench tps", "value": round(r["pg_ratio"], 3),
                                       "met": r["status"] == "ok" and r["pg_ratio"] >= PG_TARGET_RATIO,
                                       "goal": f">= {PG_TARGET_RATIO}"})
            for key in GRANT_SCENARIOS:
                r = by.get(key)
                if r and r.get("p99_ms") is not None:
                    pg_targets.append({"target": f"{key} p99", "value": round(r["p99_ms"], 2),
                                       "met": r["status"] == "ok" and r["p99_ms"] <= PG_GRANT_P99_MS,
                                       "goal": f"<= {PG_GRANT_P99_MS} ms"})

        lines = []
        hdr = ["#", "scenario", "conns", "req/s", "p50 ms", "p99 ms", "ratio", "ratios of the rounds",
               *(["× pgbench"] if self.pgbench else []),
               "non-2xx", "srv CPU", "CPU µs/req", "switches/req", "status"]
        rows = []
        for r in self.results:
            ok = r.get("rps") is not None
            status = r["status"] + (" (disturbed)" if r.get("disturbed") else "")
            rows.append([str(r["n"]), r["title"], str(r["connections"]),
                         f"{r['rps']:,.0f}" if ok else "-",
                         f"{r['p50_ms']:.2f}" if ok else "-",
                         f"{r['p99_ms']:.2f}" if ok else "-",
                         (f"{r['ratio']:.3f}" if r["ratio"] >= 0.01 else f"{r['ratio']:.1e}")
                         if r.get("ratio") is not None else "-",
                         " ".join(f"{x:.3f}" if x >= 0.01 else f"{x:.1e}" for x in r["round_ratios"])
                         if r.get("round_ratios") else "-",
                         *([f"{r['pg_ratio']:.3f}" if r.get("pg_ratio") is not None and r["key"] in
                            GRANT_SCENARIOS else "-"] if self.pgbench else []),
                         str(r["non2xx"]) if ok else "-",
                         f"{r['server_cpu_pct']:.0f} %" if ok else "-",
                         f"{r['server_cpu_us_per_req']:,.0f}" if ok and r.get("server_cpu_us_per_req") else "-",
                         f"{r['server_switches_per_req']:.2f}" if ok and r.get("server_switches_per_req")
                         is not None else "-",
                         status])
        w = [max(len(h), *(len(x[i]) for x in rows)) if rows else len(h) for i, h in enumerate(hdr)]
        left = (1, 7, 13) if self.pgbench else (1, 7, 12)
        fmt = lambda cells: "| " + " | ".join(c.ljust(w[i]) if i in left else c.rjust(w[i])
                                              for i, c in enumerate(cells)) + " |"
        lines.append(fmt(hdr))
        lines.append("|" + "|".join(("-" * (w[i] + 1) + ":") if i not in left else "-" * (w[i] + 2)
                                    for i in range(len(hdr))) + "|")
        for row in rows:
            lines.append(fmt(row))
        lines.append("")
        lines.append(f"server peak RSS (VmHWM): {self.hwm_kib / 1024:.1f} MiB "
                     f"(VmRSS at the end {self.rss_kib / 1024:.1f} MiB, {self.threads} threads)")
        lines.append(f"database after the run: {self.db_bytes / 1048576:.1f} MiB after shutdown checkpoint "
                     f"(while serving: {self.db_bytes_live / 1048576:.1f} MiB + WAL {self.wal_bytes / 1048576:.1f} MiB); "
                     f"rows: " + ", ".join(f"{k} {v:,}" for k, v in self.rows.items()))
        lines.append("")
        lines.append("targets (issue 7, ratios to scenario 1 of the same round; the median round's):")
        for x in targets:
            lines.append(f"  {'MET    ' if x['met'] else 'NOT MET'}  {x['target']}: {x['value']} (goal {x['goal']})")
        if self.pgbench:
            lines.append("")
            lines.append(f"pgbench reference (one-row INSERT transaction, -c{a.connections} -j1 -T{a.duration}, "
                         "same server, before each round): " + ", ".join(
                             f"round {x['round']}: {x['tps']:,.0f} tps (avg {x['latency_avg_ms']:.2f} ms, "
                             f"p99 {x['p99_ms']:.2f} ms)" for x in self.pgbench))
            lines.append("machine CPU (every process: user, system, interrupts): pgbench kept "
                         + ", ".join(f"{x['machine_busy_pct']:.0f} %" for x in self.pgbench)
                         + " busy, " + ", ".join(f"{x['machine_cpu_us_per_tx']:.0f}" for x in self.pgbench)
                         + " µs a transaction; " + "; ".join(
                             f"{r['key']} {r['machine_busy_pct']:.0f} % busy, "
                             f"{r['machine_cpu_us_per_req']:.0f} µs a grant (server "
                             f"{r['server_cpu_us_per_req']:.0f}, load generator "
                             f"{1e4 * r['loadgen_cpu_pct'] / r['rps']:.0f}, other "
                             f"{1e4 * r['other_cpu_pct'] / r['rps']:.0f})"
                             for r in self.results if r["key"] in GRANT_SCENARIOS
                             and r.get("machine_cpu_us_per_req") and r.get("rps")))
            lines.append("targets (issue 17, PostgreSQL: grant req/s over pgbench tps of the same round; "
                         "the median round's):")
            for x in pg_targets:
                lines.append(f"  {'MET    ' if x['met'] else 'NOT MET'}  {x['target']}: {x['value']} (goal {x['goal']})")
        lines.append("")
        lines.append("notes:")
        for r in self.results:
            if r.get("note"):
                lines.append(f"  {r['n']}. {r['note']}")
            if r.get("sent"):
                s = r["sent"]
                lines.append(f"     sent: {s['read']:,} reads, {s['grant']:,} view grants, {s['refresh']:,} refreshes")
            for p in r.get("problems", []):
                lines.append(f"  {r['n']}. PROBLEM: {p}")
        disturbed = [r for r in self.results if r.get("disturbed")]
        if disturbed:
            lines.append("  CAVEAT: other processes used CPU during scenario(s) " +
                         ", ".join(f"{r['n']} ({r['other_cpu_pct']:.0f} % of a core; seen: "
                                   + ", ".join(f"{n} {s:.1f} s" for s, n in r["other_cpu_top_s"][:3]) + ")"
                                   for r in disturbed) +
                         "; those numbers are disturbed, rerun on a quiet machine.")
        if a.mounts > 1:
            lines.append(f"  mounts: {a.mounts} SQLite databases in one process (--mount /m0 … /m{a.mounts - 1}), "
                         "the load on /m0 alone, the others idle copies of it.")
        if a.instances > 1:
            lines.append(f"  instances: {a.instances} tollgate processes on one database, each with its own wrk "
                         f"(the {a.connections} connections split between them); req/s summed, p50/p99 the "
                         "worse instance's; " + ("servers on CPUs " + a.server_cpu if a.pin else "NOT pinned")
                         + ", wrk and pgbench unpinned.")
        durable = ("committed (PostgreSQL, synchronous_commit="
                   + psql(self.pg_admin, "SHOW synchronous_commit")[0][0] + ")") if self.pg_admin \
            else "committed (WAL, synchronous=NORMAL)"
        lines.append(f"  durability: every grant is {durable} before it is answered; "
                     f"server RUST_LOG={a.rust_log} (access log to a file), --workers {a.workers}"
                     + "".join(" " + x for x in a.server_arg) + ", "
                     f"PBKDF2 {PBKDF2_ITERATIONS:,} iterations in the database.")
        lines.append(f"  load: wrk -t1 -c{a.connections} (scenario 8: -c{a.pbkdf2_connections}), keep-alive, "
                     f"{a.duration} s per scenario after {a.warmup} s warm-up, {a.rounds} round(s) of all "
                     f"scenarios (8 in the first only); each row is the round with the median ratio "
                     f"(lower of the middle two if even; row 1: median req/s); "
                     + (f"server on CPU {a.server_cpu}, wrk on CPU {a.client_cpu}" if a.pin else "NOT pinned")
                     + f"; whole run {self.elapsed:.0f} s.")
        text = "\n".join(lines)

        doc = {
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": a.command,
            "machine": machine(),
            "git": git_state(),
            "binary_sha256": hashlib.sha256(open(self.bin, "rb").read()).hexdigest(),
            "database_dir": "postgresql" if self.pg_admin else os.path.dirname(self.db),
            "database_fs": "postgresql" if self.pg_admin else
            sh(f"df -PT {os.path.dirname(self.db)} | awk 'NR==2 {{print $1, $2}}'"),
            "config": {"connections": a.connections, "duration_s": a.duration, "warmup_s": a.warmup,
                       "rounds": a.rounds, "pbkdf2_connections": a.pbkdf2_connections, "pbkdf2_duration_s": a.pbkdf2_duration,
                       "pbkdf2_iterations": PBKDF2_ITERATIONS, "seats": SEATS, "workers": a.workers,
                       "rust_log": a.rust_log, "pinned": a.pin, "server_cpu": a.server_cpu,
                       "client_cpu": a.client_cpu, "load_generator": wrk_version()},
            "scenarios": self.results,
            "runs": self.runs,
            "server": {"peak_rss_kib": self.hwm_kib, "rss_kib_end": self.rss_kib, "threads": self.threads},
            "database": {"bytes_after_shutdown": self.db_bytes, "bytes_while_serving": self.db_bytes_live,
                         "wal_bytes_while_serving": self.wal_bytes, "rows": self.rows},
            "targets": targets,
            "pg_targets": pg_targets,
            "pgbench": self.pgbench,
            "instances": a.instances,
            "mounts": a.mounts,
            "elapsed_s": round(self.elapsed, 1),
            "table": text,
        }
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(text)
        print(f"\nJSON: {os.path.relpath(a.json, os.getcwd())}")
        if a.md:
            write_markdown(a.md, doc)
            print(f"Markdown: {os.path.relpath(a.md, os.getcwd())}")
        if not a.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"kept: {self.tmp}")
        failed = any(r["status"] != "ok" for r in self.runs)
        return 1 if failed else 0


def merge_wrk(parts):
    """One result from the load generators of several instances: requests summed over
    the longest duration, latency percentiles the worst instance's."""
    if len(parts) == 1:
        return parts[0]
    r = dict(parts[0])
    r["requests"] = sum(x["requests"] for x in parts)
    r["duration_us"] = max(x["duration_us"] for x in parts)
    r["bytes"] = sum(x["bytes"] for x in parts)
    r["errors"] = {k: sum(x["errors"][k] for x in parts) for k in parts[0]["errors"]}
    r["non2xx"] = None if parts[0]["non2xx"] is None else sum(x["non2xx"] for x in parts)
    for k in ("starved", "exhausted"):
        r[k] = sum(x[k] for x in parts)
    r["sent"] = {k: sum(x["sent"][k] for x in parts) for k in parts[0]["sent"]}
    lat = {k: max(x["latency_us"][k] for x in parts) for k in parts[0]["latency_us"]}
    lat["min"] = min(x["latency_us"]["min"] for x in parts)
    r["latency_us"] = lat
    r["instances"] = [{"requests": x["requests"], "p99_us": x["latency_us"]["p99"]} for x in parts]
    return r


def pgbench_bin():
    found = shutil.which("pgbench")
    if found:
        return found
    import glob
    cands = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return cands[-1] if cands else None


def run_pgbench(url, clients, seconds, script, pin):
    """pgbench's one-row INSERT transactions at `clients` connections: the physical
    reference for the grants on this machine. (tps, average latency ms, p99 ms, cores
    the whole machine kept busy meanwhile)."""
    tmp = tempfile.mkdtemp(prefix="tollgate-pgbench-")
    try:
        log_prefix = os.path.join(tmp, "tx")
        cmd = pin + [pgbench_bin(), "-n", "-f", script, "-T", str(seconds), "-c", str(clients), "-j", "1",
                     "-l", "--log-prefix", log_prefix, url]
        t0 = system_busy_ticks()
        w0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True)
        busy_cores = (system_busy_ticks() - t0) / CLK_TCK / (time.monotonic() - w0)
        if p.returncode != 0:
            raise Fail(f"pgbench failed ({p.returncode}): {(p.stdout + p.stderr)[-2000:]}")
        tps = lat = None
        for line in p.stdout.splitlines():
            if line.startswith("tps = "):
                tps = float(line.split()[2])
            elif line.startswith("latency average = "):
                lat = float(line.split()[3])
        # per-transaction log: client, tx no, latency µs, ...
        lats = []
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name)) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 2:
                        lats.append(int(fields[2]))
        lats.sort()
        p99 = lats[int(0.99 * (len(lats) - 1))] / 1000 if lats else None
        if tps is None:
            raise Fail(f"pgbench printed no tps: {p.stdout[-2000:]}")
        return tps, lat, p99, busy_cores
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_runs(rounds):
    """One row per scenario: the run whose ratio is the median of the rounds' (the lower
    middle one when their number is even); for the ceiling, the run with the median
    req/s. The row fails if any round of it failed, and counts every round's non-2xx."""
    order = []
    by = {}
    for runs in rounds:
        for r in runs:
            if r["key"] not in by:
                order.append(r["key"])
                by[r["key"]] = []
            by[r["key"]].append(r)
    rows = []
    for key in order:
        runs = by[key]
        good = [r for r in runs if r.get("rps") is not None]
        if not good:
            rows.append(dict(runs[0]))
            continue
        metric = (lambda r: r["rps"]) if key == "healthz" else (lambda r: r.get("ratio") or 0.0)
        ranked = sorted(good, key=metric)
        row = dict(ranked[(len(ranked) - 1) // 2])
        row["round_ratios"] = [r["ratio"] for r in runs if r.get("ratio") is not None]
        row["non2xx"] = sum(r.get("non2xx") or 0 for r in runs)
        problems = [f"round {r['round']}: {p}" for r in runs for p in r.get("problems", [])]
        if len(runs) == 1:
            problems = runs[0].get("problems", [])
        row["problems"] = problems
        row["status"] = "FAILED" if any(r["status"] != "ok" for r in runs) else "ok"
        row["disturbed"] = any(r.get("disturbed") for r in runs)
        rows.append(row)
    return rows


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, cwd=ROOT).stdout.strip()
    except OSError:
        return ""


def wrk_version():
    return sh("wrk -v 2>&1 | head -1") or sh("wrk --version 2>&1 | head -1")


def machine():
    mem = sh("free -h | head -2")
    return {"nproc": sh("nproc"), "lscpu": sh("lscpu | head -20"), "memory": mem,
            "kernel": platform.release(), "loadavg_at_end": sh("cat /proc/loadavg")}


def git_state():
    dirty = [l[3:] for l in subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.splitlines()]
    return {"commit": sh("git rev-parse HEAD"), "describe": sh("git describe --always --dirty"),
            "dirty_files": dirty,
            "dirty_outside_bench": [f for f in dirty if not f.startswith("bench/")]}


def write_markdown(path, doc):
    m = doc["machine"]
    g = doc["git"]
    table = [l for l in doc["table"].splitlines() if l.startswith("|")]
    rest = doc["table"].splitlines()[len(table):]
    out = [f"# tollgate benchmark, {doc['date'][:10]}", "",
           "Command:", "", f"    {doc['command']}", "",
           f"Code: `{g['describe']}`" + ((" (uncommitted changes outside bench/: "
                                           + ", ".join(g["dirty_outside_bench"]) + ")")
                                          if g.get("dirty_outside_bench") else
                                          " (uncommitted changes only under bench/)" if g["dirty_files"] else "")
           + f"; binary sha256 `{doc.get('binary_sha256', '?')[:16]}…`; database on `{doc.get('database_fs', '?')}`",
           "", "## Result", "", *table, "", "```", *[l for l in rest if l.strip() or True], "```", "",
           "## Machine", "", f"`nproc`: {m['nproc']}; kernel {m['kernel']}; load average at the end: "
           f"{m['loadavg_at_end']}", "", "`lscpu | head -20`:", "", "```", m["lscpu"], "```", "",
           "`free -h`:", "", "```", m["memory"], "```", ""]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bin", default=os.path.join(ROOT, "target/release/tollgate"))
    p.add_argument("--duration", type=int, default=5, help="seconds per scenario and round (default 5)")
    p.add_argument("--rounds", type=int, default=3,
                   help="run all scenarios this many times, each round with its own ceiling (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up seconds before each scenario (default 1)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--timeout", type=int, default=10, help="wrk request timeout, seconds")
    p.add_argument("--pbkdf2-duration", type=int, default=10)
    p.add_argument("--pbkdf2-connections", type=int, default=4,
                   help="scenario 8 concurrency (default 4: at 32, one core time-slices 32 PBKDF2 runs "
                        "and few finish within the run)")
    p.add_argument("--pbkdf2-timeout", type=int, default=60)
    p.add_argument("--pbkdf2-users", type=int, default=1000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for `tollgate serve` (repeatable), e.g. "
                        "--server-arg=--scheduler=normal; TOLLGATE_* variables are not passed on")
    p.add_argument("--rust-log", default="info", help="server RUST_LOG (default info, as shipped)")
    p.add_argument("--server-cpu", default="0")
    p.add_argument("--client-cpu", default="1")
    p.add_argument("--no-pin", dest="pin", action="store_false")
    p.add_argument("--only", help="comma-separated scenario numbers or names")
    p.add_argument("--perf", metavar="DIR",
                   help="profile the server with perf record (cpu-clock, DWARF call graphs) during each "
                        "measured run into DIR/<n>-<scenario>.perf.data (numbers are then disturbed)")
    p.add_argument("--perf-freq", type=int, default=1999)
    p.add_argument("--json", default=os.path.join(HERE, "results", "latest.json"))
    p.add_argument("--md", help="also write a Markdown report (table, command, machine) to this file")
    p.add_argument("--postgres", metavar="URL",
                   help="serve a throw-away PostgreSQL database on the server this URL reaches "
                        "(created and dropped; e.g. postgres://postgres@127.0.0.1:5432/postgres) "
                        "instead of a SQLite file; PostgreSQL itself runs unpinned")
    p.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite",
                   help=f"postgres: as --postgres {PG_URL} unless --postgres gives the URL")
    p.add_argument("--instances", type=int, default=1,
                   help="tollgate processes on the one database (PostgreSQL only), each with its own wrk "
                        "and an equal share of --connections; servers on the CPUs of --server-cpu "
                        "(default then 0,1, one each), wrk and pgbench unpinned")
    p.add_argument("--mounts", type=int, default=1,
                   help="serve N SQLite databases in one process (--mount /m0=… /m1=…, each a copy of "
                        "the prepared one) with the load on /m0 only: what idle extra mounts cost")
    p.add_argument("--no-pgbench", dest="pgbench", action="store_false",
                   help="on PostgreSQL, skip the pgbench reference")
    p.add_argument("--tmpdir", help="where the throw-away database goes (default: the system temp "
                   "directory); a tmpfs such as /dev/shm takes the disk out (diagnosis only: nothing is durable there)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (database, server log)")
    p.add_argument("--disturbed-pct", type=float, default=10.0,
                   help="flag a scenario when other processes used more than this %% of a core")
    p.add_argument("--command", default="python3 bench/bench.py " + " ".join(sys.argv[1:]),
                   help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.engine == "postgres" and not a.postgres:
        a.postgres = PG_URL
    if a.instances < 1 or (a.instances > 1 and not a.postgres):
        sys.exit("bench: --instances N (N > 1) needs --engine postgres")
    if a.mounts < 1 or (a.mounts > 1 and (a.postgres or a.instances > 1)):
        sys.exit("bench: --mounts N (N > 1) needs the SQLite engine and one instance")
    global PREFIX
    PREFIX = "/m0" if a.mounts > 1 else ""
    if a.instances > 1:
        if a.server_cpu == "0":
            a.server_cpu = ",".join(str(i % 2) for i in range(a.instances))
        a.client_cpu = None
    if a.postgres and a.pgbench and not pgbench_bin():
        sys.exit("bench: pgbench is missing (Debian: apt-get install postgresql-contrib), or pass --no-pgbench")
    for tool in ["wrk"] + (["taskset"] if a.pin else []):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is not installed (bench/run.sh installs it)")
    if not os.access(a.bin, os.X_OK):
        sys.exit(f"bench: no executable at {a.bin}; run cargo build --release")
    b = Bench(a)
    try:
        return b.main()
    except Fail as e:
        print(f"bench: FAILED: {e}", file=sys.stderr)
        return 2
    finally:
        b.stop()


if __name__ == "__main__":
    sys.exit(main())
