#!/usr/bin/python3
"""Greedy generation of a compiled model against the numpy reference.

Feeds the prompt's bytes to scripts/rwkv_ref.py's model, then appends the
argmax token N times (the reference's own greedy decode), and compares the
bytes with what the compiled executable prints for
`NAME PROMPT -n N --temperature 0` with the penalties off. Exits non-zero on any difference.

Usage: greedy_golden.py SRCROOT MODEL.safetensors EXECUTABLE PROMPT N
"""
import subprocess
import sys

import numpy as np


def main():
    root, model, exe, prompt, n = sys.argv[1:6]
    sys.path.insert(0, root + "/scripts")
    import rwkv_ref

    rwkv = rwkv_ref.RWKV(rwkv_ref.load_safetensors(model))
    tokens = list(prompt.encode())
    logits, state = rwkv.forward(tokens, None)
    expected = bytearray()
    for _ in range(int(n)):
        t = int(np.argmax(logits))
        expected.append(t)
        logits, state = rwkv.forward([t], state)
    # Pure argmax: no temperature, no repetition penalties.
    out = subprocess.run([exe, prompt, "-n", n, "--temperature", "0",
                          "--presence-penalty", "0", "--frequency-penalty", "0"],
                         check=True, capture_output=True).stdout
    got = out[len(prompt.encode()):] if out.startswith(prompt.encode()) else out
    got = got.rstrip(b"\n")[: len(expected)]
    print("reference:", bytes(expected))
    print("compiled: ", got)
    if got != bytes(expected):
        print("error: greedy generation differs from the reference")
        return 1
    print("greedy generation matches the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
