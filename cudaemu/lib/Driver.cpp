//===- Driver.cpp - libcuda-emu.so.1: the CUDA driver API on the emulator -===//
//
// The subset of the CUDA driver API in rwkv_cuda_driver.h, over host memory
// and the fiber scheduler, for rwkvc's runtime to open in place of
// libcuda.so.1 (RWKV_CUDA_LIBRARY). One emulated device, its primary
// context, and:
//
//   device memory  malloc'd host memory, 256-byte aligned, filled with 0xff
//                  (NaN) when allocated; copies and memsets check their range
//   modules        the image is an rwkv_emu_module (rwkv_cuda_emu_abi.h) the
//                  model embeds; functions are its kernels, looked up by name
//   streams        run their work at once, in call order (synchronous)
//   capture        records launches, copies and memsets (kernel parameters
//                  by value, host pointers by address) into a graph that
//                  cuGraphLaunch replays
//   errors         the driver's codes; a line on stderr says what was wrong
//                  ("rwkv-cuda-emu: cuMemcpyHtoD_v2: ..."); a kernel that
//                  fails (deadlock, bad shuffle, __trap) returns
//                  CUDA_ERROR_LAUNCH_FAILED, as does every later call
//
// Every call holds one lock: kernels run one at a time, on the caller's
// thread. docs/cuda-emulator.md lists the environment variables read here.
//
//===----------------------------------------------------------------------===//

#include "rwkv_cuda_driver.h"

#include "Format.h"
#include "Scheduler.h"
#include "rwkv_cuda_emu_abi.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#define RWKV_EMU_EXPORT __attribute__((visibility("default")))
#define DECLARE(name, params) extern "C" RWKV_EMU_EXPORT CUresult name params;
RWKV_CUDA_DRIVER_FUNCTIONS(DECLARE)
#undef DECLARE

using rwkv_emu::format;

namespace {

constexpr int kDevice = 0;
constexpr size_t kAlignment = 256; // cuMemAlloc's guarantee
constexpr int kDefaultDynamicShared = 48 * 1024;

/// What cuLaunchKernel or a graph's kernel node runs: the kernel and a copy
/// of its parameters.
struct KernelCall {
  CUfunction function = nullptr;
  rwkv_emu::Dim3 grid, block;
  unsigned sharedBytes = 0;
  std::vector<std::max_align_t> storage; // the parameters' bytes
  std::vector<size_t> offsets;           // of each parameter in storage
};

/// A node of a captured graph.
struct Node {
  enum Kind { Kernel, Copy, Set } kind = Kernel;
  KernelCall call;                     // Kernel
  void *dst = nullptr;                 // Copy, Set
  const void *src = nullptr;           // Copy
  size_t bytes = 0;                    // Copy; Set: the element count
  unsigned value = 0, elementSize = 0; // Set
};

} // namespace

// The handles' objects.
struct CUctx_st {};
struct CUmod_st {
  const rwkv_emu_module *image = nullptr;
  std::vector<std::unique_ptr<CUfunc_st>> functions;
};
struct CUfunc_st {
  CUmodule module = nullptr;
  const rwkv_emu_kernel *kernel = nullptr;
  int maxDynamicShared = kDefaultDynamicShared;
};
struct CUstream_st {
  unsigned flags = 0;
  CUgraph capture = nullptr; // while capturing
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::thread::id captureThread;
  bool captureInvalid = false;
};
struct CUgraph_st {
  std::vector<Node> nodes;
};
struct CUgraphExec_st {
  std::vector<Node> nodes;
};

namespace {

/// The emulated device, as RWKV_CUDA_EMU_* configured it at cuInit.
struct Device {
  int ccMajor = 8, ccMinor = 0;
  int driverVersion = 13000;
  size_t totalMemory = 0;
  int multiprocessors() const { return ccMajor >= 9 ? 132 : 108; }
  int sharedOptin() const { return ccMajor >= 9 ? 227 * 1024 : 163 * 1024; }
  int sharedPerMultiprocessor() const {
    return ccMajor >= 9 ? 228 * 1024 : 164 * 1024;
  }
};

struct State {
  std::mutex mutex;
  bool initialized = false;
  Device device;
  CUctx_st primary;
  int retained = 0;               // the primary context's reference count
  CUresult sticky = CUDA_SUCCESS; // a kernel failed: every call returns it
  std::map<uintptr_t, size_t> allocations;
  size_t allocated = 0;
  std::set<CUmodule> modules;
  std::set<CUfunction> functions;
  std::set<CUstream> streams;
  std::set<CUgraph> graphs;
  std::set<CUgraphExec> execs;
  uint64_t launches = 0;
};

State &state() {
  static State s;
  return s;
}

thread_local CUcontext currentContext = nullptr;

/// Every call holds the state's lock.
#define LOCKED                                                                 \
  State &s = state();                                                          \
  std::lock_guard<std::mutex> lock(s.mutex)

bool quiet() {
  const char *q = std::getenv("RWKV_CUDA_EMU_QUIET");
  return q && *q && std::strcmp(q, "0") != 0;
}

const char *errorName(CUresult r) {
  switch (r) {
#define NAME(name, value, text)                                                \
  case name:                                                                   \
    return #name;
    RWKV_CUDA_RESULTS(NAME)
#undef NAME
  }
  return nullptr;
}

/// Prints "rwkv-cuda-emu: API: MESSAGE (CODE)" and returns `code`.
CUresult fail(CUresult code, const char *api, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
CUresult fail(CUresult code, const char *api, const char *fmt, ...) {
  if (!quiet()) {
    char message[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    std::fprintf(stderr, "rwkv-cuda-emu: %s: %s (%s)\n", api, message,
                 errorName(code));
  }
  return code;
}

/// cuInit was called.
CUresult initialized(const char *api) {
  if (!state().initialized)
    return fail(CUDA_ERROR_NOT_INITIALIZED, api, "cuInit was not called");
  return CUDA_SUCCESS;
}

/// cuInit was called and the calling thread has the (retained) primary
/// context current; no kernel failed.
CUresult ready(const char *api) {
  State &s = state();
  if (CUresult r = initialized(api))
    return r;
  if (currentContext != &s.primary || s.retained == 0)
    return fail(CUDA_ERROR_INVALID_CONTEXT, api,
                "no current context (cuDevicePrimaryCtxRetain, then "
                "cuCtxSetCurrent)");
  return s.sticky;
}

/// The allocation holding [p, p + bytes), or why not.
CUresult checkRange(const char *api, const char *what, CUdeviceptr p,
                    size_t bytes) {
  State &s = state();
  auto it = s.allocations.upper_bound(uintptr_t(p));
  if (it != s.allocations.begin()) {
    --it;
    if (p - it->first <= it->second && bytes <= it->second - (p - it->first))
      return CUDA_SUCCESS;
  }
  return fail(CUDA_ERROR_INVALID_VALUE, api,
              "%s 0x%llx + %zu bytes is not inside one device allocation", what,
              (unsigned long long)p, bytes);
}

CUresult checkStream(const char *api, CUstream stream) {
  if (stream && !state().streams.count(stream))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown stream %p",
                static_cast<void *>(stream));
  return CUDA_SUCCESS;
}

/// The stream capturing in a mode that forbids `api` on the calling thread
/// ("potentially unsafe" calls: allocation, synchronous copies, context
/// synchronization), if any: that capture is invalidated.
CUresult forbiddenWhileCapturing(const char *api) {
  for (CUstream s : state().streams)
    if (s->capture && !s->captureInvalid &&
        (s->mode == CU_STREAM_CAPTURE_MODE_GLOBAL ||
         (s->mode == CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
          s->captureThread == std::this_thread::get_id()))) {
      s->captureInvalid = true;
      return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, api,
                  "not permitted while stream %p captures (the capture is "
                  "invalidated)",
                  static_cast<void *>(s));
    }
  return CUDA_SUCCESS;
}

/// Work on the legacy (NULL) stream while a blocking stream captures.
CUresult legacyWhileCapturing(const char *api) {
  for (CUstream s : state().streams)
    if (s->capture && !s->captureInvalid &&
        !(s->flags & CU_STREAM_NON_BLOCKING)) {
      s->captureInvalid = true;
      return fail(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT, api,
                  "work on the NULL stream while blocking stream %p captures "
                  "(the capture is invalidated)",
                  static_cast<void *>(s));
    }
  return CUDA_SUCCESS;
}

// --- Running work ----------------------------------------------------------

CUresult runKernel(const char *api, const KernelCall &call) {
  State &s = state();
  if (!s.functions.count(call.function))
    return fail(CUDA_ERROR_INVALID_HANDLE, api,
                "the kernel's module was unloaded");
  std::string error;
  rwkv_emu::LaunchParams p;
  if (!rwkv_emu::scheduleFromEnvironment(p.schedule, error))
    return fail(CUDA_ERROR_INVALID_VALUE, api, "%s", error.c_str());
  std::vector<void *> params;
  for (size_t offset : call.offsets)
    params.push_back(reinterpret_cast<char *>(
                         const_cast<std::max_align_t *>(call.storage.data())) +
                     offset);
  p.kernel = call.function->kernel;
  p.grid = call.grid;
  p.block = call.block;
  p.dynamicSharedBytes = call.sharedBytes;
  p.sharedLimitBytes = size_t(s.device.sharedOptin());
  p.params = params.data();
  p.launchIndex = s.launches++;
  if (rwkv_emu::runGrid(p, error))
    return CUDA_SUCCESS;
  s.sticky = CUDA_ERROR_LAUNCH_FAILED;
  if (!quiet())
    std::fprintf(stderr, "rwkv-cuda-emu: %s: %s\n", api, error.c_str());
  return s.sticky;
}

CUresult runNode(const char *api, const Node &n) {
  switch (n.kind) {
  case Node::Kernel:
    return runKernel(api, n.call);
  case Node::Copy:
    std::memmove(n.dst, n.src, n.bytes);
    return CUDA_SUCCESS;
  case Node::Set:
    if (n.elementSize == 1)
      std::memset(n.dst, int(n.value), n.bytes);
    else
      std::fill_n(static_cast<uint32_t *>(n.dst), n.bytes, n.value);
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_UNKNOWN;
}

/// Runs `n` on `stream` now, or records it when the stream captures.
CUresult submit(const char *api, CUstream stream, Node n) {
  if (CUresult r = checkStream(api, stream))
    return r;
  if (!stream) {
    if (CUresult r = legacyWhileCapturing(api))
      return r;
  } else if (stream->capture) {
    stream->capture->nodes.push_back(std::move(n));
    return CUDA_SUCCESS;
  }
  return runNode(api, n);
}

Node copyNode(void *dst, const void *src, size_t bytes) {
  Node n;
  n.kind = Node::Copy;
  n.dst = dst;
  n.src = src;
  n.bytes = bytes;
  return n;
}

/// A device range a copy reads or writes.
struct DeviceRange {
  const char *what;
  CUdeviceptr p;
};

CUresult memcpyImpl(const char *api, void *dst, const void *src, size_t bytes,
                    CUstream stream, bool async,
                    std::initializer_list<DeviceRange> device) {
  if (CUresult r = ready(api))
    return r;
  if (!async)
    if (CUresult r = forbiddenWhileCapturing(api))
      return r;
  for (const DeviceRange &d : device)
    if (CUresult r = checkRange(api, d.what, d.p, bytes))
      return r;
  if (bytes && (!dst || !src))
    return fail(CUDA_ERROR_INVALID_VALUE, api, "a NULL host pointer");
  return submit(api, stream, copyNode(dst, src, bytes));
}

CUresult memsetImpl(const char *api, CUdeviceptr dst, unsigned value,
                    unsigned elementSize, size_t count, CUstream stream,
                    bool async) {
  if (CUresult r = ready(api))
    return r;
  if (!async)
    if (CUresult r = forbiddenWhileCapturing(api))
      return r;
  if (dst % elementSize)
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "destination 0x%llx is not %u-byte aligned",
                (unsigned long long)dst, elementSize);
  if (CUresult r = checkRange(api, "destination", dst, count * elementSize))
    return r;
  Node n;
  n.kind = Node::Set;
  n.dst = reinterpret_cast<void *>(dst);
  n.bytes = count;
  n.value = value;
  n.elementSize = elementSize;
  return submit(api, stream, std::move(n));
}

/// Frees everything the primary context owned (its last release).
void resetContext(State &s) {
  for (auto &[p, bytes] : s.allocations)
    std::free(reinterpret_cast<void *>(p));
  s.allocations.clear();
  s.allocated = 0;
  for (CUmodule m : s.modules)
    delete m;
  for (CUstream st : s.streams) {
    delete st->capture;
    delete st;
  }
  for (CUgraph g : s.graphs)
    delete g;
  for (CUgraphExec e : s.execs)
    delete e;
  s.modules.clear();
  s.functions.clear();
  s.streams.clear();
  s.graphs.clear();
  s.execs.clear();
  s.sticky = CUDA_SUCCESS;
}

/// An environment variable as an integer in [lo, hi], or `fallback`.
bool envInt(const char *name, long long lo, long long hi, long long fallback,
            long long &out) {
  const char *v = std::getenv(name);
  out = fallback;
  if (!v || !*v)
    return true;
  char *end;
  out = std::strtoll(v, &end, 10);
  return *end == '\0' && out >= lo && out <= hi;
}

} // namespace

// --- The API
// -------------------------------------------------------------------

CUresult cuGetErrorName(CUresult error, const char **pStr) {
  if (!pStr)
    return CUDA_ERROR_INVALID_VALUE;
  *pStr = errorName(error);
  return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGetErrorString(CUresult error, const char **pStr) {
  if (!pStr)
    return CUDA_ERROR_INVALID_VALUE;
  switch (error) {
#define TEXT(name, value, text)                                                \
  case name:                                                                   \
    *pStr = text;                                                              \
    return CUDA_SUCCESS;
    RWKV_CUDA_RESULTS(TEXT)
#undef TEXT
  }
  *pStr = nullptr;
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult cuInit(unsigned int Flags) {
  const char *api = "cuInit";
  LOCKED;
  if (Flags != 0)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "flags must be 0");
  long long devices, version, mib;
  if (!envInt("RWKV_CUDA_EMU_DEVICES", 0, 1, 1, devices))
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "RWKV_CUDA_EMU_DEVICES must be 0 or 1");
  if (devices == 0)
    return fail(CUDA_ERROR_NO_DEVICE, api,
                "no device (RWKV_CUDA_EMU_DEVICES=0)");
  Device d;
  if (!envInt("RWKV_CUDA_EMU_DRIVER_VERSION", 1000, 99990, 13000, version))
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "RWKV_CUDA_EMU_DRIVER_VERSION: a version like 13000");
  d.driverVersion = int(version);
  long long physical = (long long)sysconf(_SC_PHYS_PAGES) *
                       (long long)sysconf(_SC_PAGESIZE) / (1 << 20);
  if (!envInt("RWKV_CUDA_EMU_MEMORY_MIB", 1, 1ll << 30, physical, mib))
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "RWKV_CUDA_EMU_MEMORY_MIB: a size in MiB");
  d.totalMemory = size_t(mib) << 20;
  if (const char *cc = std::getenv("RWKV_CUDA_EMU_CC"); cc && *cc) {
    int major, minor;
    char end;
    if (std::sscanf(cc, "%d.%d%c", &major, &minor, &end) != 2 || major < 8 ||
        major > 12 || minor < 0 || minor > 9)
      return fail(CUDA_ERROR_INVALID_VALUE, api,
                  "RWKV_CUDA_EMU_CC='%s': a compute capability from 8.0 to "
                  "12.9 (the kernels use sm_80 instructions)",
                  cc);
    d.ccMajor = major;
    d.ccMinor = minor;
  }
  s.device = d;
  s.initialized = true;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int *driverVersion) {
  if (!driverVersion)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDriverGetVersion", "NULL");
  long long version;
  if (!envInt("RWKV_CUDA_EMU_DRIVER_VERSION", 1000, 99990, 13000, version))
    version = 13000;
  *driverVersion = int(version);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *count) {
  LOCKED;
  if (CUresult r = initialized("cuDeviceGetCount"))
    return r;
  if (!count)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetCount", "NULL");
  *count = 1;
  return CUDA_SUCCESS;
}

/// cuInit was called and `dev` is the device.
static CUresult checkDevice(const char *api, CUdevice dev) {
  if (CUresult r = initialized(api))
    return r;
  if (dev != kDevice)
    return fail(CUDA_ERROR_INVALID_DEVICE, api, "no device %d (only 0)", dev);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  LOCKED;
  if (CUresult r = checkDevice("cuDeviceGet", ordinal))
    return r;
  if (!device)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGet", "NULL");
  *device = kDevice;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
  LOCKED;
  if (CUresult r = checkDevice("cuDeviceGetName", dev))
    return r;
  if (!name || len <= 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceGetName", "no buffer");
  std::snprintf(name, size_t(len), "rwkv-cuda-emu (CPU emulator, sm_%d%d)",
                s.device.ccMajor, s.device.ccMinor);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib,
                              CUdevice dev) {
  const char *api = "cuDeviceGetAttribute";
  LOCKED;
  if (CUresult r = checkDevice(api, dev))
    return r;
  if (!pi)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL");
  const Device &d = s.device;
  switch (int(attrib)) { // any int may come in
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X:
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y:
    *pi = 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z:
    *pi = 64;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X:
    *pi = 0x7fffffff;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y:
  case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z:
    *pi = 65535;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK:
    *pi = 48 * 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY:
    *pi = 64 * 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_WARP_SIZE:
    *pi = 32;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
    *pi = 64 * 1024;
    break;
  case CU_DEVICE_ATTRIBUTE_CLOCK_RATE:
    *pi = d.ccMajor >= 9 ? 1980000 : 1410000;
    break;
  case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
    *pi = d.multiprocessors();
    break;
  case CU_DEVICE_ATTRIBUTE_INTEGRATED:
    *pi = 0;
    break;
  case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS:
  case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    *pi = 1;
    break;
  case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE:
    *pi = d.ccMajor >= 9 ? 2619000 : 1215000;
    break;
  case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH:
    *pi = 5120;
    break;
  case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE:
    *pi = d.ccMajor >= 9 ? 50 << 20 : 40 << 20;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR:
    *pi = 2048;
    break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
    *pi = d.ccMajor;
    break;
  case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
    *pi = d.ccMinor;
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR:
    *pi = d.sharedPerMultiprocessor();
    break;
  case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN:
    *pi = d.sharedOptin();
    break;
  default:
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "attribute %d is not emulated (rwkv_cuda_driver.h lists "
                "those that are)",
                int(attrib));
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) {
  LOCKED;
  if (CUresult r = checkDevice("cuDeviceTotalMem_v2", dev))
    return r;
  if (!bytes)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDeviceTotalMem_v2", "NULL");
  *bytes = s.device.totalMemory;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
  LOCKED;
  if (CUresult r = checkDevice("cuDevicePrimaryCtxRetain", dev))
    return r;
  if (!pctx)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuDevicePrimaryCtxRetain", "NULL");
  ++s.retained;
  *pctx = &s.primary;
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  const char *api = "cuDevicePrimaryCtxRelease_v2";
  LOCKED;
  if (CUresult r = checkDevice(api, dev))
    return r;
  if (s.retained == 0)
    return fail(CUDA_ERROR_INVALID_CONTEXT, api,
                "the primary context is not retained");
  if (--s.retained == 0)
    resetContext(s);
  return CUDA_SUCCESS;
}

CUresult cuCtxSetCurrent(CUcontext ctx) {
  LOCKED;
  if (CUresult r = initialized("cuCtxSetCurrent"))
    return r;
  if (ctx && (ctx != &s.primary || s.retained == 0))
    return fail(CUDA_ERROR_INVALID_CONTEXT, "cuCtxSetCurrent",
                "not the (retained) primary context");
  currentContext = ctx;
  return CUDA_SUCCESS;
}

CUresult cuCtxGetCurrent(CUcontext *pctx) {
  LOCKED;
  if (CUresult r = initialized("cuCtxGetCurrent"))
    return r;
  if (!pctx)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuCtxGetCurrent", "NULL");
  *pctx = currentContext;
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize(void) {
  LOCKED;
  if (CUresult r = ready("cuCtxSynchronize"))
    return r;
  return forbiddenWhileCapturing("cuCtxSynchronize");
}

CUresult cuModuleLoadDataEx(CUmodule *module, const void *image,
                            unsigned int numOptions, CUjit_option *options,
                            void **optionValues) {
  const char *api = "cuModuleLoadData";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = forbiddenWhileCapturing(api))
    return r;
  if (!module || !image || (numOptions && (!options || !optionValues)))
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL module or image");
  const auto *bytes = static_cast<const unsigned char *>(image);
  if (std::memcmp(bytes, RWKV_EMU_MAGIC, 8) != 0) {
    const char *kind = std::memcmp(bytes,
                                   "\x7f"
                                   "ELF",
                                   4) == 0
                           ? "an ELF cubin"
                       : bytes[0] == 0x50 && bytes[1] == 0xed &&
                               bytes[2] == 0x55 && bytes[3] == 0xba
                           ? "a fatbin"
                       : bytes[0] == '/' || bytes[0] == '.' ? "PTX text"
                                                            : "unknown bytes";
    return fail(CUDA_ERROR_INVALID_IMAGE, api,
                "the image is %s, not an emulator module (RWKVEMU1): "
                "libcuda-emu runs models whose kernels were compiled for the "
                "emulator (docs/cuda-emulator.md)",
                kind);
  }
  const auto *m = static_cast<const rwkv_emu_module *>(image);
  if (m->abi_version != RWKV_EMU_ABI_VERSION)
    return fail(CUDA_ERROR_INVALID_IMAGE, api,
                "the module was built for emulator ABI version %u, this "
                "library is version %u",
                m->abi_version, RWKV_EMU_ABI_VERSION);
  auto mod = std::make_unique<CUmod_st>();
  mod->image = m;
  for (uint32_t i = 0; i < m->kernel_count; ++i) {
    auto f = std::make_unique<CUfunc_st>();
    f->module = mod.get();
    f->kernel = &m->kernels[i];
    s.functions.insert(f.get());
    mod->functions.push_back(std::move(f));
  }
  *module = mod.release();
  s.modules.insert(*module);
  return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *module, const void *image) {
  return cuModuleLoadDataEx(module, image, 0, nullptr, nullptr);
}

CUresult cuModuleUnload(CUmodule hmod) {
  LOCKED;
  if (CUresult r = ready("cuModuleUnload"))
    return r;
  if (!s.modules.erase(hmod))
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuModuleUnload",
                "unknown module %p", static_cast<void *>(hmod));
  for (auto &f : hmod->functions)
    s.functions.erase(f.get());
  delete hmod;
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod,
                             const char *name) {
  const char *api = "cuModuleGetFunction";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (!s.modules.count(hmod))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown module %p",
                static_cast<void *>(hmod));
  if (!hfunc || !name)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL");
  std::string names;
  for (auto &f : hmod->functions) {
    if (std::strcmp(f->kernel->name, name) == 0) {
      *hfunc = f.get();
      return CUDA_SUCCESS;
    }
    names += (names.empty() ? "" : ", ") + std::string(f->kernel->name);
  }
  return fail(CUDA_ERROR_NOT_FOUND, api,
              "no kernel '%s' in the module (it has %s)", name,
              names.empty() ? "none" : names.c_str());
}

CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib,
                            int value) {
  const char *api = "cuFuncSetAttribute";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (!s.functions.count(hfunc))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown function");
  switch (attrib) {
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    if (value < 0 || value > s.device.sharedOptin())
      return fail(CUDA_ERROR_INVALID_VALUE, api,
                  "%d bytes of dynamic shared memory (the device has %d)",
                  value, s.device.sharedOptin());
    hfunc->maxDynamicShared = value;
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    if (value < -1 || value > 100)
      return fail(CUDA_ERROR_INVALID_VALUE, api, "carveout %d", value);
    return CUDA_SUCCESS;
  default:
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "attribute %d cannot be set (or is not emulated)", int(attrib));
  }
}

CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
  const char *api = "cuMemAlloc_v2";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = forbiddenWhileCapturing(api))
    return r;
  if (!dptr || bytesize == 0)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL pointer or 0 bytes");
  size_t rounded = (bytesize + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < bytesize || rounded > s.device.totalMemory - s.allocated)
    return fail(CUDA_ERROR_OUT_OF_MEMORY, api,
                "%zu bytes with %zu of %zu in use", bytesize, s.allocated,
                s.device.totalMemory);
  void *p = std::aligned_alloc(kAlignment, rounded);
  if (!p)
    return fail(CUDA_ERROR_OUT_OF_MEMORY, api, "host allocation of %zu bytes",
                rounded);
  std::memset(p, 0xff, rounded); // uninitialized device memory reads NaN
  s.allocations[reinterpret_cast<uintptr_t>(p)] = bytesize;
  s.allocated += rounded;
  *dptr = reinterpret_cast<CUdeviceptr>(p);
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr dptr) {
  const char *api = "cuMemFree_v2";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = forbiddenWhileCapturing(api))
    return r;
  if (dptr == 0)
    return CUDA_SUCCESS;
  auto it = s.allocations.find(uintptr_t(dptr));
  if (it == s.allocations.end())
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "0x%llx is not a device allocation (or was freed)",
                (unsigned long long)dptr);
  s.allocated -= (it->second + kAlignment - 1) / kAlignment * kAlignment;
  std::free(reinterpret_cast<void *>(dptr));
  s.allocations.erase(it);
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(size_t *free, size_t *total) {
  LOCKED;
  if (CUresult r = ready("cuMemGetInfo_v2"))
    return r;
  if (!free || !total)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemGetInfo_v2", "NULL");
  *total = s.device.totalMemory;
  *free = s.device.totalMemory - s.allocated;
  return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr dstDevice, const void *srcHost,
                         size_t ByteCount) {
  LOCKED;
  return memcpyImpl("cuMemcpyHtoD_v2", reinterpret_cast<void *>(dstDevice),
                    srcHost, ByteCount, nullptr, false,
                    {{"destination", dstDevice}});
}
CUresult cuMemcpyDtoH_v2(void *dstHost, CUdeviceptr srcDevice,
                         size_t ByteCount) {
  LOCKED;
  return memcpyImpl("cuMemcpyDtoH_v2", dstHost,
                    reinterpret_cast<void *>(srcDevice), ByteCount, nullptr,
                    false, {{"source", srcDevice}});
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                         size_t ByteCount) {
  LOCKED;
  return memcpyImpl("cuMemcpyDtoD_v2", reinterpret_cast<void *>(dstDevice),
                    reinterpret_cast<void *>(srcDevice), ByteCount, nullptr,
                    false, {{"destination", dstDevice}, {"source", srcDevice}});
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void *srcHost,
                              size_t ByteCount, CUstream hStream) {
  LOCKED;
  return memcpyImpl("cuMemcpyHtoDAsync_v2", reinterpret_cast<void *>(dstDevice),
                    srcHost, ByteCount, hStream, true,
                    {{"destination", dstDevice}});
}
CUresult cuMemcpyDtoHAsync_v2(void *dstHost, CUdeviceptr srcDevice,
                              size_t ByteCount, CUstream hStream) {
  LOCKED;
  return memcpyImpl("cuMemcpyDtoHAsync_v2", dstHost,
                    reinterpret_cast<void *>(srcDevice), ByteCount, hStream,
                    true, {{"source", srcDevice}});
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice,
                              size_t ByteCount, CUstream hStream) {
  LOCKED;
  return memcpyImpl("cuMemcpyDtoDAsync_v2", reinterpret_cast<void *>(dstDevice),
                    reinterpret_cast<void *>(srcDevice), ByteCount, hStream,
                    true, {{"destination", dstDevice}, {"source", srcDevice}});
}
CUresult cuMemsetD8_v2(CUdeviceptr dstDevice, unsigned char uc, size_t N) {
  LOCKED;
  return memsetImpl("cuMemsetD8_v2", dstDevice, uc, 1, N, nullptr, false);
}
CUresult cuMemsetD32_v2(CUdeviceptr dstDevice, unsigned int ui, size_t N) {
  LOCKED;
  return memsetImpl("cuMemsetD32_v2", dstDevice, ui, 4, N, nullptr, false);
}
CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N,
                         CUstream hStream) {
  LOCKED;
  return memsetImpl("cuMemsetD8Async", dstDevice, uc, 1, N, hStream, true);
}
CUresult cuMemsetD32Async(CUdeviceptr dstDevice, unsigned int ui, size_t N,
                          CUstream hStream) {
  LOCKED;
  return memsetImpl("cuMemsetD32Async", dstDevice, ui, 4, N, hStream, true);
}

CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) {
  LOCKED;
  if (CUresult r = ready("cuStreamCreate"))
    return r;
  if (!phStream || Flags > CU_STREAM_NON_BLOCKING)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamCreate", "NULL or flags %u",
                Flags);
  *phStream = new CUstream_st;
  (*phStream)->flags = Flags;
  s.streams.insert(*phStream);
  return CUDA_SUCCESS;
}

CUresult cuStreamDestroy_v2(CUstream hStream) {
  LOCKED;
  if (CUresult r = ready("cuStreamDestroy_v2"))
    return r;
  if (!hStream || !s.streams.erase(hStream))
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuStreamDestroy_v2",
                "unknown stream %p", static_cast<void *>(hStream));
  delete hStream->capture;
  delete hStream;
  return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream hStream) {
  const char *api = "cuStreamSynchronize";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = checkStream(api, hStream))
    return r;
  if (hStream && hStream->capture) {
    hStream->captureInvalid = true;
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, api,
                "the stream is capturing (the capture is invalidated)");
  }
  return CUDA_SUCCESS; // the work is done already
}

CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX,
                        unsigned int gridDimY, unsigned int gridDimZ,
                        unsigned int blockDimX, unsigned int blockDimY,
                        unsigned int blockDimZ, unsigned int sharedMemBytes,
                        CUstream hStream, void **kernelParams, void **extra) {
  const char *api = "cuLaunchKernel";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (!s.functions.count(f))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown function");
  const rwkv_emu_kernel &k = *f->kernel;
  if (extra)
    return fail(CUDA_ERROR_NOT_SUPPORTED, api,
                "%s: 'extra' (CU_LAUNCH_PARAM_*) is not emulated; pass "
                "kernelParams",
                k.name);
  uint64_t threads = uint64_t(blockDimX) * blockDimY * blockDimZ;
  if (!gridDimX || !gridDimY || !gridDimZ || gridDimX > 0x7fffffffu ||
      gridDimY > 65535 || gridDimZ > 65535 || !threads || threads > 1024 ||
      blockDimX > 1024 || blockDimY > 1024 || blockDimZ > 64)
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "%s: grid (%u,%u,%u) of blocks (%u,%u,%u) is outside the "
                "device's limits",
                k.name, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                blockDimZ);
  if (int(sharedMemBytes) > f->maxDynamicShared || sharedMemBytes > 1u << 30)
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "%s: %u bytes of dynamic shared memory, more than the "
                "function's %d (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_"
                "BYTES)",
                k.name, sharedMemBytes, f->maxDynamicShared);
  if (k.param_count && !kernelParams)
    return fail(CUDA_ERROR_INVALID_VALUE, api,
                "%s takes %u parameters; kernelParams is NULL", k.name,
                k.param_count);
  Node n;
  n.call.function = f;
  n.call.grid = {gridDimX, gridDimY, gridDimZ};
  n.call.block = {blockDimX, blockDimY, blockDimZ};
  n.call.sharedBytes = sharedMemBytes;
  size_t size = 0;
  for (uint32_t i = 0; i < k.param_count; ++i) {
    size_t align = std::max<size_t>(k.params[i].align, 1);
    if (align > alignof(std::max_align_t))
      return fail(CUDA_ERROR_INVALID_VALUE, api,
                  "%s: parameter %u is aligned to %zu bytes", k.name, i, align);
    size = (size + align - 1) / align * align;
    n.call.offsets.push_back(size);
    size += k.params[i].size;
  }
  n.call.storage.resize((size + sizeof(std::max_align_t) - 1) /
                        sizeof(std::max_align_t));
  for (uint32_t i = 0; i < k.param_count; ++i)
    std::memcpy(reinterpret_cast<char *>(n.call.storage.data()) +
                    n.call.offsets[i],
                kernelParams[i], k.params[i].size);
  n.kind = Node::Kernel;
  return submit(api, hStream, std::move(n));
}

CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  const char *api = "cuStreamBeginCapture_v2";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = checkStream(api, hStream))
    return r;
  if (!hStream)
    return fail(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, api,
                "the NULL stream cannot be captured");
  if (hStream->capture)
    return fail(CUDA_ERROR_ILLEGAL_STATE, api, "the stream captures already");
  if (mode > CU_STREAM_CAPTURE_MODE_RELAXED)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "mode %d", int(mode));
  hStream->capture = new CUgraph_st;
  hStream->mode = mode;
  hStream->captureThread = std::this_thread::get_id();
  hStream->captureInvalid = false;
  return CUDA_SUCCESS;
}

CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph) {
  const char *api = "cuStreamEndCapture";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (CUresult r = checkStream(api, hStream))
    return r;
  if (!phGraph)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL");
  if (!hStream || !hStream->capture)
    return fail(CUDA_ERROR_ILLEGAL_STATE, api, "the stream is not capturing");
  if (hStream->mode != CU_STREAM_CAPTURE_MODE_RELAXED &&
      hStream->captureThread != std::this_thread::get_id())
    return fail(CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD, api,
                "the capture began on another thread");
  std::unique_ptr<CUgraph_st> graph(hStream->capture);
  hStream->capture = nullptr;
  *phGraph = nullptr;
  if (hStream->captureInvalid)
    return fail(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, api,
                "an earlier call invalidated the capture");
  *phGraph = graph.release();
  s.graphs.insert(*phGraph);
  return CUDA_SUCCESS;
}

CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph,
                                     unsigned long long flags) {
  const char *api = "cuGraphInstantiateWithFlags";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (!s.graphs.count(hGraph))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown graph");
  if (!phGraphExec)
    return fail(CUDA_ERROR_INVALID_VALUE, api, "NULL");
  (void)flags; // upload, auto-free, priorities: nothing to do here
  *phGraphExec = new CUgraphExec_st{hGraph->nodes};
  s.execs.insert(*phGraphExec);
  return CUDA_SUCCESS;
}

CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream) {
  const char *api = "cuGraphLaunch";
  LOCKED;
  if (CUresult r = ready(api))
    return r;
  if (!s.execs.count(hGraphExec))
    return fail(CUDA_ERROR_INVALID_HANDLE, api, "unknown executable graph");
  for (const Node &n : hGraphExec->nodes)
    if (CUresult r = submit(api, hStream, n))
      return r;
  return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec hGraphExec) {
  LOCKED;
  if (CUresult r = ready("cuGraphExecDestroy"))
    return r;
  if (!s.execs.erase(hGraphExec))
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphExecDestroy",
                "unknown executable graph");
  delete hGraphExec;
  return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph hGraph) {
  LOCKED;
  if (CUresult r = ready("cuGraphDestroy"))
    return r;
  if (!s.graphs.erase(hGraph))
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuGraphDestroy", "unknown graph");
  delete hGraph;
  return CUDA_SUCCESS;
}
