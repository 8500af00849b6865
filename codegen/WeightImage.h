//===- WeightImage.h - Packing the weight image of a model --------*- C++ -*-===//
//
//   Checkpoint tensors ──(derive, stack, convert to the stored type)──▶
//   the packed weight image, laid out as ModelLayout says ──▶ model hash
//
// Target-neutral: every backend loads the same image.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_WEIGHTIMAGE_H
#define RWKV_CODEGEN_WEIGHTIMAGE_H

#include "codegen/ModelLayout.h"
#include "frontend/Checkpoint.h"

#include <vector>

namespace rwkvc {

/// The value of a derived weight element (rwkv.decay of kind `kind`, as
/// docs/dialect.md defines it), in f32.
float evaluateDecay(mlir::rwkv::DecayKind kind, float d);

/// Packs the weight image: every weight converted from its stored type to
/// the image's element type (dequantizing quantized blocks), derived weights
/// computed in f32. Errors name the checkpoint.
llvm::Expected<std::vector<uint8_t>> packWeights(const ModelLayout &layout,
                                                 const Checkpoint &ckpt);

/// A hash of the image and the state layout: a state saved for one model is
/// refused by another.
uint64_t modelHash(const ModelLayout &layout, llvm::ArrayRef<uint8_t> image);

} // namespace rwkvc

#endif // RWKV_CODEGEN_WEIGHTIMAGE_H
