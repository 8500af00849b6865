//===- LowerWKV.cpp - WKV recurrences to loops over memrefs ---------------===//
//
// Lowers the recurrence ops of the rwkv dialect to scf loops over memrefs
// with vector arithmetic (upstream dialects only):
//
//   rwkv.wkv4        ─▶ for c (vector of W channels):
//                          aa, bb, pp ◀── state slots
//                          for t: stable a/b/p update     (state in registers)
//                          state slots ◀── aa, bb, pp
//   rwkv.wkv5/wkv7   ─▶ for head h:
//                          for t:  r, k, w, ... of the head ◀── (once per token)
//                            for block of 8 value rows i0..i0+7:
//                              S[h][i][:] ◀── state slot   (N/W vectors, L1)
//                              new rows, y[t][i0..i0+7]: the 8 row sums
//                                by one shuffle tree, one vector store
//                              state slot ◀── S[h][i][:]
//   rwkv.wkv7_prep   ─▶ for t: for head h: Σ (k k_k)², then kk, new_k, ...
//   rwkv.head_bonus  ─▶ for t: for head h: Σ r k r_k, then that sum times v
//
// In a batch function (each token row a sequence of its own) the loops are
// the same, but token t reads and writes its own state: wkv4 loads, steps
// and stores each row's state once; wkv5/wkv7 take the slot of token t's
// state inside the token loop.
//
// In WKV-5 and WKV-7 row i of a head's state only reads row i, so rows are
// updated independently; the token loop sits inside the head loop so the
// head's state (N N floats, 16 KiB for N = 64) stays in L1 across a chunk.
// The sums over a row (WKV-7's S a and both y) are taken for a block of
// rows at once (VectorReductions.h: a transposing shuffle tree, not one
// horizontal sum per row, whose long dependency chains stalled the rows).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"
#include "codegen/cpu/VectorReductions.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

/// A parameter operand read through a 1-D f32/f16/bf16 memref: `C` elements
/// (one per channel) or, when `perHead`, `H` elements (one per head).
struct Param {
  Value flat;
  bool perHead = false;
};

/// A 1-D view of a per-channel (or per-head) operand: a weight's flat view,
/// or the buffer its producer mapped, collapsed to one dimension.
Param perChannel(LoweringContext &cx, Value v, int64_t channels,
                 int64_t heads) {
  Param p;
  int64_t n = tensorType(v).getNumElements();
  p.perHead = n != channels && n == heads;
  p.flat = cx.paramFlat(v);
  return p;
}

/// acc + x y, or x y when there is no accumulator yet.
Value mulAcc(LoweringContext &cx, Value x, Value y, Value acc) {
  return acc ? cx.fma(x, y, acc) : cx.mul(x, y);
}

/// scf.for over tokens [0, T) carrying `init`; `body` returns the next values.
/// Returns the values after the last token. With one token the body is
/// emitted once, without a loop.
SmallVector<Value>
forTokensCarrying(LoweringContext &cx, ValueRange init,
                  function_ref<SmallVector<Value>(Value t, ValueRange)> body) {
  if (cx.oneToken)
    return body(cx.index(0), init);
  return cx.forLoopCarrying(cx.index(0), cx.numTokens(), 1, init, body);
}

/// Σ over the N channels [base, base + n) of one head of `chunk(j)`, a vector
/// of `width` lanes starting at channel j; returns the f32 sum.
Value sumOverHead(LoweringContext &cx, Value base, int64_t n, int64_t width,
                  function_ref<Value(Value j)> chunk) {
  SmallVector<Value> acc = cx.forLoopCarrying(
      base, cx.addIndex(base, n), width, ValueRange{cx.splat(0.0f, width)},
      [&](Value j, ValueRange sum) {
        return SmallVector<Value>{cx.add(sum[0], chunk(j))};
      });
  return cx.reduceAdd(acc[0]);
}

//===----------------------------------------------------------------------===//
// rwkv.wkv4
//===----------------------------------------------------------------------===//

// Per channel c, over t in order (w = -exp(time_decay), u = time_first):
//   q  = max(pp, u + k);  e1 = exp(pp - q);  e2 = exp(u + k - q)
//   y  = (e1 aa + e2 v) / (e1 bb + e2)
//   q' = max(pp + w, k);  e1 = exp(pp + w - q');  e2 = exp(k - q')
//   aa = e1 aa + e2 v;  bb = e1 bb + e2;  pp = q'
LogicalResult lowerWKV4(WKV4Op op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getK());
  int64_t width = LoweringContext::vectorWidth(c);
  Param w = perChannel(cx, op.getW(), c, c);
  Param u = perChannel(cx, op.getU(), c, c);
  Value k = cx.lookup(op.getK()), v = cx.lookup(op.getV());
  Value out = cx.allocActivation(c);

  // One token's step on (aa, bb, pp) = s: writes out[t] and returns the
  // state after it.
  auto step = [&](Value t, Value ch, Value wv, Value uv, ValueRange s) {
    Value a = s[0], bs = s[1], p = s[2];
    Value kt = cx.load(k, {t, ch}, width);
    Value vt = cx.load(v, {t, ch}, width);
    Value uk = cx.add(uv, kt);
    Value q = cx.max(p, uk);
    Value e1 = cx.exp(cx.sub(p, q));
    Value e2 = cx.exp(cx.sub(uk, q));
    Value num = cx.fma(e1, a, cx.mul(e2, vt));
    Value den = cx.fma(e1, bs, e2);
    cx.store(cx.div(num, den), out, {t, ch});
    Value pw = cx.add(p, wv);
    Value q2 = cx.max(pw, kt);
    Value f1 = cx.exp(cx.sub(pw, q2));
    Value f2 = cx.exp(cx.sub(kt, q2));
    return SmallVector<Value>{cx.fma(f1, a, cx.mul(f2, vt)),
                              cx.fma(f1, bs, f2), q2};
  };
  // The state of `row` (the call's one state outside a batch): loaded per
  // channel vector, stepped by `steps`, stored.
  auto overChannels = [&](Value row, function_ref<SmallVector<Value>(
                                         Value ch, Value wv, Value uv,
                                         ValueRange init)>
                                         steps) {
    Value aa = cx.stateSlot(op.getAaAttr(), row);
    Value bb = cx.stateSlot(op.getBbAttr(), row);
    Value pp = cx.stateSlot(op.getPpAttr(), row);
    cx.forChannels(c, width, [&](Value ch) {
      Value wv = cx.load(w.flat, ch, width);
      Value uv = cx.load(u.flat, ch, width);
      SmallVector<Value> init = {cx.load(aa, ch, width),
                                 cx.load(bb, ch, width),
                                 cx.load(pp, ch, width)};
      SmallVector<Value> last = steps(ch, wv, uv, init);
      cx.store(last[0], aa, ch);
      cx.store(last[1], bb, ch);
      cx.store(last[2], pp, ch);
    });
  };
  if (cx.batch()) {
    // Each row a sequence of its own: one step on its own state.
    cx.forTokens([&](Value t) {
      overChannels(t, [&](Value ch, Value wv, Value uv, ValueRange init) {
        return step(t, ch, wv, uv, init);
      });
    });
  } else {
    // The state in registers across the tokens.
    overChannels({}, [&](Value ch, Value wv, Value uv, ValueRange init) {
      return forTokensCarrying(cx, init, [&](Value t, ValueRange s) {
        return step(t, ch, wv, uv, s);
      });
    });
  }
  cx.map(op.getResult(), out);
  return success();
}

//===----------------------------------------------------------------------===//
// rwkv.wkv5 and rwkv.wkv7: one state row at a time
//===----------------------------------------------------------------------===//

/// The vectors one token contributes to one head: `perToken(base, t)`
/// loads them (base = h N, the head's first channel).
using TokenVectors = SmallVector<Value>;

/// A block of consecutive value rows [i0, i0 + R) of one head's state at one
/// token: rows load and store as N / width vectors each.
struct RowBlock {
  LoweringContext &cx;
  Value state, h, base, i0, t;
  int64_t rows, n, width;

  /// Row i0 + r as N / width vectors.
  SmallVector<Value> load(int64_t r) const {
    SmallVector<Value> row;
    for (int64_t j = 0; j < n; j += width)
      row.push_back(cx.load(state, {h, cx.addIndex(i0, r), cx.index(j)},
                            width));
    return row;
  }
  void store(int64_t r, ArrayRef<Value> row) const {
    for (int64_t j = 0, q = 0; j < n; j += width, ++q)
      cx.store(row[q], state, {h, cx.addIndex(i0, r), cx.index(j)});
  }
  /// Channel base + i0 + r (the value row's channel).
  Value channel(int64_t r) const {
    return cx.addIndex(arith::AddIOp::create(cx.b, cx.loc, base, i0), r);
  }
  /// Writes the per-row sums `acc` (one vector per row) to
  /// out[t][base + i0 .. + R): one shuffle tree and one vector store when
  /// R allows, else a lane sum per row.
  void storeSums(ArrayRef<Value> acc, Value out) const {
    Value first = channel(0);
    if (canReduceRows(rows, width)) {
      cx.store(reduceRows(cx, acc), out, {t, first});
      return;
    }
    for (int64_t r = 0; r < rows; ++r)
      memref::StoreOp::create(cx.b, cx.loc, cx.reduceAdd(acc[r]), out,
                              ValueRange{t, channel(r)});
  }
};

/// Rows per block: as many as one shuffle tree reduces (8, or the vector
/// width if narrower), if they divide N; else one.
int64_t rowsPerBlock(int64_t n, int64_t width) {
  int64_t r = std::min<int64_t>(8, width);
  return canReduceRows(r, width) && n % r == 0 ? r : 1;
}

/// For each head h (after `perHead(h)`), token t and block of value rows:
/// runs `block`, which loads, updates and stores the block's rows. The token
/// loop is inside the head loop, so the head's state (N N floats, 16 KiB for
/// N = 64) stays in L1 across the chunk, and the token's vectors are loaded
/// once and shared by the N rows. A block of rows shares its reductions
/// (one shuffle tree for R row sums instead of R lane sums).
///
/// The state is slot `slot` of the call's state, or in a batch function
/// that of token t's own state.
void forStateRows(LoweringContext &cx, FlatSymbolRefAttr slot, int64_t heads,
                  int64_t n, int64_t width, function_ref<void(Value h)> perHead,
                  function_ref<TokenVectors(Value base, Value t)> perToken,
                  function_ref<void(const RowBlock &, ArrayRef<Value> tok)>
                      block) {
  int64_t rows = rowsPerBlock(n, width);
  Value shared = cx.batch() ? Value() : cx.stateSlot(slot);
  // The heads are independent: split across threads when the state is
  // large enough (a sequence does T times the work per state element), and
  // in decode of a model that streams its weights: there the state (196 KB
  // a layer for the 0.1B shape) has left the caches since the last token,
  // and its update waits on its loads from memory (0.1B f16, one thread:
  // ~2% of decode, 2.4 MB at about half the products' rate); each thread
  // brings in its heads' rows with misses of its own in flight.
  bool parallel =
      heads > 1 &&
      (cx.worthThreads(heads * n * n * 4, /*seqBytes=*/64 << 10) ||
       (cx.oneToken && cx.streamWeights && !cx.batch()));
  cx.forLoopMaybeParallel(cx.index(0), cx.index(heads), 1, parallel,
                          [&](Value h) {
    Value base = cx.mulIndex(h, n);
    perHead(h);
    cx.forTokens([&](Value t) {
      Value state = shared ? shared : cx.stateSlot(slot, t);
      // The batch function of a model that streams its weights prefetches
      // (for writing) the same rows of the next row's state, another
      // sequence's, while this one's update: each is a 16 KB block of its
      // own that the weights have pushed out of the caches since the last
      // step, and the update otherwise waits on its misses (the 0.1B, f16,
      // B = 8, two threads: WKV-7 6% of a step; 1.03 times the step rate
      // with the prefetch, one process alternating both orders;
      // docs/performance.md, "Fewer joins").
      Value next;
      if (!shared && cx.streamWeights) {
        Value last = arith::SubIOp::create(cx.b, cx.loc, cx.numTokens(),
                                           cx.index(1));
        next = cx.stateSlot(
            slot, arith::MinUIOp::create(cx.b, cx.loc, cx.addIndex(t, 1), last));
      }
      TokenVectors tok = perToken(base, t);
      cx.forLoop(cx.index(0), cx.index(n), rows, [&](Value i0) {
        if (next)
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < n; j += 16)
              memref::PrefetchOp::create(
                  cx.b, cx.loc, next,
                  ValueRange{h, cx.addIndex(i0, r), cx.index(j)},
                  /*isWrite=*/true, /*localityHint=*/3, /*isDataCache=*/true);
        block(RowBlock{cx, state, h, base, i0, t, rows, n, width}, tok);
      });
    });
  });
}

// Per head, with S[i][j] (value i, key j):
//   y[i]    = Σ_j r[j] (u[j] k[j] v[i] + S[i][j])
//   S[i][j] = k[j] v[i] + w[j] S[i][j]
LogicalResult lowerWKV5(WKV5Op op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getR()), heads = op.getHeads(), n = c / heads;
  int64_t width = LoweringContext::vectorWidth(n);

  // The verifier's rule: a 2-D f32 w with C columns is one row per token
  // unless it is a single row and r is not.
  RankedTensorType wType = tensorType(op.getW());
  bool wPerToken =
      wType.getRank() == 2 && isa<Float32Type>(wType.getElementType()) &&
      (wType.isDynamicDim(0) || wType.getDimSize(0) != 1 ||
       tensorType(op.getR()).getDimSize(0) == 1) &&
      wType.getDimSize(1) == c;
  Value wTok;
  Param w;
  if (wPerToken)
    wTok = cx.lookup(op.getW());
  else
    w = perChannel(cx, op.getW(), c, heads);
  Param u = perChannel(cx, op.getU(), c, heads);

  Value r = cx.lookup(op.getR()), k = cx.lookup(op.getK());
  Value v = cx.lookup(op.getV());
  Value out = cx.allocActivation(c);

  // Per-head scalars, splat once per head.
  Value wHead, uHead;
  auto perHead = [&](Value h) {
    if (!wPerToken && w.perHead)
      wHead = cx.splat(cx.loadScalar(w.flat, h), width);
    if (u.perHead)
      uHead = cx.splat(cx.loadScalar(u.flat, h), width);
  };
  // The token's r, k, w, u chunks: tok[4 q + 0..3] for chunk q.
  auto perToken = [&](Value base, Value t) {
    TokenVectors tok;
    for (int64_t j = 0; j < n; j += width) {
      Value cj = cx.addIndex(base, j);
      tok.push_back(cx.load(r, {t, cj}, width));
      tok.push_back(cx.load(k, {t, cj}, width));
      tok.push_back(wPerToken    ? cx.load(wTok, {t, cj}, width)
                    : w.perHead ? wHead
                                 : cx.load(w.flat, cj, width));
      tok.push_back(u.perHead ? uHead : cx.load(u.flat, cj, width));
    }
    return tok;
  };
  auto block = [&](const RowBlock &rb, ArrayRef<Value> tok) {
    SmallVector<Value> sums;
    for (int64_t r = 0; r < rb.rows; ++r) {
      SmallVector<Value> s = rb.load(r);
      Value vi = cx.splat(cx.loadScalar(v, {rb.t, rb.channel(r)}), width);
      Value acc;
      SmallVector<Value> next;
      for (size_t q = 0; q < s.size(); ++q) {
        Value rj = tok[4 * q], kj = tok[4 * q + 1], wj = tok[4 * q + 2],
              uj = tok[4 * q + 3];
        Value kv = cx.mul(kj, vi);
        acc = mulAcc(cx, rj, cx.fma(uj, kv, s[q]), acc);
        next.push_back(cx.fma(wj, s[q], kv));
      }
      rb.store(r, next);
      sums.push_back(acc);
    }
    rb.storeSums(sums, out);
  };
  forStateRows(cx, op.getStateAttr(), heads, n, width, perHead, perToken,
               block);
  cx.map(op.getResult(), out);
  return success();
}

// Per head, with S[i][j] (value i, key j), old S on the right:
//   S[i][j] = S[i][j] w[j] + (Σ_l S[i][l] a[l]) b[j] + v[i] k[j]
//   y[i]    = Σ_j S[i][j] r[j]                       (the updated S)
LogicalResult lowerWKV7(WKV7Op op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getR()), heads = op.getHeads(), n = c / heads;
  int64_t width = LoweringContext::vectorWidth(n);
  Value r = cx.lookup(op.getR()), w = cx.lookup(op.getW());
  Value k = cx.lookup(op.getK()), v = cx.lookup(op.getV());
  Value a = cx.lookup(op.getA()), b = cx.lookup(op.getB());
  Value out = cx.allocActivation(c);

  // The token's a, w, k, b, r chunks: tok[5 q + 0..4] for chunk q.
  auto perToken = [&](Value base, Value t) {
    TokenVectors tok;
    for (int64_t j = 0; j < n; j += width) {
      Value cj = cx.addIndex(base, j);
      for (Value m : {a, w, k, b, r})
        tok.push_back(cx.load(m, {t, cj}, width));
    }
    return tok;
  };
  auto block = [&](const RowBlock &rb, ArrayRef<Value> tok) {
    // sa[r] = Σ_l S[i0 + r][l] a[l] over the old rows, for the whole block.
    SmallVector<Value> saAcc;
    for (int64_t r = 0; r < rb.rows; ++r) {
      SmallVector<Value> s = rb.load(r);
      Value acc;
      for (size_t q = 0; q < s.size(); ++q)
        acc = mulAcc(cx, s[q], tok[5 * q], acc);
      saAcc.push_back(acc);
    }
    Value saAll = canReduceRows(rb.rows, width)
                      ? reduceRows(cx, saAcc)
                      : Value();
    SmallVector<Value> yAcc;
    for (int64_t r = 0; r < rb.rows; ++r) {
      SmallVector<Value> s = rb.load(r);
      Value vi = cx.splat(cx.loadScalar(v, {rb.t, rb.channel(r)}), width);
      Value sa = saAll ? splatLane(cx, saAll, r, width)
                       : cx.splat(cx.reduceAdd(saAcc[r]), width);
      Value acc;
      SmallVector<Value> next;
      for (size_t q = 0; q < s.size(); ++q) {
        Value wj = tok[5 * q + 1], kj = tok[5 * q + 2], bj = tok[5 * q + 3],
              rj = tok[5 * q + 4];
        Value row = cx.fma(s[q], wj, cx.fma(sa, bj, cx.mul(vi, kj)));
        acc = mulAcc(cx, row, rj, acc);
        next.push_back(row);
      }
      rb.store(r, next);
      yAcc.push_back(acc);
    }
    rb.storeSums(yAcc, out);
  };
  forStateRows(cx, op.getStateAttr(), heads, n, width, [](Value) {},
               perToken, block);
  cx.map(op.getResult(), out);
  return success();
}

//===----------------------------------------------------------------------===//
// rwkv.wkv7_prep and rwkv.head_bonus: per-head reductions
//===----------------------------------------------------------------------===//

// kk = k k_k / max(‖k k_k‖_head, 1e-12);  new_k = k (1 + (a - 1) k_a);
// neg_kk = -kk;  kk_a = kk a
LogicalResult lowerWKV7Prep(WKV7PrepOp op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getK()), heads = op.getHeads(), n = c / heads;
  int64_t width = LoweringContext::vectorWidth(n);
  Param kkp = perChannel(cx, op.getKK(), c, c);
  Param ka = perChannel(cx, op.getKA(), c, c);
  Value k = cx.lookup(op.getK()), a = cx.lookup(op.getA());
  Value newK = cx.allocActivation(c), negKK = cx.allocActivation(c),
        kkA = cx.allocActivation(c);

  cx.forEachToken([&](Value t) {
    cx.forLoop(cx.index(0), cx.index(heads), 1, [&](Value h) {
      Value base = cx.mulIndex(h, n);
      Value sumSq = sumOverHead(cx, base, n, width, [&](Value j) {
        Value x = cx.mul(cx.load(k, {t, j}, width),
                         cx.load(kkp.flat, j, width));
        return cx.mul(x, x);
      });
      Value norm = math::SqrtOp::create(cx.b, cx.loc, sumSq);
      Value den = cx.splat(cx.max(norm, cx.f32(1e-12f)), width);
      cx.forLoop(base, cx.addIndex(base, n), width, [&](Value j) {
        Value kj = cx.load(k, {t, j}, width);
        Value aj = cx.load(a, {t, j}, width);
        Value kk = cx.div(cx.mul(kj, cx.load(kkp.flat, j, width)), den);
        Value one = cx.splat(1.0f, width);
        Value gate =
            cx.fma(cx.sub(aj, one), cx.load(ka.flat, j, width), one);
        cx.store(cx.mul(kj, gate), newK, {t, j});
        cx.store(arith::NegFOp::create(cx.b, cx.loc, kk), negKK, {t, j});
        cx.store(cx.mul(kk, aj), kkA, {t, j});
      });
    });
  });
  cx.map(op.getNewK(), newK);
  cx.map(op.getNegKk(), negKK);
  cx.map(op.getKkA(), kkA);
  return success();
}

// result = (Σ_{j in head} r[j] k[j] r_k[j]) v, per head.
LogicalResult lowerHeadBonus(HeadBonusOp op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getR()), heads = op.getHeads(), n = c / heads;
  int64_t width = LoweringContext::vectorWidth(n);
  Param rk = perChannel(cx, op.getRK(), c, c);
  Value r = cx.lookup(op.getR()), k = cx.lookup(op.getK());
  Value v = cx.lookup(op.getV());
  Value out = cx.allocActivation(c);

  cx.forEachToken([&](Value t) {
    cx.forLoop(cx.index(0), cx.index(heads), 1, [&](Value h) {
      Value base = cx.mulIndex(h, n);
      Value sum = sumOverHead(cx, base, n, width, [&](Value j) {
        return cx.mul(cx.mul(cx.load(r, {t, j}, width),
                             cx.load(k, {t, j}, width)),
                      cx.load(rk.flat, j, width));
      });
      Value s = cx.splat(sum, width);
      cx.forLoop(base, cx.addIndex(base, n), width, [&](Value j) {
        cx.store(cx.mul(s, cx.load(v, {t, j}, width)), out, {t, j});
      });
    });
  });
  cx.map(op.getResult(), out);
  return success();
}

} // namespace

LogicalResult mlir::rwkv::cpu::lowerWKVOp(Operation *op, LoweringContext &cx) {
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case<WKV4Op>([&](auto o) { return lowerWKV4(o, cx); })
      .Case<WKV5Op>([&](auto o) { return lowerWKV5(o, cx); })
      .Case<WKV7Op>([&](auto o) { return lowerWKV7(o, cx); })
      .Case<WKV7PrepOp>([&](auto o) { return lowerWKV7Prep(o, cx); })
      .Case<HeadBonusOp>([&](auto o) { return lowerHeadBonus(o, cx); })
      .Default([](Operation *o) {
        return o->emitOpError() << "is not a WKV-family op";
      });
}
