//===- Target.cpp - The registry of targets -------------------------------===//

#include "codegen/Target.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

namespace rwkvc {

Target::~Target() = default;

llvm::Error Target::emitObjects(mlir::ModuleOp module,
                                const ModelLayout &layout,
                                const ModelInfoForABI &info,
                                const MachineOptions &machine,
                                OpenObject openObject) const {
  auto os = openObject(0);
  if (!os)
    return os.takeError();
  return emit(module, layout, info, machine, ArtifactKind::Object, **os);
}

static std::vector<std::unique_ptr<Target>> &targets() {
  static std::vector<std::unique_ptr<Target>> registered;
  return registered;
}

void TargetRegistry::add(std::unique_ptr<Target> target) {
  if (llvm::none_of(targets(), [&](const std::unique_ptr<Target> &t) {
        return t->name() == target->name();
      }))
    targets().push_back(std::move(target));
}

llvm::Expected<const Target &> TargetRegistry::lookup(llvm::StringRef name) {
  for (const std::unique_ptr<Target> &t : targets())
    if (t->name() == name)
      return *t;
  std::vector<std::string> names;
  for (const std::unique_ptr<Target> &t : targets())
    names.push_back(t->name().str());
  return llvm::createStringError(
      "target '" + name + "' is not built in this rwkvc (targets: " +
      llvm::join(names, ", ") + ")");
}

std::vector<const Target *> TargetRegistry::all() {
  std::vector<const Target *> all;
  for (const std::unique_ptr<Target> &t : targets())
    all.push_back(t.get());
  return all;
}

} // namespace rwkvc
