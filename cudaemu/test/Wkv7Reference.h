//===- Wkv7Reference.h - The RWKV-7 WKV recurrence in plain C++ -*- C++ -*-===//
//
// Inputs for kernels/wkv7.cu (random, shaped as wkv7_prep hands them to the
// recurrence) and the recurrence in the kernel's order of operations, for
// bit-exact comparisons.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDAEMU_TEST_WKV7REFERENCE_H
#define RWKV_CUDAEMU_TEST_WKV7REFERENCE_H

#include <cmath>
#include <random>
#include <vector>

namespace rwkv_emu::test {

constexpr int kHeadSize = 64;

struct Wkv7Case {
  int T, H, C;
  std::vector<float> r, w, k, a, b, v, state;
};

inline Wkv7Case makeWkv7(int T, int H, unsigned seed) {
  Wkv7Case c{T, H, H * kHeadSize, {}, {}, {}, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uni(-1, 1), unit(0, 1);
  size_t n = size_t(T) * c.C;
  for (auto *x : {&c.r, &c.w, &c.k, &c.a, &c.b, &c.v})
    x->resize(n);
  for (size_t i = 0; i < n; ++i) {
    c.r[i] = uni(rng);
    c.k[i] = uni(rng);
    c.v[i] = uni(rng);
    // w = exp(-e^{-1/2} sigmoid(.)): in (e^{-0.607}, 1)
    c.w[i] = std::exp(-0.60653066f * unit(rng));
  }
  // a = -kk, b = kk * a_in, kk a unit vector per head and token.
  for (int t = 0; t < T; ++t)
    for (int h = 0; h < H; ++h) {
      float *kk = &c.a[size_t(t) * c.C + h * kHeadSize];
      float norm = 0;
      for (int j = 0; j < kHeadSize; ++j) {
        kk[j] = uni(rng);
        norm += kk[j] * kk[j];
      }
      for (int j = 0; j < kHeadSize; ++j) {
        float unitK = kk[j] / std::sqrt(norm);
        c.b[size_t(t) * c.C + h * kHeadSize + j] = unitK * unit(rng);
        kk[j] = -unitK;
      }
    }
  c.state.resize(size_t(H) * kHeadSize * kHeadSize);
  for (float &s : c.state)
    s = 0.5f * uni(rng);
  return c;
}

/// The recurrence in plain C++, in the kernel's order of operations.
inline void wkv7Reference(const Wkv7Case &c, std::vector<float> &state,
                          std::vector<float> &y) {
  state = c.state;
  y.assign(size_t(c.T) * c.C, 0);
  for (int h = 0; h < c.H; ++h)
    for (int i = 0; i < kHeadSize; ++i) {
      float *s = &state[(size_t(h) * kHeadSize + i) * kHeadSize];
      for (int t = 0; t < c.T; ++t) {
        size_t at = size_t(t) * c.C + h * kHeadSize;
        float sa = 0;
        for (int j = 0; j < kHeadSize; ++j)
          sa += s[j] * c.a[at + j];
        float yi = 0;
        for (int j = 0; j < kHeadSize; ++j) {
          s[j] =
              s[j] * c.w[at + j] + sa * c.b[at + j] + c.v[at + i] * c.k[at + j];
          yi += s[j] * c.r[at + j];
        }
        y[at + i] = yi;
      }
    }
}

} // namespace rwkv_emu::test

#endif // RWKV_CUDAEMU_TEST_WKV7REFERENCE_H
