//===- rwkv_threads.cpp - Threads of the generated code --------------------===//
//
// The generated code splits its large products (rows) and recurrences
// (heads) across threads through OpenMP (rwkv-loops-to-llvm: scf.parallel
// -> omp.parallel + omp.wsloop, libomp's __kmpc_fork_call). The count is
// the process's: rwkv_set_threads stores it, and every evaluation applies it
// to its calling thread (OpenMP keeps the count per thread) before it calls
// the generated code. A model without threaded ops is not linked with
// libomp, and the weak references below are then null.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <atomic>
#include <sched.h>
#include <unistd.h>

extern "C" {
void omp_set_num_threads(int n) __attribute__((weak));
int omp_get_max_threads(void) __attribute__((weak));
}

namespace {
/// The requested count; 0 until rwkv_set_threads (the machine's cores).
std::atomic<int> requested{0};
/// This thread's count as last given to OpenMP (0: never).
thread_local int applied = 0;

/// The cores this process may run on (its affinity mask: a container or
/// `taskset` may allow fewer than are online), else the online ones.
int machineCores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}
} // namespace

int rwkv_set_threads(int n) {
  if (n < 0)
    return RWKV_ERROR_ARGUMENT;
  requested.store(n, std::memory_order_relaxed);
  return RWKV_OK;
}

int rwkv_get_threads(void) {
  int n = requested.load(std::memory_order_relaxed);
  return n > 0 ? n : machineCores();
}

void rwkv_internal::applyThreads() {
  if (!omp_set_num_threads)
    return;
  int n = rwkv_get_threads();
  if (n != applied) {
    omp_set_num_threads(n);
    applied = n;
  }
}
