//===- ParallelRegions.cpp - One parallel region per call -----------------===//
//
//   %x = ...serial...                     omp.parallel {
//   omp.parallel { omp.wsloop A }           %x = ...  (no writes: every thread)
//   scf.for %l ... {                        scf.for %l ... {
//     serial writes S                ──▶      omp.masked { S }  omp.barrier
//     omp.parallel { omp.wsloop B }           omp.wsloop B      (its barrier)
//   }                                       }
//                                         }
//
// A fork and a join of libomp cost more than a barrier inside one region:
// scripts/region_bench.c reads the 0.1B q4_0's bytes a token in its
// products' pieces on two threads in 1.12 ms with a region per piece and
// 0.85 ms with one region and a barrier between pieces (0.84 ms in one
// piece; docs/performance.md, session 17).
//
// Code that only reads runs on every thread (each computes the same values:
// a norm's mean, a loop bound), so that its results stay available to all.
// Code that writes runs on thread 0 (omp.masked) and a barrier follows it; a
// barrier also goes before any writes to memory that code running on every
// thread read since the last barrier (another thread may still be reading
// it). Buffers the body allocates move before the region (an alloca inside
// would be each thread's own).
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/ParallelRegions.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "llvm/ADT/SmallPtrSet.h"

using namespace mlir;

namespace {

/// The buffer a memref value views: the alloca, argument or other value at
/// the root of its chain of views.
Value memrefRoot(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    auto view = dyn_cast<ViewLikeOpInterface>(def);
    if (!view || view.getViewSource() == v)
      break;
    v = view.getViewSource();
  }
  return v;
}

/// The buffers an op and the ops inside it read and write (by root), and
/// whether any of them has effects on memory it does not name.
struct Access {
  llvm::SmallPtrSet<Value, 8> reads, writes;
  bool anyRead = false, anyWrite = false;

  bool writesAnything() const { return anyWrite || !writes.empty(); }
  bool readsAnything() const { return anyRead || !reads.empty(); }
  void add(Operation *root) {
    root->walk([&](Operation *op) {
      if (auto iface = dyn_cast<MemoryEffectOpInterface>(op)) {
        SmallVector<MemoryEffects::EffectInstance> effects;
        iface.getEffects(effects);
        for (MemoryEffects::EffectInstance &e : effects) {
          bool write = !isa<MemoryEffects::Read>(e.getEffect());
          Value v = e.getValue();
          if (!v)
            (write ? anyWrite : anyRead) = true;
          else
            (write ? writes : reads).insert(memrefRoot(v));
        }
        return;
      }
      if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>())
        anyRead = anyWrite = true;
    });
  }
  /// Whether writes of `w` may touch what this read.
  bool readsWhatIsWritten(const Access &w) const {
    if (!w.writesAnything() || !readsAnything())
      return false;
    if (anyRead || w.anyWrite)
      return true;
    return llvm::any_of(w.writes, [&](Value v) { return reads.contains(v); });
  }
  void clear() { *this = Access(); }
};

bool containsParallel(Operation *op) {
  return op->walk([](omp::ParallelOp) { return WalkResult::interrupt(); })
      .wasInterrupted();
}

enum class Kind { Parallel, Structure, Alloca, Masked, Replicated };

Kind classify(Operation *op) {
  if (isa<omp::ParallelOp>(op))
    return Kind::Parallel;
  if (containsParallel(op))
    return Kind::Structure;
  if (isa<memref::AllocaOp>(op))
    return Kind::Alloca;
  Access a;
  a.add(op);
  return a.writesAnything() ? Kind::Masked : Kind::Replicated;
}

/// The ops of `block` but its terminator.
SmallVector<Operation *> bodyOps(Block &block) {
  SmallVector<Operation *> ops;
  for (Operation &op : block.without_terminator())
    ops.push_back(&op);
  return ops;
}

/// classify of each op of `ops` (the rewrite moves ops but changes none of
/// their kinds).
SmallVector<Kind> kindsOf(ArrayRef<Operation *> ops) {
  return llvm::map_to_vector(ops, classify);
}

/// Whether the work-sharing loop of parallel region `p` ends it with its
/// barrier, as convert-scf-to-openmp builds it: nothing but a stack restore
/// after the loop, which has no `nowait`.
bool endsInBarrier(omp::ParallelOp p) {
  Block &body = p.getRegion().front();
  for (Operation &op : llvm::reverse(body.without_terminator())) {
    if (isa<LLVM::StackRestoreOp>(op))
      continue;
    auto loop = dyn_cast<omp::WsloopOp>(op);
    return loop && !loop.getNowait();
  }
  return false;
}

/// The end of the run of serial ops from ops[i] (one that writes) that one
/// omp.masked takes: the ops from i on that neither fork nor hold a
/// parallel region nor allocate, but those that only read at its end and
/// those from the first one on whose results code after the run uses. i
/// where ops[i]'s own results are used after it.
size_t runEnd(ArrayRef<Operation *> ops, ArrayRef<Kind> kinds, size_t i) {
  size_t end = i;
  while (end < ops.size() &&
         (kinds[end] == Kind::Masked || kinds[end] == Kind::Replicated))
    ++end;
  while (true) {
    while (end > i && kinds[end - 1] == Kind::Replicated)
      --end;
    if (end == i)
      return i;
    llvm::SmallPtrSet<Operation *, 16> run(ops.begin() + i, ops.begin() + end);
    size_t escape = end;
    for (size_t j = i; j < end && escape == end; ++j)
      for (Value result : ops[j]->getResults())
        for (Operation *user : result.getUsers()) {
          Operation *top = user;
          while (top && !run.contains(top))
            top = top->getParentOp();
          if (!top)
            escape = j;
        }
    if (escape == end)
      return end;
    end = escape;
  }
}

/// Moves each op of `block` without effects on memory and without regions
/// (index arithmetic, views of the weights) up to just after the last of its
/// operands' definitions in the block, and so on in the bodies of the ops
/// that hold parallel regions: out of the runs of serial code between the
/// parallel regions, whose ops then go into one omp.masked each rather than
/// one between every two such ops.
void hoistPureOps(Block &block) {
  for (Operation *op : bodyOps(block)) {
    if (op->getNumRegions() != 0) {
      if (containsParallel(op) && isa<scf::ForOp, scf::IfOp>(op))
        for (Region &region : op->getRegions())
          for (Block &inner : region)
            hoistPureOps(inner);
      continue;
    }
    if (!isMemoryEffectFree(op))
      continue;
    Operation *after = nullptr;
    for (Value operand : op->getOperands()) {
      Operation *def = operand.getDefiningOp();
      if (!def)
        continue;
      def = block.findAncestorOpInBlock(*def);
      if (def && (!after || after->isBeforeInBlock(def)))
        after = def;
    }
    if (after)
      op->moveAfter(after);
    else
      op->moveBefore(&block, block.begin());
  }
}

/// Whether the rewrite can take the ops `ops` (a block's, or the
/// function's from the first parallel region on): see fuseParallelRegions.
bool canFuse(ArrayRef<Operation *> ops) {
  SmallVector<Kind> kinds = kindsOf(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    Operation *op = ops[i];
    switch (kinds[i]) {
    case Kind::Parallel:
      if (!endsInBarrier(cast<omp::ParallelOp>(op)))
        return false;
      break;
    case Kind::Replicated:
      break;
    case Kind::Alloca:
      if (op->getNumOperands() != 0)
        return false;
      break;
    case Kind::Structure:
      if (!isa<scf::ForOp, scf::IfOp>(op))
        return false;
      for (Region &region : op->getRegions())
        for (Block &block : region)
          if (!canFuse(bodyOps(block)))
            return false;
      break;
    case Kind::Masked: {
      size_t end = runEnd(ops, kinds, i);
      if (end == i)
        return false;
      i = end - 1;
      break;
    }
    }
  }
  return true;
}

/// Rewrites the ops `ops` of one block (in the fused region `parallelOp`):
/// returns with `pending` the reads of ops on every thread since the last
/// barrier.
void fuse(ArrayRef<Operation *> ops, Operation *parallelOp, Access &pending) {
  SmallVector<Kind> kinds = kindsOf(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    Operation *op = ops[i];
    OpBuilder b(op);
    switch (kinds[i]) {
    case Kind::Replicated:
      pending.add(op);
      break;
    case Kind::Alloca:
      op->moveBefore(parallelOp);
      break;
    case Kind::Parallel: {
      auto inner = cast<omp::ParallelOp>(op);
      Access a;
      a.add(inner);
      if (pending.readsWhatIsWritten(a))
        omp::BarrierOp::create(b, op->getLoc());
      Block &body = inner.getRegion().front();
      op->getBlock()->getOperations().splice(
          op->getIterator(), body.getOperations(), body.begin(),
          body.getTerminator()->getIterator());
      op->erase();
      // Its work-sharing loop ends in a barrier (endsInBarrier).
      pending.clear();
      break;
    }
    case Kind::Structure: {
      if (pending.readsAnything())
        omp::BarrierOp::create(b, op->getLoc());
      pending.clear();
      for (Region &region : op->getRegions())
        for (Block &block : region) {
          Access inside;
          fuse(bodyOps(block), parallelOp, inside);
          if (inside.readsAnything()) {
            OpBuilder end(block.getTerminator());
            omp::BarrierOp::create(end, op->getLoc());
          }
        }
      break;
    }
    case Kind::Masked: {
      size_t end = runEnd(ops, kinds, i);
      Access a;
      for (size_t j = i; j < end; ++j)
        a.add(ops[j]);
      if (pending.readsWhatIsWritten(a))
        omp::BarrierOp::create(b, op->getLoc());
      auto masked = omp::MaskedOp::create(b, op->getLoc(), Value());
      Block *inside = b.createBlock(&masked.getRegion());
      for (size_t j = i; j < end; ++j)
        ops[j]->moveBefore(inside, inside->end());
      b.setInsertionPointToEnd(inside);
      omp::TerminatorOp::create(b, op->getLoc());
      b.setInsertionPointAfter(masked);
      omp::BarrierOp::create(b, op->getLoc());
      pending.clear();
      i = end - 1;
      break;
    }
    }
  }
}

} // namespace

bool mlir::rwkv::cpu::fuseParallelRegions(func::FuncOp fn) {
  if (fn.isExternal() || !fn.getBody().hasOneBlock())
    return false;
  int64_t count = 0;
  fn.walk([&](omp::ParallelOp p) {
    if (!p->getParentOfType<omp::ParallelOp>())
      ++count;
  });
  if (count < 2)
    return false;
  Block &entry = fn.getBody().front();
  if (entry.getTerminator()->getNumOperands() != 0)
    return false;
  hoistPureOps(entry);
  // The body from the first op that forks on.
  SmallVector<Operation *> ops = bodyOps(entry);
  auto first = llvm::find_if(ops, [](Operation *op) {
    return isa<omp::ParallelOp>(op) || containsParallel(op);
  });
  SmallVector<Operation *> span(first, ops.end());
  if (!canFuse(span))
    return false;

  OpBuilder b(span.front());
  auto parallel =
      omp::ParallelOp::create(b, fn.getLoc(), omp::ParallelOperands{});
  Block *body = b.createBlock(&parallel.getRegion());
  for (Operation *op : span)
    op->moveBefore(body, body->end());
  b.setInsertionPointToEnd(body);
  omp::TerminatorOp::create(b, fn.getLoc());
  Access pending;
  fuse(span, parallel, pending);
  return true;
}
