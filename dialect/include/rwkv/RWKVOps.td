//===- RWKVOps.td - rwkv dialect operations ----------------*- tablegen -*-===//
//
// Ops of the rwkv dialect, grouped as: declarations (weights and state
// slots), weight access, normalization, mixing, linear maps, element-wise,
// recurrences (WKV) and sequence utilities.
//
// Shapes: activations are `tensor<T x C x f32>` (T = 1 for one token, any T
// for a sequence). A "per-channel" parameter is any ranked float tensor with
// C elements in all (stored shapes such as (1, 1, C) or (H, N) are kept as
// the checkpoint has them).
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_OPS_TD
#define RWKV_OPS_TD

include "rwkv/RWKVDialect.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/InferTypeOpInterface.td"

//===----------------------------------------------------------------------===//
// Base classes and constraints
//===----------------------------------------------------------------------===//

class RWKV_Op<string mnemonic, list<Trait> traits = []>
    : Op<RWKV_Dialect, mnemonic, traits>;

// The recurrent state the runtime carries: ops that read or write a slot
// have effects on this resource.
def RWKV_StateResource : Resource<"::mlir::rwkv::StateResource">;

def RWKV_Activation2D : 2DTensorOf<[F32]>;
def RWKV_FloatTensor : RankedTensorOf<[F32, F16, BF16]>;
def RWKV_AnyQuant : Type<CPred<"::llvm::isa<::mlir::rwkv::QuantType>($_self)">,
                         "rwkv quantized scalar">;
def RWKV_WeightTensor : RankedTensorOf<[F32, F16, BF16, RWKV_AnyQuant]>;
def RWKV_TokenTensor : 1DTensorOf<[I32]>;

// Ops whose result has the shape of their first operand and that need only
// per-channel checks.
class RWKV_ElementwiseOp<string mnemonic, list<Trait> traits = []>
    : RWKV_Op<mnemonic, !listconcat(traits, [Pure])> {
  let results = (outs RWKV_Activation2D:$result);
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

def RWKV_WeightDeclOp : RWKV_Op<"weight_decl",
    [Symbol, IsolatedFromAbove, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "declares a named weight of the checkpoint";
  let description = [{
    Declares one tensor of the model, named as in the checkpoint, with its
    stored shape and element type (f32, f16, bf16 or a quantized type). The
    data is not in the IR: codegen packs it from the checkpoint into the
    weight image. Passes may attach attributes (a derivation such as a
    folded decay, a packed layout) that the packer carries out.

    A derived weight is computed at compile time from another one: its
    value is `decay(source)` with the given decay kind (see `rwkv.decay`),
    in f32 and of the source's shape. A packed weight (`concat`) is the
    checkpoint's matrices of those names stacked along their first
    dimension, in order (made by `rwkv-pack-projections`). After
    `rwkv-assign-layout` every declaration says where it lives in the weight
    image (`at <offset = N>`, bytes).

    ```mlir
    rwkv.weight_decl @"blocks.0.att.key.weight" : tensor<64x64xf32>
    rwkv.weight_decl @"emb.weight" : tensor<256x64xbf16>
    rwkv.weight_decl @"blocks.0.att.time_decay" : tensor<128xf32>
    rwkv.weight_decl @"blocks.0.att.time_decay.neg_exp" : tensor<128xf32>
        derive <neg_exp> of @"blocks.0.att.time_decay"
    rwkv.weight_decl @"blocks.0.att.kv.packed" : tensor<256x128xf32>
        concat ["blocks.0.att.key.weight", "blocks.0.att.value.weight"]
    rwkv.weight_decl @"ln_out.weight" : tensor<64xf32> at <offset = 4096>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<RWKV_WeightTensor>:$type,
                   OptionalAttr<RWKV_DecayKindAttr>:$derive,
                   OptionalAttr<FlatSymbolRefAttr>:$source,
                   OptionalAttr<StrArrayAttr>:$parts,
                   OptionalAttr<RWKV_PlacementAttr>:$placement);
  let assemblyFormat = [{
    $sym_name `:` $type (`derive` $derive^ `of` $source)? (`concat` $parts^)?
    (`at` $placement^)? attr-dict
  }];
  // An unplaced declaration (the importer and the passes before
  // rwkv-assign-layout).
  let builders = [
    OpBuilder<(ins "::mlir::StringAttr":$sym_name, "::mlir::TypeAttr":$type,
                   "::mlir::rwkv::DecayKindAttr":$derive,
                   "::mlir::FlatSymbolRefAttr":$source,
                   "::mlir::ArrayAttr":$parts), [{
      build($_builder, $_state, sym_name, type, derive, source, parts,
            ::mlir::rwkv::PlacementAttr());
    }]>
  ];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

def RWKV_StateDeclOp : RWKV_Op<"state_decl",
    [Symbol, IsolatedFromAbove, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "declares a slot of the recurrent state";
  let description = [{
    Declares one slot of the state that the runtime carries from token to
    token: a token-shift vector, RWKV-4's `aa`/`bb`/`pp`, or a layer's
    matrix-valued WKV state. The slot's initial value is zero, -1e30
    (`neg_large`, RWKV-4's `pp`) or the value of a weight of the same
    shape (`weight`, a state-tuned `time_state`). Codegen derives the state
    layout from these declarations in order: `rwkv-assign-layout` places
    each slot (`at <offset = N>`, floats into the state).

    ```mlir
    rwkv.state_decl @"l0.att.shift" : tensor<64xf32> init <zero>
    rwkv.state_decl @"l0.att.pp" : tensor<128xf32> init <neg_large>
    rwkv.state_decl @"l0.att.wkv" : tensor<8x8x8xf32> init <weight> @"blocks.0.att.time_state"
    rwkv.state_decl @"l0.ffn.shift" : tensor<64xf32> init <zero> at <offset = 704>
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, TypeAttrOf<RankedTensorOf<[F32]>>:$type,
                   RWKV_StateInitAttr:$init,
                   OptionalAttr<FlatSymbolRefAttr>:$init_weight,
                   OptionalAttr<RWKV_PlacementAttr>:$placement);
  let assemblyFormat = [{
    $sym_name `:` $type `init` $init ($init_weight^)? (`at` $placement^)?
    attr-dict
  }];
  // An unplaced slot (the importer).
  let builders = [
    OpBuilder<(ins "::mlir::StringAttr":$sym_name, "::mlir::TypeAttr":$type,
                   "::mlir::rwkv::StateInitAttr":$init,
                   "::mlir::FlatSymbolRefAttr":$init_weight), [{
      build($_builder, $_state, sym_name, type, init, init_weight,
            ::mlir::rwkv::PlacementAttr());
    }]>
  ];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::RankedTensorType getTensorType() {
      return ::llvm::cast<::mlir::RankedTensorType>(getType());
    }
  }];
}

//===----------------------------------------------------------------------===//
// Weight access and embedding
//===----------------------------------------------------------------------===//

def RWKV_WeightOp : RWKV_Op<"weight",
    [Pure, DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "reads a declared weight";
  let description = [{
    The value of the weight `name`, which must be declared by an
    `rwkv.weight_decl` of the same type in the enclosing module.

    ```mlir
    %w = rwkv.weight @"blocks.0.att.key.weight" : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins FlatSymbolRefAttr:$name);
  let results = (outs RWKV_WeightTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
}

def RWKV_EmbeddingOp : RWKV_Op<"embedding", [Pure]> {
  let summary = "looks up token embeddings";
  let description = [{
    `result[t] = table[tokens[t]]`, widened to f32. The table is (V, C).

    ```mlir
    %x = rwkv.embedding %tokens, %emb : (tensor<?xi32>, tensor<256x64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RWKV_TokenTensor:$tokens, RWKV_WeightTensor:$table);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = "$tokens `,` $table attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def RWKV_LastTokenOp : RWKV_Op<"last_token", [Pure]> {
  let summary = "keeps the last token's row of a sequence";
  let description = [{
    `result[0] = input[T - 1]`: the head runs on the last token only.

    ```mlir
    %l = rwkv.last_token %x : tensor<?x64xf32> -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Layer structure
//===----------------------------------------------------------------------===//

def RWKV_LayersOp : RWKV_Op<"layers", [
    IsolatedFromAbove, RecursiveMemoryEffects,
    SingleBlockImplicitTerminator<"::mlir::rwkv::YieldOp">]> {
  let summary = "layers first to last of the stack, one body for all";
  let description = [{
    Runs its body once per layer k = first, first + 1, ..., last. The body
    is written for layer `first`: its weights and state slots are those of
    layer `first` (symbols `blocks.<first>.*` and `state.<first>.*`), and
    layer k reads the ones of the same name in layer k (`blocks.<k>.*`,
    `state.<k>.*`), which have the same types. The body's arguments are the
    inputs; its results (`rwkv.yield`) are the op's results and, between
    layers, the next layer's leading inputs: a stack of several layers
    carries as many values as it has results (the residual stream) and reads
    the other inputs unchanged in every layer (RWKV-7's value of layer 0). A
    single layer may yield more (RWKV-7's layer 0 yields that value).

    The importer makes one op per layer (`first` = `last`); the pass
    `rwkv-form-layer-stack` merges consecutive layers whose bodies are the
    same up to the layer number into one, so that a target lowers, optimizes
    and generates code for one body and runs it in a loop. After
    `rwkv-assign-layout`, a stack of several layers has a
    `#rwkv.layer_stride`: layer k's weights and slots lie at those of layer
    `first` plus (k - first) strides.

    ```mlir
    %x12 = rwkv.layers 1 to 11 stride <weights = 81920, state = 4224> (%x1, %v0)
        : (tensor<?x64xf32>, tensor<?x64xf32>) -> tensor<?x64xf32> {
    ^bb0(%x: tensor<?x64xf32>, %v: tensor<?x64xf32>):
      ...
      rwkv.yield %next : tensor<?x64xf32>
    }
    ```
  }];
  let arguments = (ins I64Attr:$first, I64Attr:$last,
                   OptionalAttr<RWKV_LayerStrideAttr>:$stride,
                   Variadic<RWKV_Activation2D>:$inputs);
  let results = (outs Variadic<RWKV_Activation2D>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $first `to` $last (`stride` $stride^)? ` ` `(` $inputs `)` attr-dict `:`
    functional-type($inputs, results) $body
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// last - first + 1.
    int64_t getNumLayers() { return getLast() - getFirst() + 1; }
    ::mlir::Block &getBodyBlock() { return getBody().front(); }
    /// The values the body yields (one per result).
    ::mlir::Operation::operand_range getYielded() {
      return getBodyBlock().getTerminator()->getOperands();
    }
  }];
}

def RWKV_YieldOp : RWKV_Op<"yield", [
    Pure, Terminator, HasParent<"::mlir::rwkv::LayersOp">]> {
  let summary = "the results of a layer";
  let description = [{
    Ends the body of `rwkv.layers`: the layer's results, one per result of
    the op.

    ```mlir
    rwkv.yield %x : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins Variadic<RWKV_Activation2D>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ /* nothing */ }]>];
}

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

def RWKV_LayerNormOp : RWKV_ElementwiseOp<"layer_norm"> {
  let summary = "layer norm over the channels of each token";
  let description = [{
    `result[t] = (x[t] - mean) / sqrt(var + epsilon) * weight + bias`, with
    mean and (biased) variance over the C channels of token t.

    ```mlir
    %y = rwkv.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f32}
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_FloatTensor:$weight,
                   RWKV_FloatTensor:$bias, DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let assemblyFormat = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
}

def RWKV_GroupNormOp : RWKV_ElementwiseOp<"group_norm"> {
  let summary = "group norm over the heads of each token";
  let description = [{
    Layer norm within each of `groups` contiguous groups of C / groups
    channels, then a per-channel affine map (RWKV-5/6/7's `ln_x`).

    ```mlir
    %y = rwkv.group_norm %x, %w, %b {groups = 8 : i64, epsilon = 6.4e-04 : f32}
        : (tensor<1x64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_FloatTensor:$weight,
                   RWKV_FloatTensor:$bias, I64Attr:$groups,
                   DefaultValuedAttr<F32Attr, "6.4e-4">:$epsilon);
  let assemblyFormat = "$input `,` $weight `,` $bias attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Token shift and mixing
//===----------------------------------------------------------------------===//

def RWKV_TokenShiftOp : RWKV_Op<"token_shift", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>, AllTypesMatch<["input", "result"]>,
    MemoryEffects<[MemRead<RWKV_StateResource>, MemWrite<RWKV_StateResource>]>]> {
  let summary = "the previous token's input, carried in a state slot";
  let description = [{
    `result[0] = state; result[t] = input[t - 1]` for t > 0; then
    `state = input[T - 1]`. The slot must be a `tensor<C x f32>`.

    ```mlir
    %prev = rwkv.token_shift %x state @"l0.att.shift" : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, FlatSymbolRefAttr:$state);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = "$input `state` $state attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def RWKV_LerpOp : RWKV_ElementwiseOp<"lerp"> {
  let summary = "linear interpolation a + (b - a) * t";
  let description = [{
    The mix of RWKV's token shift: `result = a + (b - a) * t`. `a` and `b`
    are activations; `t` is per-channel (a static mix such as
    `att.time_mix_k`) or an activation (a data-dependent mix).

    RWKV-4/5 `xk = x * mix + prev * (1 - mix)` is `lerp(prev, x, mix)`;
    RWKV-6/7 `x + (prev - x) * mix` is `lerp(x, prev, mix)`.

    ```mlir
    %xk = rwkv.lerp %prev, %x, %mix
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x1x64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$a, RWKV_Activation2D:$b, RWKV_FloatTensor:$t);
  let assemblyFormat = "$a `,` $b `,` $t attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

def RWKV_DDLerpOp : RWKV_Op<"ddlerp", [Pure]> {
  let summary = "RWKV-6's data-dependent token-shift mixes";
  let description = [{
    With `sx = prev - x`:
    `m = tanh((x + sx * maa_x) W1)` viewed as (F, D);
    `result_f = x + sx * (maa_f + m_f W2[f])` for each of the F mixes
    (RWKV-6: F = 5, in the order w, k, v, r, g). `W1` is (C, F * D) and
    `W2` is (F, D, C), both as stored.

    ```mlir
    %xw, %xk, %xv, %xr, %xg = rwkv.ddlerp %x, %prev, %maa_x [%mw, %mk, %mv, %mr, %mg], %w1, %w2
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>,
           tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>,
           tensor<64x160xf32>, tensor<5x32x64xf32>)
        -> (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>)
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_Activation2D:$prev,
                   RWKV_FloatTensor:$maa_x, Variadic<RWKV_FloatTensor>:$maa,
                   RWKV_WeightTensor:$w1, RWKV_WeightTensor:$w2);
  let results = (outs Variadic<RWKV_Activation2D>:$results);
  let assemblyFormat = [{
    $input `,` $prev `,` $maa_x `[` $maa `]` `,` $w1 `,` $w2 attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Linear maps
//===----------------------------------------------------------------------===//

def RWKV_LinearOp : RWKV_Op<"linear", [Pure]> {
  let summary = "a linear map by a named weight";
  let description = [{
    `result[t] = W x[t]` for a weight stored (out, in) (`out_in`, PyTorch's
    Linear, the default) or `result[t] = x[t] W` for one stored (in, out)
    (`in_out`). The weight may be f32, f16, bf16 or quantized; products
    accumulate in f32. With T = 1 this is a matrix-vector product, with a
    sequence a matrix-matrix product.

    ```mlir
    %k = rwkv.linear %xk, %wk : (tensor<?x64xf32>, tensor<256x64xf16>) -> tensor<?x256xf32>
    %m = rwkv.linear %x, %w1 {layout = #rwkv.weight_layout<in_out>}
        : (tensor<1x64xf32>, tensor<64x32xf32>) -> tensor<1x32xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_WeightTensor:$weight,
                   DefaultValuedAttr<RWKV_WeightLayoutAttr,
                                     "::mlir::rwkv::WeightLayout::out_in">:$layout);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def RWKV_LoraOp : RWKV_Op<"lora", [Pure]> {
  let summary = "a low-rank map out(bias + act(x A) B)";
  let description = [{
    The low-rank (LoRA) maps of RWKV-6/7:
    `result = out_act(bias + act(x A) B)`, with `A` (C, D) and `B` (D, C')
    stored (in, out). `bias` is optional and per-channel.

    ```mlir
    // RWKV-7 in-context learning rate: a = sigmoid(a0 + (x a1) a2)
    %a = rwkv.lora %xa, %a1, %a2, %a0 {act = #rwkv.activation<none>, out_act = #rwkv.activation<sigmoid>}
        : (tensor<1x64xf32>, tensor<64x32xf32>, tensor<32x64xf32>, tensor<1x1x64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_WeightTensor:$a,
                   RWKV_WeightTensor:$b, Optional<RWKV_FloatTensor>:$bias,
                   RWKV_ActivationAttr:$act, RWKV_ActivationAttr:$out_act);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = [{
    $input `,` $a `,` $b (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Element-wise
//===----------------------------------------------------------------------===//

class RWKV_BinaryOp<string mnemonic, string equation> : RWKV_ElementwiseOp<mnemonic> {
  let summary = "element-wise " # equation;
  let description = [{
    `result = }] # equation # [{`, where `rhs` is an activation of the same
    type as `lhs` or a per-channel parameter broadcast over the tokens.

    ```mlir
    %y = rwkv.}] # mnemonic # [{ %a, %b : (tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$lhs, RWKV_FloatTensor:$rhs);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def RWKV_AddOp : RWKV_BinaryOp<"add", "lhs + rhs"> { let hasFolder = 0; }
def RWKV_MulOp : RWKV_BinaryOp<"mul", "lhs * rhs">;

class RWKV_UnaryOp<string mnemonic, string equation>
    : RWKV_ElementwiseOp<mnemonic, [SameOperandsAndResultType]> {
  let summary = "element-wise " # equation;
  let description = [{
    `result = }] # equation # [{` for every element.

    ```mlir
    %y = rwkv.}] # mnemonic # [{ %x : tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input);
  let assemblyFormat = "$input attr-dict `:` type($input)";
}

def RWKV_SigmoidOp : RWKV_UnaryOp<"sigmoid", "1 / (1 + exp(-x))">;
def RWKV_SiluOp : RWKV_UnaryOp<"silu", "x / (1 + exp(-x))">;
def RWKV_ReluSqOp : RWKV_UnaryOp<"relu_sq", "max(x, 0)^2">;
def RWKV_TanhOp : RWKV_UnaryOp<"tanh", "tanh(x)">;

def RWKV_DecayOp : RWKV_Op<"decay", [Pure]> {
  let summary = "derives a decay (or bonus) from its parameter";
  let description = [{
    `neg_exp`: `-exp(d)` (RWKV-4, log-space); `exp_neg_exp`: `exp(-exp(d))`
    (RWKV-5/6); `exp_neg_sigmoid`: `exp(-e^{-1/2} sigmoid(d))` (RWKV-7);
    `exp`: `exp(d)` (RWKV-5.0's bonus `time_first`).
    The result has the operand's shape, in f32. When `d` is a weight the
    result is a compile-time constant that a pass folds into a derived
    weight.

    ```mlir
    %w = rwkv.decay %td {kind = #rwkv.decay_kind<neg_exp>} : tensor<128xf32> -> tensor<128xf32>
    ```
  }];
  let arguments = (ins RWKV_FloatTensor:$input, RWKV_DecayKindAttr:$kind);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Recurrences
//===----------------------------------------------------------------------===//

def RWKV_WKV4Op : RWKV_Op<"wkv4", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead<RWKV_StateResource>, MemWrite<RWKV_StateResource>]>]> {
  let summary = "RWKV-4's WKV recurrence in its numerically stable form";
  let description = [{
    For each token t and channel c, with `w` the (log-space) decay, `u` the
    bonus and the state slots `aa`, `bb`, `pp` (each `tensor<C x f32>`):

    ```
    q  = max(pp, u + k);  e1 = exp(pp - q);  e2 = exp(u + k - q)
    result = (e1 aa + e2 v) / (e1 bb + e2)
    q' = max(pp + w, k);  e1 = exp(pp + w - q');  e2 = exp(k - q')
    aa = e1 aa + e2 v;  bb = e1 bb + e2;  pp = q'
    ```

    ```mlir
    %wkv = rwkv.wkv4 %k, %v, %w, %u state(@"l0.aa", @"l0.bb", @"l0.pp")
        : (tensor<1x128xf32>, tensor<1x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<1x128xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$k, RWKV_Activation2D:$v,
                   RWKV_FloatTensor:$w, RWKV_FloatTensor:$u,
                   FlatSymbolRefAttr:$aa, FlatSymbolRefAttr:$bb, FlatSymbolRefAttr:$pp);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = [{
    $k `,` $v `,` $w `,` $u `state` `(` $aa `,` $bb `,` $pp `)` attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def RWKV_WKV5Op : RWKV_Op<"wkv5", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead<RWKV_StateResource>, MemWrite<RWKV_StateResource>]>]> {
  let summary = "RWKV-5/6's matrix-valued WKV recurrence";
  let description = [{
    Per head h of N channels, with the slot `state` of type
    `tensor<H x N x N x f32>` indexed S[h][value i][key j] (the layout of
    RWKV-7's state and of a state-tuned `time_state`):

    ```
    y[i] = sum_j r[j] (u[j] k[j] v[i] + S[i][j])
    S[i][j] = k[j] v[i] + w[j] S[i][j]
    ```

    `w` is the decay (already `exp(-exp(.))`): per-channel (RWKV-5, C or H
    elements, a per-head value applying to its head's channels) or one row
    per token (RWKV-6, an activation). `u` is the bonus, C or H elements.

    ```mlir
    %y = rwkv.wkv5 %r, %k, %v, %w, %u state @"l0.wkv" {heads = 8 : i64}
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<8x8xf32>, tensor<8x8xf32>)
        -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$r, RWKV_Activation2D:$k, RWKV_Activation2D:$v,
                   RWKV_FloatTensor:$w, RWKV_FloatTensor:$u,
                   FlatSymbolRefAttr:$state, I64Attr:$heads);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = [{
    $r `,` $k `,` $v `,` $w `,` $u `state` $state attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def RWKV_WKV7Op : RWKV_Op<"wkv7", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead<RWKV_StateResource>, MemWrite<RWKV_StateResource>]>]> {
  let summary = "RWKV-7's generalized delta-rule recurrence";
  let description = [{
    Per head, with the slot `state` of type `tensor<H x N x N x f32>`
    indexed S[h][value i][key j] and all inputs activations (one row per
    token):

    ```
    S[i][j] = S[i][j] w[j] + (sum_l S[i][l] a[l]) b[j] + v[i] k[j]
    y[i] = sum_j S[i][j] r[j]
    ```

    RWKV-7 passes `a = -kk` and `b = kk * a` (see `rwkv.wkv7_prep`).

    ```mlir
    %y = rwkv.wkv7 %r, %w, %k, %v, %a, %b state @"l0.wkv" {heads = 1 : i64}
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>,
           tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$r, RWKV_Activation2D:$w, RWKV_Activation2D:$k,
                   RWKV_Activation2D:$v, RWKV_Activation2D:$a, RWKV_Activation2D:$b,
                   FlatSymbolRefAttr:$state, I64Attr:$heads);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = [{
    $r `,` $w `,` $k `,` $v `,` $a `,` $b `state` $state attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def RWKV_WKV7PrepOp : RWKV_Op<"wkv7_prep", [Pure]> {
  let summary = "RWKV-7's key normalization and in-context learning rate";
  let description = [{
    From the key `k`, the rate `a` and the per-channel `k_k`, `k_a`:

    ```
    kk = k * k_k, L2-normalized within each head (divide by max(|.|, 1e-12))
    new_k = k * (1 + (a - 1) * k_a)
    neg_kk = -kk;  kk_a = kk * a
    ```

    ```mlir
    %nk, %nkk, %kka = rwkv.wkv7_prep %k, %a, %k_k, %k_a {heads = 1 : i64}
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>)
        -> (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>)
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$k, RWKV_Activation2D:$a,
                   RWKV_FloatTensor:$k_k, RWKV_FloatTensor:$k_a, I64Attr:$heads);
  let results = (outs RWKV_Activation2D:$new_k, RWKV_Activation2D:$neg_kk,
                      RWKV_Activation2D:$kk_a);
  let assemblyFormat = [{
    $k `,` $a `,` $k_k `,` $k_a attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def RWKV_HeadBonusOp : RWKV_Op<"head_bonus", [Pure]> {
  let summary = "RWKV-7's per-head bonus term";
  let description = [{
    `result = (sum_{j in head} r[j] k[j] r_k[h][j]) v` for each head: a
    scalar per head times that head's values. `r_k` has C elements.

    ```mlir
    %b = rwkv.head_bonus %r, %k, %v, %rk {heads = 1 : i64}
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x64xf32>) -> tensor<1x64xf32>
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$r, RWKV_Activation2D:$k,
                   RWKV_Activation2D:$v, RWKV_FloatTensor:$r_k, I64Attr:$heads);
  let results = (outs RWKV_Activation2D:$result);
  let assemblyFormat = [{
    $r `,` $k `,` $v `,` $r_k attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Fused ops (made by the fusion passes; codegen lowers them directly)
//===----------------------------------------------------------------------===//

// A linear map whose input is computed as it is loaded.
class RWKV_FusedLinearOp<string mnemonic, string equation, string example>
    : RWKV_Op<mnemonic, [Pure]> {
  let summary = "a linear map of " # equation # ", computed in its input load";
  let description = [{
    `result[t] = W (}] # equation # [{)[t]` with W stored (out, in) as for
    `rwkv.linear`. The input transform is applied as the product loads each
    input vector: no intermediate activation is written.

    ```mlir
    }] # example # [{
    ```
  }];
  let results = (outs RWKV_Activation2D:$result);
  let hasVerifier = 1;
}

def RWKV_MixLinearOp : RWKV_FusedLinearOp<"mix_linear", "a + (b - a) * t",
    "%k = rwkv.mix_linear %prev, %x, %mix, %wk : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x1x64xf32>, tensor<64x64xf32>) -> tensor<1x64xf32>"> {
  let arguments = (ins RWKV_Activation2D:$a, RWKV_Activation2D:$b,
                   RWKV_FloatTensor:$t, RWKV_WeightTensor:$weight);
  let assemblyFormat = "$a `,` $b `,` $t `,` $weight attr-dict `:` functional-type(operands, results)";
}

def RWKV_GateLinearOp : RWKV_FusedLinearOp<"gate_linear", "sigmoid(g) * y",
    "%o = rwkv.gate_linear %r, %wkv, %wo : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<64x64xf32>) -> tensor<1x64xf32>"> {
  let arguments = (ins RWKV_Activation2D:$g, RWKV_Activation2D:$y,
                   RWKV_WeightTensor:$weight);
  let assemblyFormat = "$g `,` $y `,` $weight attr-dict `:` functional-type(operands, results)";
}

def RWKV_ReluSqLinearOp : RWKV_FusedLinearOp<"relu_sq_linear", "max(x, 0)^2",
    "%v = rwkv.relu_sq_linear %k, %wv : (tensor<1x256xf32>, tensor<64x256xf32>) -> tensor<1x64xf32>"> {
  let arguments = (ins RWKV_Activation2D:$input, RWKV_WeightTensor:$weight);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
}

def RWKV_NormShiftOp : RWKV_Op<"norm_shift", [
    DeclareOpInterfaceMethods<SymbolUserOpInterface>,
    MemoryEffects<[MemRead<RWKV_StateResource>, MemWrite<RWKV_StateResource>]>]> {
  let summary = "layer norm fused with the token shift of its result";
  let description = [{
    `normalized = layer_norm(input)` and `prev = token_shift(normalized)`
    (reading and writing the slot `state`) in one pass over the tokens:
    each normalized row is written once, as this token's value and as the
    next token's previous value.

    ```mlir
    %xa, %prev = rwkv.norm_shift %x, %w, %b state @"state.0.att.shift" {epsilon = 1.0e-05 : f32}
        : (tensor<?x64xf32>, tensor<64xf32>, tensor<64xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>)
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$input, RWKV_FloatTensor:$weight,
                   RWKV_FloatTensor:$bias, FlatSymbolRefAttr:$state,
                   DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let results = (outs RWKV_Activation2D:$normalized, RWKV_Activation2D:$prev);
  let assemblyFormat = [{
    $input `,` $weight `,` $bias `state` $state attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def RWKV_PackedMixLinearOp : RWKV_Op<"packed_mix_linear", [Pure]> {
  let summary = "several mix_linear ops of one token shift over a packed weight";
  let description = [{
    `result_i[t] = W_i (a + (b - a) * t_i)[t]`, where the weight is the
    matrices W_0 .. W_{n-1} (out, in) stacked along their rows, as a packed
    `rwkv.weight_decl` holds them: the projections of a time mix that read
    the same token shift stream one weight.

    ```mlir
    %r, %k = rwkv.packed_mix_linear %prev, %x [%mr, %mk], %wrk
        : (tensor<1x64xf32>, tensor<1x64xf32>, tensor<1x1x64xf32>, tensor<1x1x64xf32>, tensor<128x64xf32>)
        -> (tensor<1x64xf32>, tensor<1x64xf32>)
    ```
  }];
  let arguments = (ins RWKV_Activation2D:$a, RWKV_Activation2D:$b,
                   Variadic<RWKV_FloatTensor>:$mixes, RWKV_WeightTensor:$weight);
  let results = (outs Variadic<RWKV_Activation2D>:$results);
  let assemblyFormat = [{
    $a `,` $b `[` $mixes `]` `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // RWKV_OPS_TD
