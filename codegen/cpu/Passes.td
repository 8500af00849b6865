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
    Places every weight in the packed weight image (64-byte aligned, in
    declaration order) and every state slot in the state buffer, then
    rewrites each function `@f(tensors...) -> tensors` of rwkv ops into

    `@f_seq(weights: memref<?xi8>, state: memref<?xf32>, args..., outs...)`
    and `@f_one(...)`, specialised for one token (T = 1),

    with each rwkv op lowered by its family's lowering. The placements are
    kept as the module attributes `rwkv.weight_layout` and
    `rwkv.state_layout`; the declarations are removed.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::vector::VectorDialect"
  ];
}

def RWKVLoopsToLLVMPass : Pass<"rwkv-loops-to-llvm", "::mlir::ModuleOp"> {
  let summary = "Lowers the loops of rwkv-lower-to-loops to the LLVM dialect";
  let description = [{
    math (polynomial approximations of exp and tanh on f32 vectors), scf →
    cf, memref (expand strided metadata), vector, arith, func → llvm;
    reconciles the casts left by the conversions.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // RWKV_CODEGEN_CPU_PASSES_TD
