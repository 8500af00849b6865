//===- SelectWeightTypes.cpp - The element type of each stored matrix -----===//
//
// weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>
// weight @w : tensor<S x E>      => weight @w : tensor<S x E'>
// for matrices (two or more dimensions larger than 1) that are not derived;
// E' = weight-type. Vectors (tensor<1x1xC>: token-shift mixes) keep theirs.
// A quantized weight-type (!rwkv.quant<k>) applies to the matrices only
// out_in products read, with rows of whole blocks; the others become f16.
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
    bool quantized = isa<QuantType>(target);
    if (quantized && !allowQuantized) {
      module.emitError() << "weight type " << target
                         << ": this target does not read block-quantized "
                            "weights (use f32, f16 or bf16)";
      return signalPassFailure();
    }
    Type half = Float16Type::get(&getContext());
    llvm::StringMap<Type> changed;
    for (auto decl : module.getOps<WeightDeclOp>()) {
      RankedTensorType type = decl.getTensorType();
      if (!isMatrix(type) || decl.getDerive())
        continue;
      bool blocks =
          type.getDimSize(type.getRank() - 1) % kQuantBlockElements == 0;
      changed[decl.getSymName()] =
          !quantized || (blocks && isOnlyProductWeight(module, decl.getSymName()))
              ? target
              : half;
    }
    setWeightElementTypes(module, changed);
  }
};

} // namespace
} // namespace mlir::rwkv
