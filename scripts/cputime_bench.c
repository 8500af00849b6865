/* cputime_bench.c: decode and prefill of a compiled model in wall and CPU
 * time, for a machine that other jobs share (where wall time also counts
 * the waits for a core).
 *
 *   build/bin/rwkvc MODEL -emit=shared-lib -o libm.so
 *   clang -O2 scripts/cputime_bench.c -ldl -o cputime_bench
 *   ./cputime_bench ./libm.so 48 1     # 48 tokens, --threads 1
 *
 * Through the C API (runtime/rwkv_runtime.h) of the library: after one
 * warm-up call each, N one-token RNN calls (each token the argmax of the
 * last logits, as --bench) and N tokens in sequence mode (the default chunk,
 * rwkv_default_chunk: 16, or 128 for a model of more than 64 MiB of weights).
 * Prints tokens/s over the wall time, decode tokens per CPU-second of the
 * calling thread (which does all of decode's work with one thread), prefill
 * tokens per CPU-second of the process (all threads), and the process's
 * CPU/wall ratio (1.0 per busy thread on an idle machine). */
#include "rwkv_dlsym.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s LIB.so N THREADS\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  int n = atoi(argv[2]), threads = atoi(argv[3]);
  open_fn open = (open_fn)dlsym(lib, "rwkv_model_open");
  vocab_fn vocab = (vocab_fn)dlsym(lib, "rwkv_n_vocab");
  state_size_fn stateSize = (state_size_fn)dlsym(lib, "rwkv_state_size");
  reset_fn reset = (reset_fn)dlsym(lib, "rwkv_state_reset");
  eval_fn eval = (eval_fn)dlsym(lib, "rwkv_eval");
  threads_fn setThreads = (threads_fn)dlsym(lib, "rwkv_set_threads");
  if (!open || !vocab || !stateSize || !reset || !eval || n < 1) {
    fprintf(stderr, "not a model library, or N < 1\n");
    return 1;
  }
  if (setThreads)
    setThreads(threads);
  else if (threads != 1)
    fprintf(stderr, "note: the library has no rwkv_set_threads\n");
  char err[512];
  rwkv_model *m = open(err, sizeof err);
  if (!m) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  size_t v = vocab(m);
  float *logits = malloc(v * sizeof *logits); /* (n_vocab) */
  float *state = malloc(stateSize(m));
  int32_t *ids = malloc(n * sizeof *ids); /* (n) */
  for (int i = 0; i < n; ++i)
    ids[i] = (int32_t)((i * 7919u) % v);

  int32_t tok = 0;
  reset(m, state);
  eval(m, state, &tok, 1, logits, 0, 0, err, sizeof err); /* warm-up */
  reset(m, state);
  double w0 = clock_seconds(CLOCK_MONOTONIC), p0 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID),
         t0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  for (int i = 0; i < n; ++i) {
    if (eval(m, state, &tok, 1, logits, 0, 0, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    size_t best = 0;
    for (size_t j = 1; j < v; ++j)
      if (logits[j] > logits[best])
        best = j;
    tok = (int32_t)best;
  }
  double w1 = clock_seconds(CLOCK_MONOTONIC), p1 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID),
         t1 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  reset(m, state);
  eval(m, state, ids, n < 64 ? n : 64, logits, 1, 0, err, sizeof err);
  reset(m, state);
  double w2 = clock_seconds(CLOCK_MONOTONIC), p2 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
  if (eval(m, state, ids, n, logits, 1, 0, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double w3 = clock_seconds(CLOCK_MONOTONIC), p3 = clock_seconds(CLOCK_PROCESS_CPUTIME_ID);
  printf("decode %.1f tok/s wall %.1f tok/CPU-s(thread) cpu/wall %.2f | "
         "prefill %.1f tok/s wall %.1f tok/CPU-s cpu/wall %.2f\n",
         n / (w1 - w0), n / (t1 - t0), (p1 - p0) / (w1 - w0), n / (w3 - w2),
         n / (p3 - p2), (p3 - p2) / (w3 - w2));
  free(ids);
  free(state);
  free(logits);
  return 0;
}
