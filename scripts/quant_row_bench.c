/* quant_row_bench.c: one thread's decode row products of q8_0 and q4_0
 * weights (rows of 768 elements, 24 blocks) in GB/s of weights, in
 * rwkv.cpp's block order as the generated code read it before the image
 * split its rows (cur_*: two blocks a step, each block's f16 scale spread
 * over its lanes, per-lane input scales and starting sums), and with each
 * row's codes first and its scales after (new_*: 64 code bytes a step,
 * 16 scales one load, the zero term one FMA per 16 blocks); new_q8_noxor
 * without the xor of q8_0's sign bits. docs/performance.md, "Block rows".
 *
 *   clang-22 -O2 -march=native scripts/quant_row_bench.c -o quant_row_bench
 *   ./quant_row_bench 16 30     # 16 MB of each (in L3), best of 30 passes
 *   ./quant_row_bench 512 4     # 512 MB (from memory); HUGE=1: huge pages
 *
 * Each line: the kernel, the MB, the best pass's GB/s (three rounds). */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define K 768
#define NB (K/32)
static int8_t xq[K] __attribute__((aligned(64)));
static float xd_lane[NB*8] __attribute__((aligned(64)));
static int32_t start_lane[NB*8] __attribute__((aligned(64)));
static float xd_blk[NB+16] __attribute__((aligned(64)));
static float c_blk[NB+16] __attribute__((aligned(64)));
#define PF 4096
// current: blocks of 34 bytes (f16 d, 32 int8), 2 blocks a step
__attribute__((noinline)) static void cur_q8(const uint8_t *w, size_t rb, long n, float *y) {
  for (long r = 0; r < n; ++r) {
    const uint8_t *row = w + r * rb;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int b = 0; b < NB; b += 2) {
      const uint8_t *p = row + b * 34;
      _mm_prefetch((const char*)p + PF, _MM_HINT_T0);
      __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const void*)(p + 2))),
                                     _mm256_loadu_si256((const void*)(p + 36)), 1);
      u = _mm512_xor_si512(u, _mm512_set1_epi8((char)0x80));
      __m128i s = _mm_insert_epi16(_mm_set1_epi16(*(const uint16_t*)p), *(const uint16_t*)(p+34), 1);
      __m512 sc = _mm512_cvtph_ps(_mm256_set_m128i(_mm_set1_epi16(*(const uint16_t*)(p+34)), _mm_set1_epi16(*(const uint16_t*)p)));
      (void)s;
      __m512i i = _mm512_dpbusd_epi32(_mm512_load_si512(start_lane + b*8), u, _mm512_load_si512(xq + b*32));
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(i), _mm512_load_ps(xd_lane + b*8));
      if (b & 2) acc1 = _mm512_fmadd_ps(f, sc, acc1); else acc0 = _mm512_fmadd_ps(f, sc, acc0);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }
}
// The d d_x of the (up to 16) blocks of a row's group from `g`; adds the
// zero code's term d c to *corr.
static inline __m512 group_scales(const uint16_t *sc16, int g, int nb, __m512 *corr) {
  __mmask16 m = (__mmask16)((1u << nb) - 1);
  __m512 d = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, sc16 + g));
  *corr = _mm512_fmadd_ps(d, _mm512_load_ps(c_blk + g), *corr);
  return _mm512_mul_ps(d, _mm512_load_ps(xd_blk + g));
}
// apart: row = K int8 codes (stored +128: unsigned) then NB f16 scales
__attribute__((noinline)) static void new_q8(const uint8_t *w, size_t rb, long n, float *y, int xor) {
  const __m512i idx[8] = {
#define I(s) _mm512_set_epi32(2*s+1,2*s+1,2*s+1,2*s+1,2*s+1,2*s+1,2*s+1,2*s+1,2*s,2*s,2*s,2*s,2*s,2*s,2*s,2*s)
    I(0),I(1),I(2),I(3),I(4),I(5),I(6),I(7)};
  for (long r = 0; r < n; ++r) {
    const uint8_t *row = w + r * rb;
    const uint16_t *sc16 = (const uint16_t*)(row + K);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
    for (int g = 0; g < NB; g += 16) {
      int nb = NB - g < 16 ? NB - g : 16;
      __m512 dd = group_scales(sc16, g, nb, &corr);
      for (int s = 0; s < nb / 2; ++s) {
        int b = g + 2 * s;
        _mm_prefetch((const char*)row + b * 32 + PF, _MM_HINT_T0);
        __m512i u = _mm512_loadu_si512(row + b * 32);
        if (xor) u = _mm512_xor_si512(u, _mm512_set1_epi8((char)0x80));
        __m512i i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_load_si512(xq + b*32));
        __m512 sc = _mm512_permutexvar_ps(idx[s], dd);
        if (s & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), sc, acc1); else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), sc, acc0);
      }
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), corr));
  }
}
// apart q4: row = K/2 nibble bytes (rwkv.cpp's per block: byte j = code j | code j+16 << 4) then NB f16 scales
// 4 blocks a step: 64 bytes; lows = a0-15 b0-15 c0-15 d0-15, highs = the 16-31s; x stored in that order.
__attribute__((noinline)) static void new_q4(const uint8_t *w, size_t rb, long n, float *y) {
  const __m512i idx[4] = {
#define J(s) _mm512_set_epi32(4*s+3,4*s+3,4*s+3,4*s+3,4*s+2,4*s+2,4*s+2,4*s+2,4*s+1,4*s+1,4*s+1,4*s+1,4*s,4*s,4*s,4*s)
    J(0),J(1),J(2),J(3)};
  const __m512i m15 = _mm512_set1_epi8(15);
  for (long r = 0; r < n; ++r) {
    const uint8_t *row = w + r * rb;
    const uint16_t *sc16 = (const uint16_t*)(row + K/2);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), corr = _mm512_setzero_ps();
    for (int g = 0; g < NB; g += 16) {
      int nb = NB - g < 16 ? NB - g : 16;
      __m512 dd = group_scales(sc16, g, nb, &corr);
      for (int s = 0; s < nb / 4; ++s) {
        int b = g + 4 * s;
        _mm_prefetch((const char*)row + b * 16 + PF, _MM_HINT_T0);
        __m512i raw = _mm512_loadu_si512(row + b * 16);
        __m512i lo = _mm512_and_si512(raw, m15), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m15);
        __m512i i = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(xq + b*32));
        i = _mm512_dpbusd_epi32(i, hi, _mm512_load_si512(xq + b*32 + 64));
        __m512 sc = _mm512_permutexvar_ps(idx[s], dd);
        if (s & 1) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), sc, acc1); else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), sc, acc0);
      }
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), corr));
  }
}
// current q4 (loadPair): 18-byte blocks, 2 a step from one 64-byte load
__attribute__((noinline)) static void cur_q4(const uint8_t *w, size_t rb, long n, float *y) {
  __m512i perm = _mm512_set_epi16(
    /* hi half: words of a16.. b16.. -> same bytes as lo */ 
    17+8,17+7,17+6,17+5,17+4,17+3,17+2,17+1, 8,7,6,5,4,3,2,1,
    17+8,17+7,17+6,17+5,17+4,17+3,17+2,17+1, 8,7,6,5,4,3,2,1);
  __m512i sh = _mm512_set_epi16(4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0);
  __m512i sperm = _mm512_set_epi16(9,9,9,9,9,9,9,9,0,0,0,0,0,0,0,0, 9,9,9,9,9,9,9,9,0,0,0,0,0,0,0,0);
  const __m512i m15 = _mm512_set1_epi8(15);
  for (long r = 0; r < n; ++r) {
    const uint8_t *row = w + r * rb;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    for (int b = 0; b < NB; b += 2) {
      const uint8_t *p = row + b * 18;
      _mm_prefetch((const char*)p + PF, _MM_HINT_T0);
      __m512i bytes = _mm512_loadu_si512(p);
      __m512i tw = _mm512_permutexvar_epi16(perm, bytes);
      __m512i u = _mm512_and_si512(_mm512_srlv_epi16(tw, sh), m15);
      __m256i s16 = _mm512_castsi512_si256(_mm512_permutexvar_epi16(sperm, bytes));
      __m512 sc = _mm512_cvtph_ps(s16);
      __m512i i = _mm512_dpbusd_epi32(_mm512_load_si512(start_lane + b*8), u, _mm512_load_si512(xq + b*32));
      __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(i), _mm512_load_ps(xd_lane + b*8));
      if (b & 2) acc1 = _mm512_fmadd_ps(f, sc, acc1); else acc0 = _mm512_fmadd_ps(f, sc, acc0);
    }
    y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }
}
int main(int argc, char **argv) {
  long mb = argc > 1 ? atol(argv[1]) : 16;
  int reps = argc > 2 ? atoi(argv[2]) : 20;
  for (int i = 0; i < K; ++i) xq[i] = (int8_t)(i * 7 % 255 - 127);
  for (int i = 0; i < NB * 8; ++i) { xd_lane[i] = 0.01f; start_lane[i] = -100; }
  for (int i = 0; i < NB + 16; ++i) { xd_blk[i] = 0.01f; c_blk[i] = -1.0f; }
  struct { const char *name; size_t rb; int kind; } v[] = {
    {"cur_q8", 34 * NB, 0}, {"new_q8", 34 * NB, 1}, {"new_q8_noxor", 34 * NB, 2},
    {"cur_q4", 18 * NB, 3}, {"new_q4", 18 * NB, 4}};
  for (int rep = 0; rep < 3; ++rep)
  for (int k = 0; k < 5; ++k) {
    long n = mb * 1048576 / v[k].rb;
    uint8_t *w = aligned_alloc(2<<20, (n * v[k].rb + 8192 + (2<<20)) & ~((2<<20)-1)); if (getenv("HUGE")) madvise(w, (n * v[k].rb + 8192 + (2<<20)) & ~((2<<20)-1), MADV_HUGEPAGE);
    for (size_t i = 0; i < n * v[k].rb + 8192; ++i) w[i] = (uint8_t)(i * 2654435761u >> 13);
    for (long r = 0; r < n; ++r) for (int b = 0; b < NB; ++b) { // sane f16 scales
      if (v[k].kind == 0) *(uint16_t*)(w + r*v[k].rb + b*34) = 0x2000;
      else if (v[k].kind == 3) *(uint16_t*)(w + r*v[k].rb + b*18) = 0x2000;
      else *(uint16_t*)(w + r*v[k].rb + (v[k].kind==4?K/2:K) + 2*b) = 0x2000; }
    float *y = malloc(n * 4);
    double best = 1e9;
    for (int it = 0; it < reps; ++it) {
      double t = now();
      switch (v[k].kind) { case 0: cur_q8(w, v[k].rb, n, y); break; case 1: new_q8(w, v[k].rb, n, y, 1); break;
        case 2: new_q8(w, v[k].rb, n, y, 0); break; case 3: cur_q4(w, v[k].rb, n, y); break; case 4: new_q4(w, v[k].rb, n, y); break; }
      t = now() - t; if (t < best) best = t;
    }
    printf("%-14s %4ld MB  %.1f GB/s  (y0 %g)\n", v[k].name, mb, n * v[k].rb / best / 1e9, y[0]);
    free(w); free(y);
  }
}
