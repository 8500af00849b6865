//===- NVRTC.h - CUDA C++ to cubins with NVIDIA's runtime compiler -*- C++ -*-===//
//
//   CUDA C++ source ──NVRTC (libnvrtc, opened with dlopen)──▶
//     one cubin per real architecture (sm_80, sm_86, sm_89, sm_90)
//     + PTX for a virtual one (compute_90: newer GPUs JIT it)
//     + ptxas's report per kernel (registers, spills, stack, shared memory)
//
// rwkvc needs no CUDA to build or to compile for the CPU: the library is
// found at run time (RWKV_NVRTC_LIBRARY, then libnvrtc.so.13 on the loader's
// path, then the toolkit under $CUDA_HOME, $CUDA_PATH or /usr/local/cuda).
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_NVRTC_H
#define RWKV_CODEGEN_CUDA_NVRTC_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc::cuda {

/// What ptxas reports about one kernel for one architecture.
struct KernelReport {
  std::string kernel;
  std::string arch; // "sm_90"
  unsigned registers = 0;
  uint64_t stackBytes = 0;
  uint64_t spillStoreBytes = 0;
  uint64_t spillLoadBytes = 0;
  uint64_t sharedBytes = 0; // static shared memory
};

/// Reads the kernel reports out of an NVRTC log compiled with
/// `--ptxas-options=-v`.
std::vector<KernelReport> parsePtxasReport(llvm::StringRef log);

/// The limits a generated kernel must stay within.
struct ResourceLimits {
  unsigned maxRegisters = 255;
  uint64_t maxStaticShared = 48 * 1024;
};

/// An error naming every kernel that spills, uses more registers or more
/// static shared memory than `limits` allow; success otherwise.
llvm::Error checkKernelResources(llvm::ArrayRef<KernelReport> reports,
                                 const ResourceLimits &limits = {});

/// One compiled image: a cubin for a real architecture, or PTX text.
struct CompiledImage {
  std::string arch; // "sm_80", ..., or "compute_90" for PTX
  bool isPTX = false;
  std::vector<char> bytes;
};

struct CompileOptions {
  std::vector<std::string> realArchs = {"sm_80", "sm_86", "sm_89", "sm_90"};
  /// A virtual architecture to add PTX for; empty for none.
  std::string ptxArch = "compute_90";
  /// More NVRTC options (e.g. "-DNAME=1").
  std::vector<std::string> extraOptions;
};

struct CompileResult {
  std::vector<CompiledImage> images;
  std::vector<KernelReport> reports; // every kernel, every real arch
};

/// The major and minor version of the NVRTC found, or why none was found.
llvm::Expected<std::pair<int, int>> nvrtcVersion();

/// Compiles `source` (named `fileName` in diagnostics) for every
/// architecture of `options`. A compile error carries NVRTC's log.
llvm::Expected<CompileResult> compileCUDA(llvm::StringRef source,
                                          llvm::StringRef fileName,
                                          const CompileOptions &options = {});

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_NVRTC_H
