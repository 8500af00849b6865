// linear.cuh - the linear-map kernels of rwkvc's CUDA target (issue #11).
//
// Device templates, every shape a template constant, instantiated by the
// extern "C" wrappers that codegen/cuda/KernelsLinear.cpp generates for
// rwkv.linear, rwkv.mix_linear, rwkv.gate_linear, rwkv.relu_sq_linear,
// rwkv.packed_mix_linear and rwkv.lora. Needs only the prelude
// (cudaemu/include/rwkv_cuda_prelude.cuh), pasted before this file: the same
// text compiles with NVRTC, clang's CUDA front end and, as host C++, for the
// emulator (docs/cuda-emulator.md).
//
// Data: activations f32 rows [rows][K], contiguous, 16-byte aligned;
// weights f32, f16 or bf16 (W), 16-byte aligned, row-major as stored;
// per-channel vectors (mix t, bias) K contiguous floats.
//
// The input transform x = TR(a, b) is computed while the input is staged:
//   RWKV_LIN_PLAIN    x = a
//   RWKV_LIN_MIX      x = a + (b - a) * t[k]       (t: the segment's mix)
//   RWKV_LIN_GATE     x = sigmoid(a) * b
//   RWKV_LIN_RELU_SQ  x = max(a, 0)^2
//   RWKV_LIN_MIX_ROWS x = a + (b - a) * t[r][k]    (a data-dependent mix)
// Segments (packed_mix_linear): the weight is SEG matrices [N][K] stacked
// by rows; segment s uses mix t[s] and writes out[s]. A block's outputs lie
// in one segment. Residual (RES): out[r][n] = residual[r][n] + acc, read and
// written by the same thread, so residual may be out itself.
//
//   kernel                  grid (x, y)              block  per block
//   rwkv_linear_gemv        SEG*ceil(N/(8*RPW)), rows 256    8 warps x RPW
//     out_in, decode        one warp per output row (RPW rows a warp): each
//                           lane streams 16 bytes of each row a step (8
//                           halves or 4 floats), f32 accumulation, xor-
//                           shuffle reduction; the transformed input row is
//                           staged in shared memory in chunks of <= 2048
//                           floats (8 KiB, so that many blocks fit an SM).
//                           RPW (1, 2 or 4, chosen by the generator) keeps
//                           >= 256 blocks in flight and amortizes staging.
//   rwkv_linear_gemm_mma    SEG*ceil(N/64), ceil(rows/64)  128   64x64 tile
//     out_in, f16/bf16,     K-step 32, 4 warps of 32x32 (2x4 mma.m16n8k16,
//     prefill               f32 accumulators), double-buffered shared tiles
//                           padded to 40 halves a row (fragment loads free of
//                           bank conflicts), the next tile prefetched into
//                           registers during the mma (one barrier a step).
//                           The transformed activation is rounded to W
//                           (round to nearest even) as it is staged.
//   rwkv_linear_gemm_f32    SEG*ceil(N/64), ceil(rows/64)  256   64x64 tile
//     out_in, f32 weights   K-step 16, 4x4 outputs a thread, f32 FMA.
//   rwkv_linear_in_out      ceil(N/256), ceil(rows/RB)     256   RB rows
//     in_out [K][N]         one thread per output column (coalesced reads of
//                           a weight row), RB input rows staged in shared
//                           memory (chunks of <= 4096/RB floats).
//   rwkv_lora_down + _up    ceil(C/CS), rows; ceil(CO/8V), rows   256
//     lora, decode          two launches over the whole GPU: slices of CS
//                           rows of A give partial sums of x A (a temporary);
//                           the second sums them in order, applies act and
//                           streams B, 8 column pieces a block x 32 groups
//                           splitting D.
//   rwkv_lora               1, ceil(rows/RB)               512   RB rows
//     act(x A) B            stage 1: h = act(x A) into shared memory (A
//                           [C][D]: a row read as 16-byte pieces by D/8 or
//                           D/4 threads, the other thread groups split C, 4
//                           rows in flight; shuffles, then shared memory,
//                           sum the groups); stage 2: a thread per 16-byte
//                           piece of a row of B [D][CO]. Thread-per-column
//                           paths for the other shapes.
// Shapes: any rows (tails guarded), any N (rows of W guarded, scalar stores
// when N is odd), K a multiple of 16/sizeof(W) for the 16-byte weight loads
// (other K take a scalar path, as does an A-tile when K % 4 != 0).
// No ldmatrix or cp.async: the emulator does not have them.

#ifndef RWKV_CUDA_KERNELS_LINEAR_CUH
#define RWKV_CUDA_KERNELS_LINEAR_CUH

#ifndef RWKV_CUDA_PRELUDE_CUH
#include "rwkv_cuda_prelude.cuh"
#endif

#define RWKV_LIN_PLAIN 0
#define RWKV_LIN_MIX 1
#define RWKV_LIN_GATE 2
#define RWKV_LIN_RELU_SQ 3
#define RWKV_LIN_MIX_ROWS 4
#define RWKV_LIN_IS_MIX(TR) ((TR) == RWKV_LIN_MIX || (TR) == RWKV_LIN_MIX_ROWS)
#define RWKV_LIN_TWO(TR) (RWKV_LIN_IS_MIX(TR) || (TR) == RWKV_LIN_GATE)

#define RWKV_ACT_NONE 0
#define RWKV_ACT_TANH 1
#define RWKV_ACT_SIGMOID 2

// --- Scalars ---------------------------------------------------------------

__device__ __forceinline__ float rwkv_lin_sigmoid(float x) {
  return 1.0f / (1.0f + __expf(-x));
}

template <int ACT> __device__ __forceinline__ float rwkv_lin_act(float x) {
  if (ACT == RWKV_ACT_TANH)
    return tanhf(x);
  if (ACT == RWKV_ACT_SIGMOID)
    return rwkv_lin_sigmoid(x);
  return x;
}

__device__ __forceinline__ float rwkv_lin_to_float(float w) { return w; }
__device__ __forceinline__ float rwkv_lin_to_float(__half w) {
  return __half2float(w);
}
__device__ __forceinline__ float rwkv_lin_to_float(__nv_bfloat16 w) {
  return __bfloat162float(w);
}

/// The transformed input element: a, b at `i`, the mix at channel `k`.
template <int TR>
__device__ __forceinline__ float rwkv_lin_transform(float a, float b, float t) {
  if (RWKV_LIN_IS_MIX(TR))
    return a + (b - a) * t;
  if (TR == RWKV_LIN_GATE)
    return rwkv_lin_sigmoid(a) * b;
  if (TR == RWKV_LIN_RELU_SQ) {
    const float r = fmaxf(a, 0.0f);
    return r * r;
  }
  return a;
}

/// p[i .. i+3] as floats; zeros when !ok, and past K (p: a row of K). A
/// 16-byte load for f32 when K % 4 == 0 (then i is a multiple of 4).
template <int K, class T>
__device__ __forceinline__ float4 rwkv_lin_ld4(const T *p, size_t i, int k,
                                               bool ok) {
  if (!ok)
    return make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  if (K % 4 == 0 && sizeof(T) == 4)
    return *reinterpret_cast<const float4 *>(p + i);
  float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int e = 0; e < 4 && (K % 4 == 0 || k + e < K); ++e)
    v[e] = rwkv_lin_to_float(p[i + e]);
  return make_float4(v[0], v[1], v[2], v[3]);
}

/// Transformed inputs at element `i` of the rows, channel `k`: 4 of them
/// (float4 loads; needs i, k multiples of 4) or one. The mix (f32, f16 or
/// bf16) is t[k], or t[i] for a data-dependent mix.
template <int TR, class MT>
__device__ __forceinline__ float4 rwkv_lin_in4(const float *a, const float *b,
                                               const MT *t, size_t i, int k) {
  const float4 x = *reinterpret_cast<const float4 *>(a + i);
  float4 y = x, m = x;
  if (RWKV_LIN_TWO(TR))
    y = *reinterpret_cast<const float4 *>(b + i);
  if (RWKV_LIN_IS_MIX(TR))
    m = rwkv_lin_ld4<4>(t, TR == RWKV_LIN_MIX_ROWS ? i : (size_t)k, 0, true);
  return make_float4(rwkv_lin_transform<TR>(x.x, y.x, m.x),
                     rwkv_lin_transform<TR>(x.y, y.y, m.y),
                     rwkv_lin_transform<TR>(x.z, y.z, m.z),
                     rwkv_lin_transform<TR>(x.w, y.w, m.w));
}
template <int TR, class MT>
__device__ __forceinline__ float rwkv_lin_in1(const float *a, const float *b,
                                              const MT *t, size_t i, int k) {
  return rwkv_lin_transform<TR>(
      a[i], RWKV_LIN_TWO(TR) ? b[i] : 0.0f,
      RWKV_LIN_IS_MIX(TR)
          ? rwkv_lin_to_float(t[TR == RWKV_LIN_MIX_ROWS ? i : (size_t)k])
          : 0.0f);
}

/// p[s] for a runtime s < SEG without a local-memory array.
template <int SEG, class P>
__device__ __forceinline__ P rwkv_lin_pick(const P (&p)[SEG], int s) {
  P r = p[0];
#pragma unroll
  for (int i = 1; i < SEG; ++i)
    if (s == i)
      r = p[i];
  return r;
}

/// Stages the transformed rows [r0, r0 + NR) x [k0, k0 + kc) of the input
/// (rows beyond `rows`: zero) into xs[NR][LD], with every thread of the block.
template <int TR, int K, int NR, int LD, class MT>
__device__ __forceinline__ void
rwkv_lin_stage(float *xs, const float *a, const float *b, const MT *t,
               long long rows, long long r0, int k0, int kc) {
  const int nt = blockDim.x * blockDim.y * blockDim.z;
  if (K % 4 == 0) {
    const int q = kc / 4; // kc and k0 are multiples of 4 here
    for (int e = threadIdx.x; e < NR * q; e += nt) {
      const int r = e / q, c = (e - r * q) * 4;
      float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      if (r0 + r < rows)
        v = rwkv_lin_in4<TR>(a, b, t, (size_t)(r0 + r) * K + k0 + c, k0 + c);
      *reinterpret_cast<float4 *>(xs + r * LD + c) = v;
    }
  } else {
    for (int e = threadIdx.x; e < NR * kc; e += nt) {
      const int r = e / kc, c = e - r * kc;
      xs[r * LD + c] = r0 + r < rows ? rwkv_lin_in1<TR>(a, b, t,
                                                       (size_t)(r0 + r) * K +
                                                           k0 + c,
                                                       k0 + c)
                                     : 0.0f;
    }
  }
}

/// The staged loop over [0, K) in chunks of KC (then the rest, K % KC): for
/// each, stage(k0, kc) with the whole block, a barrier, body(k0, kc), and a
/// barrier before the next stage. Both are inlined with kc a constant, so
/// that `kc == KC ? f<KC>() : f<K % KC>()` in a body costs nothing. (Not a
/// generic lambda taking the length as a type: NVRTC compiles those only
/// with --extended-lambda.)
template <int K, int KC, class Stage, class Body>
__device__ __forceinline__ void rwkv_lin_chunks(Stage stage, Body body) {
  constexpr int FULL = K / KC, TAIL = K - FULL * KC;
#pragma unroll 1
  for (int ch = 0; ch < FULL; ++ch) {
    if (ch > 0)
      __syncthreads(); // every thread is done with the previous chunk
    stage(ch * KC, KC);
    __syncthreads();
    body(ch * KC, KC);
  }
  if (TAIL > 0) {
    if (FULL > 0)
      __syncthreads();
    stage(FULL * KC, TAIL);
    __syncthreads();
    body(FULL * KC, TAIL);
  }
}

/// Sum of the 8 (halves) or 4 (floats) weights of `p` times x[0..].
__device__ __forceinline__ float rwkv_lin_dot16(uint4 p, const float *x,
                                                const float *) {
  const float4 v = *reinterpret_cast<const float4 *>(x);
  return __uint_as_float(p.x) * v.x + __uint_as_float(p.y) * v.y +
         __uint_as_float(p.z) * v.z + __uint_as_float(p.w) * v.w;
}
__device__ __forceinline__ float rwkv_lin_lo(unsigned u, const __half *) {
  return __half2float(__ushort_as_half((unsigned short)(u & 0xffffu)));
}
__device__ __forceinline__ float rwkv_lin_hi(unsigned u, const __half *) {
  return __half2float(__ushort_as_half((unsigned short)(u >> 16)));
}
__device__ __forceinline__ float rwkv_lin_lo(unsigned u,
                                             const __nv_bfloat16 *) {
  return __uint_as_float(u << 16);
}
__device__ __forceinline__ float rwkv_lin_hi(unsigned u,
                                             const __nv_bfloat16 *) {
  return __uint_as_float(u & 0xffff0000u);
}
template <class W>
__device__ __forceinline__ float rwkv_lin_dot16(uint4 p, const float *x,
                                                const W *tag) {
  const float4 u = *reinterpret_cast<const float4 *>(x);
  const float4 v = *reinterpret_cast<const float4 *>(x + 4);
  return rwkv_lin_lo(p.x, tag) * u.x + rwkv_lin_hi(p.x, tag) * u.y +
         rwkv_lin_lo(p.y, tag) * u.z + rwkv_lin_hi(p.y, tag) * u.w +
         rwkv_lin_lo(p.z, tag) * v.x + rwkv_lin_hi(p.z, tag) * v.y +
         rwkv_lin_lo(p.w, tag) * v.z + rwkv_lin_hi(p.w, tag) * v.w;
}

/// The epilogue: out[i] = (residual[i] +) v.
template <bool RES>
__device__ __forceinline__ void rwkv_lin_store(float *out,
                                               const float *residual, size_t i,
                                               float v) {
  if (RES)
    v = residual[i] + v;
  out[i] = v;
}

// --- Decode GEMV -------------------------------------------------------------

/// acc[r] += W row r [k0, k0 + KCT) . xs[0, KCT) for one warp: 16-byte
/// weight loads when a row's chunk is made of them (lane l takes steps l,
/// l + 32, ...), else one weight a lane a step.
template <int KCT, class W, int RPW>
__device__ __forceinline__ void rwkv_lin_gemv_chunk(float (&acc)[RPW],
                                                    const W *const (&wr)[RPW],
                                                    int k0, const float *xs,
                                                    int lane) {
  constexpr int VEC = 16 / (int)sizeof(W);
  if (KCT % VEC == 0) {
    constexpr int STEPS = KCT / VEC, ROUNDS = STEPS / 32, REST = STEPS % 32;
#pragma unroll 4
    for (int i = 0; i < ROUNDS; ++i) {
      const int c = i * 32 + lane;
      uint4 p[RPW];
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        p[r] = *reinterpret_cast<const uint4 *>(wr[r] + k0 + c * VEC);
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        acc[r] += rwkv_lin_dot16(p[r], xs + c * VEC, wr[r]);
    }
    if (REST > 0 && lane < REST) {
      const int c = ROUNDS * 32 + lane;
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        acc[r] += rwkv_lin_dot16(
            *reinterpret_cast<const uint4 *>(wr[r] + k0 + c * VEC),
            xs + c * VEC, wr[r]);
    }
  } else {
    for (int c = lane; c < KCT; c += 32) {
#pragma unroll
      for (int r = 0; r < RPW; ++r)
        acc[r] += rwkv_lin_to_float(wr[r][k0 + c]) * xs[c];
    }
  }
}

#define RWKV_LIN_GEMV_WARPS 8

/// out[s][r][n] = (residual +) sum_k W[s*N + n][k] x_s[r][k] for one row r =
/// blockIdx.y; W [SEG*N][K]. Block: 256 threads; grid (SEG*ceil(N/(8*RPW)),
/// rows).
template <class W, int K, int N, int SEG, int TR, int RPW, bool RES, class MT>
__device__ __forceinline__ void
rwkv_linear_gemv(long long rows, const float *a, const float *b,
                 const MT *const (&t)[SEG], const W *__restrict__ w,
                 const float *residual, float *const (&out)[SEG]) {
  constexpr int RPB = RWKV_LIN_GEMV_WARPS * RPW; // output rows a block
  constexpr int BPS = (N + RPB - 1) / RPB;        // blocks a segment
  constexpr int KC = K < 2048 ? K : 2048; // staged floats
  RWKV_SHARED(float, xs, KC);
  const long long row = blockIdx.y;
  if (row >= rows) // the whole block leaves together
    return;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int seg = blockIdx.x / BPS;
  const int n0 = (blockIdx.x - seg * BPS) * RPB + warp * RPW;
  const MT *ts = rwkv_lin_pick<SEG>(t, seg);
  const W *wr[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r) // rows past N read row N-1, not stored
    wr[r] = w + ((size_t)seg * N + (n0 + r < N ? n0 + r : N - 1)) * K;
  float acc[RPW];
#pragma unroll
  for (int r = 0; r < RPW; ++r)
    acc[r] = 0.0f;
  rwkv_lin_chunks<K, KC>(
      [&](int k0, int kc) {
        rwkv_lin_stage<TR, K, 1, KC>(xs, a, b, ts, rows, row, k0, kc);
      },
      [&](int k0, int kc) {
        if (kc == KC)
          rwkv_lin_gemv_chunk<KC>(acc, wr, k0, xs, lane);
        else
          rwkv_lin_gemv_chunk<K % KC>(acc, wr, k0, xs, lane);
      });
#pragma unroll
  for (int r = 0; r < RPW; ++r) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], o);
  }
  if (lane < RPW) {
    float v = acc[0];
#pragma unroll
    for (int r = 1; r < RPW; ++r)
      if (lane == r)
        v = acc[r];
    if (n0 + lane < N)
      rwkv_lin_store<RES>(rwkv_lin_pick<SEG>(out, seg), residual,
                          (size_t)row * N + n0 + lane, v);
  }
}

// --- Prefill GEMM on tensor cores --------------------------------------------

#define RWKV_LIN_MMA_BM 64
#define RWKV_LIN_MMA_BN 64
#define RWKV_LIN_MMA_BK 32
#define RWKV_LIN_MMA_LDS 40 // halves a shared row: BK + 8, conflict-free

__device__ __forceinline__ uint32_t rwkv_lin_pack(float x, float y,
                                                  const __half *) {
  return (uint32_t)__half_as_ushort(__float2half_rn(x)) |
         ((uint32_t)__half_as_ushort(__float2half_rn(y)) << 16);
}
__device__ __forceinline__ uint32_t rwkv_lin_pack(float x, float y,
                                                  const __nv_bfloat16 *) {
  return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(x)) |
         ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(y)) << 16);
}
__device__ __forceinline__ void rwkv_lin_mma(float d[4], const uint32_t a[4],
                                             const uint32_t b[2],
                                             const __half *) {
  rwkv_mma_m16n8k16_f32_f16(d, a, b, d);
}
__device__ __forceinline__ void rwkv_lin_mma(float d[4], const uint32_t a[4],
                                             const uint32_t b[2],
                                             const __nv_bfloat16 *) {
  rwkv_mma_m16n8k16_f32_bf16(d, a, b, d);
}

/// out[s][r][n] = (residual +) sum_k W[s*N + n][k] x_s[r][k], W f16 or bf16
/// [SEG*N][K], x rounded to W. Block: 128 threads; grid (SEG*ceil(N/64),
/// ceil(rows/64)).
template <class W, int K, int N, int SEG, int TR, bool RES, class MT>
__device__ __forceinline__ void
rwkv_linear_gemm_mma(long long rows, const float *a, const float *b,
                     const MT *const (&t)[SEG], const W *__restrict__ w,
                     const float *residual, float *const (&out)[SEG]) {
  constexpr int BM = RWKV_LIN_MMA_BM, BN = RWKV_LIN_MMA_BN,
                BK = RWKV_LIN_MMA_BK, LDS = RWKV_LIN_MMA_LDS;
  constexpr int BPS = (N + BN - 1) / BN;
  constexpr int KT = (K + BK - 1) / BK;
  constexpr bool kVecW = K % 8 == 0;
  constexpr bool kTwo = RWKV_LIN_TWO(TR), kRowMix = TR == RWKV_LIN_MIX_ROWS;
  RWKV_SHARED(uint32_t, as, 2 * BM * LDS / 2);
  RWKV_SHARED(uint32_t, bs, 2 * BN * LDS / 2);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, q = lane & 3;
  const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
  const int seg = blockIdx.x / BPS;
  const int n0 = (blockIdx.x - seg * BPS) * BN;
  const long long m0 = (long long)blockIdx.y * BM;
  const MT *ts = rwkv_lin_pick<SEG>(t, seg);
  const W *ws = w + (size_t)seg * N * K;

  // Global -> registers: A 4 float4 a thread (row (tid + 128 j) / 8, column
  // tid % 8 * 4: the same column for every j, so one float4 of a static
  // mix), W 2 uint4 (row (tid + 128 j) / 4, 8 halves at tid % 4 * 8).
  constexpr int NT = kRowMix ? 4 : 1;
  float4 ra[4], rb[4], rt[NT];
  uint4 rw[2];
  auto load = [&](int kt) {
    const int k = kt * BK + (tid & 7) * 4;
    const float4 zero = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int j = 0; j < NT; ++j)
      rt[j] = zero;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const long long m = m0 + ((tid + 128 * j) >> 3);
      ra[j] = rb[j] = zero;
      if (m < rows && k < K) {
        const size_t i = (size_t)m * K + k;
        ra[j] = rwkv_lin_ld4<K>(a, i, k, true);
        if (kTwo)
          rb[j] = rwkv_lin_ld4<K>(b, i, k, true);
        if (kRowMix)
          rt[kRowMix ? j : 0] = rwkv_lin_ld4<K>(ts, i, k, true);
      }
    }
    if (TR == RWKV_LIN_MIX && k < K)
      rt[0] = rwkv_lin_ld4<K>(ts, (size_t)k, k, true);
    const int kw = kt * BK + (tid & 3) * 8;
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int n = n0 + ((tid + 128 * j) >> 2);
      rw[j] = make_uint4(0u, 0u, 0u, 0u);
      if (n < N && kw < K) {
        const W *p = ws + (size_t)n * K + kw;
        if (kVecW)
          rw[j] = *reinterpret_cast<const uint4 *>(p);
        else {
          unsigned short h[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (int e = 0; e < 8 && kw + e < K; ++e)
            h[e] = reinterpret_cast<const unsigned short *>(p)[e];
          rw[j] = make_uint4(h[0] | (unsigned)h[1] << 16,
                             h[2] | (unsigned)h[3] << 16,
                             h[4] | (unsigned)h[5] << 16,
                             h[6] | (unsigned)h[7] << 16);
        }
      }
    }
  };
  // Registers -> shared buffer `buf`, the transform applied, A rounded to W.
  // Rows past `rows` and columns past K were loaded as zeros: their
  // transform is zero (mix, gate and relu_sq of zeros are zero).
  auto store = [&](int buf) {
    uint32_t *sa = as + buf * (BM * LDS / 2);
    uint32_t *sb = bs + buf * (BN * LDS / 2);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int r = (tid + 128 * j) >> 3;
      const float4 m = rt[kRowMix ? j : 0];
      const float x0 = rwkv_lin_transform<TR>(ra[j].x, rb[j].x, m.x);
      const float x1 = rwkv_lin_transform<TR>(ra[j].y, rb[j].y, m.y);
      const float x2 = rwkv_lin_transform<TR>(ra[j].z, rb[j].z, m.z);
      const float x3 = rwkv_lin_transform<TR>(ra[j].w, rb[j].w, m.w);
      *reinterpret_cast<uint2 *>(sa + r * (LDS / 2) + (tid & 7) * 2) =
          make_uint2(rwkv_lin_pack(x0, x1, w), rwkv_lin_pack(x2, x3, w));
    }
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int r = (tid + 128 * j) >> 2;
      *reinterpret_cast<uint4 *>(sb + r * (LDS / 2) + (tid & 3) * 4) = rw[j];
    }
  };

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        acc[i][j][e] = 0.0f;

  load(0);
  store(0);
  __syncthreads();
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    if (kt + 1 < KT)
      load(kt + 1); // in flight during the mma below
    const uint32_t *sa = as + (kt & 1) * (BM * LDS / 2);
    const uint32_t *sb = bs + (kt & 1) * (BN * LDS / 2);
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t fa[2][4], fb[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const uint32_t *p = sa + (wm + i * 16 + g) * (LDS / 2) + kk / 2 + q;
        fa[i][0] = p[0];
        fa[i][1] = p[8 * (LDS / 2)];
        fa[i][2] = p[4];
        fa[i][3] = p[8 * (LDS / 2) + 4];
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const uint32_t *p = sb + (wn + j * 8 + g) * (LDS / 2) + kk / 2 + q;
        fb[j][0] = p[0];
        fb[j][1] = p[4];
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          rwkv_lin_mma(acc[i][j], fa[i], fb[j], w);
    }
    if (kt + 1 < KT)
      store((kt + 1) & 1);
    __syncthreads();
  }

  float *o = rwkv_lin_pick<SEG>(out, seg);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const long long m = m0 + wm + i * 16 + g + h * 8;
      if (m >= rows)
        continue;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int n = n0 + wn + j * 8 + 2 * q;
        const size_t at = (size_t)m * N + n;
        if (N % 2 == 0 && n < N) {
          float2 v = make_float2(acc[i][j][2 * h], acc[i][j][2 * h + 1]);
          if (RES) {
            const float2 r = *reinterpret_cast<const float2 *>(residual + at);
            v.x = r.x + v.x;
            v.y = r.y + v.y;
          }
          *reinterpret_cast<float2 *>(o + at) = v;
        } else {
          if (n < N)
            rwkv_lin_store<RES>(o, residual, at, acc[i][j][2 * h]);
          if (n + 1 < N)
            rwkv_lin_store<RES>(o, residual, at + 1, acc[i][j][2 * h + 1]);
        }
      }
    }
}

// --- Prefill GEMM, f32 weights -----------------------------------------------

#define RWKV_LIN_F32_BM 64
#define RWKV_LIN_F32_BN 64
#define RWKV_LIN_F32_BK 16

/// As rwkv_linear_gemm_mma for W = float, on the FMA units. Block: 256
/// threads (16 x 16, each 4 rows x 4 columns strided by 16); grid
/// (SEG*ceil(N/64), ceil(rows/64)).
template <int K, int N, int SEG, int TR, bool RES, class MT>
__device__ __forceinline__ void
rwkv_linear_gemm_f32(long long rows, const float *a, const float *b,
                     const MT *const (&t)[SEG],
                     const float *__restrict__ w, const float *residual,
                     float *const (&out)[SEG]) {
  constexpr int BM = RWKV_LIN_F32_BM, BN = RWKV_LIN_F32_BN,
                BK = RWKV_LIN_F32_BK, LD = BM + 4;
  constexpr int BPS = (N + BN - 1) / BN;
  constexpr int KT = (K + BK - 1) / BK;
  RWKV_SHARED(float, as, 2 * BK * LD);
  RWKV_SHARED(float, bs, 2 * BK * LD);
  const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const int seg = blockIdx.x / BPS;
  const int n0 = (blockIdx.x - seg * BPS) * BN;
  const long long m0 = (long long)blockIdx.y * BM;
  const MT *ts = rwkv_lin_pick<SEG>(t, seg);
  const float *ws = w + (size_t)seg * N * K;
  const int lr = tid >> 2, lc = (tid & 3) * 4; // the float4 a thread loads

  // Raw inputs in registers during the FMAs; transformed at the store.
  float4 ra, rb, rt, rw;
  auto load = [&](int kt) {
    const int k = kt * BK + lc;
    const long long m = m0 + lr;
    const int n = n0 + lr;
    const bool okA = m < rows && k < K;
    const size_t i = (size_t)m * K + k;
    ra = rwkv_lin_ld4<K>(a, i, k, okA);
    rb = rt = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (RWKV_LIN_TWO(TR))
      rb = rwkv_lin_ld4<K>(b, i, k, okA);
    if (TR == RWKV_LIN_MIX_ROWS)
      rt = rwkv_lin_ld4<K>(ts, i, k, okA);
    if (TR == RWKV_LIN_MIX)
      rt = rwkv_lin_ld4<K>(ts, (size_t)k, k, k < K);
    rw = rwkv_lin_ld4<K>(ws, (size_t)n * K + k, k, n < N && k < K);
  };
  auto store = [&](int buf) {
    float *sa = as + buf * BK * LD, *sb = bs + buf * BK * LD;
    sa[(lc + 0) * LD + lr] = rwkv_lin_transform<TR>(ra.x, rb.x, rt.x);
    sa[(lc + 1) * LD + lr] = rwkv_lin_transform<TR>(ra.y, rb.y, rt.y);
    sa[(lc + 2) * LD + lr] = rwkv_lin_transform<TR>(ra.z, rb.z, rt.z);
    sa[(lc + 3) * LD + lr] = rwkv_lin_transform<TR>(ra.w, rb.w, rt.w);
    sb[(lc + 0) * LD + lr] = rw.x;
    sb[(lc + 1) * LD + lr] = rw.y;
    sb[(lc + 2) * LD + lr] = rw.z;
    sb[(lc + 3) * LD + lr] = rw.w;
  };

  float acc[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
      acc[i][j] = 0.0f;
  load(0);
  store(0);
  __syncthreads();
#pragma unroll 1
  for (int kt = 0; kt < KT; ++kt) {
    if (kt + 1 < KT)
      load(kt + 1);
    const float *sa = as + (kt & 1) * BK * LD, *sb = bs + (kt & 1) * BK * LD;
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float av[4], bv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        av[i] = sa[kk * LD + ty + 16 * i];
#pragma unroll
      for (int j = 0; j < 4; ++j)
        bv[j] = sb[kk * LD + tx + 16 * j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[i][j] += av[i] * bv[j];
    }
    if (kt + 1 < KT)
      store((kt + 1) & 1);
    __syncthreads();
  }
  float *o = rwkv_lin_pick<SEG>(out, seg);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const long long m = m0 + ty + 16 * i;
    if (m >= rows)
      continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int n = n0 + tx + 16 * j;
      if (n < N)
        rwkv_lin_store<RES>(o, residual, (size_t)m * N + n, acc[i][j]);
    }
  }
}

// --- in_out layout -----------------------------------------------------------

/// acc[r] += sum_k xs[r][k] p[k * N] over a staged chunk of KCT rows of W
/// (p: this thread's column).
template <int KCT, int KC, int N, class W, int RB>
__device__ __forceinline__ void
rwkv_lin_in_out_chunk(float (&acc)[RB], const W *p, const float *xs) {
#pragma unroll 8
  for (int k = 0; k < KCT; ++k) {
    const float v = rwkv_lin_to_float(p[(size_t)k * N]);
#pragma unroll
    for (int r = 0; r < RB; ++r)
      acc[r] += xs[r * KC + k] * v;
  }
}

/// out[r][n] = (residual +) sum_k x[r][k] W[k][n], W [K][N] (in_out), for RB
/// rows a block. Block: 256 threads, one output column each; grid
/// (ceil(N/256), ceil(rows/RB)).
template <class W, int K, int N, int RB, bool RES>
__device__ __forceinline__ void
rwkv_linear_in_out(long long rows, const float *x, const W *__restrict__ w,
                   const float *residual, float *out) {
  constexpr int KC = K < 4096 / RB ? K : 4096 / RB; // 16 KiB of rows
  RWKV_SHARED(float, xs, RB * KC);
  const long long r0 = (long long)blockIdx.y * RB;
  const int n = blockIdx.x * 256 + threadIdx.x;
  float acc[RB];
#pragma unroll
  for (int r = 0; r < RB; ++r)
    acc[r] = 0.0f;
  rwkv_lin_chunks<K, KC>(
      [&](int k0, int kc) {
        rwkv_lin_stage<RWKV_LIN_PLAIN, K, RB, KC>(
            xs, x, nullptr, (const float *)nullptr, rows, r0, k0, kc);
      },
      [&](int k0, int kc) {
        if (n >= N)
          return;
        if (kc == KC)
          rwkv_lin_in_out_chunk<KC, KC, N>(acc, w + (size_t)k0 * N + n, xs);
        else
          rwkv_lin_in_out_chunk<K % KC, KC, N>(acc, w + (size_t)k0 * N + n,
                                               xs);
      });
  if (n < N) {
#pragma unroll
    for (int r = 0; r < RB; ++r)
      if (r0 + r < rows)
        rwkv_lin_store<RES>(out, residual, (size_t)(r0 + r) * N + n, acc[r]);
  }
}

// --- LoRA --------------------------------------------------------------------

#define RWKV_LORA_THREADS 512

/// The 4 floats or 8 halves of a 16-byte load as floats.
__device__ __forceinline__ void rwkv_lin_unpack(uint4 p, float (&f)[4],
                                                const float *) {
  f[0] = __uint_as_float(p.x);
  f[1] = __uint_as_float(p.y);
  f[2] = __uint_as_float(p.z);
  f[3] = __uint_as_float(p.w);
}
template <class W>
__device__ __forceinline__ void rwkv_lin_unpack(uint4 p, float (&f)[8],
                                                const W *tag) {
  const unsigned u[4] = {p.x, p.y, p.z, p.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    f[2 * i] = rwkv_lin_lo(u[i], tag);
    f[2 * i + 1] = rwkv_lin_hi(u[i], tag);
  }
}

/// out[r] = (residual +) out_act(bias + act(x[r] A) B), x = TR(a, b; t)
/// (a, or a fused lerp a + (b - a) t with t per channel), A [C][D] and B
/// [D][CO] (in_out), for RB rows a block; h = act(x A) lives in shared
/// memory. Block: 512 threads; grid (1, ceil(rows/RB)).
///
/// Stage 1, vector path (a row of A is 1-32 16-byte pieces, a power of 2,
/// and the partial sums fit): TPR threads per row of A, each a 16-byte piece
/// of VA columns, the other NT/TPR thread groups take every (NT/TPR)-th row
/// of the staged chunk, 4 rows a step in flight; the groups of a warp meet by
/// xor shuffles, the warps in shared memory. Otherwise one thread per column
/// of A in NT/D groups. Stage 2: a thread per 16-byte piece of a row of B
/// (VB output columns, 4 rows of B in flight), or per column.
template <class WA, class WB, int C, int D, int CO, int ACT, int OUT_ACT,
          bool BIAS, int RB, bool RES, int TR, class MT, class BT>
__device__ __forceinline__ void
rwkv_lora(long long rows, const float *a, const float *b, const MT *t,
          const WA *__restrict__ A, const WB *__restrict__ B,
          const BT *__restrict__ bias, const float *residual, float *out) {
  constexpr int NT = RWKV_LORA_THREADS, WARPS = NT / 32;
  constexpr int KC = C < 2048 / RB ? C : 2048 / RB; // 8 KiB of rows
  constexpr int VA = 16 / (int)sizeof(WA), TPR = D / VA;
  constexpr bool kVecA = D % VA == 0 && TPR > 0 && TPR <= 32 &&
                         (TPR & (TPR - 1)) == 0 &&
                         WARPS * RB * D <= 8192;
  // Scalar stage 1: G groups of D threads (or one group, JPT columns each).
  constexpr int G = D <= NT ? NT / D : 1;
  constexpr int JPT = D <= NT ? 1 : (D + NT - 1) / NT;
  constexpr int PART = kVecA ? WARPS * RB * D : G * RB * D;
  RWKV_SHARED(float, xs, RB * KC);
  RWKV_SHARED(float, part, PART);
  RWKV_SHARED(float, h, RB * D);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const long long r0 = (long long)blockIdx.y * RB;
  auto stage = [&](int k0, int kc) {
    rwkv_lin_stage<TR, C, RB, KC>(xs, a, b, t, rows, r0, k0, kc);
  };

  // Stage 1: part = the groups' sums of x A.
  if constexpr (kVecA) {
    constexpr int GV = NT / TPR; // row groups
    const int v = tid % TPR, grp = tid / TPR;
    float acc[RB][VA];
#pragma unroll
    for (int r = 0; r < RB; ++r)
#pragma unroll
      for (int e = 0; e < VA; ++e)
        acc[r][e] = 0.0f;
    rwkv_lin_chunks<C, KC>(stage, [&](int k0, int kc) {
      for (int k = grp; k < kc; k += 4 * GV) {
        uint4 p[4];
#pragma unroll
        for (int u = 0; u < 4; ++u)
          p[u] = k + u * GV < kc
                     ? *reinterpret_cast<const uint4 *>(
                           A + (size_t)(k0 + k + u * GV) * D + v * VA)
                     : make_uint4(0u, 0u, 0u, 0u);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          float w[VA];
          rwkv_lin_unpack(p[u], w, A);
#pragma unroll
          for (int r = 0; r < RB; ++r) {
            const float xv = k + u * GV < kc ? xs[r * KC + k + u * GV] : 0.0f;
#pragma unroll
            for (int e = 0; e < VA; ++e)
              acc[r][e] += xv * w[e];
          }
        }
      }
    });
#pragma unroll
    for (int r = 0; r < RB; ++r)
#pragma unroll
      for (int e = 0; e < VA; ++e) {
#pragma unroll
        for (int o = 16; o >= TPR; o >>= 1)
          acc[r][e] += __shfl_xor_sync(0xffffffffu, acc[r][e], o);
        if (lane < TPR)
          part[(warp * RB + r) * D + v * VA + e] = acc[r][e];
      }
  } else {
    const int grp = D <= NT ? tid / D : 0;
    const int j0 = D <= NT ? tid - grp * D : tid;
    const bool active = D <= NT ? grp < G : true;
    float acc[RB][JPT];
#pragma unroll
    for (int r = 0; r < RB; ++r)
#pragma unroll
      for (int jj = 0; jj < JPT; ++jj)
        acc[r][jj] = 0.0f;
    rwkv_lin_chunks<C, KC>(stage, [&](int k0, int kc) {
      if (!active)
        return;
      // Rows k, k + G, k + 2G, k + 3G of A a step: 4 loads in flight.
      for (int k = grp; k < kc; k += 4 * G) {
#pragma unroll
        for (int jj = 0; jj < JPT; ++jj) {
          const int j = j0 + jj * NT;
          if (JPT == 1 || j < D) {
            float v[4];
#pragma unroll
            for (int u = 0; u < 4; ++u)
              v[u] = k + u * G < kc ? rwkv_lin_to_float(
                                          A[(size_t)(k0 + k + u * G) * D + j])
                                    : 0.0f;
#pragma unroll
            for (int u = 0; u < 4; ++u)
#pragma unroll
              for (int r = 0; r < RB; ++r)
                if (k + u * G < kc)
                  acc[r][jj] += xs[r * KC + k + u * G] * v[u];
          }
        }
      }
    });
    if (active) {
#pragma unroll
      for (int jj = 0; jj < JPT; ++jj) {
        const int j = j0 + jj * NT;
        if (JPT == 1 || j < D) {
#pragma unroll
          for (int r = 0; r < RB; ++r)
            part[(grp * RB + r) * D + j] = acc[r][jj];
        }
      }
    }
  }
  __syncthreads();
  constexpr int PARTS = kVecA ? WARPS : G;
  for (int e = tid; e < RB * D; e += NT) {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < PARTS; ++i)
      sum += part[i * RB * D + e];
    h[e] = rwkv_lin_act<ACT>(sum);
  }
  __syncthreads();

  // Stage 2: out = out_act(bias + h B).
  constexpr int VB = 16 / (int)sizeof(WB);
  if constexpr (CO % VB == 0) {
    for (int cg = tid; cg < CO / VB; cg += NT) {
      float o[RB][VB];
#pragma unroll
      for (int r = 0; r < RB; ++r)
#pragma unroll
        for (int e = 0; e < VB; ++e)
          o[r][e] = 0.0f;
      const WB *p = B + cg * VB;
#pragma unroll 4
      for (int j = 0; j < D; ++j) {
        float w[VB];
        rwkv_lin_unpack(*reinterpret_cast<const uint4 *>(p + (size_t)j * CO),
                        w, B);
#pragma unroll
        for (int r = 0; r < RB; ++r)
#pragma unroll
          for (int e = 0; e < VB; ++e)
            o[r][e] += h[r * D + j] * w[e];
      }
#pragma unroll
      for (int e = 0; e < VB; ++e) {
        const int n = cg * VB + e;
        const float bn = BIAS ? rwkv_lin_to_float(bias[n]) : 0.0f;
#pragma unroll
        for (int r = 0; r < RB; ++r)
          if (r0 + r < rows)
            rwkv_lin_store<RES>(out, residual, (size_t)(r0 + r) * CO + n,
                                rwkv_lin_act<OUT_ACT>(bn + o[r][e]));
      }
    }
  } else {
    for (int n = tid; n < CO; n += NT) {
      float o[RB];
#pragma unroll
      for (int r = 0; r < RB; ++r)
        o[r] = 0.0f;
      const WB *p = B + n;
#pragma unroll 8
      for (int j = 0; j < D; ++j) {
        const float v = rwkv_lin_to_float(p[(size_t)j * CO]);
#pragma unroll
        for (int r = 0; r < RB; ++r)
          o[r] += h[r * D + j] * v;
      }
      const float bn = BIAS ? rwkv_lin_to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int r = 0; r < RB; ++r)
        if (r0 + r < rows)
          rwkv_lin_store<RES>(out, residual, (size_t)(r0 + r) * CO + n,
                              rwkv_lin_act<OUT_ACT>(bn + o[r]));
    }
  }
}

// --- LoRA over the whole GPU (few rows) ----------------------------------

#define RWKV_LORA_SPLIT_THREADS 256

/// The raw load of a piece of V columns: 16 bytes, or one element (V = 1).
template <class W, int V> struct RwkvLoraPiece {
  using Raw = uint4;
  static __device__ __forceinline__ Raw load(const W *p) {
    return *reinterpret_cast<const uint4 *>(p);
  }
  static __device__ __forceinline__ void unpack(Raw q, float (&f)[V],
                                                const W *tag) {
    rwkv_lin_unpack(q, f, tag);
  }
};
template <class W> struct RwkvLoraPiece<W, 1> {
  using Raw = W;
  static __device__ __forceinline__ Raw load(const W *p) { return *p; }
  static __device__ __forceinline__ void unpack(Raw q, float (&f)[1],
                                                const W *) {
    f[0] = rwkv_lin_to_float(q);
  }
};

/// The first of a LoRA's two launches on few rows: part[r][g][j] = the sum
/// over c in [g CS, (g + 1) CS) of x[r][c] A[c][j], x = TR(a, b; t) as in
/// rwkv_lora, A [C][D]. Grid
/// (ceil(C / CS), rows), block 256: a thread per piece of V columns of a
/// row of A (16 bytes, or one column where D is not a multiple of them),
/// 256 / P groups of threads take every such row of the block's slice, 8
/// rows in flight a thread; the groups meet in shared memory and the sum of
/// the slice is stored in a fixed order (the result does not depend on the
/// schedule).
template <class WA, int C, int D, int CS, int TR, class MT>
__device__ __forceinline__ void
rwkv_lora_down(long long rows, const float *a, const float *b, const MT *t,
               const WA *__restrict__ A, float *part) {
  constexpr int NT = RWKV_LORA_SPLIT_THREADS, G = (C + CS - 1) / CS;
  constexpr int VA = 16 / (int)sizeof(WA), V = D % VA == 0 ? VA : 1;
  constexpr int P = D / V;                             // pieces a row
  constexpr int GR = P <= NT ? NT / P : 1;             // row groups
  constexpr int PPT = P <= NT ? 1 : (P + NT - 1) / NT; // pieces a thread
  constexpr int U = 8;                                 // rows in flight
  using Piece = RwkvLoraPiece<WA, V>;
  RWKV_SHARED(float, red, (GR * D));
  const long long r = blockIdx.y;
  if (r >= rows) // the whole block leaves together
    return;
  const int tid = threadIdx.x;
  const int grp = P <= NT ? tid / P : 0, v0 = P <= NT ? tid - grp * P : tid;
  const int c0 = blockIdx.x * CS, c1 = c0 + CS < C ? c0 + CS : C;
  float acc[PPT][V] = {};
  if (grp < GR) {
#pragma unroll 1
    for (int k = c0 + grp; k < c1; k += U * GR) {
      typename Piece::Raw q[U][PPT];
      float xv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = k + u * GR;
        xv[u] = c < c1 ? rwkv_lin_in1<TR>(a, b, t, (size_t)r * C + c, c) : 0.0f;
#pragma unroll
        for (int i = 0; i < PPT; ++i) {
          const int v = v0 + i * NT;
          q[u][i] = c < c1 && (PPT == 1 || v < P)
                        ? Piece::load(A + (size_t)c * D + v * V)
                        : typename Piece::Raw{};
        }
      }
#pragma unroll
      for (int u = 0; u < U; ++u)
#pragma unroll
        for (int i = 0; i < PPT; ++i) {
          float w[V];
          Piece::unpack(q[u][i], w, A);
#pragma unroll
          for (int e = 0; e < V; ++e)
            acc[i][e] += xv[u] * w[e];
        }
    }
#pragma unroll
    for (int i = 0; i < PPT; ++i) {
      const int v = v0 + i * NT;
      if (PPT == 1 || v < P)
#pragma unroll
        for (int e = 0; e < V; ++e)
          red[grp * D + v * V + e] = acc[i][e];
    }
  }
  __syncthreads();
  float *pr = part + ((size_t)r * G + blockIdx.x) * D;
  for (int j = tid; j < D; j += NT) {
    float sum = 0.0f;
#pragma unroll
    for (int g = 0; g < GR; ++g)
      sum += red[g * D + j];
    pr[j] = sum;
  }
}

/// The second launch: out[r][n] = (residual +) out_act(bias[n] + sum_j
/// act(h[j]) B[j][n]), h[j] = sum_g part[r][g][j] (G slices, summed in
/// order), B [D][CO]. Grid (ceil(CO / (8 V)), rows), block 256: a thread per
/// piece of V columns (8 pieces a block) times 32 groups that split D, 4
/// rows of B in flight a thread; the groups meet in shared memory.
template <class WB, int D, int CO, int G, int ACT, int OUT_ACT, bool BIAS,
          bool RES, class BT>
__device__ __forceinline__ void
rwkv_lora_up(long long rows, const float *part, const WB *__restrict__ B,
             const BT *__restrict__ bias, const float *residual, float *out) {
  constexpr int NT = RWKV_LORA_SPLIT_THREADS;
  constexpr int VB = 16 / (int)sizeof(WB), V = CO % VB == 0 ? VB : 1;
  constexpr int PW = 8, JG = NT / PW, U = 4;
  using Piece = RwkvLoraPiece<WB, V>;
  RWKV_SHARED(float, h, D);
  RWKV_SHARED(float, red, (NT * V));
  const long long r = blockIdx.y;
  if (r >= rows)
    return;
  const int tid = threadIdx.x;
  const float *pr = part + (size_t)r * G * D;
  for (int j = tid; j < D; j += NT) {
    float sum = 0.0f;
#pragma unroll
    for (int g = 0; g < G; ++g)
      sum += pr[(size_t)g * D + j];
    h[j] = rwkv_lin_act<ACT>(sum);
  }
  __syncthreads();
  const int pw = tid % PW, jg = tid / PW;
  const int n0 = (blockIdx.x * PW + pw) * V;
  float acc[V] = {};
  if (n0 < CO) {
#pragma unroll 1
    for (int j = jg; j < D; j += U * JG) {
      typename Piece::Raw q[U];
#pragma unroll
      for (int u = 0; u < U; ++u)
        q[u] = j + u * JG < D ? Piece::load(B + (size_t)(j + u * JG) * CO + n0)
                              : typename Piece::Raw{};
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float w[V];
        Piece::unpack(q[u], w, B);
        const float hv = j + u * JG < D ? h[j + u * JG] : 0.0f;
#pragma unroll
        for (int e = 0; e < V; ++e)
          acc[e] += hv * w[e];
      }
    }
  }
#pragma unroll
  for (int e = 0; e < V; ++e)
    red[jg * PW * V + pw * V + e] = acc[e];
  __syncthreads();
  if (tid < PW * V) {
    const int n = blockIdx.x * PW * V + tid;
    if (n < CO) {
      float sum = 0.0f;
#pragma unroll
      for (int g = 0; g < JG; ++g)
        sum += red[g * PW * V + tid];
      const float bn = BIAS ? rwkv_lin_to_float(bias[n]) : 0.0f;
      rwkv_lin_store<RES>(out, residual, (size_t)r * CO + n,
                          rwkv_lin_act<OUT_ACT>(bn + sum));
    }
  }
}

#endif // RWKV_CUDA_KERNELS_LINEAR_CUH
