//===- VectorReductions.h - Lane sums of many vectors at once ---*- C++ -*-===//
//
// Helpers shared by the op-family lowerings (LowerLinear.cpp, LowerWKV.cpp)
// on top of LoweringContext: the lane sums of a set of vectors as one vector
// (a transposing shuffle tree) instead of one horizontal sum per vector.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CPU_VECTORREDUCTIONS_H
#define RWKV_CODEGEN_CPU_VECTORREDUCTIONS_H

#include "codegen/cpu/Lowering.h"

namespace mlir::rwkv::cpu {

/// Whether reduceRows takes `n` vectors of `width` lanes: n a power of two,
/// 2 <= n <= width.
bool canReduceRows(int64_t n, int64_t width);

/// The lane sums of `rows` (canReduceRows: N vectors of `width` f32 lanes)
/// as one vector<N x f32>, lane r the sum of rows[r]. A transposing tree:
///
///   level: pairs of vectors holding R rows of P partial sums each
///          ──shuffle lo halves, shuffle hi halves, add──▶ 2R rows of P/2
///   then:  one vector of N rows of P partials ──halves added──▶ N lanes
///
/// 3 (N - 1) + 3 log2(width / N) ops, e.g. 45 for 16 rows of 16 lanes
/// where N separate horizontal sums take ~8 dependent ops each. The sums
/// are reassociated (as vector.reduction <add> with reassoc allows).
Value reduceRows(LoweringContext &cx, ArrayRef<Value> rows);

/// Lane `lane` of `vec` broadcast to a vector<width x f32>.
Value splatLane(LoweringContext &cx, Value vec, int64_t lane, int64_t width);

} // namespace mlir::rwkv::cpu

#endif // RWKV_CODEGEN_CPU_VECTORREDUCTIONS_H
