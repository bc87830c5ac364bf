# Shared by the compare scripts (run.sh, scaling.sh, grid.sh, libuv.sh):
# `source` it after `cd` to the repository root.

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
