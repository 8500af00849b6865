//===- Pipelines.cpp - The CPU pipeline -----------------------------------===//
//
//   imported rwkv module
//     ──rwkv-optimize-pipeline, CPU fusions──▶ fused (-emit=fused)
//     ──rwkv-dequantize-weights, rwkv-lower-to-loops──▶ loops (-emit=loops)
//     ──rwkv-loops-to-llvm──▶ LLVM dialect (-emit=llvm-dialect)
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::rwkv::cpu {

void buildCPUFusions(OpPassManager &pm) {
  pm.addPass(createRWKVFuseLayerNormPass());
  pm.addPass(createRWKVFuseTokenShiftPass());
  pm.addPass(createRWKVFuseGatesPass());
  pm.addPass(createRWKVPackProjectionsPass());
  pm.addPass(createCanonicalizerPass());
}

void buildCPUPipelineToLoops(OpPassManager &pm, bool fuse,
                             StringRef matrixType) {
  buildRWKVOptimizePipeline(pm);
  if (fuse)
    buildCPUFusions(pm);
  pm.addPass(createRWKVSelectWeightTypesPass(
      RWKVSelectWeightTypesPassOptions{matrixType.str()}));
  pm.addPass(createRWKVDequantizeWeightsPass());
  pm.addPass(createRWKVLowerToLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void buildCPUPipeline(OpPassManager &pm, bool fuse, StringRef matrixType) {
  buildCPUPipelineToLoops(pm, fuse, matrixType);
  pm.addPass(createRWKVLoopsToLLVMPass());
}

void registerCPUPipelines() {
  PassPipelineRegistration<>(
      "rwkv-cpu-pipeline",
      "The CPU pipeline: an imported rwkv module to the LLVM dialect",
      [](OpPassManager &pm) { buildCPUPipeline(pm); });
  PassPipelineRegistration<>(
      "rwkv-cpu-pipeline-to-loops",
      "The CPU pipeline up to loops over memrefs (upstream dialects)",
      [](OpPassManager &pm) { buildCPUPipelineToLoops(pm); });
}

} // namespace mlir::rwkv::cpu
