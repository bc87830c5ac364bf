#!/usr/bin/env bash
# Is `netloop bench` ever the slower side? It against an independent
# generator (echoload, ../shared/tools/echoload) on the same server, cell
# and run.
#
#   ECHOLOAD_BIN=/path/to/echoload benches/compare/generators.sh \
#       [--rounds 7] [--duration 3] [--cells "pp64x1000 connect50"] [--out DIR] [--nice N]
#
# The server is benches/compare/epoll_echo.c, started once and pinned to
# CPU 0; both generators run pinned to CPU 1, alternating, the order
# rotated every round (A B, B A, ...). Each result is written in run.sh's
# format (peer netloop-bench or echoload) so summarize.py gives the median
# per-round ratio netloop-bench/echoload with its 95 % interval, for the
# rate and for each generator's CPU per operation (on a shared machine the
# steadier of the two: the rate moves with the share of the core a run got).
# echoload is built from its own folder (cargo build --release, after
# copying it somewhere writable if ../shared is read-only).
# --nice N: server and generators at nice -N (needs root), as in run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh
ROOT=$(pwd)
ROUNDS=7
DURATION=3
CELLS="pp64x1000 connect50"
OUT=""
NICE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --cells) CELLS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --nice) NICE=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "generators.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
ECHOLOAD=${ECHOLOAD_BIN:-}
OUT=${OUT:-$CARGO_TARGET_DIR/generators}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
[ -x "$NETLOOP" ] || { echo "generators.sh: no netloop at $NETLOOP" >&2; exit 1; }
[ -x "$ECHOLOAD" ] || { echo "generators.sh: set ECHOLOAD_BIN to a built echoload" >&2; exit 1; }
cc -O2 -o "$OUT/epoll_echo" benches/compare/epoll_echo.c
PIN0=""; PIN1=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN0="taskset -c 0"; PIN1="taskset -c 1"; fi
if [ "$NICE" != 0 ]; then
  if nice -n "-$NICE" true 2>/dev/null; then PIN0="nice -n -$NICE $PIN0"; PIN1="nice -n -$NICE $PIN1"
  else echo "== NOTE: cannot raise priority (nice -n -$NICE): normal priority" >&2; fi
fi

PORT=$((20000 + RANDOM % 10000))
$PIN0 "$OUT/epoll_echo" "$PORT" >"$OUT/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

run_netloop() { # cell -> JSON report on stdout
  local a
  case "$1" in
    pp64x*) a="pingpong -s 64 -c ${1#pp64x}" ;;
    connect*) a="connect -s 64 -c ${1#connect}" ;;
  esac
  # shellcheck disable=SC2086
  $PIN1 "$NETLOOP" bench $a --target "127.0.0.1:$PORT" --server-pid "$SRV" \
    --duration "${DURATION}s" --warmup 1s --json
}
run_echoload() { # cell -> echoload's JSON line turned into run.sh's report shape
  local a
  case "$1" in
    pp64x*) a="pingpong --conns ${1#pp64x} --size 64" ;;
    # As many source addresses as netloop bench rotates over.
    connect*) a="connect --conns ${1#connect} --size 64 --src-ips 64" ;;
  esac
  # shellcheck disable=SC2086
  $PIN1 "$ECHOLOAD" $a --port "$PORT" --server-pid "$SRV" --duration "$DURATION" --warmup 1 |
    tail -n 1 | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
ops = r.get("round_trips", r.get("connections", 0))
secs = r["elapsed_s"]
print(json.dumps({
    "ops": ops, "ops_per_sec": ops / secs, "mismatched_bytes": r["mismatch_bytes"],
    "generator": {"cpu_pct": 100 * r["gen_cpu"], "cpu_s": r["gen_cpu"] * secs,
                  "saturated": r["gen_cpu"] >= 0.9},
    "server": {"cpu_pct": 100 * r["server_cpu"],
               "cpu_us_per_op": r["server_cpu"] * secs * 1e6 / ops if ops else None},
}))'
}

echo "== $ROUNDS rounds, cells: $CELLS, ${DURATION} s each; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  for cell in $CELLS; do
    if [ $((round % 2)) = 1 ]; then order="netloop-bench echoload"; else order="echoload netloop-bench"; fi
    for peer in $order; do
      if [ "$peer" = netloop-bench ]; then rep=$(run_netloop "$cell") || rep=""
      else rep=$(run_echoload "$cell") || rep=""; fi
      if [ -n "$rep" ]; then
        echo "{\"round\":$round,\"cell\":\"$cell\",\"peer\":\"$peer\",\"report\":$rep}" >>"$RESULTS"
      else
        echo "{\"round\":$round,\"cell\":\"$cell\",\"peer\":\"$peer\",\"failed\":true,\"report\":null}" >>"$RESULTS"
      fi
      echo "== round $round $cell $peer" >&2
    done
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/compare/summarize.py "$RESULTS" netloop-bench
echo
echo "Generator CPU per operation (the cost each generator pays for the same work):"
python3 benches/compare/summarize.py "$RESULTS" --cost-of generator netloop-bench | sed -n '/^Comparisons/,$p'
