#!/usr/bin/env bash
# rust_echo_bench's grid (message sizes 128 / 512 / 1000 B × 1 / 50 / 150 /
# 300 / 500 / 1000 connections) against several echo servers in one run:
#
#   benches/compare/grid.sh [--rounds 3] [--duration 5s] [--warmup 1s]
#                           [--servers "netloop libuv epoll"] [--out DIR] [--no-build]
#                           [--sizes 128,512,1000] [--connections 1,50,150,300,500,1000]
#
# Each round runs `netloop bench pingpong --grid --json` (the generator,
# pinned to CPU 1) once against each server (started fresh, pinned to
# CPU 0), the servers' order rotated by one place per round. Servers:
# netloop (`netloop serve echo`), libuv (uv_bench.c's echo, built against
# the system's libuv), epoll (epoll_echo.c), tokio (TOKIO_BIN, default the
# release build of examples/tokio_echo; skipped when missing). A server that
# cannot be built is skipped with a message.
# The summary (grid_summary.py) gives per cell and server the median round
# trips/s and server CPU µs per round trip over the rounds, and netloop /
# each other server as the median of the per-round ratios with its 95 %
# interval (stats.py; from 6 rounds on, else the range).
# Raw results: OUT/grid.jsonl (one grid report per line), summary OUT/grid.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh
ROOT=$(pwd)

ROUNDS=3; DURATION=5s; WARMUP=1s; SERVERS="netloop libuv epoll"; OUT=""; NO_BUILD=0
SIZES=128,512,1000; CONNS=1,50,150,300,500,1000
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --connections) CONNS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "grid.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$CARGO_TARGET_DIR/compare-grid}
mkdir -p "$OUT"
RESULTS=$OUT/grid.jsonl
: >"$RESULTS"
say() { echo "== $*"; }

if [ "$NO_BUILD" = 0 ]; then
  cargo build --release --quiet
  NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
else
  NETLOOP=${NETLOOP_BIN:?--no-build needs NETLOOP_BIN}
fi
TOKIO=${TOKIO_BIN:-$CARGO_TARGET_DIR/release/examples/tokio_echo}

usable=""
for s in $SERVERS; do
  case "$s" in
    netloop) usable+=" netloop" ;;
    libuv)
      if command -v cc >/dev/null && cc -O2 -o "$OUT/uv_bench" benches/compare/uv_bench.c -luv 2>"$OUT/build-libuv.log"; then
        usable+=" libuv"
      else
        say "skipping libuv: cc or libuv1-dev missing (see $OUT/build-libuv.log)"
      fi ;;
    epoll)
      if command -v cc >/dev/null && cc -O2 -o "$OUT/epoll_echo" benches/compare/epoll_echo.c 2>"$OUT/build-epoll.log"; then
        usable+=" epoll"
      else
        say "skipping epoll: no C compiler"
      fi ;;
    tokio)
      if [ -x "$TOKIO" ]; then usable+=" tokio"; else say "skipping tokio: $TOKIO missing"; fi ;;
    *) echo "grid.sh: unknown server $s" >&2; exit 2 ;;
  esac
done
read -r -a SRV <<<"$usable"
[ "${#SRV[@]}" -gt 0 ] || { echo "grid.sh: no server to run" >&2; exit 3; }

SRV_PIN=""; GEN_PIN=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  SRV_PIN="taskset -c 0"; GEN_PIN="taskset -c 1"
else
  say "NOTE: taskset or a second CPU is missing: server and generator are not pinned"
fi

PORT=$((20000 + RANDOM % 10000))
SRV_PID=""
start_server() {
  PORT=$((PORT + 1)); SRV_PORT=$PORT
  local cmd
  case "$1" in
    netloop) cmd="$NETLOOP serve echo --port $SRV_PORT" ;;
    libuv) cmd="$OUT/uv_bench echo $SRV_PORT" ;;
    epoll) cmd="$OUT/epoll_echo $SRV_PORT" ;;
    tokio) cmd="$TOKIO $SRV_PORT" ;;
  esac
  launch_server "$SRV_PORT" "$cmd" "$SRV_PIN" "$OUT/server-$1.log" && return 0
  echo "grid.sh: the $1 server did not start (log: $OUT/server-$1.log)" >&2
  return 1
}
trap stop_server EXIT

say "rounds $ROUNDS, servers ${SRV[*]}, sizes $SIZES × connections $CONNS, $DURATION per cell"
for round in $(seq "$ROUNDS"); do
  k=$(( (round - 1) % ${#SRV[@]} ))
  for s in "${SRV[@]:k}" "${SRV[@]:0:k}"; do
    start_server "$s" || continue
    out=$(ulimit -n "$(ulimit -Hn)" 2>/dev/null; $GEN_PIN "$NETLOOP" bench pingpong --grid \
      --grid-sizes "$SIZES" --grid-connections "$CONNS" -t "127.0.0.1:$SRV_PORT" \
      -d "$DURATION" --warmup "$WARMUP" --server-pid "$SRV_PID" --json 2>>"$OUT/bench.err") || true
    stop_server
    printf '{"round":%d,"server":"%s","grid":%s}\n' "$round" "$s" "${out:-null}" >>"$RESULTS"
    say "round $round: $s done"
  done
done

if ! command -v python3 >/dev/null; then
  say "python3 not found: no summary (raw results in $RESULTS)"
  exit 0
fi
python3 benches/compare/grid_summary.py "$RESULTS" >"$OUT/grid.md"
cat "$OUT/grid.md"
say "raw: $RESULTS  summary: $OUT/grid.md"
