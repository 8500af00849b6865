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
  let summary = "Stores as f32 the block-quantized weights a target cannot read";
  let description = [{
    The CPU target's out_in products (`rwkv.linear {out_in}` and the fused
    linears) read block-quantized weights as they are; every other use (the
    embedding, in_out products, LoRAs) reads floats. For each
    `!rwkv.quant` weight that some use cannot read quantized (with `all`:
    every quantized weight, for a backend without quantized kernels):

    `weight_decl @w : tensor<S x !rwkv.quant<k>> => weight_decl @w : tensor<S x f32>`

    and every `rwkv.weight @w` takes the new type. The weight packer
    dequantizes the stored blocks into the image.
  }];
  let options = [
    Option<"all", "all", "bool", /*default=*/"false",
           "Dequantize every quantized weight (a target without quantized "
           "kernels)">
  ];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVSelectWeightTypesPass
    : Pass<"rwkv-select-weight-types", "::mlir::ModuleOp"> {
  let summary = "Chooses the element type each matrix is stored with";
  let description = [{
    The weight precision of the compiled model. For every matrix (a weight
    with two or more dimensions larger than 1; a `tensor<1x1xC>` token-shift
    mix is a vector and keeps its type):

    `weight_decl @w : tensor<S x E> => weight_decl @w : tensor<S x E'>`
    with E' = `weight-type` (`keep`: E' = E), and every `rwkv.weight @w`
    takes the new type; the packer converts (rounding to nearest even),
    dequantizes or quantizes. Halving the bytes per weight halves the
    memory traffic of decode. (Weights that initialize state are stored as
    f32 whatever the type: `rwkv-assign-layout` applies that rule.)

    A quantized `weight-type` (`q8_0`, `q5_1`, `q5_0`, `q4_1`, `q4_0`:
    `!rwkv.quant<k>`) applies to the matrices that only out_in products
    read and whose rows are whole blocks of 32; the other matrices (the
    embedding, LoRA and other in_out matrices) become f16. With
    `allow-quantized=false` (a target without quantized kernels) a
    quantized `weight-type` is an error.
  }];
  let options = [
    Option<"weightType", "weight-type", "::mlir::rwkv::WeightType",
           /*default=*/"::mlir::rwkv::WeightType::keep",
           "Storage type of the weight matrices",
           [{::mlir::rwkv::weightTypeValues()}]>,
    Option<"allowQuantized", "allow-quantized", "bool", /*default=*/"true",
           "Whether the target reads block-quantized weights">
  ];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVFormLayerStackPass
    : Pass<"rwkv-form-layer-stack", "::mlir::ModuleOp"> {
  let summary = "Merges identical consecutive layers into one rwkv.layers";
  let description = [{
    The layer stack as one loop: consecutive `rwkv.layers` ops whose bodies
    are the same up to the layer number of their symbols become one op over
    all their layers, with the body of the first.

    `%a = rwkv.layers i to j (%x, %u) {B_i}; %b = rwkv.layers k to k (%a, %u) {B_k}`
    `=> %b = rwkv.layers i to k (%x, %u) {B_i}` (k = j + 1)

    when B_k is B_i with each symbol `blocks.k.*` / `state.k.*` renamed to
    `blocks.i.*` / `state.i.*`, the declarations of the renamed symbols
    agree (type, derivation, packed parts, initial value), %a's results go
    only to %b and %b's other inputs are %a's. Run it after the passes that
    rewrite layer bodies or declare weights (fusions, folds, weight types):
    from here on a pass that changes a stack's body changes every layer.
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVAssignLayoutPass : Pass<"rwkv-assign-layout", "::mlir::ModuleOp"> {
  let summary = "Places every weight in the weight image and every slot in the state";
  let description = [{
    Target-independent memory layout, parameterised by the module's
    `rwkv.resource_config = #rwkv.resource_config<weight_alignment = A,
    slot_alignment = S>` (set by the target, or by this pass from its
    options). In declaration order:

    `weight_decl @w : tensor<D x E> => weight_decl @w : tensor<D x E> at <offset = o_w>`
    with o_w = align(o_(w-1) + bytes(w-1), A);
    `state_decl @s : tensor<D x f32> init <i> => state_decl @s ... at <offset = o_s>`
    with o_s = align(o_(s-1) + floats(s-1), S); the module gains
    `rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = align(end, A),
    state_floats = align(end, S)>`.

    A weight that initializes a state slot is stored as f32 (the runtime
    copies it into the state): `weight_decl @w : tensor<D x E>` with
    `state_decl ... init <weight> @w` => `weight_decl @w : tensor<D x f32>`.

    The weights of an `rwkv.layers` op of several layers (layers i to j) are
    placed together where the first of them is declared, layer after layer,
    each layer starting at a multiple of A and holding its weights in the
    order the body names them; likewise its slots. The op gains
    `stride <weights = W, state = S>`: layer k's weights lie (k - i) * W
    bytes, its slots (k - i) * S floats, after those of layer i.
  }];
  let options = [
    Option<"weightAlignment", "weight-alignment", "int64_t", /*default=*/"0",
           "Bytes; with slot-alignment, sets rwkv.resource_config (0: use "
           "the module's)">,
    Option<"slotAlignment", "slot-alignment", "int64_t", /*default=*/"0",
           "Floats; with weight-alignment, sets rwkv.resource_config (0: "
           "use the module's)">
  ];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVPackProjectionsPass
    : Pass<"rwkv-pack-projections", "::mlir::ModuleOp"> {
  let summary = "Packs the projections that read one token shift into one weight";
  let description = [{
    The time mix's projections read mixes of the same token shift:

    `mix_linear(a, b, t_i, weight(@W_i))` for i < n, with equal weights,
    => `packed_mix_linear(a, b, [t_0 .. t_(n-1)], weight(@P))#i` with
    `rwkv.weight_decl @P concat [W_0 .. W_(n-1)]`

    The packed matrices are one weight stream in the image; a W_i with no
    other use is no longer stored on its own. Projections whose results
    are used before the last of the group are left alone (the packed op
    sits where the last one was).
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

//===----------------------------------------------------------------------===//
// Fusion
//===----------------------------------------------------------------------===//

def RWKVFuseTokenShiftPass : Pass<"rwkv-fuse-token-shift", "::mlir::ModuleOp"> {
  let summary = "Fuses the token-shift mixes into the projections that read them";
  let description = [{
    In time mix and channel mix every projection reads a mix of the token
    and the previous token:

    `linear(lerp(a, b, t), W) => mix_linear(a, b, t, W)`  (out_in weights)

    so the mix is computed as the product loads its input; a lerp whose
    every user was fused disappears.
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVFuseGatesPass : Pass<"rwkv-fuse-gates", "::mlir::ModuleOp"> {
  let summary = "Fuses gates and activations into the projections that read them";
  let description = [{
    `linear(mul(sigmoid(g), y), W) => gate_linear(g, y, W)`: RWKV-4's
    receptance gate with the output projection after the WKV step;
    `linear(relu_sq(k), W) => relu_sq_linear(k, W)`: the channel mix's
    squared ReLU with its value projection.
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

def RWKVFuseLayerNormPass : Pass<"rwkv-fuse-layer-norm", "::mlir::ModuleOp"> {
  let summary = "Fuses a layer norm with the token shift of its result";
  let description = [{
    `token_shift(layer_norm(x, w, b), @s) => norm_shift(x, w, b, @s)#1`
    (and the layer norm's other uses take `norm_shift#0`): the normalized
    row is written once, as this token's value and the next token's
    previous value.
  }];
  let dependentDialects = ["::mlir::rwkv::RWKVDialect"];
}

#endif // RWKV_PASSES_TD
