//===- Importer.h - Checkpoint to rwkv dialect --------------------*- C++ -*-===//
//
// Imports a checked checkpoint into an rwkv dialect module: one
// `rwkv.weight_decl` per tensor used (names and element types as stored),
// the state slots of every layer, and `func.func @forward` holding the full
// layer stack in fine-grained ops.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_IMPORTER_H
#define RWKVC_FRONTEND_IMPORTER_H

#include "frontend/Checkpoint.h"
#include "frontend/Model.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace rwkvc {

struct ImportOptions {
  /// Group-norm epsilon of RWKV-5/6/7's ln_x (the reference package uses
  /// 64e-5; rwkv.cpp uses 1e-5 for RWKV-5).
  float groupNormEpsilon = 64e-5f;
  /// Initialize the WKV state from a state-tuned `time_state` when present.
  bool useTimeState = true;
};

/// Name of the function the importer emits: forward(tokens: tensor<?xi32>)
/// -> tensor<1 x V x f32>, the logits after the last token.
inline constexpr llvm::StringLiteral kForwardFunction = "forward";

/// Builds the module. The context must have the rwkv and func dialects
/// loaded. Errors name the checkpoint file.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importModel(mlir::MLIRContext &context, const Checkpoint &ckpt,
            const ModelInfo &info, const ImportOptions &options = {});

} // namespace rwkvc

#endif // RWKVC_FRONTEND_IMPORTER_H
