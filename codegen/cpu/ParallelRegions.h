//===- ParallelRegions.h - One parallel region per call -------------------===//
//
// Part of rwkv-loops-to-llvm: after convert-scf-to-openmp, a function that
// forks and joins once per product (an omp.parallel around each
// omp.wsloop) is rewritten to fork once: one omp.parallel around its body,
// the work-sharing loops inside it (each ending in its barrier), the serial
// code between them on one thread (omp.masked, then a barrier), the code
// without writes on every thread.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CPU_PARALLELREGIONS_H
#define RWKV_CODEGEN_CPU_PARALLELREGIONS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::rwkv::cpu {

/// Rewrites `fn` to one parallel region (see above). Leaves `fn` as it is
/// and returns false where it cannot: serial code with writes whose results
/// later code uses, a parallel region inside an op other than scf.for or
/// scf.if, a buffer allocated with a size computed in the body, or a
/// function with fewer than two regions.
bool fuseParallelRegions(func::FuncOp fn);

} // namespace mlir::rwkv::cpu

#endif // RWKV_CODEGEN_CPU_PARALLELREGIONS_H
