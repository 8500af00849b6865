//===- QuantizeTest.cpp - The quantizer against the frontend's decoder ----===//
//
// quantizeBlocks (codegen/Quantize.h) writes rwkv.cpp's block layouts; the
// frontend's decoder (Tensor::decodeF32, which reads rwkv.cpp's .bin files)
// must give back each value within the format's step, so the two agree on
// where every scale, minimum, nibble and fifth bit lies.
//
//===----------------------------------------------------------------------===//

#include "codegen/Quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace rwkvc;

namespace {

/// The values of `blocks` blocks of `kind` made from `x`.
std::vector<float> roundTrip(DType kind, const std::vector<float> &x) {
  std::vector<uint8_t> bytes(dtypeStorageBytes(kind, x.size()));
  quantizeBlocks(kind, x.data(), bytes.data(), x.size() / 32);
  Tensor t;
  t.dtype = kind;
  t.shape = {int64_t(x.size())};
  t.data = bytes.data();
  t.nbytes = bytes.size();
  return t.toF32();
}

struct Case {
  DType kind;
  int levels; // codes
  bool hasMin;
};

// Blocks of 32: normal values, one outlier, all equal, all zero, all
// negative, a tiny range.
std::vector<float> testValues() {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> x;
  for (int b = 0; b < 200; ++b)
    for (int j = 0; j < 32; ++j)
      x.push_back(normal(rng) * float(1 + b % 7));
  for (int j = 0; j < 32; ++j)
    x.push_back(j == 5 ? -3.0f : normal(rng));
  for (int j = 0; j < 32; ++j)
    x.push_back(0.25f);
  for (int j = 0; j < 32; ++j)
    x.push_back(0.0f);
  for (int j = 0; j < 32; ++j)
    x.push_back(-1.0f - 0.01f * float(j));
  for (int j = 0; j < 32; ++j)
    x.push_back(1e-3f + 1e-6f * float(j));
  return x;
}

TEST(Quantize, DecodesWithinItsSteps) {
  std::vector<float> x = testValues();
  for (Case c : {Case{DType::Q8_0, 255, false}, Case{DType::Q5_1, 32, true},
                 Case{DType::Q5_0, 32, false}, Case{DType::Q4_1, 16, true},
                 Case{DType::Q4_0, 16, false}}) {
    SCOPED_TRACE(dtypeName(c.kind).str());
    std::vector<float> y = roundTrip(c.kind, x);
    ASSERT_EQ(y.size(), x.size());
    double squares = 0; // of the errors in steps
    size_t counted = 0;
    for (size_t b = 0; b < x.size() / 32; ++b) {
      float lo = x[32 * b], hi = x[32 * b], amax = 0;
      for (int j = 0; j < 32; ++j) {
        lo = std::min(lo, x[32 * b + j]);
        hi = std::max(hi, x[32 * b + j]);
        amax = std::max(amax, std::fabs(x[32 * b + j]));
      }
      // The step between codes of a scale spanning the block: (max - min)
      // / (levels - 1) with a minimum, 2 max|x| / (levels - 1) for the
      // symmetric kinds. Rounding to the nearest code errs by half a step;
      // the least-squares refit may give up the extremes for the rest,
      // which bounds no value's error by less than about a step, but
      // lowers the mean: within 2 steps each (a misplaced code errs by up
      // to the whole range), 0.3 of a step root-mean-square (uniform
      // rounding: 1/sqrt(12) = 0.29).
      float step = c.hasMin ? (hi - lo) / float(c.levels - 1)
                            : 2 * amax / float(c.levels - 1);
      for (int j = 0; j < 32; ++j) {
        size_t i = 32 * b + j;
        double e = std::fabs(y[i] - x[i]);
        if (step > 0)
          squares += (e / step) * (e / step), ++counted;
        ASSERT_LE(e, 2 * step + amax * 2e-3f + 1e-7f)
            << "block " << b << " element " << j << ": " << x[i] << " -> "
            << y[i];
      }
    }
    EXPECT_LE(std::sqrt(squares / double(counted)), 0.3);
  }
}

TEST(Quantize, KeepsExactValuesExact) {
  // Values on a format's grid come back exactly (no refit lowers an error
  // of 0): a block whose extreme and values are on the grid of the scale
  // chosen from the extreme, and a block of equal values with a minimum.
  std::vector<float> x(64, 0.0f);
  x[3] = -2.0f;   // the extreme of block 0
  x[10] = 1.0f;   // -2 / -8 * 4 = 1: code 12 of q4_0
  for (int j = 32; j < 64; ++j)
    x[j] = 0.5f;
  for (DType kind : {DType::Q5_0, DType::Q4_0}) {
    std::vector<float> y = roundTrip(kind, x);
    for (int i = 0; i < 32; ++i)
      EXPECT_EQ(y[i], x[i]) << dtypeName(kind).str() << " element " << i;
  }
  // q8_0's scale is max|x| / 127: exact for max|x| = 127 / 128.
  std::vector<float> z(32, 0.0f);
  z[3] = -127.0f / 128, z[10] = 64.0f / 128, z[20] = 1.0f / 128;
  std::vector<float> y = roundTrip(DType::Q8_0, z);
  for (int i = 0; i < 32; ++i)
    EXPECT_EQ(y[i], z[i]) << "q8_0 element " << i;
  for (DType kind : {DType::Q5_1, DType::Q4_1}) {
    std::vector<float> y = roundTrip(kind, x);
    for (int i = 32; i < 64; ++i)
      EXPECT_EQ(y[i], 0.5f) << dtypeName(kind).str() << " element " << i;
  }
}

} // namespace
