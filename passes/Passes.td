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

//===----------------------------------------------------------------------===//
// Weight layouts
//===----------------------------------------------------------------------===//

def RWKVDequantizeWeightsPass
    : Pass<"rwkv-dequantize-weights", "::mlir::ModuleOp"> {
  let summary = "Stores block-quantized weights as f32 in the weight image";
  let description = [{
    For a backend without quantized kernels:

    `weight_decl @w : tensor<S x !rwkv.quant<k>> => weight_decl @w : tensor<S x f32>`
    and every `rwkv.weight @w` takes the new type. The weight packer
    dequantizes the stored blocks into the image.
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

#endif // RWKV_PASSES_TD
