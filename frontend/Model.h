//===- Model.h - RWKV model description --------------------------*- C++ -*-===//
//
// Detects the RWKV version of a checkpoint, infers every hyper-parameter from
// the tensors and checks every tensor's presence, shape and element type.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_MODEL_H
#define RWKVC_FRONTEND_MODEL_H

#include "frontend/Checkpoint.h"

namespace rwkvc {

/// Versions as ChatRWKV's `rwkv` package numbers them (rwkv.cpp's "5.1" is
/// V5_0 here).
enum class Version { V4, V5_0, V5_1, V5_2, V6, V7 };
llvm::StringRef versionName(Version v); // "4", "5.0", "5.1", "5.2", "6", "7"

struct ModelInfo {
  Version version = Version::V4;
  int64_t nLayer = 0;
  int64_t nEmbd = 0;    // C
  int64_t nHead = 0;    // H (v4: 0, per-channel)
  int64_t headSize = 0; // N = C / H (v4: 0)
  int64_t vocab = 0;    // V
  int64_t ffn = 0;      // F
  // LoRA widths (0 where the version has none).
  int64_t loraMix = 0;   // v6 time_maa_w1 is (C, 5 * loraMix)
  int64_t loraDecay = 0; // v6 time_decay_w1 (C, loraDecay); v7 w1 (C, Dw)
  int64_t loraA = 0;     // v7 a1
  int64_t loraV = 0;     // v7 v1 (layers >= 1)
  int64_t loraG = 0;     // v7 g1
  /// v5.x only: the bonus tensor is time_first (used as exp) rather than
  /// time_faaaa.
  bool bonusIsTimeFirst = false;
  bool hasTimeState = false;  // blocks.i.att.time_state present
  bool v7LayerZeroHasV = false; // v7: block 0 carries att.v0/v1/v2 (unused)
  uint64_t parameterCount = 0;
  /// Bytes of tensor data by element type name.
  std::vector<std::pair<std::string, uint64_t>> bytesByType;
  /// Tensors present that the version does not use (reported, not an error).
  std::vector<std::string> extraTensors;
  /// Findings that are not errors: NaN/Inf in a tensor, unused tensors...
  std::vector<std::string> anomalies;
  /// Number of NaN/Inf values found (compile refuses these unless forced).
  uint64_t nonFiniteValues = 0;
};

/// Detects the version and checks the checkpoint against it. Errors name the
/// file and the fault ("model.pth: blocks.3.att.key.weight: expected shape
/// (64, 64), found (64, 32)"). With `scanValues`, also counts the NaN and
/// Inf values of every tensor (nonFiniteValues, anomalies): that reads the
/// whole checkpoint; a compile that packs the weights counts them as it
/// packs instead (PackOptions::nonFiniteValues), reading it once.
llvm::Expected<ModelInfo> describeModel(const Checkpoint &ckpt,
                                        bool scanValues = true);

/// The NaN and Inf counts of elements [first, first + count) of `t` (float
/// types read in place, branch-free; quantized ones decoded).
std::pair<uint64_t, uint64_t> countNonFinite(const Tensor &t, uint64_t first,
                                             uint64_t count);

/// The name of the tensor `suffix` of layer `i` ("blocks.<i>.<suffix>").
std::string layerTensorName(int64_t i, llvm::StringRef suffix);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_MODEL_H
