// RUN: rwkv-opt %s --split-input-file --rwkv-pack-projections | FileCheck %s

// Tests that the projections of one token shift become one op over one
// packed weight, whose parts are no longer stored on their own.
// CHECK-NOT: rwkv.weight_decl @wr :
// CHECK: rwkv.weight_decl @wr.packed : tensor<24x8xf32> concat ["wr", "wk", "wv"]
// CHECK-NOT: rwkv.weight_decl @wk :
// CHECK-LABEL: func.func @time_mix
// CHECK-SAME: (%[[P:.+]]: tensor<?x8xf32>, %[[X:.+]]: tensor<?x8xf32>
// CHECK: %[[W:.+]] = rwkv.weight @wr.packed : tensor<24x8xf32>
// CHECK: %[[R:.+]]:3 = rwkv.packed_mix_linear %[[P]], %[[X]][%{{.+}}, %{{.+}}, %{{.+}}], %[[W]]
// CHECK-NOT: rwkv.mix_linear
// CHECK: return %[[R]]#0, %[[R]]#1, %[[R]]#2
rwkv.weight_decl @wr : tensor<8x8xf32>
rwkv.weight_decl @wk : tensor<8x8xf32>
rwkv.weight_decl @wv : tensor<8x8xf32>
func.func @time_mix(%p: tensor<?x8xf32>, %x: tensor<?x8xf32>, %m: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %wr = rwkv.weight @wr : tensor<8x8xf32>
  %r = rwkv.mix_linear %p, %x, %m, %wr : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %wk = rwkv.weight @wk : tensor<8x8xf32>
  %k = rwkv.mix_linear %p, %x, %m, %wk : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %wv = rwkv.weight @wv : tensor<8x8xf32>
  %v = rwkv.mix_linear %p, %x, %m, %wv : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  return %r, %k, %v : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Tests that a projection whose result is used before a later one of the
// group stays out of the pack (the packed op sits at the last member), and
// that weights of another type are not packed with these.
// CHECK-LABEL: func.func @used_early
// CHECK: rwkv.packed_mix_linear %{{.+}}, %{{.+}}[%{{.+}}, %{{.+}}], %{{.+}} : {{.*}} -> (tensor<1x8xf32>, tensor<1x8xf32>)
// CHECK: rwkv.sigmoid
// CHECK: rwkv.mix_linear {{.*}}tensor<8x8xf16>
rwkv.weight_decl @a : tensor<8x8xf32>
rwkv.weight_decl @b : tensor<8x8xf32>
rwkv.weight_decl @g : tensor<8x8xf16>
func.func @used_early(%p: tensor<1x8xf32>, %x: tensor<1x8xf32>, %m: tensor<8xf32>) -> (tensor<1x8xf32>, tensor<1x8xf32>) {
  %wa = rwkv.weight @a : tensor<8x8xf32>
  %ra = rwkv.mix_linear %p, %x, %m, %wa : (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  %wb = rwkv.weight @b : tensor<8x8xf32>
  %rb = rwkv.mix_linear %p, %x, %m, %wb : (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  %s = rwkv.sigmoid %ra : tensor<1x8xf32>
  %wg = rwkv.weight @g : tensor<8x8xf16>
  %rg = rwkv.mix_linear %p, %x, %m, %wg : (tensor<1x8xf32>, tensor<1x8xf32>, tensor<8xf32>, tensor<8x8xf16>) -> tensor<1x8xf32>
  %y = rwkv.mul %s, %rg : (tensor<1x8xf32>, tensor<1x8xf32>) -> tensor<1x8xf32>
  return %y, %rb : tensor<1x8xf32>, tensor<1x8xf32>
}
