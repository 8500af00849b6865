/* rwkv_dlsym.h: the C API of runtime/rwkv_runtime.h as function-pointer
 * types, for the benchmark programs of scripts/ that open a model's shared
 * library with dlopen (two builds of one model in one process cannot both
 * be linked), and the clock they time with. Included by its path from this
 * folder, so that each program still builds with one
 * `clang -O2 scripts/NAME.c -ldl`. */
#ifndef RWKV_SCRIPTS_DLSYM_H
#define RWKV_SCRIPTS_DLSYM_H

#include "../runtime/rwkv_runtime.h"

#include <time.h>

typedef __typeof__(&rwkv_model_open) open_fn;
typedef __typeof__(&rwkv_n_vocab) vocab_fn;
typedef __typeof__(&rwkv_state_size) state_size_fn;
typedef __typeof__(&rwkv_state_reset) reset_fn;
typedef __typeof__(&rwkv_eval) eval_fn;
typedef __typeof__(&rwkv_set_threads) threads_fn;
typedef __typeof__(&rwkv_state_new) state_new_fn;
typedef __typeof__(&rwkv_eval_batch) batch_fn;

/* Seconds on `clock` (CLOCK_MONOTONIC: wall time; CLOCK_THREAD_CPUTIME_ID,
 * CLOCK_PROCESS_CPUTIME_ID: CPU time). */
static inline double clock_seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

#endif
