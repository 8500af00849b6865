//===- Pipelines.h - Named rwkv pass pipelines ---------------------*- C++ -*-===//
//
// Pipelines are builder functions, registered with rwkv-opt under a flag and
// used by the rwkvc driver, so each is tested as a whole.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_PASSES_PIPELINES_H
#define RWKV_PASSES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

namespace mlir::rwkv {

/// Target-independent clean-up of an imported module:
/// fold constants derivable from weights, canonicalize, CSE.
/// (`rwkv-opt --rwkv-optimize-pipeline`)
void buildRWKVOptimizePipeline(OpPassManager &pm);

/// Registers every named pipeline with the pass registry.
void registerRWKVPipelines();

} // namespace mlir::rwkv

#endif // RWKV_PASSES_PIPELINES_H
