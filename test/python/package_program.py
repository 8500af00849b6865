#!/usr/bin/python3
"""A program written for the `rwkv` package (its README's demo and the loops
people write around it), with only the import lines and the model path
changed, the token ids made to fit a 256-token byte-level model and the
tokenizer named "bytes". test_rwkvc.py runs it: it must run unchanged.

Usage: package_program.py LIBRARY
"""

import copy
import os
import sys

os.environ["RWKV_JIT_ON"] = "1"  # read by the package; ignored here
os.environ["RWKV_CUDA_ON"] = "0"

from rwkvc.model import RWKV  # was: from rwkv.model import RWKV
from rwkvc.utils import PIPELINE, PIPELINE_ARGS  # was: from rwkv.utils ...

model = RWKV(model=sys.argv[1], strategy="cpu fp32")
pipeline = PIPELINE(model, "bytes")

ctx = "\nIn a shocking finding, scientist discovered a herd of dragons"
print(ctx, end="")


def my_print(s):
    print(s, end="", flush=True)


args = PIPELINE_ARGS(temperature=1.0, top_p=0.7, top_k=100,
                     alpha_frequency=0.25, alpha_presence=0.25,
                     alpha_decay=0.996, token_ban=[0], token_stop=[],
                     chunk_len=256)
pipeline.generate(ctx, token_count=50, args=args, callback=my_print)
print("\n")

out, state = model.forward([87, 110, 153, 210, 47], None)
print(out.detach().cpu().numpy())  # get logits
out, state = model.forward([87, 110], None)
out, state = model.forward([153], state)  # RNN has state (deepcopy to clone)
out, state = model.forward([210, 47], state)
print(out.detach().cpu().numpy())  # same result as above
print("\n")

# A chat-style loop: keep a saved state, branch with deepcopy, sample by hand.
init_out, init_state = model.forward(pipeline.encode("User: hi\n\n"), None)
for trial in range(2):
    out, state = copy.deepcopy(init_out), copy.deepcopy(init_state)
    text = []
    for i in range(20):
        out[0] = -999999999  # the package's chat bans end of text this way
        token = pipeline.sample_logits(out, temperature=1.0, top_p=0.85)
        text.append(token)
        out, state = model.forward([token], state)
    print(repr(pipeline.decode(text)))

# A long text in chunks with the state carried.
tokens = pipeline.encode("The quick brown fox jumps over the lazy dog. " * 40)
state = None
for i in range(0, len(tokens), 256):
    out, state = model.forward(tokens[i:i + 256], state)
print("last argmax", int(out.float().argmax()))
print("ok")
