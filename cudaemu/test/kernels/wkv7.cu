// RWKV-7 WKV recurrence (docs/math.md, "RWKV-7"), the mapping of the
// public RWKV GPU kernels: one block per head, N = 64 threads, thread i
// holding state row i (value i, keys j) in registers; the token's r, w, k,
// a, b in shared memory between two barriers:
//
//   S[i][j] = S[i][j] w[j] + (sum_l S[i][l] a[l]) b[j] + v[i] k[j]
//   y[i]    = sum_j S[i][j] r[j]
//
// (a = -kk, b = kk * a from wkv7_prep). Tensors: r, w, k, a, b, v, y
// (T, C) token-major with C = H * 64; state (H, 64, 64), updated in place.
// wkv7_step_no_sync_{before,after} drop one of the two barriers, for the
// emulator's tests: the first lets a fast thread overwrite the token's
// values while slower ones still read them, the second reads them before
// every thread has written its own.

#include "rwkv_cuda_prelude.cuh"

#define WKV7_N 64

template <bool SyncBefore, bool SyncAfter>
__device__ __forceinline__ void
wkv7_body(int T, int C, const float *__restrict__ r,
          const float *__restrict__ w, const float *__restrict__ k,
          const float *__restrict__ a, const float *__restrict__ b,
          const float *__restrict__ v, float *__restrict__ state,
          float *__restrict__ y) {
  const int h = blockIdx.x, i = threadIdx.x;
  RWKV_SHARED(float, sr, WKV7_N);
  RWKV_SHARED(float, sw, WKV7_N);
  RWKV_SHARED(float, sk, WKV7_N);
  RWKV_SHARED(float, sa, WKV7_N);
  RWKV_SHARED(float, sb, WKV7_N);

  float s[WKV7_N];
  float *row = state + ((size_t)h * WKV7_N + i) * WKV7_N;
#pragma unroll
  for (int j = 0; j < WKV7_N; ++j)
    s[j] = row[j];

  for (int t = 0; t < T; ++t) {
    const int at = t * C + h * WKV7_N + i;
    if (SyncBefore)
      __syncthreads();
    sr[i] = r[at];
    sw[i] = w[at];
    sk[i] = k[at];
    sa[i] = a[at];
    sb[i] = b[at];
    if (SyncAfter)
      __syncthreads();

    const float vi = v[at];
    float sa_i = 0.0f;
#pragma unroll
    for (int j = 0; j < WKV7_N; ++j)
      sa_i += s[j] * sa[j];
    float yi = 0.0f;
#pragma unroll
    for (int j = 0; j < WKV7_N; ++j) {
      s[j] = s[j] * sw[j] + sa_i * sb[j] + vi * sk[j];
      yi += s[j] * sr[j];
    }
    y[at] = yi;
  }
#pragma unroll
  for (int j = 0; j < WKV7_N; ++j)
    row[j] = s[j];
}

#define WKV7_PARAMS                                                            \
  int T, int C, const float *__restrict__ r, const float *__restrict__ w,      \
      const float *__restrict__ k, const float *__restrict__ a,                \
      const float *__restrict__ b, const float *__restrict__ v,                \
      float *__restrict__ state, float *__restrict__ y

extern "C" __global__ void __launch_bounds__(WKV7_N) wkv7_step(WKV7_PARAMS) {
  wkv7_body<true, true>(T, C, r, w, k, a, b, v, state, y);
}
extern "C" __global__ void __launch_bounds__(WKV7_N)
    wkv7_step_no_sync_before(WKV7_PARAMS) {
  wkv7_body<false, true>(T, C, r, w, k, a, b, v, state, y);
}
extern "C" __global__ void __launch_bounds__(WKV7_N)
    wkv7_step_no_sync_after(WKV7_PARAMS) {
  wkv7_body<true, false>(T, C, r, w, k, a, b, v, state, y);
}

// clang-format off
RWKV_EMU_MODULE(cudaemu_test_wkv7,
  RWKV_EMU_KERNEL(wkv7_step)
  RWKV_EMU_KERNEL(wkv7_step_no_sync_before)
  RWKV_EMU_KERNEL(wkv7_step_no_sync_after)
)
// clang-format on
