//===- BufferLiveness.h - When an activation buffer dies ----------*- C++ -*-===//
//
// The activation-buffer plan every target's lowering shares: ops of the
// rwkv function body are lowered in order, and the buffer of a value can be
// reused once the op that last reads it has been lowered.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_BUFFERLIVENESS_H
#define RWKV_CODEGEN_BUFFERLIVENESS_H

#include "mlir/IR/Block.h"
#include "llvm/ADT/DenseMap.h"

namespace rwkvc {

class BufferLiveness {
public:
  /// Plans `body`. With `lastTokenAliases` (a function that runs the head
  /// on every token), the result of rwkv.last_token shares its input's
  /// buffer, so a use of the result is a use of the input.
  BufferLiveness(mlir::Block &body, bool lastTokenAliases);

  /// The value whose buffer holds `v`.
  mlir::Value bufferOf(mlir::Value v) const;
  /// True if `op` is the last reader of `operand`'s buffer.
  bool diesAt(mlir::Value operand, mlir::Operation *op) const;

private:
  llvm::DenseMap<mlir::Value, mlir::Value> alias;
  llvm::DenseMap<mlir::Value, mlir::Operation *> lastUse;
};

} // namespace rwkvc

#endif // RWKV_CODEGEN_BUFFERLIVENESS_H
