//===- ModelLayout.cpp - Weight image and state layout of a model ---------===//

#include "codegen/ModelLayout.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::rwkv;
using llvm::Expected;

namespace rwkvc {

uint64_t WeightEntry::numElements() const {
  return uint64_t(type.getNumElements());
}

uint64_t WeightEntry::bytes() const {
  return uint64_t(*getStoredBytes(type));
}

const WeightEntry *ModelLayout::findWeight(llvm::StringRef name) const {
  auto it = weightIndex.find(name);
  return it == weightIndex.end() ? nullptr : &weights[it->second];
}

const SlotEntry *ModelLayout::findSlot(llvm::StringRef name) const {
  auto it = slotIndex.find(name);
  return it == slotIndex.end() ? nullptr : &slots[it->second];
}

Expected<ModelLayout> readModelLayout(ModuleOp module) {
  auto sizes = module->getAttrOfType<MemoryLayoutAttr>(
      RWKVDialect::kMemoryLayoutAttrName);
  if (!sizes)
    return llvm::createStringError(llvm::formatv(
        "the module has no {0}: it has not been through rwkv-assign-layout",
        RWKVDialect::kMemoryLayoutAttrName));
  ModelLayout layout;
  layout.weightsBytes = sizes.getWeightsBytes();
  layout.stateFloats = sizes.getStateFloats();
  for (auto decl : module.getOps<WeightDeclOp>()) {
    if (!decl.getPlacement())
      return llvm::createStringError(llvm::formatv(
          "weight '{0}' has no placement in the weight image",
          decl.getSymName()));
    if (failed(getStoredBytes(decl.getTensorType())))
      return llvm::createStringError(llvm::formatv(
          "weight '{0}' has a type no weight image stores",
          decl.getSymName()));
    WeightEntry w;
    w.name = decl.getSymName().str();
    w.offset = decl.getPlacement()->getOffset();
    w.type = decl.getTensorType();
    w.derive = decl.getDerive();
    if (decl.getSourceAttr())
      w.source = decl.getSourceAttr().getValue().str();
    if (auto parts = decl.getParts())
      for (Attribute part : *parts)
        w.parts.push_back(cast<StringAttr>(part).str());
    layout.weightIndex[w.name] = layout.weights.size();
    layout.weights.push_back(std::move(w));
  }
  for (auto decl : module.getOps<StateDeclOp>()) {
    if (!decl.getPlacement())
      return llvm::createStringError(llvm::formatv(
          "state slot '{0}' has no placement in the state",
          decl.getSymName()));
    SlotEntry s;
    s.name = decl.getSymName().str();
    s.offset = decl.getPlacement()->getOffset();
    s.type = decl.getTensorType();
    s.size = s.type.getNumElements();
    s.init = decl.getInit();
    if (decl.getInitWeight())
      s.initWeight = decl.getInitWeight()->str();
    layout.slotIndex[s.name] = layout.slots.size();
    layout.slots.push_back(std::move(s));
  }
  return layout;
}

void eraseModelLayout(ModuleOp module) {
  module->removeAttr(RWKVDialect::kMemoryLayoutAttrName);
  module->removeAttr(RWKVDialect::kResourceConfigAttrName);
  for (Operation &op : llvm::make_early_inc_range(module.getOps()))
    if (isa<WeightDeclOp, StateDeclOp>(op))
      op.erase();
}

} // namespace rwkvc
