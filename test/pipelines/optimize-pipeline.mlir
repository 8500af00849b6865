// RUN: rwkv-opt %srcroot/examples/rwkv4.mlir --rwkv-optimize-pipeline | FileCheck %s

// Tests that the target-independent pipeline folds the RWKV-4 decay into a
// derived weight, keeps every state-carrying op and drops nothing else.
// CHECK: rwkv.weight_decl @blocks.0.att.time_decay.neg_exp : tensor<8xf32> derive <neg_exp> of @blocks.0.att.time_decay
// CHECK-LABEL: func.func @forward
// CHECK-NOT: rwkv.decay
// CHECK: rwkv.token_shift %{{.+}} state @state.0.att.shift
// CHECK: %[[W:.+]] = rwkv.weight @blocks.0.att.time_decay.neg_exp
// CHECK: rwkv.wkv4 %{{.+}}, %{{.+}}, %[[W]], %{{.+}} state(@state.0.att.aa, @state.0.att.bb, @state.0.att.pp)
// CHECK: rwkv.token_shift %{{.+}} state @state.0.ffn.shift
// CHECK: rwkv.last_token
// CHECK: return
