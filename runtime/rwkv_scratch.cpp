//===- rwkv_scratch.cpp - Scratch memory of the generated code ------------===//
//
// The generated code takes its heap buffers from
// _mlir_memref_to_llvm_alloc and returns them with _mlir_memref_to_llvm_free
// (rwkv_abi.h). It has no null checks and no destructors, so a failed
// allocation cannot be returned to it. Instead the runtime calls it inside
// runGuarded:
//
//   runGuarded(body) ── setjmp ──▶ body ──▶ rwkv_model_forward_* ──▶ alloc
//          ▲                                                         │
//          └──────────── longjmp when malloc fails ◀─────────────────┘
//
// Every block handed out during the guarded call is linked into the
// guard's list (a header before the block, so tracking allocates nothing);
// after a longjmp the blocks still linked are the call's leftovers and are
// freed. Only the generated code's frames (no destructors) and body's lie
// between the longjmp and the setjmp.
//
//===----------------------------------------------------------------------===//

#include "rwkv_abi.h"
#include "rwkv_internal.h"

#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

/// The header of a block: its neighbours in the list of the guarded call
/// that took it (itself when taken outside one). 16 bytes, so the block
/// keeps malloc's alignment.
struct alignas(16) Block {
  Block *prev, *next;
};
static_assert(sizeof(Block) == 16, "a block keeps malloc's alignment");

/// The state of a guarded call. Thread-local and static (not an automatic
/// of runGuarded): what the call changes after setjmp is read back after
/// longjmp. Zero-initialized.
struct Guard {
  std::jmp_buf env;
  Block live;         // sentinel of the circular list of live blocks
  size_t failedBytes; // the request that failed (0: none)
  bool active;        // a guarded call is running on this thread
};
thread_local Guard guard;

void unlink(Block *b) {
  b->prev->next = b->next;
  b->next->prev = b->prev;
}

/// Unlinks every live block of the guard, freeing them when `release`;
/// blocks kept are linked to themselves (a later free unlinks nothing).
void drain(Guard &g, bool release) {
  for (Block *b = g.live.next; b != &g.live;) {
    Block *next = b->next;
    if (release) {
      std::free(b);
    } else {
      b->prev = b->next = b;
    }
    b = next;
  }
  g.live.prev = g.live.next = &g.live;
}

} // namespace

// Hidden: the code of a model links against its own runtime's functions,
// also when several models (shared libraries) share a process.
extern "C" __attribute__((visibility("hidden"))) void *
_mlir_memref_to_llvm_alloc(size_t size) {
  Guard &g = guard;
  Block *b = size <= SIZE_MAX - sizeof(Block)
                 ? static_cast<Block *>(std::malloc(sizeof(Block) + size))
                 : nullptr;
  if (!b) {
    if (g.active) {
      g.failedBytes = size ? size : 1;
      std::longjmp(g.env, 1);
    }
    std::fprintf(stderr,
                 "rwkv: out of memory: the model's code could not allocate "
                 "%zu bytes (a forward call made outside the runtime's "
                 "evaluation cannot report it)\n",
                 size);
    std::abort();
  }
  if (g.active) {
    b->prev = g.live.prev;
    b->next = &g.live;
    g.live.prev->next = b;
    g.live.prev = b;
  } else {
    b->prev = b->next = b;
  }
  return b + 1;
}

extern "C" __attribute__((visibility("hidden"))) void
_mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  Block *b = static_cast<Block *>(ptr) - 1;
  unlink(b);
  std::free(b);
}

namespace rwkv_internal {

// Not inlined: the setjmp stays in a frame of its own, whose automatics are
// not touched after it.
__attribute__((noinline)) size_t runGuarded(void (*body)(void *), void *arg) {
  Guard &g = guard;
  if (g.active) {
    // A guarded call within a guarded call (not done by the runtime): the
    // outer guard catches a failure.
    body(arg);
    return 0;
  }
  g.live.prev = g.live.next = &g.live;
  g.failedBytes = 0;
  g.active = true;
  if (setjmp(g.env) == 0)
    body(arg);
  g.active = false;
  // After a failure every block the call still held is its own to free;
  // after a normal return the generated code has freed its blocks, and any
  // it kept stay valid.
  drain(g, /*release=*/g.failedBytes != 0);
  return g.failedBytes;
}

} // namespace rwkv_internal
