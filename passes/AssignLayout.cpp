//===- AssignLayout.cpp - Place weights in the image, slots in the state --===//
//
// weight_decl @w : tensor<D x E>    => weight_decl @w : tensor<D x E> at <offset = o_w>
// state_decl @s : tensor<D x f32>   => state_decl @s : tensor<D x f32> ... at <offset = o_s>
// module                            => module {rwkv.memory_layout = ...}
//
// rwkv.layers i to j {...}         => rwkv.layers i to j stride <weights = W, state = S> {...}
//
// in declaration order, each offset aligned as the module's
// #rwkv.resource_config says; weights that initialize state become f32. The
// weights (slots) of a stack of layers are placed together, layer after
// layer in the order its body names them: layer k's lie (k - i) * W bytes
// (S floats) after layer i's.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVASSIGNLAYOUTPASS
#include "passes/Passes.h.inc"

namespace {

/// The declarations of an rwkv.layers op of several layers: for each layer
/// (first to last), its weights and its state slots in the order the body
/// first names them.
struct StackMembers {
  LayersOp op;
  SmallVector<SmallVector<Operation *>> weights, slots;
  /// Set once the stack's weights (slots) are placed.
  std::optional<int64_t> weightStride, stateStride;
};

/// Bytes (weights) or floats (slots) of a declaration.
FailureOr<int64_t> sizeOf(Operation *decl) {
  if (auto slot = dyn_cast<StateDeclOp>(decl))
    return slot.getTensorType().getNumElements();
  auto weight = cast<WeightDeclOp>(decl);
  RankedTensorType type = weight.getTensorType();
  FailureOr<int64_t> bytes = getStoredBytes(type);
  if (failed(bytes)) {
    if (isa<QuantType>(type.getElementType()))
      return weight.emitOpError()
             << "has type " << type
             << ", whose rows are not whole blocks of "
             << kQuantBlockElements;
    return weight.emitOpError()
           << "has element type " << type.getElementType()
           << ", which no weight image stores";
  }
  return *bytes;
}

/// Places `decl` at the next multiple of `alignment` from `offset`.
LogicalResult place(Operation *decl, int64_t alignment, int64_t &offset) {
  FailureOr<int64_t> size = sizeOf(decl);
  if (failed(size))
    return failure();
  offset = llvm::alignTo(offset, alignment);
  decl->setAttr("placement", PlacementAttr::get(decl->getContext(), offset));
  offset += *size;
  return success();
}

/// Places the members of a stack layer after layer, each layer starting at
/// a multiple of `alignment`, so that each member of layer k lies
/// (k - first) strides after its layer-`first` namesake. Returns the stride.
std::optional<int64_t> placeStack(ArrayRef<SmallVector<Operation *>> layers,
                                  StackMembers &stack, int64_t alignment,
                                  int64_t &offset) {
  SmallVector<int64_t> starts;
  for (ArrayRef<Operation *> layer : layers) {
    offset = llvm::alignTo(offset, alignment);
    starts.push_back(offset);
    for (Operation *decl : layer)
      if (failed(place(decl, alignment, offset)))
        return std::nullopt;
  }
  if (starts.size() < 2)
    return 0;
  int64_t stride = starts[1] - starts[0];
  for (size_t k = 1; k < layers.size(); ++k)
    for (auto [decl, first] : llvm::zip(layers[k], layers[0])) {
      auto at = [](Operation *d) {
        return cast<PlacementAttr>(d->getAttr("placement")).getOffset();
      };
      if (at(decl) - at(first) != int64_t(k) * stride) {
        stack.op.emitOpError() << "rwkv-assign-layout: layer "
                               << stack.op.getFirst() + int64_t(k)
                               << " of the stack is not laid out like layer "
                               << stack.op.getFirst();
        return std::nullopt;
      }
    }
  return stride;
}

/// The members of every rwkv.layers op of several layers; `stackOf` maps a
/// member's name to its stack's index.
LogicalResult collectStacks(ModuleOp module,
                            SmallVectorImpl<StackMembers> &stacks,
                            llvm::StringMap<size_t> &stackOf) {
  SymbolTable symbols(module);
  WalkResult walk = module.walk([&](LayersOp op) {
    if (op.getNumLayers() < 2)
      return WalkResult::advance();
    // The symbols of layer `first`, in the order the body names them.
    SmallVector<StringAttr> names;
    llvm::DenseSet<StringAttr> seen;
    op.getBodyBlock().walk([&](Operation *inner) {
      inner->getAttrDictionary().walk([&](FlatSymbolRefAttr ref) {
        if (seen.insert(ref.getAttr()).second)
          names.push_back(ref.getAttr());
      });
    });
    StackMembers stack;
    stack.op = op;
    for (int64_t k = op.getFirst(); k <= int64_t(op.getLast()); ++k) {
      SmallVector<Operation *> &weights = stack.weights.emplace_back();
      SmallVector<Operation *> &slots = stack.slots.emplace_back();
      for (StringAttr name : names) {
        std::string renamed = renameLayerSymbol(name, op.getFirst(), k);
        Operation *decl = renamed.empty() ? nullptr : symbols.lookup(renamed);
        if (!decl) {
          op.emitOpError() << "rwkv-assign-layout: layer " << k
                           << " has no symbol for @" << name.getValue()
                           << " of layer " << op.getFirst();
          return WalkResult::interrupt();
        }
        if (!stackOf.try_emplace(renamed, stacks.size()).second) {
          op.emitOpError() << "rwkv-assign-layout: @" << renamed
                           << " belongs to two stacks";
          return WalkResult::interrupt();
        }
        (isa<StateDeclOp>(decl) ? slots : weights).push_back(decl);
      }
    }
    stacks.push_back(std::move(stack));
    return WalkResult::advance();
  });
  return failure(walk.wasInterrupted());
}

/// Places every declaration of kind `DeclOp` in declaration order (a stack's
/// members together, where the first of them is declared, recording the
/// stack's stride); returns the end, aligned.
template <typename DeclOp>
FailureOr<int64_t>
placeAll(ModuleOp module, int64_t alignment, MutableArrayRef<StackMembers> stacks,
         const llvm::StringMap<size_t> &stackOf,
         SmallVector<SmallVector<Operation *>> StackMembers::*members,
         std::optional<int64_t> StackMembers::*stride) {
  int64_t offset = 0;
  for (auto decl : module.getOps<DeclOp>()) {
    auto it = stackOf.find(decl.getSymName());
    if (it == stackOf.end()) {
      if (failed(place(decl, alignment, offset)))
        return failure();
      continue;
    }
    StackMembers &stack = stacks[it->second];
    if (!(stack.*stride))
      stack.*stride = placeStack(stack.*members, stack, alignment, offset);
    if (!(stack.*stride))
      return failure();
  }
  return int64_t(llvm::alignTo(offset, alignment));
}

struct AssignLayoutPass : impl::RWKVAssignLayoutPassBase<AssignLayoutPass> {
  using RWKVAssignLayoutPassBase::RWKVAssignLayoutPassBase;

  /// The module's resource config, first set from the options if given.
  ResourceConfigAttr resourceConfig(ModuleOp module) {
    if (weightAlignment != 0 || slotAlignment != 0) {
      auto config = ResourceConfigAttr::getChecked(
          [&] { return module.emitError() << "rwkv-assign-layout: "; },
          &getContext(), int64_t(weightAlignment), int64_t(slotAlignment));
      if (config)
        module->setAttr(RWKVDialect::kResourceConfigAttrName, config);
      return config;
    }
    auto config = module->getAttrOfType<ResourceConfigAttr>(
        RWKVDialect::kResourceConfigAttrName);
    if (!config)
      module.emitError()
          << "rwkv-assign-layout: the module has no "
          << RWKVDialect::kResourceConfigAttrName
          << " (the target sets it) and the weight-alignment and "
             "slot-alignment options are not given";
    return config;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    ResourceConfigAttr config = resourceConfig(module);
    if (!config)
      return signalPassFailure();
    MLIRContext *ctx = &getContext();

    // The f32 rule: the runtime copies a state-initializing weight into
    // the state, so the image holds it as f32.
    llvm::StringMap<Type> stateInits;
    for (auto slot : module.getOps<StateDeclOp>())
      if (slot.getInitWeight())
        stateInits[*slot.getInitWeight()] = Float32Type::get(ctx);
    setWeightElementTypes(module, stateInits);

    // The stacks' weights and slots, placed layer after layer.
    SmallVector<StackMembers> stacks;
    llvm::StringMap<size_t> stackOf;
    if (failed(collectStacks(module, stacks, stackOf)))
      return signalPassFailure();

    FailureOr<int64_t> weightsBytes = placeAll<WeightDeclOp>(
        module, config.getWeightAlignment(), stacks, stackOf,
        &StackMembers::weights, &StackMembers::weightStride);
    FailureOr<int64_t> stateFloats = placeAll<StateDeclOp>(
        module, config.getSlotAlignment(), stacks, stackOf,
        &StackMembers::slots, &StackMembers::stateStride);
    if (failed(weightsBytes) || failed(stateFloats))
      return signalPassFailure();

    for (StackMembers &stack : stacks)
      stack.op.setStrideAttr(LayerStrideAttr::get(
          ctx, stack.weightStride.value_or(0), stack.stateStride.value_or(0)));

    module->setAttr(RWKVDialect::kMemoryLayoutAttrName,
                    MemoryLayoutAttr::get(ctx, *weightsBytes, *stateFloats));
  }
};

} // namespace
} // namespace mlir::rwkv
