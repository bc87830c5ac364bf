"""Summary of benches/compare/grid.sh's raw results (grid.jsonl).

    python3 benches/compare/grid_summary.py OUT/grid.jsonl

Two tables, a row per cell (size x connections): round trips/s, then the
server's CPU µs per round trip (from /proc, `--server-pid`; it holds up on a
shared machine where rates do not). Per server the median over the rounds;
netloop / each other server as the median of the per-round ratios with its
95 % interval and verdict (stats.py), or the range below 6 rounds.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stats import median, median_ci, verdict  # noqa: E402


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    servers = []
    for r in rows:
        if r["server"] not in servers:
            servers.append(r["server"])
    rate, cpu, cells = {}, {}, []
    for r in rows:
        for c in (r["grid"] or {"cells": []})["cells"]:
            key = (c["size"], c["connections"])
            if key not in cells:
                cells.append(key)
            rep = c.get("report")
            if not rep or rep.get("mismatched_bytes", 1) != 0 or not rep.get("ops_per_sec"):
                continue
            rate[(r["server"], r["round"], key)] = rep["ops_per_sec"]
            per_op = (rep.get("server") or {}).get("cpu_us_per_op")
            if per_op:
                cpu[(r["server"], r["round"], key)] = per_op
    rounds = sorted({r["round"] for r in rows})
    others = [s for s in servers if s != "netloop"] if "netloop" in servers else []
    print(f"{len(rounds)} round(s), servers {', '.join(servers)}; medians over the rounds\n")
    for title, table, digits, higher in [("round trips/s", rate, 0, True),
                                         ("server CPU µs per round trip", cpu, 2, False)]:
        head = ["size", "conns"] + [f"{s}" for s in servers] + [f"netloop / {s}" for s in others]
        print(f"**{title}**\n")
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for key in sorted(cells):
            line = [f"{key[0]} B", str(key[1])]
            for s in servers:
                xs = [table[(s, n, key)] for n in rounds if (s, n, key) in table]
                line.append(f"{median(xs):,.{digits}f}" if xs else "-")
            for s in others:
                ratios = [table[("netloop", n, key)] / table[(s, n, key)] for n in rounds
                          if ("netloop", n, key) in table and (s, n, key) in table]
                if not ratios:
                    line.append("-")
                    continue
                ci = median_ci(ratios)
                if ci:
                    line.append(f"{median(ratios):.2f}× ({ci[0]:.2f}–{ci[1]:.2f}) {verdict(ci, higher)}")
                else:
                    line.append(f"{median(ratios):.2f}× (range {min(ratios):.2f}–{max(ratios):.2f})")
            print("| " + " | ".join(line) + " |")
        print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: grid_summary.py GRID.jsonl")
    main(sys.argv[1])
