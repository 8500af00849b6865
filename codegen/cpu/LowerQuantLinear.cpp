//===- LowerQuantLinear.cpp - Products of block-quantized weights ---------===//
//
// The out_in products whose weight is stored in one of rwkv.cpp's block
// formats (!rwkv.quant<k>: blocks of 32 weights with an f16 scale d, and an
// f16 minimum m for the _1 kinds; docs/formats.md), read from the weight
// image as they are stored:
//
//   decode (one token):
//     x ──per block of 32: d_x = max|x| / 127, q_x = round(x / d_x)──▶
//       q_x (int8), d_x and the 4-element partial sums of q_x, per lane
//     for each row, block by block (two at once on 16 lanes):
//       codes u (unpacked in registers) ──dot4(z, u, q_x)──▶ int32 lanes
//     (two 4- or 5-bit blocks a and b at once take their codes in the order
//     the nibbles unpack in, a0-15 b0-15 a16-31 b16-31, and q_x is stored
//     in that order: loadPair)
//       acc += float(lanes) · d_x · d  [+ m · d_x · Σ q_x for _1 kinds]
//     row sums ──▶ y
//     (weights that stream from memory: each step also prefetches the same
//     blocks of rows further on, decodeTile)
//
//   where dot4 sums groups of 4 byte products into each int32 lane
//   (vpdpbusd with AVX-512 VNNI or AVX-VNNI; vpmaddubsw + vpmaddwd with
//   AVX2; plain vector arithmetic otherwise), and z = -zero · Σ q_x per lane
//   starts the sums so that they hold Σ (u - zero) q_x: the block's value
//   is d (u - zero) + m with zero 8 (q4_0), 16 (q5_0), 0 (_1 kinds); q8_0's
//   signed codes are read as u = q + 128, zero 128 by vpdpbusd (unsigned
//   times signed), as |q| against ±q_x by vpmaddubsw, signed by the plain
//   arithmetic.
//
//   sequence: each tile of rows dequantized to an f32 (rows, K) buffer of
//   its own, then LowerLinear.cpp's matrix-matrix tiles over it.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"
#include "codegen/cpu/VectorReductions.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

// Decode of weights that fit the caches: rows per output tile (each block
// of the input reused for this many rows). Streaming decode reads rows
// shorter than kStreamRowBytes (two pages) one per tile, as LowerLinear.cpp's
// emitOutIn does.
constexpr int64_t kDecodeRows = 4;
constexpr int64_t kStreamRowBytes = 8192;
// Decode of streaming weights: how far ahead a tile of one row prefetches
// (2 KB measured the same on the 0.4B's q8_0).
constexpr int64_t kPrefetchBytes = 4096;
// int32 lanes of one block's dot products (32 bytes, 4 per lane).
constexpr int64_t kLanesPerBlock = 8;

/// Where the parts of a block of one kind lie.
struct BlockFormat {
  int64_t bytes;    // of the block
  int64_t codes;    // offset of the nibbles (4, 5 bits) or int8 (8 bits)
  int64_t high = 0; // 5 bits: offset of the 32 fifth bits
  int64_t min = 0;  // _1 kinds: offset of m (0: none)
  int bits;
};

BlockFormat formatOf(QuantKind kind) {
  switch (kind) {
  case QuantKind::q4_0:
    return {18, 2, 0, 0, 4};
  case QuantKind::q4_1:
    return {20, 4, 0, 2, 4};
  case QuantKind::q5_0:
    return {22, 6, 2, 0, 5};
  case QuantKind::q5_1:
    return {24, 8, 4, 2, 5};
  case QuantKind::q8_0:
    return {34, 2, 0, 0, 8};
  }
  llvm_unreachable("unknown quantization kind");
}

/// The code of the value 0 of a _0 kind as the block's codes are read: 8 or
/// 16 for the 4- and 5-bit kinds; q8_0's signed codes are read shifted to
/// unsigned (+128) by vpdpbusd only.
int64_t zeroCode(QuantKind kind, QuantDot dot) {
  switch (kind) {
  case QuantKind::q4_0:
    return 8;
  case QuantKind::q5_0:
    return 16;
  case QuantKind::q8_0:
    return dot == QuantDot::AVX512VNNI || dot == QuantDot::AVXVNNI ? 128 : 0;
  case QuantKind::q4_1:
  case QuantKind::q5_1:
    return 0;
  }
  llvm_unreachable("unknown quantization kind");
}

class QuantBuilder {
public:
  QuantBuilder(LoweringContext &cx, QuantKind kind)
      : cx(cx), b(cx.b), loc(cx.loc), kind(kind), f(formatOf(kind)) {}

  VectorType vec(int64_t n, Type elt) { return VectorType::get({n}, elt); }
  Type i8() { return b.getI8Type(); }
  Type i32() { return b.getI32Type(); }
  Type f32() { return b.getF32Type(); }

  Value splatInt(int64_t v, int64_t n, Type elt) {
    auto type = vec(n, elt);
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, b.getIntegerAttr(elt, v)));
  }

  /// The concatenation of two vectors of one type.
  Value concat(Value lo, Value hi) {
    int64_t n = cast<VectorType>(lo.getType()).getDimSize(0);
    SmallVector<int64_t> mask;
    for (int64_t i = 0; i < 2 * n; ++i)
      mask.push_back(i);
    return vector::ShuffleOp::create(b, loc, lo, hi, mask);
  }
  Value concat(ArrayRef<Value> parts) {
    Value v = parts[0];
    for (Value part : parts.drop_front())
      v = concat(v, part);
    return v;
  }

  /// Elements `first`, first + stride, ... (n of them) of `v`.
  Value strided(Value v, int64_t first, int64_t stride, int64_t n) {
    SmallVector<int64_t> mask;
    for (int64_t i = 0; i < n; ++i)
      mask.push_back(first + i * stride);
    return vector::ShuffleOp::create(b, loc, v, v, mask);
  }

  /// The sums of each group of 4 consecutive lanes of `v` (4n lanes of
  /// i32) as n lanes.
  Value sumGroupsOf4(Value v) {
    int64_t n = cast<VectorType>(v.getType()).getDimSize(0) / 4;
    Value sum = strided(v, 0, 4, n);
    for (int64_t j = 1; j < 4; ++j)
      sum = arith::AddIOp::create(b, loc, sum, strided(v, j, 4, n));
    return sum;
  }

  /// The 32 codes of the block at byte `at` of row `row` of `w`, in the
  /// order of its elements, as vector<32xi8>: unsigned 0..15 or 0..31 for
  /// the 4- and 5-bit kinds, q8_0's signed bytes as stored.
  Value blockCodes(Value w, Value row, Value at) {
    if (f.bits == 8)
      return vector::LoadOp::create(b, loc, vec(32, i8()), w,
                                    ValueRange{row, cx.addIndex(at, f.codes)});
    Value raw = vector::LoadOp::create(b, loc, vec(16, i8()), w,
                                       ValueRange{row, cx.addIndex(at, f.codes)});
    Value lo = arith::AndIOp::create(b, loc, raw, splatInt(15, 16, i8()));
    Value hi = arith::ShRUIOp::create(b, loc, raw, splatInt(4, 16, i8()));
    Value codes = concat(lo, hi);
    if (f.bits == 4)
      return codes;
    // Bit j of the 32 fifth bits (little-endian) is bit 4 of code j.
    Value bits = vector::LoadOp::create(b, loc, vec(4, i8()), w,
                                        ValueRange{row, cx.addIndex(at, f.high)});
    Value mask = vector::BitCastOp::create(b, loc, vec(32, b.getI1Type()), bits);
    Value high = arith::SelectOp::create(b, loc, mask, splatInt(16, 32, i8()),
                                         splatInt(0, 32, i8()));
    return arith::OrIOp::create(b, loc, codes, high);
  }

  /// Two consecutive 4- or 5-bit blocks (AVX-512), as one step decodes them.
  struct Pair {
    Value codes; // vector<64xi8>, loadPair's order
    Value scale; // vector<16xf32>: d of each lane's block
    Value min;   // vector<16xf32>: m of each lane's block (_1 kinds), or null
  };

  /// The blocks at bytes `at` and `at` + f.bytes of row `row` of `w`, from
  /// one load of the 64 bytes at `at` - `before` (which must lie in the
  /// row: the bytes after the pair, or for the row's last pairs `before`
  /// bytes before it). A masked load of only the pair's bytes made decode
  /// of the 0.1B's q4_0 0.67x as fast on this Zen 4. The codes come
  /// in the order their nibbles unpack in: elements 0-15 of the first block,
  /// 0-15 of the second, 16-31 of the first, 16-31 of the second (the
  /// input's q_x is stored in the same order, quantizeInput): one byte
  /// permutation puts both blocks' nibble bytes twice, one shift of 16-bit
  /// words by 0 or 4 and one mask unpack them. One word permutation spreads
  /// the two scales (and minimums) over their lanes in the same order.
  Pair loadPair(Value w, Value row, Value at, int64_t before) {
    assert(f.bits != 8 && before % 2 == 0 && before + 2 * f.bytes <= 64 &&
           "two 4- or 5-bit blocks in the 64 bytes loaded");
    Value bytes = vector::LoadOp::create(b, loc, vec(64, i8()), w,
                                         ValueRange{row, cx.addIndex(at, -before)});
    SmallVector<int64_t> order;
    for (int64_t half = 0; half < 2; ++half)
      for (int64_t blk = 0; blk < 2; ++blk)
        for (int64_t i = 0; i < 16; ++i)
          order.push_back(before + blk * f.bytes + f.codes + i);
    Value twice = vector::ShuffleOp::create(b, loc, bytes, bytes, order);
    auto words = vec(32, b.getI16Type());
    SmallVector<int16_t> shifts(32, 0);
    std::fill(shifts.begin() + 16, shifts.end(), 4);
    Value shifted = arith::ShRUIOp::create(
        b, loc, vector::BitCastOp::create(b, loc, words, twice),
        arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(words, ArrayRef<int16_t>(shifts))));
    Pair pair;
    pair.codes = arith::AndIOp::create(
        b, loc, vector::BitCastOp::create(b, loc, vec(64, i8()), shifted),
        splatInt(15, 64, i8()));
    Value halves = vector::BitCastOp::create(b, loc, words, bytes);
    // The f16 at byte `offset` of each block, over lanes a a a a b b b b ...
    auto spread = [&](int64_t offset) -> Value {
      SmallVector<int64_t> pick;
      for (int64_t lane = 0; lane < 16; ++lane)
        pick.push_back((before + lane / 4 % 2 * f.bytes + offset) / 2);
      Value v = vector::ShuffleOp::create(b, loc, halves, halves, pick);
      Value f16s =
          vector::BitCastOp::create(b, loc, vec(16, b.getF16Type()), v);
      return arith::ExtFOp::create(b, loc, vec(16, f32()), f16s);
    };
    pair.scale = spread(0);
    if (f.min)
      pair.min = spread(f.min);
    if (f.bits == 5)
      pair.codes = arith::OrIOp::create(
          b, loc, pair.codes, fifthBits(w, row, at, cx.addIndex(at, f.bytes)));
    return pair;
  }

  /// The fifth bits of the 5-bit blocks at bytes `at0` and `at1` of row
  /// `row` of `w`, as 16 (or 0) per code in loadPair's order: bit j of a
  /// block's 32 is bit 4 of its code j, the two blocks' 16-bit halves
  /// interleaved into a 64-bit mask in general registers (BMI2's pdep;
  /// AVX-512 implies it).
  Value fifthBits(Value w, Value row, Value at0, Value at1) {
    auto i64 = b.getI64Type();
    auto spread = [&](Value at, uint64_t into) {
      Value raw = vector::LoadOp::create(
          b, loc, vec(4, i8()), w, ValueRange{row, cx.addIndex(at, f.high)});
      Value word = vector::ExtractOp::create(
          b, loc, vector::BitCastOp::create(b, loc, vec(1, i32()), raw),
          ArrayRef<int64_t>{0});
      Value wide = arith::ExtUIOp::create(b, loc, i64, word);
      Value bits = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(into));
      return LLVM::CallIntrinsicOp::create(b, loc, i64,
                                           b.getStringAttr("llvm.x86.bmi.pdep.64"),
                                           ValueRange{wide, bits})
          .getResult(0);
    };
    Value bits = arith::OrIOp::create(b, loc, spread(at0, 0x0000FFFF0000FFFFull),
                                      spread(at1, 0xFFFF0000FFFF0000ull));
    Value mask = vector::BitCastOp::create(
        b, loc, vec(64, b.getI1Type()),
        vector::FromElementsOp::create(b, loc, vec(1, i64), bits));
    return arith::SelectOp::create(b, loc, mask, splatInt(16, 64, i8()),
                                   splatInt(0, 64, i8()));
  }

  /// The f16 at byte `at` + `offset` of row `row` of `w`.
  Value loadHalfBits(Value w, Value row, Value at, int64_t offset) {
    Value raw = vector::LoadOp::create(b, loc, vec(2, i8()), w,
                                       ValueRange{row, cx.addIndex(at, offset)});
    Value half = vector::BitCastOp::create(b, loc, vec(1, b.getF16Type()), raw);
    return vector::ExtractOp::create(b, loc, half, ArrayRef<int64_t>{0});
  }
  /// The same as an f32 scalar.
  Value loadHalf(Value w, Value row, Value at, int64_t offset) {
    return arith::ExtFOp::create(b, loc, f32(),
                                 loadHalfBits(w, row, at, offset));
  }
  /// f16 scalars, converted together, each broadcast to `lanes` lanes.
  Value spreadHalves(ArrayRef<Value> halves, int64_t lanes) {
    int64_t n = halves.size();
    Value v = vector::FromElementsOp::create(b, loc, vec(n, b.getF16Type()),
                                             halves);
    Value wide = arith::ExtFOp::create(b, loc, vec(n, f32()), v);
    SmallVector<int64_t> mask;
    for (int64_t i = 0; i < n * lanes; ++i)
      mask.push_back(i / lanes);
    return vector::ShuffleOp::create(b, loc, wide, wide, mask);
  }

  /// acc + the sums of each group of 4 products u[j] x[j] (u the codes,
  /// unsigned but for q8_0; x signed) per int32 lane, as `dot` computes
  /// them. q8_0's codes are first made what `dot` multiplies.
  Value dot4(QuantDot dot, Value acc, Value u, Value x) {
    int64_t lanes = cast<VectorType>(acc.getType()).getDimSize(0);
    bool signedCodes = f.bits == 8;
    switch (dot) {
    case QuantDot::AVX512VNNI:
    case QuantDot::AVXVNNI: {
      if (signedCodes) // q + 128: unsigned, against the zero code 128
        u = arith::XOrIOp::create(b, loc, u, splatInt(0x80, 4 * lanes, i8()));
      StringRef name = lanes == 16 ? "llvm.x86.avx512.vpdpbusd.512"
                                   : "llvm.x86.avx512.vpdpbusd.256";
      return LLVM::CallIntrinsicOp::create(b, loc, acc.getType(),
                                           b.getStringAttr(name),
                                           ValueRange{acc, u, x})
          .getResult(0);
    }
    case QuantDot::AVX2: {
      assert(lanes == 8 && "AVX2 dot products are 8 lanes wide");
      if (signedCodes) {
        // |q| against x with q's sign: |q| <= 128 and |x| <= 127 keep each
        // pair of products within vpmaddubsw's int16.
        x = LLVM::CallIntrinsicOp::create(b, loc, x.getType(),
                                          b.getStringAttr("llvm.x86.avx2.psign.b"),
                                          ValueRange{x, u})
                .getResult(0);
        u = math::AbsIOp::create(b, loc, u);
      }
      Value pairs = LLVM::CallIntrinsicOp::create(
                        b, loc, vec(16, b.getI16Type()),
                        b.getStringAttr("llvm.x86.avx2.pmadd.ub.sw"),
                        ValueRange{u, x})
                        .getResult(0);
      Value quads = LLVM::CallIntrinsicOp::create(
                        b, loc, vec(8, i32()),
                        b.getStringAttr("llvm.x86.avx2.pmadd.wd"),
                        ValueRange{pairs, splatInt(1, 16, b.getI16Type())})
                        .getResult(0);
      return arith::AddIOp::create(b, loc, acc, quads);
    }
    case QuantDot::Generic: {
      auto wide = vec(4 * lanes, i32());
      Value uw = signedCodes ? Value(arith::ExtSIOp::create(b, loc, wide, u))
                             : Value(arith::ExtUIOp::create(b, loc, wide, u));
      Value xw = arith::ExtSIOp::create(b, loc, wide, x);
      Value products = arith::MulIOp::create(b, loc, uw, xw);
      return arith::AddIOp::create(b, loc, acc, sumGroupsOf4(products));
    }
    }
    llvm_unreachable("unknown dot product");
  }

  LoweringContext &cx;
  OpBuilder &b;
  Location loc;
  QuantKind kind;
  BlockFormat f;
};

/// The input of a decode product quantized per block of 32 (LowerQuantLinear
/// header): q_x, and per int32 lane of each block (kLanesPerBlock) d_x, the
/// starting sums -zero Σ q_x (zero != 0) and d_x Σ q_x (_1 kinds). With
/// `paired`, each pair of blocks a, b is stored in loadPair's order (a0-15
/// b0-15 a16-31 b16-31, and their lanes so); an odd last block as it is.
struct QuantizedInput {
  Value q;     // memref<K x i8>
  Value scale; // memref<blocks * 8 x f32>: d_x
  Value start; // memref<blocks * 8 x i32>: -zero Σ_lane q_x, or null
  Value sum;   // memref<blocks * 8 x f32>: d_x Σ_lane q_x, or null
  bool paired = false;
};

QuantizedInput quantizeInput(QuantBuilder &qb, const QuantizedProduct &p,
                             int64_t zero, bool paired) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  int64_t blocks = p.K / kQuantBlockElements;
  QuantizedInput in;
  in.paired = paired;
  in.q = cx.allocScratch({p.K}, qb.i8());
  in.scale = cx.allocScratch({blocks * kLanesPerBlock}, qb.f32());
  if (zero)
    in.start = cx.allocScratch({blocks * kLanesPerBlock}, qb.i32());
  if (qb.f.min)
    in.sum = cx.allocScratch({blocks * kLanesPerBlock}, qb.f32());
  Value t = cx.index(0);
  // Quantizes block `blk` and stores its halves (16 elements, 4 lanes each)
  // at elements `at[h]` and lanes `lane[h]`.
  auto quantizeBlock = [&](Value blk, Value at[2], Value lane[2]) {
    Value k = cx.mulIndex(blk, kQuantBlockElements);
    Value v0 = p.input(t, k, 16), v1 = p.input(t, cx.addIndex(k, 16), 16);
    Value mag = cx.max(math::AbsFOp::create(b, loc, v0),
                       math::AbsFOp::create(b, loc, v1));
    Value amax = vector::ReductionOp::create(
        b, loc, vector::CombiningKind::MAXNUMF, mag);
    // d_x = amax / 127; 1 / d_x where amax > 0 (an all-zero block is 0).
    Value d = cx.mul(amax, cx.f32(1.0f / 127.0f));
    Value positive = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                           amax, cx.f32(0.0f));
    Value inv = arith::SelectOp::create(
        b, loc, positive,
        cx.div(cx.f32(127.0f), cx.max(amax, cx.f32(1e-30f))), cx.f32(0.0f));
    int64_t halfLanes = kLanesPerBlock / 2;
    Value halves[2] = {v0, v1};
    for (auto [h, v] : llvm::enumerate(halves)) {
      Value r = math::RoundEvenOp::create(b, loc, cx.mul(v, cx.splat(inv, 16)));
      Value q = arith::FPToSIOp::create(b, loc, qb.vec(16, qb.i32()), r);
      vector::StoreOp::create(
          b, loc, arith::TruncIOp::create(b, loc, qb.vec(16, qb.i8()), q),
          in.q, ValueRange{at[h]});
      cx.store(cx.splat(d, halfLanes), in.scale, {lane[h]});
      Value sums = qb.sumGroupsOf4(q); // vector<4xi32>
      if (in.start)
        vector::StoreOp::create(
            b, loc,
            arith::MulIOp::create(b, loc, sums,
                                  qb.splatInt(-zero, halfLanes, qb.i32())),
            in.start, ValueRange{lane[h]});
      if (in.sum)
        cx.store(cx.mul(arith::SIToFPOp::create(
                            b, loc, qb.vec(halfLanes, qb.f32()), sums),
                        cx.splat(d, halfLanes)),
                 in.sum, {lane[h]});
    }
  };
  // Block `blk` in its own order.
  auto plain = [&](Value blk) {
    Value k = cx.mulIndex(blk, kQuantBlockElements);
    Value lane = cx.mulIndex(blk, kLanesPerBlock);
    Value at[2] = {k, cx.addIndex(k, 16)};
    Value lanes[2] = {lane, cx.addIndex(lane, kLanesPerBlock / 2)};
    quantizeBlock(blk, at, lanes);
  };
  int64_t pairedEnd = paired ? blocks / 2 * 2 : 0;
  if (pairedEnd > 0)
    cx.forLoop(cx.index(0), cx.index(pairedEnd), 2, [&](Value blk) {
      Value k = cx.mulIndex(blk, kQuantBlockElements);
      Value lane = cx.mulIndex(blk, kLanesPerBlock);
      for (int64_t j = 0; j < 2; ++j) {
        Value at[2] = {cx.addIndex(k, 16 * j), cx.addIndex(k, 32 + 16 * j)};
        Value lanes[2] = {cx.addIndex(lane, 4 * j),
                          cx.addIndex(lane, 8 + 4 * j)};
        quantizeBlock(cx.addIndex(blk, j), at, lanes);
      }
    });
  if (pairedEnd < blocks)
    cx.forLoop(cx.index(pairedEnd), cx.index(blocks), 1, plain);
  return in;
}

/// One tile of decode: rows [o, o + nr), their K / 32 blocks `perStep` at a
/// time (2 on AVX-512's 16 lanes, else 1), a last odd block on 8 lanes.
void decodeTile(QuantBuilder &qb, const QuantizedProduct &p,
                const QuantizedInput &in, Value o, int64_t nr) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  QuantDot dot = cx.quantDot;
  int64_t perStep = dot == QuantDot::AVX512VNNI ? 2 : 1;
  int64_t blocks = p.K / kQuantBlockElements;
  int64_t steps = blocks / perStep;
  // One row per tile: two independent sets of accumulators (their FMA
  // chains overlap); more rows already give as many chains.
  int64_t sets = nr == 1 && steps >= 4 ? 2 : 1;
  bool hasMin = qb.f.min != 0;
  SmallVector<Value> rows;
  for (int64_t r = 0; r < nr; ++r)
    rows.push_back(cx.addIndex(o, r));

  // Decode of weights that stream from memory: each step prefetches the
  // same blocks of the rows `ahead` rows down, the next tile's (a tile of
  // one row: the row about kPrefetchBytes further on). Unpacking a block
  // takes several instructions per cache line, so the core has fewer loads
  // in flight than f16 decode and the hardware prefetcher alone left the
  // 0.4B shape's q8_0 at 60% of the memory bandwidth (its FFN value, 4-row
  // tiles of 4.3 KB rows, four streams at once, slowest per byte). Measured
  // (3 alternating runs, tok/s, one / two threads): 0.4B q8_0 39.6-44.7 /
  // 69.1-74.5 -> 54.0-58.1 / 85.0-95.6; 0.4B q4_0 85.0-88.4 / 131-142 ->
  // 80.5-90.8 / 142-154; 0.1B q8_0, two threads, 5 runs: 250-291 -> 253-267.
  int64_t rowBytes = cast<MemRefType>(p.w.getType()).getDimSize(1);
  int64_t ahead =
      nr > 1 ? nr : std::max<int64_t>(1, kPrefetchBytes / rowBytes);
  auto prefetchAhead = [&](Value blk) {
    Value at = cx.mulIndex(blk, qb.f.bytes);
    for (Value row : rows) {
      Value next = arith::MinUIOp::create(b, loc, cx.addIndex(row, ahead),
                                          cx.index(p.N - 1));
      memref::PrefetchOp::create(b, loc, p.w, ValueRange{next, at},
                                 /*isWrite=*/false, /*localityHint=*/3,
                                 /*isDataCache=*/true);
    }
  };
  // acc[r] += blocks [blk, blk + n) of row r against the input (the
  // minimum's term too: one accumulator per row keeps AVX2's 16 registers
  // enough for 4 rows). `n` blocks fill n * 8 lanes.
  // A pair of blocks loads the 64 bytes at its start where they lie in the
  // row, else the row's last 64 bytes (the `before` of loadPair): the main
  // loop takes only the former, the steps after it are static.
  auto before = [&](int64_t blk) {
    return std::max<int64_t>(0, blk * qb.f.bytes + 64 - rowBytes);
  };
  auto step = [&](Value blk, int64_t n, MutableArrayRef<Value> acc,
                  int64_t pairBefore = 0) {
    int64_t lanes = n * kLanesPerBlock;
    QuantDot d = dot == QuantDot::AVX512VNNI && n == 1 ? QuantDot::AVXVNNI
                                                       : dot;
    Value k = cx.mulIndex(blk, kQuantBlockElements);
    Value lane = cx.mulIndex(blk, kLanesPerBlock);
    Value xq = vector::LoadOp::create(b, loc, qb.vec(4 * lanes, qb.i8()),
                                      in.q, ValueRange{k});
    Value xd = cx.load(in.scale, {lane}, lanes);
    Value start =
        in.start ? Value(vector::LoadOp::create(b, loc, qb.vec(lanes, qb.i32()),
                                                in.start, ValueRange{lane}))
                 : qb.splatInt(0, lanes, qb.i32());
    Value xs = in.sum ? cx.load(in.sum, {lane}, lanes) : Value();
    if (cx.streamWeights)
      prefetchAhead(blk);
    for (int64_t r = 0; r < nr; ++r) {
      Value u, scale, min;
      if (in.paired && n == 2) {
        QuantBuilder::Pair pair = qb.loadPair(
            p.w, rows[r], cx.mulIndex(blk, qb.f.bytes), pairBefore);
        u = pair.codes;
        scale = pair.scale;
        min = pair.min;
      } else {
        SmallVector<Value> codes, scales, mins;
        for (int64_t j = 0; j < n; ++j) {
          Value at = cx.mulIndex(cx.addIndex(blk, j), qb.f.bytes);
          codes.push_back(qb.blockCodes(p.w, rows[r], at));
          scales.push_back(qb.loadHalfBits(p.w, rows[r], at, 0));
          if (hasMin)
            mins.push_back(qb.loadHalfBits(p.w, rows[r], at, qb.f.min));
        }
        u = qb.concat(codes);
        scale = qb.spreadHalves(scales, kLanesPerBlock);
        if (hasMin)
          min = qb.spreadHalves(mins, kLanesPerBlock);
      }
      Value isum = qb.dot4(d, start, u, xq);
      Value fsum = arith::SIToFPOp::create(b, loc, qb.vec(lanes, qb.f32()),
                                           isum);
      acc[r] = cx.fma(cx.mul(fsum, xd), scale, acc[r]);
      if (hasMin)
        acc[r] = cx.fma(min, xs, acc[r]);
    }
  };

  int64_t lanes = perStep * kLanesPerBlock;
  SmallVector<Value> init(sets * nr, cx.splat(0.0f, lanes));
  int64_t chunk = perStep * sets;
  int64_t mainEnd = blocks / chunk * chunk;
  if (in.paired)
    while (mainEnd > 0 && before(mainEnd - perStep) > 0)
      mainEnd -= chunk;
  auto run = [&](Value blk, MutableArrayRef<Value> accs) {
    for (int64_t s = 0; s < sets; ++s)
      step(cx.addIndex(blk, s * perStep), perStep, accs.slice(s * nr, nr));
  };
  SmallVector<Value> accs =
      mainEnd == 0 ? init
                   : cx.forLoopCarrying(cx.index(0), cx.index(mainEnd), chunk,
                                        init, [&](Value blk, ValueRange it) {
                                          SmallVector<Value> next(it);
                                          run(blk, next);
                                          return next;
                                        });
  // Sum the sets; whole steps left over, then a last odd block.
  SmallVector<Value> total(accs.begin(), accs.begin() + nr);
  for (int64_t s = 1; s < sets; ++s)
    for (int64_t r = 0; r < nr; ++r)
      total[r] = cx.add(total[r], accs[s * nr + r]);
  for (int64_t blk = mainEnd; blk + perStep <= blocks; blk += perStep)
    step(cx.index(blk), perStep, total, in.paired ? before(blk) : 0);
  if (blocks % perStep) {
    SmallVector<Value> tail(nr, cx.splat(0.0f, kLanesPerBlock));
    step(cx.index(blocks - 1), 1, tail);
    for (int64_t r = 0; r < nr; ++r)
      total[r] = cx.add(total[r], vector::InsertStridedSliceOp::create(
                                      b, loc, tail[r], cx.splat(0.0f, lanes),
                                      ArrayRef<int64_t>{0},
                                      ArrayRef<int64_t>{1}));
  }

  Value t0 = cx.index(0);
  if (canReduceRows(nr, lanes)) {
    cx.store(reduceRows(cx, total), p.y, {t0, rows[0]});
    return;
  }
  for (int64_t r = 0; r < nr; ++r)
    memref::StoreOp::create(b, loc, cx.reduceAdd(total[r]), p.y,
                            ValueRange{t0, rows[r]});
}

} // namespace

void mlir::rwkv::cpu::emitQuantizedDecode(LoweringContext &cx,
                                          const QuantizedProduct &p,
                                          bool parallel) {
  assert(p.K % 32 == 0 && "quantized rows are whole blocks");
  QuantBuilder qb(cx, p.kind);
  // Rows shorter than two pages one per tile when the weights stream from
  // memory (one linear stream), as LowerLinear.cpp's emitOutIn reads them.
  // The 0.4B's q8_0 FFN value rows (4.3 KB) read one per tile (each
  // prefetching the next row) rather than 4 per tile, four streams at
  // once: `ab_bench` in both orders, two pairs, 1.14 and 1.13 on one
  // thread, 1.085 and 1.003 on two (an earlier measurement, 3 alternating
  // runs, had found no gain: 50.0-50.2 against 48.7-50.1 tok/s).
  int64_t rowBytes = cast<MemRefType>(p.w.getType()).getDimSize(1);
  int64_t rowsPerTile =
      cx.streamWeights && rowBytes < kStreamRowBytes ? 1 : kDecodeRows;
  // Tiles of one row take two 4- or 5-bit blocks a step with loadPair
  // (AVX-512), the input in its order. Tiles of several rows keep each
  // block's own loads: loadPair's vectors for 4 rows at once spilled.
  bool paired = cx.quantDot == QuantDot::AVX512VNNI && qb.f.bits != 8 &&
                rowsPerTile == 1;
  QuantizedInput in =
      quantizeInput(qb, p, zeroCode(p.kind, cx.quantDot), paired);
  int64_t full = p.N / rowsPerTile * rowsPerTile;
  if (full == rowsPerTile)
    decodeTile(qb, p, in, cx.index(0), rowsPerTile);
  else if (full > 0)
    cx.forLoopMaybeParallel(cx.index(0), cx.index(full), rowsPerTile,
                            parallel, [&](Value o) {
                              decodeTile(qb, p, in, o, rowsPerTile);
                            });
  if (p.N % rowsPerTile)
    decodeTile(qb, p, in, cx.index(full), p.N % rowsPerTile);
  for (Value buffer : {in.q, in.scale, in.start, in.sum})
    if (buffer)
      cx.releaseScratch(buffer);
}

void mlir::rwkv::cpu::withDequantizedRows(LoweringContext &cx, Value w,
                                          QuantKind kind, int64_t K, Value o,
                                          int64_t nr,
                                          function_ref<void(Value)> body) {
  QuantBuilder qb(cx, kind);
  OpBuilder &b = cx.b;
  Location loc = cx.loc;
  // Inside an scf.parallel the buffer is the iteration's own, on the stack
  // of the thread that runs it (convert-scf-to-openmp scopes the allocas of
  // each iteration); elsewhere one buffer in the entry block serves every
  // tile.
  auto parallel = dyn_cast<scf::ParallelOp>(b.getInsertionBlock()->getParentOp());
  if (!parallel)
    parallel = b.getInsertionBlock()->getParentOp()
                   ->getParentOfType<scf::ParallelOp>();
  Value rows;
  if (parallel) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(parallel.getBody());
    rows = memref::AllocaOp::create(b, loc, MemRefType::get({nr, K}, qb.f32()),
                                    b.getI64IntegerAttr(64));
  } else {
    rows = cx.allocScratch({nr, K}, qb.f32());
  }
  int64_t zero = zeroCode(kind, QuantDot::Generic);
  bool signedCodes = qb.f.bits == 8;
  for (int64_t r = 0; r < nr; ++r) {
    Value row = cx.addIndex(o, r);
    Value local = cx.index(r);
    cx.forLoop(cx.index(0), cx.index(K / kQuantBlockElements), 1,
               [&](Value blk) {
                 Value at = cx.mulIndex(blk, qb.f.bytes);
                 Value codes = qb.blockCodes(w, row, at);
                 auto wide = qb.vec(32, qb.i32());
                 Value ints =
                     signedCodes
                         ? Value(arith::ExtSIOp::create(b, loc, wide, codes))
                         : Value(arith::ExtUIOp::create(b, loc, wide, codes));
                 Value vals = arith::SIToFPOp::create(
                     b, loc, qb.vec(32, qb.f32()), ints);
                 // d (u - zero) + m = d u + (m - zero d)
                 Value d = qb.loadHalf(w, row, at, 0);
                 Value c = cx.mul(d, cx.f32(-float(zero)));
                 if (qb.f.min)
                   c = cx.add(c, qb.loadHalf(w, row, at, qb.f.min));
                 Value k = cx.mulIndex(blk, kQuantBlockElements);
                 for (int64_t h = 0; h < 2; ++h) {
                   Value half = vector::ExtractStridedSliceOp::create(
                       b, loc, vals, ArrayRef<int64_t>{16 * h},
                       ArrayRef<int64_t>{16}, ArrayRef<int64_t>{1});
                   cx.store(cx.fma(half, cx.splat(d, 16), cx.splat(c, 16)),
                            rows, {local, cx.addIndex(k, 16 * h)});
                 }
               });
  }
  body(rows);
  if (!parallel)
    cx.releaseScratch(rows);
}
