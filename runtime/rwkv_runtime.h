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
 * descriptor->weights_file beside the executable or shared library that
 * holds the model (found with dladdr, else /proc/self/exe), whose size must
 * equal weights_bytes.
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


/*===----------------------------------------------------------------------===*
 * Tokenizer (docs/tokenizers.md)
 *
 * A tokenizer is read from a blob that rwkvc compiles (frontend/Tokenizer.cpp)
 * and links into the executable as rwkv_tokenizer_blob (rwkv_abi.h), or from
 * any buffer in the same format. Kinds: "bytes" (id = byte), "world" (greedy
 * longest match over UTF-8 bytes), "bpe" (byte-level BPE, GPT-NeoX 20B).
 *===----------------------------------------------------------------------===*/

#define RWKV_ERROR_NO_TOKENIZER 6 /* no tokenizer blob is linked in */

/* Opaque, immutable after open. */
typedef struct rwkv_tokenizer rwkv_tokenizer;

/* Parses the tokenizer blob linked into this executable (rwkv_abi.h's
 * rwkv_tokenizer_blob / rwkv_tokenizer_blob_size). Returns a handle owned by
 * the caller (free with rwkv_tokenizer_close), or NULL with a message in
 * `err`: "no tokenizer is linked into this executable" when none is, or what
 * is wrong with the blob. `n_vocab` > 0 also checks that every token id fits
 * the model (pass rwkv_n_vocab(model); 0 skips the check). Thread-safe. */
rwkv_tokenizer *rwkv_tokenizer_open_linked(size_t n_vocab, char *err,
                                           size_t errlen);

/* The same for a blob in the caller's buffer (`size` bytes, any alignment).
 * The handle copies what it needs: the buffer may be freed after the call.
 * Thread-safe. */
rwkv_tokenizer *rwkv_tokenizer_open(const void *blob, size_t size,
                                    size_t n_vocab, char *err, size_t errlen);

/* Frees the handle; accepts NULL. No other call may be using it. */
void rwkv_tokenizer_close(rwkv_tokenizer *tok);

/* "bytes", "world" or "bpe" (static storage). Thread-safe. */
const char *rwkv_tokenizer_kind(const rwkv_tokenizer *tok);

/* Number of token ids (0..n-1) the tokenizer knows. Thread-safe. */
size_t rwkv_tokenizer_n_tokens(const rwkv_tokenizer *tok);

/* The end-of-text id (0 for world and 20B), or -1 if the tokenizer has none
 * (bytes). Thread-safe. */
int32_t rwkv_tokenizer_eos(const rwkv_tokenizer *tok);

/* Encodes `len` bytes of UTF-8 `text` (need not be NUL-terminated). Writes
 * min(n, cap) ids to the caller's `ids` and the full count n to `*n_ids`
 * (so a call with cap 0 and ids NULL sizes the buffer; n <= len for bytes
 * and world, while NFC may lengthen a bpe text).
 * bytes and world take any bytes (they are byte-level: decode gives them
 * back); bpe needs valid UTF-8 and refuses anything else with
 * RWKV_ERROR_ARGUMENT naming the byte offset (check with
 * rwkv_utf8_valid_prefix to treat every kind alike, as the CLI does).
 * Returns RWKV_OK or RWKV_ERROR_ARGUMENT. Thread-safe (read-only handle). */
int rwkv_tokenize(const rwkv_tokenizer *tok, const char *text, size_t len,
                  int32_t *ids, size_t cap, size_t *n_ids, char *err,
                  size_t errlen);

/* Decodes `n` ids to their bytes, concatenated (not NUL-terminated, not
 * necessarily valid UTF-8: a multi-byte character may span tokens). Writes
 * min(total, cap) bytes to the caller's `out` and the total to `*n_bytes`
 * (cap 0 sizes the buffer). An id outside [0, n_tokens) is refused with
 * RWKV_ERROR_ARGUMENT and nothing written. Thread-safe. */
int rwkv_detokenize(const rwkv_tokenizer *tok, const int32_t *ids, size_t n,
                    char *out, size_t cap, size_t *n_bytes, char *err,
                    size_t errlen);

/* The bytes of one token: sets `*bytes` to storage owned by the handle
 * (valid until close) and returns their count; 0 (and *bytes NULL) for an
 * id out of range or a token without bytes (end of text). Thread-safe. */
size_t rwkv_token_bytes(const rwkv_tokenizer *tok, int32_t id,
                        const uint8_t **bytes);

/* Streaming UTF-8: holds back an incomplete multi-byte sequence at the end of
 * what was pushed so that output never splits a character. Caller-owned,
 * zero-initialise (or rwkv_utf8_stream_init) before use; one per stream, not
 * thread-safe. Invalid bytes are passed through unchanged (lossless), never
 * held back longer than the sequence they start could be. */
typedef struct rwkv_utf8_stream {
  uint8_t pending[4]; /* (npending) bytes of an incomplete sequence */
  uint32_t npending;
} rwkv_utf8_stream;

void rwkv_utf8_stream_init(rwkv_utf8_stream *s);

/* Appends `n` bytes; writes the bytes now complete to the caller's `out`,
 * which must hold n + 4 bytes, and returns their count. */
size_t rwkv_utf8_stream_push(rwkv_utf8_stream *s, const void *in, size_t n,
                             char *out);

/* Writes what is still held back (at most 4 bytes, an incomplete sequence,
 * passed through as is) to `out` (4 bytes) and returns the count. */
size_t rwkv_utf8_stream_flush(rwkv_utf8_stream *s, char *out);

/* Length of the longest prefix of `text` that is valid UTF-8 (== len when all
 * of it is). Rejects overlong forms, surrogates and code points > U+10FFFF.
 * Thread-safe. */
size_t rwkv_utf8_valid_prefix(const char *text, size_t len);

/*===----------------------------------------------------------------------===*
 * Sampling (docs/runtime.md, "Sampling"): ChatRWKV's PIPELINE semantics.
 *===----------------------------------------------------------------------===*/

typedef struct rwkv_sampler_params {
  float temperature;       /* 0: greedy (argmax); default 1.0 */
  float top_p;             /* nucleus mass in (0, 1]; 1: off; default 0.85 */
  int32_t top_k;           /* keep the k most likely; 0: off (default) */
  float presence_penalty;  /* ChatRWKV alpha_presence; default 0.2 */
  float frequency_penalty; /* ChatRWKV alpha_frequency; default 0.2 */
  float penalty_decay;     /* ChatRWKV alpha_decay; default 0.996 */
  uint64_t seed;           /* PRNG seed (xoshiro256** via splitmix64) */
} rwkv_sampler_params;

/* Fills `p` with the defaults above, ChatRWKV's PIPELINE_ARGS (seed 0). */
void rwkv_sampler_params_default(rwkv_sampler_params *p);

/* Opaque: parameters, PRNG state, the occurrence table (n_vocab floats) and
 * scratch space. One per generation stream; not thread-safe (the PRNG and the
 * table change on every call). */
typedef struct rwkv_sampler rwkv_sampler;

/* Creates a sampler for `n_vocab` logits. Returns a handle owned by the
 * caller (free with rwkv_sampler_free), or NULL with a message in `err` for
 * parameters out of range (temperature < 0, top_p outside (0, 1], top_k < 0,
 * penalty_decay outside [0, 1], n_vocab 0). Thread-safe. */
rwkv_sampler *rwkv_sampler_create(size_t n_vocab, const rwkv_sampler_params *p,
                                  char *err, size_t errlen);

/* Frees the sampler; accepts NULL. */
void rwkv_sampler_free(rwkv_sampler *s);

/* Forgets the occurrences and reseeds the PRNG with `seed`. */
void rwkv_sampler_reset(rwkv_sampler *s, uint64_t seed);

/* Bans token `id` from being sampled (its logit is set to -inf before each
 * sample), e.g. ChatRWKV's token_ban = [0]. Ids out of range are ignored. */
void rwkv_sampler_ban(rwkv_sampler *s, int32_t id);

/* Picks the next token from the caller's `logits` (n_vocab floats), which it
 * modifies in place: banned ids to -inf, then each token t that has occurred
 * loses presence_penalty + occurrence[t] * frequency_penalty. Then greedy
 * (argmax, lowest id on ties) if temperature == 0, else ChatRWKV's
 * sample_logits: softmax; drop tokens below the top-p cutoff; keep the top_k
 * largest; p^(1/temperature); renormalise; draw with the PRNG. Returns the id
 * (-1 only if every logit is -inf or NaN). */
int32_t rwkv_sampler_sample(rwkv_sampler *s, float *logits);

/* Records that `id` was generated: every occurrence is multiplied by
 * penalty_decay, then occurrence[id] += weight (ChatRWKV uses weight 0 for
 * tokens whose text is a substring of " \t0123456789", else 1; a token with
 * weight 0 still counts as present). */
void rwkv_sampler_accept(rwkv_sampler *s, int32_t id, float weight);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_RUNTIME_H */
