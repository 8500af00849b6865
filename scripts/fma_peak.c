/* fma_peak.c: the multiply-add peak of one core: 16 independent chains of
 * AVX-512 FMAs (vector<16xf32>), enough to cover the FMA latency, N steps
 * each. Prints zmm FMAs per second and multiply-adds (16 a FMA) per second,
 * the ceiling against which docs/performance.md states the products'
 * efficiency. Run two copies at once for two cores.
 *
 *   clang -O2 -march=native scripts/fma_peak.c -o fma_peak && ./fma_peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
  enum { kChains = 16 };
  const long steps = 200000000;
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i)
    acc[i] = _mm512_set1_ps(i * 1e-3f);
  const __m512 b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-4f);
  double t0 = now();
  for (long s = 0; s < steps; ++s)
    for (int i = 0; i < kChains; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  double t = now() - t0;
  float sum = 0;
  for (int i = 0; i < kChains; ++i)
    sum += _mm512_reduce_add_ps(acc[i]);
  printf("%.2f G zmm FMA/s, %.1f G multiply-adds/s (checksum %g)\n",
         steps * kChains / t / 1e9, steps * kChains * 16.0 / t / 1e9, sum);
  return 0;
}
