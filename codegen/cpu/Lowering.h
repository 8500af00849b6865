//===- Lowering.h - Lowering rwkv ops to loops over memrefs -------*- C++ -*-===//
//
// The CPU backend lowers the rwkv ops of `func.func @forward` into two
// functions over memrefs, built from upstream dialects (memref, scf, vector,
// arith, math):
//
//   rwkv ops on tensors ──rwkv-lower-to-loops──▶ memref/scf/vector/arith/math
//                                              ──rwkv-loops-to-llvm──▶ LLVM dialect
//
//   func @rwkv_forward_seq(%weights: memref<?xi8>, %state: memref<?xf32>,
//                          %tokens: memref<?xi32>, %logits: memref<?xf32>)
//   func @rwkv_forward_one(...same...)        // specialised for T = 1
//   func @rwkv_forward_batch(%weights, %states: memref<?xi64>, ...)
//                                             // B rows, each a sequence
//                                             // with its own state
//
// Weights are read through memref.view at byte offsets of the packed
// weight image; state slots through memref.reinterpret_cast at float offsets
// of the state (constants, or the first layer's plus the layer's shift in
// the loop over a stack of layers); activations are (T, C) f32 buffers
// (stack buffers when T = 1), all allocated in the entry block. Each op family is lowered by a function in its own file
// (LowerElementwise.cpp, LowerNorm.cpp, LowerLinear.cpp, LowerWKV.cpp, ...),
// all written against LoweringContext.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CPU_LOWERING_H
#define RWKV_CODEGEN_CPU_LOWERING_H

#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

#include <functional>
#include <optional>

namespace mlir::rwkv::cpu {

/// Where one weight lives in the packed image.
struct WeightPlacement {
  int64_t offset = 0;     // bytes from the start of the image (64-aligned)
  RankedTensorType type;  // shape and element type as stored in the image
};

/// Where one state slot lives in the state buffer.
struct SlotPlacement {
  int64_t offset = 0; // floats from the start of the state
  RankedTensorType type;
};

/// The instructions quantized products compute their integer dot products
/// with (LowerQuantLinear.cpp), from the target CPU's features
/// (rwkv-lower-to-loops' `quant-dot`).
enum class QuantDot {
  Generic,    // plain vector arithmetic, any CPU
  AVX2,       // vpmaddubsw + vpmaddwd, 8 lanes
  AVXVNNI,    // vpdpbusd on 8 lanes (AVX-VNNI, or AVX-512 VNNI + VL)
  AVX512VNNI, // vpdpbusd on 16 lanes (two blocks), AVX-512 BW
};

/// Builder state while lowering the body of @forward into one function.
class LoweringContext {
public:
  /// `numTokens` is T as an index value (a constant 1 when `oneToken`).
  LoweringContext(OpBuilder &builder, Location loc, bool oneToken,
                  Value weights, Value state, Value numTokens,
                  const llvm::StringMap<WeightPlacement> &weightLayout,
                  const llvm::StringMap<SlotPlacement> &stateLayout);

  OpBuilder &b;
  Location loc;
  /// True when the op being lowered works on exactly one token: in the
  /// T = 1 specialisation, and for the ops after rwkv.last_token (the head)
  /// in the sequence function. Set by the driver before each op.
  bool oneToken;
  Value weights; // memref<?xi8>, the packed weight image
  Value state;   // memref<?xf32>
  /// True when the weight image is too large for the caches, so that each
  /// token streams it from memory: decode products then read rows shorter
  /// than a page one after another and compute their input transforms once
  /// (set by the driver from the layout).
  bool streamWeights = false;
  /// How quantized products take their integer dot products (set by the
  /// driver from the pass option).
  QuantDot quantDot = QuantDot::Generic;

  /// Number of tokens of the op being lowered, as an index (1 when
  /// oneToken).
  Value numTokens() { return oneToken ? index(1) : T; }

  //===--------------------------------------------------------------------===//
  // Values
  //===--------------------------------------------------------------------===//

  /// The memref that holds the lowered value of an rwkv tensor `v`: an
  /// activation buffer (T, C) or, for rwkv.weight results, a view of the
  /// weight with its stored shape.
  Value lookup(Value v) const;
  /// Records `buffer` as the lowered value of `v`.
  void map(Value v, Value buffer) { values[v] = buffer; }
  /// Records that the buffer of `v` holds max(v, 0)^2, not v: the product
  /// that computes v squared its sums as it stored them, for the
  /// relu_sq_linear that reads them (LowerLinear.cpp, fuseIntoStores).
  void markReluSquared(Value v) { reluSquared.insert(v); }
  bool isReluSquared(Value v) const { return reluSquared.contains(v); }
  /// Records that `op` was computed by the lowering of an op before it (a
  /// product's stores, LowerLinear.cpp's fuseIntoStores) and its results
  /// mapped: it is not lowered again where it stands.
  void absorb(Operation *op) { absorbed.insert(op); }
  bool isAbsorbed(Operation *op) const { return absorbed.contains(op); }

  /// A fresh (T, channels) activation buffer, f32 unless `elementType` is
  /// given (a quantized input's bytes and block scales).
  Value allocActivation(int64_t channels, Type elementType = {});
  /// Makes `buffer` (an output argument) the buffer of `result`, a value the
  /// function returns, for the op that computes it to write into
  /// (allocResult) instead of a buffer copied at the return.
  void setDestination(Value result, Value buffer) {
    destinations[result] = buffer;
  }
  /// The buffer for `result` of an op: its destination where one is set and
  /// has the type of a (T, channels) activation, else allocActivation.
  Value allocResult(Value result, int64_t channels);
  /// Returns a buffer from allocActivation that an op lowering used as
  /// scratch to the pool, for later ops to reuse.
  void releaseScratch(Value buffer);
  /// The same for a buffer of any static shape (scratch), f32.
  Value allocScratch(ArrayRef<int64_t> shape);
  /// A scratch buffer of any static shape and element type, from the pool
  /// of released ones when one of its type is free (releaseScratch).
  Value allocScratch(ArrayRef<int64_t> shape, Type elementType);

  /// A view of weight `name` with its stored shape and element type; for a
  /// block-quantized weight (N, K) its bytes, memref<N x (K/32 blocks) x i8>,
  /// recorded for quantKind.
  Value weightView(StringRef name);
  /// The block format of a weight view (or of a view of one that
  /// setQuantKind recorded), if it is quantized.
  std::optional<QuantKind> quantKind(Value view) const;
  void setQuantKind(Value view, QuantKind kind) { quantKinds[view] = kind; }
  /// A 1-D view of weight `name` (all elements, row-major).
  Value weightFlat(StringRef name);
  /// The 1-D view of the weight behind `v` (which must come from
  /// rwkv.weight): per-channel parameters are read this way.
  Value paramFlat(Value v);
  /// A view of state slot `slot` with its declared shape. In a batch
  /// function (setBatchStates) each token row has a state of its own: `row`
  /// (the row's index) picks it, and the view is of that state's slot.
  Value stateSlot(FlatSymbolRefAttr slot, Value row = {});
  /// Makes this a batch function: row t of every activation is one token of
  /// its own sequence, whose state starts at the address held by
  /// `states[t]` (memref<?xi64>, B entries; each state `stateFloats`
  /// floats).
  void setBatchStates(Value states, int64_t stateFloats);
  /// True in a batch function: the state-reading ops (token shifts, the
  /// recurrences) read and write row t's own state rather than carrying one
  /// state from token to token.
  bool batch() const { return static_cast<bool>(batchStates); }
  /// While lowering the body of a stack of layers: how far this iteration's
  /// layer lies from the first (bytes of the weight image, floats of the
  /// state), added to every weight's and slot's placement; null values
  /// outside a stack.
  void setLayerShift(Value weightBytes, Value stateFloats);

  //===--------------------------------------------------------------------===//
  // Code building helpers
  //===--------------------------------------------------------------------===//

  /// The vector width used for `n` contiguous f32 elements: the largest of
  /// 16, 8, 4, 2, 1 that divides n.
  static int64_t vectorWidth(int64_t n);

  Value index(int64_t v);
  /// a + c and a * c on indices (a + 0 is a).
  Value addIndex(Value a, int64_t c);
  Value mulIndex(Value a, int64_t c);
  Value f32(float v);
  /// vector<width x f32> with every lane `v`.
  Value splat(float v, int64_t width);
  Value splat(Value scalar, int64_t width);

  /// scf.for over [lb, ub) with step; the body gets the induction variable.
  void forLoop(Value lb, Value ub, int64_t step,
               function_ref<void(Value iv)> body);
  /// scf.for over [lb, ub) with step, carrying `init`; the body gets the
  /// induction variable and the carried values and returns the next ones.
  /// Returns the values after the last iteration.
  SmallVector<Value>
  forLoopCarrying(Value lb, Value ub, int64_t step, ValueRange init,
                  function_ref<SmallVector<Value>(Value iv, ValueRange)> body);
  /// scf.parallel over [lb, ub) with step when `parallel`, else scf.for:
  /// the iterations are independent and may run on different threads
  /// (rwkv-loops-to-llvm turns scf.parallel into an OpenMP work-sharing
  /// loop; the region's end is the barrier before the next op).
  void forLoopMaybeParallel(Value lb, Value ub, int64_t step, bool parallel,
                            function_ref<void(Value iv)> body);
  /// `body(i)` for the value i in [0, n) of the index `selector`: an
  /// scf.index_switch whose default region is the last case (n > 1).
  void switchOver(Value selector, int64_t n, function_ref<void(int64_t)> body);
  /// Whether an op that reads `bytes` of weights (or state) per token is
  /// worth splitting across threads: a fork and join costs a few
  /// microseconds, which only ops of about a megabyte amortise in decode;
  /// a sequence has T times the work per weight, so `seqBytes` applies
  /// there.
  bool worthThreads(int64_t bytes, int64_t seqBytes = kParallelBytes) const {
    return !sideBySide && bytes >= (oneToken ? kParallelBytes : seqBytes);
  }
  static constexpr int64_t kParallelBytes = 1 << 20;
  /// Lowers n ops side by side: one scf.parallel of n iterations, the i-th
  /// running `body(i)` (an op lowering), scheduled dynamically (its
  /// location names kSideBySideLoopName). Inside, no op splits itself across
  /// threads (worthThreads is false, forLoopMaybeParallel serial), and the
  /// buffers released go back to the pool only after the loop, so that no
  /// op takes one that another still reads or writes.
  void sideBySideLoop(int64_t n, function_ref<void(int64_t)> body);
  /// for t in [0, T)
  void forTokens(function_ref<void(Value t)> body);
  /// for t in [0, T), where no token's work reads what another's writes:
  /// in a sequence of a model whose products run on threads
  /// (streamWeights), outside any other parallel loop, the tokens split
  /// across the threads in blocks of kTokenBlock; otherwise forTokens.
  void forEachToken(function_ref<void(Value t)> body);
  static constexpr int64_t kTokenBlock = 4;
  /// The scf.parallel the insertion point lies in (the innermost), or null.
  scf::ParallelOp enclosingParallelLoop() const;
  /// for c in [0, n) step `width`
  void forChannels(int64_t n, int64_t width, function_ref<void(Value c)> body);

  /// Loads vector<width x f32> from `memref` at `indices` (the last index
  /// varies fastest), widening f16/bf16 elements to f32.
  Value load(Value memref, ValueRange indices, int64_t width);
  /// Stores a vector of f32 to an f32 memref.
  void store(Value vec, Value memref, ValueRange indices);
  /// Loads a scalar as f32 (widening).
  Value loadScalar(Value memref, ValueRange indices);

  /// Element-wise math on f32 vectors (or scalars).
  Value exp(Value x);
  Value sigmoid(Value x);
  Value tanh(Value x);
  Value add(Value a, Value c);
  Value sub(Value a, Value c);
  Value mul(Value a, Value c);
  Value div(Value a, Value c);
  Value fma(Value a, Value c, Value acc);
  Value max(Value a, Value c);
  /// Sum of the lanes of a vector, in any order (reassociable: a tree of
  /// shuffles and adds rather than a chain of width - 1 dependent adds).
  Value reduceAdd(Value vec);

  /// Returns the activation buffer of `v` to the pool once `v` is dead
  /// (called by the driver of the lowering, not by op lowerings).
  void release(Value v);
  /// Sets oneToken for the next op (driver only).
  void setOneToken(bool v);
  /// Frees every heap buffer (end of the function).
  void deallocAll();

private:
  /// `offset` + `shift` as an index (`offset` when there is no shift).
  Value shifted(int64_t offset, Value shift);
  /// memref<?xf32> over the state of batch row `row`.
  Value rowState(Value row);

  Value T;
  /// Inside sideBySideLoop: the buffers released, returned to the pool
  /// after it.
  bool sideBySide = false;
  SmallVector<Value> releasedSideBySide;
  /// Buffers are allocated right after this op of the entry block (the one
  /// that computes T).
  Operation *allocAnchor;
  Value weightShift, stateShift;
  Value batchStates; // memref<?xi64>: the state addresses of a batch
  int64_t batchStateFloats = 0;
  /// Free activation buffers by type, reused by allocActivation.
  llvm::DenseMap<Type, SmallVector<Value>> pool;
  SmallVector<Value> heapBuffers;
  llvm::DenseMap<Value, Value> weightViews;
  llvm::DenseMap<Value, QuantKind> quantKinds;
  const llvm::StringMap<WeightPlacement> &weightLayout;
  const llvm::StringMap<SlotPlacement> &stateLayout;
  MemRefType activationType(int64_t channels, Type elementType = {});
  llvm::DenseMap<Value, Value> values;
  llvm::DenseMap<Value, Value> destinations;
  llvm::DenseSet<Value> reluSquared;
  llvm::DenseSet<Operation *> absorbed;
};

/// C of a (T, C) activation.
inline int64_t channelsOf(Value activation) {
  return cast<RankedTensorType>(activation.getType()).getDimSize(1);
}

/// An operand that is either per-token, a (T, C) activation with more than
/// one token, or per-channel: any static shape with C elements (a weight, a
/// computed parameter, or one token's row, which reads the same). Reads
/// vectors of channels [c, c + width) at token t as f32.
class ChannelOperand {
public:
  ChannelOperand(LoweringContext &cx, Value v);
  static bool isPerToken(Value v);
  Value load(LoweringContext &cx, Value t, Value c, int64_t width) const;
  bool perToken() const { return tokenwise; }

private:
  bool tokenwise;
  Value buffer;
};

//===----------------------------------------------------------------------===//
// Op family lowerings (one file each). Each writes the op's result buffer(s)
// with cx.map() and returns failure() with a diagnostic for what it cannot
// lower.
//===----------------------------------------------------------------------===//

/// embedding, last_token, token_shift, lerp, add, mul, sigmoid, silu,
/// relu_sq, tanh, decay (LowerElementwise.cpp)
LogicalResult lowerElementwiseOp(Operation *op, LoweringContext &cx);
/// layer_norm, group_norm (LowerNorm.cpp)
LogicalResult lowerNormOp(Operation *op, LoweringContext &cx);
/// linear, lora, ddlerp (LowerLinear.cpp)
LogicalResult lowerLinearOp(Operation *op, LoweringContext &cx);

/// An out_in product y[0][n] = Σ_k W[n][k] x[k] of one token (decode) whose
/// weight is block-quantized (LowerQuantLinear.cpp).
struct QuantizedProduct {
  Value w;         // memref<N x bytes x i8>: N rows of K/32 blocks
  QuantKind kind;  // their format
  int64_t K = 0, N = 0;
  /// The input vector x[t][k .. k + width) as f32.
  std::function<Value(Value t, Value k, int64_t width)> input;
  Value y;         // (1, N) f32 result
  /// Applied to the sums of token t, rows [row, row + n) (a vector of n, or
  /// one f32) as they are stored; null: stored as they are.
  std::function<Value(Value sums, Value t, Value row)> onStore;
};
/// Decode: quantizes the input per block of 32 to int8 (one scale per
/// block), then the rows' integer dot products block by block with
/// cx.quantDot's instructions, each scaled into an f32 accumulator;
/// output tiles split across threads when `parallel`. With `tokens` > 1
/// (a batch of at most that many, AVX-512 VNNI) each tile computes that
/// many tokens from one read of its rows, the batch's last token repeated
/// past its end and not stored again.
void emitQuantizedDecode(LoweringContext &cx, const QuantizedProduct &p,
                         bool parallel, int64_t tokens = 1);
/// The batch entry's batches whose quantized products read each row once
/// for all their tokens (emitQuantizedDecode): at most 2, at most 4 (tiles
/// of that many tokens); a larger batch repacks rows for the integer-dot
/// tiles (emitQuantizedSequenceTile).
constexpr int64_t kBatchDecodeTokens[] = {2, 4};
/// Sequence mode: rows [o, o + nr) of `w` (kind, K columns) dequantized to
/// an f32 (nr, K) buffer, given to `body`: in an scf.parallel the
/// iteration's own (on its thread's stack), else one in the entry block.
void withDequantizedRows(LoweringContext &cx, Value w, QuantKind kind,
                         int64_t K, Value o, int64_t nr,
                         function_ref<void(Value rows)> body);
/// Sequence and batch mode with x86 dot products (quantizedSequenceByDots):
/// the input of a product quantized per block of 32 once for all its tiles,
/// (T, K / 4) words of 4 int8 q_x, and per (token, block) d_x, the starting
/// sum -zero Σ q_x (kinds with a zero code) and d_x Σ q_x (_1 kinds).
struct QuantizedTokens {
  Value q;     // (T, K / 4) i32
  Value scale; // (T, K / 32) f32
  Value start; // (T, K / 32) i32, or null
  Value sum;   // (T, K / 32) f32, or null
};
/// Rows per output tile of emitQuantizedSequenceTile: two vectors of rows
/// (16 a vector with AVX-512 VNNI, 8 with AVX-VNNI and AVX2).
int64_t dotSequenceRows(const LoweringContext &cx);
/// Whether a sequence's or a batch's quantized out_in product of N rows
/// takes integer dot products (emitQuantizedSequenceTile: vpdpbusd with
/// AVX-512 VNNI or AVX-VNNI, vpmaddubsw and vpmaddwd with AVX2) rather than
/// dequantizing its rows to f32 (withDequantizedRows). A batch of 8
/// measured 1.45-1.71x faster so with AVX-512 VNNI (0.1B q8_0 and q4_0, one
/// and two threads; docs/performance.md, "Small batches"); a batch of at
/// most 4 takes decode's kernel (kBatchDecodeTokens).
bool quantizedSequenceByDots(const LoweringContext &cx, int64_t N);
QuantizedTokens
quantizeTokens(LoweringContext &cx, QuantKind kind, int64_t K,
               const std::function<Value(Value t, Value k, int64_t width)> &input);
void releaseQuantizedTokens(LoweringContext &cx, const QuantizedTokens &in);
/// Rows [o, o + nr) of `p` (nr a multiple of a vector's rows: 16 with
/// AVX-512 VNNI, 8 with 256-bit vectors) for every token of the sequence:
/// the rows' codes repacked a vector of rows at a time (each int32 lane 4
/// codes of one row), then tiles of 4 tokens (1 with 256-bit vectors) by
/// the nr rows, each block's 8 dot4 (vpdpbusd; AVX2's vpmaddubsw and
/// vpmaddwd, q8_0 as |q| against q_x with q's sign) against broadcast words
/// of q_x, scaled into f32 once a block.
void emitQuantizedSequenceTile(LoweringContext &cx, const QuantizedProduct &p,
                               const QuantizedTokens &in, Value o, int64_t nr);
/// Calls `tile(t, nt)` over the tokens: blocks of `block` tokens, then the
/// remainder one at a time. In the T = 1 specialisation, one tile (0, 1).
/// With `parallel` the blocks are split across threads (the remainder runs
/// after them, on the calling thread).
void forTokenTiles(LoweringContext &cx, int64_t block,
                   function_ref<void(Value t, int64_t nt)> tile,
                   bool parallel = false);
/// wkv4, wkv5, wkv7, wkv7_prep, head_bonus (LowerWKV.cpp)
LogicalResult lowerWKVOp(Operation *op, LoweringContext &cx);

} // namespace mlir::rwkv::cpu

#endif // RWKV_CODEGEN_CPU_LOWERING_H
