/*===- rwkv_fnv1a.h - The one checksum of rwkvc's binary formats ----------===*
 *
 * FNV-1a, 64 bit: the checksum of state files (rwkv_state_format.h) and
 * tokenizer blobs (rwkv_tokenizer_format.h). Written by the compiler, read by the runtime and the tests through this
 * header only.
 *
 *   h = 0xcbf29ce484222325; for each byte b: h = (h ^ b) * 0x100000001b3
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_FNV1A_H
#define RWKV_FNV1A_H

#include <stddef.h>
#include <stdint.h>

#define RWKV_FNV1A64_OFFSET 0xcbf29ce484222325ULL
#define RWKV_FNV1A64_PRIME 0x100000001b3ULL

/* Continues the FNV-1a 64 hash `h` over `n` bytes at `data`; start with
 * RWKV_FNV1A64_OFFSET. */
static inline uint64_t rwkv_fnv1a64_update(uint64_t h, const void *data,
                                           size_t n) {
  const uint8_t *p = (const uint8_t *)data;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= RWKV_FNV1A64_PRIME;
  }
  return h;
}

/* FNV-1a 64 of `n` bytes at `data`. */
static inline uint64_t rwkv_fnv1a64(const void *data, size_t n) {
  return rwkv_fnv1a64_update(RWKV_FNV1A64_OFFSET, data, n);
}

#endif /* RWKV_FNV1A_H */
