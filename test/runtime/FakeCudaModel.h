//===- FakeCudaModel.h - A toy recurrent model for the CUDA backend -------===//
//
// What the runtime's CUDA tests run: a hand-made model with the shape of a
// compiled one (embedding, a stack of layers with per-layer state, a head)
// written three times: as CUDA kernels (FakeCudaKernels.cu, run by the
// emulator), as the launch plan of its descriptor (FakeCudaModel.cpp), and
// here as plain C++, the reference.
//
//   state (L * 24 floats), per layer k at 24 k:
//     x [0, 8)    zero     the layer's previous input
//     s [8, 16)   weight   decayed sum, starts at layers[k].initS
//     m [16, 24)  -1e30    running maximum of the layer's inputs
//   per token t:  h = 2 emb[t] - 0.5
//                 per layer k: s = decay_k s + h + mix_k x; m = max(m, h);
//                              x = h; h = 0.5 s + 0.25 m
//   logits[v]   = sum_c head[v][c] h[c]   (h after the last layer)
//
// The kernels compute every float in the same order as this file, and both
// are compiled with -ffp-contract=off: results agree bit for bit.
//
// Scratch (bytes per token, at per-token offsets): E at 0 (the embeddings,
// 32), H at 32 (the hidden vector, 32); kScratchPerToken reserves 1 KiB per
// token so that a long chunk runs out of a small emulated device memory.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_TEST_FAKECUDAMODEL_H
#define RWKV_TEST_FAKECUDAMODEL_H

#include <cstddef>
#include <cstdint>

namespace fake_cuda {

constexpr int64_t kVocab = 20; // V
constexpr int64_t kEmbd = 8;   // C
constexpr int64_t kLayers = 3; // L
constexpr int64_t kLayerFloats = 3 * kEmbd;
constexpr int64_t kStateFloats = kLayers * kLayerFloats;
constexpr int64_t kScratchPerToken = 1024;
constexpr int64_t kScratchE = 0, kScratchH = 32;
constexpr uint64_t kHash = 0x5ca1ab1ec0ffee11ULL;

struct Layer {
  float decay[kEmbd]; // (C)
  float mix[kEmbd];   // (C)
  float initS[kEmbd]; // (C) initial value of slot s
  float pad[kEmbd];
};

/// The weight image, byte for byte (1664 bytes, a multiple of 64).
struct Weights {
  float emb[kVocab][kEmbd];  // (V, C)
  Layer layers[kLayers];     // (L)
  float head[kVocab][kEmbd]; // (V, C)
};
static_assert(sizeof(Weights) % 64 == 0, "layout");
static_assert(sizeof(Layer) == 128, "layout");

constexpr Weights makeWeights() {
  Weights w{};
  for (int64_t v = 0; v < kVocab; ++v)
    for (int64_t c = 0; c < kEmbd; ++c) {
      w.emb[v][c] = float((v * 5 + c * 3) % 13) / 16.0f - 0.3f;
      w.head[v][c] = float((v * 3 + c * 7) % 11) / 8.0f - 0.6f;
    }
  for (int64_t k = 0; k < kLayers; ++k)
    for (int64_t c = 0; c < kEmbd; ++c) {
      w.layers[k].decay[c] = 0.5f + float((c + k) % 4) / 10.0f;
      w.layers[k].mix[c] = float((c * 3 + k) % 5) / 8.0f - 0.25f;
      w.layers[k].initS[c] = 0.125f * float(c + 1) - 0.25f * float(k);
    }
  return w;
}

/// One token: updates `state` and leaves the last layer's output in h.
inline void step(const Weights &w, float *state, int32_t token, float *h) {
  for (int64_t c = 0; c < kEmbd; ++c)
    h[c] = 2.0f * w.emb[token][c] - 0.5f;
  for (int64_t k = 0; k < kLayers; ++k) {
    float *x = state + k * kLayerFloats, *s = x + kEmbd, *m = x + 2 * kEmbd;
    const Layer &l = w.layers[k];
    for (int64_t c = 0; c < kEmbd; ++c) {
      float in = h[c];
      s[c] = l.decay[c] * s[c] + in + l.mix[c] * x[c];
      m[c] = m[c] > in ? m[c] : in;
      x[c] = in;
      h[c] = 0.5f * s[c] + 0.25f * m[c];
    }
  }
}

inline void head(const Weights &w, const float *h, float *logits) {
  for (int64_t v = 0; v < kVocab; ++v) {
    float acc = 0.0f;
    for (int64_t c = 0; c < kEmbd; ++c)
      acc += w.head[v][c] * h[c];
    logits[v] = acc;
  }
}

} // namespace fake_cuda

#endif // RWKV_TEST_FAKECUDAMODEL_H
