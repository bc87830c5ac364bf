"""Summary of benches/compare/libuv.sh's raw results (libuv.jsonl).

    python3 benches/compare/libuv_summary.py OUT/libuv.jsonl

Per workload and pairing (client -> server): the median over the rounds
with its 95 % interval (stats.py; the lowest-highest range below 6
rounds), and the server's CPU per operation where it was sampled. Then the
comparisons under the interval rule: netloop against libuv as the same
role, as the median of the per-round ratios with its 95 % interval and
verdict (both ran in every round):
  * server: netloop and libuv servers under the same client (each client
    in turn), on rate and on server CPU per operation;
  * client and server together: netloop -> netloop against libuv -> libuv;
  * million_timers: each phase's seconds and the process's CPU seconds.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stats import median, median_ci, verdict  # noqa: E402

NET = ["ping_pongs", "pound100", "pound1000"]
PAIRS = ["netloop:netloop", "libuv:libuv", "netloop:libuv", "libuv:netloop"]


def fmt(xs, digits=0):
    if not xs:
        return "failed"
    m = median(xs)
    ci = median_ci(xs)
    lo, hi = (ci[0], ci[1]) if ci else (min(xs), max(xs))
    what = "95 %" if ci else "range"
    return f"{m:,.{digits}f} ({what} {lo:,.{digits}f}–{hi:,.{digits}f})"


def ratio_row(label, ratios, higher_is_better):
    if not ratios:
        return f"| {label} | - | - |"
    ci = median_ci(ratios)
    rng = f"{ci[0]:.2f} – {ci[1]:.2f}" if ci else f"range {min(ratios):.2f} – {max(ratios):.2f}"
    return f"| {label} | {median(ratios):.2f}× ({rng}, n={len(ratios)}) | {verdict(ci, higher_is_better)} |"


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by = {}
    failed = 0
    for r in rows:
        rep = r.get("report")
        if r["bench"] == "million_timers":
            ok = rep and rep.get("fired") == rep.get("timers")
        else:
            ok = rep and rep.get("ops_per_sec") and rep.get("mismatched_bytes", 0) == 0
        if not ok:
            failed += 1
            continue
        by[(r["bench"], r["client"], r["server"], r["round"])] = r
    rounds = sorted({r["round"] for r in rows})

    def vals(bench, c, s, f):
        out = []
        for n in rounds:
            r = by.get((bench, c, s, n))
            v = f(r) if r else None
            if v is not None:
                out.append(v)
        return out

    def cpu_per_op(r):
        ops = r["report"].get("ops")
        cpu = r.get("server_cpu_s")
        return cpu * 1e6 / ops if cpu is not None and ops else None

    print(f"{len(rounds)} rounds; medians with their 95 % interval (the range below 6 rounds)\n")
    print("| workload | client → server | per second | server CPU µs per op | failures |")
    print("|---|---|---|---|---|")
    for bench in NET:
        for pair in PAIRS:
            c, s = pair.split(":")
            ops = vals(bench, c, s, lambda r: r["report"]["ops_per_sec"])
            if not ops:
                continue
            cpu = vals(bench, c, s, cpu_per_op)
            fails = sum(vals(bench, c, s, lambda r: r["report"].get("failed", 0) + r["report"].get("errors", 0)))
            print(f"| {bench} | {c} → {s} | {fmt(ops)} | {fmt(cpu, 2) if cpu else '-'} | {fails} |")
    for who in ["netloop", "libuv"]:
        n = vals("million_timers", who, "-", lambda r: r["report"]["timers"])
        if not n:
            continue
        phases = " / ".join(
            fmt(vals("million_timers", who, "-", lambda r, p=p: r["report"].get(p)), 2)
            for p in ["init_s", "dispatch_s", "cleanup_s", "total_s"])
        cpu = vals("million_timers", who, "-", lambda r: r["report"].get("cpu_s"))
        print(f"| million_timers ({n[0]:,}) init / dispatch / cleanup / total s | {who} | {phases} | CPU {fmt(cpu, 2)} s | 0 |")

    print("\nnetloop / libuv, median of the per-round ratios (95 % interval), verdict for netloop:\n")
    print("| comparison | ratio | verdict |")
    print("|---|---|---|")

    def per_round(a, b, f):
        out = []
        for n in rounds:
            ra, rb = by.get(a + (n,)), by.get(b + (n,))
            va, vb = (f(ra) if ra else None), (f(rb) if rb else None)
            if va is not None and vb:
                out.append(va / vb)
        return out

    rate = lambda r: r["report"]["ops_per_sec"]  # noqa: E731
    for bench in NET:
        print(ratio_row(f"{bench}: netloop → netloop / libuv → libuv, rate",
                        per_round((bench, "netloop", "netloop"), (bench, "libuv", "libuv"), rate), True))
        for client in ["netloop", "libuv"]:
            print(ratio_row(f"{bench}: server netloop / libuv under the {client} client, rate",
                            per_round((bench, client, "netloop"), (bench, client, "libuv"), rate), True))
            print(ratio_row(f"{bench}: server netloop / libuv under the {client} client, server CPU per op",
                            per_round((bench, client, "netloop"), (bench, client, "libuv"), cpu_per_op), False))
        print(ratio_row(f"{bench}: client netloop / libuv against the libuv server, rate",
                        per_round((bench, "netloop", "libuv"), (bench, "libuv", "libuv"), rate), True))
    for p in ["init_s", "dispatch_s", "cleanup_s", "total_s", "cpu_s"]:
        print(ratio_row(f"million_timers {p[:-2]} seconds",
                        per_round(("million_timers", "netloop", "-"), ("million_timers", "libuv", "-"),
                                  lambda r, p=p: r["report"].get(p)), False))
    if failed:
        print(f"\n{failed} run(s) failed and were left out")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: libuv_summary.py LIBUV.jsonl")
    main(sys.argv[1])
