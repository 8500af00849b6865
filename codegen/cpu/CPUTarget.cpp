//===- CPUTarget.cpp - The CPU backend behind the Target interface --------===//
//
//   buildPipeline: buildCPUPipelineToFused │ ToLoops │ buildCPUPipeline
//   emit: translateToLLVMIR (+ the ABI) ──O3──▶ LLVM IR │ asm │ object
//   emitObjects (a link): the same, in parts compiled in parallel
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/CPUTarget.h"
#include "codegen/Target.h"
#include "codegen/cpu/EmitObject.h"
#include "codegen/cpu/Passes.h"

#include "runtime/rwkv_abi.h"

namespace rwkvc {

namespace {

class CPUTargetImpl final : public Target {
public:
  llvm::StringRef name() const override { return "cpu"; }
  llvm::StringRef description() const override {
    return "this machine's CPU, or --target-cpu (LLVM, SIMD kernels)";
  }
  uint32_t backends() const override { return RWKV_BACKEND_CPU; }

  mlir::rwkv::ResourceConfigAttr
  resourceConfig(mlir::MLIRContext *context) const override {
    return mlir::rwkv::ResourceConfigAttr::get(
        context, mlir::rwkv::cpu::kWeightAlignment,
        mlir::rwkv::cpu::kSlotAlignment);
  }

  void buildPipeline(mlir::OpPassManager &pm,
                     const mlir::rwkv::PipelineOptions &options,
                     PipelineStop stop) const override {
    switch (stop) {
    case PipelineStop::Fused:
      return mlir::rwkv::cpu::buildCPUPipelineToFused(pm, options);
    case PipelineStop::Lowered:
      return mlir::rwkv::cpu::buildCPUPipelineToLoops(pm, options);
    case PipelineStop::Final:
      return mlir::rwkv::cpu::buildCPUPipeline(pm, options);
    }
  }

  llvm::Error emit(mlir::ModuleOp module, const ModelLayout &layout,
                   const ModelInfoForABI &info, const MachineOptions &options,
                   ArtifactKind kind,
                   llvm::raw_pwrite_stream &os) const override {
    if (kind == ArtifactKind::Source)
      return llvm::createStringError(
          "the cpu target has no source stage (-emit=cuda needs "
          "--target=cuda)");
    std::unique_ptr<llvm::TargetMachine> machine;
    llvm::LLVMContext llvmContext;
    auto llvmModule = translate(module, layout, info, options, llvmContext,
                                machine);
    if (!llvmModule)
      return llvmModule.takeError();
    optimizeModule(**llvmModule, *machine);
    if (kind == ArtifactKind::IR) {
      (*llvmModule)->print(os, nullptr);
      return llvm::Error::success();
    }
    return emitCode(**llvmModule, *machine, os,
                    kind == ArtifactKind::Assembly
                        ? llvm::CodeGenFileType::AssemblyFile
                        : llvm::CodeGenFileType::ObjectFile);
  }

  llvm::Error emitObjects(mlir::ModuleOp module, const ModelLayout &layout,
                          const ModelInfoForABI &info,
                          const MachineOptions &options,
                          OpenObject openObject) const override {
    std::unique_ptr<llvm::TargetMachine> machine;
    llvm::LLVMContext llvmContext;
    auto llvmModule = translate(module, layout, info, options, llvmContext,
                                machine);
    if (!llvmModule)
      return llvmModule.takeError();
    return rwkvc::emitObjects(std::move(*llvmModule),
                              {"", options.cpu, options.features},
                              options.threads, openObject);
  }

private:
  /// The lowered module as LLVM IR in `context`, for the machine of
  /// `options` (returned in `machine`).
  static llvm::Expected<std::unique_ptr<llvm::Module>>
  translate(mlir::ModuleOp module, const ModelLayout &layout,
            const ModelInfoForABI &info, const MachineOptions &options,
            llvm::LLVMContext &context,
            std::unique_ptr<llvm::TargetMachine> &machine) {
    auto created = createTargetMachine({"", options.cpu, options.features});
    if (!created)
      return created.takeError();
    machine = std::move(*created);
    return translateToLLVMIR(module, context, layout, info, *machine);
  }
};

} // namespace

void registerCPUTarget() {
  mlir::rwkv::cpu::registerRWKVCPUPasses();
  TargetRegistry::add(std::make_unique<CPUTargetImpl>());
}

} // namespace rwkvc
