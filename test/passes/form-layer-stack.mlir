// RUN: rwkv-opt %s --split-input-file --rwkv-form-layer-stack | FileCheck %s

// Tests that consecutive layers whose bodies are the same up to the layer
// number of their symbols become one rwkv.layers op with the first one's
// body, and that a layer that differs (layer 0: another op; layer 3: a
// weight stored as f16) starts a new op.
// CHECK-LABEL: func.func @forward
// CHECK: %[[L0:.+]] = rwkv.layers 0 to 0 (%{{.+}})
// CHECK: rwkv.mul
// CHECK: %[[L12:.+]] = rwkv.layers 1 to 2 (%[[L0]])
// CHECK-NEXT: ^bb0(%[[IN:.+]]: tensor<?x8xf32>):
// CHECK-NEXT: rwkv.weight @blocks.1.w : tensor<8xf32>
// CHECK-NEXT: rwkv.token_shift %{{.+}} state @state.1.shift
// CHECK-NOT: blocks.2
// CHECK: rwkv.yield
// CHECK: %[[L3:.+]] = rwkv.layers 3 to 3 (%[[L12]])
// CHECK: return %[[L3]]
rwkv.weight_decl @blocks.0.w : tensor<8xf32>
rwkv.state_decl @state.0.shift : tensor<8xf32> init <zero>
rwkv.weight_decl @blocks.1.w : tensor<8xf32>
rwkv.state_decl @state.1.shift : tensor<8xf32> init <zero>
rwkv.weight_decl @blocks.2.w : tensor<8xf32>
rwkv.state_decl @state.2.shift : tensor<8xf32> init <zero>
rwkv.weight_decl @blocks.3.w : tensor<8xf16>
rwkv.state_decl @state.3.shift : tensor<8xf32> init <zero>
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = rwkv.layers 0 to 0 (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>):
    %w = rwkv.weight @blocks.0.w : tensor<8xf32>
    %p = rwkv.token_shift %in state @state.0.shift : tensor<?x8xf32>
    %m = rwkv.mul %p, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %s = rwkv.add %in, %m : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %1 = rwkv.layers 1 to 1 (%0) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>):
    %w = rwkv.weight @blocks.1.w : tensor<8xf32>
    %p = rwkv.token_shift %in state @state.1.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %2 = rwkv.layers 2 to 2 (%1) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>):
    %w = rwkv.weight @blocks.2.w : tensor<8xf32>
    %p = rwkv.token_shift %in state @state.2.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %3 = rwkv.layers 3 to 3 (%2) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>):
    %w = rwkv.weight @blocks.3.w : tensor<8xf16>
    %p = rwkv.token_shift %in state @state.3.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %w : (tensor<?x8xf32>, tensor<8xf16>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  return %3 : tensor<?x8xf32>
}

// -----

// Tests that RWKV-7's shape stacks: layer 0 yields its value too, the later
// layers read it as an input that every layer reads unchanged; a layer
// that names a weight of no layer (@emb), or reads the same slot as
// another layer, does not join the stack.
// CHECK-LABEL: func.func @forward
// CHECK: %[[L0:.+]]:2 = rwkv.layers 0 to 0 (%{{.+}})
// CHECK: %[[L12:.+]] = rwkv.layers 1 to 2 (%[[L0]]#0, %[[L0]]#1)
// CHECK: %[[L3:.+]] = rwkv.layers 3 to 3 (%[[L12]], %[[L0]]#1)
// CHECK: %[[L4:.+]] = rwkv.layers 4 to 4 (%[[L3]], %[[L0]]#1)
// CHECK: return %[[L4]]
rwkv.weight_decl @emb : tensor<8xf32>
rwkv.state_decl @state.0.shift : tensor<8xf32> init <zero>
rwkv.state_decl @state.1.shift : tensor<8xf32> init <zero>
rwkv.state_decl @state.2.shift : tensor<8xf32> init <zero>
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0:2 = rwkv.layers 0 to 0 (%x) : (tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  ^bb0(%in: tensor<?x8xf32>):
    %p = rwkv.token_shift %in state @state.0.shift : tensor<?x8xf32>
    rwkv.yield %in, %p : tensor<?x8xf32>, tensor<?x8xf32>
  }
  %1 = rwkv.layers 1 to 1 (%0#0, %0#1) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>, %v: tensor<?x8xf32>):
    %p = rwkv.token_shift %in state @state.1.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %v : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %2 = rwkv.layers 2 to 2 (%1, %0#1) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>, %v: tensor<?x8xf32>):
    %p = rwkv.token_shift %in state @state.2.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %v : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %3 = rwkv.layers 3 to 3 (%2, %0#1) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>, %v: tensor<?x8xf32>):
    %w = rwkv.weight @emb : tensor<8xf32>
    %p = rwkv.token_shift %in state @state.2.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  %4 = rwkv.layers 4 to 4 (%3, %0#1) : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>, %v: tensor<?x8xf32>):
    %w = rwkv.weight @emb : tensor<8xf32>
    %p = rwkv.token_shift %in state @state.2.shift : tensor<?x8xf32>
    %s = rwkv.add %p, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    rwkv.yield %s : tensor<?x8xf32>
  }
  return %4 : tensor<?x8xf32>
}
