#!/usr/bin/python3
"""rwkvc numerical reference: a direct numpy implementation of RWKV-4, 5 (5.0/5.1/5.2), 6 and 7.

Semantics: docs/math.md (those of ChatRWKV's `rwkv` package / BlinkDL RWKV-LM), RNN mode
(one token at a time), float64 by default.

Command line:
    rwkv_ref.py MODEL.safetensors (--tokens 34,105,110 | --random-tokens N [--seed S])
                [--logits-out FILE] [--all-logits-out FILE] [--tokens-out FILE]
                [--dtype float64|float32] [--gn-eps EPS] [--no-time-state] [--quiet]
    rwkv_ref.py --inspect MODEL.safetensors
    rwkv_ref.py --selftest SHARED_DIR        (the test-asset dir, RWKVC_SHARED_DIR, or its models/tiny)

Output files are raw little-endian: logits float32 (V, or N x V for --all-logits-out), tokens int32.

As a module:
    import rwkv_ref
    model = rwkv_ref.RWKV(rwkv_ref.load_safetensors(path))      # dtype=np.float64, gn_eps=64e-5
    logits, state = model.forward([34, 105, 110], None)         # state None = initial state
    logits, state = model.forward([10], state)                  # continue (state is not modified in place)
    all_logits, state = model.forward(tokens, None, all_logits=True)   # (T, V)
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np

__all__ = ["load_safetensors", "load_safetensors_metadata", "detect_version", "RWKV"]

LN_EPS = 1e-5
GN_EPS = 64e-5
V4_PP_INIT = -1e30

# --------------------------------------------------------------------------------------------------
# safetensors reader
# --------------------------------------------------------------------------------------------------

_ST_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def _read_header(f):
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError("not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw)
    if n > 100 * 1024 * 1024:
        raise ValueError("safetensors header too large (%d bytes)" % n)
    header = json.loads(f.read(n).decode("utf-8"))
    return 8 + n, header


def load_safetensors_metadata(path):
    with open(path, "rb") as f:
        _, header = _read_header(f)
    return header.get("__metadata__", {}) or {}


def load_safetensors(path):
    """Returns {name: numpy array} (F32/F16/F64 as stored; BF16 widened to float32), in file order."""
    with open(path, "rb") as f:
        base, header = _read_header(f)
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        shape = tuple(info["shape"])
        b, e = info["data_offsets"]
        buf = data[b:e]
        if dt == "BF16":
            u16 = np.frombuffer(buf, dtype="<u2")
            arr = (u16.astype(np.uint32) << 16).view(np.float32)
        elif dt in _ST_DTYPES:
            arr = np.frombuffer(buf, dtype=_ST_DTYPES[dt])
        else:
            raise ValueError("%s: unsupported safetensors dtype %s" % (name, dt))
        expect = int(np.prod(shape)) if shape else 1
        if arr.size != expect:
            raise ValueError("%s: %d elements for shape %s" % (name, arr.size, shape))
        out[name] = arr.reshape(shape).copy()
    return out


# --------------------------------------------------------------------------------------------------
# version detection
# --------------------------------------------------------------------------------------------------


def detect_version(t):
    """'7', '6', '5.2', '5.1', '5.0' or '4' (spec, section Numerics)."""
    if "blocks.0.att.k_k" in t:
        return "7"
    if "blocks.0.att.time_maa_x" in t:
        return "6"
    if "blocks.0.att.ln_x.weight" in t:
        if t["blocks.0.att.time_decay"].ndim >= 2 and np.squeeze(t["blocks.0.att.time_decay"]).ndim == 2:
            return "5.2"
        if "blocks.0.att.gate.weight" in t:
            return "5.1"
        return "5.0"
    return "4"


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _layer_norm(x, w, b, eps=LN_EPS):
    mu = x.mean()
    d = x - mu
    var = (d * d).mean()
    return d / np.sqrt(var + eps) * w + b


def _group_norm(y, w, b, eps):
    # y: (H, N), one group per head; w, b: (H, N)
    mu = y.mean(axis=1, keepdims=True)
    d = y - mu
    var = (d * d).mean(axis=1, keepdims=True)
    return d / np.sqrt(var + eps) * w + b


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _silu(x):
    return x * _sigmoid(x)


# --------------------------------------------------------------------------------------------------
# model
# --------------------------------------------------------------------------------------------------


class RWKV:
    """RNN-mode RWKV-4/5/6/7 in numpy.

    tensors: {name: array} in BlinkDL's PyTorch layout (as load_safetensors returns).
    dtype: computation dtype (np.float64 default, or np.float32); weights are converted to it.
    gn_eps: epsilon of the ln_x group norm (v5/6/7), default 64e-5.
    use_time_state: use blocks.i.att.time_state (if present) as the initial S.
    head_size: override N for v7 (default: from r_k's shape, as the reference package does).
    """

    def __init__(self, tensors, dtype=np.float64, gn_eps=GN_EPS, use_time_state=True, head_size=None):
        t = tensors
        self.dtype = np.dtype(dtype)
        self.gn_eps = float(gn_eps)
        self.version = detect_version(t)
        dt = self.dtype

        def g(name):
            return np.asarray(t[name]).astype(dt)

        def vec(name):
            return g(name).reshape(-1)

        self.V, self.C = t["emb.weight"].shape
        L = 0
        while ("blocks.%d.ln1.weight" % L) in t:
            L += 1
        self.L = L
        C = self.C
        ver = self.version

        # heads
        if ver == "4":
            self.H, self.N = 0, 0
        elif ver == "7":
            rk = t["blocks.0.att.r_k"]
            if head_size:
                self.N = int(head_size)
                self.H = C // self.N
            elif rk.ndim == 2:
                self.H, self.N = rk.shape
            else:
                self.H, self.N = 1, C
        elif ver == "6":
            fa = t["blocks.0.att.time_faaaa"]
            if fa.ndim < 2:
                raise ValueError("v6 time_faaaa must be (H, N)")
            self.H = int(fa.shape[0])
            self.N = C // self.H
        else:  # 5.x
            self.H = int(t["blocks.0.att.time_decay"].shape[0])
            self.N = C // self.H
        if ver != "4" and self.H * self.N != C:
            raise ValueError("H*N != C (%d*%d != %d)" % (self.H, self.N, C))
        H, N = self.H, self.N
        self.F = t["blocks.0.ffn.key.weight"].shape[0]

        # embedding with ln0 folded in (exactly LN of each row)
        emb = g("emb.weight")
        w0, b0 = vec("blocks.0.ln0.weight"), vec("blocks.0.ln0.bias")
        mu = emb.mean(axis=1, keepdims=True)
        d = emb - mu
        var = (d * d).mean(axis=1, keepdims=True)
        self.emb = d / np.sqrt(var + LN_EPS) * w0 + b0
        self.ln_out_w, self.ln_out_b = vec("ln_out.weight"), vec("ln_out.bias")
        self.head = g("head.weight")

        def hn(name):
            """per-head or per-channel parameter -> (H, N)"""
            a = g(name).reshape(-1)
            if a.size == H:
                return np.repeat(a[:, None], N, axis=1)
            return a.reshape(H, N)

        self.layers = []
        self.has_time_state = False
        for i in range(L):
            p = "blocks.%d." % i
            P = {}
            P["ln1_w"], P["ln1_b"] = vec(p + "ln1.weight"), vec(p + "ln1.bias")
            P["ln2_w"], P["ln2_b"] = vec(p + "ln2.weight"), vec(p + "ln2.bias")
            for n in ("receptance", "key", "value", "output"):
                P["att_" + n] = g(p + "att.%s.weight" % n)
            P["ffn_key"] = g(p + "ffn.key.weight")
            P["ffn_value"] = g(p + "ffn.value.weight")
            if ver != "7":
                P["ffn_receptance"] = g(p + "ffn.receptance.weight")
            if ver == "4":
                for n in ("k", "v", "r"):
                    P["att_mix_" + n] = vec(p + "att.time_mix_" + n)
                P["ffn_mix_k"], P["ffn_mix_r"] = vec(p + "ffn.time_mix_k"), vec(p + "ffn.time_mix_r")
                P["w"] = -np.exp(vec(p + "att.time_decay"))
                P["u"] = vec(p + "att.time_first")
            elif ver.startswith("5"):
                for n in ("k", "v", "r"):
                    P["att_mix_" + n] = vec(p + "att.time_mix_" + n)
                P["ffn_mix_k"], P["ffn_mix_r"] = vec(p + "ffn.time_mix_k"), vec(p + "ffn.time_mix_r")
                P["w"] = np.exp(-np.exp(hn(p + "att.time_decay")))
                # the bonus follows its tensor's name
                if (p + "att.time_first") in t:
                    P["u"] = np.exp(hn(p + "att.time_first"))
                else:
                    P["u"] = hn(p + "att.time_faaaa")
                if (p + "att.gate.weight") in t:
                    P["att_mix_g"] = vec(p + "att.time_mix_g")
                    P["att_gate"] = g(p + "att.gate.weight")
                P["lnx_w"] = vec(p + "att.ln_x.weight").reshape(H, N)
                P["lnx_b"] = vec(p + "att.ln_x.bias").reshape(H, N)
            elif ver == "6":
                for n in ("x", "w", "k", "v", "r", "g"):
                    P["maa_" + n] = vec(p + "att.time_maa_" + n)
                P["maa_w1"] = g(p + "att.time_maa_w1")  # (C, 5D)
                P["maa_w2"] = g(p + "att.time_maa_w2")  # (5, D, C)
                P["decay"] = vec(p + "att.time_decay")  # (C)
                P["decay_w1"] = g(p + "att.time_decay_w1")  # (C, D')
                P["decay_w2"] = g(p + "att.time_decay_w2")  # (D', C)
                P["u"] = hn(p + "att.time_faaaa")
                P["att_gate"] = g(p + "att.gate.weight")
                P["lnx_w"] = vec(p + "att.ln_x.weight").reshape(H, N)
                P["lnx_b"] = vec(p + "att.ln_x.bias").reshape(H, N)
                P["ffn_maa_k"], P["ffn_maa_r"] = vec(p + "ffn.time_maa_k"), vec(p + "ffn.time_maa_r")
            else:  # 7
                for n in ("r", "w", "k", "v", "a", "g"):
                    P["x_" + n] = vec(p + "att.x_" + n)
                for n in ("w", "a", "g"):
                    P[n + "1"], P[n + "2"] = g(p + "att.%s1" % n), g(p + "att.%s2" % n)
                P["w0"], P["a0"] = vec(p + "att.w0"), vec(p + "att.a0")
                if i > 0:
                    P["v0"] = vec(p + "att.v0")
                    P["v1"], P["v2"] = g(p + "att.v1"), g(p + "att.v2")
                P["k_k"], P["k_a"] = vec(p + "att.k_k"), vec(p + "att.k_a")
                P["r_k"] = vec(p + "att.r_k").reshape(H, N)
                P["lnx_w"] = vec(p + "att.ln_x.weight").reshape(H, N)
                P["lnx_b"] = vec(p + "att.ln_x.bias").reshape(H, N)
                P["ffn_x_k"] = vec(p + "ffn.x_k")
            ts = p + "att.time_state"
            if ver != "4" and use_time_state and ts in t:
                s0 = g(ts).reshape(H, N, N)
                if ver != "7":
                    # stored [head][value i][key j]; our v5/v6 S is [head][key j][value i]
                    s0 = np.ascontiguousarray(s0.transpose(0, 2, 1))
                P["S0"] = s0
                self.has_time_state = True
            self.layers.append(P)

    # ----------------------------------------------------------------------------------------------

    def initial_state(self):
        """Per layer: v4 dict(sa, aa, bb, pp, sf); v5/6/7 dict(sa, S, sf).
        S is (H, N, N): [h][key j][value i] for v5/v6, [h][value i][key j] for v7."""
        C, H, N, dt = self.C, self.H, self.N, self.dtype
        st = []
        for P in self.layers:
            if self.version == "4":
                st.append(dict(sa=np.zeros(C, dt), aa=np.zeros(C, dt), bb=np.zeros(C, dt),
                               pp=np.full(C, V4_PP_INIT, dt), sf=np.zeros(C, dt)))
            else:
                S = P["S0"].copy() if "S0" in P else np.zeros((H, N, N), dt)
                st.append(dict(sa=np.zeros(C, dt), S=S, sf=np.zeros(C, dt)))
        return st

    @staticmethod
    def copy_state(state):
        return [{k: v.copy() for k, v in s.items()} for s in state]

    # ---- RWKV-4 ----------------------------------------------------------------------------------

    def _tm_v4(self, P, s, xa):
        sa = s["sa"]
        xk = xa * P["att_mix_k"] + sa * (1 - P["att_mix_k"])
        xv = xa * P["att_mix_v"] + sa * (1 - P["att_mix_v"])
        xr = xa * P["att_mix_r"] + sa * (1 - P["att_mix_r"])
        s["sa"] = xa
        r = _sigmoid(P["att_receptance"] @ xr)
        k = P["att_key"] @ xk
        v = P["att_value"] @ xv
        u, w = P["u"], P["w"]
        aa, bb, pp = s["aa"], s["bb"], s["pp"]
        q = np.maximum(pp, u + k)
        e1 = np.exp(pp - q)
        e2 = np.exp(u + k - q)
        wkv = (e1 * aa + e2 * v) / (e1 * bb + e2)
        q2 = np.maximum(pp + w, k)
        e1 = np.exp(pp + w - q2)
        e2 = np.exp(k - q2)
        s["aa"] = e1 * aa + e2 * v
        s["bb"] = e1 * bb + e2
        s["pp"] = q2
        return P["att_output"] @ (r * wkv)

    def _cm_v4(self, P, s, xf):
        sf = s["sf"]
        xk = xf * P["ffn_mix_k"] + sf * (1 - P["ffn_mix_k"])
        xr = xf * P["ffn_mix_r"] + sf * (1 - P["ffn_mix_r"])
        s["sf"] = xf
        kk = np.maximum(P["ffn_key"] @ xk, 0)
        return _sigmoid(P["ffn_receptance"] @ xr) * (P["ffn_value"] @ (kk * kk))

    # ---- RWKV-5 / 6 head recurrence (S[h][j][i]) --------------------------------------------------

    def _wkv56(self, s, r, k, v, w, u):
        H, N = self.H, self.N
        r, k, v = r.reshape(H, N), k.reshape(H, N), v.reshape(H, N)
        kv = k[:, :, None] * v[:, None, :]  # [h][j][i]
        S = s["S"]
        y = np.einsum("hj,hji->hi", r, u[:, :, None] * kv + S)
        s["S"] = kv + w[:, :, None] * S
        return y

    def _tm_v5(self, P, s, xa):
        sa = s["sa"]
        xk = xa * P["att_mix_k"] + sa * (1 - P["att_mix_k"])
        xv = xa * P["att_mix_v"] + sa * (1 - P["att_mix_v"])
        xr = xa * P["att_mix_r"] + sa * (1 - P["att_mix_r"])
        gated = "att_gate" in P
        if gated:
            xg = xa * P["att_mix_g"] + sa * (1 - P["att_mix_g"])
        s["sa"] = xa
        r = P["att_receptance"] @ xr
        k = P["att_key"] @ xk
        v = P["att_value"] @ xv
        y = self._wkv56(s, r, k, v, P["w"], P["u"])
        y = _group_norm(y, P["lnx_w"], P["lnx_b"], self.gn_eps).reshape(-1)
        if gated:
            y = y * _silu(P["att_gate"] @ xg)
        return P["att_output"] @ y

    def _tm_v6(self, P, s, xa):
        sx = s["sa"] - xa
        s["sa"] = xa
        xxx = xa + sx * P["maa_x"]
        m = np.tanh(xxx @ P["maa_w1"]).reshape(5, -1)  # (5, D)
        m = np.einsum("fd,fdc->fc", m, P["maa_w2"])  # (5, C): w, k, v, r, g
        xw = xa + sx * (P["maa_w"] + m[0])
        xk = xa + sx * (P["maa_k"] + m[1])
        xv = xa + sx * (P["maa_v"] + m[2])
        xr = xa + sx * (P["maa_r"] + m[3])
        xg = xa + sx * (P["maa_g"] + m[4])
        d = P["decay"] + np.tanh(xw @ P["decay_w1"]) @ P["decay_w2"]
        w = np.exp(-np.exp(d)).reshape(self.H, self.N)
        r = P["att_receptance"] @ xr
        k = P["att_key"] @ xk
        v = P["att_value"] @ xv
        y = self._wkv56(s, r, k, v, w, P["u"])
        y = _group_norm(y, P["lnx_w"], P["lnx_b"], self.gn_eps).reshape(-1)
        y = y * _silu(P["att_gate"] @ xg)
        return P["att_output"] @ y

    def _cm_v6(self, P, s, xf):
        sx = s["sf"] - xf
        s["sf"] = xf
        xk = xf + sx * P["ffn_maa_k"]
        xr = xf + sx * P["ffn_maa_r"]
        kk = np.maximum(P["ffn_key"] @ xk, 0)
        return _sigmoid(P["ffn_receptance"] @ xr) * (P["ffn_value"] @ (kk * kk))

    # ---- RWKV-7 (S[h][i][j]) ---------------------------------------------------------------------

    def _tm_v7(self, P, s, xa, layer, vf):
        H, N = self.H, self.N
        sx = s["sa"] - xa
        s["sa"] = xa
        xr = xa + sx * P["x_r"]
        xw = xa + sx * P["x_w"]
        xk = xa + sx * P["x_k"]
        xv = xa + sx * P["x_v"]
        xa_ = xa + sx * P["x_a"]
        xg = xa + sx * P["x_g"]
        r = P["att_receptance"] @ xr
        k = P["att_key"] @ xk
        v = P["att_value"] @ xv
        z = P["w0"] + np.tanh(xw @ P["w1"]) @ P["w2"]
        w = np.exp(-np.exp(-0.5) * _sigmoid(z))
        if layer == 0:
            vf[0] = v
        else:
            v = v + (vf[0] - v) * _sigmoid(P["v0"] + (xv @ P["v1"]) @ P["v2"])
        a = _sigmoid(P["a0"] + (xa_ @ P["a1"]) @ P["a2"])
        gg = _sigmoid(xg @ P["g1"]) @ P["g2"]
        kk = (k * P["k_k"]).reshape(H, N)
        kk = kk / np.maximum(np.sqrt((kk * kk).sum(axis=1, keepdims=True)), 1e-12)
        k = k * (1 + (a - 1) * P["k_a"])
        rh, kh, vh = r.reshape(H, N), k.reshape(H, N), v.reshape(H, N)
        wh, ah = w.reshape(H, N), a.reshape(H, N)
        S = s["S"]  # [h][i][j]
        sa_ = np.einsum("hil,hl->hi", S, -kk)  # (H, N_i)
        S = S * wh[:, None, :] + sa_[:, :, None] * (kk * ah)[:, None, :] + vh[:, :, None] * kh[:, None, :]
        s["S"] = S
        y = np.einsum("hij,hj->hi", S, rh)
        y = _group_norm(y, P["lnx_w"], P["lnx_b"], self.gn_eps)
        y = y + (rh * kh * P["r_k"]).sum(axis=1, keepdims=True) * vh
        return P["att_output"] @ (y.reshape(-1) * gg)

    def _cm_v7(self, P, s, xf):
        xk = xf + (s["sf"] - xf) * P["ffn_x_k"]
        s["sf"] = xf
        kk = np.maximum(P["ffn_key"] @ xk, 0)
        return P["ffn_value"] @ (kk * kk)

    # ---- driver ----------------------------------------------------------------------------------

    def forward_token(self, token, state):
        """One token; updates state in place; returns logits (V,)."""
        ver = self.version
        x = self.emb[int(token)].copy()
        vf = [None]
        for i, P in enumerate(self.layers):
            s = state[i]
            xa = _layer_norm(x, P["ln1_w"], P["ln1_b"])
            if ver == "4":
                x = x + self._tm_v4(P, s, xa)
            elif ver == "6":
                x = x + self._tm_v6(P, s, xa)
            elif ver == "7":
                x = x + self._tm_v7(P, s, xa, i, vf)
            else:
                x = x + self._tm_v5(P, s, xa)
            xf = _layer_norm(x, P["ln2_w"], P["ln2_b"])
            if ver == "6":
                x = x + self._cm_v6(P, s, xf)
            elif ver == "7":
                x = x + self._cm_v7(P, s, xf)
            else:
                x = x + self._cm_v4(P, s, xf)
        return self.head @ _layer_norm(x, self.ln_out_w, self.ln_out_b)

    def forward(self, tokens, state=None, all_logits=False):
        """Feeds tokens one at a time. Returns (logits after the last token (V,) -- or (T, V) with
        all_logits=True -- , new state). The state passed in is not modified."""
        state = self.initial_state() if state is None else self.copy_state(state)
        outs = []
        logits = None
        for tok in tokens:
            logits = self.forward_token(tok, state)
            if all_logits:
                outs.append(logits)
        if all_logits:
            return (np.stack(outs) if outs else np.zeros((0, self.V), self.dtype)), state
        return logits, state

    def describe(self):
        s = "RWKV-%s  C=%d L=%d V=%d F=%d" % (self.version, self.C, self.L, self.V, self.F)
        if self.version != "4":
            s += "  H=%d N=%d  gn_eps=%g" % (self.H, self.N, self.gn_eps)
        if self.has_time_state:
            s += "  time_state=" + ("[value i][key j] as stored (v7)" if self.version == "7"
                                    else "[head][value i][key j] transposed to S[j][i]")
        s += "  dtype=%s" % self.dtype.name
        return s


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

TINY_MODELS = ["4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "7v0-834K"]
SELFTEST_TOKENS = [34, 105, 110]


def selftest(shared_dir, dtype, tol=1e-5):
    d = shared_dir
    for cand in (os.path.join(shared_dir, "models", "tiny"), os.path.join(shared_dir, "tiny")):
        if os.path.isdir(cand):
            d = cand
            break
    ok = True
    for m in TINY_MODELS:
        mp = os.path.join(d, "tiny-rwkv-%s.safetensors" % m)
        rp = os.path.join(d, "reference-logits-%s.bin" % m)
        t0 = time.time()
        model = RWKV(load_safetensors(mp), dtype=dtype)
        logits, _ = model.forward(SELFTEST_TOKENS)
        ref = np.fromfile(rp, dtype="<f4").astype(np.float64)
        diff = float(np.max(np.abs(logits.astype(np.float64) - ref)))
        am, am_ref = int(np.argmax(logits)), int(np.argmax(ref))
        good = diff < tol and am == am_ref and np.all(np.isfinite(logits))
        ok &= good
        print("%-9s v%-4s max|diff| %.3e  argmax %3d (ref %3d)  %s  (%.2fs)"
              % (m, model.version, diff, am, am_ref, "OK" if good else "FAIL", time.time() - t0))
    print("selftest %s (tolerance %g, dtype %s)" % ("PASSED" if ok else "FAILED", tol, np.dtype(dtype).name))
    return ok


def parse_tokens(s):
    return [int(x) for x in s.replace(" ", "").split(",") if x != ""]


def main(argv=None):
    ap = argparse.ArgumentParser(description="rwkvc numpy reference implementation of RWKV-4/5/6/7")
    ap.add_argument("model", nargs="?", help="MODEL.safetensors")
    ap.add_argument("--tokens", help="comma-separated token ids, e.g. 34,105,110")
    ap.add_argument("--random-tokens", type=int, metavar="N", help="feed N tokens from default_rng(seed).integers(0, V)")
    ap.add_argument("--seed", type=int, default=0, help="seed for --random-tokens (default 0)")
    ap.add_argument("--logits-out", metavar="FILE", help="logits after the last token, V float32 LE")
    ap.add_argument("--all-logits-out", metavar="FILE", help="logits after every token, N x V float32 LE")
    ap.add_argument("--tokens-out", metavar="FILE", help="the token ids used, int32 LE")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--gn-eps", type=float, default=GN_EPS, help="ln_x group-norm eps (default 64e-5)")
    ap.add_argument("--head-size", type=int, default=None, help="override v7 head size (default from r_k)")
    ap.add_argument("--no-time-state", action="store_true", help="ignore blocks.i.att.time_state")
    ap.add_argument("--inspect", action="store_true", help="print the detected configuration and exit")
    ap.add_argument("--selftest", metavar="SHARED_DIR", help="check the five tiny models against reference-logits-*.bin")
    ap.add_argument("--tol", type=float, default=1e-5, help="selftest tolerance (default 1e-5)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    dtype = np.float64 if a.dtype == "float64" else np.float32

    if a.selftest:
        return 0 if selftest(a.selftest, dtype, a.tol) else 1
    if not a.model:
        ap.error("MODEL.safetensors required")

    tensors = load_safetensors(a.model)
    model = RWKV(tensors, dtype=dtype, gn_eps=a.gn_eps, use_time_state=not a.no_time_state,
                 head_size=a.head_size)
    if a.inspect or not a.quiet:
        print(model.describe())
        meta = load_safetensors_metadata(a.model)
        if meta and a.inspect:
            print("metadata:", json.dumps(meta))
    if a.inspect:
        return 0

    if a.tokens is not None:
        tokens = parse_tokens(a.tokens)
    elif a.random_tokens is not None:
        tokens = [int(x) for x in np.random.default_rng(a.seed).integers(0, model.V, size=a.random_tokens)]
    else:
        ap.error("--tokens or --random-tokens required")
    if not tokens:
        ap.error("no tokens")
    for tk in tokens:
        if not 0 <= tk < model.V:
            ap.error("token %d out of range [0, %d)" % (tk, model.V))

    t0 = time.time()
    need_all = a.all_logits_out is not None
    out, _ = model.forward(tokens, None, all_logits=need_all)
    dt_s = time.time() - t0
    last = out[-1] if need_all else out

    if a.tokens_out:
        np.asarray(tokens, dtype="<i4").tofile(a.tokens_out)
    if a.logits_out:
        last.astype("<f4").tofile(a.logits_out)
    if need_all:
        out.astype("<f4").tofile(a.all_logits_out)

    finite = bool(np.all(np.isfinite(out)))
    if not a.quiet:
        print("%d tokens in %.2fs (%.2f ms/token)" % (len(tokens), dt_s, 1e3 * dt_s / len(tokens)))
        print("argmax %d  max %.6f  min %.6f  finite %s" % (int(np.argmax(last)), float(np.max(last)),
                                                          float(np.min(last)), finite))
        print("logits[:8] " + " ".join("%.6f" % x for x in last[:8]))
    return 0 if finite else 2


if __name__ == "__main__":
    sys.exit(main())
