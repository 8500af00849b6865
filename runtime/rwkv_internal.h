/*===- rwkv_internal.h - Helpers shared by the runtime's files ------------===*
 *
 * Not part of the API: error messages into the caller's buffer.
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

/// setError, then returns `status` (an RWKV_* code).
__attribute__((format(printf, 4, 5))) inline int
fail(char *err, size_t errlen, int status, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return status;
}

} // namespace rwkv_internal

#endif // RWKV_INTERNAL_H
