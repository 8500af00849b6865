//===- Checkpoint.h - Reading RWKV checkpoints ------------------*- C++ -*-===//
//
// The frontend's view of a checkpoint: a list of named tensors in the
// canonical (BlinkDL PyTorch) layout, whatever container they came from.
// Readers for .pth (zip + restricted unpickler), .safetensors and rwkv.cpp
// ggml .bin live in frontend/; they never execute anything a file contains.
//
// Tensors point into the memory-mapped file wherever their layout allows;
// where a reader must transform data (rwkv.cpp's converter transforms are
// undone, strided .pth views are made contiguous) the tensor owns a buffer.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_CHECKPOINT_H
#define RWKVC_FRONTEND_CHECKPOINT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rwkvc {

/// Element type of a stored tensor. Quantized types are rwkv.cpp/ggml
/// blocks of 32 elements along the innermost (row-major last) dimension.
enum class DType { F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 };

/// "f32", "f16", "bf16", "q4_0", ... (also the MLIR spelling).
llvm::StringRef dtypeName(DType t);
/// Bytes needed to store `numElements` elements of `t` (whole blocks for
/// quantized types; `numElements` must then be a multiple of 32).
uint64_t dtypeStorageBytes(DType t, uint64_t numElements);
bool isQuantized(DType t);

enum class Format { Pth, SafeTensors, GGML };
llvm::StringRef formatName(Format f); // "pth", "safetensors", "ggml"

/// One named tensor, in the canonical layout: PyTorch (row-major) shape and
/// names as BlinkDL's training code saves them.
struct Tensor {
  std::string name;
  DType dtype = DType::F32;
  llvm::SmallVector<int64_t, 4> shape; // canonical PyTorch order
  const uint8_t *data = nullptr;       // contiguous row-major storage
  uint64_t nbytes = 0;                 // == dtypeStorageBytes(dtype, numElements())
  bool mapped = false;                 // true: points into the mapped file

  uint64_t numElements() const;
  /// Decodes (dequantizes) elements [first, first + count) to float32 into
  /// `out`, reading only the blocks they lie in. The range must lie within
  /// the tensor.
  void decodeF32(uint64_t first, uint64_t count, float *out) const;
  /// Decodes (dequantizes) every element to float32 (small tensors: a
  /// large one is better decoded in chunks by decodeF32).
  std::vector<float> toF32() const;
};

/// A whole checkpoint. Owns the mapping of the file and any buffer a
/// transformed tensor needed; the tensors stay valid as long as this lives.
class Checkpoint {
public:
  Format format = Format::Pth;
  std::string path;
  std::vector<Tensor> tensors;   // in file order
  std::string ggmlFileType;      // ggml only: "FP32", "FP16", "Q5_0", ...
  int ggmlVersion = 0;           // ggml only: 100 or 101
  std::vector<std::pair<std::string, std::string>> metadata; // safetensors __metadata__

  const Tensor *find(llvm::StringRef name) const;

  /// Drops the whole pages of the mapped file within [begin, begin + size)
  /// from this process's resident memory; they stay in the page cache and
  /// come back on the next access. For passes over every tensor (the
  /// non-finite scan, the weight packer), so that resident memory does not
  /// grow to the checkpoint's size. A no-op outside the mapping (owned
  /// buffers, a file read into memory). Thread-safe.
  void releasePages(const uint8_t *begin, uint64_t size) const;

  // Storage backing `tensors`.
  std::unique_ptr<llvm::MemoryBuffer> file;
  std::vector<std::unique_ptr<uint8_t[]>> ownedBuffers;
  /// Allocates an owned buffer of `n` bytes for a transformed tensor.
  uint8_t *allocate(uint64_t n);
};

/// Reads a checkpoint, choosing the reader from the file's magic bytes (zip →
/// .pth, "ggmf" → ggml, an 8-byte little-endian header length followed by
/// '{' → safetensors). Every failure is an llvm::Error whose message names
/// the file and the fault, e.g. "model.pth: data.pkl: global 'os.system' is
/// not allowed". Never crashes on malformed input, never allocates more than
/// the file's own size justifies.
llvm::Expected<std::unique_ptr<Checkpoint>> readCheckpoint(llvm::StringRef path);

/// The same, from bytes already in memory (used by the fuzzers and unit
/// tests). `name` is used in error messages.
llvm::Expected<std::unique_ptr<Checkpoint>>
readCheckpoint(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef name);

// Individual readers (same contract as readCheckpoint).
llvm::Expected<std::unique_ptr<Checkpoint>>
readPth(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef name);
llvm::Expected<std::unique_ptr<Checkpoint>>
readSafeTensors(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef name);
llvm::Expected<std::unique_ptr<Checkpoint>>
readGGML(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef name);

} // namespace rwkvc

#endif // RWKVC_FRONTEND_CHECKPOINT_H
