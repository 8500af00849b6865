"""ctypes bindings of a compiled model's C API (runtime/rwkv_runtime.h).

A library built by `rwkvc MODEL -emit=shared-lib -o libNAME.so` exports the
runtime's C API over the one model linked into it. `Library` loads it
(RTLD_LOCAL, so several models, each with its own copy of the runtime, live in
one process), declares every signature, opens the model and its linked
tokenizer, and turns the runtime's status codes and one-line messages into
Python exceptions.

`_StateHandle` is the one place that knows how a state is stored (a runtime
state handle): everything above it (rwkvc.model.State, RWKV.forward) calls
its methods only.
"""

import ctypes
import os

import numpy as np

from .errors import (RwkvcError, RwkvcArgumentError, RwkvcMismatchError,
                     RwkvcMemoryError, RWKV_ERROR_ARGUMENT, RWKV_ERROR_MISMATCH,
                     RWKV_ERROR_MEMORY)

RWKV_EVAL_RNN = 0
RWKV_EVAL_SEQ = 1

_c_size = ctypes.c_size_t
_vp = ctypes.c_void_p
_cp = ctypes.c_char_p
_i32 = ctypes.c_int32
_f32p = ctypes.POINTER(ctypes.c_float)

ERRLEN = 1024


class _Slot(ctypes.Structure):
    _fields_ = [("name", _cp), ("offset", ctypes.c_int64),
                ("size", ctypes.c_int64), ("init", ctypes.c_int32),
                ("init_weight_offset", ctypes.c_int64)]


class _Desc(ctypes.Structure):  # rwkv_abi.h rwkv_model_desc, ABI version 4
    _fields_ = [("abi_version", ctypes.c_uint32),
                ("backends", ctypes.c_uint32),
                ("rwkv_version", _cp), ("model_name", _cp),
                ("n_vocab", ctypes.c_int64), ("n_embd", ctypes.c_int64),
                ("n_layer", ctypes.c_int64), ("state_floats", ctypes.c_int64),
                ("weights_bytes", ctypes.c_int64),
                ("model_hash", ctypes.c_uint64),
                ("weights_embedded", ctypes.c_int32), ("weights_file", _cp),
                ("n_slots", ctypes.c_int64),
                ("slots", ctypes.POINTER(_Slot)),
                ("cuda", _vp),  # rwkv_cuda_program *: read by the runtime
                ("entries", ctypes.c_uint32)]  # bits of enum rwkv_entry


class SamplerParams(ctypes.Structure):  # rwkv_sampler_params
    _fields_ = [("temperature", ctypes.c_float), ("top_p", ctypes.c_float),
                ("top_k", ctypes.c_int32),
                ("presence_penalty", ctypes.c_float),
                ("frequency_penalty", ctypes.c_float),
                ("penalty_decay", ctypes.c_float),
                ("seed", ctypes.c_uint64)]


# name: (restype, argtypes); `err, errlen` are the last two of those that fail.
_SIGNATURES = {
    "rwkv_model_open": (_vp, [_cp, _c_size]),
    "rwkv_model_open_device": (_vp, [ctypes.c_int, _cp, _c_size]),
    "rwkv_device_from_name": (ctypes.c_int, [_cp]),
    "rwkv_model_device_info": (_cp, [_vp]),
    "rwkv_model_backend": (ctypes.c_uint32, [_vp]),
    "rwkv_model_close": (None, [_vp]),
    "rwkv_model_get_desc": (ctypes.POINTER(_Desc), [_vp]),
    "rwkv_n_vocab": (_c_size, [_vp]),
    "rwkv_state_new": (_vp, [_vp, _cp, _c_size]),
    "rwkv_state_free": (None, [_vp]),
    "rwkv_state_clear": (None, [_vp]),
    "rwkv_state_clone": (_vp, [_vp, _cp, _c_size]),
    "rwkv_state_assign": (ctypes.c_int, [_vp, _vp, _cp, _c_size]),
    "rwkv_state_read": (ctypes.c_int, [_vp, _vp, _cp, _c_size]),
    "rwkv_state_write": (ctypes.c_int, [_vp, _vp, _cp, _c_size]),
    "rwkv_state_save_file": (ctypes.c_int, [_vp, _cp, _cp, _c_size]),
    "rwkv_state_load_file": (ctypes.c_int, [_vp, _cp, _cp, _c_size]),
    "rwkv_state_eval": (ctypes.c_int, [_vp, _vp, _c_size, _vp, ctypes.c_int,
                                       _c_size, _cp, _c_size]),
    "rwkv_state_eval_all": (ctypes.c_int, [_vp, _vp, _c_size, _vp, _c_size,
                                           _cp, _c_size]),
    "rwkv_tokenizer_open_linked": (_vp, [_c_size, _cp, _c_size]),
    "rwkv_tokenizer_close": (None, [_vp]),
    "rwkv_tokenizer_kind": (_cp, [_vp]),
    "rwkv_tokenizer_n_tokens": (_c_size, [_vp]),
    "rwkv_tokenizer_eos": (_i32, [_vp]),
    "rwkv_tokenize": (ctypes.c_int, [_vp, _cp, _c_size, _vp, _c_size,
                                     ctypes.POINTER(_c_size), _cp, _c_size]),
    "rwkv_detokenize": (ctypes.c_int, [_vp, _vp, _c_size, _vp, _c_size,
                                       ctypes.POINTER(_c_size), _cp, _c_size]),
    "rwkv_token_bytes": (_c_size, [_vp, _i32,
                                   ctypes.POINTER(ctypes.c_void_p)]),
    "rwkv_sampler_params_default": (None, [ctypes.POINTER(SamplerParams)]),
    "rwkv_sampler_create": (_vp, [_c_size, ctypes.POINTER(SamplerParams),
                                  _cp, _c_size]),
    "rwkv_sampler_free": (None, [_vp]),
    "rwkv_sampler_reset": (None, [_vp, ctypes.c_uint64]),
    "rwkv_sampler_ban": (None, [_vp, _i32]),
    "rwkv_sampler_sample": (_i32, [_vp, _vp]),
    "rwkv_sampler_accept": (None, [_vp, _i32, ctypes.c_float]),
}


def check(status, err):
    """Raises the exception of a runtime status with its message."""
    if status == 0:
        return
    raise error_for(status, err.value.decode("utf-8", "replace"))


def error_for(status, message):
    if status == RWKV_ERROR_ARGUMENT:
        return RwkvcArgumentError(message, status)
    if status == RWKV_ERROR_MISMATCH:
        return RwkvcMismatchError(message, status)
    if status == RWKV_ERROR_MEMORY:
        return RwkvcMemoryError(message, status)
    return RwkvcError(message, status)


def address(array):
    """The address of a numpy array's data."""
    return array.ctypes.data


class Library:
    """One compiled model: the loaded shared library, the open model handle,
    its descriptor and (if one is linked) its tokenizer handle. device:
    "auto", "cpu" or "cuda" (rwkv_model_open_device; default $RWKV_DEVICE,
    else "auto": CUDA when the model has CUDA kernels and a GPU is usable)."""

    def __init__(self, path, device=None):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(
                2, "no compiled model library at this path", path)
        try:
            self.dll = ctypes.CDLL(os.path.abspath(path),
                                   mode=ctypes.RTLD_LOCAL)
        except OSError as e:
            raise RwkvcError(f"cannot load the model library '{path}': {e}",
                             0) from None
        self.path = path
        for name, (restype, argtypes) in _SIGNATURES.items():
            try:
                fn = getattr(self.dll, name)
            except AttributeError:
                raise RwkvcError(
                    f"'{path}' is not a model library of this rwkvc: it does "
                    f"not export {name} (rebuild it with rwkvc -emit=shared-lib)",
                    0) from None
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name[5:], fn)  # self.eval, self.state_size, ...
        err = ctypes.create_string_buffer(ERRLEN)
        if device is None:
            device = os.environ.get("RWKV_DEVICE") or "auto"
        code = self.device_from_name(device.encode())
        if code < 0:
            raise ValueError(f"device '{device}': expected auto, cpu or cuda")
        self.handle = self.model_open_device(code, err, ERRLEN)
        if not self.handle:
            raise RwkvcError(err.value.decode("utf-8", "replace"), 5)
        # What runs it: "cpu", or "cuda: NAME, compute capability ...".
        self.device = self.model_device_info(self.handle).decode(
            "utf-8", "replace")
        d = self.model_get_desc(self.handle).contents
        self.rwkv_version = d.rwkv_version.decode()
        self.model_name = d.model_name.decode()
        self.n_vocab = int(d.n_vocab)
        self.n_embd = int(d.n_embd)
        self.n_layer = int(d.n_layer)
        self.model_hash = int(d.model_hash)
        self.state_floats = int(d.state_floats)
        self.tokenizer = self.tokenizer_open_linked(self.n_vocab, err, ERRLEN)
        self.tokenizer_error = (None if self.tokenizer else
                                err.value.decode("utf-8", "replace"))

    def close(self):
        if getattr(self, "tokenizer", None):
            self.tokenizer_close(self.tokenizer)
            self.tokenizer = None
        if getattr(self, "handle", None):
            self.model_close(self.handle)
            self.handle = None

    def __del__(self):
        self.close()

    def describe(self):
        return (f"model hash 0x{self.model_hash:016x} "
                f"('{self.model_name}' in {self.path})")

    def new_state(self):
        return _StateHandle(self)


class _StateHandle:
    """A state handle of the runtime (rwkv_state_new): the state where the
    model's backend keeps it; its host layout (docs/state-format.md) is what
    read/write copy."""

    __slots__ = ("lib", "h", "err")

    def __init__(self, lib, handle=None):
        self.lib = lib
        self.err = ctypes.create_string_buffer(ERRLEN)
        self.h = handle or lib.state_new(lib.handle, self.err, ERRLEN)
        if not self.h:
            raise RwkvcError(self.err.value.decode("utf-8", "replace"), 0)

    def __del__(self):
        h, self.h = getattr(self, "h", None), None
        if h:
            self.lib.state_free(h)

    def reset(self):
        self.lib.state_clear(self.h)

    def clone(self):
        h = self.lib.state_clone(self.h, self.err, ERRLEN)
        if not h:
            raise RwkvcError(self.err.value.decode("utf-8", "replace"), 0)
        return _StateHandle(self.lib, h)

    def assign(self, other):
        check(self.lib.state_assign(self.h, other.h, self.err, ERRLEN),
              self.err)

    def read(self):
        host = np.empty(self.lib.state_floats, np.float32)
        check(self.lib.state_read(self.h, address(host), self.err, ERRLEN),
              self.err)
        return host

    def write(self, host):
        check(self.lib.state_write(self.h, address(host), self.err, ERRLEN),
              self.err)

    def save(self, path):
        check(self.lib.state_save_file(self.h, os.fsencode(path), self.err,
                                       ERRLEN), self.err)

    def load(self, path):
        check(self.lib.state_load_file(self.h, os.fsencode(path), self.err,
                                       ERRLEN), self.err)

    def eval(self, tokens_ptr, n, logits_ptr, mode, chunk=0):
        """n int32 tokens at tokens_ptr; the last logits to logits_ptr."""
        status = self.lib.state_eval(self.h, tokens_ptr, n, logits_ptr, mode,
                                     chunk, self.err, ERRLEN)
        if status:
            check(status, self.err)

    def eval_all(self, tokens, logits, chunk=0):
        """tokens (int32 array); logits (n x n_vocab float32) gets every row."""
        check(self.lib.state_eval_all(self.h, address(tokens), tokens.size,
                                      address(logits), chunk, self.err,
                                      ERRLEN), self.err)
