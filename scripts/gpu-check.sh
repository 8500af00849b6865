#!/usr/bin/env bash
# gpu-check.sh: the CUDA target on a machine with an NVIDIA GPU (sm_80+,
# driver R580+), in one run of a few minutes (docs/cuda.md, "On a machine
# with a GPU"). Two phases, so that the GPU machine needs neither LLVM nor
# rwkvc: `prepare` compiles every model where rwkvc is built, `run` runs
# them where the GPU is; with no phase named, both run here.
#
#   prepare: builds rwkvc (build-gpu/, Release) unless $RWKVC or
#     build/bin/rwkvc is there, and writes BUNDLE/models.tar.xz:
#     - every tiny model (v4, 5.1, 5.2, 6, 7) as is and in f16, and a
#       random RWKV-7 of the 0.1B width (C=768, 12 heads, L=2, V=1024),
#       compiled --target=cpu,cuda with real NVRTC cubins (the CPU part for
#       any AVX2 machine: --target-cpu=x86-64-v3);
#     - f16 RWKV-7 of the 0.1B, 1.5B and 7B shapes (shape-only checkpoints:
#       zeros stream like any weights), --target=cuda --weights-file, their
#       images stored sparse (a few MB for 15 GB of zeros);
#     - a random RWKV-7 of C=512 and 3 layers in q4_0 for the CPU alone;
#     - LLVM's libomp.so.5, which the threaded CPU code of the C=768 model
#       needs (BUNDLE/libomp.so.5; run puts BUNDLE on LD_LIBRARY_PATH).
#   run: needs only BUNDLE, the driver (libcuda.so.1) and a python3 with
#     numpy:
#     1. correctness: each model on the GPU (--device cuda) and on the CPU
#        (--device cpu): max|diff| of the logits after 21 tokens (RNN and
#        sequence mode) and equal argmax;
#     2. compute-sanitizer (memcheck, racecheck, synccheck), when present,
#        on the tiny RWKV-7 on the GPU, in RNN and in sequence mode;
#     3. the CPU's threads: the C=768 model (f16) and a C=512 one of 3
#        layers in q4_0 on 2, 3 and all cores against one thread, logits
#        to 1e-5;
#     4. speed: the GPU's read bandwidth (PyTorch, when present), decode
#        and prefill tokens/s of the shapes, the achieved bandwidth = weight
#        bytes per token x decode tokens/s, and decode without CUDA graphs.
#
#   scripts/gpu-check.sh [prepare|run] [--quick] [--no-speed] [--shared DIR]
#                        [--bundle DIR] [--out DIR]
#     --quick     skips the 7B shape
#     --no-speed  skips the shapes (prepare) and the speed step (run)
#     --shared    the shared test assets (default ../shared beside the tree)
#     --bundle    where prepare writes and run reads models.tar.xz
#                 (default gpu-bundle/ in the tree: ignored by git, named in
#                 the device tool's carry)
#     --out       where models are unpacked and the report goes (default
#                 /tmp/rwkvc-gpu-check)
#
# Prints a report (also OUT/report.txt); exits 1 if a check failed. A dry
# run without a GPU checks the script itself: with GPU_CHECK_RWKVC_FLAGS=
# --cuda-emulator and RWKV_CUDA_LIBRARY=build/lib/libcuda-emu.so.1 the
# models run on the CUDA emulator (docs/cuda-emulator.md; --no-speed: it is
# slow). prepare needs: cmake, ninja, clang-22, LLVM/MLIR 22
# (scripts/setup.sh), CUDA 13 (NVRTC) at $CUDA_HOME or /usr/local/cuda,
# /usr/bin/python3 with numpy, GNU tar and xz.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED="$ROOT/../shared"
OUT=/tmp/rwkvc-gpu-check
BUNDLE="$ROOT/gpu-bundle"
QUICK=0
SPEED=1
PHASES="prepare run"
EXTRA=(${GPU_CHECK_RWKVC_FLAGS:-})
while [ $# -gt 0 ]; do
  case "$1" in
  prepare | run) PHASES="$1" ;;
  --quick) QUICK=1 ;;
  --no-speed) SPEED=0 ;;
  --shared) SHARED="$2"; shift ;;
  --bundle) BUNDLE="$2"; shift ;;
  --out) OUT="$2"; shift ;;
  -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT" "$BUNDLE"
OUT=$(cd "$OUT" && pwd)
BUNDLE=$(cd "$BUNDLE" && pwd)
REPORT="$OUT/report.txt"
: >"$REPORT"
FAILED=0
say() { echo "$*" | tee -a "$REPORT"; }
fail() { say "FAIL $*"; FAILED=1; }
# A python3 with numpy: Debian's, or the first on PATH (a GPU machine's).
PY=""
for p in /usr/bin/python3 python3; do
  if "$p" -c "import numpy" 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "gpu-check: no python3 with numpy" >&2; exit 2; }
START=$(date +%s)
say "# rwkvc gpu-check ($PHASES) $(date -u +%FT%TZ) on $(hostname), $(git rev-parse --short HEAD 2>/dev/null)"

TINY_MODELS="4v0-660K 5v1-730K 5v2-730K 6v0-1m 7v0-834K"
# The shapes: name:C:L.
SHAPES=""
if [ $SPEED = 1 ]; then
  SHAPES="0.1b:768:12 1.5b:2048:24"
  [ $QUICK = 1 ] || SHAPES="$SHAPES 7b:4096:32"
fi

prepare() {
  local models="$OUT/models"
  rm -rf "$models"; mkdir -p "$models"
  RWKVC=${RWKVC:-}
  if [ -z "$RWKVC" ]; then
    if [ -x build/bin/rwkvc ]; then RWKVC=build/bin/rwkvc; else
      RWKVC=build-gpu/bin/rwkvc
      if [ ! -x "$RWKVC" ]; then
        say "## build (build-gpu)"
        cmake -G Ninja -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
          -DRWKVC_SHARED_DIR="$SHARED" >"$OUT/cmake.log" 2>&1 ||
          { cat "$OUT/cmake.log"; exit 1; }
        ninja -C build-gpu rwkvc rwkv_runtime rwkv_runtime_main >"$OUT/build.log" 2>&1 ||
          { tail -50 "$OUT/build.log"; exit 1; }
      fi
    fi
  fi
  say "## prepare with $RWKVC"
  local both=(--target=cpu,cuda --target-cpu=x86-64-v3 "${EXTRA[@]}")
  local TINY="$SHARED/models/tiny"
  if [ -d "$TINY" ]; then
    for m in $TINY_MODELS; do
      for wt in keep f16; do
        "$RWKVC" "$TINY/tiny-rwkv-$m.safetensors" "${both[@]}" --weight-type=$wt \
          -o "$models/tiny-$m-$wt" 2>>"$OUT/compile.log" ||
          fail "compile tiny $m $wt (see $OUT/compile.log)"
      done
    done
  else
    say "skipped: no tiny models at $TINY"
  fi
  local w768="$OUT/v7-768.safetensors"
  $PY scripts/make_random_model.py --version 7 --n-embd 768 --n-layer 2 \
    --vocab 1024 --dtype f16 --seed 1 -o "$w768" >/dev/null &&
    "$RWKVC" "$w768" "${both[@]}" --weight-type=f16 -o "$models/v7-768" \
      2>>"$OUT/compile.log" || fail "compile the random C=768 model (see $OUT/compile.log)"
  # A smaller RWKV-7 (C=512, 8 heads, L=3: the layer loop's back edge,
  # V=1024) in q4_0 for the CPU's threads (run's step 3), for any AVX2
  # machine, decoding as of a model that streams. A 9 MB executable: random
  # codes do not compress, and the bundle travels in 64 MiB.
  local w512="$OUT/v7-512.safetensors"
  $PY scripts/make_random_model.py --version 7 --n-embd 512 --n-layer 3 \
    --vocab 1024 --dtype f16 --seed 2 -o "$w512" >/dev/null &&
    "$RWKVC" "$w512" --target=cpu --target-cpu=x86-64-v3 --weight-type=q4_0 \
      --stream-weights=on -o "$models/v7-512-q4_0" 2>>"$OUT/compile.log" ||
    fail "compile the random C=512 model (see $OUT/compile.log)"
  for s in $SHAPES; do
    IFS=: read -r name c l <<<"$s"
    local src="$OUT/shape-v7-$name.safetensors"
    [ -f "$src" ] || $PY scripts/make_random_model.py --version 7 --n-embd "$c" \
      --n-layer "$l" --vocab 65536 --dtype f16 --shape-only --seed 1 -o "$src" >/dev/null
    local exe="$models/shape-v7-$name"
    if "$RWKVC" "$src" --target=cuda --weight-type=f16 --weights-file "${EXTRA[@]}" \
      -o "$exe" 2>>"$OUT/compile.log"; then
      # The zeros of the image become holes: tar --sparse stores the rest.
      fallocate --dig-holes "$exe.weights"
    else
      fail "compile the $name shape (see $OUT/compile.log)"
    fi
    rm -f "$src"
  done
  # The code the models were built from, for run's report.
  echo "$(git describe --always --dirty 2>/dev/null || echo unknown)" >"$models/commit"
  # -9e: the bundle travels with the tree in 64 MiB (55 MB; -6 made 57.7).
  tar -C "$OUT" --sparse -cf - models | xz -T0 -9e >"$BUNDLE/models.tar.xz"
  # The models split across threads need LLVM's libomp.so.5 (docs/runtime.md),
  # which a GPU machine may not have.
  local omp
  omp=$(ldd "$models/v7-768" 2>/dev/null | awk '/libomp.so.5 =>/ {print $3}')
  rm -f "$BUNDLE/libomp.so.5"
  [ -n "$omp" ] && cp "$omp" "$BUNDLE/libomp.so.5"
  say "bundle: $BUNDLE/models.tar.xz, $(( $(stat -c %s "$BUNDLE/models.tar.xz") / 1024 )) KiB, $(( $(date +%s) - START )) s"
}

# The logits of EXE on TOKENS on DEVICE in MODE, to FILE.
logits() { # exe device mode file
  timeout 120 "$1" --device "$2" --mode "$3" --tokens "$TOKENS" --logits-out "$4" 2>>"$OUT/run.log"
}
compare() { # what gpu.bin cpu.bin tol
  $PY - "$@" <<'PYEOF' | tee -a "$REPORT"
import sys, numpy as np
what, g, c, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a = np.fromfile(g, dtype="<f4"); b = np.fromfile(c, dtype="<f4")
ok = a.shape == b.shape and a.size > 0 and np.all(np.isfinite(a)) and \
    a.argmax() == b.argmax() and float(np.abs(a - b).max()) <= tol
d = float(np.abs(a - b).max()) if a.shape == b.shape and a.size else float("nan")
print("%s %s: max|diff| %.3g (tol %.0e), argmax %d vs %d" % (
    "ok  " if ok else "FAIL", what, d, tol, a.argmax() if a.size else -1,
    b.argmax() if b.size else -1))
sys.exit(0 if ok else 1)
PYEOF
}
# 21 tokens: the bytes of "The quick brown fox j".
TOKENS=84,104,101,32,113,117,105,99,107,32,98,114,111,119,110,32,102,111,120,32,106
check() { # what exe tol_rnn tol_seq
  local what=$1 exe=$2
  for mode in rnn seq; do
    local tol=$3
    [ $mode = seq ] && tol=$4
    local ok=0
    if logits "$exe" cuda $mode "$OUT/g.bin" && logits "$exe" cpu $mode "$OUT/c.bin"; then
      compare "$what $mode" "$OUT/g.bin" "$OUT/c.bin" $tol && ok=1
    else
      say "FAIL $what $mode: $(tail -1 "$OUT/run.log")"
    fi
    [ $ok = 1 ] && continue
    FAILED=1
    # Tells a fault of the graph capture from one of the kernels.
    if RWKV_CUDA_GRAPHS=0 logits "$exe" cuda $mode "$OUT/g.bin"; then
      compare "  again, RWKV_CUDA_GRAPHS=0: $what $mode" "$OUT/g.bin" "$OUT/c.bin" $tol
    else
      say "  again, RWKV_CUDA_GRAPHS=0: $(tail -1 "$OUT/run.log")"
    fi
  done
}

run() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.sm \
      --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$REPORT"
  else
    say "gpu: nvidia-smi not found"
  fi
  say "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
  local models="$OUT/models"
  rm -rf "$models"
  export LD_LIBRARY_PATH="$BUNDLE${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  xz -dc "$BUNDLE/models.tar.xz" | tar -C "$OUT" --sparse -xf - ||
    { fail "unpack $BUNDLE/models.tar.xz"; return; }
  say "unpacked: $(( $(date +%s) - START )) s; models built from $(cat "$models/commit" 2>/dev/null || echo '?')"

  # 1. Correctness: GPU vs CPU on the same image. Tolerance: both compute
  # in fp32 from the same weights; reductions run in another order (the
  # emulator measured < 5e-6 on the tiny models): 1e-4. f16 in sequence
  # mode: the tensor cores round the activations to f16 (docs/cuda.md;
  # test/e2e's bound for it: 5e-3).
  say "## correctness: --device cuda vs --device cpu, 21 tokens"
  for m in $TINY_MODELS; do
    for wt in keep f16; do
      local exe="$models/tiny-$m-$wt"
      [ -x "$exe" ] || { say "skipped: no $exe"; continue; }
      local tseq=1e-4
      [ $wt = f16 ] && tseq=5e-3
      check "tiny $m $wt" "$exe" 1e-4 $tseq
    done
  done
  # Random weights of the 0.1B width: logits of magnitude ~10; in sequence
  # mode f16 activations on the tensor cores (5e-3 on the tiny models'
  # logits): 2e-2.
  [ -x "$models/v7-768" ] && check "random v7 C=768 f16" "$models/v7-768" 1e-3 2e-2

  # 2. compute-sanitizer.
  local san
  san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
  local t7="$models/tiny-7v0-834K-keep"
  if [ -n "$san" ] && [ -x "$t7" ]; then
    say "## compute-sanitizer"
    # Both modes: one token a call runs the decode kernels (the GEMV, the
    # LoRA's two launches) and the captured graph; a sequence the others.
    for mode in rnn seq; do
      for tool in memcheck racecheck synccheck; do
        local log="$OUT/san-$tool-$mode.log"
        if timeout 180 "$san" --tool $tool --error-exitcode 9 "$t7" --device cuda \
          --mode $mode --tokens "$TOKENS" >"$log" 2>&1; then
          say "ok   compute-sanitizer --tool $tool, $mode mode: no error"
        else
          fail "compute-sanitizer --tool $tool, $mode mode (see $log)"
          tail -20 "$log" | tee -a "$REPORT"
        fi
      done
    done
  else
    say "compute-sanitizer: not found, skipped"
  fi

  # 3. The CPU's threads: decode's one parallel region places its barriers
  # by what each piece reads and writes (codegen/cpu/ParallelRegions.cpp);
  # a missing one is a race, likelier with many threads than with this
  # project's two. Each output is computed by one thread in the same order:
  # bit-exact in practice, 1e-5 as test/e2e's bound.
  local n=$(nproc)
  say "## CPU threads: --threads 1 vs 2, 3, $n, 63 tokens"
  local many=$TOKENS,$TOKENS,$TOKENS
  for exe in "$models/v7-768" "$models/v7-512-q4_0"; do
    [ -x "$exe" ] || { say "skipped: no $exe"; continue; }
    local what dev=()
    what=$(basename "$exe")
    [ "$what" = v7-768 ] && dev=(--device cpu)
    for mode in rnn seq; do
      timeout 120 "$exe" "${dev[@]}" --threads 1 --mode $mode --tokens "$many" \
        --logits-out "$OUT/t1.bin" 2>>"$OUT/run.log" ||
        { fail "$what $mode --threads 1: $(tail -1 "$OUT/run.log")"; continue; }
      for t in 2 3 $n; do
        if timeout 120 "$exe" "${dev[@]}" --threads $t --mode $mode --tokens "$many" \
          --logits-out "$OUT/tn.bin" 2>>"$OUT/run.log"; then
          compare "$what $mode --threads $t vs 1" "$OUT/tn.bin" "$OUT/t1.bin" 1e-5 || FAILED=1
        else
          fail "$what $mode --threads $t: $(tail -1 "$OUT/run.log")"
        fi
      done
    done
  done

  # 4. Speed.
  [ -n "$SHAPES" ] || { say "speed: skipped (--no-speed)"; return; }
  # The ceiling: how fast this GPU reads memory (PyTorch, when present: a
  # sum over 4 GiB of f16, far above the L2; median of 10 after 3).
  local bw
  bw=$(timeout 120 python3 - 2>>"$OUT/run.log" <<'PYEOF'
import torch
x = torch.ones(2 << 30, dtype=torch.float16, device="cuda")
ts = []
for i in range(13):
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record(); x.sum(dtype=torch.float32); b.record(); b.synchronize()
    ts.append(a.elapsed_time(b) / 1e3)
ts = sorted(ts[3:])
print("%.0f" % (x.numel() * 2 / ts[len(ts) // 2] / 1e9))
PYEOF
  )
  [ -n "$bw" ] && say "read bandwidth (torch sum over 4 GiB f16, median of 10): $bw GB/s" ||
    { bw=""; say "read bandwidth: not measured (no torch)"; }
  say "## speed: f16 RWKV-7, shape-only weights, decode 512 tokens, prefill in chunks of 512"
  say "| shape | weights | decode tok/s | GB/s | prefill tok/s |"
  say "|---|---|---|---|---|"
  for s in $SHAPES; do
    IFS=: read -r name c l <<<"$s"
    local exe="$models/shape-v7-$name"
    [ -x "$exe" ] || { fail "no $exe"; continue; }
    # Bytes read per decoded token: the image but the embedding table (one
    # row of it is read).
    local bytes=$(( $(stat -c %s "$exe.weights") - 65536 * c * 2 ))
    timeout 240 "$exe" --device cuda --bench 512 --chunk 512 >"$OUT/bench-$name.txt" 2>&1 ||
      { fail "bench $name"; cat "$OUT/bench-$name.txt" | tee -a "$REPORT"; continue; }
    cat "$OUT/bench-$name.txt" >>"$REPORT"
    local decode prefill gbs
    decode=$(awk '/^decode:/ {print $2}' "$OUT/bench-$name.txt")
    # "prefill (chunk 512): X tokens/s (...)"
    prefill=$(awk '/^prefill \(chunk/ {print $4}' "$OUT/bench-$name.txt")
    gbs=$($PY -c "print('%.0f' % ($bytes * $decode / 1e9))")
    local pct=""
    [ -n "$bw" ] && pct=" ($($PY -c "print('%.0f' % (100 * $gbs / $bw))")% of $bw)"
    say "| $name (C=$c, L=$l) | $($PY -c "print('%.2f GB' % ($bytes / 1e9))") | $decode | $gbs$pct | $prefill |"
    # Decode without the CUDA graph: one launch after another.
    RWKV_CUDA_GRAPHS=0 timeout 240 "$exe" --device cuda --bench 128 >"$OUT/bench-$name-nograph.txt" 2>&1 &&
      say "  $name without CUDA graphs: $(grep '^decode:' "$OUT/bench-$name-nograph.txt")"
  done
}

for phase in $PHASES; do $phase; done
say "total: $(( $(date +%s) - START )) s"
[ $FAILED = 0 ] && say "gpu-check: all checks passed" || say "gpu-check: FAILED"
exit $FAILED
