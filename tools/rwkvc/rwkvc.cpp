//===- rwkvc.cpp - The rwkvc compiler driver ------------------------------===//
//
// rwkvc MODEL -o NAME [-emit=STAGE] | rwkvc --inspect MODEL
//
// Reads a checkpoint (.pth, .safetensors, rwkv.cpp .bin), checks it, imports
// it into the rwkv dialect and compiles it, stopping at the stage -emit
// names:
//
//   checkpoint ─frontend─▶ mlir ─rwkv-optimize-pipeline, fusions─▶ fused
//     ─rwkv-lower-to-loops─▶ loops ─rwkv-loops-to-llvm─▶ llvm-dialect
//     ─translate + ABI + O3─▶ llvm-ir ─TargetMachine─▶ asm | obj
//     ─+ weight image + runtime, linked by clang/lld─▶ exe
//
//===----------------------------------------------------------------------===//

#include "codegen/ModelLayout.h"
#include "codegen/cpu/EmitObject.h"
#include "codegen/cpu/Passes.h"
#include "frontend/Checkpoint.h"
#include "frontend/EmbedFile.h"
#include "frontend/Importer.h"
#include "frontend/Model.h"
#include "frontend/Report.h"
#include "frontend/Tokenizer.h"
#include "frontend/TokenizerFiles.h"
#include "passes/Pipelines.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/Timer.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

#include <chrono>

using namespace llvm;

namespace {

enum class Stage {
  Mlir,
  Fused,
  Loops,
  LLVMDialect,
  LLVMIR,
  Asm,
  Obj,
  Exe,
  SharedLib
};

cl::OptionCategory category("rwkvc options");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("MODEL"),
                               cl::Required, cl::cat(category));
cl::opt<std::string> outputPath(
    "o", cl::desc("Output file (default: the model's name for exe, stdout "
                  "for text stages)"),
    cl::value_desc("NAME"), cl::cat(category));
cl::opt<bool> inspect("inspect",
                      cl::desc("Print the checkpoint's format, version, "
                               "hyper-parameters and anomalies, then exit"),
                      cl::cat(category));
cl::opt<Stage> emit(
    "emit", cl::desc("Stop after this stage and write its output"),
    cl::values(
        clEnumValN(Stage::Mlir, "mlir", "the imported rwkv dialect module"),
        clEnumValN(Stage::Fused, "fused",
                   "after constant folding and the fusion passes"),
        clEnumValN(Stage::Loops, "loops",
                   "lowered to loops over memrefs (upstream dialects)"),
        clEnumValN(Stage::LLVMDialect, "llvm-dialect", "the LLVM dialect"),
        clEnumValN(Stage::LLVMIR, "llvm-ir",
                   "optimized LLVM IR with the runtime ABI"),
        clEnumValN(Stage::Asm, "asm", "target assembly"),
        clEnumValN(Stage::Obj, "obj", "an object file (the model's code)"),
        clEnumValN(Stage::Exe, "exe",
                   "a self-contained executable (the default)"),
        clEnumValN(Stage::SharedLib, "shared-lib",
                   "a shared library with the C API of rwkv_runtime.h "
                   "(-o libNAME.so)")),
    cl::init(Stage::Exe), cl::cat(category));
cl::opt<std::string> targetCPU(
    "target-cpu",
    cl::desc("CPU to generate code for (default: this machine's, e.g. "
             "znver4; 'x86-64-v3' for any AVX2 machine)"),
    cl::cat(category));
cl::opt<std::string> targetFeatures(
    "target-features",
    cl::desc("Target features, e.g. +avx512f,+avx512bw (default: those of "
             "--target-cpu, or this machine's)"),
    cl::cat(category));
cl::opt<bool> weightsFile(
    "weights-file",
    cl::desc("Write the packed weights to NAME.weights beside the "
             "executable (memory-mapped at run time) instead of embedding "
             "them"),
    cl::cat(category));
cl::opt<bool> force("force",
                    cl::desc("Compile even if weights hold NaN or Inf"),
                    cl::cat(category));
cl::opt<float> groupNormEps(
    "gn-eps",
    cl::desc("Group-norm epsilon of RWKV-5/6/7 (reference package: 64e-5; "
             "rwkv.cpp: 1e-5)"),
    cl::init(64e-5f), cl::cat(category));
cl::opt<bool> noTimeState(
    "no-time-state",
    cl::desc("Ignore a state-tuned time_state (start from zero state)"),
    cl::cat(category));
cl::opt<std::string> weightType(
    "weight-type",
    cl::desc("Storage type of the weight matrices: keep (as stored; "
             "quantized ones become f32), f32, f16 or bf16"),
    cl::init("keep"), cl::cat(category));
cl::opt<std::string> tokenizerSpec(
    "tokenizer",
    cl::desc("Tokenizer linked into the executable: bytes, world, 20b, a "
             "20B-style tokenizer .json or a World vocabulary .txt (default: "
             "chosen from the vocabulary size: 256 bytes, 50277 20b, 65536 "
             "world)"),
    cl::value_desc("SPEC"), cl::cat(category));
cl::opt<std::string> tokenizerDir(
    "tokenizer-dir",
    cl::desc("Where 'world' and '20b' find rwkv_vocab_v20230424.txt and "
             "20B_tokenizer.json (default: the tokenizers bundled with "
             "rwkvc, ../share/rwkvc/tokenizers beside its executable)"),
    cl::value_desc("DIR"), cl::cat(category));
cl::opt<bool> noFuse("no-fuse",
                     cl::desc("Skip the fusion passes (for comparison and "
                              "debugging)"),
                     cl::cat(category));
cl::opt<bool> verbose("v", cl::desc("Print each stage and its time"),
                      cl::cat(category));
cl::opt<std::string> runtimeDir(
    "runtime-dir",
    cl::desc("Directory holding librwkv_runtime.a and librwkv_runtime_main.a"),
    cl::cat(category));

int fail(const Twine &message) {
  WithColor::error(errs(), "rwkvc") << message << "\n";
  return 1;
}

/// Prints each stage and its time: with -v, or when stderr is a terminal
/// (long compiles of large models show where they are).
class Progress {
public:
  Progress() : enabled(verbose || sys::Process::StandardErrIsDisplayed()) {}
  void step(const Twine &what) {
    finish();
    if (!enabled)
      return;
    current = what.str();
    start = std::chrono::steady_clock::now();
  }
  void finish() {
    if (!enabled || current.empty())
      return;
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    errs() << formatv("rwkvc: {0,-40} {1,8:f1} ms\n", current, ms);
    current.clear();
  }
  ~Progress() { finish(); }

private:
  bool enabled;
  std::string current;
  std::chrono::steady_clock::time_point start;
};

/// Writes `module` (any printable) to the output file or stdout.
template <typename Printable>
int writeText(const Printable &print) {
  std::string error;
  auto out = mlir::openOutputFile(outputPath.empty() ? std::string("-") : std::string(outputPath),
                                  &error);
  if (!out)
    return fail(error);
  print(out->os());
  out->keep();
  return 0;
}

/// Where the runtime libraries are: --runtime-dir, the build tree this
/// rwkvc was built in, or ../lib beside the rwkvc binary.
std::string findRuntimeDir(const char *argv0) {
  if (!runtimeDir.empty())
    return runtimeDir;
  SmallVector<std::string, 2> candidates = {RWKVC_RUNTIME_LIB_DIR};
  std::string exe = sys::fs::getMainExecutable(argv0, (void *)&findRuntimeDir);
  SmallString<256> rel(sys::path::parent_path(sys::path::parent_path(exe)));
  sys::path::append(rel, "lib");
  candidates.push_back(std::string(rel));
  for (const std::string &dir : candidates) {
    SmallString<256> lib(dir);
    sys::path::append(lib, "librwkv_runtime.a");
    if (sys::fs::exists(lib))
      return dir;
  }
  return {};
}

/// Runs a program; its output goes to our stderr on failure.
Error run(StringRef program, ArrayRef<StringRef> args) {
  std::string message;
  if (verbose) {
    errs() << "rwkvc: running";
    for (StringRef a : args)
      errs() << " " << a;
    errs() << "\n";
  }
  int rc = sys::ExecuteAndWait(program, args, std::nullopt, {}, 0, 0,
                               &message);
  if (rc != 0)
    return createStringError(formatv("{0} failed ({1}){2}", program, rc,
                                     message.empty() ? "" : ": " + message));
  return Error::success();
}

Expected<std::string> findClang() {
  for (StringRef candidate : {StringRef(RWKVC_CLANGXX), StringRef("clang++-22"),
                              StringRef("clang++")}) {
    if (sys::fs::can_execute(candidate))
      return candidate.str();
    if (auto path = sys::findProgramByName(candidate))
      return *path;
  }
  return createStringError("no clang++ found to link the executable "
                           "(install clang-22)");
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  // -mlir-print-debuginfo shows the importer's locations (checkpoint tensors).
  mlir::registerAsmPrinterCLOptions();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "rwkvc: ahead-of-time compiler for RWKV language models\n\n"
      "  rwkvc MODEL -o NAME         compile MODEL into the executable NAME\n"
      "  rwkvc MODEL -emit=STAGE     stop at a stage (mlir, fused, loops,\n"
      "                              llvm-dialect, llvm-ir, asm, obj)\n"
      "  rwkvc MODEL -emit=shared-lib -o libNAME.so\n"
      "                              the C API of runtime/rwkv_runtime.h\n"
      "  rwkvc --inspect MODEL       describe a checkpoint\n\n"
      "MODEL is a BlinkDL .pth, a .safetensors or an rwkv.cpp .bin "
      "(RWKV-4, 5.x, 6, 7).\n"
      "Run ./NAME --help for what a compiled model can do.\n");
  Progress progress;

  progress.step("read " + sys::path::filename(inputPath));
  auto ckpt = rwkvc::readCheckpoint(inputPath);
  if (!ckpt)
    return fail(toString(ckpt.takeError()));
  auto info = rwkvc::describeModel(**ckpt);
  if (!info)
    return fail(toString(info.takeError()));

  if (inspect) {
    progress.finish();
    rwkvc::printInspectReport(outs(), **ckpt, *info);
    return 0;
  }
  if (info->nonFiniteValues && !force)
    return fail(Twine(inputPath) + ": " + Twine(info->nonFiniteValues) +
                " weight values are NaN or Inf (see --inspect); "
                "use --force to compile anyway");

  progress.step("import to the rwkv dialect");
  mlir::MLIRContext context;
  context.loadDialect<mlir::rwkv::RWKVDialect, mlir::func::FuncDialect>();
  rwkvc::ImportOptions options;
  options.groupNormEpsilon = groupNormEps;
  options.useTimeState = !noTimeState;
  auto imported = rwkvc::importModel(context, **ckpt, *info, options);
  if (!imported)
    return fail(toString(imported.takeError()));
  mlir::ModuleOp module = **imported;
  auto printModule = [&](raw_ostream &os) { module->print(os); os << "\n"; };
  if (emit == Stage::Mlir)
    return writeText(printModule);

  if (weightType != "keep" && weightType != "f32" && weightType != "f16" &&
      weightType != "bf16")
    return fail("--weight-type must be keep, f32, f16 or bf16, not '" +
                weightType + "'");
  progress.step("rwkv passes");
  mlir::PassManager pm(&context);
  if (emit == Stage::Fused) {
    mlir::rwkv::buildRWKVOptimizePipeline(pm);
    if (!noFuse)
      mlir::rwkv::cpu::buildCPUFusions(pm);
  } else if (emit == Stage::Loops) {
    mlir::rwkv::cpu::buildCPUPipelineToLoops(pm, !noFuse, weightType);
  } else {
    mlir::rwkv::cpu::buildCPUPipeline(pm, !noFuse, weightType);
  }
  if (mlir::failed(pm.run(module)))
    return fail(Twine(inputPath) + ": the compilation pipeline failed");
  if (emit <= Stage::LLVMDialect)
    return writeText(printModule);

  auto layout = rwkvc::readModelLayout(module);
  if (!layout)
    return fail(toString(layout.takeError()));
  progress.step("pack weights");
  auto image = rwkvc::packWeights(*layout, **ckpt);
  if (!image)
    return fail(toString(image.takeError()));

  // The tokenizer (exe and shared-lib only).
  std::vector<uint8_t> tokenizerBlob;
  if (emit >= Stage::Exe) {
    std::string spec = tokenizerSpec;
    bool chosen = !spec.empty();
    if (!chosen)
      spec = rwkvc::defaultTokenizerFor(info->vocab);
    if (!spec.empty()) {
      auto blob = rwkvc::compileTokenizerFound(
          spec, info->vocab, tokenizerDir,
          sys::fs::getMainExecutable(argv[0], (void *)&findRuntimeDir));
      if (blob) {
        tokenizerBlob = std::move(*blob);
      } else if (chosen) {
        return fail(toString(blob.takeError()));
      } else {
        WithColor::warning(errs(), "rwkvc")
            << "no tokenizer linked (the executable takes token ids only): "
            << toString(blob.takeError()) << "\n";
      }
    }
  }

  std::string name = outputPath;
  if (name.empty())
    name = emit == Stage::SharedLib
               ? ("lib" + sys::path::stem(inputPath) + ".so").str()
               : sys::path::stem(inputPath).str();
  rwkvc::ModelInfoForABI abi;
  abi.rwkvVersion = rwkvc::versionName(info->version).str();
  abi.modelName = sys::path::filename(inputPath).str();
  abi.nVocab = info->vocab;
  abi.nEmbd = info->nEmbd;
  abi.nLayer = info->nLayer;
  abi.hash = rwkvc::modelHash(*layout, *image);
  abi.weightsEmbedded = !weightsFile;
  abi.weightsFile = (sys::path::filename(name) + ".weights").str();

  progress.step("LLVM IR and O3");
  rwkvc::CPUTarget target{"", targetCPU, targetFeatures};
  auto machine = rwkvc::createTargetMachine(target);
  if (!machine)
    return fail(toString(machine.takeError()));
  llvm::LLVMContext llvmContext;
  auto llvmModule = rwkvc::translateToLLVMIR(module, llvmContext, *layout,
                                             abi, **machine);
  if (!llvmModule)
    return fail(toString(llvmModule.takeError()));
  rwkvc::optimizeModule(**llvmModule, **machine);
  if (emit == Stage::LLVMIR)
    return writeText([&](raw_ostream &os) { (*llvmModule)->print(os, nullptr); });

  if (emit == Stage::Asm || emit == Stage::Obj) {
    progress.step("code generation");
    std::error_code ec;
    std::string path = outputPath.empty() ? std::string("-") : std::string(outputPath);
    ToolOutputFile out(path, ec,
                       emit == Stage::Asm ? sys::fs::OF_Text : sys::fs::OF_None);
    if (ec)
      return fail(path + ": " + ec.message());
    if (Error e = rwkvc::emitCode(
            **llvmModule, **machine, out.os(),
            emit == Stage::Asm ? CodeGenFileType::AssemblyFile
                               : CodeGenFileType::ObjectFile))
      return fail(toString(std::move(e)));
    out.keep();
    return 0;
  }

  // The executable: model object + weight image + runtime.
  progress.step("code generation");
  SmallString<128> tmpDir;
  if (std::error_code ec = sys::fs::createUniqueDirectory("rwkvc", tmpDir))
    return fail("cannot create a temporary directory: " + ec.message());
  llvm::scope_exit cleanup([&] { sys::fs::remove_directories(tmpDir); });
  SmallString<256> objPath(tmpDir), weightsObj(tmpDir), weightsBin(tmpDir),
      weightsAsm(tmpDir);
  sys::path::append(objPath, "model.o");
  sys::path::append(weightsBin, "weights.bin");
  sys::path::append(weightsAsm, "weights.s");
  sys::path::append(weightsObj, "weights.o");
  {
    std::error_code ec;
    ToolOutputFile out(objPath, ec, sys::fs::OF_None);
    if (ec)
      return fail(Twine(objPath) + ": " + ec.message());
    if (Error e = rwkvc::emitCode(**llvmModule, **machine, out.os(),
                                  CodeGenFileType::ObjectFile))
      return fail(toString(std::move(e)));
    out.keep();
  }

  progress.step("write weights");
  auto writeImage = [&](StringRef path) -> Error {
    std::error_code ec;
    raw_fd_ostream os(path, ec, sys::fs::OF_None);
    if (ec)
      return createStringError(path + ": " + ec.message());
    os.write(reinterpret_cast<const char *>(image->data()), image->size());
    os.close();
    if (os.has_error())
      return createStringError(path + ": write failed");
    return Error::success();
  };
  std::string sidecar = name + ".weights";
  if (weightsFile) {
    if (Error e = writeImage(sidecar))
      return fail(toString(std::move(e)));
  } else {
    if (Error e = writeImage(weightsBin))
      return fail(toString(std::move(e)));
    std::error_code ec;
    raw_fd_ostream s(weightsAsm, ec, sys::fs::OF_Text);
    if (ec)
      return fail(Twine(weightsAsm) + ": " + ec.message());
    s << rwkvc::embedFileAssembly("rwkv_weights_blob", weightsBin, 4096);
  }

  SmallString<256> tokenizerBin(tmpDir), tokenizerAsm(tmpDir),
      tokenizerObj(tmpDir);
  sys::path::append(tokenizerBin, "tokenizer.bin");
  sys::path::append(tokenizerAsm, "tokenizer.s");
  sys::path::append(tokenizerObj, "tokenizer.o");
  if (!tokenizerBlob.empty()) {
    std::error_code ec;
    raw_fd_ostream bin(tokenizerBin, ec, sys::fs::OF_None);
    if (ec)
      return fail(Twine(tokenizerBin) + ": " + ec.message());
    bin.write(reinterpret_cast<const char *>(tokenizerBlob.data()),
              tokenizerBlob.size());
    raw_fd_ostream s(tokenizerAsm, ec, sys::fs::OF_Text);
    if (ec)
      return fail(Twine(tokenizerAsm) + ": " + ec.message());
    s << rwkvc::tokenizerBlobAssembly(tokenizerBin);
  }

  progress.step("link " + name);
  auto clang = findClang();
  if (!clang)
    return fail(toString(clang.takeError()));
  std::string rtDir = findRuntimeDir(argv[0]);
  if (rtDir.empty())
    return fail("cannot find the runtime libraries (librwkv_runtime.a); "
                "use --runtime-dir");
  if (!weightsFile) {
    if (Error e = run(*clang, {*clang, "-c", weightsAsm, "-o", weightsObj}))
      return fail(toString(std::move(e)));
  }
  std::string libFlag = "-L" + rtDir;
  if (!tokenizerBlob.empty()) {
    if (Error e =
            run(*clang, {*clang, "-c", tokenizerAsm, "-o", tokenizerObj}))
      return fail(toString(std::move(e)));
  }
  SmallVector<StringRef> args = {*clang, "-fuse-ld=lld", objPath};
  if (!weightsFile)
    args.push_back(weightsObj);
  if (!tokenizerBlob.empty())
    args.push_back(tokenizerObj);
  args.push_back(libFlag);
  if (emit == Stage::SharedLib)
    // Every runtime function is exported: the library is the C API.
    args.append({"-shared", "-Wl,--whole-archive", "-lrwkv_runtime",
                 "-Wl,--no-whole-archive"});
  else
    args.append({"-lrwkv_runtime_main", "-lrwkv_runtime"});
  args.append({"-lm", "-o", name});
  // A sanitized runtime (RWKVC_SANITIZE) lists the flags its users link with.
  auto linkFlags = MemoryBuffer::getFile(rtDir + "/rwkv_runtime_link_flags");
  if (linkFlags)
    SplitString((*linkFlags)->getBuffer(), args);
  if (Error e = run(*clang, args))
    return fail(toString(std::move(e)));
  return 0;
}
