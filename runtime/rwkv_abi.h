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

/* Version 2: the backends field; rwkv_model_forward_all.
 * Version 3: RWKV_BACKEND_CUDA and rwkv_model_desc.cuda.
 * Version 4: rwkv_model_desc.entries; rwkv_model_forward_batch. */
#define RWKV_ABI_VERSION 4

/* What the generated code of a model runs on (bits of
 * rwkv_model_desc.backends). */
enum rwkv_backend {
  RWKV_BACKEND_CPU = 1, /* rwkv_model_forward_* are host code */
  RWKV_BACKEND_CUDA = 2 /* rwkv_model_desc.cuda: kernels and launch plan */
};

/* Entry points of the CPU code beyond forward_seq, forward_one and
 * forward_all, which every model with RWKV_BACKEND_CPU defines (bits of
 * rwkv_model_desc.entries). */
enum rwkv_entry {
  RWKV_ENTRY_FORWARD_BATCH = 1, /* rwkv_model_forward_batch */
  RWKV_ENTRY_FORWARD_PREFIX = 2 /* rwkv_model_forward_prefix */
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
  const struct rwkv_cuda_program *cuda; /* RWKV_BACKEND_CUDA, else null */
  uint32_t entries; /* bitmask of enum rwkv_entry (0 without CPU code) */
} rwkv_model_desc;

/* A weights file (weights_file): the weight image, weights_bytes bytes,
 * then this trailer, which names the model the image was packed for. The
 * runtime maps the image and refuses a file whose trailer does not match
 * the descriptor: the weights of another model or build of the same size
 * would otherwise load and give wrong logits. */
#define RWKV_WEIGHTS_MAGIC "rwkvcwts"
typedef struct rwkv_weights_trailer {
  char magic[8];          /* RWKV_WEIGHTS_MAGIC, without its NUL */
  uint64_t weights_bytes; /* the descriptor's weights_bytes */
  uint64_t model_hash;    /* the descriptor's model_hash */
  uint64_t reserved;      /* 0 */
} rwkv_weights_trailer;

/*===----------------------------------------------------------------------===*
 * The CUDA backend (RWKV_BACKEND_CUDA)
 *
 * The model's kernels, compiled by rwkvc (NVRTC: cubins and PTX; or, in an
 * emulator build, the host-compiled kernels of docs/cuda-emulator.md), and
 * the launch plan that evaluates T >= 1 tokens with them. The runtime loads
 * one image with cuModuleLoadData, looks every kernel up by name and runs
 * the plan's steps in order on the state's stream:
 *
 *   for each step:
 *     LAUNCH   if `when` holds: cuLaunchKernel(kernel, grid(T, R), block,
 *              shared_bytes, args evaluated for the current layer k)
 *     LOOP     the steps up to the matching END_LOOP run `count` times,
 *              k = 0 .. count-1 (loops do not nest; outside loops k = 0)
 *
 * T is the number of tokens of the call, R the number of rows of logits it
 * wants: 1 (the logits after the last token) or T (after every token,
 * rwkv_model_forward_all's). Every kernel parameter is 8 bytes: a device
 * pointer or a long long.
 *
 * Device memory: the weight image (weights_bytes, uploaded once), the state
 * (state_floats, same layout as the CPU's: a state moves between backends
 * as it is), a token buffer (T int32), a logits buffer (R * n_vocab floats)
 * and the scratch of the activations: scratch_bytes_per_token * cap bytes,
 * cap >= T the capacity it was allocated for (an activation that takes b
 * bytes per token at per-token offset o lies at o * cap; o and b are
 * multiples of 16). A scratch argument's value is such an o.
 *===----------------------------------------------------------------------===*/

enum rwkv_cuda_image_kind {
  RWKV_CUDA_IMAGE_CUBIN = 0,   /* runs on arch/10.x, x >= arch%10 */
  RWKV_CUDA_IMAGE_PTX = 1,     /* NUL-terminated; JIT on >= arch */
  RWKV_CUDA_IMAGE_EMULATOR = 2 /* an rwkv_emu_module (libcuda-emu only) */
};

typedef struct rwkv_cuda_image {
  int32_t kind;     /* enum rwkv_cuda_image_kind */
  int32_t arch;     /* 10 * major + minor: 80, 86, 89, 90; emulator: 0 */
  const void *data; /* what cuModuleLoadData receives */
  uint64_t size;    /* bytes (PTX: with its NUL; emulator: 0) */
} rwkv_cuda_image;

/* What a grid dimension is: count * ceil(source / per). */
enum rwkv_cuda_dim_source {
  RWKV_CUDA_DIM_ONE = 0, /* count (per is 1) */
  RWKV_CUDA_DIM_T = 1,   /* tokens of the call */
  RWKV_CUDA_DIM_R = 2    /* rows of logits of the call (1 or T) */
};

typedef struct rwkv_cuda_dim {
  int32_t count;
  int32_t per;
  int32_t source; /* enum rwkv_cuda_dim_source */
} rwkv_cuda_dim;

enum rwkv_cuda_step_kind {
  RWKV_CUDA_LAUNCH = 0,
  RWKV_CUDA_LOOP = 1,    /* `count` is the number of iterations */
  RWKV_CUDA_END_LOOP = 2
};

/* When a LAUNCH step runs (kernels specialised for one row). */
enum rwkv_cuda_when {
  RWKV_CUDA_ALWAYS = 0,
  RWKV_CUDA_T_ONE = 1,  /* T == 1 */
  RWKV_CUDA_T_MANY = 2, /* T > 1 */
  RWKV_CUDA_R_ONE = 3,  /* R == 1 */
  RWKV_CUDA_R_MANY = 4  /* R > 1 */
};

enum rwkv_cuda_arg_kind {
  RWKV_CUDA_ARG_WEIGHTS = 0, /* weights + value + k * layer_stride (bytes) */
  RWKV_CUDA_ARG_STATE = 1,   /* (float *)state + value + k * layer_stride */
  RWKV_CUDA_ARG_SCRATCH = 2, /* scratch + value * cap (bytes) */
  RWKV_CUDA_ARG_TOKENS = 3,  /* the tokens (const int32_t *, T) */
  RWKV_CUDA_ARG_LOGITS = 4,  /* the logits (float *, R * n_vocab) */
  RWKV_CUDA_ARG_T = 5,       /* long long T */
  RWKV_CUDA_ARG_R = 6,       /* long long R */
  RWKV_CUDA_ARG_INT = 7      /* long long value (0 is also a null pointer) */
};

typedef struct rwkv_cuda_arg {
  int32_t kind; /* enum rwkv_cuda_arg_kind */
  int32_t reserved;
  int64_t value;
  int64_t layer_stride;
} rwkv_cuda_arg;

typedef struct rwkv_cuda_step {
  int32_t kind;          /* enum rwkv_cuda_step_kind */
  int32_t when;          /* LAUNCH: enum rwkv_cuda_when */
  int32_t kernel;        /* LAUNCH: index into kernel_names */
  int32_t count;         /* LOOP: iterations */
  rwkv_cuda_dim grid[3]; /* LAUNCH: x, y, z */
  uint32_t block[3];     /* LAUNCH: x, y, z */
  uint32_t shared_bytes; /* LAUNCH: dynamic shared memory */
  int32_t first_arg;     /* LAUNCH: its arguments are args[first_arg ..] */
  int32_t n_args;
} rwkv_cuda_step;

typedef struct rwkv_cuda_program {
  int32_t n_images;
  int32_t n_kernels;
  const rwkv_cuda_image *images;
  const char *const *kernel_names; /* n_kernels extern "C" names */
  int64_t n_steps;
  const rwkv_cuda_step *steps;
  int64_t n_args;
  const rwkv_cuda_arg *args;
  int64_t scratch_bytes_per_token;
  uint32_t max_dynamic_shared; /* the largest shared_bytes of a step */
  uint32_t reserved;
} rwkv_cuda_program;

/* Defined by the generated object. */
extern const rwkv_model_desc rwkv_model_descriptor;

/* Defined by the generated object of a model with RWKV_BACKEND_CPU (the
 * runtime declares them weak). Evaluates n_tokens >= 1 tokens in sequence (GPT) mode: projections over
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

/* The same as rwkv_model_forward_seq without the logits: updates `state`
 * only, and skips the head (what the runtime runs for every chunk of a
 * sequence call but the last: the 0.1B shape's f16 head is 100 MB that
 * each chunk read from memory). Defined when rwkv_model_desc.entries has
 * RWKV_ENTRY_FORWARD_PREFIX. Thread-compatible. */
void rwkv_model_forward_prefix(const uint8_t *weights, float *state,
                               const int32_t *tokens, int64_t n_tokens);

/* Decode of `batch` >= 1 independent sequences in one call: row b is one
 * token, tokens[b], of a sequence whose state is states[b] (each
 * state_floats floats; all distinct). Every product reads its weights once
 * for all rows (matrix-matrix work, as forward_all over `batch` tokens);
 * token shifts and recurrences read and update row b's own state. Writes
 * the logits after each row's token to logits (batch x n_vocab floats, row
 * b for sequence b). The result for each row equals forward_one on its
 * state alone, up to the summation order of the products (the
 * matrix-matrix tiles of forward_seq). Takes its scratch (in proportion to
 * `batch`) from _mlir_memref_to_llvm_alloc before it reads or writes any
 * state. Defined when rwkv_model_desc.entries has RWKV_ENTRY_FORWARD_BATCH.
 * Thread-compatible: concurrent calls need distinct states. */
void rwkv_model_forward_batch(const uint8_t *weights, float *const *states,
                              const int32_t *tokens, int64_t batch,
                              float *logits);

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
