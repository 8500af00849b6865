// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops --canonicalize | FileCheck %s

// Tests the batch function: each row t is one token of a sequence of its
// own, whose state lies at the address %states[t]. Its buffers are all
// allocated before the first loop (before any state is read or written:
// the runtime relies on it after a failed allocation); the token shift
// reads and writes the slot of row t's state (an LLVM descriptor of the
// address, cast to a memref) instead of the previous row; the product runs
// output tiles of 4 rows, each in blocks of 8 tokens by 2 rows (16
// accumulators, each step prefetching the next output tile's rows), then
// the remaining tokens in tiles of 4 tokens by 4 rows whose tokens past the
// last are clamped to it; wkv7 takes row t's state inside its token loop
// (per head).
// CHECK-LABEL: func.func @step_batch(
// CHECK-SAME: %[[W:[a-z0-9]+]]: memref<?xi8>, %[[STATES:[a-z0-9]+]]: memref<?xi64>, %[[X:[a-z0-9]+]]: memref<?x32xf32>, %{{.+}}: memref<?x32xf32>) attributes {llvm.emit_c_interface}
// CHECK: %[[B:.+]] = memref.dim %[[X]], %{{.+}} : memref<?x32xf32>
// CHECK: %[[SHIFTED:.+]] = memref.alloc(%[[B]])
// CHECK-NOT: scf.for
// CHECK: memref.alloc(%[[B]])
// CHECK-NOT: memref.alloc
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %[[B]] step
// CHECK: %[[ADDR:.+]] = memref.load %[[STATES]][%[[T]]] : memref<?xi64>
// CHECK: %[[PTR:.+]] = llvm.inttoptr %[[ADDR]] : i64 to !llvm.ptr
// CHECK: llvm.insertvalue %[[PTR]]
// CHECK: %[[ROW:.+]] = builtin.unrealized_conversion_cast %{{.+}} : !llvm.struct<(ptr, ptr, i64, array<1 x i64>, array<1 x i64>)> to memref<?xf32>
// CHECK: %[[SLOT:.+]] = memref.reinterpret_cast %[[ROW]] to offset: [0], sizes: [32], strides: [1]
// CHECK: scf.for %[[C:.+]] =
// CHECK: %[[OLD:.+]] = vector.load %[[SLOT]][%[[C]]]
// CHECK: vector.store %[[OLD]], %{{.+}}[%[[T]], %[[C]]]
// CHECK: %[[NEW:.+]] = vector.load %[[X]][%[[T]], %[[C]]]
// CHECK: vector.store %[[NEW]], %[[SLOT]][%[[C]]]
// CHECK: memref.view %[[W]]
// CHECK: scf.for %[[O:.+]] = %{{.+}} to %c32 step %c4
// CHECK: scf.for %[[T8:.+]] = %{{.+}} to %[[FULL:.+]] step %c8
// CHECK: scf.for %[[R:.+]] = %[[O]] to %{{.+}} step %c2
// CHECK: scf.for %{{.+}} iter_args({{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: %[[AHEAD:.+]] = arith.addi %[[R]], %c4
// CHECK: arith.minui %[[AHEAD]], %c31
// CHECK: memref.prefetch %{{.+}}, read, locality<3>, data : memref<32x32xf16>
// CHECK-COUNT-8: vector.store %{{.+}}, %{{.+}}[%{{.+}}, %[[R]]] : memref<?x32xf32>, vector<2xf32>
// CHECK: %[[LAST:.+]] = arith.subi %[[B]], %c1
// CHECK: scf.for %[[T4:.+]] = %[[FULL]] to %[[B]] step %c4
// CHECK-NOT: scf.for
// CHECK: arith.minui %{{.+}}, %[[LAST]]
// CHECK: scf.for %{{.+}} iter_args({{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: memref.prefetch
// CHECK: vector.store %{{.+}}, %{{.+}}[%[[T4]], %[[O]]] : memref<?x32xf32>, vector<4xf32>
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %c2 step %c1
// CHECK: scf.for %[[T2:.+]] = %{{.+}} to %[[B]] step %c1
// CHECK: memref.load %[[STATES]][%[[T2]]] : memref<?xi64>
// CHECK: %[[S:.+]] = memref.reinterpret_cast %{{.+}} to offset: [32], sizes: [2, 16, 16], strides: [256, 16, 1]
// CHECK: vector.load %[[S]][%[[H]],
// CHECK: vector.store %{{.+}}, %[[S]][%[[H]],
// CHECK: memref.dealloc
// CHECK: return
rwkv.weight_decl @w : tensor<32x32xf16>
rwkv.state_decl @shift : tensor<32xf32> init <zero>
rwkv.state_decl @s : tensor<2x16x16xf32> init <zero>
func.func @step(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %sx = rwkv.token_shift %x state @shift : tensor<?x32xf32>
  %w = rwkv.weight @w : tensor<32x32xf16>
  %k = rwkv.linear %sx, %w : (tensor<?x32xf32>, tensor<32x32xf16>) -> tensor<?x32xf32>
  %y = rwkv.wkv7 %x, %x, %k, %x, %x, %x state @s {heads = 2 : i64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
