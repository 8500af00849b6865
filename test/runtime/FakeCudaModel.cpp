//===- FakeCudaModel.cpp - A compiled model with a CUDA program, faked ----===//
//
// Defines what rwkvc's generated objects define (rwkv_abi.h) for the toy
// model of FakeCudaModel.h, with the CUDA program an emitter would write:
// the kernels of FakeCudaKernels.cu (an emulator image) and this plan:
//
//   0 LAUNCH fake_cuda_embed      grid (ceil(T/2)), block (C, 2)
//   1 LAUNCH fake_cuda_prep       grid (1, ceil(T/4)), block (C, 4)
//   2 LOOP   L                    k = layer
//   3 LAUNCH fake_cuda_layer_one  when T == 1: weights, state + k * stride
//   4 LAUNCH fake_cuda_layer_seq  when T > 1
//   5 END_LOOP
//   6 LAUNCH fake_cuda_head       when R > 1: grid (ceil(V/8), R), 64 KiB
//   7 LAUNCH fake_cuda_head_last  when R == 1: grid (ceil(V/8))  shared
//
// Built as fake-cuda-model (CUDA only: no rwkv_model_forward_*, which the
// runtime declares weak) and, with FAKE_CUDA_CPU, as fake-cuda-cpu-model
// and into CudaRuntimeTest (CPU code too: the reference as forward_*).
//
//===----------------------------------------------------------------------===//

#include "FakeCudaModel.h"
#include "rwkv_abi.h"
#include "rwkv_cuda_emu_abi.h"

#include <cstddef>

using namespace fake_cuda;

extern "C" const rwkv_emu_module fake_cuda_module; // FakeCudaKernels.cu

namespace {

#define FAKE_LAYER_SLOTS(k)                                                    \
  {"state." #k ".att.x", k * kLayerFloats, kEmbd, RWKV_SLOT_ZERO, 0},          \
      {"state." #k ".att.s", k * kLayerFloats + kEmbd, kEmbd,                  \
       RWKV_SLOT_WEIGHT,                                                       \
       int64_t(offsetof(Weights, layers) + k * sizeof(Layer) +                 \
               offsetof(Layer, initS))},                                       \
      {"state." #k ".ffn.m", k * kLayerFloats + 2 * kEmbd, kEmbd,              \
       RWKV_SLOT_NEG_LARGE, 0}
const rwkv_state_slot kSlots[] = {FAKE_LAYER_SLOTS(0), FAKE_LAYER_SLOTS(1),
                                  FAKE_LAYER_SLOTS(2)};
static_assert(sizeof kSlots / sizeof kSlots[0] == 3 * kLayers, "slots");

const rwkv_cuda_image kImages[] = {
    {RWKV_CUDA_IMAGE_EMULATOR, 0, &fake_cuda_module, 0}};

const char *const kKernels[] = {"fake_cuda_embed",     "fake_cuda_prep",
                                "fake_cuda_layer_one", "fake_cuda_layer_seq",
                                "fake_cuda_head",      "fake_cuda_head_last"};

constexpr int64_t kLayerStride = int64_t(sizeof(Layer));
constexpr int64_t kDecay = int64_t(offsetof(Weights, layers));
constexpr int64_t kMix = kDecay + int64_t(offsetof(Layer, mix));

constexpr rwkv_cuda_arg arg(int32_t kind, int64_t value = 0,
                            int64_t stride = 0) {
  return {kind, 0, value, stride};
}

const rwkv_cuda_arg kArgs[] = {
    // 0 embed: emb, tokens, T, E
    arg(RWKV_CUDA_ARG_WEIGHTS, int64_t(offsetof(Weights, emb))),
    arg(RWKV_CUDA_ARG_TOKENS), arg(RWKV_CUDA_ARG_T),
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchE),
    // 4 prep: E, H, T, C
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchE),
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchH),
    arg(RWKV_CUDA_ARG_T), arg(RWKV_CUDA_ARG_INT, kEmbd),
    // 8 layer_one: decay, mix, state, H (+ T for layer_seq at 8..12)
    arg(RWKV_CUDA_ARG_WEIGHTS, kDecay, kLayerStride),
    arg(RWKV_CUDA_ARG_WEIGHTS, kMix, kLayerStride),
    arg(RWKV_CUDA_ARG_STATE, 0, kLayerFloats),
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchH), arg(RWKV_CUDA_ARG_T),
    // 13 head: head, H, logits, T, R, V
    arg(RWKV_CUDA_ARG_WEIGHTS, int64_t(offsetof(Weights, head))),
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchH), arg(RWKV_CUDA_ARG_LOGITS),
    arg(RWKV_CUDA_ARG_T), arg(RWKV_CUDA_ARG_R), arg(RWKV_CUDA_ARG_INT, kVocab),
    // 19 head_last: head, H, logits, T, V
    arg(RWKV_CUDA_ARG_WEIGHTS, int64_t(offsetof(Weights, head))),
    arg(RWKV_CUDA_ARG_SCRATCH, kScratchH), arg(RWKV_CUDA_ARG_LOGITS),
    arg(RWKV_CUDA_ARG_T), arg(RWKV_CUDA_ARG_INT, kVocab)};

constexpr rwkv_cuda_dim one(int32_t count = 1) {
  return {count, 1, RWKV_CUDA_DIM_ONE};
}
constexpr rwkv_cuda_dim perT(int32_t per) { return {1, per, RWKV_CUDA_DIM_T}; }
constexpr rwkv_cuda_dim perR() { return {1, 1, RWKV_CUDA_DIM_R}; }

constexpr uint32_t kHeadShared = 64 * 1024;
constexpr int32_t kHeadBlocks = int32_t((kVocab + 7) / 8);

constexpr rwkv_cuda_step launch(int32_t kernel, int32_t when,
                                rwkv_cuda_dim x, rwkv_cuda_dim y,
                                uint32_t bx, uint32_t by, uint32_t shared,
                                int32_t firstArg, int32_t nArgs) {
  return {RWKV_CUDA_LAUNCH, when,     kernel,  0, {x, y, one()}, {bx, by, 1},
          shared,           firstArg, nArgs};
}

const rwkv_cuda_step kSteps[] = {
    launch(0, RWKV_CUDA_ALWAYS, perT(2), one(), kEmbd, 2, 0, 0, 4),
    launch(1, RWKV_CUDA_ALWAYS, one(), perT(4), kEmbd, 4, 0, 4, 4),
    {RWKV_CUDA_LOOP, 0, 0, int32_t(kLayers), {}, {}, 0, 0, 0},
    launch(2, RWKV_CUDA_T_ONE, one(), one(), kEmbd, 1, 0, 8, 4),
    launch(3, RWKV_CUDA_T_MANY, one(), one(), kEmbd, 1, 0, 8, 5),
    {RWKV_CUDA_END_LOOP, 0, 0, 0, {}, {}, 0, 0, 0},
    launch(4, RWKV_CUDA_R_MANY, one(kHeadBlocks), perR(), 8, 1, kHeadShared,
           13, 6),
    launch(5, RWKV_CUDA_R_ONE, one(kHeadBlocks), one(), 8, 1, kHeadShared, 19,
           5),
};

const rwkv_cuda_program kProgram = {
    1,
    6,
    kImages,
    kKernels,
    int64_t(sizeof kSteps / sizeof kSteps[0]),
    kSteps,
    int64_t(sizeof kArgs / sizeof kArgs[0]),
    kArgs,
    kScratchPerToken,
    kHeadShared,
    0};

#ifdef FAKE_CUDA_CPU
constexpr uint32_t kBackends = RWKV_BACKEND_CPU | RWKV_BACKEND_CUDA;
#else
constexpr uint32_t kBackends = RWKV_BACKEND_CUDA;
#endif

constexpr rwkv_model_desc makeDesc() {
  rwkv_model_desc d{};
  d.abi_version = RWKV_ABI_VERSION;
  d.backends = kBackends;
  d.rwkv_version = "7";
  d.model_name = "fake-cuda.pth";
  d.n_vocab = kVocab;
  d.n_embd = kEmbd;
  d.n_layer = kLayers;
  d.state_floats = kStateFloats;
  d.weights_bytes = int64_t(sizeof(Weights));
  d.model_hash = kHash;
  d.weights_embedded = 1;
  d.n_slots = int64_t(sizeof kSlots / sizeof kSlots[0]);
  d.slots = kSlots;
  d.cuda = &kProgram;
  return d;
}

} // namespace

extern "C" {

const rwkv_model_desc rwkv_model_descriptor = makeDesc();
extern const Weights rwkv_weights_blob;
alignas(64) const Weights rwkv_weights_blob = makeWeights();

#ifdef FAKE_CUDA_CPU
// The CPU code: the reference (takes no scratch).
void rwkv_model_forward_seq(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  float h[kEmbd];
  for (int64_t i = 0; i < n_tokens; ++i)
    step(w, state, tokens[i], h);
  head(w, h, logits);
}

void rwkv_model_forward_all(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  float h[kEmbd];
  for (int64_t i = 0; i < n_tokens; ++i) {
    step(w, state, tokens[i], h);
    head(w, h, logits + i * kVocab);
  }
}

void rwkv_model_forward_one(const uint8_t *weights, float *state,
                            int32_t token, float *logits) {
  rwkv_model_forward_seq(weights, state, &token, 1, logits);
}
#endif

} // extern "C"
