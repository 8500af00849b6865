//===- DequantizeWeights.cpp - Store quantized weights as f32 -------------===//
//
// weight_decl @w : tensor<S x !rwkv.quant<k>> => weight_decl @w : tensor<S x f32>
// weight @w : tensor<S x !rwkv.quant<k>>      => weight @w : tensor<S x f32>
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVDEQUANTIZEWEIGHTSPASS
#include "passes/Passes.h.inc"

namespace {

/// The f32 version of a tensor type with a quantized element type, or null.
RankedTensorType dequantized(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  if (!tensor || !isa<QuantType>(tensor.getElementType()))
    return {};
  return RankedTensorType::get(tensor.getShape(),
                               Float32Type::get(t.getContext()));
}

struct DequantizeWeightsPass
    : impl::RWKVDequantizeWeightsPassBase<DequantizeWeightsPass> {
  void runOnOperation() override {
    getOperation().walk([](Operation *op) {
      if (auto decl = dyn_cast<WeightDeclOp>(op)) {
        if (RankedTensorType f32 = dequantized(decl.getType()))
          decl.setType(f32);
      } else if (auto weight = dyn_cast<WeightOp>(op)) {
        if (RankedTensorType f32 = dequantized(weight.getType()))
          weight.getResult().setType(f32);
      }
    });
  }
};

} // namespace
} // namespace mlir::rwkv
