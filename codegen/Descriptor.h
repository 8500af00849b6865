//===- Descriptor.h - The model descriptor of runtime/rwkv_abi.h --*- C++ -*-===//
//
//   ModelLayout + ModelInfoForABI ──▶ `rwkv_model_descriptor`, a constant
//   rwkv_model_desc (with its rwkv_state_slot table) in an LLVM module
//
// Shared by every backend: the descriptor says which backends the object's
// entry points run on; the rest is the model and its layout.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_DESCRIPTOR_H
#define RWKV_CODEGEN_DESCRIPTOR_H

#include "codegen/ModelLayout.h"

#include "llvm/IR/Constants.h"
#include "llvm/IR/Module.h"

#include <cstddef>

namespace rwkvc {

/// What the descriptor of the object says about the model.
struct ModelInfoForABI {
  std::string rwkvVersion;
  std::string modelName;
  int64_t nVocab = 0, nEmbd = 0, nLayer = 0;
  uint64_t hash = 0;
  bool weightsEmbedded = true;
  std::string weightsFile; // when not embedded
};

/// One field of a C struct of runtime/rwkv_abi.h: its value and where the
/// header puts it.
struct Field {
  const char *name;
  size_t offset; // offsetof in runtime/rwkv_abi.h
  llvm::Constant *value;
};

#define RWKV_FIELD(Struct, member, value)                                      \
  ::rwkvc::Field { #member, offsetof(Struct, member), value }

/// The constant struct of `fields` (its type in `type`), each field's
/// offset in `m`'s data layout checked against the header's when `m` is
/// for a host-compatible target; an error names the field that differs.
llvm::Expected<llvm::Constant *> makeStruct(llvm::Module &m,
                                            llvm::StringRef structName,
                                            llvm::ArrayRef<Field> fields,
                                            llvm::StructType *&type);

/// Adds `rwkv_model_descriptor` (an rwkv_model_desc with
/// `backends` = the bits of enum rwkv_backend, `cuda` = `cudaProgram`, a
/// pointer to the rwkv_cuda_program in `m`, or null, and `entries` the bits
/// of enum rwkv_entry that the CPU code defines) to `m`, whose data
/// layout must be set. Fails, naming the field, if a field's offset in `m`'s data
/// layout differs from runtime/rwkv_abi.h's (a host-compatible target).
llvm::Error buildModelDescriptor(llvm::Module &m, const ModelLayout &layout,
                                 const ModelInfoForABI &info,
                                 uint32_t backends,
                                 llvm::Constant *cudaProgram = nullptr,
                                 uint32_t entries = 0);

} // namespace rwkvc

#endif // RWKV_CODEGEN_DESCRIPTOR_H
