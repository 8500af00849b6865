/* batch_tile_bench.c: the batch entry's out_in tile (8 tokens x 2 f16 weight
 * rows, K = 768; codegen/cpu/LowerLinear.cpp, batchTokenTiles) written out by
 * hand, over N rows of weights in 2 MiB pages split across the OpenMP threads,
 * to tell what bounds it: the FMAs (N small: the rows stay in cache) or the
 * weight stream (N large). Also the machine's FMA peak per core (N = 0) and
 * the cost of an OpenMP fork/join of the threads (N = -1).
 * docs/performance.md, "What bounds a step of 8".
 *
 *   clang-22 -O3 -march=native -fopenmp scripts/batch_tile_bench.c -o tile
 *   ./tile 0                       # FMA peak of one core (zmm and ymm)
 *   OMP_NUM_THREADS=2 ./tile -1    # one fork/join of a parallel loop
 *   OMP_NUM_THREADS=T ./tile N PREFETCH [REPS]
 *
 * PREFETCH: bytes ahead of each weight row that each step prefetches (0:
 * none; the generated code prefetches the next tile's rows). Prints the time
 * per pass, GFMA/s, the weights' GB/s and each thread's time.
 */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#define K 768
#define T 8

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* y[t][o] = sum_k W[o][k] x[t][k] for o in [lo, hi), in tiles of 8 tokens x 2
 * rows: 16 accumulators, each f16 weight vector widened once for 8 tokens. */
static void tiles(const uint16_t *w, const float *x, float *y, long n, long lo,
                  long hi, long ahead) {
  for (long o = lo; o < hi; o += 2) {
    __m512 acc[T][2];
    for (int t = 0; t < T; ++t)
      acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    const uint16_t *w0 = w + o * K, *w1 = w0 + K;
    for (int k = 0; k < K; k += 16) {
      if (ahead) {
        _mm_prefetch((const char *)(w0 + k) + ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)(w1 + k) + ahead, _MM_HINT_T0);
      }
      __m512 a = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w0 + k)));
      __m512 b = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w1 + k)));
      for (int t = 0; t < T; ++t) {
        __m512 xv = _mm512_loadu_ps(x + t * K + k);
        acc[t][0] = _mm512_fmadd_ps(a, xv, acc[t][0]);
        acc[t][1] = _mm512_fmadd_ps(b, xv, acc[t][1]);
      }
    }
    for (int t = 0; t < T; ++t) {
      y[t * n + o] = _mm512_reduce_add_ps(acc[t][0]);
      y[t * n + o + 1] = _mm512_reduce_add_ps(acc[t][1]);
    }
  }
}

/* 12 independent chains of FMAs on zmm, then on ymm registers. */
static void peak(void) {
  long n = 100000000;
  __m512 a[12], m = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
  __m256 b[12], m8 = _mm256_set1_ps(1.0000001f), c8 = _mm256_set1_ps(1e-7f);
  for (int i = 0; i < 12; ++i) {
    a[i] = _mm512_set1_ps((float)i);
    b[i] = _mm256_set1_ps((float)i);
  }
  double t0 = now();
  for (long i = 0; i < n; ++i) {
    for (int j = 0; j < 12; ++j)
      a[j] = _mm512_fmadd_ps(a[j], m, c);
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]),
                     "+v"(a[4]), "+v"(a[5]), "+v"(a[6]), "+v"(a[7]),
                     "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
  }
  double t1 = now();
  for (long i = 0; i < n; ++i) {
    for (int j = 0; j < 12; ++j)
      b[j] = _mm256_fmadd_ps(b[j], m8, c8);
    __asm__ volatile("" : "+v"(b[0]), "+v"(b[1]), "+v"(b[2]), "+v"(b[3]),
                     "+v"(b[4]), "+v"(b[5]), "+v"(b[6]), "+v"(b[7]),
                     "+v"(b[8]), "+v"(b[9]), "+v"(b[10]), "+v"(b[11]));
  }
  double t2 = now();
  float s = 0;
  for (int j = 0; j < 12; ++j)
    s += _mm512_reduce_add_ps(a[j]) + b[j][0];
  printf("one core: zmm FMA %.1f GFMA/s, ymm FMA %.1f GFMA/s [%g]\n",
         16 * 12.0 * n / (t1 - t0) / 1e9, 8 * 12.0 * n / (t2 - t1) / 1e9, s);
}

/* A parallel loop of one trivial iteration per thread, many times. */
static void forkJoin(void) {
  static volatile int sink[64 * 16];
  int n = 200000;
  double t0 = now();
  for (int i = 0; i < n; ++i) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < omp_get_num_threads(); ++j)
      sink[(j % 64) * 16]++;
  }
  printf("%d threads: one fork/join %.2f us\n", omp_get_max_threads(),
         (now() - t0) / n * 1e6);
}

int main(int argc, char **argv) {
  if (argc < 2 || (atol(argv[1]) > 0 && argc < 3)) {
    fprintf(stderr, "usage: %s 0 | -1 | N PREFETCH [REPS]\n", argv[0]);
    return 2;
  }
  long n = atol(argv[1]) / 2 * 2;
  if (atol(argv[1]) < 0) {
    forkJoin();
    return 0;
  }
  if (n == 0) {
    peak();
    return 0;
  }
  long ahead = atol(argv[2]);
  int reps = argc > 3 ? atoi(argv[3]) : 10;
  int threads = omp_get_max_threads();
  size_t bytes = (size_t)n * K * 2 + (4 << 20);
  uint16_t *w = aligned_alloc(2 << 20, (bytes + (2 << 20) - 1) / (2 << 20) * (2 << 20));
  float *x = aligned_alloc(64, T * K * 4);
  float *y = aligned_alloc(64, (size_t)T * n * 4);
  if (!w || !x || !y)
    return 1;
  madvise(w, bytes, MADV_HUGEPAGE);
  for (size_t i = 0; i < bytes / 2; ++i)
    w[i] = (uint16_t)(0x2000 + i % 13); /* small positive f16 values */
  for (int i = 0; i < T * K; ++i)
    x[i] = 0.5f;
  double own[64] = {0}, t0 = 0;
  for (int r = -1; r < reps; ++r) {
    if (r == 0)
      t0 = now();
#pragma omp parallel
    {
      int id = omp_get_thread_num();
      long per = n / threads / 2 * 2, lo = id * per;
      long hi = id == threads - 1 ? n : lo + per;
      double a = now();
      tiles(w, x, y, n, lo, hi, ahead);
      if (r >= 0 && id < 64)
        own[id] += now() - a;
    }
  }
  double t = (now() - t0) / reps, check = 0;
  for (long i = 0; i < T * n; ++i)
    check += y[i];
  printf("%d threads, N %ld (%.1f MB), prefetch %ld B: %.2f ms, %.1f GFMA/s, "
         "%.1f GB/s; per thread ms:",
         threads, n, n * K * 2 / 1e6, ahead, t * 1e3, (double)n * K * T / t / 1e9,
         n * K * 2 / t / 1e9);
  for (int i = 0; i < threads && i < 64; ++i)
    printf(" %.2f", own[i] / reps * 1e3);
  printf(" [%g]\n", check);
  return 0;
}
