/* dot_tile_bench.c: the two inner kernels of a sequence's quantized product
 * (docs/performance.md, "Prefill by integer dot products"), in C with
 * intrinsics, on one core, over an N x K = 768 x 768 product of T = 64
 * tokens whose operands stay in the caches:
 *   - vnni: what emitQuantizedSequenceTile generates with AVX-512 VNNI:
 *     tiles of 32 rows (two vectors of 16) by 4 tokens; per block of 32,
 *     8 vpdpbusd per 16 rows and token against a broadcast word of 4 int8
 *     inputs, then one conversion, one multiply by d_w d_x and one FMA;
 *   - f32: the f32 tile the dequantized rows ran through before (4 rows by
 *     4 tokens, 16 FMA chains, one weight vector for 4 tokens).
 * Prints each kernel's multiply-adds per second, medians of 5 passes.
 *
 *   clang -O2 -march=native scripts/dot_tile_bench.c -o dot_tile_bench && ./dot_tile_bench */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N = 768, K = 768, T = 64, B = K / 32, kRowVecs = 2, kTokens = 4, kPasses = 5 };

static uint8_t codes[N / 16][B][8][64] __attribute__((aligned(64)));
static float dw[N / 16][B][16] __attribute__((aligned(64)));
static int8_t q[T][K] __attribute__((aligned(64)));
static int32_t start[T][B];
static float dx[T][B];
static float wf[N][K] __attribute__((aligned(64)));
static float xf[T][K] __attribute__((aligned(64)));
static float y[T][N] __attribute__((aligned(64)));

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void vnni(void) {
  for (int g = 0; g < N / 16; g += kRowVecs)
    for (int t = 0; t < T; t += kTokens) {
      __m512 acc[kRowVecs][kTokens];
      for (int m = 0; m < kRowVecs; ++m)
        for (int n = 0; n < kTokens; ++n)
          acc[m][n] = _mm512_setzero_ps();
      for (int b = 0; b < B; ++b) {
        __m512i ints[kRowVecs][kTokens];
        for (int n = 0; n < kTokens; ++n)
          for (int m = 0; m < kRowVecs; ++m)
            ints[m][n] = _mm512_set1_epi32(start[t + n][b]);
        for (int j = 0; j < 8; ++j) {
          __m512i w[kRowVecs];
          for (int m = 0; m < kRowVecs; ++m)
            w[m] = _mm512_load_si512(codes[g + m][b][j]);
          for (int n = 0; n < kTokens; ++n) {
            __m512i x = _mm512_set1_epi32(*(const int32_t *)&q[t + n][32 * b + 4 * j]);
            for (int m = 0; m < kRowVecs; ++m)
              ints[m][n] = _mm512_dpbusd_epi32(ints[m][n], w[m], x);
          }
        }
        for (int m = 0; m < kRowVecs; ++m) {
          __m512 d = _mm512_load_ps(dw[g + m][b]);
          for (int n = 0; n < kTokens; ++n)
            acc[m][n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ints[m][n]),
                                        _mm512_mul_ps(d, _mm512_set1_ps(dx[t + n][b])),
                                        acc[m][n]);
        }
      }
      for (int m = 0; m < kRowVecs; ++m)
        for (int n = 0; n < kTokens; ++n)
          _mm512_storeu_ps(&y[t + n][16 * (g + m)], acc[m][n]);
    }
}

static void f32(void) {
  for (int o = 0; o < N; o += 4)
    for (int t = 0; t < T; t += 4) {
      __m512 acc[4][4];
      for (int r = 0; r < 4; ++r)
        for (int n = 0; n < 4; ++n)
          acc[r][n] = _mm512_setzero_ps();
      for (int k = 0; k < K; k += 16) {
        __m512 x[4];
        for (int n = 0; n < 4; ++n)
          x[n] = _mm512_load_ps(&xf[t + n][k]);
        for (int r = 0; r < 4; ++r) {
          __m512 w = _mm512_load_ps(&wf[o + r][k]);
          for (int n = 0; n < 4; ++n)
            acc[r][n] = _mm512_fmadd_ps(w, x[n], acc[r][n]);
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int n = 0; n < 4; ++n)
          y[t + n][o + r] = _mm512_reduce_add_ps(acc[r][n]);
    }
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, z = *(const double *)b;
  return (x > z) - (x < z);
}

/* Multiply-adds per second of `kernel`: the median of kPasses passes of
 * `reps` calls each. */
static double rate(void (*kernel)(void), int reps) {
  double r[kPasses];
  for (int p = 0; p < kPasses; ++p) {
    double t0 = now();
    for (int i = 0; i < reps; ++i)
      kernel();
    r[p] = (double)N * K * T * reps / (now() - t0);
  }
  qsort(r, kPasses, sizeof r[0], cmp);
  return r[kPasses / 2];
}

int main(void) {
  srand(1);
  for (size_t i = 0; i < sizeof codes; ++i)
    ((uint8_t *)codes)[i] = (uint8_t)rand();
  for (size_t i = 0; i < sizeof q; ++i)
    ((int8_t *)q)[i] = (int8_t)(rand() % 255 - 127);
  for (int g = 0; g < N / 16; ++g)
    for (int b = 0; b < B; ++b)
      for (int l = 0; l < 16; ++l)
        dw[g][b][l] = 1e-3f;
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      start[t][b] = -128 * (rand() % 64);
      dx[t][b] = 1e-2f;
    }
  for (int i = 0; i < N; ++i)
    for (int k = 0; k < K; ++k)
      wf[i][k] = 1e-3f * (float)((i + k) % 7);
  for (int t = 0; t < T; ++t)
    for (int k = 0; k < K; ++k)
      xf[t][k] = 1e-3f * (float)((t + k) % 5);
  vnni();
  f32();
  double a = rate(vnni, 100), b = rate(f32, 30);
  printf("vnni %.1f G multiply-adds/s, f32 %.1f G multiply-adds/s (%.2fx) [%g]\n",
         a * 1e-9, b * 1e-9, a / b, (double)y[3][5]);
  return 0;
}
