/*===- rwkv_cache_format.h - The server's state-cache blob ----------------===*
 *
 * One entry of the server's state cache (docs/serving.md, "State cache";
 * docs/state-format.md, "State-cache blobs"): the state after a token
 * prefix, in memory or in Redis under the key
 *
 *   "rwkvc:state:" hex16(model_hash) ":" hex16(prefix_hash(tokens))
 *
 * Version 1, little-endian:
 *
 *   rwkv_cache_blob_header header;       // 48 bytes
 *   int32_t tokens[header.n_tokens];     // the prefix
 *   float   state[header.state_floats];  // host layout (rwkv_state_read)
 *
 *   prefix_hash(t) = FNV-1a 64 over the 4-byte little-endian ids of t
 *   checksum       = FNV-1a 64 over tokens and state (the bytes after the
 *                    header)
 *
 * A reader uses a blob only if magic, version, model_hash, state_floats,
 * checksum and the tokens (equal to the request's prefix) all match: a
 * state of another model is never used.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_CACHE_FORMAT_H
#define RWKV_CACHE_FORMAT_H

#include <stdint.h>

#define RWKV_CACHE_MAGIC "RWKVSTC"  /* 8 bytes with its NUL */
#define RWKV_CACHE_VERSION 1u
#define RWKV_CACHE_KEY_PREFIX "rwkvc:state:"

typedef struct rwkv_cache_blob_header {
  char magic[8];         /* RWKV_CACHE_MAGIC */
  uint32_t version;      /* RWKV_CACHE_VERSION */
  uint32_t reserved;     /* 0 */
  uint64_t model_hash;   /* rwkv_model_desc.model_hash */
  uint64_t n_tokens;     /* ids that follow */
  uint64_t state_floats; /* rwkv_model_desc.state_floats */
  uint64_t checksum;     /* FNV-1a 64 of tokens and state */
} rwkv_cache_blob_header;

#ifdef __cplusplus
static_assert(sizeof(rwkv_cache_blob_header) == 48,
              "the blob header is 48 bytes");
#endif

#endif /* RWKV_CACHE_FORMAT_H */
