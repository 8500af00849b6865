//===- rwkv_logsumexp.cpp - log Σ exp of a row of logits ------------------===//
//
// What perplexity spends outside the model: log Σ_v exp(logits[v]) per
// position, in double precision (each exp to ~3e-16 relative), as
//
//   m = max_v logits[v];  m + log Σ_v exp(logits[v] - m)
//
// with a branch-free exp that vectorizes, compiled three times (AVX-512,
// AVX2+FMA, baseline x86-64) and picked once by the CPU it runs on: the
// library itself is built for the baseline, so that a model runs anywhere.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

/// exp(x) for x <= 0 (and NaN), relative error < 4e-16: Cody-Waite
/// reduction x = k ln2 + r, |r| <= ln2 / 2, then e^r by its Taylor series
/// to r^12 / 12! (the next term is < 2e-16) and 2^k built in the exponent
/// bits. x below -708 counts as -708 (e^-708 ~ 3e-308: a sum that holds
/// e^0 = 1 cannot notice it).
[[gnu::always_inline]] inline double expNonPositive(double x) {
  const double kLog2e = 1.4426950408889634, kLn2Hi = 6.93147180369123816490e-01,
               kLn2Lo = 1.90821492927058770002e-10,
               kShift = 0x1.8p52; // adding it rounds to an integer
  x = x < -708.0 ? -708.0 : x;
  double k = (x * kLog2e + kShift) - kShift;
  double r = x - k * kLn2Hi - k * kLn2Lo;
  double p = 1.0 / 479001600;
  for (double c : {1.0 / 39916800, 1.0 / 3628800, 1.0 / 362880, 1.0 / 40320,
                   1.0 / 5040, 1.0 / 720, 1.0 / 120, 1.0 / 24, 1.0 / 6, 0.5,
                   1.0, 1.0})
    p = p * r + c;
  // 2^k: k + 1023 in the low bits of a double's mantissa, shifted into the
  // exponent field.
  double biased = k + (1023.0 + kShift);
  uint64_t bits;
  memcpy(&bits, &biased, sizeof bits);
  bits <<= 52;
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

/// The body of logSumExp, for each instruction set.
[[gnu::always_inline]] inline double logSumExpBody(const float *row,
                                                   size_t n) {
  float mx = row[0];
  for (size_t v = 1; v < n; ++v)
    mx = row[v] > mx ? row[v] : mx;
  const double m = mx;
  // Eight partial sums so that the loop vectorizes without reassociation.
  double part[8] = {};
  size_t v = 0;
  for (; v + 8 <= n; v += 8)
    for (size_t j = 0; j < 8; ++j)
      part[j] += expNonPositive(double(row[v + j]) - m);
  double sum = 0;
  for (; v < n; ++v)
    sum += expNonPositive(double(row[v]) - m);
  for (double p : part)
    sum += p;
  return m + std::log(sum);
}

#if defined(__x86_64__) && defined(__clang__)
[[gnu::target("avx512f,avx512dq,avx512vl,fma")]] double
logSumExpAVX512(const float *row, size_t n) {
  return logSumExpBody(row, n);
}
[[gnu::target("avx2,fma")]] double logSumExpAVX2(const float *row, size_t n) {
  return logSumExpBody(row, n);
}
#endif
double logSumExpBase(const float *row, size_t n) {
  return logSumExpBody(row, n);
}

using LogSumExpFn = double (*)(const float *, size_t);

LogSumExpFn pickLogSumExp() {
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return logSumExpAVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return logSumExpAVX2;
#endif
  return logSumExpBase;
}

} // namespace

double rwkv_internal::logSumExp(const float *row, size_t n) {
  static const LogSumExpFn fn = pickLogSumExp();
  return fn(row, n);
}
