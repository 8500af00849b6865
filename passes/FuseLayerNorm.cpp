//===- FuseLayerNorm.cpp - Layer norm with the token shift of its result --===//
//
// token_shift(layer_norm(x, w, b), @s) => norm_shift(x, w, b, @s)#1
// (other uses of the layer norm)       => norm_shift(x, w, b, @s)#0
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVFUSELAYERNORMPASS
#include "passes/Passes.h.inc"

namespace {

struct FuseNormIntoShift : OpRewritePattern<TokenShiftOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(TokenShiftOp shift,
                                PatternRewriter &rewriter) const override {
    auto norm = shift.getInput().getDefiningOp<LayerNormOp>();
    if (!norm)
      return failure();
    // The fused op replaces the shift, so it must come after the norm's
    // operands and before every other user of the norm: put it where the
    // norm was.
    rewriter.setInsertionPoint(norm);
    auto fused = NormShiftOp::create(
        rewriter, shift.getLoc(), norm.getType(), norm.getType(),
        norm.getInput(), norm.getWeight(), norm.getBias(), shift.getStateAttr(),
        norm.getEpsilonAttr());
    rewriter.replaceOp(shift, fused.getPrev());
    rewriter.replaceOp(norm, fused.getNormalized());
    return success();
  }
};

struct FuseLayerNormPass
    : impl::RWKVFuseLayerNormPassBase<FuseLayerNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseNormIntoShift>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::rwkv
