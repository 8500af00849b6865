//===- LowerLinear.cpp - Lowering linear maps to SIMD loops ---------------===//
//
// Lowers the linear-map family of the rwkv dialect to scf.for loops over
// memrefs whose bodies are f32 vector FMAs (vector<16xf32> when the
// contracted or output dimension allows it), with f16/bf16 weights widened
// to f32 as they are loaded:
//
//   rwkv.linear {out_in}  ──▶ tiles of (tokens × rows) vector accumulators,
//                             loop over `in` in vector steps, the tile's
//                             lane sums by one shuffle tree; in a sequence
//                             bf16 weights are read in (even, odd) pairs
//                             against a pair-ordered copy of x, and each
//                             tile of block-quantized rows is dequantized
//                             to f32 first; decode of quantized weights is
//                             LowerQuantLinear.cpp's
//   rwkv.linear {in_out}  ──▶ tiles of (tokens × column vectors)
//                             accumulators, loop over `in` with x broadcast
//   rwkv.lora             ──▶ in_out product into a (T, D) scratch with
//                             `act`, then in_out product with bias/out_act
//   rwkv.ddlerp           ──▶ in_out product of the mix (computed as it is
//                             read) by W1 with tanh into a (T, F*D)
//                             scratch, then one in_out product per mix
//                             with the epilogue x + sx * (maa_f + acc)
//
// Loop structure of a product (N outputs, K contracted):
//
//   for n0 in [0, N) step tileN            // output tiles (rows or columns)
//     for t0 in [0, T) step tileT          // token tiles (T = 1: one tile)
//       acc[tileT][tileN] = 0               // registers, scf.for iter_args
//       for k in [0, K) step ...            // FMAs into acc
//       store acc (with epilogue)
//
// with a static tile for the remainder of N and a one-token tile loop for
// the remainder of T. Output tiles are outermost so that a tile of weight
// rows stays in cache while every token tile of a sequence reuses it.
//
// Decode of a model that streams its weights from memory takes one row per
// out_in tile when rows are shorter than two pages (one linear stream); the
// output tiles of a product of at least a MiB are an scf.parallel, split
// across threads (LoweringContext::worthThreads).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"
#include "codegen/cpu/VectorReductions.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <algorithm>
#include <functional>

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

// Tile sizes. Decode (T = 1) streams the weight once, so it wants several
// independent accumulators to hide FMA latency; a sequence reuses each
// loaded weight vector for several tokens. Each tile keeps at most 16
// accumulators live, which leaves room for the loaded operands in the 32
// AVX-512 registers.
constexpr int64_t kDecodeRows = 8;    // out_in, T = 1: rows per tile
constexpr int64_t kSeqRows = 4;       // out_in, T > 1: rows per tile
constexpr int64_t kDecodeColVecs = 8; // in_out, T = 1: column vectors per tile
// in_out, T = 1, wider than a tile in a model that streams its weights:
// rows of W per pass over y (inOutRowsDecode). One: the row is one stream.
// scripts/lora_up_bench.c, the 0.4B's four LoRA up-projections (f16) from
// memory, one thread: 24-27 GB/s a row at a time, 9.6-11.7 GB/s with 2
// or 4 rows a pass (as many streams 2 KiB apart).
constexpr int64_t kDecodeInOutRows = 1;
constexpr int64_t kSeqColVecs = 4;    // in_out, T > 1: column vectors per tile
constexpr int64_t kSeqTokens = 4;     // T > 1: tokens per tile
// Batch function, out_in: tiles of kBatchTokens tokens by kBatchSubRows
// rows (batchTokenTiles).
constexpr int64_t kBatchTokens = 8;
constexpr int64_t kBatchSubRows = 2;
// Batch function, out_in product of K > kBatchChunkK: K contracted in
// chunks of kBatchChunkK, output tiles of kBatchChunkRows rows.
constexpr int64_t kBatchChunkK = 768;
constexpr int64_t kBatchChunkRows = 8;
// Decode of a model that streams its weights: rows shorter than this (two
// 4 KiB pages) read one per tile (emitOutIn).
constexpr int64_t kStreamRowBytes = 8192;
// A tile with fewer accumulators (remainder tiles, narrow LoRA products)
// unrolls its contracted loop with up to kMaxSets independent sets of
// accumulators so that about kMinChains FMA chains are in flight: an FMA
// chain of length K is otherwise latency-bound.
constexpr int64_t kMinChains = 8;
constexpr int64_t kMaxSets = 4;

//===----------------------------------------------------------------------===//
// Small builders
//===----------------------------------------------------------------------===//

Value applyActivation(LoweringContext &cx, Activation act, Value v) {
  switch (act) {
  case Activation::none:
    return v;
  case Activation::tanh:
    return cx.tanh(v);
  case Activation::sigmoid:
    return cx.sigmoid(v);
  }
  llvm_unreachable("unknown activation");
}

//===----------------------------------------------------------------------===//
// Batch decode tiles
//===----------------------------------------------------------------------===//

// A batch function (LoweringContext::batch) decodes B sequences of one token
// each: every product reads its weights from memory once for the B rows.
// Its in_out tiles are the sequence's; its out_in tiles are blocks of 8
// tokens by 2 weight rows, then clamped tiles of 4 by 4 (batchTokenTiles:
// on the 0.1B shape, f16, B = 8, one thread, 271-299 tok/s with the
// sequence's 4 by 4 tiles, 384-420 with these). Each step of an out_in tile's
// loop prefetches the same columns of the next tile's rows: the weights stream
// from memory while the tile computes (measured on the 0.1B shape, f16, B = 8,
// one thread: 190 tok per CPU-s without, 290-380 with; docs/performance.md,
// "Batched decode"). A tile of 2 tokens for the remainder was tried: B = 3 went
// from 160-185 to 195-210 tok per CPU-s, but the batch function grew by a third
// (compile time).

/// In a batch function: prefetches, for each of the tile's rows, the same
/// columns [i, i + width) of the row `ahead` rows further down (the next
/// tile's), clamped to the last row, so that the weight stream arrives
/// while the tile computes.
void prefetchRowsAhead(LoweringContext &cx, Value w, ArrayRef<Value> prefix,
                       ArrayRef<Value> rows, Value i, int64_t ahead,
                       int64_t numRows) {
  for (Value row : rows) {
    Value next = arith::MinUIOp::create(cx.b, cx.loc, cx.addIndex(row, ahead),
                                        cx.index(numRows - 1));
    SmallVector<Value> idx(prefix);
    idx.push_back(next);
    idx.push_back(i);
    memref::PrefetchOp::create(cx.b, cx.loc, w, idx, /*isWrite=*/false,
                               /*localityHint=*/3, /*isDataCache=*/true);
  }
}

/// Calls `tile(n0, size)` over [0, n) in tiles of `tileSize`, the last
/// (static) remainder as one smaller tile. With `parallel` the full tiles
/// are split across threads (the remainder runs after them, on the
/// calling thread).
void forOutputTiles(LoweringContext &cx, int64_t n, int64_t tileSize,
                    function_ref<void(Value n0, int64_t size)> tile,
                    bool parallel = false) {
  int64_t full = n / tileSize * tileSize;
  if (full == tileSize)
    tile(cx.index(0), tileSize);
  else if (full > 0)
    cx.forLoopMaybeParallel(cx.index(0), cx.index(full), tileSize, parallel,
                            [&](Value n0) { tile(n0, tileSize); });
  if (n % tileSize)
    tile(cx.index(full), n % tileSize);
}

//===----------------------------------------------------------------------===//
// Products
//===----------------------------------------------------------------------===//

/// A product y[t][n] = Σ_k x[t][xOffset + k] · W(k, n), K contracted, N
/// outputs, accumulated in f32.
struct Product {
  Value x;             // (T, *) f32 activation
  int64_t xOffset = 0; // first column of x read
  Value w;             // weight view, any of f32/f16/bf16 (or quantized
                       // bytes: LoweringContext::quantKind)
  /// Leading indices of the weight view before its two matrix dimensions
  /// (ddlerp's W2[f]).
  SmallVector<Value> wPrefix;
  int64_t K = 0;
  int64_t N = 0;
  Value y; // (T, N) f32 result (out_in: null, allocated by emitOutIn)
  /// in_out only: applied to each accumulated vector before it is stored,
  /// given the token and the first column of the vector.
  std::function<Value(Value acc, Value t, Value n)> epilogue;
  /// in_out only: computes the input scalar x[t][k] (f32) instead of
  /// loading it from `x` (ddlerp's mix, fused into the product).
  std::function<Value(Value t, Value k)> input;
  /// out_in only: computes the input vector x[t][k .. k + width) instead of
  /// loading it from `x` (the fused ops' input transforms).
  std::function<Value(Value t, Value k, int64_t width)> inputVec;
  /// out_in only: `w` holds the rows from output row wRowBase on (a tile of
  /// quantized rows dequantized to f32); null: w holds every row.
  Value wRowBase;
  /// out_in only: applied to the sums of token t, rows [row, row + n) (a
  /// vector of n, or one f32) as they are stored (fuseIntoStores); null:
  /// stored as they are.
  std::function<Value(Value sums, Value t, Value row)> onStore;
};

/// Bytes of the weight a product reads (K x N elements, or N rows of
/// quantized blocks).
int64_t weightBytes(LoweringContext &cx, const Product &p) {
  auto type = cast<MemRefType>(p.w.getType());
  if (cx.quantKind(p.w))
    return p.N * type.getDimSize(1);
  return p.K * p.N * int64_t(type.getElementTypeBitWidth() / 8);
}

/// What a product weighs for LoweringContext::worthThreads: its weight
/// bytes, block-quantized weights counted as f16. Unpacking and scaling a
/// block costs the core about what streaming 32 f16 weights does (decode
/// of q4_0 is compute-bound on one core: 70% of its memory bandwidth on the
/// 169M shape), so a 768 x 768 q4_0 product, 332 KB, is as worth threads
/// as its 1.2 MB f16 form; by its bytes alone it ran on one thread.
int64_t threadBytes(LoweringContext &cx, const Product &p) {
  int64_t bytes = weightBytes(cx, p);
  if (cx.quantKind(p.w))
    bytes = std::max(bytes, p.K * p.N * 2);
  return bytes;
}

SmallVector<Value> weightIndices(const Product &p, Value row, Value col) {
  SmallVector<Value> idx(p.wPrefix);
  idx.push_back(row);
  idx.push_back(col);
  return idx;
}

/// Accumulates `numAccs` vector<width x f32> accumulators (from zero) over
/// k in [0, K) in steps of `step`; `fmaStep(k, accs)` returns the updated
/// accumulators. Narrow tiles are unrolled by several independent sets of
/// accumulators, summed after the loop; K % (step × sets) is handled by a
/// remainder loop on the summed set.
SmallVector<Value>
accumulate(LoweringContext &cx, int64_t K, int64_t step, int64_t numAccs,
           int64_t width,
           function_ref<SmallVector<Value>(Value k, ValueRange accs)> fmaStep,
           Value k0 = {}) {
  int64_t sets =
      std::min<int64_t>(kMaxSets, llvm::divideCeil(kMinChains, numAccs));
  while (sets > 1 && K / (step * sets) < 2)
    --sets;
  int64_t chunk = step * sets;
  int64_t mainEnd = K / chunk * chunk;
  SmallVector<Value> accs(numAccs * sets, cx.splat(0.0f, width));
  // [k0, k0 + K): k0 0 unless given.
  auto at = [&](int64_t k) { return k0 ? cx.addIndex(k0, k) : cx.index(k); };
  if (mainEnd > 0)
    accs = cx.forLoopCarrying(
        at(0), at(mainEnd), chunk, accs, [&](Value k, ValueRange iters) {
          SmallVector<Value> next;
          for (int64_t q = 0; q < sets; ++q)
            llvm::append_range(next,
                               fmaStep(cx.addIndex(k, q * step),
                                       iters.slice(q * numAccs, numAccs)));
          return next;
        });
  SmallVector<Value> sum(accs.begin(), accs.begin() + numAccs);
  for (int64_t q = 1; q < sets; ++q)
    for (int64_t a = 0; a < numAccs; ++a)
      sum[a] = cx.add(sum[a], accs[q * numAccs + a]);
  if (mainEnd < K)
    sum = cx.forLoopCarrying(at(mainEnd), at(K), step, sum, fmaStep);
  return sum;
}

/// Whether a product reads its bf16 weights in pairs (seq mode): 32 bf16
/// weights W[o][i..i+32) load as one vector<16xi32> whose lanes hold the
/// pairs (W[o][i+2j], W[o][i+2j+1]); a shift left by 16 makes the even
/// weights f32, a mask of the high halves the odd ones: two integer ops for
/// 32 weights, where widening takes four (two extends and two shifts) on
/// the shuffle ports the FMAs compete for. The input is read in the same
/// order: its (T, K) scratch holds each block of 32 as the 16 even then the
/// 16 odd elements (pairOrder). Decoding (T = 1) streams the weights once
/// and keeps widening.
bool readsPairs(LoweringContext &cx, const Product &p) {
  Type w = cast<MemRefType>(p.w.getType()).getElementType();
  return !cx.oneToken && w.isBF16() && p.K % 32 == 0;
}

/// The even (`odd` false) or odd elements of 32 f32 lanes held as two
/// vector<16xf32>: lanes 2j (+1) of the concatenation.
Value pairOrder(LoweringContext &cx, Value lo, Value hi, bool odd) {
  SmallVector<int64_t> mask;
  for (int64_t j = 0; j < 16; ++j)
    mask.push_back(2 * j + (odd ? 1 : 0));
  return vector::ShuffleOp::create(cx.b, cx.loc, lo, hi, mask);
}

/// The even and odd weights of W[row][i..i+32) as two vector<16xf32>.
std::pair<Value, Value> loadWeightPairs(LoweringContext &cx, const Product &p,
                                        Value row, Value i) {
  Type bf16 = cast<MemRefType>(p.w.getType()).getElementType();
  auto i32 = VectorType::get({16}, cx.b.getI32Type());
  auto f32 = VectorType::get({16}, cx.b.getF32Type());
  auto splatI32 = [&](uint32_t v) {
    return arith::ConstantOp::create(
        cx.b, cx.loc,
        DenseElementsAttr::get(i32, cx.b.getI32IntegerAttr(int32_t(v))));
  };
  Value raw = vector::LoadOp::create(cx.b, cx.loc,
                                     VectorType::get({32}, bf16), p.w,
                                     weightIndices(p, row, i));
  Value pairs = vector::BitCastOp::create(cx.b, cx.loc, i32, raw);
  Value even = arith::ShLIOp::create(cx.b, cx.loc, pairs, splatI32(16));
  Value odd = arith::AndIOp::create(cx.b, cx.loc, pairs, splatI32(0xFFFF0000u));
  return {vector::BitCastOp::create(cx.b, cx.loc, f32, even),
          vector::BitCastOp::create(cx.b, cx.loc, f32, odd)};
}

/// How a batch function's out_in tile differs from a sequence's
/// (batchTokenTiles).
struct BatchTile {
  /// Token t + a is read and written as min(t + a, lastToken) (a remainder
  /// tile's surplus tokens repeat the last token's work and store the same
  /// values); null: no clamp.
  Value lastToken;
  /// Each step prefetches the rows this far down (the next output tile's);
  /// 0: nr.
  int64_t ahead = 0;
  /// The tile contracts [k0, k0 + kLen) only; null k0: all of K.
  Value k0;
  int64_t kLen = 0;
  /// i1: add the sums to y rather than store them (the chunks after the
  /// first); null: store.
  Value addToY;
  /// i1: the last chunk of K, the one whose stores apply the product's
  /// onStore; null: every store does.
  Value lastChunk;
};

/// out_in tile: y[t+a][o+r] = Σ_i W[o+r][i] x[t+a][i] for a < nt, r < nr.
/// A loop over i in vector steps with nt × nr vector accumulators; each
/// weight vector is used for nt tokens, each input vector for nr rows.
/// With `pairs` (readsPairs) a step is 32 elements: the even and the odd
/// weights against the even and odd halves of the pair-ordered input.
/// With `bt` (batchTokenTiles) the tile clamps its tokens, contracts part
/// of K or adds its sums to y, as BatchTile says.
void outInTile(LoweringContext &cx, const Product &p, bool pairs, Value t,
               int64_t nt, Value o, int64_t nr, const BatchTile *bt = nullptr) {
  int64_t width = pairs ? 16 : LoweringContext::vectorWidth(p.K);
  BatchTile whole;
  if (!bt)
    bt = &whole;
  int64_t K = bt->k0 ? bt->kLen : p.K;
  SmallVector<Value> tokens, rows, wRows;
  for (int64_t a = 0; a < nt; ++a) {
    tokens.push_back(cx.addIndex(t, a));
    if (bt->lastToken && a > 0)
      tokens.back() =
          arith::MinUIOp::create(cx.b, cx.loc, tokens.back(), bt->lastToken);
  }
  for (int64_t r = 0; r < nr; ++r) {
    rows.push_back(cx.addIndex(o, r));
    // Dequantized rows from wRowBase on: a batch tile's rows may start
    // after it (batchTokenTiles).
    if (!p.wRowBase)
      wRows.push_back(rows.back());
    else if (p.wRowBase == o)
      wRows.push_back(cx.index(r));
    else
      wRows.push_back(
          arith::SubIOp::create(cx.b, cx.loc, rows.back(), p.wRowBase));
  }

  auto pairStep = [&](Value i, ValueRange iters) {
    SmallVector<Value> even, odd;
    for (Value tok : tokens) {
      even.push_back(cx.load(p.x, {tok, i}, 16));
      odd.push_back(cx.load(p.x, {tok, cx.addIndex(i, 16)}, 16));
    }
    SmallVector<Value> next(iters);
    for (int64_t r = 0; r < nr; ++r) {
      auto [we, wo] = loadWeightPairs(cx, p, wRows[r], i);
      for (int64_t a = 0; a < nt; ++a)
        next[a * nr + r] =
            cx.fma(wo, odd[a], cx.fma(we, even[a], iters[a * nr + r]));
    }
    return next;
  };
  SmallVector<Value> acc =
      pairs ? accumulate(cx, K, 32, nt * nr, 16, pairStep, bt->k0)
            : accumulate(
                  cx, K, width, nt * nr, width,
                  [&](Value i, ValueRange iters) {
                    Value xi = cx.addIndex(i, p.xOffset);
                    SmallVector<Value> xs;
                    for (Value tok : tokens)
                      xs.push_back(p.inputVec ? p.inputVec(tok, xi, width)
                                              : cx.load(p.x, {tok, xi}, width));
                    SmallVector<Value> next(iters);
                    if (cx.batch())
                      prefetchRowsAhead(cx, p.w, p.wPrefix, rows, i,
                                        bt->ahead ? bt->ahead : nr, p.N);
                    for (int64_t r = 0; r < nr; ++r) {
                      Value wv =
                          cx.load(p.w, weightIndices(p, wRows[r], i), width);
                      for (int64_t a = 0; a < nt; ++a)
                        next[a * nr + r] = cx.fma(wv, xs[a], iters[a * nr + r]);
                    }
                    return next;
                  },
                  bt->k0);

  // With bt->addToY true, the sums are added to y; then p.onStore applies
  // (on the last chunk only, if K is contracted in chunks).
  auto addToY = [&](Value sums, Value tok, Value row, int64_t n) {
    if (bt->addToY) {
      Value y = n == 1 ? cx.loadScalar(p.y, {tok, row})
                       : cx.load(p.y, {tok, row}, n);
      sums = arith::SelectOp::create(cx.b, cx.loc, bt->addToY,
                                     cx.add(sums, y), sums);
    }
    if (!p.onStore)
      return sums;
    if (!bt->lastChunk)
      return p.onStore(sums, tok, row);
    return arith::SelectOp::create(cx.b, cx.loc, bt->lastChunk,
                                   p.onStore(sums, tok, row), sums)
        .getResult();
  };
  // A tile of nt x nr accumulators (a power of two, at most one per lane):
  // sum them all at once with a shuffle tree and store each token's nr
  // results with one vector store.
  if (canReduceRows(int64_t(acc.size()), width)) {
    Value sums = reduceRows(cx, acc);
    for (int64_t a = 0; a < nt; ++a) {
      Value row = nt == 1 ? sums
                          : vector::ExtractStridedSliceOp::create(
                                cx.b, cx.loc, sums, ArrayRef<int64_t>{a * nr},
                                ArrayRef<int64_t>{nr}, ArrayRef<int64_t>{1});
      cx.store(addToY(row, tokens[a], rows[0], nr), p.y, {tokens[a], rows[0]});
    }
    return;
  }
  for (int64_t a = 0; a < nt; ++a)
    for (int64_t r = 0; r < nr; ++r)
      memref::StoreOp::create(
          cx.b, cx.loc,
          addToY(cx.reduceAdd(acc[a * nr + r]), tokens[a], rows[r], 1), p.y,
          ValueRange{tokens[a], rows[r]});
}

/// in_out tile: y[t+a][j + v·w ..] = Σ_i x[t+a][i] W[i][j + v·w ..] for
/// a < nt, v < nv vectors of `width` columns. One loop over i with x[t+a][i]
/// broadcast and nt × nv vector accumulators.
void inOutTile(LoweringContext &cx, const Product &p, int64_t width, Value t,
               int64_t nt, Value j, int64_t nv) {
  SmallVector<Value> tokens, cols;
  for (int64_t a = 0; a < nt; ++a)
    tokens.push_back(cx.addIndex(t, a));
  for (int64_t v = 0; v < nv; ++v)
    cols.push_back(cx.addIndex(j, v * width));

  SmallVector<Value> acc = accumulate(
      cx, p.K, 1, nt * nv, width, [&](Value i, ValueRange iters) {
        Value xi = cx.addIndex(i, p.xOffset);
        SmallVector<Value> xs;
        for (Value tok : tokens)
          xs.push_back(cx.splat(p.input ? p.input(tok, xi)
                                        : cx.loadScalar(p.x, {tok, xi}),
                                width));
        SmallVector<Value> next(iters);
        for (int64_t v = 0; v < nv; ++v) {
          Value wv = cx.load(p.w, weightIndices(p, i, cols[v]), width);
          for (int64_t a = 0; a < nt; ++a)
            next[a * nv + v] = cx.fma(wv, xs[a], iters[a * nv + v]);
        }
        return next;
      });

  for (int64_t a = 0; a < nt; ++a)
    for (int64_t v = 0; v < nv; ++v) {
      Value r = acc[a * nv + v];
      if (p.epilogue)
        r = p.epilogue(r, tokens[a], cols[v]);
      cx.store(r, p.y, {tokens[a], cols[v]});
    }
}

/// An out_in product's input vector x[t][k .. k + width) as f32: its
/// inputVec, or loaded from x at xOffset.
std::function<Value(Value t, Value k, int64_t width)>
inputOf(LoweringContext &cx, const Product &p) {
  if (p.inputVec)
    return p.inputVec;
  Value x = p.x;
  int64_t offset = p.xOffset;
  return [&cx, x, offset](Value t, Value k, int64_t w) {
    return cx.load(x, {t, cx.addIndex(k, offset)}, w);
  };
}

/// p as LowerQuantLinear.cpp's products take it, its weight of `kind`.
QuantizedProduct quantizedOf(LoweringContext &cx, const Product &p,
                             QuantKind kind) {
  QuantizedProduct q;
  q.w = p.w;
  q.kind = kind;
  q.K = p.K;
  q.N = p.N;
  q.y = p.y;
  q.onStore = p.onStore;
  q.input = inputOf(cx, p);
  return q;
}

/// Decode (or a small batch's tiles of `tokens`) of a block-quantized
/// out_in product (LowerQuantLinear.cpp), the input read or computed as
/// emitOutIn's.
void emitQuantizedOutInDecode(LoweringContext &cx, const Product &p,
                              QuantKind kind, int64_t tokens = 1) {
  emitQuantizedDecode(cx, quantizedOf(cx, p, kind),
                      cx.worthThreads(threadBytes(cx, p)), tokens);
}

/// Whether a batch function's out_in product contracts K in chunks of
/// kBatchChunkK (batchTokenTiles).
bool batchChunks(LoweringContext &cx, const Product &p, bool pairs) {
  return cx.batch() && p.K > kBatchChunkK && p.K % kBatchChunkK == 0 &&
         kBatchChunkK % (pairs ? 32 : LoweringContext::vectorWidth(p.K)) == 0;
}

/// The token tiles of a batch function's out_in output tile of `nr` rows
/// at `o`: blocks of kBatchTokens tokens, each in tiles of kBatchTokens
/// tokens by kBatchSubRows rows (the output tile's rows read from cache
/// after the first block), then the remaining tokens in clamped tiles of
/// kSeqTokens by up to kSeqRows rows. A block of a product whose input
/// rows (kBatchTokens x K floats) would not stay in L1 (batchChunks)
/// contracts K in chunks of kBatchChunkK, all the output tile's rows per
/// chunk, adding each chunk's sums to y: the chunk of input is read from
/// memory once per output tile rather than once per tile of rows (the 0.1B
/// shape's FFN value product, K = 3072, ran at half the speed per
/// multiply-add of its key product).
void batchTokenTiles(LoweringContext &cx, const Product &p, bool pairs, Value o,
                     int64_t nr) {
  Value numTokens = cx.numTokens();
  Value blockSize = cx.index(kBatchTokens);
  Value full = arith::MulIOp::create(
      cx.b, cx.loc, arith::DivUIOp::create(cx.b, cx.loc, numTokens, blockSize),
      blockSize);
  auto subTiles = [&](int64_t size, function_ref<void(Value r, int64_t n)> f) {
    int64_t sub = nr % size == 0 ? size : 1;
    if (sub == nr)
      return f(o, nr);
    cx.forLoop(o, cx.addIndex(o, nr), sub, [&](Value r) { f(r, sub); });
  };
  cx.forLoop(cx.index(0), full, kBatchTokens, [&](Value t) {
    if (!batchChunks(cx, p, pairs))
      return subTiles(kBatchSubRows, [&](Value r, int64_t n) {
        BatchTile bt;
        bt.ahead = nr;
        outInTile(cx, p, pairs, t, kBatchTokens, r, n, &bt);
      });
    Value zero = cx.index(0);
    cx.forLoop(zero, cx.index(p.K), kBatchChunkK, [&](Value k0) {
      BatchTile bt;
      bt.ahead = nr;
      bt.k0 = k0;
      bt.kLen = kBatchChunkK;
      bt.addToY = arith::CmpIOp::create(cx.b, cx.loc, arith::CmpIPredicate::ne,
                                        k0, zero);
      bt.lastChunk = arith::CmpIOp::create(
          cx.b, cx.loc, arith::CmpIPredicate::eq, k0,
          cx.index(p.K - kBatchChunkK));
      subTiles(kBatchSubRows, [&](Value r, int64_t n) {
        outInTile(cx, p, pairs, t, kBatchTokens, r, n, &bt);
      });
    });
  });
  BatchTile bt;
  bt.lastToken = arith::SubIOp::create(cx.b, cx.loc, numTokens, cx.index(1));
  bt.ahead = nr;
  cx.forLoop(full, numTokens, kSeqTokens, [&](Value t) {
    subTiles(std::min(nr, kSeqRows), [&](Value r, int64_t n) {
      outInTile(cx, p, pairs, t, kSeqTokens, r, n, &bt);
    });
  });
}

/// Puts p's input in a (T, K) scratch computed once per token (in pair
/// order for `pairs`) when emitOutIn reads it from there, and returns the
/// scratch to release (null: p reads x or computes its input in its loads).
Value stageOutInInput(LoweringContext &cx, Product &p, bool pairs,
                      bool inlineInput) {
  // Streaming decode reads each input vector once per row (outInTile): the
  // transform goes to the scratch.
  if (!((p.inputVec && !(cx.oneToken && inlineInput && !cx.streamWeights)) ||
        pairs))
    return Value();
  int64_t width = pairs ? 16 : LoweringContext::vectorWidth(p.K);
  auto in = inputOf(cx, p);
  Value scratch = cx.allocActivation(p.K);
  cx.forEachToken([&](Value t) {
    cx.forChannels(p.K, pairs ? 32 : width, [&](Value k) {
      if (!pairs) {
        cx.store(in(t, k, width), scratch, {t, k});
        return;
      }
      Value lo = in(t, k, 16), hi = in(t, cx.addIndex(k, 16), 16);
      cx.store(pairOrder(cx, lo, hi, false), scratch, {t, k});
      cx.store(pairOrder(cx, lo, hi, true), scratch, {t, cx.addIndex(k, 16)});
    });
  });
  p.x = scratch;
  p.xOffset = 0;
  p.inputVec = nullptr;
  return scratch;
}

/// y = x Wᵀ for W stored (N, K). The input is `inputVec` or x[t][xOffset +
/// k]; it is read from a (T, K) scratch computed once per token (in pair
/// order for readsPairs) unless `inlineInput`: one token and a cheap
/// transform (a lerp, a squared ReLU), which then runs in the product's
/// input load. (For an exponential, or a sequence, where each input vector
/// is loaded once per tile of rows, recomputing the transform per tile
/// costs more than it saves.)
///
/// Several products of one shape and weight type (`ps`: the blocks of a
/// packed weight, RWKV-7's r, k and v) are one loop over all their rows,
/// each tile switching to its product's input, weight and result: one
/// fork and join, where a loop per product made the threads meet at each
/// product's end. A thread's tiles are still one contiguous run of rows.
void emitOutInTiles(LoweringContext &cx, MutableArrayRef<Product> ps,
                    bool inlineInput);

void emitOutIn(LoweringContext &cx, MutableArrayRef<Product> ps,
               bool inlineInput = false) {
  Product &p = ps.front();
  assert(llvm::all_of(ps, [&](const Product &q) {
           return !q.epilogue && q.K == p.K && q.N == p.N &&
                  q.w.getType() == p.w.getType();
         }) && "out_in products of one shape, without epilogue");
  std::optional<QuantKind> quant = cx.quantKind(p.w);
  // Quantized decode keeps a loop per product: one loop over the blocks of a
  // packed weight measured no faster there (0.4B q8_0, two threads, one
  // process, both orders: 0.99x; docs/performance.md, "Fewer joins").
  if (quant && cx.oneToken) {
    for (Product &q : ps) {
      if (!q.y)
        q.y = cx.allocActivation(q.N);
      emitQuantizedOutInDecode(cx, q, *quant);
    }
    return;
  }
  // A batch of at most 2, else at most 4 with x86 dot products (AVX-512
  // VNNI, AVX-VNNI, AVX2; kBatchDecodeTokens): each row read once for all
  // the batch's tokens, as decode reads it, in tiles of 2 or 4 tokens (AVX2,
  // 0.1B q4_0, one thread: 4.8x and 2.9x the dequantized tiles' tokens per
  // second at B = 2 and 4); a larger batch takes the
  // tiles below (their repacking of each tile's rows is paid once for all
  // the batch's tokens). A batch of 2 in tiles of 4 would compute twice the
  // dot products it needs: with two threads that bound it (0.1B q8_0: 1.06x
  // one sequence's tokens per second, docs/performance.md, "Small batches").
  if (quant && cx.batch() && cx.quantDot != QuantDot::Generic) {
    for (Product &q : ps)
      if (!q.y)
        q.y = cx.allocActivation(q.N);
    OpBuilder::InsertionGuard guard(cx.b);
    for (int64_t tokens : kBatchDecodeTokens) {
      Value small =
          arith::CmpIOp::create(cx.b, cx.loc, arith::CmpIPredicate::ule,
                                cx.numTokens(), cx.index(tokens));
      auto ifOp =
          scf::IfOp::create(cx.b, cx.loc, small, /*withElseRegion=*/true);
      cx.b.setInsertionPointToStart(ifOp.thenBlock());
      for (Product &q : ps)
        emitQuantizedOutInDecode(cx, q, *quant, tokens);
      cx.b.setInsertionPointToStart(ifOp.elseBlock());
    }
    emitOutInTiles(cx, ps, inlineInput);
    return;
  }
  emitOutInTiles(cx, ps, inlineInput);
}

/// emitOutIn's products but quantized decode's and a small batch's: tiles
/// of rows (and of tokens) over the whole sequence or batch.
void emitOutInTiles(LoweringContext &cx, MutableArrayRef<Product> ps,
                    bool inlineInput) {
  Product &p = ps.front();
  std::optional<QuantKind> quant = cx.quantKind(p.w);
  bool pairs = readsPairs(cx, p);
  // Decoding a model whose weights stream from memory, rows shorter than two
  // pages: one row per tile, its K in independent chains (accumulate), so
  // that the product reads one linear stream that the hardware prefetcher
  // follows; the rows of a wider tile are nr short streams read at once,
  // which it follows badly (a C model of the 0.1B head, f16, K = 768: 14-18
  // GB/s per CPU-second with 8 rows, 24-28 with one; the FFN value of the
  // 0.1B, 6 KB rows, 20% of decode's time with 8 rows and 17% with one, as
  // much as the FFN key of the same bytes). Rows of 8 KB and more are long
  // enough streams: the 8-row tiles measured faster there (the 0.4B's FFN
  // value, 8 KB rows: 26% of decode with 8 rows, 27% with one, 31% with 2;
  // the 1.5B, f16, one thread: 9.0 tok/s with its 4 KB rows one per tile
  // and its 16 KB rows 8 per tile, 7.4 with all 8 per tile, 5.7 with all
  // one per tile; docs/performance.md, "Real sizes").
  int64_t rowBytes = weightBytes(cx, p) / p.N;
  bool shortRows = cx.streamWeights && rowBytes < kStreamRowBytes;
  // A sequence's or a batch's quantized products with AVX-512 VNNI: the inputs
  // quantized per block once, the rows' integer dot products against them
  // (emitQuantizedSequenceTile).
  bool dots = quant && quantizedSequenceByDots(cx, p.N);
  // (A batch's dots contract the whole K: its chunks of K are the f32
  // tiles'.)
  int64_t rowsPerTile = dots                        ? dotSequenceRows(cx)
                        : batchChunks(cx, p, pairs) ? kBatchChunkRows
                        : !cx.oneToken              ? kSeqRows
                        : shortRows                 ? 1
                                                    : kDecodeRows;
  SmallVector<QuantizedTokens> dotInputs(ps.size());
  auto stageInput = [&](size_t i) -> Value {
    Product &q = ps[i];
    if (!dots)
      return stageOutInInput(cx, q, pairs, inlineInput);
    dotInputs[i] = quantizeTokens(cx, *quant, q.K, inputOf(cx, q));
    return Value();
  };
  auto releaseInput = [&](size_t i, Value scratch) {
    if (scratch)
      cx.releaseScratch(scratch);
    if (dots)
      releaseQuantizedTokens(cx, dotInputs[i]);
  };
  // The tiles of rows [o, o + nr) of product ps[i].
  auto tiles = [&](size_t i, Value o, int64_t nr) {
    const Product &q = ps[i];
    if (dots)
      return emitQuantizedSequenceTile(cx, quantizedOf(cx, q, *quant),
                                       dotInputs[i], o, nr);
    auto tokenTiles = [&](const Product &tile) {
      if (cx.batch())
        return batchTokenTiles(cx, tile, pairs, o, nr);
      forTokenTiles(cx, kSeqTokens, [&](Value t, int64_t nt) {
        outInTile(cx, tile, pairs, t, nt, o, nr);
      });
    };
    if (!quant)
      return tokenTiles(q);
    // Quantized rows in a sequence: the tile's rows as f32, reused by
    // every token tile.
    withDequantizedRows(cx, q.w, *quant, q.K, o, nr, [&](Value rows) {
      Product tile = q;
      tile.w = rows;
      tile.wRowBase = o;
      tokenTiles(tile);
    });
  };
  // Only a loop split across threads has joins to save: a model too small
  // for threads keeps a loop per product, each after its input's scratch
  // (which then is still in cache), without the switch.
  bool parallel = cx.worthThreads(threadBytes(cx, p) * int64_t(ps.size()));
  if (ps.size() > 1 && parallel && p.N % rowsPerTile == 0) {
    SmallVector<Value> scratches;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (!ps[i].y)
        ps[i].y = cx.allocActivation(ps[i].N);
      scratches.push_back(stageInput(i));
    }
    Value n = cx.index(p.N);
    forOutputTiles(
        cx, p.N * int64_t(ps.size()), rowsPerTile,
        [&](Value o, int64_t nr) {
          Value which = arith::DivUIOp::create(cx.b, cx.loc, o, n);
          Value local = arith::RemUIOp::create(cx.b, cx.loc, o, n);
          cx.switchOver(which, ps.size(),
                        [&](int64_t i) { tiles(i, local, nr); });
        },
        parallel);
    for (size_t i = 0; i < ps.size(); ++i)
      releaseInput(i, scratches[i]);
    return;
  }
  for (size_t i = 0; i < ps.size(); ++i) {
    Product &q = ps[i];
    if (!q.y)
      q.y = cx.allocActivation(q.N);
    Value scratch = stageInput(i);
    forOutputTiles(
        cx, q.N, rowsPerTile, [&](Value o, int64_t nr) { tiles(i, o, nr); },
        cx.worthThreads(threadBytes(cx, q)));
    releaseInput(i, scratch);
  }
}

/// The in_out tiles of tokens [t, t + nt) over all of p's columns.
void inOutTokenTile(LoweringContext &cx, const Product &p, Value t,
                    int64_t nt) {
  int64_t width = LoweringContext::vectorWidth(p.N);
  forOutputTiles(cx, p.N, kSeqColVecs * width, [&](Value j, int64_t cols) {
    inOutTile(cx, p, width, t, nt, j, cols / width);
  });
}

/// Whether the in_out products `ps` of a sequence or a batch of a model
/// that streams its weights, each too small to split its columns across
/// threads (RWKV-7's LoRAs, 768 x 64 and 64 x 768: one or twelve column
/// tiles), run instead as one parallel loop over blocks of tokens, all of
/// them for each block (emitInOutByTokens), so that they do not run on one
/// thread while the others wait (0.1B f16, prefill in chunks of 16, two
/// threads: docs/performance.md, "RWKV-7 decode and prefill: what bounds
/// them now"; the batch entry: "Fewer joins"). Smaller models keep them on
/// one thread, and need no OpenMP runtime when no product of theirs is
/// worth threads.
bool inOutByTokens(LoweringContext &cx, ArrayRef<const Product *> ps) {
  if (cx.oneToken || !cx.streamWeights)
    return false;
  return llvm::none_of(ps, [&](const Product *p) {
    return cx.worthThreads(weightBytes(cx, *p));
  });
}

/// Runs the in_out products `ps` in order for each block of tokens, the
/// blocks split across threads: a later product may read an earlier one's
/// result for the same tokens (a LoRA's two stages, one fork and join).
void emitInOutByTokens(LoweringContext &cx, ArrayRef<const Product *> ps) {
  forTokenTiles(
      cx, kSeqTokens,
      [&](Value t, int64_t nt) {
        for (const Product *p : ps)
          inOutTokenTile(cx, *p, t, nt);
      },
      /*parallel=*/true);
}

/// Decode of an in_out product wider than one tile, in a model that
/// streams its weights (RWKV-7's LoRA up-projections, 64 x 1024 at the
/// 0.4B shape; RWKV-6's mix products): y is accumulated in memory (N
/// floats, in L1) over blocks of kDecodeInOutRows rows of W (one): each
/// row read as one stream, added into y. Column tiles read a
/// strided piece of every row instead (256 bytes of each 2 KiB row of a
/// 64 x 1024 f16 weight), which the hardware prefetchers did not follow:
/// the 0.4B's LoRAs took 18% of one-thread q4_0 decode for 12% of its
/// bytes, most of it in the loads of the up-projections' tiles.
///
///   y = 0
///   for k0 in [0, K) step R:  for j in [0, N) step width:
///     y[j..] += Σ_{r<R} x[k0 + r] · W[k0 + r][j..]
///   y[j..] = epilogue(y[j..])
void inOutRowsDecode(LoweringContext &cx, const Product &p, int64_t width) {
  Value t = cx.index(0);
  Value zero = cx.splat(0.0f, width);
  cx.forChannels(p.N, width, [&](Value j) { cx.store(zero, p.y, {t, j}); });
  auto rows = [&](Value k0, int64_t r) {
    SmallVector<Value> xs;
    for (int64_t i = 0; i < r; ++i) {
      Value xi = cx.addIndex(k0, p.xOffset + i);
      xs.push_back(cx.splat(p.input ? p.input(t, xi)
                                    : cx.loadScalar(p.x, {t, xi}),
                            width));
    }
    cx.forChannels(p.N, width, [&](Value j) {
      Value acc = cx.load(p.y, {t, j}, width);
      for (int64_t i = 0; i < r; ++i)
        acc = cx.fma(cx.load(p.w, weightIndices(p, cx.addIndex(k0, i), j),
                             width),
                     xs[i], acc);
      cx.store(acc, p.y, {t, j});
    });
  };
  int64_t full = p.K / kDecodeInOutRows * kDecodeInOutRows;
  if (full > 0)
    cx.forLoop(cx.index(0), cx.index(full), kDecodeInOutRows,
               [&](Value k0) { rows(k0, kDecodeInOutRows); });
  if (p.K % kDecodeInOutRows)
    rows(cx.index(full), p.K % kDecodeInOutRows);
  if (p.epilogue)
    cx.forChannels(p.N, width, [&](Value j) {
      cx.store(p.epilogue(cx.load(p.y, {t, j}, width), t, j), p.y, {t, j});
    });
}

/// y = x W for W stored (K, N).
void emitInOut(LoweringContext &cx, const Product &p) {
  if (inOutByTokens(cx, {&p}))
    return emitInOutByTokens(cx, {&p});
  int64_t width = LoweringContext::vectorWidth(p.N);
  int64_t vecsPerTile = cx.oneToken ? kDecodeColVecs : kSeqColVecs;
  bool splitColumns = cx.worthThreads(weightBytes(cx, p));
  if (cx.oneToken && cx.streamWeights && !splitColumns &&
      p.N > vecsPerTile * width)
    return inOutRowsDecode(cx, p, width);
  forOutputTiles(
      cx, p.N, vecsPerTile * width,
      [&](Value j, int64_t cols) {
        forTokenTiles(cx, kSeqTokens, [&](Value t, int64_t nt) {
          inOutTile(cx, p, width, t, nt, j, cols / width);
        });
      },
      splitColumns);
}

//===----------------------------------------------------------------------===//
// Operand checks
//===----------------------------------------------------------------------===//

/// The loops read f32, f16 or bf16 weights, and block-quantized ones in
/// out_in products (`quantOK`); rwkv-dequantize-weights widens the others.
LogicalResult checkWeight(Operation *op, Value w, StringRef what,
                          bool quantOK = false) {
  Type elt = cast<RankedTensorType>(w.getType()).getElementType();
  if (isa<QuantType>(elt) && !quantOK)
    return op->emitOpError() << what
                             << " is quantized; the CPU lowering reads "
                                "quantized weights in out_in products only "
                                "(rwkv-dequantize-weights widens the others)";
  if (isa<QuantType>(elt))
    return success();
  if (!isa<Float32Type, Float16Type, BFloat16Type>(elt))
    return op->emitOpError() << what << " has unsupported element type "
                             << elt;
  return success();
}

int64_t dim(Value v, unsigned i) {
  return cast<RankedTensorType>(v.getType()).getDimSize(i);
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

/// max(v, 0)^2 of an f32 or a vector of them.
Value reluSquared(LoweringContext &cx, Value v) {
  auto vec = dyn_cast<VectorType>(v.getType());
  Value r = cx.max(v, vec ? cx.splat(0.0f, vec.getDimSize(0)) : cx.f32(0.0f));
  return cx.mul(r, r);
}

/// Fuses the one op that reads `result`, the (T, N) result of out_in
/// product p computed by `producer`, into p's stores where it can:
///
///   relu_sq_linear(result, W) (the channel mix's key): p stores
///     max(y, 0)^2 and the relu_sq_linear reads it as it is
///     (lowerReluSqLinear);
///   add(x, result) (a residual): p stores x + y, the add's result, and
///     the add is not lowered where it stands (absorbed); x must be
///     computed before `producer`.
///
/// Each was a loop of its own over the (T, N) result, which in a sequence
/// split across threads runs on the calling thread alone, over lines both
/// threads wrote. Fewer passes at every size; prefill of the 169M f16 and
/// the 0.1B q8_0 on two threads measured 0.999x and 1.005x against the
/// loops (scripts/prefill_ab_bench.c, 31 rounds in each order: within this
/// machine's noise; docs/performance.md, session 14).
void fuseIntoStores(LoweringContext &cx, Product &p, Operation *producer,
                    Value result) {
  if (!result.hasOneUse())
    return;
  Operation *user = *result.user_begin();
  if (auto relu = dyn_cast<ReluSqLinearOp>(user)) {
    if (relu.getInput() != result)
      return;
    p.onStore = [&cx](Value sums, Value, Value) {
      return reluSquared(cx, sums);
    };
    cx.markReluSquared(result);
    return;
  }
  auto add = dyn_cast<AddOp>(user);
  if (!add || add.getType() != result.getType())
    return;
  Value other = add.getLhs() == result ? add.getRhs() : add.getLhs();
  if (other.getType() != result.getType() || other == result)
    return;
  if (Operation *def = other.getDefiningOp();
      def && (def->getBlock() != producer->getBlock() ||
              !def->isBeforeInBlock(producer)))
    return;
  Value x = cx.lookup(other);
  if (!x || x == p.y)
    return;
  p.onStore = [&cx, x](Value sums, Value t, Value row) {
    auto vec = dyn_cast<VectorType>(sums.getType());
    return cx.add(sums, vec ? cx.load(x, {t, row}, vec.getDimSize(0))
                            : cx.loadScalar(x, {t, row}));
  };
  cx.map(add.getResult(), p.y);
  cx.absorb(add);
}

/// op's one result = x W (in_out) or x Wᵀ (out_in) for op's input x read
/// as it is and `weight`, the out_in stores fused with the result's reader
/// where they can be.
LogicalResult lowerPlainProduct(Operation *op, Value input, Value weight,
                                bool outIn, LoweringContext &cx) {
  if (failed(checkWeight(op, weight, "weight", /*quantOK=*/outIn)))
    return failure();
  Value result = op->getResult(0);
  Product p;
  p.x = cx.lookup(input);
  p.w = cx.lookup(weight);
  p.K = dim(weight, outIn ? 1 : 0);
  p.N = dim(weight, outIn ? 0 : 1);
  p.y = cx.allocResult(result, p.N);
  if (outIn) {
    fuseIntoStores(cx, p, op, result);
    emitOutIn(cx, p);
  } else {
    emitInOut(cx, p);
  }
  cx.map(result, p.y);
  return success();
}

LogicalResult lowerLinear(LinearOp op, LoweringContext &cx) {
  return lowerPlainProduct(op, op.getInput(), op.getWeight(),
                           op.getLayout() == WeightLayout::out_in, cx);
}

LogicalResult lowerLora(LoraOp op, LoweringContext &cx) {
  if (failed(checkWeight(op, op.getA(), "A")) ||
      failed(checkWeight(op, op.getB(), "B")))
    return failure();
  // Per-channel parameters are read through their flat (C) view.
  Value bias = op.getBias() ? cx.paramFlat(op.getBias()) : Value();
  int64_t c = dim(op.getA(), 0), d = dim(op.getA(), 1),
          cOut = dim(op.getB(), 1);

  // h = act(x A): (T, D)
  Product first;
  first.x = cx.lookup(op.getInput());
  first.w = cx.lookup(op.getA());
  first.K = c;
  first.N = d;
  first.y = cx.allocActivation(d);
  Activation act = op.getAct();
  if (act != Activation::none)
    first.epilogue = [&cx, act](Value acc, Value, Value) {
      return applyActivation(cx, act, acc);
    };

  // y = out_act(bias + h B): (T, C')
  Product second;
  second.x = first.y;
  second.w = cx.lookup(op.getB());
  second.K = d;
  second.N = cOut;
  second.y = cx.allocActivation(cOut);
  Activation outAct = op.getOutAct();
  int64_t width = LoweringContext::vectorWidth(cOut);
  if (bias || outAct != Activation::none)
    second.epilogue = [&cx, bias, outAct, width](Value acc, Value, Value j) {
      if (bias)
        acc = cx.add(acc, cx.load(bias, {j}, width));
      return applyActivation(cx, outAct, acc);
    };
  if (inOutByTokens(cx, {&first, &second})) {
    emitInOutByTokens(cx, {&first, &second});
  } else {
    emitInOut(cx, first);
    emitInOut(cx, second);
  }
  cx.releaseScratch(first.y);
  cx.map(op.getResult(), second.y);
  return success();
}

LogicalResult lowerDDLerp(DDLerpOp op, LoweringContext &cx) {
  if (failed(checkWeight(op, op.getW1(), "W1")) ||
      failed(checkWeight(op, op.getW2(), "W2")))
    return failure();
  // Per-channel parameters are read through their flat (C) views.
  Value maaX = cx.paramFlat(op.getMaaX());
  SmallVector<Value> maa;
  for (Value v : op.getMaa())
    maa.push_back(cx.paramFlat(v));
  int64_t numMixes = maa.size();
  int64_t c = dim(op.getInput(), 1);
  int64_t d = dim(op.getW2(), 1);
  int64_t width = LoweringContext::vectorWidth(c);
  Value x = cx.lookup(op.getInput());
  Value prev = cx.lookup(op.getPrev());

  // m = tanh(xx W1): (T, F * D), with xx = x + (prev - x) * maa_x computed
  // as the product reads it (no (T, C) buffer for xx).
  Product lowRank;
  lowRank.input = [&cx, x, prev, maaX](Value t, Value k) {
    Value xv = cx.loadScalar(x, {t, k});
    Value sx = cx.sub(cx.loadScalar(prev, {t, k}), xv);
    return cx.fma(sx, cx.loadScalar(maaX, {k}), xv);
  };
  lowRank.w = cx.lookup(op.getW1());
  lowRank.K = c;
  lowRank.N = numMixes * d;
  lowRank.y = cx.allocActivation(numMixes * d);
  lowRank.epilogue = [&cx](Value acc, Value, Value) { return cx.tanh(acc); };
  emitInOut(cx, lowRank);

  // result_f = x + sx * (maa_f + m[:, f*D:(f+1)*D] W2[f]): (T, C) each
  Value w2 = cx.lookup(op.getW2());
  for (int64_t f = 0; f < numMixes; ++f) {
    Product mix;
    mix.x = lowRank.y;
    mix.xOffset = f * d;
    mix.w = w2;
    mix.wPrefix = {cx.index(f)};
    mix.K = d;
    mix.N = c;
    mix.y = cx.allocActivation(c);
    Value maaF = maa[f];
    mix.epilogue = [&cx, x, prev, maaF, width](Value acc, Value t, Value ch) {
      Value xv = cx.load(x, {t, ch}, width);
      Value sx = cx.sub(cx.load(prev, {t, ch}, width), xv);
      return cx.fma(sx, cx.add(acc, cx.load(maaF, {ch}, width)), xv);
    };
    emitInOut(cx, mix);
    cx.map(op.getResults()[f], mix.y);
  }
  cx.releaseScratch(lowRank.y);
  return success();
}

/// A fused linear: W (out, in) applied to `inputVec(t, k, width)`, `cheap`
/// when the transform may run in the product's loads (emitOutIn). `w` is
/// the weight's memref (N, in); returns the (T, N) result.
Value emitFusedLinear(Value w, int64_t in, int64_t n,
                      std::function<Value(Value, Value, int64_t)> inputVec,
                      bool cheap, Operation *op, LoweringContext &cx) {
  Product p;
  p.inputVec = std::move(inputVec);
  p.w = w;
  p.K = in;
  p.N = n;
  p.y = cx.allocActivation(n);
  fuseIntoStores(cx, p, op, op->getResult(0));
  emitOutIn(cx, p, cheap);
  return p.y;
}

/// The same for an rwkv op with one result and a weight operand.
LogicalResult lowerFusedLinear(Operation *op, Value weight, int64_t in,
                               std::function<Value(Value, Value, int64_t)>
                                   inputVec,
                               bool cheap, LoweringContext &cx) {
  if (failed(checkWeight(op, weight, "weight", /*quantOK=*/true)))
    return failure();
  cx.map(op->getResult(0),
         emitFusedLinear(cx.lookup(weight), in, dim(weight, 0),
                         std::move(inputVec), cheap, op, cx));
  return success();
}

// mix_linear(a, b, t, W) = W (a + (b - a) t)
LogicalResult lowerMixLinear(MixLinearOp op, LoweringContext &cx) {
  Value a = cx.lookup(op.getA()), b = cx.lookup(op.getB());
  ChannelOperand t(cx, op.getT());
  return lowerFusedLinear(
      op, op.getWeight(), dim(op.getA(), 1),
      [&cx, a, b, t](Value tok, Value k, int64_t width) {
        Value av = cx.load(a, {tok, k}, width);
        Value bv = cx.load(b, {tok, k}, width);
        return cx.fma(cx.sub(bv, av), t.load(cx, tok, k, width), av);
      },
      /*cheap=*/true, cx);
}

// packed_mix_linear(a, b, [t_i], W) = W_i (a + (b - a) t_i), W_i the i-th
// block of rows of W: one product per block, over a subview of the weight,
// all in one loop (emitOutIn).
LogicalResult lowerPackedMixLinear(PackedMixLinearOp op, LoweringContext &cx) {
  if (failed(checkWeight(op, op.getWeight(), "weight", /*quantOK=*/true)))
    return failure();
  Value a = cx.lookup(op.getA()), b = cx.lookup(op.getB());
  Value w = cx.lookup(op.getWeight());
  int64_t in = dim(op.getA(), 1);
  int64_t n = dim(op.getWeight(), 0) / int64_t(op.getMixes().size());
  // A row of the view: `in` elements, or their quantized blocks' bytes.
  int64_t rowSize = cast<MemRefType>(w.getType()).getDimSize(1);
  // One loop for all blocks only where it is split across threads
  // (emitOutIn); else each block's product as a separate op's would be.
  Product whole;
  whole.w = w;
  whole.K = in;
  whole.N = dim(op.getWeight(), 0);
  bool oneLoop = cx.worthThreads(threadBytes(cx, whole));
  SmallVector<Product> ps;
  for (auto [i, mix] : llvm::enumerate(op.getMixes())) {
    ChannelOperand t(cx, mix);
    Product &p = ps.emplace_back();
    p.w = memref::SubViewOp::create(
        cx.b, cx.loc, w,
        ArrayRef<OpFoldResult>{cx.b.getIndexAttr(int64_t(i) * n),
                               cx.b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{cx.b.getIndexAttr(n),
                               cx.b.getIndexAttr(rowSize)},
        ArrayRef<OpFoldResult>{cx.b.getIndexAttr(1), cx.b.getIndexAttr(1)});
    if (std::optional<QuantKind> kind = cx.quantKind(w))
      cx.setQuantKind(p.w, *kind);
    p.inputVec = [&cx, a, b, t](Value tok, Value k, int64_t width) {
      Value av = cx.load(a, {tok, k}, width);
      Value bv = cx.load(b, {tok, k}, width);
      return cx.fma(cx.sub(bv, av), t.load(cx, tok, k, width), av);
    };
    p.K = in;
    p.N = n;
    if (!oneLoop) {
      emitOutIn(cx, p, /*inlineInput=*/true);
      cx.map(op.getResults()[i], p.y);
    }
  }
  if (!oneLoop)
    return success();
  emitOutIn(cx, ps, /*inlineInput=*/true);
  for (auto [result, p] : llvm::zip(op.getResults(), ps))
    cx.map(result, p.y);
  return success();
}

// gate_linear(g, y, W) = W (sigmoid(g) y)
LogicalResult lowerGateLinear(GateLinearOp op, LoweringContext &cx) {
  Value g = cx.lookup(op.getG()), y = cx.lookup(op.getY());
  return lowerFusedLinear(
      op, op.getWeight(), dim(op.getY(), 1),
      [&cx, g, y](Value tok, Value k, int64_t width) {
        return cx.mul(cx.sigmoid(cx.load(g, {tok, k}, width)),
                      cx.load(y, {tok, k}, width));
      },
      /*cheap=*/false, cx);
}

// relu_sq_linear(k, W) = W max(k, 0)^2; k's buffer may hold max(k, 0)^2
// already (fuseIntoStores)
LogicalResult lowerReluSqLinear(ReluSqLinearOp op, LoweringContext &cx) {
  if (cx.isReluSquared(op.getInput())) // a plain product, no scratch
    return lowerPlainProduct(op, op.getInput(), op.getWeight(),
                             /*outIn=*/true, cx);
  Value x = cx.lookup(op.getInput());
  return lowerFusedLinear(
      op, op.getWeight(), dim(op.getInput(), 1),
      [&cx, x](Value tok, Value k, int64_t width) {
        Value r = cx.max(cx.load(x, {tok, k}, width), cx.splat(0.0f, width));
        return cx.mul(r, r);
      },
      /*cheap=*/true, cx);
}

} // namespace

void mlir::rwkv::cpu::forTokenTiles(LoweringContext &cx, int64_t block,
                                    function_ref<void(Value t, int64_t nt)> tile,
                                    bool parallel) {
  if (cx.oneToken) {
    tile(cx.index(0), 1);
    return;
  }
  Value numTokens = cx.numTokens();
  Value blockSize = cx.index(block);
  Value blocks = arith::DivUIOp::create(cx.b, cx.loc, numTokens, blockSize);
  Value full = arith::MulIOp::create(cx.b, cx.loc, blocks, blockSize);
  cx.forLoopMaybeParallel(cx.index(0), full, block, parallel,
                          [&](Value t) { tile(t, block); });
  cx.forLoop(full, numTokens, 1, [&](Value t) { tile(t, 1); });
}

LogicalResult mlir::rwkv::cpu::lowerLinearOp(Operation *op,
                                             LoweringContext &cx) {
  if (auto linear = dyn_cast<LinearOp>(op))
    return lowerLinear(linear, cx);
  if (auto lora = dyn_cast<LoraOp>(op))
    return lowerLora(lora, cx);
  if (auto ddlerp = dyn_cast<DDLerpOp>(op))
    return lowerDDLerp(ddlerp, cx);
  if (auto mix = dyn_cast<MixLinearOp>(op))
    return lowerMixLinear(mix, cx);
  if (auto gate = dyn_cast<GateLinearOp>(op))
    return lowerGateLinear(gate, cx);
  if (auto relu = dyn_cast<ReluSqLinearOp>(op))
    return lowerReluSqLinear(relu, cx);
  if (auto packed = dyn_cast<PackedMixLinearOp>(op))
    return lowerPackedMixLinear(packed, cx);
  return failure();
}
