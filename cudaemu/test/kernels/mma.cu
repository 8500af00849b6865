// Tensor-core GEMM through rwkv_mma_m16n8k16_f32_{f16,bf16}: D = A B + C
// with A (M, K) and B (K, N) f16 or bf16 row major, C and D (M, N) f32;
// M % 16, N % 8, K % 16 == 0. One warp per 16x8 tile of D, 4 warps a block.
// The fragments are loaded register by register as the PTX ISA lays them
// out (A: rows g and g+8, columns 2t, 2t+1 and 2t+8, 2t+9; B: rows 2t, 2t+1
// and 2t+8, 2t+9 of column g; C: rows g, g+8, columns 2t, 2t+1, where g is
// lane / 4 and t lane % 4); the emulator computes the product from its own,
// element-wise statement of the same layout.

#include "rwkv_cuda_prelude.cuh"

__device__ __forceinline__ uint32_t pack2(unsigned short lo,
                                          unsigned short hi) {
  return (uint32_t)lo | ((uint32_t)hi << 16);
}

template <bool BF16>
__device__ __forceinline__ void
mma_body(int M, int N, int K, const unsigned short *__restrict__ A,
         const unsigned short *__restrict__ B, const float *__restrict__ C,
         float *__restrict__ D) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int tile = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int tilesN = N / 8;
  if (tile >= (M / 16) * tilesN) // the whole warp leaves together
    return;
  const int m0 = tile / tilesN * 16, n0 = tile % tilesN * 8;
  const int r0 = (m0 + g) * N + n0 + 2 * t, r1 = r0 + 8 * N;
  float acc[4] = {C[r0], C[r0 + 1], C[r1], C[r1 + 1]};
  for (int k0 = 0; k0 < K; k0 += 16) {
    const unsigned short *a0 = A + (size_t)(m0 + g) * K + k0 + 2 * t;
    const unsigned short *a1 = a0 + 8 * K;
    const unsigned short *b0 = B + (size_t)(k0 + 2 * t) * N + n0 + g;
    uint32_t a[4] = {pack2(a0[0], a0[1]), pack2(a1[0], a1[1]),
                     pack2(a0[8], a0[9]), pack2(a1[8], a1[9])};
    uint32_t b[2] = {pack2(b0[0], b0[N]), pack2(b0[8 * N], b0[9 * N])};
    if (BF16)
      rwkv_mma_m16n8k16_f32_bf16(acc, a, b, acc);
    else
      rwkv_mma_m16n8k16_f32_f16(acc, a, b, acc);
  }
  D[r0] = acc[0];
  D[r0 + 1] = acc[1];
  D[r1] = acc[2];
  D[r1 + 1] = acc[3];
}

extern "C" __global__ void __launch_bounds__(128)
    mma_gemm_f16(int M, int N, int K, const unsigned short *__restrict__ A,
                 const unsigned short *__restrict__ B,
                 const float *__restrict__ C, float *__restrict__ D) {
  mma_body<false>(M, N, K, A, B, C, D);
}
extern "C" __global__ void __launch_bounds__(128)
    mma_gemm_bf16(int M, int N, int K, const unsigned short *__restrict__ A,
                  const unsigned short *__restrict__ B,
                  const float *__restrict__ C, float *__restrict__ D) {
  mma_body<true>(M, N, K, A, B, C, D);
}

// clang-format off
RWKV_EMU_MODULE(cudaemu_test_mma,
  RWKV_EMU_KERNEL(mma_gemm_f16)
  RWKV_EMU_KERNEL(mma_gemm_bf16)
)
// clang-format on
