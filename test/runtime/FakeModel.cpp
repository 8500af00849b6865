//===- FakeModel.cpp - The ABI symbols of a compiled model, faked ---------===//
//
// Defines what rwkvc's generated objects define (rwkv_abi.h) for the model of
// FakeModel.h. Built twice: with the weights embedded (rwkv_weights_blob), and
// with FAKE_MODEL_EXTERNAL_WEIGHTS, where the runtime maps the weights from
// "fake-model-ext.weights" beside the executable (and the hash differs), and
// with FAKE_MODEL_ABI_VERSION=99 (an ABI this runtime does not implement),
// and with FAKE_MODEL_BACKENDS=0 (no backend this runtime runs).
//
//===----------------------------------------------------------------------===//

#include "FakeModel.h"
#include "rwkv_abi.h"

using namespace fake;

// fake-model-badabi overrides it to test the runtime's ABI check.
#ifndef FAKE_MODEL_ABI_VERSION
#define FAKE_MODEL_ABI_VERSION RWKV_ABI_VERSION
#endif
// fake-model-nocpu overrides it to test the runtime's backend check.
#ifndef FAKE_MODEL_BACKENDS
#define FAKE_MODEL_BACKENDS RWKV_BACKEND_CPU
#endif

namespace {
const rwkv_state_slot kSlots[] = {
    {"state.0.att.x", 0, 4, RWKV_SLOT_ZERO, 0},
    {"state.0.att.pp", 4, 4, RWKV_SLOT_NEG_LARGE, 0},
    {"state.0.att.s", 8, 4, RWKV_SLOT_WEIGHT, kInitSOffset},
};

constexpr rwkv_model_desc makeDesc(bool external) {
  rwkv_model_desc d{};
  d.abi_version = FAKE_MODEL_ABI_VERSION;
  d.backends = FAKE_MODEL_BACKENDS;
  d.rwkv_version = "7";
  d.model_name = external ? "fake-ext.pth" : "fake.pth";
  d.n_vocab = kVocab;
  d.n_embd = kEmbd;
  d.n_layer = 1;
  d.state_floats = kStateFloats;
  d.weights_bytes = int64_t(sizeof(Weights));
  d.model_hash = external ? kExtHash : kHash;
  d.weights_embedded = external ? 0 : 1;
  d.weights_file = external ? "fake-model-ext.weights" : nullptr;
  d.n_slots = 3;
  d.slots = kSlots;
  return d;
}
} // namespace

extern "C" {

#ifdef FAKE_MODEL_EXTERNAL_WEIGHTS
const rwkv_model_desc rwkv_model_descriptor = makeDesc(/*external=*/true);
#else
const rwkv_model_desc rwkv_model_descriptor = makeDesc(/*external=*/false);
// The runtime declares it as `const uint8_t[]`; only the symbol matters.
extern const Weights rwkv_weights_blob;
alignas(64) const Weights rwkv_weights_blob = makeWeights();
#endif

void rwkv_model_forward_seq(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  for (int64_t i = 0; i < n_tokens; ++i)
    step(w, state, tokens[i]);
  head(w, state, logits);
}

void rwkv_model_forward_all(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  for (int64_t i = 0; i < n_tokens; ++i) {
    step(w, state, tokens[i]);
    head(w, state, logits + i * kVocab);
  }
}

void rwkv_model_forward_one(const uint8_t *weights, float *state, int32_t token,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  step(w, state, token);
  head(w, state, logits);
}

} // extern "C"
