// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops | FileCheck %s

// Tests that wkv4 loops over vectors of channels with the token loop inside,
// carrying aa/bb/pp (read through reinterpret_cast) as loop-carried vectors,
// and that per-channel parameters are read from a computed decay and an f16
// weight.
// CHECK-LABEL: func.func @wkv4_seq
// CHECK-DAG: %[[AA:.+]] = memref.reinterpret_cast %arg1 to offset: [0], sizes: [32]
// CHECK-DAG: %[[BB:.+]] = memref.reinterpret_cast %arg1 to offset: [32], sizes: [32]
// CHECK-DAG: %[[PP:.+]] = memref.reinterpret_cast %arg1 to offset: [64], sizes: [32]
// CHECK: scf.for %[[C:.+]] = %{{.+}} to %{{.+}} step %{{.+}} {
// CHECK: arith.extf %{{.+}} : vector<16xf16> to vector<16xf32>
// CHECK: %[[A0:.+]] = vector.load %[[AA]][%[[C]]] {{.*}} vector<16xf32>
// CHECK: %[[S:.+]]:3 = scf.for %{{.+}} iter_args(%{{.+}} = %[[A0]], %{{.+}}, %{{.+}}) -> (vector<16xf32>, vector<16xf32>, vector<16xf32>) {
// CHECK: arith.maximumf
// CHECK: math.exp
// CHECK: arith.divf
// CHECK: scf.yield
// CHECK: vector.store %[[S]]#0, %[[AA]][%[[C]]]
// CHECK: vector.store %[[S]]#1, %[[BB]][%[[C]]]
// CHECK: vector.store %[[S]]#2, %[[PP]][%[[C]]]
// CHECK-LABEL: func.func @wkv4_one
// CHECK-NOT: iter_args
// CHECK: return
rwkv.weight_decl @td : tensor<32xf32>
rwkv.weight_decl @tf : tensor<32xf16>
rwkv.state_decl @aa : tensor<32xf32> init <zero>
rwkv.state_decl @bb : tensor<32xf32> init <zero>
rwkv.state_decl @pp : tensor<32xf32> init <neg_large>
func.func @wkv4(%k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %td = rwkv.weight @td : tensor<32xf32>
  %w = rwkv.decay %td {kind = #rwkv.decay_kind<neg_exp>} : tensor<32xf32> -> tensor<32xf32>
  %u = rwkv.weight @tf : tensor<32xf16>
  %y = rwkv.wkv4 %k, %v, %w, %u state(@aa, @bb, @pp)
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<32xf32>, tensor<32xf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that wkv5 walks heads, then tokens, then blocks of 8 value rows: the
// token's r, k and bonus vectors are loaded once per token (the bf16 (H, N)
// bonus through the flat weight view), a per-head decay once per head, each
// state row is read and written once per token, and the block's 8 outputs
// are summed by one shuffle tree into one vector store.
// CHECK-LABEL: func.func @wkv5_seq
// CHECK: %[[S:.+]] = memref.reinterpret_cast %arg1 to offset: [0], sizes: [2, 16, 16], strides: [256, 16, 1]
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %{{.+}} step
// CHECK: %[[W:.+]] = memref.load %{{.+}}[%[[H]]] : memref<2xf32>
// CHECK: %[[WV:.+]] = vector.broadcast %[[W]] : f32 to vector<16xf32>
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step
// CHECK: vector.load %arg2[%[[T]], %{{.+}}] : memref<?x32xf32>, vector<16xf32>
// CHECK: vector.load %{{.+}} : memref<32xbf16>, vector<16xbf16>
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK: %[[ROW:.+]] = vector.load %[[S]][%[[H]], %[[I]], %{{.+}}] {{.*}} vector<16xf32>
// CHECK: vector.fma %{{.+}}, %{{.+}}, %[[ROW]]
// CHECK: %[[NEW:.+]] = vector.fma %[[WV]], %[[ROW]], %{{.+}}
// CHECK: vector.store %[[NEW]], %[[S]][%[[H]], %[[I]], %{{.+}}]
// CHECK-NOT: vector.reduction
// CHECK: %[[Y:.+]] = arith.addf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: vector.store %[[Y]], %{{.+}}[%[[T]], %{{.+}}] : memref<?x32xf32>, vector<8xf32>
rwkv.weight_decl @w : tensor<2xf32>
rwkv.weight_decl @u : tensor<2x16xbf16>
rwkv.state_decl @s : tensor<2x16x16xf32> init <zero>
func.func @wkv5(%r: tensor<?x32xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %w = rwkv.weight @w : tensor<2xf32>
  %u = rwkv.weight @u : tensor<2x16xbf16>
  %y = rwkv.wkv5 %r, %k, %v, %w, %u state @s {heads = 2 : i64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<2xf32>, tensor<2x16xbf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that RWKV-6's per-token decay is read from its activation, once per
// token, and that the state row is split into N / 16 vectors for N = 64.
// CHECK-LABEL: func.func @wkv6_seq
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %{{.+}} step
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step
// CHECK: vector.load %arg5[%[[T]], %{{.+}}] : memref<?x64xf32>, vector<16xf32>
// CHECK: scf.for
// CHECK-COUNT-4: vector.load %{{.+}} : memref<1x64x64xf32
// CHECK-COUNT-4: vector.store %{{.+}} : memref<1x64x64xf32
rwkv.weight_decl @u : tensor<64xf32>
rwkv.state_decl @s : tensor<1x64x64xf32> init <zero>
func.func @wkv6(%r: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x64xf32>, %w: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %u = rwkv.weight @u : tensor<64xf32>
  %y = rwkv.wkv5 %r, %k, %v, %w, %u state @s {heads = 1 : i64}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that wkv7 works on blocks of 8 value rows: it reduces the 8 old rows
// against a (S a) with one shuffle tree, updates each row with its lane of
// the sums, then reduces the 8 new rows against r with a second tree into
// one vector store; in the T = 1 function there is no token loop.
// CHECK-LABEL: func.func @wkv7_seq
// CHECK: %[[S:.+]] = memref.reinterpret_cast %arg1 to offset: [0], sizes: [2, 16, 16]
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %{{.+}} step
// CHECK: scf.for %[[T:.+]] = %{{.+}} to %{{.+}} step
// CHECK: %[[A:.+]] = vector.load %arg6[%[[T]], %{{.+}}]
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step %c8
// CHECK: %[[ROW:.+]] = vector.load %[[S]]
// CHECK: arith.mulf %[[ROW]], %[[A]]
// CHECK-NOT: vector.reduction
// CHECK: %[[SA:.+]] = arith.addf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: %[[SA0:.+]] = vector.extract %[[SA]][0] : f32 from vector<8xf32>
// CHECK: %[[SAV:.+]] = vector.broadcast %[[SA0]]
// CHECK: vector.fma %[[SAV]]
// CHECK: %[[NEW:.+]] = vector.fma
// CHECK: arith.mulf %[[NEW]]
// CHECK: vector.store %[[NEW]], %[[S]]
// CHECK: vector.extract %[[SA]][7]
// CHECK-NOT: vector.reduction
// CHECK: %[[Y:.+]] = arith.addf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: vector.store %[[Y]], %{{.+}}[%[[T]], %{{.+}}] : memref<?x32xf32>, vector<8xf32>
// CHECK-LABEL: func.func @wkv7_one
// CHECK: scf.for
// CHECK: scf.for
// CHECK-NOT: scf.for
// CHECK: arith.addf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: vector.store %{{.+}}, %{{.+}}[%{{.+}}, %{{.+}}, %{{.+}}] : memref<2x16x16xf32
// CHECK: vector.store %{{.+}}, %{{.+}} : memref<1x32xf32>, vector<8xf32>
rwkv.state_decl @s : tensor<2x16x16xf32> init <zero>
func.func @wkv7(%r: tensor<?x32xf32>, %w: tensor<?x32xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>, %a: tensor<?x32xf32>, %b: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %y = rwkv.wkv7 %r, %w, %k, %v, %a, %b state @s {heads = 2 : i64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that wkv7_prep sums the squares of k * k_k per head, divides by
// max(norm, 1e-12) and writes three results.
// CHECK-LABEL: func.func @prep_seq
// CHECK: scf.for
// CHECK: scf.for %[[H:.+]] =
// CHECK: %[[SQ:.+]] = scf.for %{{.+}} iter_args(%{{.+}} = %{{.+}}) -> (vector<16xf32>)
// CHECK: %[[SUM:.+]] = vector.reduction <add>, %[[SQ]]
// CHECK: %[[NORM:.+]] = math.sqrt %[[SUM]] : f32
// CHECK: arith.maximumf %[[NORM]]
// CHECK: scf.for
// CHECK: arith.divf
// CHECK: arith.negf
// CHECK-COUNT-3: vector.store
rwkv.weight_decl @kk : tensor<1x1x32xf32>
rwkv.weight_decl @ka : tensor<1x1x32xf32>
func.func @prep(%k: tensor<?x32xf32>, %a: tensor<?x32xf32>) -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %kk = rwkv.weight @kk : tensor<1x1x32xf32>
  %ka = rwkv.weight @ka : tensor<1x1x32xf32>
  %x:3 = rwkv.wkv7_prep %k, %a, %kk, %ka {heads = 2 : i64}
      : (tensor<?x32xf32>, tensor<?x32xf32>, tensor<1x1x32xf32>, tensor<1x1x32xf32>)
      -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>)
  return %x#0, %x#1, %x#2 : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Tests that head_bonus reduces r * k * r_k over each head and scales v by it.
// CHECK-LABEL: func.func @bonus_one
// CHECK: scf.for %[[H:.+]] =
// CHECK: %[[ACC:.+]] = scf.for %{{.+}} iter_args
// CHECK: %[[SUM:.+]] = vector.reduction <add>, %[[ACC]]
// CHECK: %[[SV:.+]] = vector.broadcast %[[SUM]]
// CHECK: scf.for
// CHECK: arith.mulf %[[SV]]
rwkv.weight_decl @rk : tensor<2x16xf32>
func.func @bonus(%r: tensor<1x32xf32>, %k: tensor<1x32xf32>, %v: tensor<1x32xf32>) -> tensor<1x32xf32> {
  %rk = rwkv.weight @rk : tensor<2x16xf32>
  %y = rwkv.head_bonus %r, %k, %v, %rk {heads = 2 : i64}
      : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<2x16xf32>) -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}
