// RUN: rwkv-opt %s --split-input-file --verify-diagnostics --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" | FileCheck %s

// Tests that the weights and slots of a stack of layers are placed together
// where the first of them is declared, layer after layer in the order the
// body names them (the packed weight before the norm weight, though declared
// after it), each layer at a multiple of the alignment, and that the op
// records the strides: layer k's members lie (k - 1) strides after layer 1's.
// Declarations of no stack keep declaration order.
// CHECK-LABEL: module attributes
// CHECK-SAME: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 512, state_floats = 80>
// CHECK: rwkv.weight_decl @emb : tensor<8xf32> at <offset = 0>
// CHECK: rwkv.weight_decl @blocks.1.ln : tensor<8xf32> at <offset = 128>
// CHECK: rwkv.weight_decl @blocks.1.packed : tensor<4x8xf16> at <offset = 64>
// CHECK: rwkv.state_decl @state.1.shift : tensor<8xf32> init <zero> at <offset = 16>
// CHECK: rwkv.weight_decl @blocks.2.ln : tensor<8xf32> at <offset = 256>
// CHECK: rwkv.weight_decl @blocks.2.packed : tensor<4x8xf16> at <offset = 192>
// CHECK: rwkv.state_decl @state.2.shift : tensor<8xf32> init <zero> at <offset = 32>
// CHECK: rwkv.weight_decl @blocks.3.ln : tensor<8xf32> at <offset = 384>
// CHECK: rwkv.weight_decl @blocks.3.packed : tensor<4x8xf16> at <offset = 320>
// CHECK: rwkv.state_decl @state.3.shift : tensor<8xf32> init <zero> at <offset = 48>
// CHECK: rwkv.weight_decl @head : tensor<8xf32> at <offset = 448>
// CHECK: rwkv.state_decl @state.4.shift : tensor<8xf32> init <zero> at <offset = 64>
// CHECK: rwkv.layers 1 to 3 stride <weights = 128, state = 16> (%{{.+}})
module {
  rwkv.weight_decl @emb : tensor<8xf32>
  rwkv.state_decl @state.0.shift : tensor<8xf32> init <zero>
  rwkv.weight_decl @blocks.1.ln : tensor<8xf32>
  rwkv.weight_decl @blocks.1.packed : tensor<4x8xf16>
  rwkv.state_decl @state.1.shift : tensor<8xf32> init <zero>
  rwkv.weight_decl @blocks.2.ln : tensor<8xf32>
  rwkv.weight_decl @blocks.2.packed : tensor<4x8xf16>
  rwkv.state_decl @state.2.shift : tensor<8xf32> init <zero>
  rwkv.weight_decl @blocks.3.ln : tensor<8xf32>
  rwkv.weight_decl @blocks.3.packed : tensor<4x8xf16>
  rwkv.state_decl @state.3.shift : tensor<8xf32> init <zero>
  rwkv.weight_decl @head : tensor<8xf32>
  rwkv.state_decl @state.4.shift : tensor<8xf32> init <zero>
  func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    %0 = rwkv.layers 1 to 3 (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
    ^bb0(%in: tensor<?x8xf32>):
      %p = rwkv.weight @blocks.1.packed : tensor<4x8xf16>
      %w = rwkv.weight @blocks.1.ln : tensor<8xf32>
      %s = rwkv.token_shift %in state @state.1.shift : tensor<?x8xf32>
      %a = rwkv.add %s, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
      rwkv.yield %a : tensor<?x8xf32>
    }
    return %0 : tensor<?x8xf32>
  }
}

// -----

// Tests that a stack whose later layer lacks a symbol is an error.
module {
  rwkv.weight_decl @blocks.1.ln : tensor<8xf32>
  func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    // expected-error @+1 {{'rwkv.layers' op rwkv-assign-layout: layer 2 has no symbol for @blocks.1.ln of layer 1}}
    %0 = rwkv.layers 1 to 2 (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
    ^bb0(%in: tensor<?x8xf32>):
      %w = rwkv.weight @blocks.1.ln : tensor<8xf32>
      %a = rwkv.add %in, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
      rwkv.yield %a : tensor<?x8xf32>
    }
    return %0 : tensor<?x8xf32>
  }
}
