//===- EmitObject.cpp - LLVM dialect to a native object -------------------===//
//
//   LLVM dialect ──translateModuleToLLVMIR──▶ LLVM IR
//     + rwkv_model_descriptor (a constant struct, runtime/rwkv_abi.h)
//     + rwkv_model_forward_seq(weights, state, tokens, n, logits),
//       rwkv_model_forward_all(weights, state, tokens, n, logits) and
//       rwkv_model_forward_one(weights, state, token, logits),
//       rwkv_model_forward_batch(weights, states, tokens, batch, logits) and
//       rwkv_model_forward_prefix(weights, state, tokens, n) (the last two
//       where the module has them):
//       build the memref descriptors of _mlir_ciface_forward_{seq,all,one,
//       batch,prefix} and call them
//   ──PassBuilder O3──▶ TargetMachine ──▶ assembly / object file
//
// For a link (emitObjects) the module is split first, one part per entry
// point's call graph, and the parts are optimized and code-generated in
// parallel, each into its own object.
//
//===----------------------------------------------------------------------===//

#include "codegen/cpu/EmitObject.h"
#include "codegen/Descriptor.h"

#include "runtime/rwkv_abi.h"

#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/PassTimingInfo.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/StandardInstrumentations.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"
#include "llvm/Transforms/Utils/SplitModule.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

using llvm::Expected;

namespace rwkvc {

Expected<std::unique_ptr<llvm::TargetMachine>>
createTargetMachine(const CPUTarget &target) {
  // Once, before any thread of emitObjects creates its machine.
  static const bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
    return true;
  }();
  (void)initialized;
  std::string tripleName =
      target.triple.empty() ? llvm::sys::getDefaultTargetTriple() : target.triple;
  llvm::Triple triple(tripleName);
  std::string error;
  const llvm::Target *t = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!t)
    return llvm::createStringError("target '" + tripleName + "': " + error);
  std::string cpu = target.cpu;
  std::string features = target.features;
  if (cpu.empty() || cpu == "native") {
    cpu = llvm::sys::getHostCPUName().str();
    if (features.empty()) {
      llvm::SubtargetFeatures f;
      for (auto &[name, enabled] : llvm::sys::getHostCPUFeatures())
        f.AddFeature(name, enabled);
      features = f.getString();
    }
  }
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> machine(t->createTargetMachine(
      triple, cpu, features, options, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Aggressive));
  if (!machine)
    return llvm::createStringError("cannot create a target machine for " +
                                   tripleName + " cpu " + cpu);
  return machine;
}

namespace {

/// Adds the descriptor and the C entry points to `m`.
class ABIBuilder {
public:
  ABIBuilder(llvm::Module &m, const ModelLayout &layout,
             const ModelInfoForABI &info, const ExtraBackend &extra)
      : m(m), ctx(m.getContext()), layout(layout), info(info), extra(extra),
        i32(llvm::Type::getInt32Ty(ctx)), i64(llvm::Type::getInt64Ty(ctx)),
        ptr(llvm::PointerType::getUnqual(ctx)) {}

  llvm::Error build() {
    llvm::Constant *cuda = nullptr;
    if (extra.build) {
      auto program = extra.build(m);
      if (!program)
        return program.takeError();
      cuda = *program;
    }
    // The batch entry is optional (rwkv-lower-to-loops' batch-entry).
    // So is the prefix entry (a model with a head after rwkv.last_token).
    bool batch = m.getFunction("_mlir_ciface_forward_batch") != nullptr;
    bool prefix = m.getFunction("_mlir_ciface_forward_prefix") != nullptr;
    if (llvm::Error e = buildModelDescriptor(
            m, layout, info, RWKV_BACKEND_CPU | extra.backends, cuda,
            (batch ? RWKV_ENTRY_FORWARD_BATCH : 0) |
                (prefix ? RWKV_ENTRY_FORWARD_PREFIX : 0)))
      return e;
    for (Entry entry :
         {Entry::Seq, Entry::One, Entry::All, Entry::Batch, Entry::Prefix})
      if ((entry != Entry::Batch || batch) && (entry != Entry::Prefix || prefix))
        if (llvm::Error e = buildEntry(entry))
          return e;
    return llvm::Error::success();
  }

private:
  llvm::Constant *c32(int64_t v) { return llvm::ConstantInt::get(i32, v); }
  llvm::Constant *c64(int64_t v) { return llvm::ConstantInt::get(i64, v); }

  /// Stores a rank-`rank` memref descriptor {ptr, ptr, 0, sizes, strides}.
  llvm::Value *descriptor(llvm::IRBuilder<> &b, llvm::Value *base,
                          llvm::ArrayRef<llvm::Value *> sizes) {
    size_t rank = sizes.size();
    auto *arr = llvm::ArrayType::get(i64, rank);
    auto *type = llvm::StructType::get(ctx, {ptr, ptr, i64, arr, arr});
    llvm::Value *slot = b.CreateAlloca(type);
    b.CreateStore(base, b.CreateStructGEP(type, slot, 0));
    b.CreateStore(base, b.CreateStructGEP(type, slot, 1));
    b.CreateStore(c64(0), b.CreateStructGEP(type, slot, 2));
    llvm::Value *stride = c64(1);
    for (size_t i = rank; i-- > 0;) {
      b.CreateStore(sizes[i], b.CreateGEP(type, slot, {c32(0), c32(3), c32(i)}));
      b.CreateStore(stride, b.CreateGEP(type, slot, {c32(0), c32(4), c32(i)}));
      stride = b.CreateMul(stride, sizes[i]);
    }
    return slot;
  }

  /// The entry points of runtime/rwkv_abi.h.
  enum class Entry { Seq, One, All, Batch, Prefix };

  llvm::Error buildEntry(Entry entry) {
    bool one = entry == Entry::One;
    bool prefix = entry == Entry::Prefix;
    const char *suffix = one                    ? "one"
                         : entry == Entry::All   ? "all"
                         : entry == Entry::Batch ? "batch"
                         : prefix                ? "prefix"
                                                 : "seq";
    std::string target = std::string("_mlir_ciface_forward_") + suffix;
    llvm::Function *callee = m.getFunction(target);
    if (!callee)
      return llvm::createStringError("the lowered module has no " + target);
    // seq, all: (ptr weights, ptr state, ptr tokens, i64 n, ptr logits)
    // one:      (ptr weights, ptr state, i32 token, ptr logits)
    // batch:    (ptr weights, ptr states, ptr tokens, i64 batch, ptr logits)
    // prefix:   (ptr weights, ptr state, ptr tokens, i64 n)
    auto *voidTy = llvm::Type::getVoidTy(ctx);
    auto *fnType =
        one      ? llvm::FunctionType::get(voidTy, {ptr, ptr, i32, ptr}, false)
        : prefix ? llvm::FunctionType::get(voidTy, {ptr, ptr, ptr, i64}, false)
                 : llvm::FunctionType::get(voidTy, {ptr, ptr, ptr, i64, ptr},
                                           false);
    auto *fn = llvm::Function::Create(
        fnType, llvm::GlobalValue::ExternalLinkage,
        std::string("rwkv_model_forward_") + suffix, m);
    llvm::IRBuilder<> b(llvm::BasicBlock::Create(ctx, "entry", fn));
    llvm::Value *weights = fn->getArg(0), *state = fn->getArg(1);
    llvm::Value *tokens, *n, *logits;
    if (one) {
      tokens = b.CreateAlloca(i32);
      b.CreateStore(fn->getArg(2), tokens);
      n = c64(1);
      logits = fn->getArg(3);
    } else {
      tokens = fn->getArg(2);
      n = fn->getArg(3);
      logits = prefix ? nullptr : fn->getArg(4);
    }
    // forward_all and forward_batch write one row of logits per token, the
    // others one row. forward_batch's second argument is the array of the
    // rows' state addresses (memref<?xi64>, n entries).
    bool batch = entry == Entry::Batch;
    llvm::Value *rows = entry == Entry::All || batch ? n : c64(1);
    llvm::SmallVector<llvm::Value *, 4> args = {
        descriptor(b, weights, {c64(layout.weightsBytes)}),
        descriptor(b, state, {batch ? n : c64(layout.stateFloats)}),
        descriptor(b, tokens, {n})};
    if (!prefix)
      args.push_back(descriptor(b, logits, {rows, c64(info.nVocab)}));
    b.CreateCall(callee, args);
    b.CreateRetVoid();
    return llvm::Error::success();
  }

  llvm::Module &m;
  llvm::LLVMContext &ctx;
  const ModelLayout &layout;
  const ModelInfoForABI &info;
  const ExtraBackend &extra;
  llvm::Type *i32, *i64;
  llvm::PointerType *ptr;
};

} // namespace

Expected<std::unique_ptr<llvm::Module>>
translateToLLVMIR(mlir::ModuleOp module, llvm::LLVMContext &context,
                  const ModelLayout &layout, const ModelInfoForABI &info,
                  llvm::TargetMachine &machine, const ExtraBackend &extra) {
  mlir::registerBuiltinDialectTranslation(*module.getContext());
  mlir::registerLLVMDialectTranslation(*module.getContext());
  mlir::registerOpenMPDialectTranslation(*module.getContext());
  // The layout has been read; LLVM IR has no use for it.
  eraseModelLayout(module);
  for (llvm::StringRef attr : {"rwkv.version", "rwkv.source"})
    module->removeAttr(attr);
  std::unique_ptr<llvm::Module> m =
      mlir::translateModuleToLLVMIR(module, context, "rwkv_model");
  if (!m)
    return llvm::createStringError("translation to LLVM IR failed");
  m->setTargetTriple(machine.getTargetTriple());
  m->setDataLayout(machine.createDataLayout());
  // Every function may use the target's features (AVX-512 on Zen 4).
  for (llvm::Function &f : *m) {
    if (f.isDeclaration())
      continue;
    f.addFnAttr("target-cpu", machine.getTargetCPU());
    if (!machine.getTargetFeatureString().empty())
      f.addFnAttr("target-features", machine.getTargetFeatureString());
  }
  if (llvm::Error e = ABIBuilder(*m, layout, info, extra).build())
    return std::move(e);
  // Only the ABI is visible outside the object: the lowered functions are
  // internal (and inlined into the entry points where LLVM sees fit).
  for (llvm::Function &f : *m)
    if (!f.isDeclaration() && !f.getName().starts_with("rwkv_"))
      f.setLinkage(llvm::GlobalValue::InternalLinkage);
  return m;
}

void optimizeModule(llvm::Module &module, llvm::TargetMachine &machine) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions tuning;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  // --time-passes and the other instrumentation options of LLVM's
  // command line apply to this pipeline.
  llvm::PassInstrumentationCallbacks callbacks;
  llvm::StandardInstrumentations instrumentations(module.getContext(),
                                                  /*DebugLogging=*/false);
  instrumentations.registerCallbacks(callbacks, &mam);
  // O3 without loop-load-elim. The lowering carries loop values in
  // registers (iter_args), so the pass forwards nothing here: O3's output is
  // the same without it on every tiny model and the 0.1B, while its
  // dependence analysis of the fully unrolled loop bodies was 15% of O3's
  // instructions on forward_trunk (docs/performance.md, "Compile time").
  callbacks.registerShouldRunOptionalPassCallback(
      [](llvm::StringRef pass, llvm::Any) {
        return pass != "LoopLoadEliminationPass";
      });
  llvm::PassBuilder pb(&machine, tuning, std::nullopt, &callbacks);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm =
      pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(module, mam);
}

llvm::Error emitCode(llvm::Module &module, llvm::TargetMachine &machine,
                     llvm::raw_pwrite_stream &os, llvm::CodeGenFileType type) {
  llvm::legacy::PassManager pm;
  if (machine.addPassesToEmitFile(pm, os, nullptr, type))
    return llvm::createStringError("the target cannot emit this file type");
  pm.run(module);
  return llvm::Error::success();
}

llvm::Error emitObjects(std::unique_ptr<llvm::Module> module,
                        const CPUTarget &target, unsigned threads,
                        OpenObject openObject) {
  llvm::ThreadPoolStrategy strategy = llvm::hardware_concurrency(threads);
  unsigned n = strategy.compute_thread_count();
  auto serial = [&]() -> llvm::Error {
    auto machine = createTargetMachine(target);
    if (!machine)
      return machine.takeError();
    auto os = openObject(0);
    if (!os)
      return os.takeError();
    optimizeModule(*module, **machine);
    return emitCode(*module, **machine, **os,
                    llvm::CodeGenFileType::ObjectFile);
  };
  if (n <= 1 || llvm::TimePassesIsEnabled)
    return serial();

  // The parts, as bitcode: each is read back into a context of its own
  // (an LLVMContext is used by one thread at a time). Parts that define
  // nothing (more threads than call graphs) are dropped.
  std::vector<llvm::SmallVector<char, 0>> parts;
  llvm::SplitModule(
      *module, n,
      [&](std::unique_ptr<llvm::Module> part) {
        if (llvm::all_of(part->global_values(), [](llvm::GlobalValue &g) {
              return g.isDeclaration();
            }))
          return;
        llvm::SmallVector<char, 0> &bitcode = parts.emplace_back();
        llvm::raw_svector_ostream os(bitcode);
        llvm::WriteBitcodeToFile(*part, os);
      },
      /*PreserveLocals=*/true);
  if (parts.size() <= 1)
    return serial();
  module.reset();

  std::vector<llvm::raw_pwrite_stream *> streams;
  for (unsigned i = 0; i < parts.size(); ++i) {
    auto os = openObject(i);
    if (!os)
      return os.takeError();
    streams.push_back(*os);
  }
  std::vector<llvm::Error> errors;
  for (size_t i = 0; i < parts.size(); ++i)
    errors.push_back(llvm::Error::success());
  {
    llvm::DefaultThreadPool pool(
        llvm::hardware_concurrency(std::min<unsigned>(n, parts.size())));
    for (size_t i = 0; i < parts.size(); ++i)
      pool.async([&, i] {
        errors[i] = [&]() -> llvm::Error {
          llvm::LLVMContext context;
          auto part = llvm::parseBitcodeFile(
              llvm::MemoryBufferRef(
                  llvm::StringRef(parts[i].data(), parts[i].size()),
                  "rwkv_model"),
              context);
          if (!part)
            return part.takeError();
          auto machine = createTargetMachine(target);
          if (!machine)
            return machine.takeError();
          optimizeModule(**part, **machine);
          return emitCode(**part, **machine, *streams[i],
                          llvm::CodeGenFileType::ObjectFile);
        }();
      });
    pool.wait();
  }
  llvm::Error all = llvm::Error::success();
  for (llvm::Error &e : errors)
    all = llvm::joinErrors(std::move(all), std::move(e));
  return all;
}

} // namespace rwkvc
