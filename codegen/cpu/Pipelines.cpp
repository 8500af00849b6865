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
#include "codegen/cpu/EmitObject.h"
#include "passes/Passes.h"
#include "passes/Pipelines.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/MC/MCSubtargetInfo.h"

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
  pm.addPass(createRWKVSelectWeightTypesPass(RWKVSelectWeightTypesPassOptions{
      options.weightType, options.quantizedWeights}));
  pm.addPass(createRWKVDequantizeWeightsPass(
      RWKVDequantizeWeightsPassOptions{!options.quantizedWeights}));
  pm.addPass(createRWKVFormLayerStackPass());
  pm.addPass(createRWKVAssignLayoutPass(
      RWKVAssignLayoutPassOptions{kWeightAlignment, kSlotAlignment}));
}

std::string selectQuantDot(StringRef cpu, StringRef features) {
  auto machine = rwkvc::createTargetMachine({"", cpu.str(), features.str()});
  if (!machine) {
    llvm::consumeError(machine.takeError());
    return "generic";
  }
  const llvm::MCSubtargetInfo *sti = (*machine)->getMCSubtargetInfo();
  if (!(*machine)->getTargetTriple().isX86())
    return "generic";
  if (sti->checkFeatures("+avx512vnni,+avx512bw,+avx512vl"))
    return "avx512-vnni";
  if (sti->checkFeatures("+avxvnni"))
    return "avx-vnni";
  if (sti->checkFeatures("+avx2"))
    return "avx2";
  return "generic";
}

void buildCPULoweringFromLayout(OpPassManager &pm, bool toLLVM,
                                const PipelineOptions &options) {
  pm.addPass(createRWKVLowerToLoopsPass(RWKVLowerToLoopsPassOptions{
      options.batchEntry,
      selectQuantDot(options.targetCPU, options.targetFeatures),
      options.streamWeights}));
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
  buildCPULoweringFromLayout(pm, /*toLLVM=*/false, options);
}

void buildCPUPipeline(OpPassManager &pm, const PipelineOptions &options) {
  buildCPUPipelineToLayout(pm, options);
  buildCPULoweringFromLayout(pm, /*toLLVM=*/true, options);
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
