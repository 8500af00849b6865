//===- Compiler.cpp - The stages of rwkvc as a library --------------------===//

#include "Compiler.h"

#include "codegen/cpu/CPUTarget.h"
#include "codegen/cuda/CUDATarget.h"
#include "frontend/EmbedFile.h"
#include "passes/Passes.h"
#include "frontend/Tokenizer.h"
#include "frontend/TokenizerFiles.h"
#include "runtime/rwkv_abi.h"

#include "mlir/IR/Verifier.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

#include <cstring>

using namespace llvm;

namespace rwkvc {

void registerBuiltinTargets() {
  // The passes by name, for --mlir-print-ir-after=PASS and the like.
  mlir::rwkv::registerRWKVPasses();
  registerCPUTarget();
  registerCUDATarget();
}

Expected<LoadedModel> readModel(StringRef path, bool scanValues) {
  auto ckpt = readCheckpoint(path);
  if (!ckpt)
    return ckpt.takeError();
  auto info = describeModel(**ckpt, scanValues);
  if (!info)
    return info.takeError();
  return LoadedModel{std::move(*ckpt), std::move(*info)};
}

mlir::LogicalResult
runPipeline(mlir::ModuleOp module, const Target &target,
            const mlir::rwkv::PipelineOptions &options, PipelineStop stop,
            function_ref<mlir::LogicalResult(mlir::PassManager &)> configure) {
  mlir::PassManager pm(module.getContext());
  // The whole module is verified once, after the pipeline: verifying it
  // after every pass (the pass manager's default, --verify-each) was 45% of
  // the pipeline's instructions on the tiny models. `configure` may turn
  // that back on.
  pm.enableVerifier(false);
  if (mlir::failed(configure(pm)))
    return mlir::failure();
  target.buildPipeline(pm, options, stop);
  if (mlir::failed(pm.run(module)))
    return mlir::failure();
  return mlir::verify(module);
}

Expected<std::vector<uint8_t>> selectTokenizer(StringRef tokenizerSpec,
                                               int64_t vocab,
                                               StringRef tokenizerDir,
                                               StringRef executable) {
  std::vector<uint8_t> tokenizerBlob;
  std::string spec = tokenizerSpec.str();
  bool chosen = !spec.empty();
  if (!chosen)
    spec = defaultTokenizerFor(vocab);
  if (!spec.empty()) {
    auto blob = compileTokenizerFound(spec, vocab, tokenizerDir, executable);
    if (blob) {
      tokenizerBlob = std::move(*blob);
    } else if (chosen) {
      return blob.takeError();
    } else {
      WithColor::warning(errs(), "rwkvc")
          << "no tokenizer linked (the executable takes token ids only): "
          << toString(blob.takeError()) << "\n";
    }
  }
  return tokenizerBlob;
}

ModelInfoForABI describeForABI(const LoadedModel &model, StringRef inputPath,
                               uint64_t hash, bool weightsEmbedded,
                               StringRef weightsFile) {
  ModelInfoForABI abi;
  abi.rwkvVersion = versionName(model.info.version).str();
  abi.modelName = sys::path::filename(inputPath).str();
  abi.nVocab = model.info.vocab;
  abi.nEmbd = model.info.nEmbd;
  abi.nLayer = model.info.nLayer;
  abi.hash = hash;
  abi.weightsEmbedded = weightsEmbedded;
  abi.weightsFile = weightsFile.str();
  return abi;
}

Error writeBytes(StringRef path, ArrayRef<uint8_t> bytes) {
  std::error_code ec;
  raw_fd_ostream os(path, ec, sys::fs::OF_None);
  if (ec)
    return createStringError(path + ": " + ec.message());
  os.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  os.close();
  if (os.has_error())
    return createStringError(path + ": write failed");
  return Error::success();
}

/// Runs a program; its output goes to our stderr on failure.
static Error run(StringRef program, ArrayRef<StringRef> args, bool verbose) {
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

/// The directory of the LLVM OpenMP runtime (libomp.so.5) that belongs to
/// `clang` (its ../lib), or "" (Debian: libomp-22-dev). The generated code
/// of a model with ops split across threads calls it (__kmpc_fork_call).
static std::string findOpenMPDir(StringRef clang) {
  SmallString<256> real;
  if (sys::fs::real_path(clang, real))
    return "";
  SmallString<256> dir(sys::path::parent_path(sys::path::parent_path(real)));
  sys::path::append(dir, "lib");
  SmallString<256> lib(dir);
  sys::path::append(lib, "libomp.so.5");
  return sys::fs::exists(lib) ? std::string(dir) : "";
}

std::string findRuntimeDir(StringRef runtimeDir, const char *argv0) {
  if (!runtimeDir.empty())
    return runtimeDir.str();
  SmallVector<std::string, 2> candidates = {RWKVC_RUNTIME_LIB_DIR};
  std::string exe =
      sys::fs::getMainExecutable(argv0, (void *)&registerBuiltinTargets);
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

Expected<uint64_t> writeWeightImage(const ModelLayout &layout,
                                    const Checkpoint &ckpt,
                                    const WeightImageOutput &output,
                                    const PackOptions &packOptions,
                                    bool refuseNonFinite) {
  PackOptions options = packOptions;
  uint64_t nonFinite = 0;
  if (refuseNonFinite)
    options.nonFiniteValues = &nonFinite;
  auto refused = [&] {
    return createStringError(formatv(
        "{0}: {1} weight values are NaN or Inf (see --inspect); use --force "
        "to compile anyway",
        ckpt.path, nonFinite));
  };
  if (output.kind == WeightImageOutput::Hash) {
    DiscardImageSink sink;
    auto hash = packWeights(layout, ckpt, sink, options);
    if (hash && nonFinite)
      return refused();
    return hash;
  }
  uint64_t size = uint64_t(layout.weightsBytes);
  BlobObject object; // File: no head, no tail
  if (output.kind == WeightImageOutput::Object) {
    Triple triple(sys::getDefaultTargetTriple());
    auto o = blobObject("rwkv_weights_blob", size, 4096, triple,
                        /*large=*/size > kEmbeddedWeightsLimit);
    if (!o)
      return createStringError(toString(o.takeError()) +
                               "; use --weights-file");
    object = std::move(*o);
  }
  auto file = sys::fs::TempFile::create(output.path + "-%%%%%%.tmp");
  if (!file)
    return createStringError(output.path + ": " + toString(file.takeError()));
  FileImageSink image(file->FD, object.dataOffset, output.path);
  auto hash = packWeights(layout, ckpt, image, options);
  Error e = hash.takeError();
  if (!e && nonFinite)
    e = refused();
  if (!e && output.kind == WeightImageOutput::Object) {
    FileImageSink raw(file->FD, 0, output.path);
    e = joinErrors(raw.write(0, object.head),
                   raw.write(object.dataOffset + size, object.tail));
  }
  if (!e && output.kind == WeightImageOutput::File) {
    // The trailer that names the model (runtime/rwkv_abi.h).
    rwkv_weights_trailer trailer{};
    memcpy(trailer.magic, RWKV_WEIGHTS_MAGIC, sizeof trailer.magic);
    trailer.weights_bytes = size;
    trailer.model_hash = modelHash(layout, *hash);
    e = image.write(size, ArrayRef(reinterpret_cast<const uint8_t *>(&trailer),
                                   sizeof trailer));
  }
  if (e) {
    consumeError(file->discard());
    return std::move(e);
  }
  if (Error k = file->keep(output.path))
    return createStringError(output.path + ": " + toString(std::move(k)));
  return *hash;
}

Error linkModel(const LinkJob &job) {
  auto step = [&](const Twine &what) {
    if (job.step)
      job.step(what);
  };
  // The executable: model object + weights object + runtime.
  step("code generation");
  auto tmp = [&](StringRef file) {
    SmallString<256> path(job.tmpDir);
    sys::path::append(path, file);
    return std::string(path);
  };
  // The model's code, in one object or several compiled in parallel.
  std::vector<std::string> objPaths;
  std::vector<std::unique_ptr<ToolOutputFile>> objects;
  if (Error e = job.target->emitObjects(
          job.module, *job.layout, job.abi, job.machine,
          [&](unsigned part) -> Expected<raw_pwrite_stream *> {
            std::string path = tmp(("model-" + Twine(part) + ".o").str());
            std::error_code ec;
            auto out =
                std::make_unique<ToolOutputFile>(path, ec, sys::fs::OF_None);
            if (ec)
              return createStringError(path + ": " + ec.message());
            objPaths.push_back(path);
            objects.push_back(std::move(out));
            return &objects.back()->os();
          }))
    return e;
  for (std::unique_ptr<ToolOutputFile> &out : objects) {
    out->os().close();
    if (out->os().has_error())
      return createStringError(out->getFilename() + ": " +
                               out->os().error().message());
    out->keep();
  }

  // The tokenizer object, written directly (as the weights object): the
  // link runs no assembler.
  std::string tokenizerObj = tmp("tokenizer.o");
  if (!job.tokenizerBlob.empty()) {
    auto object =
        blobObject("rwkv_tokenizer_blob", job.tokenizerBlob.size(), 8,
                   Triple(sys::getDefaultTargetTriple()), /*large=*/false);
    if (!object)
      return object.takeError();
    std::vector<uint8_t> bytes = std::move(object->head);
    bytes.insert(bytes.end(), job.tokenizerBlob.begin(),
                 job.tokenizerBlob.end());
    bytes.insert(bytes.end(), object->tail.begin(), object->tail.end());
    if (Error e = writeBytes(tokenizerObj, bytes))
      return e;
  }

  step("link " + job.output);
  auto clang = findClang();
  if (!clang)
    return clang.takeError();
  if (job.runtimeDir.empty())
    return createStringError("cannot find the runtime libraries "
                             "(librwkv_runtime.a); use --runtime-dir");
  std::string libFlag = "-L" + job.runtimeDir;
  SmallVector<StringRef> args = {*clang, "-fuse-ld=lld"};
  args.append(objPaths.begin(), objPaths.end());
  if (!job.weightsObject.empty())
    args.push_back(job.weightsObject);
  if (!job.tokenizerBlob.empty())
    args.push_back(tokenizerObj);
  args.push_back(libFlag);
  if (job.sharedLib)
    // Every runtime function is exported: the library is the C API.
    args.append({"-shared", "-Wl,--whole-archive", "-lrwkv_runtime",
                 "-lrwkv_server", "-Wl,--no-whole-archive",
                 "-lrwkv_hiredis", "-Wl,--exclude-libs,librwkv_hiredis.a"});
  else
    // The server (--serve) is its own archive, hiredis linked statically
    // (runtime/CMakeLists.txt).
    args.append({"-lrwkv_runtime_main", "-lrwkv_server", "-lrwkv_runtime",
                 "-lrwkv_hiredis"});
  // libomp where the model calls it (--as-needed: not for a model without
  // threaded ops), found at run time through the rpath: clang's, then the
  // executable's own directory (a machine without LLVM: libomp.so.5 copied
  // beside the model, docs/runtime.md).
  std::string ompDir = findOpenMPDir(*clang), ompL, ompRpath;
  if (!ompDir.empty()) {
    ompL = "-L" + ompDir;
    ompRpath = "-Wl,-rpath," + ompDir + ":$ORIGIN";
    args.append({ompL, "-Wl,--push-state,--as-needed", "-lomp",
                 "-Wl,--pop-state", ompRpath});
  }
  // A sanitized runtime (RWKVC_SANITIZE) lists the flags its models link
  // with (the sanitizer's own runtime) in rwkv_runtime_link_flags.
  SmallString<256> flagsPath(job.runtimeDir);
  sys::path::append(flagsPath, "rwkv_runtime_link_flags");
  SmallVector<StringRef> runtimeFlags;
  std::unique_ptr<MemoryBuffer> flagsFile;
  if (auto file = MemoryBuffer::getFile(flagsPath)) {
    flagsFile = std::move(*file);
    SplitString(flagsFile->getBuffer(), runtimeFlags);
    args.append(runtimeFlags.begin(), runtimeFlags.end());
  }
  args.append({"-lm", "-o", job.output});
  return run(*clang, args, job.verbose);
}

} // namespace rwkvc
