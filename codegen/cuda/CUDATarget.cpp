//===- CUDATarget.cpp - The CUDA backend behind the Target interface ------===//
//
//   buildPipeline: the CPU's pipeline up to rwkv-assign-layout (one weight
//                  image and state layout for both targets)
//   emit:          emitCUDAProgram ──▶ source (-emit=cuda)
//                    │ NVRTC: cubins + PTX, ptxas report checked
//                    │ or the emulator: clang++ -emit-llvm, linked in
//                    ▼
//                  host object: rwkv_cuda_program (images, kernel names,
//                  launch plan) + rwkv_model_descriptor (backends = CUDA)
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/CUDATarget.h"
#include "codegen/Target.h"
#include "codegen/cpu/EmitObject.h"
#include "codegen/cpu/Passes.h"
#include "codegen/cuda/CUDAEmitter.h"
#include "codegen/cuda/NVRTC.h"

#include "runtime/rwkv_abi.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IRReader/IRReader.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SourceMgr.h"

using namespace llvm;

namespace rwkvc {

namespace {

/// The images the runtime can load: cubins and PTX from NVRTC.
Expected<std::vector<cuda::CompiledImage>>
compileImages(const cuda::CUDAProgram &program, const MachineOptions &m) {
  cuda::CompileOptions options;
  if (!m.cudaArchs.empty())
    options.realArchs = m.cudaArchs;
  if (!m.cudaPTXArch.empty())
    options.ptxArch = m.cudaPTXArch == "none" ? "" : m.cudaPTXArch;
  auto result = cuda::compileCUDA(program.source, "model.cu", options);
  if (!result)
    return result.takeError();
  if (Error e = cuda::checkKernelResources(result->reports))
    return createStringError("--target=cuda: " + toString(std::move(e)));
  return std::move(result->images);
}

/// The kernels compiled as host C++ for the emulator, as LLVM bitcode
/// parsed into `context`.
Expected<std::unique_ptr<Module>>
compileForEmulator(const cuda::CUDAProgram &program, const MachineOptions &m,
                   LLVMContext &context) {
  if (m.cudaEmulatorCompiler.empty() || m.cudaEmulatorInclude.empty())
    return createStringError("--cuda-emulator: no clang++ or emulator "
                             "headers (cudaemu/include) found");
  SmallString<256> dir(m.tmpDir);
  if (dir.empty())
    if (std::error_code ec = sys::fs::createUniqueDirectory("rwkvc-cu", dir))
      return createStringError("cannot create a temporary directory: " +
                               ec.message());
  SmallString<256> source(dir), bitcode(dir);
  sys::path::append(source, "model.cu");
  sys::path::append(bitcode, "model-emu.bc");
  {
    std::error_code ec;
    raw_fd_ostream os(source, ec);
    if (ec)
      return createStringError(Twine(source) + ": " + ec.message());
    os << program.source;
  }
  std::string header = m.cudaEmulatorInclude + "/rwkv_cuda_emu.h";
  std::string include = "-I" + m.cudaEmulatorInclude;
  SmallVector<StringRef> args = {m.cudaEmulatorCompiler,
                                 "-x",
                                 "c++",
                                 "-std=c++17",
                                 "-O2",
                                 "-fPIC",
                                 "-ffp-contract=off",
                                 "-include",
                                 header,
                                 include,
                                 "-emit-llvm",
                                 "-c",
                                 source,
                                 "-o",
                                 bitcode};
  std::string message;
  int rc = sys::ExecuteAndWait(m.cudaEmulatorCompiler, args, std::nullopt, {},
                               0, 0, &message);
  if (rc != 0)
    return createStringError(
        formatv("--cuda-emulator: {0} failed to compile {1} ({2}){3}",
                m.cudaEmulatorCompiler, source, rc,
                message.empty() ? "" : ": " + message));
  SMDiagnostic diag;
  auto module = parseIRFile(bitcode, diag, context);
  if (!module)
    return createStringError(Twine(bitcode) + ": " + diag.getMessage());
  if (m.tmpDir.empty())
    sys::fs::remove_directories(dir);
  return std::move(module);
}

/// Adds the rwkv_cuda_program of `program` to `m`; `images` are NVRTC's,
/// or, when empty, the emulator's module table (an external symbol).
Expected<Constant *> buildProgram(Module &m, const cuda::CUDAProgram &program,
                                  ArrayRef<cuda::CompiledImage> images) {
  LLVMContext &ctx = m.getContext();
  auto *i32 = Type::getInt32Ty(ctx);
  auto *i64 = Type::getInt64Ty(ctx);
  auto *ptr = PointerType::getUnqual(ctx);
  auto c32 = [&](int64_t v) { return ConstantInt::get(i32, v); };
  auto c64 = [&](int64_t v) { return ConstantInt::get(i64, v); };
  auto global = [&](Constant *init, StringRef name,
                    unsigned align = 8) -> Constant * {
    auto *gv = new GlobalVariable(m, init->getType(), true,
                                  GlobalValue::PrivateLinkage, init, name);
    gv->setAlignment(Align(align));
    return gv;
  };
  auto string = [&](StringRef s) {
    return global(ConstantDataArray::getString(ctx, s), ".str", 1);
  };
  // An array of structs made by `make`, each checked against the header.
  auto table = [&](StringRef name, size_t n, auto make) -> Expected<Constant *> {
    std::vector<Constant *> elements;
    StructType *type = nullptr;
    for (size_t i = 0; i < n; ++i) {
      auto e = make(i, type);
      if (!e)
        return e.takeError();
      elements.push_back(*e);
    }
    if (elements.empty())
      return ConstantPointerNull::get(ptr);
    auto *arrayType = ArrayType::get(type, elements.size());
    return global(ConstantArray::get(arrayType, elements), name);
  };

  // Images.
  std::vector<std::tuple<int32_t, int32_t, Constant *, uint64_t>> imageRows;
  if (images.empty()) {
    auto *module = new GlobalVariable(
        m, Type::getInt8Ty(ctx), true, GlobalValue::ExternalLinkage, nullptr,
        cuda::kEmulatorModuleSymbol);
    imageRows.push_back({RWKV_CUDA_IMAGE_EMULATOR, 0, module, 0});
  }
  for (const cuda::CompiledImage &image : images) {
    StringRef arch(image.arch);
    int32_t number = 0;
    arch.drop_until([](char c) { return isdigit(c); }).getAsInteger(10, number);
    std::vector<char> bytes = image.bytes;
    if (image.isPTX && (bytes.empty() || bytes.back() != '\0'))
      bytes.push_back('\0');
    Constant *data = global(
        ConstantDataArray::get(
            ctx, ArrayRef<uint8_t>(
                     reinterpret_cast<const uint8_t *>(bytes.data()),
                     bytes.size())),
        "rwkv_cuda_image_" + image.arch, 16);
    imageRows.push_back({image.isPTX ? RWKV_CUDA_IMAGE_PTX
                                     : RWKV_CUDA_IMAGE_CUBIN,
                         number, data, uint64_t(bytes.size())});
  }
  auto imageTable = table(
      "rwkv_cuda_images", imageRows.size(),
      [&](size_t i, StructType *&type) {
        auto [kind, arch, data, size] = imageRows[i];
        return makeStruct(m, "rwkv_cuda_image",
                          {RWKV_FIELD(rwkv_cuda_image, kind, c32(kind)),
                           RWKV_FIELD(rwkv_cuda_image, arch, c32(arch)),
                           RWKV_FIELD(rwkv_cuda_image, data, data),
                           RWKV_FIELD(rwkv_cuda_image, size,
                                      c64(int64_t(size)))},
                          type);
      });
  if (!imageTable)
    return imageTable.takeError();

  std::vector<Constant *> names;
  for (const std::string &name : program.kernelNames)
    names.push_back(string(name));
  Constant *nameTable =
      names.empty() ? static_cast<Constant *>(ConstantPointerNull::get(ptr))
                    : global(ConstantArray::get(ArrayType::get(ptr, names.size()),
                                                names),
                             "rwkv_cuda_kernel_names");

  auto stepTable = table(
      "rwkv_cuda_steps", program.steps.size(),
      [&](size_t i, StructType *&type) -> Expected<Constant *> {
        const rwkv_cuda_step &s = program.steps[i];
        std::vector<Constant *> dims;
        StructType *dimType = nullptr;
        for (const rwkv_cuda_dim &d : s.grid) {
          auto dim = makeStruct(m, "rwkv_cuda_dim",
                                {RWKV_FIELD(rwkv_cuda_dim, count, c32(d.count)),
                                 RWKV_FIELD(rwkv_cuda_dim, per, c32(d.per)),
                                 RWKV_FIELD(rwkv_cuda_dim, source,
                                            c32(d.source))},
                                dimType);
          if (!dim)
            return dim.takeError();
          dims.push_back(*dim);
        }
        auto *block = ConstantDataArray::get(
            ctx, ArrayRef<uint32_t>({s.block[0], s.block[1], s.block[2]}));
        return makeStruct(
            m, "rwkv_cuda_step",
            {RWKV_FIELD(rwkv_cuda_step, kind, c32(s.kind)),
             RWKV_FIELD(rwkv_cuda_step, when, c32(s.when)),
             RWKV_FIELD(rwkv_cuda_step, kernel, c32(s.kernel)),
             RWKV_FIELD(rwkv_cuda_step, count, c32(s.count)),
             RWKV_FIELD(rwkv_cuda_step, grid,
                        ConstantArray::get(ArrayType::get(dimType, 3), dims)),
             RWKV_FIELD(rwkv_cuda_step, block, block),
             RWKV_FIELD(rwkv_cuda_step, shared_bytes, c32(s.shared_bytes)),
             RWKV_FIELD(rwkv_cuda_step, first_arg, c32(s.first_arg)),
             RWKV_FIELD(rwkv_cuda_step, n_args, c32(s.n_args))},
            type);
      });
  if (!stepTable)
    return stepTable.takeError();

  auto argTable = table(
      "rwkv_cuda_args", program.args.size(), [&](size_t i, StructType *&type) {
        const rwkv_cuda_arg &a = program.args[i];
        return makeStruct(
            m, "rwkv_cuda_arg",
            {RWKV_FIELD(rwkv_cuda_arg, kind, c32(a.kind)),
             RWKV_FIELD(rwkv_cuda_arg, reserved, c32(0)),
             RWKV_FIELD(rwkv_cuda_arg, value, c64(a.value)),
             RWKV_FIELD(rwkv_cuda_arg, layer_stride, c64(a.layer_stride))},
            type);
      });
  if (!argTable)
    return argTable.takeError();

  StructType *programType = nullptr;
  auto programConst = makeStruct(
      m, "rwkv_cuda_program",
      {RWKV_FIELD(rwkv_cuda_program, n_images,
                  c32(int64_t(imageRows.size()))),
       RWKV_FIELD(rwkv_cuda_program, n_kernels, c32(int64_t(names.size()))),
       RWKV_FIELD(rwkv_cuda_program, images, *imageTable),
       RWKV_FIELD(rwkv_cuda_program, kernel_names, nameTable),
       RWKV_FIELD(rwkv_cuda_program, n_steps,
                  c64(int64_t(program.steps.size()))),
       RWKV_FIELD(rwkv_cuda_program, steps, *stepTable),
       RWKV_FIELD(rwkv_cuda_program, n_args, c64(int64_t(program.args.size()))),
       RWKV_FIELD(rwkv_cuda_program, args, *argTable),
       RWKV_FIELD(rwkv_cuda_program, scratch_bytes_per_token,
                  c64(program.scratchBytesPerToken)),
       RWKV_FIELD(rwkv_cuda_program, max_dynamic_shared,
                  c32(program.maxDynamicShared)),
       RWKV_FIELD(rwkv_cuda_program, reserved, c32(0))},
      programType);
  if (!programConst)
    return programConst.takeError();
  return global(*programConst, "rwkv_cuda_program");
}

/// The CUDA half of an object: the program, and its images (NVRTC) or the
/// emulated kernels (bitcode to link into the object).
struct CUDABuild {
  cuda::CUDAProgram program;
  std::vector<cuda::CompiledImage> images;
  std::unique_ptr<Module> emulated;
};

Expected<CUDABuild> buildCUDA(mlir::ModuleOp module, const ModelLayout &layout,
                              const MachineOptions &machine,
                              LLVMContext &context) {
  auto program = cuda::emitCUDAProgram(module, layout);
  if (!program)
    return program.takeError();
  CUDABuild build;
  build.program = std::move(*program);
  if (machine.cudaEmulator) {
    auto e = compileForEmulator(build.program, machine, context);
    if (!e)
      return e.takeError();
    build.emulated = std::move(*e);
  } else {
    auto compiled = compileImages(build.program, machine);
    if (!compiled)
      return compiled.takeError();
    build.images = std::move(*compiled);
  }
  return std::move(build);
}

/// Links the emulated kernels (if any) into `m`, then writes `m`.
Error finishObject(Module &m, CUDABuild &build, TargetMachine &target,
                   ArtifactKind kind, raw_pwrite_stream &os) {
  if (build.emulated) {
    build.emulated->setTargetTriple(m.getTargetTriple());
    build.emulated->setDataLayout(m.getDataLayout());
    if (Linker::linkModules(m, std::move(build.emulated)))
      return createStringError("--cuda-emulator: cannot link the "
                               "emulated kernels into the model object");
  }
  if (kind == ArtifactKind::IR) {
    m.print(os, nullptr);
    return Error::success();
  }
  return emitCode(m, target, os,
                  kind == ArtifactKind::Assembly ? CodeGenFileType::AssemblyFile
                                                 : CodeGenFileType::ObjectFile);
}

/// -emit=cuda: the kernel file and its plan.
Error writeSource(mlir::ModuleOp module, const ModelLayout &layout,
                  raw_pwrite_stream &os) {
  auto program = cuda::emitCUDAProgram(module, layout);
  if (!program)
    return program.takeError();
  os << program->source << "\n// The launch plan.\n";
  cuda::printPlan(*program, os);
  return Error::success();
}

/// What both CUDA targets share: the CPU's alignments and pipeline up to
/// the layout (one weight image and state layout for both backends), and
/// -emit=cuda.
class CUDATargetBase : public Target {
public:
  mlir::rwkv::ResourceConfigAttr
  resourceConfig(mlir::MLIRContext *context) const override {
    return mlir::rwkv::ResourceConfigAttr::get(
        context, mlir::rwkv::cpu::kWeightAlignment,
        mlir::rwkv::cpu::kSlotAlignment);
  }

  void buildPipeline(mlir::OpPassManager &pm,
                     const mlir::rwkv::PipelineOptions &options,
                     PipelineStop stop) const override {
    // The CUDA kernels read float weights: quantized ones are stored as f32
    // (a quantized --weight-type is refused by rwkv-select-weight-types).
    mlir::rwkv::PipelineOptions floats = options;
    floats.quantizedWeights = false;
    if (stop == PipelineStop::Fused)
      return mlir::rwkv::cpu::buildCPUPipelineToFused(pm, floats);
    mlir::rwkv::cpu::buildCPUPipelineToLayout(pm, floats);
  }
};

class CUDATargetImpl final : public CUDATargetBase {
public:
  StringRef name() const override { return "cuda"; }
  StringRef description() const override {
    return "NVIDIA GPUs, sm_80 and newer (CUDA C++ compiled by NVRTC; the "
           "driver is opened at run time)";
  }
  uint32_t backends() const override { return RWKV_BACKEND_CUDA; }

  Error emit(mlir::ModuleOp module, const ModelLayout &layout,
             const ModelInfoForABI &info, const MachineOptions &machine,
             ArtifactKind kind, raw_pwrite_stream &os) const override {
    if (kind == ArtifactKind::Source)
      return writeSource(module, layout, os);
    auto target = createTargetMachine({"", machine.cpu, machine.features});
    if (!target)
      return target.takeError();
    LLVMContext context;
    auto build = buildCUDA(module, layout, machine, context);
    if (!build)
      return build.takeError();
    auto m = std::make_unique<Module>("rwkv_cuda_model", context);
    m->setTargetTriple((*target)->getTargetTriple());
    m->setDataLayout((*target)->createDataLayout());
    auto programGlobal = buildProgram(*m, build->program, build->images);
    if (!programGlobal)
      return programGlobal.takeError();
    if (Error e = buildModelDescriptor(*m, layout, info, RWKV_BACKEND_CUDA,
                                       *programGlobal))
      return e;
    return finishObject(*m, *build, **target, kind, os);
  }
};

/// `--target=cpu,cuda`: one object with both: the CPU's entry points and
/// the CUDA program, one descriptor (backends = CPU | CUDA), one image. The
/// pipeline stops at the placed module; emit lowers a copy of it for the
/// CPU and emits the kernels from it.
class CPUAndCUDATargetImpl final : public CUDATargetBase {
public:
  StringRef name() const override { return "cpu,cuda"; }
  StringRef description() const override {
    return "both in one executable: the GPU when one is usable, else the "
           "CPU (--device)";
  }
  uint32_t backends() const override {
    return RWKV_BACKEND_CPU | RWKV_BACKEND_CUDA;
  }

  Error emit(mlir::ModuleOp module, const ModelLayout &layout,
             const ModelInfoForABI &info, const MachineOptions &machine,
             ArtifactKind kind, raw_pwrite_stream &os) const override {
    if (kind == ArtifactKind::Source)
      return writeSource(module, layout, os);
    auto target = createTargetMachine({"", machine.cpu, machine.features});
    if (!target)
      return target.takeError();
    LLVMContext context;
    auto build = buildCUDA(module, layout, machine, context);
    if (!build)
      return build.takeError();
    // The CPU half from a copy of the placed module.
    mlir::OwningOpRef<mlir::ModuleOp> cpu = module.clone();
    mlir::PassManager pm(module.getContext());
    mlir::rwkv::cpu::buildCPULoweringFromLayout(pm, /*toLLVM=*/true);
    if (mlir::failed(pm.run(*cpu)))
      return createStringError("--target=cpu,cuda: the CPU lowering failed");
    ExtraBackend cuda;
    cuda.backends = RWKV_BACKEND_CUDA;
    cuda.build = [&](Module &m) {
      return buildProgram(m, build->program, build->images);
    };
    auto m = translateToLLVMIR(*cpu, context, layout, info, **target, cuda);
    if (!m)
      return m.takeError();
    optimizeModule(**m, **target);
    return finishObject(**m, *build, **target, kind, os);
  }
};

} // namespace

void registerCUDATarget() {
  TargetRegistry::add(std::make_unique<CUDATargetImpl>());
  TargetRegistry::add(std::make_unique<CPUAndCUDATargetImpl>());
}

} // namespace rwkvc
