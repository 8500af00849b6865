// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=avx512-vnni" | FileCheck %s --check-prefix=VNNI
// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=avx2" | FileCheck %s --check-prefix=AVX2
// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=generic" | FileCheck %s --check-prefix=GENERIC

// Tests that a q4_0 weight (8 rows of 3 blocks of 18 bytes) is read as the
// bytes it is stored in. The sequence function dequantizes each tile of 4
// rows into one f32 (4, 96) buffer of the entry block, block by block
// (d (u - 8): an FMA with -8 d), then runs the f32 token tiles over it. The
// T = 1 function quantizes x per block of 32 (scale max|x| / 127, round to
// nearest even, the 4-lane sums times -8 as the dot products' start), then
// takes each tile of 4 rows two blocks at a time on 16 lanes with
// vpdpbusd and the odd third block on 8, each scaled into f32 accumulators.
// VNNI-LABEL: func.func @q4_seq(
// VNNI: %[[ROWS:.+]] = memref.alloca() {alignment = 64 : i64} : memref<4x96xf32>
// VNNI: memref.view %arg0[%{{.+}}][] : memref<?xi8> to memref<8x54xi8>
// VNNI: scf.for
// VNNI: vector.load %{{.+}} : memref<8x54xi8>, vector<16xi8>
// VNNI: arith.extui %{{.+}} : vector<32xi8> to vector<32xi32>
// VNNI: vector.fma
// VNNI: vector.store %{{.+}}, %[[ROWS]]
// VNNI: scf.for {{.+}} -> ({{(vector<16xf32>, ){15}vector<16xf32>}})
// VNNI: vector.load %[[ROWS]]
// VNNI-LABEL: func.func @q4_one(
// VNNI: math.roundeven %{{.+}} : vector<16xf32>
// VNNI: arith.fptosi %{{.+}} : vector<16xf32> to vector<16xi32>
// VNNI: arith.muli %{{.+}}, %{{.+}} : vector<4xi32>
// VNNI: scf.for
// VNNI-COUNT-4: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"(%{{.+}}) : (vector<16xi32>, vector<64xi8>, vector<64xi8>) -> vector<16xi32>
// VNNI-COUNT-4: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.256"(%{{.+}}) : (vector<8xi32>, vector<32xi8>, vector<32xi8>) -> vector<8xi32>
// VNNI: vector.store %{{.+}} : memref<1x8xf32>, vector<4xf32>
// VNNI-LABEL: func.func @q4_all(
// AVX2-LABEL: func.func @q4_one(
// AVX2-COUNT-4: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// AVX2-NOT: vpdpbusd
// AVX2-LABEL: func.func @q4_all(
// GENERIC-LABEL: func.func @q4_one(
// GENERIC-NOT: llvm.call_intrinsic
// GENERIC: arith.muli %{{.+}}, %{{.+}} : vector<32xi32>
// GENERIC-LABEL: func.func @q4_all(
rwkv.weight_decl @w : tensor<8x96x!rwkv.quant<q4_0>>
func.func @q4(%x: tensor<?x96xf32>) -> tensor<?x8xf32> {
  %w = rwkv.weight @w : tensor<8x96x!rwkv.quant<q4_0>>
  %y = rwkv.linear %x, %w : (tensor<?x96xf32>, tensor<8x96x!rwkv.quant<q4_0>>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests q8_0's signed codes: vpdpbusd reads them as q + 128 (an xor of the
// sign bit) against the start -128 Σ q_x; vpmaddubsw as |q| against q_x
// with q's sign (vpsignb); plain arithmetic as signed bytes.
// VNNI-LABEL: func.func @q8_one(
// VNNI: arith.xori %{{.+}}, %{{.+}} : vector<64xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// AVX2-LABEL: func.func @q8_one(
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.psign.b"
// AVX2: math.absi %{{.+}} : vector<32xi8>
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.ub.sw"
// AVX2: llvm.call_intrinsic "llvm.x86.avx2.pmadd.wd"
// GENERIC-LABEL: func.func @q8_one(
// GENERIC: arith.extsi %{{.+}} : vector<32xi8> to vector<32xi32>
rwkv.weight_decl @w : tensor<8x96x!rwkv.quant<q8_0>>
func.func @q8(%x: tensor<?x96xf32>) -> tensor<?x8xf32> {
  %w = rwkv.weight @w : tensor<8x96x!rwkv.quant<q8_0>>
  %y = rwkv.linear %x, %w : (tensor<?x96xf32>, tensor<8x96x!rwkv.quant<q8_0>>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests q5_1: the fifth bits (4 bytes) as a vector<32xi1> mask that selects
// 16, the minimum's term m d_x Σ q_x in accumulators of its own; and that a
// packed weight's blocks of rows are views of its bytes.
// VNNI-LABEL: func.func @q5_one(
// VNNI: memref.subview %{{.+}}[0, 0] [4, 48] [1, 1] : memref<8x48xi8> to memref<4x48xi8, strided<[48, 1]>>
// VNNI: vector.bitcast %{{.+}} : vector<4xi8> to vector<32xi1>
// VNNI: arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<32xi1>, vector<32xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI: memref.subview %{{.+}}[4, 0] [4, 48] [1, 1] : memref<8x48xi8> to memref<4x48xi8, strided<[48, 1], offset: 192>>
rwkv.weight_decl @w : tensor<8x64x!rwkv.quant<q5_1>>
rwkv.weight_decl @m0 : tensor<1x1x64xf32>
rwkv.weight_decl @m1 : tensor<1x1x64xf32>
func.func @q5(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  %w = rwkv.weight @w : tensor<8x64x!rwkv.quant<q5_1>>
  %m0 = rwkv.weight @m0 : tensor<1x1x64xf32>
  %m1 = rwkv.weight @m1 : tensor<1x1x64xf32>
  %r, %k = rwkv.packed_mix_linear %a, %b [%m0, %m1], %w : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<8x64x!rwkv.quant<q5_1>>) -> (tensor<?x4xf32>, tensor<?x4xf32>)
  return %r, %k : tensor<?x4xf32>, tensor<?x4xf32>
}
