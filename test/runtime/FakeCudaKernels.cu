// FakeCudaKernels.cu - the kernels of the toy model of FakeCudaModel.h, in
// the form rwkvc's CUDA emitter writes (docs/cuda-emulator.md: prelude,
// extern "C" __global__ kernels, the RWKV_EMU_MODULE table), compiled for
// the emulator with rwkv_cuda_emu_kernels. FakeCudaModel.cpp's launch plan
// runs them; every parameter is 8 bytes (a pointer or a long long).
//
// Scratch rows: E and H are (cap, C) at their offsets; row t is token t of
// the call. C is 8 (one thread per channel).

#include "rwkv_cuda_prelude.cuh"

#define FAKE_C 8

// E[t] = emb[tokens[t]]: grid x = ceil(T / 2), block (C, 2).
extern "C" __global__ void fake_cuda_embed(const float *emb, const int *tokens,
                                           long long T, float *E) {
  const long long t = (long long)blockIdx.x * 2 + threadIdx.y;
  if (t < T)
    E[t * FAKE_C + threadIdx.x] = emb[tokens[t] * FAKE_C + threadIdx.x];
}

// H[t] = 2 E[t] - 0.5: grid y = ceil(T / 4), block (C, 4); n_embd as an
// immediate.
extern "C" __global__ void fake_cuda_prep(const float *E, float *H,
                                          long long T, long long C) {
  const long long t = (long long)blockIdx.y * 4 + threadIdx.y;
  if (t < T)
    H[t * C + threadIdx.x] = 2.0f * E[t * C + threadIdx.x] - 0.5f;
}

__device__ __forceinline__ float fake_cuda_cell(const float *decay,
                                                const float *mix, float *state,
                                                float in, int c) {
  float *x = state, *s = state + FAKE_C, *m = state + 2 * FAKE_C;
  s[c] = decay[c] * s[c] + in + mix[c] * x[c];
  m[c] = m[c] > in ? m[c] : in;
  x[c] = in;
  return 0.5f * s[c] + 0.25f * m[c];
}

// One layer for one token (T == 1): block C.
extern "C" __global__ void fake_cuda_layer_one(const float *decay,
                                               const float *mix, float *state,
                                               float *H) {
  const int c = threadIdx.x;
  H[c] = fake_cuda_cell(decay, mix, state, H[c], c);
}

// One layer for T > 1 tokens, a scan per channel: block C.
extern "C" __global__ void fake_cuda_layer_seq(const float *decay,
                                               const float *mix, float *state,
                                               float *H, long long T) {
  const int c = threadIdx.x;
  for (long long t = 0; t < T; ++t)
    H[t * FAKE_C + c] = fake_cuda_cell(decay, mix, state, H[t * FAKE_C + c], c);
}

// logits[row] = head . H[t] for the row's token t; the block stages H[t] in
// dynamic shared memory (the launch asks for 64 KiB, beyond the default 48,
// so the runtime must raise the kernel's limit). Block 8 threads, grid x =
// ceil(V / 8).
__device__ __forceinline__ void fake_cuda_head_row(const float *head,
                                                   const float *h,
                                                   float *logits, long long V) {
  RWKV_DYNAMIC_SHARED(float, staged);
  staged[threadIdx.x] = h[threadIdx.x];
  __syncthreads();
  const long long v = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (v >= V)
    return;
  float acc = 0.0f;
  for (int c = 0; c < FAKE_C; ++c)
    acc += head[v * FAKE_C + c] * staged[c];
  logits[v] = acc;
}

// R > 1 rows (every position): grid y = R, row r is token T - R + r.
extern "C" __global__ void fake_cuda_head(const float *head, const float *H,
                                          float *logits, long long T,
                                          long long R, long long V) {
  const long long r = blockIdx.y, t = T - R + r;
  fake_cuda_head_row(head, H + t * FAKE_C, logits + r * V, V);
}

// R == 1: the last token's row.
extern "C" __global__ void fake_cuda_head_last(const float *head,
                                               const float *H, float *logits,
                                               long long T, long long V) {
  fake_cuda_head_row(head, H + (T - 1) * FAKE_C, logits, V);
}

RWKV_EMU_MODULE(fake_cuda_module,
  RWKV_EMU_KERNEL(fake_cuda_embed)
  RWKV_EMU_KERNEL(fake_cuda_prep)
  RWKV_EMU_KERNEL(fake_cuda_layer_one)
  RWKV_EMU_KERNEL(fake_cuda_layer_seq)
  RWKV_EMU_KERNEL(fake_cuda_head)
  RWKV_EMU_KERNEL(fake_cuda_head_last))
