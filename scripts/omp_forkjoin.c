/* omp_forkjoin.c: what libomp's fork and join of a parallel region and a
 * barrier inside one cost on this machine: N empty regions (one thread
 * writes a volatile, so the region is not removed), then N barriers in one
 * region; prints microseconds per region and per barrier, three times.
 * Decode of the 0.1B shape meets about 100 joins a token (docs/performance.md,
 * session 16).
 *
 *   clang-22 -O2 -fopenmp scripts/omp_forkjoin.c -o omp_forkjoin
 *   ./omp_forkjoin [THREADS] [N]      (defaults 2, 200000) */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  int n = argc > 2 ? atoi(argv[2]) : 200000;
  if (threads < 1 || n < 1) {
    fprintf(stderr, "usage: %s [THREADS >= 1] [N >= 1]\n", argv[0]);
    return 2;
  }
  volatile int sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = omp_get_wtime();
    for (int i = 0; i < n; ++i) {
#pragma omp parallel num_threads(threads)
      {
        if (omp_get_thread_num() == threads - 1)
          sink = sink + 1;
      }
    }
    double t1 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    {
      for (int i = 0; i < n; ++i) {
#pragma omp barrier
      }
    }
    double t2 = omp_get_wtime();
    printf("%d threads: fork+join %.2f us, barrier %.2f us\n", threads,
           (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6);
  }
  return 0;
}
