//===- rwkvc.cpp - The rwkvc compiler driver ------------------------------===//
//
// rwkvc MODEL [-o NAME] [-emit=STAGE] | rwkvc --inspect MODEL
//
// Reads a checkpoint (.pth, .safetensors, rwkv.cpp .bin), checks it, imports
// it into the rwkv dialect and runs the pipeline, stopping at the stage that
// -emit names:
//
//   checkpoint --frontend--> rwkv (mlir) --rwkv-optimize-pipeline--> fused
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/Importer.h"
#include "frontend/Model.h"
#include "frontend/Report.h"
#include "passes/Pipelines.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace llvm;

namespace {

enum class Stage { Mlir, Fused };

cl::OptionCategory category("rwkvc options");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("MODEL"),
                               cl::Required, cl::cat(category));
cl::opt<std::string> outputPath("o", cl::desc("Output file ('-' for stdout)"),
                                cl::value_desc("NAME"), cl::init("-"),
                                cl::cat(category));
cl::opt<bool> inspect("inspect",
                      cl::desc("Print the checkpoint's format, version, "
                               "hyper-parameters and anomalies, then exit"),
                      cl::cat(category));
cl::opt<Stage> emit(
    "emit", cl::desc("Stop after this stage and write its output"),
    cl::values(clEnumValN(Stage::Mlir, "mlir",
                          "the imported rwkv dialect module"),
               clEnumValN(Stage::Fused, "fused",
                          "after the target-independent rwkv pipeline")),
    cl::init(Stage::Mlir), cl::cat(category));
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

int fail(const Twine &message) {
  WithColor::error(errs(), "rwkvc") << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv,
      "rwkvc: ahead-of-time compiler for RWKV language models\n\n"
      "  rwkvc MODEL -emit=mlir      print the imported rwkv module\n"
      "  rwkvc --inspect MODEL       describe a checkpoint\n\n"
      "MODEL is a BlinkDL .pth, a .safetensors or an rwkv.cpp .bin "
      "(RWKV-4, 5.x, 6, 7).\n");

  auto ckpt = rwkvc::readCheckpoint(inputPath);
  if (!ckpt)
    return fail(toString(ckpt.takeError()));
  auto info = rwkvc::describeModel(**ckpt);
  if (!info)
    return fail(toString(info.takeError()));

  if (inspect) {
    rwkvc::printInspectReport(outs(), **ckpt, *info);
    return 0;
  }
  if (info->nonFiniteValues && !force)
    return fail(Twine(inputPath) + ": " + Twine(info->nonFiniteValues) +
                " weight values are NaN or Inf (see --inspect); "
                "use --force to compile anyway");

  mlir::MLIRContext context;
  context.loadDialect<mlir::rwkv::RWKVDialect, mlir::func::FuncDialect>();
  rwkvc::ImportOptions options;
  options.groupNormEpsilon = groupNormEps;
  options.useTimeState = !noTimeState;
  auto module = rwkvc::importModel(context, **ckpt, *info, options);
  if (!module)
    return fail(toString(module.takeError()));

  if (emit >= Stage::Fused) {
    mlir::PassManager pm(&context);
    mlir::rwkv::buildRWKVOptimizePipeline(pm);
    if (mlir::failed(pm.run(**module)))
      return fail(Twine(inputPath) + ": the rwkv pipeline failed");
  }

  std::string error;
  auto out = mlir::openOutputFile(outputPath, &error);
  if (!out)
    return fail(error);
  (*module)->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}
