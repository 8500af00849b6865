//===- Target.h - The interface every backend implements ----------*- C++ -*-===//
//
// A target turns an imported rwkv module into an artifact the runtime links:
//
//   imported module ──buildPipeline(stop)──▶ fused │ lowered │ target dialect
//     (the target's fusions, rwkv-assign-layout with its resourceConfig,
//      its lowering)
//   lowered module + ModelLayout + ModelInfoForABI ──emit──▶ IR │ asm │ obj
//
// Everything else (reading the checkpoint, importing, reading the layout,
// packing the weight image, the descriptor, linking) is shared. A backend
// registers itself in the TargetRegistry; the driver knows only this
// interface (`rwkvc --target=NAME`).
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_TARGET_H
#define RWKV_CODEGEN_TARGET_H

#include "codegen/Descriptor.h"
#include "codegen/ModelLayout.h"
#include "passes/Pipelines.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>
#include <string>
#include <vector>

namespace rwkvc {

/// Where a target's pipeline stops (-emit=fused, loops, llvm-dialect).
enum class PipelineStop {
  Fused,   // rwkv ops after the target's fusions
  Lowered, // the target's loops, weights and state placed
  Final    // the dialect the target translates from (LLVM for the CPU)
};

/// What a target writes (-emit=llvm-ir, asm, obj; exe and shared-lib link
/// an object; -emit=cuda the CUDA target's kernel source).
enum class ArtifactKind { IR, Assembly, Object, Source };

/// Machine options of the code generator (--target-cpu, --target-features;
/// the CUDA target's --cuda-arch and emulator build); empty fields mean the
/// host's or the defaults.
struct MachineOptions {
  std::string cpu;
  std::string features;
  /// CUDA: the real architectures to build cubins for ("sm_80", ...) and
  /// the virtual one for PTX; empty: NVRTC.h's defaults.
  std::vector<std::string> cudaArchs;
  std::string cudaPTXArch;
  /// CUDA: compile the kernels as host C++ for the emulator (cudaemu/)
  /// with `cudaEmulatorCompiler` (clang++) and the emulator's headers in
  /// `cudaEmulatorInclude`, instead of NVRTC.
  bool cudaEmulator = false;
  std::string cudaEmulatorCompiler;
  std::string cudaEmulatorInclude;
  /// A directory for intermediate files (the CUDA emulator build).
  std::string tmpDir;
  /// emitObjects: how many objects may be optimized and code-generated in
  /// parallel (0: one per hardware thread; 1: one object, serially).
  unsigned threads = 0;
};

/// Opens the output stream of object `part` (0, 1, ...) for emitObjects;
/// the stream stays valid until emitObjects returns.
using OpenObject =
    llvm::function_ref<llvm::Expected<llvm::raw_pwrite_stream *>(unsigned)>;

class Target {
public:
  virtual ~Target();
  /// The name --target selects ("cpu").
  virtual llvm::StringRef name() const = 0;
  virtual llvm::StringRef description() const = 0;
  /// The bits of enum rwkv_backend its entry points run on.
  virtual uint32_t backends() const = 0;
  /// The alignments it asks of the weight image and the state.
  virtual mlir::rwkv::ResourceConfigAttr
  resourceConfig(mlir::MLIRContext *context) const = 0;
  /// Adds its pipeline from an imported module to `stop`.
  virtual void buildPipeline(mlir::OpPassManager &pm,
                             const mlir::rwkv::PipelineOptions &options,
                             PipelineStop stop) const = 0;
  /// Writes the artifact of a module that has been through the whole
  /// pipeline, whose layout is `layout`. May change `module`.
  virtual llvm::Error emit(mlir::ModuleOp module, const ModelLayout &layout,
                           const ModelInfoForABI &info,
                           const MachineOptions &machine, ArtifactKind kind,
                           llvm::raw_pwrite_stream &os) const = 0;
  /// The object code of that module for a link, as one or more objects
  /// (`openObject(i)` for each, called on the calling thread) that may be
  /// compiled in parallel (machine.threads). The default writes one object
  /// with emit.
  virtual llvm::Error emitObjects(mlir::ModuleOp module,
                                  const ModelLayout &layout,
                                  const ModelInfoForABI &info,
                                  const MachineOptions &machine,
                                  OpenObject openObject) const;
};

/// The targets built into this rwkvc.
class TargetRegistry {
public:
  static void add(std::unique_ptr<Target> target);
  /// The target named `name`, or an error that lists the built-in ones.
  static llvm::Expected<const Target &> lookup(llvm::StringRef name);
  static std::vector<const Target *> all();
};

} // namespace rwkvc

#endif // RWKV_CODEGEN_TARGET_H
