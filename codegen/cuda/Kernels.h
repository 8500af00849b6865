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

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/Operation.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace rwkvc::cuda {

/// What a generator knows of the op's place in the model.
struct OpContext {
  /// The rows the op's activations have: T, or R after rwkv.last_token.
  GridDim::Source rows = GridDim::T;
  /// A linear map whose only use is `result = rwkv.add(residual, it)`
  /// (either order): the kernel adds `residual` in its epilogue and writes
  /// `result` (in place of the residual when that is its last use); the add
  /// is not launched. Null otherwise.
  mlir::Value residual, result;
  /// A LoRA whose input is `rwkv.lerp(mixA, mixB, mixT)` (mixT a weight, per
  /// channel) used by it alone: the kernels compute the mix as they read the
  /// input; the lerp is not launched. Null otherwise.
  mlir::Value mixA, mixB, mixT;
};

/// Whether `op` can take an add of its result in its epilogue.
bool takesResidual(mlir::Operation *op);

/// RWKV-7's attention core, launched as one kernel of one block per head:
/// prep = wkv7_prep(k, a), y = wkv7(r, w, prep.new_k, v, prep.neg_kk,
/// prep.kk_a), norm = group_norm(y) over the heads, bonus = head_bonus(r,
/// prep.new_k, v), sum = add(norm, bonus), gate = mul(sum, g).
struct WKV7Group {
  mlir::rwkv::WKV7PrepOp prep;
  mlir::rwkv::WKV7Op wkv;
  mlir::rwkv::GroupNormOp norm;
  mlir::rwkv::HeadBonusOp bonus;
  mlir::rwkv::AddOp sum;
  mlir::rwkv::MulOp gate;
};

/// The group `wkv` ends, when its values have no other use, the head size
/// is a multiple of 32 up to 128 and the gate's other operand exists
/// before `wkv`.
std::optional<WKV7Group> matchWKV7Group(mlir::rwkv::WKV7Op wkv);

llvm::Expected<std::vector<KernelText>>
generateWKV7Group(WKV7Group group, const OpContext &cx);

/// RWKV-5/6's WKV, the group norm of its heads and, when the norm's only
/// use is a product with an activation (RWKV-5.2/6's silu gate), that
/// product: one block per head.
struct WKV5Group {
  mlir::rwkv::WKV5Op wkv;
  mlir::rwkv::GroupNormOp norm;
  mlir::rwkv::MulOp gate; // may be null
};
std::optional<WKV5Group> matchWKV5Group(mlir::rwkv::WKV5Op wkv);
llvm::Expected<std::vector<KernelText>>
generateWKV5Group(WKV5Group group, const OpContext &cx);

/// The kernels of `op`, launched in order; an error naming the op when it
/// has a form no kernel takes.
llvm::Expected<std::vector<KernelText>> generateKernels(mlir::Operation *op,
                                                        const OpContext &cx);

/// generateKernels without linear.cuh's kernels: the linear maps by
/// ops.cuh's generic one-thread-per-output kernels.
llvm::Expected<std::vector<KernelText>>
generateGenericKernels(mlir::Operation *op, const OpContext &cx);

/// The text pasted before the generated kernels: the prelude and the
/// templates of codegen/cuda/kernels/.
std::string kernelLibrary();

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_KERNELS_H
