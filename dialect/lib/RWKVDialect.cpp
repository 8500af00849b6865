//===- RWKVDialect.cpp - The rwkv dialect ---------------------------------===//

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
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

//===----------------------------------------------------------------------===//
// Memory layout
//===----------------------------------------------------------------------===//

FailureOr<int64_t> mlir::rwkv::getStoredElementBytes(Type elementType) {
  if (elementType.isF32())
    return 4;
  if (elementType.isF16() || elementType.isBF16())
    return 2;
  return failure();
}

int64_t mlir::rwkv::getQuantBlockBytes(QuantKind kind) {
  switch (kind) {
  case QuantKind::q4_0:
    return 18; // f16 d, 16 bytes of nibbles
  case QuantKind::q4_1:
    return 20; // f16 d, f16 m, 16 bytes of nibbles
  case QuantKind::q5_0:
    return 22; // f16 d, 4 bytes of fifth bits, 16 bytes of nibbles
  case QuantKind::q5_1:
    return 24; // f16 d, f16 m, fifth bits, nibbles
  case QuantKind::q8_0:
    return 34; // f16 d, 32 int8
  }
  llvm_unreachable("unknown quantization kind");
}

QuantBlockParts mlir::rwkv::getQuantBlockParts(QuantKind kind) {
  switch (kind) {
  case QuantKind::q4_0:
    return {-1, -1, 2, 16};
  case QuantKind::q4_1:
    return {2, -1, 4, 16};
  case QuantKind::q5_0:
    return {-1, 2, 6, 16};
  case QuantKind::q5_1:
    return {2, 4, 8, 16};
  case QuantKind::q8_0:
    return {-1, -1, 2, 32};
  }
  llvm_unreachable("unknown quantization kind");
}

QuantRowLayout mlir::rwkv::getQuantRowLayout(QuantKind kind, int64_t blocks) {
  QuantBlockParts parts = getQuantBlockParts(kind);
  return {blocks, getQuantBlockBytes(kind), parts.codeBytes, parts.min >= 0,
          parts.high >= 0};
}

FailureOr<int64_t> mlir::rwkv::getStoredBytes(ShapedType type) {
  Type elt = type.getElementType();
  if (auto q = dyn_cast<QuantType>(elt)) {
    if (type.getRank() == 0 ||
        type.getDimSize(type.getRank() - 1) % kQuantBlockElements != 0)
      return failure();
    return type.getNumElements() / kQuantBlockElements *
           getQuantBlockBytes(q.getKind());
  }
  FailureOr<int64_t> bytes = getStoredElementBytes(elt);
  if (failed(bytes))
    return failure();
  return type.getNumElements() * *bytes;
}

static bool isPowerOfTwo(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

LogicalResult
ResourceConfigAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                           int64_t weightAlignment, int64_t slotAlignment) {
  if (!isPowerOfTwo(weightAlignment))
    return emitError() << "weight_alignment must be a power of two, not "
                       << weightAlignment;
  if (!isPowerOfTwo(slotAlignment))
    return emitError() << "slot_alignment must be a power of two, not "
                       << slotAlignment;
  return success();
}

LogicalResult PlacementAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                    int64_t offset) {
  if (offset < 0)
    return emitError() << "placement offset must not be negative, not "
                       << offset;
  return success();
}

LogicalResult
LayerStrideAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t weights, int64_t state) {
  if (weights < 0 || state < 0)
    return emitError() << "layer strides must not be negative, not weights = "
                       << weights << ", state = " << state;
  return success();
}

LogicalResult
MemoryLayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                         int64_t weightsBytes, int64_t stateFloats) {
  if (weightsBytes < 0 || stateFloats < 0)
    return emitError() << "memory layout sizes must not be negative";
  return success();
}

namespace {
/// One placed declaration: [begin, end) in its buffer's units.
struct Extent {
  int64_t begin, end;
  Operation *decl;
};
} // namespace

/// Checks the placements of one buffer (the weight image or the state):
/// each aligned, within `size`, none overlapping another.
static LogicalResult verifyExtents(SmallVector<Extent> extents,
                                   int64_t alignment, int64_t size,
                                   StringRef buffer, StringRef unit) {
  for (const Extent &e : extents) {
    if (e.begin % alignment != 0)
      return e.decl->emitOpError()
             << "is placed at " << buffer << " offset " << e.begin
             << ", not a multiple of the " << alignment << "-" << unit
             << " alignment of rwkv.resource_config";
    if (e.end > size)
      return e.decl->emitOpError()
             << "ends at " << buffer << " offset " << e.end << " " << unit
             << "s, beyond the " << size << " " << unit
             << "s of rwkv.memory_layout";
  }
  llvm::sort(extents, [](const Extent &a, const Extent &b) {
    return a.begin < b.begin;
  });
  for (size_t i = 1; i < extents.size(); ++i)
    if (extents[i].begin < extents[i - 1].end &&
        extents[i].end > extents[i].begin && extents[i - 1].end >
        extents[i - 1].begin)
      return extents[i].decl->emitOpError()
             << "overlaps " << SymbolTable::getSymbolName(extents[i - 1].decl)
             << " in the " << buffer;
  return success();
}

/// A module with rwkv.memory_layout has every declaration placed, aligned as
/// its rwkv.resource_config says, within the sizes, without overlap.
static LogicalResult verifyMemoryLayout(ModuleOp module,
                                        MemoryLayoutAttr layout) {
  auto config = module->getAttrOfType<ResourceConfigAttr>(
      RWKVDialect::kResourceConfigAttrName);
  if (!config)
    return module.emitOpError()
           << "has " << RWKVDialect::kMemoryLayoutAttrName << " but no "
           << RWKVDialect::kResourceConfigAttrName;
  SmallVector<Extent> weights, slots;
  for (auto decl : module.getOps<WeightDeclOp>()) {
    if (!decl.getPlacement())
      return decl.emitOpError() << "has no placement in the weight image";
    RankedTensorType type = decl.getTensorType();
    FailureOr<int64_t> bytes = getStoredBytes(type);
    if (failed(bytes))
      return decl.emitOpError() << "is placed in the weight image with type "
                                << type << ", which no image stores";
    int64_t begin = decl.getPlacement()->getOffset();
    weights.push_back({begin, begin + *bytes, decl});
  }
  for (auto decl : module.getOps<StateDeclOp>()) {
    if (!decl.getPlacement())
      return decl.emitOpError() << "has no placement in the state";
    int64_t begin = decl.getPlacement()->getOffset();
    slots.push_back({begin, begin + decl.getTensorType().getNumElements(),
                     decl});
  }
  if (failed(verifyExtents(std::move(weights),
                           config.getWeightAlignment(),
                           layout.getWeightsBytes(), "weight image", "byte")) ||
      failed(verifyExtents(std::move(slots), config.getSlotAlignment(),
                           layout.getStateFloats(), "state", "float")))
    return failure();
  return success();
}

LogicalResult RWKVDialect::verifyOperationAttribute(Operation *op,
                                                    NamedAttribute attr) {
  if (attr.getName() == kResourceConfigAttrName) {
    if (!isa<ModuleOp>(op) || !isa<ResourceConfigAttr>(attr.getValue()))
      return op->emitOpError() << "'" << kResourceConfigAttrName
                               << "' must be a #rwkv.resource_config on a module";
    return success();
  }
  if (attr.getName() == kMemoryLayoutAttrName) {
    auto module = dyn_cast<ModuleOp>(op);
    auto layout = dyn_cast<MemoryLayoutAttr>(attr.getValue());
    if (!module || !layout)
      return op->emitOpError() << "'" << kMemoryLayoutAttrName
                               << "' must be a #rwkv.memory_layout on a module";
    return verifyMemoryLayout(module, layout);
  }
  return success(); // rwkv.version, rwkv.source: informative
}
