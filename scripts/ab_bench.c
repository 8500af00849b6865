/* ab_bench.c: two builds of one model compared in one process, step by
 * step, so that the machine's drift (this VM's memory bandwidth moves by
 * the minute) falls on both alike.
 *
 *   build/bin/rwkvc MODEL ... -emit=shared-lib -o a.so     (before)
 *   build/bin/rwkvc MODEL ... -emit=shared-lib -o b.so     (after)
 *   clang -O2 scripts/ab_bench.c -ldl -o ab_bench
 *   ./ab_bench ./a.so ./b.so B STEPS ROUNDS [THREADS]
 *
 * Opens both libraries (RTLD_LOCAL: each its own runtime and weights; one
 * libomp), gives each B sequences, every one started with a different
 * token, and runs ROUNDS rounds of STEPS steps of A then STEPS of B (B
 * first in every other round). A step is one rwkv_eval_batch call in which
 * every sequence takes one token, the argmax of its last logits; B = 1 is
 * single-sequence decode (forward_one, what --bench's decode runs), B > 1
 * the batched entry. Prints each round's tok/s for A and B and their ratio,
 * then the medians: A, B, and the median of the rounds' own ratios B / A;
 * and the best round of each (a disturbance only slows a round down, so
 * the fastest is the least disturbed) and their ratio. */
#include "rwkv_dlsym.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One library's model and its B sequences. */
struct side {
  batch_fn evalBatch;
  size_t vocab;
  rwkv_state **states; /* (B) */
  int32_t *toks;    /* (B) */
  const int32_t **ids;
  size_t *counts;   /* (B) all 1 */
  float *logits;    /* (B, vocab) */
  float **rows;     /* (B) -> logits */
};

static void fail(const char *what, const char *why) {
  fprintf(stderr, "ab_bench: %s: %s\n", what, why);
  exit(1);
}

static void setup(struct side *s, const char *path, int b, int threads) {
  void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    fail(path, dlerror());
  open_fn open = (open_fn)dlsym(lib, "rwkv_model_open");
  vocab_fn vocab = (vocab_fn)dlsym(lib, "rwkv_n_vocab");
  state_new_fn stateNew = (state_new_fn)dlsym(lib, "rwkv_state_new");
  threads_fn setThreads = (threads_fn)dlsym(lib, "rwkv_set_threads");
  s->evalBatch = (batch_fn)dlsym(lib, "rwkv_eval_batch");
  if (!open || !vocab || !stateNew || !setThreads || !s->evalBatch)
    fail(path, "not a model library with rwkv_eval_batch");
  if (threads > 0)
    setThreads(threads);
  char err[512];
  rwkv_model *m = open(err, sizeof err);
  if (!m)
    fail(path, err);
  s->vocab = vocab(m);
  s->states = malloc(b * sizeof *s->states);
  s->toks = malloc(b * sizeof *s->toks);
  s->ids = malloc(b * sizeof *s->ids);
  s->counts = malloc(b * sizeof *s->counts);
  s->logits = malloc(b * s->vocab * sizeof *s->logits);
  s->rows = malloc(b * sizeof *s->rows);
  for (int q = 0; q < b; ++q) {
    if (!(s->states[q] = stateNew(m, err, sizeof err)))
      fail(path, err);
    s->toks[q] = (int32_t)((q * 7919u) % s->vocab);
    s->ids[q] = s->toks + q;
    s->counts[q] = 1;
    s->rows[q] = s->logits + q * s->vocab;
  }
}

static void step(struct side *s, int b) {
  char err[512];
  if (s->evalBatch(s->states, s->ids, s->counts, b, s->rows, err, sizeof err))
    fail("rwkv_eval_batch", err);
  for (int q = 0; q < b; ++q) {
    const float *l = s->rows[q];
    size_t best = 0;
    for (size_t j = 1; j < s->vocab; ++j)
      if (l[j] > l[best])
        best = j;
    s->toks[q] = (int32_t)best;
  }
}

/* tok/s of `steps` steps. */
static double run(struct side *s, int b, int steps) {
  double t0 = clock_seconds(CLOCK_MONOTONIC);
  for (int i = 0; i < steps; ++i)
    step(s, b);
  return (double)b * steps / (clock_seconds(CLOCK_MONOTONIC) - t0);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s A.so B.so B STEPS ROUNDS [THREADS]\n", argv[0]);
    return 2;
  }
  int b = atoi(argv[3]), steps = atoi(argv[4]), rounds = atoi(argv[5]);
  int threads = argc > 6 ? atoi(argv[6]) : 0;
  if (b < 1 || steps < 1 || rounds < 1 || rounds > 1000)
    fail("arguments", "B, STEPS and ROUNDS must be positive (ROUNDS <= 1000)");
  struct side a, c;
  setup(&a, argv[1], b, threads);
  setup(&c, argv[2], b, threads);
  step(&a, b); /* warm-up */
  step(&c, b);
  double ra[1000], rc[1000], ratio[1000];
  for (int r = 0; r < rounds; ++r) {
    if (r % 2) {
      rc[r] = run(&c, b, steps);
      ra[r] = run(&a, b, steps);
    } else {
      ra[r] = run(&a, b, steps);
      rc[r] = run(&c, b, steps);
    }
    ratio[r] = rc[r] / ra[r];
    printf("round %3d  A %8.1f tok/s  B %8.1f tok/s  B/A %.3f\n", r + 1, ra[r],
           rc[r], ratio[r]);
  }
  double bestA = 0, bestC = 0;
  for (int r = 0; r < rounds; ++r) {
    bestA = ra[r] > bestA ? ra[r] : bestA;
    bestC = rc[r] > bestC ? rc[r] : bestC;
  }
  printf("median     A %8.1f tok/s  B %8.1f tok/s  B/A %.3f (B = %d, %d x %d "
         "steps)\n",
         median(ra, rounds), median(rc, rounds), median(ratio, rounds), b,
         rounds, steps);
  printf("best       A %8.1f tok/s  B %8.1f tok/s  B/A %.3f\n", bestA, bestC,
         bestC / bestA);
  return 0;
}
