// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-cpu-pipeline-to-loops | FileCheck %s --check-prefix=LOOPS
// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-cpu-pipeline | FileCheck %s --check-prefix=LLVM
// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-cpu-pipeline-to-loops="weight-type=f16 fuse=false" | FileCheck %s --check-prefix=OPTIONS

// Tests that the CPU pipeline turns the one-layer RWKV-4 model into
// functions over memrefs with the weights and state placed: @forward_trunk
// (the layers, up to rwkv.last_token), which the sequence functions
// @forward_seq (the head on the last token) and @forward_all (the head on
// every token) call, as does @forward_prefix (the state only, no head: the
// runtime's chunks before the last), @forward_one, the one-token
// specialisation, and
// @forward_batch, B rows each one token of a sequence with its own state
// (the states' addresses in a memref<?xi64>); then into the LLVM dialect,
// where the batch's state descriptors built from those addresses are no
// longer casts. @forward_one takes no heap memory: the runtime
// relies on it (RNN mode keeps no copy of the state to undo a failed
// allocation).

// LOOPS: module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 4352, state_floats = 80>, rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>
// LOOPS: rwkv.weight_decl @emb.weight : tensor<16x8xf32> at <offset = 0>
// LOOPS: rwkv.weight_decl @blocks.0.att.time_decay.neg_exp : tensor<8xf32> derive <neg_exp> of @blocks.0.att.time_decay at <offset = 1792>
// LOOPS: rwkv.state_decl @state.0.att.shift : tensor<8xf32> init <zero> at <offset = 0>
// LOOPS: rwkv.state_decl @state.0.att.pp : tensor<8xf32> init <neg_large> at <offset = 48>
// LOOPS-LABEL: func.func @forward_seq(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<1x16xf32>) attributes {llvm.emit_c_interface}
// LOOPS: %[[X:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8xf32>
// LOOPS: call @forward_trunk(%{{.+}}, %{{.+}}, %{{.+}}, %[[X]])
// LOOPS: vector.fma {{.*}} : vector<8xf32>
// LOOPS: memref.dealloc %[[X]]
// LOOPS-LABEL: func.func @forward_one(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<1xi32>, %{{.+}}: memref<1x16xf32>)
// LOOPS-NOT: memref.alloc(
// LOOPS: memref.alloca() {alignment = 64 : i64} : memref<1x8xf32>
// LOOPS: memref.view %{{.+}}[%{{.+}}][] : memref<?xi8> to memref<16x8xf32>
// LOOPS: memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [8], strides: [1]
// LOOPS-NOT: rwkv.
// LOOPS: return
// LOOPS-LABEL: func.func @forward_all(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?x16xf32>) attributes {llvm.emit_c_interface}
// LOOPS: call @forward_trunk(
// LOOPS-LABEL: func.func private @forward_trunk(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?x8xf32>) attributes {passthrough = ["noinline"]}
// LOOPS: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8xf32>
// LOOPS: memref.view %{{.+}}[%{{.+}}][] : memref<?xi8> to memref<16x8xf32>
// LOOPS: scf.for
// LOOPS: memref.copy
// LOOPS: memref.dealloc
// LOOPS: return
// LOOPS-LABEL: func.func @forward_prefix(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<?xi32>) attributes {llvm.emit_c_interface}
// LOOPS: %[[P:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8xf32>
// LOOPS-NEXT: call @forward_trunk(%{{.+}}, %{{.+}}, %{{.+}}, %[[P]])
// LOOPS-NEXT: memref.dealloc %[[P]]
// LOOPS-NEXT: return
// LOOPS-LABEL: func.func @forward_batch(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xi64>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?x16xf32>) attributes {llvm.emit_c_interface}
// LOOPS: llvm.inttoptr
// LOOPS: builtin.unrealized_conversion_cast
// LOOPS-NOT: call @forward_trunk
// LOOPS: return

// LLVM-LABEL: llvm.func @forward_seq(
// LLVM: llvm.call @forward_trunk(
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_seq(
// LLVM-LABEL: llvm.func @forward_one(
// LLVM-NOT: @_mlir_memref_to_llvm_alloc
// LLVM: llvm.intr.fma
// LLVM-NOT: @_mlir_memref_to_llvm_alloc
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_one(
// LLVM-LABEL: llvm.func @forward_all(
// LLVM-LABEL: llvm.func @forward_trunk(
// LLVM-SAME: passthrough = ["noinline"]
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_prefix(
// LLVM-LABEL: llvm.func @forward_batch(
// LLVM-NOT: unrealized_conversion_cast
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_batch(

// With the pipeline's options: matrices stored as f16 (the packed weight
// image is smaller), no fused ops (no packed projections).
// OPTIONS: rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 2688, state_floats = 80>
// OPTIONS: rwkv.weight_decl @emb.weight : tensor<16x8xf16> at <offset = 0>
// OPTIONS-NOT: packed
// OPTIONS: rwkv.weight_decl @blocks.0.att.key.weight : tensor<8x8xf16>
// OPTIONS-NOT: packed
// OPTIONS-LABEL: func.func @forward_seq(
