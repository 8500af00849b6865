// RUN: rwkv-opt %s --rwkv-loops-to-llvm | FileCheck %s --implicit-check-not=malloc --implicit-check-not=@free

// Tests that heap buffers go through the allocation functions the runtime
// defines (runtime/rwkv_abi.h), never malloc and free: the runtime's
// allocation turns a failure into an error status instead of a null
// pointer. The 64-byte alignment is done by the code (64 bytes more are
// asked for and the pointer rounded up); stack buffers stay allocas.
// CHECK-DAG: llvm.func @_mlir_memref_to_llvm_alloc(i64) -> !llvm.ptr
// CHECK-DAG: llvm.func @_mlir_memref_to_llvm_free(!llvm.ptr)
// CHECK-LABEL: llvm.func @scratch(
// CHECK: %[[ALIGN:.+]] = llvm.mlir.constant(64 : index) : i64
// CHECK: %[[BYTES:.+]] = llvm.add %{{.+}}, %[[ALIGN]] : i64
// CHECK: %[[P:.+]] = llvm.call @_mlir_memref_to_llvm_alloc(%[[BYTES]])
// CHECK: llvm.urem
// CHECK: llvm.insertvalue %[[P]], %{{.+}}[0]
// CHECK: llvm.alloca
// CHECK: %[[ALLOCATED:.+]] = llvm.extractvalue %{{.+}}[0]
// CHECK-NEXT: llvm.call @_mlir_memref_to_llvm_free(%[[ALLOCATED]])
// CHECK: llvm.return
func.func @scratch(%n: index) {
  %a = memref.alloc(%n) {alignment = 64 : i64} : memref<?x8xf32>
  %b = memref.alloca() {alignment = 64 : i64} : memref<1x8xf32>
  %c0 = arith.constant 0 : index
  %v = memref.load %b[%c0, %c0] : memref<1x8xf32>
  memref.store %v, %a[%c0, %c0] : memref<?x8xf32>
  memref.dealloc %a : memref<?x8xf32>
  return
}

// Tests that a work-sharing loop that ends its parallel region takes
// `nowait`: the region's end (libomp's join) is the one barrier its threads
// meet at; the loop's own barrier before it only made each wait twice.
// CHECK-LABEL: llvm.func @split(
// CHECK: omp.parallel
// CHECK: omp.wsloop nowait
// CHECK: omp.terminator
func.func @split(%out: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    memref.store %one, %out[%i] : memref<64xf32>
  }
  return
}
