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

namespace mlir::rwkv::cpu {

#define GEN_PASS_DECL
#include "codegen/cpu/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "codegen/cpu/Passes.h.inc"

/// The whole CPU pipeline from an imported module to the LLVM dialect:
/// the target-independent rwkv pipeline, the CPU fusions and layouts,
/// rwkv-lower-to-loops, rwkv-loops-to-llvm. (`rwkv-opt --rwkv-cpu-pipeline`)
void buildCPUPipeline(OpPassManager &pm, bool fuse = true);
/// The fusions the CPU kernels implement: layer norm + token shift, token
/// shift mixes into projections, gates into projections.
void buildCPUFusions(OpPassManager &pm);
/// Only up to the loops (`-emit=loops`).
void buildCPUPipelineToLoops(OpPassManager &pm, bool fuse = true);
void registerCPUPipelines();

} // namespace mlir::rwkv::cpu

#endif // RWKV_CODEGEN_CPU_PASSES_H
