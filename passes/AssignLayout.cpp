//===- AssignLayout.cpp - Place weights in the image, slots in the state --===//
//
// weight_decl @w : tensor<D x E>    => weight_decl @w : tensor<D x E> at <offset = o_w>
// state_decl @s : tensor<D x f32>   => state_decl @s : tensor<D x f32> ... at <offset = o_s>
// module                            => module {rwkv.memory_layout = ...}
//
// in declaration order, each offset aligned as the module's
// #rwkv.resource_config says; weights that initialize state become f32.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "llvm/Support/MathExtras.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVASSIGNLAYOUTPASS
#include "passes/Passes.h.inc"

namespace {

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

    int64_t offset = 0;
    for (auto decl : module.getOps<WeightDeclOp>()) {
      RankedTensorType type = decl.getTensorType();
      FailureOr<int64_t> bytes = getStoredElementBytes(type.getElementType());
      if (failed(bytes)) {
        decl.emitOpError() << "has element type " << type.getElementType()
                           << ", which no weight image stores (run "
                              "rwkv-dequantize-weights first)";
        return signalPassFailure();
      }
      offset = llvm::alignTo(offset, config.getWeightAlignment());
      decl.setPlacementAttr(PlacementAttr::get(ctx, offset));
      offset += type.getNumElements() * *bytes;
    }
    int64_t weightsBytes = llvm::alignTo(offset, config.getWeightAlignment());

    offset = 0;
    for (auto decl : module.getOps<StateDeclOp>()) {
      offset = llvm::alignTo(offset, config.getSlotAlignment());
      decl.setPlacementAttr(PlacementAttr::get(ctx, offset));
      offset += decl.getTensorType().getNumElements();
    }
    int64_t stateFloats = llvm::alignTo(offset, config.getSlotAlignment());

    module->setAttr(RWKVDialect::kMemoryLayoutAttrName,
                    MemoryLayoutAttr::get(ctx, weightsBytes, stateFloats));
  }
};

} // namespace
} // namespace mlir::rwkv
