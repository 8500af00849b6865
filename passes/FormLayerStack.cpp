//===- FormLayerStack.cpp - One body for identical consecutive layers -----===//
//
// %a = rwkv.layers i to j (%x, %u) {body of layer i}
// %b = rwkv.layers k to k (%a, %u) {body of layer k}      (k = j + 1)
//   => %b = rwkv.layers i to k (%x, %u) {body of layer i}
//
// when the body of layer k is that of layer i with every symbol of layer k
// renamed to layer i (renameLayerSymbol), the declarations of the two
// symbols agree (type, derivation, packing, initial value), %a carries its
// results only into %b, and %b reads %a's other inputs unchanged.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVFORMLAYERSTACKPASS
#include "passes/Passes.h.inc"
} // namespace mlir::rwkv

namespace mlir::rwkv {
namespace {

/// Decides whether the body of layer `from` is the body of layer `to` up to
/// the layer number of its symbols.
class LayerMatcher {
public:
  LayerMatcher(SymbolTable &symbols, int64_t from, int64_t to)
      : symbols(symbols), from(from), to(to) {}

  bool bodiesMatch(Block &candidate, Block &stack) {
    if (candidate.getArgumentTypes() != stack.getArgumentTypes())
      return false;
    for (auto [c, s] : llvm::zip(candidate.getArguments(), stack.getArguments()))
      values[c] = s;
    auto c = candidate.begin(), s = stack.begin();
    for (; c != candidate.end() && s != stack.end(); ++c, ++s)
      if (!opsMatch(*c, *s))
        return false;
    return c == candidate.end() && s == stack.end();
  }

private:
  bool opsMatch(Operation &c, Operation &s) {
    if (c.getName() != s.getName() ||
        c.getNumOperands() != s.getNumOperands() ||
        c.getResultTypes() != s.getResultTypes() || c.getNumRegions() != 0 ||
        s.getNumRegions() != 0)
      return false;
    for (auto [co, so] : llvm::zip(c.getOperands(), s.getOperands()))
      if (values.lookup(co) != so)
        return false;
    if (!attrsMatch(c.getAttrDictionary(), s.getAttrDictionary()))
      return false;
    for (auto [cr, sr] : llvm::zip(c.getResults(), s.getResults()))
      values[cr] = sr;
    return true;
  }

  /// Attributes match when equal, except that a symbol (or, in a
  /// declaration, a tensor name) of layer `from` must be the same-named one
  /// of layer `to`, declared alike. A symbol of no layer never matches: the
  /// stack's body would read it at a layer's offset.
  bool attrsMatch(Attribute c, Attribute s) {
    if (auto cs = dyn_cast<FlatSymbolRefAttr>(c)) {
      auto ss = dyn_cast<FlatSymbolRefAttr>(s);
      return ss && renameLayerSymbol(cs.getValue(), from, to) == ss.getValue() &&
             declsMatch(cs.getAttr(), ss.getAttr());
    }
    if (auto cd = dyn_cast<DictionaryAttr>(c)) {
      auto sd = dyn_cast<DictionaryAttr>(s);
      if (!sd || cd.size() != sd.size())
        return false;
      for (auto [ca, sa] : llvm::zip(cd.getValue(), sd.getValue()))
        if (ca.getName() != sa.getName() ||
            !attrsMatch(ca.getValue(), sa.getValue()))
          return false;
      return true;
    }
    if (auto ca = dyn_cast<ArrayAttr>(c)) {
      auto sa = dyn_cast<ArrayAttr>(s);
      if (!sa || ca.size() != sa.size())
        return false;
      for (auto [ce, se] : llvm::zip(ca.getValue(), sa.getValue()))
        if (!attrsMatch(ce, se))
          return false;
      return true;
    }
    if (inDecl)
      if (auto cs = dyn_cast<StringAttr>(c)) {
        std::string renamed = renameLayerSymbol(cs.getValue(), from, to);
        if (!renamed.empty()) {
          auto ss = dyn_cast<StringAttr>(s);
          return ss && ss.getValue() == renamed;
        }
      }
    return c == s;
  }

  /// The declarations of symbols `c` and `s` agree but for their names and
  /// placements.
  bool declsMatch(StringAttr c, StringAttr s) {
    if (!matchedDecls.insert({c, s}).second)
      return true;
    Operation *cd = symbols.lookup(c), *sd = symbols.lookup(s);
    if (!cd || !sd || cd->getName() != sd->getName())
      return false;
    auto strip = [](Operation *decl) {
      NamedAttrList attrs(decl->getAttrDictionary());
      attrs.erase(SymbolTable::getSymbolAttrName());
      attrs.erase("placement");
      return attrs.getDictionary(decl->getContext());
    };
    bool saved = inDecl;
    inDecl = true;
    bool match = attrsMatch(strip(cd), strip(sd));
    inDecl = saved;
    return match;
  }

  SymbolTable &symbols;
  int64_t from, to;
  bool inDecl = false;
  DenseMap<Value, Value> values;
  llvm::DenseSet<std::pair<StringAttr, StringAttr>> matchedDecls;
};

struct FormLayerStackPass
    : impl::RWKVFormLayerStackPassBase<FormLayerStackPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<Block *> blocks;
    module.walk([&](Block *block) { blocks.push_back(block); });
    for (Block *block : blocks) {
      LayersOp stack;
      for (Operation &op : llvm::make_early_inc_range(*block)) {
        auto next = dyn_cast<LayersOp>(op);
        if (!next) {
          stack = {};
          continue;
        }
        if (stack && extends(stack, next, symbols)) {
          stack.setLast(next.getLast());
          next.replaceAllUsesWith(stack.getResults());
          next.erase();
          continue;
        }
        stack = next;
      }
    }
  }

  /// True if `next`, one layer, continues `stack`.
  static bool extends(LayersOp stack, LayersOp next, SymbolTable &symbols) {
    if (next.getNumLayers() != 1 || next.getFirst() != stack.getLast() + 1 ||
        next.getNumResults() != stack.getNumResults() ||
        next.getInputs().size() != stack.getInputs().size())
      return false;
    // The carried values go from stack to next and nowhere else; the other
    // inputs are the same values.
    size_t carried = stack.getNumResults();
    for (auto [i, input] : llvm::enumerate(next.getInputs())) {
      if (i < carried ? input != stack.getResult(i) || !input.hasOneUse()
                      : input != stack.getInputs()[i])
        return false;
    }
    LayerMatcher matcher(symbols, next.getFirst(), stack.getFirst());
    return matcher.bodiesMatch(next.getBodyBlock(), stack.getBodyBlock());
  }
};

} // namespace
} // namespace mlir::rwkv
