//===- WeightImage.h - Packing the weight image of a model --------*- C++ -*-===//
//
//   mapped checkpoint tensors ──(decode a chunk, derive, stack, convert to
//   the stored type; zeros between weights)──▶ 4 MiB segments of the image,
//   laid out as ModelLayout says, packed in parallel ──▶ an ImageSink (the
//   weights file, the object that embeds them, memory)
//                                     └──▶ per-segment xxh3 ──▶ model hash
//
// The image is never held whole in memory and no tensor is expanded whole:
// each thread converts one segment at a time, a few thousand elements at a
// time. Target-neutral: every backend loads the same image.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_WEIGHTIMAGE_H
#define RWKV_CODEGEN_WEIGHTIMAGE_H

#include "codegen/ModelLayout.h"
#include "frontend/Checkpoint.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace rwkvc {

/// The value of a derived weight element (rwkv.decay of kind `kind`, as
/// docs/dialect.md defines it), in f32.
float evaluateDecay(mlir::rwkv::DecayKind kind, float d);

/// Writes the row of `nb` blocks of `kind` at `blocks` (rwkv.cpp's order)
/// into `row` in the image's order (getQuantRowLayout): groups of
/// kQuantGroupBlocks blocks, each group's parts together, d first.
void splitBlockRow(mlir::rwkv::QuantKind kind, uint64_t nb,
                   const uint8_t *blocks, uint8_t *row);

/// Where the packed image goes. The packer calls write() from several
/// threads at once, each call with a disjoint range; together the calls
/// cover every byte of the image once, in no particular order.
class ImageSink {
public:
  virtual ~ImageSink();
  /// Stores `bytes`, the image from byte `offset` on.
  virtual llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t> bytes) = 0;
};

/// The image in memory (tests, small images).
class MemoryImageSink : public ImageSink {
public:
  explicit MemoryImageSink(uint64_t size) : bytes(size) {}
  llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t> data) override;
  std::vector<uint8_t> bytes;
};

/// The image written at `base` + offset of the open file `fd` (positional
/// writes; the sink neither owns nor closes `fd`). Errors name `path`.
class FileImageSink : public ImageSink {
public:
  FileImageSink(int fd, uint64_t base, std::string path)
      : fd(fd), base(base), path(std::move(path)) {}
  llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t> data) override;

private:
  int fd;
  uint64_t base;
  std::string path;
};

/// The image only hashed (-emit=obj and the like need the model hash).
class DiscardImageSink : public ImageSink {
public:
  llvm::Error write(uint64_t, llvm::ArrayRef<uint8_t>) override {
    return llvm::Error::success();
  }
};

struct PackOptions {
  /// Threads converting segments; 0: one per core.
  unsigned threads = 0;
  /// Called after each segment with the bytes done and the image's size;
  /// from the packing threads, one call at a time. May be empty.
  std::function<void(uint64_t done, uint64_t total)> progress;
  /// When set, receives the number of NaN and Inf values in the source
  /// tensors of the weights packed (counted as they are read: the
  /// checkpoint is read once).
  uint64_t *nonFiniteValues = nullptr;
};

/// The image is packed and hashed in segments of this many bytes.
constexpr uint64_t kImageSegmentBytes = uint64_t(4) << 20;

/// Packs the weight image of `layout` (layout.weightsBytes bytes) from
/// `ckpt` into `sink`: every weight converted from its stored type to the
/// image's element type (dequantizing quantized blocks, f16/bf16 rounded to
/// nearest even as APFloat does), derived weights computed in f32, stacked
/// weights made of their parts in order, zeros between weights. Returns the
/// image's hash (imageHash of the bytes written). Errors name the
/// checkpoint or the weight; after a sink error the sink holds part of the
/// image.
llvm::Expected<uint64_t> packWeights(const ModelLayout &layout,
                                     const Checkpoint &ckpt, ImageSink &sink,
                                     const PackOptions &options = {});

/// The hash of an image: xxh3 of each kImageSegmentBytes segment, then
/// xxh3 of those hashes and the image's size. (packWeights computes it as
/// it packs, whatever its threads.)
uint64_t imageHash(llvm::ArrayRef<uint8_t> image);

/// A hash of the image (its imageHash) and the state layout: a state saved
/// for one model is refused by another.
uint64_t modelHash(const ModelLayout &layout, uint64_t imageHash);

} // namespace rwkvc

#endif // RWKV_CODEGEN_WEIGHTIMAGE_H
