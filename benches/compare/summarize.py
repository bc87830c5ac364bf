#!/usr/bin/env python3
"""Summarise benches/compare/run.sh results (one JSON report per line).

Per cell and peer: the median of the cell's main figure over the rounds,
its min-max, the server's median CPU cost per unit of work, what limited
the cell, and ratios of the medians to Node (pipe form) and to tokio.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

# cell prefix -> (label, main figure, unit, higher is better, cost figure, cost unit)
KINDS = [
    ("pp", "pingpong 64 B", "ops_per_sec", "rt/s", True, "cpu_us_per_op", "µs/rt"),
    ("stream", "stream 64 KiB", "mb_per_sec", "MB/s", True, "cpu_us_per_mb", "µs/MB"),
    ("connect", "connect", "ops_per_sec", "conn/s", True, "cpu_us_per_op", "µs/conn"),
    ("idle", "idle", "rss_bytes_per_conn", "B/conn", False, None, ""),
    ("fanout", "fanout", "ops_per_sec", "deliveries/s", True, "cpu_us_per_op", "µs/delivery"),
]


def kind(cell):
    for k in KINDS:
        if cell.startswith(k[0]):
            return k
    return None


def main_value(rep, k):
    name = k[2]
    if name in rep:
        return rep[name]
    return (rep.get("server") or {}).get(name)


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def limit(reps):
    gen = sum(1 for r in reps if r["generator"]["saturated"])
    srv = [(r.get("server") or {}).get("cpu_pct", 0) for r in reps]
    srv_med = statistics.median(srv) if srv else 0
    gen_med = statistics.median(r["generator"]["cpu_pct"] for r in reps)
    if gen * 2 >= len(reps) and gen_med >= srv_med:
        return f"generator CPU ({gen_med:.0f} %; server {srv_med:.0f} %)"
    if srv_med >= 90:
        return f"server CPU ({srv_med:.0f} %)"
    return f"neither core full (gen {gen_med:.0f} %, server {srv_med:.0f} %): latency/kernel"


def main(path):
    rows = defaultdict(list)
    cells = OrderedDict()
    bad = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            rep = r["report"]
            if r.get("failed") or rep.get("mismatched_bytes", 0) > 0:
                bad.append(f"{r['cell']} on {r['peer']} (round {r['round']}): "
                           f"{rep.get('mismatched_bytes', 0)} bad bytes, {rep.get('errors', 0)} errors")
            rows[(r["cell"], r["peer"])].append(rep)
            if r["peer"] not in cells.setdefault(r["cell"], []):
                cells[r["cell"]].append(r["peer"])
    print("| cell | peer | median | min – max | server CPU cost | vs Node (pipe) | vs tokio | limited by |")
    print("|---|---|---|---|---|---|---|---|")
    for cell, peers in cells.items():
        k = kind(cell)
        if not k:
            continue
        med = {}
        for p in peers:
            vals = [v for v in (main_value(x, k) for x in rows[(cell, p)]) if v is not None]
            med[p] = statistics.median(vals) if vals else None
        for p in peers:
            reps = rows[(cell, p)]
            vals = [v for v in (main_value(x, k) for x in reps) if v is not None]
            costs = [c for c in ((x.get("server") or {}).get(k[5]) for x in reps) if c is not None] if k[5] else []
            m = med[p]

            def ratio(ref):
                r = med.get(ref)
                if m is None or not r:
                    return "–"
                return f"{m / r:.2f}×"
            print(f"| {cell} | {p} | {fmt(m)} {k[3]} | "
                  f"{fmt(min(vals)) if vals else '–'} – {fmt(max(vals)) if vals else '–'} | "
                  f"{fmt(statistics.median(costs)) + ' ' + k[6] if costs else '–'} | "
                  f"{ratio('node-pipe')} | {ratio('tokio')} | {limit(reps)} |")
    if bad:
        print()
        print("Runs with errors or wrong bytes:")
        for b in bad:
            print(f"* {b}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results.jsonl")
