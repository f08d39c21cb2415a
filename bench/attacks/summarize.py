#!/usr/bin/env python3
"""Figures of one slowloris_run.sh run: summarize.py DIR (prints JSON)."""
import json
import statistics
import sys


def main(d):
    meta = {}
    for line in open(f"{d}/meta.env"):
        k, _, v = line.strip().partition("=")
        meta[k] = v.strip("'")
    t0, t1 = float(meta["flood_start"]), float(meta["flood_end"])
    rows = []
    for line in list(open(f"{d}/proc.csv"))[1:]:
        t, rss, hwm, fds, thr = line.strip().split(",")
        rows.append((float(t), int(rss), int(hwm), int(fds)))
    base = [r for r in rows if r[0] < t0]
    after30 = [r for r in rows if r[0] >= t1 + 30]
    last = rows[-1]
    grants = []
    for line in open(f"{d}/grants.txt"):
        p = line.split()
        grants.append((float(p[0]), p[1], float(p[2]), int(p[3])))
    grants.sort()

    def phase(lo, hi):
        g = [x for x in grants if lo <= x[0] < hi]
        ok = [x[2] for x in g if x[1] == "200"]
        codes = {}
        for x in g:
            codes[x[1]] = codes.get(x[1], 0) + 1
        return {
            "sent": len(g),
            "codes": codes,
            "ok": len(ok),
            "median_s": round(statistics.median(ok), 3) if ok else None,
            "max_s": round(max(ok), 3) if ok else None,
            "max_any_s": round(max(x[2] for x in g), 3) if g else None,
        }

    log = open(f"{d}/server.log", errors="replace").read()
    att = json.load(open(f"{d}/attacker.json")) if open(f"{d}/attacker.json").read().strip() else {}
    att.pop("timeline_t_open_408_503_attempts", None)
    att.pop("args", None)
    out = {
        "label": meta.get("label"),
        "sources": meta.get("sources"),
        "attacker_args": meta.get("attacker_args"),
        "flood_s": round(t1 - t0, 1),
        "loadavg_start_end": [meta.get("loadavg_start"), meta.get("loadavg_end")],
        "rss_before_mb": round(base[-1][1] / 1024, 1) if base else None,
        "rss_peak_mb": round(max(r[1] for r in rows) / 1024, 1),
        "vmhwm_mb": round(max(r[2] for r in rows) / 1024, 1),
        "rss_30s_after_flood_mb": round(after30[0][1] / 1024, 1) if after30 else None,
        "rss_last_mb": round(last[1] / 1024, 1),
        "last_sample_s_after_flood": round(last[0] - t1, 1),
        "fds_before": base[-1][3] if base else None,
        "fds_peak": max(r[3] for r in rows),
        "fds_30s_after_flood": after30[0][3] if after30 else None,
        "grants_baseline": phase(0, t0),
        "grants_during_flood": phase(t0, t1),
        "grants_after_flood": phase(t1, 1e12),
        "server_log_emfile_lines": log.count("Too many open files"),
        "server_log_refusal_lines": log.count("refusing connections"),
        "attacker": att,
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main(sys.argv[1])
