//===- Pickle.h - Restricted unpickler for torch state dicts -----*- C++
//-*-===//
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

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rwkvc {
namespace pickle {

struct Value;
/// Values live in the arena of the Pickled that holds them (no reference
/// counting: a pickle may build cycles or very deep nests).
using ValueRef = Value *;

/// A torch storage named by a persistent id ('storage', type, key, location,
/// numel). `dtype` is empty when the storage type is not f32/f16/bf16.
struct StorageRef {
  std::string typeName; // "torch.FloatStorage"
  std::optional<DType> dtype;
  std::string key; // entry "<archive>/data/<key>"
  uint64_t numel = 0;
};

/// The arguments of torch._utils._rebuild_tensor_v2.
struct TensorRef {
  std::shared_ptr<const StorageRef> storage; // shared by its views
  uint64_t offset = 0; // in elements
  llvm::SmallVector<int64_t, 4> size, stride;
};

struct Value {
  enum Kind {
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
  int64_t i = 0;               // Bool, Int
  double f = 0;                // Float
  std::string s;               // String; Global: "module.name"
  std::vector<ValueRef> items; // Tuple, List
  std::vector<std::pair<ValueRef, ValueRef>> dict; // Dict (in order)
  std::shared_ptr<const StorageRef> storage;       // Storage
  std::unique_ptr<TensorRef> tensor;               // Tensor
};

/// The object a pickle built, and the arena owning all its values.
struct Pickled {
  std::vector<std::unique_ptr<Value>> arena;
  ValueRef root = nullptr;
};

/// The memory the unpickler may hold while it builds the object of an
/// n-byte pickle: kBudgetPerByte * n + kBudgetFloor bytes, counting every
/// value, string, container slot, memo entry and copied tensor view.
/// torch.save's pickles take 31 to 34 bytes per pickle byte (the tiny
/// models); one value per byte (']' repeated) would take about 150.
constexpr uint64_t kBudgetPerByte = 64;
constexpr uint64_t kBudgetFloor = uint64_t(16) << 20;

/// Runs the pickle in `bytes` and returns the object it builds. Errors read
/// "data.pkl: <fault> (at byte offset N)"; a pickle that would take more
/// memory than its budget is an error naming the budget.
llvm::Expected<Pickled> unpickle(llvm::StringRef bytes);

} // namespace pickle
} // namespace rwkvc

#endif // RWKVC_FRONTEND_PICKLE_H
