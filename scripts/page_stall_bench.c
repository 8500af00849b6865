/* page_stall_bench.c: reads an image (a model executable or weights file) in
 * a loop for SECONDS and counts the passes that took 1.5x the median or
 * more, with the image where it lies or copied as the runtime copies it:
 *
 *   file      the file mapped read-only (4 KiB pages, or the page cache's)
 *   anon      copied to anonymous memory in 4 KiB pages
 *   anonhuge  copied to 2 MiB-aligned anonymous memory, MADV_HUGEPAGE
 *             (runtime/rwkv_runtime.cpp, intoHugePages; it also prints how
 *             long the copy took)
 *
 *   clang -O2 -march=native scripts/page_stall_bench.c -o page_stall
 *   ./page_stall IMAGE file|anon|anonhuge [SECONDS]
 *
 * On this project's VMs the kernel's DAMON sampled pages every 0.5 s, and
 * reads over 4 KiB pages then stalled (docs/performance.md, "Weights in huge
 * pages").
 */
#include <fcntl.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PASSES 4000

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int byValue(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s IMAGE file|anon|anonhuge [SECONDS]\n", argv[0]);
    return 2;
  }
  const char *mode = argv[2];
  double seconds = argc > 3 ? atof(argv[3]) : 8;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    perror(argv[1]);
    return 1;
  }
  size_t huge = (size_t)2 << 20, n = (size_t)st.st_size / huge * huge;
  if (n == 0) {
    fprintf(stderr, "%s: smaller than 2 MiB\n", argv[1]);
    return 1;
  }
  const char *file = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  const char *p = file;
  if (strcmp(mode, "file") != 0) {
    int hugePages = strcmp(mode, "anonhuge") == 0;
    if (!hugePages && strcmp(mode, "anon") != 0) {
      fprintf(stderr, "unknown mode %s\n", mode);
      return 2;
    }
    for (size_t i = 0; i < n; i += 4096) /* the source in the page cache */
      (void)*(volatile const char *)(file + i);
    double t0 = now();
    char *raw = mmap(NULL, n + huge, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
      perror("mmap");
      return 1;
    }
    char *copy = (char *)(((uintptr_t)raw + huge - 1) & ~(uintptr_t)(huge - 1));
    if (hugePages && madvise(copy, n, MADV_HUGEPAGE) != 0)
      perror("madvise");
    memcpy(copy, file, n);
    printf("copy of %.0f MB: %.0f ms\n", n / 1e6, (now() - t0) * 1e3);
    p = copy;
  }
  static double times[MAX_PASSES], sorted[MAX_PASSES];
  int passes = 0;
  double start = now(), end = start + seconds;
  __m512 acc = _mm512_setzero_ps();
  while (now() < end && passes < MAX_PASSES) {
    double t0 = now();
    for (size_t i = 0; i < n; i += 64)
      acc = _mm512_add_ps(acc, _mm512_loadu_ps(p + i));
    times[passes++] = now() - t0;
  }
  memcpy(sorted, times, sizeof(double) * passes);
  qsort(sorted, passes, sizeof(double), byValue);
  double median = sorted[passes / 2], extra = 0;
  int slow = 0;
  for (int i = 0; i < passes; ++i)
    if (times[i] >= 1.5 * median) {
      ++slow;
      extra += times[i] - median;
    }
  printf("%s: %d passes in %.1f s, median %.1f ms (%.1f GB/s), max %.1f ms; "
         "%d passes of 1.5x the median or more, %.0f ms over it [%g]\n",
         mode, passes, now() - start, median * 1e3, n / median / 1e9,
         sorted[passes - 1] * 1e3, slow, extra * 1e3,
         (double)_mm512_reduce_add_ps(acc));
  return 0;
}
