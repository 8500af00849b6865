//===- ModelLayout.h - Weight image and state layout of a model ---*- C++ -*-===//
//
// After rwkv-assign-layout every rwkv.weight_decl and rwkv.state_decl of the
// module carries its #rwkv.placement and the module its
// #rwkv.memory_layout. This reads them into one target-neutral description
// that every backend's lowering, the weight packer (WeightImage.h) and the
// descriptor builder (Descriptor.h) use.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_MODELLAYOUT_H
#define RWKV_CODEGEN_MODELLAYOUT_H

#include "rwkv/RWKVDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>
#include <vector>

namespace rwkvc {

/// One weight of the image.
struct WeightEntry {
  std::string name;
  int64_t offset = 0;            // bytes into the image
  mlir::RankedTensorType type;   // shape and element type as stored
  std::optional<mlir::rwkv::DecayKind> derive; // for a derived weight
  std::string source;            // the weight it is derived from
  std::vector<std::string> parts; // packed: the matrices stacked, in order
  uint64_t bytes() const;
  uint64_t numElements() const;
};

/// One slot of the state.
struct SlotEntry {
  std::string name;
  int64_t offset = 0;           // floats into the state
  mlir::RankedTensorType type;  // f32, its shape
  int64_t size = 0;             // floats
  mlir::rwkv::StateInit init = mlir::rwkv::StateInit::zero;
  std::string initWeight;       // init == weight: the weight copied in
};

/// The placements of a module, in declaration order.
struct ModelLayout {
  std::vector<WeightEntry> weights;
  std::vector<SlotEntry> slots;
  int64_t weightsBytes = 0;
  int64_t stateFloats = 0;
  const WeightEntry *findWeight(llvm::StringRef name) const;
  const SlotEntry *findSlot(llvm::StringRef name) const;

private:
  friend llvm::Expected<ModelLayout> readModelLayout(mlir::ModuleOp);
  llvm::StringMap<size_t> weightIndex, slotIndex;
};

/// Reads the placements of a module that has been through
/// rwkv-assign-layout (the types and offsets refer to `module`'s context).
llvm::Expected<ModelLayout> readModelLayout(mlir::ModuleOp module);

/// Erases what rwkv-assign-layout added and the declarations it placed, for
/// a module about to be translated out of MLIR (LLVM IR has no use for
/// them once read).
void eraseModelLayout(mlir::ModuleOp module);

} // namespace rwkvc

#endif // RWKV_CODEGEN_MODELLAYOUT_H
