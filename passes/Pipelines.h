//===- Pipelines.h - Named rwkv pass pipelines ---------------------*- C++ -*-===//
//
// Pipelines are builder functions, registered with rwkv-opt under a flag and
// used by the rwkvc driver, so each is tested as a whole.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_PASSES_PIPELINES_H
#define RWKV_PASSES_PIPELINES_H

#include "passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace mlir::rwkv {

/// What every target's pipeline takes from the command line.
struct PipelineOptions {
  bool fuse = true;                       // the target's fusion passes
  WeightType weightType = WeightType::keep; // storage of the matrices
  /// The CPU the code is for (--target-cpu, --target-features; empty: this
  /// machine's): the CPU target picks the instructions of its quantized
  /// products from its features.
  std::string targetCPU, targetFeatures;
  /// Whether the target's products read block-quantized weights (else
  /// every quantized weight is stored as f32 and a quantized weightType is
  /// an error).
  bool quantizedWeights = true;
  /// Whether the CPU code has the batched decode entry (@f_batch,
  /// rwkv_model_forward_batch): B sequences on their own states, each
  /// weight read once per step for all of them.
  bool batchEntry = true;
  /// Whether decode's code reads the weights as a stream from memory (tiles
  /// of one row, prefetches): "auto" (when the image exceeds what stays in
  /// the last-level cache), "on" or "off".
  std::string streamWeights = "auto";
};

/// PipelineOptions as the options of a registered pipeline
/// (`rwkv-opt --rwkv-cpu-pipeline="weight-type=f16 fuse=false"`).
struct PipelineCLOptions : public PassPipelineOptions<PipelineCLOptions> {
  Option<bool> fuse{*this, "fuse",
                    llvm::cl::desc("Run the target's fusion passes"),
                    llvm::cl::init(true)};
  Option<WeightType> weightType{
      *this, "weight-type",
      llvm::cl::desc("Storage type of the weight matrices"),
      llvm::cl::init(WeightType::keep), weightTypeValues()};
  Option<std::string> targetCPU{
      *this, "target-cpu",
      llvm::cl::desc("The CPU to generate code for (default: this machine's)")};
  Option<std::string> targetFeatures{
      *this, "target-features",
      llvm::cl::desc("Its features (+avx512vnni,...; default: the CPU's)")};
  Option<bool> batchEntry{
      *this, "batch-entry",
      llvm::cl::desc("Build the batched decode entry (@f_batch)"),
      llvm::cl::init(true)};
  Option<std::string> streamWeights{
      *this, "stream-weights",
      llvm::cl::desc("Decode's code for weights streamed from memory: auto, "
                     "on or off"),
      llvm::cl::init("auto")};
  PipelineOptions get() const {
    return {fuse,       weightType, targetCPU,    targetFeatures,
            true,       batchEntry, streamWeights};
  }
};

/// Target-independent clean-up of an imported module:
/// fold constants derivable from weights, canonicalize, CSE.
/// (`rwkv-opt --rwkv-optimize-pipeline`)
void buildRWKVOptimizePipeline(OpPassManager &pm);

/// Registers every named pipeline with the pass registry.
void registerRWKVPipelines();

} // namespace mlir::rwkv

#endif // RWKV_PASSES_PIPELINES_H
