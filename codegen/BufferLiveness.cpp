//===- BufferLiveness.cpp - When an activation buffer dies ----------------===//

#include "codegen/BufferLiveness.h"

#include "rwkv/RWKVDialect.h"

using namespace mlir;

namespace rwkvc {

BufferLiveness::BufferLiveness(Block &body, bool lastTokenAliases) {
  for (Operation &op : body) {
    for (Value operand : op.getOperands())
      lastUse[bufferOf(operand)] = &op;
    if (auto last = dyn_cast<rwkv::LastTokenOp>(op); last && lastTokenAliases)
      alias[last.getResult()] = bufferOf(last.getInput());
  }
}

Value BufferLiveness::bufferOf(Value v) const {
  Value a = alias.lookup(v);
  return a ? a : v;
}

bool BufferLiveness::diesAt(Value operand, Operation *op) const {
  return lastUse.lookup(bufferOf(operand)) == op;
}

} // namespace rwkvc
