//===- LowerNorm.cpp - layer_norm and group_norm to vector loops ----------===//
//
// Per token, per group of G channels (G = C for layer_norm, C / groups for
// group_norm), two passes over the group:
//
//   mean = Σ x / G                      (vector accumulate, reduce)
//   var  = Σ (x - mean)^2 / G
//   y    = (x - mean) * rsqrt(var + eps) * weight + bias
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"

using namespace mlir;
using namespace mlir::rwkv;
using namespace mlir::rwkv::cpu;

namespace {

/// Normalizes each of `groups` groups of every token of `input`.
/// With `slot` (norm_shift), also writes prev[t + 1] = y[t], prev[0] = the
/// slot, and finally the slot = y[T - 1]: the shift in the same pass. In a
/// batch function (each row a sequence of its own): prev[t] = row t's slot,
/// then that slot = y[t].
LogicalResult lowerNorm(Operation *op, Value input, Value weight, Value bias,
                        int64_t groups, float epsilon, LoweringContext &cx,
                        FlatSymbolRefAttr slot = {}) {
  int64_t c = cast<RankedTensorType>(input.getType()).getDimSize(1);
  int64_t g = c / groups;
  int64_t width = LoweringContext::vectorWidth(g);
  Value x = cx.lookup(input);
  Value w = cx.paramFlat(weight);
  Value b = cx.paramFlat(bias);
  Value out = cx.allocActivation(c);
  Value prev, state;
  int64_t cw = LoweringContext::vectorWidth(c);
  // prev[t] = state (the whole row, before it is overwritten).
  auto loadPrev = [&](Value t) {
    cx.forChannels(c, cw, [&](Value ch) {
      cx.store(cx.load(state, {ch}, cw), prev, {t, ch});
    });
  };
  if (slot) {
    prev = cx.allocActivation(c);
    if (!cx.batch()) {
      state = cx.stateSlot(slot);
      loadPrev(cx.index(0));
    }
  }
  Value rows = cx.numTokens();
  // Sum over [base, base + g) of f(x) as a scalar.
  auto sumGroup = [&](Value t, Value base,
                      function_ref<Value(Value)> f) -> Value {
    SmallVector<Value> acc = cx.forLoopCarrying(
        cx.index(0), cx.index(g), width, ValueRange{cx.splat(0.0f, width)},
        [&](Value i, ValueRange sum) {
          Value ch = arith::AddIOp::create(cx.b, cx.loc, base, i);
          return SmallVector<Value>{
              cx.add(sum[0], f(cx.load(x, {t, ch}, width)))};
        });
    return cx.reduceAdd(acc[0]);
  };

  cx.forEachToken([&](Value t) {
    if (slot && cx.batch()) {
      // Each row is a sequence of its own: prev[t] = its state, which then
      // takes y[t].
      state = cx.stateSlot(slot, t);
      loadPrev(t);
    }
    cx.forLoop(cx.index(0), cx.index(c), g, [&](Value base) {
      Value inv = cx.f32(1.0f / float(g));
      Value mean = cx.mul(sumGroup(t, base, [](Value v) { return v; }), inv);
      Value meanV = cx.splat(mean, width);
      Value var = cx.mul(sumGroup(t, base,
                                  [&](Value v) {
                                    Value d = cx.sub(v, meanV);
                                    return cx.mul(d, d);
                                  }),
                         inv);
      Value rstd = math::RsqrtOp::create(cx.b, cx.loc,
                                         cx.add(var, cx.f32(epsilon)));
      Value rstdV = cx.splat(rstd, width);
      cx.forLoop(cx.index(0), cx.index(g), width, [&](Value i) {
        Value ch = arith::AddIOp::create(cx.b, cx.loc, base, i);
        Value v = cx.mul(cx.sub(cx.load(x, {t, ch}, width), meanV), rstdV);
        Value y = cx.fma(v, cx.load(w, {ch}, width), cx.load(b, {ch}, width));
        cx.store(y, out, {t, ch});
        if (!slot)
          return;
        if (cx.batch()) {
          cx.store(y, state, {ch});
          return;
        }
        // The next token's previous value, or the state after the last.
        Value next = arith::AddIOp::create(cx.b, cx.loc, t, cx.index(1));
        Value isLast = arith::CmpIOp::create(
            cx.b, cx.loc, arith::CmpIPredicate::eq, next, rows);
        scf::IfOp::create(
            cx.b, cx.loc, isLast,
            [&](OpBuilder &nb, Location loc) {
              OpBuilder::InsertionGuard guard(cx.b);
              cx.b.setInsertionPoint(nb.getInsertionBlock(),
                                     nb.getInsertionPoint());
              cx.store(y, state, {ch});
              scf::YieldOp::create(cx.b, loc);
            },
            [&](OpBuilder &nb, Location loc) {
              OpBuilder::InsertionGuard guard(cx.b);
              cx.b.setInsertionPoint(nb.getInsertionBlock(),
                                     nb.getInsertionPoint());
              cx.store(y, prev, {next, ch});
              scf::YieldOp::create(cx.b, loc);
            });
      });
    });
  });
  cx.map(op->getResult(0), out);
  if (slot)
    cx.map(op->getResult(1), prev);
  return success();
}

} // namespace

LogicalResult mlir::rwkv::cpu::lowerNormOp(Operation *op,
                                           LoweringContext &cx) {
  if (auto ln = dyn_cast<LayerNormOp>(op))
    return lowerNorm(op, ln.getInput(), ln.getWeight(), ln.getBias(), 1,
                     ln.getEpsilon().convertToFloat(), cx);
  if (auto gn = dyn_cast<GroupNormOp>(op))
    return lowerNorm(op, gn.getInput(), gn.getWeight(), gn.getBias(),
                     gn.getGroups(), gn.getEpsilon().convertToFloat(), cx);
  if (auto ns = dyn_cast<NormShiftOp>(op))
    return lowerNorm(op, ns.getInput(), ns.getWeight(), ns.getBias(), 1,
                     ns.getEpsilon().convertToFloat(), cx, ns.getStateAttr());
  return op->emitOpError() << "is not a normalization";
}
