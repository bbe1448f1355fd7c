#!/bin/sh
# The layer check CI runs: a file under src/<layer>/ or include/ccci/<layer>/
# may include the headers of its own layer and of the layers below it, never
# of one above (docs/architecture.md, "Layers"). src/main.c is the top.
set -eu
cd "$(dirname "$0")/.."
# Lowest first; the order is the architecture.
layers="core logs runs harness forge ctl http serve"

rank() {
  i=0
  for l in $layers; do
    [ "$l" = "$1" ] && { echo "$i"; return 0; }
    i=$((i + 1))
  done
  echo -1
}

status=0
for dir in src include/ccci; do
  for d in "$dir"/*/; do
    [ -d "$d" ] || continue
    l=$(basename "$d")
    if [ "$(rank "$l")" -lt 0 ]; then
      echo "layers: $d is not a layer (add it to scripts/layers.sh and docs/architecture.md)" >&2
      status=1
    fi
  done
done
out=$(for f in $(git ls-files --cached --others --exclude-standard -- 'src/*/*' 'include/ccci/*/*' | grep -E '\.(c|h)$'); do
  l=$(printf '%s\n' "$f" | sed -E 's@^(src|include/ccci)/([^/]+)/.*@\2@')
  r=$(rank "$l")
  # Every project include names its layer: "ccci/<layer>/<module>.h".
  grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"ccci/' "$f" |
    while IFS= read -r line; do
      n=${line%%:*}
      inc=$(printf '%s\n' "$line" | sed -E 's@.*"ccci/([^"]*)".*@\1@')
      case "$inc" in
      */*) il=${inc%%/*} ;;
      *) il="" ;;
      esac
      ir=$(rank "$il")
      if [ "$ir" -lt 0 ]; then
        echo "$f:$n: \"ccci/$inc\" is not in a layer's folder"
      elif [ "$ir" -gt "$r" ]; then
        echo "$f:$n: layer '$l' includes \"ccci/$inc\" from the higher layer '$il'"
      fi
    done
done)
if [ -n "$out" ]; then
  printf '%s\n' "$out" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "layers: ok"
exit "$status"
