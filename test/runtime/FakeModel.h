//===- FakeModel.h - A tiny stand-in for a compiled model -----------------===//
//
// The runtime tests link FakeModel.cpp in place of a generated model object.
// Its "model" is a small deterministic recurrence whose logits depend on the
// state and on the order of the tokens, with one slot of each init kind:
//
//   state (12 floats):  x  [0, 4)   zero       the previous token's embedding
//                       pp [4, 8)   -1e30      running maximum of embeddings
//                       s  [8, 12)  weight     decayed sum, starts at initS
//   per token t:        e = emb[t]
//                       pp = max(pp, e); s = 0.9 s + e + 0.5 x; x = e
//   logits[v]         = sum_c emb[v][c] * s[c] + 0.01 pp[c]
//
// FAKE_MODEL_VOCAB=256 (fake-model-text) makes a byte-vocabulary model whose
// head also adds -100 to every v outside 'a'..'z', so that greedy decoding
// prints letters.
//
// Scratch: like generated code, every forward call takes its buffers from
// the runtime (_mlir_memref_to_llvm_alloc, rwkv_abi.h), two requests per
// call: its n_tokens rows, held for the whole call, then, after the tokens
// have changed the state, the head's buffer (so that a failure can come
// after the state has changed); forward_batch, like generated code, takes
// both before it touches a state. Unlike generated code, forward_one takes
// scratch too, so the runtime's handling of a failure there is tested. failAllocAt(K), or FAKE_MODEL_FAIL_ALLOC=K in the
// environment of a fake-model executable, makes the K-th request from then
// on ask for 2^62 bytes, which no machine has: the allocation fails for real.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_TEST_FAKEMODEL_H
#define RWKV_TEST_FAKEMODEL_H

#include <cstddef>
#include <cstdint>

namespace fake {

#ifndef FAKE_MODEL_VOCAB
#define FAKE_MODEL_VOCAB 16
#endif
constexpr int64_t kVocab = FAKE_MODEL_VOCAB;
constexpr int64_t kEmbd = 4;
constexpr int64_t kStateFloats = 12;
constexpr uint64_t kHash = 0x0123456789abcdefULL;    // embedded variant
constexpr uint64_t kExtHash = 0xfedcba9876543210ULL; // external-weights one
constexpr int64_t kInitSOffset = 64; // byte offset of initS in the image

/// The weight image, byte for byte (384 bytes for 16 tokens, a multiple of
/// 64).
struct Weights {
  float pad0[16];
  float initS[kEmbd]; // (C) initial value of slot s
  float pad1[12];
  float emb[kVocab][kEmbd]; // (V, C) embeddings, also the head
};
static_assert(offsetof(Weights, initS) == kInitSOffset, "layout");
static_assert(sizeof(Weights) % 64 == 0, "layout");

constexpr Weights makeWeights() {
  Weights w{};
  for (int64_t c = 0; c < kEmbd; ++c)
    w.initS[c] = 0.25f * float(c + 1);
  for (int64_t v = 0; v < kVocab; ++v)
    for (int64_t c = 0; c < kEmbd; ++c)
      w.emb[v][c] = float((v * 7 + c * 3) % 11) / 8.0f - 0.6f;
  return w;
}

/// One token through the recurrence.
inline void step(const Weights &w, float *state, int32_t token) {
  float *x = state, *pp = state + 4, *s = state + 8;
  for (int64_t c = 0; c < kEmbd; ++c) {
    float e = w.emb[token][c];
    pp[c] = pp[c] > e ? pp[c] : e;
    s[c] = 0.9f * s[c] + e + 0.5f * x[c];
    x[c] = e;
  }
}

inline void head(const Weights &w, const float *state, float *logits) {
  for (int64_t v = 0; v < kVocab; ++v) {
    float acc = 0;
    for (int64_t c = 0; c < kEmbd; ++c)
      acc += w.emb[v][c] * state[8 + c] + 0.01f * state[4 + c];
    if (kVocab == 256 && (v < 'a' || v > 'z'))
      acc -= 100.0f;
    logits[v] = acc;
  }
}

/// From now on, the k-th scratch request (1-based) fails; 0: none does.
void failAllocAt(long k);

} // namespace fake

#endif // RWKV_TEST_FAKEMODEL_H
