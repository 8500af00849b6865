#!/usr/bin/python3
"""The runtime's CUDA backend on what rwkvc's CUDA emitter writes.

For the tiny model of every RWKV version: compiles it for the CPU and with
--target=cuda --cuda-emulator, runs the CUDA executable through
libcuda-emu.so.1 (RWKV_CUDA_LIBRARY) and compares its logits with the CPU
executable's in RNN mode, sequence mode in several chunkings; and a state
saved by the CUDA executable continued by the CPU one. Exits 77 (skipped)
without the shared tiny models.

  cuda_models.py RWKVC LIBCUDA_EMU SHARED_DIR WORK_DIR
"""

import os
import random
import subprocess
import sys

# The emulator computes the kernels' floats exactly (libm, IEEE division);
# the CPU code sums and fuses in its own order: the logits (magnitude ~10)
# agree to a few 1e-6 (measured: at most 5e-6), as the e2e suite bounds
# chunkings at 1e-5.
TOL = 1e-5
VERSIONS = ["4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "7v0-834K"]


def logits(exe, args, env):
    out = subprocess.run([exe] + args + ["--print-logits"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return [float(x) for x in out.split()]


def maxdiff(a, b):
    assert len(a) == len(b) and a, (len(a), len(b))
    return max(abs(x - y) for x, y in zip(a, b))


def main():
    rwkvc, emu, shared, work = sys.argv[1:5]
    tiny = os.path.join(shared, "models", "tiny")
    if not os.path.isdir(tiny):
        print(f"skipped: no tiny models in {tiny}")
        return 77
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, RWKV_CUDA_LIBRARY=emu)
    rnd = random.Random(3)
    tokens = ",".join(str(rnd.randrange(256)) for _ in range(40))
    failed = 0
    for v in VERSIONS:
        ckpt = os.path.join(tiny, f"tiny-rwkv-{v}.safetensors")
        cpu, cuda = (os.path.join(work, f"{k}-{v}") for k in ("cpu", "cuda"))
        subprocess.run([rwkvc, ckpt, "-o", cpu], check=True)
        subprocess.run([rwkvc, ckpt, "--target=cuda", "--cuda-emulator",
                        "-o", cuda], check=True)
        ref = logits(cpu, ["--tokens", tokens, "--mode", "rnn"], env)
        for args in (["--mode", "rnn"], ["--mode", "seq"],
                     ["--chunk", "7"], ["--chunk", "40"]):
            d = maxdiff(logits(cuda, ["--tokens", tokens] + args, env), ref)
            print(f"{v} {' '.join(args)}: max |cuda - cpu| {d:.2e}")
            failed += d > TOL
        state = os.path.join(work, f"{v}.state")
        subprocess.run([cuda, "--tokens", tokens, "--state-out", state],
                       env=env, check=True, capture_output=True)
        d = maxdiff(logits(cpu, ["--tokens", "5,6", "--state-in", state], env),
                    logits(cpu, ["--tokens", tokens + ",5,6"], env))
        print(f"{v} cuda state continued on the cpu: {d:.2e}")
        failed += d > TOL
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
