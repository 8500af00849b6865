// A one-layer RWKV-4 model (C = 8, F = 16, V = 16) as the importer emits it:
// weights referenced by name, state slots explicit. Run it through the
// target-independent pipeline with
//   rwkv-opt --rwkv-optimize-pipeline examples/rwkv4.mlir
module attributes {rwkv.version = "4"} {
  rwkv.weight_decl @"emb.weight" : tensor<16x8xf32>
  rwkv.weight_decl @"blocks.0.ln0.weight" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.ln0.bias" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.ln1.weight" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.ln1.bias" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.att.time_mix_k" : tensor<1x1x8xf32>
  rwkv.weight_decl @"blocks.0.att.time_mix_v" : tensor<1x1x8xf32>
  rwkv.weight_decl @"blocks.0.att.time_mix_r" : tensor<1x1x8xf32>
  rwkv.weight_decl @"blocks.0.att.receptance.weight" : tensor<8x8xf32>
  rwkv.weight_decl @"blocks.0.att.key.weight" : tensor<8x8xf32>
  rwkv.weight_decl @"blocks.0.att.value.weight" : tensor<8x8xf32>
  rwkv.weight_decl @"blocks.0.att.time_decay" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.att.time_first" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.att.output.weight" : tensor<8x8xf32>
  rwkv.weight_decl @"blocks.0.ln2.weight" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.ln2.bias" : tensor<8xf32>
  rwkv.weight_decl @"blocks.0.ffn.time_mix_k" : tensor<1x1x8xf32>
  rwkv.weight_decl @"blocks.0.ffn.time_mix_r" : tensor<1x1x8xf32>
  rwkv.weight_decl @"blocks.0.ffn.receptance.weight" : tensor<8x8xf32>
  rwkv.weight_decl @"blocks.0.ffn.key.weight" : tensor<16x8xf32>
  rwkv.weight_decl @"blocks.0.ffn.value.weight" : tensor<8x16xf32>
  rwkv.weight_decl @"ln_out.weight" : tensor<8xf32>
  rwkv.weight_decl @"ln_out.bias" : tensor<8xf32>
  rwkv.weight_decl @"head.weight" : tensor<16x8xf32>
  rwkv.state_decl @"state.0.att.shift" : tensor<8xf32> init <zero>
  rwkv.state_decl @"state.0.att.aa" : tensor<8xf32> init <zero>
  rwkv.state_decl @"state.0.att.bb" : tensor<8xf32> init <zero>
  rwkv.state_decl @"state.0.att.pp" : tensor<8xf32> init <neg_large>
  rwkv.state_decl @"state.0.ffn.shift" : tensor<8xf32> init <zero>

  func.func @forward(%tokens: tensor<?xi32>) -> tensor<1x16xf32> {
    %emb = rwkv.weight @"emb.weight" : tensor<16x8xf32>
    %x0 = rwkv.embedding %tokens, %emb : (tensor<?xi32>, tensor<16x8xf32>) -> tensor<?x8xf32>
    %ln0w = rwkv.weight @"blocks.0.ln0.weight" : tensor<8xf32>
    %ln0b = rwkv.weight @"blocks.0.ln0.bias" : tensor<8xf32>
    %x = rwkv.layer_norm %x0, %ln0w, %ln0b : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>

    // Time mix.
    %ln1w = rwkv.weight @"blocks.0.ln1.weight" : tensor<8xf32>
    %ln1b = rwkv.weight @"blocks.0.ln1.bias" : tensor<8xf32>
    %xa = rwkv.layer_norm %x, %ln1w, %ln1b : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %prev = rwkv.token_shift %xa state @"state.0.att.shift" : tensor<?x8xf32>
    %mk = rwkv.weight @"blocks.0.att.time_mix_k" : tensor<1x1x8xf32>
    %mv = rwkv.weight @"blocks.0.att.time_mix_v" : tensor<1x1x8xf32>
    %mr = rwkv.weight @"blocks.0.att.time_mix_r" : tensor<1x1x8xf32>
    %xk = rwkv.lerp %prev, %xa, %mk : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
    %xv = rwkv.lerp %prev, %xa, %mv : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
    %xr = rwkv.lerp %prev, %xa, %mr : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
    %wr = rwkv.weight @"blocks.0.att.receptance.weight" : tensor<8x8xf32>
    %wk = rwkv.weight @"blocks.0.att.key.weight" : tensor<8x8xf32>
    %wv = rwkv.weight @"blocks.0.att.value.weight" : tensor<8x8xf32>
    %r0 = rwkv.linear %xr, %wr : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %r = rwkv.sigmoid %r0 : tensor<?x8xf32>
    %k = rwkv.linear %xk, %wk : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %v = rwkv.linear %xv, %wv : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %td = rwkv.weight @"blocks.0.att.time_decay" : tensor<8xf32>
    %w = rwkv.decay %td {kind = #rwkv.decay_kind<neg_exp>} : tensor<8xf32> -> tensor<8xf32>
    %u = rwkv.weight @"blocks.0.att.time_first" : tensor<8xf32>
    %wkv = rwkv.wkv4 %k, %v, %w, %u state(@"state.0.att.aa", @"state.0.att.bb", @"state.0.att.pp")
        : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %rwkv = rwkv.mul %r, %wkv : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %wo = rwkv.weight @"blocks.0.att.output.weight" : tensor<8x8xf32>
    %att = rwkv.linear %rwkv, %wo : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %x1 = rwkv.add %x, %att : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>

    // Channel mix.
    %ln2w = rwkv.weight @"blocks.0.ln2.weight" : tensor<8xf32>
    %ln2b = rwkv.weight @"blocks.0.ln2.bias" : tensor<8xf32>
    %xf = rwkv.layer_norm %x1, %ln2w, %ln2b : (tensor<?x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %pf = rwkv.token_shift %xf state @"state.0.ffn.shift" : tensor<?x8xf32>
    %fk = rwkv.weight @"blocks.0.ffn.time_mix_k" : tensor<1x1x8xf32>
    %fr = rwkv.weight @"blocks.0.ffn.time_mix_r" : tensor<1x1x8xf32>
    %fxk = rwkv.lerp %pf, %xf, %fk : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
    %fxr = rwkv.lerp %pf, %xf, %fr : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<1x1x8xf32>) -> tensor<?x8xf32>
    %fwr = rwkv.weight @"blocks.0.ffn.receptance.weight" : tensor<8x8xf32>
    %fwk = rwkv.weight @"blocks.0.ffn.key.weight" : tensor<16x8xf32>
    %fwv = rwkv.weight @"blocks.0.ffn.value.weight" : tensor<8x16xf32>
    %fr0 = rwkv.linear %fxr, %fwr : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %frs = rwkv.sigmoid %fr0 : tensor<?x8xf32>
    %fk0 = rwkv.linear %fxk, %fwk : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
    %fk2 = rwkv.relu_sq %fk0 : tensor<?x16xf32>
    %fv = rwkv.linear %fk2, %fwv : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
    %ffn = rwkv.mul %frs, %fv : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
    %x2 = rwkv.add %x1, %ffn : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>

    // Head, on the last token only.
    %last = rwkv.last_token %x2 : tensor<?x8xf32> -> tensor<1x8xf32>
    %low = rwkv.weight @"ln_out.weight" : tensor<8xf32>
    %lob = rwkv.weight @"ln_out.bias" : tensor<8xf32>
    %xo = rwkv.layer_norm %last, %low, %lob : (tensor<1x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<1x8xf32>
    %head = rwkv.weight @"head.weight" : tensor<16x8xf32>
    %logits = rwkv.linear %xo, %head : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
    return %logits : tensor<1x16xf32>
  }
}
