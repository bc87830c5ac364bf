#!/usr/bin/env bash
# Runs netloop's fuzz targets one after another (or JOBS at a time), each for MINUTES minutes,
# at the lowest CPU priority, then prints per target: executions, time, coverage (cov/ft),
# corpus size, peak RSS and whether a crash artifact appeared. See RELIABILITY.md, "Fuzzing".
#
# Usage:   fuzz/run-all.sh [TARGET...]        (default: all seven targets)
# Env:     MINUTES=30   minutes per target (a whole number)
#          JOBS=1       targets run at once (1 or 2 on a 2-core machine)
#          EXTRA=""     more libFuzzer flags for every target (e.g. "-seed=1")
# Output:  fuzz/logs/TARGET.log (libFuzzer's output), fuzz/corpus/TARGET (kept between runs),
#          fuzz/artifacts/TARGET/ (crash-*, leak-*, timeout-*, oom-* inputs, if any).
# Exit:    0 if no target crashed, 1 otherwise.
#
# Needs cargo-fuzz; a stable toolchain works with RUSTC_BOOTSTRAP=1 (set here).
set -euo pipefail
cd "$(dirname "$0")"

ALL=(lines frame upload_header chat_command heartbeat_message framed_message metrics_http)
MINUTES=${MINUTES:-30}
JOBS=${JOBS:-1}
EXTRA=${EXTRA:-}
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then targets=("$@"); else targets=("${ALL[@]}"); fi
case "$MINUTES" in '' | *[!0-9]*) echo "MINUTES must be a whole number" >&2; exit 2 ;; esac
case "$JOBS" in '' | *[!0-9]* | 0) echo "JOBS must be 1 or more" >&2; exit 2 ;; esac
for t in "${targets[@]}"; do
    case " ${ALL[*]} " in *" $t "*) ;; *) echo "unknown target: $t (known: ${ALL[*]})" >&2; exit 2 ;; esac
done

# Per-target libFuzzer flags. -max_len: the upload header target needs inputs past its 8 KiB
# limit; the rest keep libFuzzer's 4 KiB default (metrics_http pads its own inputs past the
# limit, see its source). -dict: keywords random bytes almost never spell (see the dict files).
flags_for() {
    case "$1" in
        upload_header) echo "-max_len=12000 -dict=dict/upload_header.dict" ;;
        chat_command) echo "-dict=dict/chat_command.dict" ;;
        heartbeat_message | framed_message) echo "-dict=dict/json_message.dict" ;;
        metrics_http) echo "-dict=dict/metrics_http.dict" ;;
        *) echo "" ;;
    esac
}

# Build once up front, so parallel runs do not race on the build.
nice -n 19 cargo fuzz build >/dev/null

mkdir -p logs
run_one() {
    local t=$1 log="logs/$1.log" before
    mkdir -p "artifacts/$t" "corpus/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "$before" >"logs/$t.artifacts-before"
    date +%s >"logs/$t.start"
    # shellcheck disable=SC2046 # the flags are words
    nice -n 19 cargo fuzz run "$t" -- -max_total_time=$((MINUTES * 60)) -print_final_stats=1 \
        $(flags_for "$t") $EXTRA >"$log" 2>&1 || echo "exit $?" >>"$log"
    date +%s >"logs/$t.end"
}

echo "fuzzing ${targets[*]}: ${MINUTES} min each, ${JOBS} at a time; logs in fuzz/logs/"
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    echo "$(date +%T) start $t"
    run_one "$t" &
done
wait

crashed=0
printf '\n%-18s %12s %8s %6s %7s %7s %8s  %s\n' target execs seconds cov ft corpus rss_mb crash
for t in "${targets[@]}"; do
    log="logs/$t.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
    secs=$(($(cat "logs/$t.end") - $(cat "logs/$t.start")))
    after=$(find "artifacts/$t" -type f | wc -l)
    if [ "$after" -gt "$(cat "logs/$t.artifacts-before")" ] || grep -qE '^==[0-9]+==ERROR|^exit ' "$log"; then
        crash="YES: $(find "artifacts/$t" -type f -newer "logs/$t.start" | head -1)"
        crashed=1
    else
        crash=none
    fi
    printf '%-18s %12s %8s %6s %7s %7s %8s  %s\n' "$t" "${execs:-?}" "$secs" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "${rss:-?}" "$crash"
    rm -f "logs/$t.start" "logs/$t.end" "logs/$t.artifacts-before"
done
exit $crashed
