#!/usr/bin/env bash
# The heartbeat cell: `netloop bench heartbeat` with C clients at a ping
# interval I against `netloop serve heartbeat --heartbeat-interval I`,
# server pinned to CPU 0, generator to CPU 1; R rounds, one JSON report per
# round in OUT/heartbeat.jsonl, and the server's /metrics text at the end of
# each round in OUT/heartbeat-metrics-N.txt.
#
#   benches/compare/heartbeat.sh [CLIENTS=10000] [INTERVAL=1s] [ROUNDS=3] [DURATION=10s]
#
# Needs the release build (cargo build --release --bins) and curl for the
# metrics snapshot (skipped without it). NICE=N raises both to nice -N.
set -euo pipefail
cd "$(dirname "$0")/../.."
C=${1:-10000}; I=${2:-1s}; R=${3:-3}; D=${4:-10s}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
OUT=${OUT:-$CARGO_TARGET_DIR/compare}
mkdir -p "$OUT"; : > "$OUT/heartbeat.jsonl"
PRE=""; [ -n "${NICE:-}" ] && nice -n "-$NICE" true 2>/dev/null && PRE="nice -n -$NICE"
ulimit -n "$(ulimit -Hn)"
for n in $(seq "$R"); do
  PORT=$((21000 + RANDOM % 5000)); MPORT=$((PORT + 5000))
  RUST_LOG=warn $PRE taskset -c 0 "$NETLOOP" serve heartbeat --port "$PORT" \
      --heartbeat-interval "$I" --metrics "127.0.0.1:$MPORT" >"$OUT/server-heartbeat.log" 2>&1 &
  SRV=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
  $PRE taskset -c 1 "$NETLOOP" bench heartbeat -c "$C" --interval "$I" \
      --target "127.0.0.1:$PORT" --server-pid "$SRV" --duration "$D" --warmup 2s --json \
      >>"$OUT/heartbeat.jsonl" 2>"$OUT/bench-heartbeat.err" || echo "round $n failed" >&2
  command -v curl >/dev/null && curl -s "http://127.0.0.1:$MPORT/metrics" >"$OUT/heartbeat-metrics-$n.txt" || true
  kill "$SRV"; wait "$SRV" 2>/dev/null || true
done
cat "$OUT/heartbeat.jsonl"
