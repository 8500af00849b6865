// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=on" | FileCheck %s --check-prefix=ON
// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=off" | FileCheck %s --check-prefix=OFF
// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=on" --rwkv-loops-to-llvm | FileCheck %s --check-prefix=OMP

// Tests rwkv-lower-to-loops' side-by-side low-rank products: in decode of a
// model whose weights stream from memory, the rwkv.lora ops of a block that
// read nothing computed after the first of them (here the first two) become
// one scf.parallel of one iteration per op, an scf.index_switch picking the
// op, the widest first (the second, 32 wide, reading %z); the third reads
// the first's result and follows on its own. Each op inside is lowered whole
// (no nested scf.parallel), and each has buffers of its own (the second's
// input, dead after it, is not the third's output). The loop becomes a work-
// sharing loop that hands out one op at a time (schedule dynamic, chunk 1).
// The sequence function and decode of cached weights keep them in order.
// ON-LABEL: func.func @loras_one(
// ON-SAME: %[[X:[a-z0-9]+]]: memref<1x64xf32>, %[[Z:[a-z0-9]+]]: memref<1x64xf32>,
// ON: scf.parallel (%[[I:.+]]) = (%c0{{(_[0-9]+)?}}) to (%c2{{(_[0-9]+)?}}) step (%c1{{(_[0-9]+)?}}) {
// ON-NEXT: scf.index_switch %[[I]]
// ON-NEXT: case 0 {
// ON-NOT: scf.parallel
// ON-NOT: default
// ON: memref.load %[[Z]]
// ON-NOT: scf.parallel
// ON: default {
// ON-NOT: scf.parallel
// ON: memref.load %[[X]]
// ON-NOT: scf.parallel
// ON: scf.reduce
// ON-NOT: scf.parallel
// ON-NOT: scf.index_switch
// ON: return
// ON-LABEL: func.func @loras_all(
// ON-NOT: scf.index_switch
// ON: return
// OFF-LABEL: func.func @loras_one(
// OFF-NOT: scf.index_switch
// OFF: return
// OMP-LABEL: llvm.func @loras_one(
// OMP: omp.wsloop nowait schedule(dynamic = %{{.+}} : i64)
// OMP-NOT: omp.wsloop
// OMP: llvm.return
rwkv.weight_decl @a1 : tensor<64x16xf16>
rwkv.weight_decl @b1 : tensor<16x64xf16>
rwkv.weight_decl @a2 : tensor<64x32xf16>
rwkv.weight_decl @b2 : tensor<32x64xf16>
rwkv.weight_decl @a3 : tensor<64x16xf16>
rwkv.weight_decl @b3 : tensor<16x64xf16>
func.func @loras(%x: tensor<?x64xf32>, %z: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
  %a1 = rwkv.weight @a1 : tensor<64x16xf16>
  %b1 = rwkv.weight @b1 : tensor<16x64xf16>
  %y1 = rwkv.lora %x, %a1, %b1 {act = #rwkv.activation<tanh>, out_act = #rwkv.activation<none>} : (tensor<?x64xf32>, tensor<64x16xf16>, tensor<16x64xf16>) -> tensor<?x64xf32>
  %a2 = rwkv.weight @a2 : tensor<64x32xf16>
  %b2 = rwkv.weight @b2 : tensor<32x64xf16>
  %y2 = rwkv.lora %z, %a2, %b2 {act = #rwkv.activation<none>, out_act = #rwkv.activation<sigmoid>} : (tensor<?x64xf32>, tensor<64x32xf16>, tensor<32x64xf16>) -> tensor<?x64xf32>
  %a3 = rwkv.weight @a3 : tensor<64x16xf16>
  %b3 = rwkv.weight @b3 : tensor<16x64xf16>
  %y3 = rwkv.lora %y1, %a3, %b3 {act = #rwkv.activation<sigmoid>, out_act = #rwkv.activation<none>} : (tensor<?x64xf32>, tensor<64x16xf16>, tensor<16x64xf16>) -> tensor<?x64xf32>
  return %y2, %y3 : tensor<?x64xf32>, tensor<?x64xf32>
}
