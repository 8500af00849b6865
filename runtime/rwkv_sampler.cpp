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
#include <vector>

struct rwkv_sampler {
  rwkv_sampler_params p;
  size_t nVocab;
  uint64_t rng[4];
  std::vector<float> occurrence; // (n_vocab) decayed weighted counts
  std::vector<uint8_t> present;  // (n_vocab) 1 once a token occurred
  std::vector<uint8_t> banned;   // (n_vocab)
  std::vector<double> probs;     // (n_vocab) scratch
  std::vector<int32_t> order;    // (n_vocab) scratch
};

using rwkv_internal::setError;

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
    setError(err, errlen, "rwkv_sampler_create: no parameters or n_vocab 0");
    return nullptr;
  }
  if (!(p->temperature >= 0) || std::isinf(p->temperature)) {
    setError(err, errlen, "temperature %g is not a number >= 0",
             double(p->temperature));
    return nullptr;
  }
  if (!(p->top_p > 0 && p->top_p <= 1)) {
    setError(err, errlen, "top-p %g is not in (0, 1]", double(p->top_p));
    return nullptr;
  }
  if (p->top_k < 0) {
    setError(err, errlen, "top-k %d is negative", p->top_k);
    return nullptr;
  }
  if (!(p->penalty_decay >= 0 && p->penalty_decay <= 1)) {
    setError(err, errlen, "penalty decay %g is not in [0, 1]",
             double(p->penalty_decay));
    return nullptr;
  }
  if (!std::isfinite(p->presence_penalty) ||
      !std::isfinite(p->frequency_penalty)) {
    setError(err, errlen, "the penalties must be finite numbers");
    return nullptr;
  }
  rwkv_sampler *s = new rwkv_sampler;
  s->p = *p;
  s->nVocab = n_vocab;
  s->banned.assign(n_vocab, 0);
  s->probs.resize(n_vocab);
  s->order.resize(n_vocab);
  rwkv_sampler_reset(s, p->seed);
  return s;
}

void rwkv_sampler_free(rwkv_sampler *s) { delete s; }

void rwkv_sampler_reset(rwkv_sampler *s, uint64_t seed) {
  s->p.seed = seed;
  uint64_t x = seed;
  for (uint64_t &w : s->rng)
    w = splitmix64(x);
  s->occurrence.assign(s->nVocab, 0.0f);
  s->present.assign(s->nVocab, 0);
}

void rwkv_sampler_ban(rwkv_sampler *s, int32_t id) {
  if (id >= 0 && size_t(id) < s->nVocab)
    s->banned[size_t(id)] = 1;
}

int32_t rwkv_sampler_sample(rwkv_sampler *s, float *logits) {
  const size_t n = s->nVocab;
  const rwkv_sampler_params &p = s->p;
  for (size_t i = 0; i < n; ++i) {
    if (s->banned[i])
      logits[i] = -INFINITY;
    else if (s->present[i])
      logits[i] -= p.presence_penalty + s->occurrence[i] * p.frequency_penalty;
  }
  // Greedy: the first maximum.
  size_t best = n;
  for (size_t i = 0; i < n; ++i)
    if (!std::isnan(logits[i]) && logits[i] != -INFINITY &&
        (best == n || logits[i] > logits[best]))
      best = i;
  if (best == n)
    return -1;
  if (p.temperature == 0)
    return int32_t(best);

  // softmax (in double)
  double mx = logits[best], sum = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = std::isnan(logits[i]) ? 0.0 : std::exp(double(logits[i]) - mx);
    s->probs[i] = e;
    sum += e;
  }
  for (size_t i = 0; i < n; ++i)
    s->probs[i] /= sum;
  // Sorted by probability, descending; ties by lower id. Only as long a
  // prefix as top-p/top-k need is sorted (selection + sort, growing 4x),
  // which keeps a 65536-token vocabulary cheap when the nucleus is small.
  for (size_t i = 0; i < n; ++i)
    s->order[i] = int32_t(i);
  const std::vector<double> &pr = s->probs;
  auto before = [&](int32_t a, int32_t b) {
    return pr[size_t(a)] > pr[size_t(b)] ||
           (pr[size_t(a)] == pr[size_t(b)] && a < b);
  };
  size_t sorted = 0;
  auto sortPrefix = [&](size_t k) {
    k = std::min(k, n);
    if (k > sorted) {
      // Everything in [sorted, n) comes after the sorted prefix: select the
      // next k - sorted of it, then sort just those. O(n + k log k).
      auto first = s->order.begin() + long(sorted);
      auto mid = s->order.begin() + long(k);
      if (k < n)
        std::nth_element(first, mid, s->order.end(), before);
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
        cum += pr[size_t(s->order[k])];
        if (cum >= double(p.top_p))
          break;
      }
      if (k < sorted || sorted == n)
        break;
    }
    if (k < n)
      cutoff = pr[size_t(s->order[k])];
    keep = 0;
    for (size_t i = 0; i < n; ++i)
      keep += pr[i] >= cutoff;
  }
  if (p.top_k > 0 && size_t(p.top_k) < keep)
    keep = size_t(p.top_k);
  if (keep < n)
    sortPrefix(keep); // else every token stays: the draw walks id order
  // p^(1/T) over the kept tokens, then one draw.
  double total = 0;
  std::vector<double> w(keep);
  for (size_t k = 0; k < keep; ++k) {
    double q = pr[size_t(s->order[k])];
    w[k] = p.temperature == 1.0f ? q : std::pow(q, 1.0 / double(p.temperature));
    total += w[k];
  }
  if (!(total > 0) || !std::isfinite(total))
    return s->order[0];
  double u = uniform(s->rng) * total, acc = 0;
  for (size_t k = 0; k < keep; ++k) {
    acc += w[k];
    if (u < acc)
      return s->order[k];
  }
  return s->order[keep - 1];
}

void rwkv_sampler_accept(rwkv_sampler *s, int32_t id, float weight) {
  for (size_t i = 0; i < s->nVocab; ++i)
    s->occurrence[i] *= s->p.penalty_decay;
  if (id >= 0 && size_t(id) < s->nVocab) {
    s->occurrence[size_t(id)] += weight;
    s->present[size_t(id)] = 1;
  }
}

} // extern "C"
