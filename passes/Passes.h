//===- Passes.h - rwkv dialect passes ----------------------------*- C++ -*-===//

#ifndef RWKV_PASSES_PASSES_H
#define RWKV_PASSES_PASSES_H

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::rwkv {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace mlir::rwkv

#endif // RWKV_PASSES_PASSES_H
