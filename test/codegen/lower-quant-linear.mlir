// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=avx512-vnni" | FileCheck %s --check-prefix=VNNI
// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=avx2" | FileCheck %s --check-prefix=AVX2
// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=generic" | FileCheck %s --check-prefix=GENERIC

// Tests that a q4_0 weight (8 rows of 3 blocks of 18 bytes) is read as the
// image stores it: each row one group of 3 blocks, their 3 f16 scales d
// (bytes 0-5), then their code bytes in words of 4, word s of the 3 blocks
// at byte 6 + 12 s. The sequence function dequantizes each tile of 4 rows
// into one f32 (4, 96) buffer of the entry block, block by block (its 4
// words gathered; d (u - 8): an FMA with -8 d), then runs the f32 token
// tiles over it. The T = 1 function quantizes x per block of 32 (scale
// max|x| / 127, max|x| an unsigned max of the magnitudes' bits, round to
// nearest even) into the order of the group's codes
// (8 vectors of 64 bytes, zero past the 3 blocks; elements 4 v .. 4 v + 3
// of block i at byte 64 v + 4 i), per block d_x and the start -8 Σ q_x
// (int32, zero past the 3rd up to 16); with AVX-512 VNNI each tile of 4
// rows reads its group of 3 blocks on 4 int32 lanes (vectors of 16 bytes):
// each row's lanes start at -8 Σ q_x, then per word its 12 code bytes (a
// masked load), their low and high nibbles two vpdpbusd against vectors 0
// and 4 of q_x; the 3 d (a masked load of 6 bytes) times d_x scale the
// converted sums, widened to 16 lanes.
// VNNI-LABEL: func.func @q4_seq(
// VNNI: %[[ROWS:.+]] = memref.alloca() {alignment = 64 : i64} : memref<4x96xf32>
// VNNI: memref.view %arg0[%{{.+}}][] : memref<?xi8> to memref<8x54xi8>
// VNNI: scf.for
// VNNI-COUNT-4: vector.load %{{.+}} : memref<8x54xi8>, vector<4xi8>
// VNNI: arith.extui %{{.+}} : vector<32xi8> to vector<32xi32>
// VNNI: vector.load %{{.+}} : memref<8x54xi8>, vector<2xi8>
// VNNI: vector.fma
// VNNI: vector.store %{{.+}}, %[[ROWS]]
// VNNI: scf.for {{.+}} -> ({{(vector<16xf32>, ){15}vector<16xf32>}})
// VNNI: vector.load %[[ROWS]]
// VNNI-LABEL: func.func @q4_one(
// VNNI: %[[Q:.+]] = memref.alloca() {alignment = 64 : i64} : memref<1x512xi8>
// VNNI-COUNT-8: vector.store %{{.+}}, %[[Q]][%{{.+}}, %{{.+}}] : memref<1x512xi8>, vector<64xi8>
// VNNI: %[[MAG:.+]] = arith.maxui %{{.+}}, %{{.+}} : vector<16xi32>
// VNNI: %[[AMAX:.+]] = vector.reduction <maxui>, %[[MAG]] : vector<16xi32> into i32
// VNNI: arith.bitcast %[[AMAX]] : i32 to f32
// VNNI: math.roundeven %{{.+}} : vector<16xf32>
// VNNI: arith.fptosi %{{.+}} : vector<16xf32> to vector<16xi32>
// VNNI-COUNT-8: vector.store %{{.+}}, %[[Q]][%{{.+}}, %{{.+}}] : memref<1x512xi8>, vector<4xi8>
// VNNI: vector.reduction <add>, %{{.+}} : vector<16xi32> into i32
// VNNI: memref.store %{{.+}}, %{{.+}}[%c0{{.*}}, %c15{{.*}}] : memref<1x16xi32>
// VNNI: scf.for
// VNNI: %[[S:.+]] = vector.load %{{.+}}[%{{.+}}, %{{.+}}] : memref<1x16xi32>, vector<4xi32>
// VNNI: %[[X0:.+]] = vector.load %[[Q]][%{{.+}}, %c0{{.*}}] : memref<1x512xi8>, vector<16xi8>
// VNNI: %[[X4:.+]] = vector.load %[[Q]][%{{.+}}, %c256{{.*}}] : memref<1x512xi8>, vector<16xi8>
// VNNI: %[[C:.+]] = vector.maskedload %{{.+}}[%{{.+}}, %c6{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<8x54xi8>, vector<16xi1>, vector<16xi8> into vector<16xi8>
// VNNI: %[[LO:.+]] = arith.andi %[[C]], %{{.+}} : vector<16xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"(%[[S]], %[[LO]], %[[X0]])
// VNNI: arith.shrui %{{.+}}, %{{.+}} : vector<8xi16>
// VNNI: %[[HI:.+]] = arith.andi %{{.+}}, %{{.+}} : vector<16xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"(%{{.+}}, %[[HI]], %[[X4]])
// VNNI-COUNT-6: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c18{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<8x54xi8>, vector<16xi1>, vector<16xi8> into vector<16xi8>
// VNNI-COUNT-24: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI-NOT: vpdpbusd
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c0{{.*}}], %{{.+}}, %{{.+}} : memref<8x54xi8>, vector<8xi1>, vector<8xi8> into vector<8xi8>
// VNNI: arith.sitofp %{{.+}} : vector<4xi32> to vector<4xf32>
// VNNI: vector.insert_strided_slice %{{.+}}, %{{.+}} {offsets = [0], strides = [1]} : vector<4xf32> into vector<16xf32>
// VNNI: vector.store %{{.+}} : memref<1x8xf32>, vector<4xf32>
// VNNI-LABEL: func.func @q4_all(
// With AVX2 the input takes the same order and each row is a tile of its
// own, the group of 3 blocks on 4 int32 lanes (16-byte vectors, SSSE3's
// vpmaddubsw and vpmaddwd): per word the low and the high nibbles.
// AVX2-LABEL: func.func @q4_one(
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<1x512xi8>
// AVX2: scf.for %{{.+}} = %c0{{(_[0-9]+)?}} to %c8{{(_[0-9]+)?}} step %c1{{(_[0-9]+)?}}
// AVX2-COUNT-8: llvm.call_intrinsic "llvm.x86.ssse3.pmadd.ub.sw.128"
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
// sign bit; the row's 3 scales at byte 0, then 8 words of the 3 blocks,
// word s at byte 6 + 12 s) from the start -128 Σ q_x of each block; vpmaddubsw
// as |q| against q_x with q's sign (vpsignb); plain arithmetic as signed
// bytes.
// VNNI-LABEL: func.func @q8_one(
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c6{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<8x102xi8>, vector<16xi1>, vector<16xi8>
// VNNI: arith.xori %{{.+}}, %{{.+}} : vector<16xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c18{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<8x102xi8>, vector<16xi1>, vector<16xi8>
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c90{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<8x102xi8>, vector<16xi1>, vector<16xi8>
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c0{{.*}}], %{{.+}}, %{{.+}} : memref<8x102xi8>, vector<8xi1>, vector<8xi8>
// AVX2-LABEL: func.func @q8_one(
// AVX2: llvm.call_intrinsic "llvm.x86.ssse3.psign.b.128"
// AVX2: math.absi %{{.+}} : vector<16xi8>
// AVX2: llvm.call_intrinsic "llvm.x86.ssse3.pmadd.ub.sw.128"
// AVX2: llvm.call_intrinsic "llvm.x86.sse2.pmadd.wd"
// GENERIC-LABEL: func.func @q8_one(
// GENERIC: arith.extsi %{{.+}} : vector<32xi8> to vector<32xi32>
rwkv.weight_decl @w : tensor<8x96x!rwkv.quant<q8_0>>
func.func @q8(%x: tensor<?x96xf32>) -> tensor<?x8xf32> {
  %w = rwkv.weight @w : tensor<8x96x!rwkv.quant<q8_0>>
  %y = rwkv.linear %x, %w : (tensor<?x96xf32>, tensor<8x96x!rwkv.quant<q8_0>>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests q5_1 (rows of 2 blocks: 4 bytes of d, 4 of m, 8 of fifth bits, 32
// code bytes): each row's fifth bits one load a group; for vector v of the
// codes, each block's fifth bits shifted right by 4 v, their low byte spread
// over the lane (a byte shuffle), tested against bits 0-3, 16 where set;
// the minimum's term m · d_x Σ q_x an FMA a group; and that a packed
// weight's blocks of rows are views of its bytes.
// VNNI-LABEL: func.func @q5_one(
// VNNI: memref.subview %{{.+}}[0, 0] [4, 48] [1, 1] : memref<8x48xi8> to memref<4x48xi8, strided<[48, 1]>>
// VNNI: %[[H:.+]] = vector.maskedload %{{.+}}[%{{.+}}, %c8{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<4x48xi8, strided<[48, 1]>>, vector<16xi1>, vector<16xi8>
// VNNI: vector.maskedload %{{.+}}[%{{.+}}, %c16{{(_[0-9]+)?}}], %{{.+}}, %{{.+}} : memref<4x48xi8, strided<[48, 1]>>, vector<16xi1>, vector<16xi8>
// VNNI: %[[HW:.+]] = vector.bitcast %[[H]] : vector<16xi8> to vector<4xi32>
// VNNI: arith.shrui %[[HW]], %{{.+}} : vector<4xi32>
// VNNI: vector.shuffle %{{.+}}, %{{.+}} [0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12] : vector<16xi8>, vector<16xi8>
// VNNI: arith.cmpi ne, %{{.+}}, %{{.+}} : vector<16xi8>
// VNNI: arith.select %{{.+}}, %{{.+}}, %{{.+}} : vector<16xi1>, vector<16xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI: vector.fma
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

// -----

// Tests rows of more than one group (20 blocks of q4_0, 360 bytes: a group
// of 16 blocks, 288 bytes, then one of 4): with AVX-512 VNNI the loop over
// whole groups finds group g's code words s at byte 18 g + 32 + 64 s of the
// row and its 16 d at 18 g; the last group's words at 296 + 16 s, its 4 d
// at 288. With AVX2 a whole group takes two halves of 8 blocks on 32-byte
// vectors (bytes 4 o .. 4 o + 31 of each word's 64, o = 0 and 8), each
// half's sums widened into the row's 16 lanes at lane o; the last group
// one of 4 lanes. Block by block (generic), a block's group and its place
// in it are computed (the remainder by 16), the offset of its word in the
// group chosen by whether it lies in the last one (8 for word 0 of a group
// of 4 blocks' 8 bytes of d, else 32).
// VNNI-LABEL: func.func @groups_one(
// VNNI: scf.for %[[G:.+]] = %{{.+}} to %c16{{(_[0-9]+)?}} step %c16{{(_[0-9]+)?}} iter_args
// VNNI: %[[G0:.+]] = arith.muli %[[G]], %c18{{(_[0-9]+)?}} : index
// VNNI: %[[GC:.+]] = arith.addi %[[G0]], %c32{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}}[%{{.+}}, %[[GC]]] : memref<4x360xi8>, vector<64xi8>
// VNNI: %[[G1:.+]] = arith.addi %{{.+}}, %c96{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}}[%{{.+}}, %[[G1]]] : memref<4x360xi8>, vector<64xi8>
// VNNI: vector.load %{{.+}}[%{{.+}}, %{{.+}}] : memref<4x360xi8>, vector<32xi8>
// VNNI: vector.load %{{.+}}[%{{.+}}, %c296{{(_[0-9]+)?}}] : memref<4x360xi8>, vector<16xi8>
// VNNI: vector.load %{{.+}}[%{{.+}}, %c312{{(_[0-9]+)?}}] : memref<4x360xi8>, vector<16xi8>
// VNNI: vector.load %{{.+}}[%{{.+}}, %c288{{(_[0-9]+)?}}] : memref<4x360xi8>, vector<8xi8>
// VNNI-LABEL: func.func @groups_all(
// AVX2-LABEL: func.func @groups_one(
// AVX2: scf.for %{{.+}} = %{{.+}} to %c16{{(_[0-9]+)?}} step %c16{{(_[0-9]+)?}} iter_args
// AVX2-COUNT-4: vector.load %{{.+}} : memref<4x360xi8>, vector<32xi8>
// AVX2: vector.load %{{.+}} : memref<4x360xi8>, vector<16xi8>
// AVX2: vector.insert_strided_slice %{{.+}}, %{{.+}} {offsets = [0], strides = [1]} : vector<8xf32> into vector<16xf32>
// AVX2-COUNT-4: vector.load %{{.+}} : memref<4x360xi8>, vector<32xi8>
// AVX2: vector.load %{{.+}} : memref<4x360xi8>, vector<16xi8>
// AVX2: vector.insert_strided_slice %{{.+}}, %{{.+}} {offsets = [8], strides = [1]} : vector<8xf32> into vector<16xf32>
// AVX2: vector.load %{{.+}}[%{{.+}}, %c296{{(_[0-9]+)?}}] : memref<4x360xi8>, vector<16xi8>
// AVX2: llvm.call_intrinsic "llvm.x86.ssse3.pmadd.ub.sw.128"
// AVX2: vector.insert_strided_slice %{{.+}}, %{{.+}} {offsets = [0], strides = [1]} : vector<4xf32> into vector<16xf32>
// AVX2-LABEL: func.func @groups_all(
// GENERIC-LABEL: func.func @groups_one(
// GENERIC: %[[I:.+]] = arith.remui %[[B:.+]], %c16{{(_[0-9]+)?}} : index
// GENERIC: %[[G:.+]] = arith.subi %[[B]], %[[I]] : index
// GENERIC: %[[LAST:.+]] = arith.cmpi uge, %[[G]], %c16{{(_[0-9]+)?}} : index
// GENERIC: arith.select %[[LAST]], %c8{{(_[0-9]+)?}}, %c32{{(_[0-9]+)?}} : index
// GENERIC-LABEL: func.func @groups_all(
rwkv.weight_decl @w : tensor<4x640x!rwkv.quant<q4_0>>
func.func @groups(%x: tensor<?x640xf32>) -> tensor<?x4xf32> {
  %w = rwkv.weight @w : tensor<4x640x!rwkv.quant<q4_0>>
  %y = rwkv.linear %x, %w : (tensor<?x640xf32>, tensor<4x640x!rwkv.quant<q4_0>>) -> tensor<?x4xf32>
  return %y : tensor<?x4xf32>
}

// -----

// Tests a sequence's product by integer dot products (AVX-512 VNNI, N a
// multiple of 16: 48 rows of q8_0, K = 64, 2 blocks of 34 bytes a row). The
// input is quantized once per token and block: 16 words of 4 q_x a token,
// d_x, and the start -128 Σ q_x of each block's sums (the codes read as q +
// 128). Each tile of 32 rows, then the last 16, is repacked into a buffer
// of its own, in a loop over its groups of 16 rows: per group of blocks, in
// a loop over the words v, the 16 rows' words v of the group (one load a
// row, lane i block i's) transposed by shuffles into a vector a block of
// one word of each row (their sign bits flipped, as above), and the same
// for the 16 rows' d. A last partial group (here the row's 2 blocks) takes
// vectors of 4 lanes (8 bytes loaded a row, masked), its transposes'
// columns past its blocks unused. Tiles of 4 tokens then
// run per block 8 words × 2 groups of 16 rows × 4 tokens = 64 vpdpbusd
// into 8 f32 accumulators, and store 16 rows of a token at once. The batch
// function (B sequences of one token) takes the same tiles when B > 4; a
// batch of at most 2, else at most 4, reads each row once for 2 or 4
// tokens, as decode reads it: each token's input quantized into its row of
// the (2 or 4, 512) buffers in the order of a group's codes (token min(i,
// B - 1)), each word of the row's codes loaded once against the tokens'
// q_x (8 words × 2 or 4 tokens vpdpbusd on 4 lanes), and the sums of
// tokens past the first stored only where i < B. With AVX2 the sequence
// takes the same tiles on 256-bit vectors: tiles of 16 rows (two vectors
// of 8) by one token, 16 vpmaddubsw a block, q8_0's codes kept signed (|q|
// against q_x with q's sign: no xor, no start sums).
// VNNI-LABEL: func.func @dots_seq(
// VNNI: memref.alloca() {alignment = 64 : i64} : memref<1x2x8x16xi32>
// VNNI: memref.alloca() {alignment = 64 : i64} : memref<2x2x8x16xi32>
// VNNI: %[[START:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x2xi32>
// VNNI: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x2xf32>
// VNNI: %[[Q:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x16xi32>
// VNNI: math.roundeven %{{.+}} : vector<16xf32>
// VNNI: vector.store %{{.+}}, %[[Q]][%{{.+}}, %{{.+}}] : memref<?x16xi32>, vector<4xi32>
// VNNI: arith.muli %{{.+}}, %c-128_i32 : i32
// VNNI: memref.store %{{.+}}, %[[START]]
// VNNI: scf.for %[[G:.+]] = %{{.+}} to %c2 step
// VNNI: scf.for %[[V:.+]] = %{{.+}} to %c8{{.*}} step
// VNNI-COUNT-16: vector.maskedload %{{.+}} : memref<48x68xi8>, vector<16xi1>, vector<16xi8> into vector<16xi8>
// VNNI: vector.shuffle %{{.+}}, %{{.+}} [0, 4, 1, 5, 2, 6, 3, 7] : vector<4xi32>, vector<4xi32>
// VNNI: arith.xori %{{.+}}, %{{.+}} : vector<16xi32>
// VNNI: vector.store %{{.+}}, %{{.+}}[%[[G]], %{{.+}}, %[[V]], %{{.+}}] : memref<2x2x8x16xi32>, vector<16xi32>
// VNNI: arith.xori %{{.+}}, %{{.+}} : vector<16xi32>
// VNNI: vector.store %{{.+}}, %{{.+}}[%[[G]], %{{.+}}, %[[V]], %{{.+}}] : memref<2x2x8x16xi32>, vector<16xi32>
// VNNI-NOT: arith.xori
// VNNI: }
// VNNI-COUNT-16: vector.maskedload %{{.+}} : memref<48x68xi8>, vector<8xi1>, vector<8xi8> into vector<8xi8>
// VNNI: arith.extf %{{.+}} : vector<16xf16> to vector<16xf32>
// VNNI: arith.extf %{{.+}} : vector<16xf16> to vector<16xf32>
// VNNI-NOT: arith.extf
// VNNI: scf.for %{{.+}} step %c4
// VNNI: scf.for {{.+}} -> ({{(vector<16xf32>, ){7}vector<16xf32>}})
// VNNI: memref.load %[[START]]
// VNNI: vector.broadcast %{{.+}} : i32 to vector<16xi32>
// VNNI-COUNT-64: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI-NOT: vpdpbusd
// VNNI: arith.sitofp %{{.+}} : vector<16xi32> to vector<16xf32>
// VNNI: vector.store %{{.+}} : memref<?x48xf32>, vector<16xf32>
// VNNI-LABEL: func.func @dots_one(
// VNNI-LABEL: func.func @dots_batch(
// VNNI: memref.alloca() {alignment = 64 : i64} : memref<2x2x8x16xi32>
// VNNI: %[[XQ4:.+]] = memref.alloca() {alignment = 64 : i64} : memref<4x512xi8>
// VNNI: %[[XQ2:.+]] = memref.alloca() {alignment = 64 : i64} : memref<2x512xi8>
// VNNI: %[[TWO:.+]] = arith.cmpi ule, %[[B:.+]], %c2{{.*}} : index
// VNNI: scf.if %[[TWO]] {
// VNNI: %[[LAST:.+]] = arith.subi %[[B]], %c1{{.*}} : index
// VNNI: scf.for %[[I:.+]] = %c0{{.*}} to %c2{{.*}} step %c1
// VNNI: arith.minui %[[I]], %[[LAST]] : index
// VNNI: vector.store %{{.+}}, %[[XQ2]][%[[I]], %{{.+}}] : memref<2x512xi8>, vector<4xi8>
// VNNI: scf.for %[[ROW:.+]] = %c0{{.*}} to %c48
// VNNI: vector.maskedload %{{.+}}[%[[ROW]], %{{.+}}], %{{.+}}, %{{.+}} : memref<48x68xi8>, vector<16xi1>, vector<16xi8>
// VNNI-COUNT-16: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI-NOT: vpdpbusd
// VNNI: arith.cmpi ult, %c1{{.*}}, %[[B]] : index
// VNNI: } else {
// VNNI: %[[FOUR:.+]] = arith.cmpi ule, %[[B]], %c4{{.*}} : index
// VNNI: scf.if %[[FOUR]] {
// VNNI: vector.store %{{.+}}, %[[XQ4]][%{{.+}}, %{{.+}}] : memref<4x512xi8>, vector<4xi8>
// VNNI: vector.maskedload %{{.+}} : memref<48x68xi8>, vector<16xi1>, vector<16xi8>
// VNNI-COUNT-32: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.128"
// VNNI-NOT: vpdpbusd
// VNNI: arith.cmpi ult, %c1{{.*}}, %[[B]] : index
// VNNI: arith.cmpi ult, %c2{{.*}}, %[[B]] : index
// VNNI: arith.cmpi ult, %c3{{.*}}, %[[B]] : index
// VNNI: } else {
// VNNI-COUNT-64: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// AVX2-LABEL: func.func @dots_seq(
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<2x2x8xf32>
// AVX2: memref.alloca() {alignment = 64 : i64} : memref<2x2x8x8xi32>
// AVX2-NOT: memref<?x2xi32>
// AVX2: scf.for %{{.+}} = %{{.+}} to %c48 step %c16
// AVX2-NOT: arith.xori
// AVX2: vector.store %{{.+}} : memref<2x2x8x8xi32>, vector<8xi32>
// AVX2: scf.for %{{.+}} step %c1
// AVX2: scf.for {{.+}} -> (vector<8xf32>, vector<8xf32>)
// AVX2-COUNT-16: llvm.call_intrinsic "llvm.x86.avx2.psign.b"
// AVX2: arith.sitofp %{{.+}} : vector<8xi32> to vector<8xf32>
// AVX2-NOT: vpdpbusd
// AVX2-LABEL: func.func @dots_one(
rwkv.weight_decl @w : tensor<48x64x!rwkv.quant<q8_0>>
func.func @dots(%x: tensor<?x64xf32>) -> tensor<?x48xf32> {
  %w = rwkv.weight @w : tensor<48x64x!rwkv.quant<q8_0>>
  %y = rwkv.linear %x, %w : (tensor<?x64xf32>, tensor<48x64x!rwkv.quant<q8_0>>) -> tensor<?x48xf32>
  return %y : tensor<?x48xf32>
}

// -----

// Tests that a batch of more than 4 takes the integer-dot tiles of 32 rows
// when K is a multiple of 768 above it (K = 1536: the f32 tiles of a batch
// contract such a K in chunks of 8 rows, which the dots' tiles of whole
// vectors of 16 rows cannot take: such a product once computed nothing).
// VNNI-LABEL: func.func @wide_batch(
// VNNI: memref.alloca() {alignment = 64 : i64} : memref<2x48x8x16xi32>
// VNNI: scf.if
// VNNI: } else {
// VNNI-COUNT-64: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
rwkv.weight_decl @w : tensor<32x1536x!rwkv.quant<q8_0>>
func.func @wide(%x: tensor<?x1536xf32>) -> tensor<?x32xf32> {
  %w = rwkv.weight @w : tensor<32x1536x!rwkv.quant<q8_0>>
  %y = rwkv.linear %x, %w : (tensor<?x1536xf32>, tensor<32x1536x!rwkv.quant<q8_0>>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
