//===- SelectWeightTypes.cpp - The element type of each stored matrix -----===//
//
// weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>
// weight @w : tensor<S x E>      => weight @w : tensor<S x E'>
// for matrices (rank >= 2) that do not initialize state; E' = matrix-type.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "llvm/ADT/StringSet.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVSELECTWEIGHTTYPESPASS
#include "passes/Passes.h.inc"

namespace {

struct SelectWeightTypesPass
    : impl::RWKVSelectWeightTypesPassBase<SelectWeightTypesPass> {
  using RWKVSelectWeightTypesPassBase::RWKVSelectWeightTypesPassBase;

  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    Type target = llvm::StringSwitch<Type>(matrixType)
                      .Case("f32", Float32Type::get(ctx))
                      .Case("f16", Float16Type::get(ctx))
                      .Case("bf16", BFloat16Type::get(ctx))
                      .Default(Type());
    if (matrixType == "keep")
      return;
    if (!target) {
      getOperation().emitError()
          << "unknown matrix type '" << matrixType
          << "' (expected keep, f32, f16 or bf16)";
      return signalPassFailure();
    }
    ModuleOp module = getOperation();
    llvm::StringSet<> stateInits;
    for (auto slot : module.getOps<StateDeclOp>())
      if (slot.getInitWeight())
        stateInits.insert(*slot.getInitWeight());
    auto retype = [&](Type t) -> RankedTensorType {
      auto tensor = cast<RankedTensorType>(t);
      return RankedTensorType::get(tensor.getShape(), target);
    };
    llvm::StringSet<> changed;
    for (auto decl : module.getOps<WeightDeclOp>()) {
      if (decl.getTensorType().getRank() < 2 || decl.getDerive() ||
          stateInits.contains(decl.getSymName()))
        continue;
      decl.setType(retype(decl.getType()));
      changed.insert(decl.getSymName());
    }
    module.walk([&](WeightOp w) {
      if (changed.contains(w.getName()))
        w.getResult().setType(retype(w.getType()));
    });
  }
};

} // namespace
} // namespace mlir::rwkv
