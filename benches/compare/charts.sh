#!/usr/bin/env bash
# Redraw the charts BENCHMARKS.md shows (docs/charts/) from the raw results
# kept in benches/compare/results/, with `netloop bench-plot`:
#
#   bash benches/compare/charts.sh [OUT]      (OUT: docs/charts)
#
# Builds the release netloop first, or uses NETLOOP_BIN as it is. Each chart
# is a bar per peer at the median of the rounds, a whisker from the lowest
# to the highest round and a dot per round; one throughput and one server
# CPU per operation chart per cell. tests/bench/plots.rs checks that the
# committed charts are what this script draws from the committed results.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-docs/charts}
if [ -z "${NETLOOP_BIN:-}" ]; then
  cargo build --release --quiet
  NETLOOP_BIN=${CARGO_TARGET_DIR:-target}/release/netloop
fi
R=benches/compare/results
# results file | subdirectory of OUT | caption prefix
SETS="
$R/2026-11-27-final/results.jsonl|matrix|2026-11-27, 3 rounds: 
$R/2026-11-27-stream50-confirm/results.jsonl|stream50|2026-11-27, 9 rounds: 
$R/2026-12-05-coalesce-fanout/results.jsonl|fanout|2026-12-05, writes coalesced, 7 rounds: 
$R/2026-12-05-libuv/libuv.jsonl|libuv|2026-12-05, client → server, 7 rounds: 
"
while IFS='|' read -r file sub title; do
  [ -n "$file" ] || continue
  mkdir -p "$OUT/$sub"
  rm -f "$OUT/$sub"/*.svg
  "$NETLOOP_BIN" bench-plot "$file" --out "$OUT/$sub" --title "$title" >/dev/null
done <<<"$SETS"
echo "charts in $OUT: $(find "$OUT" -name '*.svg' | wc -l) files"
