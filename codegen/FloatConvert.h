//===- FloatConvert.h - f32 to f16 and bf16 as APFloat rounds -----*- C++ -*-===//
//
//   f32 ──round to nearest even──▶ f16 (IEEE half) │ bf16
//
// The weight packer's converters: the same bits as
// APFloat::convert(rmNearestTiesToEven) for every input (overflow to Inf,
// f16 subnormals, NaN made quiet with its sign and top payload bits), at
// memory speed. The array converters use F16C where the CPU has it and a
// branch-free integer formula (which compilers vectorize) otherwise.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_FLOATCONVERT_H
#define RWKV_CODEGEN_FLOATCONVERT_H

#include <cstddef>
#include <cstdint>

namespace rwkvc {

/// The f16 bits nearest to the f32 whose bits are `x` (ties to even).
inline uint16_t floatToHalfBits(uint32_t x) {
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t a = x & 0x7fffffff;
  // |x| >= 2^-14: rebias the exponent (127 - 15) and round at bit 13; the
  // carry of the rounding moves into the exponent, up to Inf (0x7c00).
  uint32_t normal = (a - (112u << 23) + 0xfff + ((a >> 13) & 1)) >> 13;
  normal = normal < 0x7c00 ? normal : 0x7c00;
  // |x| < 2^-14: the f16 subnormal round(|x| * 2^24) of the significand m
  // (implicit bit set) is m >> (126 - exponent), rounded to even.
  uint32_t m = (a & 0x7fffff) | 0x800000;
  uint32_t shift = 126 - (a >> 23);
  shift = shift < 31 ? shift : 31;
  uint32_t subnormal =
      (m + (1u << (shift - 1)) - 1 + ((m >> shift) & 1)) >> shift;
  // NaN: quiet, keeping the top 10 bits of the payload.
  uint32_t nan = 0x7e00 | ((a >> 13) & 0x3ff);
  uint32_t h = a > 0x7f800000 ? nan : a < 0x38800000 ? subnormal : normal;
  return uint16_t(sign | h);
}

/// The bf16 bits nearest to the f32 whose bits are `x` (ties to even).
inline uint16_t floatToBFloat16Bits(uint32_t x) {
  // The carry of the rounding reaches Inf (0x7f80) from the largest finite
  // values and never the sign.
  uint32_t rounded = (x + 0x7fff + ((x >> 16) & 1)) >> 16;
  uint32_t nan = (x >> 16) | 0x40;
  return uint16_t((x & 0x7fffffff) > 0x7f800000 ? nan : rounded);
}

/// dst[i] = floatToHalfBits(src[i]) for i < n (F16C where the CPU has it).
void convertToHalf(const float *src, uint16_t *dst, size_t n);
/// dst[i] = floatToBFloat16Bits(src[i]) for i < n.
void convertToBFloat16(const float *src, uint16_t *dst, size_t n);

/// convertToHalf without the CPU's conversion instructions (tests compare
/// both with APFloat).
void convertToHalfPortable(const float *src, uint16_t *dst, size_t n);
/// Whether convertToHalf uses the CPU's instructions (F16C) on this machine.
bool hasHalfConversionInstructions();

} // namespace rwkvc

#endif // RWKV_CODEGEN_FLOATCONVERT_H
