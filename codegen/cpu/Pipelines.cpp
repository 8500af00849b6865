//===- Pipelines.cpp - The CPU pipeline -----------------------------------===//
//
//   imported rwkv module
//     ──rwkv-optimize-pipeline──▶ folded (-emit=fused)
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

void buildCPUPipelineToLoops(OpPassManager &pm) {
  buildRWKVOptimizePipeline(pm);
  pm.addPass(createRWKVDequantizeWeightsPass());
  pm.addPass(createRWKVLowerToLoopsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void buildCPUPipeline(OpPassManager &pm) {
  buildCPUPipelineToLoops(pm);
  pm.addPass(createRWKVLoopsToLLVMPass());
}

void registerCPUPipelines() {
  PassPipelineRegistration<>(
      "rwkv-cpu-pipeline",
      "The CPU pipeline: an imported rwkv module to the LLVM dialect",
      buildCPUPipeline);
  PassPipelineRegistration<>(
      "rwkv-cpu-pipeline-to-loops",
      "The CPU pipeline up to loops over memrefs (upstream dialects)",
      buildCPUPipelineToLoops);
}

} // namespace mlir::rwkv::cpu
