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

struct DequantizeWeightsPass
    : impl::RWKVDequantizeWeightsPassBase<DequantizeWeightsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::StringMap<Type> dequantized;
    for (auto decl : module.getOps<WeightDeclOp>())
      if (isa<QuantType>(decl.getTensorType().getElementType()))
        dequantized[decl.getSymName()] = Float32Type::get(&getContext());
    setWeightElementTypes(module, dequantized);
  }
};

} // namespace
} // namespace mlir::rwkv
