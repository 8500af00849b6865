//===- Fiber.cpp - Stacks and context switches for emulated threads -------===//
//
// See Fiber.h. The switch saves the callee-saved registers on the leaving
// stack and pops them from the entered one:
//
//   sp -> r15 r14 r13 r12 rbx rbp [return address]
//
// The floating-point control state (MXCSR, the x87 control word) is
// callee-saved too, but nothing in a kernel changes it: FloatEnvironment
// sets it once around a launch instead (saving it cost half of a switch).
// A new context is that frame written by hand, its return address the
// trampoline, r12 = arg and r13 = entry; rbp = 0 ends frame-pointer unwinds.
//
//===----------------------------------------------------------------------===//

#include "Fiber.h"

#include <cstdint>
#include <cstdlib>
#include <sys/mman.h>
#include <unistd.h>

extern "C" {
void rwkv_emu_switch_context(void **saveSp, void *newSp);
void rwkv_emu_fiber_trampoline();
}

asm(R"(
  .text
  .p2align 4
  .globl rwkv_emu_switch_context
  .hidden rwkv_emu_switch_context
  .type rwkv_emu_switch_context,@function
rwkv_emu_switch_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size rwkv_emu_switch_context, .-rwkv_emu_switch_context

  .p2align 4
  .globl rwkv_emu_fiber_trampoline
  .hidden rwkv_emu_fiber_trampoline
  .type rwkv_emu_fiber_trampoline,@function
rwkv_emu_fiber_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  callq *%r13
  ud2
  .cfi_endproc
  .size rwkv_emu_fiber_trampoline, .-rwkv_emu_fiber_trampoline
)");

#ifdef RWKV_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef RWKV_EMU_TSAN
#include <sanitizer/tsan_interface.h>
extern "C" {
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
}
#endif

namespace rwkv_emu {

Stack::~Stack() {
  if (base_)
    munmap(base_, guard_ + size_);
}

bool Stack::allocate(size_t bytes) {
  size_t page = size_t(sysconf(_SC_PAGESIZE));
  size_t size = (bytes + page - 1) / page * page;
  void *p =
      mmap(nullptr, page + size, PROT_READ | PROT_WRITE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED)
    return false;
  if (mprotect(p, page, PROT_NONE) != 0) {
    munmap(p, page + size);
    return false;
  }
  base_ = static_cast<char *>(p);
  guard_ = page;
  size_ = size;
  return true;
}

void makeContext(Context &ctx, const Stack &stack, void (*entry)(void *),
                 void *arg) {
  // 16 bytes of slack at the top; after the switch's `ret` the stack
  // pointer is 16-byte aligned, as the trampoline's call expects.
  auto top = reinterpret_cast<uintptr_t>(stack.low() + stack.size()) & ~15ul;
  auto *frame = reinterpret_cast<uint64_t *>(top - 16 - 56);
  frame[0] = 0;                                 // r15
  frame[1] = 0;                                 // r14
  frame[2] = reinterpret_cast<uint64_t>(entry); // r13
  frame[3] = reinterpret_cast<uint64_t>(arg);   // r12
  frame[4] = 0;                                 // rbx
  frame[5] = 0;                                 // rbp
  frame[6] = reinterpret_cast<uint64_t>(&rwkv_emu_fiber_trampoline);
  ctx.sp = frame;
}

void switchContext(Context &from, const Context &to) {
  rwkv_emu_switch_context(&from.sp, to.sp);
}

FloatEnvironment::FloatEnvironment() {
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr_), "=m"(x87_));
  const uint32_t mxcsr = 0x1f80; // all exceptions masked, nearest, no FTZ
  const uint16_t x87 = 0x037f;
  asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(x87));
}

FloatEnvironment::~FloatEnvironment() {
  asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr_), "m"(x87_));
}

namespace san {
#ifdef RWKV_EMU_ASAN
void startSwitch(void **fakeStack, const void *bottom, size_t size) {
  __sanitizer_start_switch_fiber(fakeStack, bottom, size);
}
void finishSwitch(void *fakeStack, const void **oldBottom, size_t *oldSize) {
  __sanitizer_finish_switch_fiber(fakeStack, oldBottom, oldSize);
}
void unpoison(const void *p, size_t size) {
  __asan_unpoison_memory_region(p, size);
}
void poison(const void *p, size_t size) {
  __asan_poison_memory_region(p, size);
}
#else
void startSwitch(void **, const void *, size_t) {}
void finishSwitch(void *, const void **, size_t *) {}
void unpoison(const void *, size_t) {}
void poison(const void *, size_t) {}
#endif

#ifdef RWKV_EMU_TSAN
void *currentFiber() { return __tsan_get_current_fiber(); }
void *createFiber() { return __tsan_create_fiber(0); }
void destroyFiber(void *fiber) { __tsan_destroy_fiber(fiber); }
void setFiberName(void *fiber, const char *name) {
  __tsan_set_fiber_name(fiber, name);
}
void switchToFiber(void *fiber) {
  __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
}
void release(const void *addr) { __tsan_release(const_cast<void *>(addr)); }
void acquire(const void *addr) { __tsan_acquire(const_cast<void *>(addr)); }
void ignoreBegin() {
  AnnotateIgnoreReadsBegin(__FILE__, __LINE__);
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}
void ignoreEnd() {
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  AnnotateIgnoreReadsEnd(__FILE__, __LINE__);
}
#else
void *currentFiber() { return nullptr; }
void *createFiber() { return nullptr; }
void destroyFiber(void *) {}
void setFiberName(void *, const char *) {}
void switchToFiber(void *) {}
void release(const void *) {}
void acquire(const void *) {}
void ignoreBegin() {}
void ignoreEnd() {}
#endif

size_t defaultStackBytes() {
#if defined(RWKV_EMU_ASAN) || defined(RWKV_EMU_TSAN)
  return 256 * 1024;
#else
  return 64 * 1024;
#endif
}
} // namespace san

} // namespace rwkv_emu
