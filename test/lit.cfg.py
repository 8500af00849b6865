# -*- Python -*-
# lit configuration for rwkvc's FileCheck tests.

import os

import lit.formats
from lit.llvm import llvm_config

config.name = "RWKVC"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.rwkvc_obj_root, "test")
# Only .mlir and .test files are collected. The directories of the
# GoogleTest, fuzz and end-to-end suites (ctest runs them) hold no lit test;
# each exclude must exist, so this list cannot go stale.
config.excludes = ["e2e", "frontend", "fuzz", "runtime", "tokenizer", "unit"]
for excluded in config.excludes:
    if not os.path.exists(os.path.join(config.test_source_root, excluded)):
        lit_config.fatal("lit.cfg.py excludes '%s', which is not in %s"
                         % (excluded, config.test_source_root))

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%shared", config.rwkvc_shared_dir))
config.substitutions.append(("%python", "/usr/bin/python3"))
config.substitutions.append(("%srcroot", config.rwkvc_src_root))
config.substitutions.append(("%rwkvc_lib", os.path.join(config.rwkvc_obj_root, "lib")))
config.substitutions.append(("%cc", config.rwkvc_cc))
config.substitutions.append(("%cxx", config.rwkvc_cxx))

# The CUDA toolkit (no GPU needed): NVRTC for `rwkvc --target=cuda`
# (feature nvrtc), its headers for clang's CUDA front end (cuda-headers).
import glob
cuda_path = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH") or "/usr/local/cuda"
config.substitutions.append(("%cuda_path", cuda_path))
if glob.glob(os.path.join(cuda_path, "lib64", "libnvrtc.so*")):
    config.available_features.add("nvrtc")
else:
    lit_config.note("no NVRTC under %s: --target=cuda compile tests are skipped" % cuda_path)
if os.path.exists(os.path.join(cuda_path, "include", "cuda_runtime.h")):
    config.available_features.add("cuda-headers")

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

# The shared test assets (tiny models) are optional: tests that need them
# say `REQUIRES: shared-models` and are reported UNSUPPORTED without them.
if os.path.isdir(os.path.join(config.rwkvc_shared_dir, "models", "tiny")):
    config.available_features.add("shared-models")
else:
    lit_config.note("shared test assets not found at %s: tests that need "
                    "them are skipped (set RWKVC_SHARED_DIR)" % config.rwkvc_shared_dir)

tool_dirs = [config.rwkvc_tools_dir, config.llvm_tools_dir]
# Every tool a test uses: listed here and in the check target's DEPENDS
# (llc: LLVM's, from llvm_tools_dir, for the verbose assembly of
# asm-quant.test).
tools = ["rwkv-opt", "rwkvc", "llc"]
llvm_config.add_tool_substitutions(tools, tool_dirs)
llvm_config.with_environment("PATH", config.rwkvc_tools_dir, append_path=True)
llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
