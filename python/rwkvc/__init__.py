"""rwkvc: RWKV models compiled ahead of time by rwkvc, from Python.

A drop-in for the `rwkv` package's RWKV and PIPELINE (change `rwkv` to
`rwkvc` in the imports):

    from rwkvc.model import RWKV
    from rwkvc.utils import PIPELINE, PIPELINE_ARGS

See docs/python.md.
"""

from .compiler import compile, StrategyWarning
from .errors import (RwkvcError, RwkvcArgumentError, RwkvcMismatchError,
                     RwkvcMemoryError, CompileError)
from .model import RWKV, State, Logits
from .utils import PIPELINE, PIPELINE_ARGS

__all__ = ["compile", "RWKV", "State", "Logits", "PIPELINE", "PIPELINE_ARGS",
           "RwkvcError", "RwkvcArgumentError", "RwkvcMismatchError",
           "RwkvcMemoryError", "CompileError", "StrategyWarning"]
__version__ = "0.1.0"
