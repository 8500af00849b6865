//===- DequantizeWeights.cpp - Store as f32 what cannot be read quantized -===//
//
// weight_decl @w : tensor<S x !rwkv.quant<k>> => weight_decl @w : tensor<S x f32>
// weight @w : tensor<S x !rwkv.quant<k>>      => weight @w : tensor<S x f32>
// for the weights some use of which is not an out_in product (all of them
// with `all`).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVDEQUANTIZEWEIGHTSPASS
#include "passes/Passes.h.inc"

namespace {

struct DequantizeWeightsPass
    : impl::RWKVDequantizeWeightsPassBase<DequantizeWeightsPass> {
  using RWKVDequantizeWeightsPassBase::RWKVDequantizeWeightsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::StringMap<Type> dequantized;
    for (auto decl : module.getOps<WeightDeclOp>())
      if (isa<QuantType>(decl.getTensorType().getElementType()) &&
          (all || !isOnlyProductWeight(module, decl.getSymName())))
        dequantized[decl.getSymName()] = Float32Type::get(&getContext());
    setWeightElementTypes(module, dequantized);
  }
};

} // namespace
} // namespace mlir::rwkv
