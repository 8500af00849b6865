//===- Checkpoint.cpp - Element types, tensors, reader dispatch -----------===//
//
// Element-type helpers, decoding of every element type to float32 (ggml
// block layouts as rwkv.cpp file version 101 stores them), and the choice of
// reader from a file's magic bytes.
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/ReaderSupport.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cassert>
#if defined(__unix__)
#include <sys/mman.h>
#endif

using namespace llvm;

namespace rwkvc {

namespace {
/// Block geometry of a quantized type: 32 elements in `bytes` bytes.
struct BlockInfo {
  unsigned bytes; // 0 for float types
};
constexpr uint64_t kBlock = 32;

BlockInfo blockInfo(DType t) {
  switch (t) {
  case DType::Q4_0:
    return {18}; // f16 d; u8 qs[16]
  case DType::Q4_1:
    return {20}; // f16 d, m; u8 qs[16]
  case DType::Q5_0:
    return {22}; // f16 d; u32 qh; u8 qs[16]
  case DType::Q5_1:
    return {24}; // f16 d, m; u32 qh; u8 qs[16]
  case DType::Q8_0:
    return {34}; // f16 d; i8 qs[32]
  default:
    return {0};
  }
}
} // namespace

StringRef dtypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  case DType::Q4_0:
    return "q4_0";
  case DType::Q4_1:
    return "q4_1";
  case DType::Q5_0:
    return "q5_0";
  case DType::Q5_1:
    return "q5_1";
  case DType::Q8_0:
    return "q8_0";
  }
  llvm_unreachable("bad DType");
}

bool isQuantized(DType t) { return blockInfo(t).bytes != 0; }

uint64_t dtypeStorageBytes(DType t, uint64_t numElements) {
  if (unsigned b = detail::floatElementBytes(t))
    return numElements * b;
  return numElements / kBlock * blockInfo(t).bytes;
}

StringRef formatName(Format f) {
  switch (f) {
  case Format::Pth:
    return "pth";
  case Format::SafeTensors:
    return "safetensors";
  case Format::GGML:
    return "ggml";
  }
  llvm_unreachable("bad Format");
}

namespace detail {

unsigned floatElementBytes(DType t) {
  switch (t) {
  case DType::F32:
    return 4;
  case DType::F16:
  case DType::BF16:
    return 2;
  default:
    return 0;
  }
}

Expected<std::unique_ptr<MemoryBuffer>> openRegularFile(StringRef path) {
  sys::fs::file_status st;
  if (std::error_code ec = sys::fs::status(path, st))
    return createStringError(ec, ec.message());
  if (!sys::fs::is_regular_file(st))
    return createStringError(inconvertibleErrorCode(),
                             "not a regular file (a pipe or a device is not "
                             "read: save it to a file first)");
  auto buf = MemoryBuffer::getFile(path, /*IsText=*/false,
                                   /*RequiresNullTerminator=*/false);
  if (!buf)
    return createStringError(buf.getError(), buf.getError().message());
  return std::move(*buf);
}

std::optional<uint64_t> checkedNumElements(ArrayRef<int64_t> shape) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    auto m = mulChecked(n, uint64_t(d));
    if (!m)
      return std::nullopt;
    n = *m;
  }
  return n;
}

std::optional<uint64_t> checkedStorageBytes(DType t, uint64_t numElements) {
  if (unsigned b = floatElementBytes(t))
    return mulChecked(numElements, b);
  if (numElements % kBlock != 0)
    return std::nullopt;
  return mulChecked(numElements / kBlock, blockInfo(t).bytes);
}

std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s;
  raw_string_ostream os(s);
  os << '(';
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? ", " : "") << shape[i];
  os << (shape.size() == 1 ? ",)" : ")");
  return s;
}

float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) { // Inf / NaN
    bits = sign | 0x7f800000 | (man << 13);
  } else if (exp != 0) { // normal
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else if (man == 0) { // zero
    bits = sign;
  } else { // subnormal: renormalize
    int e = -1;
    do {
      ++e;
      man <<= 1;
    } while (!(man & 0x400));
    bits = sign | (uint32_t(112 - e) << 23) | ((man & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void transposeInto(uint8_t *dst, const uint8_t *src, uint64_t rows,
                   uint64_t cols, unsigned elemBytes) {
  for (uint64_t r = 0; r < rows; ++r)
    for (uint64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (c * rows + r) * elemBytes,
                  src + (r * cols + c) * elemBytes, elemBytes);
}

} // namespace detail

uint64_t Tensor::numElements() const {
  return detail::checkedNumElements(shape).value_or(0);
}

/// Decodes one ggml block of 32 elements into `out`.
static void decodeBlock(DType t, const uint8_t *b, float *out) {
  using detail::halfToFloat;
  using detail::readLE;
  float d = halfToFloat(readLE<uint16_t>(b));
  switch (t) {
  case DType::Q4_0:
  case DType::Q4_1: {
    bool hasMin = t == DType::Q4_1;
    float m = hasMin ? halfToFloat(readLE<uint16_t>(b + 2)) : 0.0f;
    const uint8_t *qs = b + (hasMin ? 4 : 2);
    for (int j = 0; j < 16; ++j) {
      int lo = qs[j] & 15, hi = qs[j] >> 4;
      out[j] = hasMin ? d * lo + m : d * (lo - 8);
      out[j + 16] = hasMin ? d * hi + m : d * (hi - 8);
    }
    return;
  }
  case DType::Q5_0:
  case DType::Q5_1: {
    bool hasMin = t == DType::Q5_1;
    float m = hasMin ? halfToFloat(readLE<uint16_t>(b + 2)) : 0.0f;
    uint32_t qh = readLE<uint32_t>(b + (hasMin ? 4 : 2));
    const uint8_t *qs = b + (hasMin ? 8 : 6);
    for (int j = 0; j < 16; ++j) {
      int lo = (qs[j] & 15) | (((qh >> j) & 1) << 4);
      int hi = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
      out[j] = hasMin ? d * lo + m : d * (lo - 16);
      out[j + 16] = hasMin ? d * hi + m : d * (hi - 16);
    }
    return;
  }
  case DType::Q8_0:
    for (int j = 0; j < 32; ++j)
      out[j] = d * float(int8_t(b[2 + j]));
    return;
  default:
    llvm_unreachable("not a quantized type");
  }
}

/// f16 bits → f32, for every f16 (halfToFloat's values: a signalling NaN
/// stays signalling).
static const float *halfTable() {
  static const std::unique_ptr<float[]> table = [] {
    std::unique_ptr<float[]> t(new float[1 << 16]);
    for (uint32_t h = 0; h < (1 << 16); ++h)
      t[h] = detail::halfToFloat(uint16_t(h));
    return t;
  }();
  return table.get();
}

void Tensor::decodeF32(uint64_t first, uint64_t count, float *out) const {
  assert(first + count <= numElements() && "range outside the tensor");
  switch (dtype) {
  case DType::F32:
    std::memcpy(out, data + 4 * first, count * 4);
    return;
  case DType::F16: {
    const float *table = halfTable();
    for (uint64_t i = 0; i < count; ++i)
      out[i] = table[detail::readLE<uint16_t>(data + 2 * (first + i))];
    return;
  }
  case DType::BF16:
    for (uint64_t i = 0; i < count; ++i)
      out[i] = detail::bf16ToFloat(detail::readLE<uint16_t>(data + 2 * (first + i)));
    return;
  default:
    break;
  }
  // Quantized: whole blocks straight into `out`, the partial ones at either
  // end through a block-sized buffer.
  unsigned bytes = blockInfo(dtype).bytes;
  float block[kBlock];
  uint64_t end = first + count;
  for (uint64_t i = first; i < end;) {
    uint64_t blk = i / kBlock, inBlock = i % kBlock;
    uint64_t n = std::min(kBlock - inBlock, end - i);
    if (n == kBlock) {
      decodeBlock(dtype, data + blk * bytes, out + (i - first));
    } else {
      decodeBlock(dtype, data + blk * bytes, block);
      std::memcpy(out + (i - first), block + inBlock, n * 4);
    }
    i += n;
  }
}

std::vector<float> Tensor::toF32() const {
  std::vector<float> out(numElements());
  decodeF32(0, out.size(), out.data());
  return out;
}

const Tensor *Checkpoint::find(StringRef name) const {
  for (const Tensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

void Checkpoint::releasePages(const uint8_t *begin, uint64_t size) const {
#if defined(__unix__)
  if (!file || file->getBufferKind() != MemoryBuffer::MemoryBuffer_MMap)
    return;
  uintptr_t lo = uintptr_t(file->getBufferStart()),
            hi = uintptr_t(file->getBufferEnd());
  uintptr_t a = std::max(uintptr_t(begin), lo),
            b = std::min(uintptr_t(begin) + size, hi);
  uintptr_t page = uintptr_t(sys::Process::getPageSizeEstimate());
  a = alignTo(a, page);
  b = alignDown(b, page);
  // A clean file-backed mapping: the pages are read again when touched.
  if (a < b)
    ::madvise(reinterpret_cast<void *>(a), b - a, MADV_DONTNEED);
#else
  (void)begin;
  (void)size;
#endif
}

uint8_t *Checkpoint::allocate(uint64_t n) {
  ownedBuffers.emplace_back(new uint8_t[n ? n : 1]);
  return ownedBuffers.back().get();
}

Expected<std::unique_ptr<Checkpoint>> readCheckpoint(StringRef path) {
  auto buf = detail::openRegularFile(path);
  if (!buf)
    return detail::fileError(path, "cannot open: " + toString(buf.takeError()));
  return readCheckpoint(std::move(*buf), path);
}

Expected<std::unique_ptr<Checkpoint>>
readCheckpoint(std::unique_ptr<MemoryBuffer> buffer, StringRef name) {
  StringRef bytes = buffer->getBuffer();
  if (bytes.starts_with("PK\x03\x04") || bytes.starts_with("PK\x05\x06"))
    return readPth(std::move(buffer), name);
  if (bytes.size() >= 4 &&
      detail::readLE<uint32_t>(bytes.bytes_begin()) == 0x67676d66)
    return readGGML(std::move(buffer), name);
  if (bytes.size() >= 9 && bytes[8] == '{')
    return readSafeTensors(std::move(buffer), name);
  // torch.save before 1.6: a bare pickle stream opening with a magic long.
  if (bytes.starts_with("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8"))
    return detail::fileError(
        name, "legacy (pre-1.6, not zip) torch.save format is not supported; "
              "re-save it with a current torch.save");
  if (bytes.size() < 9)
    return detail::fileError(name, "file is too short (" + Twine(bytes.size()) +
                                       " bytes) to be a checkpoint");
  return detail::fileError(
      name, "not a checkpoint: unrecognised magic bytes (expected a zip "
            "(.pth), ggml 'ggmf' (.bin) or safetensors file)");
}

} // namespace rwkvc
