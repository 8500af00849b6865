//===- VectorReductions.cpp - Lane sums of many vectors at once -----------===//
//
// vector<W x f32> × N ──vector.shuffle + arith.addf tree──▶ vector<N x f32>
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/VectorReductions.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::rwkv::cpu;

bool mlir::rwkv::cpu::canReduceRows(int64_t n, int64_t width) {
  return n >= 2 && n <= width && llvm::isPowerOf2_64(uint64_t(n)) &&
         llvm::isPowerOf2_64(uint64_t(width));
}

Value mlir::rwkv::cpu::reduceRows(LoweringContext &cx, ArrayRef<Value> rows) {
  int64_t width = cast<VectorType>(rows[0].getType()).getDimSize(0);
  int64_t n = int64_t(rows.size());
  assert(canReduceRows(n, width) && "reduceRows: bad row count");
  auto shuffle = [&](Value a, Value b, ArrayRef<int64_t> mask) {
    return vector::ShuffleOp::create(cx.b, cx.loc, a, b, mask).getResult();
  };
  // Pairs of vectors of R rows x P partials ──▶ one of 2R rows x P/2: lanes
  // [r P, r P + P/2) of each input plus lanes [r P + P/2, (r + 1) P).
  SmallVector<Value> level(rows);
  int64_t perRow = width;
  while (level.size() > 1) {
    SmallVector<Value> next;
    int64_t rowsIn = width / perRow, half = perRow / 2;
    SmallVector<int64_t> lo, hi;
    for (int64_t src = 0; src < 2; ++src)
      for (int64_t r = 0; r < rowsIn; ++r)
        for (int64_t j = 0; j < half; ++j) {
          lo.push_back(src * width + r * perRow + j);
          hi.push_back(src * width + r * perRow + half + j);
        }
    for (size_t v = 0; v < level.size(); v += 2)
      next.push_back(cx.add(shuffle(level[v], level[v + 1], lo),
                            shuffle(level[v], level[v + 1], hi)));
    level = std::move(next);
    perRow = half;
  }
  // One vector of N rows x P partials: add its halves until P = 1.
  Value sum = level[0];
  for (; perRow > 1; perRow /= 2) {
    SmallVector<int64_t> lo, hi;
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < perRow / 2; ++j) {
        lo.push_back(r * perRow + j);
        hi.push_back(r * perRow + perRow / 2 + j);
      }
    sum = cx.add(shuffle(sum, sum, lo), shuffle(sum, sum, hi));
  }
  return sum;
}

Value mlir::rwkv::cpu::splatLane(LoweringContext &cx, Value vec, int64_t lane,
                                 int64_t width) {
  Value scalar = vector::ExtractOp::create(cx.b, cx.loc, vec, lane);
  return cx.splat(scalar, width);
}
