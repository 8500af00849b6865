//===- rwkv_cuda_emu.h - CUDA kernel text as host C++ -----------*- C++ -*-===//
//
// Included before a CUDA C++ kernel file (clang++ -include rwkv_cuda_emu.h,
// see docs/cuda-emulator.md), it makes the same kernel text valid host C++
// that runs under the emulator's fiber scheduler (cudaemu/lib): every
// emulated GPU thread is a fiber, and __syncthreads, __syncwarp, the
// shuffles, votes and rwkv_mma_* switch to the scheduler, which checks that
// the block (or the warp's mask) arrives together.
//
//   kernel text ─► this header: keywords, threadIdx & co, intrinsics, __half,
//                  math, RWKV_SHARED / RWKV_DYNAMIC_SHARED, rwkv_mma_*
//               ─► RWKV_EMU_MODULE(sym, RWKV_EMU_KERNEL(k) ...) at the end:
//                  the module image (rwkv_cuda_emu_abi.h) the driver loads
//
// The real-CUDA side of the same names is rwkv_cuda_prelude.cuh, which the
// kernel text carries (it is empty here: this header defines RWKV_CUDA_EMU).
// What this header accepts but NVRTC would not is caught by compiling the
// same text with NVRTC; the kernels must also stay within:
//  - `__shared__` and `__constant__` are errors: use RWKV_SHARED(type, name,
//    count) and RWKV_DYNAMIC_SHARED(type, name) (name is a pointer here, an
//    array in CUDA: do not take sizeof(name));
//  - kernels are `extern "C"`, named uniquely in the final binary;
//  - __expf, __logf, __fdividef, rsqrtf are computed exactly (libm); a GPU
//    differs by a few ulp there (see docs/cuda-emulator.md, "Numerics").
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDA_EMU_H
#define RWKV_CUDA_EMU_H

#define RWKV_CUDA_EMU 1

#include "rwkv_cuda_emu_abi.h"
#include "rwkv_cuda_emu_half.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <utility>

// --- Keywords ---------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// clang-format off
#define __shared__ _Pragma("GCC error \"rwkv_cuda_emu: use RWKV_SHARED or RWKV_DYNAMIC_SHARED instead of __shared__\"")
#define __constant__ _Pragma("GCC error \"rwkv_cuda_emu: __constant__ memory is not emulated\"")
// clang-format on
// __restrict__ is a keyword of clang and gcc. __noinline__ is not defined:
// libstdc++ spells __attribute__((__noinline__)), which the macro would break.

// --- Vector types -----------------------------------------------------------
typedef rwkv_emu_uint3 uint3;
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x = 1, unsigned y = 1, unsigned z = 1)
      : x(x), y(y), z(z) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct __align__(8) int2 {
  int x, y;
};
struct __align__(16) int4 {
  int x, y, z, w;
};
struct __align__(8) uint2 {
  unsigned x, y;
};
struct __align__(16) uint4 {
  unsigned x, y, z, w;
};
struct __align__(8) float2 {
  float x, y;
};
struct __align__(16) float4 {
  float x, y, z, w;
};
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) {
  return {x, y, z, w};
}
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) {
  return {x, y, z, w};
}

// --- The running emulated thread -------------------------------------------
namespace rwkv_emu {
/// The worker whose fibers run on this OS thread; set by every thunk.
inline thread_local rwkv_emu_worker *tls_worker = nullptr;

[[noreturn]] inline void outside_emulator() {
  std::fprintf(stderr, "rwkv-cuda-emu: device code called outside an "
                       "emulated thread (not through a kernel launch)\n");
  std::abort();
}

// Every fiber of an OS thread shares its thread_locals: the accesses are
// relaxed atomics, so that ThreadSanitizer sees no race between fibers.
inline rwkv_emu_worker *worker() {
  rwkv_emu_worker *w = __atomic_load_n(&tls_worker, __ATOMIC_RELAXED);
  if (__builtin_expect(w == nullptr, 0))
    outside_emulator();
  return w;
}
inline const rwkv_emu_thread &current() { return *worker()->current; }
} // namespace rwkv_emu

#define threadIdx (::rwkv_emu::current().thread_idx)
#define blockIdx (::rwkv_emu::current().block_idx)
#define blockDim (::rwkv_emu::current().block_dim)
#define gridDim (::rwkv_emu::current().grid_dim)
static const int warpSize = 32;

// Call sites: every collective takes the caller's file and line as default
// arguments, for the scheduler's reports.
#define RWKV_EMU_SITE                                                          \
  const char *rwkv_emu_file = __builtin_FILE(),                                \
             int rwkv_emu_line = __builtin_LINE()

// --- Barriers and warp collectives -----------------------------------------
inline void __syncthreads(RWKV_EMU_SITE) {
  rwkv_emu_worker *w = ::rwkv_emu::worker();
  w->api->syncthreads(w, rwkv_emu_file, rwkv_emu_line);
}

namespace rwkv_emu {
inline void warp_op(rwkv_emu_warp_kind kind, const char *name, unsigned mask,
                    int arg, int width, unsigned bytes, const void *in,
                    void *out, const char *file, int line) {
  rwkv_emu_worker *w = worker();
  rwkv_emu_warp_op op = {uint32_t(kind), mask, arg,  width,
                         bytes,          file, line, name};
  w->api->warp_op(w, &op, in, out);
}

// The types CUDA's __shfl*_sync accept (cuda_fp16.h adds __half, which the
// prelude does not).
template <class T>
inline constexpr bool is_shuffle_type =
    std::is_same_v<T, int> || std::is_same_v<T, unsigned> ||
    std::is_same_v<T, long> || std::is_same_v<T, unsigned long> ||
    std::is_same_v<T, long long> || std::is_same_v<T, unsigned long long> ||
    std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
inline T shuffle(rwkv_emu_warp_kind kind, const char *name, unsigned mask,
                 T var, int arg, int width, const char *file, int line) {
  static_assert(is_shuffle_type<T>, "CUDA shuffles take int, unsigned, "
                                    "long long, float, double (and their "
                                    "unsigned forms) only");
  T out;
  warp_op(kind, name, mask, arg, width, sizeof(T), &var, &out, file, line);
  return out;
}
} // namespace rwkv_emu

inline void __syncwarp(unsigned mask = 0xffffffffu, RWKV_EMU_SITE) {
  ::rwkv_emu::warp_op(RWKV_EMU_SYNCWARP, "__syncwarp", mask, 0, 32, 0, nullptr,
                      nullptr, rwkv_emu_file, rwkv_emu_line);
}
template <class T>
inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = warpSize,
                     RWKV_EMU_SITE) {
  return ::rwkv_emu::shuffle(RWKV_EMU_SHFL_IDX, "__shfl_sync", mask, var,
                             srcLane, width, rwkv_emu_file, rwkv_emu_line);
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta,
                        int width = warpSize, RWKV_EMU_SITE) {
  return ::rwkv_emu::shuffle(RWKV_EMU_SHFL_UP, "__shfl_up_sync", mask, var,
                             int(delta), width, rwkv_emu_file, rwkv_emu_line);
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta,
                          int width = warpSize, RWKV_EMU_SITE) {
  return ::rwkv_emu::shuffle(RWKV_EMU_SHFL_DOWN, "__shfl_down_sync", mask, var,
                             int(delta), width, rwkv_emu_file, rwkv_emu_line);
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int laneMask,
                         int width = warpSize, RWKV_EMU_SITE) {
  return ::rwkv_emu::shuffle(RWKV_EMU_SHFL_XOR, "__shfl_xor_sync", mask, var,
                             laneMask, width, rwkv_emu_file, rwkv_emu_line);
}
inline unsigned __ballot_sync(unsigned mask, int predicate, RWKV_EMU_SITE) {
  unsigned out;
  predicate = predicate != 0;
  ::rwkv_emu::warp_op(RWKV_EMU_BALLOT, "__ballot_sync", mask, 0, 32,
                      sizeof(int), &predicate, &out, rwkv_emu_file,
                      rwkv_emu_line);
  return out;
}
inline int __any_sync(unsigned mask, int predicate, RWKV_EMU_SITE) {
  int out;
  predicate = predicate != 0;
  ::rwkv_emu::warp_op(RWKV_EMU_ANY, "__any_sync", mask, 0, 32, sizeof(int),
                      &predicate, &out, rwkv_emu_file, rwkv_emu_line);
  return out;
}
inline int __all_sync(unsigned mask, int predicate, RWKV_EMU_SITE) {
  int out;
  predicate = predicate != 0;
  ::rwkv_emu::warp_op(RWKV_EMU_ALL, "__all_sync", mask, 0, 32, sizeof(int),
                      &predicate, &out, rwkv_emu_file, rwkv_emu_line);
  return out;
}

[[noreturn]] inline void __trap(RWKV_EMU_SITE) {
  rwkv_emu_worker *w = ::rwkv_emu::worker();
  w->api->trap(w, rwkv_emu_file, rwkv_emu_line, "__trap()");
  __builtin_unreachable();
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

// --- Tensor cores -----------------------------------------------------------
// D = A B + C for one warp, with the operands in the fragment layout of PTX
// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32 (PTX ISA,
// "Matrix Fragments for mma.m16n8k16 with floating point type"). All 32
// lanes of a full warp take part. The products are summed in double and
// rounded once to float (a GPU rounds inside its adder tree: results may
// differ in the last bits, never more than f32 summation would).
namespace rwkv_emu {
inline void mma(rwkv_emu_warp_kind kind, const char *name, float d[4],
                const uint32_t a[4], const uint32_t b[2], const float c[4],
                const char *file, int line) {
  rwkv_emu_mma_in in = {
      {a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}};
  warp_op(kind, name, 0xffffffffu, 0, 32, sizeof in, &in, d, file, line);
}
} // namespace rwkv_emu
inline void rwkv_mma_m16n8k16_f32_f16(float d[4], const uint32_t a[4],
                                      const uint32_t b[2], const float c[4],
                                      RWKV_EMU_SITE) {
  ::rwkv_emu::mma(RWKV_EMU_MMA_F16, "rwkv_mma_m16n8k16_f32_f16", d, a, b, c,
                  rwkv_emu_file, rwkv_emu_line);
}
inline void rwkv_mma_m16n8k16_f32_bf16(float d[4], const uint32_t a[4],
                                       const uint32_t b[2], const float c[4],
                                       RWKV_EMU_SITE) {
  ::rwkv_emu::mma(RWKV_EMU_MMA_BF16, "rwkv_mma_m16n8k16_f32_bf16", d, a, b, c,
                  rwkv_emu_file, rwkv_emu_line);
}

// --- Shared memory ----------------------------------------------------------
namespace rwkv_emu {
inline void *shared_array(const void *key, size_t bytes, size_t align,
                          const char *file, int line) {
  rwkv_emu_worker *w = worker();
  return w->api->shared_array(w, key, bytes, align, file, line);
}
inline void *dynamic_shared() {
  rwkv_emu_worker *w = worker();
  return w->api->dynamic_shared(w);
}
} // namespace rwkv_emu

/// A static shared array of `count` elements of `type`, 16-byte aligned
/// (CUDA: `__shared__ __align__(16) type name[count]`). One per block,
/// filled with 0xff bytes (NaN as f32, f16 and bf16) before the block uses it.
#define RWKV_SHARED(type, name, count)                                         \
  static char rwkv_emu_shared_key_##name;                                      \
  type *const name = static_cast<type *>(::rwkv_emu::shared_array(             \
      &rwkv_emu_shared_key_##name, sizeof(type) * size_t(count),               \
      alignof(type) > 16 ? alignof(type) : 16, __FILE__, __LINE__))

/// The launch's dynamic shared memory as `type *name`, 16-byte aligned and
/// filled with 0xff bytes before every block.
#define RWKV_DYNAMIC_SHARED(type, name)                                        \
  type *const name = static_cast<type *>(::rwkv_emu::dynamic_shared())

// --- Half precision ---------------------------------------------------------
// The storage types are the prelude's (rwkv_cuda_prelude.cuh).
#include "rwkv_cuda_prelude.cuh"

inline float __half2float(__half h) { return ::rwkv_emu::f16_to_f32(h.__x); }
inline __half __float2half_rn(float f) { return {::rwkv_emu::f32_to_f16(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline __half __ushort_as_half(unsigned short u) { return {u}; }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half2 __halves2half2(__half x, __half y) { return {x, y}; }
inline __half2 __floats2half2_rn(float x, float y) {
  return {__float2half_rn(x), __float2half_rn(y)};
}
inline float2 __half22float2(__half2 h) {
  return {__half2float(h.x), __half2float(h.y)};
}
inline float __bfloat162float(__nv_bfloat16 h) {
  return ::rwkv_emu::bf16_to_f32(h.__x);
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  return {::rwkv_emu::f32_to_bf16(f)};
}
inline __nv_bfloat16 __float2bfloat16(float f) {
  return __float2bfloat16_rn(f);
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return {u}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 h) { return h.__x; }
inline __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 x, __nv_bfloat16 y) {
  return {x, y};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float x, float y) {
  return {__float2bfloat16_rn(x), __float2bfloat16_rn(y)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) {
  return {__bfloat162float(h.x), __bfloat162float(h.y)};
}

// --- Bits and math ----------------------------------------------------------
inline float __int_as_float(int i) {
  return ::rwkv_emu::bits_float(uint32_t(i));
}
inline int __float_as_int(float f) { return int(::rwkv_emu::float_bits(f)); }
inline float __uint_as_float(unsigned u) { return ::rwkv_emu::bits_float(u); }
inline unsigned __float_as_uint(float f) { return ::rwkv_emu::float_bits(f); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x ? __builtin_clz(unsigned(x)) : 32; }

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __exp2f(float x) { return exp2f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __saturatef(float x) {
  return x > 1.0f ? 1.0f : (x > 0.0f ? x : 0.0f); // NaN -> 0 as on a GPU
}

// CUDA's device min/max overloads (the same-type ones).
#define RWKV_EMU_MINMAX(T)                                                     \
  inline T min(T a, T b) { return b < a ? b : a; }                             \
  inline T max(T a, T b) { return a < b ? b : a; }
RWKV_EMU_MINMAX(int)
RWKV_EMU_MINMAX(unsigned)
RWKV_EMU_MINMAX(long long)
RWKV_EMU_MINMAX(unsigned long long)
#undef RWKV_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }

template <class T> inline T __ldg(const T *p) { return *p; }

// --- Atomics (global and shared memory) -------------------------------------
namespace rwkv_emu {
/// *p = f(*p) atomically; returns the old value.
template <class T, class F> inline T atomic_update(T *p, F f) {
  T old, desired;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do
    desired = f(old);
  while (!__atomic_compare_exchange(p, &old, &desired, true, __ATOMIC_SEQ_CST,
                                    __ATOMIC_RELAXED));
  return old;
}
} // namespace rwkv_emu

inline float atomicAdd(float *p, float v) {
  return ::rwkv_emu::atomic_update(p, [v](float old) { return old + v; });
}
#define RWKV_EMU_ATOMICS(T)                                                    \
  inline T atomicAdd(T *p, T v) {                                              \
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);                         \
  }                                                                            \
  inline T atomicSub(T *p, T v) {                                              \
    return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST);                         \
  }                                                                            \
  inline T atomicExch(T *p, T v) {                                             \
    return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);                        \
  }                                                                            \
  inline T atomicMax(T *p, T v) {                                              \
    return ::rwkv_emu::atomic_update(                                          \
        p, [v](T old) { return old < v ? v : old; });                          \
  }                                                                            \
  inline T atomicMin(T *p, T v) {                                              \
    return ::rwkv_emu::atomic_update(                                          \
        p, [v](T old) { return v < old ? v : old; });                          \
  }                                                                            \
  inline T atomicCAS(T *p, T expected, T desired) {                            \
    __atomic_compare_exchange_n(p, &expected, desired, false,                  \
                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);           \
    return expected;                                                           \
  }
RWKV_EMU_ATOMICS(int)
RWKV_EMU_ATOMICS(unsigned)
RWKV_EMU_ATOMICS(unsigned long long)
#undef RWKV_EMU_ATOMICS

// --- The module image -------------------------------------------------------
namespace rwkv_emu {
template <class F> struct KernelType;
template <class... A> struct KernelType<void (*)(A...)> {
  static constexpr uint32_t count = sizeof...(A);
  static constexpr rwkv_emu_param params[sizeof...(A) + 1] = {
      {uint32_t(sizeof(A)), uint32_t(alignof(A))}..., {0, 0}};
  template <auto K, size_t... I>
  static void call(void *const *p, std::index_sequence<I...>) {
    K(*static_cast<A *>(p[I])...);
  }
};

/// Runs kernel K for the emulated thread w->current.
template <auto K> void thunk(rwkv_emu_worker *w, void *const *params) {
  using T = KernelType<decltype(K)>;
  __atomic_store_n(&tls_worker, w, __ATOMIC_RELAXED);
  T::template call<K>(params, std::make_index_sequence<T::count>());
}

template <auto K> constexpr rwkv_emu_kernel kernel_entry(const char *name) {
  using T = KernelType<decltype(K)>;
  return {name, &thunk<K>, T::count, T::params};
}
} // namespace rwkv_emu

/// One entry of RWKV_EMU_MODULE: the extern "C" kernel `name`.
#define RWKV_EMU_KERNEL(name) ::rwkv_emu::kernel_entry<&name>(#name),

/// The module image `symbol` (extern "C" const rwkv_emu_module) listing the
/// file's kernels; the model embeds &symbol where a real build embeds the
/// cubin, and hands it to cuModuleLoadData.
///   RWKV_EMU_MODULE(rwkv_model_cuda, RWKV_EMU_KERNEL(wkv7)
///   RWKV_EMU_KERNEL(...))
#define RWKV_EMU_MODULE(symbol, ...)                                           \
  static const rwkv_emu_kernel symbol##_rwkv_emu_kernels[] = {__VA_ARGS__};    \
  extern "C" const rwkv_emu_module symbol = {                                  \
      {'R', 'W', 'K', 'V', 'E', 'M', 'U', '1'},                                \
      RWKV_EMU_ABI_VERSION,                                                    \
      uint32_t(sizeof(symbol##_rwkv_emu_kernels) / sizeof(rwkv_emu_kernel)),   \
      symbol##_rwkv_emu_kernels};

#endif // RWKV_CUDA_EMU_H
