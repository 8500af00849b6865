// sampler_bench.cpp: time per rwkv_sampler_sample + rwkv_sampler_accept on
// 65,536 logits (a World vocabulary) for a few sampling settings.
//
//   clang++ -O2 -Iruntime scripts/sampler_bench.cpp build/lib/librwkv_runtime.a \
//     -lpthread -ldl -o sampler_bench
//   ./sampler_bench
//
// The logits are normal with standard deviation 3 (a flat distribution:
// top-p keeps thousands of tokens), one raised by 5 per call so that the
// pick moves; 10 ids banned, as the server bans the ids past the tokenizer.
// Prints the best of 3 rounds of 400 calls, less the copy of the logits
// that each call needs (the sampler changes them in place), and a checksum
// of every pick: equal checksums, equal picks (a change to the sampler that
// must keep its draws compares them before and after).
#include "rwkv_runtime.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

int main() {
  const size_t n = 65536;
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0, 3);
  std::vector<float> base(n);
  for (float &v : base)
    v = normal(gen);
  struct Setting {
    const char *name;
    float temperature, topP;
    int topK;
    float penalty;
  };
  const Setting settings[] = {{"greedy", 0, 1, 0, 0},
                              {"greedy, penalties", 0, 1, 0, 0.5f},
                              {"T 1, top-p 1", 1, 1, 0, 0},
                              {"T 1, top-p 0.85", 1, 0.85f, 0, 0.2f},
                              {"T 0.7, top-p 0.9", 0.7f, 0.9f, 0, 0.2f},
                              {"T 1, top-k 40", 1, 1, 40, 0}};
  uint64_t check = 0;
  using Clock = std::chrono::steady_clock;
  const int calls = 400;
  std::vector<float> l(n);
  auto perCall = [&](Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0)
               .count() /
           calls;
  };
  for (const Setting &c : settings) {
    rwkv_sampler_params p;
    rwkv_sampler_params_default(&p);
    p.temperature = c.temperature;
    p.top_p = c.topP;
    p.top_k = c.topK;
    p.presence_penalty = p.frequency_penalty = c.penalty;
    p.seed = 7;
    char err[256];
    rwkv_sampler *s = rwkv_sampler_create(n, &p, err, sizeof err);
    if (!s) {
      std::fprintf(stderr, "%s\n", err);
      return 1;
    }
    for (int i = 0; i < 10; ++i)
      rwkv_sampler_ban(s, int32_t(n) - 1 - i);
    double best = 1e30;
    for (int round = 0; round < 3; ++round) {
      auto t0 = Clock::now();
      for (int i = 0; i < calls; ++i) {
        l = base;
        l[size_t(i) * 131 % n] += 5;
        int32_t id = rwkv_sampler_sample(s, l.data());
        check = check * 31 + uint64_t(id);
        rwkv_sampler_accept(s, id, 1.0f);
      }
      best = std::min(best, perCall(t0));
    }
    auto t0 = Clock::now();
    for (int i = 0; i < calls; ++i) {
      l = base;
      l[size_t(i) * 131 % n] += 5;
      check += l[size_t(i)] > 0;
    }
    double copy = perCall(t0);
    std::printf("%-20s %8.1f us a token\n", c.name, best - copy);
    rwkv_sampler_free(s);
  }
  std::printf("checksum of the picks: %016llx\n", (unsigned long long)check);
  return 0;
}
