//===- Pipelines.cpp - Named rwkv pass pipelines --------------------------===//

#include "passes/Pipelines.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::rwkv {

void buildRWKVOptimizePipeline(OpPassManager &pm) {
  pm.addPass(createRWKVFoldDecayPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void registerRWKVPipelines() {
  PassPipelineRegistration<>(
      "rwkv-optimize-pipeline",
      "Target-independent clean-up: fold weight-derived constants, "
      "canonicalize, CSE",
      buildRWKVOptimizePipeline);
}

} // namespace mlir::rwkv
