/* batch_bench.c: aggregate decode throughput of B concurrent sequences
 * through rwkv_eval_batch, against one sequence decoded alone.
 *
 *   build/bin/rwkvc MODEL -emit=shared-lib -o libm.so
 *   clang -O2 scripts/batch_bench.c -ldl -o batch_bench
 *   ./batch_bench ./libm.so 32 2             # 32 steps, --threads 2
 *   ./batch_bench ./libm.so 32 2 1 8         # only B = 1 and 8
 *
 * Through the C API (runtime/rwkv_runtime.h) of the library. First "alone":
 * N one-token rwkv_state_eval calls on one state (RWKV_EVAL_RNN, each token
 * the argmax of the last logits: what --bench's decode measures). Then for
 * each B (default 1, 2, 4, 8, 16): B states, each started with a different
 * token, then N steps of one rwkv_eval_batch call in which every sequence
 * takes one token (the argmax of its last logits), after one warm-up step.
 * Prints tokens/s over the wall time (B N tokens), tokens per CPU-second of
 * the process (all threads), the CPU/wall ratio (1.0 per busy thread on an
 * idle machine) and the wall-clock speed-up over "alone". */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double seconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

typedef void *(*open_fn)(char *, size_t);
typedef size_t (*size_fn)(void *);
typedef void *(*state_new_fn)(void *, char *, size_t);
typedef int (*state_eval_fn)(void *, const int32_t *, size_t, float *, int,
                             size_t, char *, size_t);
typedef int (*batch_fn)(void *const *, const int32_t *const *, const size_t *,
                        size_t, float *const *, char *, size_t);
typedef int (*threads_fn)(int);
typedef void (*state_free_fn)(void *);

static int32_t argmax(const float *logits, size_t v) {
  size_t best = 0;
  for (size_t j = 1; j < v; ++j)
    if (logits[j] > logits[best])
      best = j;
  return (int32_t)best;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s LIB.so N THREADS [B...]\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW);
  if (!lib) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  int n = atoi(argv[2]), threads = atoi(argv[3]);
  int sizes[32] = {1, 2, 4, 8, 16}, nsizes = 5;
  if (argc > 4) {
    nsizes = 0;
    for (int i = 4; i < argc && nsizes < 32; ++i)
      sizes[nsizes++] = atoi(argv[i]);
  }
  open_fn open = (open_fn)dlsym(lib, "rwkv_model_open");
  size_fn vocab = (size_fn)dlsym(lib, "rwkv_n_vocab");
  state_new_fn stateNew = (state_new_fn)dlsym(lib, "rwkv_state_new");
  state_eval_fn stateEval = (state_eval_fn)dlsym(lib, "rwkv_state_eval");
  state_free_fn stateFree = (state_free_fn)dlsym(lib, "rwkv_state_free");
  batch_fn evalBatch = (batch_fn)dlsym(lib, "rwkv_eval_batch");
  threads_fn setThreads = (threads_fn)dlsym(lib, "rwkv_set_threads");
  if (!open || !vocab || !stateNew || !stateFree || !stateEval || !evalBatch ||
      !setThreads || n < 1) {
    fprintf(stderr, "not a model library with rwkv_eval_batch, or N < 1\n");
    return 1;
  }
  setThreads(threads);
  char err[512];
  void *m = open(err, sizeof err);
  if (!m) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  size_t v = vocab(m);

  /* Alone: one sequence, forward_one per token. */
  float *one = malloc(v * sizeof *one); /* (n_vocab) */
  void *st = stateNew(m, err, sizeof err);
  int32_t tok = 0;
  if (!st || stateEval(st, &tok, 1, one, 0, 0, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  double w0 = seconds(CLOCK_MONOTONIC), p0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  for (int i = 0; i < n; ++i) {
    tok = argmax(one, v);
    if (stateEval(st, &tok, 1, one, 0, 0, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
  }
  double w1 = seconds(CLOCK_MONOTONIC), p1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
  double aloneRate = n / (w1 - w0);
  printf("alone    %8.1f tok/s wall %8.1f tok/CPU-s cpu/wall %.2f\n",
         aloneRate, n / (p1 - p0), (p1 - p0) / (w1 - w0));

  for (int k = 0; k < nsizes; ++k) {
    int b = sizes[k];
    if (b < 1)
      continue;
    void **states = malloc(b * sizeof *states);
    int32_t *toks = malloc(b * sizeof *toks);           /* (B) */
    const int32_t **ids = malloc(b * sizeof *ids);      /* (B) -> toks */
    size_t *counts = malloc(b * sizeof *counts);        /* (B) all 1 */
    float *logits = malloc(b * v * sizeof *logits);     /* (B, n_vocab) */
    float **rows = malloc(b * sizeof *rows);            /* (B) -> logits */
    for (int q = 0; q < b; ++q) {
      states[q] = stateNew(m, err, sizeof err);
      if (!states[q]) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
      toks[q] = (int32_t)((q * 7919u) % v);
      ids[q] = toks + q;
      counts[q] = 1;
      rows[q] = logits + q * v;
    }
    /* Warm-up: the first token of every sequence. */
    if (evalBatch(states, ids, counts, b, rows, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      return 1;
    }
    w0 = seconds(CLOCK_MONOTONIC);
    p0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < n; ++i) {
      for (int q = 0; q < b; ++q)
        toks[q] = argmax(rows[q], v);
      if (evalBatch(states, ids, counts, b, rows, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
      }
    }
    w1 = seconds(CLOCK_MONOTONIC);
    p1 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    double rate = (double)b * n / (w1 - w0);
    printf("B = %-4d %8.1f tok/s wall %8.1f tok/CPU-s cpu/wall %.2f  "
           "%.2fx alone\n",
           b, rate, b * n / (p1 - p0), (p1 - p0) / (w1 - w0),
           rate / aloneRate);
    for (int q = 0; q < b; ++q)
      stateFree(states[q]);
    free(rows);
    free(logits);
    free(counts);
    free(ids);
    free(toks);
    free(states);
  }
  stateFree(st);
  free(one);
  return 0;
}
