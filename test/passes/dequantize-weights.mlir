// RUN: rwkv-opt %s --split-input-file --rwkv-dequantize-weights | FileCheck %s
// RUN: rwkv-opt %s --split-input-file --rwkv-dequantize-weights=all=true | FileCheck %s --check-prefix=ALL

// Tests that a block-quantized matrix only out_in products read stays
// quantized, and with all=true is declared and used as f32, shape kept.
// CHECK: rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q5_0>>
// CHECK-LABEL: func.func @matrix
// CHECK: %[[W:.+]] = rwkv.weight @q : tensor<8x32x!rwkv.quant<q5_0>>
// CHECK: rwkv.linear %{{.+}}, %[[W]] : (tensor<1x32xf32>, tensor<8x32x!rwkv.quant<q5_0>>) -> tensor<1x8xf32>
// ALL: rwkv.weight_decl @q : tensor<8x32xf32>
// ALL-LABEL: func.func @matrix
// ALL: %[[W:.+]] = rwkv.weight @q : tensor<8x32xf32>
// ALL: rwkv.linear %{{.+}}, %[[W]] : (tensor<1x32xf32>, tensor<8x32xf32>) -> tensor<1x8xf32>
rwkv.weight_decl @q : tensor<8x32x!rwkv.quant<q5_0>>
func.func @matrix(%x: tensor<1x32xf32>) -> tensor<1x8xf32> {
  %w = rwkv.weight @q : tensor<8x32x!rwkv.quant<q5_0>>
  %y = rwkv.linear %x, %w : (tensor<1x32xf32>, tensor<8x32x!rwkv.quant<q5_0>>) -> tensor<1x8xf32>
  return %y : tensor<1x8xf32>
}

// -----

// Tests that a quantized weight some use of which is not an out_in product
// (here an embedding, and an in_out product) becomes f32, each of its uses
// too, while the product-only ones of every kind stay; all=true widens
// every kind.
// CHECK-DAG: rwkv.weight_decl @emb : tensor<32x32xf32>
// CHECK-DAG: rwkv.weight_decl @inout : tensor<32x32xf32>
// CHECK-DAG: rwkv.weight_decl @q4_0 : tensor<4x32x!rwkv.quant<q4_0>>
// CHECK-DAG: rwkv.weight_decl @q4_1 : tensor<4x32x!rwkv.quant<q4_1>>
// CHECK-DAG: rwkv.weight_decl @q5_1 : tensor<4x32x!rwkv.quant<q5_1>>
// CHECK-DAG: rwkv.weight_decl @q8_0 : tensor<4x32x!rwkv.quant<q8_0>>
// CHECK-LABEL: func.func @kinds
// CHECK: rwkv.weight @emb : tensor<32x32xf32>
// CHECK: rwkv.weight @emb : tensor<32x32xf32>
// CHECK: rwkv.weight @inout : tensor<32x32xf32>
// ALL-NOT: !rwkv.quant
rwkv.weight_decl @emb : tensor<32x32x!rwkv.quant<q8_0>>
rwkv.weight_decl @inout : tensor<32x32x!rwkv.quant<q8_0>>
rwkv.weight_decl @q4_0 : tensor<4x32x!rwkv.quant<q4_0>>
rwkv.weight_decl @q4_1 : tensor<4x32x!rwkv.quant<q4_1>>
rwkv.weight_decl @q5_1 : tensor<4x32x!rwkv.quant<q5_1>>
rwkv.weight_decl @q8_0 : tensor<4x32x!rwkv.quant<q8_0>>
func.func @kinds(%t: tensor<1xi32>) -> tensor<1x4xf32> {
  %e = rwkv.weight @emb : tensor<32x32x!rwkv.quant<q8_0>>
  %x0 = rwkv.embedding %t, %e : (tensor<1xi32>, tensor<32x32x!rwkv.quant<q8_0>>) -> tensor<1x32xf32>
  %e2 = rwkv.weight @emb : tensor<32x32x!rwkv.quant<q8_0>>
  %x1 = rwkv.linear %x0, %e2 : (tensor<1x32xf32>, tensor<32x32x!rwkv.quant<q8_0>>) -> tensor<1x32xf32>
  %io = rwkv.weight @inout : tensor<32x32x!rwkv.quant<q8_0>>
  %x = rwkv.linear %x1, %io {layout = #rwkv.weight_layout<in_out>} : (tensor<1x32xf32>, tensor<32x32x!rwkv.quant<q8_0>>) -> tensor<1x32xf32>
  %a = rwkv.weight @q4_0 : tensor<4x32x!rwkv.quant<q4_0>>
  %ya = rwkv.linear %x, %a : (tensor<1x32xf32>, tensor<4x32x!rwkv.quant<q4_0>>) -> tensor<1x4xf32>
  %b = rwkv.weight @q4_1 : tensor<4x32x!rwkv.quant<q4_1>>
  %yb = rwkv.linear %x, %b : (tensor<1x32xf32>, tensor<4x32x!rwkv.quant<q4_1>>) -> tensor<1x4xf32>
  %c = rwkv.weight @q5_1 : tensor<4x32x!rwkv.quant<q5_1>>
  %yc = rwkv.relu_sq_linear %x, %c : (tensor<1x32xf32>, tensor<4x32x!rwkv.quant<q5_1>>) -> tensor<1x4xf32>
  %d = rwkv.weight @q8_0 : tensor<4x32x!rwkv.quant<q8_0>>
  %yd = rwkv.gate_linear %x, %x, %d : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<4x32x!rwkv.quant<q8_0>>) -> tensor<1x4xf32>
  %s0 = rwkv.add %ya, %yb : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %s1 = rwkv.add %s0, %yc : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  %s2 = rwkv.add %s1, %yd : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return %s2 : tensor<1x4xf32>
}

// -----

// Tests that float weights keep their types (f16, bf16 and f32 alike).
// CHECK-DAG: rwkv.weight_decl @h : tensor<4x32xf16>
// CHECK-DAG: rwkv.weight_decl @bh : tensor<4x32xbf16>
// CHECK-DAG: rwkv.weight_decl @v : tensor<32xf32>
// CHECK-LABEL: func.func @floats
// CHECK: rwkv.weight @h : tensor<4x32xf16>
// CHECK: rwkv.weight @bh : tensor<4x32xbf16>
// CHECK: rwkv.weight @v : tensor<32xf32>
rwkv.weight_decl @h : tensor<4x32xf16>
rwkv.weight_decl @bh : tensor<4x32xbf16>
rwkv.weight_decl @v : tensor<32xf32>
func.func @floats(%x: tensor<1x32xf32>) -> tensor<1x4xf32> {
  %h = rwkv.weight @h : tensor<4x32xf16>
  %bh = rwkv.weight @bh : tensor<4x32xbf16>
  %v = rwkv.weight @v : tensor<32xf32>
  %xv = rwkv.mul %x, %v : (tensor<1x32xf32>, tensor<32xf32>) -> tensor<1x32xf32>
  %a = rwkv.linear %xv, %h : (tensor<1x32xf32>, tensor<4x32xf16>) -> tensor<1x4xf32>
  %b = rwkv.linear %xv, %bh : (tensor<1x32xf32>, tensor<4x32xbf16>) -> tensor<1x4xf32>
  %y = rwkv.add %a, %b : (tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return %y : tensor<1x4xf32>
}
