/* core_pingpong.c: how far apart this machine put two threads: they hand
 * one cache line back and forth N times (each waits for the other's write,
 * then writes), and the time of one hand-over is printed. On this VM it
 * moves from run to run (the host places the two vCPUs anew), and with it
 * what a loop costs that reads lines the other thread wrote
 * (docs/performance.md, session 14).
 *
 *   clang -O2 scripts/core_pingpong.c -lpthread -o core_pingpong
 *   ./core_pingpong [N]          (default 2000000) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) atomic_long flag;
static long rounds = 2000000;

/* Waits for flag == from, then sets it to from + 1, for every value of this
 * thread's parity. */
static void play(long first) {
  for (long i = first; i < 2 * rounds; i += 2) {
    while (atomic_load_explicit(&flag, memory_order_acquire) != i) {
    }
    atomic_store_explicit(&flag, i + 1, memory_order_release);
  }
}

static void *other(void *arg) {
  (void)arg;
  play(1);
  return 0;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc > 1)
    rounds = atol(argv[1]);
  if (rounds < 1) {
    fprintf(stderr, "usage: %s [N >= 1]\n", argv[0]);
    return 2;
  }
  pthread_t t;
  if (pthread_create(&t, 0, other, 0) != 0) {
    fprintf(stderr, "core_pingpong: cannot start a thread\n");
    return 1;
  }
  double t0 = now();
  play(0);
  pthread_join(t, 0);
  printf("%.0f ns a hand-over\n", (now() - t0) / (2.0 * rounds) * 1e9);
  return 0;
}
