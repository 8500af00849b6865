#!/usr/bin/python3
"""The per-call overhead of RWKV.forward for one token over the C call.

    PYTHONPATH=python /usr/bin/python3 python/bench_overhead.py LIB

Times, in one process, R rounds of N pairs of one-token calls, each call
timed on its own:
  ctypes   rwkv_state_eval(state, &token, 1, logits, RNN) through ctypes with
           every argument prepared (the C call as Python reaches it)
  forward  model.forward([token], state) (the package's decode step: a list
           in, a fresh logits array out, the state updated in place)
and prints the median time per call of each and the median of the per-pair
differences: the overhead of rwkvc.RWKV.
"""

import ctypes
import statistics
import sys
import time

import numpy as np

import rwkvc
from rwkvc import _lib


def main():
    lib_path = sys.argv[1]
    rounds, n = 9, 2000
    model = rwkvc.RWKV(model=lib_path)
    state = model.new_state()
    h = state._s.h
    fn = model.lib.state_eval
    tok = np.array([65], np.int32)
    logits = np.empty(model.n_vocab, np.float32)
    tp, lp = _lib.address(tok), _lib.address(logits)
    err = ctypes.create_string_buffer(_lib.ERRLEN)
    clock = time.perf_counter_ns
    overhead, direct, forward = [], [], []
    for _ in range(rounds):
        # One C call and one forward, alternating, each timed on its own:
        # the median of the differences is robust to a loaded machine.
        d_ns, f_ns = [], []
        for _ in range(n):
            t0 = clock()
            fn(h, tp, 1, lp, _lib.RWKV_EVAL_RNN, 0, err, _lib.ERRLEN)
            t1 = clock()
            out, state = model.forward([65], state)
            t2 = clock()
            d_ns.append(t1 - t0)
            f_ns.append(t2 - t1)
        direct.append(statistics.median(d_ns) / 1e3)
        forward.append(statistics.median(f_ns) / 1e3)
        overhead.append(statistics.median(
            [f - d for f, d in zip(f_ns, d_ns)]) / 1e3)
    d, f = statistics.median(direct), statistics.median(forward)
    print(f"model: {model}")
    print(f"ctypes rwkv_state_eval, 1 token: {d:.2f} us/call "
          f"(median of {rounds} x {n})")
    print(f"RWKV.forward([token], state):    {f:.2f} us/call")
    print(f"overhead of forward:             "
          f"{statistics.median(overhead):.2f} us/call (median of the "
          f"per-pair differences; rounds: "
          f"{', '.join(f'{o:.1f}' for o in overhead)})")

if __name__ == "__main__":
    main()
