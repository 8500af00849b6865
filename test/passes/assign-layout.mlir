// RUN: rwkv-opt %s --split-input-file --verify-diagnostics --rwkv-assign-layout | FileCheck %s
// RUN: rwkv-opt %s --split-input-file --verify-diagnostics --rwkv-assign-layout="weight-alignment=32 slot-alignment=4" | FileCheck %s --check-prefix=SMALL

// Tests that weights are placed in declaration order at multiples of the
// weight alignment of the module's resource config (bytes, by their stored
// type), state slots at multiples of the slot alignment (floats), and the
// sizes are recorded rounded up to the alignments.
// CHECK-LABEL: module attributes
// CHECK-SAME: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 320, state_floats = 48>
// CHECK-SAME: rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>
// CHECK: rwkv.weight_decl @emb : tensor<4x8xf32> at <offset = 0>
// CHECK: rwkv.weight_decl @m : tensor<8x8xf16> at <offset = 128>
// CHECK: rwkv.weight_decl @v : tensor<3xbf16> at <offset = 256>
// CHECK: rwkv.state_decl @s0 : tensor<8xf32> init <zero> at <offset = 0>
// CHECK: rwkv.state_decl @s1 : tensor<20xf32> init <neg_large> at <offset = 16>
// With the alignments given as options, which set the resource config:
// SMALL-LABEL: module attributes
// SMALL-SAME: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 288, state_floats = 28>
// SMALL-SAME: rwkv.resource_config = #rwkv.resource_config<weight_alignment = 32, slot_alignment = 4>
// SMALL: rwkv.weight_decl @m : tensor<8x8xf16> at <offset = 128>
// SMALL: rwkv.weight_decl @v : tensor<3xbf16> at <offset = 256>
// SMALL: rwkv.state_decl @s1 : tensor<20xf32> init <neg_large> at <offset = 8>
module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  rwkv.weight_decl @emb : tensor<4x8xf32>
  rwkv.weight_decl @m : tensor<8x8xf16>
  rwkv.weight_decl @v : tensor<3xbf16>
  rwkv.state_decl @s0 : tensor<8xf32> init <zero>
  rwkv.state_decl @s1 : tensor<20xf32> init <neg_large>
}

// -----

// Tests that a weight that initializes a state slot is stored as f32 and
// placed with that size.
// CHECK-LABEL: module attributes
// CHECK-SAME: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 128, state_floats = 16>
// CHECK: rwkv.weight_decl @m : tensor<4x4xbf16> at <offset = 0>
// CHECK: rwkv.weight_decl @ts : tensor<1x4x4xf32> at <offset = 64>
// CHECK: rwkv.state_decl @s : tensor<1x4x4xf32> init <weight> @ts at <offset = 0>
module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  rwkv.weight_decl @m : tensor<4x4xbf16>
  rwkv.weight_decl @ts : tensor<1x4x4xf16>
  rwkv.state_decl @s : tensor<1x4x4xf32> init <weight> @ts
}

// -----

// Tests that a block-quantized weight is placed with its blocks' bytes:
// 4 rows of 2 blocks of 24 (q5_1) and 34 (q8_0) bytes.
// CHECK-LABEL: module attributes
// CHECK-SAME: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 576, state_floats = 0>
// CHECK: rwkv.weight_decl @a : tensor<4x64x!rwkv.quant<q5_1>> at <offset = 0>
// CHECK: rwkv.weight_decl @b : tensor<4x64x!rwkv.quant<q8_0>> at <offset = 192>
// CHECK: rwkv.weight_decl @c : tensor<4xf32> at <offset = 512>
module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  rwkv.weight_decl @a : tensor<4x64x!rwkv.quant<q5_1>>
  rwkv.weight_decl @b : tensor<4x64x!rwkv.quant<q8_0>>
  rwkv.weight_decl @c : tensor<4xf32>
}
