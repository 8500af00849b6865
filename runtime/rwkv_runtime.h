/*===- rwkv_runtime.h - The runtime linked into compiled models -----------===*
 *
 * A small C API over one compiled model (the generated object's symbols, see
 * rwkv_abi.h). The caller owns every state and logits buffer; the runtime
 * owns only the model handle (the descriptor and the weight image, embedded
 * or memory-mapped read-only).
 *
 *   char err[256];
 *   rwkv_model *m = rwkv_model_open(err, sizeof err);
 *   float *state = malloc(rwkv_state_size(m));         // state_floats floats
 *   float *logits = malloc(rwkv_n_vocab(m) * sizeof(float));
 *   rwkv_state_reset(m, state);
 *   rwkv_eval(m, state, tokens, n, logits, RWKV_EVAL_SEQ, 0, err, sizeof err);
 *   rwkv_model_close(m);
 *
 * Errors: functions that can fail return an int status (RWKV_OK == 0 or one
 * of the RWKV_ERROR_* codes) and write a one-line, NUL-terminated message to
 * the caller's buffer `err` of `errlen` bytes (truncated to fit; `err` may be
 * NULL when errlen is 0). Nothing aborts on bad input.
 *
 * Thread-safety: a model handle is immutable after rwkv_model_open, so any
 * number of threads may use one handle at once as long as each call gets its
 * own state buffer (and logits buffer). A state buffer must not be used by
 * two calls at once.
 *
 * Documentation: docs/runtime.md; the state file format: docs/state-format.md.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_RUNTIME_H
#define RWKV_RUNTIME_H

#include "rwkv_abi.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. */
#define RWKV_OK 0
#define RWKV_ERROR_ARGUMENT 1 /* bad argument: null pointer, bad token id */
#define RWKV_ERROR_IO 2       /* a file could not be opened/read/written */
#define RWKV_ERROR_FORMAT 3   /* a file is truncated, corrupt or unknown */
#define RWKV_ERROR_MISMATCH 4 /* a file belongs to another model/layout */
#define RWKV_ERROR_MODEL 5    /* the compiled model itself is unusable */

/* Evaluation modes of rwkv_eval. */
enum rwkv_eval_mode {
  RWKV_EVAL_RNN = 0, /* one token at a time (rwkv_model_forward_one) */
  RWKV_EVAL_SEQ = 1  /* chunks of tokens (rwkv_model_forward_seq) */
};

/* Opaque handle on the linked model: descriptor + weight image. */
typedef struct rwkv_model rwkv_model;

/* Opens the model linked into this executable: checks the descriptor's
 * abi_version against RWKV_ABI_VERSION, then finds the weight image, either
 * embedded (rwkv_weights_blob) or memory-mapped read-only from the file
 * descriptor->weights_file beside the executable (the directory of
 * /proc/self/exe), whose size must equal weights_bytes.
 * Returns a handle owned by the caller (free with rwkv_model_close), or NULL
 * with a message in `err`. Thread-safe. */
rwkv_model *rwkv_model_open(char *err, size_t errlen);

/* Releases the handle and unmaps the weights. Accepts NULL. The caller must
 * ensure no other call is using the handle. */
void rwkv_model_close(rwkv_model *model);

/* The descriptor of the model (static storage, not owned by the caller).
 * Thread-safe. */
const rwkv_model_desc *rwkv_model_get_desc(const rwkv_model *model);

/* The weight image (weights_bytes bytes, 64-byte aligned), owned by the
 * handle and valid until rwkv_model_close. Thread-safe. */
const uint8_t *rwkv_model_weights(const rwkv_model *model);

/* Logits per token (n_vocab): a logits buffer holds this many floats.
 * Thread-safe. */
size_t rwkv_n_vocab(const rwkv_model *model);

/* Size in bytes of one state buffer (state_floats * sizeof(float)).
 * Thread-safe. */
size_t rwkv_state_size(const rwkv_model *model);

/* Writes the initial state into the caller's buffer `state`
 * (rwkv_state_size bytes): each slot zero, -1e30, or its f32 values copied
 * from the weight image at init_weight_offset, as the slot table says.
 * Thread-safe for distinct state buffers. */
void rwkv_state_reset(const rwkv_model *model, float *state);

/* Copies state `src` to `dst` (both rwkv_state_size bytes, caller-owned,
 * may be the same buffer). Thread-safe for distinct destination buffers. */
void rwkv_state_copy(const rwkv_model *model, float *dst, const float *src);

/* Evaluates n >= 1 tokens from `state`, updating it in place, and writes
 * the logits after the last token (n_vocab floats) to `logits`.
 * mode RWKV_EVAL_RNN calls forward_one once per token; RWKV_EVAL_SEQ calls
 * forward_seq on chunks of at most `chunk` tokens (0: all n at once). Every
 * token id is checked against [0, n_vocab) before anything runs: on error the
 * state and logits are untouched. Returns RWKV_OK or RWKV_ERROR_ARGUMENT.
 * Thread-safe for distinct state and logits buffers. */
int rwkv_eval(const rwkv_model *model, float *state, const int32_t *tokens,
              size_t n, float *logits, int mode, size_t chunk, char *err,
              size_t errlen);

/* Saves `state` (caller-owned, unchanged) to the file `path` in the format
 * of docs/state-format.md. Atomic: writes a temporary file beside `path` and
 * renames it over `path`, so on failure `path` keeps its old contents.
 * Returns RWKV_OK or RWKV_ERROR_IO. Thread-safe for distinct paths. */
int rwkv_state_save(const rwkv_model *model, const float *state,
                    const char *path, char *err, size_t errlen);

/* Loads the state file `path` into the caller's buffer `state`. Checks the
 * magic, format version, checksum, model hash, rwkv version and slot layout;
 * on any error `state` is untouched and `err` says what is wrong, naming the
 * file. Returns RWKV_OK, RWKV_ERROR_IO, RWKV_ERROR_FORMAT (truncated,
 * corrupt, not a state file, unsupported version) or RWKV_ERROR_MISMATCH
 * (another model, another layout). Thread-safe for distinct state buffers. */
int rwkv_state_load(const rwkv_model *model, float *state, const char *path,
                    char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_RUNTIME_H */
