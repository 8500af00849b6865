//===- SchedulerTest.cpp - The fiber scheduler's semantics and reports ----===//
//
// Barriers, schedules, indices, shuffles, votes, shared memory and atomics
// behave as CUDA specifies; every misuse of test/kernels/misc.cu is
// reported (with the call site), never hung on.
//
//===----------------------------------------------------------------------===//

#include "EmuTest.h"

#include "rwkv_cuda_emu_half.h"

#include <gmock/gmock.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace rwkv_emu;
using namespace rwkv_emu::test;
using ::testing::HasSubstr;

namespace {

const Schedule kForward{Order::Forward, 0};

template <class... Args>
Launched misc(const char *name, Dim3 grid, Dim3 block, Schedule s,
              Args... args) {
  return launch(cudaemu_test_misc, name, grid, block, 0, s, args...);
}

std::vector<int> iota(int from, int n, int step) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i)
    v[i] = from + i * step;
  return v;
}

TEST(Schedule, Parses) {
  Schedule s;
  std::string error;
  ASSERT_TRUE(parseSchedule("reverse", s, error));
  EXPECT_EQ(s.order, Order::Reverse);
  ASSERT_TRUE(parseSchedule("random:42", s, error));
  EXPECT_EQ(s.order, Order::Random);
  EXPECT_EQ(s.seed, 42u);
  EXPECT_EQ(toString(s), "random:42");
  for (const char *bad : {"", "Forward", "random", "random:", "random:x1",
                          "random:123456789012345678901"}) {
    EXPECT_FALSE(parseSchedule(bad, s, error)) << bad;
    EXPECT_THAT(error, HasSubstr("forward, reverse or random:SEED"));
  }
}

TEST(Schedule, OrdersThreadsAndBlocks) {
  constexpr int n = 64;
  auto run = [&](Schedule s) {
    std::vector<int> log(2 * n, -1), counters(2, 0), ok(n, 0);
    Launched r = misc("barrier_order", {1}, {n}, s, log.data(), counters.data(),
                      ok.data());
    EXPECT_TRUE(r.ok) << r.report;
    EXPECT_EQ(ok, std::vector<int>(n, 1)) << "a thread left the barrier early";
    return log;
  };
  std::vector<int> forward = iota(0, n, 1), reverse = iota(n - 1, n, -1);
  forward.insert(forward.end(), forward.begin(), forward.end());
  reverse.insert(reverse.end(), reverse.begin(), reverse.end());
  EXPECT_EQ(run({Order::Forward, 0}), forward);
  EXPECT_EQ(run({Order::Reverse, 0}), reverse);
  std::vector<int> random = run({Order::Random, 7});
  EXPECT_NE(random, forward);
  EXPECT_NE(random, reverse);
  EXPECT_EQ(run({Order::Random, 7}), random) << "not reproducible";
  EXPECT_NE(run({Order::Random, 8}), random);
  std::sort(random.begin(), random.begin() + n);
  std::sort(random.begin() + n, random.end());
  EXPECT_EQ(random, forward) << "not permutations";

  auto blocks = [&](Schedule s) {
    std::vector<int> log(8, -1);
    int counter = 0;
    Launched r = misc("block_order", {8}, {32}, s, log.data(), &counter);
    EXPECT_TRUE(r.ok) << r.report;
    return log;
  };
  EXPECT_EQ(blocks({Order::Forward, 0}), iota(0, 8, 1));
  EXPECT_EQ(blocks({Order::Reverse, 0}), iota(7, 8, -1));
  std::vector<int> shuffled = blocks({Order::Random, 3});
  EXPECT_NE(shuffled, iota(0, 8, 1));
  std::sort(shuffled.begin(), shuffled.end());
  EXPECT_EQ(shuffled, iota(0, 8, 1));
}

TEST(Scheduler, ThreeDimensionalIndices) {
  const Dim3 grid{3, 2, 2}, block{4, 3, 2};
  const unsigned threads = 24, blocks = 12;
  std::vector<unsigned> out(4 * threads * blocks, ~0u);
  Launched r = misc("indices", grid, block, kForward, out.data());
  ASSERT_TRUE(r.ok) << r.report;
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t) {
      const unsigned *o = &out[4 * (b * threads + t)];
      EXPECT_EQ(o[0], t);
      EXPECT_EQ(o[1], b);
      EXPECT_EQ(o[2], 432u);
      EXPECT_EQ(o[3], 322u);
    }
}

// What CUDA's shuffles return, by the Programming Guide's definitions.
int expectedShuffle(int kind, int lane, int width) {
  int segment = lane & ~(width - 1), src = lane;
  switch (kind) {
  case 0: // __shfl_sync(v, lane + 3)
    src = segment + (lane + 3) % width;
    break;
  case 1: // __shfl_up_sync(v, 2)
    src = lane - 2 >= segment ? lane - 2 : lane;
    break;
  case 2: // __shfl_down_sync(v, 3)
    src = lane + 3 < segment + width ? lane + 3 : lane;
    break;
  case 3: // __shfl_xor_sync(v, 5)
    src = ((lane ^ 5) & ~(width - 1)) > segment ? lane : lane ^ 5;
    break;
  case 7: // __shfl_sync(v, 0)
    src = segment;
    break;
  }
  return src * 10;
}

TEST(Scheduler, ShufflesAndVotes) {
  for (Schedule s : allSchedules())
    for (int width : {32, 16, 8, 4, 2, 1}) {
      std::vector<int> out(8 * 64, -1);
      std::vector<double> outd(64, -1);
      Launched r =
          misc("shuffles", {1}, {64}, s, out.data(), outd.data(), width);
      ASSERT_TRUE(r.ok) << r.report;
      for (int t = 0; t < 64; ++t) {
        int lane = t % 32;
        for (int kind : {0, 1, 2, 3, 7})
          EXPECT_EQ(out[8 * t + kind], expectedShuffle(kind, lane, width))
              << "kind " << kind << " lane " << lane << " width " << width;
        EXPECT_EQ(unsigned(out[8 * t + 4]), 0x49249249u); // lane % 3 == 0
        EXPECT_EQ(out[8 * t + 5], 1);
        EXPECT_EQ(out[8 * t + 6], 0);
        // A later segment reads the caller's own value (earlier ones do
        // not: width 1 gives odd lanes their even neighbour's).
        int x = (lane ^ 1) / width > lane / width ? lane : lane ^ 1;
        EXPECT_EQ(outd[t], x + 0.5);
      }
    }
}

TEST(Scheduler, DisjointSyncwarpMasks) {
  for (Schedule s : allSchedules()) {
    std::vector<int> out(32, -1);
    Launched r = misc("syncwarp_halves", {1}, {32}, s, out.data());
    ASSERT_TRUE(r.ok) << r.report;
    for (int lane = 0; lane < 32; ++lane)
      EXPECT_EQ(out[lane], (lane ^ 1) * 3 + (lane ^ 2));
  }
}

TEST(Scheduler, SharedMemoryIsPoisoned) {
  std::vector<unsigned> out(64, 0);
  std::vector<float> outf(64, 0);
  Launched r = launch(cudaemu_test_misc, "shared_poison", {2}, {64},
                      64 * sizeof(unsigned), kForward, out.data(), outf.data());
  ASSERT_TRUE(r.ok) << r.report;
  for (int i = 0; i < 64; ++i) {
    EXPECT_TRUE(std::isnan(outf[i])) << i; // the second block too
    EXPECT_EQ(out[i], 0xffffffffu) << i;
  }
}

TEST(Scheduler, SharedMemoryIsPerBlock) {
  for (Schedule s : allSchedules()) {
    std::vector<int> out(4 * 64, -1), first(4, 0);
    Launched r =
        misc("shared_per_block", {4}, {64}, s, out.data(), first.data());
    ASSERT_TRUE(r.ok) << r.report;
    for (int b = 0; b < 4; ++b) {
      EXPECT_EQ(first[b], -1) << "block " << b << " saw an earlier block's";
      for (int i = 0; i < 64; ++i)
        EXPECT_EQ(out[b * 64 + i], 2 * b);
    }
  }
}

TEST(Scheduler, DynamicSharedMemory) {
  std::vector<float> in(3 * 96), out(3 * 96, 0);
  std::iota(in.begin(), in.end(), 0.0f);
  for (Schedule s : allSchedules()) {
    Launched r =
        launch(cudaemu_test_misc, "dynamic_reverse", {3}, {96},
               96 * sizeof(float), s, (const float *)in.data(), out.data());
    ASSERT_TRUE(r.ok) << r.report;
    for (int b = 0; b < 3; ++b)
      for (int i = 0; i < 96; ++i)
        EXPECT_EQ(out[b * 96 + i], in[b * 96 + 95 - i]);
  }
}

TEST(Scheduler, Atomics) {
  std::vector<float> x(4 * 64, 0.25f);
  float sum = 1.0f;
  int max = -1;
  Launched r = misc("atomic_sum", {4}, {64}, kForward, (const float *)x.data(),
                    &sum, &max);
  ASSERT_TRUE(r.ok) << r.report;
  EXPECT_EQ(sum, 65.0f);
  EXPECT_EQ(max, 255);
}

// --- Reports
// ------------------------------------------------------------------

TEST(Report, DivergentBarrier) {
  for (Schedule s : allSchedules()) {
    std::vector<int> out(64);
    Launched r = misc("bad_divergent_barrier", {2}, {64}, s, out.data());
    ASSERT_FALSE(r.ok);
    EXPECT_THAT(r.report, HasSubstr("kernel 'bad_divergent_barrier'"));
    EXPECT_THAT(r.report, HasSubstr("divergent __syncthreads"));
    EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "divergent-a")))
        << r.report;
    EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "divergent-b")))
        << r.report;
  }
}

TEST(Report, BarrierAfterExit) {
  std::vector<int> out(64);
  Launched r = misc("bad_barrier_after_exit", {1}, {64}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("deadlock"));
  EXPECT_THAT(r.report, HasSubstr("threads 0-31 wait"));
  EXPECT_THAT(r.report, HasSubstr("threads 32-63 exited"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "after-exit"))) << r.report;
}

TEST(Report, LaneNotInMask) {
  std::vector<int> out(32);
  Launched r = misc("bad_lane_not_in_mask", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report,
              HasSubstr("lane 16 calls __shfl_xor_sync with mask 0x0000ffff, "
                        "which does not include the lane"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "not-in-mask")))
      << r.report;
}

TEST(Report, MaskLaneNeverArrives) {
  std::vector<int> out(32);
  Launched r = misc("bad_mask_lane_exits", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("deadlock"));
  EXPECT_THAT(r.report, HasSubstr("__shfl_xor_sync(mask 0xffffffff) at "));
  EXPECT_THAT(r.report, HasSubstr("lanes 0-15 wait; never arriving: "
                                  "threads 16-31 exited"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "lane-exits"))) << r.report;
}

TEST(Report, DifferentCollectives) {
  std::vector<int> out(32);
  Launched r =
      misc("bad_different_collectives", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("lane 16 calls __shfl_down_sync"));
  EXPECT_THAT(r.report, HasSubstr("lanes 0-15 wait in __shfl_xor_sync"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "collective-a")));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "collective-b")));
}

TEST(Report, ReadOutsideMask) {
  std::vector<int> out(32);
  Launched r = misc("bad_read_outside_mask", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("lane 8 of __shfl_down_sync reads lane 16, "
                                  "which is not in the mask 0x0000ffff"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "outside-mask")));
}

TEST(Report, MaskBeyondBlock) {
  std::vector<int> out(16);
  Launched r = misc("bad_mask_beyond_block", {1}, {16}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("names lanes the warp does not have (it has "
                                  "16 threads)"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "beyond-block")));
}

TEST(Report, Trap) {
  std::vector<int> out(32);
  Launched r = misc("bad_trap", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("__trap() at"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "trap")));
}

TEST(Report, StaticSharedOverLimit) {
  std::vector<float> out(32);
  Launched r = misc("bad_static_shared", {1}, {32}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("past 48 KiB"));
  EXPECT_TRUE(namesSite(r.report, siteOf("misc.cu", "too-big")));
}

TEST(Report, BadLaunch) {
  std::vector<int> out(2048);
  Launched r = misc("indices", {1}, {1025}, kForward, out.data());
  ASSERT_FALSE(r.ok);
  EXPECT_THAT(r.report, HasSubstr("a block has 1 to 1024 threads"));
}

// After a failed launch, the next one runs on clean fibers and memory.
TEST(Report, RecoversAfterFailure) {
  std::vector<int> out(64);
  ASSERT_FALSE(
      misc("bad_barrier_after_exit", {1}, {64}, kForward, out.data()).ok);
  std::vector<int> log(128), counters(2, 0), ok(64, 0);
  Launched r = misc("barrier_order", {1}, {64}, kForward, log.data(),
                    counters.data(), ok.data());
  ASSERT_TRUE(r.ok) << r.report;
  EXPECT_EQ(ok, std::vector<int>(64, 1));
}

// --- f16 and bf16 conversions (rwkv_cuda_emu_half.h) ------------------------

TEST(Half, ConvertsLikeIEEE) {
  // Every binary16 value widens exactly and narrows back to itself.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16_to_f32(uint16_t(h));
    _Float16 ref;
    uint16_t bits = uint16_t(h);
    std::memcpy(&ref, &bits, 2);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(float(ref)));
      EXPECT_EQ(f32_to_f16(f), 0x7fff);
      continue;
    }
    ASSERT_EQ(float_bits(f), float_bits(float(ref))) << std::hex << h;
    ASSERT_EQ(f32_to_f16(f), h) << std::hex << h;
  }
  // Rounding: the compiler's own conversion (round to nearest even).
  std::mt19937 rng(1);
  for (int i = 0; i < 2000000; ++i) {
    float f = bits_float(rng());
    if (std::isnan(f))
      continue;
    _Float16 ref = _Float16(f);
    uint16_t bits;
    std::memcpy(&bits, &ref, 2);
    ASSERT_EQ(f32_to_f16(f), bits) << f;
  }
}

TEST(Half, Bfloat16RoundsToNearestEven) {
  EXPECT_EQ(f32_to_bf16(bits_float(0x3f808000)), 0x3f80); // tie, to even
  EXPECT_EQ(f32_to_bf16(bits_float(0x3f818000)), 0x3f82); // tie, to even
  EXPECT_EQ(f32_to_bf16(bits_float(0x3f808001)), 0x3f81);
  EXPECT_EQ(f32_to_bf16(bits_float(0x7f7fffff)), 0x7f80); // to infinity
  EXPECT_EQ(f32_to_bf16(std::nanf("")), 0x7fff);
  for (uint32_t h = 0; h < 0x10000; ++h)
    if (!std::isnan(bf16_to_f32(uint16_t(h))))
      ASSERT_EQ(f32_to_bf16(bf16_to_f32(uint16_t(h))), h);
}

} // namespace
