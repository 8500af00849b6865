#!/usr/bin/python3
"""Train rwkvc's bundled default checkpoint: a tiny byte-level RWKV-7 ("x070") language model.

Run with Debian 12's /usr/bin/python3 and its python3-torch (1.13), on one CPU core:

    apt-get install --no-install-recommends python3-torch python3-doc libopenblas0-pthread
    /usr/bin/python3 scripts/train_tiny.py --minutes 33 --out examples/rwkvc-tiny.pth

(libopenblas0-pthread matters: without it Debian's torch calls the reference BLAS, about 30x slower
at matrix products.) The run is bounded by wall-clock time (--minutes), so the number of steps, and
hence the exact weights, depend on the machine's speed; everything else is seeded (--seed).

Model: RWKV-7 in BlinkDL's RWKV-LM parameter layout and semantics (docs/math.md),
vocabulary 256 (token id = byte value, rwkvc's `bytes` tokenizer), n_embd 128, 4 layers, head size 64
(2 heads), FFN 512, LoRA dims 32 (decay, a, value-residual) and 64 (gate). Training runs in "GPT" form:
projections over the whole sequence at once, the WKV-7 recurrence in an exactly equivalent chunked
form (wkv7_chunked: per 32-step chunk, matrix products and one triangular solve; autograd does the rest).
Initialisation follows RWKV-LM's RWKV-v7 train_temp model.py (layer-dependent token-shift and decay
schedules, zero output/FFN-value init, orthogonal LoRA second matrices, tiny embedding).

Data: the reStructuredText sources of the Python 3.11 documentation shipped by Debian's `python3.11-doc`
package (pulled in by `python3-doc`) under /usr/share/doc/python3.11/html/_sources/ (*.rst.txt).
License: the Python documentation is distributed under the PSF License Agreement (Python Software
Foundation License Version 2; see /usr/share/doc/python3.11-doc/copyright and the docs' license.rst.txt);
code examples in it are dual licensed under the PSF License and the Zero-Clause BSD license. Both are
permissive.

The checkpoint is written with torch.save as a plain dict of bf16 tensors (like BlinkDL's released
checkpoints), tensor names exactly as RWKV-LM saves them (att.v0/v1/v2 absent in layer 0, where they are
unused). --verify-safetensors additionally writes an F32 .safetensors of the same (bf16-rounded) values so
that scripts/rwkv_ref.py can check the layout and math.
"""

import argparse
import glob
import json
import math
import os
import struct
import sys
import time

# one core: keep OpenBLAS (Debian's libopenblas0-pthread, if installed) single-threaded too
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_GLOB = "/usr/share/doc/python3.11/html/_sources/**/*.rst.txt"


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------

def load_corpus(pattern):
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        sys.exit("no data files match %s (apt-get install python3-doc)" % pattern)
    parts = []
    for fn in files:
        with open(fn, "rb") as f:
            b = f.read()
        # keep printable ASCII + newline/tab; drop other bytes so the byte model sees plain English text
        b = bytes(c for c in b if c == 10 or 32 <= c < 127)
        parts.append(b)
    data = b"\n\n".join(parts)
    return files, torch.frombuffer(bytearray(data), dtype=torch.uint8).long()


# --------------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------------

def ortho(shape, scale):
    t = torch.empty(shape)
    gain = math.sqrt(shape[0] / shape[1]) if shape[0] > shape[1] else 1.0
    nn.init.orthogonal_(t, gain=gain * scale)
    return t


def wkv7_chunked(r, w, k, v, a, b, S, c=32):
    """The WKV-7 recurrence, exactly, in chunks of c steps (matrix products + one triangular solve per chunk).

    r,w,k,v,a,b: (X, T, N) with X = batch*heads; S: (X, N, N) indexed [value i][key j].
        S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T,   y_t = S_t r_t
    (RWKV-7: a = -kk, b = kk*a). Within a chunk, with Lambda_t = prod_{tau<=t} diag(w_tau) from the chunk
    start, S_t = S_0 Lambda_t + sum_{s<=t} (sa_s b_s^T + v_s k_s^T) Lambda_t/Lambda_s, where
    sa_t = S_{t-1} a_t solves a unit lower-triangular c x c system. w >= exp(-e^-0.5) keeps
    1/Lambda <= e^{0.61 c} finite in fp32 for c = 16. Returns y (X, T, N) and S_T."""
    X, T, N = r.shape
    ys = []
    eye = torch.eye(c, dtype=r.dtype)
    for t0 in range(0, T, c):
        sl = slice(t0, min(t0 + c, T))
        rc, wc, kc, vc, ac, bc = r[:, sl], w[:, sl], k[:, sl], v[:, sl], a[:, sl], b[:, sl]
        L = rc.shape[1]
        cw = torch.cumsum(torch.log(wc), dim=1)                  # (X,L,N) log Lambda_t
        cwp = cw - torch.log(wc)                                 # log Lambda_{t-1}
        a_dec = ac * torch.exp(cwp)
        r_dec = rc * torch.exp(cw)
        einv = torch.exp(-cw)
        b_inv, k_inv = bc * einv, kc * einv
        tri_s = torch.tril(torch.ones(L, L, dtype=torch.bool), -1)
        tri = torch.tril(torch.ones(L, L, dtype=torch.bool), 0)
        A_ab = (a_dec @ b_inv.transpose(1, 2)).masked_fill(~tri_s, 0)
        A_ak = (a_dec @ k_inv.transpose(1, 2)).masked_fill(~tri_s, 0)
        R_b = (r_dec @ b_inv.transpose(1, 2)).masked_fill(~tri, 0)
        R_k = (r_dec @ k_inv.transpose(1, 2)).masked_fill(~tri, 0)
        St = S.transpose(1, 2)
        rhs = a_dec @ St + A_ak @ vc                             # (X,L,N_i)
        SA = torch.linalg.solve_triangular(eye[:L, :L] - A_ab, rhs, upper=False, unitriangular=True)
        ys.append(r_dec @ St + R_b @ SA + R_k @ vc)
        dec_end = torch.exp(cw[:, -1:] - cw)                     # (X,L,N) Lambda_L / Lambda_s
        S = S * torch.exp(cw[:, -1]).unsqueeze(1) + SA.transpose(1, 2) @ (bc * dec_end) + vc.transpose(1, 2) @ (kc * dec_end)
    return torch.cat(ys, 1), S


class Block(nn.Module):
    def __init__(self, C, H, L, layer, F_, Dw=32, Da=32, Dv=32, Dg=64):
        super().__init__()
        N = C // H
        self.C, self.H, self.N, self.layer = C, H, N, layer
        r01 = layer / (L - 1)
        r10 = 1.0 - layer / L
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        if layer == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)
        P = nn.Parameter
        self.x_r = P(1.0 - ddd ** (0.2 * r10))
        self.x_w = P(1.0 - ddd ** (0.9 * r10))
        self.x_k = P(1.0 - ddd ** (0.7 * r10))
        self.x_v = P(1.0 - ddd ** (0.7 * r10))
        self.x_a = P(1.0 - ddd ** (0.9 * r10))
        self.x_g = P(1.0 - ddd ** (0.2 * r10))
        n = torch.arange(C, dtype=torch.float32)
        linear = n / (C - 1) - 0.5
        zig = ((n % N) - (N - 1) / 2) / ((N - 1) / 2)
        zig = zig * zig.abs()
        www = -6 + 6 * (n / (C - 1)) ** (1 + 1 * r01 ** 0.3)
        self.w1 = P(torch.zeros(C, Dw))
        self.w2 = P(ortho((Dw, C), 0.1))
        self.w0 = P((www + 0.5 + zig * 2.5).view(1, 1, C))
        self.a1 = P(torch.zeros(C, Da))
        self.a2 = P(ortho((Da, C), 0.1))
        self.a0 = P((torch.zeros(C) - 0.19 + zig * 0.3 + linear * 0.4).view(1, 1, C))
        if layer > 0:
            self.v1 = P(torch.zeros(C, Dv))
            self.v2 = P(ortho((Dv, C), 0.1))
            self.v0 = P((torch.zeros(C) + 0.73 - linear * 0.4).view(1, 1, C))
        self.g1 = P(torch.zeros(C, Dg))
        self.g2 = P(ortho((Dg, C), 0.1))
        self.k_k = P((torch.zeros(C) + 0.71 - linear * 0.1).view(1, 1, C))
        self.k_a = P(torch.zeros(1, 1, C) + 1.02)
        self.r_k = P(torch.zeros(H, N) - 0.04)
        s = C ** -0.5
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.receptance.weight.data.uniform_(-0.5 * s, 0.5 * s)
        self.key.weight.data.uniform_(-0.05 * s, 0.05 * s)
        self.value.weight.data.uniform_(-0.5 * s, 0.5 * s)
        self.output.weight.data.zero_()
        self.ln_x = nn.GroupNorm(H, C, eps=64e-5)
        self.ln_x.weight.data.fill_(((1 + layer) / L) ** 0.7)
        self.ffn_x_k = P(1.0 - ddd ** (r10 ** 4))
        self.ffn_key = nn.Linear(C, F_, bias=False)
        self.ffn_value = nn.Linear(F_, C, bias=False)
        self.ffn_key.weight.data.uniform_(-0.5 * s, 0.5 * s)
        self.ffn_value.weight.data.zero_()

    def tmix(self, xa, st, v_first):
        """xa (B,T,C) normalized input; st = [sa (B,C), S (B,H,N,N), sf (B,C)] updated in place."""
        B, T, C = xa.shape
        H, N = self.H, self.N
        prev = torch.cat([st[0].unsqueeze(1), xa[:, :-1]], dim=1)
        st[0] = xa[:, -1]
        sx = prev - xa
        xr = xa + sx * self.x_r
        xw = xa + sx * self.x_w
        xk = xa + sx * self.x_k
        xv = xa + sx * self.x_v
        xa_ = xa + sx * self.x_a
        xg = xa + sx * self.x_g
        r = self.receptance(xr)
        k = self.key(xk)
        v = self.value(xv)
        w = torch.exp(-math.exp(-0.5) * torch.sigmoid(self.w0 + torch.tanh(xw @ self.w1) @ self.w2))
        if self.layer == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        a = torch.sigmoid(self.a0 + (xa_ @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0, eps=1e-12)
        k = k * (1 + (a - 1) * self.k_a)
        rh, kh, vh = r.view(B, T, H, N), k.view(B, T, H, N), v.view(B, T, H, N)
        wh = w.view(B, T, H, N)
        bh = kk * a.view(B, T, H, N)
        to_x = lambda z: z.permute(0, 2, 1, 3).reshape(B * H, T, N)
        y, S = wkv7_chunked(to_x(rh), to_x(wh), to_x(kh), to_x(vh), to_x(-kk), to_x(bh),
                            st[1].reshape(B * H, N, N))
        st[1] = S.view(B, H, N, N)
        y = y.view(B, H, T, N).permute(0, 2, 1, 3)                    # (B,T,H,N)
        y = self.ln_x(y.reshape(B * T, C)).view(B, T, C)
        y = y + ((rh * kh * self.r_k).sum(dim=-1, keepdim=True) * vh).view(B, T, C)
        return self.output(y * g), v_first

    def cmix(self, xf, st):
        prev = torch.cat([st[2].unsqueeze(1), xf[:, :-1]], dim=1)
        st[2] = xf[:, -1]
        xk = xf + (prev - xf) * self.ffn_x_k
        return self.ffn_value(torch.relu(self.ffn_key(xk)) ** 2)


class RWKV7(nn.Module):
    def __init__(self, C=128, L=4, head_size=64, F_=None, V=256):
        super().__init__()
        self.C, self.L, self.H, self.N, self.V = C, L, C // head_size, head_size, V
        self.emb = nn.Embedding(V, C)
        self.emb.weight.data.uniform_(-1e-4, 1e-4)
        self.blocks = nn.ModuleList([Block(C, self.H, L, i, F_ or 4 * C) for i in range(L)])
        self.ln_out = nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight.data.copy_(ortho((V, C), 0.5))

    def zero_state(self, B):
        return [[torch.zeros(B, self.C), torch.zeros(B, self.H, self.N, self.N), torch.zeros(B, self.C)]
                for _ in range(self.L)]

    def forward(self, idx, state=None):
        B, T = idx.shape
        if state is None:
            state = self.zero_state(B)
        x = self.blocks[0].ln0(self.emb(idx))
        v_first = None
        for blk, st in zip(self.blocks, state):
            dx, v_first = blk.tmix(blk.ln1(x), st, v_first)
            x = x + dx
            x = x + blk.cmix(blk.ln2(x), st)
        return self.head(self.ln_out(x)), state

    def blinkdl_state_dict(self):
        """Tensors under RWKV-LM's names, in RWKV-LM's order."""
        out = {"emb.weight": self.emb.weight}
        for i, b in enumerate(self.blocks):
            p = "blocks.%d." % i
            out[p + "ln1.weight"], out[p + "ln1.bias"] = b.ln1.weight, b.ln1.bias
            out[p + "ln2.weight"], out[p + "ln2.bias"] = b.ln2.weight, b.ln2.bias
            if i == 0:
                out[p + "ln0.weight"], out[p + "ln0.bias"] = b.ln0.weight, b.ln0.bias
            names = ["x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "w1", "w2", "a0", "a1", "a2"]
            if i > 0:
                names += ["v0", "v1", "v2"]
            names += ["g1", "g2", "k_k", "k_a", "r_k"]
            for n in names:
                out[p + "att." + n] = getattr(b, n)
            for n in ("receptance", "key", "value", "output"):
                out[p + "att.%s.weight" % n] = getattr(b, n).weight
            out[p + "att.ln_x.weight"], out[p + "att.ln_x.bias"] = b.ln_x.weight, b.ln_x.bias
            out[p + "ffn.x_k"] = b.ffn_x_k
            out[p + "ffn.key.weight"] = b.ffn_key.weight
            out[p + "ffn.value.weight"] = b.ffn_value.weight
        out["ln_out.weight"], out["ln_out.bias"] = self.ln_out.weight, self.ln_out.bias
        out["head.weight"] = self.head.weight
        return out


def save_checkpoint(model, path):
    sd = {k: v.detach().to(torch.bfloat16).contiguous().clone() for k, v in model.blinkdl_state_dict().items()}
    tmp = path + ".tmp"
    torch.save(sd, tmp)
    os.replace(tmp, path)
    return sd


def write_safetensors(sd, path):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        a = v.detach().float().contiguous().numpy().tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(a)]}
        blobs.append(a)
        off += len(a)
    header["__metadata__"] = {"format": "pt", "rwkv_version": "7", "source": "scripts/train_tiny.py"}
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_bf16_into(model, sd):
    own = model.blinkdl_state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            own[k].copy_(v.float())


# --------------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------------

@torch.no_grad()
def generate(model, prompt, n, temperature=0.8, top_p=0.9, seed=0):
    g = torch.Generator().manual_seed(seed)
    toks = list(prompt.encode())
    logits, st = model(torch.tensor([toks]), None)
    logits = logits[0, -1]
    out = []
    for _ in range(n):
        if temperature <= 0:
            t = int(logits.argmax())
        else:
            p = torch.softmax(logits / temperature, dim=-1)
            sp, si = torch.sort(p, descending=True)
            cum = torch.cumsum(sp, 0)
            sp[(cum - sp) > top_p] = 0
            t = int(si[torch.multinomial(sp / sp.sum(), 1, generator=g)])
        out.append(t)
        logits, st = model(torch.tensor([[t]]), st)
        logits = logits[0, -1]
    return bytes(out).decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA_GLOB, help="glob of training text files (default: %(default)s)")
    ap.add_argument("--out", default="examples/rwkvc-tiny.pth")
    ap.add_argument("--minutes", type=float, default=32.0, help="wall-clock training budget")
    ap.add_argument("--n-embd", type=int, default=128)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--head-size", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-final", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--save-every", type=float, default=5.0, help="minutes between checkpoint saves")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--verify-safetensors", metavar="FILE", help="after training, also write an F32 safetensors "
                    "of the saved (bf16) tensors, for scripts/rwkv_ref.py")
    ap.add_argument("--sample-only", action="store_true", help="load --out and print samples")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = RWKV7(args.n_embd, args.n_layer, args.head_size)
    nparams = sum(v.numel() for v in model.blinkdl_state_dict().values())
    print("RWKV-7 C=%d L=%d H=%d N=%d: %d parameters" % (model.C, model.L, model.H, model.N, nparams), flush=True)

    if args.sample_only:
        load_bf16_into(model, torch.load(args.out))
        for prompt in ("The ", "Python is", "def "):
            print("--- %r greedy:\n%s" % (prompt, prompt + generate(model, prompt, 200, temperature=0)))
            print("--- %r T=0.8:\n%s" % (prompt, prompt + generate(model, prompt, 300)))
        return

    files, data = load_corpus(args.data)
    nval = max(len(data) // 50, 20000)
    train, val = data[:-nval], data[-nval:]
    print("data: %d files, %d bytes (train %d, val %d)" % (len(files), len(data), len(train), len(val)), flush=True)

    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() == 2 and ("weight" in n or n.split(".")[-1] in ("w1", "w2", "a1", "a2", "v1", "v2", "g1", "g2"))
         and "emb" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), eps=1e-8)

    gen = torch.Generator().manual_seed(args.seed)

    def batch(src, B):
        ix = torch.randint(0, len(src) - args.ctx - 1, (B,), generator=gen)
        xs = torch.stack([src[i:i + args.ctx + 1] for i in ix])
        return xs[:, :-1], xs[:, 1:]

    @torch.no_grad()
    def evaluate():
        g2 = torch.Generator().manual_seed(1)
        tot, n = 0.0, 0
        for _ in range(4):
            ix = torch.randint(0, len(val) - args.ctx - 1, (32,), generator=g2)
            xs = torch.stack([val[i:i + args.ctx + 1] for i in ix])
            lg, _ = model(xs[:, :-1])
            tot += F.cross_entropy(lg.reshape(-1, 256), xs[:, 1:].reshape(-1)).item()
            n += 1
        return tot / n / math.log(2)

    budget = args.minutes * 60
    t0 = time.time()
    last_save = t0
    step, ema = 0, None
    log = []
    while True:
        el = time.time() - t0
        if el > budget:
            break
        frac = el / budget
        lr = args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * frac))
        if step < args.warmup:
            lr *= (step + 1) / args.warmup
        for gp in opt.param_groups:
            gp["lr"] = lr
        x, y = batch(train, args.batch)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        bpb = loss.item() / math.log(2)
        ema = bpb if ema is None else 0.98 * ema + 0.02 * bpb
        if step % 25 == 0:
            print("step %5d  %6.1fs  lr %.2e  train %.3f bpb (ema %.3f)  %.0f tok/s" % (
                step, el, lr, bpb, ema, step * args.batch * args.ctx / max(el, 1e-9)), flush=True)
        if time.time() - last_save > args.save_every * 60:
            vb = evaluate()
            save_checkpoint(model, args.out)
            last_save = time.time()
            print("saved %s at step %d, %.1f min: val %.3f bpb" % (args.out, step, el / 60, vb), flush=True)
            log.append((step, el, vb))

    train_time = time.time() - t0
    sd = save_checkpoint(model, args.out)
    load_bf16_into(model, sd)  # evaluate exactly what was saved
    vb = evaluate()
    print("final: step %d, %.1f min, %d tokens, val %.3f bpb (bf16 weights), train ema %.3f bpb" % (
        step, train_time / 60, step * args.batch * args.ctx, vb, ema), flush=True)
    print("wrote %s (%d bytes, %d parameters)" % (args.out, os.path.getsize(args.out), nparams), flush=True)
    if args.verify_safetensors:
        write_safetensors(sd, args.verify_safetensors)
        lg, _ = model(torch.tensor([list(b'"in')]))
        print("logits for prompt '\"in' (first 5):", lg[0, -1, :5].tolist())
    for prompt in ("The ", "Python is"):
        print("--- %r greedy:\n%s" % (prompt, prompt + generate(model, prompt, 200, temperature=0)))
        print("--- %r T=0.8:\n%s" % (prompt, prompt + generate(model, prompt, 300)))


if __name__ == "__main__":
    main()
