//===- Quantize.h - f32 to rwkv.cpp's block formats ---------------*- C++ -*-===//
//
//   32 f32 ──scale (and minimum) rounded to f16 first──▶ codes rounded to
//   nearest against the stored scale ──▶ one block, byte for byte as
//   rwkv.cpp stores it (docs/formats.md)
//
// The weight packer's quantizer (--weight-type=q8_0, q5_1, q5_0, q4_1,
// q4_0). Tensor::decodeF32 (frontend/Checkpoint.h) is its inverse.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_QUANTIZE_H
#define RWKV_CODEGEN_QUANTIZE_H

#include "frontend/Checkpoint.h"

#include <cstddef>
#include <cstdint>

namespace rwkvc {

/// Quantizes `blocks` blocks of 32 floats from `src` into `dst` in the
/// block format `kind` (Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0), dtypeStorageBytes
/// (kind, 32) bytes each:
///   Q8_0: d = max|x| / 127, q = round(x / d) in [-127, 127];
///   Q4_0, Q5_0: d = -x* / 8 (16), x* the element of largest magnitude,
///         code = round(x / d) + 8 (16) in [0, 15] ([0, 31]);
///   Q4_1, Q5_1: m = min x, d = (max x - m) / 15 (31),
///         code = round((x - m) / d) in [0, 15] ([0, 31]);
/// with d and m the f16 values stored (codes are rounded against them). A
/// block of zeros (or NaNs, which compare false) has d = 0.
void quantizeBlocks(DType kind, const float *src, uint8_t *dst,
                    size_t blocks);

} // namespace rwkvc

#endif // RWKV_CODEGEN_QUANTIZE_H
