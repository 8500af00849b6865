//===- Pipelines.cpp - The CPU pipeline -----------------------------------===//
//
//   imported rwkv module
//     ──rwkv-optimize-pipeline, CPU fusions──▶ fused (-emit=fused)
//     ──rwkv-select-weight-types, rwkv-dequantize-weights,
//       rwkv-form-layer-stack, rwkv-assign-layout (CPU alignments),
//       rwkv-lower-to-loops──▶ loops
//       (-emit=loops)
//     ──rwkv-loops-to-llvm──▶ LLVM dialect (-emit=llvm-dialect)
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
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

void buildCPUPipelineToFused(OpPassManager &pm,
                             const PipelineOptions &options) {
  buildRWKVOptimizePipeline(pm);
  if (options.fuse)
    buildCPUFusions(pm);
}

void buildCPUPipelineToLayout(OpPassManager &pm,
                              const PipelineOptions &options) {
  buildCPUPipelineToFused(pm, options);
  pm.addPass(createRWKVSelectWeightTypesPass(
      RWKVSelectWeightTypesPassOptions{options.weightType}));
  pm.addPass(createRWKVDequantizeWeightsPass());
  pm.addPass(createRWKVFormLayerStackPass());
  pm.addPass(createRWKVAssignLayoutPass(
      RWKVAssignLayoutPassOptions{kWeightAlignment, kSlotAlignment}));
}

void buildCPULoweringFromLayout(OpPassManager &pm, bool toLLVM) {
  pm.addPass(createRWKVLowerToLoopsPass());
  // Function by function, the functions in parallel.
  OpPassManager &fn = pm.nest<func::FuncOp>();
  fn.addPass(createCanonicalizerPass());
  fn.addPass(createCSEPass());
  if (toLLVM)
    pm.addPass(createRWKVLoopsToLLVMPass());
}

void buildCPUPipelineToLoops(OpPassManager &pm,
                             const PipelineOptions &options) {
  buildCPUPipelineToLayout(pm, options);
  buildCPULoweringFromLayout(pm, /*toLLVM=*/false);
}

void buildCPUPipeline(OpPassManager &pm, const PipelineOptions &options) {
  buildCPUPipelineToLayout(pm, options);
  buildCPULoweringFromLayout(pm, /*toLLVM=*/true);
}

void registerCPUPipelines() {
  PassPipelineRegistration<PipelineCLOptions>(
      "rwkv-cpu-pipeline",
      "The CPU pipeline: an imported rwkv module to the LLVM dialect",
      [](OpPassManager &pm, const PipelineCLOptions &options) {
        buildCPUPipeline(pm, options.get());
      });
  PassPipelineRegistration<PipelineCLOptions>(
      "rwkv-cpu-pipeline-to-loops",
      "The CPU pipeline up to loops over memrefs (upstream dialects)",
      [](OpPassManager &pm, const PipelineCLOptions &options) {
        buildCPUPipelineToLoops(pm, options.get());
      });
}

} // namespace mlir::rwkv::cpu
