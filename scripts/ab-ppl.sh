#!/bin/bash
# A/B of --ppl and decode (docs/performance.md, "Perplexity"): runs each
# executable given, alternating, RUNS times (default 5), and prints the
# median wall and user CPU seconds of
#   ppl:    ./EXE --ppl TEXT                      (TEXT: 100 KB of text)
#   decode: ./EXE --tokens 20,000 ids --mode rnn  (forward_one per token)
# usage: scripts/ab-ppl.sh TEXT EXE... ; RUNS=7 scripts/ab-ppl.sh ...
set -e
text=$1; shift
runs=${RUNS:-5}
ids=$(seq 0 19999 | awk '{print $1 % 256}' | paste -sd,)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$runs"); do
  for exe in "$@"; do
    k=$(echo "$exe" | tr '/.' '__')
    /usr/bin/time -f "%e %U" -a -o "$tmp/ppl.$k" "$exe" --ppl "$text" >/dev/null
    /usr/bin/time -f "%e %U" -a -o "$tmp/dec.$k" "$exe" --tokens "$ids" \
      --mode rnn >/dev/null
  done
done
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
for exe in "$@"; do
  k=$(echo "$exe" | tr '/.' '__')
  for what in ppl dec; do
    f=$tmp/$what.$k
    echo "$exe $what: wall $(cut -d' ' -f1 "$f" | median) s, user" \
      "$(cut -d' ' -f2 "$f" | median) s (user: $(cut -d' ' -f2 "$f" | tr '\n' ' '))"
  done
done
