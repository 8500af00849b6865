//===- KernelTest.cpp - RWKV-shaped kernels under the emulator ------------===//
//
// The kernels of test/kernels against plain C++ references in every
// schedule: the RWKV-7 WKV step bit for bit, the warp GEMV within 1e-5 of a
// double reference, the mma GEMM equal to a plain product. A WKV step
// without one of its barriers is caught (NaN from the poison or a wrong
// result); the DISABLED_ tests are the sanitizer runs' expected reports
// (cudaemu/test/CMakeLists.txt runs them and checks the report).
//
//===----------------------------------------------------------------------===//

#include "EmuTest.h"
#include "Wkv7Reference.h"

#include "rwkv_cuda_emu_half.h"

#include <cmath>
#include <random>

using namespace rwkv_emu;
using namespace rwkv_emu::test;

namespace {

// --- RWKV-7 WKV
// ---------------------------------------------------------------

Launched runWkv7(const char *kernel, const Wkv7Case &c, Schedule s,
                 std::vector<float> &state, std::vector<float> &y) {
  state = c.state;
  y.assign(size_t(c.T) * c.C, 0);
  return launch(cudaemu_test_wkv7, kernel, {unsigned(c.H)}, {kHeadSize}, 0, s,
                c.T, c.C, c.r.data(), c.w.data(), c.k.data(), c.a.data(),
                c.b.data(), c.v.data(), state.data(), y.data());
}

bool bitEqual(const std::vector<float> &x, const std::vector<float> &y) {
  return x.size() == y.size() &&
         std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// The kernels without a barrier race by design: the ThreadSanitizer build
// reports them (cudaemu-thread-race checks that) instead of running these.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKIP_RACY_KERNEL()                                                     \
  GTEST_SKIP() << "racy by design: cudaemu-thread-race checks TSan's report"
#endif
#endif
#ifndef SKIP_RACY_KERNEL
#define SKIP_RACY_KERNEL()
#endif

bool anyNaN(const std::vector<float> &x) {
  for (float f : x)
    if (std::isnan(f))
      return true;
  return false;
}

TEST(Wkv7, MatchesReferenceBitForBit) {
  Wkv7Case c = makeWkv7(/*T=*/5, /*H=*/3, 1);
  std::vector<float> refState, refY, state, y;
  wkv7Reference(c, refState, refY);
  for (Schedule s : allSchedules()) {
    Launched r = runWkv7("wkv7_step", c, s, state, y);
    ASSERT_TRUE(r.ok) << r.report;
    EXPECT_TRUE(bitEqual(y, refY)) << toString(s);
    EXPECT_TRUE(bitEqual(state, refState)) << toString(s);
  }
}

// Without the barrier after the stores, the first token reads shared
// memory other threads have not written yet: the poison's NaN.
TEST(Wkv7, CatchesMissingBarrierAfterStores) {
  SKIP_RACY_KERNEL();
  Wkv7Case c = makeWkv7(4, 2, 2);
  std::vector<float> refState, refY, state, y;
  wkv7Reference(c, refState, refY);
  for (Schedule s : allSchedules()) {
    Launched r = runWkv7("wkv7_step_no_sync_after", c, s, state, y);
    ASSERT_TRUE(r.ok) << r.report;
    EXPECT_TRUE(anyNaN(y)) << toString(s);
  }
}

// Without the barrier before the stores, a thread that finished token t
// overwrites its r, w, k, a, b with token t+1's while others still read
// token t's: a wrong result.
TEST(Wkv7, CatchesMissingBarrierBeforeStores) {
  SKIP_RACY_KERNEL();
  Wkv7Case c = makeWkv7(4, 2, 3);
  std::vector<float> refState, refY, state, y;
  wkv7Reference(c, refState, refY);
  for (Schedule s : allSchedules()) {
    Launched r = runWkv7("wkv7_step_no_sync_before", c, s, state, y);
    ASSERT_TRUE(r.ok) << r.report;
    EXPECT_FALSE(bitEqual(y, refY) && bitEqual(state, refState)) << toString(s);
  }
}

// Run by the ThreadSanitizer build: the missing barriers are data races at
// the kernel's lines (cudaemu/test/CMakeLists.txt checks the report).
TEST(Wkv7, DISABLED_TsanReportsMissingBarrier) {
  Wkv7Case c = makeWkv7(3, 1, 4);
  std::vector<float> state, y;
  ASSERT_TRUE(runWkv7("wkv7_step_no_sync_after", c, {}, state, y).ok);
}

// Run by the AddressSanitizer build: a store past a shared array hits the
// redzone behind it.
TEST(Shared, DISABLED_AsanReportsOverflow) {
  std::vector<float> out(64);
  launch(cudaemu_test_misc, "bad_shared_overflow", {1}, {64}, 0, {},
         out.data());
}

// --- Warp GEMV
// ------------------------------------------------------------------

TEST(Gemv, WithinFloatRoundingOfDouble) {
  constexpr int R = 37, C = 1024; // R: the last block has idle warps
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uni(-1, 1);
  std::vector<float> x(C);
  for (float &v : x)
    v = uni(rng);
  for (bool bf16 : {false, true}) {
    std::vector<uint16_t> W(size_t(R) * C);
    for (uint16_t &h : W)
      h = bf16 ? f32_to_bf16(uni(rng)) : f32_to_f16(uni(rng));
    // The bound: f32 accumulation of C products, relative to sum |w x|.
    std::vector<double> ref(R), scale(R);
    for (int i = 0; i < R; ++i)
      for (int j = 0; j < C; ++j) {
        uint16_t h = W[size_t(i) * C + j];
        double w = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
        ref[i] += w * x[j];
        scale[i] += std::fabs(w * x[j]);
      }
    for (Schedule s : allSchedules()) {
      std::vector<float> y(R, std::nanf(""));
      Launched r = launch(cudaemu_test_gemv, bf16 ? "gemv_bf16" : "gemv_f16",
                          {(R + 3) / 4}, {128}, 0, s, R, C,
                          (const unsigned short *)W.data(),
                          (const float *)x.data(), y.data());
      ASSERT_TRUE(r.ok) << r.report;
      for (int i = 0; i < R; ++i)
        EXPECT_LE(std::fabs(y[i] - ref[i]), 1e-5 * scale[i])
            << "row " << i << (bf16 ? " bf16 " : " f16 ") << toString(s);
    }
  }
}

// --- Tensor cores
// ---------------------------------------------------------------

struct Gemm {
  int M, N, K;
  std::vector<uint16_t> A, B;
  std::vector<float> C;
  std::vector<double> Af, Bf; // the halves' values
};

template <class Value>
Gemm makeGemm(int M, int N, int K, bool bf16, Value value) {
  Gemm g{M, N, K, {}, {}, {}, {}, {}};
  auto fill = [&](std::vector<uint16_t> &h, std::vector<double> &f, int n) {
    for (int i = 0; i < n; ++i) {
      float v = value();
      h.push_back(bf16 ? f32_to_bf16(v) : f32_to_f16(v));
      f.push_back(bf16 ? bf16_to_f32(h.back()) : f16_to_f32(h.back()));
    }
  };
  fill(g.A, g.Af, M * K);
  fill(g.B, g.Bf, K * N);
  for (int i = 0; i < M * N; ++i)
    g.C.push_back(float(value()));
  return g;
}

std::vector<float> runGemm(const Gemm &g, bool bf16, Schedule s) {
  std::vector<float> D(size_t(g.M) * g.N, std::nanf(""));
  int tiles = g.M / 16 * (g.N / 8);
  Launched r = launch(cudaemu_test_mma, bf16 ? "mma_gemm_bf16" : "mma_gemm_f16",
                      {unsigned(tiles + 3) / 4}, {128}, 0, s, g.M, g.N, g.K,
                      (const unsigned short *)g.A.data(),
                      (const unsigned short *)g.B.data(),
                      (const float *)g.C.data(), D.data());
  EXPECT_TRUE(r.ok) << r.report;
  return D;
}

// Small integers: every product and sum is exact, so the fragments'
// layout is the only thing that can make D differ from A B + C.
TEST(Mma, EqualsPlainProduct) {
  for (bool bf16 : {false, true}) {
    std::mt19937 rng(6);
    std::uniform_int_distribution<int> small(-4, 4);
    Gemm g = makeGemm(48, 24, 64, bf16, [&] { return float(small(rng)); });
    for (Schedule s : allSchedules()) {
      std::vector<float> D = runGemm(g, bf16, s);
      for (int i = 0; i < g.M; ++i)
        for (int j = 0; j < g.N; ++j) {
          double sum = g.C[size_t(i) * g.N + j];
          for (int k = 0; k < g.K; ++k)
            sum += g.Af[size_t(i) * g.K + k] * g.Bf[size_t(k) * g.N + j];
          ASSERT_EQ(D[size_t(i) * g.N + j], float(sum))
              << i << "," << j << (bf16 ? " bf16" : " f16");
        }
    }
  }
}

TEST(Mma, RandomValuesWithinRounding) {
  for (bool bf16 : {false, true}) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> uni(-1, 1);
    Gemm g = makeGemm(32, 16, 256, bf16, [&] { return uni(rng); });
    std::vector<float> D = runGemm(g, bf16, {Order::Random, 9});
    for (int i = 0; i < g.M; ++i)
      for (int j = 0; j < g.N; ++j) {
        double sum = g.C[size_t(i) * g.N + j], scale = std::fabs(sum);
        for (int k = 0; k < g.K; ++k) {
          double p = g.Af[size_t(i) * g.K + k] * g.Bf[size_t(k) * g.N + j];
          sum += p;
          scale += std::fabs(p);
        }
        // One f32 rounding per 16-deep step.
        EXPECT_LE(std::fabs(D[size_t(i) * g.N + j] - sum), 1e-6 * scale);
      }
  }
}

} // namespace
