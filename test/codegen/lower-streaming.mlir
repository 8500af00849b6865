// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops | FileCheck %s
// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="quant-dot=avx512-vnni" | FileCheck %s --check-prefix=VNNI

// A model whose weight image exceeds 64 MiB streams its weights from memory
// every token (LowerToLoops.cpp, kCachedWeightBytes): here a 96 MiB head.
// Tests that decode reads f16 rows of 6 KB (shorter than two pages) one per
// tile, as one linear stream, while rows of 8 KB keep 8 rows per tile
// (LowerLinear.cpp, kStreamRowBytes).
// CHECK-LABEL: func.func @rows_one(
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c256{{.*}}) step (%c1{{(_[0-9]+)?}})
// CHECK: memref<256x3072xf16
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c128{{.*}}) step (%c8{{(_[0-9]+)?}})
// CHECK: memref<128x4096xf16
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c49152{{.*}}) step (%c1{{(_[0-9]+)?}})
// CHECK-LABEL: func.func @rows_all(
rwkv.weight_decl @value : tensor<256x3072xf16>
rwkv.weight_decl @long : tensor<128x4096xf16>
rwkv.weight_decl @head : tensor<49152x1024xf16>
func.func @rows(%x: tensor<?x3072xf32>, %y: tensor<?x4096xf32>, %z: tensor<?x1024xf32>) -> (tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x49152xf32>) {
  %w = rwkv.weight @value : tensor<256x3072xf16>
  %a = rwkv.linear %x, %w : (tensor<?x3072xf32>, tensor<256x3072xf16>) -> tensor<?x256xf32>
  %l = rwkv.weight @long : tensor<128x4096xf16>
  %b = rwkv.linear %y, %l : (tensor<?x4096xf32>, tensor<128x4096xf16>) -> tensor<?x128xf32>
  %h = rwkv.weight @head : tensor<49152x1024xf16>
  %c = rwkv.linear %z, %h : (tensor<?x1024xf32>, tensor<49152x1024xf16>) -> tensor<?x49152xf32>
  return %a, %b, %c : tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x49152xf32>
}

// -----

// Tests that decode of such a model splits the heads of WKV-7 across threads
// (its state has left the caches by the next token), that in a sequence
// a LoRA, too small to split its columns, splits its blocks of 4 tokens,
// both of its products in one parallel loop, and that the batch entry
// prefetches the next row's WKV-7 state (another sequence's) for writing.
// CHECK-LABEL: func.func @wkv7_seq(
// CHECK: %[[B1:.+]] = arith.muli %{{.+}}, %c4
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%[[B1]]) step (%c4{{(_[0-9]+)?}})
// CHECK: memref<32x8xf16
// CHECK-NOT: scf.parallel
// CHECK: memref<8x32xf16
// CHECK: scf.parallel
// CHECK-LABEL: func.func @wkv7_one(
// CHECK-NOT: arith.muli
// CHECK: scf.parallel (%[[H:.+]]) = (%{{.+}}) to (%c2{{.*}}) step (%c1{{(_[0-9]+)?}})
// CHECK: vector.load %{{.+}}[%[[H]], %{{.+}}, %{{.+}}] {{.*}} memref<2x16x16xf32
// CHECK-LABEL: func.func @wkv7_all(
// CHECK-NOT: memref.prefetch
// CHECK-LABEL: func.func @wkv7_batch(
// CHECK: memref.prefetch %{{.+}}[%{{.+}}, %{{.+}}, %c0{{.*}}], write, locality<3>, data : memref<2x16x16xf32
rwkv.weight_decl @a1 : tensor<32x8xf16>
rwkv.weight_decl @a2 : tensor<8x32xf16>
rwkv.weight_decl @head : tensor<49152x1024xf16>
rwkv.state_decl @s : tensor<2x16x16xf32> init <zero>
func.func @wkv7(%r: tensor<?x32xf32>, %w: tensor<?x32xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %a: tensor<?x32xf32>, %b: tensor<?x32xf32>, %z: tensor<?x1024xf32>) -> (tensor<?x32xf32>, tensor<?x49152xf32>) {
  %a1 = rwkv.weight @a1 : tensor<32x8xf16>
  %a2 = rwkv.weight @a2 : tensor<8x32xf16>
  %g = rwkv.lora %a, %a1, %a2 {act = #rwkv.activation<none>, out_act = #rwkv.activation<sigmoid>}
      : (tensor<?x32xf32>, tensor<32x8xf16>, tensor<8x32xf16>) -> tensor<?x32xf32>
  %y = rwkv.wkv7 %r, %w, %k, %v, %g, %b state @s {heads = 2 : i64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %h = rwkv.weight @head : tensor<49152x1024xf16>
  %c = rwkv.linear %z, %h : (tensor<?x1024xf32>, tensor<49152x1024xf16>) -> tensor<?x49152xf32>
  return %y, %c : tensor<?x32xf32>, tensor<?x49152xf32>
}

// -----

// Tests that decode of block-quantized weights that stream from memory
// reads rows shorter than two pages one per tile (LowerQuantLinear.cpp,
// kStreamRowBytes) and prefetches as it goes (decodeTile): a tile of one
// row (q8_0 rows of 1,088 bytes) the same block's codes (32 bytes a block
// from the row's start) of the row
// kPrefetchBytes / 1,088 = 3 rows on, and of 4,352 bytes (the 0.4B's FFN
// value) the next row; a tile of 4 rows (8,704 bytes) those of the next
// tile, each clamped to the last row. The sequence function, which
// dequantizes each tile once for all its tokens, does not.
// CHECK-LABEL: func.func @qrows_seq(
// CHECK-NOT: memref.prefetch
// CHECK-LABEL: func.func @qrows_one(
// CHECK: scf.parallel (%[[R:.+]]) = (%{{.+}}) to (%c65536{{.*}}) step (%c1{{(_[0-9]+)?}})
// CHECK: %[[N3:.+]] = arith.addi %[[R]], %c3{{(_[0-9]+)?}} : index
// CHECK: %[[C3:.+]] = arith.minui %[[N3]], %c65535{{(_[0-9]+)?}} : index
// CHECK: memref.prefetch %{{.+}}[%[[C3]], %{{.+}}], read, locality<3>, data : memref<65536x1088xi8>
// CHECK: memref<64x4352xi8>
// CHECK: scf.for %[[M:.+]] = %{{.+}} to %c64{{(_[0-9]+)?}} step %c1{{(_[0-9]+)?}}
// CHECK: %[[N1:.+]] = arith.addi %[[M]], %c1{{(_[0-9]+)?}} : index
// CHECK: %[[C1:.+]] = arith.minui %[[N1]], %c63{{(_[0-9]+)?}} : index
// CHECK: memref.prefetch %{{.+}}[%[[C1]], %{{.+}}], read, locality<3>, data : memref<64x4352xi8>
// CHECK: memref<64x8704xi8>
// CHECK: scf.parallel (%[[T:.+]]) = (%{{.+}}) to (%c64{{(_[0-9]+)?}}) step (%c4
// CHECK: %[[N4:.+]] = arith.addi %[[T]], %c4{{(_[0-9]+)?}} : index
// CHECK: %[[C4:.+]] = arith.minui %[[N4]], %c63{{(_[0-9]+)?}} : index
// CHECK: memref.prefetch %{{.+}}[%[[C4]], %{{.+}}], read, locality<3>, data : memref<64x8704xi8>
// CHECK-LABEL: func.func @qrows_all(
rwkv.weight_decl @qhead : tensor<65536x1024x!rwkv.quant<q8_0>>
rwkv.weight_decl @qmid : tensor<64x4096x!rwkv.quant<q8_0>>
rwkv.weight_decl @qlong : tensor<64x8192x!rwkv.quant<q8_0>>
func.func @qrows(%x: tensor<?x1024xf32>, %y: tensor<?x4096xf32>, %z: tensor<?x8192xf32>) -> (tensor<?x65536xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
  %h = rwkv.weight @qhead : tensor<65536x1024x!rwkv.quant<q8_0>>
  %a = rwkv.linear %x, %h : (tensor<?x1024xf32>, tensor<65536x1024x!rwkv.quant<q8_0>>) -> tensor<?x65536xf32>
  %m = rwkv.weight @qmid : tensor<64x4096x!rwkv.quant<q8_0>>
  %b = rwkv.linear %y, %m : (tensor<?x4096xf32>, tensor<64x4096x!rwkv.quant<q8_0>>) -> tensor<?x64xf32>
  %l = rwkv.weight @qlong : tensor<64x8192x!rwkv.quant<q8_0>>
  %c = rwkv.linear %z, %l : (tensor<?x8192xf32>, tensor<64x8192x!rwkv.quant<q8_0>>) -> tensor<?x64xf32>
  return %a, %b, %c : tensor<?x65536xf32>, tensor<?x64xf32>, tensor<?x64xf32>
}

// -----

// Tests that with AVX-512 VNNI a tile of one row of q5_1 (rows of 768
// bytes, streaming: 2 groups of 16 blocks, 384 bytes each: its d at bytes
// 0-31 of the group, m 32-63, fifth bits 64-127, code words 128-383, words
// s of the 16 blocks at 128 + 64 s) reads its blocks in groups
// (LowerQuantLinear.cpp, decodeGroupTile), a block to an int32 lane: the
// group's fifth bits one 64-byte load, then per word one 64-byte load of
// the 16 blocks' words, its low nibbles (a mask) and high ones (a shift of
// 16-bit words) each with their fifth bits (a byte shuffle and a test), two
// vpdpbusd against the input quantized a block at a time into the same
// order; then the group's 16 d and 16 m one 32-byte load each. No software
// prefetch (the hardware's measured faster there).
// VNNI-LABEL: func.func @qpair_one(
// VNNI: scf.for %{{.+}} = %{{.+}} to %c32{{(_[0-9]+)?}} step %c1
// VNNI: scf.parallel (%[[R:.+]]) = (%{{.+}}) to (%c98304{{.*}}) step (%c1{{(_[0-9]+)?}})
// VNNI: scf.for %[[G:.+]] = %{{.+}} to %c32{{(_[0-9]+)?}} step %c16{{.*}} iter_args
// VNNI-NOT: memref.prefetch
// VNNI: %[[H0:.+]] = arith.muli %[[G]], %c24{{(_[0-9]+)?}} : index
// VNNI: %[[H:.+]] = arith.addi %[[H0]], %c64{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}}[%[[R]], %[[H]]] : memref<98304x768xi8>, vector<64xi8>
// VNNI: %[[C0:.+]] = arith.muli %[[G]], %c24{{(_[0-9]+)?}} : index
// VNNI: %[[C:.+]] = arith.addi %[[C0]], %c128{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}}[%[[R]], %[[C]]] : memref<98304x768xi8>, vector<64xi8>
// VNNI: vector.shuffle
// VNNI: arith.cmpi ne, %{{.+}}, %{{.+}} : vector<64xi8>
// VNNI: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI: arith.shrui %{{.+}}, %{{.+}} : vector<32xi16>
// VNNI-COUNT-7: llvm.call_intrinsic "llvm.x86.avx512.vpdpbusd.512"
// VNNI: vector.load %{{.+}}[%[[R]], %{{.+}}] : memref<98304x768xi8>, vector<32xi8>
// VNNI: arith.addi %{{.+}}, %c32{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}} : memref<98304x768xi8>, vector<32xi8>
// VNNI-NOT: memref.prefetch
// VNNI-LABEL: func.func @qpair_all(
rwkv.weight_decl @qw : tensor<98304x1024x!rwkv.quant<q5_1>>
func.func @qpair(%x: tensor<?x1024xf32>) -> tensor<?x98304xf32> {
  %w = rwkv.weight @qw : tensor<98304x1024x!rwkv.quant<q5_1>>
  %y = rwkv.linear %x, %w : (tensor<?x1024xf32>, tensor<98304x1024x!rwkv.quant<q5_1>>) -> tensor<?x98304xf32>
  return %y : tensor<?x98304xf32>
}

// -----

// Tests that the blocks of a packed weight (RWKV-7's r, k and v) are one
// parallel loop over all their rows, each tile switching to its block's
// input, rows and result: one fork and join for the three products, in
// decode and in a sequence. (The unused head makes the image stream.)
// CHECK-LABEL: func.func @packed_seq(
// CHECK: scf.parallel (%[[O:.+]]) = (%{{.+}}) to (%c3072{{.*}}) step (%c4{{(_[0-9]+)?}})
// CHECK: %[[WHICH:.+]] = arith.divui %[[O]], %c1024
// CHECK: scf.index_switch %[[WHICH]]
// CHECK: case 0 {
// CHECK: case 1 {
// CHECK: default {
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func @packed_one(
// CHECK: scf.parallel (%[[O1:.+]]) = (%{{.+}}) to (%c3072{{.*}}) step (%c1{{(_[0-9]+)?}})
// CHECK: %[[WHICH1:.+]] = arith.divui %[[O1]], %c1024
// CHECK: scf.index_switch %[[WHICH1]]
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func @packed_all(
// CHECK-LABEL: func.func @packed_batch(
// CHECK: scf.parallel (%{{.+}}) = (%{{.+}}) to (%c3072{{.*}}) step (%c4{{(_[0-9]+)?}})
// CHECK: scf.index_switch
// CHECK-NOT: scf.parallel
rwkv.weight_decl @w : tensor<3072x1024xf16>
rwkv.weight_decl @m0 : tensor<1x1x1024xf32>
rwkv.weight_decl @m1 : tensor<1x1x1024xf32>
rwkv.weight_decl @m2 : tensor<1x1x1024xf32>
rwkv.weight_decl @head : tensor<49152x1024xf16>
func.func @packed(%a: tensor<?x1024xf32>, %b: tensor<?x1024xf32>) -> (tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>) {
  %w = rwkv.weight @w : tensor<3072x1024xf16>
  %m0 = rwkv.weight @m0 : tensor<1x1x1024xf32>
  %m1 = rwkv.weight @m1 : tensor<1x1x1024xf32>
  %m2 = rwkv.weight @m2 : tensor<1x1x1024xf32>
  %r, %k, %v = rwkv.packed_mix_linear %a, %b [%m0, %m1, %m2], %w : (tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<1x1x1024xf32>, tensor<1x1x1024xf32>, tensor<1x1x1024xf32>, tensor<3072x1024xf16>) -> (tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>)
  return %r, %k, %v : tensor<?x1024xf32>, tensor<?x1024xf32>, tensor<?x1024xf32>
}

// -----

// Tests that decode of an in_out product wider than one tile (a LoRA's
// second product, 64 x 256, in a model that streams) accumulates y in
// memory row by row of W, each row one pass over y's vectors (LowerLinear.cpp,
// inOutRowsDecode), then applies the epilogue; the first product (16 x 64,
// one tile) keeps its register tile. A sequence keeps its tiles (their
// loops over K carry the accumulators).
// CHECK-LABEL: func.func @lora_up_seq(
// CHECK-NOT: to %c64{{(_[0-9]+)?}} step %c1{{(_[0-9]+)?}} {
// CHECK-LABEL: func.func @lora_up_one(
// CHECK: scf.for %{{.+}} = %c0{{.*}} to %c256{{.*}} step %c16
// CHECK: vector.store %{{.+}} : memref<1x256xf32
// CHECK: scf.for %[[K:.+]] = %c0{{.*}} to %c64{{.*}} step %c1{{(_[0-9]+)?}} {
// CHECK: scf.for %[[J:.+]] = %c0{{.*}} to %c256{{.*}} step %c16
// CHECK: vector.load %{{.+}}[%{{.+}}, %[[J]]] : memref<1x256xf32{{.*}}>, vector<16xf32>
// CHECK: vector.fma
// CHECK-NOT: vector.fma
// CHECK: vector.store %{{.+}}[%{{.+}}, %[[J]]] : memref<1x256xf32
// CHECK: scf.for %{{.+}} = %c0{{.*}} to %c256{{.*}} step %c16
// CHECK: math.exp
// CHECK-LABEL: func.func @lora_up_all(
rwkv.weight_decl @b1 : tensor<16x64xf16>
rwkv.weight_decl @b2 : tensor<64x256xf16>
rwkv.weight_decl @head : tensor<49152x1024xf16>
func.func @lora_up(%a: tensor<?x16xf32>, %z: tensor<?x1024xf32>) -> (tensor<?x256xf32>, tensor<?x49152xf32>) {
  %b1 = rwkv.weight @b1 : tensor<16x64xf16>
  %b2 = rwkv.weight @b2 : tensor<64x256xf16>
  %g = rwkv.lora %a, %b1, %b2 {act = #rwkv.activation<none>, out_act = #rwkv.activation<sigmoid>}
      : (tensor<?x16xf32>, tensor<16x64xf16>, tensor<64x256xf16>) -> tensor<?x256xf32>
  %h = rwkv.weight @head : tensor<49152x1024xf16>
  %c = rwkv.linear %z, %h : (tensor<?x1024xf32>, tensor<49152x1024xf16>) -> tensor<?x49152xf32>
  return %g, %c : tensor<?x256xf32>, tensor<?x49152xf32>
}

// -----

// Tests that with AVX-512 VNNI a streaming q4_0 product (K = 4096: rows of
// 8 groups of 288 bytes, each group's 16 d then its 256 code bytes) reads
// its rows one per tile, each group's codes and d from where the group
// starts (byte 18 g for the group from block g), with no software prefetch:
// the row is one stream (LowerQuantLinear.cpp, decodeGroupTile).
// VNNI-LABEL: func.func @qside_one(
// VNNI: scf.parallel (%[[R:.+]]) = (%{{.+}}) to (%c1024{{.*}}) step (%c1{{(_[0-9]+)?}})
// VNNI-NOT: memref.prefetch
// VNNI: scf.for %[[G:.+]] = %{{.+}} to %c128{{(_[0-9]+)?}} step %c16{{.*}} iter_args
// VNNI: %[[G0:.+]] = arith.muli %[[G]], %c18{{(_[0-9]+)?}} : index
// VNNI: %[[GC:.+]] = arith.addi %[[G0]], %c32{{(_[0-9]+)?}} : index
// VNNI: vector.load %{{.+}}[%[[R]], %[[GC]]] : memref<1024x2304xi8>, vector<64xi8>
// VNNI: vector.load %{{.+}}[%[[R]], %{{.+}}] : memref<1024x2304xi8>, vector<32xi8>
// VNNI-NOT: memref.prefetch
// VNNI-LABEL: func.func @qside_all(
rwkv.weight_decl @qv : tensor<1024x4096x!rwkv.quant<q4_0>>
rwkv.weight_decl @head : tensor<49152x1024xf16>
func.func @qside(%x: tensor<?x4096xf32>, %z: tensor<?x1024xf32>) -> (tensor<?x1024xf32>, tensor<?x49152xf32>) {
  %w = rwkv.weight @qv : tensor<1024x4096x!rwkv.quant<q4_0>>
  %y = rwkv.linear %x, %w : (tensor<?x4096xf32>, tensor<1024x4096x!rwkv.quant<q4_0>>) -> tensor<?x1024xf32>
  %h = rwkv.weight @head : tensor<49152x1024xf16>
  %c = rwkv.linear %z, %h : (tensor<?x1024xf32>, tensor<49152x1024xf16>) -> tensor<?x49152xf32>
  return %y, %c : tensor<?x1024xf32>, tensor<?x49152xf32>
}

// -----

// Tests that in a model that streams its weights a sequence's per-token
// loops whose tokens are independent (here an add; LoweringContext::
// forEachToken) split the tokens across the threads in blocks of 4: an
// scf.parallel of step 4 whose body runs its block's tokens up to
// min(t + 4, T). Decode has one token and no parallel loop.
// CHECK-LABEL: func.func @tokens_seq(
// CHECK: scf.parallel (%[[T0:.+]]) = (%{{.+}}) to (%{{.+}}) step (%c4{{(_[0-9]+)?}})
// CHECK: %[[NEXT:.+]] = arith.addi %[[T0]], %c4{{(_[0-9]+)?}} : index
// CHECK: %[[END:.+]] = arith.minui %[[NEXT]], %{{.+}} : index
// CHECK: scf.for %[[T:.+]] = %[[T0]] to %[[END]] step %c1{{(_[0-9]+)?}}
// CHECK: vector.store %{{.+}}[%[[T]], %{{.+}}] : memref<?x1024xf32>, vector<16xf32>
// CHECK: scf.reduce
// CHECK-LABEL: func.func @tokens_one(
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func @tokens_all(
rwkv.weight_decl @head : tensor<49152x1024xf16>
func.func @tokens(%x: tensor<?x1024xf32>, %y: tensor<?x1024xf32>) -> tensor<?x1024xf32> {
  %s = rwkv.add %x, %y : (tensor<?x1024xf32>, tensor<?x1024xf32>) -> tensor<?x1024xf32>
  return %s : tensor<?x1024xf32>
}
