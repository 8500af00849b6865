//===- FoldDecay.cpp - Fold decays of weights into derived weights --------===//
//
// decay<k>(weight(@d)) => weight(@d.k), declaring @d.k as derived from @d.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVFOLDDECAYPASS
#include "passes/Passes.h.inc"
} // namespace mlir::rwkv

namespace mlir::rwkv {
namespace {
struct FoldDecayPass : impl::RWKVFoldDecayPassBase<FoldDecayPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    module.walk([&](DecayOp decay) {
      auto weight = decay.getInput().getDefiningOp<WeightOp>();
      if (!weight)
        return;
      auto source = symbols.lookup<WeightDeclOp>(weight.getName());
      if (!source)
        return;
      std::string name = (weight.getName() + "." +
                          stringifyDecayKind(decay.getKind()))
                             .str();
      auto derived = symbols.lookup<WeightDeclOp>(name);
      if (!derived) {
        OpBuilder builder(source);
        builder.setInsertionPointAfter(source);
        derived = WeightDeclOp::create(
            builder, source.getLoc(), builder.getStringAttr(name),
            TypeAttr::get(decay.getType()),
            DecayKindAttr::get(&getContext(), decay.getKind()),
            FlatSymbolRefAttr::get(source.getSymNameAttr()), ArrayAttr());
        symbols.insert(derived);
      }
      OpBuilder builder(decay);
      Value folded = WeightOp::create(builder, decay.getLoc(), decay.getType(),
                                      derived.getSymName());
      decay.replaceAllUsesWith(folded);
      decay.erase();
      if (weight->use_empty())
        weight.erase();
    });
  }
};
} // namespace
} // namespace mlir::rwkv
