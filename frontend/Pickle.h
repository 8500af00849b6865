//===- Pickle.h - Restricted unpickler for torch state dicts ----*- C++ -*-===//
//
// A pickle interpreter that understands only what torch.save writes for a
// state dict (docs/formats.md lists the opcodes and globals). It builds a
// value tree; it never imports or calls anything: the few allowed globals
// are recognised by name and interpreted here, every other global is an
// error naming it.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_PICKLE_H
#define RWKVC_FRONTEND_PICKLE_H

#include "frontend/Checkpoint.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Allocator.h"

#include <memory>
#include <optional>

namespace rwkvc {
namespace pickle {

struct Value;
/// Values live in the arena of the Pickled that holds them (no reference
/// counting: a pickle may build cycles or very deep nests).
using ValueRef = Value *;

/// A torch storage named by a persistent id ('storage', type, key, location,
/// numel). `dtype` is empty when the storage type is not f32/f16/bf16.
struct StorageRef {
  llvm::StringRef typeName; // "torch.FloatStorage"
  std::optional<DType> dtype;
  llvm::StringRef key; // entry "<archive>/data/<key>"
  uint64_t numel = 0;
};

/// The arguments of torch._utils._rebuild_tensor_v2.
struct TensorRef {
  const StorageRef *storage = nullptr; // shared by its views
  uint64_t offset = 0;                 // in elements
  llvm::ArrayRef<int64_t> size, stride;
};

/// One value, 24 bytes. Everything it points to (strings, item slots,
/// storages, tensors) lies in the same arena, so a value needs no
/// destructor and costs no allocation of its own.
struct Value {
  enum Kind : uint8_t {
    None,
    Bool,
    Int,
    Float,
    String,
    Tuple,
    List,
    Dict,
    Global,
    Storage,
    Tensor
  } kind = None;
  uint32_t size = 0;     // String, Global: bytes; Tuple, List, Dict: items
  uint32_t capacity = 0; // Tuple, List, Dict: item slots allocated
  union {
    int64_t i = 0;             // Bool, Int
    double f;                  // Float
    const char *chars;         // String; Global: "module.name"
    ValueRef *slots;           // Tuple, List; Dict: key, value, key, ...
    const StorageRef *storage; // Storage
    const TensorRef *tensor;   // Tensor
  };

  llvm::StringRef str() const { return {chars, size}; }
  llvm::ArrayRef<ValueRef> items() const { return {slots, size}; }
};
static_assert(sizeof(Value) == 24, "a value per pickle byte costs 24 + 8");

/// The object a pickle built, and the arena owning all its values.
struct Pickled {
  std::unique_ptr<llvm::BumpPtrAllocator> arena;
  ValueRef root = nullptr;
};

/// The memory the unpickler may hold while it builds the object of an
/// n-byte pickle: min(kBudgetPerByte * n + kBudgetFloor, kBudgetCap) bytes,
/// counting the arena (values, strings, item slots, storages, tensors), the
/// memo table and the stack; checked after every opcode. torch.save's
/// pickles take 9 to 10.5 bytes per pickle byte (the tiny models) and are
/// small, about 100 bytes per tensor: the floor alone holds the pickle of a
/// checkpoint of 15,000 tensors. A value per byte (']' repeated) takes 32.
constexpr uint64_t kBudgetPerByte = 32;
constexpr uint64_t kBudgetFloor = uint64_t(16) << 20;
constexpr uint64_t kBudgetCap = uint64_t(128) << 20;

/// Runs the pickle in `bytes` and returns the object it builds. Errors read
/// "data.pkl: <fault> (at byte offset N)"; a pickle that would take more
/// memory than its budget is an error naming the budget.
llvm::Expected<Pickled> unpickle(llvm::StringRef bytes);

} // namespace pickle
} // namespace rwkvc

#endif // RWKVC_FRONTEND_PICKLE_H
