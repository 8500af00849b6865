//===- OpTestUtil.h - Shared helpers of the op-level JIT tests ---*- C++
//-*-===//
//
// Random inputs, MLIR text templates, running a kernel over a sequence in
// several calls, and the max-|diff| comparison against double-precision
// references (each comparison prints its max error and tolerance, so a run
// with --gtest_filter shows the margins).
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_CODEGEN_OPTESTUTIL_H
#define RWKVC_TEST_CODEGEN_OPTESTUTIL_H

#include "JitHarness.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace rwkvc::testing {

/// A split pattern over which a T-token sequence is run: `chunks` calls of
/// the sequence function, or the one-token function when `oneKernel`.
struct TokenRun {
  const char *name;
  int64_t tokens;
  std::vector<int64_t> chunks;
  bool oneKernel;
};

/// Uniform floats in [lo, hi).
inline std::vector<float> randomVector(std::mt19937 &rng, size_t n, float lo,
                                       float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Replaces every `$NAME` of `text` (longest names first).
inline std::string substitute(std::string text,
                              const std::map<std::string, std::string> &vars) {
  std::vector<std::pair<std::string, std::string>> sorted(vars.begin(),
                                                          vars.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) {
    return a.first.size() > b.first.size();
  });
  for (auto &[name, value] : sorted) {
    std::string key = "$" + name;
    for (size_t p = text.find(key); p != std::string::npos;
         p = text.find(key, p + value.size()))
      text.replace(p, key.size(), value);
  }
  return text;
}

/// `tensor<?xCxf32>` (a sequence), or `tensor<1xCxf32>`.
inline std::string act(int64_t c, bool oneToken = false) {
  return "tensor<" + std::string(oneToken ? "1" : "?") + "x" +
         std::to_string(c) + "xf32>";
}
inline std::string vec(int64_t c, const char *type = "f32") {
  return "tensor<" + std::to_string(c) + "x" + type + ">";
}

/// Compiles `source` or fails the test (`quantDot`: JitModule::compile's).
inline std::unique_ptr<JitModule> compileOrFail(const std::string &source,
                                                llvm::StringRef quantDot = "") {
  auto jit = JitModule::compile(source, "f", 3, quantDot);
  if (!jit) {
    ADD_FAILURE() << llvm::toString(jit.takeError());
    return nullptr;
  }
  return std::move(*jit);
}

/// Runs the kernel over T = sum(chunks) tokens in consecutive calls (the
/// state carried between them): inputs whose leading dimension is dynamic
/// are sliced by rows, others passed whole; outputs are gathered. A chunk
/// of 1 token calls the `_one` kernel when `oneKernel`.
inline void runInChunks(JitModule &jit, std::vector<std::vector<float> *> inputs,
                        std::vector<std::vector<float> *> outputs,
                        std::vector<int64_t> chunks, bool oneKernel = false) {
  ASSERT_EQ(inputs.size(), jit.numInputs());
  ASSERT_EQ(outputs.size(), jit.numOutputs());
  int64_t total = 0;
  for (int64_t n : chunks)
    total += n;
  auto rowSize = [&](unsigned i) {
    std::vector<int64_t> s = jit.shape(i, 1);
    int64_t n = 1;
    for (size_t d = 1; d < s.size(); ++d)
      n *= s[d];
    return n;
  };
  auto perToken = [&](unsigned i) { return jit.shape(i, 2) != jit.shape(i, 1); };
  for (size_t o = 0; o < outputs.size(); ++o) {
    unsigned i = inputs.size() + o;
    outputs[o]->assign(perToken(i) ? total * rowSize(i) : rowSize(i) * jit.shape(i, 1)[0],
                       0.0f);
  }
  int64_t t0 = 0;
  for (int64_t n : chunks) {
    std::vector<std::vector<float>> slices;
    slices.reserve(inputs.size() + outputs.size());
    std::vector<Buffer> buffers;
    for (unsigned i = 0; i < inputs.size() + outputs.size(); ++i) {
      std::vector<float> &full =
          i < inputs.size() ? *inputs[i] : *outputs[i - inputs.size()];
      if (perToken(i)) {
        int64_t r = rowSize(i);
        slices.emplace_back(full.begin() + t0 * r, full.begin() + (t0 + n) * r);
      } else {
        slices.push_back(full);
      }
    }
    for (auto &s : slices)
      buffers.emplace_back(s);
    llvm::Error err = jit.run(buffers, n, oneKernel && n == 1);
    ASSERT_FALSE(err) << llvm::toString(std::move(err));
    for (unsigned o = 0; o < outputs.size(); ++o) {
      unsigned i = inputs.size() + o;
      std::vector<float> &full = *outputs[o];
      if (perToken(i))
        std::copy(slices[i].begin(), slices[i].end(),
                  full.begin() + t0 * rowSize(i));
      else
        full = slices[i];
    }
    t0 += n;
  }
}

/// Max |got - ref| <= tol; prints the margin.
inline ::testing::AssertionResult closeTo(const std::string &what,
                                          const std::vector<float> &got,
                                          const std::vector<double> &ref,
                                          double tol) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure()
           << what << ": " << got.size() << " values, reference has "
           << ref.size();
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (!(d <= worst)) { // NaN counts as worst
      worst = d;
      at = i;
      if (std::isnan(d))
        break;
    }
  }
  std::printf("[ maxdiff  ] %-64s %.3g (tol %.1g)\n", what.c_str(), worst, tol);
  if (worst <= tol)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": max |diff| " << worst << " > " << tol << " at element "
         << at << " (got " << got[at] << ", reference " << ref[at] << ")";
}

inline std::vector<double> toDouble(const std::vector<float> &v) {
  return std::vector<double>(v.begin(), v.end());
}

} // namespace rwkvc::testing

#endif // RWKVC_TEST_CODEGEN_OPTESTUTIL_H
