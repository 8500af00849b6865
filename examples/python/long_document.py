#!/usr/bin/python3
"""Streams a long document through a compiled model in chunks, carrying the
state from one chunk to the next, and prints its perplexity: the memory
stays that of one chunk whatever the document's length.

    PYTHONPATH=python /usr/bin/python3 examples/python/long_document.py \
        build/librwkvc-tiny.so docs/runtime.md --chunk 256 --state-out doc.state

The state at the end (--state-out) continues the document: load it with
model.load_state(path), or give it to the executable's --state-in.
"""

import argparse
import time

import numpy as np

from rwkvc.model import RWKV
from rwkvc.utils import PIPELINE


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="libNAME.so from rwkvc, or a checkpoint")
    ap.add_argument("document")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--state-out")
    a = ap.parse_args()

    model = RWKV(model=a.model, strategy="cpu fp32")
    pipeline = PIPELINE(model)
    with open(a.document, encoding="utf-8") as f:
        tokens = np.array(pipeline.encode(f.read()), np.int32)

    state = None
    nll, predicted = 0.0, 0
    prev = None  # logits after the last token of the previous chunk
    t0 = time.perf_counter()
    for i in range(0, len(tokens), a.chunk):
        chunk = tokens[i:i + a.chunk]
        # Row t: the logits after chunk[0..t], which predict chunk[t + 1].
        logits, state = model.forward(chunk, state, full_output=True)
        rows = log_softmax(np.asarray(logits, np.float64))
        if prev is not None:
            nll -= prev[chunk[0]]
            predicted += 1
        nll -= rows[np.arange(len(chunk) - 1), chunk[1:]].sum()
        predicted += len(chunk) - 1
        prev = rows[-1]
    seconds = time.perf_counter() - t0
    print(f"{len(tokens)} tokens in chunks of {a.chunk}: {seconds:.2f} s "
          f"({len(tokens) / seconds:.0f} tokens/s)")
    print(f"perplexity {np.exp(nll / max(predicted, 1)):.4f} "
          f"({predicted} predictions, {nll / max(predicted, 1):.4f} "
          f"nats/token)")
    if a.state_out:
        state.save(a.state_out)
        print(f"state saved to {a.state_out}")


if __name__ == "__main__":
    main()
