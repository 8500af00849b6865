// RUN: rwkv-opt %s --split-input-file --rwkv-fuse-layer-norm | FileCheck %s

// Tests that a layer norm and the token shift of its result become one op
// whose results replace both.
// CHECK-LABEL: func.func @norm_shift
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>, %[[W:.+]]: tensor<8xf32>, %[[B:.+]]: tensor<8xf32>)
// CHECK: %[[N:.+]], %[[P:.+]] = rwkv.norm_shift %[[X]], %[[W]], %[[B]] state @s {epsilon = 1.000000e-03 : f32}
// CHECK-NOT: rwkv.layer_norm
// CHECK-NOT: rwkv.token_shift
// CHECK: rwkv.lerp %[[P]], %[[N]]
rwkv.state_decl @s : tensor<8xf32> init <zero>
func.func @norm_shift(%x: tensor<?x8xf32>, %w: tensor<8xf32>, %b: tensor<8xf32>) -> tensor<?x8xf32> {
  %n = rwkv.layer_norm %x, %w, %b {epsilon = 1.0e-3 : f32} : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %p = rwkv.token_shift %n state @s : tensor<?x8xf32>
  %m = rwkv.lerp %p, %n, %w : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %m : tensor<?x8xf32>
}

// -----

// Tests that a layer norm without a token shift (the head's) stays.
// CHECK-LABEL: func.func @head
// CHECK: rwkv.layer_norm
func.func @head(%x: tensor<1x8xf32>, %w: tensor<8xf32>) -> tensor<1x8xf32> {
  %n = rwkv.layer_norm %x, %w, %w : (tensor<1x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
  return %n : tensor<1x8xf32>
}
