//===- ModelKernelsTest.cpp - A model's generated kernels under sanitizers ===//
//
// Includes the kernel file rwkvc generated for a tiny model (MODEL_CU,
// -emit=cuda, with its launch plan as data: RWKV_CUDA_PLAN_TABLES) and runs
// the plan through the emulator's scheduler, as the runtime runs it through
// the driver API: one token, several tokens with the last row's logits, and
// every row's logits, in the forward, reverse and random thread orders.
// Built with ThreadSanitizer and with AddressSanitizer (test/cuda/
// CMakeLists.txt): a missing barrier is a race at the kernel's line, a read
// or write out of a buffer, a shared array or a weight an ASan report; any
// report fails the test. The scratch starts as NaN, as the emulated device's
// memory does, so that a read of a value no kernel wrote shows in the logits.
// The numbers themselves are the end-to-end tests' (test/e2e, cuda-*).
//
//===----------------------------------------------------------------------===//

#include "Scheduler.h"
#include "rwkv_cuda_emu.h"

#include "runtime/rwkv_abi.h"

#define RWKV_CUDA_PLAN_TABLES
#include MODEL_CU

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace rwkv_emu;

/// Runs the plan on T tokens with R rows of logits; returns the logits
/// (R x vocab), or an empty vector with a failure when a launch failed.
class PlanRunner {
public:
  PlanRunner() {
    // Weights: small values, so that nothing overflows on any version
    // (the image of an f32 model is all floats and zero padding).
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-0.5f, 0.5f);
    weights.resize(size_t(rwkv_plan_weights_bytes) / 4);
    for (float &w : weights)
      w = dist(rng);
    for (const rwkv_emu_kernel *k = rwkv_model_cuda_module.kernels,
                               *end = k + rwkv_model_cuda_module.kernel_count;
         k != end; ++k)
      kernels.push_back(k);
  }

  std::vector<float> run(const std::vector<int> &tokens, long long R,
                         Schedule schedule, long long vocab) {
    long long T = (long long)tokens.size();
    std::vector<float> state(size_t(rwkv_plan_state_floats), 0.0f);
    std::vector<unsigned char> scratch(
        size_t(rwkv_plan_scratch_bytes_per_token * T), 0xff);
    std::vector<float> logits(size_t(R * vocab), NAN);
    std::vector<int> toks = tokens;
    size_t nSteps = sizeof(rwkv_plan_steps) / sizeof(rwkv_plan_steps[0]);
    size_t loopStart = 0;
    int k = 0, count = 0;
    for (size_t i = 0; i < nSteps; ++i) {
      const rwkv_cuda_step &s = rwkv_plan_steps[i];
      if (s.kind == RWKV_CUDA_LOOP) {
        loopStart = i;
        k = 0;
        count = s.count;
        continue;
      }
      if (s.kind == RWKV_CUDA_END_LOOP) {
        if (++k < count)
          i = loopStart;
        else
          k = count = 0;
        continue;
      }
      bool run = s.when == RWKV_CUDA_ALWAYS ||
                 (s.when == RWKV_CUDA_T_ONE && T == 1) ||
                 (s.when == RWKV_CUDA_T_MANY && T > 1) ||
                 (s.when == RWKV_CUDA_R_ONE && R == 1) ||
                 (s.when == RWKV_CUDA_R_MANY && R > 1);
      if (!run)
        continue;
      unsigned dims[3];
      for (int d = 0; d < 3; ++d) {
        long long src = s.grid[d].source == RWKV_CUDA_DIM_ONE ? 1
                        : s.grid[d].source == RWKV_CUDA_DIM_T ? T
                                                              : R;
        dims[d] = unsigned(s.grid[d].count *
                           ((src + s.grid[d].per - 1) / s.grid[d].per));
      }
      std::vector<unsigned long long> values(size_t(s.n_args));
      std::vector<void *> params(size_t(s.n_args));
      for (int a = 0; a < s.n_args; ++a) {
        const rwkv_cuda_arg &arg = rwkv_plan_args[s.first_arg + a];
        long long layer = count ? k : 0;
        unsigned long long v = 0;
        switch (arg.kind) {
        case RWKV_CUDA_ARG_WEIGHTS:
          v = (unsigned long long)((unsigned char *)weights.data() +
                                   arg.value + layer * arg.layer_stride);
          break;
        case RWKV_CUDA_ARG_STATE:
          v = (unsigned long long)(state.data() + arg.value +
                                   layer * arg.layer_stride);
          break;
        case RWKV_CUDA_ARG_SCRATCH:
          v = (unsigned long long)(scratch.data() + arg.value * T);
          break;
        case RWKV_CUDA_ARG_TOKENS:
          v = (unsigned long long)toks.data();
          break;
        case RWKV_CUDA_ARG_LOGITS:
          v = (unsigned long long)logits.data();
          break;
        case RWKV_CUDA_ARG_T:
          v = (unsigned long long)T;
          break;
        case RWKV_CUDA_ARG_R:
          v = (unsigned long long)R;
          break;
        default:
          v = (unsigned long long)arg.value;
        }
        values[size_t(a)] = v;
        params[size_t(a)] = &values[size_t(a)];
      }
      LaunchParams p;
      p.kernel = kernels[size_t(s.kernel)];
      p.grid = {dims[0], dims[1], dims[2]};
      p.block = {s.block[0], s.block[1], s.block[2]};
      p.dynamicSharedBytes = s.shared_bytes;
      p.params = params.data();
      p.schedule = schedule;
      p.launchIndex = i;
      std::string report;
      if (!runGrid(p, report)) {
        ADD_FAILURE() << rwkv_plan_kernels[s.kernel] << ": " << report;
        return {};
      }
    }
    return logits;
  }

private:
  std::vector<float> weights;
  std::vector<const rwkv_emu_kernel *> kernels;
};

std::vector<Schedule> schedules() {
  return {{Order::Forward, 0}, {Order::Reverse, 0}, {Order::Random, 3}};
}

TEST(ModelKernels, PlanRunsCleanInEverySchedule) {
  PlanRunner runner;
  const long long vocab = 256; // the tiny models' byte vocabulary
  const std::vector<int> one = {34}, five = {34, 105, 110, 32, 116};
  for (auto [tokens, R] : {std::pair(one, 1LL), std::pair(five, 1LL),
                           std::pair(five, 5LL)}) {
    std::vector<float> first;
    for (Schedule s : schedules()) {
      std::vector<float> logits = runner.run(tokens, R, s, vocab);
      ASSERT_FALSE(logits.empty());
      for (float v : logits)
        ASSERT_TRUE(std::isfinite(v))
            << "a logit is not finite: a kernel read scratch no kernel "
               "wrote (T = "
            << tokens.size() << ", R = " << R << ")";
      if (first.empty())
        first = logits;
      else
        EXPECT_EQ(0, std::memcmp(first.data(), logits.data(),
                                 first.size() * sizeof(float)))
            << "the logits depend on the order threads run in";
    }
  }
}

} // namespace
