//===- FloatConvertTest.cpp - f32 to f16/bf16 against APFloat -------------===//
//
// The packer's converters (codegen/FloatConvert.h) must give APFloat's bits
// (round to nearest even) for every f32. Exhaustive over the top 16 bits
// (every sign, exponent and the high mantissa) with low halves that pick
// each rounding case (the round bit of f16 and bf16, sticky bits, odd and
// even results), plus random values; every path: the scalar formulas, the
// portable loop, and F16C where this CPU has it.
//
//===----------------------------------------------------------------------===//

#include "codegen/FloatConvert.h"

#include "llvm/ADT/APFloat.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

using namespace rwkvc;

namespace {

uint16_t apfloat16(uint32_t bits, const llvm::fltSemantics &semantics) {
  float f;
  std::memcpy(&f, &bits, 4);
  bool lost;
  llvm::APFloat a(f);
  a.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &lost);
  return uint16_t(a.bitcastToAPInt().getZExtValue());
}

/// The inputs: every top half with each low half of `lows`, then `random`
/// random bit patterns.
std::vector<uint32_t> inputs(size_t random) {
  std::vector<uint32_t> lows;
  // Bits 15..12 all combinations (bf16's round bit is 15, f16's lowest kept
  // bit 13 and round bit 12), below them nothing, one bit, the top one, all.
  for (uint32_t high = 0; high < 16; ++high)
    for (uint32_t low : {0x000u, 0x001u, 0x800u, 0xfffu})
      lows.push_back(high << 12 | low);
  std::vector<uint32_t> v;
  v.reserve((1u << 16) * lows.size() + random);
  for (uint32_t top = 0; top < (1u << 16); ++top)
    for (uint32_t low : lows)
      v.push_back(top << 16 | low);
  std::mt19937_64 rng(20240611);
  for (size_t i = 0; i < random; ++i)
    v.push_back(uint32_t(rng()));
  return v;
}

const std::vector<uint32_t> &testInputs() {
  static const std::vector<uint32_t> v = inputs(8'000'000);
  return v;
}

std::string hex(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

TEST(FloatConvert, ScalarFormulasMatchAPFloat) {
  size_t bad16 = 0, badBF16 = 0;
  for (uint32_t x : testInputs()) {
    uint16_t want16 = apfloat16(x, llvm::APFloat::IEEEhalf());
    uint16_t wantBF = apfloat16(x, llvm::APFloat::BFloat());
    if (floatToHalfBits(x) != want16 && bad16++ < 5)
      ADD_FAILURE() << "f16 of " << hex(x) << ": " << hex(floatToHalfBits(x))
                    << ", APFloat " << hex(want16);
    if (floatToBFloat16Bits(x) != wantBF && badBF16++ < 5)
      ADD_FAILURE() << "bf16 of " << hex(x) << ": "
                    << hex(floatToBFloat16Bits(x)) << ", APFloat "
                    << hex(wantBF);
  }
  EXPECT_EQ(bad16, 0u);
  EXPECT_EQ(badBF16, 0u);
}

TEST(FloatConvert, ArrayConvertersMatchTheScalarFormulas) {
  const std::vector<uint32_t> &in = testInputs();
  std::vector<float> f(in.size());
  std::memcpy(f.data(), in.data(), in.size() * 4);
  // Odd lengths and offsets: the vector loops' remainders.
  for (size_t skip : {size_t(0), size_t(3)}) {
    size_t n = in.size() - skip - 5;
    std::vector<uint16_t> hw(n), portable(n), bf(n);
    convertToHalf(f.data() + skip, hw.data(), n);
    convertToHalfPortable(f.data() + skip, portable.data(), n);
    convertToBFloat16(f.data() + skip, bf.data(), n);
    size_t bad = 0;
    for (size_t i = 0; i < n && bad < 5; ++i) {
      uint32_t x = in[skip + i];
      if (hw[i] != floatToHalfBits(x) || portable[i] != floatToHalfBits(x) ||
          bf[i] != floatToBFloat16Bits(x))
        ++bad, ADD_FAILURE() << hex(x) << ": convertToHalf " << hex(hw[i])
                             << ", portable " << hex(portable[i])
                             << ", convertToBFloat16 " << hex(bf[i]);
    }
  }
  if (!hasHalfConversionInstructions())
    GTEST_SKIP() << "no F16C on this CPU: convertToHalf is the portable loop";
}

TEST(FloatConvert, NamedCases) {
  struct Case {
    uint32_t f32;
    uint16_t f16, bf16;
  } cases[] = {
      {0x00000000, 0x0000, 0x0000}, // +0
      {0x80000000, 0x8000, 0x8000}, // -0
      {0x3f800000, 0x3c00, 0x3f80}, // 1
      {0x477fe000, 0x7bff, 0x4780}, // 65504, the largest f16
      {0x477ff000, 0x7c00, 0x4780}, // 65520: a tie, rounds to f16 Inf
      {0x477fefff, 0x7bff, 0x4780}, // just below the tie
      {0x7f7fffff, 0x7c00, 0x7f80}, // the largest f32: Inf in both
      {0x7f800000, 0x7c00, 0x7f80}, // Inf
      {0xff800000, 0xfc00, 0xff80}, // -Inf
      {0x7fc00000, 0x7e00, 0x7fc0}, // quiet NaN
      {0x7f800001, 0x7e00, 0x7fc0}, // signalling NaN, payload below f16's
      {0xff810000, 0xfe08, 0xffc1}, // -sNaN: quiet, top payload bits kept
      {0x33800000, 0x0001, 0x3380}, // 2^-24, the smallest f16 subnormal
      {0x33000000, 0x0000, 0x3300}, // 2^-25: a tie, rounds to even 0
      {0x33000001, 0x0001, 0x3300}, // just above it
      {0x387fc000, 0x03ff, 0x3880}, // the largest f16 subnormal
      {0x387ff000, 0x0400, 0x3880}, // rounds up into the normals
      {0x00000001, 0x0000, 0x0000}, // the smallest f32 subnormal
      {0x3f808000, 0x3c04, 0x3f80}, // bf16 tie, even below
      {0x3f818000, 0x3c0c, 0x3f82}, // bf16 tie, odd below: up
  };
  for (const Case &c : cases) {
    EXPECT_EQ(floatToHalfBits(c.f32), c.f16) << hex(c.f32);
    EXPECT_EQ(floatToBFloat16Bits(c.f32), c.bf16) << hex(c.f32);
    EXPECT_EQ(apfloat16(c.f32, llvm::APFloat::IEEEhalf()), c.f16) << hex(c.f32);
    EXPECT_EQ(apfloat16(c.f32, llvm::APFloat::BFloat()), c.bf16) << hex(c.f32);
  }
}

} // namespace
