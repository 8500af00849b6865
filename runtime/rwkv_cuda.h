//===- rwkv_cuda.h - The runtime's CUDA backend (internal) ----------------===//
//
// Not part of the API: what rwkv_runtime.cpp calls to run a model whose
// descriptor carries a CUDA program (rwkv_abi.h, "The CUDA backend").
//
//   driver   libcuda.so.1 (or $RWKV_CUDA_LIBRARY) opened with dlopen once
//            per process; every function of rwkv_cuda_driver.h looked up
//            by its ABI name; cuInit
//   Model    device 0's primary context, the image picked for the device
//            (pickImage), its module and kernels, the weight image and the
//            initial state uploaded once
//   State    a state on the device: the state, a stream, the token, logits
//            and scratch buffers of the largest call so far, and the decode
//            step (T = 1, R = 1) captured as a CUDA graph
//
// The plan interpreter (runPlan in rwkv_cuda.cpp) evaluates T tokens with
// the program's steps; eval cuts a call into chunks as the CPU path does.
//
// Errors: every function that can fail returns an RWKV_* status with one
// line in `err`: a failed driver call names the call and its CUresult
// ("cuLaunchKernel failed: CUDA_ERROR_LAUNCH_FAILED (unspecified launch
// failure)"); a failed allocation is RWKV_ERROR_MEMORY, the state as before
// the call. Thread-safety: a Model is shared by its states, which may run on
// distinct threads at once; a State is used by one call at a time.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDA_H
#define RWKV_CUDA_H

#include "rwkv_abi.h"

#include <cstddef>
#include <cstdint>

namespace rwkv_cuda {

struct Model;
struct State;

/// Checks the CUDA program of `d` against the descriptor: images, kernel
/// names, loops (balanced, not nested), kernel and argument indices, grids,
/// blocks, and that every weight, state and scratch argument points inside
/// its buffer for every layer of its loop. RWKV_OK or RWKV_ERROR_MODEL.
int checkProgram(const rwkv_model_desc &d, char *err, size_t errlen);

/// The index of the image of `p` to load on a device of compute capability
/// major.minor: an emulator image if there is one; else the cubin of the
/// device's major with the highest minor <= the device's; else the PTX of
/// the highest arch <= the device's. -1 with the reason in `err` when none
/// fits ("GPU sm_75 is older than the kernels of this model (sm_80..sm_90)").
int pickImage(const rwkv_cuda_program &p, int major, int minor, char *err,
              size_t errlen);

/// Opens the CUDA backend for the model `d` (checkProgram first): loads the
/// driver, checks it (CUDA 13, R580 or newer) and device 0, loads the image
/// and every kernel, uploads `weights` (weights_bytes) and `initial` (the
/// initial state, state_floats). On success *out owns all of it (close).
/// RWKV_ERROR_DEVICE (no driver, no device, too old a driver or device, a
/// failed call), RWKV_ERROR_MEMORY or RWKV_ERROR_MODEL.
int open(const rwkv_model_desc &d, const uint8_t *weights,
         const float *initial, Model **out, char *err, size_t errlen);

/// Frees the device memory, the module and the context of `m` (null: no-op).
/// Every state of it must be freed first.
void close(Model *m);

/// "NAME, compute capability 9.0, 139.8 GiB, driver 13.0, kernels: cubin
/// sm_90" (owned by the model).
const char *describe(const Model &m);

/// A state of `m` set to the initial state. `graphs` false: decode runs the
/// plan's launches one by one instead of replaying a captured graph (the
/// host-buffer calls make a state per call, which would not replay).
int stateNew(Model &m, bool graphs, State **out, char *err, size_t errlen);
void stateFree(State *s);

int stateClear(State &s, char *err, size_t errlen);
/// dst = src (same model).
int stateCopy(State &dst, const State &src, char *err, size_t errlen);
/// Downloads / uploads the state_floats floats of the host layout.
int stateRead(const State &s, float *host, char *err, size_t errlen);
int stateWrite(State &s, const float *host, char *err, size_t errlen);

enum class Mode {
  Rnn, // T = 1 per token (the decode graph), the logits after the last
  Seq, // chunks of `step` tokens with R = 1, the logits after the last
  All  // chunks with R = T, every position's logits (n, n_vocab)
};

/// Evaluates the n >= 1 checked token ids from the state, writing the
/// logits to the host buffer `logits` (n_vocab floats; All: n * n_vocab).
/// Buffers are grown before anything runs, so a failed allocation returns
/// RWKV_ERROR_MEMORY with the state unchanged; a failed launch or copy
/// leaves the state undefined (RWKV_ERROR_DEVICE). `fn` names the API call
/// in messages.
int eval(State &s, const int32_t *tokens, size_t n, float *logits, Mode mode,
         size_t step, const char *fn, char *err, size_t errlen);

} // namespace rwkv_cuda

#endif // RWKV_CUDA_H
