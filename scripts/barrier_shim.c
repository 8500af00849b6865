// barrier_shim.c: counts libomp barriers and the TSC cycles spent inside
// them, per thread, in a program running a compiled model (LD_PRELOAD).
//
//   clang -O2 -shared -fPIC -DLIBOMP='"libomp.so.5"' scripts/barrier_shim.c \
//     -o barrier_shim.so -ldl
//   LD_PRELOAD=./barrier_shim.so ./ab_bench ./lib.so ./lib.so 1 STEPS 1 2
//
// Run two step counts and take the differences (per token: barriers, cycles
// waiting); the TSC rate is printed at exit. The generated libraries dlopen
// nothing, but ab_bench dlopens them with RTLD_LOCAL, so the real barrier
// is looked up in the already loaded libomp rather than by RTLD_NEXT.
//
// With BARRIER_SHIM_SITES=1 in the environment it also prints, per call site
// (the barrier's return address, in the order of the code: a layer's
// barriers in the order they run), the calls and the mean cycles inside of
// thread 0 and of the others (libomp's global ids: the second thread of a
// team is not always 1): which thread waits for which piece (the generated
// code's ident carries no source location). Meant for two threads.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <x86intrin.h>
typedef void (*barrier_fn)(void *, int);
static barrier_fn real;
static uint64_t count[64], cycles[64];
enum { kSites = 1024 };
static void *site[kSites];
static uint64_t siteCount[kSites][2], siteCycles[kSites][2];
static int sites = -1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int siteOf(void *at) {
  for (int i = 0; i < __atomic_load_n(&sites, __ATOMIC_ACQUIRE); ++i)
    if (site[i] == at)
      return i;
  pthread_mutex_lock(&lock);
  int i = 0;
  while (i < sites && site[i] != at)
    ++i;
  if (i == sites && sites < kSites) {
    site[i] = at;
    __atomic_store_n(&sites, sites + 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&lock);
  return i < kSites ? i : -1;
}
void __kmpc_barrier(void *loc, int gtid) {
  if (!real) { void *h = dlopen(LIBOMP, RTLD_NOW | RTLD_NOLOAD); real = (barrier_fn)dlsym(h, "__kmpc_barrier"); }
  if (sites == -1) // first call: -2 for off, read once
    sites = getenv("BARRIER_SHIM_SITES") ? 0 : -2;
  uint64_t t = __rdtsc();
  real(loc, gtid);
  uint64_t d = __rdtsc() - t;
  if (gtid >= 0 && gtid < 64) {
    count[gtid]++;
    cycles[gtid] += d;
  }
  if (sites >= 0 && gtid >= 0) {
    int i = siteOf(__builtin_return_address(0)), t = gtid != 0;
    if (i >= 0) {
      siteCount[i][t]++;
      siteCycles[i][t] += d;
    }
  }
}
static int byAddress(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)site[*(const int *)a],
            y = (uintptr_t)site[*(const int *)b];
  return (x > y) - (x < y);
}
__attribute__((destructor)) static void report(void) {
  uint64_t t0 = __rdtsc();
  usleep(200000);
  fprintf(stderr, "barrier_shim: TSC %.3f GHz\n", (__rdtsc() - t0) / 0.2e9);
  for (int i = 0; i < 64; ++i)
    if (count[i]) fprintf(stderr, "barrier_shim: thread %d: %lu barriers, %.3f Gcycles inside\n", i, count[i], cycles[i] / 1e9);
  int order[kSites];
  for (int i = 0; i < sites; ++i)
    order[i] = i;
  if (sites > 0)
    qsort(order, sites, sizeof *order, byAddress);
  for (int k = 0; k < sites; ++k) {
    int i = order[k];
    fprintf(stderr,
            "barrier_shim: site %3d %p: calls %lu %lu, cycles a call thread 0 "
            "%.0f others %.0f\n",
            k, site[i], siteCount[i][0], siteCount[i][1],
            siteCount[i][0] ? (double)siteCycles[i][0] / siteCount[i][0] : 0,
            siteCount[i][1] ? (double)siteCycles[i][1] / siteCount[i][1] : 0);
  }
}
