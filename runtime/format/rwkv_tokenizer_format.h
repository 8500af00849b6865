/*===- rwkv_tokenizer_format.h - The compiled tokenizer blob --------------===*
 *
 * The binary contract between rwkvc's tokenizer compiler (writer,
 * frontend/Tokenizer.cpp), the runtime (reader, runtime/rwkv_tokenizer.cpp)
 * and the tests. docs/tokenizers.md documents the layout as pseudocode and
 * keeps its version history; a change here bumps
 * RWKV_TOKENIZER_FORMAT_VERSION and adds a row there.
 *
 *   rwkv_tokenizer_header           48 bytes, below
 *   uint32_t token_end[n_tokens]    token i = pool[token_end[i-1] .. token_end[i])
 *   uint8_t  pool[pool_size]        raw bytes of every token, in id order
 *   uint8_t  pad[0..3]              zero, to a multiple of 4
 *   uint32_t merges[n_merges][3]    bpe: (left, right, merged id); rank = index
 *   uint32_t added[n_added][2]      bpe: (id, enum rwkv_tokenizer_added_flags)
 *   uint64_t checksum               rwkv_fnv1a64 of every byte before it
 *
 * Little-endian throughout; a reader makes no alignment assumption.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_TOKENIZER_FORMAT_H
#define RWKV_TOKENIZER_FORMAT_H

#include "rwkv_fnv1a.h"

#include <stddef.h>
#include <stdint.h>

/* "RWKVTOK" and its NUL: the 8 magic bytes. */
#define RWKV_TOKENIZER_MAGIC "RWKVTOK"
#define RWKV_TOKENIZER_FORMAT_VERSION 1

/* rwkv_tokenizer_header.kind */
enum rwkv_tokenizer_kind {
  RWKV_TOKENIZER_BYTES = 1, /* id = byte */
  RWKV_TOKENIZER_WORLD = 2, /* greedy longest match */
  RWKV_TOKENIZER_BPE = 3    /* byte-level BPE (GPT-NeoX 20B) */
};

/* rwkv_tokenizer_header.flags */
enum rwkv_tokenizer_flags {
  RWKV_TOKENIZER_FLAG_NFC = 1 /* NFC-normalise input (bpe) */
};

/* The second word of each added[] entry. */
enum rwkv_tokenizer_added_flags {
  RWKV_TOKENIZER_ADDED_SPECIAL = 1,
  RWKV_TOKENIZER_ADDED_NORMALIZED = 2
};

typedef struct rwkv_tokenizer_header {
  char magic[8];       /* RWKV_TOKENIZER_MAGIC, NUL-terminated */
  uint32_t version;    /* RWKV_TOKENIZER_FORMAT_VERSION */
  uint32_t kind;       /* enum rwkv_tokenizer_kind */
  uint32_t n_tokens;   /* ids 0 .. n_tokens-1 (<= the model's n_vocab) */
  int32_t eos;         /* end-of-text id, -1 if none */
  uint32_t flags;      /* enum rwkv_tokenizer_flags */
  uint32_t n_merges;   /* bpe: merge rules */
  uint32_t n_added;    /* bpe: added tokens */
  uint32_t pool_size;  /* bytes in the token pool */
  uint64_t total_size; /* the whole blob, checksum included */
} rwkv_tokenizer_header;

#ifdef __cplusplus
static_assert(sizeof(rwkv_tokenizer_header) == 48, "blob header layout");
#else
_Static_assert(sizeof(rwkv_tokenizer_header) == 48, "blob header layout");
#endif

/* The size in bytes of a blob with these counts (what total_size must say). */
static inline uint64_t rwkv_tokenizer_blob_bytes(uint64_t n_tokens,
                                                 uint64_t pool_size,
                                                 uint64_t n_merges,
                                                 uint64_t n_added) {
  return sizeof(rwkv_tokenizer_header) + 4 * n_tokens +
         ((pool_size + 3) & ~(uint64_t)3) + 12 * n_merges + 8 * n_added + 8;
}

#endif /* RWKV_TOKENIZER_FORMAT_H */
