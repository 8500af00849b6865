//===- WeightImage.cpp - Packing the weight image of a model --------------===//
//
//   plan: each weight ─▶ its pieces (checkpoint tensor, element range),
//         checked against the layout, sorted by offset
//   segment s (bytes [4 MiB s, 4 MiB (s+1))), on any thread:
//     zeros ─▶ for each weight piece overlapping it, chunk by chunk:
//       same type: copy from the mapping (f16/bf16 NaNs made quiet;
//                  quantized blocks byte for byte)
//       otherwise: Tensor::decodeF32 ─▶ evaluateDecay ─▶ convertTo{Half,
//                  BFloat16} (FloatConvert.h) │ quantizeBlocks (Quantize.h)
//     (a quantized weight's rows the segment holds bytes of are made
//     whole aside, then each row's blocks split into their parts:
//     splitBlockRow)
//     ─▶ xxh3 of the segment ─▶ ImageSink::write
//
//===----------------------------------------------------------------------===//

#include "codegen/WeightImage.h"
#include "codegen/FloatConvert.h"
#include "codegen/Quantize.h"
#include "frontend/Model.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Support/xxhash.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <unistd.h>

using llvm::Error;
using llvm::Expected;
using mlir::rwkv::DecayKind;

namespace rwkvc {

float evaluateDecay(DecayKind kind, float d) {
  switch (kind) {
  case DecayKind::neg_exp:
    return -std::exp(d);
  case DecayKind::exp_neg_exp:
    return std::exp(-std::exp(d));
  case DecayKind::exp_neg_sigmoid:
    return std::exp(-0.60653065971263342f / (1.0f + std::exp(-d)));
  case DecayKind::exp:
    return std::exp(d);
  }
  llvm_unreachable("unknown decay kind");
}

ImageSink::~ImageSink() = default;

Error MemoryImageSink::write(uint64_t offset, llvm::ArrayRef<uint8_t> data) {
  if (offset > bytes.size() || data.size() > bytes.size() - offset)
    return llvm::createStringError("image write outside the image");
  std::memcpy(bytes.data() + offset, data.data(), data.size());
  return Error::success();
}

Error FileImageSink::write(uint64_t offset, llvm::ArrayRef<uint8_t> data) {
  const uint8_t *p = data.data();
  size_t left = data.size();
  uint64_t at = base + offset;
  while (left) {
    ssize_t n = ::pwrite(fd, p, left, off_t(at));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return llvm::createStringError(
          path + ": write failed: " +
          (n < 0 ? std::strerror(errno) : "no space left?"));
    p += n;
    left -= size_t(n);
    at += uint64_t(n);
  }
  return Error::success();
}

namespace {

enum class Elem { F32, F16, BF16, Blocks };

/// `count` elements of a checkpoint tensor from its element `first` on,
/// which are the weight's elements from `at` on.
struct Piece {
  const Tensor *tensor;
  uint64_t at;
  uint64_t count;
};

/// A weight as the packer sees it: bytes [begin, end) of the image, in
/// units of one element (floats) or one block of 32 (quantized).
struct PlannedWeight {
  const WeightEntry *entry;
  uint64_t begin, end;
  Elem elem;
  DType blocks = DType::F32; // Elem::Blocks: the block format
  std::optional<mlir::rwkv::QuantKind> kind; // Elem::Blocks: the same
  uint64_t rowUnits = 0;     // Elem::Blocks: blocks per row
  unsigned unitBytes;
  unsigned unitElements = 1;
  llvm::SmallVector<Piece, 1> pieces;
};

/// The frontend's block format of a quantized element type.
DType blockFormatOf(mlir::rwkv::QuantKind kind) {
  switch (kind) {
  case mlir::rwkv::QuantKind::q4_0:
    return DType::Q4_0;
  case mlir::rwkv::QuantKind::q4_1:
    return DType::Q4_1;
  case mlir::rwkv::QuantKind::q5_0:
    return DType::Q5_0;
  case mlir::rwkv::QuantKind::q5_1:
    return DType::Q5_1;
  case mlir::rwkv::QuantKind::q8_0:
    return DType::Q8_0;
  }
  llvm_unreachable("unknown quantization kind");
}

/// Elements converted per step through the f32 scratch buffer.
constexpr uint64_t kChunkElements = 16384;

Expected<std::vector<PlannedWeight>> plan(const ModelLayout &layout,
                                          const Checkpoint &ckpt) {
  std::vector<PlannedWeight> weights;
  for (const WeightEntry &w : layout.weights) {
    PlannedWeight p;
    p.entry = &w;
    mlir::Type e = w.type.getElementType();
    if (e.isF32())
      p.elem = Elem::F32, p.unitBytes = 4;
    else if (e.isF16())
      p.elem = Elem::F16, p.unitBytes = 2;
    else if (e.isBF16())
      p.elem = Elem::BF16, p.unitBytes = 2;
    else if (auto q = llvm::dyn_cast<mlir::rwkv::QuantType>(e))
      p.elem = Elem::Blocks, p.blocks = blockFormatOf(q.getKind()),
      p.kind = q.getKind(),
      p.unitBytes = unsigned(mlir::rwkv::getQuantBlockBytes(q.getKind())),
      p.unitElements = unsigned(mlir::rwkv::kQuantBlockElements),
      p.rowUnits = uint64_t(w.type.getShape().back()) /
                   mlir::rwkv::kQuantBlockElements;
    else
      return llvm::createStringError(llvm::formatv(
          "weight '{0}': the image cannot hold elements of its type", w.name));
    // The tensors the weight is made of: itself, its source, or its parts.
    std::vector<std::string> sources = w.parts;
    if (sources.empty())
      sources.push_back(w.derive ? w.source : w.name);
    uint64_t at = 0;
    for (const std::string &sourceName : sources) {
      const Tensor *t = ckpt.find(sourceName);
      if (!t)
        return llvm::createStringError(llvm::formatv(
            "{0}: tensor '{1}' is missing", ckpt.path, sourceName));
      if (t->numElements() % p.unitElements != 0)
        return llvm::createStringError(llvm::formatv(
            "weight '{0}': part '{1}' is not whole blocks of {2}", w.name,
            sourceName, p.unitElements));
      p.pieces.push_back({t, at, t->numElements()});
      at += t->numElements();
    }
    if (at != w.numElements())
      return llvm::createStringError(llvm::formatv(
          "{0}: tensor '{1}' has {2} elements, the layout expects {3}",
          ckpt.path, w.name, at, w.numElements()));
    if (w.offset < 0 || (p.elem != Elem::Blocks &&
                         uint64_t(w.offset) % p.unitBytes != 0) ||
        uint64_t(w.offset) + w.bytes() > uint64_t(layout.weightsBytes))
      return llvm::createStringError(llvm::formatv(
          "weight '{0}' lies outside the image or is misaligned", w.name));
    p.begin = uint64_t(w.offset);
    p.end = p.begin + w.bytes();
    if (p.begin != p.end)
      weights.push_back(std::move(p));
  }
  // By offset; equal offsets (an overlap, refused below) in layout order.
  llvm::sort(weights, [](const PlannedWeight &a, const PlannedWeight &b) {
    return std::pair(a.begin, a.entry) < std::pair(b.begin, b.entry);
  });
  for (size_t i = 1; i < weights.size(); ++i)
    if (weights[i].begin < weights[i - 1].end)
      return llvm::createStringError(
          llvm::formatv("weights '{0}' and '{1}' overlap in the image",
                        weights[i - 1].entry->name, weights[i].entry->name));
  return weights;
}

/// Makes the f16 (`elem` F16) or bf16 NaNs among `n` elements at `p`
/// quiet, as a conversion through f32 does.
void quietNaNs(uint8_t *p, uint64_t n, Elem elem) {
  uint16_t inf = elem == Elem::F16 ? 0x7c00 : 0x7f80;
  uint16_t quiet = elem == Elem::F16 ? 0x200 : 0x40;
  for (uint64_t i = 0; i < n; ++i) {
    uint16_t v;
    std::memcpy(&v, p + 2 * i, 2);
    v = (v & 0x7fff) > inf ? v | quiet : v;
    std::memcpy(p + 2 * i, &v, 2);
  }
}

/// Writes `count` elements of `t` from its element `first` on, converted to
/// `w`'s type, at `dst` (for a quantized `w`, whole blocks: `first` and
/// `count` multiples of 32).
void convertElements(const PlannedWeight &w, const Tensor &t, uint64_t first,
                     uint64_t count, uint8_t *dst, float *scratch) {
  if (count == 0)
    return;
  const std::optional<DecayKind> &derive = w.entry->derive;
  bool same = (w.elem == Elem::F32 && t.dtype == DType::F32) ||
              (w.elem == Elem::F16 && t.dtype == DType::F16) ||
              (w.elem == Elem::BF16 && t.dtype == DType::BF16) ||
              (w.elem == Elem::Blocks && t.dtype == w.blocks);
  if (same && !derive) {
    uint64_t perUnit = w.unitElements;
    std::memcpy(dst, t.data + first / perUnit * w.unitBytes,
                count / perUnit * w.unitBytes);
    if (w.elem == Elem::F16 || w.elem == Elem::BF16)
      quietNaNs(dst, count, w.elem);
    return;
  }
  for (uint64_t i = 0; i < count; i += kChunkElements) {
    uint64_t n = std::min(kChunkElements, count - i);
    t.decodeF32(first + i, n, scratch);
    if (derive)
      for (uint64_t j = 0; j < n; ++j)
        scratch[j] = evaluateDecay(*derive, scratch[j]);
    uint8_t *out = dst + i / w.unitElements * w.unitBytes;
    switch (w.elem) {
    case Elem::Blocks:
      quantizeBlocks(w.blocks, scratch, out, n / w.unitElements);
      break;
    case Elem::F32:
      std::memcpy(out, scratch, n * 4);
      break;
    case Elem::F16:
    case Elem::BF16: {
      uint16_t half[kChunkElements];
      if (w.elem == Elem::F16)
        convertToHalf(scratch, half, n);
      else
        convertToBFloat16(scratch, half, n);
      std::memcpy(out, half, n * 2);
      break;
    }
    }
  }
}

/// The bytes of `t` that hold its elements [first, first + count): for
/// quantized types, the blocks they lie in.
std::pair<const uint8_t *, uint64_t> storageOf(const Tensor &t, uint64_t first,
                                               uint64_t count) {
  uint64_t perBlock = isQuantized(t.dtype) ? 32 : 1;
  uint64_t b0 = first / perBlock, b1 = (first + count + perBlock - 1) / perBlock;
  uint64_t blockBytes = dtypeStorageBytes(t.dtype, perBlock);
  return {t.data + b0 * blockBytes, (b1 - b0) * blockBytes};
}

/// The quantized weight `w`'s bytes [lo, hi) of the segment at `begin`:
/// the rows they lie in converted whole aside (convertElements, blocks in
/// rwkv.cpp's order), each split into the image's order and its bytes in
/// the segment copied. Non-finite values are counted in the rows that start
/// in the segment (a row cut by its edge is converted twice).
void packBlockRows(const PlannedWeight &w, const Checkpoint &ckpt,
                   uint64_t lo, uint64_t hi, uint64_t begin,
                   llvm::MutableArrayRef<uint8_t> segment, float *scratch,
                   uint64_t *nonFinite) {
  uint64_t ue = w.unitElements, nb = w.rowUnits;
  uint64_t rowBytes = nb * w.unitBytes, rowElements = nb * ue;
  uint64_t r0 = (lo - w.begin) / rowBytes,
           r1 = (hi - w.begin + rowBytes - 1) / rowBytes;
  uint64_t counted0 = (lo - w.begin + rowBytes - 1) / rowBytes;
  std::vector<uint8_t> blocks((r1 - r0) * rowBytes), row(rowBytes);
  for (const Piece &p : w.pieces) {
    uint64_t a = std::max(r0 * rowElements, p.at),
             b = std::min(r1 * rowElements, p.at + p.count);
    if (a >= b)
      continue;
    convertElements(w, *p.tensor, a - p.at, b - a,
                    blocks.data() + (a - r0 * rowElements) / ue * w.unitBytes,
                    scratch);
    uint64_t c = std::max(a, counted0 * rowElements);
    if (nonFinite && c < b) {
      auto [nan, inf] = countNonFinite(*p.tensor, c - p.at, b - c);
      *nonFinite += nan + inf;
    }
    auto [source, bytes] = storageOf(*p.tensor, a - p.at, b - a);
    ckpt.releasePages(source, bytes);
  }
  uint64_t end = begin + segment.size();
  for (uint64_t r = r0; r < r1; ++r) {
    splitBlockRow(*w.kind, nb, blocks.data() + (r - r0) * rowBytes, row.data());
    uint64_t at = w.begin + r * rowBytes;
    uint64_t from = std::max(at, begin), to = std::min(at + rowBytes, end);
    std::memcpy(segment.data() + (from - begin), row.data() + (from - at),
                to - from);
  }
}

/// Fills `segment`, the image's bytes from `begin` on, and releases the
/// checkpoint pages it read (nothing reads them again).
void packSegment(llvm::ArrayRef<PlannedWeight> weights, const Checkpoint &ckpt,
                 uint64_t begin, llvm::MutableArrayRef<uint8_t> segment,
                 float *scratch, uint64_t *nonFinite) {
  std::memset(segment.data(), 0, segment.size());
  uint64_t end = begin + segment.size();
  // Weights do not overlap: sorted by begin, they are sorted by end too.
  const PlannedWeight *w = llvm::partition_point(
      weights, [&](const PlannedWeight &p) { return p.end <= begin; });
  for (; w != weights.end() && w->begin < end; ++w) {
    uint64_t lo = std::max(w->begin, begin), hi = std::min(w->end, end);
    if (w->elem == Elem::Blocks) {
      packBlockRows(*w, ckpt, lo, hi, begin, segment, scratch, nonFinite);
      continue;
    }
    // The elements the segment holds (never one cut by its edge: each lies
    // at a multiple of its size).
    uint64_t ub = w->unitBytes;
    uint64_t u0 = (lo - w->begin) / ub, u1 = (hi - w->begin) / ub;
    for (const Piece &p : w->pieces) {
      uint64_t a = std::max(u0, p.at), b = std::min(u1, p.at + p.count);
      if (a >= b)
        continue;
      uint64_t first = a - p.at, count = b - a;
      if (nonFinite) {
        auto [nan, inf] = countNonFinite(*p.tensor, first, count);
        *nonFinite += nan + inf;
      }
      convertElements(*w, *p.tensor, first, count,
                      segment.data() + (w->begin + a * ub - begin), scratch);
      auto [source, bytes] = storageOf(*p.tensor, first, count);
      ckpt.releasePages(source, bytes);
    }
  }
}

uint64_t combineSegmentHashes(std::vector<uint64_t> hashes, uint64_t size) {
  hashes.push_back(size);
  return llvm::xxh3_64bits(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(hashes.data()), hashes.size() * 8));
}

} // namespace

void splitBlockRow(mlir::rwkv::QuantKind kind, uint64_t nb,
                   const uint8_t *blocks, uint8_t *row) {
  mlir::rwkv::QuantBlockParts parts = mlir::rwkv::getQuantBlockParts(kind);
  mlir::rwkv::QuantRowLayout layout =
      mlir::rwkv::getQuantRowLayout(kind, int64_t(nb));
  uint64_t bytes = uint64_t(layout.blockBytes);
  for (int64_t g = 0; g < int64_t(nb); g += mlir::rwkv::kQuantGroupBlocks) {
    int64_t n = layout.groupBlocks(g);
    uint8_t *group = row + layout.groupStart(g);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t *block = blocks + (g + i) * bytes;
      for (int64_t w = 0; w < layout.codeWords(); ++w)
        std::memcpy(group + layout.codeWord(n, w, i),
                    block + parts.codes + 4 * w, 4);
      if (layout.hasHigh)
        std::memcpy(group + layout.high(n) + 4 * i, block + parts.high, 4);
      std::memcpy(group + layout.scale(n) + 2 * i, block, 2);
      if (layout.hasMin)
        std::memcpy(group + layout.min(n) + 2 * i, block + parts.min, 2);
    }
  }
}

Expected<uint64_t> packWeights(const ModelLayout &layout,
                               const Checkpoint &ckpt, ImageSink &sink,
                               const PackOptions &options) {
  auto weights = plan(layout, ckpt);
  if (!weights)
    return weights.takeError();
  uint64_t total = uint64_t(layout.weightsBytes);
  uint64_t segments = (total + kImageSegmentBytes - 1) / kImageSegmentBytes;
  std::vector<uint64_t> hashes(segments);

  std::atomic<uint64_t> next{0}, done{0}, nonFinite{0};
  std::atomic<bool> failed{false};
  std::mutex mutex; // guards firstError and the progress callback
  Error firstError = Error::success();
  auto worker = [&] {
    std::vector<uint8_t> buffer(std::min(kImageSegmentBytes, total));
    std::vector<float> scratch(kChunkElements);
    uint64_t found = 0;
    llvm::scope_exit finish([&] { nonFinite += found; });
    while (!failed) {
      uint64_t s = next++;
      if (s >= segments)
        return;
      uint64_t begin = s * kImageSegmentBytes;
      llvm::MutableArrayRef<uint8_t> segment(
          buffer.data(), std::min(kImageSegmentBytes, total - begin));
      packSegment(*weights, ckpt, begin, segment, scratch.data(),
                  options.nonFiniteValues ? &found : nullptr);
      hashes[s] = llvm::xxh3_64bits(segment);
      Error e = sink.write(begin, segment);
      std::lock_guard<std::mutex> lock(mutex);
      if (e) {
        if (!failed.exchange(true))
          firstError = std::move(e);
        else
          llvm::consumeError(std::move(e));
        return;
      }
      uint64_t d = done += segment.size();
      if (options.progress)
        options.progress(d, total);
    }
  };
  unsigned threads =
      options.threads ? options.threads
                      : llvm::hardware_concurrency().compute_thread_count();
  threads = unsigned(std::min<uint64_t>(threads, segments));
  if (threads <= 1) {
    worker();
  } else {
    llvm::StdThreadPool pool(llvm::hardware_concurrency(threads));
    for (unsigned i = 0; i < threads; ++i)
      pool.async(worker);
    pool.wait();
  }
  if (failed)
    return std::move(firstError);
  llvm::consumeError(std::move(firstError));
  if (options.nonFiniteValues)
    *options.nonFiniteValues = nonFinite;
  return combineSegmentHashes(std::move(hashes), total);
}

uint64_t imageHash(llvm::ArrayRef<uint8_t> image) {
  std::vector<uint64_t> hashes;
  for (uint64_t at = 0; at < image.size(); at += kImageSegmentBytes)
    hashes.push_back(llvm::xxh3_64bits(
        image.slice(at, std::min<uint64_t>(kImageSegmentBytes, image.size() - at))));
  return combineSegmentHashes(std::move(hashes), image.size());
}

uint64_t modelHash(const ModelLayout &layout, uint64_t imageHash) {
  std::string description;
  for (const SlotEntry &s : layout.slots)
    description += llvm::formatv("{0}:{1}:{2}:{3};", s.name, s.offset, s.size,
                                 int32_t(s.init))
                       .str();
  return imageHash ^
         (llvm::xxh3_64bits(llvm::StringRef(description)) * 0x9e3779b97f4a7c15ULL);
}

} // namespace rwkvc
