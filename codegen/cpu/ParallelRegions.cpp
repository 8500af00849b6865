//===- ParallelRegions.cpp - One parallel region per call -----------------===//
//
//   %x = ...serial...                     omp.parallel {
//   omp.parallel { omp.wsloop A }           %x = ...  (no writes: every thread)
//   scf.for %l ... {                        scf.for %l ... {
//     serial writes S                ──▶      omp.masked { S }  omp.barrier
//     omp.parallel { omp.wsloop B }           omp.wsloop nowait B
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
// Code that writes runs on thread 0 (omp.masked). The work-sharing loops
// lose their own barriers (nowait), and one barrier goes just before the
// first op that must not run side by side with what the threads did since
// the last one: code on every thread that reads what a thread wrote or
// writes what one read or wrote, or thread 0's serial code that touches
// what the other threads did (placeBarriers; across a loop's back edge
// too). Serial code that writes the input of a later loop moves before
// earlier loops it does not depend on (hoistSerialOps). An RWKV-7 layer
// of the 0.1B q4_0 then has 10 barriers rather than 16: r, k and v's
// inputs quantized in one serial run, the three products and the low-rank
// ones one after another with one barrier after them all. Buffers the body
// allocates move before the region (an alloca inside would be each
// thread's own).
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

/// Whether `op`, which has no memory effects interface, leaves memory that
/// other threads see alone: a thread's own stack pointer, or an intrinsic
/// that takes no pointer (the x86 dot products of LowerQuantLinear.cpp).
bool touchesNoSharedMemory(Operation *op) {
  if (isa<LLVM::StackSaveOp, LLVM::StackRestoreOp>(op))
    return true;
  return isa<LLVM::CallIntrinsicOp>(op) &&
         llvm::none_of(op->getOperandTypes(), [](Type t) {
           return isa<LLVM::LLVMPointerType, BaseMemRefType>(t);
         });
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
      if (!op->hasTrait<OpTrait::HasRecursiveMemoryEffects>() &&
          !touchesNoSharedMemory(op))
        anyRead = anyWrite = true;
    });
  }
  /// Whether writes of `w` may touch what this read.
  bool readsWhatIsWritten(const Access &w) const {
    return meets(reads, anyRead, w);
  }
  /// Whether writes of `w` may touch what this wrote.
  bool writesWhatIsWritten(const Access &w) const {
    return meets(writes, anyWrite, w);
  }
  /// Whether writes of `w` may touch `buffers` (or anything: `any`).
  static bool meets(const llvm::SmallPtrSet<Value, 8> &buffers, bool any,
                    const Access &w) {
    if (!w.writesAnything() || (!any && buffers.empty()))
      return false;
    if (any || w.anyWrite)
      return true;
    return llvm::any_of(w.writes, [&](Value v) { return buffers.contains(v); });
  }
  /// Whether `later` must not run side by side with this on another thread:
  /// it reads what this wrote, or writes what this read or wrote.
  bool orders(const Access &later) const {
    return later.readsWhatIsWritten(*this) || readsWhatIsWritten(later) ||
           writesWhatIsWritten(later);
  }
  void merge(const Access &o) {
    reads.insert(o.reads.begin(), o.reads.end());
    writes.insert(o.writes.begin(), o.writes.end());
    anyRead |= o.anyRead;
    anyWrite |= o.anyWrite;
  }
  bool contains(const Access &o) const {
    return (anyRead || !o.anyRead) && (anyWrite || !o.anyWrite) &&
           llvm::all_of(o.reads, [&](Value v) { return reads.contains(v); }) &&
           llvm::all_of(o.writes, [&](Value v) { return writes.contains(v); });
  }
  void clear() { *this = Access(); }
};

/// What the threads did since the last barrier: `all` by code that runs on
/// every thread (or on any: a work-sharing loop without its barrier),
/// `master` by thread 0 alone (omp.masked), which later code on thread 0
/// need not wait for.
struct Pending {
  Access all, master;

  void clear() {
    all.clear();
    master.clear();
  }
  void merge(const Pending &o) {
    all.merge(o.all);
    master.merge(o.master);
  }
  bool contains(const Pending &o) const {
    return all.contains(o.all) && master.contains(o.master);
  }
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

/// Whether a work-sharing loop of parallel region `p` combines values of
/// the threads (a reduction: its result is whole only after its barrier).
bool reduces(omp::ParallelOp p) {
  return p
      ->walk([](omp::WsloopOp loop) {
        return loop.getReductionVars().empty() ? WalkResult::advance()
                                               : WalkResult::interrupt();
      })
      .wasInterrupted();
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

/// Whether `op` or an op inside it uses a result of `def` or of an op
/// inside `def`.
bool usesResultOf(Operation *op, Operation *def) {
  return op
      ->walk([&](Operation *user) {
        for (Value operand : user->getOperands())
          if (Operation *d = operand.getDefiningOp(); d && def->isAncestor(d))
            return WalkResult::interrupt();
        return WalkResult::advance();
      })
      .wasInterrupted();
}

/// Moves each serial op that writes (one omp.masked will run) up past the
/// parallel regions before it that it does not depend on, to just after the
/// serial code before them: the inputs of independent products (RWKV-7's
/// r, k and v, each quantized into a buffer of its own) are then prepared
/// in one serial run and the products follow it with one barrier, not one
/// before and one after each. It stops at the first op it depends on or
/// that touches what it touches, and in the bodies of the loops that hold
/// parallel regions does the same.
void hoistSerialOps(Block &block) {
  for (Operation *op : bodyOps(block)) {
    Kind kind = classify(op);
    if (kind == Kind::Structure && isa<scf::ForOp, scf::IfOp>(op))
      for (Region &region : op->getRegions())
        for (Block &inner : region)
          hoistSerialOps(inner);
    if (kind != Kind::Masked)
      continue;
    Access a;
    a.add(op);
    bool pastParallel = false;
    Operation *after = nullptr;
    for (Operation *prev = op->getPrevNode(); prev;
         prev = prev->getPrevNode()) {
      Kind prevKind = classify(prev);
      Access p;
      p.add(prev);
      if (prevKind == Kind::Structure || usesResultOf(op, prev) ||
          p.orders(a) || a.orders(p) ||
          (prevKind == Kind::Masked && pastParallel)) {
        after = prev;
        break;
      }
      pastParallel |= prevKind == Kind::Parallel;
    }
    if (after && pastParallel)
      op->moveAfter(after);
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

/// The barriers of the fused region: before which ops (an op, or the first
/// of a masked run) one goes.
using Barriers = llvm::SmallPtrSet<Operation *, 32>;

/// Places the barriers of the ops `ops` of one block, given what the threads
/// did since the last barrier before them (`pending`, updated to what they
/// did since the last one at the block's end). A barrier goes just before
/// the first op that must not run side by side with what came since the
/// last one: on every thread, code that reads what a thread wrote or writes
/// what one read or wrote; on thread 0 (a masked run), code that touches
/// what code on the other threads did. Work-sharing loops lose their own
/// barriers (nowait) where nothing after them needs it: independent
/// products split across the threads one after another, each thread going
/// on to its part of the next.
void placeBarriers(ArrayRef<Operation *> ops, Pending &pending,
                   Barriers &barriers) {
  SmallVector<Kind> kinds = kindsOf(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    Operation *op = ops[i];
    auto wait = [&] {
      barriers.insert(op);
      pending.clear();
    };
    switch (kinds[i]) {
    case Kind::Alloca:
      break;
    case Kind::Replicated:
    case Kind::Parallel: {
      Access a;
      a.add(op);
      if (pending.all.orders(a) || pending.master.orders(a))
        wait();
      if (kinds[i] == Kind::Parallel && reduces(cast<omp::ParallelOp>(op)))
        pending.clear(); // it keeps its barrier
      else
        pending.all.merge(a);
      break;
    }
    case Kind::Masked: {
      size_t end = runEnd(ops, kinds, i);
      Access a;
      for (size_t j = i; j < end; ++j)
        a.add(ops[j]);
      if (pending.all.orders(a))
        wait();
      pending.master.merge(a);
      i = end - 1;
      break;
    }
    case Kind::Structure: {
      if (auto loop = dyn_cast<scf::ForOp>(op)) {
        // The body starts after the loop's entry or after its own end: what
        // is pending at its start is the union of both, found by running
        // the placement until it no longer grows; the last run's barriers
        // are the body's.
        SmallVector<Operation *> body = bodyOps(*loop.getBody());
        Pending entry = pending;
        while (true) {
          Pending end = entry;
          Barriers found;
          placeBarriers(body, end, found);
          if (entry.contains(end)) {
            barriers.insert(found.begin(), found.end());
            break;
          }
          entry.merge(end);
        }
        pending = entry;
        break;
      }
      Pending after = pending;
      for (Region &region : op->getRegions())
        for (Block &block : region) {
          Pending inside = pending;
          placeBarriers(bodyOps(block), inside, barriers);
          after.merge(inside);
        }
      pending = after;
      break;
    }
    }
  }
}

/// Rewrites the ops `ops` of one block into the fused region `parallelOp`
/// with the barriers `barriers`: runs of serial writes into omp.masked, the
/// parallel regions' bodies spliced in with nowait loops.
void fuse(ArrayRef<Operation *> ops, Operation *parallelOp,
          const Barriers &barriers) {
  SmallVector<Kind> kinds = kindsOf(ops);
  for (size_t i = 0; i < ops.size(); ++i) {
    Operation *op = ops[i];
    OpBuilder b(op);
    if (barriers.contains(op))
      omp::BarrierOp::create(b, op->getLoc());
    switch (kinds[i]) {
    case Kind::Replicated:
      break;
    case Kind::Alloca:
      op->moveBefore(parallelOp);
      break;
    case Kind::Parallel: {
      auto inner = cast<omp::ParallelOp>(op);
      Block &body = inner.getRegion().front();
      if (!reduces(inner))
        inner.walk([](omp::WsloopOp loop) { loop.setNowait(true); });
      op->getBlock()->getOperations().splice(
          op->getIterator(), body.getOperations(), body.begin(),
          body.getTerminator()->getIterator());
      op->erase();
      break;
    }
    case Kind::Structure:
      for (Region &region : op->getRegions())
        for (Block &block : region)
          fuse(bodyOps(block), parallelOp, barriers);
      break;
    case Kind::Masked: {
      size_t end = runEnd(ops, kinds, i);
      auto masked = omp::MaskedOp::create(b, op->getLoc(), Value());
      Block *inside = b.createBlock(&masked.getRegion());
      for (size_t j = i; j < end; ++j)
        ops[j]->moveBefore(inside, inside->end());
      b.setInsertionPointToEnd(inside);
      omp::TerminatorOp::create(b, op->getLoc());
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
  hoistSerialOps(entry);
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
  Pending pending;
  Barriers barriers;
  placeBarriers(span, pending, barriers);
  fuse(span, parallel, barriers);
  return true;
}
