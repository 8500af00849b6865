//===- NVRTC.cpp - CUDA C++ to cubins with NVIDIA's runtime compiler ------===//

#include "codegen/cuda/NVRTC.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Regex.h"

#include <mutex>

using llvm::Error;
using llvm::Expected;
using llvm::StringRef;

namespace rwkvc::cuda {

std::vector<KernelReport> parsePtxasReport(StringRef log) {
  static const llvm::Regex entry("Compiling entry function '([^']+)' for '([^']+)'");
  static const llvm::Regex frame("([0-9]+) bytes stack frame, ([0-9]+) bytes "
                                 "spill stores, ([0-9]+) bytes spill loads");
  static const llvm::Regex used("Used ([0-9]+) registers");
  static const llvm::Regex smem("([0-9]+) bytes smem");
  std::vector<KernelReport> reports;
  llvm::SmallVector<StringRef, 4> m;
  for (StringRef line : llvm::split(log, '\n')) {
    if (entry.match(line, &m)) {
      reports.push_back({m[1].str(), m[2].str()});
      continue;
    }
    if (reports.empty())
      continue;
    KernelReport &r = reports.back();
    if (frame.match(line, &m)) {
      m[1].getAsInteger(10, r.stackBytes);
      m[2].getAsInteger(10, r.spillStoreBytes);
      m[3].getAsInteger(10, r.spillLoadBytes);
    }
    if (used.match(line, &m))
      m[1].getAsInteger(10, r.registers);
    if (smem.match(line, &m))
      m[1].getAsInteger(10, r.sharedBytes);
  }
  return reports;
}

Error checkKernelResources(llvm::ArrayRef<KernelReport> reports,
                           const ResourceLimits &limits) {
  std::string faults;
  for (const KernelReport &r : reports) {
    std::string fault;
    if (r.spillStoreBytes || r.spillLoadBytes)
      fault = llvm::formatv("spills ({0} bytes stored, {1} loaded)",
                            r.spillStoreBytes, r.spillLoadBytes);
    else if (r.registers > limits.maxRegisters)
      fault = llvm::formatv("uses {0} registers (at most {1})", r.registers,
                            limits.maxRegisters);
    else if (r.sharedBytes > limits.maxStaticShared)
      fault = llvm::formatv("uses {0} bytes of static shared memory (at most "
                            "{1})",
                            r.sharedBytes, limits.maxStaticShared);
    if (!fault.empty())
      faults += llvm::formatv("\n  kernel '{0}' on {1} {2}", r.kernel, r.arch,
                              fault);
  }
  if (faults.empty())
    return Error::success();
  return llvm::createStringError("generated CUDA kernels exceed their "
                                 "resources:" +
                                 faults);
}

namespace {

using nvrtcResult = int;
using nvrtcProgram = struct nvrtcProgramOpaque *;

/// The entry points of libnvrtc this file uses.
struct NVRTCLibrary {
  std::string path;
  const char *(*getErrorString)(nvrtcResult);
  nvrtcResult (*version)(int *, int *);
  nvrtcResult (*createProgram)(nvrtcProgram *, const char *, const char *,
                               int, const char *const *, const char *const *);
  nvrtcResult (*destroyProgram)(nvrtcProgram *);
  nvrtcResult (*compileProgram)(nvrtcProgram, int, const char *const *);
  nvrtcResult (*getProgramLogSize)(nvrtcProgram, size_t *);
  nvrtcResult (*getProgramLog)(nvrtcProgram, char *);
  nvrtcResult (*getPTXSize)(nvrtcProgram, size_t *);
  nvrtcResult (*getPTX)(nvrtcProgram, char *);
  nvrtcResult (*getCUBINSize)(nvrtcProgram, size_t *);
  nvrtcResult (*getCUBIN)(nvrtcProgram, char *);
};

/// The paths tried for libnvrtc, in order.
std::vector<std::string> candidatePaths() {
  if (auto chosen = llvm::sys::Process::GetEnv("RWKV_NVRTC_LIBRARY"))
    return {*chosen};
  std::vector<std::string> paths = {"libnvrtc.so.13"};
  for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
    if (auto root = llvm::sys::Process::GetEnv(var)) {
      llvm::SmallString<128> p(*root);
      llvm::sys::path::append(p, "lib64", "libnvrtc.so.13");
      paths.push_back(std::string(p));
    }
  paths.push_back("/usr/local/cuda/lib64/libnvrtc.so.13");
  return paths;
}

Expected<const NVRTCLibrary &> loadNVRTC() {
  static std::once_flag once;
  static NVRTCLibrary library;
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> paths = candidatePaths();
    std::string tried;
    for (const std::string &path : paths) {
      std::string error;
      auto dl = llvm::sys::DynamicLibrary::getPermanentLibrary(path.c_str(),
                                                               &error);
      if (!dl.isValid()) {
        tried += (tried.empty() ? " " : "; ") + error;
        continue;
      }
      bool complete = true;
      auto bind = [&](auto &fn, const char *symbol) {
        fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(
            dl.getAddressOfSymbol(symbol));
        complete &= fn != nullptr;
      };
      NVRTCLibrary &l = library;
      bind(l.getErrorString, "nvrtcGetErrorString");
      bind(l.version, "nvrtcVersion");
      bind(l.createProgram, "nvrtcCreateProgram");
      bind(l.destroyProgram, "nvrtcDestroyProgram");
      bind(l.compileProgram, "nvrtcCompileProgram");
      bind(l.getProgramLogSize, "nvrtcGetProgramLogSize");
      bind(l.getProgramLog, "nvrtcGetProgramLog");
      bind(l.getPTXSize, "nvrtcGetPTXSize");
      bind(l.getPTX, "nvrtcGetPTX");
      bind(l.getCUBINSize, "nvrtcGetCUBINSize");
      bind(l.getCUBIN, "nvrtcGetCUBIN");
      if (!complete) {
        tried += (tried.empty() ? " " : "; ") + path +
                 ": not an NVRTC library (symbols missing)";
        continue;
      }
      l.path = path;
      return;
    }
    failure = "--target=cuda needs NVIDIA's NVRTC (libnvrtc.so.13, from the "
              "CUDA 13 toolkit) where rwkvc runs; none found (set "
              "RWKV_NVRTC_LIBRARY to its path, or CUDA_HOME to the toolkit). "
              "Tried:" +
              tried;
  });
  if (!failure.empty())
    return llvm::createStringError(failure);
  return library;
}

/// One NVRTC program compiled for one architecture.
class Program {
public:
  Program(const NVRTCLibrary &nvrtc) : nvrtc(nvrtc) {}
  ~Program() {
    if (program)
      nvrtc.destroyProgram(&program);
  }

  Error compile(StringRef source, StringRef fileName,
                llvm::ArrayRef<std::string> options) {
    std::string src = source.str(), name = fileName.str();
    if (nvrtcResult r = nvrtc.createProgram(&program, src.c_str(),
                                            name.c_str(), 0, nullptr, nullptr))
      return fail("nvrtcCreateProgram", r);
    std::vector<const char *> argv;
    for (const std::string &o : options)
      argv.push_back(o.c_str());
    nvrtcResult r = nvrtc.compileProgram(program, int(argv.size()), argv.data());
    size_t size = 0;
    nvrtc.getProgramLogSize(program, &size);
    log.assign(size, '\0');
    if (size)
      nvrtc.getProgramLog(program, log.data());
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n'))
      log.pop_back();
    if (r)
      return llvm::createStringError(llvm::formatv(
          "{0}: NVRTC ({1}) failed: {2}\n{3}", fileName, nvrtc.path,
          nvrtc.getErrorString(r), log));
    return Error::success();
  }

  Expected<std::vector<char>> output(bool ptx) {
    size_t size = 0;
    if (nvrtcResult r = ptx ? nvrtc.getPTXSize(program, &size)
                            : nvrtc.getCUBINSize(program, &size))
      return fail(ptx ? "nvrtcGetPTXSize" : "nvrtcGetCUBINSize", r);
    std::vector<char> bytes(size);
    if (nvrtcResult r = ptx ? nvrtc.getPTX(program, bytes.data())
                            : nvrtc.getCUBIN(program, bytes.data()))
      return fail(ptx ? "nvrtcGetPTX" : "nvrtcGetCUBIN", r);
    return bytes;
  }

  std::string log;

private:
  Error fail(StringRef call, nvrtcResult r) {
    return llvm::createStringError(llvm::formatv("{0} ({1}): {2}", call,
                                                 nvrtc.path,
                                                 nvrtc.getErrorString(r)));
  }

  const NVRTCLibrary &nvrtc;
  nvrtcProgram program = nullptr;
};

} // namespace

Expected<std::pair<int, int>> nvrtcVersion() {
  auto nvrtc = loadNVRTC();
  if (!nvrtc)
    return nvrtc.takeError();
  int major = 0, minor = 0;
  nvrtc->version(&major, &minor);
  return std::make_pair(major, minor);
}

Expected<CompileResult> compileCUDA(StringRef source, StringRef fileName,
                                    const CompileOptions &options) {
  auto nvrtc = loadNVRTC();
  if (!nvrtc)
    return nvrtc.takeError();
  CompileResult result;
  auto compileFor = [&](const std::string &arch, bool ptx) -> Error {
    std::vector<std::string> argv = {"--gpu-architecture=" + arch,
                                     "--std=c++17"};
    if (!ptx)
      argv.push_back("--ptxas-options=-v");
    argv.insert(argv.end(), options.extraOptions.begin(),
                options.extraOptions.end());
    Program program(*nvrtc);
    if (Error e = program.compile(source, fileName, argv))
      return e;
    auto bytes = program.output(ptx);
    if (!bytes)
      return bytes.takeError();
    result.images.push_back({arch, ptx, std::move(*bytes)});
    if (!ptx) {
      std::vector<KernelReport> reports = parsePtxasReport(program.log);
      result.reports.insert(result.reports.end(), reports.begin(),
                            reports.end());
    }
    return Error::success();
  };
  for (const std::string &arch : options.realArchs)
    if (Error e = compileFor(arch, /*ptx=*/false))
      return std::move(e);
  if (!options.ptxArch.empty())
    if (Error e = compileFor(options.ptxArch, /*ptx=*/true))
      return std::move(e);
  return result;
}

} // namespace rwkvc::cuda
