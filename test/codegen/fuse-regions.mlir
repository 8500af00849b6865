// RUN: rwkv-opt %s --split-input-file --rwkv-loops-to-llvm | FileCheck %s
// RUN: rwkv-opt %s --split-input-file --rwkv-loops-to-llvm="fuse-regions=false" | FileCheck %s --check-prefix=OFF

// Tests that a one-token function forks once (codegen/cpu/ParallelRegions.h):
// one omp.parallel around its body; its loops work-shared inside it without
// their own barriers (nowait; the last one's is the region's end); a barrier
// before the norm-like sum, which reads on every thread the %x the first
// loop wrote; the sum before the masked region (its result feeds the serial
// store); a barrier before the serial store, which writes %x that the sum
// (on every thread) read; a barrier after it, before the loop that reads
// %x; the loop over the layers on every thread, its views of the weights
// hoisted out of the serial runs.
// CHECK-LABEL: llvm.func @f_one(
// CHECK: omp.parallel {
// CHECK-NOT: omp.parallel
// CHECK: omp.wsloop nowait {
// CHECK-NOT: omp.terminator
// CHECK: omp.barrier
// CHECK: llvm.intr.vector.reduce.fadd
// CHECK: omp.barrier
// CHECK-NEXT: omp.masked {
// CHECK: llvm.store
// CHECK: omp.terminator
// CHECK-NEXT: }
// CHECK-NEXT: omp.barrier
// CHECK: omp.wsloop nowait {
// CHECK-NOT: omp.parallel
// CHECK: llvm.return
// OFF-LABEL: llvm.func @f_one(
// OFF-COUNT-2: omp.parallel
// OFF-NOT: omp.masked
func.func @f_one(%x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %two = arith.constant 2.0 : f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %x[%i] : memref<64xf32>
  }
  %w = vector.load %x[%c0] : memref<64xf32>, vector<16xf32>
  %s = vector.reduction <add>, %w : vector<16xf32> into f32
  %t = arith.mulf %s, %two : f32
  memref.store %t, %x[%c0] : memref<64xf32>
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<64xf32>
    memref.store %v, %y[%i] : memref<64xf32>
  }
  return
}

// -----

// Tests that a batch entry forks once too, and that a sequence's function
// keeps a region a loop (its loops take a guided schedule, each its own).
// CHECK-LABEL: llvm.func @f_batch(
// CHECK: omp.parallel {
// CHECK-NOT: omp.parallel
// CHECK: omp.wsloop nowait {
// CHECK: omp.barrier
// CHECK-NEXT: omp.wsloop nowait {
// CHECK: llvm.return
func.func @f_batch(%x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %x[%i] : memref<64xf32>
  }
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<64xf32>
    memref.store %v, %y[%i] : memref<64xf32>
  }
  return
}

// CHECK-LABEL: llvm.func @f_seq(
// CHECK-COUNT-2: omp.parallel
// CHECK-NOT: omp.masked
func.func @f_seq(%x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %x[%i] : memref<64xf32>
  }
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<64xf32>
    memref.store %v, %y[%i] : memref<64xf32>
  }
  return
}

// -----

// Tests that a layer loop holding the parallel loops runs on every thread,
// and that serial code whose result later code uses leaves the function as
// it was (here an atomic add: it writes, and its old value is stored after
// the second loop).
// CHECK-LABEL: llvm.func @layers_one(
// CHECK: omp.parallel {
// CHECK-NOT: omp.parallel
// CHECK: omp.masked
// CHECK: omp.barrier
// CHECK: omp.wsloop
// CHECK: llvm.return
func.func @layers_one(%x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  scf.for %l = %c0 to %c4 step %c1 {
    %v0 = memref.load %x[%l] : memref<64xf32>
    %v1 = arith.addf %v0, %one : f32
    memref.store %v1, %x[%l] : memref<64xf32>
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      %v = memref.load %x[%i] : memref<64xf32>
      memref.store %v, %y[%i] : memref<64xf32>
    }
  }
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %x[%i] : memref<64xf32>
  }
  return
}

// CHECK-LABEL: llvm.func @escape_one(
// CHECK-COUNT-2: omp.parallel
// CHECK-NOT: omp.masked
func.func @escape_one(%x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %x[%i] : memref<64xf32>
  }
  %old = memref.atomic_rmw addf %one, %x[%c0] : (f32, memref<64xf32>) -> f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %x[%i] : memref<64xf32>
    memref.store %v, %y[%i] : memref<64xf32>
  }
  memref.store %old, %y[%c0] : memref<64xf32>
  return
}

// -----

// Tests that serial code a later loop reads but an earlier one does not
// touch moves before that earlier loop, into the serial run before it
// (ParallelRegions.cpp, hoistSerialOps: the quantized inputs of r, k and
// v), and that two loops which touch nothing of each other's follow one
// another with no barrier between them; the barrier at the top of the body
// keeps the serial stores off %a and %b while the other thread may still
// read them in the previous layer's loops.
// CHECK-LABEL: llvm.func @independent_one(
// CHECK: omp.parallel {
// CHECK: omp.barrier
// CHECK-NEXT: omp.masked {
// CHECK: llvm.store
// CHECK: llvm.store
// CHECK: omp.terminator
// CHECK-NEXT: }
// CHECK-NEXT: omp.barrier
// CHECK-NEXT: omp.wsloop nowait {
// CHECK-NOT: omp.barrier
// CHECK: omp.wsloop nowait {
// CHECK-NOT: omp.barrier
// CHECK: llvm.return
func.func @independent_one(%a: memref<64xf32>, %b: memref<64xf32>,
                           %x: memref<64xf32>, %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  scf.for %l = %c0 to %c4 step %c1 {
    memref.store %one, %a[%l] : memref<64xf32>
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      %v = memref.load %a[%i] : memref<64xf32>
      memref.store %v, %y[%i] : memref<64xf32>
    }
    memref.store %one, %b[%l] : memref<64xf32>
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      %v = memref.load %b[%i] : memref<64xf32>
      memref.store %v, %x[%i] : memref<64xf32>
    }
  }
  return
}

// Tests that serial code at the end of a layer and at the start of the next
// (both on thread 0) have no barrier between them: the loop's body starts
// with what is pending after its entry (the first loop's accesses to %y)
// or after its own end (the load of %y on every thread, thread 0's store to
// %x), none of which the store to %a touches.
// CHECK-LABEL: llvm.func @carried_one(
// CHECK: omp.parallel {
// CHECK: ^bb2:
// CHECK-NEXT: omp.masked {
// CHECK: omp.barrier
// CHECK-NEXT: omp.wsloop nowait {
// CHECK: omp.barrier
// CHECK: omp.masked {
// CHECK: omp.terminator
// CHECK-NEXT: }
// CHECK-NOT: omp.barrier
// CHECK: llvm.br ^bb1
func.func @carried_one(%a: memref<64xf32>, %x: memref<64xf32>,
                       %y: memref<64xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c64 = arith.constant 64 : index
  %one = arith.constant 1.0 : f32
  scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
    %v = memref.load %y[%i] : memref<64xf32>
    memref.store %v, %y[%i] : memref<64xf32>
  }
  scf.for %l = %c0 to %c4 step %c1 {
    memref.store %one, %a[%l] : memref<64xf32>
    scf.parallel (%i) = (%c0) to (%c64) step (%c1) {
      %v = memref.load %a[%i] : memref<64xf32>
      memref.store %v, %y[%i] : memref<64xf32>
    }
    %v1 = memref.load %y[%l] : memref<64xf32>
    memref.store %v1, %x[%l] : memref<64xf32>
  }
  return
}
