//===- rwkv_cuda_emu_half.h - f16 and bf16 bit conversions -------*- C++
//-*-===//
//
// The conversions of the emulator's __half / __nv_bfloat16 (rwkv_cuda_emu.h)
// and of its mma emulation (cudaemu/lib), rounding as the PTX cvt
// instructions the prelude uses: cvt.rn.f16.f32, cvt.rn.bf16.f32 (round to
// nearest even, NaN to the canonical 0x7fff) and the exact widenings.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDA_EMU_HALF_H
#define RWKV_CUDA_EMU_HALF_H

#include <cstdint>
#include <cstring>

namespace rwkv_emu {
inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
/// float -> IEEE binary16, round to nearest even; NaN -> 0x7fff (as PTX
/// cvt.rn.f16.f32).
inline unsigned short f32_to_f16(float f) {
  uint32_t x = float_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u)
    return 0x7fff;
  if (ax >= 0x477ff000u) // >= 65520: rounds to infinity
    return uint16_t(sign | 0x7c00u);
  if (ax >= 0x38800000u) { // normal in f16 (>= 2^-14)
    uint32_t r = ax - 0x38000000u;
    return uint16_t(sign | ((r + 0x0fffu + ((r >> 13) & 1u)) >> 13));
  }
  uint32_t exp = ax >> 23;
  if (exp < 102) // below 2^-25: rounds to zero
    return uint16_t(sign);
  uint32_t mant = (ax & 0x7fffffu) | 0x800000u, shift = 126 - exp;
  uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  r += rem > half || (rem == half && (r & 1u));
  return uint16_t(sign | r);
}
inline float f16_to_f32(unsigned short h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu,
           mant = h & 0x3ffu;
  if (exp == 0x1f)
    return bits_float(sign | 0x7f800000u | (mant << 13));
  if (exp != 0)
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
  float v = float(mant) * 0x1p-24f; // subnormal or zero: exact
  return sign ? -v : v;
}
/// float -> bfloat16, round to nearest even; NaN -> 0x7fff.
inline unsigned short f32_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u)
    return 0x7fff;
  return uint16_t((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
inline float bf16_to_f32(unsigned short h) {
  return bits_float(uint32_t(h) << 16);
}
} // namespace rwkv_emu

#endif // RWKV_CUDA_EMU_HALF_H
