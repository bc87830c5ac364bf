#!/usr/bin/env python3
"""Per-round ratios of two peers in one run.sh results file.

    benches/compare/pairs.py RESULTS.jsonl [A=netloop] [B=bare]

For each cell and round in which both peers ran: both rates, server CPU per
operation, p50 latency, server CPU share, and the ratios A/B of the server
CPU per operation and of the rate; then per cell the median, min and max of
those ratios. Pairing by round cancels drift that hits both peers of a
round alike. Failed runs are dropped (and counted); summarize.py gives
the intervals and verdicts.
"""
import json
import os
import statistics
import sys
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import is_failed  # noqa: E402


def main(path, a, b):
    d = defaultdict(dict)
    dropped = 0
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if is_failed(r):
                    dropped += 1
                    continue
                d[(r["cell"], r["round"])][r["peer"]] = r["report"]
    if dropped:
        print(f"{dropped} failed run(s) dropped")
    for cell in sorted({c for c, _ in d}):
        cpu, thr = [], []
        for (c, rd), m in sorted(d.items()):
            if c != cell or a not in m or b not in m:
                continue
            x, y = m[a], m[b]
            cx, cy = x["server"]["cpu_us_per_op"], y["server"]["cpu_us_per_op"]
            if not cy or not y["ops_per_sec"]:
                continue  # idle cells: no operations, so no per-op ratio
            cpu.append(cx / cy)
            thr.append(x["ops_per_sec"] / y["ops_per_sec"])
            print(f"{cell} round {rd}: "
                  f"{a} {x['ops_per_sec']:.0f}/s {cx:.2f} µs/op p50 {x['latency_us']['p50']:.0f} µs "
                  f"server {x['server']['cpu_pct']:.0f} % | "
                  f"{b} {y['ops_per_sec']:.0f}/s {cy:.2f} µs/op p50 {y['latency_us']['p50']:.0f} µs "
                  f"server {y['server']['cpu_pct']:.0f} % | CPU/op {cpu[-1]:.3f} rate {thr[-1]:.3f}")
        if cpu:
            print(f"{cell}: {a}/{b} CPU/op median {statistics.median(cpu):.3f} "
                  f"(min {min(cpu):.3f}, max {max(cpu):.3f}); rate median {statistics.median(thr):.3f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1],
         sys.argv[2] if len(sys.argv) > 2 else "netloop",
         sys.argv[3] if len(sys.argv) > 3 else "bare")
