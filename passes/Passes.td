//===- Passes.td - rwkv dialect passes ---------------------*- tablegen -*-===//

#ifndef RWKV_PASSES_TD
#define RWKV_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Constant folding
//===----------------------------------------------------------------------===//

def RWKVFoldDecayPass : Pass<"rwkv-fold-decay", "::mlir::ModuleOp"> {
  let summary = "Folds decays of weights into derived weights";
  let description = [{
    A decay computed from a weight alone is a compile-time constant:

    `decay<k>(weight(@d)) => weight(@d.k)` with
    `rwkv.weight_decl @d.k derive k of @d` added to the module (once per
    weight and kind), so the weight packer computes it once instead of
    every token (RWKV-4: `w = -exp(time_decay)`; RWKV-5: `exp(-exp(w))`).
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

#endif // RWKV_PASSES_TD
