//===- Quantize.h - f32 to rwkv.cpp's block formats ---------------*- C++ -*-===//
//
//   32 f32 ──scale (and minimum) spanning the block, then refitted by least
//   squares; codes rounded to nearest against the f16 values stored──▶ one
//   block, byte for byte as rwkv.cpp stores it (docs/formats.md)
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
/// (kind, 32) bytes each. A block's values are d (code - zero) + m, codes
/// in [0, 15] (4 bits), [0, 31] (5) or [-128, 127] (8), zero 8 (Q4_0), 16
/// (Q5_0) or 0, m = 0 but for Q4_1 and Q5_1. First d (and m) span the
/// block: m = min x, d = (max x - m) / 15 (31); d = -x* / 8 (16) with x*
/// the element of largest magnitude; Q8_0 d = max|x| / 127. Then, while the
/// squared error falls (at most 4 times), d (and m) are refitted by least
/// squares to the codes and the codes rounded again. Codes are always the
/// nearest against the f16 d and m stored. A block of zeros (or NaNs) has
/// d = 0.
void quantizeBlocks(DType kind, const float *src, uint8_t *dst,
                    size_t blocks);

} // namespace rwkvc

#endif // RWKV_CODEGEN_QUANTIZE_H
