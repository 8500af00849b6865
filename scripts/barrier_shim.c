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
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdint.h>
#include <unistd.h>
#include <x86intrin.h>
typedef void (*barrier_fn)(void *, int);
static barrier_fn real;
static uint64_t count[64], cycles[64];
void __kmpc_barrier(void *loc, int gtid) {
  if (!real) { void *h = dlopen(LIBOMP, RTLD_NOW | RTLD_NOLOAD); real = (barrier_fn)dlsym(h, "__kmpc_barrier"); }
  uint64_t t = __rdtsc();
  real(loc, gtid);
  if (gtid >= 0 && gtid < 64) { count[gtid]++; cycles[gtid] += __rdtsc() - t; }
}
__attribute__((destructor)) static void report(void) {
  uint64_t t0 = __rdtsc();
  usleep(200000);
  fprintf(stderr, "barrier_shim: TSC %.3f GHz\n", (__rdtsc() - t0) / 0.2e9);
  for (int i = 0; i < 64; ++i)
    if (count[i]) fprintf(stderr, "barrier_shim: thread %d: %lu barriers, %.3f Gcycles inside\n", i, count[i], cycles[i] / 1e9);
}
