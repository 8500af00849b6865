//===- Quantize.cpp - f32 to rwkv.cpp's block formats ---------------------===//

#include "codegen/Quantize.h"
#include "codegen/FloatConvert.h"
#include "frontend/ReaderSupport.h"

#include "llvm/Support/ErrorHandling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

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

/// A block's values as d (code - zero) + m: its format's codes, and a
/// candidate scale and minimum with the codes nearest to x against their
/// f16 values, and the squared error.
struct Fit {
  int maxCode, zero;
  bool hasMin;
  uint16_t dBits = 0, mBits = 0;
  float d = 0, m = 0;
  uint8_t codes[kBlock] = {};
  double error = 0;

  void set(const float *x, float scale, float min) {
    std::tie(dBits, d) = toHalf(scale);
    std::tie(mBits, m) = hasMin ? toHalf(min) : std::pair<uint16_t, float>{};
    float inv = d != 0 ? 1.0f / d : 0.0f;
    error = 0;
    for (int j = 0; j < kBlock; ++j) {
      float c = std::floor((x[j] - m) * inv + float(zero) + 0.5f);
      codes[j] = uint8_t(std::clamp(c == c ? int(c) : 0, 0, maxCode));
      double e = double(x[j]) - (double(d) * (codes[j] - zero) + m);
      error += e * e;
    }
  }

  /// The least-squares scale (and minimum) for the current codes, or false
  /// when the codes do not determine one.
  bool refit(const float *x, float &scale, float &min) const {
    double sc = 0, scc = 0, sx = 0, scx = 0;
    for (int j = 0; j < kBlock; ++j) {
      double c = codes[j] - zero;
      sc += c, scc += c * c, sx += x[j], scx += c * x[j];
    }
    if (!hasMin) {
      if (scc == 0)
        return false;
      scale = float(scx / scc), min = 0;
      return true;
    }
    double det = kBlock * scc - sc * sc;
    if (det == 0)
      return false;
    scale = float((kBlock * scx - sc * sx) / det);
    min = float((sx - scale * sc) / kBlock);
    return true;
  }
};

void quantizeBlock(DType kind, const float *x, uint8_t *out) {
  bool hasMin = kind == DType::Q4_1 || kind == DType::Q5_1;
  int maxCode = kind == DType::Q8_0                          ? 255
                : kind == DType::Q4_0 || kind == DType::Q4_1 ? 15
                                                             : 31;
  Fit best{maxCode, hasMin ? 0 : (maxCode + 1) / 2, hasMin};
  // The first candidate spans the block: [min, max] in the codes with a
  // minimum; the symmetric kinds put the value of largest magnitude on the
  // far code (-128, -8 or -16 times d; q8_0: ±127 d).
  float lo = x[0], hi = x[0], extreme = 0;
  for (int j = 0; j < kBlock; ++j) {
    lo = std::min(lo, x[j]);
    hi = std::max(hi, x[j]);
    if (std::fabs(x[j]) > std::fabs(extreme))
      extreme = x[j];
  }
  if (hasMin) {
    float m = toHalf(lo).second;
    best.set(x, (hi - m) / float(maxCode), lo);
  } else if (kind == DType::Q8_0) {
    best.set(x, std::fabs(extreme) / 127.0f, 0);
  } else {
    best.set(x, extreme / -float(best.zero), 0);
  }
  // Then least squares: the scale (and minimum) that fit the codes best,
  // the codes nearest against those, while the error falls.
  for (int iteration = 0; iteration < 4 && best.error > 0; ++iteration) {
    float scale, min;
    if (!best.refit(x, scale, min))
      break;
    Fit next = best;
    next.set(x, scale, min);
    if (!(next.error < best.error))
      break;
    best = next;
  }

  putHalf(out, best.dBits);
  switch (kind) {
  case DType::Q8_0:
    for (int j = 0; j < kBlock; ++j)
      out[2 + j] = uint8_t(best.codes[j] - 128);
    return;
  case DType::Q4_0:
    return packCodes(best.codes, out + 2, nullptr);
  case DType::Q5_0:
    return packCodes(best.codes, out + 6, out + 2);
  case DType::Q4_1:
    putHalf(out + 2, best.mBits);
    return packCodes(best.codes, out + 4, nullptr);
  case DType::Q5_1:
    putHalf(out + 2, best.mBits);
    return packCodes(best.codes, out + 8, out + 4);
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
