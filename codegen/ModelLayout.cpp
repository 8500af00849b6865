//===- ModelLayout.cpp - Weight image and state layout of a model ---------===//

#include "codegen/ModelLayout.h"

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/xxhash.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using llvm::Expected;

namespace rwkvc {

uint64_t WeightEntry::numElements() const {
  uint64_t n = 1;
  for (int64_t d : shape)
    n *= uint64_t(d);
  return n;
}

uint64_t WeightEntry::bytes() const {
  return numElements() * (elementType == "f32" ? 4 : 2);
}

const WeightEntry *ModelLayout::findWeight(llvm::StringRef name) const {
  for (const WeightEntry &w : weights)
    if (w.name == name)
      return &w;
  return nullptr;
}

static llvm::Error layoutError(const llvm::Twine &what) {
  return llvm::createStringError("malformed rwkv layout attribute: " + what);
}

Expected<ModelLayout> readModelLayout(ModuleOp module) {
  ModelLayout layout;
  auto weights = module->getAttrOfType<ArrayAttr>("rwkv.weight_layout");
  auto slots = module->getAttrOfType<ArrayAttr>("rwkv.state_layout");
  auto bytes = module->getAttrOfType<IntegerAttr>("rwkv.weights_bytes");
  auto floats = module->getAttrOfType<IntegerAttr>("rwkv.state_floats");
  if (!weights || !slots || !bytes || !floats)
    return layoutError("the module has not been through rwkv-lower-to-loops");
  layout.weightsBytes = bytes.getInt();
  layout.stateFloats = floats.getInt();
  for (Attribute a : weights) {
    auto d = dyn_cast<DictionaryAttr>(a);
    auto name = d ? d.getAs<StringAttr>("name") : StringAttr();
    auto offset = d ? d.getAs<IntegerAttr>("offset") : IntegerAttr();
    auto type = d ? d.getAs<TypeAttr>("type") : TypeAttr();
    if (!name || !offset || !type)
      return layoutError("weight entry");
    auto tensor = cast<RankedTensorType>(type.getValue());
    WeightEntry w;
    w.name = name.str();
    w.offset = offset.getInt();
    w.shape.assign(tensor.getShape().begin(), tensor.getShape().end());
    Type e = tensor.getElementType();
    w.elementType = e.isF32() ? "f32" : e.isF16() ? "f16" : e.isBF16() ? "bf16" : "";
    if (w.elementType.empty())
      return layoutError("weight " + w.name + " has an unsupported type");
    if (auto parts = d.getAs<ArrayAttr>("parts"))
      for (Attribute part : parts)
        w.parts.push_back(cast<StringAttr>(part).str());
    if (auto derive = d.getAs<rwkv::DecayKindAttr>("derive")) {
      w.derive = rwkv::stringifyDecayKind(derive.getValue()).str();
      w.source = d.getAs<FlatSymbolRefAttr>("source").getValue().str();
    }
    layout.weights.push_back(std::move(w));
  }
  for (Attribute a : slots) {
    auto d = dyn_cast<DictionaryAttr>(a);
    auto name = d ? d.getAs<StringAttr>("name") : StringAttr();
    auto offset = d ? d.getAs<IntegerAttr>("offset") : IntegerAttr();
    auto type = d ? d.getAs<TypeAttr>("type") : TypeAttr();
    auto init = d ? d.getAs<rwkv::StateInitAttr>("init") : rwkv::StateInitAttr();
    if (!name || !offset || !type || !init)
      return layoutError("state entry");
    SlotEntry s;
    s.name = name.str();
    s.offset = offset.getInt();
    s.size = cast<RankedTensorType>(type.getValue()).getNumElements();
    s.init = int32_t(init.getValue());
    if (auto w = d.getAs<FlatSymbolRefAttr>("init_weight"))
      s.initWeight = w.getValue().str();
    layout.slots.push_back(std::move(s));
  }
  return layout;
}

/// f32 → f16 / bf16 bits, rounding to nearest even.
static uint16_t to16(float f, const llvm::fltSemantics &semantics) {
  bool lost;
  llvm::APFloat h(f);
  h.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &lost);
  return uint16_t(h.bitcastToAPInt().getZExtValue());
}

static float derive(llvm::StringRef kind, float d) {
  if (kind == "neg_exp")
    return -std::exp(d);
  if (kind == "exp_neg_exp")
    return std::exp(-std::exp(d));
  if (kind == "exp_neg_sigmoid")
    return std::exp(-0.60653065971263342f / (1.0f + std::exp(-d)));
  return std::exp(d); // "exp"
}

Expected<std::vector<uint8_t>> packWeights(const ModelLayout &layout,
                                           const Checkpoint &ckpt) {
  std::vector<uint8_t> image(layout.weightsBytes, 0);
  for (const WeightEntry &w : layout.weights) {
    // The tensors the weight is made of: itself, its source, or its parts.
    std::vector<std::string> sources = w.parts;
    if (sources.empty())
      sources.push_back(w.derive ? w.source : w.name);
    std::vector<float> values;
    for (const std::string &sourceName : sources) {
      const Tensor *t = ckpt.find(sourceName);
      if (!t)
        return llvm::createStringError(llvm::formatv(
            "{0}: tensor '{1}' is missing", ckpt.path, sourceName));
      std::vector<float> part = t->toF32();
      values.insert(values.end(), part.begin(), part.end());
    }
    if (values.size() != w.numElements())
      return llvm::createStringError(llvm::formatv(
          "{0}: tensor '{1}' has {2} elements, the layout expects {3}",
          ckpt.path, w.name, values.size(), w.numElements()));
    if (w.offset < 0 || uint64_t(w.offset) + w.bytes() > image.size())
      return llvm::createStringError(llvm::formatv(
          "weight '{0}' lies outside the image", w.name));
    if (w.derive)
      for (float &v : values)
        v = derive(*w.derive, v);
    uint8_t *dst = image.data() + w.offset;
    if (w.elementType == "f32") {
      std::memcpy(dst, values.data(), values.size() * 4);
    } else {
      const llvm::fltSemantics &semantics = w.elementType == "bf16"
                                                 ? llvm::APFloat::BFloat()
                                                 : llvm::APFloat::IEEEhalf();
      for (size_t i = 0; i < values.size(); ++i) {
        uint16_t h = to16(values[i], semantics);
        std::memcpy(dst + 2 * i, &h, 2);
      }
    }
  }
  return image;
}

uint64_t modelHash(const ModelLayout &layout, llvm::ArrayRef<uint8_t> image) {
  std::string description;
  for (const SlotEntry &s : layout.slots)
    description += llvm::formatv("{0}:{1}:{2}:{3};", s.name, s.offset, s.size,
                                 s.init)
                       .str();
  uint64_t h = llvm::xxh3_64bits(image);
  return h ^ (llvm::xxh3_64bits(llvm::StringRef(description)) * 0x9e3779b97f4a7c15ULL);
}

} // namespace rwkvc
