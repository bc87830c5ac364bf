#!/usr/bin/env bash
# A generator's own cost per round trip, counted instead of timed: user-space
# instructions and simulated cache misses (valgrind's cachegrind) of
# `netloop bench pingpong` and, if ECHOLOAD_BIN is set, of echoload, each
# driving the C epoll echo (benches/compare/epoll_echo.c) with the same cell.
#
#   [ECHOLOAD_BIN=/path/to/echoload] [NETLOOP_BIN=...] \
#       benches/compare/cachegrind.sh [--connections 1000] [--size 64] [--duration 8]
#
# Rates on a shared 2-vCPU guest swing by a quarter from run to run, so a
# change worth a few per cent of the generator's CPU cannot be seen in them
# without dozens of rounds; these counts repeat within a few per cent. Per
# round trip = the whole process's totals (set-up included) divided by the
# round trips of the window scaled to the warm-up plus the window (1 s + D).
# The kernel's own use of the caches is not simulated: the misses are a
# lower bound, and only user space is counted. Under valgrind the generator
# runs some 50 times slower; the server is not slowed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
CONNS=1000
SIZE=64
DURATION=8
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) CONNS=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "cachegrind.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
command -v valgrind >/dev/null || { echo "cachegrind.sh: valgrind not found (Debian: apt-get install valgrind)" >&2; exit 1; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
[ -x "$NETLOOP" ] || { echo "cachegrind.sh: no netloop at $NETLOOP (cargo build --release)" >&2; exit 1; }
OUT=$(mktemp -d)
cc -O2 -o "$OUT/epoll_echo" benches/compare/epoll_echo.c
PORT=$((20000 + RANDOM % 10000))
"$OUT/epoll_echo" "$PORT" >"$OUT/server.log" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true; rm -rf "$OUT"' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

# per_op NAME CACHEGRIND_FILE ROUND_TRIPS: one line of counts per round trip.
per_op() {
  python3 - "$@" "$DURATION" <<'EOF'
import sys
name, path, ops, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
events = summary = None
for line in open(path):
    if line.startswith("events:"):
        events = line.split()[1:]
    elif line.startswith("summary:"):
        summary = [int(x) for x in line.split()[1:]]
d = dict(zip(events, summary))
n = max(ops, 1) * (duration + 1) / duration
print(f"| {name} | {ops:,} | {d['Ir']/n:,.0f} | {d['D1mr']/n:.2f} | {d['D1mw']/n:.2f} | {d['DLmr']/n:.3f} |")
EOF
}

echo "| generator | round trips in the window | instructions per round trip | D1 read misses | D1 write misses | last-level read misses |"
echo "|---|---|---|---|---|---|"
valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$OUT/netloop.cg" \
  "$NETLOOP" bench pingpong -s "$SIZE" -c "$CONNS" --target "127.0.0.1:$PORT" \
  --duration "${DURATION}s" --warmup 1s --json >"$OUT/netloop.json" 2>"$OUT/netloop.err"
OPS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ops"])' "$OUT/netloop.json")
per_op "netloop bench" "$OUT/netloop.cg" "$OPS"
if [ -n "${ECHOLOAD_BIN:-}" ]; then
  valgrind --tool=cachegrind --cache-sim=yes --cachegrind-out-file="$OUT/echoload.cg" \
    "$ECHOLOAD_BIN" pingpong --conns "$CONNS" --size "$SIZE" --port "$PORT" \
    --duration "$DURATION" --warmup 1 >"$OUT/echoload.json" 2>"$OUT/echoload.err"
  OPS=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["round_trips"])' "$OUT/echoload.json")
  per_op "echoload" "$OUT/echoload.cg" "$OPS"
fi
