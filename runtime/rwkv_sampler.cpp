//===- rwkv_sampler.cpp - Picking the next token --------------------------===//
//
// ChatRWKV's PIPELINE.generate/sample_logits, in C++ (docs/runtime.md,
// "Sampling"):
//
//   logits[banned] = -inf
//   logits[t] -= presence + occurrence[t] * frequency   (t that occurred)
//   temperature == 0:  argmax
//   else:              p = softmax(logits)
//                      p[p < cutoff] = 0, cutoff = the sorted p at which
//                                       the cumulative sum reaches top_p
//                      keep only the top_k largest (top_k > 0)
//                      p = p^(1/temperature); p /= sum(p); draw
//   accept(t):         occurrence *= decay; occurrence[t] += weight
//
// The PRNG is xoshiro256** seeded through splitmix64: the same seed, logits
// and accepted tokens give the same draws on every machine.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <functional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

struct rwkv_sampler {
  rwkv_sampler_params p;
  size_t nVocab;
  uint64_t rng[4];
  // Few tokens are banned or have occurred: sample and accept walk these
  // lists, not the vocabulary, and a sampler holds nothing of n_vocab size
  // (a server creates one per request; fresh pages cost their faults).
  std::vector<int32_t> banned;            // each id once
  std::unordered_set<int32_t> bannedSet;  // the same ids
  std::vector<int32_t> present;           // ids that occurred
  std::vector<float> occurrence;          // (present) decayed weighted counts
  std::unordered_map<int32_t, size_t> slot; // id -> index in present
};

/// The scratch of temperature > 0, (n_vocab) each: one per thread, kept
/// from call to call and from sampler to sampler.
struct SamplerScratch {
  std::vector<double> probs;
  std::vector<int32_t> order;
  std::vector<double> weights; // (kept tokens)
};

namespace {

uint64_t splitmix64(uint64_t &x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/// xoshiro256**.
uint64_t next(uint64_t *s) {
  uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return r;
}

/// Uniform in [0, 1) with 53 random bits.
double uniform(uint64_t *s) { return double(next(s) >> 11) * 0x1.0p-53; }

/// The index of the first maximum of `l` among the values that are neither
/// NaN nor -inf; n when there is none. Blocks of kBlock: the block's
/// maximum in kLanes independent lanes (which the compiler vectorises:
/// `v > m ? v : m` skips NaN as the scalar loop does), then, only when it
/// beats the best so far, the first index in the block that equals it.
/// The maximum is exact whatever the order it is taken in; ties (+0 and
/// -0 too, being equal) go to the lowest index.
size_t firstMax(const float *l, size_t n) {
  constexpr size_t kLanes = 16, kBlock = 256;
  float best = -INFINITY;
  size_t at = n;
  for (size_t b = 0; b < n; b += kBlock) {
    size_t e = std::min(n, b + kBlock), i = b;
    float lane[kLanes];
    for (float &m : lane)
      m = -INFINITY;
    for (; i + kLanes <= e; i += kLanes)
      for (size_t j = 0; j < kLanes; ++j)
        lane[j] = l[i + j] > lane[j] ? l[i + j] : lane[j];
    float m = -INFINITY;
    for (; i < e; ++i)
      m = l[i] > m ? l[i] : m;
    for (float v : lane)
      m = v > m ? v : m;
    if (m > best) {
      best = m;
      for (at = b; l[at] != m; ++at) {
      }
    }
  }
  return at;
}

} // namespace

extern "C" {

void rwkv_sampler_params_default(rwkv_sampler_params *p) {
  p->temperature = 1.0f;
  p->top_p = 0.85f;
  p->top_k = 0;
  p->presence_penalty = 0.2f;
  p->frequency_penalty = 0.2f;
  p->penalty_decay = 0.996f;
  p->seed = 0;
}

rwkv_sampler *rwkv_sampler_create(size_t n_vocab, const rwkv_sampler_params *p,
                                  char *err, size_t errlen) {
  if (!p || n_vocab == 0) {
    RWKV_SET_ERROR(err, errlen, "rwkv_sampler_create: no parameters or n_vocab 0");
    return nullptr;
  }
  if (!(p->temperature >= 0) || std::isinf(p->temperature)) {
    RWKV_SET_ERROR(err, errlen, "temperature {:g} is not a number >= 0",
             double(p->temperature));
    return nullptr;
  }
  if (!(p->top_p > 0 && p->top_p <= 1)) {
    RWKV_SET_ERROR(err, errlen, "top-p {:g} is not in (0, 1]", double(p->top_p));
    return nullptr;
  }
  if (p->top_k < 0) {
    RWKV_SET_ERROR(err, errlen, "top-k {} is negative", p->top_k);
    return nullptr;
  }
  if (!(p->penalty_decay >= 0 && p->penalty_decay <= 1)) {
    RWKV_SET_ERROR(err, errlen, "penalty decay {:g} is not in [0, 1]",
             double(p->penalty_decay));
    return nullptr;
  }
  if (!std::isfinite(p->presence_penalty) ||
      !std::isfinite(p->frequency_penalty)) {
    RWKV_SET_ERROR(err, errlen, "the penalties must be finite numbers");
    return nullptr;
  }
  rwkv_sampler *s = new rwkv_sampler;
  s->p = *p;
  s->nVocab = n_vocab;
  rwkv_sampler_reset(s, p->seed);
  return s;
}

void rwkv_sampler_free(rwkv_sampler *s) { delete s; }

void rwkv_sampler_reset(rwkv_sampler *s, uint64_t seed) {
  s->p.seed = seed;
  uint64_t x = seed;
  for (uint64_t &w : s->rng)
    w = splitmix64(x);
  s->present.clear();
  s->occurrence.clear();
  s->slot.clear();
}

void rwkv_sampler_ban(rwkv_sampler *s, int32_t id) {
  if (id >= 0 && size_t(id) < s->nVocab && s->bannedSet.insert(id).second)
    s->banned.push_back(id);
}

int32_t rwkv_sampler_sample(rwkv_sampler *s, float *logits) {
  const size_t n = s->nVocab;
  const rwkv_sampler_params &p = s->p;
  for (size_t k = 0; k < s->present.size(); ++k)
    logits[s->present[k]] -=
        p.presence_penalty + s->occurrence[k] * p.frequency_penalty;
  for (int32_t id : s->banned)
    logits[id] = -INFINITY;
  // Greedy: the first maximum.
  size_t best = firstMax(logits, n);
  if (best == n)
    return -1;
  if (p.temperature == 0)
    return int32_t(best);

  thread_local SamplerScratch scratch;
  if (scratch.probs.size() < n) {
    scratch.probs.resize(n);
    scratch.order.resize(n);
  }
  std::vector<double> &probs = scratch.probs;
  std::vector<int32_t> &order = scratch.order;
  // softmax (in double)
  double mx = logits[best], sum = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = std::isnan(logits[i]) ? 0.0 : std::exp(double(logits[i]) - mx);
    probs[i] = e;
    sum += e;
  }
  for (size_t i = 0; i < n; ++i)
    probs[i] /= sum;
  // Sorted by probability, descending; ties by lower id. Only as long a
  // prefix as top-p/top-k need is sorted (selection + sort, growing 4x),
  // which keeps a 65536-token vocabulary cheap when the nucleus is small.
  // `order` is the identity until the first sort fills it.
  bool ordered = false;
  auto at = [&](size_t k) { return ordered ? order[k] : int32_t(k); };
  const std::vector<double> &pr = probs;
  auto before = [&](int32_t a, int32_t b) {
    return pr[size_t(a)] > pr[size_t(b)] ||
           (pr[size_t(a)] == pr[size_t(b)] && a < b);
  };
  // Narrows a selection of the `need` first of [first, last) (by `before`)
  // when they are few: a threshold from a sample of the range, the tokens
  // at or above it moved to the front, and when they are at least `need`,
  // the selection runs on them alone (the rest come after all of them).
  // Returns the end of the range to select from. Any arrangement that
  // selects the same tokens sorts them the same: `before` is a total order.
  auto prefilter = [&](std::vector<int32_t>::iterator first,
                       std::vector<int32_t>::iterator last, size_t need) {
    constexpr size_t kSamples = 1024;
    size_t len = size_t(last - first);
    if (len < 16 * need || len < 4 * kSamples)
      return last;
    size_t stride = len / kSamples;
    double sample[kSamples];
    for (size_t j = 0; j < kSamples; ++j)
      sample[j] = pr[size_t(first[long(j * stride)])];
    // Expect about (m + 1) * stride tokens at or above sample m: twice the
    // need, and a few samples more.
    size_t m = 2 * need / stride + 4;
    if (m >= kSamples / 4)
      return last;
    std::nth_element(sample, sample + m, sample + kSamples,
                     std::greater<double>());
    double threshold = sample[m];
    auto end = std::partition(first, last, [&](int32_t id) {
      return pr[size_t(id)] >= threshold;
    });
    return size_t(end - first) >= need ? end : last;
  };
  size_t sorted = 0;
  auto sortPrefix = [&](size_t k) {
    k = std::min(k, n);
    if (!ordered) {
      for (size_t i = 0; i < n; ++i)
        order[i] = int32_t(i);
      ordered = true;
    }
    if (k > sorted) {
      // Everything in [sorted, n) comes after the sorted prefix: select the
      // next k - sorted of it, then sort just those. O(n + k log k).
      auto first = order.begin() + long(sorted);
      auto mid = order.begin() + long(k);
      auto last = order.begin() + long(n);
      if (k < n)
        std::nth_element(first, mid, prefilter(first, last, k - sorted),
                         before);
      std::sort(first, mid, before);
      sorted = k;
    }
  };
  size_t keep = n;
  if (p.top_p < 1) {
    // cutoff = the first sorted probability where the cumulative sum reaches
    // top_p; every token with a smaller probability is dropped (ties with
    // the cutoff stay, as in ChatRWKV).
    double cum = 0, cutoff = 0;
    size_t k = 0;
    for (size_t want = 64;; want *= 4) {
      sortPrefix(want);
      for (; k < sorted; ++k) {
        cum += pr[size_t(order[k])];
        if (cum >= double(p.top_p))
          break;
      }
      if (k < sorted || sorted == n)
        break;
    }
    if (k < n)
      cutoff = pr[size_t(at(k))];
    keep = 0;
    for (size_t i = 0; i < n; ++i)
      keep += pr[i] >= cutoff;
  }
  if (p.top_k > 0 && size_t(p.top_k) < keep)
    keep = size_t(p.top_k);
  if (keep < n)
    sortPrefix(keep); // else every token stays: the draw walks `order`
  // p^(1/T) over the kept tokens, then one draw. At temperature 1 the
  // weights are the probabilities themselves.
  const double *w = nullptr; // (keep) the k-th kept token's weight
  double total = 0;
  if (p.temperature == 1.0f) {
    if (!ordered) {
      w = pr.data();
    } else {
      scratch.weights.resize(keep);
      for (size_t k = 0; k < keep; ++k)
        scratch.weights[k] = pr[size_t(order[k])];
      w = scratch.weights.data();
    }
  } else {
    scratch.weights.resize(keep);
    for (size_t k = 0; k < keep; ++k)
      scratch.weights[k] =
          std::pow(pr[size_t(at(k))], 1.0 / double(p.temperature));
    w = scratch.weights.data();
  }
  for (size_t k = 0; k < keep; ++k)
    total += w[k];
  if (!(total > 0) || !std::isfinite(total))
    return at(0);
  double u = uniform(s->rng) * total, acc = 0;
  for (size_t k = 0; k < keep; ++k) {
    acc += w[k];
    if (u < acc)
      return at(k);
  }
  return at(keep - 1);
}

void rwkv_sampler_accept(rwkv_sampler *s, int32_t id, float weight) {
  // Tokens that never occurred hold 0, which the decay keeps.
  for (float &o : s->occurrence)
    o *= s->p.penalty_decay;
  if (id >= 0 && size_t(id) < s->nVocab) {
    auto [it, added] = s->slot.try_emplace(id, s->present.size());
    if (added) {
      s->present.push_back(id);
      s->occurrence.push_back(0.0f);
    }
    s->occurrence[it->second] += weight;
  }
}

} // extern "C"
