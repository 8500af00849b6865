//===- RWKVDialect.h - The rwkv dialect ---------------------------*- C++
//-*-===//
//
// Declares the rwkv dialect, its enums, types and ops.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_RWKVDIALECT_H
#define RWKV_RWKVDIALECT_H

#include <algorithm>

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "rwkv/RWKVDialect.h.inc"
#include "rwkv/RWKVEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "rwkv/RWKVTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "rwkv/RWKVAttrs.h.inc"

namespace mlir::rwkv {
/// The recurrent state the runtime carries from token to token.
struct StateResource : public SideEffects::Resource::Base<StateResource> {
  llvm::StringRef getName() final { return "rwkv.state"; }
};

/// Bytes per element of a float weight stored in the weight image: 4 for
/// f32, 2 for f16 and bf16; failure for any other type (quantized types are
/// stored per block: getStoredBytes).
FailureOr<int64_t> getStoredElementBytes(Type elementType);

/// Elements per block of every !rwkv.quant kind (rwkv.cpp / ggml).
constexpr int64_t kQuantBlockElements = 32;

/// Bytes of one block of 32 elements of `kind` as rwkv.cpp stores it:
/// q4_0 18, q4_1 20, q5_0 22, q5_1 24, q8_0 34 (docs/formats.md).
int64_t getQuantBlockBytes(QuantKind kind);

/// Where the parts of one block of `kind` lie, as rwkv.cpp stores it
/// (docs/formats.md): byte offsets of the f16 minimum m (_1 kinds, else
/// -1), of the 4 bytes of fifth bits (5-bit kinds, else -1) and of the
/// codes (16 bytes of nibbles, or q8_0's 32 int8); d is at 0.
struct QuantBlockParts {
  int64_t min, high, codes;
  int64_t codeBytes; // 16 or 32
};
QuantBlockParts getQuantBlockParts(QuantKind kind);

/// Blocks of one group of a row in the weight image (QuantRowLayout).
constexpr int64_t kQuantGroupBlocks = 16;

/// A row of `blocks` blocks in the weight image (docs/formats.md, "Block
/// rows"): the same bytes as the blocks, in groups of kQuantGroupBlocks
/// blocks (the row's last group holds the rest), each group's parts
/// together in the order d, m, fifth bits, codes, so that decode reads a
/// row as one stream. The group of n blocks from block g (a multiple of
/// kQuantGroupBlocks) starts at byte g * blockBytes of the row; block g + i
/// of it has its d at scale(n) + 2 i, m at min(n) + 2 i, fifth bits at
/// high(n) + 4 i (min and high -1 where the kind has none), and its code
/// bytes in words of 4, word s (bytes 4 s .. 4 s + 3 of the block's codes)
/// at codeWord(n, s, i) = codes(n) + 4 (s n + i): the group's words s lie
/// together, block by block, so that one 64-byte vector holds word s of 16
/// blocks, a block to each int32 lane.
struct QuantRowLayout {
  int64_t blocks;
  int64_t blockBytes;
  int64_t codeBytes; // 16 or 32
  bool hasMin, hasHigh;
  int64_t groupBlocks(int64_t g) const {
    return std::min(kQuantGroupBlocks, blocks - g);
  }
  int64_t groupStart(int64_t g) const { return g * blockBytes; }
  int64_t scale(int64_t) const { return 0; }
  int64_t min(int64_t n) const { return hasMin ? 2 * n : -1; }
  int64_t high(int64_t n) const { return hasHigh ? (hasMin ? 4 : 2) * n : -1; }
  int64_t codes(int64_t n) const { return (blockBytes - codeBytes) * n; }
  int64_t codeWords() const { return codeBytes / 4; }
  int64_t codeWord(int64_t n, int64_t s, int64_t i) const {
    return codes(n) + 4 * (s * n + i);
  }
};
QuantRowLayout getQuantRowLayout(QuantKind kind, int64_t blocks);

/// Bytes a weight of type `type` takes in the weight image: elements times
/// getStoredElementBytes for f32/f16/bf16; whole blocks for a quantized
/// type, whose innermost dimension must then be a multiple of 32. Failure
/// for any other element type or a partial block.
FailureOr<int64_t> getStoredBytes(ShapedType type);

/// The name of symbol `name` of layer `from` in layer `to`: the weights of
/// layer k are named `blocks.<k>.*` and its state slots `state.<k>.*` (the
/// layer number is the second dot-separated component). Empty if `name` is
/// not a symbol of layer `from`.
std::string renameLayerSymbol(llvm::StringRef name, int64_t from, int64_t to);
} // namespace mlir::rwkv

#define GET_OP_CLASSES
#include "rwkv/RWKVOps.h.inc"

#endif // RWKV_RWKVDIALECT_H
