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

// The same product as the channel mix's key (its result read only by a
// relu_sq_linear): max(y, 0)^2 is stored by the last chunk only (a select
// on the chunk's start), after the sums of every chunk are in; the
// remaining tokens' tiles, all of K at once, square every store.
// CHECK-LABEL: func.func @key_batch(
// CHECK: scf.for %[[KK0:.+]] = %{{.+}} to %c1536 step %c768
// CHECK-DAG: %[[KLATER:.+]] = arith.cmpi ne, %[[KK0]], %c0
// CHECK-DAG: %[[KLAST:.+]] = arith.cmpi eq, %[[KK0]], %c768
// CHECK: %[[KSUM:.+]] = arith.select %[[KLATER]], %{{.+}}, %{{.+}} : vector<2xf32>
// CHECK: %[[KMAX:.+]] = arith.maximumf %[[KSUM]], %{{.+}} : vector<2xf32>
// CHECK: %[[KSQ:.+]] = arith.mulf %[[KMAX]], %[[KMAX]] : vector<2xf32>
// CHECK: %[[KY:.+]] = arith.select %[[KLAST]], %[[KSQ]], %[[KSUM]] : vector<2xf32>
// CHECK: vector.store %[[KY]]
// CHECK: arith.minui
// CHECK: %[[KMAX4:.+]] = arith.maximumf %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: %[[KSQ4:.+]] = arith.mulf %[[KMAX4]], %[[KMAX4]] : vector<4xf32>
// CHECK: vector.store %[[KSQ4]]
// CHECK: return
rwkv.weight_decl @wv : tensor<8x16xf32>
func.func @key(%x: tensor<?x1536xf32>) -> tensor<?x8xf32> {
  %w = rwkv.weight @w : tensor<16x1536xf16>
  %wv = rwkv.weight @wv : tensor<8x16xf32>
  %k = rwkv.linear %x, %w : (tensor<?x1536xf32>, tensor<16x1536xf16>) -> tensor<?x16xf32>
  %v = rwkv.relu_sq_linear %k, %wv : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  return %v : tensor<?x8xf32>
}
