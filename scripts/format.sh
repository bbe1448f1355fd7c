#!/bin/sh
# Format the C sources with .clang-format (`--check`: only report).
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files --cached --others --exclude-standard | grep -E '\.(c|h)$' || true)
[ -n "$files" ] || exit 0
if [ "${1:-}" = "--check" ]; then
  printf '%s\n' "$files" | xargs clang-format --dry-run --Werror
  echo "format: ok"
else
  printf '%s\n' "$files" | xargs clang-format -i
fi
