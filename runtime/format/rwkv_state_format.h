/*===- rwkv_state_format.h - The state file -------------------------------===*
 *
 * The binary contract of state files between the writer and reader
 * (runtime/rwkv_runtime.cpp: rwkv_state_save / rwkv_state_load and the state
 * handle's save/load) and the tests. docs/state-format.md documents the
 * layout as pseudocode and keeps its version history; a change here bumps
 * RWKV_STATE_FORMAT_VERSION and adds a row there.
 *
 *   rwkv_state_file_head            20 bytes, below (packed)
 *   uint32_t rwkv_version_len; char rwkv_version[rwkv_version_len];
 *   uint64_t n_slots;
 *   { uint32_t name_len; char name[name_len]; uint64_t offset, size; }
 *                                   slots[n_slots], in state order
 *   uint64_t n_floats;              rwkv_model_desc.state_floats
 *   float    data[n_floats];        the host layout of the state
 *   uint64_t checksum;              rwkv_fnv1a64 of every byte above
 *
 * Little-endian throughout. The data is the host layout whatever backend
 * held the state, so a state saved by one target loads in another.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_STATE_FORMAT_H
#define RWKV_STATE_FORMAT_H

#include "rwkv_fnv1a.h"

#include <stdint.h>

/* The 8 magic bytes (no NUL in the file). */
#define RWKV_STATE_MAGIC "RWKVSTAT"
#define RWKV_STATE_MAGIC_SIZE 8
#define RWKV_STATE_FORMAT_VERSION 1

/* The fixed-size start of a state file. */
typedef struct __attribute__((packed)) rwkv_state_file_head {
  char magic[RWKV_STATE_MAGIC_SIZE]; /* RWKV_STATE_MAGIC, no NUL */
  uint32_t version;                  /* RWKV_STATE_FORMAT_VERSION */
  uint64_t model_hash; /* rwkv_model_desc.model_hash of the saving model */
} rwkv_state_file_head;

#ifdef __cplusplus
static_assert(sizeof(rwkv_state_file_head) == 20, "state file head layout");
#else
_Static_assert(sizeof(rwkv_state_file_head) == 20, "state file head layout");
#endif

#endif /* RWKV_STATE_FORMAT_H */
