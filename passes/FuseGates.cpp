//===- FuseGates.cpp - Gates and activations into projections -------------===//
//
// linear(mul(sigmoid(g), y), W) => gate_linear(g, y, W)
// linear(relu_sq(k), W)         => relu_sq_linear(k, W)
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVFUSEGATESPASS
#include "passes/Passes.h.inc"

namespace {

/// True for an activation (T, C) f32 operand of the input's shape (not a
/// broadcast per-channel parameter).
bool isActivationLike(Value v, Value like) {
  return v.getType() == like.getType();
}

// linear(mul(sigmoid(g), y), W) => gate_linear(g, y, W)
// linear(mul(y, sigmoid(g)), W) => gate_linear(g, y, W)
struct FuseGateIntoLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    auto mul = op.getInput().getDefiningOp<MulOp>();
    if (!mul || op.getLayout() != WeightLayout::out_in ||
        !isActivationLike(mul.getRhs(), mul.getLhs()))
      return failure();
    Value gate, y;
    if (auto s = mul.getLhs().getDefiningOp<SigmoidOp>()) {
      gate = s.getInput();
      y = mul.getRhs();
    } else if (auto s = mul.getRhs().getDefiningOp<SigmoidOp>()) {
      gate = s.getInput();
      y = mul.getLhs();
    } else {
      return failure();
    }
    rewriter.replaceOpWithNewOp<GateLinearOp>(op, op.getType(), gate, y,
                                              op.getWeight());
    return success();
  }
};

// linear(relu_sq(k), W) => relu_sq_linear(k, W)
struct FuseReluSqIntoLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    auto relu = op.getInput().getDefiningOp<ReluSqOp>();
    if (!relu || op.getLayout() != WeightLayout::out_in)
      return failure();
    rewriter.replaceOpWithNewOp<ReluSqLinearOp>(op, op.getType(),
                                                relu.getInput(),
                                                op.getWeight());
    return success();
  }
};

struct FuseGatesPass : impl::RWKVFuseGatesPassBase<FuseGatesPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseGateIntoLinear, FuseReluSqIntoLinear>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::rwkv
