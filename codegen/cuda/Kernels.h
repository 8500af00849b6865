//===- Kernels.h - The kernel generators of the CUDA target -------*- C++ -*-===//
//
//   fused rwkv op ──generateKernels──▶ KernelText... (Kernel.h)
//
// One generator per op family: KernelsOps.cpp (embedding, norms, token
// shift, element-wise maps, recurrences and their helpers, the generic
// linear maps), KernelsLinear.cpp (the warp and tensor-core linear maps).
// The kernel library they instantiate is kernelLibrary(): the device
// prelude and codegen/cuda/kernels/*.cuh, pasted at the top of every
// generated file.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_KERNELS_H
#define RWKV_CODEGEN_CUDA_KERNELS_H

#include "codegen/cuda/Kernel.h"

#include "mlir/IR/Operation.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace rwkvc::cuda {

/// What a generator knows of the op's place in the model.
struct OpContext {
  /// The rows the op's activations have: T, or R after rwkv.last_token.
  GridDim::Source rows = GridDim::T;
};

/// The kernels of `op`, launched in order; an error naming the op when it
/// has a form no kernel takes.
llvm::Expected<std::vector<KernelText>> generateKernels(mlir::Operation *op,
                                                        const OpContext &cx);

/// The text pasted before the generated kernels: the prelude and the
/// templates of codegen/cuda/kernels/.
std::string kernelLibrary();

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_KERNELS_H
