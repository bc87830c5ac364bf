#!/usr/bin/env bash
# netloop beside libuv, on libuv's own benchmark workloads, in one run:
#
#   benches/compare/libuv.sh [--quick] [--rounds 7] [--duration 5] [--timers 10000000]
#                            [--benches "ping_pongs pound100 pound1000"]
#                            [--out DIR] [--no-build] [--install]
#
# * ping_pongs (libuv test/benchmark-ping-pongs.c): one connection, 5-byte
#   round trips for --duration seconds; round trips/s.
# * pound100, pound1000 (tcp4_pound_100 / _1000): N clients connect, write
#   one byte, close on the first read and connect again; closed
#   connections/s and failures.
# * million_timers (benchmark-million-timers.c): arm, fire and free
#   --timers one-shot timers whose timeouts rise 1 ms per 1,000; seconds
#   for init, dispatch and cleanup.
#
# libuv's side is uv_bench.c (beside this script) built against the system's
# libuv (Debian: libuv1-dev; Debian ships no libuv benchmark runner). The
# network workloads run every pairing of client and server (netloop and
# libuv each as both), so a difference can be told apart as the client's or
# the server's: the server pinned to CPU 0, the client to CPU 1. The
# pairings' order is rotated by one place each round. The server's CPU time
# over each run is read from /proc (CPU per operation holds up on a shared
# machine where rates do not). The summary (libuv_summary.py) gives per
# pairing the median over the rounds with its 95 % interval (stats.py, from
# 6 rounds on; the range below), and netloop against libuv in each role as
# per-round ratios with their intervals and verdicts.
#
# Needs cc and libuv's headers: without them the script says so and exits
# with status 3, or with --install (as root) installs gcc and libuv1-dev
# with apt-get first, saying so.
# --benches: the network workloads to run (million_timers always runs;
# --benches "" runs only it).
# --quick: 1 round, 1 s, ping_pongs and pound100, 200,000 timers (options
# given explicitly still win).
# --no-build: use NETLOOP_BIN as it is (default: the release build).
# Raw results: OUT/libuv.jsonl (one object a line), summary: OUT/libuv.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh
ROOT=$(pwd)

QUICK=0; NO_BUILD=0; INSTALL=0
ROUNDS=""; DURATION=""; TIMERS=""; OUT=""; BENCHES_OPT="-"
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --timers) TIMERS=$2; shift ;;
    --benches) BENCHES_OPT=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --install) INSTALL=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "libuv.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
BENCHES="ping_pongs pound100 pound1000"
if [ "$QUICK" = 1 ]; then
  ROUNDS=${ROUNDS:-1}; DURATION=${DURATION:-1}; TIMERS=${TIMERS:-200000}; BENCHES="ping_pongs pound100"
fi
ROUNDS=${ROUNDS:-7}; DURATION=${DURATION:-5}; TIMERS=${TIMERS:-10000000}
[ "$BENCHES_OPT" != "-" ] && BENCHES=$BENCHES_OPT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$CARGO_TARGET_DIR/compare-libuv}
mkdir -p "$OUT"
RESULTS=$OUT/libuv.jsonl
: >"$RESULTS"
say() { echo "== $*"; }

# ---- libuv's side -------------------------------------------------------
have_libuv() {
  command -v cc >/dev/null && printf '#include <uv.h>\nint main(void){return 0;}\n' |
    cc -x c - -o /dev/null -luv 2>/dev/null
}
if ! have_libuv; then
  if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing gcc and libuv1-dev with apt-get (--install)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libuv1-dev
  fi
  if ! have_libuv; then
    echo "libuv.sh: cc or libuv's headers are missing: apt-get install gcc libuv1-dev (or run with --install as root)" >&2
    exit 3
  fi
fi
UV=$OUT/uv_bench
cc -O2 -Wall -o "$UV" benches/compare/uv_bench.c -luv
say "libuv $(pkg-config --modversion libuv 2>/dev/null || echo '(version unknown)'), uv_bench built"

if [ "$NO_BUILD" = 0 ]; then
  cargo build --release --quiet
  NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
else
  NETLOOP=${NETLOOP_BIN:?--no-build needs NETLOOP_BIN}
fi

SRV_PIN=""; GEN_PIN=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  SRV_PIN="taskset -c 0"; GEN_PIN="taskset -c 1"
else
  say "NOTE: taskset or a second CPU is missing: server and client are not pinned"
fi

PORT=$((20000 + RANDOM % 10000))
SRV_PID=""
start_server() { # netloop|libuv -> SRV_PID, SRV_PORT
  PORT=$((PORT + 1)); SRV_PORT=$PORT
  local cmd
  case "$1" in
    netloop) cmd="$NETLOOP serve echo --port $SRV_PORT" ;;
    libuv) cmd="$UV echo $SRV_PORT" ;;
  esac
  launch_server "$SRV_PORT" "$cmd" "$SRV_PIN" "$OUT/server-$1.log" && return 0
  echo "libuv.sh: the $1 server did not start (log: $OUT/server-$1.log)" >&2
  return 1
}
TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# The server's user + system CPU so far, in clock ticks (/proc/PID/stat
# fields 14 and 15; our servers' names hold no space).
server_ticks() { awk '{print $14 + $15}' "/proc/$SRV_PID/stat" 2>/dev/null || echo 0; }
trap stop_server EXIT

# run_net ROUND BENCH CLIENT SERVER: one measurement, one line in RESULTS.
run_net() {
  local round=$1 bench=$2 client=$3 server=$4 conns=1 out
  case "$bench" in pound*) conns=${bench#pound} ;; esac
  start_server "$server" || return 1
  local cpu0; cpu0=$(server_ticks)
  if [ "$client" = netloop ]; then
    local wl=ping_pongs
    [ "$bench" = ping_pongs ] || wl=pound
    out=$(ulimit -n "$(ulimit -Hn)" 2>/dev/null; $GEN_PIN "$NETLOOP" bench "$wl" \
      -t "127.0.0.1:$SRV_PORT" -c "$conns" -d "${DURATION}s" --warmup 0s --json 2>>"$OUT/client.err") || out=""
  else
    if [ "$bench" = ping_pongs ]; then
      out=$($GEN_PIN "$UV" ping_pongs "$SRV_PORT" "$DURATION" 2>>"$OUT/client.err") || out=""
    else
      out=$(ulimit -n "$(ulimit -Hn)" 2>/dev/null; $GEN_PIN "$UV" pound "$SRV_PORT" "$conns" "$DURATION" 2>>"$OUT/client.err") || out=""
    fi
  fi
  local cpu1; cpu1=$(server_ticks)
  stop_server
  printf '{"round":%d,"bench":"%s","client":"%s","server":"%s","server_cpu_s":%s,"report":%s}\n' \
    "$round" "$bench" "$client" "$server" "$(awk -v a="$cpu0" -v b="$cpu1" -v t="$TCK" 'BEGIN{printf "%.2f", (b-a)/t}')" \
    "${out:-null}" >>"$RESULTS"
}

PAIRS=(netloop:netloop libuv:libuv netloop:libuv libuv:netloop)
say "rounds $ROUNDS, $BENCHES at ${DURATION}s, million_timers × $TIMERS"
for round in $(seq "$ROUNDS"); do
  k=$(( (round - 1) % ${#PAIRS[@]} ))
  order=("${PAIRS[@]:k}" "${PAIRS[@]:0:k}")
  for bench in $BENCHES; do
    for pair in "${order[@]}"; do
      run_net "$round" "$bench" "${pair%%:*}" "${pair##*:}" || true
    done
  done
  # The timers: each loop alone on CPU 1, alternating which goes first.
  first=netloop; second=libuv
  if [ $((round % 2)) = 0 ]; then first=libuv; second=netloop; fi
  for who in $first $second; do
    if [ "$who" = netloop ]; then
      out=$($GEN_PIN "$NETLOOP" bench million_timers --timers "$TIMERS" --json 2>>"$OUT/client.err") || out=""
    else
      out=$($GEN_PIN "$UV" million_timers "$TIMERS" 2>>"$OUT/client.err") || out=""
    fi
    printf '{"round":%d,"bench":"million_timers","client":"%s","server":"-","report":%s}\n' \
      "$round" "$who" "${out:-null}" >>"$RESULTS"
  done
  say "round $round done"
done

if ! command -v python3 >/dev/null; then
  say "python3 not found: no summary (raw results in $RESULTS)"
  exit 0
fi
python3 benches/compare/libuv_summary.py "$RESULTS" >"$OUT/libuv.md"
cat "$OUT/libuv.md"
say "raw: $RESULTS  summary: $OUT/libuv.md"
