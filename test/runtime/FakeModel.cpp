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

#include <atomic>
#include <cstdlib>

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
std::atomic<long> failAt{-1}; // -1: not yet read from the environment
std::atomic<long> requests{0};

/// A scratch request as the generated code makes it (FakeModel.h).
void *scratch(size_t bytes) {
  if (failAt.load() < 0) {
    const char *k = std::getenv("FAKE_MODEL_FAIL_ALLOC");
    long expected = -1;
    failAt.compare_exchange_strong(expected, k ? std::atol(k) : 0);
  }
  if (++requests == failAt.load())
    bytes = size_t(1) << 62;
  return _mlir_memref_to_llvm_alloc(bytes);
}

/// The scratch of a call of n tokens, as generated code takes it: its rows
/// before the tokens, and after them, once the tokens have changed the
/// state, the head's buffer. Both are freed with _mlir_memref_to_llvm_free
/// (like generated code, and as a longjmp requires, no destructors here).
void *rows(int64_t n) { return scratch(size_t(n) * kEmbd * sizeof(float)); }
void *headBuffer() { return scratch(kVocab * sizeof(float)); }

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
  d.entries = RWKV_ENTRY_FORWARD_BATCH;
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
  void *seq = rows(n_tokens);
  for (int64_t i = 0; i < n_tokens; ++i)
    step(w, state, tokens[i]);
  void *out = headBuffer();
  head(w, state, logits);
  _mlir_memref_to_llvm_free(out);
  _mlir_memref_to_llvm_free(seq);
}

void rwkv_model_forward_all(const uint8_t *weights, float *state,
                            const int32_t *tokens, int64_t n_tokens,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  void *seq = rows(n_tokens);
  for (int64_t i = 0; i < n_tokens; ++i) {
    step(w, state, tokens[i]);
    head(w, state, logits + i * kVocab);
  }
  void *out = headBuffer();
  _mlir_memref_to_llvm_free(out);
  _mlir_memref_to_llvm_free(seq);
}

void rwkv_model_forward_one(const uint8_t *weights, float *state, int32_t token,
                            float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  void *one = rows(1);
  step(w, state, token);
  void *out = headBuffer();
  head(w, state, logits);
  _mlir_memref_to_llvm_free(out);
  _mlir_memref_to_llvm_free(one);
}

// As the generated batch entry: all its scratch first, then each row's
// token on its own state.
void rwkv_model_forward_batch(const uint8_t *weights, float *const *states,
                              const int32_t *tokens, int64_t batch,
                              float *logits) {
  const Weights &w = *reinterpret_cast<const Weights *>(weights);
  void *seq = rows(batch);
  void *out = headBuffer();
  for (int64_t b = 0; b < batch; ++b) {
    step(w, states[b], tokens[b]);
    head(w, states[b], logits + b * kVocab);
  }
  _mlir_memref_to_llvm_free(out);
  _mlir_memref_to_llvm_free(seq);
}

} // extern "C"

void fake::failAllocAt(long k) {
  requests = 0;
  failAt = k;
}

#if defined(__SANITIZE_ADDRESS__)
#define FAKE_MODEL_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FAKE_MODEL_UNDER_ASAN 1
#endif
#endif
#ifdef FAKE_MODEL_UNDER_ASAN
// A request ASan's allocator cannot serve returns NULL, as malloc does,
// instead of ending the process with a report. The quarantine of freed
// blocks is kept to 64 MiB (ASan's default, 256 MiB, fills up over the
// millions of calls of the long-input tests and would be most of what they
// measure as resident).
extern "C" const char *__asan_default_options() {
  return "allocator_may_return_null=1:quarantine_size_mb=64";
}
#endif
