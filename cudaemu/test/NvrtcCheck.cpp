//===- NvrtcCheck.cpp - The test kernels through NVRTC, no spills
//----------===//
//
//   cudaemu-nvrtc-check [--nvrtc LIB] --include DIR --arch sm_80,sm_90 F.cu...
//
// Compiles each file to a cubin for each architecture with NVRTC, opened
// with dlopen as rwkvc will open it (LIB, else $RWKV_NVRTC_LIBRARY, else
// libnvrtc.so from the loader's path), with --ptxas-options=-v, and parses
// ptxas's report: a kernel that spills, or needs more than 255 registers,
// fails the check. Prints one line per kernel and architecture. Exits 77
// (ctest: skipped) when no libnvrtc can be opened.
//
//===----------------------------------------------------------------------===//

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The NVRTC C API (nvrtc.h), as far as this check uses it.
using nvrtcResult = int;
struct Nvrtc {
  nvrtcResult (*version)(int *, int *);
  nvrtcResult (*create)(void **, const char *, const char *, int,
                        const char *const *, const char *const *);
  nvrtcResult (*compile)(void *, int, const char *const *);
  nvrtcResult (*logSize)(void *, size_t *);
  nvrtcResult (*log)(void *, char *);
  nvrtcResult (*cubinSize)(void *, size_t *);
  nvrtcResult (*destroy)(void **);
  const char *(*errorString)(nvrtcResult);
};

bool open(const char *path, Nvrtc &n, std::string &error) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    error = dlerror();
    return false;
  }
  auto get = [&](auto &fn, const char *name) {
    fn =
        reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (!fn)
      error += std::string(error.empty() ? "" : ", ") + "no " + name;
  };
  get(n.version, "nvrtcVersion");
  get(n.create, "nvrtcCreateProgram");
  get(n.compile, "nvrtcCompileProgram");
  get(n.logSize, "nvrtcGetProgramLogSize");
  get(n.log, "nvrtcGetProgramLog");
  get(n.cubinSize, "nvrtcGetCUBINSize");
  get(n.destroy, "nvrtcDestroyProgram");
  get(n.errorString, "nvrtcGetErrorString");
  return error.empty();
}

struct Kernel {
  std::string name;
  long registers = -1, spillStores = -1, spillLoads = -1, stack = -1;
};

/// ptxas -v: "Compiling entry function 'K' for 'sm_80'", then
/// "N bytes stack frame, S bytes spill stores, L bytes spill loads" and
/// "Used R registers, ...".
std::vector<Kernel> parsePtxas(const std::string &log) {
  std::vector<Kernel> kernels;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    size_t at = line.find("Compiling entry function '");
    if (at != std::string::npos) {
      size_t begin = at + std::strlen("Compiling entry function '");
      kernels.push_back({line.substr(begin, line.find('\'', begin) - begin)});
      continue;
    }
    if (kernels.empty())
      continue;
    Kernel &k = kernels.back();
    if (line.find("bytes stack frame") != std::string::npos)
      std::sscanf(line.c_str() + line.find_first_of("0123456789"),
                  "%ld bytes stack frame, %ld bytes spill stores, %ld bytes "
                  "spill loads",
                  &k.stack, &k.spillStores, &k.spillLoads);
    if ((at = line.find("Used ")) != std::string::npos)
      std::sscanf(line.c_str() + at, "Used %ld registers", &k.registers);
  }
  return kernels;
}

std::vector<std::string> split(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(item);
  return out;
}

} // namespace

int main(int argc, char **argv) {
  std::string library, include;
  std::vector<std::string> archs, files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--nvrtc" && i + 1 < argc)
      library = argv[++i];
    else if (a == "--include" && i + 1 < argc)
      include = argv[++i];
    else if (a == "--arch" && i + 1 < argc)
      archs = split(argv[++i]);
    else
      files.push_back(a);
  }
  if (archs.empty() || files.empty()) {
    std::fprintf(stderr,
                 "usage: %s [--nvrtc LIB] --include DIR --arch "
                 "sm_80,sm_90 FILE.cu...\n",
                 argv[0]);
    return 2;
  }
  if (library.empty() || !std::ifstream(library)) {
    const char *env = std::getenv("RWKV_NVRTC_LIBRARY");
    library = env && *env ? env : "libnvrtc.so";
  }
  Nvrtc nvrtc;
  std::string error;
  if (!open(library.c_str(), nvrtc, error)) {
    std::printf("skipped: cannot use NVRTC (%s): %s\n", library.c_str(),
                error.c_str());
    return 77;
  }
  int major = 0, minor = 0;
  nvrtc.version(&major, &minor);
  std::printf("NVRTC %d.%d (%s)\n", major, minor, library.c_str());

  int failures = 0;
  for (const std::string &file : files) {
    std::ifstream in(file);
    std::stringstream source;
    source << in.rdbuf();
    if (!in) {
      std::printf("FAIL %s: cannot read it\n", file.c_str());
      ++failures;
      continue;
    }
    std::string base = file.substr(file.rfind('/') + 1);
    for (const std::string &arch : archs) {
      std::string archOpt = "--gpu-architecture=" + arch,
                  includeOpt = "--include-path=" + include;
      const char *options[] = {archOpt.c_str(), includeOpt.c_str(),
                               "--std=c++17", "--ptxas-options=-v"};
      void *program = nullptr;
      nvrtc.create(&program, source.str().c_str(), base.c_str(), 0, nullptr,
                   nullptr);
      nvrtcResult r = nvrtc.compile(program, 4, options);
      size_t n = 0, cubin = 0;
      nvrtc.logSize(program, &n);
      std::string log(n, '\0');
      nvrtc.log(program, log.data());
      if (r == 0)
        nvrtc.cubinSize(program, &cubin);
      nvrtc.destroy(&program);
      if (r != 0 || cubin == 0) {
        std::printf("FAIL %s %s: %s\n%s\n", base.c_str(), arch.c_str(),
                    nvrtc.errorString(r), log.c_str());
        ++failures;
        continue;
      }
      std::vector<Kernel> kernels = parsePtxas(log);
      if (kernels.empty()) {
        std::printf("FAIL %s %s: no ptxas report in the log:\n%s\n",
                    base.c_str(), arch.c_str(), log.c_str());
        ++failures;
      }
      for (const Kernel &k : kernels) {
        bool ok = k.registers >= 0 && k.registers <= 255 &&
                  k.spillStores == 0 && k.spillLoads == 0;
        std::printf("%s %s %s %s: %ld registers, %ld bytes stack, %ld/%ld "
                    "bytes spilled (stores/loads)\n",
                    ok ? "ok  " : "FAIL", base.c_str(), arch.c_str(),
                    k.name.c_str(), k.registers, k.stack, k.spillStores,
                    k.spillLoads);
        failures += !ok;
      }
    }
  }
  return failures ? 1 : 0;
}
