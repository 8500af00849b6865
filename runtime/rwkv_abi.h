/*===- rwkv_abi.h - Contract between generated code and the runtime -------===*
 *
 * A compiled model is an object file produced by rwkvc's codegen. It defines
 * the symbols below; the runtime (runtime/) links against them. Everything is
 * C ABI so that the runtime can be C or C++ and the generated code LLVM IR.
 *
 * Memory:
 *   weights  the packed weight image (rwkv_model_descriptor.weights_bytes
 *            bytes, 64-byte aligned). Either embedded in the executable
 *            (symbol rwkv_weights_blob, defined by the weights object with
 *            rwkv_weights_blob_size) or memory-mapped from a file written
 *            beside the executable or shared library.
 *   state    state_floats floats laid out as the slot table says; owned by
 *            the caller, updated in place by every forward call.
 *   scratch  the activations of a sequence call (in proportion to its
 *            tokens), taken from and returned to the runtime through
 *            _mlir_memref_to_llvm_alloc / _mlir_memref_to_llvm_free; the
 *            generated code frees all of it before it returns. One-token
 *            calls keep their activations on the stack.
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_ABI_H
#define RWKV_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2: the backends field; rwkv_model_forward_all. */
#define RWKV_ABI_VERSION 2

/* What the generated code of a model runs on (bits of
 * rwkv_model_desc.backends). */
enum rwkv_backend {
  RWKV_BACKEND_CPU = 1 /* rwkv_model_forward_* are host code */
};

/* How a state slot starts. */
enum rwkv_slot_init {
  RWKV_SLOT_ZERO = 0,      /* all zero */
  RWKV_SLOT_NEG_LARGE = 1, /* all -1e30 (RWKV-4's running maximum pp) */
  RWKV_SLOT_WEIGHT = 2     /* copied from the weight image (time_state) */
};

typedef struct rwkv_state_slot {
  const char *name;           /* "state.<layer>.<att|ffn>.<slot>" */
  int64_t offset;             /* in floats from the start of the state */
  int64_t size;               /* in floats */
  int32_t init;               /* enum rwkv_slot_init */
  int64_t init_weight_offset; /* RWKV_SLOT_WEIGHT: byte offset of the f32
                                 initial value in the weight image */
} rwkv_state_slot;

typedef struct rwkv_model_desc {
  uint32_t abi_version;     /* RWKV_ABI_VERSION */
  uint32_t backends;        /* bitmask of enum rwkv_backend */
  const char *rwkv_version; /* "4", "5.0", "5.1", "5.2", "6", "7" */
  const char *model_name;   /* file name of the source checkpoint */
  int64_t n_vocab;          /* V: logits per token */
  int64_t n_embd;           /* C */
  int64_t n_layer;          /* L */
  int64_t state_floats;     /* total floats of the state */
  int64_t weights_bytes;    /* size of the packed weight image */
  uint64_t model_hash;      /* hash of the weight image and state layout */
  int32_t weights_embedded; /* 1: rwkv_weights_blob is linked in */
  const char *weights_file; /* 0: file name of the weight image, looked up
                               beside the executable or shared library */
  int64_t n_slots;
  const rwkv_state_slot *slots; /* n_slots entries, in state order */
} rwkv_model_desc;

/* Defined by the generated object. */
extern const rwkv_model_desc rwkv_model_descriptor;

/* Evaluates n_tokens >= 1 tokens in sequence (GPT) mode: projections over
 * all tokens as matrix-matrix work, the recurrence as a scan. Reads and
 * updates `state`; writes the logits after the last token (n_vocab floats)
 * to `logits`. Thread-compatible: concurrent calls need distinct states. */
void rwkv_model_forward_seq(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits);

/* The same as rwkv_model_forward_seq, but writes the logits after every
 * token: `logits` holds n_tokens * n_vocab floats, row t the logits after
 * tokens[0..t] (perplexity, scoring). */
void rwkv_model_forward_all(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits);

/* The same for exactly one token (RNN mode), specialised for T = 1. */
void rwkv_model_forward_one(const uint8_t *weights, float *state,
                            int32_t token, float *logits);

/* Defined by the runtime, called by the generated code: memref.alloc and
 * memref.dealloc lower to them (rwkv-loops-to-llvm, MLIR's generic
 * allocation functions). The allocation returns `size` bytes aligned to 16
 * (the code aligns its buffers further itself) and never returns NULL: when
 * memory runs out during a forward call made by the runtime's evaluation
 * (rwkv_eval, rwkv_state_eval, ...), it does not return at all; the runtime
 * abandons the call, frees the blocks it took and reports RWKV_ERROR_MEMORY.
 * A forward call made directly, outside the runtime, aborts with a message
 * instead. Thread-safe. */
void *_mlir_memref_to_llvm_alloc(size_t size);
void _mlir_memref_to_llvm_free(void *ptr);

/* Defined by the tokenizer object rwkvc links into the executable (absent
 * when the model was compiled without a tokenizer: the runtime declares both
 * weak). The blob is the compiled tokenizer of docs/tokenizers.md, any
 * alignment (8 recommended); rwkv_tokenizer_blob_size is its size in bytes. */
extern const uint8_t rwkv_tokenizer_blob[];
extern const uint64_t rwkv_tokenizer_blob_size;

#ifdef __cplusplus
}
#endif

#endif /* RWKV_ABI_H */
