#!/bin/sh
# Makes a man page from its source in docs/man: each line
#   .\" @table FILE MARKER
# becomes the first Markdown table after the line MARKER of FILE (a doc in
# docs/), as .TP entries: the first column is the entry's name, the middle
# ones "header: value", the last its text.  The tables in docs/ are the one
# source of truth; the page carries them as they are.
# Usage: man-page.sh SRC OUT
set -eu
src=$1 out=$2
top=$(dirname "$0")/..
tmp=$out.tmp
: > "$tmp"
while IFS= read -r line; do
    case $line in
    '.\" @table '*)
        set -- $line
        file=$3; shift 3
        marker=$*
        awk -v marker="$marker" -f "$top/scripts/man-table.awk" "$top/$file" >> "$tmp"
        ;;
    *) printf '%s\n' "$line" >> "$tmp" ;;
    esac
done < "$src"
mv "$tmp" "$out"
