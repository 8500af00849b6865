//===- SelectWeightTypes.cpp - The element type of each stored matrix -----===//
//
// weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>
// weight @w : tensor<S x E>      => weight @w : tensor<S x E'>
// for matrices (two or more dimensions larger than 1) that are not derived;
// E' = weight-type. Vectors (tensor<1x1xC>: token-shift mixes) keep theirs.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVSELECTWEIGHTTYPESPASS
#include "passes/Passes.h.inc"

namespace {

/// Two or more dimensions larger than 1: a tensor<1x1xC> mix is a vector.
bool isMatrix(RankedTensorType t) {
  return llvm::count_if(t.getShape(), [](int64_t d) { return d > 1; }) >= 2;
}

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
      if (isMatrix(decl.getTensorType()) && !decl.getDerive())
        changed[decl.getSymName()] = target;
    setWeightElementTypes(module, changed);
  }
};

} // namespace
} // namespace mlir::rwkv
