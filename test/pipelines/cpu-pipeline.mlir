// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-cpu-pipeline-to-loops | FileCheck %s --check-prefix=LOOPS
// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-cpu-pipeline | FileCheck %s --check-prefix=LLVM

// Tests that the CPU pipeline turns the one-layer RWKV-4 model into two
// functions over memrefs (a sequence and a one-token specialisation) with
// the weights and state placed, then into the LLVM dialect.

// LOOPS: module attributes {rwkv.state_floats = 80 : i64, rwkv.state_layout = [{init = #rwkv.state_init<zero>, name = "state.0.att.shift", offset = 0 : i64
// LOOPS-SAME: name = "state.0.att.pp", offset = 48 : i64
// LOOPS-SAME: rwkv.weight_layout = [{name = "emb.weight", offset = 0 : i64, type = tensor<16x8xf32>}
// LOOPS-SAME: {derive = #rwkv.decay_kind<neg_exp>, name = "blocks.0.att.time_decay.neg_exp"
// LOOPS-LABEL: func.func @forward_seq(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<1x16xf32>) attributes {llvm.emit_c_interface}
// LOOPS: memref.view %{{.+}}[%{{.+}}][] : memref<?xi8> to memref<16x8xf32>
// LOOPS: memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x8xf32>
// LOOPS: memref.reinterpret_cast %{{.+}} to offset: [0], sizes: [8], strides: [1]
// LOOPS: scf.for
// LOOPS: vector.fma {{.*}} : vector<8xf32>
// LOOPS: memref.dealloc
// LOOPS-LABEL: func.func @forward_one(%{{.+}}: memref<?xi8>, %{{.+}}: memref<?xf32>, %{{.+}}: memref<1xi32>, %{{.+}}: memref<1x16xf32>)
// LOOPS-NOT: memref.alloc(
// LOOPS: memref.alloca() {alignment = 64 : i64} : memref<1x8xf32>
// LOOPS-NOT: rwkv.
// LOOPS: return

// LLVM-LABEL: llvm.func @forward_seq(
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_seq(
// LLVM-LABEL: llvm.func @forward_one(
// LLVM: llvm.intr.fma
// LLVM-LABEL: llvm.func @_mlir_ciface_forward_one(
