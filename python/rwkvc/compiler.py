"""Running rwkvc: compile(), the cache of compiled checkpoints, and the
mapping of the `rwkv` package's strategy strings onto rwkvc's options."""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import warnings

from .errors import CompileError


class StrategyWarning(UserWarning):
    """A part of a strategy string that does not apply to a compiled model."""


def find_rwkvc(rwkvc=None):
    """The rwkvc executable: `rwkvc`, else $RWKVC, else rwkvc on PATH, else
    build/bin/rwkvc of the source tree this package sits in."""
    candidates = [rwkvc, os.environ.get("RWKVC"), shutil.which("rwkvc"),
                  os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "..", "..", "build", "bin", "rwkvc")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return os.path.abspath(c)
    raise FileNotFoundError(
        2, "rwkvc not found: pass rwkvc=PATH, set RWKVC, put it on PATH, or "
        "build it (cmake --build build) in the source tree", "rwkvc")


def _flags(options):
    """compile()'s keyword options as rwkvc flags: weight_type="f16" ->
    --weight-type=f16, force=True -> --force; None and False are left out."""
    flags = []
    for key, value in sorted(options.items()):
        if value is None or value is False:
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag}={value}")
    return flags


def compile(checkpoint, output=None, *, emit="shared-lib", rwkvc=None,
            progress=None, **options):
    """Compiles `checkpoint` with rwkvc and returns the path of the output.

    emit: "shared-lib" (default: a library that rwkvc.RWKV opens), "exe", or
    any other -emit stage. output: default lib<stem>.so (or <stem> for exe)
    in the current directory. options: rwkvc's options by name,
    e.g. weight_type="f16", tokenizer="world", target_cpu="x86-64-v3",
    weights_file=True (see `rwkvc --help`). progress: a function called with
    each line rwkvc prints about its stages (it then runs with -v); True
    prints them to stderr.
    """
    checkpoint = os.fspath(checkpoint)
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(2, "no such checkpoint", checkpoint)
    if output is None:
        stem = os.path.splitext(os.path.basename(checkpoint))[0]
        output = f"lib{stem}.so" if emit == "shared-lib" else stem
    output = os.fspath(output)
    cmd = [find_rwkvc(rwkvc), checkpoint, f"-emit={emit}", "-o", output]
    cmd += _flags(options)
    if progress is True:
        progress = lambda line: print(line, file=sys.stderr, flush=True)
    if progress:
        cmd.append("-v")
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            if progress and not line.startswith("rwkvc: error"):
                progress(line)
    if proc.returncode != 0:
        errors = [l for l in lines if "error" in l] or lines[-3:]
        raise CompileError(
            "; ".join(errors) or f"rwkvc exited with status {proc.returncode}",
            0)
    return output


def cache_dir():
    """$RWKVC_CACHE_DIR, else $XDG_CACHE_HOME/rwkvc, else ~/.cache/rwkvc."""
    d = os.environ.get("RWKVC_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
            os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "rwkvc")
    return d


def compile_cached(checkpoint, options, rwkvc=None, progress=True):
    """The library compiled from `checkpoint` with `options`, compiled into
    cache_dir() on first use. The key covers the checkpoint (path, size,
    modification time), the options and the rwkvc executable."""
    exe = find_rwkvc(rwkvc)
    st, xst = os.stat(checkpoint), os.stat(exe)
    key = repr((os.path.realpath(checkpoint), st.st_size, st.st_mtime_ns,
                sorted(options.items()), exe, xst.st_size, xst.st_mtime_ns))
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_",
                  os.path.splitext(os.path.basename(checkpoint))[0])
    d = cache_dir()
    os.makedirs(d, exist_ok=True)
    lib = os.path.join(d, f"lib{stem}-{digest}.so")
    if os.path.exists(lib):
        return lib
    if progress is True:
        print(f"rwkvc: compiling {checkpoint} into {lib} (once; later runs "
              f"load it from the cache)", file=sys.stderr, flush=True)
    tmp = f"{lib}.{os.getpid()}.tmp.so"
    try:
        compile(checkpoint, tmp, rwkvc=exe, progress=progress, **options)
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


# The package's precisions: storage type of the weight matrices.
_WEIGHT_TYPES = {"fp32": "f32", "fp16": "f16", "bf16": "bf16"}


def parse_strategy(strategy):
    """Maps a strategy string of the `rwkv` package onto rwkvc's options.

    Returns (options, notes): options for compile() (weight_type, and target
    when rwkvc has one for the device), notes the parts that do not apply,
    one sentence each (RWKV warns with them when it compiles).
    """
    notes = []
    s = " ".join(strategy.split())
    segments = [p.strip() for p in s.split("->") if p.strip()]
    if not segments:
        raise ValueError(f"empty strategy '{strategy}'")
    if len(segments) > 1 or re.search(r"\*\d*\+?", s):
        notes.append("layer placement ('->', '*N', '+' streaming) does not "
                     "apply: the whole model is compiled for one target, that "
                     f"of the first part '{segments[0]}'")
    m = re.fullmatch(r"(\S+)\s+(fp32|fp16|bf16)(i8)?(\s*\*\d*\+?)?",
                     segments[0])
    if not m:
        raise ValueError(
            f"strategy '{strategy}': expected 'DEVICE PRECISION', e.g. "
            "'cpu fp32', 'cpu bf16', 'cuda fp16'")
    device, precision, i8 = m.group(1), m.group(2), m.group(3)
    options = {"weight_type": _WEIGHT_TYPES[precision]}
    if i8:
        notes.append(f"int8 weights ('{precision}i8') do not apply: the "
                     f"weights are stored as {precision}")
    if device != "cpu":
        notes.append(f"device '{device}': this rwkvc compiles for the CPU "
                     "only, so the model runs on the CPU")
    return options, notes


def warn_notes(notes):
    for n in notes:
        warnings.warn("strategy: " + n, StrategyWarning, stacklevel=3)
