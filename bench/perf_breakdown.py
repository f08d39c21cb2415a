#!/usr/bin/env python3
"""Sorts perf samples of the tollgate server into cost categories.

    python3 bench/bench.py --only 2,3 --perf /tmp/prof        # records DIR/<n>-<scenario>.perf.data
    perf script -i /tmp/prof/2-view_grant.perf.data -F comm,tid,ip,sym \\
        | python3 bench/perf_breakdown.py [--us-per-req 120]

Each sample's call stack (leaf to root) is matched against the rules below in
order; the first rule with a matching frame anywhere in the stack wins, so a
malloc inside SQLite counts as SQLite and a write() from the logger as logging.
"""
import argparse
import collections
import sys

# (category, substrings any frame may contain); first match wins.
RULES = [
    ("PBKDF2 (client secret verification)", ["pbkdf2", "verify_password"]),
    ("SQLite WAL checkpoint (incl. its fsync)", ["walCheckpoint", "sqlite3WalCheckpoint"]),
    ("SQLite commit: WAL append (write syscalls, checksums)",
     ["sqlite3WalFrames", "pagerWalFrames", "walWriteToLog", "walWriteOneFrame"]),
    ("SQLite grant write transaction (statements)", ["sessions::open", "sessions::refresh", "insert_tokens"]),
    ("SQLite client lookup (find_client)", ["find_client"]),
    ("SQLite access-token lookup (find_access)", ["find_access"]),
    ("SQLite product read/write", ["store::products"]),
    ("r2d2 pool checkout (incl. r2d2_sqlite's `SELECT 1` validity check)", ["r2d2::"]),
    ("SQLite other (statements inlined into closures, commit, audit batch)", ["sqlite3", "rusqlite"]),
    ("access log (Logger middleware, env_logger)",
     ["middleware::logger", "env_logger", "anstream", "log::__private_api"]),
    ("JSON (serde_json)", ["serde_json"]),
    ("tokens: CSPRNG, SHA-256, HMAC, base64",
     ["ring::rand", "ring::digest", "ring::hmac", "getrandom", "sha256_block", "ring_core", "base64::"]),
    ("thread hand-offs (reader/writer queues, web::block, wake/park, context switches)",
     ["__schedule", "schedule_hrtimeout", "futex", "try_to_wake_up", "parking_lot", "tokio::runtime::blocking",
      "tokio::runtime::park", "Condvar", "finish_task_switch", "sched_yield", "wake_up"]),
    ("HTTP: sockets, TCP loopback, epoll", ["tcp_", "sock_", "sys_sendto", "sys_recvfrom", "sys_write",
                                           "sys_read", "epoll", "mio::", "net_rx_action", "__netif"]),
    ("HTTP: actix request/response handling", ["actix_http", "actix_web", "actix_server", "actix_router"]),
    ("memory allocator", ["malloc", "_int_free", "cfree", "realloc", "_int_realloc"]),
]


def stacks(f):
    frames, head = [], None
    for line in f:
        line = line.rstrip("\n")
        if not line:
            if head is not None:
                yield head, frames
            frames, head = [], None
        elif line[0] in " \t":
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")
        else:
            head = line
    if head is not None:
        yield head, frames


def classify(frames):
    for name, needles in RULES:
        for fr in frames:
            if any(n in fr for n in needles):
                return name
    if frames and frames[0].startswith(("[unknown]",)):
        return "unresolved"
    return "other (tollgate, tokio, kernel)"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--us-per-req", type=float, help="server CPU µs per request, to print µs per category")
    p.add_argument("--top", type=int, default=0, help="also list the N hottest leaf functions")
    a = p.parse_args()
    cats, leaves = collections.Counter(), collections.Counter()
    n = 0
    for _, frames in stacks(sys.stdin):
        n += 1
        cats[classify(frames)] += 1
        if frames:
            leaves[frames[0]] += 1
    if not n:
        sys.exit("no samples")
    print(f"{n} samples")
    for name, k in cats.most_common():
        us = f"  {a.us_per_req * k / n:7.1f} µs/req" if a.us_per_req else ""
        print(f"  {100 * k / n:5.1f} %{us}  {name}")
    if a.top:
        print("hottest leaf functions:")
        for name, k in leaves.most_common(a.top):
            print(f"  {100 * k / n:5.1f} %  {name[:110]}")


if __name__ == "__main__":
    main()
