//===- Quantize.cpp - f32 to rwkv.cpp's block formats ---------------------===//

#include "codegen/Quantize.h"
#include "codegen/FloatConvert.h"
#include "frontend/ReaderSupport.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace rwkvc {

namespace {

constexpr int kBlock = 32;

/// `v` rounded to f16: its bits, and its value as f32.
std::pair<uint16_t, float> toHalf(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  uint16_t h = floatToHalfBits(bits);
  return {h, detail::halfToFloat(h)};
}

void putHalf(uint8_t *p, uint16_t h) {
  p[0] = uint8_t(h);
  p[1] = uint8_t(h >> 8);
}

/// Codes in [0, maxCode] of x / d + offset, rounded to nearest.
uint8_t code(float x, float inv, float offset, int maxCode) {
  float c = std::floor(x * inv + offset + 0.5f);
  return uint8_t(std::clamp(c == c ? int(c) : 0, 0, maxCode));
}

/// The 4- and 5-bit kinds: `codes` (32 values) into nibbles, and the fifth
/// bits when `high`.
void packCodes(const uint8_t *codes, uint8_t *nibbles, uint8_t *high) {
  uint32_t fifth = 0;
  for (int j = 0; j < 16; ++j) {
    nibbles[j] = uint8_t((codes[j] & 15) | (codes[j + 16] & 15) << 4);
    fifth |= uint32_t(codes[j] >> 4 & 1) << j;
    fifth |= uint32_t(codes[j + 16] >> 4 & 1) << (j + 16);
  }
  if (high)
    for (int i = 0; i < 4; ++i)
      high[i] = uint8_t(fifth >> (8 * i));
}

void quantizeBlock(DType kind, const float *x, uint8_t *out) {
  uint8_t codes[kBlock];
  switch (kind) {
  case DType::Q8_0: {
    float amax = 0;
    for (int j = 0; j < kBlock; ++j)
      amax = std::max(amax, std::fabs(x[j]));
    auto [h, d] = toHalf(amax / 127.0f);
    putHalf(out, h);
    float inv = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j)
      out[2 + j] = uint8_t(int8_t(int(code(x[j], inv, 128.0f, 255)) - 128));
    return;
  }
  case DType::Q4_0:
  case DType::Q5_0: {
    int levels = kind == DType::Q4_0 ? 16 : 32; // zero code levels / 2
    float extreme = 0;
    for (int j = 0; j < kBlock; ++j)
      if (std::fabs(x[j]) > std::fabs(extreme))
        extreme = x[j];
    auto [h, d] = toHalf(extreme / -float(levels / 2));
    putHalf(out, h);
    float inv = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j)
      codes[j] = code(x[j], inv, float(levels / 2), levels - 1);
    if (kind == DType::Q4_0)
      packCodes(codes, out + 2, nullptr);
    else
      packCodes(codes, out + 6, out + 2);
    return;
  }
  case DType::Q4_1:
  case DType::Q5_1: {
    int maxCode = kind == DType::Q4_1 ? 15 : 31;
    float lo = x[0], hi = x[0];
    for (int j = 1; j < kBlock; ++j) {
      lo = std::min(lo, x[j]);
      hi = std::max(hi, x[j]);
    }
    auto [mh, m] = toHalf(lo);
    auto [dh, d] = toHalf((hi - m) / float(maxCode));
    putHalf(out, dh);
    putHalf(out + 2, mh);
    float inv = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < kBlock; ++j)
      codes[j] = code(x[j] - m, inv, 0.0f, maxCode);
    if (kind == DType::Q4_1)
      packCodes(codes, out + 4, nullptr);
    else
      packCodes(codes, out + 8, out + 4);
    return;
  }
  default:
    llvm_unreachable("not a block format");
  }
}

} // namespace

void quantizeBlocks(DType kind, const float *src, uint8_t *dst,
                    size_t blocks) {
  uint64_t bytes = dtypeStorageBytes(kind, kBlock);
  for (size_t i = 0; i < blocks; ++i)
    quantizeBlock(kind, src + i * kBlock, dst + i * bytes);
}

} // namespace rwkvc
