//===- Passes.h - CPU code generation passes ---------------------*- C++ -*-===//

#ifndef RWKV_CODEGEN_CPU_PASSES_H
#define RWKV_CODEGEN_CPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "passes/Pipelines.h"

namespace mlir::rwkv::cpu {

#define GEN_PASS_DECL
#include "codegen/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/cpu/Passes.h.inc"

/// The CPU's alignments (#rwkv.resource_config): a weight starts on a
/// cache line, a state slot on a 16-float (AVX-512 register) boundary.
constexpr int64_t kWeightAlignment = 64; // bytes
constexpr int64_t kSlotAlignment = 16;   // floats

/// The name in the location (a NameLoc) of an scf.parallel of ops run side
/// by side (LoweringContext::sideBySideLoop), which rwkv-loops-to-llvm
/// schedules dynamically: iterations of unequal work, handed out one by one.
constexpr llvm::StringLiteral kSideBySideLoopName = "rwkv.side_by_side";

/// The whole CPU pipeline from an imported module to the LLVM dialect:
/// the target-independent rwkv pipeline, the CPU fusions, weight types,
/// rwkv-assign-layout, rwkv-lower-to-loops, rwkv-loops-to-llvm.
/// (`rwkv-opt --rwkv-cpu-pipeline="weight-type=f16 fuse=false"`)
void buildCPUPipeline(OpPassManager &pm, const PipelineOptions &options = {});
/// The fusions the CPU kernels implement: layer norm + token shift, token
/// shift mixes into projections, gates into projections.
void buildCPUFusions(OpPassManager &pm);
/// Only up to the fused rwkv ops (`-emit=fused`).
void buildCPUPipelineToFused(OpPassManager &pm,
                             const PipelineOptions &options = {});
/// Up to rwkv-assign-layout: the fused ops with weight types, layer stacks
/// and placements. The CUDA target uses it too, so that a model's weight
/// image and state layout are the same for both targets (`--target=cpu,cuda`
/// ships one image, and states move between the backends).
void buildCPUPipelineToLayout(OpPassManager &pm,
                              const PipelineOptions &options = {});
/// The CPU lowering of a module placed by buildCPUPipelineToLayout: to
/// loops over memrefs, and with `toLLVM` on to the LLVM dialect (the
/// `cpu,cuda` target lowers a copy of the placed module with it), for the
/// CPU `options` name.
void buildCPULoweringFromLayout(OpPassManager &pm, bool toLLVM,
                                const PipelineOptions &options = {});
/// The `quant-dot` of rwkv-lower-to-loops for a CPU and its features
/// (empty: this machine's): avx512-vnni, avx-vnni, avx2 or generic.
std::string selectQuantDot(StringRef cpu, StringRef features);
/// Only up to the loops (`-emit=loops`, `rwkv-opt
/// --rwkv-cpu-pipeline-to-loops`).
void buildCPUPipelineToLoops(OpPassManager &pm,
                             const PipelineOptions &options = {});
void registerCPUPipelines();

} // namespace mlir::rwkv::cpu

#endif // RWKV_CODEGEN_CPU_PASSES_H
