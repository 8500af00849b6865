// Decode GEMV as the public RWKV GPU kernels do it: y = W x with W (R, C)
// f16 or bf16 row major, x (C) and y (R) f32, C % 8 == 0. One warp per
// output row (4 warps a block): each lane loads 16 bytes of weights (8 of
// them) and 2 x 16 bytes of x a step, accumulates in f32, and the warp sums
// its lanes with an xor-shuffle tree.

#include "rwkv_cuda_prelude.cuh"

__device__ __forceinline__ float lo_f16(unsigned u) {
  return __half2float(__ushort_as_half((unsigned short)(u & 0xffffu)));
}
__device__ __forceinline__ float hi_f16(unsigned u) {
  return __half2float(__ushort_as_half((unsigned short)(u >> 16)));
}
__device__ __forceinline__ float lo_bf16(unsigned u) {
  return __bfloat162float(__ushort_as_bfloat16((unsigned short)(u & 0xffffu)));
}
__device__ __forceinline__ float hi_bf16(unsigned u) {
  return __bfloat162float(__ushort_as_bfloat16((unsigned short)(u >> 16)));
}

template <bool BF16>
__device__ __forceinline__ float dot2(unsigned u, float x0, float x1) {
  return BF16 ? lo_bf16(u) * x0 + hi_bf16(u) * x1
              : lo_f16(u) * x0 + hi_f16(u) * x1;
}

template <bool BF16>
__device__ __forceinline__ void
gemv_body(int R, int C, const unsigned short *__restrict__ W,
          const float *__restrict__ x, float *__restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= R) // the whole warp leaves together
    return;
  const uint4 *w = reinterpret_cast<const uint4 *>(W + (size_t)row * C);
  const float4 *x4 = reinterpret_cast<const float4 *>(x);
  float acc = 0.0f;
  for (int c = lane; c < C / 8; c += 32) {
    const uint4 p = w[c];
    const float4 xa = x4[2 * c], xb = x4[2 * c + 1];
    acc += dot2<BF16>(p.x, xa.x, xa.y) + dot2<BF16>(p.y, xa.z, xa.w) +
           dot2<BF16>(p.z, xb.x, xb.y) + dot2<BF16>(p.w, xb.z, xb.w);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if (lane == 0)
    y[row] = acc;
}

extern "C" __global__ void __launch_bounds__(128)
    gemv_f16(int R, int C, const unsigned short *__restrict__ W,
             const float *__restrict__ x, float *__restrict__ y) {
  gemv_body<false>(R, C, W, x, y);
}
extern "C" __global__ void __launch_bounds__(128)
    gemv_bf16(int R, int C, const unsigned short *__restrict__ W,
              const float *__restrict__ x, float *__restrict__ y) {
  gemv_body<true>(R, C, W, x, y);
}

// clang-format off
RWKV_EMU_MODULE(cudaemu_test_gemv,
  RWKV_EMU_KERNEL(gemv_f16)
  RWKV_EMU_KERNEL(gemv_bf16)
)
// clang-format on
