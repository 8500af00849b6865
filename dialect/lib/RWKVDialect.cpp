//===- RWKVDialect.cpp - The rwkv dialect ---------------------------------===//

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::rwkv;

#include "rwkv/RWKVDialect.cpp.inc"
#include "rwkv/RWKVEnums.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "rwkv/RWKVTypes.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "rwkv/RWKVAttrs.cpp.inc"

void RWKVDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "rwkv/RWKVOps.cpp.inc"
      >();
  addTypes<
#define GET_TYPEDEF_LIST
#include "rwkv/RWKVTypes.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "rwkv/RWKVAttrs.cpp.inc"
      >();
}
