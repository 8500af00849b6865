/* region_bench.c: what decode's threading costs, apart from its kernels. A
 * token of decode reads each product's weights once, the rows of each
 * product split across the threads, one parallel region (fork and join)
 * per product. This reads the same bytes in the same pieces, each piece
 * split statically across THREADS threads, and sums them with AVX-512 loads
 * (no arithmetic beyond the sums), four ways, alternating, ROUNDS times:
 *
 *   fork/join  one `omp parallel` per piece (decode today);
 *   spin       one `omp parallel` per token, a spinning sense-reversing
 *              barrier between pieces (one cache line each way);
 *   omp bar    the same with `#pragma omp barrier` (libomp's);
 *   one        one `omp parallel` per token reading all its bytes at once,
 *              no barrier: the ceiling for these bytes on these threads.
 *
 * Prints the median time a token of each and its GB/s. The default pieces
 * are the RWKV-7 0.1B shape's in q4_0 (kilobytes a layer: receptance, key,
 * value 331 each; the four LoRAs in f16 885; the recurrence's state 196;
 * output 331; FFN key and value 1,327 each; 12 layers; the head 28,300).
 *
 *   clang -O2 -march=native -fopenmp scripts/region_bench.c -o region_bench
 *   ./region_bench [THREADS [ROUNDS [TOKENS [LAYERS HEAD_KB KB...]]]]
 *   ./region_bench 2 15 20                       # 0.1B q4_0, two threads
 *   ./region_bench 2 15 20 24 37700 576 576 576 1200 262 576 2304 2304
 *                                                # 0.4B-like q4_0
 *
 * Needs AVX-512F. The bytes per token stay in the last-level cache in part
 * when it is large (docs/performance.md, session 17): compare the four with
 * each other, not with a 512 MiB membw. */
#include <immintrin.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PIECES 4096

static size_t offsets[MAX_PIECES + 1]; /* piece i: [offsets[i], offsets[i+1]) */
static int pieces;
static char *bytes;
static float sink[64 * 16];

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* The sum of n bytes (a multiple of 256) from p, added to acc. */
static __m512 sumRange(const char *p, size_t n, __m512 acc) {
  __m512 a1 = _mm512_setzero_ps(), a2 = a1, a3 = a1;
  for (size_t i = 0; i < n; i += 256) {
    acc = _mm512_add_ps(acc, _mm512_load_ps((const float *)(p + i)));
    a1 = _mm512_add_ps(a1, _mm512_load_ps((const float *)(p + i + 64)));
    a2 = _mm512_add_ps(a2, _mm512_load_ps((const float *)(p + i + 128)));
    a3 = _mm512_add_ps(a3, _mm512_load_ps((const float *)(p + i + 192)));
  }
  return _mm512_add_ps(_mm512_add_ps(acc, a1), _mm512_add_ps(a2, a3));
}

/* Thread t's part of bytes [begin, end): contiguous, in units of 256. */
static void share(size_t begin, size_t end, int t, int threads, size_t *b,
                  size_t *e) {
  size_t units = (end - begin) / 256, per = (units + threads - 1) / threads;
  size_t lo = t * per, hi = lo + per;
  if (lo > units)
    lo = units;
  if (hi > units)
    hi = units;
  *b = begin + lo * 256;
  *e = begin + hi * 256;
}

static _Alignas(64) atomic_int arrived;
static _Alignas(64) atomic_int sense;
static int localSense[64 * 16]; /* each thread's, a line apart */

static void spinBarrier(int threads, int *local) {
  *local = !*local;
  if (atomic_fetch_add(&arrived, 1) == threads - 1) {
    atomic_store(&arrived, 0);
    atomic_store_explicit(&sense, *local, memory_order_release);
  } else {
    while (atomic_load_explicit(&sense, memory_order_acquire) != *local)
      _mm_pause();
  }
}

static void tokenForkJoin(int threads) {
  for (int i = 0; i < pieces; ++i) {
#pragma omp parallel num_threads(threads)
    {
      int t = omp_get_thread_num();
      size_t b, e;
      share(offsets[i], offsets[i + 1], t, threads, &b, &e);
      __m512 a = sumRange(bytes + b, e - b, _mm512_loadu_ps(sink + 16 * t));
      _mm512_storeu_ps(sink + 16 * t, a);
    }
  }
}

static void tokenBarriers(int threads, int ompBarrier) {
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int local = localSense[16 * t];
    __m512 a = _mm512_loadu_ps(sink + 16 * t);
    for (int i = 0; i < pieces; ++i) {
      size_t b, e;
      share(offsets[i], offsets[i + 1], t, threads, &b, &e);
      a = sumRange(bytes + b, e - b, a);
      if (ompBarrier) {
#pragma omp barrier
      } else {
        spinBarrier(threads, &local);
      }
    }
    _mm512_storeu_ps(sink + 16 * t, a);
    localSense[16 * t] = local;
  }
}

static void tokenOneRegion(int threads) {
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    size_t b, e;
    share(0, offsets[pieces], t, threads, &b, &e);
    __m512 a = sumRange(bytes + b, e - b, _mm512_loadu_ps(sink + 16 * t));
    _mm512_storeu_ps(sink + 16 * t, a);
  }
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void addPiece(double kb) {
  size_t n = (size_t)(kb * 1000) / 256 * 256;
  if (pieces == MAX_PIECES || n == 0) {
    fprintf(stderr, "region_bench: too many pieces or one under 256 bytes\n");
    exit(2);
  }
  offsets[pieces + 1] = offsets[pieces] + n;
  ++pieces;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  int rounds = argc > 2 ? atoi(argv[2]) : 15;
  int tokens = argc > 3 ? atoi(argv[3]) : 20;
  double layer01b[] = {331, 331, 331, 885, 196, 331, 1327, 1327};
  int layers = 12;
  double head = 28300;
  double *perLayer = layer01b;
  int perLayerCount = 8;
  if (argc > 4) {
    if (argc < 7) {
      fprintf(stderr,
              "usage: %s [THREADS [ROUNDS [TOKENS [LAYERS HEAD_KB "
              "KB...]]]]\n",
              argv[0]);
      return 2;
    }
    layers = atoi(argv[4]);
    head = atof(argv[5]);
    perLayerCount = argc - 6;
    perLayer = calloc(perLayerCount, sizeof *perLayer);
    for (int i = 0; i < perLayerCount; ++i)
      perLayer[i] = atof(argv[6 + i]);
  }
  if (threads < 1 || threads > 64 || rounds < 1 || rounds > 1000 ||
      tokens < 1 || layers < 0) {
    fprintf(stderr, "region_bench: THREADS 1..64, ROUNDS 1..1000, TOKENS "
                    ">= 1, LAYERS >= 0\n");
    return 2;
  }
  for (int l = 0; l < layers; ++l)
    for (int i = 0; i < perLayerCount; ++i)
      addPiece(perLayer[i]);
  addPiece(head);
  bytes = aligned_alloc(64, offsets[pieces]);
  if (!bytes) {
    fprintf(stderr, "region_bench: out of memory\n");
    return 1;
  }
  memset(bytes, 1, offsets[pieces]);
  double *times[4];
  for (int k = 0; k < 4; ++k)
    times[k] = calloc(rounds, sizeof(double));
  for (int r = 0; r < rounds; ++r)
    for (int k = 0; k < 4; ++k) {
      double t0 = now();
      for (int i = 0; i < tokens; ++i) {
        if (k == 0)
          tokenForkJoin(threads);
        else if (k == 3)
          tokenOneRegion(threads);
        else
          tokenBarriers(threads, k == 2);
      }
      times[k][r] = (now() - t0) / tokens;
    }
  const char *names[4] = {"fork/join", "spin", "omp bar", "one"};
  double gb = offsets[pieces] / 1e9;
  printf("%d pieces, %.1f MB a token, %d thread%s, median of %d rounds of %d "
         "tokens:",
         pieces, gb * 1e3, threads, threads == 1 ? "" : "s", rounds, tokens);
  for (int k = 0; k < 4; ++k) {
    qsort(times[k], rounds, sizeof(double), byValue);
    double t = times[k][rounds / 2];
    printf("%s %s %.3f ms (%.1f GB/s)", k ? " |" : "", names[k], t * 1e3,
           gb / t);
  }
  printf("\n");
  return 0;
}
