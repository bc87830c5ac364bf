# Shared by the compare scripts (run.sh, scaling.sh, grid.sh, libuv.sh,
# generators.sh, heartbeat.sh): `source` it after `cd` to the repository root.

# rt_throttle_note: under a real-time policy (`chrt -r`/`-f`, inherited by
# every process a script starts), Linux gives real-time tasks at most
# sched_rt_runtime_us of every sched_rt_period_us (950 ms of 1 s by default):
# a server or generator that wants its whole core gets 95 % of it and stops
# for 50 ms once a second. Said once on stderr, since it caps the rates of
# saturated runs and puts those stalls into p99.9 and max (for every peer
# alike). `sysctl kernel.sched_rt_runtime_us=-1` lifts it.
rt_throttle_note() {
  local policy runtime period
  policy=$(chrt -p $$ 2>/dev/null | sed -n 's/.*scheduling policy: //p') || return 0
  case "$policy" in
    SCHED_RR|SCHED_FIFO) ;;
    *) return 0 ;;
  esac
  runtime=$(cat /proc/sys/kernel/sched_rt_runtime_us 2>/dev/null) || return 0
  period=$(cat /proc/sys/kernel/sched_rt_period_us 2>/dev/null) || return 0
  [ "$runtime" = -1 ] && return 0
  echo "note: running as $policy with real-time throttling on: a saturated process gets" \
    "$((runtime / 1000)) ms of every $((period / 1000)) ms of its core and stalls for the rest" \
    "(sysctl kernel.sched_rt_runtime_us=-1 lifts it)" >&2
}
rt_throttle_note

# launch_server PORT COMMAND PIN LOG: start COMMAND (prefixed by PIN, e.g.
# `taskset -c 0`) in the background with the hard descriptor limit, its
# output to LOG, and wait until it accepts on 127.0.0.1:PORT (at most 10 s).
# Sets SRV_PID. Returns 1 if it exited or never listened (the caller stops
# it with stop_server).
launch_server() {
  local port=$1 cmd=$2 pin=$3 log=$4
  # Raise the server's descriptor limit too (idle cells hold 10,000
  # connections).
  # shellcheck disable=SC2086
  ( ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; RUST_LOG=warn exec $pin $cmd ) >"$log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  return 1
}

# stop_server: stop the server launch_server started, if any.
stop_server() {
  [ -n "${SRV_PID:-}" ] || return 0
  kill "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""
}

# order_for ROUND PEERS...: the peers in this round's order. The base order
# is a shuffle seeded by SEED (the same for every cell), rotated by one place
# per round (a cyclic Latin square: each peer runs first, second, ...
# equally often). Without python3, the given order rotated.
order_for() {
  local round=$1; shift
  if command -v python3 >/dev/null; then
    python3 - "$SEED" "$round" "$@" <<'PY'
import random, sys
seed, rnd, peers = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
random.Random(seed).shuffle(peers)
k = (rnd - 1) % len(peers) if peers else 0
print(" ".join(peers[k:] + peers[:k]))
PY
  else
    local peers=("$@") n=$# k
    k=$(( (round - 1) % (n > 0 ? n : 1) ))
    echo "${peers[@]:k}" "${peers[@]:0:k}"
  fi
}
