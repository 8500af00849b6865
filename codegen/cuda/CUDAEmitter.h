//===- CUDAEmitter.h - A placed rwkv module to kernels and a launch plan -*- C++ -*-===//
//
//   module after rwkv-assign-layout (fused ops, layer stacks, placements)
//     ──▶ CUDAProgram
//           source   one self-contained CUDA C++ file: the kernel library
//                    (Kernels.h), one extern "C" kernel per distinct
//                    instantiation, the emulator's module table
//           plan     the steps of runtime/rwkv_abi.h's rwkv_cuda_program:
//                    a launch per kernel of each op, a LOOP per layer stack
//                    whose launches read layer k's weights and slots at
//                    the first layer's + k strides
//           scratch  the activations' buffers, placed by liveness in bytes
//                    per token (a buffer's last use frees it; an
//                    element-wise result may take the buffer of an input
//                    it is the last use of)
//
// Target-independent of the way the file is compiled (NVRTC or the
// emulator): CUDATarget.cpp does that and writes the program's tables.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_CUDAEMITTER_H
#define RWKV_CODEGEN_CUDA_CUDAEMITTER_H

#include "codegen/ModelLayout.h"

#include "runtime/rwkv_abi.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace rwkvc::cuda {

struct CUDAProgram {
  std::string source;
  std::vector<std::string> kernelNames;
  std::vector<rwkv_cuda_step> steps;
  std::vector<rwkv_cuda_arg> args;
  int64_t scratchBytesPerToken = 0;
  uint32_t maxDynamicShared = 0;
};

/// The symbol of the emulator's module table in the generated file.
inline constexpr llvm::StringLiteral kEmulatorModuleSymbol =
    "rwkv_model_cuda_module";

/// The kernels and launch plan of `module`'s @forward, placed as `layout`
/// says. An error names the op that has no kernel.
llvm::Expected<CUDAProgram> emitCUDAProgram(mlir::ModuleOp module,
                                            const ModelLayout &layout);

/// The plan in text, one step per line (-emit=cuda appends it to the
/// source as a comment; tests FileCheck it).
void printPlan(const CUDAProgram &program, llvm::raw_ostream &os);

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_CUDAEMITTER_H
