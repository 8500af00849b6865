//===- JitHarness.h - JIT-compile one rwkv function for op tests --*- C++
//-*-===//
//
// Op-level numerical tests of the CPU backend: a module with
// rwkv.weight_decl / rwkv.state_decl and one `func.func @f(tensors) ->
// tensors` goes through the real rwkv-lower-to-loops and rwkv-loops-to-llvm
// passes and MLIR's ExecutionEngine (O3, native target); the test fills the
// weight image and the state through the recorded layout and calls
// `_mlir_ciface_f_seq` (any T) or `_mlir_ciface_f_one` (T = 1) with its own
// buffers.
//
//   auto jit = JitModule::compile(source);        // ASSERT_TRUE(jit) ...
//   (*jit)->setWeight("w", values);               // rounded to its type
//   (*jit)->slot("s")  ...                        // the state slot's floats
//   (*jit)->run({x, y}, T);                       // inputs..., outputs...
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_CODEGEN_JITHARNESS_H
#define RWKVC_TEST_CODEGEN_JITHARNESS_H

#include "codegen/ModelLayout.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mlir {
class ExecutionEngine;
} // namespace mlir

namespace rwkvc::testing {

/// f32 → f16 / bf16 → f32, rounding to nearest even: the value a weight of
/// that type holds (references use the rounded parameters).
float roundToF16(float x);
float roundToBF16(float x);
/// Stores `x` as the 2-byte pattern of f16 / bf16.
uint16_t toF16Bits(float x);
uint16_t toBF16Bits(float x);

/// A buffer passed to the kernel: f32 or i32 elements, row-major.
struct Buffer {
  Buffer(std::vector<float> &v) : data(v.data()), size(v.size()) {}
  Buffer(std::vector<int32_t> &v) : data(v.data()), size(v.size()) {}
  void *data;
  size_t size; // elements
};

/// One JIT-compiled rwkv function and its weight image and state.
class JitModule {
public:
  ~JitModule();

  /// Parses `source`, lowers it with rwkv-lower-to-loops and
  /// rwkv-loops-to-llvm and JIT-compiles it. `func` is the rwkv function's
  /// name (the kernels are `<func>_seq` and `<func>_one`). Errors carry the
  /// diagnostics. Quantized products take the integer dot products
  /// `quantDot` names (rwkv-lower-to-loops' quant-dot), by default those the
  /// compiler picks for this machine.
  static llvm::Expected<std::unique_ptr<JitModule>>
  compile(llvm::StringRef source, llvm::StringRef func = "f",
          unsigned optLevel = 3, llvm::StringRef quantDot = "");

  /// Where the weights and state slots were placed.
  const ModelLayout &layout() const { return layout_; }

  /// The packed weight image (weightsBytes, zero-filled, 64-byte aligned).
  uint8_t *weightImage() { return weightsAligned_; }
  /// Stores `values` as weight `name` in its image type (f32, f16 or bf16,
  /// rounded to nearest even). Errors on an unknown name or a size mismatch.
  llvm::Error setWeight(llvm::StringRef name, llvm::ArrayRef<float> values);
  /// Writes a block-quantized (N, K) weight from its blocks in rwkv.cpp's
  /// order (N rows of K / 32 blocks), each row split into the image's order
  /// as the packer does (splitBlockRow).
  llvm::Error setQuantizedWeight(llvm::StringRef name,
                                 llvm::ArrayRef<uint8_t> blocks);

  /// The state buffer (stateFloats floats, 64-byte aligned), and one slot
  /// of it.
  llvm::MutableArrayRef<float> state() { return {stateAligned_, stateFloats_}; }
  float *slot(llvm::StringRef name);
  int64_t slotSize(llvm::StringRef name) const;
  /// Sets every slot to its declared initial value (zero, -1e30).
  void resetState();

  /// Inputs then outputs of the rwkv function; shape of argument `i` with
  /// its dynamic dimensions set to `numTokens`.
  unsigned numInputs() const { return numInputs_; }
  unsigned numOutputs() const { return shapes_.size() - numInputs_; }
  std::vector<int64_t> shape(unsigned i, int64_t numTokens) const;

  /// Calls `<func>_seq` (or `<func>_one` when `oneToken`; then T must be 1)
  /// with the weight image, the state and `buffers` (inputs then outputs,
  /// each of exactly shape(i, T) elements).
  llvm::Error run(llvm::ArrayRef<Buffer> buffers, int64_t numTokens,
                  bool oneToken = false);

private:
  JitModule() = default;
  std::unique_ptr<mlir::ExecutionEngine> engine_;
  std::string func_;
  ModelLayout layout_;
  std::vector<std::vector<int64_t>> shapes_; // kDynamic as -1
  std::vector<bool> isInt_;                  // i32 elements
  unsigned numInputs_ = 0;
  std::vector<uint8_t> weights_; // storage; the image starts 64-aligned
  uint8_t *weightsAligned_ = nullptr;
  std::vector<float> state_;
  float *stateAligned_ = nullptr;
  size_t stateFloats_ = 0;
};

} // namespace rwkvc::testing

#endif // RWKVC_TEST_CODEGEN_JITHARNESS_H
