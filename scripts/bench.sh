#!/bin/sh
# Run the benchmarks on demand (never in CI) against a release build:
#   scripts/bench.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
cmake --build "$build" -j "$(nproc)" >/dev/null
tmp=$(mktemp -d /tmp/ccci-bench-XXXXXX)
pid=""
trap '[ -n "$pid" ] && { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; rm -rf "$tmp"' EXIT
"$build"/bench/machine
"$build"/bench/bench_config
"$build"/bench/bench_redact 256
"$build"/bench/bench_logpath 256 10
"$build"/bench/bench_logpath 256 1000
"$build"/bench/bench_pool
printf 'state_dir: %s/state\nsocket: %s/ccci.sock\n' "$tmp" "$tmp" >"$tmp/ccci.yml"
"$build"/ccci serve -c "$tmp/ccci.yml" 2>"$tmp/serve.log" &
pid=$!
i=0
until "$build"/ccci -s "$tmp/ccci.sock" status >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -lt 200 ] || { cat "$tmp/serve.log"; exit 1; }
  sleep 0.05
done
"$build"/bench/bench_status "$tmp/ccci.sock" 20000 64
echo "daemon CPU (user+sys ticks) for the run above: $(awk '{print $14 + $15}' /proc/$pid/stat)"
python3 bench/fanin.py "$build"
python3 bench/tail.py "$build"
python3 bench/poll.py "$build"
python3 bench/harness.py "$build"
