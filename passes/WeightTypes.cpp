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
                 "as stored in the checkpoint (quantized ones become f32)"),
      clEnumValN(WeightType::f32, "f32", "32-bit floats"),
      clEnumValN(WeightType::f16, "f16", "IEEE half precision"),
      clEnumValN(WeightType::bf16, "bf16", "bfloat16"));
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
  }
  llvm_unreachable("unknown weight type");
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
