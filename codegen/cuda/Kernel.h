//===- Kernel.h - One generated CUDA kernel and how it is launched -*- C++ -*-===//
//
//   a fused rwkv op ──(its family's generator: Kernels*.cpp)──▶ KernelText
//     definition  the extern "C" __global__ function, named kKernelName,
//                 calling a template of codegen/cuda/kernels/*.cuh with
//                 every shape a constant
//     shape       grid (in T or R), block, dynamic shared memory
//     params      what each of its 8-byte parameters is bound to, in order
//     when        the calls it runs in (e.g. one row: a GEMV, else a GEMM)
//
// The emitter (CUDAEmitter.cpp) names the kernel (equal definitions share
// one), turns params into rwkv_cuda_arg entries of the launch plan
// (runtime/rwkv_abi.h) and the shape into the step's grid.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CUDA_KERNEL_H
#define RWKV_CODEGEN_CUDA_KERNEL_H

#include "mlir/IR/Value.h"
#include "llvm/ADT/StringRef.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc::cuda {

/// Element type of a weight as the kernels read it.
enum class ElemType { F32, F16, BF16 };

/// The CUDA C++ spelling of `t` in kernel text: float, __half,
/// __nv_bfloat16.
llvm::StringRef cudaTypeName(ElemType t);

/// One grid dimension: count * ceil(source / per) (rwkv_cuda_dim).
struct GridDim {
  enum Source { One = 0, T = 1, R = 2 }; // enum rwkv_cuda_dim_source
  int32_t count = 1;
  int32_t per = 1;
  Source source = One;
  static GridDim constant(int32_t n) { return {n, 1, One}; }
  /// count * ceil(rows / per), rows being T or R as the kernel's `rows`.
  static GridDim rows(Source s, int32_t per = 1, int32_t count = 1) {
    return {count, per, s};
  }
};

struct KernelShape {
  std::array<GridDim, 3> grid;
  std::array<uint32_t, 3> block = {1, 1, 1};
  uint32_t dynamicShared = 0;
};

/// The kernel's parameters, in order; each is 8 bytes in the kernel's
/// signature (a pointer or a long long). The generator says what it is
/// for; the emitter binds it to a buffer, weight, state slot or number.
enum class ParamRole {
  Input,   // an activation read (f32 rows)
  Output,  // an activation written (f32 rows)
  InOut,   // an activation read and written in place
  Weight,  // a weight of the image
  State,   // a state slot (f32, read and written)
  Tokens,  // the tokens (const int *)
  Logits,  // the logits buffer (float *)
  NTokens, // T (long long)
  NRows,   // the rows this kernel runs over: T, or R after last_token
  Null,    // an unused optional pointer: 0
  Temp     // f32 scratch private to one op's launches (Param::tempBytes a
           // row), e.g. partial sums one launch leaves for the next
};

/// What one parameter is bound to.
struct Param {
  ParamRole role = ParamRole::Null;
  /// Input, Output, InOut: the activation; Weight: the rwkv.weight result.
  mlir::Value value;
  /// State: the slot's symbol.
  std::string state;
  /// Output: the index of an Input parameter whose buffer this output may
  /// take when this launch is that input's last use (the kernel reads each
  /// element of it before it writes the same element of the output); -1:
  /// never.
  int aliasOf = -1;
  /// Temp: which of the op's temporaries (parameters of its launches with
  /// the same index share one buffer) and its bytes a row. A temporary
  /// lives from the op's first launch to its last; it never shares memory
  /// with the op's inputs or outputs.
  int temp = 0;
  int64_t tempBytes = 0;
};

/// The placeholder for the kernel's name in KernelText::definition.
inline constexpr llvm::StringLiteral kKernelName = "@KERNEL@";

/// When a launch runs (enum rwkv_cuda_when).
enum class When { Always = 0, TOne = 1, TMany = 2, ROne = 3, RMany = 4 };

/// A generated kernel: its definition text and its launch.
struct KernelText {
  std::string definition; // the whole extern "C" __global__ function
  KernelShape shape;
  std::vector<Param> params;
  When when = When::Always;
};

} // namespace rwkvc::cuda

#endif // RWKV_CODEGEN_CUDA_KERNEL_H
