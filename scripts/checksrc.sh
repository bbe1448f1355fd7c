#!/bin/sh
# Source checks CI runs: banned C calls and whitespace in tracked files.
set -eu
cd "$(dirname "$0")/.."
status=0
files=$(git ls-files --cached --others --exclude-standard)
c_files=$(printf '%s\n' "$files" | grep -E '\.(c|h|h\.in)$' || true)

# Unbounded or error-swallowing C calls (curl's checksrc list, shortened).
if [ -n "$c_files" ] &&
  printf '%s\n' "$c_files" | xargs grep -nE \
    '(^|[^A-Za-z0-9_])(sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|gets)[[:space:]]*\(' \
    /dev/null; then
  echo "checksrc: banned call above (use snprintf, ccci_buf, strtok_r, ccci_parse_u64)" >&2
  status=1
fi
# Fuzz seeds are inputs, byte for byte (HTTP requests end lines in CRLF).
text=$(printf '%s\n' "$files" | grep -vE '\.(png|ico|gz)$|^fuzz/corpus/' || true)
if [ -n "$text" ] && printf '%s\n' "$text" | xargs grep -nE '[[:space:]]+$' /dev/null; then
  echo "checksrc: trailing whitespace above" >&2
  status=1
fi
cr=$(printf '\r')
if [ -n "$text" ] && printf '%s\n' "$text" | xargs grep -lU "$cr" /dev/null | grep -v '^tests/fixtures/'; then
  echo "checksrc: CRLF line ends in the files above" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "checksrc: ok"
exit "$status"
