// RUN: rwkv-opt %s --split-input-file --rwkv-fuse-gates | FileCheck %s

// Tests that RWKV-4's receptance gate fuses into the output projection.
// CHECK-LABEL: func.func @receptance
// CHECK-SAME: (%[[R:.+]]: tensor<1x8xf32>, %[[Y:.+]]: tensor<1x8xf32>
// CHECK-NOT: rwkv.sigmoid
// CHECK-NOT: rwkv.mul
// CHECK: rwkv.gate_linear %[[R]], %[[Y]], %{{.+}} : (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
func.func @receptance(%r: tensor<1x8xf32>, %y: tensor<1x8xf32>, %w: tensor<8x8xf32>) -> tensor<1x8xf32> {
  %s = rwkv.sigmoid %r : tensor<1x8xf32>
  %g = rwkv.mul %s, %y : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %o = rwkv.linear %g, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  return %o : tensor<1x8xf32>
}

// -----

// Tests that the gate may be either operand of the product.
// CHECK-LABEL: func.func @swapped
// CHECK-SAME: (%[[R:.+]]: tensor<1x8xf32>, %[[Y:.+]]: tensor<1x8xf32>
// CHECK: rwkv.gate_linear %[[R]], %[[Y]]
func.func @swapped(%r: tensor<1x8xf32>, %y: tensor<1x8xf32>, %w: tensor<8x8xf32>) -> tensor<1x8xf32> {
  %s = rwkv.sigmoid %r : tensor<1x8xf32>
  %g = rwkv.mul %y, %s : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  %o = rwkv.linear %g, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  return %o : tensor<1x8xf32>
}

// -----

// Tests that a per-channel scale is not a gate.
// CHECK-LABEL: func.func @not_a_gate
// CHECK: rwkv.mul
// CHECK: rwkv.linear
func.func @not_a_gate(%y: tensor<1x8xf32>, %c: tensor<8xf32>, %w: tensor<8x8xf32>) -> tensor<1x8xf32> {
  %g = rwkv.mul %y, %c : (tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
  %o = rwkv.linear %g, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  return %o : tensor<1x8xf32>
}

// -----

// Tests that the channel mix's squared ReLU fuses into the value projection.
// CHECK-LABEL: func.func @channel_mix
// CHECK-SAME: (%[[K:.+]]: tensor<?x16xf32>
// CHECK-NOT: rwkv.relu_sq %
// CHECK: rwkv.relu_sq_linear %[[K]], %{{.+}} : (tensor<?x16xf32>, tensor<8x16xbf16>) -> tensor<?x8xf32>
func.func @channel_mix(%k: tensor<?x16xf32>, %w: tensor<8x16xbf16>) -> tensor<?x8xf32> {
  %a = rwkv.relu_sq %k : tensor<?x16xf32>
  %v = rwkv.linear %a, %w : (tensor<?x16xf32>, tensor<8x16xbf16>) -> tensor<?x8xf32>
  return %v : tensor<?x8xf32>
}
