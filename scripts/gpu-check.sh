#!/usr/bin/env bash
# gpu-check.sh: the CUDA target on a machine with an NVIDIA GPU (sm_80+,
# driver R580+), in one run of a few minutes (docs/runtime.md, "CUDA"):
#
#   1. builds rwkvc and the runtime (build-gpu/, Release), if not built;
#   2. correctness: every tiny model (v4, 5.0, 5.2, 6, 7) and a 0.1B-shaped
#      random RWKV-7, compiled --target=cpu,cuda with real NVRTC cubins, run
#      on the GPU (--device cuda) and on the CPU (--device cpu): max|diff| of
#      the logits after 21 tokens (RNN and sequence mode) and equal argmax;
#   3. compute-sanitizer (memcheck, racecheck, synccheck), when present, on
#      the tiny RWKV-7 on the GPU;
#   4. speed: decode and prefill tokens/s of f16 RWKV-7 of the 0.1B, 1.5B
#      and 7B shapes (shape-only checkpoints: zeros stream like any weights)
#      and the achieved bandwidth = weight bytes per token x decode tokens/s.
#
#   scripts/gpu-check.sh [--quick] [--no-speed] [--shared DIR] [--out DIR]
#     --quick   skips the 7B shape
#     --no-speed  skips step 4
#     --shared  the shared test assets (default ../shared beside the tree)
#     --out     where models and the report go (default /tmp/rwkvc-gpu-check)
#
# Prints a report (also OUT/report.txt); exits 1 if a correctness check
# failed. A dry run without a GPU checks the script itself: with
# GPU_CHECK_RWKVC_FLAGS=--cuda-emulator and RWKV_CUDA_LIBRARY=
# build/lib/libcuda-emu.so.1 the models run on the CUDA emulator
# (docs/cuda-emulator.md; --no-speed: it is slow). Needs: cmake, ninja, clang-22, LLVM/MLIR 22 (scripts/setup.sh),
# CUDA 13 (NVRTC) at $CUDA_HOME or /usr/local/cuda, /usr/bin/python3 with
# numpy, and an NVIDIA driver (libcuda.so.1).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED="$ROOT/../shared"
OUT=/tmp/rwkvc-gpu-check
QUICK=0
SPEED=1
EXTRA=(${GPU_CHECK_RWKVC_FLAGS:-})
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) QUICK=1 ;;
  --no-speed) SPEED=0 ;;
  --shared) SHARED="$2"; shift ;;
  --out) OUT="$2"; shift ;;
  -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
  *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
REPORT="$OUT/report.txt"
: >"$REPORT"
FAILED=0
say() { echo "$*" | tee -a "$REPORT"; }
fail() { say "FAIL $*"; FAILED=1; }
PY=/usr/bin/python3
START=$(date +%s)

say "# rwkvc gpu-check $(date -u +%FT%TZ) on $(hostname)"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version \
    --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$REPORT"
else
  say "gpu: nvidia-smi not found"
fi

# 1. Build.
BUILD=build-gpu
if [ ! -x "$BUILD/bin/rwkvc" ]; then
  say "## build ($BUILD)"
  cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DRWKVC_SHARED_DIR="$SHARED" >"$OUT/cmake.log" 2>&1 ||
    { cat "$OUT/cmake.log"; exit 1; }
  ninja -C "$BUILD" rwkvc rwkv_runtime rwkv_runtime_main >"$OUT/build.log" 2>&1 ||
    { tail -50 "$OUT/build.log"; exit 1; }
fi
RWKVC="$BUILD/bin/rwkvc"
say "build: $(( $(date +%s) - START )) s"

# The logits of EXE on TOKENS on DEVICE in MODE, to FILE.
logits() { # exe device mode file
  "$1" --device "$2" --mode "$3" --tokens "$TOKENS" --logits-out "$4" 2>>"$OUT/run.log"
}
compare() { # what gpu.bin cpu.bin tol
  $PY - "$@" <<'EOF' | tee -a "$REPORT"
import sys, numpy as np
what, g, c, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
a = np.fromfile(g, dtype="<f4"); b = np.fromfile(c, dtype="<f4")
ok = a.shape == b.shape and np.all(np.isfinite(a)) and a.argmax() == b.argmax() and \
    float(np.abs(a - b).max()) <= tol
print("%s %s: max|diff| %.3g (tol %.0e), argmax %d vs %d" % (
    "ok  " if ok else "FAIL", what, float(np.abs(a - b).max()), tol, a.argmax(), b.argmax()))
sys.exit(0 if ok else 1)
EOF
}
# 21 tokens: the bytes of "The quick brown fox j".
TOKENS=84,104,101,32,113,117,105,99,107,32,98,114,111,119,110,32,102,111,120,32,106

# 2. Correctness: GPU vs CPU on the same image. Tolerance: both compute in
# fp32 from the same weights; reductions run in another order (the emulator
# measured < 5e-6 on the tiny models): 1e-4.
say "## correctness: --device cuda vs --device cpu, 21 tokens"
TINY="$SHARED/models/tiny"
if [ -d "$TINY" ]; then
  for m in 4v0-660K 5v1-730K 5v2-730K 6v0-1m 7v0-834K; do
    for wt in keep f16; do
      exe="$OUT/tiny-$m-$wt"
      if ! "$RWKVC" "$TINY/tiny-rwkv-$m.safetensors" --target=cpu,cuda \
        --weight-type=$wt "${EXTRA[@]}" -o "$exe" 2>>"$OUT/compile.log"; then
        fail "compile tiny $m $wt (see $OUT/compile.log)"; continue
      fi
      for mode in rnn seq; do
        # f16 in sequence mode: the tensor cores round the activations to
        # f16 (docs/cuda.md; test/e2e's bound for it: 5e-3).
        tol=1e-4
        [ $wt = f16 ] && [ $mode = seq ] && tol=5e-3
        if logits "$exe" cuda $mode "$OUT/g.bin" && logits "$exe" cpu $mode "$OUT/c.bin"; then
          compare "tiny $m $wt $mode" "$OUT/g.bin" "$OUT/c.bin" $tol || FAILED=1
        else
          fail "tiny $m $wt $mode: $(tail -1 "$OUT/run.log")"
        fi
      done
    done
  done
else
  say "skipped: no tiny models at $TINY"
fi
M01="$OUT/v7-0.1b.safetensors"
[ -f "$M01" ] || $PY scripts/make_random_model.py --version 7 --n-embd 768 \
  --n-layer 12 --vocab 65536 --dtype f16 --seed 1 -o "$M01" >/dev/null
if "$RWKVC" "$M01" --target=cpu,cuda --weight-type=f16 "${EXTRA[@]}" \
  -o "$OUT/v7-0.1b" 2>>"$OUT/compile.log"; then
  for mode in rnn seq; do
    # Random weights of the official shape: logits of magnitude ~10; in
    # sequence mode f16 activations on the tensor cores (5e-3 on the tiny
    # models' logits): 2e-2.
    tol=1e-3
    [ $mode = seq ] && tol=2e-2
    if logits "$OUT/v7-0.1b" cuda $mode "$OUT/g.bin" &&
      logits "$OUT/v7-0.1b" cpu $mode "$OUT/c.bin"; then
      compare "random 0.1B v7 f16 $mode" "$OUT/g.bin" "$OUT/c.bin" $tol || FAILED=1
    else
      fail "random 0.1B v7 f16 $mode: $(tail -1 "$OUT/run.log")"
    fi
  done
else
  fail "compile the 0.1B shape (see $OUT/compile.log)"
fi

# 3. compute-sanitizer.
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$SAN" ] && [ -x "$OUT/tiny-7v0-834K-keep" ]; then
  say "## compute-sanitizer"
  for tool in memcheck racecheck synccheck; do
    if "$SAN" --tool $tool --error-exitcode 9 "$OUT/tiny-7v0-834K-keep" --device cuda \
      --mode seq --tokens "$TOKENS" >"$OUT/san-$tool.log" 2>&1; then
      say "ok   compute-sanitizer --tool $tool: no error"
    else
      fail "compute-sanitizer --tool $tool (see $OUT/san-$tool.log)"
      tail -20 "$OUT/san-$tool.log" | tee -a "$REPORT"
    fi
  done
else
  say "compute-sanitizer: not found, skipped"
fi

# 4. Speed.
if [ $SPEED = 1 ]; then
  say "## speed: f16 RWKV-7, shape-only weights, decode 256 tokens, prefill in chunks of 256"
  say "| shape | weights | decode tok/s | GB/s | prefill tok/s |"
  say "|---|---|---|---|---|"
else
  say "speed: skipped (--no-speed)"
fi
SHAPES=""
if [ $SPEED = 1 ]; then
  SHAPES="0.1b:768:12 1.5b:2048:24"
  [ $QUICK = 1 ] || SHAPES="$SHAPES 7b:4096:32"
fi
for s in $SHAPES; do
  IFS=: read -r name c l <<<"$s"
  src="$OUT/shape-v7-$name.safetensors"
  [ -f "$src" ] || $PY scripts/make_random_model.py --version 7 --n-embd "$c" \
    --n-layer "$l" --vocab 65536 --dtype f16 --shape-only --seed 1 -o "$src" >/dev/null
  exe="$OUT/shape-v7-$name"
  if ! "$RWKVC" "$src" --target=cuda --weight-type=f16 --weights-file \
    "${EXTRA[@]}" -o "$exe" 2>>"$OUT/compile.log"; then
    fail "compile the $name shape (see $OUT/compile.log)"; continue
  fi
  # Bytes read per decoded token: the image but the embedding table (one
  # row of it is read).
  bytes=$(( $(stat -c %s "$exe.weights") - 65536 * c * 2 ))
  "$exe" --device cuda --bench 256 --chunk 256 >"$OUT/bench-$name.txt" 2>&1 ||
    { fail "bench $name"; cat "$OUT/bench-$name.txt"; continue; }
  decode=$(awk '/^decode:/ {print $2}' "$OUT/bench-$name.txt")
  # "prefill (chunk 256): X tokens/s (...)"
  prefill=$(awk '/^prefill \(chunk/ {print $4}' "$OUT/bench-$name.txt")
  gbs=$($PY -c "print('%.0f' % ($bytes * $decode / 1e9))")
    say "| $name (C=$c, L=$l) | $($PY -c "print('%.2f GB' % ($bytes / 1e9))") | $decode | $gbs | $prefill |"
done

say "total: $(( $(date +%s) - START )) s"
[ $FAILED = 0 ] && say "gpu-check: all checks passed" || say "gpu-check: FAILED"
exit $FAILED
