#!/usr/bin/env bash
# The heartbeat cells: `netloop bench heartbeat` with C clients at a ping
# interval I against each heartbeat server in turn, for each client count;
# server pinned to CPU 0, generator to CPU 1; R rounds, the order of the
# peers rotated each round so neither always runs first. One JSON report per
# cell in OUT/heartbeat.jsonl, tagged with "peer"; for netloop, the server's
# /metrics text at the end of each cell in OUT/heartbeat-metrics-C-N.txt;
# then a table of medians (min-max) per client count and peer, and the
# ratios netloop / each other peer with 95 % intervals (summarize.py, from
# OUT/results.jsonl in run.sh's format: cells hbN for N clients).
#
#   benches/compare/heartbeat.sh [CLIENTS="1000 10000 15000"] [INTERVAL=1s] [ROUNDS=3] [DURATION=10s]
#
# Peers: netloop (`netloop serve heartbeat --heartbeat-interval I`), tokio
# (benches/compare/tokio_heartbeat.rs, one task per connection with
# tokio::time::interval), and netloop-base when NETLOOP_BASE_BIN names an
# older netloop binary (a before/after of the same change in one run).
# PEERS="netloop tokio" overrides the list. The timeout is 5 s for all.
#
# Needs the release builds (cargo build --release --bins --example
# tokio_heartbeat) and curl for the metrics snapshot (skipped without it).
# NICE=N raises servers and generator to nice -N. 15,000 clients need
# `ulimit -n` of 15,100 or more in both processes (the script raises it to
# the hard limit).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh
CS=${1:-"1000 10000 15000"}; I=${2:-1s}; R=${3:-3}; D=${4:-10s}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
TOKIO=${TOKIO_HB_BIN:-$CARGO_TARGET_DIR/release/examples/tokio_heartbeat}
BASE=${NETLOOP_BASE_BIN:-}
OUT=${OUT:-$CARGO_TARGET_DIR/compare}
TIMEOUT_MS=5000
DEFAULT_PEERS="netloop tokio"; [ -n "$BASE" ] && DEFAULT_PEERS="netloop tokio netloop-base"
read -r -a PEER_LIST <<<"${PEERS:-$DEFAULT_PEERS}"
mkdir -p "$OUT"; : > "$OUT/heartbeat.jsonl"; : > "$OUT/results.jsonl"
PRE=""; [ -n "${NICE:-}" ] && nice -n "-$NICE" true 2>/dev/null && PRE="nice -n -$NICE"
ulimit -n "$(ulimit -Hn)"
# The interval in ms for the tokio peer.
case "$I" in
  *ms) IMS=${I%ms} ;;
  *s) IMS=$(( ${I%s} * 1000 )) ;;
  *) echo "interval must end in s or ms: $I" >&2; exit 2 ;;
esac

# start_server PEER PORT MPORT: starts it in the background, sets SRV.
start_server() {
  local peer=$1 port=$2 mport=$3 bin=$NETLOOP
  case "$peer" in
    netloop|netloop-base)
      [ "$peer" = netloop-base ] && bin=$BASE
      RUST_LOG=warn $PRE taskset -c 0 "$bin" serve heartbeat --port "$port" \
          --heartbeat-interval "$I" --heartbeat-timeout "$((TIMEOUT_MS / 1000))s" \
          --metrics "127.0.0.1:$mport" >"$OUT/server-$peer.log" 2>&1 & ;;
    tokio)
      $PRE taskset -c 0 "$TOKIO" "$port" "$IMS" "$TIMEOUT_MS" >"$OUT/server-$peer.log" 2>&1 & ;;
    *) echo "unknown peer $peer" >&2; exit 2 ;;
  esac
  SRV=$!
}

for c in $CS; do
  for n in $(seq "$R"); do
    # Rotate the order of the peers each round.
    k=$(( (n - 1) % ${#PEER_LIST[@]} ))
    order=("${PEER_LIST[@]:k}" "${PEER_LIST[@]:0:k}")
    for peer in "${order[@]}"; do
      PORT=$((21000 + RANDOM % 5000)); MPORT=$((PORT + 5000))
      start_server "$peer" "$PORT" "$MPORT"
      for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      if $PRE taskset -c 1 "$NETLOOP" bench heartbeat -c "$c" --interval "$I" \
          --target "127.0.0.1:$PORT" --server-pid "$SRV" --duration "$D" --warmup 2s --json \
          >"$OUT/cell.json" 2>"$OUT/bench-heartbeat.err"; then
        # The report tagged for the table below, and the same report in
        # run.sh's format (cell hbN) for summarize.py's intervals.
        python3 - "$OUT" "$peer" "$n" "$load" "$c" <<'PY'
import json, sys
out, peer, rnd, load, clients = sys.argv[1:]
d = json.load(open(f"{out}/cell.json"))
d.update(peer=peer, round=int(rnd), loadavg=load)
d["p99_ms"] = (d.get("latency_us") or {}).get("p99", 0) / 1e3
with open(f"{out}/heartbeat.jsonl", "a") as f:
    print(json.dumps(d), file=f)
with open(f"{out}/results.jsonl", "a") as f:
    print(json.dumps({"round": int(rnd), "cell": "hb" + clients, "peer": peer, "report": d}), file=f)
PY
      else
        echo "$peer, $c clients, round $n failed" >&2
      fi
      if [ "$peer" != tokio ] && command -v curl >/dev/null; then
        curl -s "http://127.0.0.1:$MPORT/metrics" >"$OUT/heartbeat-metrics-$peer-$c-$n.txt" || true
      fi
      kill "$SRV"; wait "$SRV" 2>/dev/null || true
    done
  done
done

python3 - "$OUT/heartbeat.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = statistics.median(xs)
    return f"{m:.2f} ({min(xs):.2f}-{max(xs):.2f})" if len(xs) > 1 else f"{m:.2f}"
print("| clients | peer | rounds | pongs/s | server CPU per ping+pong, us | CPU % | pong p50 / p99 / p99.9 / max, ms | errors | load avg |")
print("|---|---|---|---|---|---|---|---|---|")
for c in sorted({r["connections"] for r in rows}):
    for peer in dict.fromkeys(r["peer"] for r in rows):
        rs = [r for r in rows if r["connections"] == c and r["peer"] == peer]
        if not rs:
            continue
        lat = lambda q: statistics.median(r["latency_us"][q] / 1e3 for r in rs if r.get("latency_us"))
        srv = [r.get("server") or {} for r in rs]
        print(f"| {c} | {peer} | {len(rs)} | {statistics.median(r['ops_per_sec'] for r in rs):.0f} "
              f"| {med([s.get('cpu_us_per_op') for s in srv])} | {med([s.get('cpu_pct') for s in srv])} "
              f"| {lat('p50'):.2f} / {lat('p99'):.2f} / {lat('p999'):.2f} / {lat('max'):.2f} "
              f"| {sum(r['errors'] for r in rs)} | {', '.join(r['loadavg'].split()[0] for r in rs)} |")
EOF

# Per client count, netloop against each other peer: the median of the
# per-round ratios of pong p99 and of server CPU per ping+pong, with 95 %
# intervals and verdicts (stats.py's rule; an interval containing 1 is a tie).
python3 benches/compare/summarize.py "$OUT/results.jsonl" netloop | sed -n '/^Comparisons/,$p'
