//===- PackProjections.cpp - Projections of one token shift, one weight ---===//
//
// mix_linear(a, b, t_i, weight(@W_i)), i < n
//   => packed_mix_linear(a, b, [t_0 .. t_(n-1)], weight(@P))#i
//      with weight_decl @P concat [W_0 .. W_(n-1)]
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Dominance.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVPACKPROJECTIONSPASS
#include "passes/Passes.h.inc"

namespace {

struct PackProjectionsPass
    : impl::RWKVPackProjectionsPassBase<PackProjectionsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    module.walk([&](Block *block) { packBlock(*block, symbols); });
    // A part stored only for the packed projections is not stored on its
    // own. One walk over the module's symbol uses for all of them: a walk
    // per part was 8% of the whole CPU pipeline on the tiny models.
    if (packedParts.empty())
      return;
    // (Uses that cannot be known keep every part, as symbolKnownUseEmpty.)
    if (auto uses = SymbolTable::getSymbolUses(module)) {
      llvm::DenseSet<StringAttr> used;
      for (const SymbolTable::SymbolUse &use : *uses)
        used.insert(use.getSymbolRef().getRootReference());
      for (WeightDeclOp decl : packedParts)
        if (!used.contains(decl.getSymNameAttr()))
          decl.erase();
    }
    packedParts.clear();
  }

  /// The packable projections of `block`, grouped by their (a, b) and the
  /// type of their weight, in block order.
  void packBlock(Block &block, SymbolTable &symbols) {
    llvm::MapVector<std::tuple<Value, Value, Type>, SmallVector<MixLinearOp>>
        groups;
    for (Operation &op : block) {
      auto mix = dyn_cast<MixLinearOp>(op);
      if (!mix)
        continue;
      auto w = mix.getWeight().getDefiningOp<WeightOp>();
      auto decl = w ? symbols.lookup<WeightDeclOp>(w.getName()) : nullptr;
      if (!decl || decl.getDerive() || decl.getParts())
        continue;
      groups[{mix.getA(), mix.getB(), w.getType()}].push_back(mix);
    }
    for (auto &entry : groups)
      pack(shrinkToDominated(entry.second), symbols);
  }

  /// Drops projections from the end of `group` until every result is used
  /// only after the last member (where the packed op will be).
  static SmallVector<MixLinearOp> shrinkToDominated(
      SmallVector<MixLinearOp> group) {
    while (group.size() >= 2) {
      Operation *last = group.back();
      bool ok = llvm::all_of(group, [&](MixLinearOp m) {
        return llvm::all_of(m->getUsers(), [&](Operation *user) {
          Operation *u = last->getBlock()->findAncestorOpInBlock(*user);
          return !u || last->isBeforeInBlock(u);
        });
      });
      if (ok)
        break;
      group.pop_back();
    }
    return group;
  }

  void pack(SmallVector<MixLinearOp> group, SymbolTable &symbols) {
    if (group.size() < 2)
      return;
    MLIRContext *ctx = &getContext();
    SmallVector<Attribute> parts;
    SmallVector<WeightDeclOp> decls;
    for (MixLinearOp m : group) {
      auto w = m.getWeight().getDefiningOp<WeightOp>();
      decls.push_back(symbols.lookup<WeightDeclOp>(w.getName()));
      parts.push_back(StringAttr::get(ctx, w.getName()));
    }
    auto partType = cast<RankedTensorType>(group[0].getWeight().getType());
    auto packedType = RankedTensorType::get(
        {partType.getDimSize(0) * int64_t(group.size()),
         partType.getDimSize(1)},
        partType.getElementType());
    std::string name = (decls[0].getSymName() + ".packed").str();

    OpBuilder declBuilder(decls.back());
    declBuilder.setInsertionPointAfter(decls.back());
    auto packedDecl = WeightDeclOp::create(
        declBuilder, decls[0].getLoc(), declBuilder.getStringAttr(name),
        TypeAttr::get(packedType), DecayKindAttr(), FlatSymbolRefAttr(),
        ArrayAttr::get(ctx, parts));
    symbols.insert(packedDecl);

    MixLinearOp last = group.back();
    OpBuilder b(last);
    Value weight = WeightOp::create(b, last.getLoc(), packedType,
                                    packedDecl.getSymName());
    SmallVector<Value> mixes;
    SmallVector<Type> types;
    for (MixLinearOp m : group) {
      mixes.push_back(m.getT());
      types.push_back(m.getType());
    }
    auto packed = PackedMixLinearOp::create(b, last.getLoc(), types,
                                            group[0].getA(), group[0].getB(),
                                            mixes, weight);
    for (auto [m, r] : llvm::zip(group, packed.getResults())) {
      Operation *w = m.getWeight().getDefiningOp();
      m.getResult().replaceAllUsesWith(r);
      m.erase();
      if (w->use_empty())
        w->erase();
    }
    packedParts.insert(decls.begin(), decls.end());
  }

  /// The declarations of the parts packed so far (runOnOperation erases
  /// those no longer used).
  llvm::SetVector<WeightDeclOp> packedParts;
};

} // namespace
} // namespace mlir::rwkv
