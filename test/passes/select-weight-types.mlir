// RUN: rwkv-opt %s --rwkv-select-weight-types=weight-type=f16 | FileCheck %s
// RUN: rwkv-opt %s --rwkv-select-weight-types=weight-type=keep | FileCheck %s --check-prefix=KEEP

// Tests that matrices take the chosen storage type, with their uses, while
// vectors (also a 1x1xC mix) and derived weights keep theirs. (A state initializer is a matrix
// here too: rwkv-assign-layout stores it as f32, assign-layout.mlir.)
// CHECK-DAG: rwkv.weight_decl @w : tensor<8x8xf16>
// CHECK-DAG: rwkv.weight_decl @q : tensor<8x32xf16>
// CHECK-DAG: rwkv.weight_decl @v : tensor<8xf32>
// CHECK-DAG: rwkv.weight_decl @mix : tensor<1x1x8xf32>
// CHECK-DAG: rwkv.weight_decl @ts : tensor<1x4x4xf16>
// CHECK-LABEL: func.func @f
// CHECK: rwkv.weight @w : tensor<8x8xf16>
// CHECK: rwkv.linear %{{.+}}, %{{.+}} : (tensor<1x8xf32>, tensor<8x8xf16>) -> tensor<1x8xf32>
// KEEP-DAG: rwkv.weight_decl @w : tensor<8x8xf32>
// KEEP-DAG: rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q5_0>>
rwkv.weight_decl @w : tensor<8x8xf32>
rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q5_0>>
rwkv.weight_decl @v : tensor<8xf32>
rwkv.weight_decl @mix : tensor<1x1x8xf32>
rwkv.weight_decl @ts : tensor<1x4x4xf32>
rwkv.state_decl @s : tensor<1x4x4xf32> init <weight> @ts
func.func @f(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
  %w = rwkv.weight @w : tensor<8x8xf32>
  %y = rwkv.linear %x, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  return %y : tensor<1x8xf32>
}
