/* membw.c: how fast one core streams a working set of a given size, the
 * ceiling for decode (which reads every weight once per token).
 *
 *   clang -O2 -march=native scripts/membw.c -o membw && ./membw 2.75
 *
 * Sums an array of SIZE MiB 2,000 times with AVX-512 loads (8 independent
 * accumulators) and prints GB/s. Needs AVX-512F (-march of a machine that
 * has it). */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SIZE_MIB\n", argv[0]);
    return 2;
  }
  size_t bytes = (size_t)(atof(argv[1]) * 1024 * 1024) / 512 * 512;
  size_t n = bytes / 4;
  float *a = aligned_alloc(64, bytes);
  if (!a || n == 0)
    return 1;
  for (size_t i = 0; i < n; ++i)
    a[i] = 1.0f;
  __m512 acc[8];
  for (int j = 0; j < 8; ++j)
    acc[j] = _mm512_setzero_ps();
  const int reps = 2000;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < n; i += 128)
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm512_add_ps(acc[j], _mm512_load_ps(a + i + 16 * j));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
  float sum = 0;
  for (int j = 0; j < 8; ++j)
    sum += _mm512_reduce_add_ps(acc[j]);
  printf("%.2f MiB: %.1f GB/s (checksum %g)\n", bytes / 1048576.0,
         bytes * (double)reps / s / 1e9, sum);
  free(a);
  return 0;
}
