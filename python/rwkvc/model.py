"""rwkvc.model.RWKV: the `rwkv` package's RWKV class over a compiled model.

    from rwkvc.model import RWKV           # was: from rwkv.model import RWKV
    model = RWKV(model="libtiny.so", strategy="cpu fp32")
    out, state = model.forward([187, 510], None)    # GPT mode, fresh state
    out, state = model.forward([1563], state)       # RNN mode, state in place
"""

import os
from ctypes import byref as _byref, c_int32 as _c_int32

import numpy as np

from . import _lib
from .compiler import compile_cached, parse_strategy, warn_notes
from .errors import RwkvcArgumentError, RwkvcMismatchError


class Logits(np.ndarray):
    """float32 logits (a numpy array) that also answers the torch calls
    programs written for the `rwkv` package make on its logits:
    out.detach().cpu().numpy(), out.float(), out.clone()."""

    def detach(self):
        return self

    def cpu(self):
        return self

    def float(self):
        return self

    def numpy(self):
        return self.view(np.ndarray)

    def clone(self):
        return self.copy()


class State:
    """The recurrent state of one model, as `forward` returns and takes it.

    forward(tokens, state) updates it in place (as the `rwkv` package does)
    and returns it; copy it with .copy() or copy.deepcopy(state) to branch.
    save(path)/RWKV.load_state(path) use the runtime's state files
    (docs/state-format.md). numpy() is the host layout, state_floats floats.
    """

    __slots__ = ("model", "_s", "__weakref__")

    def __init__(self, model, impl):
        self.model = model
        self._s = impl

    def copy(self):
        return State(self.model, self._s.clone())

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def reset(self):
        """Back to the model's initial state."""
        self._s.reset()

    def numpy(self):
        """A copy of the state in the host layout (float32, state_floats)."""
        return self._s.read()

    def assign(self, values):
        """Sets the state from a host-layout array or another State."""
        if isinstance(values, State):
            self.model._check_state(values)
            self._s.assign(values._s)
            return
        a = np.ascontiguousarray(values, np.float32)
        if a.shape != (self.model.state_floats,):
            raise RwkvcArgumentError(
                f"a state of this model holds {self.model.state_floats} "
                f"floats, not {a.size}", 1)
        self._s.write(a)

    def save(self, path):
        self._s.save(path)

    def __repr__(self):
        return f"<rwkvc.State of {self.model.lib.describe()}>"


def _is_library(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


class RWKV:
    """A compiled RWKV model with the `rwkv` package's interface.

    model: a library built by `rwkvc MODEL -emit=shared-lib` (libNAME.so), or
    a checkpoint (.pth, .safetensors, rwkv.cpp .bin; like the package, a
    path without extension gets '.pth'), compiled on first use into
    rwkvc.compiler.cache_dir(). strategy: "cpu fp32", "cpu fp16", "cpu bf16"
    choose the storage type of the weight matrices when compiling (the
    arithmetic is fp32 on the CPU); what does not apply (other devices,
    layer placement, i8) is said with a StrategyWarning. A compiled library
    runs as it was compiled: the strategy is not used.
    torch: return torch tensors (default: $RWKVC_TORCH == "1"); else numpy.
    compile_options: more rwkvc options for a checkpoint (tokenizer="world",
    target_cpu=..., see rwkvc.compile).
    device: where the library runs, "auto", "cpu" or "cuda" (default
    $RWKV_DEVICE, else "auto": CUDA when the library has CUDA kernels and a
    GPU is usable, else the CPU); self.device says what runs it.
    """

    def __init__(self, model, strategy="cpu fp32", verbose=True, torch=None,
                 rwkvc=None, device=None, **compile_options):
        path = os.fspath(model)
        if not os.path.exists(path) and os.path.exists(path + ".pth"):
            path += ".pth"
        if not os.path.exists(path):
            raise FileNotFoundError(
                2, "no compiled model library or checkpoint at this path", path)
        self.strategy = strategy
        self.strategy_notes = []
        if _is_library(path):
            self.library_path = path
        else:
            options, self.strategy_notes = parse_strategy(strategy)
            warn_notes(self.strategy_notes)
            options.update(compile_options)
            self.library_path = compile_cached(path, options, rwkvc=rwkvc,
                                               progress=bool(verbose))
        self.lib = _lib.Library(self.library_path, device=device)
        lib = self.lib
        self.device = lib.device
        self.n_vocab = lib.n_vocab
        self.n_embd = lib.n_embd
        self.n_layer = lib.n_layer
        self.state_floats = lib.state_floats
        self.version = lib.rwkv_version
        self.model_hash = lib.model_hash
        if torch is None:
            torch = os.environ.get("RWKVC_TORCH") == "1"
        self._torch = None
        if torch:
            import torch as _torch
            self._torch = _torch
        # The package's RWKV exposes args with these names.
        self.args = type("args", (), dict(
            MODEL_NAME=lib.model_name, n_layer=lib.n_layer,
            n_embd=lib.n_embd, vocab_size=lib.n_vocab))()

    # -- states ---------------------------------------------------------------

    def new_state(self):
        """A fresh state (the model's initial state)."""
        return State(self, self.lib.new_state())

    def load_state(self, path):
        """A state read from a state file saved by State.save or by a
        compiled executable's --state-out (checked against this model)."""
        s = self.new_state()
        s._s.load(path)
        return s

    def _check_state(self, state):
        if not isinstance(state, State):
            raise TypeError(
                f"state must be None or an rwkvc.State from this model's "
                f"forward or new_state(), not {type(state).__name__}")
        # A state handle is used only with the runtime of its own library.
        if state.model.lib.dll._handle != self.lib.dll._handle:
            raise RwkvcMismatchError(
                f"the state belongs to another model: "
                f"{state.model.lib.describe()}, this is "
                f"{self.lib.describe()}", 4)

    # -- evaluation -----------------------------------------------------------

    def _token_array(self, tokens):
        """tokens (list, numpy or torch) as a contiguous int32 array; ids
        that int32 cannot hold are refused here, the rest by the runtime."""
        ids = np.asarray(tokens)
        if ids.ndim != 1:
            ids = ids.reshape(-1)
        if ids.size == 0:
            raise RwkvcArgumentError("forward needs at least one token", 1)
        if ids.dtype != np.int32:
            if ids.dtype.kind not in "iu":
                raise TypeError(f"token ids must be integers, not {ids.dtype}")
            wide = (ids < -0x80000000) | (ids > 0x7FFFFFFF)
            if wide.any():
                raise RwkvcArgumentError(
                    f"token {int(ids[wide][0])} is out of range: the "
                    f"vocabulary has {self.n_vocab} tokens "
                    f"(0..{self.n_vocab - 1})", 1)
        return np.ascontiguousarray(ids, np.int32)

    def _logits(self, array):
        if self._torch is not None:
            return self._torch.from_numpy(array.view(np.ndarray))
        return array

    def forward(self, tokens, state, full_output=False):
        """Runs `tokens` from `state` (None: a fresh state) and returns
        (logits, state): the logits after the last token (n_vocab float32),
        or with full_output=True those after every token (len x n_vocab).
        The state passed is updated in place and returned."""
        if state is None:
            state = State(self, self.lib.new_state())
        elif state.__class__ is not State or state.model is not self:
            self._check_state(state)
        if (not full_output and tokens.__class__ is list and len(tokens) == 1
                and tokens[0].__class__ is int
                and -0x80000000 <= tokens[0] <= 0x7FFFFFFF):
            # Decoding, one token: the fewest Python steps (docs/python.md,
            # "Overhead"); the runtime checks the id.
            out = np.empty(self.n_vocab, np.float32).view(Logits)
            state._s.eval(_byref(_c_int32(tokens[0])), 1, out.ctypes.data,
                          _lib.RWKV_EVAL_RNN)
            return self._logits(out), state
        ids = self._token_array(tokens)
        n = ids.size
        if full_output:
            out = np.empty((n, self.n_vocab), np.float32).view(Logits)
            state._s.eval_all(ids, out)
        else:
            out = np.empty(self.n_vocab, np.float32).view(Logits)
            state._s.eval(ids.ctypes.data, n, out.ctypes.data,
                          _lib.RWKV_EVAL_RNN if n == 1 else _lib.RWKV_EVAL_SEQ)
        return self._logits(out), state

    __call__ = forward

    def __repr__(self):
        return (f"<rwkvc.RWKV RWKV-{self.version} L{self.n_layer} "
                f"D{self.n_embd} V{self.n_vocab} from {self.library_path}>")
