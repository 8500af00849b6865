//===- WarpOps.cpp - What a warp collective computes ----------------------===//
//
// See WarpOps.h.
//
//===----------------------------------------------------------------------===//

#include "WarpOps.h"

#include "Format.h"
#include "rwkv_cuda_emu_half.h"

#include <cstring>

namespace rwkv_emu {

static bool isShuffle(uint32_t kind) { return kind <= RWKV_EMU_SHFL_XOR; }

std::string checkWarpOp(const rwkv_emu_warp_op &op, unsigned lane,
                        unsigned warpLanes) {
  uint32_t exist = warpLanes >= 32 ? ~0u : (1u << warpLanes) - 1;
  if (!(op.mask >> lane & 1))
    return format("lane %u calls %s with mask 0x%08x, which does not "
                  "include the lane",
                  lane, op.name, op.mask);
  if (op.mask & ~exist)
    return format("%s with mask 0x%08x names lanes the warp does not have "
                  "(it has %u threads)",
                  op.name, op.mask, warpLanes);
  if (isShuffle(op.kind)) {
    int w = op.width;
    if (w < 1 || w > 32 || (w & (w - 1)))
      return format("%s with width %d: the width must be a power of two "
                    "from 1 to 32",
                    op.name, w);
    if (op.bytes != 4 && op.bytes != 8)
      return format("%s of a %u-byte value", op.name, op.bytes);
    if (op.kind != RWKV_EMU_SHFL_IDX && (op.arg < 0 || op.arg > 31))
      return format("%s with %s %d: outside 0..31", op.name,
                    op.kind == RWKV_EMU_SHFL_XOR ? "laneMask" : "delta",
                    op.arg);
  }
  if ((op.kind == RWKV_EMU_MMA_F16 || op.kind == RWKV_EMU_MMA_BF16) &&
      op.mask != ~0u)
    return format("%s needs all 32 lanes of the warp", op.name);
  return "";
}

std::string completeWarpOp(const rwkv_emu_warp_op &op, uint32_t mask,
                           const LaneIO lanes[32]) {
  switch (op.kind) {
  case RWKV_EMU_SHFL_IDX:
  case RWKV_EMU_SHFL_UP:
  case RWKV_EMU_SHFL_DOWN:
  case RWKV_EMU_SHFL_XOR: {
    unsigned w = unsigned(op.width);
    for (unsigned l = 0; l < 32; ++l) {
      if (!(mask >> l & 1))
        continue;
      unsigned segment = l & ~(w - 1), arg = unsigned(lanes[l].arg), src = l;
      switch (op.kind) {
      case RWKV_EMU_SHFL_IDX:
        src = segment + (arg & (w - 1));
        break;
      case RWKV_EMU_SHFL_UP:
        src = l >= segment + arg ? l - arg : l;
        break;
      case RWKV_EMU_SHFL_DOWN:
        src = l + arg < segment + w ? l + arg : l;
        break;
      default: // xor: a later segment reads the caller's own value
        src = ((l ^ arg) & ~(w - 1)) > segment ? l : l ^ arg;
        break;
      }
      if (!(mask >> src & 1))
        return format("lane %u of %s reads lane %u, which is not in the mask "
                      "0x%08x",
                      l, op.name, src, mask);
      std::memcpy(lanes[l].out, lanes[src].in, op.bytes);
    }
    return "";
  }
  case RWKV_EMU_BALLOT:
  case RWKV_EMU_ANY:
  case RWKV_EMU_ALL: {
    uint32_t ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
      if ((mask >> l & 1) && *static_cast<const int *>(lanes[l].in))
        ballot |= 1u << l;
    for (unsigned l = 0; l < 32; ++l) {
      if (!(mask >> l & 1))
        continue;
      if (op.kind == RWKV_EMU_BALLOT)
        *static_cast<uint32_t *>(lanes[l].out) = ballot;
      else
        *static_cast<int *>(lanes[l].out) =
            op.kind == RWKV_EMU_ANY ? ballot != 0 : ballot == mask;
    }
    return "";
  }
  case RWKV_EMU_SYNCWARP:
    return "";
  case RWKV_EMU_MMA_F16:
  case RWKV_EMU_MMA_BF16: {
    const rwkv_emu_mma_in *in[32];
    float *out[32];
    for (unsigned l = 0; l < 32; ++l) {
      in[l] = static_cast<const rwkv_emu_mma_in *>(lanes[l].in);
      out[l] = static_cast<float *>(lanes[l].out);
    }
    mmaM16N8K16(in, out, op.kind == RWKV_EMU_MMA_BF16);
    return "";
  }
  default:
    return format("unknown warp collective %u", op.kind);
  }
}

void mmaM16N8K16(const rwkv_emu_mma_in *const in[32], float *const out[32],
                 bool bf16) {
  // The PTX fragment formulas, element by element (i: the element's index
  // in the lane's fragment, low half of a register first).
  double a[16][16], b[16][8], c[16][8];
  auto value = [&](const uint32_t *regs, unsigned i) {
    auto h = uint16_t(regs[i / 2] >> (16 * (i % 2)));
    return double(bf16 ? bf16_to_f32(h) : f16_to_f32(h));
  };
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned group = lane >> 2, tig = lane % 4;
    for (unsigned i = 0; i < 8; ++i) {
      unsigned row = (i < 2 || (i >= 4 && i < 6)) ? group : group + 8;
      unsigned col = tig * 2 + (i & 1) + (i >= 4 ? 8 : 0);
      a[row][col] = value(in[lane]->a, i);
    }
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row = tig * 2 + (i & 1) + (i >= 2 ? 8 : 0);
      b[row][group] = value(in[lane]->b, i);
    }
    for (unsigned i = 0; i < 4; ++i)
      c[group + (i >= 2 ? 8 : 0)][tig * 2 + (i & 1)] = in[lane]->c[i];
  }
  for (unsigned lane = 0; lane < 32; ++lane) {
    unsigned group = lane >> 2, tig = lane % 4;
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row = group + (i >= 2 ? 8 : 0), col = tig * 2 + (i & 1);
      double sum = c[row][col]; // products of halves are exact in double
      for (unsigned k = 0; k < 16; ++k)
        sum += a[row][k] * b[k][col];
      out[lane][i] = float(sum);
    }
  }
}

} // namespace rwkv_emu
