//===- Scheduler.cpp - Runs a CUDA grid as fibers on the host -------------===//
//
// See Scheduler.h. One Worker per OS thread owns the fibers (one per thread
// of the largest block run so far, each looping over the blocks it runs a
// thread of), the shared-memory arena and the state of the block being
// run. The worker's own stack runs the scheduling loop; a fiber runs until
// it calls a collective, does the bookkeeping itself and switches back:
//
//   loop: pick a ready fiber (schedule order) -> resume it
//           fiber: __syncthreads / warp collective: checks; joins the
//                  barrier or its warp's group; the last to arrive computes
//                  the result and makes every member ready (in order)
//           fiber: returns from the kernel: Done;  __trap, bad call: Failed
//         <- it switches back
//   no fiber ready and not all Done: deadlock report
//
// ThreadSanitizer sees only the kernels (this file is not instrumented):
// every fiber is a TSan fiber, switched to without synchronization, and the
// happens-before edges are declared where CUDA has them: launch start, each
// __syncthreads and __syncwarp, block end.
//
//===----------------------------------------------------------------------===//

#include "Scheduler.h"

#include "Fiber.h"
#include "Format.h"
#include "WarpOps.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

namespace rwkv_emu {

// --- Schedules --------------------------------------------------------------

bool parseSchedule(std::string_view text, Schedule &out, std::string &error) {
  if (text == "forward" || text == "reverse") {
    out = {text == "forward" ? Order::Forward : Order::Reverse, 0};
    return true;
  }
  constexpr std::string_view random = "random:";
  if (text.substr(0, random.size()) == random && text.size() > random.size() &&
      text.size() <= random.size() + 19) {
    uint64_t seed = 0;
    bool digits = true;
    for (char c : text.substr(random.size())) {
      digits &= c >= '0' && c <= '9';
      seed = seed * 10 + uint64_t(c - '0');
    }
    if (digits) {
      out = {Order::Random, seed};
      return true;
    }
  }
  error = "RWKV_CUDA_EMU_SCHEDULE='" + std::string(text) +
          "': use forward, reverse or random:SEED (SEED a decimal integer)";
  return false;
}

bool scheduleFromEnvironment(Schedule &out, std::string &error) {
  const char *env = std::getenv("RWKV_CUDA_EMU_SCHEDULE");
  if (!env || !*env) {
    out = Schedule();
    return true;
  }
  return parseSchedule(env, out, error);
}

std::string toString(const Schedule &schedule) {
  switch (schedule.order) {
  case Order::Forward:
    return "forward";
  case Order::Reverse:
    return "reverse";
  case Order::Random:
    return "random:" + std::to_string(schedule.seed);
  }
  return "?";
}

namespace {

/// splitmix64: the schedule's random numbers.
uint64_t mix(uint64_t &state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

enum class State : uint8_t { Ready, Running, Barrier, Warp, Done, Failed };

class Worker;

/// One emulated thread.
struct Fiber {
  Worker *worker = nullptr;
  unsigned tid = 0; // linear index in the block
  Context ctx;
  Stack stack;
  void *tsan = nullptr;      // its ThreadSanitizer fiber
  void *fakeStack = nullptr; // AddressSanitizer's, while switched out
  bool started = false;      // its context runs fiberMain's loop
  bool dirty = false;        // abandoned mid-run by a failed block
  rwkv_emu_thread thread{};
  State state = State::Done;
  // While State::Barrier or State::Warp: the call it waits in.
  const char *file = "";
  int line = 0;
  const rwkv_emu_warp_op *op = nullptr;
  const void *in = nullptr;
  void *out = nullptr;
  std::string failure; // State::Failed
  char name[64] = {};  // TSan's name for it
};

/// A warp collective some lanes of a warp wait in.
struct WarpGroup {
  uint32_t mask = 0, arrived = 0;
  const Fiber *first = nullptr; // its call defines the group
  char sync = 0;                // TSan: __syncwarp's happens-before, per slot
};

/// A warp's collectives in progress: a slot for each of the (disjoint)
/// masks it can wait in at once.
struct Warp {
  std::array<WarpGroup, 32> groups;
  uint32_t active = 0; // the slots in use
  unsigned next = 0;   // where to look for a free one
};

/// A static shared array of the running block.
struct SharedArray {
  const void *key;
  size_t offset, bytes;
};

constexpr size_t kRedzone = 64; // poisoned under ASan
constexpr size_t kMaxSharedArrays = 64;
constexpr size_t kMaxSharedAlign = 128;

/// ThreadSanitizer: what the scheduler does on a fiber's stack (its
/// bookkeeping, its allocations) is no access of that thread.
struct Untracked {
  Untracked() { san::ignoreBegin(); }
  ~Untracked() { san::ignoreEnd(); }
  Untracked(const Untracked &) = delete;
  Untracked &operator=(const Untracked &) = delete;
};

bool sameSite(const char *fileA, int lineA, const char *fileB, int lineB) {
  return lineA == lineB && (fileA == fileB || std::strcmp(fileA, fileB) == 0);
}

class Worker : public rwkv_emu_worker {
public:
  Worker();
  ~Worker();
  bool run(const LaunchParams &launch, std::string &report);

  // The API of rwkv_cuda_emu_abi.h, called by the running fiber.
  void syncthreads(const char *file, int line);
  void warpOp(const rwkv_emu_warp_op *op, const void *in, void *out);
  void *sharedArray(const void *key, size_t bytes, size_t align,
                    const char *file, int line);
  void *dynamicShared() { return arena_; }
  void *allocateShared(const void *key, size_t bytes, size_t align,
                       const char *file, int line, std::string &error);
  [[noreturn]] void fail(std::string message);

private:
  bool prepare(std::string &report);
  bool runBlock(unsigned linear, std::string &report);
  void resume(Fiber &f);
  void yield(Fiber &f);
  static void fiberMain(void *arg);
  void makeReady(Fiber &f) {
    f.state = State::Ready;
    ready_.push_back(&f);
  }
  void releaseInOrder(Fiber *const *fibers, size_t n);
  Fiber &pickReady();
  std::string arriveBarrier(Fiber &f);
  std::string arriveWarp(Fiber &f, WarpGroup *&group);
  unsigned warpLanes(unsigned warp) const {
    return nthreads_ - warp * 32 < 32 ? nthreads_ - warp * 32 : 32;
  }
  std::string where() const;
  std::string waitsIn(const Fiber &f) const;
  std::string threads(const std::vector<unsigned> &tids) const;
  std::string missing(const std::vector<const Fiber *> &fibers) const;
  std::string deadlock() const;

  size_t stackBytes_;
  std::vector<std::unique_ptr<Fiber>> fibers_;
  Context host_;
  void *hostTsan_ = nullptr;
  void *hostFakeStack_ = nullptr;
  const void *hostStackBottom_ = nullptr;
  size_t hostStackSize_ = 0;
  Fiber *running_ = nullptr;

  // The launch and the block being run.
  const LaunchParams *launch_ = nullptr;
  unsigned nthreads_ = 0;
  rwkv_emu_uint3 blockIdx_{};
  std::deque<Fiber *> ready_;
  uint64_t rng_ = 0;
  unsigned done_ = 0;
  std::string failure_;
  // __syncthreads: the threads at the barrier and the first one's site.
  unsigned barrierArrived_ = 0;
  const Fiber *barrierFirst_ = nullptr;
  unsigned barrierGen_ = 0;
  std::vector<Warp> warps_;
  std::vector<Fiber *> all_; // the block's threads, in order
  // Shared memory: [dynamic][redzone][array][redzone][array]...
  char *arena_ = nullptr;
  size_t arenaBytes_ = 0, cursor_ = 0, staticBytes_ = 0;
  std::vector<SharedArray> shared_;
  // ThreadSanitizer synchronization objects (only their addresses matter).
  char blockStartSync_ = 0, yieldSync_ = 0, barrierSync_[2] = {};
};

// The emulator's side of rwkv_emu_api.
Worker &self(rwkv_emu_worker *w) { return *static_cast<Worker *>(w); }
void apiSyncthreads(rwkv_emu_worker *w, const char *file, int line) {
  self(w).syncthreads(file, line);
}
void apiWarpOp(rwkv_emu_worker *w, const rwkv_emu_warp_op *op, const void *in,
               void *out) {
  self(w).warpOp(op, in, out);
}
void *apiSharedArray(rwkv_emu_worker *w, const void *key, size_t bytes,
                     size_t align, const char *file, int line) {
  return self(w).sharedArray(key, bytes, align, file, line);
}
void *apiDynamicShared(rwkv_emu_worker *w) { return self(w).dynamicShared(); }
void apiTrap(rwkv_emu_worker *w, const char *file, int line,
             const char *message) {
  std::string text;
  {
    Untracked untracked;
    text = format("%s at %s:%d", message, file, line);
  }
  self(w).fail(std::move(text));
}
const rwkv_emu_api kApi = {RWKV_EMU_ABI_VERSION, apiSyncthreads,   apiWarpOp,
                           apiSharedArray,       apiDynamicShared, apiTrap};

Worker::Worker() {
  api = &kApi;
  current = nullptr;
  stackBytes_ = san::defaultStackBytes();
  if (const char *env = std::getenv("RWKV_CUDA_EMU_STACK_KIB"))
    if (long kib = std::atol(env); kib >= 16)
      stackBytes_ = size_t(kib) * 1024;
}

Worker::~Worker() {
  for (auto &f : fibers_)
    if (f->tsan)
      san::destroyFiber(f->tsan);
  std::free(arena_);
}

// --- Host side: the scheduling loop -----------------------------------------

bool Worker::prepare(std::string &report) {
  const LaunchParams &l = *launch_;
  while (fibers_.size() < nthreads_) {
    auto f = std::make_unique<Fiber>();
    if (!f->stack.allocate(stackBytes_)) {
      report = format("cannot map a %zu KiB stack for emulated thread %zu",
                      stackBytes_ / 1024, fibers_.size());
      return false;
    }
    f->worker = this;
    f->tid = unsigned(fibers_.size());
    f->tsan = san::createFiber();
    fibers_.push_back(std::move(f));
  }
  size_t dynamic = (l.dynamicSharedBytes + 15) / 16 * 16;
  size_t need = dynamic + kRedzone + kMaxStaticSharedBytes +
                kMaxSharedArrays * (kMaxSharedAlign + kRedzone);
  need = (need + kMaxSharedAlign - 1) / kMaxSharedAlign * kMaxSharedAlign;
  if (need > arenaBytes_) {
    std::free(arena_);
    arena_ = static_cast<char *>(std::aligned_alloc(kMaxSharedAlign, need));
    arenaBytes_ = arena_ ? need : 0;
    if (!arena_) {
      report = format("cannot allocate %zu bytes of shared memory", need);
      return false;
    }
  }
  unsigned nwarps = (nthreads_ + 31) / 32;
  warps_.assign(nwarps, {});
  all_.resize(nthreads_);
  hostTsan_ = san::currentFiber();
  return true;
}

bool Worker::run(const LaunchParams &launch, std::string &report) {
  const Dim3 &g = launch.grid, &b = launch.block;
  uint64_t threads = uint64_t(b.x) * b.y * b.z;
  uint64_t blocks = uint64_t(g.x) * g.y * g.z;
  const char *name = launch.kernel ? launch.kernel->name : "?";
  if (!launch.kernel || threads == 0 || blocks == 0 ||
      threads > kMaxThreadsPerBlock || blocks > (1ull << 32) - 1) {
    report = format("kernel '%s': cannot launch grid (%u,%u,%u) of blocks "
                    "(%u,%u,%u): a block has 1 to %u threads",
                    name, g.x, g.y, g.z, b.x, b.y, b.z, kMaxThreadsPerBlock);
    return false;
  }
  if (launch.dynamicSharedBytes > launch.sharedLimitBytes ||
      launch.sharedLimitBytes > kMaxSharedBytesPerBlock) {
    report = format("kernel '%s': %zu bytes of dynamic shared memory (at "
                    "most %zu)",
                    name, launch.dynamicSharedBytes, launch.sharedLimitBytes);
    return false;
  }
  FloatEnvironment environment;
  launch_ = &launch;
  nthreads_ = unsigned(threads);
  if (!prepare(report))
    return false;

  std::vector<unsigned> order(blocks);
  for (unsigned i = 0; i < blocks; ++i)
    order[i] =
        launch.schedule.order == Order::Reverse ? unsigned(blocks) - 1 - i : i;
  if (launch.schedule.order == Order::Random) {
    uint64_t state = launch.schedule.seed ^ (launch.launchIndex << 32);
    for (size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[mix(state) % i]);
  }
  for (unsigned linear : order)
    if (!runBlock(linear, report))
      return false;
  return true;
}

bool Worker::runBlock(unsigned linear, std::string &report) {
  const LaunchParams &l = *launch_;
  blockIdx_ = {linear % l.grid.x, linear / l.grid.x % l.grid.y,
               linear / l.grid.x / l.grid.y};
  rng_ = l.schedule.seed ^ (l.launchIndex << 32) ^ (uint64_t(linear) << 1);
  done_ = 0;
  failure_.clear();
  barrierArrived_ = 0;
  barrierFirst_ = nullptr;
  for (Warp &w : warps_)
    w.active = 0;

  // Shared memory: the dynamic part poisoned, the rest unaddressable (ASan)
  // until a static array is carved out of it.
  size_t dynamic = (l.dynamicSharedBytes + 15) / 16 * 16;
  san::unpoison(arena_, arenaBytes_);
  san::ignoreBegin();
  std::memset(arena_, 0xff, dynamic);
  san::ignoreEnd();
  san::poison(arena_ + l.dynamicSharedBytes,
              arenaBytes_ - l.dynamicSharedBytes);
  cursor_ = dynamic + kRedzone;
  staticBytes_ = 0;
  shared_.clear();

  ready_.clear();
  for (unsigned t = 0; t < nthreads_; ++t) {
    Fiber &f = *fibers_[t];
    if (f.dirty) { // the sanitizers' state of its abandoned frames
      san::unpoison(f.stack.low(), f.stack.size());
      if (f.tsan) {
        san::destroyFiber(f.tsan);
        f.tsan = san::createFiber();
      }
      f.started = false;
      f.dirty = false;
    }
    f.thread = {
        {t % l.block.x, t / l.block.x % l.block.y, t / l.block.x / l.block.y},
        blockIdx_,
        {l.block.x, l.block.y, l.block.z},
        {l.grid.x, l.grid.y, l.grid.z}};
    if (f.tsan) { // names for ThreadSanitizer's reports
      std::snprintf(f.name, sizeof f.name, "thread %u of block (%u,%u,%u)", t,
                    blockIdx_.x, blockIdx_.y, blockIdx_.z);
      san::setFiberName(f.tsan, f.name);
    }
    if (!f.started) // a new one, or one a failed block abandoned
      makeContext(f.ctx, f.stack, &Worker::fiberMain, &f);
    f.started = true;
    all_[t] = &f;
  }
  releaseInOrder(all_.data(), nthreads_);
  san::release(&blockStartSync_);

  bool ok = true;
  while (ok && !ready_.empty()) {
    Fiber &f = pickReady();
    resume(f);
    // The fiber did its own bookkeeping (Fiber side, below) before it
    // switched back: it waits, was released already, finished or failed.
    if (f.state == State::Done) {
      ++done_;
    } else if (f.state == State::Failed) {
      failure_ = f.failure;
      ok = false;
    }
  }
  // Every fiber released yieldSync_ when it last switched out: the next
  // block's accesses (through blockStartSync_) come after all of its.
  san::acquire(&yieldSync_);
  if (ok && done_ == nthreads_)
    return true;
  if (ok)
    failure_ = deadlock();
  for (unsigned t = 0; t < nthreads_; ++t)
    fibers_[t]->dirty = fibers_[t]->state != State::Done;
  report = where() + failure_;
  return false;
}

void Worker::releaseInOrder(Fiber *const *fibers, size_t n) {
  if (launch_->schedule.order == Order::Reverse)
    for (size_t i = n; i-- > 0;)
      makeReady(*fibers[i]);
  else
    for (size_t i = 0; i < n; ++i)
      makeReady(*fibers[i]);
}

Fiber &Worker::pickReady() {
  Fiber *f;
  if (launch_->schedule.order == Order::Random) {
    size_t i = mix(rng_) % ready_.size();
    f = ready_[i];
    ready_[i] = ready_.back();
    ready_.pop_back();
  } else {
    f = ready_.front();
    ready_.pop_front();
  }
  return *f;
}

void Worker::resume(Fiber &f) {
  running_ = &f;
  current = &f.thread;
  f.state = State::Running;
  san::switchToFiber(f.tsan);
  san::startSwitch(&hostFakeStack_, f.stack.low(), f.stack.size());
  switchContext(host_, f.ctx);
  san::finishSwitch(hostFakeStack_, nullptr, nullptr);
  running_ = nullptr;
}

// --- Fiber side
// ---------------------------------------------------------------
//
// A fiber that calls a collective records the call, joins the barrier or
// its warp's group (the last to arrive computes the result and releases
// everyone, in schedule order) and switches back to the scheduler.

std::string Worker::arriveBarrier(Fiber &f) {
  if (barrierArrived_ &&
      !sameSite(f.file, f.line, barrierFirst_->file, barrierFirst_->line)) {
    std::vector<unsigned> waiting;
    for (unsigned t = 0; t < nthreads_; ++t)
      if (fibers_[t]->state == State::Barrier && fibers_[t].get() != &f)
        waiting.push_back(t);
    return format("divergent __syncthreads: thread %u reached the one at "
                  "%s:%d while %s wait at %s:%d (every thread of a block "
                  "must reach the same __syncthreads)",
                  f.tid, f.file, f.line, threads(waiting).c_str(),
                  barrierFirst_->file, barrierFirst_->line);
  }
  if (barrierArrived_++ == 0)
    barrierFirst_ = &f;
  if (barrierArrived_ < nthreads_)
    return "";
  barrierArrived_ = 0;
  barrierFirst_ = nullptr;
  ++barrierGen_;
  releaseInOrder(all_.data(), nthreads_);
  return "";
}

std::string Worker::arriveWarp(Fiber &f, WarpGroup *&group) {
  const rwkv_emu_warp_op &op = *f.op;
  unsigned warp = f.tid / 32, lane = f.tid % 32, base = warp * 32;
  std::string error = checkWarpOp(op, lane, warpLanes(warp));
  if (!error.empty())
    return format("warp %u (threads %u-%u): ", warp, base,
                  base + warpLanes(warp) - 1) +
           error + format(" at %s:%d", f.file, f.line);
  Warp &w = warps_[warp];
  group = nullptr;
  for (uint32_t slots = w.active; slots; slots &= slots - 1) {
    WarpGroup &g = w.groups[__builtin_ctz(slots)];
    if (!(g.mask & op.mask))
      continue;
    const rwkv_emu_warp_op &first = *g.first->op;
    if (g.mask != op.mask || first.kind != op.kind || first.width != op.width ||
        first.bytes != op.bytes ||
        !sameSite(f.file, f.line, g.first->file, g.first->line)) {
      std::vector<unsigned> lanes;
      for (unsigned l = 0; l < 32; ++l)
        if (g.arrived >> l & 1)
          lanes.push_back(l);
      return format("warp %u: lane %u calls %s(mask 0x%08x) at %s:%d "
                    "while lanes %s wait in %s(mask 0x%08x) at %s:%d "
                    "(the lanes of a mask must meet in the same "
                    "collective)",
                    warp, lane, op.name, op.mask, f.file, f.line,
                    ranges(lanes).c_str(), first.name, g.mask, g.first->file,
                    g.first->line);
    }
    group = &g; // the groups of a warp have disjoint masks
    break;
  }
  if (!group) { // a free slot (one is: the active masks are disjoint)
    while (w.active >> (w.next % 32) & 1)
      ++w.next;
    w.active |= 1u << (w.next % 32);
    group = &w.groups[w.next++ % 32];
    group->mask = op.mask;
    group->arrived = 0;
    group->first = &f;
  }
  group->arrived |= 1u << lane;
  if (group->arrived != group->mask)
    return "";

  // Every lane of the mask is here: compute, then release them.
  LaneIO io[32];
  Fiber *lanes[32];
  size_t n = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (group->mask >> l & 1) {
      Fiber &g = *all_[base + l];
      io[l] = {g.in, g.out, g.op->arg};
      lanes[n++] = &g;
    }
  error = completeWarpOp(*group->first->op, group->mask, io);
  w.active &= ~(1u << (group - w.groups.data()));
  if (!error.empty())
    return format("warp %u: ", warp) + error +
           format(" at %s:%d", group->first->file, group->first->line);
  releaseInOrder(lanes, n);
  return "";
}

/// A fiber runs thread f.tid of every block it is resumed for: the kernel,
/// then it waits for the next block.
void Worker::fiberMain(void *arg) {
  Fiber &f = *static_cast<Fiber *>(arg);
  Worker &w = *f.worker;
  san::finishSwitch(nullptr, &w.hostStackBottom_, &w.hostStackSize_);
  for (;;) {
    san::acquire(&w.blockStartSync_);
    w.launch_->kernel->thunk(&w, w.launch_->params);
    f.state = State::Done;
    w.yield(f);
  }
}

void Worker::yield(Fiber &f) {
  san::release(&yieldSync_);
  san::switchToFiber(hostTsan_);
  san::startSwitch(&f.fakeStack, hostStackBottom_, hostStackSize_);
  switchContext(f.ctx, host_);
  san::finishSwitch(f.fakeStack, &hostStackBottom_, &hostStackSize_);
}

void Worker::syncthreads(const char *file, int line) {
  Fiber &f = *running_;
  f.state = State::Barrier;
  f.file = file;
  f.line = line;
  unsigned gen = barrierGen_;
  san::release(&barrierSync_[gen & 1]);
  std::string error;
  {
    Untracked untracked;
    error = arriveBarrier(f);
  }
  if (!error.empty())
    fail(std::move(error));
  yield(f);
  san::acquire(&barrierSync_[gen & 1]);
}

void Worker::warpOp(const rwkv_emu_warp_op *op, const void *in, void *out) {
  Fiber &f = *running_;
  f.state = State::Warp;
  f.file = op->file;
  f.line = op->line;
  f.op = op;
  f.in = in;
  f.out = out;
  WarpGroup *group = nullptr;
  std::string error;
  {
    Untracked untracked;
    error = arriveWarp(f, group);
  }
  if (!error.empty())
    fail(std::move(error));
  // The slot's object may carry a later group's edges too by the time a
  // lane acquires it: more order than CUDA's, never less.
  if (op->kind == RWKV_EMU_SYNCWARP)
    san::release(&group->sync);
  yield(f);
  if (op->kind == RWKV_EMU_SYNCWARP)
    san::acquire(&group->sync);
}

void *Worker::sharedArray(const void *key, size_t bytes, size_t align,
                          const char *file, int line) {
  std::string error;
  void *p = allocateShared(key, bytes, align, file, line, error);
  if (!p)
    fail(std::move(error));
  return p;
}

void *Worker::allocateShared(const void *key, size_t bytes, size_t align,
                             const char *file, int line, std::string &error) {
  Untracked untracked;
  for (const SharedArray &a : shared_)
    if (a.key == key) {
      if (a.bytes != bytes) {
        error = format("the shared array declared at %s:%d has %zu bytes in "
                       "this thread and %zu in another",
                       file, line, bytes, a.bytes);
        return nullptr;
      }
      return arena_ + a.offset;
    }
  if (staticBytes_ + bytes > kMaxStaticSharedBytes) {
    error = format("the shared array declared at %s:%d (%zu bytes) takes the "
                   "block's static shared memory past 48 KiB (CUDA's limit)",
                   file, line, bytes);
    return nullptr;
  }
  if (staticBytes_ + bytes + launch_->dynamicSharedBytes >
      launch_->sharedLimitBytes) {
    error = format("the shared array declared at %s:%d (%zu bytes) takes the "
                   "block's shared memory (static and dynamic) past the "
                   "device's %zu bytes",
                   file, line, bytes, launch_->sharedLimitBytes);
    return nullptr;
  }
  if (shared_.size() == kMaxSharedArrays || align > kMaxSharedAlign ||
      (align & (align - 1))) {
    error = format("the shared array declared at %s:%d: more than %zu arrays "
                   "or an alignment of %zu",
                   file, line, kMaxSharedArrays, align);
    return nullptr;
  }
  size_t offset = (cursor_ + align - 1) / align * align;
  char *p = arena_ + offset;
  san::unpoison(p, bytes);
  std::memset(p, 0xff, bytes);
  cursor_ = offset + bytes + kRedzone;
  staticBytes_ += bytes;
  shared_.push_back({key, offset, bytes});
  return p;
}

void Worker::fail(std::string message) {
  Fiber &f = *running_;
  // Nothing that owns memory may stay on the stack of a fiber that is
  // never resumed (a moved-to string may hold the old buffer).
  {
    Untracked untracked;
    f.failure.swap(message);
    std::string().swap(message);
  }
  f.state = State::Failed;
  yield(f);
  std::abort(); // a failed fiber is never resumed
}

// --- Reports
// ------------------------------------------------------------------

std::string Worker::where() const {
  const LaunchParams &l = *launch_;
  std::string s =
      format("kernel '%s', block (%u,%u,%u) of grid (%u,%u,%u), "
             "%u threads (%u,%u,%u)",
             l.kernel->name, blockIdx_.x, blockIdx_.y, blockIdx_.z, l.grid.x,
             l.grid.y, l.grid.z, nthreads_, l.block.x, l.block.y, l.block.z);
  if (l.block.y > 1 || l.block.z > 1)
    s += " (numbered x + y*blockDim.x + z*blockDim.x*blockDim.y)";
  return s + ", schedule " + toString(l.schedule) + ": ";
}

std::string Worker::threads(const std::vector<unsigned> &tids) const {
  return (tids.size() == 1 ? "thread " : "threads ") + ranges(tids);
}

std::string Worker::waitsIn(const Fiber &f) const {
  switch (f.state) {
  case State::Done:
    return "exited";
  case State::Barrier:
    return format("wait in __syncthreads at %s:%d", f.file, f.line);
  case State::Warp:
    return format("wait in %s(mask 0x%08x) at %s:%d", f.op->name, f.op->mask,
                  f.file, f.line);
  default:
    return "run";
  }
}

/// "threads 32-63 exited; thread 5 waits in ...": the fibers grouped by
/// what they do.
std::string Worker::missing(const std::vector<const Fiber *> &fibers) const {
  std::vector<std::pair<std::string, std::vector<unsigned>>> byWait;
  for (const Fiber *f : fibers) {
    std::string w = waitsIn(*f);
    auto it = byWait.begin();
    while (it != byWait.end() && it->first != w)
      ++it;
    if (it == byWait.end())
      it = byWait.insert(it, {w, {}});
    it->second.push_back(f->tid);
  }
  std::string s;
  for (auto &[wait, tids] : byWait)
    s += (s.empty() ? "" : "; ") + threads(tids) + " " + wait;
  return s;
}

std::string Worker::deadlock() const {
  std::string s = "deadlock: no thread can go on";
  if (barrierArrived_) {
    std::vector<unsigned> waiting;
    std::vector<const Fiber *> others;
    for (unsigned t = 0; t < nthreads_; ++t)
      if (fibers_[t]->state == State::Barrier)
        waiting.push_back(t);
      else
        others.push_back(fibers_[t].get());
    s += format("\n  __syncthreads at %s:%d: %s wait; never arriving: ",
                barrierFirst_->file, barrierFirst_->line,
                threads(waiting).c_str()) +
         missing(others);
  }
  for (unsigned warp = 0; warp < warps_.size(); ++warp)
    for (uint32_t slots = warps_[warp].active; slots; slots &= slots - 1) {
      const WarpGroup &g = warps_[warp].groups[__builtin_ctz(slots)];
      std::vector<unsigned> lanes;
      std::vector<const Fiber *> others;
      for (unsigned l = 0; l < 32; ++l)
        if (g.arrived >> l & 1)
          lanes.push_back(l);
        else if (g.mask >> l & 1)
          others.push_back(fibers_[warp * 32 + l].get());
      s += format("\n  warp %u, %s(mask 0x%08x) at %s:%d: lanes %s wait; "
                  "never arriving: ",
                  warp, g.first->op->name, g.mask, g.first->file, g.first->line,
                  ranges(lanes).c_str()) +
           missing(others);
    }
  return s;
}

} // namespace

bool runGrid(const LaunchParams &launch, std::string &report) {
  thread_local std::unique_ptr<Worker> worker;
  if (!worker)
    worker = std::make_unique<Worker>();
  return worker->run(launch, report);
}

} // namespace rwkv_emu
