// RUN: rwkv-opt %s --split-input-file --rwkv-fold-decay | FileCheck %s

// Tests that a decay of a weight becomes a derived weight, declared once.
// CHECK: rwkv.weight_decl @td : tensor<4xf32>
// CHECK-NEXT: rwkv.weight_decl @td.neg_exp : tensor<4xf32> derive <neg_exp> of @td
// CHECK-NOT: rwkv.weight_decl @td.neg_exp
// CHECK-LABEL: func.func @fold
// CHECK-NOT: rwkv.decay
// CHECK: %[[W:.+]] = rwkv.weight @td.neg_exp : tensor<4xf32>
// CHECK: rwkv.mul %{{.+}}, %[[W]]
// CHECK: %[[W2:.+]] = rwkv.weight @td.neg_exp : tensor<4xf32>
// CHECK: rwkv.add %{{.+}}, %[[W2]]
rwkv.weight_decl @td : tensor<4xf32>
func.func @fold(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %d = rwkv.weight @td : tensor<4xf32>
  %w = rwkv.decay %d {kind = #rwkv.decay_kind<neg_exp>} : tensor<4xf32> -> tensor<4xf32>
  %y = rwkv.mul %x, %w : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  %w2 = rwkv.decay %d {kind = #rwkv.decay_kind<neg_exp>} : tensor<4xf32> -> tensor<4xf32>
  %z = rwkv.add %y, %w2 : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return %z : tensor<1x4xf32>
}

// -----

// Tests that each decay kind gets its own derived weight.
// CHECK-DAG: rwkv.weight_decl @td.exp_neg_exp : tensor<2x2xf32> derive <exp_neg_exp> of @td
// CHECK-DAG: rwkv.weight_decl @td.exp_neg_sigmoid : tensor<2x2xf32> derive <exp_neg_sigmoid> of @td
rwkv.weight_decl @td : tensor<2x2xf32>
func.func @kinds() -> (tensor<2x2xf32>, tensor<2x2xf32>) {
  %d = rwkv.weight @td : tensor<2x2xf32>
  %a = rwkv.decay %d {kind = #rwkv.decay_kind<exp_neg_exp>} : tensor<2x2xf32> -> tensor<2x2xf32>
  %b = rwkv.decay %d {kind = #rwkv.decay_kind<exp_neg_sigmoid>} : tensor<2x2xf32> -> tensor<2x2xf32>
  return %a, %b : tensor<2x2xf32>, tensor<2x2xf32>
}

// -----

// Tests that a decay of an activation (data-dependent, RWKV-6/7) stays.
// CHECK-LABEL: func.func @dynamic
// CHECK: rwkv.decay
func.func @dynamic(%x: tensor<1x4xf32>) -> tensor<1x4xf32> {
  %w = rwkv.decay %x {kind = #rwkv.decay_kind<exp_neg_exp>} : tensor<1x4xf32> -> tensor<1x4xf32>
  return %w : tensor<1x4xf32>
}
