//===- TestFiles.h - Crafted checkpoint files for the frontend tests -*- C++
//-*-===//
//
// Builders for small, valid checkpoints in each container (a torch.save-like
// zip made with libzip's writing API, a safetensors buffer, an rwkv.cpp ggml
// buffer) that the tests then corrupt. Also used to make fuzzer seeds.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_FRONTEND_TESTFILES_H
#define RWKVC_TEST_FRONTEND_TESTFILES_H

#include "frontend/Checkpoint.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc::testing {

/// A tensor to write: PyTorch name/shape and f32 values.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

/// A complete RWKV-4 model (1 layer, C = 32, F = 64, V = 32) with
/// deterministic values: the smallest thing describeModel accepts.
std::vector<TensorSpec> tinyV4Model();
/// RWKV-5.1 (per-head decay, time_faaaa bonus, gate), 2 layers, 4 heads of 8.
std::vector<TensorSpec> tinyV51Model();
/// RWKV-7 with 2 heads of 16, 2 layers; block 0 carries v0/v1/v2 and every
/// block a time_state (H, N, N).
std::vector<TensorSpec> tinyV7Model();

struct PthOptions {
  DType dtype = DType::F32;    // F32, F16 or BF16 storages
  bool compress = false;       // deflate the entries (normally stored)
  std::string extraGlobal;     // e.g. "os\nsystem": a GLOBAL call before STOP
  bool transposeFirst = false; // store the first 2-D tensor as a strided view
  bool oneStorage = false; // all tensors are views at offsets of storage "0"
};
/// A torch.save-style zip: "archive/data.pkl" + "archive/data/<i>".
std::string makePth(const std::vector<TensorSpec> &tensors,
                    const PthOptions &opts = {});
/// The pickle alone (to craft data.pkl variants).
std::string makeStateDictPickle(const std::vector<TensorSpec> &tensors,
                                const PthOptions &opts);
/// A zip holding the given (entry name, bytes) pairs, stored uncompressed.
std::string
makeZip(const std::vector<std::pair<std::string, std::string>> &entries,
        bool compress = false);

std::string makeSafeTensors(const std::vector<TensorSpec> &tensors);
/// A safetensors file with the given JSON header and `dataBytes` zero bytes.
std::string makeSafeTensorsWithHeader(const std::string &json,
                                      size_t dataBytes = 0);

/// Pickle pieces, to craft data.pkl variants: BINUNICODE s, BININT v.
void appendBinUnicode(std::string &pickle, const std::string &s);
void appendBinInt(std::string &pickle, int64_t v);
/// The pickle of a state dict {"w": view} where view is a
/// _rebuild_tensor_v2 of float storage "0" of `numel` elements.
std::string makeViewPickle(int64_t numel, const std::vector<int64_t> &size,
                           const std::vector<int64_t> &stride);

/// An rwkv.cpp ggml file (version 101, FP32) of an RWKV-4 model, with the
/// converter's transforms applied (squeezed time_ tensors, -exp(decay)).
std::string makeGGMLV4(const std::vector<TensorSpec> &tensors);

} // namespace rwkvc::testing

#endif
