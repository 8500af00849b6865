// RUN: rwkv-opt %s --verify-diagnostics --rwkv-select-weight-types="weight-type=q4_0 allow-quantized=false"

// Tests that a quantized weight type is refused for a target whose products
// read floats only.
// expected-error @+1 {{weight type '!rwkv.quant<q4_0>': this target does not read block-quantized weights (use f32, f16 or bf16)}}
module {
  rwkv.weight_decl @q : tensor<8x32xf32>
}
