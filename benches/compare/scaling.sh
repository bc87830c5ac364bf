#!/usr/bin/env bash
# Scaling with cores: `netloop serve echo --workers N` against Node's
# `cluster` (N worker processes, pipe echo) and tokio's `multi_thread`
# runtime (N worker threads), for N = 1, 2, 4, ... as far as the machine
# allows.
#
#   benches/compare/scaling.sh [--workers "1 2 4"] [--rounds 7] [--duration 3s]
#                              [--warmup 1s] [--cells "pp64x200 connect50"]
#                              [--peers "netloop node-cluster tokio-mt"]
#                              [--out DIR] [--no-build] [--seed S]
#
# For each N the server is pinned to cores 0..N-1 and the generator
# (`netloop bench --threads`) to the remaining cores, one load thread per
# core. Where N leaves no core for the generator (N = every core, e.g. N = 2
# on a 2-core machine), the generator runs on all cores beside the server
# with N threads and the cell is named `...-wN-shared`: its figures measure
# the machine, not the server alone, and are generator-bound by
# construction. Cells are named `CELL-wN`; peers keep their names, so
# summarize.py compares netloop with each peer for every N.
#
# Peers are started fresh for every measurement; the order of the peers is a
# shuffle from the printed seed rotated by one place per round, as in run.sh.
# Server CPU (`--server-pid`) counts every thread of the server process; for
# node-cluster that is only the primary (its workers are other processes),
# so node-cluster's CPU-per-operation column is not comparable and the
# summary says so. Raw reports go to OUT/results.jsonl, the summary with
# 95 % intervals to OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh

NO_BUILD=0
ROUNDS=7
SEED=$(( (RANDOM << 15) | RANDOM ))
DURATION=3s
WARMUP=1s
CORES=$(nproc)
WORKERS=""
PEERS="netloop node-cluster tokio-mt"
CELLS="pp64x200 connect50"
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --cells) CELLS=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --seed) SEED=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$WORKERS" ]; then
  n=1; WORKERS=""
  while [ "$n" -le "$CORES" ]; do WORKERS="$WORKERS $n"; n=$((n * 2)); done
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$CARGO_TARGET_DIR/scaling}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"
say() { echo "== $*" >&2; }

if [ "$NO_BUILD" = 0 ]; then
  say "building netloop and the tokio peer (release)"
  cargo build --release --quiet --bin netloop --example tokio_echo
fi
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
TOKIO=${TOKIO_BIN:-$CARGO_TARGET_DIR/release/examples/tokio_echo}
[ -x "$NETLOOP" ] || { echo "scaling.sh: no netloop binary at $NETLOOP" >&2; exit 1; }
declare -A SKIP=()
[ -x "$TOKIO" ] || { say "SKIP tokio-mt: no binary at $TOKIO"; SKIP[tokio-mt]=1; }
command -v node >/dev/null || { say "SKIP node-cluster: node is not installed"; SKIP[node-cluster]=1; }
HAVE_TASKSET=1
command -v taskset >/dev/null || { say "NOTE: no taskset: nothing is pinned"; HAVE_TASKSET=0; }

cell_args() {
  case "$1" in
    pp64x*) echo "pingpong -s 64 -c ${1#pp64x}" ;;
    stream64Kx*) echo "stream -s 64KiB -c ${1#stream64Kx}" ;;
    connect*) echo "connect -s 64 -c ${1#connect}" ;;
    *) echo "scaling.sh: unknown cell $1" >&2; return 1 ;;
  esac
}

PORT=$((20000 + RANDOM % 10000))
start_server() { # peer workers pin -> SRV_PID, SRV_PORT
  local peer=$1 n=$2 pin=$3 cmd
  PORT=$((PORT + 1)); SRV_PORT=$PORT
  case "$peer" in
    netloop) cmd="$NETLOOP serve echo --port $SRV_PORT --workers $n" ;;
    node-cluster) cmd="node benches/compare/node_cluster_echo.js $n $SRV_PORT" ;;
    tokio-mt) cmd="$TOKIO $SRV_PORT $n" ;;
    *) echo "unknown peer $peer" >&2; return 1 ;;
  esac
  launch_server "$SRV_PORT" "$cmd" "$pin" "$OUT/server-$peer.log" && return 0
  stop_server; return 1
}

say "cores $CORES; workers: $WORKERS; cells: $CELLS; peers: $PEERS; $ROUNDS rounds of $DURATION"
say "order of peers: seed $SEED (repeat with --seed $SEED), rotated by one each round"
for round in $(seq "$ROUNDS"); do
  for n in $WORKERS; do
    [ "$n" -le "$CORES" ] || { say "SKIP N=$n: only $CORES cores"; continue; }
    srv_pin=""; gen_pin=""; suffix="-w$n"; threads=$((CORES - n))
    if [ "$threads" -ge 1 ]; then
      [ "$HAVE_TASKSET" = 1 ] && srv_pin="taskset -c 0-$((n - 1))" && gen_pin="taskset -c $n-$((CORES - 1))"
    else
      threads=$n; suffix="-w$n-shared"
    fi
    for cell in $CELLS; do
      args=$(cell_args "$cell")
      # shellcheck disable=SC2086
      for peer in $(order_for "$round" $PEERS); do
        [ -n "${SKIP[$peer]:-}" ] && continue
        if ! start_server "$peer" "$n" "$srv_pin"; then
          say "SKIP $peer: it did not start (see $OUT/server-$peer.log)"; SKIP[$peer]=1; continue
        fi
        say "round $round  $cell$suffix  $peer"
        # shellcheck disable=SC2086
        if rep=$($gen_pin "$NETLOOP" bench $args --threads "$threads" --target "127.0.0.1:$SRV_PORT" \
            --server-pid "$SRV_PID" --duration "$DURATION" --warmup "$WARMUP" --json 2>"$OUT/bench.err"); then
          echo "{\"round\":$round,\"cell\":\"$cell$suffix\",\"peer\":\"$peer\",\"report\":$rep}" >>"$RESULTS"
        else
          say "FAILED: $cell$suffix on $peer: $(tail -n 3 "$OUT/bench.err")"
          echo "{\"round\":$round,\"cell\":\"$cell$suffix\",\"peer\":\"$peer\",\"failed\":true,\"report\":${rep:-null}}" >>"$RESULTS"
        fi
        stop_server
      done
    done
  done
done

{
  echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $CORES CPUs, kernel $(uname -r)"
  echo "server on cores 0..N-1, generator on the rest; cells ending in -shared: no core left, generator beside the server"
  echo "$ROUNDS round(s) of $DURATION per cell; order of peers: seed $SEED, rotated by one place per round"
  echo "node-cluster's server CPU counts its primary process only: its CPU-cost columns are not comparable"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo
} >"$OUT/summary.md"
python3 benches/compare/summarize.py "$RESULTS" >>"$OUT/summary.md" || echo "(summary failed: raw reports in $RESULTS)" >>"$OUT/summary.md"
cat "$OUT/summary.md"
