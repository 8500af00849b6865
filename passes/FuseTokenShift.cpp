//===- FuseTokenShift.cpp - Token-shift mixes into projections ------------===//
//
// linear(lerp(a, b, t), W) => mix_linear(a, b, t, W)
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::rwkv {
#define GEN_PASS_DEF_RWKVFUSETOKENSHIFTPASS
#include "passes/Passes.h.inc"

namespace {

// linear(lerp(a, b, t), W) => mix_linear(a, b, t, W)   (W stored out_in)
struct FuseMixIntoLinear : OpRewritePattern<LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(LinearOp op,
                                PatternRewriter &rewriter) const override {
    auto lerp = op.getInput().getDefiningOp<LerpOp>();
    if (!lerp || op.getLayout() != WeightLayout::out_in)
      return failure();
    rewriter.replaceOpWithNewOp<MixLinearOp>(op, op.getType(), lerp.getA(),
                                             lerp.getB(), lerp.getT(),
                                             op.getWeight());
    return success();
  }
};

struct FuseTokenShiftPass
    : impl::RWKVFuseTokenShiftPassBase<FuseTokenShiftPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseMixIntoLinear>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace mlir::rwkv
