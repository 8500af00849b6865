//===- SamplerTest.cpp - rwkv_sampler on crafted logits -------------------===//
//
// Greedy is argmax; a seed makes draws reproducible; top-k, top-p,
// temperature, bans and ChatRWKV's presence/frequency penalties with decay
// behave as docs/runtime.md specifies.
//
//===----------------------------------------------------------------------===//

#include "rwkv_runtime.h"
#include "test/TimeScale.h"

#include "gtest/gtest.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <vector>

namespace {

struct SamplerDeleter {
  void operator()(rwkv_sampler *s) const { rwkv_sampler_free(s); }
};
using Sampler = std::unique_ptr<rwkv_sampler, SamplerDeleter>;

rwkv_sampler_params params(float temperature, float topP = 1.0f,
                           int32_t topK = 0, uint64_t seed = 1) {
  rwkv_sampler_params p;
  rwkv_sampler_params_default(&p);
  p.temperature = temperature;
  p.top_p = topP;
  p.top_k = topK;
  p.presence_penalty = 0;
  p.frequency_penalty = 0;
  p.seed = seed;
  return p;
}

Sampler make(size_t n, const rwkv_sampler_params &p) {
  char err[256] = "";
  rwkv_sampler *s = rwkv_sampler_create(n, &p, err, sizeof err);
  EXPECT_NE(s, nullptr) << err;
  return Sampler(s);
}

/// Logits whose softmax is exactly `probs`.
std::vector<float> logitsOf(const std::vector<double> &probs) {
  std::vector<float> l;
  for (double p : probs)
    l.push_back(float(std::log(p)));
  return l;
}

std::map<int32_t, int> histogram(rwkv_sampler *s, const std::vector<float> &l,
                                 int draws) {
  std::map<int32_t, int> h;
  for (int i = 0; i < draws; ++i) {
    std::vector<float> copy = l;
    ++h[rwkv_sampler_sample(s, copy.data())];
  }
  return h;
}

const std::vector<double> kProbs = {0.05, 0.5, 0.15, 0.3};

// Tests that temperature 0 is argmax, the lowest id on ties.
TEST(Sampler, GreedyIsArgmax) {
  Sampler s = make(5, params(0));
  std::vector<float> l = {0.1f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(rwkv_sampler_sample(s.get(), l.data()), 1);
  std::vector<float> l2 = {-INFINITY, -5.0f, NAN, -4.0f, -INFINITY};
  EXPECT_EQ(rwkv_sampler_sample(s.get(), l2.data()), 3);
  std::vector<float> none(5, -INFINITY);
  EXPECT_EQ(rwkv_sampler_sample(s.get(), none.data()), -1);
}

// Tests that one seed gives one sequence, and another seed another.
TEST(Sampler, SeedIsReproducible) {
  std::vector<float> l(64);
  for (size_t i = 0; i < l.size(); ++i)
    l[i] = float(i % 7) * 0.3f;
  auto run = [&](uint64_t seed) {
    Sampler s = make(l.size(), params(1.0f, 1.0f, 0, seed));
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) {
      std::vector<float> copy = l;
      out.push_back(rwkv_sampler_sample(s.get(), copy.data()));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  // Reset reseeds.
  Sampler s = make(l.size(), params(1.0f, 1.0f, 0, 42));
  std::vector<float> a = l, b = l;
  int32_t first = rwkv_sampler_sample(s.get(), a.data());
  rwkv_sampler_reset(s.get(), 42);
  EXPECT_EQ(rwkv_sampler_sample(s.get(), b.data()), first);
}

// Tests that temperature 1 without cut-offs draws by the softmax.
TEST(Sampler, DrawsBySoftmax) {
  Sampler s = make(4, params(1.0f));
  auto h = histogram(s.get(), logitsOf(kProbs), 20000);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(h[i] / 20000.0, kProbs[size_t(i)], 0.015) << i;
}

// Tests top-k: only the k most likely ids are drawn.
TEST(Sampler, TopK) {
  Sampler s = make(4, params(1.0f, 1.0f, 2));
  auto h = histogram(s.get(), logitsOf(kProbs), 5000);
  EXPECT_EQ(h.count(0) + h.count(2), 0u);
  EXPECT_NEAR(h[1] / 5000.0, 0.5 / 0.8, 0.03);
  Sampler one = make(4, params(1.0f, 1.0f, 1));
  auto h1 = histogram(one.get(), logitsOf(kProbs), 500);
  EXPECT_EQ(h1[1], 500);
}

// Tests top-p (ChatRWKV's cutoff): sorted 0.5, 0.3, 0.15, 0.05; top-p 0.7
// reaches 0.8 at 0.3, so ids 1 and 3 stay; top-p 0.45 keeps id 1 alone.
TEST(Sampler, TopP) {
  Sampler s = make(4, params(1.0f, 0.7f));
  auto h = histogram(s.get(), logitsOf(kProbs), 5000);
  EXPECT_EQ(h.count(0) + h.count(2), 0u);
  EXPECT_NEAR(h[1] / 5000.0, 0.5 / 0.8, 0.03);
  Sampler half = make(4, params(1.0f, 0.45f));
  EXPECT_EQ(histogram(half.get(), logitsOf(kProbs), 500)[1], 500);
}

// Tests top-p on a large vocabulary, where the nucleus is longer than the
// first sorted prefix: every draw lies in the nucleus a full sort gives, and
// sampling 65536 logits stays cheap.
TEST(Sampler, TopPLargeVocab) {
  const size_t n = 5000;
  std::vector<float> l(n);
  uint64_t x = 12345;
  for (float &v : l) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    v = float(x >> 40) / float(1 << 24) * 3.0f;
  }
  // The nucleus by a full sort.
  std::vector<double> p(n);
  double mx = *std::max_element(l.begin(), l.end()), z = 0;
  for (size_t i = 0; i < n; ++i)
    z += p[i] = std::exp(double(l[i]) - mx);
  std::vector<double> sorted;
  for (double &v : p)
    sorted.push_back(v /= z);
  std::sort(sorted.rbegin(), sorted.rend());
  double cum = 0, cutoff = 0;
  for (double v : sorted)
    if ((cum += v) >= 0.6) {
      cutoff = v;
      break;
    }
  size_t nucleus = 0;
  for (double v : p)
    nucleus += v >= cutoff;
  ASSERT_GT(nucleus, 256u);
  Sampler s = make(n, params(1.0f, 0.6f));
  for (auto [id, count] : histogram(s.get(), l, 300))
    EXPECT_GE(p[size_t(id)], cutoff) << id;

  std::vector<float> big(65536);
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = float(i % 977) / 100.0f;
  Sampler b = make(big.size(), params(1.0f, 0.85f));
  double t0 = rwkvc::testing::threadCpuSeconds();
  histogram(b.get(), big, 50);
  EXPECT_LT(rwkvc::testing::threadCpuSeconds() - t0,
            2.0 * rwkvc::testing::kTimeScale);
}

// Tests that temperature reshapes p -> p^(1/T) after the cut-offs.
TEST(Sampler, Temperature) {
  Sampler s = make(4, params(2.0f));
  auto h = histogram(s.get(), logitsOf(kProbs), 20000);
  double z = 0;
  for (double p : kProbs)
    z += std::sqrt(p);
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(h[i] / 20000.0, std::sqrt(kProbs[size_t(i)]) / z, 0.015);
}

// Tests presence/frequency penalties with decay, weight-0 tokens and bans:
// the logits are changed in place as documented.
TEST(Sampler, PenaltiesAndBans) {
  rwkv_sampler_params p = params(0);
  p.presence_penalty = 1.0f;
  p.frequency_penalty = 0.5f;
  p.penalty_decay = 0.5f;
  Sampler s = make(4, p);
  rwkv_sampler_accept(s.get(), 2, 1.0f); // occurrence[2] = 1
  std::vector<float> l = {0, 0, 0, 0};
  rwkv_sampler_sample(s.get(), l.data());
  EXPECT_FLOAT_EQ(l[2], -1.5f);
  EXPECT_FLOAT_EQ(l[0], 0.0f);
  rwkv_sampler_accept(s.get(), 3, 0.0f); // decay: occ[2] = 0.5; 3 present
  l = {0, 0, 0, 0};
  rwkv_sampler_sample(s.get(), l.data());
  EXPECT_FLOAT_EQ(l[2], -1.25f);
  EXPECT_FLOAT_EQ(l[3], -1.0f);
  // Greedy avoids the penalised ids; a ban removes the best one.
  l = {1.0f, 0.5f, 1.2f, 1.1f};
  EXPECT_EQ(rwkv_sampler_sample(s.get(), l.data()), 0);
  rwkv_sampler_ban(s.get(), 0);
  l = {1.0f, 0.5f, 1.2f, 1.1f};
  EXPECT_EQ(rwkv_sampler_sample(s.get(), l.data()), 1);
  EXPECT_EQ(l[0], -INFINITY);
  // Reset forgets occurrences (not bans).
  rwkv_sampler_reset(s.get(), 1);
  l = {0, 0, 0, 0};
  rwkv_sampler_sample(s.get(), l.data());
  EXPECT_FLOAT_EQ(l[2], 0.0f);
}

// Tests that parameters out of range are refused with a message.
TEST(Sampler, BadParameters) {
  char err[256];
  rwkv_sampler_params p = params(-1.0f);
  EXPECT_EQ(rwkv_sampler_create(4, &p, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("temperature"), std::string::npos);
  p = params(1.0f, 0.0f);
  EXPECT_EQ(rwkv_sampler_create(4, &p, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("top-p"), std::string::npos);
  p = params(1.0f, 1.0f, -2);
  EXPECT_EQ(rwkv_sampler_create(4, &p, err, sizeof err), nullptr);
  p = params(1.0f);
  p.penalty_decay = 1.5f;
  EXPECT_EQ(rwkv_sampler_create(4, &p, err, sizeof err), nullptr);
  p = params(1.0f);
  EXPECT_EQ(rwkv_sampler_create(0, &p, err, sizeof err), nullptr);
}

} // namespace
