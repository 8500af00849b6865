//===- Passes.td - CPU code generation passes --------------*- tablegen -*-===//

#ifndef RWKV_CODEGEN_CPU_PASSES_TD
#define RWKV_CODEGEN_CPU_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// rwkv → upstream dialects
//===----------------------------------------------------------------------===//

def RWKVLowerToLoopsPass : Pass<"rwkv-lower-to-loops", "::mlir::ModuleOp"> {
  let summary = "Lowers rwkv ops to loops over memrefs (scf, vector, arith, math)";
  let description = [{
    On a module placed by `rwkv-assign-layout`, rewrites each function
    `@f(tensors...) -> tensors` of rwkv ops into

    `@f_seq(weights: memref<?xi8>, state: memref<?xf32>, args..., outs...)`,
    `@f_one(...)`, specialised for one token (T = 1), `@f_all(...)`
    (the head on every token), and
    `@f_batch(weights, states: memref<?xi64>, args..., outs...)`: B rows,
    row t one token of a sequence of its own whose state lies at address
    `states[t]` (the products are @f_all's, over all B rows; the token
    shifts and recurrences read and write row t's state),

    with each rwkv op lowered by its family's lowering: `rwkv.weight @w`
    becomes a `memref.view` of the image at the offset of `@w`'s
    `#rwkv.placement`, a state slot a `memref.reinterpret_cast` of the state
    at its slot's. The declarations stay (codegen reads the layout from
    them).

    Products of block-quantized weights compute their integer dot products
    with the instructions `quant-dot` names (the CPU pipeline picks them
    from the target CPU's features; `llvm.call_intrinsic` of the x86
    intrinsics for all but `generic`).
  }];
  let options = [
    Option<"batchEntry", "batch-entry", "bool", /*default=*/"true",
           "Also build @f_batch (B sequences, each on its own state)">,
    Option<"quantDot", "quant-dot", "std::string", /*default=*/"\"generic\"",
           "Integer dot products of quantized weights: avx512-vnni, "
           "avx-vnni, avx2 or generic">,
    Option<"streamWeights", "stream-weights", "std::string",
           /*default=*/"\"auto\"",
           "Lower decode for weights streamed from memory (tiles of one row, "
           "prefetches): auto (an image over 64 MiB), on or off">
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::LLVM::LLVMDialect", "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def RWKVLoopsToLLVMPass : Pass<"rwkv-loops-to-llvm", "::mlir::ModuleOp"> {
  let summary = "Lowers the loops of rwkv-lower-to-loops to the LLVM dialect";
  let description = [{
    math (polynomial approximations of exp and tanh on f32 vectors),
    scf.parallel → omp.parallel + omp.wsloop, scf → cf, memref (expand
    strided metadata), vector, arith, omp, func → llvm; reconciles the casts
    left by the conversions.

      scf.parallel (i) = (lb) to (ub) step (s) { body }
        => omp.parallel { omp.wsloop { omp.loop_nest (i) ... { body } } }

      memref.alloc(n) => llvm.call @_mlir_memref_to_llvm_alloc(bytes + align)
      memref.dealloc  => llvm.call @_mlir_memref_to_llvm_free(allocated)

    The runtime defines both (runtime/rwkv_abi.h); its allocation never
    returns null (a failure ends the call with an error status).

    With `fuse-regions`, each one-token function (`@*_one`, decode) and
    each batch entry (`@*_batch`) forks once: one omp.parallel around its body, the work-sharing loops inside
    it, the serial code between them on thread 0 (omp.masked) followed by a
    barrier, the code without writes on every thread
    (codegen/cpu/ParallelRegions.h).
  }];
  let options = [
    Option<"fuseRegions", "fuse-regions", "bool", /*default=*/"true",
           "One parallel region per call of a one-token function or batch "
           "entry, barriers between its work-sharing loops">
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // RWKV_CODEGEN_CPU_PASSES_TD
