"""Exceptions: the runtime's status codes (rwkv_runtime.h) as Python types,
each carrying the runtime's one-line message."""

RWKV_ERROR_ARGUMENT = 1
RWKV_ERROR_IO = 2
RWKV_ERROR_FORMAT = 3
RWKV_ERROR_MISMATCH = 4
RWKV_ERROR_MODEL = 5
RWKV_ERROR_NO_TOKENIZER = 6
RWKV_ERROR_MEMORY = 7


class RwkvcError(RuntimeError):
    """An error reported by the runtime or by rwkvc; `code` is the runtime's
    status (RWKV_ERROR_*), 0 when the error is not the runtime's."""

    def __init__(self, message, code=0):
        super().__init__(message)
        self.code = code


class RwkvcArgumentError(RwkvcError, ValueError):
    """A bad argument: a token id out of range, bad sampling parameters."""


class RwkvcMismatchError(RwkvcError, ValueError):
    """A state (or state file) of another model or layout."""


class RwkvcMemoryError(RwkvcError, MemoryError):
    """Out of memory: the model's code could not get its scratch memory (the
    state of a sequence call is as before it; a smaller chunk needs less)."""


class CompileError(RwkvcError):
    """rwkvc failed; the message is its error line."""
