//===- LowerPendingLinear.cpp - Placeholder until LowerLinear.cpp lands -------===//
//
// Built only while codegen/cpu/LowerLinear.cpp does not exist (see
// CMakeLists.txt): the ops of the family fail to lower with an error.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/Lowering.h"

mlir::LogicalResult mlir::rwkv::cpu::lowerLinearOp(Operation *op,
                                            LoweringContext &cx) {
  return op->emitOpError() << "has no CPU lowering in this build";
}
