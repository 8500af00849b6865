// rwkv_cuda_prelude.cuh - the device prelude of rwkvc's generated CUDA.
//
// Pasted verbatim at the top of every generated kernel file (or #included
// by the test kernels). Under NVRTC and clang's CUDA front end it defines
// what the kernels use beyond the built-ins, without any toolkit #include
// (NVRTC cannot find cuda_fp16.h without the toolkit's include path):
//
//   RWKV_SHARED(type, name, count)   __shared__ __align__(16) type name[count]
//   RWKV_DYNAMIC_SHARED(type, name)  type *const name = the dynamic shared
//   memory
//   __half, __nv_bfloat16 (+ 2-wide)  storage types and their conversions
//   rwkv_mma_m16n8k16_f32_{f16,bf16} mma.sync.aligned.m16n8k16.row.col
//   RWKV_EMU_MODULE, RWKV_EMU_KERNEL the emulator's module table: empty here
//
// Under the emulator (rwkv_cuda_emu.h, which defines RWKV_CUDA_EMU and
// includes this file first) only the storage types remain: that header
// defines the other names for host C++. Needs sm_80+.
// Keep the two in step: docs/cuda-emulator.md lists the contract.

#ifndef RWKV_CUDA_PRELUDE_CUH
#define RWKV_CUDA_PRELUDE_CUH

// The storage types, shared with the emulator (which includes this file).
// Kernels convert with the functions below and do not touch __x.
struct __align__(2) __half {
  unsigned short __x;
};
struct __align__(2) __nv_bfloat16 {
  unsigned short __x;
};
struct __align__(4) __half2 {
  __half x, y;
};
struct __align__(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

#ifndef RWKV_CUDA_EMU

typedef unsigned int uint32_t;

#define RWKV_SHARED(type, name, count) __shared__ __align__(16) type name[count]
#define RWKV_DYNAMIC_SHARED(type, name)                                        \
  extern __shared__ __align__(16) unsigned char rwkv_dynamic_shared_[];        \
  type *const name = reinterpret_cast<type *>(rwkv_dynamic_shared_)
#define RWKV_EMU_KERNEL(name)
#define RWKV_EMU_MODULE(symbol, ...)

__device__ __forceinline__ float __half2float(__half h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.__x));
  return f;
}
__device__ __forceinline__ __half __float2half_rn(float f) {
  __half h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.__x) : "f"(f));
  return h;
}
__device__ __forceinline__ __half __float2half(float f) {
  return __float2half_rn(f);
}
__device__ __forceinline__ __half __ushort_as_half(unsigned short u) {
  __half h;
  h.__x = u;
  return h;
}
__device__ __forceinline__ unsigned short __half_as_ushort(__half h) {
  return h.__x;
}
__device__ __forceinline__ __half2 __halves2half2(__half x, __half y) {
  __half2 r;
  r.x = x;
  r.y = y;
  return r;
}
__device__ __forceinline__ __half2 __floats2half2_rn(float x, float y) {
  return __halves2half2(__float2half_rn(x), __float2half_rn(y));
}
__device__ __forceinline__ float2 __half22float2(__half2 h) {
  return make_float2(__half2float(h.x), __half2float(h.y));
}

__device__ __forceinline__ float __bfloat162float(__nv_bfloat16 h) {
  return __uint_as_float(((unsigned)h.__x) << 16);
}
__device__ __forceinline__ __nv_bfloat16 __float2bfloat16_rn(float f) {
  __nv_bfloat16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.__x) : "f"(f));
  return h;
}
__device__ __forceinline__ __nv_bfloat16 __float2bfloat16(float f) {
  return __float2bfloat16_rn(f);
}
__device__ __forceinline__ __nv_bfloat16
__ushort_as_bfloat16(unsigned short u) {
  __nv_bfloat16 h;
  h.__x = u;
  return h;
}
__device__ __forceinline__ unsigned short
__bfloat16_as_ushort(__nv_bfloat16 h) {
  return h.__x;
}
__device__ __forceinline__ __nv_bfloat162 __halves2bfloat162(__nv_bfloat16 x,
                                                             __nv_bfloat16 y) {
  __nv_bfloat162 r;
  r.x = x;
  r.y = y;
  return r;
}
__device__ __forceinline__ __nv_bfloat162 __floats2bfloat162_rn(float x,
                                                                float y) {
  return __halves2bfloat162(__float2bfloat16_rn(x), __float2bfloat16_rn(y));
}
__device__ __forceinline__ float2 __bfloat1622float2(__nv_bfloat162 h) {
  return make_float2(__bfloat162float(h.x), __bfloat162float(h.y));
}

// D = A B + C on the tensor cores, one warp, operands in the PTX fragment
// layout (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point
// type"); d may alias c.
#define RWKV_DEFINE_MMA_M16N8K16(name, ab)                                     \
  __device__ __forceinline__ void name(float d[4], const uint32_t a[4],        \
                                       const uint32_t b[2],                    \
                                       const float c[4]) {                     \
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32." ab "." ab ".f32 "    \
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "              \
                 "{%10, %11, %12, %13};"                                       \
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])              \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),      \
                   "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));     \
  }
RWKV_DEFINE_MMA_M16N8K16(rwkv_mma_m16n8k16_f32_f16, "f16")
RWKV_DEFINE_MMA_M16N8K16(rwkv_mma_m16n8k16_f32_bf16, "bf16")
#undef RWKV_DEFINE_MMA_M16N8K16

#endif // RWKV_CUDA_EMU
#endif // RWKV_CUDA_PRELUDE_CUH
