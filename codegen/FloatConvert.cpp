//===- FloatConvert.cpp - f32 to f16 and bf16 as APFloat rounds -----------===//

#include "codegen/FloatConvert.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#define RWKVC_HAVE_F16C 1
#endif

namespace rwkvc {

static inline uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

void convertToHalfPortable(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; ++i)
    dst[i] = floatToHalfBits(bitsOf(src[i]));
}

#ifdef RWKVC_HAVE_F16C
// VCVTPS2PH with an explicit rounding mode rounds to nearest even whatever
// MXCSR says, makes a NaN quiet keeping its top payload bits and writes f16
// subnormals (MXCSR.FTZ does not apply to it): APFloat's result exactly.
__attribute__((target("avx,f16c"))) static void
convertToHalfF16C(const float *src, uint16_t *dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(src + i);
    __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i *>(dst + i), h);
  }
  convertToHalfPortable(src + i, dst + i, n - i);
}

bool hasHalfConversionInstructions() {
  static const bool has =
      __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}

#else
bool hasHalfConversionInstructions() { return false; }
#endif

// Constant shifts and selects: vectorized with the baseline instructions.
// (AVX-512's VCVTNEPS2BF16 treats f32 subnormals as zero: not APFloat's.)
void convertToBFloat16(const float *src, uint16_t *dst, size_t n) {
  for (size_t i = 0; i < n; ++i)
    dst[i] = floatToBFloat16Bits(bitsOf(src[i]));
}

void convertToHalf(const float *src, uint16_t *dst, size_t n) {
#ifdef RWKVC_HAVE_F16C
  if (hasHalfConversionInstructions())
    return convertToHalfF16C(src, dst, n);
#endif
  convertToHalfPortable(src, dst, n);
}

} // namespace rwkvc
