#!/usr/bin/python3
"""Write a random-weight RWKV checkpoint as .safetensors (F32, or F16/BF16 with --dtype), in BlinkDL's PyTorch layout.

Names, shapes and per-block order follow the tiny test models (models/tiny/README.md of the test assets), so these files
load like real checkpoints. They cover what the tiny models do not: RWKV-7 with several heads, variant 5.1
(per-head decay + time_faaaa (H) + gate), and blocks.i.att.time_state (H, N, N) for v5/v6/v7.

    make_random_model.py --version {4,5.0,5.1,5.2,6,7} --n-embd C --n-layer L --head-size N --vocab V
                         --ffn F [--lora D] [--lora-decay D2] [--time-state] [--v7-no-layer0-v]
                         [--dtype f32|f16|bf16] --seed S -o OUT.safetensors [--check N]

LoRA dims default to the official models' for C: RWKV-7's from its training code (decay and in-context rate
1.8 sqrt(C), value 1.3 sqrt(C), gate 0.6 C^0.8, each rounded to a multiple of 32, at least 32: 64/64/32/128 at
C = 768, 96/96/64/256 at 2048, 128/128/96/480 at 4096), RWKV-6's mix 32 and decay 64 (64 and 128 from C = 4096).
--lora D makes them all D (RWKV-6's decay --lora-decay, default 2 D).

Version names are the reference package's (docs/math.md): 5.0 = per-head decay, time_first, no gate
(rwkv.cpp calls this "5.1"); 5.1 = per-head decay, time_faaaa (H), gate; 5.2 = per-channel (H, N).

The distributions mimic trained models so that logits stay finite over thousands of tokens: layer-norm
weights ~ 1 + N(0, 0.1), biases ~ N(0, 0.1); mixing vectors ~ U(0, 1); Linear / LoRA matrices ~ N(0, 1/sqrt(in))
(LoRA down-projections scaled 0.5); v4 time_decay ~ U(ln 0.01, ln 8) so -exp(time_decay) in (-8, -0.01);
v5/v6 decays chosen so that w = exp(-exp(d)) lies in about (0.5, 0.993); v7's decay is bounded by construction.
time_state is stored as trained state-tuned checkpoints store it: [head][value i][key j].

Tensors are generated and written in chunks of 16M elements, so memory stays small whatever the shape (the
official 7B shape, L32 C4096 V65536, is ~15 GB on disk in bf16).
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

VERSIONS = ["4", "5.0", "5.1", "5.2", "6", "7"]


DTYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
CHUNK = 1 << 24  # elements generated and written at a time (bounded memory for the 7B shapes)


def to_dtype(a, dtype):
    """float32 array -> little-endian bytes of `dtype` (f16/bf16 rounded to nearest even)."""
    a = np.ascontiguousarray(a, dtype="<f4")
    if dtype == "f32":
        return a.tobytes()
    if dtype == "f16":
        return a.astype("<f2").tobytes()
    u = a.view("<u4")
    r = ((u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16).astype("<u2")
    nan = np.isnan(a)
    r[nan] = ((u[nan] >> 16) | np.uint32(0x40)).astype("<u2")
    return r.tobytes()


def write_safetensors(path, tensors, metadata, dtype="f32", shape_only=False):
    """tensors: list of (name, Lazy) in file order; each is generated (in that order, so the random stream is
    the same whatever the dtype) and written chunk by chunk. shape_only: every value zero, the data a hole of
    the file (sparse: written at once, whatever its size)."""
    size = 4 if dtype == "f32" else 2
    header = {"__metadata__": {k: str(v) for k, v in metadata.items()}}
    off = 0
    for name, t in tensors:
        n = size * t.numel()
        header[name] = {"dtype": DTYPES[dtype], "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)  # align the data section to 8 bytes
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        if shape_only:
            f.truncate(8 + len(hj) + off)
        else:
            for _, t in tensors:
                for chunk in t.chunks():
                    f.write(to_dtype(chunk, dtype))
    os.replace(tmp, path)


class Lazy:
    """A tensor generated when written: `fn(n)` draws the next n values (float32) of the random stream, so a
    large tensor is made in chunks with the values it would have at once."""

    def __init__(self, shape, fn):
        self.shape = tuple(shape)
        self.fn = fn

    def numel(self):
        return int(np.prod(self.shape)) if self.shape else 1

    def chunks(self):
        n = self.numel()
        for i in range(0, n, CHUNK):
            yield self.fn(min(CHUNK, n - i))


class Gen:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def normal(self, shape, std, mean=0.0):
        # (x * std).astype(f32) [+ mean, in f32]: elementwise, so chunks give the values of one call
        def fn(n):
            x = (self.rng.standard_normal(n) * std).astype(np.float32)
            return (mean + x).astype(np.float32) if mean else x
        return Lazy(shape, fn)

    def uniform(self, shape, lo, hi):
        return Lazy(shape, lambda n: self.rng.uniform(lo, hi, size=n).astype(np.float32))

    def lin(self, out_f, in_f, scale=1.0):  # Linear weight (out, in)
        return self.normal((out_f, in_f), scale / math.sqrt(in_f))

    def mat(self, in_f, out_f, scale=1.0):  # right-multiplied matrix (in, out), as LoRA w1/w2
        return self.normal((in_f, out_f), scale / math.sqrt(in_f))

    def lnw(self, C):
        return self.normal((C,), 0.1, mean=1.0)

    def lnb(self, C):
        return self.normal((C,), 0.1)

    def mix(self, C):
        return self.uniform((1, 1, C), 0.0, 1.0)


def build(a):
    ver = a.version
    C, L, V, F = a.n_embd, a.n_layer, a.vocab, a.ffn
    N = a.head_size
    if ver != "4":
        if N <= 0 or C % N:
            raise SystemExit("n-embd must be a multiple of head-size")
        H = C // N
    else:
        H = 0
    dims = lora_dims(ver, C, a.lora, a.lora_decay)
    D, D2 = dims.get("mix", 0), dims.get("decay", 0)
    g = Gen(a.seed)
    T = []

    def add(name, arr):
        T.append((name, arr))

    add("emb.weight", g.normal((V, C), 1.0))
    for i in range(L):
        p = "blocks.%d." % i
        add(p + "ln1.weight", g.lnw(C))
        add(p + "ln1.bias", g.lnb(C))
        add(p + "ln2.weight", g.lnw(C))
        add(p + "ln2.bias", g.lnb(C))
        if ver in ("6", "7") and i == 0:
            add(p + "ln0.weight", g.lnw(C))
            add(p + "ln0.bias", g.lnb(C))

        if ver == "4":
            add(p + "att.time_decay", g.uniform((C,), math.log(0.01), math.log(8.0)))
            add(p + "att.time_first", g.uniform((C,), -1.0, 1.0))
            for n in ("k", "v", "r"):
                add(p + "att.time_mix_" + n, g.mix(C))
            add(p + "att.key.weight", g.lin(C, C))
            add(p + "att.value.weight", g.lin(C, C))
            add(p + "att.receptance.weight", g.lin(C, C))
            add(p + "att.output.weight", g.lin(C, C, 0.5))
        elif ver.startswith("5"):
            # w = exp(-exp(d)), d in (-5, -0.4)  ->  w in (0.51, 0.993)
            if ver == "5.2":
                add(p + "att.time_decay", g.uniform((H, N), -5.0, -0.4))
                add(p + "att.time_faaaa", g.uniform((H, N), -0.5, 1.0))
            elif ver == "5.1":
                add(p + "att.time_decay", g.uniform((H,), -5.0, -0.4))
                add(p + "att.time_faaaa", g.uniform((H,), -0.5, 1.0))
            else:
                add(p + "att.time_decay", g.uniform((H,), -5.0, -0.4))
                add(p + "att.time_first", g.uniform((H,), -1.0, 0.5))  # used as exp(time_first)
            for n in ("k", "v", "r"):
                add(p + "att.time_mix_" + n, g.mix(C))
            if ver != "5.0":
                add(p + "att.time_mix_g", g.mix(C))
            add(p + "att.ln_x.weight", g.lnw(C))
            add(p + "att.ln_x.bias", g.lnb(C))
            add(p + "att.key.weight", g.lin(C, C))
            add(p + "att.value.weight", g.lin(C, C))
            add(p + "att.receptance.weight", g.lin(C, C))
            add(p + "att.output.weight", g.lin(C, C, 0.5))
            if ver != "5.0":
                add(p + "att.gate.weight", g.lin(C, C))
        elif ver == "6":
            for n in ("x", "w", "k", "v", "r", "g"):
                add(p + "att.time_maa_" + n, g.mix(C))
            add(p + "att.time_maa_w1", g.mat(C, 5 * D, 0.5))
            add(p + "att.time_maa_w2", g.normal((5, D, C), 0.5 / math.sqrt(D)))
            add(p + "att.time_decay", g.uniform((1, 1, C), -5.0, -0.8))
            add(p + "att.time_decay_w1", g.mat(C, D2, 0.5))
            add(p + "att.time_decay_w2", g.normal((D2, C), 0.2 / math.sqrt(D2)))
            add(p + "att.time_faaaa", g.uniform((H, N), -0.5, 1.0))
            add(p + "att.receptance.weight", g.lin(C, C))
            add(p + "att.key.weight", g.lin(C, C))
            add(p + "att.value.weight", g.lin(C, C))
            add(p + "att.output.weight", g.lin(C, C, 0.5))
            add(p + "att.gate.weight", g.lin(C, C))
            add(p + "att.ln_x.weight", g.lnw(C))
            add(p + "att.ln_x.bias", g.lnb(C))
        else:  # 7
            for n in ("r", "w", "k", "v", "a", "g"):
                add(p + "att.x_" + n, g.mix(C))
            Dw, Da, Dv, Dg = dims["w"], dims["a"], dims["v"], dims["g"]
            add(p + "att.w1", g.mat(C, Dw, 0.5))
            add(p + "att.w2", g.mat(Dw, C, 1.0))
            add(p + "att.w0", g.uniform((1, 1, C), -3.0, 1.0))
            add(p + "att.a1", g.mat(C, Da, 0.5))
            add(p + "att.a2", g.mat(Da, C, 1.0))
            add(p + "att.a0", g.uniform((1, 1, C), -1.0, 1.0))
            if i > 0 or not a.v7_no_layer0_v:  # unused in layer 0 either way
                add(p + "att.v1", g.mat(C, Dv, 0.5))
                add(p + "att.v2", g.mat(Dv, C, 1.0))
                add(p + "att.v0", g.uniform((1, 1, C), -1.0, 1.0))
            add(p + "att.g1", g.mat(C, Dg, 1.0))
            add(p + "att.g2", g.mat(Dg, C, 1.0))
            add(p + "att.k_k", g.uniform((1, 1, C), 0.5, 1.5))
            add(p + "att.k_a", g.uniform((1, 1, C), 0.5, 1.5))
            add(p + "att.r_k", g.normal((H, N), 0.5))
            add(p + "att.receptance.weight", g.lin(C, C))
            add(p + "att.key.weight", g.lin(C, C))
            add(p + "att.value.weight", g.lin(C, C))
            add(p + "att.output.weight", g.lin(C, C, 0.5))
            add(p + "att.ln_x.weight", g.lnw(C))
            add(p + "att.ln_x.bias", g.lnb(C))
        if a.time_state:
            # [head][value i][key j] (RWKV-LM state tuning layout; for v7 RWKV-7's own S order)
            add(p + "att.time_state", g.normal((H, N, N), 0.3))

        if ver == "4" or ver.startswith("5"):
            add(p + "ffn.time_mix_k", g.mix(C))
            add(p + "ffn.time_mix_r", g.mix(C))
            add(p + "ffn.key.weight", g.lin(F, C))
            add(p + "ffn.value.weight", g.lin(C, F, 0.5))
            add(p + "ffn.receptance.weight", g.lin(C, C))
            if i == 0:
                add(p + "ln0.weight", g.lnw(C))
                add(p + "ln0.bias", g.lnb(C))
        elif ver == "6":
            add(p + "ffn.time_maa_k", g.mix(C))
            add(p + "ffn.time_maa_r", g.mix(C))
            add(p + "ffn.key.weight", g.lin(F, C))
            add(p + "ffn.receptance.weight", g.lin(C, C))
            add(p + "ffn.value.weight", g.lin(C, F, 0.5))
        else:
            add(p + "ffn.x_k", g.mix(C))
            add(p + "ffn.key.weight", g.lin(F, C))
            add(p + "ffn.value.weight", g.lin(C, F, 0.5))
    add("ln_out.weight", g.lnw(C))
    add("ln_out.bias", g.lnb(C))
    add("head.weight", g.lin(V, C))
    return T


def lora_dims(ver, C, lora=0, lora_decay=0):
    """The LoRA dims of a model of width C: the official ones, or all `lora` (RWKV-6's decay `lora_decay`, else
    2 `lora`). RWKV-7: w (decay), a (in-context rate), v (value residual), g (gate); RWKV-6: mix, decay."""
    if ver == "7":
        if lora:
            return {"w": lora, "a": lora, "v": lora, "g": lora}

        def dim(x):  # RWKV-7's training code: max(32, int(round(x / 32) * 32))
            return max(32, int(round(x / 32) * 32))

        return {"w": dim(1.8 * C ** 0.5), "a": dim(1.8 * C ** 0.5), "v": dim(1.3 * C ** 0.5),
                "g": dim(0.6 * C ** 0.8)}
    if ver == "6":
        mix = lora or (32 if C < 4096 else 64)
        return {"mix": mix, "decay": lora_decay or 2 * mix}
    return {}


def main(argv=None):
    ap = argparse.ArgumentParser(description="write a random-weight RWKV .safetensors checkpoint")
    ap.add_argument("--version", required=True, choices=VERSIONS + ["6.0", "7.0"])
    ap.add_argument("--n-embd", type=int, required=True, metavar="C")
    ap.add_argument("--n-layer", type=int, required=True, metavar="L")
    ap.add_argument("--head-size", type=int, default=64, metavar="N", help="ignored for v4 (default 64)")
    ap.add_argument("--vocab", type=int, default=256, metavar="V")
    ap.add_argument("--ffn", type=int, default=0, metavar="F", help="FFN width (default 4*C; v6 3.5*C)")
    ap.add_argument("--lora", type=int, default=0, metavar="D",
                    help="every LoRA dim (v6 mix, v7 w/a/v/g; default: the official models' for C)")
    ap.add_argument("--lora-decay", type=int, default=0, metavar="D2",
                    help="v6 decay LoRA dim (default 2*D, or the official one)")
    ap.add_argument("--time-state", action="store_true", help="add blocks.i.att.time_state (H,N,N) (v5/6/7)")
    ap.add_argument("--v7-no-layer0-v", action="store_true", help="v7: omit att.v0/v1/v2 in block 0 (as 7v0-834K)")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32",
                    help="storage of every tensor (default f32; the values are the f32 ones rounded)")
    ap.add_argument("--shape-only", action="store_true",
                    help="every value zero, written as a sparse file at once: the shapes of a real model for "
                         "tests that compile but do not run it")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("-o", "--output", required=True, metavar="OUT.safetensors")
    ap.add_argument("--check", type=int, default=0, metavar="T",
                    help="after writing, run T random tokens through rwkv_ref.py and require finite logits")
    a = ap.parse_args(argv)
    a.version = {"6.0": "6", "7.0": "7"}.get(a.version, a.version)
    if a.version == "4" and a.time_state:
        ap.error("--time-state needs v5/v6/v7")
    if not a.ffn:
        a.ffn = (a.n_embd * 7 // 2) // 32 * 32 if a.version == "6" else 4 * a.n_embd
    T = build(a)
    meta_ver = {"6": "6.0", "7": "7.0"}.get(a.version, a.version)
    write_safetensors(a.output, T, {"format": "pt", "rwkv_version": meta_ver,
                                    "source": "rwkvc make_random_model.py seed %d" % a.seed}, a.dtype,
                      a.shape_only)
    nparam = sum(t.numel() for _, t in T)
    dims = lora_dims(a.version, a.n_embd, a.lora, a.lora_decay)
    lora = "/".join("%s %d" % kv for kv in dims.items()) or "-"
    print("wrote %s: RWKV-%s C=%d L=%d N=%s V=%d F=%d lora=%s time_state=%s, %d tensors, %d parameters, %s"
          % (a.output, a.version, a.n_embd, a.n_layer, "-" if a.version == "4" else a.head_size, a.vocab,
             a.ffn, lora, a.time_state, len(T), nparam, a.dtype))
    if a.check:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import rwkv_ref
        m = rwkv_ref.RWKV(rwkv_ref.load_safetensors(a.output))
        toks = np.random.default_rng(a.seed).integers(0, m.V, size=a.check)
        out, _ = m.forward([int(x) for x in toks], None, all_logits=True)
        fin = bool(np.all(np.isfinite(out)))
        print("check: %s, %d tokens, finite %s, |logits| max %.3f, last argmax %d"
              % (m.describe(), a.check, fin, float(np.max(np.abs(out))), int(np.argmax(out[-1]))))
        if not fin or m.version != a.version:
            print("check FAILED (detected version %s)" % m.version)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
