"""rwkvc.utils.PIPELINE and PIPELINE_ARGS: the `rwkv` package's text pipeline
over a compiled model, with the runtime's tokenizer and sampler, so that a
seeded generation gives the text the compiled executable gives.

    from rwkvc.utils import PIPELINE, PIPELINE_ARGS   # was: from rwkv.utils
    pipeline = PIPELINE(model, "rwkv_vocab_v20230424")
    pipeline.generate("The ", token_count=100, args=PIPELINE_ARGS(seed=1),
                      callback=lambda s: print(s, end="", flush=True))
"""

import ctypes
import json
import os
import random

import numpy as np

from . import _lib
from .errors import RwkvcError, RwkvcArgumentError


class PIPELINE_ARGS:
    """The package's generation arguments and defaults; `seed` (rwkvc's
    addition) seeds the sampler's PRNG as the executable's --seed does (None:
    drawn from the pipeline's random generator)."""

    def __init__(self, temperature=1.0, top_p=0.85, top_k=0,
                 alpha_frequency=0.2, alpha_presence=0.2, alpha_decay=0.996,
                 token_ban=[], token_stop=[], chunk_len=256, seed=None):
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.alpha_frequency = alpha_frequency  # frequency penalty
        self.alpha_presence = alpha_presence  # presence penalty
        self.alpha_decay = alpha_decay  # the penalties decay by this per token
        self.token_ban = token_ban  # never sampled
        self.token_stop = token_stop  # generation ends when one is sampled
        self.chunk_len = chunk_len  # the context is fed in chunks this long
        self.seed = seed


class Sampler:
    """rwkv_sampler (runtime/rwkv_sampler.cpp): ChatRWKV's sample_logits with
    the presence/frequency penalties and their decay, xoshiro256** seeded."""

    def __init__(self, lib, n_vocab, temperature=1.0, top_p=0.85, top_k=0,
                 presence=0.0, frequency=0.0, decay=1.0, seed=0):
        self.lib = lib
        p = _lib.SamplerParams()
        lib.sampler_params_default(ctypes.byref(p))
        # The package's top_p <= 0 keeps only the most likely token(s), as the
        # smallest positive top_p does; above 1 it keeps everything.
        top_k = int(top_k)
        p.temperature = float(temperature)
        p.top_p = min(1.0, max(float(top_p), 1e-30))
        p.top_k = 0 if top_k >= n_vocab else top_k
        p.presence_penalty = float(presence)
        p.frequency_penalty = float(frequency)
        p.penalty_decay = float(decay)
        p.seed = int(seed) & (2**64 - 1)
        err = ctypes.create_string_buffer(_lib.ERRLEN)
        self.handle = lib.sampler_create(n_vocab, ctypes.byref(p), err,
                                         _lib.ERRLEN)
        if not self.handle:
            raise RwkvcArgumentError(err.value.decode("utf-8", "replace"), 1)
        self.n_vocab = n_vocab

    def __del__(self):
        if getattr(self, "handle", None):
            self.lib.sampler_free(self.handle)
            self.handle = None

    def ban(self, token):
        self.lib.sampler_ban(self.handle, int(token))

    def sample(self, logits):
        """Samples from float32 `logits` (n_vocab, contiguous; changed in
        place: bans and penalties)."""
        t = self.lib.sampler_sample(self.handle, _lib.address(logits))
        if t < 0:
            raise RwkvcError("every logit is -inf or NaN: nothing to sample", 1)
        return t

    def accept(self, token, weight):
        self.lib.sampler_accept(self.handle, int(token), float(weight))


class Tokenizer:
    """The tokenizer compiled into a model library (rwkv_tokenize and
    rwkv_detokenize of the runtime)."""

    def __init__(self, lib):
        if not lib.tokenizer:
            raise RwkvcError(lib.tokenizer_error, 6)
        self.lib = lib
        self.handle = lib.tokenizer
        self.kind = lib.tokenizer_kind(self.handle).decode()
        self.n_tokens = int(lib.tokenizer_n_tokens(self.handle))
        self.eos = int(lib.tokenizer_eos(self.handle))
        self._bytes = {}

    def encode_bytes(self, data):
        cap = len(data) + 16
        n = ctypes.c_size_t()
        err = ctypes.create_string_buffer(_lib.ERRLEN)  # one per call: threads
        while True:
            ids = np.empty(cap, np.int32)
            _lib.check(self.lib.tokenize(self.handle, data, len(data),
                                         _lib.address(ids), cap,
                                         ctypes.byref(n), err, _lib.ERRLEN),
                       err)
            if n.value <= cap:
                return ids[:n.value].tolist()
            cap = n.value

    def decode_bytes(self, ids):
        ids = np.ascontiguousarray(ids, np.int32).reshape(-1)
        n = ctypes.c_size_t()
        cap = 16 * ids.size + 16
        err = ctypes.create_string_buffer(_lib.ERRLEN)
        while True:
            out = ctypes.create_string_buffer(cap)
            _lib.check(self.lib.detokenize(self.handle, _lib.address(ids),
                                           ids.size, out, cap,
                                           ctypes.byref(n), err, _lib.ERRLEN),
                       err)
            if n.value <= cap:
                return out.raw[:n.value]
            cap = n.value

    def token_bytes(self, token):
        b = self._bytes.get(token)
        if b is None:
            p = ctypes.c_void_p()
            n = self.lib.token_bytes(self.handle, int(token), ctypes.byref(p))
            b = ctypes.string_at(p.value, n) if n else b""
            self._bytes[token] = b
        return b


_WORLD_NAME = "rwkv_vocab_v20230424"
_KIND_SPEC = {"bytes": "bytes", "world": "world", "bpe": "20b"}


def _file_tokens(path):
    """Token count (max id + 1) of a World .txt or a tokenizer .json."""
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            j = json.load(f)
        ids = list(j.get("model", {}).get("vocab", {}).values())
        ids += [t["id"] for t in j.get("added_tokens", [])]
        return max(ids) + 1
    with open(path, encoding="utf-8") as f:
        return max(int(line.split(" ", 1)[0]) for line in f if line.strip()) + 1


def _expected_tokenizer(vocab):
    """(kind, n_tokens or None) that the package's WORD_NAME means."""
    if vocab == "bytes":
        return "bytes", 256
    name = os.path.basename(vocab)
    if name in (_WORLD_NAME, _WORLD_NAME + ".txt"):
        return "world", 65530
    if vocab.endswith(".json") or vocab.endswith(".txt"):
        if not os.path.exists(vocab):
            raise FileNotFoundError(2, "no such tokenizer file", vocab)
        return ("bpe" if vocab.endswith(".json") else "world",
                _file_tokens(vocab))
    raise ValueError(
        f"unknown vocabulary '{vocab}': expected 'rwkv_vocab_v20230424', a "
        "20B_tokenizer.json (or other byte-level BPE .json), a World .txt, "
        "or 'bytes'")


class PIPELINE:
    """The package's PIPELINE over a compiled model.

    WORD_NAME: None (default) takes the tokenizer compiled into the model;
    "rwkv_vocab_v20230424", a 20B_tokenizer.json path, a World .txt or
    "bytes" must be the one compiled in (rwkvc links one tokenizer into a
    model, --tokenizer): a different one is refused with how to compile it.
    seed: seeds the pipeline's random generator (sample_logits, and
    generate when args.seed is None).
    """

    def __init__(self, model, WORD_NAME=None, seed=None):
        self.model = model
        self.lib = model.lib
        self.tokenizer = Tokenizer(self.lib)
        if WORD_NAME is not None:
            kind, n = _expected_tokenizer(os.fspath(WORD_NAME))
            t = self.tokenizer
            if kind != t.kind or (n is not None and n != t.n_tokens):
                spec = WORD_NAME if kind != "bytes" and os.path.exists(
                    WORD_NAME) else {"world": "world", "bpe": "20b",
                                     "bytes": "bytes"}[kind]
                raise RwkvcError(
                    f"the model's tokenizer is {t.kind} ({t.n_tokens} "
                    f"tokens), not '{WORD_NAME}' ({kind}, {n} tokens): a "
                    f"compiled model carries one tokenizer; compile it with "
                    f"--tokenizer={spec} (rwkvc.compile(..., tokenizer="
                    f"'{spec}'), or RWKV(checkpoint, tokenizer='{spec}'))", 6)
        self._rng = random.Random(seed)
        self._samplers = {}

    # -- text -----------------------------------------------------------------

    def refine_context(self, context):
        context = context.strip().split("\n")
        for c in range(len(context)):
            context[c] = context[c].strip().strip("\u3000").strip("\r")
        context = list(filter(lambda c: c != "", context))
        context = "\n" + ("\n".join(context)).strip()
        if context == "":
            context = "\n"
        return context

    def encode(self, x):
        """Token ids (a list) of the text `x` (str, or bytes)."""
        data = x if isinstance(x, (bytes, bytearray)) else x.encode("utf-8")
        return self.tokenizer.encode_bytes(bytes(data))

    def decode(self, x):
        """The text of token ids `x`; bytes that are not valid UTF-8 (a
        character split across tokens) become U+FFFD, as in the package."""
        return self.tokenizer.decode_bytes(x).decode("utf-8", "replace")

    # -- sampling -------------------------------------------------------------

    def sample_logits(self, logits, temperature=1.0, top_p=0.85, top_k=0):
        """A token id drawn from `logits` (numpy array, rwkvc logits or a
        torch tensor; not modified) as the package's sample_logits does,
        with the runtime's sampler and this pipeline's random generator."""
        a = np.array(logits, np.float32).reshape(-1)  # a copy: it is changed
        key = (a.size, float(temperature), float(top_p), int(top_k))
        s = self._samplers.get(key)
        if s is None:
            s = Sampler(self.lib, a.size, temperature, top_p, top_k,
                        seed=self._rng.getrandbits(64))
            self._samplers[key] = s
        return s.sample(a)

    def _occurrence_weight(self, token):
        # The package: 0 for tokens whose text is in " \t0123456789", else 1.
        b = self.tokenizer.token_bytes(token)
        return 0.0 if b in b" \t0123456789" else 1.0

    def generate(self, ctx, token_count=100, args=PIPELINE_ARGS(),
                 callback=None, state=None):
        """The package's generate: feeds `ctx` in chunks of args.chunk_len
        (from `state`, updated in place, or a fresh state), then samples up to
        token_count tokens with the penalties, bans and stops of `args`,
        feeding each before the next is sampled; calls callback(text) with
        the new text whenever it is whole UTF-8; returns the text."""
        n_vocab = self.model.n_vocab
        seed = args.seed if args.seed is not None else self._rng.getrandbits(64)
        sampler = Sampler(self.lib, n_vocab, args.temperature, args.top_p,
                          args.top_k, args.alpha_presence,
                          args.alpha_frequency, args.alpha_decay, seed)
        for t in args.token_ban:
            sampler.ban(t)
        # Ids past the tokenizer (padding logits) are never sampled, as in
        # the executable.
        for t in range(self.tokenizer.n_tokens, n_vocab):
            sampler.ban(t)
        chunk = max(1, int(args.chunk_len))
        all_tokens = []
        out_last = 0
        out_str = ""
        token = None
        for i in range(token_count):
            tokens = self.encode(ctx) if i == 0 else [token]
            if not tokens:
                raise ValueError("generate: the context has no tokens")
            while tokens:
                out, state = self.model.forward(tokens[:chunk], state)
                tokens = tokens[chunk:]
            token = sampler.sample(np.asarray(out))
            if token in args.token_stop:
                break
            all_tokens.append(token)
            sampler.accept(token, self._occurrence_weight(token))
            tmp = self.decode(all_tokens[out_last:])
            if "\ufffd" not in tmp:  # whole UTF-8 characters
                if callback:
                    callback(tmp)
                out_str += tmp
                out_last = i + 1
        return out_str
