// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops --canonicalize | FileCheck %s

// Tests the batch function's out_in product over a K whose 8 input rows
// would not stay in L1 (K > 768, a multiple of it: the 0.1B shape's FFN
// value product, K = 3072): output tiles of 8 rows; each block of 8 tokens
// contracts K in chunks of 768, every tile of 2 rows per chunk, and stores
// the first chunk's sums, adds the later ones' to y (a select on the
// chunk's start). The remaining tokens contract all of K in clamped tiles
// of 4 tokens by 4 rows.
// CHECK-LABEL: func.func @step_batch(
// CHECK-SAME: %{{.+}}: memref<?xi8>, %{{.+}}: memref<?xi64>, %[[X:[a-z0-9]+]]: memref<?x1536xf32>, %{{.+}}: memref<?x16xf32>)
// CHECK: %[[B:.+]] = memref.dim %[[X]], %{{.+}} : memref<?x1536xf32>
// CHECK: scf.for %[[O:.+]] = %{{.+}} to %c16 step %c8
// CHECK: scf.for %[[T8:.+]] = %{{.+}} to %[[FULL:.+]] step %c8
// CHECK: scf.for %[[K0:.+]] = %{{.+}} to %c1536 step %c768
// CHECK: %[[LATER:.+]] = arith.cmpi ne, %[[K0]], %c0
// CHECK: scf.for %[[R:.+]] = %[[O]] to %{{.+}} step %c2
// CHECK: %[[K1:.+]] = arith.addi %[[K0]], %c768
// CHECK: scf.for %{{.+}} = %[[K0]] to %[[K1]] step %c16 iter_args({{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: memref.prefetch
// CHECK: %[[OLD:.+]] = vector.load %{{.+}}[%[[T8]], %[[R]]] : memref<?x16xf32>, vector<2xf32>
// CHECK: %[[SUM:.+]] = arith.addf %[[NEW:.+]], %[[OLD]] : vector<2xf32>
// CHECK: %[[Y:.+]] = arith.select %[[LATER]], %[[SUM]], %[[NEW]] : vector<2xf32>
// CHECK: vector.store %[[Y]], %{{.+}}[%[[T8]], %[[R]]] : memref<?x16xf32>, vector<2xf32>
// CHECK: scf.for %[[T4:.+]] = %[[FULL]] to %[[B]] step %c4
// CHECK: scf.for %[[R4:.+]] = %[[O]] to %{{.+}} step %c4
// CHECK: arith.minui
// CHECK: scf.for %{{.+}} = %c0 to %c1536 step %c16 iter_args({{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK-NOT: arith.select
// CHECK: vector.store %{{.+}}, %{{.+}}[%[[T4]], %[[R4]]] : memref<?x16xf32>, vector<4xf32>
// CHECK: return
rwkv.weight_decl @w : tensor<16x1536xf16>
func.func @step(%x: tensor<?x1536xf32>) -> tensor<?x16xf32> {
  %w = rwkv.weight @w : tensor<16x1536xf16>
  %y = rwkv.linear %x, %w : (tensor<?x1536xf32>, tensor<16x1536xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
