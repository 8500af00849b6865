/* lora_up_bench.c: one thread's decode of the RWKV-7 0.4B shape's four LoRA
 * up-projections (f16, in_out: 64, 64, 32 and 128 rows of 1024), 24
 * layers from memory (8 MB of other weights read between two layers), in
 * GB/s of their weights, with y (1024 floats, in L1) accumulated over
 * blocks of R rows of W (LowerLinear.cpp, inOutRowsDecode), R = 1, 2, 4;
 * and a plain f16 sum of the same bytes for reference. The variants
 * alternate within the run; each line gives the median over the rounds.
 * docs/performance.md, "Rows in groups, LoRAs row by row".
 *
 *   clang-22 -O2 -march=native scripts/lora_up_bench.c -o lora_up_bench
 *   ./lora_up_bench 15
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { C = 1024, LAYERS = 24, LORAS = 4, VARIANTS = 4 };
static const int ranks[LORAS] = {64, 64, 32, 128};
static float h[128] __attribute__((aligned(64))), y[C] __attribute__((aligned(64)));
static float sink;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static __m512 load16(const uint16_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)p));
}

/* y = h[0..D) W, W (D, C) f16, R rows a pass over y (R a constant in
 * each caller below, as in the generated code). */
static inline __attribute__((always_inline)) void up(const uint16_t *w, int D, int R) {
  for (int n = 0; n < C; n += 16)
    _mm512_store_ps(y + n, _mm512_setzero_ps());
  for (int k = 0; k < D; k += R) {
    __m512 hk[4];
    for (int i = 0; i < R; ++i)
      hk[i] = _mm512_set1_ps(h[k + i]);
    const uint16_t *row = w + (long)k * C;
    for (int n = 0; n < C; n += 16) {
      __m512 a = _mm512_load_ps(y + n);
      for (int i = 0; i < R; ++i)
        a = _mm512_fmadd_ps(hk[i], load16(row + (long)i * C + n), a);
      _mm512_store_ps(y + n, a);
    }
  }
}

__attribute__((noinline)) static void up1(const uint16_t *w, int D) { up(w, D, 1); }
__attribute__((noinline)) static void up2(const uint16_t *w, int D) { up(w, D, 2); }
__attribute__((noinline)) static void up4(const uint16_t *w, int D) { up(w, D, 4); }

/* The sum of n f16 from w. */
__attribute__((noinline)) static float sum(const uint16_t *w, long n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (long i = 0; i < n; i += 64) {
    a0 = _mm512_add_ps(a0, load16(w + i));
    a1 = _mm512_add_ps(a1, load16(w + i + 16));
    a2 = _mm512_add_ps(a2, load16(w + i + 32));
    a3 = _mm512_add_ps(a3, load16(w + i + 48));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, z = *(const double *)b;
  return x < z ? -1 : x > z;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 15;
  if (rounds < 1 || rounds > 256) {
    fprintf(stderr, "usage: %s [ROUNDS 1-256]\n", argv[0]);
    return 2;
  }
  const int rows[VARIANTS] = {1, 2, 4, 0};
  const char *names[VARIANTS] = {"1 row a pass", "2 rows a pass", "4 rows a pass", "plain sum"};
  long loras = 0, other = 4L << 20; /* f16 elements: 8 MB between layers */
  for (int i = 0; i < LORAS; ++i)
    loras += (long)C * ranks[i];
  long layer = loras + other;
  size_t bytes = LAYERS * layer * 2;
  uint16_t *m = mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  madvise(m, bytes, MADV_HUGEPAGE);
  for (long i = 0; i < LAYERS * layer; ++i)
    m[i] = 0x3c00 + (i & 0xff);
  for (int i = 0; i < 128; ++i)
    h[i] = 0.01f * i;
  static double gbs[VARIANTS][256];
  for (int r = 0; r < rounds; ++r)
    for (int v = 0; v < VARIANTS; ++v) {
      double t = 0;
      for (int l = 0; l < LAYERS; ++l) {
        const uint16_t *w = m + l * layer;
        double t0 = now();
        if (rows[v] == 0) {
          sink += sum(w, loras);
        } else {
          for (int i = 0; i < LORAS; ++i) {
            (rows[v] == 1 ? up1 : rows[v] == 2 ? up2 : up4)(w, ranks[i]);
            w += (long)C * ranks[i];
            sink += y[5];
          }
        }
        t += now() - t0;
        sink += sum(m + l * layer + loras, other); /* the layer's other weights */
      }
      gbs[v][r] = LAYERS * loras * 2.0 / t / 1e9;
    }
  for (int v = 0; v < VARIANTS; ++v) {
    qsort(gbs[v], rounds, sizeof(double), byValue);
    printf("%-14s %5.1f GB/s  (median of %d rounds)\n", names[v], gbs[v][rounds / 2], rounds);
  }
  printf("(checksum %g)\n", sink);
  return 0;
}
