//===- Passes.h - rwkv dialect passes ----------------------------*- C++ -*-===//

#ifndef RWKV_PASSES_PASSES_H
#define RWKV_PASSES_PASSES_H

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/CommandLine.h"

namespace mlir::rwkv {

/// The values of --weight-type (rwkvc) and weight-type (the pass option of
/// rwkv-select-weight-types and of the target pipelines).
llvm::cl::ValuesClass weightTypeValues();

/// The element type of WeightType `t` (null for keep).
Type getWeightElementType(MLIRContext *ctx, WeightType t);

/// The block format of a quantized WeightType (q8_0, ...), else none.
std::optional<QuantKind> getWeightQuantKind(WeightType t);

/// Whether every use of weight `name` in `module` is the weight of an
/// out_in product (rwkv.linear {out_in}, rwkv.mix_linear,
/// rwkv.packed_mix_linear, rwkv.gate_linear, rwkv.relu_sq_linear): the
/// products the CPU target reads block-quantized weights in.
bool isOnlyProductWeight(ModuleOp module, StringRef name);

/// Gives the weights named in `elementTypes` their new element type, in
/// their declarations and in every rwkv.weight that reads them.
void setWeightElementTypes(ModuleOp module,
                           const llvm::StringMap<Type> &elementTypes);

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::rwkv

#endif // RWKV_PASSES_PASSES_H
