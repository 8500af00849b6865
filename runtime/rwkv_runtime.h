/*===- rwkv_runtime.h - The runtime linked into compiled models -----------===*
 *
 * A small C API over one compiled model (the generated object's symbols, see
 * rwkv_abi.h). The caller owns every handle it creates and every logits
 * buffer; the model handle owns the descriptor and the weight image
 * (embedded or memory-mapped read-only), a state handle the state in its
 * backend's storage.
 *
 *   char err[256];
 *   rwkv_model *m = rwkv_model_open(err, sizeof err);
 *   rwkv_state *s = rwkv_state_new(m, err, sizeof err);  // initial state
 *   float *logits = malloc(rwkv_n_vocab(m) * sizeof(float));
 *   rwkv_state_eval(s, tokens, n, logits, RWKV_EVAL_SEQ, 0, err, sizeof err);
 *   rwkv_generate(s, tok, logits, &params, emit, user, &result, err,
 *                 sizeof err);                           // text, streamed
 *   rwkv_state_free(s);
 *   rwkv_model_close(m);
 *
 * The host-buffer calls (rwkv_state_reset, rwkv_eval, rwkv_state_save/load on
 * a caller-owned float buffer) remain as a convenience for the CPU backend;
 * on the CUDA backend rwkv_eval uploads the state, runs and downloads it.
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
#include <stdio.h>

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
#define RWKV_ERROR_MEMORY 7   /* out of memory (6: RWKV_ERROR_NO_TOKENIZER) */
#define RWKV_ERROR_DEVICE 8   /* the GPU or its driver is unusable or failed */

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

/* Where a model runs (rwkv_model_open_device). */
enum rwkv_device {
  RWKV_DEVICE_AUTO = 0, /* CUDA when the model has CUDA kernels and a driver
                           and device are usable, else the CPU */
  RWKV_DEVICE_CPU = 1,
  RWKV_DEVICE_CUDA = 2
};

/* rwkv_model_open on the device `device` (enum rwkv_device):
 * RWKV_DEVICE_CPU needs the model's CPU code; RWKV_DEVICE_CUDA its CUDA
 * program and a usable driver (libcuda.so.1, or the library
 * $RWKV_CUDA_LIBRARY names: CUDA 13, R580 or newer) and device 0, else one
 * line says which is missing (RWKV_ERROR_DEVICE); RWKV_DEVICE_AUTO takes
 * CUDA when it can, else the CPU when the model has CPU code, else the
 * reason CUDA cannot run. On CUDA the weight image is uploaded once, here
 * (docs/runtime.md, "CUDA backend"). rwkv_model_open is
 * rwkv_model_open_device(RWKV_DEVICE_AUTO). Thread-safe. */
rwkv_model *rwkv_model_open_device(int device, char *err, size_t errlen);

/* The device named `name`: "auto", "cpu" or "cuda" (enum rwkv_device), or
 * -1 for anything else (NULL included). Thread-safe. */
int rwkv_device_from_name(const char *name);

/* What runs the model, one line owned by the handle: "cpu", or "cuda: NAME,
 * compute capability 9.0, 139.8 GiB, driver CUDA 13.0, kernels: cubin
 * sm_90"; after an automatic fall-back "cpu (CUDA not used: WHY)".
 * Thread-safe. */
const char *rwkv_model_device_info(const rwkv_model *model);

/* Threads of the generated code in the evaluations that follow, in every
 * thread of the process: n >= 1, or 0 for the default, the cores the
 * process may run on (its CPU affinity). The generated code splits the
 * rows of its large products and the heads of its recurrences across them
 * (OpenMP; the ops it judged too small at compile time, and every op of a
 * small model, run on the calling thread). The logits do not depend on the count: each output is
 * computed by one thread in the same order. Returns RWKV_OK, or
 * RWKV_ERROR_ARGUMENT for n < 0. Thread-safe. */
int rwkv_set_threads(int n);

/* The thread count of rwkv_set_threads (by default the cores the process
 * may run on). Thread-safe. */
int rwkv_get_threads(void);

/* Releases the handle, unmaps the weights and frees its device memory.
 * Accepts NULL. The caller must ensure no other call is using the handle
 * and every state of it is freed. */
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

/* Sequence evaluation in bounded memory (docs/runtime.md, "Long inputs").
 * The generated forward_seq/forward_all need scratch memory in proportion to
 * the tokens of one call, so every call that evaluates tokens in sequence
 * mode (rwkv_eval, rwkv_state_eval, rwkv_state_eval_all, rwkv_feed_text,
 * rwkv_chat_turn, rwkv_perplexity, rwkv_feed_file, rwkv_perplexity_file)
 * cuts them into chunks: a `chunk` of 0 means the model's default,
 * rwkv_default_chunk(model), and every chunk is capped at
 * rwkv_max_chunk(model). Memory then stays constant in the number of
 * tokens, whatever the caller passes.
 * RWKV_DEFAULT_CHUNK: the fastest prefill measured on the CPU backend for
 * the bundled models (docs/performance.md), the default of models whose
 * weights fit the caches; RWKV_STREAMING_CHUNK: the default of models of
 * more than RWKV_CACHED_WEIGHT_BYTES of weights, which every chunk reads
 * from memory once, its head's included (0.1B shape, f16, two threads:
 * 682-861 tok/s in chunks of 16, 929-1073 in chunks of 64; chunks of 128
 * over 64, 512 tokens, one process, both orders: 0.1B q8_0 1.10, 0.1B f16
 * 1.02, 169M f16 1.06, 0.4B f16 1.03, docs/performance.md, session 15);
 * RWKV_SCRATCH_BUDGET: the bytes of scratch one chunk may take, estimated
 * as 64 bytes (16 floats) per n_embd per token. */
#define RWKV_DEFAULT_CHUNK 16
#define RWKV_STREAMING_CHUNK 128
#define RWKV_CACHED_WEIGHT_BYTES ((int64_t)64 << 20)
#define RWKV_SCRATCH_BUDGET ((size_t)64 << 20)
#define RWKV_MAX_CHUNK_LIMIT 4096 /* no chunk is longer, whatever the model */

/* The longest chunk any call evaluates at once for `model`:
 * RWKV_SCRATCH_BUDGET / (64 * n_embd), within [1, RWKV_MAX_CHUNK_LIMIT].
 * Thread-safe. */
size_t rwkv_max_chunk(const rwkv_model *model);

/* The chunk of a sequence call given 0: RWKV_STREAMING_CHUNK for a model of
 * more than RWKV_CACHED_WEIGHT_BYTES of weights, else RWKV_DEFAULT_CHUNK;
 * at most rwkv_max_chunk(model). Thread-safe. */
size_t rwkv_default_chunk(const rwkv_model *model);

/* Evaluates n >= 1 tokens from `state`, updating it in place, and writes
 * the logits after the last token (n_vocab floats) to `logits`.
 * mode RWKV_EVAL_RNN calls forward_one once per token; RWKV_EVAL_SEQ calls
 * forward_seq on chunks of `chunk` tokens (0: rwkv_default_chunk; capped at
 * rwkv_max_chunk), so any n runs in bounded memory. Every
 * token id is checked against [0, n_vocab) before anything runs: on error the
 * state and logits are untouched. Returns RWKV_OK, RWKV_ERROR_ARGUMENT, or
 * RWKV_ERROR_MEMORY when the generated code runs out of scratch memory
 * (docs/runtime.md, "Out of memory"): in SEQ mode the state is then as
 * before the call (RNN mode's forward_one takes no scratch; should it fail
 * all the same, the state is reset to the initial state); the logits are
 * undefined. Thread-safe for distinct state and logits buffers. */
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
 * file. Reads at most twice the size of this model's state files + 1 MiB
 * (a longer file, or an endless one, is refused). Returns RWKV_OK,
 * RWKV_ERROR_IO, RWKV_ERROR_FORMAT (truncated, corrupt, too long, not a
 * state file, unsupported version) or RWKV_ERROR_MISMATCH (another model,
 * another layout). Thread-safe for distinct state buffers. */
int rwkv_state_load(const rwkv_model *model, float *state, const char *path,
                    char *err, size_t errlen);

/*===----------------------------------------------------------------------===*
 * State handles: the state where the model's backend keeps it
 *
 * A handle holds one recurrent state in the storage of the backend the model
 * runs on: host memory for RWKV_BACKEND_CPU; for RWKV_BACKEND_CUDA device
 * memory, a stream of its own and the decode step captured as a CUDA graph
 * (docs/runtime.md, "CUDA backend"). Its host layout, what
 * rwkv_state_read/rwkv_state_write copy and state files hold, is the same
 * for every backend: state_floats floats in slot order (rwkv_abi.h). So a
 * state saved by one target loads in another.
 *
 * Ownership: the caller owns each handle (rwkv_state_free); a handle refers
 * to its model, which must stay open until every handle of it is freed.
 * Thread-safety: a handle is not thread-safe: at most one call may use it
 * at a time (it is updated in place). Distinct handles, also of one model,
 * may be used from any number of threads at once.
 *===----------------------------------------------------------------------===*/

typedef struct rwkv_state rwkv_state;

/* The backend (enum rwkv_backend) this runtime runs `model` on: one of the
 * bits of rwkv_model_desc.backends. Thread-safe. */
uint32_t rwkv_model_backend(const rwkv_model *model);

/* Creates a state of `model`, set to the initial state (as rwkv_state_reset).
 * Returns a handle owned by the caller, or NULL with a message in `err`
 * (out of memory). Thread-safe. */
rwkv_state *rwkv_state_new(const rwkv_model *model, char *err, size_t errlen);

/* Frees a state; accepts NULL. */
void rwkv_state_free(rwkv_state *state);

/* The model the state belongs to. */
const rwkv_model *rwkv_state_get_model(const rwkv_state *state);

/* Sets the state back to the model's initial state. (On CUDA a failed
 * device copy is reported by the next call that uses the state.) */
void rwkv_state_clear(rwkv_state *state);

/* A new handle holding a copy of `src` (owned by the caller), or NULL with a
 * message in `err`. `src` is only read. */
rwkv_state *rwkv_state_clone(const rwkv_state *src, char *err, size_t errlen);

/* Copies `src` into `dst` (may be the same handle). Both must belong to one
 * model: otherwise RWKV_ERROR_MISMATCH and `dst` is untouched. */
int rwkv_state_assign(rwkv_state *dst, const rwkv_state *src, char *err,
                      size_t errlen);

/* Downloads the state into the caller's `host` buffer (rwkv_state_size
 * bytes, the host layout). Returns RWKV_OK, RWKV_ERROR_ARGUMENT, or
 * RWKV_ERROR_DEVICE when a device copy fails. */
int rwkv_state_read(const rwkv_state *state, float *host, char *err,
                    size_t errlen);

/* Uploads the caller's `host` buffer (rwkv_state_size bytes, the host
 * layout; only read) into the state. Returns RWKV_OK, RWKV_ERROR_ARGUMENT,
 * or RWKV_ERROR_DEVICE when a device copy fails. */
int rwkv_state_write(rwkv_state *state, const float *host, char *err,
                     size_t errlen);

/* rwkv_state_save and rwkv_state_load for a handle: the same file format
 * (docs/state-format.md), the same checks and statuses; on a failed load the
 * state is untouched. */
int rwkv_state_save_file(const rwkv_state *state, const char *path, char *err,
                         size_t errlen);
int rwkv_state_load_file(rwkv_state *state, const char *path, char *err,
                         size_t errlen);

/* rwkv_eval on a handle: evaluates n >= 1 tokens, updating the state, and
 * writes the logits after the last token to the caller's host buffer
 * `logits` (n_vocab floats). Same modes, chunking, checks and statuses; on
 * error the state and logits are untouched. The per-call overhead is a
 * bounds check of the ids: one-token calls (decoding) cost what the
 * generated forward_one does. */
int rwkv_state_eval(rwkv_state *state, const int32_t *tokens, size_t n,
                    float *logits, int mode, size_t chunk, char *err,
                    size_t errlen);

/* Sequence-mode evaluation that keeps the logits of every position: writes
 * n * n_vocab floats to the caller's `logits`, row t the logits after
 * tokens[0..t] (scoring, perplexity), calling the generated
 * rwkv_model_forward_all on chunks of `chunk` tokens (0: rwkv_default_chunk;
 * capped at rwkv_max_chunk). Checks and statuses as rwkv_state_eval. */
int rwkv_state_eval_all(rwkv_state *state, const int32_t *tokens, size_t n,
                        float *logits, size_t chunk, char *err, size_t errlen);

/* Evaluates `batch` independent sequences in one call: sequence i advances
 * states[i] (all of one model, all distinct) by n_tokens[i] >= 1 tokens
 * tokens[i][0..n_tokens[i]) and writes the logits after its last token to
 * logits[i] (n_vocab floats), or skips them when logits[i] is NULL. The
 * result equals rwkv_state_eval on each sequence alone (one token:
 * RWKV_EVAL_RNN; more: RWKV_EVAL_SEQ with the default chunk). Checks every
 * argument before it evaluates anything: on such an error no state and no
 * logits are touched.
 *
 * On the CPU, two or more sequences of one token each (decoding) are
 * evaluated together by the model's batch entry (rwkv_abi.h,
 * rwkv_model_forward_batch: every weight read once for all of them), in
 * groups of at most rwkv_max_chunk sequences and RWKV_SCRATCH_BUDGET bytes
 * of logits (256 sequences of 65,536 logits); their logits equal each
 * sequence's alone up to the summation order of the products (~1e-6).
 * The others, and every sequence of a CUDA state, are evaluated one by one.
 * Out of memory (RWKV_ERROR_MEMORY) ends the call: the sequences evaluated
 * before have advanced, the failing sequence or group has not.
 * Thread-compatible: concurrent calls need distinct states. */
int rwkv_eval_batch(rwkv_state *const *states, const int32_t *const *tokens,
                    const size_t *n_tokens, size_t batch,
                    float *const *logits, char *err, size_t errlen);


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

/* Opaque: parameters, PRNG state, the banned ids and the occurrences of the
 * tokens that occurred (nothing of n_vocab size: temperature > 0 takes its
 * scratch, 20 bytes a token of the vocabulary, from one buffer per thread,
 * kept from call to call). One per generation stream; not thread-safe (the
 * PRNG and the occurrences change on every call). */
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

/*===----------------------------------------------------------------------===*
 * Generation, chat and perplexity (docs/runtime.md, "Text in the library")
 *
 * What the command line does with text, as calls on a state handle, a
 * tokenizer and the caller's logits buffer (n_vocab floats: the logits after
 * what the state has seen, read and updated by each call).
 * Thread-safety: as the state handle (one call per handle at a time); the
 * tokenizer is only read, so one tokenizer may serve many handles at once.
 *===----------------------------------------------------------------------===*/

/* Receives generated text: `n` bytes at `text` (not NUL-terminated), never
 * splitting a UTF-8 character (rwkv_utf8_stream). Called at least once per
 * generated token, with n == 0 when its bytes are held back (an incomplete
 * character, or what may start a stop string), so that returning nonzero
 * stops the generation after at most one more token. */
typedef int (*rwkv_emit_fn)(void *user, const char *text, size_t n);

/* Why a generation ended (rwkv_generate_result.stop). */
enum rwkv_stop_reason {
  RWKV_STOP_MAX_TOKENS = 0, /* max_tokens were generated */
  RWKV_STOP_EOS = 1,        /* the tokenizer's end of text was sampled */
  RWKV_STOP_TOKEN = 2,      /* one of stop_tokens was sampled */
  RWKV_STOP_STRING = 3,     /* the text reached one of stop_strings */
  RWKV_STOP_CALLBACK = 4,   /* the emit callback returned nonzero */
  RWKV_STOP_NO_TOKEN = 5,   /* every logit was -inf or NaN */
  RWKV_STOP_EMPTY = 6       /* rwkv_chat_turn: an empty message, skipped */
};

typedef struct rwkv_generate_params {
  rwkv_sampler_params sampling;    /* the sampler of rwkv_sampler_create */
  uint64_t max_tokens;             /* at most this many tokens; default 100 */
  const char *const *stop_strings; /* (n_stop_strings) NUL-terminated,
                                      non-empty; the text stops before the
                                      first one it contains, unprinted */
  size_t n_stop_strings;
  const int32_t *stop_tokens; /* (n_stop_tokens) ids that end the text,
                                 not fed or printed */
  size_t n_stop_tokens;
  int32_t ban_eos; /* nonzero: never sample end of text (chat) */
} rwkv_generate_params;

/* Fills `p`: rwkv_sampler_params_default, max_tokens 100, no stops, eos not
 * banned. */
void rwkv_generate_params_default(rwkv_generate_params *p);

typedef struct rwkv_generate_result {
  uint64_t n_fed;       /* tokens of text fed before/after the generation */
  double fed_ms;        /* time spent feeding them (wall clock, ms) */
  uint64_t n_generated; /* tokens generated (each fed to the state) */
  double generate_ms;   /* time spent generating (wall clock, ms) */
  int32_t stop;         /* enum rwkv_stop_reason */
} rwkv_generate_result;

/* Tokenizes `len` bytes of UTF-8 `text` (refused, naming the byte offset,
 * unless valid UTF-8) and evaluates them from `state` as rwkv_state_eval
 * (mode, chunk), leaving the logits after the text in `logits`. Adds the
 * token count and time to `*result` if it is not NULL (not zeroed). An
 * empty text (no tokens) changes nothing. Returns RWKV_OK,
 * RWKV_ERROR_ARGUMENT, or RWKV_ERROR_MEMORY as rwkv_state_eval. */
int rwkv_feed_text(rwkv_state *state, const rwkv_tokenizer *tok,
                   const char *text, size_t len, float *logits, int mode,
                   size_t chunk, rwkv_generate_result *result, char *err,
                   size_t errlen);

/* Generates text from `logits` (those after what `state` has seen): samples
 * a token with the sampler of p->sampling, stops before feeding it if it is
 * end of text or a stop token, else feeds it (RNN mode), records it with
 * ChatRWKV's occurrence weight, and streams its bytes to `emit`; until
 * max_tokens, a stop string, or `emit` returns nonzero. Token ids the
 * tokenizer does not know (logits past its n_tokens) are never sampled.
 * Every byte emitted was fed to the model, so the state continues the text
 * emitted (plus a stop string, which is fed but not emitted). Fills
 * `*result` (if not NULL; n_fed 0). Returns RWKV_OK,
 * RWKV_ERROR_ARGUMENT for bad parameters (the state untouched), or the
 * status of a failed feed (RWKV_ERROR_MEMORY, as rwkv_state_eval). */
int rwkv_generate(rwkv_state *state, const rwkv_tokenizer *tok, float *logits,
                  const rwkv_generate_params *p, rwkv_emit_fn emit, void *user,
                  rwkv_generate_result *result, char *err, size_t errlen);

/* One chat turn in RWKV's format, as ChatRWKV: the message is cleaned (\r
 * dropped, blank lines collapsed, leading/trailing white space trimmed);
 * empty, it is skipped (stop RWKV_STOP_EMPTY, nothing fed or emitted).
 * Otherwise "User: MESSAGE\n\nAssistant:" is fed (mode, chunk), "Assistant:"
 * is emitted (if `emit` returns nonzero there, e.g. Ctrl-C while the message
 * was fed, the reply has no token: stop RWKV_STOP_CALLBACK), and the reply
 * generated as rwkv_generate with "\n\n" added to
 * the stop strings and end of text banned. A reply that did not end at a
 * stop string (max_tokens, the callback) gets "\n\n" fed after it, so that
 * the state is ready for the next turn. A message that is not valid UTF-8 is
 * refused with RWKV_ERROR_ARGUMENT ("the message is not valid UTF-8: ...")
 * and nothing fed. */
int rwkv_chat_turn(rwkv_state *state, const rwkv_tokenizer *tok,
                   float *logits, const char *message, size_t len,
                   const rwkv_generate_params *p, int mode, size_t chunk,
                   rwkv_emit_fn emit, void *user,
                   rwkv_generate_result *result, char *err, size_t errlen);

/* Reports progress (tokens done of total); nonzero stops early. */
typedef int (*rwkv_progress_fn)(void *user, size_t done, size_t total);

typedef struct rwkv_perplexity_result {
  uint64_t n_tokens;      /* tokens of the text */
  uint64_t n_predictions; /* tokens scored: n_tokens - 1 unless stopped */
  double nll;             /* sum of -log p(token | the tokens before), nats */
  double perplexity;      /* exp(nll / n_predictions); 0 if none */
} rwkv_perplexity_result;

/* Scores tokens[1..n) given the tokens before each, from `state`: sequence
 * mode with the logits of every position (rwkv_state_eval_all) on chunks of
 * `chunk` tokens (0: rwkv_default_chunk; capped at rwkv_max_chunk and at
 * RWKV_SCRATCH_BUDGET / (4 * n_vocab)), so the logits held, chunk * n_vocab
 * floats, stay within RWKV_SCRATCH_BUDGET. The state
 * ends after tokens[0..n-1) (the last token is scored, not fed). `progress`
 * (may be NULL) is called after each chunk; nonzero stops there, with the
 * predictions so far in `*r`. Returns RWKV_OK, RWKV_ERROR_ARGUMENT (fewer
 * than 2 tokens, an id out of range: the state untouched), or
 * RWKV_ERROR_MEMORY (the chunk that failed is not fed: the state has seen
 * the tokens scored so far, `*r`). */
int rwkv_perplexity(rwkv_state *state, const int32_t *tokens, size_t n,
                    size_t chunk, rwkv_progress_fn progress, void *user,
                    rwkv_perplexity_result *r, char *err, size_t errlen);

/*===----------------------------------------------------------------------===*
 * Description and benchmark (the command line's --info and --bench)
 *===----------------------------------------------------------------------===*/

/* Writes the description of the model linked into this executable to `out`:
 * name, versions, backends, sizes, hash, weights, the state slots (one line
 * each) and the linked tokenizer ("tokenizer: none (why)" without one).
 * Reads only the static descriptor: needs no open model. Returns RWKV_OK,
 * or RWKV_ERROR_IO when `out` has its error flag set. Thread-safe as `out`. */
int rwkv_model_describe(FILE *out);

typedef struct rwkv_bench_result {
  uint64_t n_tokens;       /* tokens of each measurement */
  double decode_ms;        /* n_tokens one-token RNN calls (wall clock) */
  double prefill_ms;       /* n_tokens in sequence mode, default chunk */
  uint64_t chunk;          /* the caller's chunk (0: none) */
  double prefill_chunk_ms; /* n_tokens in chunks of `chunk` (if nonzero) */
  double total_ms;         /* the whole benchmark, warm-ups included */
  uint64_t peak_rss_kib;   /* the process's peak resident memory (KiB) */
} rwkv_bench_result;

/* Measures `model` from its initial state on a state of its own, after one
 * warm-up call each: decode (n one-token RNN calls through rwkv_state_eval,
 * each token the argmax of the last logits) and prefill (n tokens i %
 * n_vocab in sequence mode, chunk 0, and again in chunks of `chunk` if it is
 * nonzero). Returns RWKV_OK or RWKV_ERROR_ARGUMENT (n == 0). Thread-safe. */
int rwkv_bench(const rwkv_model *model, uint64_t n, size_t chunk,
               rwkv_bench_result *r, char *err, size_t errlen);

/* Long texts from files, in constant memory (docs/runtime.md, "Long
 * inputs"): the file `path` is read in pieces of at most 1 MiB, each cut
 * where no token spans the cut (after a '\n' followed by a byte b that is
 * not white space, where no token holds '\n' then b; a line longer than a
 * piece is cut before a UTF-8 character, which may change its tokens there),
 * checked (valid UTF-8, no NUL byte: not text) and tokenized on its own, so
 * memory does not grow with the file, which may be a pipe or any stream.
 * Errors name the file (and the byte offset in it): RWKV_ERROR_IO (cannot
 * read), RWKV_ERROR_FORMAT (empty, a NUL byte, not UTF-8); what was fed
 * before an error stays fed. `progress` (may be NULL) is called after each
 * piece, resp. chunk, with `total` 0 (unknown); nonzero stops there. */

/* rwkv_feed_text over the file: feeds every piece (mode, chunk), adding the
 * tokens and time to `*result` if not NULL; `done` of `progress` is bytes
 * read. Returns RWKV_OK when the file was fed (or `progress` stopped it). */
int rwkv_feed_file(rwkv_state *state, const rwkv_tokenizer *tok,
                   const char *path, float *logits, int mode, size_t chunk,
                   rwkv_progress_fn progress, void *user,
                   rwkv_generate_result *result, char *err, size_t errlen);

/* rwkv_perplexity over the file's tokens: the same score as the whole text
 * at once (each piece is scored after the last token of the one before),
 * with `done` of `progress` the predictions so far. Fewer than 2 tokens in
 * all: RWKV_ERROR_ARGUMENT. */
int rwkv_perplexity_file(rwkv_state *state, const rwkv_tokenizer *tok,
                         const char *path, size_t chunk,
                         rwkv_progress_fn progress, void *user,
                         rwkv_perplexity_result *r, char *err, size_t errlen);

/*===----------------------------------------------------------------------===*
 * Text sessions (docs/runtime.md, "Text sessions")
 *
 * A session is what one conversation holds between calls (a chat, a
 * completion, a server's client): a state of the model, the tokenizer it
 * reads and writes text with, the logits after what the state has seen, and
 * the totals of what was fed and generated. Its calls are the text calls
 * above with the state, tokenizer and logits buffer taken from the session.
 * Ownership: the caller owns the session (rwkv_session_free); the session
 * refers to `model` and `tok`, which must stay open until it is freed.
 * Thread-safety: as a state handle: one call at a time per session;
 * distinct sessions, also of one model and tokenizer, may run at once.
 *===----------------------------------------------------------------------===*/

typedef struct rwkv_session rwkv_session;

/* Creates a session in the model's initial state, its logits all zero (as
 * if nothing had been seen: feed text before generating). Returns a handle
 * owned by the caller, or NULL with a message in `err` (a null argument, a
 * tokenizer with more tokens than the model has logits, out of memory).
 * Thread-safe. */
rwkv_session *rwkv_session_new(const rwkv_model *model,
                               const rwkv_tokenizer *tok, char *err,
                               size_t errlen);

/* Frees the session and its state; accepts NULL. */
void rwkv_session_free(rwkv_session *s);

/* The session's state, owned by the session: save or load it with
 * rwkv_state_save_file / rwkv_state_load_file (after a load, feed text
 * before generating: the logits are those of what was fed before). */
rwkv_state *rwkv_session_state(rwkv_session *s);

/* The logits after what the session has fed or generated (n_vocab floats,
 * owned by the session, valid until it is freed). */
const float *rwkv_session_logits(const rwkv_session *s);

/* The totals over every call of the session: tokens fed and their time,
 * tokens generated and their time; `stop` is that of the last generation or
 * chat turn. */
rwkv_generate_result rwkv_session_totals(const rwkv_session *s);

/* rwkv_feed_text and rwkv_feed_file on the session. */
int rwkv_session_feed(rwkv_session *s, const char *text, size_t len, int mode,
                      size_t chunk, char *err, size_t errlen);
int rwkv_session_feed_file(rwkv_session *s, const char *path, int mode,
                           size_t chunk, rwkv_progress_fn progress,
                           void *user, char *err, size_t errlen);

/* rwkv_generate and rwkv_chat_turn on the session; `result` (may be NULL)
 * gets this call's counts, the session's totals add them. */
int rwkv_session_generate(rwkv_session *s, const rwkv_generate_params *p,
                          rwkv_emit_fn emit, void *user,
                          rwkv_generate_result *result, char *err,
                          size_t errlen);
int rwkv_session_chat(rwkv_session *s, const char *message, size_t len,
                      const rwkv_generate_params *p, int mode, size_t chunk,
                      rwkv_emit_fn emit, void *user,
                      rwkv_generate_result *result, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* RWKV_RUNTIME_H */
