//===- ReaderSupport.h - Helpers shared by the checkpoint readers -*- C++
//-*-===//
//
// Internal to frontend/: error construction, bounds-checked little-endian
// reads and overflow-safe size arithmetic. Every size read from a file goes
// through these before it is used to index or allocate anything.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_READERSUPPORT_H
#define RWKVC_FRONTEND_READERSUPPORT_H

#include "frontend/Checkpoint.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstring>
#include <optional>

namespace rwkvc {
namespace detail {

/// "<file>: <message>".
inline llvm::Error fileError(llvm::StringRef file, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 (file + ": " + msg).str());
}

/// a * b, or nullopt on overflow.
inline std::optional<uint64_t> mulChecked(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}
/// a + b, or nullopt on overflow.
inline std::optional<uint64_t> addChecked(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

/// Maps the regular file `path` (MemoryBuffer::getFile, any size). Anything
/// else (a pipe, a device such as /dev/zero) is refused: it would be read
/// into memory to its end, and an endless one has none. The error is the
/// bare reason, for the caller to name the file.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
openRegularFile(llvm::StringRef path);

/// Product of the dimensions, or nullopt if one is negative or it overflows.
std::optional<uint64_t> checkedNumElements(llvm::ArrayRef<int64_t> shape);

/// Storage bytes of `numElements` of `t`, or nullopt on overflow or when a
/// quantized tensor is not a whole number of blocks.
std::optional<uint64_t> checkedStorageBytes(DType t, uint64_t numElements);

/// "(64, 32)".
std::string shapeString(llvm::ArrayRef<int64_t> shape);

template <typename T> T readLE(const uint8_t *p) {
  T v;
  std::memcpy(&v, p, sizeof(T)); // the build targets little-endian hosts
  return v;
}

float halfToFloat(uint16_t h);
inline float bf16ToFloat(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

/// Bytes of one element of a float type (F32/F16/BF16), 0 for quantized.
unsigned floatElementBytes(DType t);

/// Copies `src` (row-major, `rows` x `cols` elements of `elemBytes`) into
/// `dst` transposed ((cols, rows)).
void transposeInto(uint8_t *dst, const uint8_t *src, uint64_t rows,
                   uint64_t cols, unsigned elemBytes);

} // namespace detail
} // namespace rwkvc

#endif // RWKVC_FRONTEND_READERSUPPORT_H
