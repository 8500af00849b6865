//===- WeightTypes.cpp - Changing the stored element type of weights ------===//
//
// weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>
// weight @w : tensor<S x E>      => weight @w : tensor<S x E'>
//
// shared by rwkv-select-weight-types, rwkv-dequantize-weights and
// rwkv-assign-layout, and the one list of --weight-type's values.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

namespace mlir::rwkv {

llvm::cl::ValuesClass weightTypeValues() {
  return llvm::cl::values(
      clEnumValN(WeightType::keep, "keep",
                 "as stored in the checkpoint (quantized ones stay so where "
                 "the target reads them)"),
      clEnumValN(WeightType::f32, "f32", "32-bit floats"),
      clEnumValN(WeightType::f16, "f16", "IEEE half precision"),
      clEnumValN(WeightType::bf16, "bf16", "bfloat16"),
      clEnumValN(WeightType::q8_0, "q8_0",
                 "8-bit blocks (rwkv.cpp Q8_0: 8.5 bits per weight)"),
      clEnumValN(WeightType::q5_1, "q5_1",
                 "5-bit blocks with a minimum (Q5_1: 6 bits per weight)"),
      clEnumValN(WeightType::q5_0, "q5_0", "5-bit blocks (Q5_0: 5.5 bits)"),
      clEnumValN(WeightType::q4_1, "q4_1",
                 "4-bit blocks with a minimum (Q4_1: 5 bits)"),
      clEnumValN(WeightType::q4_0, "q4_0", "4-bit blocks (Q4_0: 4.5 bits)"));
}

std::optional<QuantKind> getWeightQuantKind(WeightType t) {
  switch (t) {
  case WeightType::q8_0:
    return QuantKind::q8_0;
  case WeightType::q5_1:
    return QuantKind::q5_1;
  case WeightType::q5_0:
    return QuantKind::q5_0;
  case WeightType::q4_1:
    return QuantKind::q4_1;
  case WeightType::q4_0:
    return QuantKind::q4_0;
  default:
    return std::nullopt;
  }
}

Type getWeightElementType(MLIRContext *ctx, WeightType t) {
  switch (t) {
  case WeightType::keep:
    return {};
  case WeightType::f32:
    return Float32Type::get(ctx);
  case WeightType::f16:
    return Float16Type::get(ctx);
  case WeightType::bf16:
    return BFloat16Type::get(ctx);
  case WeightType::q8_0:
  case WeightType::q5_1:
  case WeightType::q5_0:
  case WeightType::q4_1:
  case WeightType::q4_0:
    return QuantType::get(ctx, *getWeightQuantKind(t));
  }
  llvm_unreachable("unknown weight type");
}

/// Whether `use` reads its operand as the (out, in) weight of a product.
static bool isOutInProductWeight(OpOperand &use) {
  Operation *user = use.getOwner();
  auto weightOf = [&](Value w) { return w == use.get(); };
  if (auto linear = dyn_cast<LinearOp>(user))
    return weightOf(linear.getWeight()) &&
           linear.getLayout() == WeightLayout::out_in;
  if (auto op = dyn_cast<MixLinearOp>(user))
    return weightOf(op.getWeight());
  if (auto op = dyn_cast<PackedMixLinearOp>(user))
    return weightOf(op.getWeight());
  if (auto op = dyn_cast<GateLinearOp>(user))
    return weightOf(op.getWeight());
  if (auto op = dyn_cast<ReluSqLinearOp>(user))
    return weightOf(op.getWeight());
  return false;
}

bool isOnlyProductWeight(ModuleOp module, StringRef name) {
  bool used = false, other = false;
  module.walk([&](WeightOp weight) {
    if (weight.getName() != name)
      return;
    for (OpOperand &use : weight.getResult().getUses()) {
      used = true;
      other |= !isOutInProductWeight(use);
    }
  });
  return used && !other;
}

void setWeightElementTypes(ModuleOp module,
                           const llvm::StringMap<Type> &elementTypes) {
  if (elementTypes.empty())
    return;
  auto retype = [&](StringRef name, Type t) -> RankedTensorType {
    auto it = elementTypes.find(name);
    if (it == elementTypes.end())
      return {};
    return RankedTensorType::get(cast<RankedTensorType>(t).getShape(),
                                 it->second);
  };
  module.walk([&](Operation *op) {
    if (auto decl = dyn_cast<WeightDeclOp>(op)) {
      if (RankedTensorType t = retype(decl.getSymName(), decl.getType()))
        decl.setType(t);
    } else if (auto weight = dyn_cast<WeightOp>(op)) {
      if (RankedTensorType t = retype(weight.getName(), weight.getType()))
        weight.getResult().setType(t);
    }
  });
}

} // namespace mlir::rwkv
