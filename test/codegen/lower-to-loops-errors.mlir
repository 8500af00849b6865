// RUN: rwkv-opt %s --verify-diagnostics --rwkv-lower-to-loops

// Tests that the lowering takes the placements of rwkv-assign-layout and
// places nothing itself.
// expected-error @+1 {{rwkv-lower-to-loops: the module has no rwkv.memory_layout: it has not been through rwkv-assign-layout}}
module {
  rwkv.weight_decl @w : tensor<4xf32>
}
