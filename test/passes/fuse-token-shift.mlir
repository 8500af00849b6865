// RUN: rwkv-opt %s --split-input-file --rwkv-fuse-token-shift | FileCheck %s

// Tests that each projection of a mix reads the mix in its input load and
// that the lerps disappear.
// CHECK-LABEL: func.func @time_mix
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>
// CHECK: %[[P:.+]] = rwkv.token_shift %[[X]] state @s
// CHECK-NOT: rwkv.lerp
// CHECK: rwkv.mix_linear %[[P]], %[[X]], %{{.+}}, %{{.+}} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
// CHECK: rwkv.mix_linear %[[P]], %[[X]], %{{.+}}, %{{.+}} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>, tensor<8x8xf16>) -> tensor<?x8xf32>
rwkv.state_decl @s : tensor<8xf32> init <zero>
func.func @time_mix(%x: tensor<?x8xf32>, %mk: tensor<1x1x8xf32>, %mv: tensor<1x1x8xf32>, %wk: tensor<16x8xf32>, %wv: tensor<8x8xf16>) -> (tensor<?x16xf32>, tensor<?x8xf32>) {
  %p = rwkv.token_shift %x state @s : tensor<?x8xf32>
  %xk = rwkv.lerp %p, %x, %mk : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
  %xv = rwkv.lerp %p, %x, %mv : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
  %k = rwkv.linear %xk, %wk : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %v = rwkv.linear %xv, %wv : (tensor<?x8xf32>, tensor<8x8xf16>) -> tensor<?x8xf32>
  return %k, %v : tensor<?x16xf32>, tensor<?x8xf32>
}

// -----

// Tests that a lerp with another user stays, and that an in_out (LoRA)
// product is not fused.
// CHECK-LABEL: func.func @kept
// CHECK: %[[M:.+]] = rwkv.lerp
// CHECK: rwkv.mix_linear
// CHECK: rwkv.linear %[[M]], %{{.+}} {layout = #rwkv.weight_layout<in_out>}
// CHECK: return %[[M]]
func.func @kept(%x: tensor<1x8xf32>, %p: tensor<1x8xf32>, %m: tensor<8xf32>, %w: tensor<8x8xf32>, %a: tensor<8x4xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x4xf32>) {
  %xm = rwkv.lerp %p, %x, %m : (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
  %y = rwkv.linear %xm, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  %z = rwkv.linear %xm, %a {layout = #rwkv.weight_layout<in_out>} : (tensor<1x8xf32>, tensor<8x4xf32>) -> tensor<1x4xf32>
  return %xm, %y, %z : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x4xf32>
}
