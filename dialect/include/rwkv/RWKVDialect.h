//===- RWKVDialect.h - The rwkv dialect ---------------------------*- C++ -*-===//
//
// Declares the rwkv dialect, its enums, types and ops.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_RWKVDIALECT_H
#define RWKV_RWKVDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "rwkv/RWKVDialect.h.inc"
#include "rwkv/RWKVEnums.h.inc"

#define GET_TYPEDEF_CLASSES
#include "rwkv/RWKVTypes.h.inc"

#define GET_ATTRDEF_CLASSES
#include "rwkv/RWKVAttrs.h.inc"

namespace mlir::rwkv {
/// The recurrent state the runtime carries from token to token.
struct StateResource : public SideEffects::Resource::Base<StateResource> {
  llvm::StringRef getName() final { return "rwkv.state"; }
};

/// Bytes per element of a weight stored in the weight image: 4 for f32, 2
/// for f16 and bf16; failure for any other type (a quantized type is stored
/// only after rwkv-dequantize-weights).
FailureOr<int64_t> getStoredElementBytes(Type elementType);

/// The name of symbol `name` of layer `from` in layer `to`: the weights of
/// layer k are named `blocks.<k>.*` and its state slots `state.<k>.*` (the
/// layer number is the second dot-separated component). Empty if `name` is
/// not a symbol of layer `from`.
std::string renameLayerSymbol(llvm::StringRef name, int64_t from, int64_t to);
} // namespace mlir::rwkv

#define GET_OP_CLASSES
#include "rwkv/RWKVOps.h.inc"

#endif // RWKV_RWKVDIALECT_H
