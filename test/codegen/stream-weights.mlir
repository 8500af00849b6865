// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops | FileCheck %s --check-prefix=AUTO
// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=on" | FileCheck %s --check-prefix=ON
// RUN: rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=off" | FileCheck %s --check-prefix=AUTO
// RUN: not rwkv-opt %s --rwkv-assign-layout="weight-alignment=64 slot-alignment=16" --rwkv-lower-to-loops="stream-weights=maybe" 2>&1 | FileCheck %s --check-prefix=BAD

// Tests the stream-weights option (rwkvc --stream-weights): a 32 KB weight,
// which by its size (auto) or with off stays in the caches, decodes 8 rows
// per tile; with on, as weights that stream from memory, one row (512 bytes)
// per tile, one linear stream. Unknown values are an error.
// AUTO-LABEL: func.func @small_one(
// AUTO: scf.for %{{.+}} = %{{.+}} to %c64{{(_[0-9]+)?}} step %c8
// ON-LABEL: func.func @small_one(
// ON: scf.for %{{.+}} = %{{.+}} to %c64{{(_[0-9]+)?}} step %c1
// BAD: rwkv-lower-to-loops: unknown stream-weights 'maybe' (auto, on or off)
rwkv.weight_decl @w : tensor<64x256xf16>
func.func @small(%x: tensor<?x256xf32>) -> tensor<?x64xf32> {
  %w = rwkv.weight @w : tensor<64x256xf16>
  %y = rwkv.linear %x, %w : (tensor<?x256xf32>, tensor<64x256xf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
