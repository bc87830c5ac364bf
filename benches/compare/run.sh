#!/usr/bin/env bash
# The side-by-side benchmark: netloop against Node, tokio and plain epoll.
#
#   benches/compare/run.sh [--quick] [--rounds 7] [--duration 5s] [--warmup 1s]
#                          [--peers "netloop tokio epoll node-pipe node-data"]
#                          [--cells "pp64x50 connect50 ..."] [--out DIR] [--no-build]
#                          [--nice N] [--seed S]
#
# Every peer is a single-threaded echo bound to 127.0.0.1, started fresh for
# each measurement with the server pinned to CPU 0 and `netloop bench` (the
# generator, --json --server-pid) pinned to CPU 1. The order of the peers
# changes every round: a random base order from the printed seed (--seed S
# repeats it), rotated by one place per round (a cyclic Latin square), so
# each peer runs first, second, ... equally often over n rounds and no
# peer always gets the machine fresh after an idle moment.
# A run that fails (exit status, wrong bytes, bad deliveries) is kept in the
# raw file marked failed, and dropped and counted by the summary.
# The summary (summarize.py) gives per cell and peer the median with its
# 95 % interval, and netloop against every other peer as per-round ratios
# with 95 % intervals and the verdict they imply (ahead / behind / tie).
# A published comparison needs at least 7 rounds (the default). Raw reports
# go to OUT/results.jsonl.
#
# TLS cells (TLS 1.3, one certificate from `netloop cert` in OUT/tls, the
# cipher suite the generator's rustls prefers, as every peer accepts it):
# tlsstream64KxN (stream), tlsconnectN (a handshake per connection, sessions
# resumed), tlsconnectnewN (full handshakes, --tls-no-resume), between
# netloop-tls (serve echo --tls-cert), tokio-tls (tokio-rustls,
# tokio_tls_echo.rs) and node-tls (node_tls_echo.js).
#
# Fan-out cells fanoutMxP: M members in one room, P messages in flight,
# netloop's chat (netloop-chat) against the tutorial's own chat server
# (node-chat, ../shared/seed/03-chat-server.js).
#
# --quick: one round of 1 s cells on a small matrix; peers that cannot be
# built or started (no node, no cc) and a missing taskset are skipped, each
# with a message. It takes about half a minute plus the release build.
# --nice N: run server and generator at nice -N (needs root) so that other
# work on a shared machine does not starve the measurement.
# Peer netloop-base runs NETLOOP_BASE_BIN (another netloop build) as a
# second netloop, for before/after comparisons of a change in one run (in
# fan-out cells its chat server, as netloop-base-chat).
# Peer bare runs examples/bare_echo.rs (BARE_BIN; a plain mio poll loop,
# the floor for the loop-overhead comparison); not in the default peers.
# --no-build: use NETLOOP_BIN and TOKIO_BIN (default: the release builds)
# as they are; a missing tokio binary skips that peer (tests/bench/compare_quick.rs
# runs the script this way on the debug builds `cargo test` already made).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
# shellcheck source=benches/compare/lib.sh
. benches/compare/lib.sh

QUICK=0
NO_BUILD=0
NICE=0
ROUNDS=7
SEED=$(( (RANDOM << 15) | RANDOM ))
DURATION=5s
WARMUP=1s
PEERS="netloop tokio epoll node-pipe node-data"
CELLS=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --peers) PEERS=$2; shift ;;
    --cells) CELLS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-build) NO_BUILD=1 ;;
    --nice) NICE=$2; shift ;;
    --seed) SEED=$2; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$QUICK" = 1 ]; then
  ROUNDS=1; DURATION=1s; WARMUP=200ms
  [ -n "$CELLS" ] || CELLS="pp64x50 stream64Kx1 connect50 idle1000"
fi
[ -n "$CELLS" ] || CELLS="pp64x1 pp64x50 pp64x1000 stream64Kx1 stream64Kx50 connect50 idle10000 fanout200x1 fanout200x16 fanout1000x4 fanout1000x16"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$CARGO_TARGET_DIR/compare}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: > "$RESULTS"

say() { echo "== $*" >&2; }

# ---- build -----------------------------------------------------------------
if [ "$NO_BUILD" = 0 ]; then
  say "building netloop and the tokio peer (release)"
  cargo build --release --quiet --bin netloop --example tokio_echo --example bare_echo \
    --example tokio_tls_echo
fi
NETLOOP=${NETLOOP_BIN:-$CARGO_TARGET_DIR/release/netloop}
TOKIO=${TOKIO_BIN:-$CARGO_TARGET_DIR/release/examples/tokio_echo}
BARE=${BARE_BIN:-$CARGO_TARGET_DIR/release/examples/bare_echo}
TOKIO_TLS=${TOKIO_TLS_BIN:-$CARGO_TARGET_DIR/release/examples/tokio_tls_echo}
TLSDIR=$OUT/tls
EPOLL=$OUT/epoll_echo

declare -A SKIP=()
if [ ! -x "$NETLOOP" ]; then
  echo "run.sh: no netloop binary at $NETLOOP" >&2; exit 1
fi
BASE_CHAT=""
if [[ " $PEERS " == *" netloop-base "* ]] && [ -x "${NETLOOP_BASE_BIN:-}" ]; then BASE_CHAT=" netloop-base-chat"; fi
if [[ " $PEERS " == *" netloop-base "* ]] && [ ! -x "${NETLOOP_BASE_BIN:-}" ]; then
  say "SKIP netloop-base: set NETLOOP_BASE_BIN to another netloop binary"; SKIP[netloop-base]=1
fi
if [[ " $PEERS " == *" tokio "* ]] && [ ! -x "$TOKIO" ]; then
  say "SKIP tokio: no binary at $TOKIO"; SKIP[tokio]=1
fi
if [[ " $CELLS " == *" tls"* ]]; then
  rm -rf "$TLSDIR"
  "$NETLOOP" cert --out "$TLSDIR" >/dev/null
  [ -x "$TOKIO_TLS" ] || { say "SKIP tokio-tls: no binary at $TOKIO_TLS"; SKIP[tokio-tls]=1; }
  command -v node >/dev/null || { say "SKIP node-tls: node is not installed"; SKIP[node-tls]=1; }
fi
if [[ " $PEERS " == *" bare "* ]] && [ ! -x "$BARE" ]; then
  say "SKIP bare: no binary at $BARE"; SKIP[bare]=1
fi
if [[ " $PEERS " == *" epoll "* ]]; then
  if ! command -v cc >/dev/null || ! cc -O2 -o "$EPOLL" benches/compare/epoll_echo.c 2>"$OUT/cc.log"; then
    say "SKIP epoll: cannot build benches/compare/epoll_echo.c with cc (see $OUT/cc.log)"
    SKIP[epoll]=1
  fi
fi
if ! command -v node >/dev/null; then
  for p in node-pipe node-data; do
    [[ " $PEERS " == *" $p "* ]] && say "SKIP $p: node is not installed" && SKIP[$p]=1
  done
fi
SRV_PIN=""; GEN_PIN=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ] && taskset -c 1 true 2>/dev/null; then
  SRV_PIN="taskset -c 0"; GEN_PIN="taskset -c 1"
else
  say "NOTE: taskset or a second CPU is missing: server and generator are not pinned"
fi
if [ "$NICE" != 0 ]; then
  if nice -n "-$NICE" true 2>/dev/null; then
    SRV_PIN="nice -n -$NICE $SRV_PIN"; GEN_PIN="nice -n -$NICE $GEN_PIN"
  else
    say "NOTE: cannot raise priority (nice -n -$NICE): running at normal priority"
  fi
fi
# The seed's Node chat server (03), the fan-out reference, from shared/.
SEED_CHAT=$ROOT/../shared/seed/03-chat-server.js
if [ ! -f "$SEED_CHAT" ] || ! command -v node >/dev/null; then SKIP[node-chat]=1; fi
HAVE_CHAT=0
"$NETLOOP" serve --help 2>/dev/null | grep -qw chat && HAVE_CHAT=1

# ---- cells -----------------------------------------------------------------
cell_args() {
  case "$1" in
    tlsstream64Kx*) echo "stream -s 64KiB -c ${1#tlsstream64Kx} --ca $TLSDIR/ca.pem" ;;
    tlsconnectnew*) echo "connect -s 64 -c ${1#tlsconnectnew} --ca $TLSDIR/ca.pem --tls-no-resume" ;;
    tlsconnect*) echo "connect -s 64 -c ${1#tlsconnect} --ca $TLSDIR/ca.pem" ;;
    pp64x*) echo "pingpong -s 64 -c ${1#pp64x}" ;;
    stream64Kx*) echo "stream -s 64KiB -c ${1#stream64Kx}" ;;
    connect*) echo "connect -s 64 -c ${1#connect}" ;;
    idle*) echo "idle -c ${1#idle}" ;;
    # fanoutMxP: M members, P messages in flight. The seed's chat takes one
    # read as one message, so with P > 1 several lines can arrive as one
    # relayed message; members find every line's marker all the same.
    fanout*x*) local mp=${1#fanout}; echo "fanout -s 64 -c ${mp%x*} --pipeline ${mp#*x}" ;;
    fanout*) echo "fanout -s 64 -c ${1#fanout} --pipeline 1" ;;
    *) echo "run.sh: unknown cell $1" >&2; return 1 ;;
  esac
}
cell_peers() {
  case "$1" in
    # With NETLOOP_BASE_BIN and netloop-base among the peers, the other
    # build's chat server joins the fan-out cells (before/after a change).
    fanout*) echo "netloop-chat node-chat${BASE_CHAT:-}" ;;
    tls*) echo "netloop-tls tokio-tls node-tls" ;;
    *) echo "$PEERS" ;;
  esac
}

# Fixed ports below the ephemeral range (32768-60999 by default), so no
# outgoing connection of another program holds them; a port found busy is
# skipped (start_server tries the next one).
PORT=$((20000 + RANDOM % 10000))
start_server() { # peer -> sets SRV_PID, SRV_PORT; tries three ports
  local try
  for try in 1 2 3; do
    start_server_once "$1" && return 0
    grep -qi "in use" "$OUT/server-$1.log" 2>/dev/null || return 1
  done
  return 1
}
start_server_once() {
  local peer=$1 cmd
  PORT=$((PORT + 1)); SRV_PORT=$PORT
  case "$peer" in
    netloop) cmd="$NETLOOP serve echo --port $SRV_PORT" ;;
    netloop-base) cmd="$NETLOOP_BASE_BIN serve echo --port $SRV_PORT" ;;
    netloop-chat) cmd="$NETLOOP serve chat --port $SRV_PORT" ;;
    netloop-base-chat) cmd="$NETLOOP_BASE_BIN serve chat --port $SRV_PORT" ;;
    node-chat) cmd="env PORT=$SRV_PORT node $SEED_CHAT" ;;
    netloop-tls) cmd="$NETLOOP serve echo --port $SRV_PORT --tls-cert $TLSDIR/server.pem --tls-key $TLSDIR/server.key" ;;
    tokio-tls) cmd="$TOKIO_TLS $SRV_PORT $TLSDIR/server.pem $TLSDIR/server.key" ;;
    node-tls) cmd="node benches/compare/node_tls_echo.js $SRV_PORT $TLSDIR/server.pem $TLSDIR/server.key" ;;
    tokio) cmd="$TOKIO $SRV_PORT" ;;
    epoll) cmd="$EPOLL $SRV_PORT" ;;
    bare) cmd="$BARE $SRV_PORT" ;;
    node-pipe) cmd="node benches/compare/node_echo.js pipe $SRV_PORT" ;;
    node-data) cmd="node benches/compare/node_echo.js data $SRV_PORT" ;;
    *) echo "unknown peer $peer" >&2; return 1 ;;
  esac
  launch_server "$SRV_PORT" "$cmd" "$SRV_PIN" "$OUT/server-$peer.log" && return 0
  stop_server
  return 1
}

# ---- the order of the peers ------------------------------------------------
# order_for (lib.sh): a shuffle seeded by SEED, rotated by one place per round.

# ---- the matrix ------------------------------------------------------------
say "rounds $ROUNDS, cells: $CELLS, peers: $PEERS, $DURATION per cell"
say "order of peers: seed $SEED (repeat with --seed $SEED), rotated by one each round"
for round in $(seq "$ROUNDS"); do
  for cell in $CELLS; do
    args=$(cell_args "$cell")
    # shellcheck disable=SC2046
    order=$(order_for "$round" $(cell_peers "$cell"))
    say "round $round  $cell  order: $order"
    for peer in $order; do
      [ -n "${SKIP[$peer]:-}" ] && continue
      if [ "$peer" = netloop-chat ] && [ "$HAVE_CHAT" = 0 ]; then
        say "SKIP netloop-chat: this netloop has no 'serve chat'"; SKIP[$peer]=1; continue
      fi
      if ! start_server "$peer"; then
        say "SKIP $peer: it did not start listening (see $OUT/server-$peer.log)"
        SKIP[$peer]=1; continue
      fi
      say "round $round  $cell  $peer"
      # shellcheck disable=SC2086
      if rep=$($GEN_PIN "$NETLOOP" bench $args --target "127.0.0.1:$SRV_PORT" \
          --server-pid "$SRV_PID" --duration "$DURATION" --warmup "$WARMUP" --json 2>"$OUT/bench.err"); then
        echo "{\"round\":$round,\"cell\":\"$cell\",\"peer\":\"$peer\",\"report\":$rep}" >>"$RESULTS"
      else
        say "FAILED: $cell on $peer: $(tail -n 3 "$OUT/bench.err")"
        # Kept, marked failed, so the summary can count it (and never use it).
        echo "{\"round\":$round,\"cell\":\"$cell\",\"peer\":\"$peer\",\"failed\":true,\"report\":${rep:-null}}" >>"$RESULTS"
      fi
      stop_server
    done
  done
done

# ---- summary ---------------------------------------------------------------
{
  echo "machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs, kernel $(uname -r)"
  echo "pinning: server ${SRV_PIN:-none}, generator ${GEN_PIN:-none}; $ROUNDS round(s) of $DURATION per cell"
  echo "order of peers: seed $SEED, rotated by one place per round"
  [ "$NICE" != 0 ] && echo "priority: nice -$NICE for server and generator"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  echo
} >"$OUT/summary.md"
if command -v python3 >/dev/null; then
  python3 benches/compare/summarize.py "$RESULTS" >>"$OUT/summary.md"
else
  echo "(python3 not found: raw reports only, in $RESULTS)" >>"$OUT/summary.md"
fi
cat "$OUT/summary.md"
