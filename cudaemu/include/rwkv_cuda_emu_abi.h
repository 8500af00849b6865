/*===- rwkv_cuda_emu_abi.h - Kernel image <-> CUDA emulator ABI ---*- C -*-===*
 *
 * The binary contract between CUDA kernel text compiled as host C++ (with
 * rwkv_cuda_emu.h: "the image") and the emulator that runs it (the fiber
 * scheduler of cudaemu/lib, inside libcuda-emu.so.1 or linked into a test).
 * Both sides include this header; docs/cuda-emulator.md describes it.
 *
 *   image                                    emulator
 *   rwkv_emu_module {magic, kernels} ──────► cuModuleLoadData checks the magic
 *   rwkv_emu_kernel {name, thunk}    ◄────── cuModuleGetFunction by name
 *   thunk(worker, kernelParams)      ◄────── once per emulated thread (fiber)
 *   worker->api->syncthreads(...)    ──────► switch to the scheduler
 *   threadIdx: worker->current       ◄────── updated at every switch
 *
 * Version 1. A change of any struct here bumps RWKV_EMU_ABI_VERSION; the
 * emulator refuses images of another version (CUDA_ERROR_INVALID_IMAGE).
 *
 *===----------------------------------------------------------------------===*/

#ifndef RWKV_CUDA_EMU_ABI_H
#define RWKV_CUDA_EMU_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The first 8 bytes of an emulator module image. A real cubin starts with
 * "\x7fELF", a fatbin with 0x50ed55ba, PTX with text: none of them match. */
#define RWKV_EMU_MAGIC "RWKVEMU1"
#define RWKV_EMU_ABI_VERSION 1u

typedef struct rwkv_emu_uint3 {
  unsigned x, y, z;
} rwkv_emu_uint3;

/* The emulated thread that is running; what threadIdx, blockIdx, blockDim
 * and gridDim read. */
typedef struct rwkv_emu_thread {
  rwkv_emu_uint3 thread_idx;
  rwkv_emu_uint3 block_idx;
  rwkv_emu_uint3 block_dim;
  rwkv_emu_uint3 grid_dim;
} rwkv_emu_thread;

/* Warp collectives: every lane named in the mask must arrive at the same
 * one (same kind, mask, width and source line) before any lane leaves it. */
typedef enum rwkv_emu_warp_kind {
  RWKV_EMU_SHFL_IDX = 0,  /* __shfl_sync:      in T, out T, arg srcLane */
  RWKV_EMU_SHFL_UP = 1,   /* __shfl_up_sync:   in T, out T, arg delta */
  RWKV_EMU_SHFL_DOWN = 2, /* __shfl_down_sync: in T, out T, arg delta */
  RWKV_EMU_SHFL_XOR = 3,  /* __shfl_xor_sync:  in T, out T, arg laneMask */
  RWKV_EMU_BALLOT = 4,    /* __ballot_sync:    in int, out unsigned */
  RWKV_EMU_ANY = 5,       /* __any_sync:       in int, out int */
  RWKV_EMU_ALL = 6,       /* __all_sync:       in int, out int */
  RWKV_EMU_SYNCWARP = 7,  /* __syncwarp:       no data */
  RWKV_EMU_MMA_F16 = 8,   /* rwkv_mma_m16n8k16_f32_f16:  in rwkv_emu_mma_in,
                             out float[4]; mask 0xffffffff */
  RWKV_EMU_MMA_BF16 = 9   /* rwkv_mma_m16n8k16_f32_bf16: the same */
} rwkv_emu_warp_kind;

typedef struct rwkv_emu_warp_op {
  uint32_t kind;  /* rwkv_emu_warp_kind */
  uint32_t mask;  /* the lanes that take part */
  int32_t arg;    /* srcLane, delta or laneMask (shuffles) */
  int32_t width;  /* shuffles: 1, 2, 4, ..., 32 */
  uint32_t bytes; /* shuffles: sizeof(T), 4 or 8 */
  const char *file; /* the call site, for reports */
  int32_t line;
  const char *name; /* "__shfl_xor_sync", ... */
} rwkv_emu_warp_op;

/* The mma operands of one lane, in the PTX fragment layout of
 * mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32. */
typedef struct rwkv_emu_mma_in {
  uint32_t a[4]; /* 8 halves of A (16x16, row major), low half first */
  uint32_t b[2]; /* 4 halves of B (16x8, column major) */
  float c[4];    /* the accumulator fragment */
} rwkv_emu_mma_in;

struct rwkv_emu_worker;

/* What an image calls; owned by the emulator, valid while it runs a
 * thunk. Every function is called from an emulated thread (a fiber). */
typedef struct rwkv_emu_api {
  uint32_t abi_version;
  /* __syncthreads(): returns once every thread of the block arrived at the
   * same call site; a divergent or unreachable barrier ends the launch
   * with a report (the call does not return). */
  void (*syncthreads)(struct rwkv_emu_worker *w, const char *file, int line);
  /* A warp collective: `in` points to op->bytes (or the kind's) input
   * bytes of this lane, `out` receives the lane's result. */
  void (*warp_op)(struct rwkv_emu_worker *w, const rwkv_emu_warp_op *op,
                  const void *in, void *out);
  /* The block's static shared array for `key` (one per declaration),
   * allocated and poisoned (0xff bytes: NaN for f32/f16/bf16) by the first
   * thread of the block that asks; `align` is a power of two <= 128. */
  void *(*shared_array)(struct rwkv_emu_worker *w, const void *key,
                        size_t bytes, size_t align, const char *file,
                        int line);
  /* The launch's dynamic shared memory (16-byte aligned, poisoned before
   * every block; NULL when the launch asked for 0 bytes). */
  void *(*dynamic_shared)(struct rwkv_emu_worker *w);
  /* __trap() and failed device-side checks: ends the launch with
   * `message` (does not return). */
  void (*trap)(struct rwkv_emu_worker *w, const char *file, int line,
               const char *message);
} rwkv_emu_api;

/* One per OS thread that runs emulated threads. `current` changes at every
 * switch between emulated threads; an image keeps the worker pointer its
 * thunk received in a thread_local. */
typedef struct rwkv_emu_worker {
  const rwkv_emu_api *api;
  const rwkv_emu_thread *current;
} rwkv_emu_worker;

/* Runs the kernel body for worker->current, reading each parameter from
 * kernelParams[i] as cuLaunchKernel passes them. */
typedef void (*rwkv_emu_thunk)(rwkv_emu_worker *w, void *const *params);

typedef struct rwkv_emu_param {
  uint32_t size, align;
} rwkv_emu_param;

typedef struct rwkv_emu_kernel {
  const char *name;             /* the extern "C" kernel name */
  rwkv_emu_thunk thunk;
  uint32_t param_count;
  const rwkv_emu_param *params; /* param_count entries */
} rwkv_emu_kernel;

/* The module image handed to cuModuleLoadData in an emulator build. */
typedef struct rwkv_emu_module {
  char magic[8];                /* RWKV_EMU_MAGIC, not NUL-terminated */
  uint32_t abi_version;         /* RWKV_EMU_ABI_VERSION */
  uint32_t kernel_count;
  const rwkv_emu_kernel *kernels;
} rwkv_emu_module;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* RWKV_CUDA_EMU_ABI_H */
