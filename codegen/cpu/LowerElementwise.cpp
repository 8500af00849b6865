//===- LowerElementwise.cpp - Element-wise rwkv ops to vector loops -------===//
//
// Lowers embedding, last_token, token_shift, lerp, add, mul, sigmoid, silu,
// relu_sq, tanh and decay to
//
//   scf.for t in [0, T)                       (absent for one token)
//     scf.for c in [0, C) step W              (W = vector width for C)
//       vector.load → arith/math on vector<W x f32> → vector.store
//
// In a batch function (one token of its own sequence per row) the token
// shift reads and writes each row's own state instead.
//
// Operands are read through ChannelOperand: per-channel ones (any static
// shape with C elements) through a 1-D view, per-token ones as (T, C).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

/// result[t][c] = f(operands at t, c), over a (T, C) result.
LogicalResult lowerMap(Operation *op, LoweringContext &cx,
                       function_ref<Value(ArrayRef<Value>)> f) {
  int64_t c = channelsOf(op->getResult(0));
  int64_t width = LoweringContext::vectorWidth(c);
  SmallVector<ChannelOperand> operands;
  for (Value v : op->getOperands())
    operands.emplace_back(cx, v);
  Value out = cx.allocActivation(c);
  cx.forEachToken([&](Value t) {
    cx.forChannels(c, width, [&](Value ch) {
      SmallVector<Value> in;
      for (const ChannelOperand &o : operands)
        in.push_back(o.load(cx, t, ch, width));
      cx.store(f(in), out, {t, ch});
    });
  });
  cx.map(op->getResult(0), out);
  return success();
}

LogicalResult lowerEmbedding(EmbeddingOp op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getResult());
  int64_t vocab = cast<RankedTensorType>(op.getTable().getType()).getDimSize(0);
  int64_t width = LoweringContext::vectorWidth(c);
  Value tokens = cx.lookup(op.getTokens());
  Value table = cx.lookup(op.getTable());
  Value out = cx.allocActivation(c);
  cx.forEachToken([&](Value t) {
    // Token ids are checked by the runtime; clamp so that a bad id can never
    // read outside the table.
    Value id = memref::LoadOp::create(cx.b, cx.loc, tokens, t);
    Value idx = arith::IndexCastOp::create(cx.b, cx.loc,
                                           cx.b.getIndexType(), id);
    idx = arith::MaxSIOp::create(cx.b, cx.loc, idx, cx.index(0));
    idx = arith::MinSIOp::create(cx.b, cx.loc, idx, cx.index(vocab - 1));
    cx.forChannels(c, width, [&](Value ch) {
      cx.store(cx.load(table, {idx, ch}, width), out, {t, ch});
    });
  });
  cx.map(op.getResult(), out);
  return success();
}

LogicalResult lowerLastToken(LastTokenOp op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getResult());
  int64_t width = LoweringContext::vectorWidth(c);
  Value in = cx.lookup(op.getInput());
  Value rows = memref::DimOp::create(cx.b, cx.loc, in, 0);
  Value last = arith::SubIOp::create(cx.b, cx.loc, rows, cx.index(1));
  Value out = cx.allocActivation(c);
  cx.forChannels(c, width, [&](Value ch) {
    cx.store(cx.load(in, {last, ch}, width), out, {cx.index(0), ch});
  });
  cx.map(op.getResult(), out);
  return success();
}

/// A batch's token shift: each row is a sequence of its own.
///   out[t] = state_t; state_t = x[t]
LogicalResult lowerBatchTokenShift(TokenShiftOp op, LoweringContext &cx) {
  int64_t c = channelsOf(op.getResult());
  int64_t width = LoweringContext::vectorWidth(c);
  Value x = cx.lookup(op.getInput());
  Value out = cx.allocActivation(c);
  cx.forTokens([&](Value t) {
    Value slot = cx.stateSlot(op.getStateAttr(), t);
    cx.forChannels(c, width, [&](Value ch) {
      cx.store(cx.load(slot, {ch}, width), out, {t, ch});
      cx.store(cx.load(x, {t, ch}, width), slot, {ch});
    });
  });
  cx.map(op.getResult(), out);
  return success();
}

LogicalResult lowerTokenShift(TokenShiftOp op, LoweringContext &cx) {
  if (cx.batch())
    return lowerBatchTokenShift(op, cx);
  // out[0] = state; out[t] = x[t - 1]; state = x[T - 1]
  int64_t c = channelsOf(op.getResult());
  int64_t width = LoweringContext::vectorWidth(c);
  Value x = cx.lookup(op.getInput());
  Value slot = cx.stateSlot(op.getStateAttr());
  Value out = cx.allocActivation(c);
  Value zero = cx.index(0);
  Value rows = cx.numTokens();
  Value last = arith::SubIOp::create(cx.b, cx.loc, rows, cx.index(1));
  cx.forChannels(c, width, [&](Value ch) {
    cx.store(cx.load(slot, {ch}, width), out, {zero, ch});
  });
  if (!cx.oneToken) {
    cx.forLoop(cx.index(1), rows, 1, [&](Value t) {
      Value prev = arith::SubIOp::create(cx.b, cx.loc, t, cx.index(1));
      cx.forChannels(c, width, [&](Value ch) {
        cx.store(cx.load(x, {prev, ch}, width), out, {t, ch});
      });
    });
  }
  cx.forChannels(c, width, [&](Value ch) {
    cx.store(cx.load(x, {last, ch}, width), slot, {ch});
  });
  cx.map(op.getResult(), out);
  return success();
}

/// One of the decay maps of rwkv.decay, on a vector.
Value decayOf(LoweringContext &cx, DecayKind kind, Value d, int64_t width) {
  switch (kind) {
  case DecayKind::neg_exp:
    return arith::NegFOp::create(cx.b, cx.loc, cx.exp(d));
  case DecayKind::exp_neg_exp:
    return cx.exp(arith::NegFOp::create(cx.b, cx.loc, cx.exp(d)));
  case DecayKind::exp_neg_sigmoid:
    // exp(-e^{-1/2} sigmoid(d))
    return cx.exp(cx.mul(cx.splat(-0.60653065971263342f, width),
                         cx.sigmoid(d)));
  case DecayKind::exp:
    return cx.exp(d);
  }
  llvm_unreachable("unknown decay kind");
}

LogicalResult lowerDecay(DecayOp op, LoweringContext &cx) {
  // A computed (T, C) input (RWKV-6/7's data-dependent decays): per token.
  if (cast<RankedTensorType>(op.getType()).getRank() == 2 &&
      !op.getInput().getDefiningOp<WeightOp>())
    return lowerMap(op, cx, [&](ArrayRef<Value> in) {
      int64_t width = cast<VectorType>(in[0].getType()).getDimSize(0);
      return decayOf(cx, op.getKind(), in[0], width);
    });
  // A per-channel decay of any static shape: computed once per call.
  RankedTensorType type = op.getType();
  int64_t n = type.getNumElements();
  int64_t width = LoweringContext::vectorWidth(n);
  Value in = cx.paramFlat(op.getInput());
  Value out = cx.allocScratch(type.getShape());
  SmallVector<ReassociationIndices> all(1);
  for (int64_t i = 0; i < type.getRank(); ++i)
    all[0].push_back(i);
  Value flatOut =
      type.getRank() == 1
          ? out
          : memref::CollapseShapeOp::create(cx.b, cx.loc, out, all).getResult();
  cx.forChannels(n, width, [&](Value i) {
    cx.store(decayOf(cx, op.getKind(), cx.load(in, {i}, width), width),
             flatOut, {i});
  });
  cx.map(op.getResult(), out);
  return success();
}

} // namespace

LogicalResult mlir::rwkv::cpu::lowerElementwiseOp(Operation *op,
                                                  LoweringContext &cx) {
  auto width = [](Value v) {
    return cast<VectorType>(v.getType()).getDimSize(0);
  };
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](EmbeddingOp op) { return lowerEmbedding(op, cx); })
      .Case([&](LastTokenOp op) { return lowerLastToken(op, cx); })
      .Case([&](TokenShiftOp op) { return lowerTokenShift(op, cx); })
      .Case([&](DecayOp op) { return lowerDecay(op, cx); })
      .Case([&](LerpOp op) {
        // a + (b - a) * t
        return lowerMap(op, cx, [&](ArrayRef<Value> in) {
          return cx.fma(cx.sub(in[1], in[0]), in[2], in[0]);
        });
      })
      .Case([&](AddOp op) {
        return lowerMap(op, cx,
                        [&](ArrayRef<Value> in) { return cx.add(in[0], in[1]); });
      })
      .Case([&](MulOp op) {
        return lowerMap(op, cx,
                        [&](ArrayRef<Value> in) { return cx.mul(in[0], in[1]); });
      })
      .Case([&](SigmoidOp op) {
        return lowerMap(op, cx,
                        [&](ArrayRef<Value> in) { return cx.sigmoid(in[0]); });
      })
      .Case([&](SiluOp op) {
        return lowerMap(op, cx, [&](ArrayRef<Value> in) {
          return cx.mul(in[0], cx.sigmoid(in[0]));
        });
      })
      .Case([&](TanhOp op) {
        return lowerMap(op, cx,
                        [&](ArrayRef<Value> in) { return cx.tanh(in[0]); });
      })
      .Case([&](ReluSqOp op) {
        return lowerMap(op, cx, [&](ArrayRef<Value> in) {
          Value r = cx.max(in[0], cx.splat(0.0f, width(in[0])));
          return cx.mul(r, r);
        });
      })
      .Default([&](Operation *op) {
        return op->emitOpError() << "has no CPU lowering";
      });
}
