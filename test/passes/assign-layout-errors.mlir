// RUN: rwkv-opt %s --split-input-file --verify-diagnostics --rwkv-assign-layout

// Tests that the pass needs the target's alignments.
// expected-error @+1 {{rwkv-assign-layout: the module has no rwkv.resource_config (the target sets it) and the weight-alignment and slot-alignment options are not given}}
module {
  rwkv.weight_decl @w : tensor<4xf32>
}

// -----

// Tests that a quantized weight whose rows are not whole blocks is not placed.
module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  // expected-error @+1 {{has type 'tensor<4x16x!rwkv.quant<q8_0>>', whose rows are not whole blocks of 32}}
  rwkv.weight_decl @q : tensor<4x16x!rwkv.quant<q8_0>>
}
