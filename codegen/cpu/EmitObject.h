//===- EmitObject.h - LLVM dialect to a native object -------------*- C++ -*-===//
//
//   LLVM dialect ──translate──▶ LLVM IR (+ the runtime ABI: descriptor and
//   entry points, runtime/rwkv_abi.h) ──O3 for the target──▶ asm / object
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CODEGEN_CPU_EMITOBJECT_H
#define RWKV_CODEGEN_CPU_EMITOBJECT_H

#include "codegen/Descriptor.h"
#include "codegen/Target.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/CodeGen.h"
#include "llvm/Target/TargetMachine.h"

#include <functional>
#include <memory>

namespace rwkvc {

/// The CPU to generate code for; empty fields mean the host's.
struct CPUTarget {
  std::string triple;
  std::string cpu;      // e.g. "znver4", "x86-64-v3"
  std::string features; // e.g. "+avx512f,+avx512bw"
};

llvm::Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(const CPUTarget &target);

/// Another backend in the same object (`--target=cpu,cuda`): its bits of
/// enum rwkv_backend, and what adds its program to the module (the
/// descriptor's `cuda`).
struct ExtraBackend {
  uint32_t backends = 0;
  std::function<llvm::Expected<llvm::Constant *>(llvm::Module &)> build;
};

/// Translates a module lowered by the CPU pipeline to LLVM IR and adds the
/// runtime ABI: `rwkv_model_descriptor`, `rwkv_model_forward_seq`,
/// `rwkv_model_forward_one` (wrapping forward_seq / forward_one), and
/// `extra`'s program.
llvm::Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(mlir::ModuleOp module, llvm::LLVMContext &context,
                  const ModelLayout &layout, const ModelInfoForABI &info,
                  llvm::TargetMachine &machine,
                  const ExtraBackend &extra = {});

/// Runs LLVM's O3 pipeline for the target machine.
void optimizeModule(llvm::Module &module, llvm::TargetMachine &machine);

/// Writes assembly or an object file.
llvm::Error emitCode(llvm::Module &module, llvm::TargetMachine &machine,
                     llvm::raw_pwrite_stream &os, llvm::CodeGenFileType type);

/// Optimizes `module` (O3, as optimizeModule) and writes its object code as
/// up to `threads` objects compiled in parallel:
///
///   module ──llvm::SplitModule (locals kept)──▶ parts that share no
///     internal symbol: an entry point with the functions only it calls
///   each part ──bitcode──▶ its own LLVMContext and TargetMachine, on a
///     thread: ──O3──▶ ──codegen──▶ object `part` (openObject)
///
/// The parts hold disjoint call graphs, so each function is optimized as it
/// is in the whole module. `threads` 0 means one per hardware thread; with
/// 1, with LLVM's --time-passes (its timers are not thread-safe), or when
/// the module does not split, one object is written on the calling thread.
llvm::Error emitObjects(std::unique_ptr<llvm::Module> module,
                        const CPUTarget &target, unsigned threads,
                        OpenObject openObject);

} // namespace rwkvc

#endif // RWKV_CODEGEN_CPU_EMITOBJECT_H
