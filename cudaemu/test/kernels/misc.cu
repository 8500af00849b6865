// Small kernels for the emulator's own tests: the semantics of barriers,
// shuffles, votes, shared memory and atomics, and the misuses the emulator
// must report (the kernels named bad_*). Each line a report names is
// marked with a comment the tests look for: "// @name".

#include "rwkv_cuda_prelude.cuh"

// The order threads run in: log[0..n) the order they start, log[n..2n) the
// order they leave the barrier; ok[i] = 1 when thread i saw every thread's
// arrival after the barrier.
extern "C" __global__ void barrier_order(int *log, int *counters, int *ok) {
  const int i = threadIdx.x, n = blockDim.x;
  log[atomicAdd(&counters[0], 1)] = i;
  __syncthreads();
  ok[i] = atomicAdd(&counters[0], 0) == n;
  log[n + atomicAdd(&counters[1], 1)] = i;
}

// The order blocks run in: thread 0 of each block logs its block index.
extern "C" __global__ void block_order(int *log, int *counter) {
  if (threadIdx.x == 0)
    log[atomicAdd(counter, 1)] = blockIdx.x;
}

// Thread and block indices in 3-D: 4 words per thread, in global linear
// order (block-major).
extern "C" __global__ void indices(unsigned *out) {
  const unsigned t = threadIdx.x + threadIdx.y * blockDim.x +
                     threadIdx.z * blockDim.x * blockDim.y;
  const unsigned b =
      blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y;
  unsigned *o = out + 4 * (b * blockDim.x * blockDim.y * blockDim.z + t);
  o[0] = t;
  o[1] = b;
  o[2] = blockDim.x * 100 + blockDim.y * 10 + blockDim.z;
  o[3] = gridDim.x * 100 + gridDim.y * 10 + gridDim.z;
}

// Shuffles and votes of one warp; `width` for the shuffles. Per lane, 8
// words: idx (lane + 3), up 2, down 3, xor 5 (of lane * 10), ballot, any,
// all, idx 0 (a broadcast); outd: the xor 1 of a double.
extern "C" __global__ void shuffles(int *out, double *outd, int width) {
  const int lane = threadIdx.x & 31;
  const unsigned full = 0xffffffffu;
  int *o = out + 8 * threadIdx.x;
  o[0] = __shfl_sync(full, lane * 10, lane + 3, width);
  o[1] = __shfl_up_sync(full, lane * 10, 2, width);
  o[2] = __shfl_down_sync(full, lane * 10, 3, width);
  o[3] = __shfl_xor_sync(full, lane * 10, 5, width);
  o[4] = (int)__ballot_sync(full, lane % 3 == 0);
  o[5] = __any_sync(full, lane == 7);
  o[6] = __all_sync(full, lane < 31);
  o[7] = __shfl_sync(full, lane * 10, 0, width);
  outd[threadIdx.x] = __shfl_xor_sync(full, lane + 0.5, 1, width);
}

// Two half-warps exchange through shared memory, each with its own
// __syncwarp mask: disjoint collectives in one warp.
extern "C" __global__ void syncwarp_halves(int *out) {
  RWKV_SHARED(int, s, 32);
  const int lane = threadIdx.x & 31;
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  s[lane] = lane * 3;
  __syncwarp(half);
  out[lane] = s[lane ^ 1] + __shfl_xor_sync(half, lane, 2);
}

// Shared memory before any write: poison (0xff bytes), per block.
extern "C" __global__ void shared_poison(unsigned *out, float *outf) {
  RWKV_SHARED(float, s, 64);
  RWKV_DYNAMIC_SHARED(unsigned, d);
  const int i = threadIdx.x;
  outf[i] = s[(i + 1) % 64];
  out[i] = d[(i + 1) % 64];
  __syncthreads();
  s[i] = 1.0f;
  d[i] = 1;
}

// Each block writes its index into its shared array; out[block * n + i] is
// what thread i reads back, first[block] what the block found before.
extern "C" __global__ void shared_per_block(int *out, int *first) {
  RWKV_SHARED(int, s, 64);
  RWKV_SHARED(int, t, 1);
  const int i = threadIdx.x;
  if (i == 0)
    first[blockIdx.x] = t[0];
  __syncthreads();
  s[i] = blockIdx.x;
  if (i == 0)
    t[0] = blockIdx.x;
  __syncthreads();
  out[blockIdx.x * blockDim.x + i] = s[(i + 1) % blockDim.x] + t[0];
}

// Dynamic shared memory: reverse a block's values through it.
extern "C" __global__ void dynamic_reverse(const float *in, float *out) {
  RWKV_DYNAMIC_SHARED(float, d);
  const int i = threadIdx.x, n = blockDim.x;
  d[i] = in[blockIdx.x * n + i];
  __syncthreads();
  out[blockIdx.x * n + i] = d[n - 1 - i];
}

extern "C" __global__ void atomic_sum(const float *x, float *sum, int *max) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(sum, x[i]);
  atomicMax(max, i);
}

// --- Misuses the emulator reports -------------------------------------------

extern "C" __global__ void bad_divergent_barrier(int *out) {
  if (threadIdx.x < 32)
    __syncthreads(); // @divergent-a
  else
    __syncthreads(); // @divergent-b
  out[threadIdx.x] = 1;
}

extern "C" __global__ void bad_barrier_after_exit(int *out) {
  if (threadIdx.x >= 32)
    return;
  __syncthreads(); // @after-exit
  out[threadIdx.x] = 1;
}

extern "C" __global__ void bad_lane_not_in_mask(int *out) {
  const int lane = threadIdx.x & 31;
  out[lane] = __shfl_xor_sync(0x0000ffffu, lane, 1); // @not-in-mask
}

extern "C" __global__ void bad_mask_lane_exits(int *out) {
  const int lane = threadIdx.x & 31;
  if (lane >= 16)
    return;
  out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1); // @lane-exits
}

extern "C" __global__ void bad_different_collectives(int *out) {
  const int lane = threadIdx.x & 31;
  if (lane < 16)
    out[lane] = __shfl_xor_sync(0xffffffffu, lane, 1); // @collective-a
  else
    out[lane] = __shfl_down_sync(0xffffffffu, lane, 1); // @collective-b
}

extern "C" __global__ void bad_read_outside_mask(int *out) {
  const int lane = threadIdx.x & 31;
  if (lane < 16)
    out[lane] = __shfl_down_sync(0x0000ffffu, lane, 8, 32); // @outside-mask
}

extern "C" __global__ void bad_mask_beyond_block(int *out) {
  // A block of 16 threads: lanes 16-31 do not exist.
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1, 1); // @beyond-block
}

extern "C" __global__ void bad_trap(int *out) {
  if (threadIdx.x == 5)
    __trap(); // @trap
  out[threadIdx.x] = 1;
}

// More than CUDA's 48 KiB of static shared memory: NVRTC refuses it when
// compiling, the emulator when the block runs.
#ifdef RWKV_CUDA_EMU
extern "C" __global__ void bad_static_shared(float *out) {
  RWKV_SHARED(float, big, 13 * 1024); // @too-big
  big[threadIdx.x] = 0.0f;
  out[threadIdx.x] = big[threadIdx.x];
}
#endif

// Writes one element past a shared array: AddressSanitizer's report (the
// emulator puts poisoned redzones between shared arrays).
extern "C" __global__ void bad_shared_overflow(float *out) {
  RWKV_SHARED(float, s, 64);
  s[threadIdx.x + 1] = 1.0f; // @overflow
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}

// clang-format off
RWKV_EMU_MODULE(cudaemu_test_misc,
  RWKV_EMU_KERNEL(barrier_order)
  RWKV_EMU_KERNEL(block_order)
  RWKV_EMU_KERNEL(indices)
  RWKV_EMU_KERNEL(shuffles)
  RWKV_EMU_KERNEL(syncwarp_halves)
  RWKV_EMU_KERNEL(shared_poison)
  RWKV_EMU_KERNEL(shared_per_block)
  RWKV_EMU_KERNEL(dynamic_reverse)
  RWKV_EMU_KERNEL(atomic_sum)
  RWKV_EMU_KERNEL(bad_divergent_barrier)
  RWKV_EMU_KERNEL(bad_barrier_after_exit)
  RWKV_EMU_KERNEL(bad_lane_not_in_mask)
  RWKV_EMU_KERNEL(bad_mask_lane_exits)
  RWKV_EMU_KERNEL(bad_different_collectives)
  RWKV_EMU_KERNEL(bad_read_outside_mask)
  RWKV_EMU_KERNEL(bad_mask_beyond_block)
  RWKV_EMU_KERNEL(bad_trap)
  RWKV_EMU_KERNEL(bad_static_shared)
  RWKV_EMU_KERNEL(bad_shared_overflow)
)
// clang-format on
