/* group_rows_bench.c: one thread's decode of q4_0 rows, laid out two ways,
 * in GB/s of weights, over the 0.4B shape's FFN key (4096 rows of K = 1024)
 * and value (1024 rows of K = 4096) in 24 layers (113 MB, from memory):
 *   old:  each row's codes, then all its d (the image before session 13;
 *         the generated kernel prefetched the next row's d when its codes
 *         took 1 KiB or more, as here with "old+pf");
 *   new:  each row in groups of 16 blocks, a group's 16 d then its 256
 *         code bytes (getQuantRowLayout now).
 * The kernel is decodeGroupTile's for q4_0 (LowerQuantLinear.cpp): per
 * group the 16 d converted and scaled once, 4 steps of 64 code bytes, two
 * vpdpbusd each. The layouts alternate within the run; each line gives the
 * medians over the rounds. docs/performance.md, "Rows in groups".
 *
 *   clang-22 -O2 -march=native scripts/group_rows_bench.c -o group_rows_bench
 *   ./group_rows_bench 21
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { LAYERS = 24, OLD = 0, OLD_PREFETCH = 1, NEW = 2, KINDS = 3 };
static const char *names[KINDS] = {"old", "old+pf", "new"};
static int8_t xq[4096] __attribute__((aligned(64)));
static float dx[128] __attribute__((aligned(64))), corr_in[128] __attribute__((aligned(64)));
static float y[4096];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
static long rowBytes(int K) { return K / 2 + K / 16; }
/* Where group g's 16 d and 256 code bytes lie in a row of K. */
static long scaleAt(int kind, int K, int g) { return kind == NEW ? 288L * g : K / 2 + 32L * g; }
static long codesAt(int kind, int g) { return kind == NEW ? 288L * g + 32 : 256L * g; }

__attribute__((noinline)) static void product(const uint8_t *w, long rows, int K, int kind) {
  const __m512i m15 = _mm512_set1_epi8(15);
  long rb = rowBytes(K);
  for (long r = 0; r < rows; ++r) {
    const uint8_t *row = w + r * rb;
    if (kind == OLD_PREFETCH && r + 1 < rows)
      for (int o = 0; o < K / 16; o += 64)
        _mm_prefetch((const char *)row + rb + K / 2 + o, _MM_HINT_T0);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
    for (int g = 0; g < K / 512; ++g) {
      __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const void *)(row + scaleAt(kind, K, g))));
      __m512 dd = _mm512_mul_ps(d, _mm512_load_ps(dx + 16 * g));
      corr = _mm512_fmadd_ps(d, _mm512_load_ps(corr_in + 16 * g), corr);
      const uint8_t *codes = row + codesAt(kind, g);
      for (int j = 0; j < 4; ++j) {
        __m512i c = _mm512_loadu_si512(codes + 64 * j);
        __m512i lo = _mm512_and_si512(c, m15);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(c, 4), m15);
        const int8_t *x = xq + (16 * g + 4 * j) * 32;
        __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(x));
        s = _mm512_dpbusd_epi32(s, hi, _mm512_load_si512(x + 64));
        __m512i lane = _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 2);
        __m512 scale = _mm512_permutexvar_ps(_mm512_add_epi32(lane, _mm512_set1_epi32(4 * j)), dd);
        if (j & 1)
          a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, a1);
        else
          a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, a0);
      }
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), corr));
  }
}

/* 24 layers of key then value, in `kind`'s layout, every d a finite f16. */
static uint8_t *image(int kind, long keyBytes, long valueBytes) {
  size_t total = LAYERS * (keyBytes + valueBytes);
  uint8_t *m = mmap(0, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  madvise(m, total, MADV_HUGEPAGE);
  for (size_t i = 0; i < total; ++i)
    m[i] = (uint8_t)(i * 2654435761u >> 13);
  for (int l = 0; l < LAYERS; ++l)
    for (int v = 0; v < 2; ++v) {
      int K = v ? 4096 : 1024;
      long rows = v ? 1024 : 4096;
      uint8_t *w = m + l * (keyBytes + valueBytes) + v * keyBytes;
      for (long r = 0; r < rows; ++r)
        for (int g = 0; g < K / 512; ++g)
          for (int i = 0; i < 16; ++i)
            ((uint16_t *)(w + r * rowBytes(K) + scaleAt(kind, K, g)))[i] = 0x3c00 + (i & 7);
    }
  return m;
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, z = *(const double *)b;
  return x < z ? -1 : x > z;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 21;
  if (rounds < 1 || rounds > 256) {
    fprintf(stderr, "usage: %s [ROUNDS 1-256]\n", argv[0]);
    return 2;
  }
  long keyBytes = 4096 * rowBytes(1024), valueBytes = 1024 * rowBytes(4096);
  for (int i = 0; i < 4096; ++i)
    xq[i] = (int8_t)(i * 7);
  for (int i = 0; i < 128; ++i)
    dx[i] = 0.01f, corr_in[i] = -0.08f;
  uint8_t *mem[KINDS];
  for (int k = 0; k < KINDS; ++k)
    mem[k] = image(k, keyBytes, valueBytes);
  static double key[KINDS][256], value[KINDS][256];
  for (int r = 0; r < rounds; ++r)
    for (int k = 0; k < KINDS; ++k) {
      double tk = 0, tv = 0;
      for (int l = 0; l < LAYERS; ++l) {
        uint8_t *w = mem[k] + l * (keyBytes + valueBytes);
        double t0 = now();
        product(w, 4096, 1024, k);
        double t1 = now();
        product(w + keyBytes, 1024, 4096, k);
        tk += t1 - t0;
        tv += now() - t1;
      }
      key[k][r] = LAYERS * keyBytes / tk / 1e9;
      value[k][r] = LAYERS * valueBytes / tv / 1e9;
    }
  float check = 0;
  for (int i = 0; i < 4096; ++i)
    check += y[i];
  for (int k = 0; k < KINDS; ++k) {
    qsort(key[k], rounds, sizeof(double), byValue);
    qsort(value[k], rounds, sizeof(double), byValue);
    printf("%-7s key %5.1f GB/s  value %5.1f GB/s  (medians of %d rounds)\n", names[k],
           key[k][rounds / 2], value[k][rounds / 2], rounds);
  }
  printf("(checksum %g)\n", check);
  return 0;
}
