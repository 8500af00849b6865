//===- Compiler.h - The stages of rwkvc as a library --------------*- C++ -*-===//
//
//   readModel ─▶ importModel (frontend/) ─▶ runPipeline (a Target's) ─▶
//   readModelLayout (codegen/) ─▶ writeWeightImage (packWeights streamed
//   into NAME.weights or the weights object) ─▶ selectTokenizer ─▶
//   Target::emit ─▶ linkModel
//
// rwkvc's main() parses the command line and calls these in order, stopping
// where -emit says.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_TOOLS_RWKVC_COMPILER_H
#define RWKV_TOOLS_RWKVC_COMPILER_H

#include "codegen/Target.h"
#include "codegen/WeightImage.h"
#include "frontend/Checkpoint.h"
#include "frontend/Model.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/ADT/FunctionExtras.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rwkvc {

/// Registers every target built into this rwkvc (cpu; the next ones here)
/// and every pass, by name.
void registerBuiltinTargets();

/// A checkpoint, read and described.
struct LoadedModel {
  std::unique_ptr<Checkpoint> checkpoint;
  ModelInfo info;
};

/// Reads and describes the checkpoint at `path`; `scanValues`: count its
/// NaN and Inf values now (describeModel), else while packing.
llvm::Expected<LoadedModel> readModel(llvm::StringRef path,
                                      bool scanValues = true);

/// Runs `target`'s pipeline on `module` up to `stop` and verifies the
/// result; `configure` may set up the pass manager (timing, IR printing:
/// applyPassManagerCLOptions; enableVerifier to verify after each pass,
/// which is off by default).
mlir::LogicalResult
runPipeline(mlir::ModuleOp module, const Target &target,
            const mlir::rwkv::PipelineOptions &options, PipelineStop stop,
            llvm::function_ref<mlir::LogicalResult(mlir::PassManager &)>
                configure);

/// The tokenizer linked into an executable: `spec` (--tokenizer), or the
/// default for the vocabulary size, compiled with the vocabularies of
/// `tokenizerDir` (--tokenizer-dir) or, when that is empty, those bundled
/// with rwkvc beside `executable` (frontend/TokenizerFiles.h). An empty blob
/// (with a warning) when no default tokenizer can be built; an error when
/// the one asked for cannot.
llvm::Expected<std::vector<uint8_t>>
selectTokenizer(llvm::StringRef spec, int64_t vocab,
                llvm::StringRef tokenizerDir, llvm::StringRef executable);

/// What the descriptor says of `model`, read from `inputPath`, compiled
/// with `hash`, its weights embedded or in `weightsFile`.
ModelInfoForABI describeForABI(const LoadedModel &model,
                               llvm::StringRef inputPath, uint64_t hash,
                               bool weightsEmbedded,
                               llvm::StringRef weightsFile);

/// Writes `bytes` to `path`.
llvm::Error writeBytes(llvm::StringRef path, llvm::ArrayRef<uint8_t> bytes);

/// Weight images larger than this are written beside the executable
/// (--weights-file) unless the command line says otherwise: lld would copy
/// them once more, and above 2 GiB only x86-64's large data sections can
/// hold them.
constexpr uint64_t kEmbeddedWeightsLimit = uint64_t(2) << 30;

/// Where writeWeightImage puts the image.
struct WeightImageOutput {
  enum Kind {
    Hash,   // nowhere: only its hash is wanted (-emit=obj and the like)
    File,   // the weights file, NAME.weights (docs/runtime.md)
    Object, // an ELF object defining rwkv_weights_blob, for the link
  } kind = Hash;
  std::string path; // File, Object: where
};

/// Packs the weight image of `layout` from `ckpt` (packWeights) straight
/// into `output`, written under a temporary name and renamed into place
/// when complete. With `refuseNonFinite`, a source weight value that is NaN
/// or Inf discards the image and fails ("N weight values are NaN or Inf"). An Object above kEmbeddedWeightsLimit puts the image in
/// the large-data section (x86-64; an error elsewhere). Returns the image's
/// hash.
llvm::Expected<uint64_t> writeWeightImage(const ModelLayout &layout,
                                          const Checkpoint &ckpt,
                                          const WeightImageOutput &output,
                                          const PackOptions &options,
                                          bool refuseNonFinite = false);

/// Everything the link of an executable or shared library needs.
struct LinkJob {
  const Target *target = nullptr;
  mlir::ModuleOp module; // through the whole pipeline
  const ModelLayout *layout = nullptr;
  ModelInfoForABI abi;
  MachineOptions machine;
  std::string weightsObject;             // from writeWeightImage; empty:
                                         // NAME.weights, not linked
  llvm::ArrayRef<uint8_t> tokenizerBlob; // empty: none linked
  bool sharedLib = false;
  std::string output;     // NAME
  std::string tmpDir;     // an existing directory for the intermediate files
  std::string runtimeDir; // where librwkv_runtime*.a are
  bool verbose = false;   // print the commands run
  std::function<void(const llvm::Twine &)> step; // progress, may be empty
};

/// Emits the model object, embeds the tokenizer and links them, with the
/// weights object when there is one, with the runtime by clang++ with lld.
llvm::Error linkModel(const LinkJob &job);

/// The clang++ that links models (and compiles the CUDA emulator's
/// kernels): the one rwkvc was built with, else clang++-22 or clang++.
llvm::Expected<std::string> findClang();

/// Where the runtime libraries are: `runtimeDir` if given, the build tree
/// this rwkvc was built in, or ../lib beside the rwkvc binary (empty when
/// none has librwkv_runtime.a).
std::string findRuntimeDir(llvm::StringRef runtimeDir, const char *argv0);

} // namespace rwkvc

#endif // RWKV_TOOLS_RWKVC_COMPILER_H
