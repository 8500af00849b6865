/*===- rwkv_internal.h - Helpers shared by the runtime's files ------------===*
 *
 * Not part of the API: error messages into the caller's buffer and the
 * FNV-1a checksum used by state files and tokenizer blobs.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_INTERNAL_H
#define RWKV_INTERNAL_H

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>

namespace rwkv_internal {

/// Formats a message into the caller's `err` buffer of `errlen` bytes
/// (truncated, NUL-terminated; nothing when err is null or errlen is 0).
__attribute__((format(printf, 3, 4))) inline void
setError(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/// FNV-1a, 64 bit.
inline uint64_t fnv1a(const uint8_t *data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

} // namespace rwkv_internal

#endif // RWKV_INTERNAL_H
