/* prefill_ab_bench.c: two builds of one model compared on prefill in one
 * process, call by call, so that the machine's drift falls on both alike
 * (ab_bench.c does the same for decode).
 *
 *   build/bin/rwkvc MODEL ... -emit=shared-lib -o a.so     (before)
 *   build/bin/rwkvc MODEL ... -emit=shared-lib -o b.so     (after)
 *   clang -O2 scripts/prefill_ab_bench.c -ldl -o prefill_ab_bench
 *   ./prefill_ab_bench ./a.so ./b.so N THREADS ROUNDS [CHUNK[:CHUNK_B]]
 *
 * Opens both libraries (RTLD_LOCAL: each its own runtime and weights; one
 * libomp), then runs ROUNDS rounds of one prefill of N tokens on each, from
 * the initial state (rwkv_eval, RWKV_EVAL_SEQ, chunks of CHUNK tokens, 0:
 * the model's default; CHUNK:CHUNK_B gives B chunks of its own, to compare
 * chunk sizes on copies of one library), A first in even rounds and B
 * first in odd ones.
 * Prints the medians and best of A and B and the median and quartiles of
 * the rounds' own ratios B / A. As with ab_bench, run both orders of the
 * two libraries and take the geometric mean of B/A and the inverse of the
 * second run's: the library loaded second has read faster in some runs of
 * one build against its copy. */
#include "rwkv_dlsym.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct lib {
  rwkv_model *model;
  float *state, *logits;
  reset_fn reset;
  eval_fn eval;
};

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *sym(void *handle, const char *name, const char *path) {
  void *p = dlsym(handle, name);
  if (!p) {
    fprintf(stderr, "prefill_ab_bench: %s: no %s\n", path, name);
    exit(1);
  }
  return p;
}

static void load(struct lib *l, const char *path, int threads) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "prefill_ab_bench: %s\n", dlerror());
    exit(1);
  }
  ((threads_fn)sym(h, "rwkv_set_threads", path))(threads);
  char err[512];
  l->model = ((open_fn)sym(h, "rwkv_model_open", path))(err, sizeof err);
  if (!l->model) {
    fprintf(stderr, "prefill_ab_bench: %s: %s\n", path, err);
    exit(1);
  }
  l->logits = malloc(((vocab_fn)sym(h, "rwkv_n_vocab", path))(l->model) * 4);
  l->state = malloc(((state_size_fn)sym(h, "rwkv_state_size", path))(l->model));
  l->reset = (reset_fn)sym(h, "rwkv_state_reset", path);
  l->eval = (eval_fn)sym(h, "rwkv_eval", path);
}

/* One prefill of n tokens from the initial state: tok/s. */
static double prefill(struct lib *l, const int32_t *ids, size_t n,
                      size_t chunk) {
  char err[512];
  l->reset(l->model, l->state);
  double t0 = clock_seconds(CLOCK_MONOTONIC);
  if (l->eval(l->model, l->state, ids, n, l->logits, 1, chunk, err,
              sizeof err) != 0) {
    fprintf(stderr, "prefill_ab_bench: %s\n", err);
    exit(1);
  }
  return n / (clock_seconds(CLOCK_MONOTONIC) - t0);
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s A.so B.so N THREADS ROUNDS [CHUNK[:CHUNK_B]]\n",
            argv[0]);
    return 2;
  }
  char *end = 0;
  size_t n = strtoul(argv[3], 0, 10), chunk = argc > 6 ? strtoul(argv[6], &end, 10) : 0;
  size_t chunkB = end && *end == ':' ? strtoul(end + 1, 0, 10) : chunk;
  int threads = atoi(argv[4]), rounds = atoi(argv[5]);
  if (n < 1 || rounds < 1) {
    fprintf(stderr, "prefill_ab_bench: N and ROUNDS must be at least 1\n");
    return 2;
  }
  struct lib a, b;
  load(&a, argv[1], threads);
  load(&b, argv[2], threads);
  int32_t *ids = malloc(n * sizeof *ids);
  for (size_t i = 0; i < n; ++i)
    ids[i] = (int32_t)((i * 7919u) % 50000u); /* below every vocabulary here */
  prefill(&a, ids, n < 64 ? n : 64, chunk);  /* warm-up */
  prefill(&b, ids, n < 64 ? n : 64, chunkB);
  double *ta = malloc(rounds * sizeof *ta), *tb = malloc(rounds * sizeof *tb),
         *r = malloc(rounds * sizeof *r);
  for (int i = 0; i < rounds; ++i) {
    if (i & 1) {
      tb[i] = prefill(&b, ids, n, chunkB);
      ta[i] = prefill(&a, ids, n, chunk);
    } else {
      ta[i] = prefill(&a, ids, n, chunk);
      tb[i] = prefill(&b, ids, n, chunkB);
    }
    r[i] = tb[i] / ta[i];
    printf("round %d: A %.0f B %.0f tok/s, B/A %.3f\n", i, ta[i], tb[i], r[i]);
  }
  qsort(ta, rounds, sizeof *ta, cmp);
  qsort(tb, rounds, sizeof *tb, cmp);
  qsort(r, rounds, sizeof *r, cmp);
  printf("A median %.0f best %.0f | B median %.0f best %.0f | B/A median %.3f "
         "(quartiles %.3f %.3f)\n",
         ta[rounds / 2], ta[rounds - 1], tb[rounds / 2], tb[rounds - 1],
         r[rounds / 2], r[rounds / 4], r[3 * rounds / 4]);
  return 0;
}
