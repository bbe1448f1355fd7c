#!/bin/sh
# Run every libFuzzer target of a -DCCCI_FUZZ=ON build for a while:
#   scripts/fuzz.sh BUILD_DIR SECONDS
# Seeds come from fuzz/corpus/<target>/; new inputs go to a scratch corpus.
set -eu
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD_DIR SECONDS}
secs=${2:-15}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin" | sed 's/^fuzz_//')
  mkdir -p "$scratch/$name"
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  echo "fuzz: $name for ${secs}s"
  "$bin" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$scratch/" $dict "$scratch/$name" "fuzz/corpus/$name" \
    >"$scratch/$name.log" 2>&1 || {
    tail -n 40 "$scratch/$name.log"
    for a in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-*; do
      [ -f "$a" ] && { echo "fuzz: artifact $a:"; od -c "$a" | head -20; }
    done
    exit 1
  }
  grep -E 'stat::number_of_executed_units' "$scratch/$name.log" || true
done
