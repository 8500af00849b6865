/*===- rwkv_internal.h - Helpers shared by the runtime's files ------------===*
 *
 * Not part of the API: error messages into the caller's buffer, formatted
 * with fmt (header-only, so a compiled model needs no shared libfmt) and
 * checked at compile time (FMT_STRING); the log-sum-exp of perplexity.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_INTERNAL_H
#define RWKV_INTERNAL_H

#include <fmt/format.h>

#include <cstddef>
#include <utility>

namespace rwkv_internal {

/// Formats a message into the caller's `err` buffer of `errlen` bytes
/// (truncated, NUL-terminated; nothing when err is null or errlen is 0).
template <typename... Args>
void setError(char *err, size_t errlen, fmt::format_string<Args...> f,
              Args &&...args) {
  if (!err || errlen == 0)
    return;
  *fmt::format_to_n(err, errlen - 1, f, std::forward<Args>(args)...).out =
      '\0';
}

/// setError, then returns `status` (an RWKV_* code).
template <typename... Args>
int fail(char *err, size_t errlen, int status, fmt::format_string<Args...> f,
         Args &&...args) {
  setError(err, errlen, f, std::forward<Args>(args)...);
  return status;
}

/// Calls body(arg), which calls the generated code, so that a failed
/// allocation of that code (_mlir_memref_to_llvm_alloc) ends the call
/// instead of returning NULL to it: the call is abandoned where it was,
/// the blocks it still held are freed, and runGuarded returns the bytes the
/// failed request asked for. Returns 0 when body returned normally. body
/// must own nothing that needs a destructor or a free (it is not resumed).
/// Thread-safe: each thread has its own guard (rwkv_scratch.cpp).
size_t runGuarded(void (*body)(void *), void *arg);

/// log Σ_v exp(row[v]) over n >= 1 floats, in double precision (each exp
/// to ~4e-16 relative; rwkv_logsumexp.cpp). Thread-safe.
double logSumExp(const float *row, size_t n);

/// Gives the thread count of rwkv_set_threads to OpenMP for the calling
/// thread (the generated code's parallel regions), when the model uses it;
/// called before the generated code runs (rwkv_threads.cpp). Thread-safe.
void applyThreads();

} // namespace rwkv_internal

/// setError / fail with the format string checked at compile time.
#define RWKV_SET_ERROR(err, errlen, format, ...)                               \
  ::rwkv_internal::setError(err, errlen, FMT_STRING(format), ##__VA_ARGS__)
#define RWKV_FAIL(err, errlen, status, format, ...)                            \
  ::rwkv_internal::fail(err, errlen, status, FMT_STRING(format), ##__VA_ARGS__)

#endif // RWKV_INTERNAL_H
