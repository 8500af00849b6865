//===- SelectWeightTypes.cpp - The element type of each stored matrix -----===//
//
// weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>
// weight @w : tensor<S x E>      => weight @w : tensor<S x E'>
// for matrices (rank >= 2) that are not derived; E' = weight-type.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVSELECTWEIGHTTYPESPASS
#include "passes/Passes.h.inc"

namespace {

struct SelectWeightTypesPass
    : impl::RWKVSelectWeightTypesPassBase<SelectWeightTypesPass> {
  using RWKVSelectWeightTypesPassBase::RWKVSelectWeightTypesPassBase;

  void runOnOperation() override {
    Type target = getWeightElementType(&getContext(), weightType);
    if (!target)
      return; // keep
    ModuleOp module = getOperation();
    llvm::StringMap<Type> changed;
    for (auto decl : module.getOps<WeightDeclOp>())
      if (decl.getTensorType().getRank() >= 2 && !decl.getDerive())
        changed[decl.getSymName()] = target;
    setWeightElementTypes(module, changed);
  }
};

} // namespace
} // namespace mlir::rwkv
