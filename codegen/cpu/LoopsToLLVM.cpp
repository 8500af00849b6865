//===- LoopsToLLVM.cpp - Loops over memrefs to the LLVM dialect -----------===//
//
//   math.exp / math.tanh on f32 vectors ──polynomial approximation──▶ arith
//   scf ──▶ cf;  memref ──expand-strided-metadata, lower-affine──▶ llvm
//   memref.alloc / memref.dealloc ──▶ calls of _mlir_memref_to_llvm_alloc /
//                                     _mlir_memref_to_llvm_free
//   vector, arith, math, index, ub, func, cf ──▶ llvm;  reconcile casts
//
// The polynomial approximations keep exp and tanh vectorized (LLVM would
// otherwise scalarize them into libm calls).
//
// Heap buffers go through the generic allocation functions, not malloc:
// the runtime defines them (runtime/rwkv_abi.h), and its allocation never
// returns null. When memory runs out it ends the call into the generated
// code and reports an error, so the code needs no null checks.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Passes.h"
#include "codegen/cpu/ParallelRegions.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/Threading.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::rwkv::cpu {
#define GEN_PASS_DEF_RWKVLOOPSTOLLVMPASS
#include "codegen/cpu/Passes.h.inc"
} // namespace mlir::rwkv::cpu

using namespace mlir;

namespace {
struct LoopsToLLVMPass
    : mlir::rwkv::cpu::impl::RWKVLoopsToLLVMPassBase<LoopsToLLVMPass> {
  using RWKVLoopsToLLVMPassBase::RWKVLoopsToLLVMPassBase;

  /// The nested conversion passes need their dialects loaded up front.
  void getDependentDialects(DialectRegistry &registry) const override {
    RWKVLoopsToLLVMPassBase::getDependentDialects(registry);
    buildConversions().getDependentDialects(registry);
    buildOpenMP().getDependentDialects(registry);
  }

  static OpPassManager buildOpenMP() {
    OpPassManager pm("builtin.module");
    pm.addPass(createConvertSCFToOpenMPPass());
    return pm;
  }

  /// The conversions that stay inside a function run function by
  /// function: MLIR's pass manager runs the nested pipeline of each
  /// function on a thread of its own (the entry points' bodies are most of
  /// the module). The result is the same as whole-module passes in this
  /// order.
  static OpPassManager buildConversions() {
    OpPassManager pm("builtin.module");
    OpPassManager &fn = pm.nest<func::FuncOp>();
    fn.addPass(createSCFToControlFlowPass());
    fn.addPass(memref::createExpandStridedMetadataPass());
    fn.addPass(createLowerAffinePass());
    ConvertVectorToLLVMPassOptions vectorOptions;
    vectorOptions.reassociateFPReductions = true;
    fn.addPass(createConvertVectorToLLVMPass(vectorOptions));
    fn.addPass(createConvertMathToLLVMPass());
    fn.addPass(createArithToLLVMConversionPass());
    fn.addPass(createConvertIndexToLLVMPass());
    FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
    memrefOptions.useGenericFunctions = true;
    pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
    pm.addPass(createConvertOpenMPToLLVMPass());
    pm.addPass(createConvertFuncToLLVMPass());
    pm.addPass(createConvertControlFlowToLLVMPass());
    pm.addPass(createUBToLLVMConversionPass());
    pm.addPass(createReconcileUnrealizedCastsPass());
    return pm;
  }

  /// Gives `loop` the schedule `kind` with chunks of `chunk` iterations.
  static void setSchedule(omp::WsloopOp loop, omp::ClauseScheduleKind kind,
                          int64_t chunk) {
    loop.setScheduleKind(kind);
    OpBuilder b(loop);
    Type t = cast<omp::LoopNestOp>(loop.getWrappedLoop())
                 .getLoopLowerBounds()[0]
                 .getType();
    auto value = t.isIndex() ? cast<TypedAttr>(b.getIndexAttr(chunk))
                             : cast<TypedAttr>(b.getIntegerAttr(t, chunk));
    loop.getScheduleChunkMutable().assign(
        arith::ConstantOp::create(b, loop.getLoc(), t, value));
  }

  /// The work-sharing loops of the sequence functions (@f_seq, @f_trunk,
  /// @f_all) take a guided schedule: chunks of half the remaining
  /// iterations over the threads, at least kMinChunk, handed to whichever
  /// thread asks first, so that a thread whose core runs slower (another
  /// job on it or its sibling) does not hold the others at every join.
  /// Prefill of the 0.1B shape (f16, two threads, 256 tokens in chunks of
  /// 16, 5 alternating runs): 691-789 tok/s with the static split, 790-823
  /// guided, 612-703 with dynamic chunks of 4. Decode keeps the static
  /// split: each thread streams one contiguous half of each matrix, and
  /// guided or dynamic chunks measured slower there (docs/performance.md,
  /// "RWKV-7 decode"). Each output is still computed by one thread in one
  /// order, so the logits do not depend on the schedule.
  static void scheduleSequenceLoops(ModuleOp module) {
    constexpr int64_t kMinChunk = 2;
    module.walk([](omp::WsloopOp loop) {
      StringRef fn = loop->getParentOfType<func::FuncOp>().getSymName();
      if (!fn.ends_with("_seq") && !fn.ends_with("_trunk") &&
          !fn.ends_with("_all"))
        return;
      setSchedule(loop, omp::ClauseScheduleKind::Guided, kMinChunk);
    });
  }

  /// The loops of ops run side by side (kSideBySideLoopName; RWKV-7's
  /// low-rank products, of unequal sizes: 64, 64, 32 and 128 wide at the
  /// 0.1B shape) hand out their iterations one at a time, largest first as
  /// rwkv-lower-to-loops orders them: with two threads one takes the
  /// gate's (128) and then the value's (32) while the other does the decay
  /// and in-context rate (64 + 64), where a static split of the ops in
  /// their order gave one thread 192 of the 288 columns. Measured (0.1B
  /// q4_0, two threads, both orders of scripts/ab_bench.c): 1.027x.
  static void scheduleSideBySideLoops(ModuleOp module) {
    module.walk([](omp::WsloopOp loop) {
      auto name = dyn_cast<NameLoc>(loop->getLoc());
      if (!name || name.getName() != rwkv::cpu::kSideBySideLoopName)
        return;
      setSchedule(loop, omp::ClauseScheduleKind::Dynamic, 1);
    });
  }

  /// A work-sharing loop that ends its parallel region takes `nowait`: the
  /// region's end is a barrier of all its threads (libomp's join), so the
  /// loop's own barrier before it only makes each thread wait twice. The
  /// conversion leaves one loop per region, at most a stack restore after
  /// it.
  static void dropBarriersBeforeJoins(ModuleOp module) {
    module.walk([](omp::WsloopOp loop) {
      if (!isa<omp::ParallelOp>(loop->getParentOp()))
        return;
      for (Operation *op = loop->getNextNode(); op; op = op->getNextNode())
        if (!isa<LLVM::StackRestoreOp, omp::TerminatorOp>(op))
          return;
      loop.setNowait(true);
    });
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    {
      RewritePatternSet patterns(&getContext());
      populateMathPolynomialApproximationPatterns(
          patterns, [](StringRef name) {
            return name == "math.exp" || name == "math.tanh" ||
                   name == "math.rsqrt";
          });
      // Function by function, in parallel (as the nested pipelines).
      FrozenRewritePatternSet frozen(std::move(patterns));
      SmallVector<func::FuncOp> functions(module.getOps<func::FuncOp>());
      if (failed(failableParallelForEach(
              &getContext(), functions, [&](func::FuncOp f) {
                return applyPatternsGreedily(f, frozen);
              })))
        return signalPassFailure();
    }
    // scf.parallel (the ops split across threads) becomes omp.parallel +
    // omp.wsloop: LLVM's OpenMP builder outlines each region and calls
    // libomp's __kmpc_fork_call; the region's end is its join. The
    // conversion wraps each loop body in a memref.alloca_scope, which must
    // keep one block (scf → cf would split it): the scopes are inlined, and
    // a body that allocates (a tile of quantized rows dequantized in a
    // sequence, LowerQuantLinear.cpp) between llvm.intr.stacksave and
    // stackrestore, so that each iteration frees its buffer.
    //
    //   alloca_scope { body } => body  (no alloca in body)
    //                         => %sp = stacksave; body; stackrestore %sp
    {
      OpPassManager omp = buildOpenMP();
      if (failed(runPipeline(omp, module)))
        return signalPassFailure();
      scheduleSequenceLoops(module);
      scheduleSideBySideLoops(module);
      SmallVector<memref::AllocaScopeOp> scopes;
      module.walk([&](memref::AllocaScopeOp s) { scopes.push_back(s); });
      for (memref::AllocaScopeOp scope : scopes) {
        bool allocates = scope->walk([](memref::AllocaOp) {
                                return WalkResult::interrupt();
                              }).wasInterrupted();
        OpBuilder b(scope);
        Value stack;
        if (allocates)
          stack = LLVM::StackSaveOp::create(
              b, scope.getLoc(), LLVM::LLVMPointerType::get(&getContext()));
        Block &body = scope.getBodyRegion().front();
        Operation *ret = body.getTerminator();
        scope->getBlock()->getOperations().splice(
            scope->getIterator(), body.getOperations(), body.begin(),
            ret->getIterator());
        if (allocates)
          LLVM::StackRestoreOp::create(b, scope.getLoc(), stack);
        scope->replaceAllUsesWith(ret->getOperands());
        scope->erase();
      }
      // Decode and the batch entry fork once a call (fuseParallelRegions):
      // the 0.1B q4_0 on two threads decoded 1.03-1.10x as fast (`ab_bench`
      // both orders, two pairs), one thread the same (0.98-1.07), logits
      // bit-identical; batches of 2 1.14-1.17x on one and two threads, of 4
      // 1.03-1.09x (two), of 8 0.96-1.03x.
      if (fuseRegions)
        for (auto fn : module.getOps<func::FuncOp>())
          if (fn.getSymName().ends_with("_one") ||
              fn.getSymName().ends_with("_batch"))
            rwkv::cpu::fuseParallelRegions(fn);
      dropBarriersBeforeJoins(module);
    }
    OpPassManager pm = buildConversions();
    if (failed(runPipeline(pm, module)))
      return signalPassFailure();
  }
};
} // namespace
