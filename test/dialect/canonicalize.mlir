// RUN: rwkv-opt %s --split-input-file --canonicalize | FileCheck %s

// Tests that a lerp between a value and itself folds to the value.
// CHECK-LABEL: func.func @lerp_same
// CHECK-SAME: (%[[A:.+]]: tensor<1x4xf32>, %{{.+}}: tensor<4xf32>)
// CHECK-NOT: rwkv.lerp
// CHECK: return %[[A]]
func.func @lerp_same(%a: tensor<1x4xf32>, %t: tensor<4xf32>) -> tensor<1x4xf32> {
  %y = rwkv.lerp %a, %a, %t : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// -----

// Tests that a lerp between different values stays.
// CHECK-LABEL: func.func @lerp_different
// CHECK: rwkv.lerp
func.func @lerp_different(%a: tensor<1x4xf32>, %b: tensor<1x4xf32>, %t: tensor<4xf32>) -> tensor<1x4xf32> {
  %y = rwkv.lerp %a, %b, %t : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// -----

// Tests that last_token of a single token is the token.
// CHECK-LABEL: func.func @last_of_one
// CHECK-SAME: (%[[X:.+]]: tensor<1x4xf32>)
// CHECK-NOT: rwkv.last_token
// CHECK: return %[[X]]
func.func @last_of_one(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %y = rwkv.last_token %x : tensor<1x4xf32> -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// -----

// Tests that last_token of a sequence stays.
// CHECK-LABEL: func.func @last_of_many
// CHECK: rwkv.last_token
func.func @last_of_many(%x: tensor<?x4xf32>) -> tensor<1x4xf32> {
  %y = rwkv.last_token %x : tensor<?x4xf32> -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}

// -----

// Tests that unused pure ops are removed but state-carrying ops stay.
// CHECK-LABEL: func.func @effects
// CHECK-NOT: rwkv.sigmoid
// CHECK: rwkv.token_shift
rwkv.state_decl @s : tensor<4xf32> init <zero>
func.func @effects(%x: tensor<1x4xf32>) {
  %y = rwkv.sigmoid %x : tensor<1x4xf32>
  %p = rwkv.token_shift %x state @s : tensor<1x4xf32>
  return
}
