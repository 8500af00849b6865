//===- WarpOps.h - What a warp collective computes --------------*- C++ -*-===//
//
// The semantics of the warp collectives of rwkv_cuda_emu_abi.h, apart from
// their scheduling: the checks a lane's call must pass on arrival, and the
// result of a collective once every lane of its mask has arrived.
//
//   shuffles  CUDA Programming Guide, "Warp Shuffle Functions": lanes in
//             segments of `width`; up/down/xor past the segment read the
//             caller's own value; reading a lane outside the mask is an
//             error here (undefined on a GPU)
//   votes     __ballot_sync, __any_sync, __all_sync over the mask
//   mma       PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating
//             point type": A 16x16 row major, B 16x8 column major, C/D 16x8
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDAEMU_WARPOPS_H
#define RWKV_CUDAEMU_WARPOPS_H

#include "rwkv_cuda_emu_abi.h"

#include <string>

namespace rwkv_emu {

/// The input and output of one lane of a collective.
struct LaneIO {
  const void *in = nullptr;
  void *out = nullptr;
  int arg = 0; // this lane's srcLane, delta or laneMask
};

/// Checks lane `lane`'s call `op` in a warp of `warpLanes` threads (32 but
/// in a block's last, partial warp). Returns "" or what is wrong.
std::string checkWarpOp(const rwkv_emu_warp_op &op, unsigned lane,
                        unsigned warpLanes);

/// Computes the collective `op` over the lanes of `mask`, all arrived:
/// lanes[l] for each l in mask. Returns "" or what is wrong (a shuffle
/// reading a lane outside the mask).
std::string completeWarpOp(const rwkv_emu_warp_op &op, uint32_t mask,
                           const LaneIO lanes[32]);

/// D = A B + C of one mma.m16n8k16 (row.col, f32 accumulators) from the 32
/// lanes' fragments; `bf16` selects bfloat16 inputs over f16.
void mmaM16N8K16(const rwkv_emu_mma_in *const in[32], float *const out[32],
                 bool bf16);

} // namespace rwkv_emu

#endif // RWKV_CUDAEMU_WARPOPS_H
