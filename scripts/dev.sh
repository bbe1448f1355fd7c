#!/bin/sh
# ccci's set-up script for a Debian 12 machine: installs what is missing,
# builds, then either serves (`scripts/dev.sh serve`) or runs the whole test
# suite (`scripts/dev.sh test`, what CI runs through .ci/run).
set -eu
cd "$(dirname "$0")/.."

BUILD_PKGS="build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
  libyaml-dev libjansson-dev libhttp-parser-dev libssl-dev libcmocka-dev
  python3 git"
# chromium and a font: SCREENSHOT's test (tests/integration/test_shot.py).
TEST_PKGS="clang libclang-rt-14-dev clang-format nix-bin socat openssl
  chromium fonts-dejavu-core python3-prometheus-client"
# The HTTP benchmark only (bench/http.py): the load generator and the Go
# net/http server it compares against.
BENCH_HTTP_PKGS="wrk golang-go"

install_missing() {
  missing=""
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
      grep -q "install ok installed"; then
      missing="$missing $p"
    fi
  done
  [ -z "$missing" ] && return 0
  echo "== installing:$missing"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends $missing
}

jobs=$(nproc 2>/dev/null || echo 2)

build() { # build DIR [cmake args...]
  dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
serve)
  shift
  install_missing $BUILD_PKGS
  build build
  echo "== starting build/ccci serve $*"
  exec build/ccci serve "$@"
  ;;
test)
  install_missing $BUILD_PKGS $TEST_PKGS
  export CCCI_TEST_SCALE="${CCCI_TEST_SCALE:-1}"
  echo "== source checks"
  scripts/checksrc.sh
  scripts/format.sh --check
  scripts/layers.sh
  for f in flake.nix nix/*.nix; do
    nix-instantiate --parse "$f" >/dev/null
  done
  echo "== build (gcc, -Werror)"
  build build -DCCCI_WERROR=ON
  # Optimised builds (-O3), where gcc and clang warn about more: built, not
  # tested again (the -O2 builds above and below run the tests).
  echo "== build (gcc and clang, Release, -Werror)"
  build build-release -DCMAKE_BUILD_TYPE=Release -DCCCI_WERROR=ON
  build build-release-clang -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang -DCCCI_WERROR=ON
  echo "== build (clang, AddressSanitizer + UndefinedBehaviorSanitizer, fuzzers)"
  build build-asan -DCMAKE_C_COMPILER=clang -DCCCI_WERROR=ON \
    -DCCCI_SANITIZE=ON -DCCCI_FUZZ=ON
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  echo "== short fuzz runs"
  scripts/fuzz.sh build-asan "${CCCI_FUZZ_SECONDS:-15}"
  echo "== tests (gcc build)"
  ctest --test-dir build -j2 --output-on-failure
  echo "== tests (sanitizer build)"
  # The system tests (the 3-minute scenario and the checks' own tests, which
  # drive the daemon too) run once, in the gcc build above: twice would take
  # CI past its time budget (docs/testing.md).
  ctest --test-dir build-asan -j2 --output-on-failure -LE system
  ;;
soak)
  # System acceptance for an hour (tests/system/soak.py; docs/testing.md):
  # a random seed unless given, the invariants table at the end.
  shift
  install_missing $BUILD_PKGS $TEST_PKGS
  build build
  exec python3 tests/system/soak.py --bin build/ccci --minutes 60 "$@"
  ;;
bench-http)
  shift
  install_missing $BUILD_PKGS $BENCH_HTTP_PKGS
  build build-release -DCMAKE_BUILD_TYPE=Release
  exec python3 bench/http.py --bin build-release/ccci "$@"
  ;;
bench-pool)
  # The scheduler's decision over a simulated day (bench/pool.c):
  # utilisation, waits, fairness and decision CPU at 5, 20 and 100 servers.
  shift
  install_missing $BUILD_PKGS
  build build-release -DCMAKE_BUILD_TYPE=Release
  exec build-release/bench/bench_pool "$@"
  ;;
*)
  echo "usage: scripts/dev.sh serve [-c FILE] | scripts/dev.sh test | scripts/dev.sh soak [--minutes N] [--seed S] | scripts/dev.sh bench-http | scripts/dev.sh bench-pool [SEED]" >&2
  exit 64
  ;;
esac
