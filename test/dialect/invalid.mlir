// RUN: rwkv-opt %s --split-input-file --verify-diagnostics

// Tests that a derived weight must be f32.
// expected-error @+2 {{a derived weight must be f32}}
rwkv.weight_decl @d : tensor<4xf32>
rwkv.weight_decl @e : tensor<4xf16> derive <neg_exp> of @d

// -----

// Tests that a derived weight needs both a kind and a source.
// expected-error @+1 {{a derived weight needs both a kind and a source}}
"rwkv.weight_decl"() {sym_name = "e", type = tensor<4xf32>, source = @d} : () -> ()

// -----

// Tests that a derived weight's source must be declared.
// expected-error @+1 {{source @d is not declared by an rwkv.weight_decl}}
rwkv.weight_decl @e : tensor<4xf32> derive <neg_exp> of @d

// -----

// Tests that a derived weight has its source's shape.
rwkv.weight_decl @d : tensor<4xf32>
// expected-error @+1 {{source @d has type 'tensor<4xf32>', the derived weight is 'tensor<8xf32>'}}
rwkv.weight_decl @e : tensor<8xf32> derive <neg_exp> of @d

// -----

// Tests that a state slot has a static shape.
// expected-error @+1 {{state slot must have a static shape}}
rwkv.state_decl @s : tensor<?xf32> init <zero>

// -----

// Tests that a weight initializer is given exactly when init is 'weight'.
rwkv.weight_decl @t : tensor<4xf32>
// expected-error @+1 {{a weight initializer is given exactly when init is 'weight'}}
rwkv.state_decl @s : tensor<4xf32> init <zero> @t

// -----

// Tests that a state initializer must be a declared weight.
// expected-error @+1 {{initial value @t is not declared by an rwkv.weight_decl}}
rwkv.state_decl @s : tensor<4xf32> init <weight> @t

// -----

// Tests that a state initializer has the slot's shape.
rwkv.weight_decl @t : tensor<2x2xf32>
// expected-error @+1 {{initial value @t has type 'tensor<2x2xf32>', the slot is 'tensor<4xf32>'}}
rwkv.state_decl @s : tensor<4xf32> init <weight> @t

// -----

// Tests that a weight must be declared.
func.func @f() {
  // expected-error @+1 {{weight @w is not declared by an rwkv.weight_decl}}
  %w = rwkv.weight @w : tensor<4xf32>
  return
}

// -----

// Tests that a weight is used with its declared type.
rwkv.weight_decl @w : tensor<4xf16>
func.func @f() {
  // expected-error @+1 {{weight @w is declared as 'tensor<4xf16>', used as 'tensor<4xf32>'}}
  %w = rwkv.weight @w : tensor<4xf32>
  return
}

// -----

// Tests that an embedding table is a matrix.
func.func @f(%t: tensor<1xi32>, %e: tensor<4x4x4xf32>) {
  // expected-error @+1 {{table must be (vocabulary, channels)}}
  %x = rwkv.embedding %t, %e : (tensor<1xi32>, tensor<4x4x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that an embedding keeps the table's channels.
func.func @f(%t: tensor<1xi32>, %e: tensor<16x4xf32>) {
  // expected-error @+1 {{result has 8 channels, the table 4}}
  %x = rwkv.embedding %t, %e : (tensor<1xi32>, tensor<16x4xf32>) -> tensor<1x8xf32>
  return
}

// -----

// Tests that an embedding has one row per token.
func.func @f(%t: tensor<2xi32>, %e: tensor<16x4xf32>) {
  // expected-error @+1 {{result has 1 rows for 2 tokens}}
  %x = rwkv.embedding %t, %e : (tensor<2xi32>, tensor<16x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that last_token gives one token.
func.func @f(%x: tensor<?x4xf32>) {
  // expected-error @+1 {{result must hold one token}}
  %y = rwkv.last_token %x : tensor<?x4xf32> -> tensor<2x4xf32>
  return
}

// -----

// Tests that last_token keeps the channels.
func.func @f(%x: tensor<?x4xf32>) {
  // expected-error @+1 {{result must keep the input's channels}}
  %y = rwkv.last_token %x : tensor<?x4xf32> -> tensor<1x8xf32>
  return
}

// -----

// Tests that an element-wise op's result has the input's type.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{result type 'tensor<2x4xf32>' must match the input type 'tensor<1x4xf32>'}}
  %y = rwkv.layer_norm %x, %w, %w : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

// Tests that a per-channel parameter has a static shape.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<?xf32>) {
  // expected-error @+1 {{weight must have a static shape}}
  %y = rwkv.layer_norm %x, %w, %w : (tensor<1x4xf32>, tensor<?xf32>, tensor<?xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a per-channel parameter has one element per channel.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>, %b: tensor<1x1x5xf32>) {
  // expected-error @+1 {{bias must have 4 elements, found 5}}
  %y = rwkv.layer_norm %x, %w, %b : (tensor<1x4xf32>, tensor<4xf32>, tensor<1x1x5xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a layer norm's epsilon is positive.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %y = rwkv.layer_norm %x, %w, %w {epsilon = 0.0 : f32} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a group norm's epsilon is positive.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %y = rwkv.group_norm %x, %w, %w {groups = 2 : i64, epsilon = -1.0 : f32} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that groups must divide the channels.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{heads (3) must divide the channels (4)}}
  %y = rwkv.group_norm %x, %w, %w {groups = 3 : i64} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that groups must be positive.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{heads must be positive, found 0}}
  %y = rwkv.group_norm %x, %w, %w {groups = 0 : i64} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that both ends of a lerp have the same shape.
func.func @f(%a: tensor<1x4xf32>, %b: tensor<2x4xf32>, %t: tensor<4xf32>) {
  // expected-error @+1 {{b must have the shape of the input}}
  %y = rwkv.lerp %a, %b, %t : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a static lerp weight is per-channel.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<1x1x3xf32>) {
  // expected-error @+1 {{t must have 4 elements, found 3}}
  %y = rwkv.lerp %a, %a, %t : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x1x3xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a per-token lerp weight has the activations' shape.
func.func @f(%a: tensor<?x4xf32>, %t: tensor<?x8xf32>) {
  // expected-error @+1 {{t must have the shape of the input}}
  %y = rwkv.lerp %a, %a, %t : (tensor<?x4xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x4xf32>
  return
}

// -----

// Tests that a binary op's right operand is an activation or per-channel.
func.func @f(%a: tensor<1x4xf32>, %b: tensor<2x2x2xf32>) {
  // expected-error @+1 {{rhs must have 4 elements, found 8}}
  %y = rwkv.mul %a, %b : (tensor<1x4xf32>, tensor<2x2x2xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a unary op keeps its type.
func.func @f(%a: tensor<1x4xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %y = "rwkv.sigmoid"(%a) : (tensor<1x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

// Tests that a decay keeps its parameter's shape.
func.func @f(%d: tensor<4xf32>) {
  // expected-error @+1 {{result must have the input's shape}}
  %w = rwkv.decay %d {kind = #rwkv.decay_kind<neg_exp>} : tensor<4xf32> -> tensor<2x2xf32>
  return
}

// -----

// Tests that a token shift needs static channels.
func.func @f(%x: tensor<1x?xf32>) {
  // expected-error @+1 {{channels must be static}}
  %p = rwkv.token_shift %x state @s : tensor<1x?xf32>
  return
}

// -----

// Tests that a token shift's slot is declared.
func.func @f(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{state slot @s is not declared by an rwkv.state_decl}}
  %p = rwkv.token_shift %x state @s : tensor<1x4xf32>
  return
}

// -----

// Tests that a token shift's slot holds one token.
rwkv.state_decl @s : tensor<8xf32> init <zero>
func.func @f(%x: tensor<1x4xf32>) {
  // expected-error @+1 {{state slot @s must be tensor<4xf32>, declared as 'tensor<8xf32>'}}
  %p = rwkv.token_shift %x state @s : tensor<1x4xf32>
  return
}

// -----

// Tests that ddlerp's previous tokens have the input's shape.
func.func @f(%x: tensor<1x4xf32>, %p: tensor<2x4xf32>, %m: tensor<4xf32>, %w1: tensor<4x4xf32>, %w2: tensor<2x2x4xf32>) {
  // expected-error @+1 {{prev must have the shape of the input}}
  %r:2 = rwkv.ddlerp %x, %p, %m [%m, %m], %w1, %w2 : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<2x2x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that ddlerp has one result per mix.
func.func @f(%x: tensor<1x4xf32>, %m: tensor<4xf32>, %w1: tensor<4x4xf32>, %w2: tensor<2x2x4xf32>) {
  // expected-error @+1 {{needs one result per mix, found 2 mixes and 1 results}}
  %r = rwkv.ddlerp %x, %x, %m [%m, %m], %w1, %w2 : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<2x2x4xf32>) -> (tensor<1x4xf32>)
  return
}

// -----

// Tests that ddlerp's results have the input's type.
func.func @f(%x: tensor<1x4xf32>, %m: tensor<4xf32>, %w1: tensor<4x4xf32>, %w2: tensor<2x2x4xf32>) {
  // expected-error @+1 {{results must have the input's type}}
  %r:2 = rwkv.ddlerp %x, %x, %m [%m, %m], %w1, %w2 : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<2x2x4xf32>) -> (tensor<1x4xf32>, tensor<2x4xf32>)
  return
}

// -----

// Tests that ddlerp's matrices have ranks 2 and 3.
func.func @f(%x: tensor<1x4xf32>, %m: tensor<4xf32>, %w1: tensor<4x4xf32>) {
  // expected-error @+1 {{w1 must be (C, F*D) and w2 (F, D, C)}}
  %r:2 = rwkv.ddlerp %x, %x, %m [%m, %m], %w1, %w1 : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x4xf32>, tensor<4x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that ddlerp's matrices fit the mixes.
func.func @f(%x: tensor<1x4xf32>, %m: tensor<4xf32>, %w1: tensor<4x6xf32>, %w2: tensor<2x2x4xf32>) {
  // expected-error @+1 {{do not fit 2 mixes of 4 channels}}
  %r:2 = rwkv.ddlerp %x, %x, %m [%m, %m], %w1, %w2 : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4x6xf32>, tensor<2x2x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that a linear map's weight is a matrix.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must be a matrix}}
  %y = rwkv.linear %x, %w : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a linear map's input fits the weight's (out, in) layout.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{input has 4 channels, the weight takes 8}}
  %y = rwkv.linear %x, %w : (tensor<1x4xf32>, tensor<4x8xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a linear map's result fits the weight's (in, out) layout.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{result has 4 channels, the weight gives 8}}
  %y = rwkv.linear %x, %w {layout = #rwkv.weight_layout<in_out>} : (tensor<1x4xf32>, tensor<4x8xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a linear map keeps the tokens.
func.func @f(%x: tensor<2x4xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{result must have one row per input token}}
  %y = rwkv.linear %x, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  return
}

// -----

// Tests that a quantized weight's rows are whole blocks of 32.
func.func @f(%x: tensor<1x16xf32>, %w: tensor<4x16x!rwkv.quant<q8_0>>) {
  // expected-error @+1 {{a quantized weight's rows must be whole blocks of 32, found 16}}
  %y = rwkv.linear %x, %w : (tensor<1x16xf32>, tensor<4x16x!rwkv.quant<q8_0>>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that LoRA factors are matrices.
func.func @f(%x: tensor<1x4xf32>, %a: tensor<4xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{a and b must be matrices}}
  %y = rwkv.lora %x, %a, %b {act = #rwkv.activation<none>, out_act = #rwkv.activation<none>} : (tensor<1x4xf32>, tensor<4xf32>, tensor<2x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a LoRA's first factor takes the input's channels.
func.func @f(%x: tensor<1x4xf32>, %a: tensor<8x2xf32>, %b: tensor<2x4xf32>) {
  // expected-error @+1 {{a takes 8 channels, the input has 4}}
  %y = rwkv.lora %x, %a, %b {act = #rwkv.activation<none>, out_act = #rwkv.activation<none>} : (tensor<1x4xf32>, tensor<8x2xf32>, tensor<2x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a LoRA's factors agree on the rank.
func.func @f(%x: tensor<1x4xf32>, %a: tensor<4x2xf32>, %b: tensor<3x4xf32>) {
  // expected-error @+1 {{disagree on the rank}}
  %y = rwkv.lora %x, %a, %b {act = #rwkv.activation<none>, out_act = #rwkv.activation<none>} : (tensor<1x4xf32>, tensor<4x2xf32>, tensor<3x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a LoRA's result fits the second factor.
func.func @f(%x: tensor<1x4xf32>, %a: tensor<4x2xf32>, %b: tensor<2x8xf32>) {
  // expected-error @+1 {{result has 4 channels, b gives 8}}
  %y = rwkv.lora %x, %a, %b {act = #rwkv.activation<none>, out_act = #rwkv.activation<none>} : (tensor<1x4xf32>, tensor<4x2xf32>, tensor<2x8xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a LoRA's bias is per output channel.
func.func @f(%x: tensor<1x4xf32>, %a: tensor<4x2xf32>, %b: tensor<2x4xf32>, %c: tensor<3xf32>) {
  // expected-error @+1 {{bias must have 4 elements, found 3}}
  %y = rwkv.lora %x, %a, %b, %c {act = #rwkv.activation<none>, out_act = #rwkv.activation<none>} : (tensor<1x4xf32>, tensor<4x2xf32>, tensor<2x4xf32>, tensor<3xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv4 needs static channels.
func.func @f(%k: tensor<1x?xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{channels must be static}}
  %y = rwkv.wkv4 %k, %k, %w, %w state(@a, @b, @p) : (tensor<1x?xf32>, tensor<1x?xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x?xf32>
  return
}

// -----

// Tests that wkv4's keys and values have the same shape.
func.func @f(%k: tensor<1x4xf32>, %v: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{v must have the shape of the input}}
  %y = rwkv.wkv4 %k, %v, %w, %w state(@a, @b, @p) : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv4's decay is per-channel.
func.func @f(%k: tensor<1x4xf32>, %w: tensor<2xf32>, %u: tensor<4xf32>) {
  // expected-error @+1 {{w must have 4 elements, found 2}}
  %y = rwkv.wkv4 %k, %k, %w, %u state(@a, @b, @p) : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<2xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv4's state slots are per-channel vectors.
rwkv.state_decl @a : tensor<4xf32> init <zero>
rwkv.state_decl @b : tensor<4xf32> init <zero>
rwkv.state_decl @p : tensor<2x2xf32> init <neg_large>
func.func @f(%k: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{state slot @p must be tensor<4xf32>, declared as 'tensor<2x2xf32>'}}
  %y = rwkv.wkv4 %k, %k, %w, %w state(@a, @b, @p) : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv5's heads divide the channels.
func.func @f(%r: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{heads (3) must divide the channels (4)}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %w state @s {heads = 3 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv5's static decay has a value per channel or per head.
func.func @f(%r: tensor<1x4xf32>, %w: tensor<3xf32>, %u: tensor<4xf32>) {
  // expected-error @+1 {{w must have 4 or 2 elements, found 3}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %u state @s {heads = 2 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<3xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv5's per-token decay has the activations' shape.
func.func @f(%r: tensor<2x4xf32>, %w: tensor<3x4xf32>, %u: tensor<4xf32>) {
  // expected-error @+1 {{w must have the shape of the input}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %u state @s {heads = 2 : i64} : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<3x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

// Tests that wkv5's bonus has a value per channel or per head.
func.func @f(%r: tensor<1x4xf32>, %w: tensor<4xf32>, %u: tensor<3xf32>) {
  // expected-error @+1 {{u must have 4 or 2 elements, found 3}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %u state @s {heads = 2 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<3xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv5's state is one N x N matrix per head.
rwkv.state_decl @s : tensor<4x4xf32> init <zero>
func.func @f(%r: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{state slot @s must be tensor<2x2x2xf32>, declared as 'tensor<4x4xf32>'}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %w state @s {heads = 2 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv5 needs static channels.
func.func @f(%r: tensor<1x?xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{channels must be static}}
  %y = rwkv.wkv5 %r, %r, %r, %w, %w state @s {heads = 2 : i64} : (tensor<1x?xf32>, tensor<1x?xf32>, tensor<1x?xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<1x?xf32>
  return
}

// -----

// Tests that wkv7's operands all have the same shape.
func.func @f(%r: tensor<1x4xf32>, %w: tensor<2x4xf32>) {
  // expected-error @+1 {{every operand must have the shape of the input}}
  %y = rwkv.wkv7 %r, %w, %r, %r, %r, %r state @s {heads = 1 : i64} : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv7's heads divide the channels.
func.func @f(%r: tensor<1x4xf32>) {
  // expected-error @+1 {{heads (3) must divide the channels (4)}}
  %y = rwkv.wkv7 %r, %r, %r, %r, %r, %r state @s {heads = 3 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv7 needs static channels.
func.func @f(%r: tensor<1x?xf32>) {
  // expected-error @+1 {{channels must be static}}
  %y = rwkv.wkv7 %r, %r, %r, %r, %r, %r state @s {heads = 1 : i64} : (tensor<1x?xf32>, tensor<1x?xf32>, tensor<1x?xf32>, tensor<1x?xf32>, tensor<1x?xf32>, tensor<1x?xf32>) -> tensor<1x?xf32>
  return
}

// -----

// Tests that wkv7's state is one N x N matrix per head.
rwkv.state_decl @s : tensor<1x4x4xf32> init <zero>
func.func @f(%r: tensor<1x4xf32>) {
  // expected-error @+1 {{state slot @s must be tensor<2x2x2xf32>, declared as 'tensor<1x4x4xf32>'}}
  %y = rwkv.wkv7 %r, %r, %r, %r, %r, %r state @s {heads = 2 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that wkv7_prep's key parameters are per-channel.
func.func @f(%k: tensor<1x4xf32>, %p: tensor<1x1x2xf32>) {
  // expected-error @+1 {{k_k must have 4 elements, found 2}}
  %r:3 = rwkv.wkv7_prep %k, %k, %p, %p {heads = 1 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x1x2xf32>, tensor<1x1x2xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that wkv7_prep's results have the key's type.
func.func @f(%k: tensor<1x4xf32>, %p: tensor<4xf32>) {
  // expected-error @+1 {{results must have the type of k}}
  %r:3 = rwkv.wkv7_prep %k, %k, %p, %p {heads = 1 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<1x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that head_bonus's r_k is per-channel.
func.func @f(%r: tensor<1x4xf32>, %rk: tensor<2x4xf32>) {
  // expected-error @+1 {{r_k must have 4 elements, found 8}}
  %y = rwkv.head_bonus %r, %r, %r, %rk {heads = 2 : i64} : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<2x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a fused linear's input fits its weight.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<4xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{input has 4 channels, the weight takes 8}}
  %y = rwkv.mix_linear %a, %a, %t, %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4x8xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a fused linear's result fits its weight.
func.func @f(%k: tensor<1x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{result has 4 channels, the weight gives 8}}
  %y = rwkv.relu_sq_linear %k, %w : (tensor<1x4xf32>, tensor<8x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a fused linear's weight is a matrix.
func.func @f(%k: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must be a matrix}}
  %y = rwkv.relu_sq_linear %k, %w : (tensor<1x4xf32>, tensor<4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a fused linear keeps the tokens.
func.func @f(%k: tensor<2x4xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{result must have one row per input token}}
  %y = rwkv.relu_sq_linear %k, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32>
  return
}

// -----

// Tests that a gate has the shape of what it gates.
func.func @f(%g: tensor<2x4xf32>, %y: tensor<1x4xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{y must have the shape of the input}}
  %o = rwkv.gate_linear %g, %y, %w : (tensor<2x4xf32>, tensor<1x4xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that a mix_linear's mix is per-channel.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<3xf32>, %w: tensor<4x4xf32>) {
  // expected-error @+1 {{t must have 4 elements, found 3}}
  %y = rwkv.mix_linear %a, %a, %t, %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<3xf32>, tensor<4x4xf32>) -> tensor<1x4xf32>
  return
}

// -----

// Tests that norm_shift's slot holds one token.
rwkv.state_decl @s : tensor<8xf32> init <zero>
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{state slot @s must be tensor<4xf32>, declared as 'tensor<8xf32>'}}
  %n, %p = rwkv.norm_shift %x, %w, %w state @s : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that norm_shift's results have the input's type.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{results must have the input's type}}
  %n, %p = rwkv.norm_shift %x, %w, %w state @s : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<1x4xf32>, tensor<2x4xf32>)
  return
}

// -----

// Tests that norm_shift's epsilon is positive.
func.func @f(%x: tensor<1x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %n, %p = rwkv.norm_shift %x, %w, %w state @s {epsilon = 0.0 : f32} : (tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that norm_shift needs static channels.
func.func @f(%x: tensor<1x?xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{channels must be static}}
  %n, %p = rwkv.norm_shift %x, %w, %w state @s : (tensor<1x?xf32>, tensor<4xf32>, tensor<4xf32>) -> (tensor<1x?xf32>, tensor<1x?xf32>)
  return
}

// -----

// Tests that a packed weight stacks matrices of equal shape.
// expected-error @+1 {{a packed weight stacks one or more matrices of equal shape}}
rwkv.weight_decl @p : tensor<9x8xf32> concat ["a", "b"]

// -----

// Tests that a weight is not both derived and packed.
rwkv.weight_decl @d : tensor<8x8xf32>
// expected-error @+1 {{a weight is either derived or packed}}
rwkv.weight_decl @p : tensor<8x8xf32> derive <neg_exp> of @d concat ["a"]

// -----

// Tests that packed_mix_linear has one result per mix.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{needs one result per mix, found 2 mixes and 1 results}}
  %r = rwkv.packed_mix_linear %a, %a [%t, %t], %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8x4xf32>) -> (tensor<1x4xf32>)
  return
}

// -----

// Tests that packed_mix_linear's weight stacks one matrix per mix.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<4xf32>, %w: tensor<9x4xf32>) {
  // expected-error @+1 {{does not stack 2 matrices of 4 inputs}}
  %r:2 = rwkv.packed_mix_linear %a, %a [%t, %t], %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<9x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that packed_mix_linear's results have one block of rows each.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{each result must have 4 channels}}
  %r:2 = rwkv.packed_mix_linear %a, %a [%t, %t], %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<8x4xf32>) -> (tensor<1x4xf32>, tensor<1x8xf32>)
  return
}

// -----

// Tests that packed_mix_linear's mixes are per-channel.
func.func @f(%a: tensor<1x4xf32>, %t: tensor<3xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+1 {{mix must have 4 elements, found 3}}
  %r:2 = rwkv.packed_mix_linear %a, %a [%t, %t], %w : (tensor<1x4xf32>, tensor<1x4xf32>, tensor<3xf32>, tensor<3xf32>, tensor<8x4xf32>) -> (tensor<1x4xf32>, tensor<1x4xf32>)
  return
}

// -----

// Tests that a resource config's alignments are powers of two.
// expected-error @+1 {{weight_alignment must be a power of two, not 48}}
module attributes {rwkv.resource_config = #rwkv.resource_config<weight_alignment = 48, slot_alignment = 16>} {
}

// -----

// Tests that a placed module names the alignments it was placed with.
// expected-error @+1 {{has rwkv.memory_layout but no rwkv.resource_config}}
module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 64, state_floats = 0>} {
  rwkv.weight_decl @w : tensor<4xf32> at <offset = 0>
}

// -----

// Tests that every declaration of a placed module has a placement.
module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 64, state_floats = 16>, rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  rwkv.weight_decl @w : tensor<4xf32> at <offset = 0>
  // expected-error @+1 {{has no placement in the state}}
  rwkv.state_decl @s : tensor<4xf32> init <zero>
}

// -----

// Tests that a weight is placed at a multiple of the weight alignment.
module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 128, state_floats = 0>, rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  // expected-error @+1 {{is placed at weight image offset 32, not a multiple of the 64-byte alignment of rwkv.resource_config}}
  rwkv.weight_decl @w : tensor<4xf32> at <offset = 32>
}

// -----

// Tests that a state slot lies within the state.
module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 0, state_floats = 16>, rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  // expected-error @+1 {{ends at state offset 36 floats, beyond the 16 floats of rwkv.memory_layout}}
  rwkv.state_decl @s : tensor<20xf32> init <zero> at <offset = 16>
}

// -----

// Tests that two weights do not overlap.
module attributes {rwkv.memory_layout = #rwkv.memory_layout<weights_bytes = 256, state_floats = 0>, rwkv.resource_config = #rwkv.resource_config<weight_alignment = 64, slot_alignment = 16>} {
  rwkv.weight_decl @a : tensor<32xf32> at <offset = 0>
  // expected-error @+1 {{overlaps "a" in the weight image}}
  rwkv.weight_decl @b : tensor<4xf32> at <offset = 64>
}

// -----

// Tests that a placement offset is not negative.
// expected-error @+1 {{placement offset must not be negative, not -64}}
rwkv.weight_decl @w : tensor<4xf32> at <offset = -64>
