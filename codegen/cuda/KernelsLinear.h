//===- KernelsLinear.h - CUDA kernels of the linear maps ---------*- C++ -*-===//
//
//   rwkv.linear {out_in}, rwkv.mix_linear, rwkv.gate_linear,
//   rwkv.relu_sq_linear, rwkv.packed_mix_linear
//       ──▶ GEMV (one row: When TOne/ROne) + GEMM (When TMany/RMany)
//   rwkv.linear {in_out}   ──▶ in_out kernel, 1 row / 4 rows a block
//   rwkv.lora              ──▶ lora kernel,   1 row / 4 rows a block
//
// Each KernelText calls a template of codegen/cuda/kernels/linear.cuh
// (linearKernelSource(): pasted after the prelude) with every shape a
// constant. Kernels, params and tile sizes: docs/cuda.md, "Linear maps".
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_KERNELSLINEAR_H
#define RWKV_CODEGEN_CUDA_KERNELSLINEAR_H

#include "codegen/cuda/Kernels.h"

#include "mlir/IR/Operation.h"
#include "llvm/Support/Error.h"

#include <vector>

namespace rwkvc::cuda {

/// How the emitter runs a linear-map op (Kernels.h's OpContext): `rows`
/// (T, or R after rwkv.last_token) chooses NRows' meaning and
/// When::{T,R}{One,Many}; with `residual` and `result` set, the op's
/// (single) output is `residual + product`, written to the buffer of
/// `result` (the Output param, which may alias the residual's Input param).
using LinearContext = OpContext;

/// The kernels of a linear-map op (rwkv.linear, mix_linear, gate_linear,
/// relu_sq_linear, packed_mix_linear, lora): a variant for one row and one
/// for more. Params, in order (each 8 bytes):
///
///   out_in family   NRows, Input a (x, a or g), [Input b (b or y): mix and
///                   gate], [t_0 .. t_{SEG-1}: mix; Weight if an rwkv.weight
///                   result, else Input], Weight W, [Input residual],
///                   Output out_0 .. out_{SEG-1}
///   in_out linear   NRows, Input x, Weight W, [Input residual], Output out
///   lora            NRows, Input x (or, with a fused lerp, Input a, Input b,
///                   t: Weight), Weight A, Weight B, [bias: Weight or Input],
///                   [Input residual], Output out; on one row two launches:
///                   NRows, x (a, b, t), A, Temp; NRows, Temp, B, [bias],
///                   [residual], out
///
/// An error for other ops, quantized weights, per-channel vectors that are
/// not K f32, f16 or bf16 values, or a residual on an op with several
/// results.
llvm::Expected<std::vector<KernelText>>
generateLinearKernels(mlir::Operation *op, const LinearContext &ctx);

/// Whether generateLinearKernels handles `op`.
bool isLinearKernelOp(mlir::Operation *op);

/// The text of codegen/cuda/kernels/linear.cuh, to paste after the prelude
/// in a generated file that holds linear-map kernels.
llvm::StringRef linearKernelSource();

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_KERNELSLINEAR_H
