//===- WeightImage.cpp - Packing the weight image of a model --------------===//

#include "codegen/WeightImage.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/xxhash.h"

#include <cmath>
#include <cstring>

using llvm::Expected;
using mlir::rwkv::DecayKind;

namespace rwkvc {

/// f32 → f16 / bf16 bits, rounding to nearest even.
static uint16_t to16(float f, const llvm::fltSemantics &semantics) {
  bool lost;
  llvm::APFloat h(f);
  h.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &lost);
  return uint16_t(h.bitcastToAPInt().getZExtValue());
}

float evaluateDecay(DecayKind kind, float d) {
  switch (kind) {
  case DecayKind::neg_exp:
    return -std::exp(d);
  case DecayKind::exp_neg_exp:
    return std::exp(-std::exp(d));
  case DecayKind::exp_neg_sigmoid:
    return std::exp(-0.60653065971263342f / (1.0f + std::exp(-d)));
  case DecayKind::exp:
    return std::exp(d);
  }
  llvm_unreachable("unknown decay kind");
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
        v = evaluateDecay(*w.derive, v);
    uint8_t *dst = image.data() + w.offset;
    mlir::Type e = w.type.getElementType();
    if (e.isF32()) {
      std::memcpy(dst, values.data(), values.size() * 4);
    } else {
      const llvm::fltSemantics &semantics =
          e.isBF16() ? llvm::APFloat::BFloat() : llvm::APFloat::IEEEhalf();
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
                                 int32_t(s.init))
                       .str();
  uint64_t h = llvm::xxh3_64bits(image);
  return h ^ (llvm::xxh3_64bits(llvm::StringRef(description)) * 0x9e3779b97f4a7c15ULL);
}

} // namespace rwkvc
