#!/usr/bin/env python3
"""Samples a process's memory and open descriptors, bounded in time.

    procwatch.py PID OUT.csv [--interval 0.5] [--duration 300]

Writes `unix_time,vmrss_kb,vmhwm_kb,fds,threads` every --interval seconds until
the process ends or --duration seconds have passed. Standard library only.
"""
import argparse
import os
import time


def sample(pid):
    rss = hwm = thr = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
            elif line.startswith("Threads:"):
                thr = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, hwm, fds, thr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("out")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--duration", type=float, default=300)
    a = ap.parse_args()
    end = time.time() + min(a.duration, 3600)
    with open(a.out, "w") as out:
        out.write("unix_time,vmrss_kb,vmhwm_kb,fds,threads\n")
        while time.time() < end:
            try:
                rss, hwm, fds, thr = sample(a.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            if rss is None:  # a zombie: the process has ended
                break
            out.write(f"{time.time():.3f},{rss},{hwm},{fds},{thr}\n")
            out.flush()
            time.sleep(a.interval)


if __name__ == "__main__":
    main()
