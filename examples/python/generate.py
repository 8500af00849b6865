#!/usr/bin/python3
"""Streams generated text token by token, as the `rwkv` package's README
does, from a compiled model (or a checkpoint, compiled on first use).

    PYTHONPATH=python /usr/bin/python3 examples/python/generate.py \
        build/librwkvc-tiny.so "The " --tokens 200 --seed 1

With the same prompt, seed and sampling options, the text equals what the
compiled executable prints (`./rwkvc-tiny "The " -n 200 --seed 1`).
"""

import argparse

from rwkvc.model import RWKV  # was: from rwkv.model import RWKV
from rwkvc.utils import PIPELINE, PIPELINE_ARGS  # was: from rwkv.utils


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="libNAME.so from rwkvc, or a checkpoint")
    ap.add_argument("prompt")
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=0.85)
    a = ap.parse_args()

    model = RWKV(model=a.model, strategy="cpu fp32")
    pipeline = PIPELINE(model)  # the tokenizer compiled into the model
    args = PIPELINE_ARGS(temperature=a.temperature, top_p=a.top_p,
                         alpha_frequency=0.2, alpha_presence=0.2,
                         token_ban=[], token_stop=[], seed=a.seed)

    print(a.prompt, end="", flush=True)
    pipeline.generate(a.prompt, token_count=a.tokens, args=args,
                      callback=lambda s: print(s, end="", flush=True))
    print()


if __name__ == "__main__":
    main()
