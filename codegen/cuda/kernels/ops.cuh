// ops.cuh - rwkvc's CUDA kernel templates for every op family but the
// tensor-core linear maps (linear.cuh).
//
// Pasted after the prelude into every generated file; the generated
// `extern "C" __global__` kernels call these templates with every shape a
// constant (codegen/cuda/KernelsOps.cpp writes the calls and the launch
// shapes; docs/cuda.md lists the mapping of each family).
//
// Conventions: activations are f32 rows [rows][C], contiguous; per-channel
// parameters are C contiguous f32; matrices are as the weight image stores
// them (f32, f16 or bf16). `rows` is the number of rows of the call (T, or R
// after rwkv.last_token). Reductions over a row use a whole block whose
// size is a multiple of 32.

#ifndef RWKV_CUDA_OPS_CUH
#define RWKV_CUDA_OPS_CUH

__device__ __forceinline__ float rwkv_f32(float x) { return x; }
__device__ __forceinline__ float rwkv_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float rwkv_f32(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

__device__ __forceinline__ float rwkv_warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The sum of `v` over the block (blockDim.x a multiple of 32), returned to
// every thread. `scratch`: 32 floats of shared memory, free for reuse when
// this returns only after the next __syncthreads.
__device__ __forceinline__ float rwkv_block_sum(float v, float *scratch) {
  v = rwkv_warp_sum(v);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = blockDim.x >> 5;
  __syncthreads(); // a previous call's readers are done with scratch
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  return rwkv_warp_sum(lane < warps ? scratch[lane] : 0.0f);
}

__device__ __forceinline__ float rwkv_sigmoid(float x) {
  return 1.0f / (1.0f + expf(-x));
}

// Element-wise maps, one thread per element: grid (ceil(C / 256), rows),
// block 256.
enum {
  RWKV_EW_COPY = 0,    // a
  RWKV_EW_ADD = 1,     // a + b
  RWKV_EW_MUL = 2,     // a * b
  RWKV_EW_SIGMOID = 3, // 1 / (1 + exp(-a))
  RWKV_EW_SILU = 4,    // a / (1 + exp(-a))
  RWKV_EW_RELU_SQ = 5, // max(a, 0)^2
  RWKV_EW_TANH = 6,    // tanh(a)
  RWKV_EW_LERP = 7,    // a + (b - a) * t
  RWKV_EW_NEG_EXP = 8, // -exp(a)
  RWKV_EW_EXP_NEG_EXP = 9,     // exp(-exp(a))
  RWKV_EW_EXP_NEG_SIGMOID = 10, // exp(-e^-1/2 sigmoid(a))
  RWKV_EW_EXP = 11     // exp(a)
};

// out = OP(a, b, t); b and t are rows like a (B_ROWS, T_ROWS) or C
// per-channel values of type BT, TT. out may alias a or b.
template <int OP, int C, bool B_ROWS, bool T_ROWS, typename BT = float,
          typename TT = float>
__device__ __forceinline__ void
rwkv_elementwise(const float *a, const BT *b, const TT *t, float *out,
                 long long rows) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C)
    return;
  const long long i = (long long)blockIdx.y * C + c;
  const float x = a[i];
  float y;
  if (OP == RWKV_EW_COPY)
    y = x;
  else if (OP == RWKV_EW_ADD)
    y = x + rwkv_f32(b[B_ROWS ? i : c]);
  else if (OP == RWKV_EW_MUL)
    y = x * rwkv_f32(b[B_ROWS ? i : c]);
  else if (OP == RWKV_EW_SIGMOID)
    y = rwkv_sigmoid(x);
  else if (OP == RWKV_EW_SILU)
    y = x / (1.0f + expf(-x));
  else if (OP == RWKV_EW_RELU_SQ) {
    const float r = fmaxf(x, 0.0f);
    y = r * r;
  } else if (OP == RWKV_EW_TANH)
    y = tanhf(x);
  else if (OP == RWKV_EW_LERP) {
    const float bv = rwkv_f32(b[B_ROWS ? i : c]);
    y = x + (bv - x) * rwkv_f32(t[T_ROWS ? i : c]);
  } else if (OP == RWKV_EW_NEG_EXP)
    y = -expf(x);
  else if (OP == RWKV_EW_EXP_NEG_EXP)
    y = expf(-expf(x));
  else if (OP == RWKV_EW_EXP_NEG_SIGMOID)
    y = expf(-0.606530659712633423604f * rwkv_sigmoid(x));
  else
    y = expf(x);
  out[i] = y;
}

// result[r] = table[tokens[r]], widened to f32. Grid (rows), block 256.
template <typename W, int C>
__device__ __forceinline__ void rwkv_embedding(const int *tokens,
                                               const W *table, float *out,
                                               long long rows) {
  const long long r = blockIdx.x;
  const W *row = table + (long long)tokens[r] * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    out[r * C + c] = rwkv_f32(row[c]);
}

// out[r] = in[T - R + r]: the last R rows. Grid (ceil(C / 256), R),
// block 256.
template <int C>
__device__ __forceinline__ void rwkv_last_rows(const float *in, float *out,
                                               long long T, long long R) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C)
    out[(long long)blockIdx.y * C + c] =
        in[(T - R + blockIdx.y) * C + c];
}

// Layer norm of row blockIdx.x: mean, then the variance about it (two
// passes over the row, as the CPU backend). Writes out[r] and, with SHIFT
// 1, the token shift of the normalized rows: prev[0] = state, prev[r + 1] =
// out[r] (the state itself is updated afterwards by rwkv_store_last_row);
// with SHIFT 2, for one row, also state = out[0] (each thread reads its
// channels of the state before it writes them). Grid (rows), block 256.
template <int C, int SHIFT, typename WT, typename BT>
__device__ __forceinline__ void
rwkv_layer_norm(const float *x, const WT *weight, const BT *bias,
                float *out, float *prev, float *state, long long rows,
                float epsilon) {
  // U elements a thread a step, every load of a step issued before its
  // stores: the pointers may alias as far as the compiler knows, and one
  // element at a time made each step wait a memory round trip (22 us for
  // C = 4096 on an H200, where the row's 16 KiB take a few).
  constexpr int U = 8;
  RWKV_SHARED(float, scratch, 32);
  const long long r = blockIdx.x;
  const float *row = x + r * C;
  const int nt = blockDim.x;
  float s = 0.0f;
  for (int c0 = threadIdx.x; c0 < C; c0 += U * nt) {
    float v[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      v[u] = c0 + u * nt < C ? row[c0 + u * nt] : 0.0f;
#pragma unroll
    for (int u = 0; u < U; ++u)
      s += v[u];
  }
  const float mean = rwkv_block_sum(s, scratch) / C;
  float q = 0.0f;
  for (int c0 = threadIdx.x; c0 < C; c0 += U * nt) {
    float v[U];
#pragma unroll
    for (int u = 0; u < U; ++u)
      v[u] = c0 + u * nt < C ? row[c0 + u * nt] - mean : 0.0f;
#pragma unroll
    for (int u = 0; u < U; ++u)
      q += v[u] * v[u];
  }
  const float var = rwkv_block_sum(q, scratch) / C;
  const float inv = 1.0f / sqrtf(var + epsilon);
  for (int c0 = threadIdx.x; c0 < C; c0 += U * nt) {
    float y[U], st[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + u * nt;
      if (c < C) {
        y[u] = (row[c] - mean) * inv * rwkv_f32(weight[c]) + rwkv_f32(bias[c]);
        st[u] = SHIFT == 2 || (SHIFT == 1 && r == 0) ? state[c] : 0.0f;
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int c = c0 + u * nt;
      if (c >= C)
        continue;
      out[r * C + c] = y[u];
      if (SHIFT == 1) {
        if (r + 1 < rows)
          prev[(r + 1) * C + c] = y[u];
        if (r == 0)
          prev[c] = st[u];
      } else if (SHIFT == 2) {
        prev[c] = st[u];
        state[c] = y[u];
      }
    }
  }
}

// The token shift of rows that are not normalized: prev[0] = state,
// prev[r] = x[r - 1]. Grid (ceil(C / 256), rows), block 256; the state is
// updated afterwards by rwkv_store_last_row.
template <int C>
__device__ __forceinline__ void rwkv_token_shift(const float *x,
                                                 const float *state,
                                                 float *prev, long long rows) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  const long long r = blockIdx.y;
  if (c < C)
    prev[r * C + c] = r == 0 ? state[c] : x[(r - 1) * C + c];
}

// state = x[rows - 1]. Grid (ceil(C / 256)), block 256.
template <int C>
__device__ __forceinline__ void
rwkv_store_last_row(const float *x, float *state, long long rows) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C)
    state[c] = x[(rows - 1) * C + c];
}

// Group norm: layer norm within each group of N = C / G channels, then the
// per-channel affine map. Grid (rows, G), block a multiple of 32.
template <int C, int G, typename WT, typename BT>
__device__ __forceinline__ void
rwkv_group_norm(const float *x, const WT *weight, const BT *bias,
                float *out, long long rows, float epsilon) {
  constexpr int N = C / G;
  RWKV_SHARED(float, scratch, 32);
  const long long base = (long long)blockIdx.x * C + blockIdx.y * N;
  float s = 0.0f;
  for (int j = threadIdx.x; j < N; j += blockDim.x)
    s += x[base + j];
  const float mean = rwkv_block_sum(s, scratch) / N;
  float q = 0.0f;
  for (int j = threadIdx.x; j < N; j += blockDim.x) {
    const float d = x[base + j] - mean;
    q += d * d;
  }
  const float var = rwkv_block_sum(q, scratch) / N;
  const float inv = 1.0f / sqrtf(var + epsilon);
  for (int j = threadIdx.x; j < N; j += blockDim.x) {
    const int c = blockIdx.y * N + j;
    out[base + j] = (x[base + j] - mean) * inv * rwkv_f32(weight[c]) +
                    rwkv_f32(bias[c]);
  }
}

// RWKV-4's WKV, one thread per channel, the tokens in order. aa, bb, pp:
// the state slots. Grid (ceil(C / 64)), block 64.
template <int C, typename WT, typename UT>
__device__ __forceinline__ void
rwkv_wkv4(const float *k, const float *v, const WT *w, const UT *u,
          float *aa, float *bb, float *pp, float *out, long long rows) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C)
    return;
  float a = aa[c], b = bb[c], p = pp[c];
  const float wc = rwkv_f32(w[c]), uc = rwkv_f32(u[c]);
  for (long long t = 0; t < rows; ++t) {
    const float kt = k[t * C + c], vt = v[t * C + c];
    const float uk = uc + kt;
    float q = fmaxf(p, uk);
    float e1 = expf(p - q), e2 = expf(uk - q);
    out[t * C + c] = (e1 * a + e2 * vt) / (e1 * b + e2);
    const float pw = p + wc;
    q = fmaxf(pw, kt);
    e1 = expf(pw - q);
    e2 = expf(kt - q);
    a = e1 * a + e2 * vt;
    b = e1 * b + e2;
    p = q;
  }
  aa[c] = a;
  bb[c] = b;
  pp[c] = p;
}

// RWKV-5/6's WKV: one block per head of N channels, thread i holding row i
// of the head's state S[i][0..N) in registers; the token's r, k, w, u in
// shared memory between two barriers. W_ROWS: w is a row per token
// (RWKV-6), else per channel; W_HEAD / U_HEAD: w / u hold one value per
// head (H values) rather than per channel. Grid (H), block N.
template <int C, int N, bool W_ROWS, bool W_HEAD, bool U_HEAD, typename WT,
          typename UT>
__device__ __forceinline__ void
rwkv_wkv5(const float *r, const float *k, const float *v, const WT *w,
          const UT *u, float *state, float *out, long long rows) {
  RWKV_SHARED(float, sr, N);
  RWKV_SHARED(float, sk, N);
  RWKV_SHARED(float, sw, N);
  RWKV_SHARED(float, su, N);
  const int h = blockIdx.x, i = threadIdx.x;
  float *S = state + ((long long)h * N + i) * N;
  float s[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    s[j] = S[j];
  su[i] = rwkv_f32(U_HEAD ? u[h] : u[h * N + i]);
  if (!W_ROWS)
    sw[i] = rwkv_f32(W_HEAD ? w[h] : w[h * N + i]);
  for (long long t = 0; t < rows; ++t) {
    const long long base = t * C + h * N;
    __syncthreads(); // the previous token's readers are done
    sr[i] = r[base + i];
    sk[i] = k[base + i];
    if (W_ROWS)
      sw[i] = rwkv_f32(w[base + i]);
    __syncthreads();
    const float vi = v[base + i];
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float kv = sk[j] * vi;
      y += sr[j] * (su[j] * kv + s[j]);
      s[j] = kv + sw[j] * s[j];
    }
    out[base + i] = y;
  }
#pragma unroll
  for (int j = 0; j < N; ++j)
    S[j] = s[j];
}

// RWKV-7's WKV (the generalized delta rule): one block per head, thread i
// holding state row i in registers; the token's r, w, k, a, b in shared
// memory between two barriers. Grid (H), block N.
template <int C, int N>
__device__ __forceinline__ void
rwkv_wkv7(const float *r, const float *w, const float *k, const float *v,
          const float *a, const float *b, float *state, float *out,
          long long rows) {
  RWKV_SHARED(float, sr, N);
  RWKV_SHARED(float, sw, N);
  RWKV_SHARED(float, sk, N);
  RWKV_SHARED(float, sa, N);
  RWKV_SHARED(float, sb, N);
  const int h = blockIdx.x, i = threadIdx.x;
  float *S = state + ((long long)h * N + i) * N;
  float s[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    s[j] = S[j];
  for (long long t = 0; t < rows; ++t) {
    const long long base = t * C + h * N;
    __syncthreads();
    sr[i] = r[base + i];
    sw[i] = w[base + i];
    sk[i] = k[base + i];
    sa[i] = a[base + i];
    sb[i] = b[base + i];
    __syncthreads();
    const float vi = v[base + i];
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j)
      sum += s[j] * sa[j];
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      s[j] = s[j] * sw[j] + sum * sb[j] + vi * sk[j];
      y += s[j] * sr[j];
    }
    out[base + i] = y;
  }
#pragma unroll
  for (int j = 0; j < N; ++j)
    S[j] = s[j];
}

// RWKV-5/6's WKV with the group norm of its heads (and, GATE, times the
// gate g) in one block per head (N threads, N a multiple of 32): the WKV
// step of rwkv_wkv5, then the head's mean and variance by block sums, as
// the separate kernels compute them. Grid (H), block N.
template <int C, int N, bool W_ROWS, bool W_HEAD, bool U_HEAD, bool GATE,
          typename WT, typename UT, typename GWT, typename GBT>
__device__ __forceinline__ void
rwkv_wkv5_group(const float *r, const float *k, const float *v, const WT *w,
                const UT *u, const GWT *gn_weight, const GBT *gn_bias,
                const float *g, float *state, float *out, long long rows,
                float epsilon) {
  RWKV_SHARED(float, sr, N);
  RWKV_SHARED(float, sk, N);
  RWKV_SHARED(float, sw, N);
  RWKV_SHARED(float, su, N);
  RWKV_SHARED(float, scratch, 32);
  const int h = blockIdx.x, i = threadIdx.x, c = h * N + i;
  float *S = state + ((long long)h * N + i) * N;
  float s[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    s[j] = S[j];
  su[i] = rwkv_f32(U_HEAD ? u[h] : u[c]);
  if (!W_ROWS)
    sw[i] = rwkv_f32(W_HEAD ? w[h] : w[c]);
  const float gw = rwkv_f32(gn_weight[c]), gb = rwkv_f32(gn_bias[c]);
  for (long long t = 0; t < rows; ++t) {
    const long long at = t * C + c;
    __syncthreads(); // the previous token's readers are done
    sr[i] = r[at];
    sk[i] = k[at];
    if (W_ROWS)
      sw[i] = rwkv_f32(w[at]);
    __syncthreads();
    const float vi = v[at];
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float kv = sk[j] * vi;
      y += sr[j] * (su[j] * kv + s[j]);
      s[j] = kv + sw[j] * s[j];
    }
    const float mean = rwkv_block_sum(y, scratch) / N;
    const float d = y - mean;
    const float var = rwkv_block_sum(d * d, scratch) / N;
    const float inv = 1.0f / sqrtf(var + epsilon);
    const float normed = d * inv * gw + gb;
    out[at] = GATE ? normed * g[at] : normed;
  }
#pragma unroll
  for (int j = 0; j < N; ++j)
    S[j] = s[j];
}

// RWKV-7's time mix from the keys to the gated output in one block per
// head (N threads, N a multiple of 32): per token, wkv7_prep (the head's
// L2 norm of k k_k, the new key, a = -kk and b = kk a), the WKV-7 step
// (state row i in thread i's registers), the group norm of the head's
// outputs, the bonus (sum over the head of r new_k r_k) v, their sum, times
// the gate g. The same arithmetic in the same order as the separate
// kernels. Grid (H), block N.
template <int C, int N, typename KKT, typename KAT, typename RKT,
          typename GWT, typename GBT>
__device__ __forceinline__ void
rwkv_wkv7_group(const float *r, const float *w, const float *k,
                const float *v, const float *a, const float *g,
                const KKT *k_k, const KAT *k_a, const RKT *r_k,
                const GWT *gn_weight, const GBT *gn_bias, float *state,
                float *out, long long rows, float epsilon) {
  RWKV_SHARED(float, sr, N);
  RWKV_SHARED(float, sw, N);
  RWKV_SHARED(float, sk, N);
  RWKV_SHARED(float, sa, N);
  RWKV_SHARED(float, sb, N);
  RWKV_SHARED(float, scratch, 32);
  const int h = blockIdx.x, i = threadIdx.x, c = h * N + i;
  float *S = state + ((long long)h * N + i) * N;
  float s[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    s[j] = S[j];
  const float kkc = rwkv_f32(k_k[c]), kac = rwkv_f32(k_a[c]);
  const float rkc = rwkv_f32(r_k[c]);
  const float gw = rwkv_f32(gn_weight[c]), gb = rwkv_f32(gn_bias[c]);
  for (long long t = 0; t < rows; ++t) {
    const long long at = t * C + c;
    const float kv = k[at], av = a[at], vi = v[at], rv = r[at];
    const float kk = kv * kkc;
    // Its first barrier also ends the previous token's reads of sr..sb.
    const float norm = sqrtf(rwkv_block_sum(kk * kk, scratch));
    const float kn = kk / fmaxf(norm, 1e-12f);
    const float nk = kv * (1.0f + (av - 1.0f) * kac);
    sr[i] = rv;
    sw[i] = w[at];
    sk[i] = nk;
    sa[i] = -kn;
    sb[i] = kn * av;
    __syncthreads();
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j)
      sum += s[j] * sa[j];
    float y = 0.0f;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      s[j] = s[j] * sw[j] + sum * sb[j] + vi * sk[j];
      y += s[j] * sr[j];
    }
    const float mean = rwkv_block_sum(y, scratch) / N;
    const float d = y - mean;
    const float var = rwkv_block_sum(d * d, scratch) / N;
    const float inv = 1.0f / sqrtf(var + epsilon);
    const float normed = d * inv * gw + gb;
    const float bonus = rwkv_block_sum(rv * nk * rkc, scratch) * vi;
    out[at] = (normed + bonus) * g[at];
  }
#pragma unroll
  for (int j = 0; j < N; ++j)
    S[j] = s[j];
}

// RWKV-7's key normalization and in-context rate for one (row, head):
// grid (rows, H), block N rounded up to 32.
template <int C, int N, typename KT, typename AT>
__device__ __forceinline__ void
rwkv_wkv7_prep(const float *k, const float *a, const KT *k_k,
               const AT *k_a, float *new_k, float *neg_kk, float *kk_a,
               long long rows) {
  RWKV_SHARED(float, scratch, 32);
  const int j = threadIdx.x;
  const int c = blockIdx.y * N + j;
  const long long i = (long long)blockIdx.x * C + c;
  const bool in = j < N;
  const float kv = in ? k[i] : 0.0f;
  const float kk = in ? kv * rwkv_f32(k_k[c]) : 0.0f;
  const float norm = sqrtf(rwkv_block_sum(kk * kk, scratch));
  if (!in)
    return;
  const float kn = kk / fmaxf(norm, 1e-12f);
  const float av = a[i];
  new_k[i] = kv * (1.0f + (av - 1.0f) * rwkv_f32(k_a[c]));
  neg_kk[i] = -kn;
  kk_a[i] = kn * av;
}

// RWKV-7's bonus: out = (sum over the head of r k r_k) v. Grid (rows, H),
// block N rounded up to 32. out may alias r, k or v.
template <int C, int N, typename RT>
__device__ __forceinline__ void
rwkv_head_bonus(const float *r, const float *k, const float *v,
                const RT *r_k, float *out, long long rows) {
  RWKV_SHARED(float, scratch, 32);
  const int j = threadIdx.x;
  const int c = blockIdx.y * N + j;
  const long long i = (long long)blockIdx.x * C + c;
  const bool in = j < N;
  const float p = in ? r[i] * k[i] * rwkv_f32(r_k[c]) : 0.0f;
  const float vv = in ? v[i] : 0.0f;
  const float s = rwkv_block_sum(p, scratch);
  if (in)
    out[i] = s * vv;
}

// RWKV-6's data-dependent token-shift mixes, one block per row: with
// sx = prev - x, m = tanh((x + sx maa_x) W1) (F x D values, W1 (C, F*D)),
// result_f = x + sx (maa_f + m_f W2[f]) (W2 (F, D, C)). Shared memory
// (C + F*D) floats. Grid (rows), block 256.
template <typename W1T, typename W2T, int C, int F, int D, typename MT>
__device__ __forceinline__ void
rwkv_ddlerp(const float *x, const float *prev, const MT *maa_x,
            const MT *const *maa, const W1T *w1, const W2T *w2,
            float *const *out, long long rows) {
  RWKV_DYNAMIC_SHARED(float, smem);
  float *xx = smem, *m = smem + C;
  const long long base = (long long)blockIdx.x * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    xx[c] = x[base + c] + (prev[base + c] - x[base + c]) * rwkv_f32(maa_x[c]);
  __syncthreads();
  for (int e = threadIdx.x; e < F * D; e += blockDim.x) {
    float s = 0.0f;
    #pragma unroll 4
    for (int c = 0; c < C; ++c)
      s += xx[c] * rwkv_f32(w1[(long long)c * F * D + e]);
    m[e] = tanhf(s);
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    const float xc = x[base + c], sx = prev[base + c] - xc;
#pragma unroll
    for (int f = 0; f < F; ++f) {
      float s = 0.0f;
      #pragma unroll 4
      for (int d = 0; d < D; ++d)
        s += m[f * D + d] * rwkv_f32(w2[((long long)f * D + d) * C + c]);
      out[f][base + c] = xc + sx * (rwkv_f32(maa[f][c]) + s);
    }
  }
}

// The generic linear map: one thread per output element, the input
// transform applied per load. Used for the shapes and layouts the
// tensor-core and warp kernels of linear.cuh do not take.
enum {
  RWKV_IN_PLAIN = 0,  // a
  RWKV_IN_MIX = 1,    // a + (b - a) * mix_s
  RWKV_IN_GATE = 2,   // sigmoid(a) * b
  RWKV_IN_RELU_SQ = 3 // max(a, 0)^2
};

template <int IN, typename MT>
__device__ __forceinline__ float rwkv_linear_input(const float *a,
                                                   const float *b,
                                                   const MT *mix,
                                                   long long i, int k) {
  const float x = a[i];
  if (IN == RWKV_IN_MIX)
    return x + (b[i] - x) * rwkv_f32(mix[k]);
  if (IN == RWKV_IN_GATE)
    return rwkv_sigmoid(x) * b[i];
  if (IN == RWKV_IN_RELU_SQ) {
    const float r = fmaxf(x, 0.0f);
    return r * r;
  }
  return x;
}

// out_s[r][n] (+ residual[r][n]) = sum_k x_s[r][k] W[s N + n][k] (OUT_IN)
// or W[k][n] (in_out, SEG == 1). Grid (ceil(SEG N / 128), rows), block
// 128. `mix` and `out` hold SEG pointers.
template <typename W, int K, int N, int SEG, int IN, bool OUT_IN,
          typename MT>
__device__ __forceinline__ void
rwkv_linear_generic(const float *a, const float *b, const MT *const *mix,
                    const W *w, float *const *out, const float *residual,
                    long long rows) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  const long long r = blockIdx.y;
  if (n >= SEG * N)
    return;
  const int s = n / N, o = n % N;
  float acc = 0.0f;
  #pragma unroll 4
  for (int k = 0; k < K; ++k) {
    const float x = rwkv_linear_input<IN, MT>(a, b, mix[s], r * K + k, k);
    const float wv = OUT_IN ? rwkv_f32(w[(long long)n * K + k])
                            : rwkv_f32(w[(long long)k * N + n]);
    acc += x * wv;
  }
  if (residual)
    acc += residual[r * N + o];
  out[s][r * N + o] = acc;
}

__device__ __forceinline__ float rwkv_activation(int act, float x) {
  return act == 1 ? tanhf(x) : act == 2 ? rwkv_sigmoid(x) : x;
}

// out = out_act(bias + act(x A) B), A (C, D) and B (D, CO) stored (in,
// out): h = act(x A) in shared memory, one thread per column. Shared
// memory (C + D) floats. Grid (rows), block 256.
template <typename WA, typename WB, int C, int D, int CO, int ACT,
          int OUT_ACT, typename BT>
__device__ __forceinline__ void
rwkv_lora_generic(const float *x, const WA *A, const WB *B,
                  const BT *bias, float *out, long long rows) {
  RWKV_DYNAMIC_SHARED(float, smem);
  float *xs = smem, *h = smem + C;
  const long long r = blockIdx.x;
  for (int c = threadIdx.x; c < C; c += blockDim.x)
    xs[c] = x[r * C + c];
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float s = 0.0f;
    #pragma unroll 4
    for (int c = 0; c < C; ++c)
      s += xs[c] * rwkv_f32(A[(long long)c * D + d]);
    h[d] = rwkv_activation(ACT, s);
  }
  __syncthreads();
  for (int n = threadIdx.x; n < CO; n += blockDim.x) {
    float s = 0.0f;
    #pragma unroll 4
    for (int d = 0; d < D; ++d)
      s += h[d] * rwkv_f32(B[(long long)d * CO + n]);
    out[r * CO + n] =
        rwkv_activation(OUT_ACT, (bias ? rwkv_f32(bias[n]) : 0.0f) + s);
  }
}

#endif // RWKV_CUDA_OPS_CUH
