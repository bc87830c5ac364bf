#!/usr/bin/env python3
"""Summarise benches/compare/run.sh results (one JSON report per line).

    benches/compare/summarize.py RESULTS.jsonl [--cost-of generator] [SUBJECT ...]

Failed runs (marked failed, wrong bytes, bad fan-out deliveries) are
dropped and counted, never used. Then two tables:

* per cell and peer: the rounds kept, the median of the cell's main figure
  with its 95 % confidence interval, the server's median CPU cost per unit
  of work, and what limited the cell;
* per cell, the subject (netloop; netloop-chat in fan-out cells; or the
  SUBJECT peers given) against every other peer: the median of the
  per-round ratios of the main figure and of the server CPU cost, each with
  its 95 % interval and the verdict it implies (ahead / behind / tie).

With --cost-of generator the cost columns are the generator's CPU per
operation instead of the server's (generators.sh: which generator does an
operation's work more cheaply; on a shared machine that is steadier than
the rate, which moves with the share of the core each run got).

The interval and verdict rule is stats.py's, fixed in advance.
"""
import json
import os
import statistics
import sys
from collections import OrderedDict, defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import PUBLISH_ROUNDS, is_failed, median, median_ci, verdict  # noqa: E402

# cell prefix -> (label, main figure, unit, higher is better, cost figure, cost unit)
KINDS = [
    ("tlsstream", "TLS stream 64 KiB", "mb_per_sec", "MB/s", True, "cpu_us_per_mb", "µs/MB"),
    ("tlsconnect", "TLS handshakes", "ops_per_sec", "conn/s", True, "cpu_us_per_op", "µs/conn"),
    ("pp", "pingpong 64 B", "ops_per_sec", "rt/s", True, "cpu_us_per_op", "µs/rt"),
    ("stream", "stream 64 KiB", "mb_per_sec", "MB/s", True, "cpu_us_per_mb", "µs/MB"),
    ("connect", "connect", "ops_per_sec", "conn/s", True, "cpu_us_per_op", "µs/conn"),
    ("idle", "idle", "rss_bytes_per_conn", "B/conn", False, None, ""),
    ("fanout", "fanout", "ops_per_sec", "deliveries/s", True, "cpu_us_per_op", "µs/delivery"),
    # heartbeat.sh: the rate is fixed by the interval, so the figure is the
    # pong tail (p99, lower is better) and the cost the server's CPU per ping + pong.
    ("hb", "heartbeat pong p99", "p99_ms", "ms", False, "cpu_us_per_op", "µs/ping+pong"),
]
DEFAULT_SUBJECTS = ["netloop", "netloop-chat", "netloop-tls"]


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


COST_OF = "server"


def cost_value(rep, k):
    if COST_OF == "generator":
        ops = rep.get("ops") or 0
        cpu = (rep.get("generator") or {}).get("cpu_s")
        return cpu * 1e6 / ops if ops and cpu is not None else None
    return (rep.get("server") or {}).get(k[5]) if k[5] else None


def cost_unit(k):
    return "µs/op of generator CPU" if COST_OF == "generator" else k[6]


def fmt(v):
    if v is None:
        return "–"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.2f}"


def fmt_ci(ci, f=fmt):
    return "–" if ci is None else f"{f(ci[0])} – {f(ci[1])}"


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


def load(path):
    """(runs[(cell, peer)] = {round: report}, cells in order, failures)."""
    runs = defaultdict(dict)
    cells = OrderedDict()
    failed = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if "cell" not in r or "peer" not in r:
                continue
            if r["peer"] not in cells.setdefault(r["cell"], []):
                cells[r["cell"]].append(r["peer"])
            if is_failed(r):
                rep = r.get("report") or {}
                failed.append((r["cell"], r["peer"], r.get("round"),
                               f"{rep.get('mismatched_bytes', 0)} bad bytes, "
                               f"{rep.get('delivery_errors', 0)} bad deliveries, "
                               f"{rep.get('errors', 0)} errors"))
                continue
            runs[(r["cell"], r["peer"])][r.get("round")] = r["report"]
    return runs, cells, failed


def paired(runs, cell, a, b, value):
    """Per-round ratios value(a)/value(b) over the rounds both kept."""
    ra, rb = runs.get((cell, a), {}), runs.get((cell, b), {})
    out = []
    for rd in sorted(set(ra) & set(rb), key=lambda x: (x is None, x)):
        x, y = value(ra[rd]), value(rb[rd])
        if x is not None and y:
            out.append(x / y)
    return out


def main(path, subjects):
    runs, cells, failed = load(path)
    dropped = defaultdict(int)
    for cell, peer, _, _ in failed:
        dropped[(cell, peer)] += 1
    print(f"| cell | peer | rounds kept (failed) | median | 95 % CI of the median | {COST_OF} CPU cost | limited by |")
    print("|---|---|---|---|---|---|---|")
    for cell, peers in cells.items():
        k = kind(cell)
        if not k:
            continue
        for p in peers:
            reps = list(runs.get((cell, p), {}).values())
            vals = [v for v in (main_value(x, k) for x in reps) if v is not None]
            costs = [c for c in (cost_value(x, k) for x in reps) if c is not None]
            m = median(vals)
            print(f"| {cell} | {p} | {len(reps)} ({dropped[(cell, p)]}) | {fmt(m)} {k[3]} | "
                  f"{fmt_ci(median_ci(vals))} | "
                  f"{fmt(median(costs)) + ' ' + cost_unit(k) if costs else '–'} | "
                  f"{limit(reps) if reps else 'no run kept'} |")

    print()
    print("Comparisons: median of the per-round ratios subject/peer, 95 % interval, verdict")
    print("(stats.py's rule; an interval containing 1 is a tie).")
    print()
    print(f"| cell | subject vs peer | rounds | figure ratio (95 % CI) | verdict | {COST_OF} CPU cost ratio (95 % CI) | verdict |")
    print("|---|---|---|---|---|---|---|")
    few = False
    for cell, peers in cells.items():
        k = kind(cell)
        if not k:
            continue
        subject = next((s for s in subjects if s in peers), None)
        if subject is None:
            continue
        for p in peers:
            if p == subject:
                continue
            fig = paired(runs, cell, subject, p, lambda r: main_value(r, k))
            cost = paired(runs, cell, subject, p, lambda r: cost_value(r, k))
            if not fig:
                continue
            few |= len(fig) < PUBLISH_ROUNDS
            fci, cci = median_ci(fig), median_ci(cost)
            cost_cell = (f"{median(cost):.2f}× ({fmt_ci(cci, lambda v: f'{v:.2f}')})"
                         if cost else "–")
            print(f"| {cell} | {subject} vs {p} | {len(fig)} | "
                  f"{median(fig):.2f}× ({fmt_ci(fci, lambda v: f'{v:.2f}')}) | "
                  f"{verdict(fci, k[4])} | {cost_cell} | "
                  f"{verdict(cci, higher_is_better=False) if cost else '–'} |")
    if few:
        print()
        print(f"Comparisons over fewer than {PUBLISH_ROUNDS} rounds are not for publication.")
    if failed:
        print()
        print(f"Failed runs, dropped ({len(failed)}):")
        for cell, peer, rd, why in failed:
            print(f"* {cell} on {peer} (round {rd}): {why}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    rest = sys.argv[2:]
    if rest[:1] == ["--cost-of"]:
        COST_OF = rest[1] if len(rest) > 1 else "server"
        if COST_OF not in ("server", "generator"):
            sys.exit("--cost-of: server or generator")
        rest = rest[2:]
    main(sys.argv[1], rest or DEFAULT_SUBJECTS)
