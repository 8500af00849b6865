// RUN: rwkv-opt %s --rwkv-select-weight-types=weight-type=f16 | FileCheck %s
// RUN: rwkv-opt %s --rwkv-select-weight-types=weight-type=keep | FileCheck %s --check-prefix=KEEP
// RUN: rwkv-opt %s --rwkv-select-weight-types=weight-type=q8_0 | FileCheck %s --check-prefix=Q8

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
// A quantized type applies to the matrices only out_in products read whose
// rows are whole blocks of 32 (@p, @q: requantized); the others become f16
// (@w: rows of 8; @emb: an embedding; @ts).
// Q8-DAG: rwkv.weight_decl @w : tensor<8x8xf16>
// Q8-DAG: rwkv.weight_decl @p : tensor<8x32x!rwkv.quant<q8_0>>
// Q8-DAG: rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q8_0>>
// Q8-DAG: rwkv.weight_decl @emb : tensor<16x32xf16>
// Q8-DAG: rwkv.weight_decl @v : tensor<8xf32>
// Q8-DAG: rwkv.weight_decl @mix : tensor<1x1x8xf32>
// Q8-DAG: rwkv.weight_decl @ts : tensor<1x4x4xf16>
// Q8-LABEL: func.func @f
// Q8: rwkv.weight @p : tensor<8x32x!rwkv.quant<q8_0>>
// Q8: rwkv.mix_linear %{{.+}} : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x1x32xf32>, tensor<8x32x!rwkv.quant<q8_0>>) -> tensor<1x8xf32>
rwkv.weight_decl @w : tensor<8x8xf32>
rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q5_0>>
rwkv.weight_decl @p : tensor<8x32xbf16>
rwkv.weight_decl @emb : tensor<16x32xf32>
rwkv.weight_decl @m32 : tensor<1x1x32xf32>
rwkv.weight_decl @v : tensor<8xf32>
rwkv.weight_decl @mix : tensor<1x1x8xf32>
rwkv.weight_decl @ts : tensor<1x4x4xf32>
rwkv.state_decl @s : tensor<1x4x4xf32> init <weight> @ts
func.func @f(%x: tensor<1x8xf32>, %tok: tensor<1xi32>) -> (tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>) {
  %w = rwkv.weight @w : tensor<8x8xf32>
  %y = rwkv.linear %x, %w : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
  %e = rwkv.weight @emb : tensor<16x32xf32>
  %x32 = rwkv.embedding %tok, %e : (tensor<1xi32>, tensor<16x32xf32>) -> tensor<1x32xf32>
  %m = rwkv.weight @m32 : tensor<1x1x32xf32>
  %p = rwkv.weight @p : tensor<8x32xbf16>
  %yp = rwkv.mix_linear %x32, %x32, %m, %p : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x1x32xf32>, tensor<8x32xbf16>) -> tensor<1x8xf32>
  %q = rwkv.weight @q : tensor<8x32x!rwkv.quant<q5_0>>
  %yq = rwkv.linear %x32, %q : (tensor<1x32xf32>, tensor<8x32x!rwkv.quant<q5_0>>) -> tensor<1x8xf32>
  return %y, %yp, %yq : tensor<1x8xf32>, tensor<1x8xf32>, tensor<1x8xf32>
}
