// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops --canonicalize | FileCheck %s

// Tests that a stack of layers lowers to one loop over its layers whose body
// reads layer k's weights at (k - first) * 64 bytes past layer 1's (at 64)
// and its slot at (k - first) * 16 floats past layer 1's (at 16), carries
// the residual stream in a buffer of its own (copied in before the loop,
// the layer's result copied back at the end of each iteration), and
// allocates every buffer before the loop.
// CHECK-LABEL: func.func @forward_one(
// CHECK-SAME: %[[W:[a-z0-9]+]]: memref<?xi8>, %[[S:[a-z0-9]+]]: memref<?xf32>, %[[X:[a-z0-9]+]]: memref<1x8xf32>, %[[Y:[a-z0-9]+]]: memref<1x8xf32>
// CHECK-DAG: %[[C3:.+]] = arith.constant 3 : index
// CHECK-DAG: %[[C64:.+]] = arith.constant 64 : index
// CHECK-DAG: %[[C16:.+]] = arith.constant 16 : index
// CHECK-COUNT-3: memref.alloca() {{.+}} : memref<1x8xf32>
// CHECK-NOT: memref.alloca
// CHECK: memref.copy %[[X]], %[[CARRIED:[a-z0-9_]+]]
// CHECK: scf.for %[[K:.+]] = %{{.+}} to %[[C3]]
// CHECK-DAG: %[[WS:.+]] = arith.muli %[[K]], %[[C64]] : index
// CHECK-DAG: %[[SS:.+]] = arith.muli %[[K]], %[[C16]] : index
// CHECK-DAG: %[[SO:.+]] = arith.addi %[[SS]], %[[C16]] : index
// CHECK: memref.reinterpret_cast %[[S]] to offset: [%[[SO]]], sizes: [8], strides: [1] : memref<?xf32> to memref<8xf32, strided<[1], offset: ?>>
// CHECK: %[[WO:.+]] = arith.addi %[[WS]], %[[C64]] : index
// CHECK: memref.view %[[W]][%[[WO]]][] : memref<?xi8> to memref<8xf32>
// CHECK: vector.store %{{.+}}, %[[OUT:[a-z0-9_]+]][
// CHECK-NEXT: memref.copy %[[OUT]], %[[CARRIED]]
// CHECK-NEXT: }
// CHECK-NEXT: memref.copy %[[CARRIED]], %[[Y]]
rwkv.weight_decl @emb : tensor<8xf32>
rwkv.weight_decl @blocks.1.ln : tensor<8xf32>
rwkv.state_decl @state.0.shift : tensor<8xf32> init <zero>
rwkv.state_decl @state.1.shift : tensor<8xf32> init <zero>
rwkv.weight_decl @blocks.2.ln : tensor<8xf32>
rwkv.state_decl @state.2.shift : tensor<8xf32> init <zero>
rwkv.weight_decl @blocks.3.ln : tensor<8xf32>
rwkv.state_decl @state.3.shift : tensor<8xf32> init <zero>
func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = rwkv.layers 1 to 3 (%x) : (tensor<?x8xf32>) -> tensor<?x8xf32> {
  ^bb0(%in: tensor<?x8xf32>):
    %w = rwkv.weight @blocks.1.ln : tensor<8xf32>
    %s = rwkv.token_shift %in state @state.1.shift : tensor<?x8xf32>
    %a = rwkv.add %s, %w : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    rwkv.yield %a : tensor<?x8xf32>
  }
  return %0 : tensor<?x8xf32>
}
