// RUN: rwkv-opt %s | rwkv-opt | FileCheck %s
// RUN: rwkv-opt %s --mlir-print-op-generic | rwkv-opt | FileCheck %s

// Tests that every rwkv op prints and re-parses, in pretty and generic form.

// CHECK: rwkv.weight_decl @emb.weight : tensor<256x128xf32>
rwkv.weight_decl @"emb.weight" : tensor<256x128xf32>
rwkv.weight_decl @"ln.weight" : tensor<128xf32>
rwkv.weight_decl @"ln.bias" : tensor<128xbf16>
rwkv.weight_decl @"mix" : tensor<1x1x128xf32>
// CHECK: rwkv.weight_decl @key.weight : tensor<256x128x!rwkv.quant<q5_1>>
rwkv.weight_decl @"key.weight" : tensor<256x128x!rwkv.quant<q5_1>>
rwkv.weight_decl @"value.weight" : tensor<128x256xf16>
rwkv.weight_decl @"w1" : tensor<128x160xf32>
rwkv.weight_decl @"w2" : tensor<5x32x128xf32>
rwkv.weight_decl @"lora.a" : tensor<128x32xf32>
rwkv.weight_decl @"lora.b" : tensor<32x128xf32>
rwkv.weight_decl @"time_decay" : tensor<128xf32>
// CHECK: rwkv.weight_decl @kv.packed : tensor<512x128xf32> concat ["key.weight", "value.weight"]
rwkv.weight_decl @"kv.packed" : tensor<512x128xf32> concat ["key.weight", "value.weight"]
// CHECK: rwkv.weight_decl @time_decay.neg_exp : tensor<128xf32> derive <neg_exp> of @time_decay
rwkv.weight_decl @"time_decay.neg_exp" : tensor<128xf32> derive <neg_exp> of @"time_decay"
rwkv.weight_decl @"head_decay" : tensor<8x16xf32>
rwkv.weight_decl @"time_state" : tensor<8x16x16xf32>

// CHECK: rwkv.state_decl @shift : tensor<128xf32> init <zero>
rwkv.state_decl @"shift" : tensor<128xf32> init <zero>
rwkv.state_decl @"aa" : tensor<128xf32> init <zero>
rwkv.state_decl @"bb" : tensor<128xf32> init <zero>
// CHECK: rwkv.state_decl @pp : tensor<128xf32> init <neg_large>
rwkv.state_decl @"pp" : tensor<128xf32> init <neg_large>
// CHECK: rwkv.state_decl @wkv : tensor<8x16x16xf32> init <weight> @time_state
rwkv.state_decl @"wkv" : tensor<8x16x16xf32> init <weight> @"time_state"

// CHECK-LABEL: func.func @all_ops
func.func @all_ops(%tokens: tensor<?xi32>) -> tensor<1x128xf32> {
  // CHECK: rwkv.weight @emb.weight : tensor<256x128xf32>
  %emb = rwkv.weight @"emb.weight" : tensor<256x128xf32>
  %lw = rwkv.weight @"ln.weight" : tensor<128xf32>
  %lb = rwkv.weight @"ln.bias" : tensor<128xbf16>
  %mix = rwkv.weight @"mix" : tensor<1x1x128xf32>
  %wk = rwkv.weight @"key.weight" : tensor<256x128x!rwkv.quant<q5_1>>
  %wv = rwkv.weight @"value.weight" : tensor<128x256xf16>
  %w1 = rwkv.weight @"w1" : tensor<128x160xf32>
  %w2 = rwkv.weight @"w2" : tensor<5x32x128xf32>
  %la = rwkv.weight @"lora.a" : tensor<128x32xf32>
  %lb2 = rwkv.weight @"lora.b" : tensor<32x128xf32>
  %td = rwkv.weight @"time_decay" : tensor<128xf32>
  %hd = rwkv.weight @"head_decay" : tensor<8x16xf32>
  // CHECK: rwkv.embedding %{{.*}}, %{{.*}} : (tensor<?xi32>, tensor<256x128xf32>) -> tensor<?x128xf32>
  %x = rwkv.embedding %tokens, %emb : (tensor<?xi32>, tensor<256x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.layer_norm {{.*}} {epsilon = 1.000000e-03 : f32}
  %n = rwkv.layer_norm %x, %lw, %lb {epsilon = 1.0e-3 : f32} : (tensor<?x128xf32>, tensor<128xf32>, tensor<128xbf16>) -> tensor<?x128xf32>
  // CHECK: rwkv.group_norm {{.*}} {groups = 8 : i64}
  %g = rwkv.group_norm %n, %lw, %lb {groups = 8 : i64, epsilon = 6.4e-4 : f32} : (tensor<?x128xf32>, tensor<128xf32>, tensor<128xbf16>) -> tensor<?x128xf32>
  // CHECK: rwkv.token_shift %{{.*}} state @shift : tensor<?x128xf32>
  %prev = rwkv.token_shift %n state @"shift" : tensor<?x128xf32>
  // CHECK: rwkv.lerp
  %xk = rwkv.lerp %prev, %n, %mix : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>) -> tensor<?x128xf32>
  %xd = rwkv.lerp %prev, %n, %g : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.ddlerp %{{.*}}, %{{.*}}, %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}], %{{.*}}, %{{.*}} :
  %d:5 = rwkv.ddlerp %n, %prev, %mix [%mix, %mix, %mix, %mix, %mix], %w1, %w2
      : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>, tensor<1x1x128xf32>, tensor<1x1x128xf32>,
         tensor<1x1x128xf32>, tensor<1x1x128xf32>, tensor<1x1x128xf32>, tensor<128x160xf32>, tensor<5x32x128xf32>)
      -> (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>)
  // CHECK: rwkv.linear %{{.*}}, %{{.*}} : (tensor<?x128xf32>, tensor<256x128x!rwkv.quant<q5_1>>) -> tensor<?x256xf32>
  %k = rwkv.linear %xk, %wk : (tensor<?x128xf32>, tensor<256x128x!rwkv.quant<q5_1>>) -> tensor<?x256xf32>
  %kk = rwkv.relu_sq %k : tensor<?x256xf32>
  %v = rwkv.linear %kk, %wv : (tensor<?x256xf32>, tensor<128x256xf16>) -> tensor<?x128xf32>
  // CHECK: rwkv.linear {{.*}} {layout = #rwkv.weight_layout<in_out>}
  %lo = rwkv.linear %xk, %la {layout = #rwkv.weight_layout<in_out>} : (tensor<?x128xf32>, tensor<128x32xf32>) -> tensor<?x32xf32>
  // CHECK: rwkv.lora {{.*}} {act = #rwkv.activation<tanh>, out_act = #rwkv.activation<none>}
  %dd = rwkv.lora %d#0, %la, %lb2, %td {act = #rwkv.activation<tanh>, out_act = #rwkv.activation<none>}
      : (tensor<?x128xf32>, tensor<128x32xf32>, tensor<32x128xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  %ga = rwkv.lora %d#4, %la, %lb2 {act = #rwkv.activation<sigmoid>, out_act = #rwkv.activation<none>}
      : (tensor<?x128xf32>, tensor<128x32xf32>, tensor<32x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.decay {{.*}} {kind = #rwkv.decay_kind<neg_exp>}
  %w4 = rwkv.decay %td {kind = #rwkv.decay_kind<neg_exp>} : tensor<128xf32> -> tensor<128xf32>
  %w5 = rwkv.decay %hd {kind = #rwkv.decay_kind<exp_neg_exp>} : tensor<8x16xf32> -> tensor<8x16xf32>
  %w7 = rwkv.decay %dd {kind = #rwkv.decay_kind<exp_neg_sigmoid>} : tensor<?x128xf32> -> tensor<?x128xf32>
  %s = rwkv.sigmoid %v : tensor<?x128xf32>
  %si = rwkv.silu %v : tensor<?x128xf32>
  %th = rwkv.tanh %v : tensor<?x128xf32>
  %a = rwkv.add %s, %si : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  %m = rwkv.mul %a, %mix : (tensor<?x128xf32>, tensor<1x1x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.wkv4 {{.*}} state(@aa, @bb, @pp)
  %y4 = rwkv.wkv4 %m, %th, %w4, %td state(@"aa", @"bb", @"pp") : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<128xf32>, tensor<128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.wkv5 {{.*}} state @wkv {heads = 8 : i64}
  %y5 = rwkv.wkv5 %y4, %m, %th, %w5, %hd state @"wkv" {heads = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<?x128xf32>
  %y6 = rwkv.wkv5 %y5, %m, %th, %w7, %hd state @"wkv" {heads = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<8x16xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.wkv7_prep
  %nk:3 = rwkv.wkv7_prep %y6, %ga, %mix, %mix {heads = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>, tensor<1x1x128xf32>) -> (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>)
  // CHECK: rwkv.wkv7 {{.*}} state @wkv {heads = 8 : i64}
  %y7 = rwkv.wkv7 %y6, %w7, %nk#0, %th, %nk#1, %nk#2 state @"wkv" {heads = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.head_bonus
  %hb = rwkv.head_bonus %y7, %nk#0, %th, %hd {heads = 8 : i64} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<?x128xf32>, tensor<8x16xf32>) -> tensor<?x128xf32>
  %all = rwkv.add %hb, %xd : (tensor<?x128xf32>, tensor<?x128xf32>) -> tensor<?x128xf32>
  // CHECK: rwkv.last_token %{{.*}} : tensor<?x128xf32> -> tensor<1x128xf32>
  %last = rwkv.last_token %all : tensor<?x128xf32> -> tensor<1x128xf32>
  return %last : tensor<1x128xf32>
}

// CHECK-LABEL: func.func @one_token
func.func @one_token(%tok: tensor<1xi32>) -> tensor<1x128xf32> {
  %emb = rwkv.weight @"emb.weight" : tensor<256x128xf32>
  %x = rwkv.embedding %tok, %emb : (tensor<1xi32>, tensor<256x128xf32>) -> tensor<1x128xf32>
  // CHECK: rwkv.token_shift %{{.*}} state @shift : tensor<1x128xf32>
  %prev = rwkv.token_shift %x state @"shift" : tensor<1x128xf32>
  return %prev : tensor<1x128xf32>
}

// CHECK-LABEL: func.func @fused
func.func @fused(%x: tensor<?x128xf32>, %p: tensor<?x128xf32>, %k: tensor<?x256xf32>) -> (tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x128xf32>) {
  %mix = rwkv.weight @"mix" : tensor<1x1x128xf32>
  %wk = rwkv.weight @"key.weight" : tensor<256x128x!rwkv.quant<q5_1>>
  %wv = rwkv.weight @"value.weight" : tensor<128x256xf16>
  %lw = rwkv.weight @"ln.weight" : tensor<128xf32>
  %lb = rwkv.weight @"ln.bias" : tensor<128xbf16>
  // CHECK: rwkv.mix_linear %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>, tensor<256x128x!rwkv.quant<q5_1>>) -> tensor<?x256xf32>
  %a = rwkv.mix_linear %p, %x, %mix, %wk : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>, tensor<256x128x!rwkv.quant<q5_1>>) -> tensor<?x256xf32>
  %kv = rwkv.weight @"kv.packed" : tensor<512x128xf32>
  // CHECK: rwkv.packed_mix_linear %{{.+}}, %{{.+}}[%{{.+}}, %{{.+}}], %{{.+}}
  %pk:2 = rwkv.packed_mix_linear %p, %x [%mix, %mix], %kv : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<1x1x128xf32>, tensor<1x1x128xf32>, tensor<512x128xf32>) -> (tensor<?x256xf32>, tensor<?x256xf32>)
  // CHECK: rwkv.relu_sq_linear
  %b = rwkv.relu_sq_linear %k, %wv : (tensor<?x256xf32>, tensor<128x256xf16>) -> tensor<?x128xf32>
  // CHECK: rwkv.gate_linear
  %c = rwkv.gate_linear %x, %p, %wk : (tensor<?x128xf32>, tensor<?x128xf32>, tensor<256x128x!rwkv.quant<q5_1>>) -> tensor<?x256xf32>
  // CHECK: rwkv.norm_shift %{{.+}}, %{{.+}}, %{{.+}} state @shift
  %n, %s = rwkv.norm_shift %x, %lw, %lb state @"shift" : (tensor<?x128xf32>, tensor<128xf32>, tensor<128xbf16>) -> (tensor<?x128xf32>, tensor<?x128xf32>)
  return %a, %b, %c, %n, %s : tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x256xf32>, tensor<?x128xf32>, tensor<?x128xf32>
}
