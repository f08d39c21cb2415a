#!/usr/bin/env python3
"""Slow-body flood against tollgate's POST /token (issue 14, item 1), bounded.

Opens --connections TCP connections to --target (loopback only), each sending the
headers of a POST /token that declares `Content-Length: 8000`, then one body byte
every --interval seconds, and reads whatever the server answers. After --hold
seconds every connection still open is closed and the script exits; it never runs
longer than --hold + 15 s (connect/close slack). With --reconnect-delay S a slot
whose connection ended (refused, 503, 408, closed) opens a new one S seconds later,
until --hold ends or --max-attempts connections were tried in all.

Source addresses: --sources 127.0.0.2 (all from one address) or a range
127.0.0.2-127.0.0.101 (connections dealt round-robin). The work is split over
--procs processes so that no process needs more descriptors than its hard limit
(each raises its own soft RLIMIT_NOFILE to the hard one).

Prints one JSON document (stdout): what the attacker saw, per outcome, plus a
per-second timeline of connections open from the attacker's side.
Standard library only.
"""
import argparse
import asyncio
import ipaddress
import json
import multiprocessing as mp
import resource
import socket
import sys
import time

# Outcome slots in the shared counters array.
FIELDS = [
    "attempts",        # connections tried
    "connected",       # TCP handshake completed (the kernel accepted; the server may not yet)
    "connect_refused",  # ECONNREFUSED
    "connect_timeout",  # no handshake within --connect-timeout
    "connect_error",   # any other error while connecting (e.g. EADDRNOTAVAIL)
    "open_now",        # connected and not yet ended (gauge)
    "got_408",
    "got_503",
    "got_other_status",
    "closed_no_answer",  # EOF (or reset) before any status line
    "reset",           # ECONNRESET/EPIPE while sending or reading (subset info)
    "held_to_end",     # still open when --hold ended
    "body_bytes_sent",
    "cut_ms_sum",      # sum over 408s of ms from connect to the status line
    "cut_ms_max",
]
IDX = {f: i for i, f in enumerate(FIELDS)}

# Linux <netinet/in.h>; Python exposes it only from 3.12 on.
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def parse_sources(spec):
    if "-" in spec:
        a, b = spec.split("-", 1)
        lo, hi = int(ipaddress.IPv4Address(a)), int(ipaddress.IPv4Address(b))
        out = [str(ipaddress.IPv4Address(i)) for i in range(lo, hi + 1)]
    else:
        out = [s.strip() for s in spec.split(",") if s.strip()]
    for s in out:
        if not ipaddress.IPv4Address(s).is_loopback:
            raise SystemExit(f"source {s} is not a loopback address (127.0.0.0/8 only)")
    return out


async def one_slot(args, counters, src, host, port, deadline, attempts_left):
    head = (
        f"POST /token HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {args.content_length}\r\n\r\n"
    ).encode()

    def add(k, n=1):
        counters[IDX[k]] += n

    while time.monotonic() < deadline:
        if attempts_left[0] <= 0:
            return
        attempts_left[0] -= 1
        add("attempts")
        writer = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # Let connect() pick the source port (by the 4-tuple): bind(src, 0) alone
            # searches for a port unused on src, which slows to a crawl with
            # thousands of sockets on one source address.
            sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((src, 0))
            sock.setblocking(False)
            await asyncio.wait_for(
                asyncio.get_running_loop().sock_connect(sock, (host, port)),
                timeout=min(args.connect_timeout, max(0.1, deadline - time.monotonic())),
            )
            reader, writer = await asyncio.open_connection(sock=sock)
        except asyncio.TimeoutError:
            add("connect_timeout")
        except ConnectionRefusedError:
            add("connect_refused")
        except OSError:
            add("connect_error")
        if writer is None:
            sock.close()
        if writer is not None:
            add("connected")
            add("open_now")
            t0 = time.monotonic()
            status = None
            try:
                writer.write(head)
                sent = 0
                buf = b""
                while time.monotonic() < deadline and sent < args.content_length:
                    writer.write(b"x")
                    await writer.drain()
                    sent += 1
                    add("body_bytes_sent")
                    # Wait out the interval, reading whatever the server says.
                    wait_until = min(deadline, time.monotonic() + args.interval)
                    eof = False
                    while time.monotonic() < wait_until:
                        try:
                            data = await asyncio.wait_for(
                                reader.read(4096), timeout=wait_until - time.monotonic()
                            )
                        except asyncio.TimeoutError:
                            break
                        if not data:
                            eof = True
                            break
                        buf += data
                        if status is None and b"\r\n" in buf:
                            line = buf.split(b"\r\n", 1)[0].split()
                            status = int(line[1]) if len(line) > 1 and line[1].isdigit() else -1
                            if status == 408:
                                add("got_408")
                                ms = int((time.monotonic() - t0) * 1000)
                                add("cut_ms_sum", ms)
                                if ms > counters[IDX["cut_ms_max"]]:
                                    counters[IDX["cut_ms_max"]] = ms
                            elif status == 503:
                                add("got_503")
                            else:
                                add("got_other_status")
                    if eof:
                        break
                else:
                    if time.monotonic() >= deadline and status is None:
                        add("held_to_end")
                if eof and status is None:
                    add("closed_no_answer")
            except (ConnectionResetError, BrokenPipeError):
                add("reset")
                if status is None:
                    add("closed_no_answer")
            except OSError:
                add("reset")
                if status is None:
                    add("closed_no_answer")
            finally:
                add("open_now", -1)
                writer.transport.abort()
        if args.reconnect_delay is None:
            return
        await asyncio.sleep(args.reconnect_delay)


async def proc_main(args, counters, sources, n, first_index, deadline):
    host, port = args.target.rsplit(":", 1)
    port = int(port)
    attempts_left = [args.max_attempts // args.procs]
    tasks = []
    for i in range(n):
        src = sources[(first_index + i) % len(sources)]
        tasks.append(
            asyncio.create_task(one_slot(args, counters, src, host, port, deadline, attempts_left))
        )
        # Ramp: --ramp connections a second per process (0: all at once).
        if args.ramp and i % 100 == 99:
            await asyncio.sleep(100 / args.ramp)
    await asyncio.wait(tasks, timeout=max(0.1, deadline - time.monotonic()) + 10)
    for t in tasks:
        t.cancel()


def proc_entry(args, counters, sources, n, first_index, deadline_wall):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 64) if hard != resource.RLIM_INFINITY else n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    deadline = time.monotonic() + (deadline_wall - time.time())
    asyncio.run(proc_main(args, counters, sources, n, first_index, deadline))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="127.0.0.1:8080", help="host:port on loopback")
    ap.add_argument("--connections", type=int, default=20000)
    ap.add_argument("--sources", default="127.0.0.2", help="127.0.0.2 or 127.0.0.2-127.0.0.101")
    ap.add_argument("--hold", type=float, default=35.0, help="seconds, from the first connection")
    ap.add_argument("--interval", type=float, default=3.0, help="seconds between body bytes")
    ap.add_argument("--content-length", type=int, default=8000)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--ramp", type=float, default=0, help="connections/s per process; 0 = as fast as possible")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    ap.add_argument("--reconnect-delay", type=float, default=None)
    ap.add_argument("--max-attempts", type=int, default=1000000, help="in all, over every process")
    ap.add_argument("--timeline", action="store_true", help="per-second open count in the JSON")
    args = ap.parse_args()
    host = args.target.rsplit(":", 1)[0]
    if not ipaddress.IPv4Address(host).is_loopback:
        raise SystemExit("target must be on 127.0.0.0/8")
    if args.hold > 600 or args.connections > 60000:
        raise SystemExit("bounded: --hold <= 600 s, --connections <= 60000")
    sources = parse_sources(args.sources)

    per = [args.connections // args.procs + (1 if i < args.connections % args.procs else 0) for i in range(args.procs)]
    counters = [mp.Array("q", len(FIELDS), lock=False) for _ in range(args.procs)]
    start_wall = time.time()
    deadline_wall = start_wall + args.hold
    procs = []
    first = 0
    for i in range(args.procs):
        p = mp.Process(target=proc_entry, args=(args, counters[i], sources, per[i], first, deadline_wall), daemon=True)
        first += per[i]
        p.start()
        procs.append(p)

    def total(k):
        return sum(c[IDX[k]] for c in counters)

    timeline = []
    peak_open = 0
    hard_stop = deadline_wall + 15
    while any(p.is_alive() for p in procs) and time.time() < hard_stop:
        time.sleep(1)
        o = total("open_now")
        peak_open = max(peak_open, o)
        timeline.append([round(time.time() - start_wall, 1), o, total("got_408"), total("got_503"), total("attempts")])
    for p in procs:
        p.join(timeout=1)
        if p.is_alive():
            p.terminate()
    out = {f: total(f) for f in FIELDS if f not in ("cut_ms_sum", "cut_ms_max", "open_now")}
    out["peak_open_seen_by_attacker"] = peak_open
    n408 = total("got_408")
    out["cut_ms_mean"] = round(total("cut_ms_sum") / n408) if n408 else None
    out["cut_ms_max"] = max(c[IDX["cut_ms_max"]] for c in counters)
    out["sources"] = f"{sources[0]}..{sources[-1]} ({len(sources)})"
    out["started_unix"] = round(start_wall, 3)
    out["ended_unix"] = round(time.time(), 3)
    out["args"] = vars(args)
    if args.timeline:
        out["timeline_t_open_408_503_attempts"] = timeline
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
