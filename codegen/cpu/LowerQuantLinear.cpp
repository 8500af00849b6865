//===- LowerQuantLinear.cpp - Products of block-quantized weights ---------===//
//
// The out_in products whose weight is stored in one of rwkv.cpp's block
// formats (!rwkv.quant<k>: blocks of 32 weights with an f16 scale d, and an
// f16 minimum m for the _1 kinds; docs/formats.md), read from the weight
// image as it stores them: each row in groups of 16 blocks, each group's
// blocks split into their parts, d, m (_1 kinds), fifth bits (5-bit
// kinds), then the codes in words of 4 bytes, word s of each block together
// (getQuantRowLayout, QuantRowLayout::codeWord):
//
//   decode (one token):
//     x ──per block of 32: d_x = max|x| / 127, q_x = round(x / d_x)──▶
//       q_x (int8) in the order of a group's codes, and per block d_x and
//       its terms below
//     AVX-512 VNNI, AVX-VNNI and AVX2 (decodeGroupTile), each row group by
//     group, a block to each int32 lane (a row's last group on 8 or 4 lanes
//     if it fits; with 256-bit vectors a whole group in two halves of 8):
//       lanes from -zero Σ q_x of their block
//       each 64 bytes of code words s (4-/5-bit: the low nibbles are
//       elements 4 s .. 4 s + 3 of the 16 blocks, the high ones 16 + 4 s ..)
//         ──dot4 against the q_x of the same elements──▶ lanes
//       lanes (Σ (u - zero) q_x of a block) ──· d d_x──▶ acc
//         [+ m · d_x Σ q_x for _1 kinds]
//     otherwise (generic code, decodeTile), block by block on 8 lanes:
//       codes u ──dot4(z, u, q_x)──▶ int32 lanes
//       acc += float(lanes) · d_x · d  [+ m · d_x · Σ q_x for _1 kinds]
//     row sums ──▶ y
//     (weights that stream from memory, decodeTile: each step also
//     prefetches the same bytes of rows further on, Prefetcher)
//
//   where dot4 sums groups of 4 byte products into each int32 lane
//   (vpdpbusd with AVX-512 VNNI or AVX-VNNI; vpmaddubsw + vpmaddwd with
//   AVX2; plain vector arithmetic otherwise), and z = -zero · Σ q_x per lane
//   starts the sums so that they hold Σ (u - zero) q_x: the block's value is
//   d (u - zero) + m with zero 8 (q4_0), 16 (q5_0), 0 (_1 kinds); q8_0's
//   signed codes are read as u = q + 128, zero 128 by vpdpbusd (unsigned
//   times signed), as |q| against ±q_x by vpmaddubsw, signed by the plain
//   arithmetic.
//
//   sequence with x86 dot products, N a multiple of a vector's R rows (R =
//   16 with AVX-512 VNNI, 8 with AVX-VNNI and AVX2;
//   emitQuantizedSequenceTile):
//     x ──per token and block, as decode──▶ (T, K/4) words of 4 q_x,
//       (T, K/32) d_x, -zero Σ q_x [d_x Σ q_x for _1 kinds]
//     each tile of 2 R rows (R for a last one), on its thread:
//       per R rows and group of 16 blocks, a loop over words j: the R
//         rows' words j of the group (a vector each) ──shuffles──▶ 16
//         vectors, one a block, lane r = row r's word j (q8_0's codes + 128
//         for vpdpbusd); the R rows' d (and m) as one vector a block (a
//         last partial group on 8- or 4-lane vectors)
//       tiles of 4 tokens (1 with R = 8), per block:
//         -zero Σ q_x ──8 × dot4(codes j, broadcast word j of q_x)──▶
//         int32 per row ──· d ⊙ d_x──▶ acc (R rows) [+ m ⊙ d_x Σ q_x]
//       R rows of a token stored at once
//   sequence otherwise: each tile of rows dequantized to an f32 (rows, K)
//   buffer of its own, then LowerLinear.cpp's matrix-matrix tiles over it.
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

/// Whether `dot`'s dot products are vpdpbusd (unsigned bytes times signed).
bool byVpdpbusd(QuantDot dot) {
  return dot == QuantDot::AVX512VNNI || dot == QuantDot::AVXVNNI;
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
    return byVpdpbusd(dot) ? 128 : 0;
  case QuantKind::q4_1:
  case QuantKind::q5_1:
    return 0;
  }
  llvm_unreachable("unknown quantization kind");
}

class QuantBuilder {
public:
  QuantBuilder(LoweringContext &cx, QuantKind kind, int64_t K)
      : cx(cx), b(cx.b), loc(cx.loc), kind(kind),
        blocks(K / kQuantBlockElements),
        row(getQuantRowLayout(kind, K / kQuantBlockElements)),
        bits(bitsOf(kind)) {}

  static int bitsOf(QuantKind kind) {
    switch (kind) {
    case QuantKind::q4_0:
    case QuantKind::q4_1:
      return 4;
    case QuantKind::q5_0:
    case QuantKind::q5_1:
      return 5;
    case QuantKind::q8_0:
      return 8;
    }
    llvm_unreachable("unknown quantization kind");
  }
  bool hasMin() const { return row.hasMin; }

  VectorType vec(int64_t n, Type elt) { return VectorType::get({n}, elt); }
  Type i8() { return b.getI8Type(); }
  Type i32() { return b.getI32Type(); }
  Type f32() { return b.getF32Type(); }

  Value splatInt(int64_t v, int64_t n, Type elt) {
    auto type = vec(n, elt);
    return arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(type, b.getIntegerAttr(elt, v)));
  }

  /// Where a part of the blocks of a group of n lies in the group
  /// (QuantRowLayout: scale, min, high or codes).
  using Part = int64_t (QuantRowLayout::*)(int64_t) const;
  /// The byte of the row where part `part` (`per` bytes a block) of block
  /// g + i lies, `g` the first block of a group of `n`.
  Value inGroup(Value g, int64_t n, Part part, int64_t per, int64_t i = 0) {
    return cx.addIndex(cx.mulIndex(g, row.blockBytes),
                       (row.*part)(n) + i * per);
  }
  /// The same for any block `blk`: its group's first block and size
  /// computed (kQuantGroupBlocks but in the row's last group); `offsetOf(n)`
  /// the offset in a group of n of the part of its first block.
  Value partAt(Value blk, function_ref<int64_t(int64_t)> offsetOf,
               int64_t per) {
    Value i = arith::RemUIOp::create(b, loc, blk, cx.index(kQuantGroupBlocks));
    Value g = arith::SubIOp::create(b, loc, blk, i);
    int64_t whole = blocks / kQuantGroupBlocks * kQuantGroupBlocks;
    Value within = cx.index(offsetOf(kQuantGroupBlocks));
    if (whole < blocks) {
      Value last = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, g,
                                         cx.index(whole));
      within = arith::SelectOp::create(
          b, loc, last, cx.index(offsetOf(row.groupBlocks(whole))), within);
    }
    Value start = arith::AddIOp::create(b, loc, cx.mulIndex(g, row.blockBytes),
                                        within);
    return arith::AddIOp::create(b, loc, start, cx.mulIndex(i, per));
  }
  Value partAt(Value blk, Part part, int64_t per) {
    return partAt(
        blk, [&](int64_t n) { return (row.*part)(n); }, per);
  }
  /// Word s (code bytes 4 s .. 4 s + 3) of block `blk`.
  Value codeWordAt(Value blk, int64_t s) {
    return partAt(
        blk, [&](int64_t n) { return row.codeWord(n, s, 0); }, 4);
  }
  Value highAt(Value blk) { return partAt(blk, &QuantRowLayout::high, 4); }
  Value scaleAt(Value blk) { return partAt(blk, &QuantRowLayout::scale, 2); }
  Value minAt(Value blk) { return partAt(blk, &QuantRowLayout::min, 2); }

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

  /// The 32 codes of block `blk` of row `r` of `w`, in the order of its
  /// elements, as vector<32xi8>: unsigned 0..15 or 0..31 for the 4- and
  /// 5-bit kinds, q8_0's signed bytes as stored. Its code bytes are
  /// gathered a word at a time (QuantRowLayout::codeWord).
  Value blockCodes(Value w, Value r, Value blk) {
    SmallVector<Value> words;
    for (int64_t s = 0; s < row.codeWords(); ++s) {
      Value word = vector::LoadOp::create(b, loc, vec(4, i8()), w,
                                          ValueRange{r, codeWordAt(blk, s)});
      words.push_back(vector::ExtractOp::create(
          b, loc, vector::BitCastOp::create(b, loc, vec(1, i32()), word),
          ArrayRef<int64_t>{0}));
    }
    Value raw = vector::BitCastOp::create(
        b, loc, vec(row.codeBytes, i8()),
        vector::FromElementsOp::create(b, loc, vec(row.codeWords(), i32()),
                                       words));
    if (bits == 8)
      return raw;
    Value lo = arith::AndIOp::create(b, loc, raw, splatInt(15, 16, i8()));
    Value hi = arith::ShRUIOp::create(b, loc, raw, splatInt(4, 16, i8()));
    Value codes = concat(lo, hi);
    if (bits == 4)
      return codes;
    // Bit j of the 32 fifth bits (little-endian) is bit 4 of code j.
    Value raw4 = vector::LoadOp::create(b, loc, vec(4, i8()), w,
                                        ValueRange{r, highAt(blk)});
    Value mask = vector::BitCastOp::create(b, loc, vec(32, b.getI1Type()), raw4);
    Value high = arith::SelectOp::create(b, loc, mask, splatInt(16, 32, i8()),
                                         splatInt(0, 32, i8()));
    return arith::OrIOp::create(b, loc, codes, high);
  }

  /// Words s of the group of `n` blocks from block `g` of row `r` of `w`
  /// (QuantRowLayout::codeWord) as vector<64xi8>: lane i (4 bytes) block g
  /// + i's, lanes past n 0.
  Value groupWords(Value w, Value r, Value g, int64_t n, Value s) {
    Value at =
        arith::AddIOp::create(b, loc, inGroup(g, n, &QuantRowLayout::codes, 0),
                              cx.mulIndex(s, 4 * n));
    return loadBytes(w, r, at, 4 * n, 4 * groupLanes(n));
  }
  /// Blocks [g + o, g + o + c) of part `part` (4 bytes a block in a line of
  /// `per`, line `s`) of the group of `n` blocks from `g`, lane i block g +
  /// o + i's, lanes past c 0: a group's code words s (codes, per 4 n) or
  /// fifth bits (high, per 4).
  Value groupBytes(Value w, Value r, Value g, int64_t n, Part part, int64_t per,
                   int64_t s, int64_t o, int64_t c) {
    return loadBytes(w, r, cx.addIndex(inGroup(g, n, part, per, s), 4 * o),
                     4 * c, 4 * groupLanes(c));
  }
  /// The group's fifth bits, block i's in lane i (5-bit kinds).
  Value groupHigh(Value w, Value r, Value g, int64_t n) {
    return groupBytes(w, r, g, n, &QuantRowLayout::high, 4, 0, 0, n);
  }
  /// The int32 lanes of the vectors of a group of n blocks: 16, or 8 or 4
  /// for a row's last group of at most that many (its vectors half or a
  /// quarter as wide, not padded with zeros).
  static int64_t groupLanes(int64_t n) {
    return std::max<int64_t>(4, int64_t(llvm::PowerOf2Ceil(n)));
  }
  /// Vector v (0..7) of a group's codes: lane i holds codes 4 v .. 4 v + 3
  /// of block g + i, unsigned 0..15 or 0..31 for the 4- and 5-bit kinds (v <
  /// 4: the low nibbles of words v, else the high ones of words v - 4, with
  /// bit 4 from `high`), q8_0's signed bytes as stored; `words` the group's
  /// words v mod codeWords (groupWords).
  Value groupCodes(Value words, int64_t v, Value high) {
    if (bits == 8)
      return words;
    int64_t width = cast<VectorType>(words.getType()).getDimSize(0);
    Value nibbles = words;
    if (v >= 4)
      nibbles = vector::BitCastOp::create(
          b, loc, vec(width, i8()),
          arith::ShRUIOp::create(
              b, loc,
              vector::BitCastOp::create(b, loc, vec(width / 2, b.getI16Type()),
                                        words),
              splatInt(4, width / 2, b.getI16Type())));
    Value codes =
        arith::AndIOp::create(b, loc, nibbles, splatInt(15, width, i8()));
    if (bits == 4)
      return codes;
    // Byte 4 i + e: bit 4 v + e of lane i's fifth bits, shifted to bit e of
    // the lane's byte 0, spread over the lane's bytes (one vpshufb), then
    // tested.
    SmallVector<int64_t> spread;
    SmallVector<int8_t> bit;
    for (int64_t j = 0; j < width; ++j) {
      spread.push_back(j / 4 * 4);
      bit.push_back(int8_t(1u << (j % 4)));
    }
    auto lanes = vec(width / 4, i32());
    Value shifted = vector::BitCastOp::create(
        b, loc, vec(width, i8()),
        arith::ShRUIOp::create(b, loc,
                               vector::BitCastOp::create(b, loc, lanes, high),
                               splatInt(4 * v, width / 4, i32())));
    Value bytes = vector::ShuffleOp::create(b, loc, shifted, shifted, spread);
    auto type = vec(width, i8());
    Value tested = arith::AndIOp::create(
        b, loc, bytes,
        arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(type, ArrayRef<int8_t>(bit))));
    Value set = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, tested,
                                      splatInt(0, width, i8()));
    return arith::OrIOp::create(
        b, loc, codes,
        arith::SelectOp::create(b, loc, set, splatInt(16, width, i8()),
                                splatInt(0, width, i8())));
  }

  /// The f16 at byte `at` of row `r` of `w`.
  Value loadHalfBits(Value w, Value r, Value at) {
    Value raw = vector::LoadOp::create(b, loc, vec(2, i8()), w,
                                       ValueRange{r, at});
    Value half = vector::BitCastOp::create(b, loc, vec(1, b.getF16Type()), raw);
    return vector::ExtractOp::create(b, loc, half, ArrayRef<int64_t>{0});
  }
  /// The same as an f32 scalar.
  Value loadHalf(Value w, Value r, Value at) {
    return arith::ExtFOp::create(b, loc, f32(), loadHalfBits(w, r, at));
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

  /// `n` bytes of row `r` of `w` from byte `at` on, as vector<64xi8>: the
  /// bytes after the first n are 0 (a masked load, which reads nothing
  /// past them) unless n is 64.
  Value loadBytes(Value w, Value r, Value at, int64_t n, int64_t width = 64) {
    auto type = vec(width, i8());
    if (n == width)
      return vector::LoadOp::create(b, loc, type, w, ValueRange{r, at});
    Value mask = vector::ConstantMaskOp::create(
        b, loc, VectorType::get({width}, b.getI1Type()),
        ArrayRef<int64_t>{n});
    return vector::MaskedLoadOp::create(b, loc, type, w, ValueRange{r, at},
                                        mask, splatInt(0, width, i8()));
  }

  /// Signed bytes made unsigned: q + 128.
  Value flipSign(Value v) {
    int64_t n = cast<VectorType>(v.getType()).getDimSize(0);
    return arith::XOrIOp::create(b, loc, v, splatInt(0x80, n, i8()));
  }

  /// vpdpbusd: acc (8 or 16 int32 lanes) + the sums of each lane's 4
  /// products of unsigned bytes u and signed bytes x (4 bytes a lane).
  Value vpdpbusd(Value acc, Value u, Value x) {
    int64_t lanes = cast<VectorType>(acc.getType()).getDimSize(0);
    StringRef name = lanes == 16  ? "llvm.x86.avx512.vpdpbusd.512"
                     : lanes == 8 ? "llvm.x86.avx512.vpdpbusd.256"
                                  : "llvm.x86.avx512.vpdpbusd.128";
    return LLVM::CallIntrinsicOp::create(b, loc, acc.getType(),
                                         b.getStringAttr(name),
                                         ValueRange{acc, u, x})
        .getResult(0);
  }

  /// acc + the sums of each group of 4 products u[j] x[j] (u the codes,
  /// unsigned but for q8_0; x signed) per int32 lane, as `dot` computes
  /// them. q8_0's codes are first made what `dot` multiplies.
  Value dot4(QuantDot dot, Value acc, Value u, Value x) {
    int64_t lanes = cast<VectorType>(acc.getType()).getDimSize(0);
    bool signedCodes = bits == 8;
    switch (dot) {
    case QuantDot::AVX512VNNI:
    case QuantDot::AVXVNNI:
      if (signedCodes) // q + 128: unsigned, against the zero code 128
        u = flipSign(u);
      return vpdpbusd(acc, u, x);
    case QuantDot::AVX2: {
      // 256-bit vectors, or 128-bit ones (SSSE3's forms) for a row's last
      // group of at most 4 blocks.
      assert((lanes == 8 || lanes == 4) &&
             "AVX2 dot products are 8 or 4 lanes wide");
      bool wide = lanes == 8;
      if (signedCodes) {
        // |q| against x with q's sign: |q| <= 128 and |x| <= 127 keep each
        // pair of products within vpmaddubsw's int16.
        x = LLVM::CallIntrinsicOp::create(
                b, loc, x.getType(),
                b.getStringAttr(wide ? "llvm.x86.avx2.psign.b"
                                     : "llvm.x86.ssse3.psign.b.128"),
                ValueRange{x, u})
                .getResult(0);
        u = math::AbsIOp::create(b, loc, u);
      }
      Value pairs =
          LLVM::CallIntrinsicOp::create(
              b, loc, vec(2 * lanes, b.getI16Type()),
              b.getStringAttr(wide ? "llvm.x86.avx2.pmadd.ub.sw"
                                   : "llvm.x86.ssse3.pmadd.ub.sw.128"),
              ValueRange{u, x})
              .getResult(0);
      Value quads =
          LLVM::CallIntrinsicOp::create(
              b, loc, vec(lanes, i32()),
              b.getStringAttr(wide ? "llvm.x86.avx2.pmadd.wd"
                                   : "llvm.x86.sse2.pmadd.wd"),
              ValueRange{pairs, splatInt(1, 2 * lanes, b.getI16Type())})
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
  int64_t blocks;     // per row
  QuantRowLayout row; // where their parts lie
  int bits;
};

/// The input of a decode product quantized per block of 32 (LowerQuantLinear
/// header), in one of two forms:
///  - lanes (decodeTile): q_x in element order, and per int32 lane of each
///    block (kLanesPerBlock) d_x, the starting sums -zero Σ q_x (zero != 0)
///    and d_x Σ q_x (_1 kinds);
///  - groups (decodeGroupTile): q_x in the order of a group's codes (as
///    groupCodes gives them): per group of kQuantGroupBlocks blocks, 8
///    vectors of 64 bytes, vector v lane i = elements 4 v .. 4 v + 3 of the
///    group's block i, zero past the last block up to a whole group; and
///    per block, zero past the last up to a whole group, d_x, the int32
///    start -zero Σ q_x (zero != 0) and d_x Σ q_x (_1 kinds).
///
/// Each buffer holds a row per token of the tile (decode: one; a small
/// batch: kBatchDecodeTokens, emitQuantizedDecode).
struct QuantizedInput {
  Value q;     // memref<tokens x K (groups: padded) x i8>
  Value scale; // lanes: memref<tokens x blocks * 8 x f32>;
               // groups: <tokens x blocks' x f32>
  Value start; // lanes: memref<tokens x blocks * 8 x i32>, -zero Σ_lane q_x;
               // groups: <tokens x blocks' x i32>, -zero Σ q_x; or null
  Value sum;   // d_x Σ q_x over each lane's / block's elements, or null
};

// Bytes of q_x of a group in the groups form: 8 vectors of 64.
constexpr int64_t kGroupInputBytes = kQuantGroupBlocks * kQuantBlockElements;

/// One block of 32 inputs quantized: d_x = max|x| / 127 and q_x = round(x /
/// d_x) as two vector<16xi32> (an all-zero block: d_x 0, q_x 0).
struct QuantizedBlock {
  Value d;
  Value q[2];
};

QuantizedBlock quantizeBlockOf(QuantBuilder &qb, Value v0, Value v1) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  // max|x| as the largest bit pattern of the magnitudes: without their sign
  // bits, floats order as unsigned integers (a NaN above them all, so that
  // it reaches d_x). A float max reduction (maxnumf, no fast-math flags)
  // became LLVM's NaN-exact expansion on x86, 15 dependent scalar max and
  // unordered-compare pairs a block, which made the quantization of decode's
  // inputs most of its serial pieces (docs/performance.md, session 22).
  auto ints = qb.vec(16, qb.i32());
  Value noSign = qb.splatInt(0x7fffffff, 16, qb.i32());
  auto magnitude = [&](Value v) -> Value {
    return arith::AndIOp::create(
        b, loc, vector::BitCastOp::create(b, loc, ints, v), noSign);
  };
  Value mag = arith::MaxUIOp::create(b, loc, magnitude(v0), magnitude(v1));
  Value amax = arith::BitcastOp::create(
      b, loc, qb.f32(),
      vector::ReductionOp::create(b, loc, vector::CombiningKind::MAXUI, mag));
  // d_x = amax / 127; 1 / d_x where amax > 0 (an all-zero block is 0).
  QuantizedBlock out;
  out.d = cx.mul(amax, cx.f32(1.0f / 127.0f));
  Value positive = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                         amax, cx.f32(0.0f));
  Value inv = arith::SelectOp::create(
      b, loc, positive, cx.div(cx.f32(127.0f), cx.max(amax, cx.f32(1e-30f))),
      cx.f32(0.0f));
  Value halves[2] = {v0, v1};
  for (int64_t h = 0; h < 2; ++h) {
    Value r =
        math::RoundEvenOp::create(b, loc, cx.mul(halves[h], cx.splat(inv, 16)));
    out.q[h] = arith::FPToSIOp::create(b, loc, qb.vec(16, qb.i32()), r);
  }
  return out;
}

/// Stores block `blk`'s d_x as scale[row][blk] and, where those buffers
/// are given, its int32 start -zero Σ q_x and d_x Σ q_x (one a block: the
/// groups form and the sequence tiles' input).
void storeBlockTerms(QuantBuilder &qb, const QuantizedBlock &qblk, int64_t zero,
                     Value scale, Value start, Value sum, Value row,
                     Value blk) {
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  memref::StoreOp::create(b, loc, qblk.d, scale, ValueRange{row, blk});
  if (!start && !sum)
    return;
  Value total = vector::ReductionOp::create(
      b, loc, vector::CombiningKind::ADD,
      arith::AddIOp::create(b, loc, qblk.q[0], qblk.q[1]));
  if (start)
    memref::StoreOp::create(
        b, loc,
        arith::MulIOp::create(
            b, loc, total,
            arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(-zero))),
        start, ValueRange{row, blk});
  if (sum)
    memref::StoreOp::create(
        b, loc,
        qb.cx.mul(arith::SIToFPOp::create(b, loc, qb.f32(), total), qblk.d),
        sum, ValueRange{row, blk});
}

/// quantizeInput's work for one token: token t's input into row `row`
/// of each buffer.
void quantizeInputOf(QuantBuilder &qb, const QuantizedProduct &p, int64_t zero,
                     bool groups, Value t, Value row,
                     const QuantizedInput &in) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  int64_t blocks = p.K / kQuantBlockElements;
  // quantizeInput's row sizes.
  int64_t qBytes = cast<MemRefType>(in.q.getType()).getDimSize(1);
  int64_t slots = cast<MemRefType>(in.scale.getType()).getDimSize(1);
  // Groups form: zeros in a last partial group (its blocks are stored over
  // them below).
  for (int64_t k = blocks / kQuantGroupBlocks * kGroupInputBytes;
       groups && k < qBytes; k += 64)
    vector::StoreOp::create(b, loc, qb.splatInt(0, 64, qb.i8()), in.q,
                            ValueRange{row, cx.index(k)});
  cx.forLoop(cx.index(0), cx.index(blocks), 1, [&](Value blk) {
    Value k = cx.mulIndex(blk, kQuantBlockElements);
    QuantizedBlock qblk =
        quantizeBlockOf(qb, p.input(t, k, 16), p.input(t, cx.addIndex(k, 16), 16));
    Value d = qblk.d;
    Value *qs = qblk.q;
    int64_t halfLanes = kLanesPerBlock / 2;
    // Groups form: block blk's lane of vector 0 of its group.
    Value lane0;
    if (groups) {
      Value i =
          arith::RemUIOp::create(b, loc, blk, cx.index(kQuantGroupBlocks));
      lane0 = arith::AddIOp::create(
          b, loc, cx.mulIndex(arith::SubIOp::create(b, loc, blk, i), 2 * 16),
          cx.mulIndex(i, 4));
    }
    for (int64_t h = 0; h < 2; ++h) {
      Value q = qs[h];
      Value bytes = arith::TruncIOp::create(b, loc, qb.vec(16, qb.i8()), q);
      if (groups) {
        // Elements 4 v .. 4 v + 3 in lane i of vector v.
        for (int64_t j = 0; j < 4; ++j) {
          Value word = vector::ExtractStridedSliceOp::create(
              b, loc, bytes, ArrayRef<int64_t>{4 * j}, ArrayRef<int64_t>{4},
              ArrayRef<int64_t>{1});
          vector::StoreOp::create(
              b, loc, word, in.q,
              ValueRange{row, cx.addIndex(lane0, 64 * (4 * h + j))});
        }
        continue;
      }
      vector::StoreOp::create(b, loc, bytes, in.q,
                              ValueRange{row, cx.addIndex(k, 16 * h)});
      Value sums = qb.sumGroupsOf4(q); // vector<4xi32>: a lane's 4 elements
      Value lane = cx.addIndex(cx.mulIndex(blk, kLanesPerBlock),
                               int64_t(h) * halfLanes);
      cx.store(cx.splat(d, halfLanes), in.scale, {row, lane});
      if (in.start)
        vector::StoreOp::create(
            b, loc,
            arith::MulIOp::create(b, loc, sums,
                                  qb.splatInt(-zero, halfLanes, qb.i32())),
            in.start, ValueRange{row, lane});
      if (in.sum)
        cx.store(cx.mul(arith::SIToFPOp::create(
                            b, loc, qb.vec(halfLanes, qb.f32()), sums),
                        cx.splat(d, halfLanes)),
                 in.sum, {row, lane});
    }
    if (groups)
      storeBlockTerms(qb, qblk, zero, in.scale, in.start, in.sum, row, blk);
  });
  if (!groups)
    return;
  // Zeros in a group's slots past the row's blocks (multiplied by the zero
  // d of masked loads: a NaN left there would survive).
  for (int64_t s = blocks; s < slots; ++s) {
    Value at = cx.index(s);
    memref::StoreOp::create(b, loc, cx.f32(0.0f), in.scale,
                            ValueRange{row, at});
    if (in.start)
      memref::StoreOp::create(
          b, loc, arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0)),
          in.start, ValueRange{row, at});
    if (in.sum)
      memref::StoreOp::create(b, loc, cx.f32(0.0f), in.sum,
                              ValueRange{row, at});
  }
}

/// Quantizes the input of `tokens` tokens, token tokenOf(i) into row i of
/// each buffer.
QuantizedInput quantizeInput(QuantBuilder &qb, const QuantizedProduct &p,
                             int64_t zero, bool groups, int64_t tokens,
                             function_ref<Value(Value i)> tokenOf) {
  LoweringContext &cx = qb.cx;
  int64_t blocks = p.K / kQuantBlockElements;
  QuantizedInput in;
  int64_t padded =
      groups ? int64_t(llvm::alignTo(blocks, kQuantGroupBlocks)) : blocks;
  int64_t qBytes = padded * kQuantBlockElements;
  int64_t slots = padded * (groups ? 1 : kLanesPerBlock);
  in.q = cx.allocScratch({tokens, qBytes}, qb.i8());
  in.scale = cx.allocScratch({tokens, slots}, qb.f32());
  if (zero)
    in.start = cx.allocScratch({tokens, slots}, qb.i32());
  if (qb.hasMin())
    in.sum = cx.allocScratch({tokens, slots}, qb.f32());
  auto one = [&](Value i) {
    quantizeInputOf(qb, p, zero, groups, tokenOf(i), i, in);
  };
  if (tokens == 1)
    one(cx.index(0));
  else
    cx.forLoop(cx.index(0), cx.index(tokens), 1, one);
  return in;
}

/// The prefetch of decode of weights that stream from memory: each step
/// prefetches the same bytes of the rows `ahead` rows down, the next
/// tile's (a tile of one row: the row about kPrefetchBytes further on).
/// Unpacking a block takes several instructions per cache line, so the core
/// has fewer loads in flight than f16 decode and the hardware prefetcher
/// alone left the 0.4B shape's q8_0 at 60% of the memory bandwidth (its FFN
/// value, 4-row tiles of 4.3 KB rows, four streams at once, slowest per
/// byte). Measured (3 alternating runs, tok/s, one / two threads): 0.4B
/// q8_0 39.6-44.7 / 69.1-74.5 -> 54.0-58.1 / 85.0-95.6; 0.4B q4_0
/// 85.0-88.4 / 131-142 -> 80.5-90.8 / 142-154; 0.1B q8_0, two threads, 5
/// runs: 250-291 -> 253-267.
struct Prefetcher {
  Prefetcher(QuantBuilder &qb, const QuantizedProduct &p, ArrayRef<Value> rows)
      : qb(qb), p(p) {
    LoweringContext &cx = qb.cx;
    if (!cx.streamWeights)
      return;
    int64_t rowBytes = cast<MemRefType>(p.w.getType()).getDimSize(1);
    int64_t nr = rows.size();
    int64_t ahead =
        nr > 1 ? nr : std::max<int64_t>(1, kPrefetchBytes / rowBytes);
    // The rows prefetched, clamped to the last.
    for (Value row : rows)
      next.push_back(arith::MinUIOp::create(
          qb.b, qb.loc, cx.addIndex(row, ahead), cx.index(p.N - 1)));
  }
  /// Prefetches byte `at` of each row `ahead` on (none unless the weights
  /// stream).
  void operator()(Value at) {
    for (Value row : next)
      memref::PrefetchOp::create(qb.b, qb.loc, p.w, ValueRange{row, at},
                                 /*isWrite=*/false, /*localityHint=*/3,
                                 /*isDataCache=*/true);
  }
  QuantBuilder &qb;
  const QuantizedProduct &p;
  SmallVector<Value> next;
};

/// The rows [o, o + nr) of a tile.
SmallVector<Value> tileRows(LoweringContext &cx, Value o, int64_t nr) {
  SmallVector<Value> rows;
  for (int64_t r = 0; r < nr; ++r)
    rows.push_back(cx.addIndex(o, r));
  return rows;
}

/// Stores the sums of each row's accumulator (`total`: one vector a row)
/// as y[t][rows].
void storeRowSums(LoweringContext &cx, const QuantizedProduct &p, Value t0,
                  ArrayRef<Value> rows, ArrayRef<Value> total) {
  int64_t lanes = cast<VectorType>(total[0].getType()).getDimSize(0);
  auto stored = [&](Value sums, Value row) {
    return p.onStore ? p.onStore(sums, t0, row) : sums;
  };
  if (canReduceRows(total.size(), lanes)) {
    cx.store(stored(reduceRows(cx, total), rows[0]), p.y, {t0, rows[0]});
    return;
  }
  for (auto [row, sum] : llvm::zip(rows, total))
    memref::StoreOp::create(cx.b, cx.loc, stored(cx.reduceAdd(sum), row), p.y,
                            ValueRange{t0, row});
}

/// One tile of decode with x86 dot products (input in groups form): rows
/// [o, o + nr), their blocks in groups of kQuantGroupBlocks, each a block to
/// an int32 lane (QuantRowLayout::codeWord). Per group and row: the int32
/// lanes start at -zero Σ q_x of their block; each 64 bytes of code words
/// (words s of the 16 blocks) unpacked in place (4- and 5-bit: the low
/// nibbles are the blocks' elements 4 s .. 4 s + 3, the high ones 16 + 4
/// s .., fifth bits spread by one byte shuffle and a test) and summed by
/// dot4 (vpdpbusd) against the input's q_x of the same elements
/// (groupCodes' order), two chains; the lanes, each a whole block's Σ (u -
/// zero) q_x, converted and scaled by d d_x (the group's 16 d one 32-byte load,
/// times the 16 d_x) into the row's f32 accumulator, and m · d_x Σ q_x added
/// (_1 kinds). A group of 16 q4_0 blocks takes 4 loads of codes, 12 logic
/// ops, 8 vpdpbusd and 5 ops of scales.
///
/// With 256-bit vectors (AVX-VNNI, AVX2) a whole group is two halves of 8
/// blocks (bytes 4 o .. 4 o + 31 of each 64 of words, o = 0 and 8, the
/// same of the input's vectors), each half's sums widened into the row's
/// 16 lanes at lane o; AVX2's dot4 is vpmaddubsw and vpmaddwd (q8_0: |q|
/// against q_x with q's sign), and a tile is one row (4 rows' codes, fifth
/// bits and sums spilled with AVX2's 16 registers). Block by block, AVX2
/// gathered each block's words (4 or 8 loads of 4 bytes) and decoded the
/// 0.1B q4_0 at 0.38-0.40x the rate of this form (docs/performance.md,
/// session 22).
///
/// No software prefetch of the codes: with the Prefetcher's (each step the
/// same bytes of the row about 4 KB on) the 0.4B's q4_0 decoded 0.75x as
/// fast on one thread (its FFN value, rows of 2.3 KB, took 31% of decode
/// instead of 20%), and 8 KB ahead was slower than 4 (0.87x); without it
/// every shape of the table decoded 1.15-1.37x as fast as the
/// block-by-block kernel on one thread (`ab_bench` both orders;
/// docs/performance.md, "Block rows"). Nor of the side parts: each group's
/// lie just before its codes in the row (QuantRowLayout), so that a row is
/// read as one stream. In the rows' former order (all codes, then all
/// fifth bits, d, m), each group's d lay ahead of the codes' stream: the
/// 0.4B's q4_0 FFN value (rows of 2 KiB of codes, then 256 bytes of d) took
/// 1.3x the time of its FFN key, which has as many bytes, even with the
/// next row's d prefetched (docs/performance.md, "Rows in groups").
///
/// A tile of several tokens (a small batch: `tokens`, the token of each of
/// in's rows; `count`, the batch's) reads each row's codes once and
/// unpacks them once for all of them; row i's sums are stored as token
/// tokens[i]'s where i < count (tokens past the batch repeat its last).
void decodeGroupTile(QuantBuilder &qb, const QuantizedProduct &p,
                     const QuantizedInput &in, ArrayRef<Value> tokens,
                     Value count, Value o, int64_t nr) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  int64_t blocks = qb.blocks;
  int64_t words = qb.row.codeWords();
  bool nibbles = qb.bits != 8;
  SmallVector<Value> rows = tileRows(cx, o, nr);
  int64_t nt = tokens.size();

  int64_t maxLanes = cx.quantDot == QuantDot::AVX512VNNI
                         ? kQuantGroupBlocks
                         : kQuantGroupBlocks / 2;
  // With 256-bit vectors (AVX2's 16 registers), one chain a token when a
  // tile holds several (a small batch's): the 4-token tiles of a model of
  // the 0.1B's width spill 8 and 4 registers a loop, 12 and 9 with two
  // chains (tiles of 2 tokens: none either way).
  int64_t nc = maxLanes == kQuantGroupBlocks || nr * nt == 1 ? 2 : 1;
  // acc (one a row and token) += blocks [g + o, g + o + c) of the group of
  // `n` blocks from `g` (all of it with AVX-512; with 256-bit vectors, a
  // whole group in two halves of 8 blocks).
  auto part = [&](Value g, int64_t n, int64_t o, int64_t c,
                  MutableArrayRef<Value> acc) {
    int64_t lanes = QuantBuilder::groupLanes(c);
    auto ints = qb.vec(lanes, qb.i32());
    auto floats = qb.vec(lanes, qb.f32());
    Value zeroInts = qb.splatInt(0, lanes, qb.i32());
    Value at = cx.addIndex(g, o); // the part's first block
    Value qAt = cx.addIndex(cx.mulIndex(g, kQuantBlockElements), 4 * o);
    // Chains of int32 sums a row and token (nc), the first from the start.
    SmallVector<Value> chains;
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t a = 0; a < nt; ++a) {
        chains.push_back(
            in.start ? Value(vector::LoadOp::create(
                           b, loc, ints, in.start, ValueRange{cx.index(a), at}))
                     : zeroInts);
        if (nc == 2)
          chains.push_back(zeroInts);
      }
    SmallVector<Value> high;
    for (Value r : rows)
      high.push_back(
          qb.bits == 5
              ? qb.groupBytes(p.w, r, g, n, &QuantRowLayout::high, 4, 0, o, c)
              : Value());
    // Words s of rows `rs`: the vectors v of the codes each holds against
    // the q_x they meet (loaded once for the rows), alternating chains.
    auto word = [&](int64_t s, ArrayRef<int64_t> rs) {
      SmallVector<int64_t> vs{s};
      if (nibbles)
        vs.push_back(s + 4);
      SmallVector<SmallVector<Value>> x;
      for (int64_t v : vs) {
        x.emplace_back();
        for (int64_t a = 0; a < nt; ++a)
          x.back().push_back(vector::LoadOp::create(
              b, loc, qb.vec(4 * lanes, qb.i8()), in.q,
              ValueRange{cx.index(a), cx.addIndex(qAt, 64 * v)}));
      }
      for (int64_t r : rs) {
        Value raw = qb.groupBytes(p.w, rows[r], g, n, &QuantRowLayout::codes,
                                  4 * n, s, o, c);
        for (auto [k, v] : llvm::enumerate(vs)) {
          Value u = qb.groupCodes(raw, v, high[r]);
          for (int64_t a = 0; a < nt; ++a) {
            Value &chain =
                chains[(r * nt + a) * nc + (s * int64_t(vs.size()) + k) % nc];
            chain = qb.dot4(cx.quantDot, chain, u, x[k][a]);
          }
        }
      }
    };
    // Word by word over the rows: each q_x load serves them all.
    SmallVector<int64_t> all = llvm::to_vector(llvm::seq<int64_t>(0, nr));
    for (int64_t s = 0; s < words; ++s)
      word(s, all);
    auto halves = [&](Value r, QuantBuilder::Part which) {
      Value raw =
          qb.loadBytes(p.w, r, cx.addIndex(qb.inGroup(g, n, which, 2), 2 * o),
                       2 * c, 2 * lanes);
      Value h =
          vector::BitCastOp::create(b, loc, qb.vec(lanes, b.getF16Type()), raw);
      return arith::ExtFOp::create(b, loc, floats, h);
    };
    for (int64_t r = 0; r < nr; ++r) {
      Value d = halves(rows[r], &QuantRowLayout::scale);
      Value m = in.sum ? halves(rows[r], &QuantRowLayout::min) : Value();
      for (int64_t a = 0; a < nt; ++a) {
        Value t = cx.index(a);
        Value isum = chains[(r * nt + a) * nc];
        if (nc == 2)
          isum = arith::AddIOp::create(b, loc, isum,
                                       chains[(r * nt + a) * nc + 1]);
        Value f = arith::SIToFPOp::create(b, loc, floats, isum);
        Value dx = cx.load(in.scale, {t, at}, lanes);
        Value &sum = acc[r * nt + a];
        // A narrower part: its own sum, widened, then added.
        Value partSum = lanes < kQuantGroupBlocks ? cx.splat(0.0f, lanes) : sum;
        partSum = cx.fma(f, cx.mul(d, dx), partSum);
        if (m)
          partSum = cx.fma(m, cx.load(in.sum, {t, at}, lanes), partSum);
        if (lanes < kQuantGroupBlocks)
          partSum = cx.add(
              sum, vector::InsertStridedSliceOp::create(
                       b, loc, partSum, cx.splat(0.0f, kQuantGroupBlocks),
                       ArrayRef<int64_t>{o}, ArrayRef<int64_t>{1}));
        sum = partSum;
      }
    }
  };
  // The group of `n` blocks from `g`: in parts of at most `maxLanes`.
  auto group = [&](Value g, int64_t n, MutableArrayRef<Value> acc) {
    for (int64_t o = 0; o < n; o += maxLanes)
      part(g, n, o, std::min(maxLanes, n - o), acc);
  };

  SmallVector<Value> acc(nr * nt, cx.splat(0.0f, kQuantGroupBlocks));
  int64_t whole = blocks / kQuantGroupBlocks * kQuantGroupBlocks;
  if (whole > 0)
    acc = cx.forLoopCarrying(cx.index(0), cx.index(whole), kQuantGroupBlocks,
                             acc, [&](Value g, ValueRange it) {
                               SmallVector<Value> a(it);
                               group(g, kQuantGroupBlocks, a);
                               return a;
                             });
  if (whole < blocks)
    group(cx.index(whole), blocks - whole, acc);
  for (int64_t a = 0; a < nt; ++a) {
    SmallVector<Value> total;
    for (int64_t r = 0; r < nr; ++r)
      total.push_back(acc[r * nt + a]);
    if (a == 0 || !count) {
      storeRowSums(cx, p, tokens[a], rows, total);
      continue;
    }
    Value inBatch = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                          cx.index(a), count);
    auto ifOp = scf::IfOp::create(b, loc, inBatch, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    storeRowSums(cx, p, tokens[a], rows, total);
  }
}

/// One tile of decode without AVX-512 VNNI (input in lanes form): rows [o,
/// o + nr), their K / 32 blocks one at a time on 8 lanes.
void decodeTile(QuantBuilder &qb, const QuantizedProduct &p,
                const QuantizedInput &in, Value o, int64_t nr) {
  LoweringContext &cx = qb.cx;
  OpBuilder &b = qb.b;
  Location loc = qb.loc;
  QuantDot dot = cx.quantDot;
  int64_t blocks = qb.blocks;
  // One row per tile: two independent sets of accumulators (their FMA
  // chains overlap); more rows already give as many chains.
  int64_t sets = nr == 1 && blocks >= 4 ? 2 : 1;
  bool hasMin = qb.hasMin();
  SmallVector<Value> rows = tileRows(cx, o, nr);
  Prefetcher prefetch(qb, p, rows);
  auto step = [&](Value blk, MutableArrayRef<Value> acc) {
    int64_t lanes = kLanesPerBlock;
    Value k = cx.mulIndex(blk, kQuantBlockElements);
    Value lane = cx.mulIndex(blk, kLanesPerBlock);
    Value t0 = cx.index(0);
    Value xq = vector::LoadOp::create(b, loc, qb.vec(4 * lanes, qb.i8()), in.q,
                                      ValueRange{t0, k});
    Value xd = cx.load(in.scale, {t0, lane}, lanes);
    Value start =
        in.start ? Value(vector::LoadOp::create(b, loc, qb.vec(lanes, qb.i32()),
                                                in.start, ValueRange{t0, lane}))
                 : qb.splatInt(0, lanes, qb.i32());
    Value xs = in.sum ? cx.load(in.sum, {t0, lane}, lanes) : Value();
    prefetch(cx.mulIndex(blk, qb.row.blockBytes));
    for (int64_t r = 0; r < nr; ++r) {
      Value u = qb.blockCodes(p.w, rows[r], blk);
      Value scale = qb.spreadHalves({qb.loadHalfBits(p.w, rows[r], qb.scaleAt(blk))},
                                    kLanesPerBlock);
      Value isum = qb.dot4(dot, start, u, xq);
      Value fsum = arith::SIToFPOp::create(b, loc, qb.vec(lanes, qb.f32()),
                                           isum);
      acc[r] = cx.fma(cx.mul(fsum, xd), scale, acc[r]);
      if (hasMin)
        acc[r] = cx.fma(
            qb.spreadHalves({qb.loadHalfBits(p.w, rows[r], qb.minAt(blk))},
                            kLanesPerBlock),
            xs, acc[r]);
    }
  };

  int64_t lanes = kLanesPerBlock;
  SmallVector<Value> init(sets * nr, cx.splat(0.0f, lanes));
  int64_t mainEnd = blocks / sets * sets;
  SmallVector<Value> accs =
      mainEnd == 0 ? init
                   : cx.forLoopCarrying(cx.index(0), cx.index(mainEnd), sets,
                                        init, [&](Value blk, ValueRange it) {
                                          SmallVector<Value> next(it);
                                          for (int64_t s = 0; s < sets; ++s)
                                            step(cx.addIndex(blk, s),
                                                 MutableArrayRef<Value>(next).slice(s * nr, nr));
                                          return next;
                                        });
  SmallVector<Value> total(accs.begin(), accs.begin() + nr);
  for (int64_t s = 1; s < sets; ++s)
    for (int64_t r = 0; r < nr; ++r)
      total[r] = cx.add(total[r], accs[s * nr + r]);
  for (int64_t blk = mainEnd; blk < blocks; ++blk)
    step(cx.index(blk), total);
  storeRowSums(cx, p, cx.index(0), rows, total);
}

} // namespace

void mlir::rwkv::cpu::emitQuantizedDecode(LoweringContext &cx,
                                          const QuantizedProduct &p,
                                          bool parallel, int64_t tokens) {
  assert(p.K % 32 == 0 && "quantized rows are whole blocks");
  assert((tokens == 1 || cx.quantDot != QuantDot::Generic) &&
         "tiles of several tokens take the groups form");
  QuantBuilder qb(cx, p.kind, p.K);
  // Rows shorter than two pages one per tile when the weights stream from
  // memory (one linear stream), as LowerLinear.cpp's emitOutIn reads them.
  // The 0.4B's q8_0 FFN value rows (4.3 KB) read one per tile (each
  // prefetching the next row) rather than 4 per tile, four streams at
  // once: `ab_bench` in both orders, two pairs, 1.14 and 1.13 on one
  // thread, 1.085 and 1.003 on two (an earlier measurement, 3 alternating
  // runs, had found no gain: 50.0-50.2 against 48.7-50.1 tok/s).
  int64_t rowBytes = cast<MemRefType>(p.w.getType()).getDimSize(1);
  // Several tokens a tile (a small batch) reuse each row already: one row
  // a tile (4 rows by 4 tokens would need 32 accumulators).
  bool groups = cx.quantDot != QuantDot::Generic;
  // With 256-bit vectors (AVX2: 16 registers) one row a tile as well: 4
  // rows' codes, fifth bits and sums spilled.
  int64_t rowsPerTile =
      tokens > 1 || (cx.streamWeights && rowBytes < kStreamRowBytes) ||
              (groups && cx.quantDot != QuantDot::AVX512VNNI)
          ? 1
          : kDecodeRows;
  // Token i of the tile: min(i, T - 1), the batch's last repeated past its
  // end.
  Value last = cx.oneToken ? cx.index(0)
                           : arith::SubIOp::create(cx.b, cx.loc, cx.numTokens(),
                                                   cx.index(1));
  auto tokenOf = [&](Value i) -> Value {
    return tokens == 1 ? i : arith::MinUIOp::create(cx.b, cx.loc, i, last);
  };
  QuantizedInput in = quantizeInput(qb, p, zeroCode(p.kind, cx.quantDot),
                                    groups, tokens, tokenOf);
  SmallVector<Value> tileTokens;
  for (int64_t i = 0; i < tokens; ++i)
    tileTokens.push_back(tokenOf(cx.index(i)));
  Value count = tokens > 1 ? cx.numTokens() : Value();
  auto tile = [&](Value o, int64_t nr) {
    if (groups)
      decodeGroupTile(qb, p, in, tileTokens, count, o, nr);
    else
      decodeTile(qb, p, in, o, nr);
  };
  int64_t full = p.N / rowsPerTile * rowsPerTile;
  if (full == rowsPerTile)
    tile(cx.index(0), rowsPerTile);
  else if (full > 0)
    cx.forLoopMaybeParallel(cx.index(0), cx.index(full), rowsPerTile,
                            parallel, [&](Value o) { tile(o, rowsPerTile); });
  if (p.N % rowsPerTile)
    tile(cx.index(full), p.N % rowsPerTile);
  // The quantized input stays this product's own (a few KB, not returned
  // to the pool): in decode's one parallel region (ParallelRegions.cpp) the
  // inputs of products that do not depend on each other are then quantized
  // in one serial run before the first of them, with one barrier for all.
}

namespace {
/// A buffer of a tile of rows of a sequence product (dequantized or
/// repacked weights): inside an scf.parallel the iteration's own, on the
/// stack of the thread that runs it (convert-scf-to-openmp scopes the
/// allocas of each iteration); elsewhere one scratch buffer in the entry
/// block serves every tile, returned to the pool at the end of scope.
class TileBuffer {
public:
  TileBuffer(LoweringContext &cx, ArrayRef<int64_t> shape, Type elementType)
      : cx(cx) {
    OpBuilder &b = cx.b;
    scf::ParallelOp parallel = cx.enclosingParallelLoop();
    if (!parallel) {
      buffer = cx.allocScratch(shape, elementType);
      scratch = true;
      return;
    }
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(parallel.getBody());
    buffer = memref::AllocaOp::create(b, cx.loc,
                                      MemRefType::get(shape, elementType),
                                      b.getI64IntegerAttr(64));
  }
  ~TileBuffer() {
    if (scratch)
      cx.releaseScratch(buffer);
  }
  operator Value() const { return buffer; }

private:
  LoweringContext &cx;
  Value buffer;
  bool scratch = false;
};
} // namespace

void mlir::rwkv::cpu::withDequantizedRows(LoweringContext &cx, Value w,
                                          QuantKind kind, int64_t K, Value o,
                                          int64_t nr,
                                          function_ref<void(Value)> body) {
  QuantBuilder qb(cx, kind, K);
  OpBuilder &b = cx.b;
  Location loc = cx.loc;
  TileBuffer rows(cx, {nr, K}, qb.f32());
  int64_t zero = zeroCode(kind, QuantDot::Generic);
  bool signedCodes = qb.bits == 8;
  for (int64_t r = 0; r < nr; ++r) {
    Value row = cx.addIndex(o, r);
    Value local = cx.index(r);
    cx.forLoop(cx.index(0), cx.index(K / kQuantBlockElements), 1,
               [&](Value blk) {
                 Value codes = qb.blockCodes(w, row, blk);
                 auto wide = qb.vec(32, qb.i32());
                 Value ints =
                     signedCodes
                         ? Value(arith::ExtSIOp::create(b, loc, wide, codes))
                         : Value(arith::ExtUIOp::create(b, loc, wide, codes));
                 Value vals = arith::SIToFPOp::create(
                     b, loc, qb.vec(32, qb.f32()), ints);
                 // d (u - zero) + m = d u + (m - zero d)
                 Value d = qb.loadHalf(w, row, qb.scaleAt(blk));
                 Value c = cx.mul(d, cx.f32(-float(zero)));
                 if (qb.hasMin())
                   c = cx.add(c, qb.loadHalf(w, row, qb.minAt(blk)));
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
}

//===----------------------------------------------------------------------===//
// Sequences by integer dot products (AVX-512 VNNI)
//===----------------------------------------------------------------------===//

namespace {

// Rows a vector of the repacked codes holds (int32 lanes) and tokens per
// tile: with AVX-512 VNNI 16 and 4; with 256-bit vectors (AVX-VNNI, AVX2:
// 16 registers) 8 and 1. With 2 tokens by 2 vectors of rows LLVM computes
// each (vector, token) chain whole, keeping all 8 words of each token's
// q_x: the tiny Q5_1's loop spilled 16 registers a block (asm-quant.test),
// and took 0.88x and 0.92x the tokens per second of one token by 2
// vectors on two threads (0.1B q4_0, 256 tokens, `prefill_ab_bench` both
// orders; 2 tokens by 1 vector, 8 rows a tile, measured the same as 1
// token by 2 vectors on one thread and still spills 2 registers).
int64_t dotLanes(QuantDot dot) { return dot == QuantDot::AVX512VNNI ? 16 : 8; }
int64_t dotTokens(QuantDot dot) { return dot == QuantDot::AVX512VNNI ? 4 : 1; }
// Words (4 codes) of a block of 32.
constexpr int64_t kBlockWords = kQuantBlockElements / 4;

/// The transpose of `rows` (n vectors of m lanes, n and m powers of two): m
/// vectors of n lanes, vector j lane r holding lane j of row r. A tree of
/// two-input shuffles, log2(n) levels of n·m / max(lanes) each: at each
/// level pairs of groups of rows merge, the merged group's elements in the
/// order (column, row); each shuffle's lanes are looked up in its two
/// operands.
SmallVector<Value> transposeLanes(OpBuilder &b, Location loc,
                                  ArrayRef<Value> rows) {
  int64_t n = rows.size();
  int64_t m = cast<VectorType>(rows.front().getType()).getDimSize(0);
  assert(llvm::isPowerOf2_64(n) && llvm::isPowerOf2_64(m));
  using Lane = std::pair<int64_t, int64_t>; // (row, column)
  struct Part {
    Value v;
    SmallVector<Lane> lanes;
  };
  SmallVector<SmallVector<Part>> groups;
  for (auto [r, v] : llvm::enumerate(rows)) {
    Part part{v, {}};
    for (int64_t j = 0; j < m; ++j)
      part.lanes.push_back({int64_t(r), j});
    groups.push_back({part});
  }
  auto holding = [](ArrayRef<Part> parts, Lane lane) -> const Part & {
    for (const Part &part : parts)
      if (llvm::is_contained(part.lanes, lane))
        return part;
    llvm_unreachable("lane in no part");
  };
  for (int64_t size = 2; size <= n; size *= 2) {
    int64_t width = std::min(m * size, n);
    SmallVector<SmallVector<Part>> next;
    for (size_t i = 0; i < groups.size(); i += 2) {
      ArrayRef<Part> left = groups[i], right = groups[i + 1];
      int64_t base = left.front().lanes.front().first;
      SmallVector<Part> merged;
      for (int64_t v = 0; v < m * size / width; ++v) {
        SmallVector<Lane> want;
        for (int64_t pos = v * width; pos < (v + 1) * width; ++pos)
          want.push_back({base + pos % size, pos / size});
        const Part &a = holding(left, want[0]);
        const Part &c = holding(right, want[size / 2]);
        SmallVector<int64_t> mask;
        for (Lane lane : want) {
          const auto *in = llvm::find(a.lanes, lane);
          if (in != a.lanes.end()) {
            mask.push_back(in - a.lanes.begin());
            continue;
          }
          in = llvm::find(c.lanes, lane);
          assert(in != c.lanes.end() && "lane in neither operand");
          mask.push_back(int64_t(a.lanes.size()) + (in - c.lanes.begin()));
        }
        merged.push_back(
            {vector::ShuffleOp::create(b, loc, a.v, c.v, mask), want});
      }
      next.push_back(std::move(merged));
    }
    groups = std::move(next);
  }
  SmallVector<Value> columns;
  for (const Part &part : groups.front())
    columns.push_back(part.v);
  return columns;
}

} // namespace

int64_t mlir::rwkv::cpu::dotSequenceRows(const LoweringContext &cx) {
  return 2 * dotLanes(cx.quantDot);
}

bool mlir::rwkv::cpu::quantizedSequenceByDots(const LoweringContext &cx,
                                              int64_t N) {
  return !cx.oneToken && cx.quantDot != QuantDot::Generic &&
         N % dotLanes(cx.quantDot) == 0;
}

QuantizedTokens mlir::rwkv::cpu::quantizeTokens(
    LoweringContext &cx, QuantKind kind, int64_t K,
    const std::function<Value(Value t, Value k, int64_t width)> &input) {
  QuantBuilder qb(cx, kind, K);
  OpBuilder &b = cx.b;
  Location loc = cx.loc;
  int64_t blocks = qb.blocks;
  // The codes are read unsigned (q8_0's + 128 by vpdpbusd; AVX2 takes
  // q8_0's |q| against q_x with q's sign) against signed q_x.
  int64_t zero = zeroCode(kind, cx.quantDot);
  QuantizedTokens in;
  in.q = cx.allocActivation(K / 4, qb.i32());
  in.scale = cx.allocActivation(blocks);
  if (zero)
    in.start = cx.allocActivation(blocks, qb.i32());
  if (qb.hasMin())
    in.sum = cx.allocActivation(blocks);
  cx.forEachToken([&](Value t) {
    cx.forLoop(cx.index(0), cx.index(blocks), 1, [&](Value blk) {
      Value k = cx.mulIndex(blk, kQuantBlockElements);
      QuantizedBlock qblk =
          quantizeBlockOf(qb, input(t, k, 16), input(t, cx.addIndex(k, 16), 16));
      Value word = cx.mulIndex(blk, kBlockWords);
      for (int64_t h = 0; h < 2; ++h) {
        Value bytes =
            arith::TruncIOp::create(b, loc, qb.vec(16, qb.i8()), qblk.q[h]);
        vector::StoreOp::create(
            b, loc, vector::BitCastOp::create(b, loc, qb.vec(4, qb.i32()), bytes),
            in.q, ValueRange{t, cx.addIndex(word, 4 * h)});
      }
      storeBlockTerms(qb, qblk, zero, in.scale, in.start, in.sum, t, blk);
    });
  });
  return in;
}

void mlir::rwkv::cpu::releaseQuantizedTokens(LoweringContext &cx,
                                             const QuantizedTokens &in) {
  for (Value buffer : {in.q, in.scale, in.start, in.sum})
    if (buffer)
      cx.releaseScratch(buffer);
}

void mlir::rwkv::cpu::emitQuantizedSequenceTile(LoweringContext &cx,
                                                const QuantizedProduct &p,
                                                const QuantizedTokens &in,
                                                Value o, int64_t nr) {
  int64_t rowLanes = dotLanes(cx.quantDot);
  assert(nr % rowLanes == 0 && "tiles of whole vectors of rows");
  QuantBuilder qb(cx, p.kind, p.K);
  OpBuilder &b = cx.b;
  Location loc = cx.loc;
  int64_t blocks = qb.blocks;
  // vpdpbusd takes q8_0's codes + 128 (flipped once here rather than by
  // dot4 for every token); AVX2's dot4 their signed values.
  bool vnni = byVpdpbusd(cx.quantDot);
  int64_t groups = nr / rowLanes;
  auto words = qb.vec(rowLanes, qb.i32());
  auto floats = qb.vec(rowLanes, qb.f32());
  auto bytes = qb.vec(4 * rowLanes, qb.i8());
  TileBuffer codes(cx, {groups, blocks, kBlockWords, rowLanes}, qb.i32());
  TileBuffer scales(cx, {groups, blocks, rowLanes}, qb.f32());
  std::optional<TileBuffer> mins;
  if (qb.hasMin())
    mins.emplace(cx, ArrayRef<int64_t>{groups, blocks, rowLanes}, qb.f32());

  // Repack: per vector of rows and group of blocks (QuantRowLayout),
  // vector v of the codes of each row (groupCodes: lane i block i's word v)
  // transposed by shuffles into one vector a block, lane r row r's word v
  // (as `vnni` says); the same for the rows' d (and m). Loops over
  // the groups of rows and the words (one transpose a word, two for the
  // nibble kinds): unrolled, the 16 transposes of a group took most of the
  // libraries' compile time (0.1B q8_0: 34 s against 9 s).
  cx.forLoop(cx.index(0), cx.index(groups), 1, [&](Value gi) {
    SmallVector<Value> rows = tileRows(
        cx, arith::AddIOp::create(b, loc, o, cx.mulIndex(gi, rowLanes)),
        rowLanes);
    auto blockGroup = [&](Value bg, int64_t n) {
      int64_t lanes = QuantBuilder::groupLanes(n);
      auto laneWords = qb.vec(lanes, qb.i32());
      // Word s holds vector s (and s + 4, its high nibbles).
      int64_t perWord = kBlockWords / qb.row.codeWords();
      cx.forLoop(cx.index(0), cx.index(qb.row.codeWords()), 1, [&](Value s) {
        // The fifth bits of vector v are bits 4 v ..: shifted by 4 s here,
        // by 16 more for the high nibbles in groupCodes.
        Value shift;
        if (qb.bits == 5)
          shift = vector::BroadcastOp::create(
              b, loc, laneWords,
              arith::IndexCastOp::create(b, loc, qb.i32(), cx.mulIndex(s, 4)));
        SmallVector<SmallVector<Value>> rowWords(perWord);
        for (Value r : rows) {
          Value raw = qb.groupWords(p.w, r, bg, n, s);
          Value high;
          if (shift)
            high = vector::BitCastOp::create(
                b, loc, qb.vec(4 * lanes, qb.i8()),
                arith::ShRUIOp::create(
                    b, loc,
                    vector::BitCastOp::create(b, loc, laneWords,
                                              qb.groupHigh(p.w, r, bg, n)),
                    shift));
          for (int64_t k = 0; k < perWord; ++k)
            rowWords[k].push_back(vector::BitCastOp::create(
                b, loc, laneWords, qb.groupCodes(raw, 4 * k, high)));
        }
        for (int64_t k = 0; k < perWord; ++k) {
          Value v = cx.addIndex(s, 4 * k);
          for (auto [i, column] :
               llvm::enumerate(transposeLanes(b, loc, rowWords[k]))) {
            if (int64_t(i) >= n)
              break;
            // q8_0's signed codes + 128 (the sign bit of each byte flipped).
            if (qb.bits == 8 && vnni)
              column = arith::XOrIOp::create(
                  b, loc, column,
                  qb.splatInt(int32_t(0x80808080u), rowLanes, qb.i32()));
            vector::StoreOp::create(
                b, loc, column, codes,
                ValueRange{gi, cx.addIndex(bg, i), v, cx.index(0)});
          }
        }
      });
      auto halves = [&](QuantBuilder::Part part, Value buffer) {
        SmallVector<Value> rowHalves;
        for (Value r : rows)
          rowHalves.push_back(vector::BitCastOp::create(
              b, loc, qb.vec(lanes, b.getF16Type()),
              qb.loadBytes(p.w, r, qb.inGroup(bg, n, part, 2), 2 * n,
                           2 * lanes)));
        for (auto [i, column] :
             llvm::enumerate(transposeLanes(b, loc, rowHalves))) {
          if (int64_t(i) >= n)
            break;
          vector::StoreOp::create(
              b, loc, arith::ExtFOp::create(b, loc, floats, column), buffer,
              ValueRange{gi, cx.addIndex(bg, i), cx.index(0)});
        }
      };
      halves(&QuantRowLayout::scale, scales);
      if (mins)
        halves(&QuantRowLayout::min, *mins);
    };
    int64_t whole = blocks / kQuantGroupBlocks * kQuantGroupBlocks;
    if (whole > 0)
      cx.forLoop(cx.index(0), cx.index(whole), kQuantGroupBlocks,
                 [&](Value bg) { blockGroup(bg, kQuantGroupBlocks); });
    // A row's last group of fewer blocks on narrower vectors (groupLanes),
    // its columns past them not stored.
    if (whole < blocks)
      blockGroup(cx.index(whole), blocks - whole);
  });

  // Tiles of dotTokens tokens by the nr rows: per block, 8 words of q_x
  // per token (each broadcast) against the groups' 8 vectors of codes.
  Value zeroInts = qb.splatInt(0, rowLanes, qb.i32());
  forTokenTiles(cx, dotTokens(cx.quantDot), [&](Value t, int64_t nt) {
    SmallVector<Value> tokens;
    for (int64_t a = 0; a < nt; ++a)
      tokens.push_back(cx.addIndex(t, a));
    SmallVector<Value> init(groups * nt, cx.splat(0.0f, rowLanes));
    SmallVector<Value> acc = cx.forLoopCarrying(
        cx.index(0), cx.index(blocks), 1, init,
        [&](Value blk, ValueRange iters) {
          SmallVector<Value> ints(groups * nt, zeroInts);
          if (in.start)
            for (int64_t a = 0; a < nt; ++a) {
              Value s = memref::LoadOp::create(b, loc, in.start,
                                               ValueRange{tokens[a], blk});
              Value splat = vector::BroadcastOp::create(b, loc, words, s);
              for (int64_t g = 0; g < groups; ++g)
                ints[g * nt + a] = splat;
            }
          Value word0 = cx.mulIndex(blk, kBlockWords);
          for (int64_t j = 0; j < kBlockWords; ++j) {
            SmallVector<Value> xs;
            for (Value tok : tokens) {
              Value x = memref::LoadOp::create(
                  b, loc, in.q, ValueRange{tok, cx.addIndex(word0, j)});
              xs.push_back(vector::BitCastOp::create(
                  b, loc, bytes, vector::BroadcastOp::create(b, loc, words, x)));
            }
            for (int64_t g = 0; g < groups; ++g) {
              Value u = vector::BitCastOp::create(
                  b, loc, bytes,
                  vector::LoadOp::create(b, loc, words, codes,
                                         ValueRange{cx.index(g), blk,
                                                    cx.index(j), cx.index(0)}));
              for (int64_t a = 0; a < nt; ++a)
                ints[g * nt + a] =
                    vnni ? qb.vpdpbusd(ints[g * nt + a], u, xs[a])
                         : qb.dot4(cx.quantDot, ints[g * nt + a], u, xs[a]);
            }
          }
          SmallVector<Value> next(iters);
          for (int64_t g = 0; g < groups; ++g) {
            SmallVector<Value, 3> at{cx.index(g), blk, cx.index(0)};
            Value d = vector::LoadOp::create(b, loc, floats, scales, at);
            Value m = mins ? Value(vector::LoadOp::create(b, loc, floats,
                                                          *mins, at))
                           : Value();
            for (int64_t a = 0; a < nt; ++a) {
              Value dx = memref::LoadOp::create(b, loc, in.scale,
                                                ValueRange{tokens[a], blk});
              Value f = arith::SIToFPOp::create(b, loc, floats, ints[g * nt + a]);
              Value &sum = next[g * nt + a];
              sum = cx.fma(f, cx.mul(d, cx.splat(dx, rowLanes)), sum);
              if (m)
                sum = cx.fma(
                    m,
                    cx.splat(memref::LoadOp::create(b, loc, in.sum,
                                                    ValueRange{tokens[a], blk}),
                             rowLanes),
                    sum);
            }
          }
          return next;
        });
    for (int64_t g = 0; g < groups; ++g) {
      Value row = cx.addIndex(o, g * rowLanes);
      for (int64_t a = 0; a < nt; ++a) {
        Value sums = acc[g * nt + a];
        if (p.onStore)
          sums = p.onStore(sums, tokens[a], row);
        cx.store(sums, p.y, {tokens[a], row});
      }
    }
  });
}
