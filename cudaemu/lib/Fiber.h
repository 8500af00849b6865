//===- Fiber.h - Stacks and context switches for emulated threads -*- C++
//-*-===//
//
// The fiber layer of the CUDA emulator: mmap'd stacks with a guard page, a
// hand-written x86-64 context switch (the callee-saved registers: 16
// instructions, no system call), and the
// sanitizer annotations a switch needs:
//
//   AddressSanitizer  __sanitizer_start_switch_fiber / _finish_switch_fiber,
//                     when this file is built with -fsanitize=address
//   ThreadSanitizer   __tsan_create_fiber / __tsan_switch_to_fiber (no_sync)
//                     and __tsan_release / __tsan_acquire, when built with
//                     RWKV_EMU_TSAN: the scheduler itself is NOT instrumented
//                     (its bookkeeping is shared by all fibers by design);
//                     only the kernels are, and the happens-before edges the
//                     scheduler declares are exactly CUDA's barriers.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDAEMU_FIBER_H
#define RWKV_CUDAEMU_FIBER_H

#include <cstddef>

#if !defined(__x86_64__)
#error "cudaemu: the fiber context switch is written for x86-64 only"
#endif

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RWKV_EMU_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#error "cudaemu/lib is built without -fsanitize=thread, with RWKV_EMU_TSAN"
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(RWKV_EMU_ASAN)
#define RWKV_EMU_ASAN 1
#endif

namespace rwkv_emu {

/// A saved machine context: the stack pointer of a suspended switch.
struct Context {
  void *sp = nullptr;
};

/// An mmap'd stack with a PROT_NONE guard page below it.
class Stack {
public:
  Stack() = default;
  Stack(const Stack &) = delete;
  Stack &operator=(const Stack &) = delete;
  ~Stack();
  /// Maps `bytes` (rounded up to pages) plus the guard page; false when the
  /// mapping fails.
  bool allocate(size_t bytes);
  char *low() const { return base_ + guard_; }
  size_t size() const { return size_; }

private:
  char *base_ = nullptr;
  size_t guard_ = 0, size_ = 0;
};

/// Prepares `ctx` so that the next switch to it runs entry(arg) on `stack`.
/// entry must never return.
void makeContext(Context &ctx, const Stack &stack, void (*entry)(void *),
                 void *arg);

/// Saves the running context in `from` and continues `to`. The floating-
/// point control state is not switched (FloatEnvironment).
void switchContext(Context &from, const Context &to);

/// While it lives, the calling thread (and every fiber it runs) computes in
/// the default floating-point environment of a GPU: round to nearest, no
/// flush to zero, exceptions masked. Restores the thread's own on exit.
class FloatEnvironment {
public:
  FloatEnvironment();
  ~FloatEnvironment();
  FloatEnvironment(const FloatEnvironment &) = delete;
  FloatEnvironment &operator=(const FloatEnvironment &) = delete;

private:
  unsigned mxcsr_ = 0;
  unsigned short x87_ = 0;
};

// --- Sanitizer annotations (no-ops in other builds) ------------------------
namespace san {
/// ASan: before a switch to the stack [bottom, bottom+size); `fakeStack`
/// saves the leaving context's fake stack (nullptr: it never resumes).
void startSwitch(void **fakeStack, const void *bottom, size_t size);
/// ASan: first thing after a switch; reports the previous stack's bounds.
void finishSwitch(void *fakeStack, const void **oldBottom, size_t *oldSize);
/// ASan: clears the poison a fiber abandoned mid-run left on its stack.
void unpoison(const void *p, size_t size);
/// ASan: marks [p, p+size) unaddressable (shared-memory redzones).
void poison(const void *p, size_t size);

/// TSan fibers: the OS thread's own, a new one, one to destroy.
void *currentFiber();
void *createFiber();
void destroyFiber(void *fiber);
void setFiberName(void *fiber, const char *name);
/// TSan: switches the race detector's notion of the running thread,
/// without a happens-before edge.
void switchToFiber(void *fiber);
/// TSan happens-before: everything before release(a) happens before
/// everything after a later acquire(a).
void release(const void *addr);
void acquire(const void *addr);
/// TSan: the calling fiber's accesses until ignoreEnd() are not recorded,
/// those of libc functions included (the scheduler's poisoning of shared
/// memory and its copies between lanes are no accesses of a thread).
void ignoreBegin();
void ignoreEnd();

/// The default stack size of an emulated thread: 64 KiB, 256 KiB under a
/// sanitizer (whose reports run on the fiber's stack).
size_t defaultStackBytes();
} // namespace san

} // namespace rwkv_emu

#endif // RWKV_CUDAEMU_FIBER_H
