/* membw.c: how fast N threads stream a working set of a given size, the
 * ceiling for decode (which reads every weight once per token).
 *
 *   clang -O2 -march=native -pthread scripts/membw.c -o membw
 *   ./membw 2.75          # one thread, a 2.75 MiB working set (cache)
 *   ./membw 512 2         # two threads, 512 MiB in all (DRAM)
 *   ./membw 512 2 330     # the same in regions of 330 KiB, split at joins
 *
 * Each of THREADS threads sums its own 1/THREADS of an array of SIZE MiB
 * with AVX-512 loads (8 independent accumulators), as many passes as make
 * about 2 GB of reads per thread (at least 2), all threads starting together
 * after a barrier. Prints the aggregate GB/s: total bytes read over the wall
 * time from the first thread's start to the last thread's end; and, for a machine that
 * other jobs share (where a thread waits for a core as well as for memory),
 * the GB/s per CPU-second of each thread (its bytes over its own CPU time,
 * the median thread's), which is what a thread of a model can get when it
 * runs.
 *
 * With REGION_KIB the array is read region by region, as decode reads a
 * model's products: each region of REGION_KIB is split into THREADS equal
 * contiguous parts, one per thread, and every thread waits at a spinning
 * barrier for the others before the next region (decode's join after each
 * product). A thread that streams slower than the others for a while makes
 * them wait at each barrier: the figure, against the one without regions,
 * is what splitting products of that size across threads costs on this
 * machine (decode's products: 0.3-1.3 MiB a layer at the 0.1B-0.4B shapes
 * in q4_0). Needs AVX-512F (-march of a machine that has it).
 *
 * Two variants of the regions, from the environment: MEMBW_NO_BARRIER=1
 * reads them in the same pattern without the barriers (what the pattern
 * alone costs), MEMBW_PREFETCH_KIB=N has each thread prefetch the first N
 * KiB of its part of the next region before it waits at the barrier
 * (docs/performance.md, session 22), MEMBW_THREAD_ORDER=1 lays the parts
 * out thread by thread: each thread's parts of successive regions are
 * contiguous (it reads its own 1/THREADS of the array, waiting at the
 * barrier after each part), as a weight image whose rows are ordered by
 * thread would be read. */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
  const float *a; /* this thread's part (with regions: of the first) */
  size_t n;       /* floats, a multiple of 128 */
  int reps;
  size_t regions, stride; /* regions of `stride` floats, or 0 */
  int threads;
  float sum;
  double cpu;        /* the thread's CPU seconds while streaming */
  double start, end; /* its wall-clock start and end (CLOCK_MONOTONIC) */
} part_t;

static pthread_barrier_t start;
static int noBarrier;        /* MEMBW_NO_BARRIER */
static size_t prefetchBytes; /* MEMBW_PREFETCH_KIB */
static int threadOrder;      /* MEMBW_THREAD_ORDER */

static double clockSeconds(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double now(void) { return clockSeconds(CLOCK_MONOTONIC); }

/* A sense-reversing barrier that spins, as libomp's threads do between
 * parallel regions. */
static atomic_int arrived;
static atomic_int sense;

static void spinBarrier(int threads, int *local) {
  *local = !*local;
  if (atomic_fetch_add(&arrived, 1) == threads - 1) {
    atomic_store(&arrived, 0);
    atomic_store(&sense, *local);
  } else {
    while (atomic_load_explicit(&sense, memory_order_acquire) != *local)
      _mm_pause();
  }
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void *stream(void *arg) {
  part_t *p = arg;
  __m512 acc[8];
  for (int j = 0; j < 8; ++j)
    acc[j] = _mm512_setzero_ps();
  pthread_barrier_wait(&start);
  p->start = now();
  double cpu0 = clockSeconds(CLOCK_THREAD_CPUTIME_ID);
  int local = 0;
  size_t regions = p->regions ? p->regions : 1; /* no regions: one part */
  for (int r = 0; r < p->reps; ++r)
    for (size_t g = 0; g < regions; ++g) {
      const float *a = p->a + g * p->stride;
      for (size_t i = 0; i < p->n; i += 128)
        for (int j = 0; j < 8; ++j)
          acc[j] = _mm512_add_ps(acc[j], _mm512_load_ps(a + i + 16 * j));
      if (!p->regions || noBarrier)
        continue;
      const char *next = (const char *)(p->a + (g + 1) % regions * p->stride);
      for (size_t b = 0; b < prefetchBytes; b += 64)
        _mm_prefetch(next + b, _MM_HINT_T0);
      spinBarrier(p->threads, &local);
    }
  float sum = 0;
  for (int j = 0; j < 8; ++j)
    sum += _mm512_reduce_add_ps(acc[j]);
  p->sum = sum;
  p->cpu = clockSeconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
  p->end = now();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 4) {
    fprintf(stderr, "usage: %s SIZE_MIB [THREADS [REGION_KIB]]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 1;
  noBarrier = getenv("MEMBW_NO_BARRIER") && atoi(getenv("MEMBW_NO_BARRIER"));
  threadOrder =
      getenv("MEMBW_THREAD_ORDER") && atoi(getenv("MEMBW_THREAD_ORDER"));
  if (getenv("MEMBW_PREFETCH_KIB"))
    prefetchBytes = (size_t)(atof(getenv("MEMBW_PREFETCH_KIB")) * 1024);
  if (threads < 1 || threads > 1024) {
    fprintf(stderr, "membw: THREADS must be 1..1024\n");
    return 2;
  }
  size_t chunk = 512 * (size_t)threads; /* 128 floats per thread */
  size_t region = 0;
  if (argc > 3) {
    region = (size_t)(atof(argv[3]) * 1024) / chunk * chunk;
    if (region == 0) {
      fprintf(stderr, "membw: REGION_KIB must hold 512 bytes per thread\n");
      return 2;
    }
    chunk = region;
  }
  size_t bytes = (size_t)(atof(argv[1]) * 1024 * 1024) / chunk * chunk;
  size_t n = bytes / 4;
  float *a = aligned_alloc(64, bytes ? bytes : 64);
  if (!a || n == 0) {
    fprintf(stderr, "membw: SIZE_MIB too small or out of memory\n");
    return 1;
  }
  for (size_t i = 0; i < n; ++i)
    a[i] = 1.0f;
  size_t regions = region ? bytes / region : 0;
  size_t per = region ? region / 4 / threads : n / threads;
  int reps = (int)(2e9 / (n / threads * 4.0));
  if (reps < 2)
    reps = 2;
  if (reps > 2000)
    reps = 2000;
  part_t *parts = calloc(threads, sizeof *parts);
  pthread_t *ids = calloc(threads, sizeof *ids);
  pthread_barrier_init(&start, NULL, threads + 1);
  for (int t = 0; t < threads; ++t) {
    /* Thread order: thread t's parts follow one another from the start of
     * its 1/THREADS of the array. */
    parts[t] = threadOrder && region
                   ? (part_t){a + t * (n / threads), per, reps, regions, per,
                              threads, 0}
                   : (part_t){a + t * per, per, reps, regions, region / 4,
                              threads, 0};
    pthread_create(&ids[t], NULL, stream, &parts[t]);
  }
  pthread_barrier_wait(&start);
  /* The wall time from the first thread's start to the last one's end, as
   * the threads saw them: under a real-time policy (chrt -f) this thread may
   * only run again once a streaming thread on its core has finished. */
  float sum = 0;
  double t0 = 0, t1 = 0;
  for (int t = 0; t < threads; ++t) {
    pthread_join(ids[t], NULL);
    sum += parts[t].sum;
    if (t == 0 || parts[t].start < t0)
      t0 = parts[t].start;
    if (t == 0 || parts[t].end > t1)
      t1 = parts[t].end;
  }
  double s = t1 - t0;
  double *perCpu = calloc(threads, sizeof *perCpu);
  for (int t = 0; t < threads; ++t)
    perCpu[t] = bytes / threads * (double)reps / parts[t].cpu / 1e9;
  qsort(perCpu, threads, sizeof *perCpu, byValue);
  char regionText[160] = "";
  if (region)
    snprintf(regionText, sizeof regionText, " in regions of %.0f KiB%s%s%s",
             region / 1024.0, noBarrier ? " (no barriers)" : "",
             prefetchBytes && !noBarrier ? " (next region's start prefetched)"
                                         : "",
             threadOrder ? " (parts in thread order)" : "");
  printf("%.2f MiB%s, %d thread%s: %.1f GB/s (checksum %g); %.1f GB/s per "
         "CPU-second of a thread\n",
         bytes / 1048576.0, regionText, threads, threads == 1 ? "" : "s",
         bytes * (double)reps / s / 1e9, sum, perCpu[threads / 2]);
  free(perCpu);
  free(parts);
  free(ids);
  free(a);
  return 0;
}
