/* forkjoin_bench.c: what splitting decode's products across threads costs,
 * in a C model of it: a weight stream read in regions the size of one
 * product, each region split into equal contiguous parts over the threads,
 * with a q8_0-like step per 64 bytes (a vpdpbusd dot product, its sign
 * offset, conversion, scale and accumulation) and some serial work per
 * region on one thread (the ops between decode's products).
 *
 *   clang-22 -O2 -march=native -fopenmp scripts/forkjoin_bench.c -o forkjoin_bench
 *   ./forkjoin_bench [REGION_KIB [SERIAL_BYTES [THREADS]]]   (330 8192 2)
 *
 * Three ways, six rounds, GB/s of weights each: a parallel region per
 * product (libomp's fork and join, as rwkvc's generated code does); one
 * parallel region with an `omp barrier` after each product and the serial
 * work in `omp masked` (a region per token); one stream without regions
 * (no serial work: the ceiling). 256 MiB in all, beyond the caches. Needs
 * AVX-512 VNNI. */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* n bytes (a multiple of 128) of int8 codes against x. */
static float step(const char *p, size_t n, __m512i x) {
  __m512 acc = _mm512_setzero_ps(), acc2 = acc, s = _mm512_set1_ps(0.5f);
  __m512i offset = _mm512_set1_epi8((char)0x80);
  for (size_t i = 0; i < n; i += 128) {
    __m512i w = _mm512_xor_si512(_mm512_loadu_si512(p + i), offset);
    __m512i d = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, x);
    acc = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(d), s), s, acc);
    __m512i w2 = _mm512_xor_si512(_mm512_loadu_si512(p + i + 64), offset);
    __m512i d2 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w2, x);
    acc2 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(d2), s), s, acc2);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc, acc2));
}

int main(int argc, char **argv) {
  size_t region = (size_t)(argc > 1 ? atof(argv[1]) : 330) * 1024;
  size_t serial = argc > 2 ? (size_t)atol(argv[2]) : 8192;
  int threads = argc > 3 ? atoi(argv[3]) : 2;
  if (threads < 1 || region < 128 * (size_t)threads || serial % 128) {
    fprintf(stderr, "usage: %s [REGION_KIB [SERIAL_BYTES (a multiple of 128) "
                    "[THREADS]]]\n", argv[0]);
    return 2;
  }
  size_t part = region / threads / 128 * 128;
  region = part * threads;
  size_t total = ((size_t)256 << 20) / region * region;
  size_t regions = total / region;
  char *buf = aligned_alloc(4096, total);
  if (!buf)
    return 1;
  memset(buf, 1, total);
  __m512i x = _mm512_set1_epi8(3);
  volatile float sink = 0;
  for (int round = 0; round < 6; ++round) {
    double t = now();
    for (size_t g = 0; g < regions; ++g) {
      const char *p = buf + g * region;
      sink += step(buf, serial, x);
#pragma omp parallel num_threads(threads)
      sink += step(p + omp_get_thread_num() * part, part, x);
    }
    double forks = now() - t;
    t = now();
#pragma omp parallel num_threads(threads)
    for (size_t g = 0; g < regions; ++g) {
#pragma omp masked
      sink += step(buf, serial, x);
#pragma omp barrier
      sink += step(buf + g * region + omp_get_thread_num() * part, part, x);
#pragma omp barrier
    }
    double barriers = now() - t;
    t = now();
#pragma omp parallel num_threads(threads)
    sink += step(buf + omp_get_thread_num() * (total / threads),
                 total / threads / 128 * 128, x);
    double stream = now() - t;
    printf("regions of %zu KiB, %zu serial bytes, %d threads: fork/join %.1f "
           "GB/s; one region + barriers %.1f; one stream %.1f\n",
           region >> 10, serial, threads, total / forks / 1e9,
           total / barriers / 1e9, total / stream / 1e9);
  }
  free(buf);
  return 0;
}
