//===- rwkvc.cpp - The rwkvc compiler driver ------------------------------===//
//
// rwkvc MODEL -o NAME [-emit=STAGE] | rwkvc --inspect MODEL
//
// Reads a checkpoint (.pth, .safetensors, rwkv.cpp .bin), checks it, imports
// it into the rwkv dialect and compiles it, stopping at the stage -emit
// names:
//
//   checkpoint ─frontend─▶ mlir ─rwkv-optimize-pipeline, fusions─▶ fused
//     ─rwkv-assign-layout, the target's lowering─▶ loops ─▶ llvm-dialect
//     ─Target::emit (translate + ABI + O3)─▶ llvm-ir │ asm │ obj
//     ─+ weight image + runtime, linked by clang/lld─▶ exe
//
// This file only parses the command line; the stages are functions of
// Compiler.h and the targets sit behind codegen/Target.h (--target).
//
//===----------------------------------------------------------------------===//

#include "Compiler.h"
#include "codegen/WeightImage.h"
#include "frontend/Importer.h"
#include "frontend/Report.h"
#include "passes/Passes.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
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
  Cuda,
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
        clEnumValN(Stage::Cuda, "cuda",
                   "the CUDA C++ kernels and launch plan (--target=cuda)"),
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
cl::opt<std::string> targetName(
    "target",
    cl::desc("The backend to compile for (see the list of targets below)"),
    cl::value_desc("NAME"), cl::init("cpu"), cl::cat(category));
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
cl::list<std::string> cudaArchs(
    "cuda-arch",
    cl::desc("GPU architectures to build cubins for (--target=cuda; "
             "default: sm_80,sm_86,sm_89,sm_90)"),
    cl::value_desc("sm_XY,..."), cl::CommaSeparated, cl::cat(category));
cl::opt<std::string> cudaPTXArch(
    "cuda-ptx-arch",
    cl::desc("Virtual architecture of the PTX embedded for newer GPUs "
             "(--target=cuda; default compute_90; 'none' for no PTX)"),
    cl::value_desc("compute_XY"), cl::cat(category));
cl::opt<bool> cudaEmulator(
    "cuda-emulator",
    cl::desc("--target=cuda: compile the kernels as host C++ for the CUDA "
             "emulator (docs/cuda-emulator.md) instead of NVRTC; the model "
             "then runs with RWKV_CUDA_LIBRARY=libcuda-emu.so.1, without a "
             "GPU (for tests)"),
    cl::cat(category));
cl::opt<bool> weightsFile(
    "weights-file",
    cl::desc("Write the packed weights to NAME.weights beside the "
             "executable (memory-mapped at run time) instead of embedding "
             "them (the default for images above 2 GiB; "
             "--weights-file=false embeds those too)"),
    cl::cat(category));
cl::opt<uint64_t> embedWeightsLimit(
    "embed-weights-limit",
    cl::desc("Images above this many bytes go to NAME.weights unless "
             "--weights-file=false (for tests; default 2 GiB)"),
    cl::init(rwkvc::kEmbeddedWeightsLimit), cl::Hidden, cl::cat(category));
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
cl::opt<mlir::rwkv::WeightType> weightType(
    "weight-type", cl::desc("Storage type of the weight matrices"),
    cl::init(mlir::rwkv::WeightType::keep), mlir::rwkv::weightTypeValues(),
    cl::cat(category));
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
/// A choice the compiler makes by the model's size unless told (auto).
enum class AutoOnOff { Auto, On, Off };
/// Its values, `auto` described as `byWhat`.
cl::ValuesClass autoOnOff(const char *byWhat) {
  return cl::values(clEnumValN(AutoOnOff::Auto, "auto", byWhat),
                    clEnumValN(AutoOnOff::On, "on", "always"),
                    clEnumValN(AutoOnOff::Off, "off", "never"));
}
cl::opt<AutoOnOff> batchEntry(
    "batch-entry",
    cl::desc("The batched decode entry (rwkv_model_forward_batch: B "
             "sequences per call, each weight read once for all; what "
             "--serve batches with). auto: for models of at least 32 MiB of "
             "weights, whose decode streams them from memory; smaller ones "
             "compile about 1 s faster without it"),
    autoOnOff("by the model's size"), cl::init(AutoOnOff::Auto),
    cl::cat(category));
cl::opt<AutoOnOff> streamWeights(
    "stream-weights",
    cl::desc("Decode's code for weights that stream from memory every token "
             "(products in tiles of one row, one linear stream each, and "
             "prefetches ahead). auto: for weight images over 64 MiB, which "
             "do not stay in the last-level cache from token to token; on "
             "and off force it (for tests and comparisons)"),
    autoOnOff("by the image's size"), cl::init(AutoOnOff::Auto),
    cl::cat(category));
cl::opt<unsigned> codegenThreads(
    "codegen-threads",
    cl::desc("Threads for LLVM's optimization and code generation of an "
             "executable or shared library: one object per entry point, "
             "compiled in parallel (default 0: one per hardware thread; 1: "
             "one object)"),
    cl::value_desc("N"), cl::init(0), cl::cat(category));
cl::opt<bool> verifyEach(
    "verify-each",
    cl::desc("Verify the module after each pass of the pipeline (by default "
             "only after the whole pipeline)"),
    cl::cat(category));
cl::opt<bool> verbose("v", cl::desc("Print each stage and its time"),
                      cl::cat(category));
cl::opt<std::string> runtimeDir(
    "runtime-dir",
    cl::desc("Directory holding librwkv_runtime.a and librwkv_runtime_main.a"),
    cl::cat(category));

/// The pipeline's options from the command line; the batch entry's `auto`
/// from the size of the checkpoint's tensors.
mlir::rwkv::PipelineOptions pipelineOptions(const rwkvc::Checkpoint &ckpt) {
  constexpr uint64_t kBatchEntryBytes = 32ull << 20;
  uint64_t bytes = 0;
  for (const rwkvc::Tensor &t : ckpt.tensors)
    bytes += t.nbytes;
  mlir::rwkv::PipelineOptions options;
  options.fuse = !noFuse;
  options.weightType = weightType;
  options.targetCPU = targetCPU;
  options.targetFeatures = targetFeatures;
  options.batchEntry = batchEntry == AutoOnOff::On ||
                       (batchEntry == AutoOnOff::Auto &&
                        bytes >= kBatchEntryBytes);
  options.streamWeights = streamWeights == AutoOnOff::On    ? "on"
                          : streamWeights == AutoOnOff::Off ? "off"
                                                            : "auto";
  return options;
}

int fail(const Twine &message) {
  WithColor::error(errs(), "rwkvc") << message << "\n";
  return 1;
}

/// Prints each stage and its time: with -v, or when stderr is a terminal
/// (long compiles of large models show where they are). On a terminal, long
/// steps that report their bytes show a bar; -v ends with the memory used.
class Progress {
public:
  Progress()
      : terminal(sys::Process::StandardErrIsDisplayed()),
        enabled(verbose || terminal) {}
  void step(const Twine &what) {
    finish();
    if (!enabled)
      return;
    current = what.str();
    start = std::chrono::steady_clock::now();
  }
  /// `done` of `total` bytes of the current step (from any thread, one call
  /// at a time): a bar with the rate, redrawn ten times a second.
  void bar(uint64_t done, uint64_t total) {
    if (!terminal || current.empty())
      return;
    auto now = std::chrono::steady_clock::now();
    if (done < total && now - lastBar < std::chrono::milliseconds(100))
      return;
    lastBar = now;
    double seconds = std::chrono::duration<double>(now - start).count();
    constexpr int width = 30;
    int filled = total ? int(width * double(done) / double(total)) : width;
    constexpr double MiB = 1 << 20;
    errs() << formatv("\r\x1b[Krwkvc: {0} [{1}{2}] {3:f0}/{4:f0} MiB, "
                      "{5:f0} MiB/s",
                      current, std::string(filled, '#'),
                      std::string(width - filled, '.'), done / MiB,
                      total / MiB, seconds > 0 ? done / MiB / seconds : 0.0);
    barShown = true;
  }
  void finish() {
    if (barShown)
      errs() << "\r\x1b[K";
    barShown = false;
    if (!enabled || current.empty())
      return;
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    errs() << formatv("rwkvc: {0,-40} {1,8:f1} ms\n", current, ms);
    current.clear();
  }
  ~Progress() {
    finish();
    if (verbose)
      printMemory();
  }

private:
  /// Peak and current resident memory (Linux: /proc/self/status), the
  /// current split into anonymous and file-backed pages (the mapped
  /// checkpoint).
  static void printMemory() {
    auto status = MemoryBuffer::getFileAsStream("/proc/self/status");
    if (!status)
      return;
    StringMap<std::string> fields;
    SmallVector<StringRef> lines;
    (*status)->getBuffer().split(lines, '\n');
    for (StringRef line : lines) {
      auto [key, value] = line.split(':');
      fields[key] = value.trim().str();
    }
    errs() << formatv("rwkvc: memory: peak RSS {0}; at exit RSS {1} = {2} "
                      "anonymous + {3} file-backed\n",
                      fields["VmHWM"], fields["VmRSS"], fields["RssAnon"],
                      fields["RssFile"]);
  }

  bool terminal, enabled;
  bool barShown = false;
  std::string current;
  std::chrono::steady_clock::time_point start, lastBar;
};

/// "1.9 MiB", "3.0 GiB".
std::string sizeText(uint64_t bytes) {
  if (bytes >= (uint64_t(1) << 30))
    return formatv("{0:f1} GiB", bytes / double(1 << 30)).str();
  return formatv("{0:f1} MiB", bytes / double(1 << 20)).str();
}

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

/// The --help text: usage and the targets built in.
std::string overview() {
  std::string text =
      "rwkvc: ahead-of-time compiler for RWKV language models\n\n"
      "  rwkvc MODEL -o NAME         compile MODEL into the executable NAME\n"
      "  rwkvc MODEL -emit=STAGE     stop at a stage (mlir, fused, loops,\n"
      "                              llvm-dialect, cuda, llvm-ir, asm, obj)\n"
      "  rwkvc MODEL --target=cuda -o NAME\n"
      "                              the same for NVIDIA GPUs (NVRTC)\n"
      "  rwkvc MODEL -emit=shared-lib -o libNAME.so\n"
      "                              the C API of runtime/rwkv_runtime.h\n"
      "  rwkvc --inspect MODEL       describe a checkpoint\n\n"
      "MODEL is a BlinkDL .pth, a .safetensors or an rwkv.cpp .bin "
      "(RWKV-4, 5.x, 6, 7).\n"
      "Run ./NAME --help for what a compiled model can do.\n"
      "MLIR's pass-manager options apply to the pipeline: --mlir-timing,\n"
      "--mlir-print-ir-after-all, --mlir-print-ir-after=PASS, ...\n\n"
      "Targets (--target):\n";
  for (const rwkvc::Target *t : rwkvc::TargetRegistry::all())
    text += formatv("  {0,-26}  {1}\n", t->name(), t->description()).str();
  return text;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  rwkvc::registerBuiltinTargets();
  // --mlir-timing, --mlir-print-ir-after-all, ... apply to the pipeline.
  mlir::registerPassManagerCLOptions();
  mlir::registerDefaultTimingManagerCLOptions();
  mlir::registerMLIRContextCLOptions();
  // -mlir-print-debuginfo shows the importer's locations (checkpoint tensors).
  mlir::registerAsmPrinterCLOptions();
  cl::HideUnrelatedOptions(category);
  std::string help = overview();
  cl::ParseCommandLineOptions(argc, argv, help);
  // --mlir-timing: the report is printed when `timing` goes out of scope.
  mlir::DefaultTimingManager timing;
  mlir::applyDefaultTimingManagerCLOptions(timing);
  mlir::TimingScope timingRoot = timing.getRootScope();
  Progress progress;

  progress.step("read " + sys::path::filename(inputPath));
  // A compile that packs the weights counts their NaN and Inf values as it
  // packs them (one read of the checkpoint); the other stages count first.
  bool packs = !inspect && emit >= Stage::LLVMIR;
  auto model = rwkvc::readModel(inputPath, /*scanValues=*/!packs);
  if (!model)
    return fail(toString(model.takeError()));
  const rwkvc::ModelInfo &info = model->info;
  const rwkvc::Checkpoint &ckpt = *model->checkpoint;

  if (inspect) {
    progress.finish();
    rwkvc::printInspectReport(outs(), ckpt, info);
    return 0;
  }
  if (info.nonFiniteValues && !force)
    return fail(Twine(inputPath) + ": " + Twine(info.nonFiniteValues) +
                " weight values are NaN or Inf (see --inspect); "
                "use --force to compile anyway");
  auto target = rwkvc::TargetRegistry::lookup(targetName);
  if (!target)
    return fail("--target: " + toString(target.takeError()));

  progress.step("import to the rwkv dialect");
  mlir::MLIRContext context;
  context.loadDialect<mlir::rwkv::RWKVDialect, mlir::func::FuncDialect>();
  rwkvc::ImportOptions options;
  options.groupNormEpsilon = groupNormEps;
  options.useTimeState = !noTimeState;
  auto imported = rwkvc::importModel(context, ckpt, info, options);
  if (!imported)
    return fail(toString(imported.takeError()));
  mlir::ModuleOp module = **imported;
  auto printModule = [&](raw_ostream &os) { module->print(os); os << "\n"; };
  if (emit == Stage::Mlir)
    return writeText(printModule);

  progress.step("rwkv passes");
  rwkvc::PipelineStop stop = emit == Stage::Fused   ? rwkvc::PipelineStop::Fused
                             : emit == Stage::Loops ? rwkvc::PipelineStop::Lowered
                                                    : rwkvc::PipelineStop::Final;
  if (mlir::failed(rwkvc::runPipeline(
          module, *target, pipelineOptions(ckpt),
          stop,
          [&](mlir::PassManager &pm) {
            pm.enableTiming(timingRoot);
            pm.enableVerifier(verifyEach);
            return mlir::applyPassManagerCLOptions(pm);
          })))
    return fail(Twine(inputPath) + ": the compilation pipeline failed");
  if (emit <= Stage::LLVMDialect)
    return writeText(printModule);

  auto layout = rwkvc::readModelLayout(module);
  if (!layout)
    return fail(toString(layout.takeError()));
  rwkvc::MachineOptions machine;
  machine.cpu = targetCPU;
  machine.features = targetFeatures;
  machine.cudaArchs.assign(cudaArchs.begin(), cudaArchs.end());
  machine.cudaPTXArch = cudaPTXArch;
  machine.cudaEmulator = cudaEmulator;
  machine.threads = codegenThreads;
  if (cudaEmulator) {
    machine.cudaEmulatorInclude = RWKVC_CUDA_EMU_INCLUDE_DIR;
    if (auto clang = rwkvc::findClang())
      machine.cudaEmulatorCompiler = *clang;
    else
      return fail(toString(clang.takeError()));
  }
  if (emit == Stage::Cuda) {
    progress.step("CUDA kernels");
    std::error_code ec;
    std::string path =
        outputPath.empty() ? std::string("-") : std::string(outputPath);
    ToolOutputFile out(path, ec, sys::fs::OF_Text);
    if (ec)
      return fail(path + ": " + ec.message());
    rwkvc::ModelInfoForABI none;
    if (Error e = target->emit(module, *layout, none, machine,
                               rwkvc::ArtifactKind::Source, out.os()))
      return fail(toString(std::move(e)));
    out.keep();
    return 0;
  }
  std::string name = outputPath;
  if (name.empty())
    name = emit == Stage::SharedLib
               ? ("lib" + sys::path::stem(inputPath) + ".so").str()
               : sys::path::stem(inputPath).str();

  // Where the image goes: NAME.weights, an object linked into NAME, or
  // nowhere (-emit=obj and the like only need its hash).
  bool linking = emit >= Stage::Exe;
  bool weightsBeside = weightsFile;
  uint64_t imageBytes = uint64_t(layout->weightsBytes);
  if (linking && !weightsFile.getNumOccurrences() &&
      imageBytes > embedWeightsLimit) {
    weightsBeside = true;
    WithColor::note(errs(), "rwkvc")
        << formatv("the weight image ({0}) is larger than {1}: writing "
                   "{2}.weights beside {2} instead of embedding it "
                   "(--weights-file=false embeds it)\n",
                   sizeText(imageBytes), sizeText(embedWeightsLimit), name);
  }
  SmallString<128> tmpDir;
  if (linking || cudaEmulator)
    if (std::error_code ec = sys::fs::createUniqueDirectory("rwkvc", tmpDir))
      return fail("cannot create a temporary directory: " + ec.message());
  llvm::scope_exit removeTmpDir([&] {
    if (!tmpDir.empty())
      sys::fs::remove_directories(tmpDir);
  });
  rwkvc::WeightImageOutput weightsOut;
  if (linking && weightsBeside) {
    weightsOut.kind = rwkvc::WeightImageOutput::File;
    weightsOut.path = name + ".weights";
  } else if (linking) {
    weightsOut.kind = rwkvc::WeightImageOutput::Object;
    weightsOut.path = (tmpDir + "/weights.o").str();
  }
  progress.step("pack weights");
  rwkvc::PackOptions packOptions;
  packOptions.progress = [&](uint64_t done, uint64_t total) {
    progress.bar(done, total);
  };
  auto hash = rwkvc::writeWeightImage(*layout, ckpt, weightsOut, packOptions,
                                      /*refuseNonFinite=*/!force);
  if (!hash)
    return fail(toString(hash.takeError()));

  // The tokenizer (exe and shared-lib only).
  std::vector<uint8_t> tokenizerBlob;
  if (linking) {
    auto blob = rwkvc::selectTokenizer(
        tokenizerSpec, info.vocab, tokenizerDir,
        sys::fs::getMainExecutable(argv[0], (void *)&overview));
    if (!blob)
      return fail(toString(blob.takeError()));
    tokenizerBlob = std::move(*blob);
  }

  machine.tmpDir = std::string(tmpDir);
  rwkvc::ModelInfoForABI abi = rwkvc::describeForABI(
      *model, inputPath, rwkvc::modelHash(*layout, *hash), !weightsBeside,
      (sys::path::filename(name) + ".weights").str());

  if (emit == Stage::LLVMIR || emit == Stage::Asm || emit == Stage::Obj) {
    progress.step("LLVM IR and code generation");
    std::error_code ec;
    std::string path = outputPath.empty() ? std::string("-") : std::string(outputPath);
    ToolOutputFile out(path, ec,
                       emit == Stage::Obj ? sys::fs::OF_None : sys::fs::OF_Text);
    if (ec)
      return fail(path + ": " + ec.message());
    rwkvc::ArtifactKind kind = emit == Stage::LLVMIR ? rwkvc::ArtifactKind::IR
                               : emit == Stage::Asm  ? rwkvc::ArtifactKind::Assembly
                                                     : rwkvc::ArtifactKind::Object;
    if (Error e = target->emit(module, *layout, abi, machine, kind, out.os()))
      return fail(toString(std::move(e)));
    out.keep();
    return 0;
  }

  rwkvc::LinkJob job;
  job.target = &*target;
  job.module = module;
  job.layout = &*layout;
  job.abi = abi;
  job.machine = machine;
  if (weightsOut.kind == rwkvc::WeightImageOutput::Object)
    job.weightsObject = weightsOut.path;
  job.tokenizerBlob = tokenizerBlob;
  job.sharedLib = emit == Stage::SharedLib;
  job.output = name;
  job.tmpDir = std::string(tmpDir);
  job.runtimeDir = rwkvc::findRuntimeDir(runtimeDir, argv[0]);
  job.verbose = verbose;
  job.step = [&](const Twine &what) { progress.step(what); };
  if (Error e = rwkvc::linkModel(job))
    return fail(toString(std::move(e)));
  return 0;
}
