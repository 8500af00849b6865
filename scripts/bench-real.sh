#!/usr/bin/env bash
# bench-real.sh: the CPU at real model sizes (issue 12): for random-weight
# checkpoints of official shapes, each weight type, 1 and 2 threads:
# decode and prefill tokens/s, the bytes decode reads per token, achieved
# GB/s and its share of the streaming bandwidth measured in the same run
# (scripts/membw.c with as many threads), compile time and executable size.
#
#   scripts/bench-real.sh [--models LIST] [--types LIST] [--threads LIST]
#                         [--tokens N] [--runs R] [--out DIR]
#     --models   from: v4-169m v4-430m v7-0.1b v7-0.4b v7-1.5b v6-1.6b
#                (default v4-169m,v7-0.1b,v7-0.4b)
#     --types    --weight-type values (default f32,f16,bf16; the block formats
#                q8_0,q5_1,q5_0,q4_1,q4_0 too)
#     --threads  (default 1,2)
#     --tokens   decode and prefill tokens per run (default 128)
#     --runs     runs per figure, medians printed (default 3); each run of a
#                model alternates with a membw run
#     --out      checkpoints, libraries and the table (default
#                /tmp/rwkvc-bench-real; checkpoints are kept between runs)
#
# Figures are wall-clock (scripts/cputime_bench.c), medians of RUNS: run it
# on an idle machine. "% of membw" is the median over the runs of each
# run's decode GB/s over the membw run right after it (the membw column is
# the median of those runs): a read of 512 MiB, the bandwidth of memory.
# "membw at MB/token" reads as many bytes as decode does per token, over
# and over, as decode does: where the last-level cache keeps part of them
# from one token to the next (session 17's host: one thread read 92 GB/s
# over 16 MiB, 40 over 96 and 31 over 256) that is the ceiling, above the
# first. The last column,
# prefill's CPU/wall ratio, shows whether the threads had their cores
# (about THREADS when nothing else ran).
# Prints a Markdown table (also OUT/table.md) for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS=v4-169m,v7-0.1b,v7-0.4b
TYPES=f32,f16,bf16
THREADS=1,2
TOKENS=128
RUNS=3
OUT=/tmp/rwkvc-bench-real
while [ $# -gt 0 ]; do
  case "$1" in
  --models) MODELS="$2"; shift ;;
  --types) TYPES="$2"; shift ;;
  --threads) THREADS="$2"; shift ;;
  --tokens) TOKENS="$2"; shift ;;
  --runs) RUNS="$2"; shift ;;
  --out) OUT="$2"; shift ;;
  -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
  *) echo "bench-real: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
RWKVC=${RWKVC:-build/bin/rwkvc}
[ -x "$RWKVC" ] || { echo "bench-real: build rwkvc first ($RWKVC)" >&2; exit 1; }
mkdir -p "$OUT"
PY=/usr/bin/python3
CC=${CC:-clang}
$CC -O2 -march=native -pthread scripts/membw.c -o "$OUT/membw"
$CC -O2 scripts/cputime_bench.c -ldl -o "$OUT/cputime_bench"

# name -> make_random_model.py arguments (official shapes).
shape() {
  case "$1" in
  v4-169m) echo "--version 4 --n-embd 768 --n-layer 12 --vocab 50277" ;;
  v4-430m) echo "--version 4 --n-embd 1024 --n-layer 24 --vocab 50277" ;;
  v7-0.1b) echo "--version 7 --n-embd 768 --n-layer 12 --vocab 65536" ;;
  v7-0.4b) echo "--version 7 --n-embd 1024 --n-layer 24 --vocab 65536" ;;
  v7-1.5b) echo "--version 7 --n-embd 2048 --n-layer 24 --vocab 65536" ;;
  v6-1.6b) echo "--version 6 --n-embd 2048 --n-layer 24 --vocab 65536" ;;
  *) echo "bench-real: unknown model $1" >&2; exit 2 ;;
  esac
}
# membw's aggregate GB/s over SIZE_MIB with THREADS threads.
bandwidth() { "$OUT/membw" "$1" "$2" | sed -n 's/.*: \([0-9.]*\) GB\/s (.*/\1/p'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

TABLE="$OUT/table.md"
{
  echo "| model | weights | threads | decode tok/s | prefill tok/s | MB/token | GB/s | membw GB/s | % of membw | membw at MB/token GB/s | % of it | compile s | library MB | prefill CPU/wall |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
} | tee "$TABLE"
for model in ${MODELS//,/ }; do
  src="$OUT/$model.safetensors"
  # shellcheck disable=SC2046
  [ -f "$src" ] || $PY scripts/make_random_model.py $(shape "$model") --seed 1 -o "$src" >/dev/null
  for type in ${TYPES//,/ }; do
    lib="$OUT/lib$model-$type.so"
    t0=$(date +%s.%N)
    "$RWKVC" "$src" --weight-type="$type" -emit=shared-lib --weights-file=false -o "$lib" 2>/dev/null
    compile=$($PY -c "print('%.1f' % ($(date +%s.%N) - $t0))")
    size=$($PY -c "import os; print('%.0f' % (os.path.getsize('$lib') / 1e6))")
    # Bytes decode moves per token: the image but the embedding (one row;
    # f32 or f16, also with a block format), LoRAs included, and the state
    # twice (read, then written back: RWKV-7's 64 x 64 per head is 2.4 MB for
    # the 0.1B shape, which has left the caches by the next token).
    bytes=$("$RWKVC" "$src" --weight-type="$type" -emit=loops 2>/dev/null | $PY -c '
import re, sys
text = sys.stdin.read()
total = int(re.search(r"weights_bytes = (\d+)", text).group(1))
state = int(re.search(r"state_floats = (\d+)", text).group(1))
emb = re.search(r"@emb\.weight : tensor<(\d+)x(\d+)x(\w+)>", text)
size = {"f32": 4, "f16": 2, "bf16": 2}.get(emb.group(3), 4)
print(total - int(emb.group(1)) * int(emb.group(2)) * size + 2 * 4 * state)')
    for th in ${THREADS//,/ }; do
      dec="" pre="" bw="" load="" pct="" bwSet="" pctSet=""
      for _ in $(seq "$RUNS"); do
        # "decode X tok/s wall Y tok/CPU-s(thread) cpu/wall Z | prefill X
        # tok/s wall Y tok/CPU-s cpu/wall Z": the wall figures, and the
        # CPU/wall ratio of prefill (about the threads when nothing else
        # runs: a smaller one means a shared machine).
        r=$("$OUT/cputime_bench" "$lib" "$TOKENS" "$th")
        dec="$dec $(echo "$r" | sed -n 's/^decode \([0-9.]*\) tok\/s wall.*/\1/p')"
        pre="$pre $(echo "$r" | sed -n 's/.*| prefill \([0-9.]*\) tok\/s wall.*/\1/p')"
        load="$load $(echo "$r" | sed -n 's/.*| prefill .* cpu\/wall \([0-9.]*\).*/\1/p')"
        # "SIZE MiB, N threads: A GB/s (...); ...": A, all threads together.
        m1="$(bandwidth 512 "$th")"
        bw="$bw $m1"
        # This run's decode GB/s over the bandwidth measured right after it
        # (the machine's bandwidth moved by half within minutes when it
        # is shared; a ratio of two medians would pair unrelated runs).
        d1=$(echo $dec | awk '{print $NF}')
        pct="$pct $($PY -c "print(100 * ${d1:-0} * $bytes / 1e9 / ${m1:-1})")"
        # The same over decode's own bytes a token (MiB for membw).
        m2="$(bandwidth "$($PY -c "print($bytes / 1048576)")" "$th")"
        bwSet="$bwSet $m2"
        pctSet="$pctSet $($PY -c "print(100 * ${d1:-0} * $bytes / 1e9 / ${m2:-1})")"
      done
      d=$(echo $dec | median) p=$(echo $pre | median) m=$(echo $bw | median)
      l=$(echo $load | median) r=$(echo $pct | median)
      ms=$(echo $bwSet | median) rs=$(echo $pctSet | median)
      $PY - "$model" "$type" "$th" "$d" "$p" "$bytes" "$m" "$compile" "$size" "$l" "$r" "$ms" "$rs" <<'EOF' | tee -a "$TABLE"
import sys
model, wt, th, d, p, b, m, c, s, l, r, ms, rs = sys.argv[1:]
d, p, b = float(d or 0), float(p or 0), int(b)
m, r = float(m or 0), float(r or 0)
ms, rs = float(ms or 0), float(rs or 0)
gbs = d * b / 1e9
print("| %s | %s | %s | %.1f | %.0f | %.0f | %.1f | %.1f | %s | %.1f | %s | %s | %s | %s |" % (
    model, wt, th, d, p, b / 1e6, gbs, m, ("%.0f%%" % r) if m else "-",
    ms, ("%.0f%%" % rs) if ms else "-", c, s, l))
EOF
    done
  done
done
echo "table: $TABLE"
