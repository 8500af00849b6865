// RUN: rwkv-opt %s --split-input-file --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops | FileCheck %s

// Tests that an out_in linear with T = 1 becomes a loop over `in` in steps
// of 16 carrying 8 row accumulators of vector<16xf32> (FMAs, then the lane
// sums of the 8 rows by one shuffle tree into one vector store), and that
// the sequence function tiles 4 tokens x 4 rows, its 16 sums one tree whose
// vector<16xf32> of results is stored as 4 rows of 4. The function's result
// is written into its output argument, not a buffer copied there.
// CHECK-LABEL: func.func @out_in_seq(
// CHECK: arith.divui %{{.+}}, %[[C4:.+]] : index
// CHECK: scf.for
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{(%[^,]+ = %[^,]+, ){15}%[^,]+ = %[^,)]+}}) -> ({{(vector<16xf32>, ){15}vector<16xf32>}})
// CHECK-COUNT-16: vector.fma %{{.+}} : vector<16xf32>
// CHECK: scf.yield
// CHECK-NOT: vector.reduction
// CHECK: %[[ROW0:.+]] = vector.extract_strided_slice %{{.+}} {offsets = [0], sizes = [4], strides = [1]} : vector<16xf32> to vector<4xf32>
// CHECK: vector.store %[[ROW0]], %{{.+}} : memref<?x32xf32>, vector<4xf32>
// CHECK-COUNT-3: vector.store %{{.+}} : memref<?x32xf32>, vector<4xf32>
// CHECK-LABEL: func.func @out_in_one(
// CHECK-SAME: %[[OUT:[a-z0-9]+]]: memref<1x32xf32>)
// CHECK-NOT: arith.divui
// CHECK: %[[W:.+]] = memref.view %arg0
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args({{(%[^,]+ = %[^,]+, ){7}%[^,]+ = %[^,)]+}}) -> ({{(vector<16xf32>, ){7}vector<16xf32>}})
// CHECK: vector.load %{{.+}} : memref<1x64xf32>, vector<16xf32>
// CHECK-COUNT-8: vector.fma %{{.+}} : vector<16xf32>
// CHECK: scf.yield
// CHECK-NOT: vector.reduction
// CHECK: %[[Y:.+]] = arith.addf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: vector.store %[[Y]], %[[OUT]][%{{.+}}] : memref<1x32xf32>, vector<8xf32>
// CHECK-NOT: memref.copy
// CHECK: return
rwkv.weight_decl @w : tensor<32x64xf32>
func.func @out_in(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = rwkv.weight @w : tensor<32x64xf32>
  %y = rwkv.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that f16 weights are loaded as vector<16xf16> and widened before the
// FMA, and that a row count that is not a multiple of the tile (11 = 8 + 3)
// gets a remainder tile of 3 rows.
// CHECK-LABEL: func.func @f16_rows_one(
// CHECK: scf.for {{.+}} -> ({{(vector<16xf32>, ){7}vector<16xf32>}})
// CHECK: %[[H:.+]] = vector.load %{{.+}} : memref<11x32xf16>, vector<16xf16>
// CHECK: arith.extf %[[H]] : vector<16xf16> to vector<16xf32>
// CHECK: scf.for {{.+}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>)
rwkv.weight_decl @w : tensor<11x32xf16>
func.func @f16_rows(%x: tensor<?x32xf32>) -> tensor<?x11xf32> {
  %w = rwkv.weight @w : tensor<11x32xf16>
  %y = rwkv.linear %x, %w : (tensor<?x32xf32>, tensor<11x32xf16>) -> tensor<?x11xf32>
  return %y : tensor<?x11xf32>
}

// -----

// Tests that a sequence reads bf16 out_in weights in pairs: x is copied once
// per token into a scratch that holds each block of 32 as its 16 even then
// its 16 odd elements; each step of 32 loads vector<32xbf16> as
// vector<16xi32>, whose lanes shifted left by 16 are the even weights and
// masked to their high halves the odd ones, two FMAs per accumulator. The
// T = 1 function widens the weights as before.
// CHECK-LABEL: func.func @pairs_seq(
// CHECK: %[[X:.+]] = memref.alloc(%{{.+}}) {{.+}} : memref<?x64xf32>
// CHECK: %[[LO:.+]] = vector.load %arg2
// CHECK: %[[HI:.+]] = vector.load %arg2
// CHECK: %[[EVEN:.+]] = vector.shuffle %[[LO]], %[[HI]] [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]
// CHECK: vector.store %[[EVEN]], %[[X]]
// CHECK: vector.shuffle %[[LO]], %[[HI]] [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31]
// CHECK: scf.for %{{.+}} = %{{.+}} to %c64{{.*}} step %c32{{.*}} iter_args
// CHECK: %[[XE:.+]] = vector.load %[[X]]
// CHECK: %[[XO:.+]] = vector.load %[[X]]
// CHECK: %[[RAW:.+]] = vector.load %{{.+}} : memref<8x64xbf16>, vector<32xbf16>
// CHECK: %[[PAIRS:.+]] = vector.bitcast %[[RAW]] : vector<32xbf16> to vector<16xi32>
// CHECK: %[[SHL:.+]] = arith.shli %[[PAIRS]], %{{.+}} : vector<16xi32>
// CHECK: %[[AND:.+]] = arith.andi %[[PAIRS]], %{{.+}} : vector<16xi32>
// CHECK: %[[WE:.+]] = vector.bitcast %[[SHL]] : vector<16xi32> to vector<16xf32>
// CHECK: %[[WO:.+]] = vector.bitcast %[[AND]] : vector<16xi32> to vector<16xf32>
// CHECK: %[[E:.+]] = vector.fma %[[WE]], %[[XE]], %{{.+}}
// CHECK: vector.fma %[[WO]], %[[XO]], %[[E]]
// CHECK-LABEL: func.func @pairs_one(
// CHECK-NOT: vector.bitcast
// CHECK: arith.extf %{{.+}} : vector<16xbf16> to vector<16xf32>
rwkv.weight_decl @w : tensor<8x64xbf16>
func.func @pairs(%x: tensor<?x64xf32>) -> tensor<?x8xf32> {
  %w = rwkv.weight @w : tensor<8x64xbf16>
  %y = rwkv.linear %x, %w : (tensor<?x64xf32>, tensor<8x64xbf16>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests that an in_out linear broadcasts x[t][i] and accumulates column
// vectors: 8 vectors of 16 columns per tile for T = 1, 4 for a sequence.
// CHECK-LABEL: func.func @in_out_seq(
// CHECK: scf.for {{.+}} -> ({{(vector<16xf32>, ){15}vector<16xf32>}})
// CHECK-LABEL: func.func @in_out_one(
// CHECK: scf.for {{.+}} -> ({{(vector<16xf32>, ){7}vector<16xf32>}})
// CHECK: %[[S:.+]] = memref.load
// CHECK: vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK-COUNT-8: vector.fma %{{.+}} : vector<16xf32>
// CHECK: scf.yield
// CHECK-COUNT-8: vector.store %{{.+}} : memref<1x128xf32>, vector<16xf32>
rwkv.weight_decl @w : tensor<64x128xbf16>
func.func @in_out(%x: tensor<?x64xf32>) -> tensor<?x128xf32> {
  %w = rwkv.weight @w : tensor<64x128xbf16>
  %y = rwkv.linear %x, %w {layout = #rwkv.weight_layout<in_out>} : (tensor<?x64xf32>, tensor<64x128xbf16>) -> tensor<?x128xf32>
  return %y : tensor<?x128xf32>
}

// -----

// Tests that a LoRA map is two in_out products: act(x A) into a (T, D)
// scratch, then out_act(bias + h B); that their narrow tiles (2 and 4
// column vectors) unroll the loop over `in` with independent accumulator
// sets (4 x 2 and 2 x 4) summed after the loop.
// CHECK-LABEL: func.func @lora_one(
// CHECK: %[[H:.+]] = memref.alloca() {{.+}} : memref<1x32xf32>
// CHECK: %{{.+}}:8 = scf.for %{{.+}} = %{{.+}} to %c64 step %c4 iter_args
// CHECK: scf.yield
// CHECK-COUNT-6: arith.addf %{{.+}} : vector<16xf32>
// CHECK: math.tanh %{{.+}} : vector<16xf32>
// CHECK: vector.store %{{.+}}, %[[H]]
// CHECK: %{{.+}}:8 = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c2{{[_0-9]*}} iter_args
// CHECK: memref.load %[[H]]
// CHECK: scf.yield
// CHECK-COUNT-4: arith.addf %{{.+}} : vector<16xf32>
// CHECK: vector.load %{{.+}} : memref<64xf32>, vector<16xf32>
// CHECK: arith.addf
// CHECK: math.exp
rwkv.weight_decl @a1 : tensor<64x32xf32>
rwkv.weight_decl @a2 : tensor<32x64xf16>
rwkv.weight_decl @a0 : tensor<1x1x64xf32>
func.func @lora(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %a1 = rwkv.weight @a1 : tensor<64x32xf32>
  %a2 = rwkv.weight @a2 : tensor<32x64xf16>
  %a0 = rwkv.weight @a0 : tensor<1x1x64xf32>
  %a = rwkv.lora %x, %a1, %a2, %a0 {act = #rwkv.activation<tanh>, out_act = #rwkv.activation<sigmoid>}
      : (tensor<?x64xf32>, tensor<64x32xf32>, tensor<32x64xf16>, tensor<1x1x64xf32>) -> tensor<?x64xf32>
  return %a : tensor<?x64xf32>
}

// -----

// Tests that ddlerp computes the mix x + (prev - x) * maa_x as the W1
// product reads it (no (T, C) scratch for it), takes tanh(xx W1) into a
// (T, F*D) scratch and makes each result with an in_out product by W2[f].
// (Buffers are allocated at the function's entry: the five results', then
// the scratch.)
// CHECK-LABEL: func.func @ddlerp_one(
// CHECK-COUNT-5: memref.alloca() {{.+}} : memref<1x32xf32>
// CHECK-NOT: memref.alloca() {{.+}} : memref<1x32xf32>
// CHECK: %[[M:.+]] = memref.alloca() {{.+}} : memref<1x80xf32>
// CHECK: scf.for
// CHECK: arith.subf %{{.+}} : f32
// CHECK: math.fma %{{.+}} : f32
// CHECK: math.tanh
// CHECK: vector.store %{{.+}}, %[[M]]
// CHECK-COUNT-5: vector.load %{{.+}}[%c{{[0-9]+}}, %{{.+}}, %{{.+}}] : memref<5x16x32xf32>, vector<16xf32>
rwkv.weight_decl @mx : tensor<1x1x32xf32>
rwkv.weight_decl @m : tensor<1x1x32xf32>
rwkv.weight_decl @w1 : tensor<32x80xf32>
rwkv.weight_decl @w2 : tensor<5x16x32xf32>
func.func @ddlerp(%x: tensor<1x32xf32>, %p: tensor<1x32xf32>) -> (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>) {
  %mx = rwkv.weight @mx : tensor<1x1x32xf32>
  %m = rwkv.weight @m : tensor<1x1x32xf32>
  %w1 = rwkv.weight @w1 : tensor<32x80xf32>
  %w2 = rwkv.weight @w2 : tensor<5x16x32xf32>
  %r:5 = rwkv.ddlerp %x, %p, %mx [%m, %m, %m, %m, %m], %w1, %w2
      : (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x1x32xf32>, tensor<1x1x32xf32>, tensor<1x1x32xf32>,
         tensor<1x1x32xf32>, tensor<1x1x32xf32>, tensor<1x1x32xf32>, tensor<32x80xf32>, tensor<5x16x32xf32>)
      -> (tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>)
  return %r#0, %r#1, %r#2, %r#3, %r#4 : tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>, tensor<1x32xf32>
}

// -----

// Tests that a product whose result only a relu_sq_linear reads (the channel
// mix's key) squares its sums as it stores them, in both functions, and that
// the relu_sq_linear then reads them with no maximumf and no scratch of its
// own (its loads go straight to the key's buffer). @relu_shared's key is
// also returned: it is stored as it is, and relu_sq_linear squares it.
// CHECK-LABEL: func.func @relu_key_seq(
// CHECK: %[[KEY:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?x64xf32>
// CHECK: %[[SQ:.+]] = arith.maximumf %{{.+}}, %{{.+}} : vector<4xf32>
// CHECK: %[[K2:.+]] = arith.mulf %[[SQ]], %[[SQ]] : vector<4xf32>
// CHECK: vector.store %[[K2]], %[[KEY]]
// CHECK: vector.load %[[KEY]][
// CHECK-NOT: arith.maximumf
// CHECK: return
// CHECK-LABEL: func.func @relu_key_one(
// CHECK: %[[KEY1:.+]] = memref.alloca() {alignment = 64 : i64} : memref<1x64xf32>
// CHECK: %[[SQ1:.+]] = arith.maximumf %{{.+}}, %{{.+}} : vector<8xf32>
// CHECK: %[[K21:.+]] = arith.mulf %[[SQ1]], %[[SQ1]] : vector<8xf32>
// CHECK: vector.store %[[K21]], %[[KEY1]]
// CHECK: vector.load %[[KEY1]][
// CHECK-NOT: arith.maximumf
// CHECK: return
// CHECK-LABEL: func.func @relu_shared_seq(
// CHECK-NOT: arith.maximumf
// CHECK: vector.store %{{.+}}, %arg3
// CHECK: arith.maximumf
// CHECK: return
rwkv.weight_decl @wk : tensor<64x32xf32>
rwkv.weight_decl @wv : tensor<32x64xf32>
func.func @relu_key(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %wk = rwkv.weight @wk : tensor<64x32xf32>
  %wv = rwkv.weight @wv : tensor<32x64xf32>
  %k = rwkv.linear %x, %wk : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  %v = rwkv.relu_sq_linear %k, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %v : tensor<?x32xf32>
}
func.func @relu_shared(%x: tensor<?x32xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  %wk = rwkv.weight @wk : tensor<64x32xf32>
  %wv = rwkv.weight @wv : tensor<32x64xf32>
  %k = rwkv.linear %x, %wk : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  %v = rwkv.relu_sq_linear %k, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %k, %v : tensor<?x64xf32>, tensor<?x32xf32>
}

// -----

// Tests that a product whose result only an add of a residual reads stores
// residual + sums into the add's result, and the add is not lowered where
// it stands (no loop of its own); the residual of @late is computed after
// the product, which then stores its sums, and the add is a loop.
// CHECK-LABEL: func.func @residual_seq(
// CHECK-SAME: %[[R:[a-z0-9]+]]: memref<?x32xf32>, %{{[a-z0-9]+}}: memref<?x32xf32>, %[[OUT:[a-z0-9]+]]: memref<?x32xf32>)
// CHECK: %[[OLD:.+]] = vector.load %[[R]][%{{.+}}, %{{.+}}] : memref<?x32xf32>, vector<4xf32>
// CHECK: %[[SUM:.+]] = arith.addf %{{.+}}, %[[OLD]] : vector<4xf32>
// CHECK: vector.store %[[SUM]], %[[Y:[a-z0-9_]+]]
// CHECK-NOT: vector.load %[[R]]{{.*}}vector<16xf32>
// CHECK: memref.copy %[[Y]], %[[OUT]]
// CHECK-LABEL: func.func @residual_one(
// CHECK: %[[OLD1:.+]] = vector.load %{{.+}} : memref<1x32xf32>, vector<8xf32>
// CHECK: arith.addf %{{.+}}, %[[OLD1]] : vector<8xf32>
// CHECK-LABEL: func.func @late_seq(
// CHECK: vector.store %{{.+}} : memref<?x32xf32>, vector<4xf32>
// CHECK: arith.mulf %{{.+}} : vector<16xf32>
// CHECK: arith.addf %{{.+}} : vector<16xf32>
// CHECK: return
rwkv.weight_decl @wo : tensor<32x32xf32>
func.func @residual(%r: tensor<?x32xf32>, %x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %w = rwkv.weight @wo : tensor<32x32xf32>
  %y = rwkv.linear %x, %w : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %z = rwkv.add %r, %y : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %z : tensor<?x32xf32>
}
func.func @late(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %w = rwkv.weight @wo : tensor<32x32xf32>
  %y = rwkv.linear %x, %w : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %r = rwkv.mul %x, %x : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  %z = rwkv.add %r, %y : (tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %z : tensor<?x32xf32>
}
