//===- RWKVDialect.td - The rwkv dialect -------------------*- tablegen -*-===//
//
// The rwkv dialect captures the layer stack of RWKV-4, 5.x, 6 and 7 models:
// weights referenced by name, the recurrent state as named slots, and the
// ops of the math in docs/math.md at a granularity that lets
// passes fuse token shift, layer norm and the mixes into the ops that consume
// them.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_DIALECT_TD
#define RWKV_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def RWKV_Dialect : Dialect {
  let name = "rwkv";
  let summary = "Layer stack, weights and recurrent state of RWKV models";
  let description = [{
    Activations are `tensor<T x C x f32>`: T tokens of width C, where T is 1
    for one token (RNN mode) and any size, usually dynamic, for a sequence
    (GPT mode). Weights are module-level `rwkv.weight_decl` symbols named as
    in the checkpoint and read with `rwkv.weight`; they are never inlined.
    The recurrent state is a set of `rwkv.state_decl` slots that the ops
    carrying state (`rwkv.token_shift`, `rwkv.wkv4`, `rwkv.wkv5`,
    `rwkv.wkv7`) name explicitly, so the runtime's state layout is derived
    from the IR.
  }];
  let cppNamespace = "::mlir::rwkv";
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  // rwkv.resource_config and rwkv.memory_layout on a module (see below).
  let hasOperationAttrVerify = 1;
  let extraClassDeclaration = [{
    /// The module attribute naming the target's alignments
    /// (#rwkv.resource_config), set by the target before rwkv-assign-layout.
    static constexpr ::llvm::StringLiteral kResourceConfigAttrName =
        "rwkv.resource_config";
    /// The module attribute with the image and state sizes
    /// (#rwkv.memory_layout), set by rwkv-assign-layout.
    static constexpr ::llvm::StringLiteral kMemoryLayoutAttrName =
        "rwkv.memory_layout";
  }];
}

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def RWKV_QuantKind : I32EnumAttr<"QuantKind",
    "rwkv.cpp / ggml block quantization (blocks of 32 elements)", [
      I32EnumAttrCase<"q4_0", 0>, I32EnumAttrCase<"q4_1", 1>,
      I32EnumAttrCase<"q5_0", 2>, I32EnumAttrCase<"q5_1", 3>,
      I32EnumAttrCase<"q8_0", 4>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}

def RWKV_DecayKind : I32EnumAttr<"DecayKind",
    "how a decay (or bonus) is derived from its parameter", [
      // RWKV-4: w = -exp(d)  (a log-space decay)
      I32EnumAttrCase<"neg_exp", 0>,
      // RWKV-5/6: w = exp(-exp(d))
      I32EnumAttrCase<"exp_neg_exp", 1>,
      // RWKV-7: w = exp(-e^{-1/2} sigmoid(d))
      I32EnumAttrCase<"exp_neg_sigmoid", 2>,
      // exp(d): RWKV-5.0's bonus `time_first`
      I32EnumAttrCase<"exp", 3>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}
def RWKV_DecayKindAttr : EnumAttr<RWKV_Dialect, RWKV_DecayKind, "decay_kind"> {
  let assemblyFormat = "`<` $value `>`";
}

def RWKV_Activation : I32EnumAttr<"Activation", "element-wise activation", [
      I32EnumAttrCase<"none", 0>, I32EnumAttrCase<"tanh", 1>,
      I32EnumAttrCase<"sigmoid", 2>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}
def RWKV_ActivationAttr : EnumAttr<RWKV_Dialect, RWKV_Activation, "activation"> {
  let assemblyFormat = "`<` $value `>`";
}

def RWKV_WeightLayout : I32EnumAttr<"WeightLayout",
    "how a matrix is stored", [
      // PyTorch Linear: (out, in), y = W x
      I32EnumAttrCase<"out_in", 0>,
      // (in, out), y = x W (RWKV-6/7 LoRA matrices)
      I32EnumAttrCase<"in_out", 1>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}
def RWKV_WeightLayoutAttr
    : EnumAttr<RWKV_Dialect, RWKV_WeightLayout, "weight_layout"> {
  let assemblyFormat = "`<` $value `>`";
}

def RWKV_StateInit : I32EnumAttr<"StateInit", "initial value of a state slot", [
      I32EnumAttrCase<"zero", 0>,
      // -1e30: RWKV-4's running maximum `pp`
      I32EnumAttrCase<"neg_large", 1>,
      // the value of a weight (a state-tuned `time_state`)
      I32EnumAttrCase<"weight", 2>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}
def RWKV_StateInitAttr : EnumAttr<RWKV_Dialect, RWKV_StateInit, "state_init"> {
  let assemblyFormat = "`<` $value `>`";
}

def RWKV_WeightType : I32EnumAttr<"WeightType",
    "the storage type of the weight matrices (--weight-type)", [
      // as stored in the checkpoint (quantized ones stay quantized where the
      // target's products read them, else become f32)
      I32EnumAttrCase<"keep", 0>,
      I32EnumAttrCase<"f32", 1>, I32EnumAttrCase<"f16", 2>,
      I32EnumAttrCase<"bf16", 3>,
      // rwkv.cpp's block formats (!rwkv.quant): the matrices of out_in
      // products in blocks of 32, the other matrices f16
      I32EnumAttrCase<"q8_0", 4>, I32EnumAttrCase<"q5_1", 5>,
      I32EnumAttrCase<"q5_0", 6>, I32EnumAttrCase<"q4_1", 7>,
      I32EnumAttrCase<"q4_0", 8>]> {
  let cppNamespace = "::mlir::rwkv";
  let genSpecializedAttr = 0;
}

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

class RWKV_Type<string name, string typeMnemonic, list<Trait> traits = []>
    : TypeDef<RWKV_Dialect, name, traits> {
  let mnemonic = typeMnemonic;
}

def RWKV_QuantType : RWKV_Type<"Quant", "quant"> {
  let summary = "a block-quantized scalar, as stored by rwkv.cpp";
  let description = [{
    The element type of a weight stored in one of rwkv.cpp's quantized
    formats. The tensor's shape is the logical shape; the innermost
    dimension is cut into blocks of 32 elements, each with its own scale
    (and minimum for `q4_1`/`q5_1`), stored as rwkv.cpp stores them (the
    weight image holds the blocks byte for byte, `docs/formats.md`):

    | kind | block bytes | element j of the block |
    |---|---|---|
    | `q4_0` | 18: f16 d, 16 B nibbles | d (q_j - 8) |
    | `q4_1` | 20: f16 d, f16 m, 16 B nibbles | d q_j + m |
    | `q5_0` | 22: f16 d, 4 B fifth bits, 16 B nibbles | d (q_j - 16) |
    | `q5_1` | 24: f16 d, f16 m, 4 B fifth bits, 16 B nibbles | d q_j + m |
    | `q8_0` | 34: f16 d, 32 int8 | d q_j |

    Nibble byte i holds q_i (low half) and q_{i+16} (high half); bit j of
    the fifth bits (little-endian) is bit 4 of q_j.

    ```mlir
    rwkv.weight_decl @"blocks.0.att.key.weight" : tensor<64x64x!rwkv.quant<q5_1>>
    ```
  }];
  let parameters = (ins EnumParameter<RWKV_QuantKind>:$kind);
  let assemblyFormat = "`<` $kind `>`";
}

//===----------------------------------------------------------------------===//
// Memory layout attributes
//===----------------------------------------------------------------------===//

class RWKV_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<RWKV_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def RWKV_ResourceConfigAttr : RWKV_Attr<"ResourceConfig", "resource_config"> {
  let summary = "the alignments a target asks of the weight image and state";
  let description = [{
    Set by a target on the module (`rwkv.resource_config`) before
    `rwkv-assign-layout`, which places every weight at a multiple of
    `weight_alignment` bytes of the weight image and every state slot at a
    multiple of `slot_alignment` floats of the state. Both are powers of two.

    ```mlir
    module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
    }
    ```
  }];
  let parameters = (ins "int64_t":$weight_alignment, "int64_t":$slot_alignment);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def RWKV_PlacementAttr : RWKV_Attr<"Placement", "placement"> {
  let summary = "where a weight or state slot lives";
  let description = [{
    Set by `rwkv-assign-layout` on every `rwkv.weight_decl` (`offset` in
    bytes from the start of the weight image) and `rwkv.state_decl`
    (`offset` in floats from the start of the state), printed after `at`.

    ```mlir
    rwkv.weight_decl @"emb.weight" : tensor<16x8xf32> at <offset = 0>
    rwkv.state_decl @"state.0.att.shift" : tensor<8xf32> init <zero> at <offset = 16>
    ```
  }];
  let parameters = (ins "int64_t":$offset);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def RWKV_MemoryLayoutAttr : RWKV_Attr<"MemoryLayout", "memory_layout"> {
  let summary = "the sizes of the weight image and of the state";
  let description = [{
    Set by `rwkv-assign-layout` on the module (`rwkv.memory_layout`) once
    every declaration has its `#rwkv.placement`. The dialect verifies a
    module that carries it: every declaration is placed, at a multiple of
    the `rwkv.resource_config` alignment, within these sizes, and no two
    overlap.

    ```mlir
    module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 1024, state_floats = 80>} {
    }
    ```
  }];
  let parameters = (ins "int64_t":$weights_bytes, "int64_t":$state_floats);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

def RWKV_LayerStrideAttr : RWKV_Attr<"LayerStride", "layer_stride"> {
  let summary = "how far apart two consecutive layers of a stack lie";
  let description = [{
    Set by `rwkv-assign-layout` on an `rwkv.layers` op of more than one
    layer, which it places layer after layer: the weights of layer `k` lie
    `(k - first) * weights` bytes after those of layer `first`, and its state
    slots `(k - first) * state` floats after them. A target reads layer `k`'s
    weights and slots at those offsets.

    ```mlir
    rwkv.layers 1 to 11 stride <weights = 81920, state = 4224> (...)
    ```
  }];
  let parameters = (ins "int64_t":$weights, "int64_t":$state);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
}

#endif // RWKV_DIALECT_TD
