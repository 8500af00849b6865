//===- ModelLayout.h - Weight image and state layout of a model ---*- C++ -*-===//
//
// After rwkv-lower-to-loops the module carries where every weight lives in
// the packed weight image (`rwkv.weight_layout`) and every state slot in the
// state (`rwkv.state_layout`). This reads them back, packs the image from
// the checkpoint and hashes the result, for the object's descriptor.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_MODELLAYOUT_H
#define RWKV_CODEGEN_MODELLAYOUT_H

#include "frontend/Checkpoint.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace rwkvc {

struct WeightEntry {
  std::string name;
  int64_t offset = 0;            // bytes into the image
  std::vector<int64_t> shape;
  std::string elementType;       // "f32", "f16", "bf16"
  std::optional<std::string> derive; // decay kind, for a derived weight
  std::string source;            // the weight it is derived from
  std::vector<std::string> parts; // packed: the matrices stacked, in order
  uint64_t bytes() const;
  uint64_t numElements() const;
};

struct SlotEntry {
  std::string name;
  int64_t offset = 0; // floats into the state
  int64_t size = 0;   // floats
  int32_t init = 0;   // 0 zero, 1 -1e30, 2 weight
  std::string initWeight;
};

struct ModelLayout {
  std::vector<WeightEntry> weights;
  std::vector<SlotEntry> slots;
  int64_t weightsBytes = 0;
  int64_t stateFloats = 0;
  const WeightEntry *findWeight(llvm::StringRef name) const;
};

/// Reads the layout attributes of a module lowered by rwkv-lower-to-loops.
llvm::Expected<ModelLayout> readModelLayout(mlir::ModuleOp module);

/// Packs the weight image: every weight converted from its stored type to
/// the image's element type (dequantizing quantized blocks), derived weights
/// computed in f32. Errors name the checkpoint.
llvm::Expected<std::vector<uint8_t>> packWeights(const ModelLayout &layout,
                                                 const Checkpoint &ckpt);

/// A hash of the image and the state layout: a state saved for one model is
/// refused by another.
uint64_t modelHash(const ModelLayout &layout, llvm::ArrayRef<uint8_t> image);

} // namespace rwkvc

#endif // RWKV_CODEGEN_MODELLAYOUT_H
