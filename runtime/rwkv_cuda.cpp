//===- rwkv_cuda.cpp - The runtime's CUDA backend -------------------------===//
//
// Runs the launch plan of rwkv_model_desc.cuda (rwkv_abi.h) through the CUDA
// driver API, opened with dlopen: the runtime never links -lcuda, so a
// model runs where no driver is installed (on the CPU) and the tests run on
// the emulator (libcuda-emu.so.1, docs/cuda-emulator.md).
//
//   dlopen(RWKV_CUDA_LIBRARY | libcuda.so.1) ─► cuInit, version >= 13000
//   device 0: primary context, compute capability ─► pickImage
//   cuModuleLoadData(image), cuModuleGetFunction(every kernel)
//   weights, initial state ─► device (once per model)
//   per state: stream, state, tokens/logits/scratch (grown on demand)
//   eval: chunks ─► runPlan(T, R): LAUNCH / LOOP / END_LOOP
//         decode (T = 1, R = 1): captured once, cuGraphLaunch per token
//
// Built without exceptions; every failure is a status code plus a message.
//
//===----------------------------------------------------------------------===//

#include "rwkv_cuda.h"
#include "rwkv_cuda_driver.h"
#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <dlfcn.h>

namespace rwkv_cuda {
namespace {

/// The driver's functions, looked up once per process.
struct Driver {
  void *handle = nullptr;
#define RWKV_CUDA_MEMBER(name, params) CUresult(*name) params = nullptr;
  RWKV_CUDA_DRIVER_FUNCTIONS(RWKV_CUDA_MEMBER)
#undef RWKV_CUDA_MEMBER
  int status = RWKV_OK; // of loading and cuInit
  std::string error;    // why it is unusable
  int version = 0;      // cuDriverGetVersion
};

/// The CUDA version a driver version number means: 13000 -> "13.0".
std::string cudaVersion(int v) {
  return fmt::format("{}.{}", v / 1000, v % 1000 / 10);
}

/// "CUDA_ERROR_OUT_OF_MEMORY (out of memory)".
std::string resultText(const Driver &d, CUresult r) {
  const char *name = nullptr, *text = nullptr;
  if (d.cuGetErrorName)
    d.cuGetErrorName(r, &name);
  if (d.cuGetErrorString)
    d.cuGetErrorString(r, &text);
  std::string s = name ? name : fmt::format("CUresult {}", int(r));
  if (text)
    s += fmt::format(" ({})", text);
  return s;
}

/// The status of a failed driver call: out of memory, or the device's.
int statusOf(CUresult r) {
  return r == CUDA_ERROR_OUT_OF_MEMORY ? RWKV_ERROR_MEMORY : RWKV_ERROR_DEVICE;
}

/// Loads the driver: dlopen, dlsym of every function, cuInit, its version.
void load(Driver &d) {
  const char *env = std::getenv("RWKV_CUDA_LIBRARY");
  const char *path = env && *env ? env : "libcuda.so.1";
  d.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!d.handle) {
    const char *why = dlerror();
    d.status = RWKV_ERROR_DEVICE;
    d.error = env && *env
                  ? fmt::format("cannot load the CUDA driver library '{}' "
                                "(RWKV_CUDA_LIBRARY): {}",
                                path, why ? why : "?")
                  : fmt::format("no NVIDIA driver: cannot load {} ({})", path,
                                why ? why : "?");
    return;
  }
#define RWKV_CUDA_LOOKUP(name, params)                                         \
  d.name = reinterpret_cast<decltype(d.name)>(dlsym(d.handle, #name));         \
  if (!d.name) {                                                               \
    d.status = RWKV_ERROR_DEVICE;                                              \
    d.error = fmt::format("the CUDA driver library '{}' lacks {}: the driver " \
                          "is too old (this model needs CUDA 13, R580 or "     \
                          "newer)",                                            \
                          path, #name);                                        \
    return;                                                                    \
  }
  RWKV_CUDA_DRIVER_FUNCTIONS(RWKV_CUDA_LOOKUP)
#undef RWKV_CUDA_LOOKUP
  if (CUresult r = d.cuInit(0)) {
    d.status = RWKV_ERROR_DEVICE;
    d.error = r == CUDA_ERROR_NO_DEVICE
                  ? fmt::format("no CUDA device: cuInit failed: {}",
                                resultText(d, r))
                  : fmt::format("the CUDA driver cannot start: cuInit "
                                "failed: {}",
                                resultText(d, r));
    return;
  }
  if (CUresult r = d.cuDriverGetVersion(&d.version)) {
    d.status = RWKV_ERROR_DEVICE;
    d.error = fmt::format("cuDriverGetVersion failed: {}", resultText(d, r));
    return;
  }
  if (d.version < 13000) {
    d.status = RWKV_ERROR_DEVICE;
    d.error = fmt::format("the NVIDIA driver is too old: it runs CUDA {} "
                          "(version {}), the kernels of this model need CUDA "
                          "13.0 (driver R580 or newer)",
                          cudaVersion(d.version), d.version);
  }
}

/// The process's driver, loaded at the first call (thread-safe).
const Driver &driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] { load(d); });
  return d;
}

/// Reports a failed call `what` of the driver.
int cuFail(CUresult r, const char *what, char *err, size_t errlen) {
  return RWKV_FAIL(err, errlen, statusOf(r), "CUDA: {} failed: {}", what,
                   resultText(driver(), r));
}

/// Calls the driver function `name` and returns the status of a failure
/// from the enclosing function (which has `err` and `errlen`).
#define RWKV_CU(name, ...)                                                     \
  do {                                                                         \
    if (CUresult rwkv_cu_r = driver().name(__VA_ARGS__))                       \
      return cuFail(rwkv_cu_r, #name, err, errlen);                            \
  } while (0)

const char *kindName(int32_t kind) {
  switch (kind) {
  case RWKV_CUDA_IMAGE_CUBIN:
    return "cubin";
  case RWKV_CUDA_IMAGE_PTX:
    return "PTX";
  case RWKV_CUDA_IMAGE_EMULATOR:
    return "emulator";
  default:
    return "unknown";
  }
}

std::string imageName(const rwkv_cuda_image &im) {
  if (im.kind == RWKV_CUDA_IMAGE_EMULATOR)
    return "emulator";
  return fmt::format("{} sm_{}", kindName(im.kind), im.arch);
}

} // namespace

//===----------------------------------------------------------------------===//
// The program
//===----------------------------------------------------------------------===//

int checkProgram(const rwkv_model_desc &d, char *err, size_t errlen) {
  const rwkv_cuda_program *p = d.cuda;
#define bad(format, ...)                                                       \
  RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,                                     \
            "the model's CUDA program is malformed: " format, ##__VA_ARGS__)
  if (!p)
    return bad("the descriptor has RWKV_BACKEND_CUDA but no program");
  if (p->n_images <= 0 || !p->images)
    return bad("no kernel images");
  for (int32_t i = 0; i < p->n_images; ++i) {
    const rwkv_cuda_image &im = p->images[i];
    if (im.kind < RWKV_CUDA_IMAGE_CUBIN || im.kind > RWKV_CUDA_IMAGE_EMULATOR ||
        !im.data || (im.kind != RWKV_CUDA_IMAGE_EMULATOR && im.arch < 10))
      return bad("image {} (kind {}, sm_{}) is unusable", i, im.kind, im.arch);
  }
  if (p->n_kernels < 0 || (p->n_kernels && !p->kernel_names))
    return bad("{} kernels without names", p->n_kernels);
  for (int32_t i = 0; i < p->n_kernels; ++i)
    if (!p->kernel_names[i] || !*p->kernel_names[i])
      return bad("kernel {} has no name", i);
  if (p->n_steps <= 0 || !p->steps || p->n_args < 0 ||
      (p->n_args && !p->args) || p->scratch_bytes_per_token < 0 ||
      p->scratch_bytes_per_token % 16)
    return bad("{} steps, {} arguments, {} scratch bytes per token",
               p->n_steps, p->n_args, p->scratch_bytes_per_token);
  // Loops first: the layers k each step's arguments are evaluated for.
  std::vector<int64_t> layers(size_t(p->n_steps), 1);
  for (int64_t i = 0, open = -1; i < p->n_steps; ++i) {
    const rwkv_cuda_step &s = p->steps[i];
    if (s.kind == RWKV_CUDA_LOOP) {
      if (open >= 0)
        return bad("step {}: a loop inside the loop of step {}", i, open);
      if (s.count < 0)
        return bad("step {}: a loop of {} iterations", i, s.count);
      open = i;
    } else if (s.kind == RWKV_CUDA_END_LOOP) {
      if (open < 0)
        return bad("step {}: END_LOOP without LOOP", i);
      open = -1;
    } else if (s.kind != RWKV_CUDA_LAUNCH) {
      return bad("step {} has unknown kind {}", i, s.kind);
    } else if (open >= 0) {
      layers[size_t(i)] = p->steps[open].count;
    }
    if (i + 1 == p->n_steps && open >= 0)
      return bad("the loop of step {} has no END_LOOP", open);
  }
  for (int64_t i = 0; i < p->n_steps; ++i) {
    const rwkv_cuda_step &s = p->steps[i];
    if (s.kind != RWKV_CUDA_LAUNCH)
      continue;
    if (s.kernel < 0 || s.kernel >= p->n_kernels)
      return bad("step {} launches kernel {} of {}", i, s.kernel, p->n_kernels);
    if (s.when < RWKV_CUDA_ALWAYS || s.when > RWKV_CUDA_R_MANY)
      return bad("step {} has unknown condition {}", i, s.when);
    for (const rwkv_cuda_dim &g : s.grid)
      if (g.count <= 0 || g.per <= 0 || g.source < RWKV_CUDA_DIM_ONE ||
          g.source > RWKV_CUDA_DIM_R)
        return bad("step {} has a grid dimension {} * ceil(source {} / {})",
                   i, g.count, g.source, g.per);
    if (!s.block[0] || !s.block[1] || !s.block[2])
      return bad("step {} has an empty block", i);
    if (s.n_args < 0 || s.first_arg < 0 || s.first_arg > p->n_args ||
        s.n_args > p->n_args - s.first_arg)
      return bad("step {} takes arguments [{}, +{}) of {}", i, s.first_arg,
                 s.n_args, p->n_args);
    int64_t last = layers[size_t(i)] - 1; // the last k of the step's loop
    for (int32_t j = 0; j < s.n_args; ++j) {
      const rwkv_cuda_arg &a = p->args[s.first_arg + j];
      int64_t lo = std::min(a.value, a.value + last * a.layer_stride);
      int64_t hi = std::max(a.value, a.value + last * a.layer_stride);
      int64_t limit = a.kind == RWKV_CUDA_ARG_WEIGHTS ? d.weights_bytes
                      : a.kind == RWKV_CUDA_ARG_STATE ? d.state_floats
                      : a.kind == RWKV_CUDA_ARG_SCRATCH
                          ? p->scratch_bytes_per_token
                          : INT64_MAX;
      if (a.kind < RWKV_CUDA_ARG_WEIGHTS || a.kind > RWKV_CUDA_ARG_INT)
        return bad("step {} argument {} has unknown kind {}", i, j, a.kind);
      if (limit != INT64_MAX && (lo < 0 || hi > limit ||
                                 (a.kind == RWKV_CUDA_ARG_SCRATCH &&
                                  a.layer_stride != 0)))
        return bad("step {} argument {} (kind {}) points at [{}, {}] outside "
                   "its buffer of {}",
                   i, j, a.kind, lo, hi, limit);
    }
  }
  return RWKV_OK;
#undef bad
}

int pickImage(const rwkv_cuda_program &p, int major, int minor, char *err,
              size_t errlen) {
  int device = 10 * major + minor;
  int cubin = -1, ptx = -1, lo = INT32_MAX, hi = 0;
  for (int32_t i = 0; i < p.n_images; ++i) {
    const rwkv_cuda_image &im = p.images[i];
    if (im.kind == RWKV_CUDA_IMAGE_EMULATOR)
      return i;
    lo = std::min(lo, im.arch);
    hi = std::max(hi, im.arch);
    if (im.kind == RWKV_CUDA_IMAGE_CUBIN && im.arch / 10 == major &&
        im.arch <= device && (cubin < 0 || im.arch > p.images[cubin].arch))
      cubin = i;
    if (im.kind == RWKV_CUDA_IMAGE_PTX && im.arch <= device &&
        (ptx < 0 || im.arch > p.images[ptx].arch))
      ptx = i;
  }
  if (cubin >= 0)
    return cubin;
  if (ptx >= 0)
    return ptx;
  std::string range = lo == hi ? fmt::format("sm_{}", lo)
                               : fmt::format("sm_{}..sm_{}", lo, hi);
  if (device < lo)
    RWKV_SET_ERROR(err, errlen,
                   "GPU sm_{} is older than the kernels of this model ({})",
                   device, range);
  else
    RWKV_SET_ERROR(err, errlen,
                   "no kernels of this model run on GPU sm_{}: it has cubins "
                   "for {} and no PTX it can compile (rebuild the model for "
                   "sm_{})",
                   device, range, device);
  return -1;
}

//===----------------------------------------------------------------------===//
// Model
//===----------------------------------------------------------------------===//

struct Model {
  const rwkv_model_desc *desc = nullptr;
  const rwkv_cuda_program *prog = nullptr;
  CUdevice device = 0;
  CUcontext context = nullptr; // device 0's primary context, retained
  CUmodule module = nullptr;
  std::vector<CUfunction> functions; // (n_kernels)
  CUdeviceptr weights = 0;           // (max(weights_bytes, 256))
  CUdeviceptr initial = 0;           // (state_floats) the initial state
  std::string info;                  // describe()
};

namespace {

/// Makes the model's context current on the calling thread.
int enter(const Model &m, char *err, size_t errlen) {
  RWKV_CU(cuCtxSetCurrent, m.context);
  return RWKV_OK;
}

/// cuMemAlloc_v2 of `bytes` (at least 1), naming what it is for.
int allocate(CUdeviceptr &p, size_t bytes, const char *what, char *err,
             size_t errlen) {
  p = 0;
  if (CUresult r = driver().cuMemAlloc_v2(&p, std::max<size_t>(bytes, 1))) {
    p = 0;
    return RWKV_FAIL(err, errlen, statusOf(r),
                     "CUDA: out of device memory for {} ({} bytes): "
                     "cuMemAlloc_v2 failed: {}",
                     what, bytes, resultText(driver(), r));
  }
  return RWKV_OK;
}

void release(CUdeviceptr &p) {
  if (p)
    driver().cuMemFree_v2(p);
  p = 0;
}

/// Loads the image and looks every kernel up.
int loadKernels(Model &m, int image, char *err, size_t errlen) {
  const rwkv_cuda_program &p = *m.prog;
  if (CUresult r =
          driver().cuModuleLoadData(&m.module, p.images[image].data)) {
    m.module = nullptr;
    bool emulated = p.images[image].kind == RWKV_CUDA_IMAGE_EMULATOR;
    return RWKV_FAIL(err, errlen, statusOf(r),
                     "CUDA: cuModuleLoadData of the {} image failed: {}{}",
                     imageName(p.images[image]), resultText(driver(), r),
                     emulated ? " (the model's kernels were compiled for the "
                                "CUDA emulator: run it with "
                                "RWKV_CUDA_LIBRARY=.../libcuda-emu.so.1)"
                              : "");
  }
  m.functions.assign(size_t(p.n_kernels), nullptr);
  for (int32_t k = 0; k < p.n_kernels; ++k)
    if (CUresult r = driver().cuModuleGetFunction(&m.functions[size_t(k)],
                                                  m.module, p.kernel_names[k]))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                       "CUDA: cuModuleGetFunction('{}') failed: {}",
                       p.kernel_names[k], resultText(driver(), r));
  // Dynamic shared memory beyond 48 KiB must be asked for per kernel.
  std::vector<uint32_t> shared(size_t(p.n_kernels), 0);
  for (int64_t i = 0; i < p.n_steps; ++i)
    if (p.steps[i].kind == RWKV_CUDA_LAUNCH)
      shared[size_t(p.steps[i].kernel)] =
          std::max(shared[size_t(p.steps[i].kernel)], p.steps[i].shared_bytes);
  for (int32_t k = 0; k < p.n_kernels; ++k)
    if (shared[size_t(k)] > 48 * 1024)
      if (CUresult r = driver().cuFuncSetAttribute(
              m.functions[size_t(k)],
              CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              int(shared[size_t(k)])))
        return RWKV_FAIL(err, errlen, statusOf(r),
                         "CUDA: cuFuncSetAttribute('{}', "
                         "MAX_DYNAMIC_SHARED_SIZE_BYTES, {}) failed: {}",
                         p.kernel_names[k], shared[size_t(k)],
                         resultText(driver(), r));
  return RWKV_OK;
}

/// The body of open() after the context is retained: m owns what it made.
int openOnDevice(Model &m, const uint8_t *weights, const float *initial,
                 char *err, size_t errlen) {
  const Driver &d = driver();
  const rwkv_model_desc &desc = *m.desc;
  RWKV_CU(cuCtxSetCurrent, m.context);
  int major = 0, minor = 0;
  RWKV_CU(cuDeviceGetAttribute, &major,
          CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, m.device);
  RWKV_CU(cuDeviceGetAttribute, &minor,
          CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, m.device);
  char name[256] = {};
  RWKV_CU(cuDeviceGetName, name, int(sizeof name - 1), m.device);
  size_t total = 0;
  RWKV_CU(cuDeviceTotalMem_v2, &total, m.device);
  int image = pickImage(*m.prog, major, minor, err, errlen);
  if (image < 0)
    return RWKV_ERROR_DEVICE;
  m.info = fmt::format("{}, compute capability {}.{}, {:.1f} GiB, driver "
                       "CUDA {}, kernels: {}",
                       name, major, minor, double(total) / (1 << 30),
                       cudaVersion(d.version),
                       imageName(m.prog->images[image]));
  if (int status = loadKernels(m, image, err, errlen))
    return status;
  size_t weightBytes = size_t(desc.weights_bytes);
  size_t stateBytes = size_t(desc.state_floats) * sizeof(float);
  if (int status = allocate(m.weights, std::max<size_t>(weightBytes, 256),
                            "the weights", err, errlen))
    return status;
  if (weightBytes)
    RWKV_CU(cuMemcpyHtoD_v2, m.weights, weights, weightBytes);
  if (int status =
          allocate(m.initial, stateBytes, "the initial state", err, errlen))
    return status;
  if (stateBytes)
    RWKV_CU(cuMemcpyHtoD_v2, m.initial, initial, stateBytes);
  return RWKV_OK;
}

} // namespace

int open(const rwkv_model_desc &desc, const uint8_t *weights,
         const float *initial, Model **out, char *err, size_t errlen) {
  *out = nullptr;
  if (int status = checkProgram(desc, err, errlen))
    return status;
  const Driver &d = driver();
  if (d.status)
    return RWKV_FAIL(err, errlen, d.status, "CUDA: {}", d.error.c_str());
  int count = 0;
  RWKV_CU(cuDeviceGetCount, &count);
  if (count < 1)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_DEVICE,
                     "CUDA: no CUDA device (cuDeviceGetCount: 0)");
  Model *m = new (std::nothrow) Model;
  if (!m)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY, "out of memory");
  m->desc = &desc;
  m->prog = desc.cuda;
  int status = RWKV_OK;
  if (CUresult r = d.cuDeviceGet(&m->device, 0))
    status = cuFail(r, "cuDeviceGet", err, errlen);
  else if ((r = d.cuDevicePrimaryCtxRetain(&m->context, m->device))) {
    m->context = nullptr;
    status = cuFail(r, "cuDevicePrimaryCtxRetain", err, errlen);
  } else {
    status = openOnDevice(*m, weights, initial, err, errlen);
  }
  if (status) {
    close(m);
    return status;
  }
  *out = m;
  return RWKV_OK;
}

void close(Model *m) {
  if (!m)
    return;
  if (m->context) {
    const Driver &d = driver();
    d.cuCtxSetCurrent(m->context);
    release(m->weights);
    release(m->initial);
    if (m->module)
      d.cuModuleUnload(m->module);
    d.cuDevicePrimaryCtxRelease_v2(m->device);
  }
  delete m;
}

const char *describe(const Model &m) { return m.info.c_str(); }

//===----------------------------------------------------------------------===//
// State
//===----------------------------------------------------------------------===//

struct State {
  Model *model = nullptr;
  CUstream stream = nullptr;
  CUdeviceptr state = 0;   // (state_floats)
  CUdeviceptr tokens = 0;  // (tokenCap) int32
  CUdeviceptr logits = 0;  // (logitRows, n_vocab) float
  CUdeviceptr scratch = 0; // (scratch_bytes_per_token * scratchCap)
  size_t tokenCap = 0, logitRows = 0, scratchCap = 0;
  bool graphs = true;           // decode replays `decode`
  CUgraphExec decode = nullptr; // T = 1, R = 1 on the buffers above
  int32_t hostToken = 0;        // what the decode graph's copy reads
  std::vector<unsigned long long> argValues; // one launch's parameters
  std::vector<void *> argPointers;           // &argValues[i]
};

int stateNew(Model &m, bool graphs, State **out, char *err, size_t errlen) {
  *out = nullptr;
  if (int status = enter(m, err, errlen))
    return status;
  State *s = new (std::nothrow) State;
  if (!s)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                     "out of memory for a state");
  s->model = &m;
  s->graphs = graphs;
  size_t bytes = size_t(m.desc->state_floats) * sizeof(float);
  int status = allocate(s->state, bytes, "a state", err, errlen);
  if (!status) {
    if (CUresult r =
            driver().cuStreamCreate(&s->stream, CU_STREAM_NON_BLOCKING)) {
      s->stream = nullptr;
      status = cuFail(r, "cuStreamCreate", err, errlen);
    }
  }
  if (!status)
    status = stateClear(*s, err, errlen);
  if (status) {
    stateFree(s);
    return status;
  }
  *out = s;
  return RWKV_OK;
}

namespace {

void dropGraph(State &s) {
  if (s.decode)
    driver().cuGraphExecDestroy(s.decode);
  s.decode = nullptr;
}

/// Waits for the state's stream.
int sync(const State &s, char *err, size_t errlen) {
  RWKV_CU(cuStreamSynchronize, s.stream);
  return RWKV_OK;
}

} // namespace

void stateFree(State *s) {
  if (!s)
    return;
  const Driver &d = driver();
  d.cuCtxSetCurrent(s->model->context);
  dropGraph(*s);
  if (s->stream) {
    d.cuStreamSynchronize(s->stream);
    d.cuStreamDestroy_v2(s->stream);
  }
  release(s->state);
  release(s->tokens);
  release(s->logits);
  release(s->scratch);
  delete s;
}

int stateClear(State &s, char *err, size_t errlen) {
  if (int status = enter(*s.model, err, errlen))
    return status;
  size_t bytes = size_t(s.model->desc->state_floats) * sizeof(float);
  if (bytes)
    RWKV_CU(cuMemcpyDtoDAsync_v2, s.state, s.model->initial, bytes, s.stream);
  return sync(s, err, errlen);
}

int stateCopy(State &dst, const State &src, char *err, size_t errlen) {
  if (&dst == &src)
    return RWKV_OK;
  if (int status = enter(*dst.model, err, errlen))
    return status;
  size_t bytes = size_t(dst.model->desc->state_floats) * sizeof(float);
  if (bytes)
    RWKV_CU(cuMemcpyDtoDAsync_v2, dst.state, src.state, bytes, dst.stream);
  return sync(dst, err, errlen);
}

int stateRead(const State &s, float *host, char *err, size_t errlen) {
  if (int status = enter(*s.model, err, errlen))
    return status;
  size_t bytes = size_t(s.model->desc->state_floats) * sizeof(float);
  if (bytes)
    RWKV_CU(cuMemcpyDtoHAsync_v2, host, s.state, bytes, s.stream);
  return sync(s, err, errlen);
}

int stateWrite(State &s, const float *host, char *err, size_t errlen) {
  if (int status = enter(*s.model, err, errlen))
    return status;
  size_t bytes = size_t(s.model->desc->state_floats) * sizeof(float);
  if (bytes)
    RWKV_CU(cuMemcpyHtoDAsync_v2, s.state, host, bytes, s.stream);
  return sync(s, err, errlen);
}

//===----------------------------------------------------------------------===//
// The plan interpreter
//===----------------------------------------------------------------------===//

namespace {

bool holds(int32_t when, int64_t T, int64_t R) {
  switch (when) {
  case RWKV_CUDA_T_ONE:
    return T == 1;
  case RWKV_CUDA_T_MANY:
    return T > 1;
  case RWKV_CUDA_R_ONE:
    return R == 1;
  case RWKV_CUDA_R_MANY:
    return R > 1;
  default:
    return true;
  }
}

/// count * ceil(source / per), or 0 when it exceeds what a grid can have.
unsigned gridDim(const rwkv_cuda_dim &g, int64_t T, int64_t R) {
  int64_t source = g.source == RWKV_CUDA_DIM_T   ? T
                   : g.source == RWKV_CUDA_DIM_R ? R
                                                 : 1;
  int64_t n = int64_t(g.count) * ((source + g.per - 1) / g.per);
  return n > 0 && n <= INT32_MAX ? unsigned(n) : 0;
}

/// The value of argument `a` for layer k of a call of T tokens and R rows
/// on the state's buffers (cap: the capacity the scratch was sized for).
unsigned long long argValue(const State &s, const rwkv_cuda_arg &a, int64_t k,
                            int64_t T, int64_t R) {
  int64_t at = a.value + k * a.layer_stride;
  switch (a.kind) {
  case RWKV_CUDA_ARG_WEIGHTS:
    return s.model->weights + uint64_t(at);
  case RWKV_CUDA_ARG_STATE:
    return s.state + uint64_t(at) * sizeof(float);
  case RWKV_CUDA_ARG_SCRATCH:
    return s.scratch ? s.scratch + uint64_t(a.value) * s.scratchCap : 0;
  case RWKV_CUDA_ARG_TOKENS:
    return s.tokens;
  case RWKV_CUDA_ARG_LOGITS:
    return s.logits;
  case RWKV_CUDA_ARG_T:
    return uint64_t(T);
  case RWKV_CUDA_ARG_R:
    return uint64_t(R);
  default:
    return uint64_t(a.value);
  }
}

/// Enqueues the plan's launches for T tokens (in s.tokens) and R rows of
/// logits (to s.logits) on the state's stream.
int runPlan(State &s, int64_t T, int64_t R, char *err, size_t errlen) {
  const rwkv_cuda_program &p = *s.model->prog;
  int64_t loopStart = -1, loopCount = 0, k = 0;
  for (int64_t i = 0; i < p.n_steps; ++i) {
    const rwkv_cuda_step &st = p.steps[i];
    if (st.kind == RWKV_CUDA_LOOP) {
      loopStart = i;
      loopCount = st.count;
      k = 0;
      if (loopCount == 0) { // skip the body and its END_LOOP
        while (p.steps[i].kind != RWKV_CUDA_END_LOOP)
          ++i;
        loopStart = -1;
      }
      continue;
    }
    if (st.kind == RWKV_CUDA_END_LOOP) {
      if (loopStart >= 0 && ++k < loopCount)
        i = loopStart;
      else
        loopStart = -1, k = 0;
      continue;
    }
    if (!holds(st.when, T, R))
      continue;
    unsigned grid[3];
    for (int d = 0; d < 3; ++d)
      if (!(grid[d] = gridDim(st.grid[d], T, R)))
        return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                         "CUDA: step {} ('{}') needs a grid larger than 2^31 "
                         "- 1 blocks for {} tokens",
                         i, p.kernel_names[st.kernel], T);
    s.argValues.resize(size_t(st.n_args));
    s.argPointers.resize(size_t(st.n_args));
    for (int32_t j = 0; j < st.n_args; ++j) {
      s.argValues[size_t(j)] = argValue(s, p.args[st.first_arg + j], k, T, R);
      s.argPointers[size_t(j)] = &s.argValues[size_t(j)];
    }
    if (CUresult r = driver().cuLaunchKernel(
            s.model->functions[size_t(st.kernel)], grid[0], grid[1], grid[2],
            st.block[0], st.block[1], st.block[2], st.shared_bytes, s.stream,
            s.argPointers.data(), nullptr))
      return RWKV_FAIL(err, errlen, statusOf(r),
                       "CUDA: cuLaunchKernel('{}', step {}, layer {}, T {}) "
                       "failed: {}",
                       p.kernel_names[st.kernel], i, k, T,
                       resultText(driver(), r));
  }
  return RWKV_OK;
}

/// Grows the buffers to `tokens` tokens and `rows` rows of logits. Nothing
/// has run yet: a failure leaves the state as it was.
int reserve(State &s, size_t tokens, size_t rows, char *err, size_t errlen) {
  const rwkv_model_desc &d = *s.model->desc;
  auto grow = [&](CUdeviceptr &p, size_t &cap, size_t want, size_t unit,
                  const char *what) {
    if (cap >= want)
      return int(RWKV_OK);
    dropGraph(s); // it holds the old addresses
    release(p);
    cap = 0;
    if (int status = allocate(p, want * unit, what, err, errlen))
      return status;
    cap = want;
    return int(RWKV_OK);
  };
  if (int status = grow(s.tokens, s.tokenCap, tokens, sizeof(int32_t),
                        "the tokens of a call"))
    return status;
  if (int status = grow(s.logits, s.logitRows, rows,
                        size_t(d.n_vocab) * sizeof(float),
                        "the logits of a call"))
    return status;
  size_t perToken = size_t(s.model->prog->scratch_bytes_per_token);
  if (perToken)
    return grow(s.scratch, s.scratchCap, tokens, perToken,
                "the activations of a call (scratch)");
  s.scratchCap = std::max(s.scratchCap, tokens);
  return RWKV_OK;
}

/// Captures the decode step (T = 1, R = 1, the token at s.tokens[0]).
int captureDecode(State &s, char *err, size_t errlen) {
  const Driver &d = driver();
  RWKV_CU(cuStreamBeginCapture_v2, s.stream,
          CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
  int status = runPlan(s, 1, 1, err, errlen);
  CUgraph graph = nullptr;
  CUresult r = d.cuStreamEndCapture(s.stream, &graph);
  if (status) {
    if (graph)
      d.cuGraphDestroy(graph);
    return status;
  }
  if (r)
    return cuFail(r, "cuStreamEndCapture", err, errlen);
  r = d.cuGraphInstantiateWithFlags(&s.decode, graph, 0);
  d.cuGraphDestroy(graph);
  if (r) {
    s.decode = nullptr;
    return cuFail(r, "cuGraphInstantiateWithFlags", err, errlen);
  }
  return RWKV_OK;
}

/// One token in RNN mode: its id to the device, then the graph or the plan.
int decodeStep(State &s, int32_t token, char *err, size_t errlen) {
  s.hostToken = token;
  RWKV_CU(cuMemcpyHtoDAsync_v2, s.tokens, &s.hostToken, sizeof(int32_t),
          s.stream);
  if (!s.graphs)
    return runPlan(s, 1, 1, err, errlen);
  RWKV_CU(cuGraphLaunch, s.decode, s.stream);
  return RWKV_OK;
}

} // namespace

int eval(State &s, const int32_t *tokens, size_t n, float *logits, Mode mode,
         size_t step, const char *fn, char *err, size_t errlen) {
  if (int status = enter(*s.model, err, errlen))
    return status;
  size_t vocab = size_t(s.model->desc->n_vocab);
  size_t cap = mode == Mode::Rnn ? 1 : std::min(n, std::max<size_t>(step, 1));
  size_t rows = mode == Mode::All ? cap : 1;
  if (int status = reserve(s, cap, rows, err, errlen)) {
    // The message names the allocation; say what the call was.
    std::string what = err && errlen ? err : "";
    return RWKV_FAIL(err, errlen, status,
                     "{}: {} ({} tokens in chunks of {}); the state is as "
                     "before the call",
                     fn, what.c_str(), n, cap);
  }
  if (mode == Mode::Rnn) {
    if (s.graphs && !s.decode)
      if (int status = captureDecode(s, err, errlen))
        return status;
    for (size_t i = 0; i < n; ++i) {
      if (int status = decodeStep(s, tokens[i], err, errlen))
        return status;
    }
    // Pageable host memory: the copy is done when the stream is.
    RWKV_CU(cuMemcpyDtoHAsync_v2, logits, s.logits, vocab * sizeof(float),
            s.stream);
    return sync(s, err, errlen);
  }
  for (size_t done = 0; done < n;) {
    size_t T = std::min(n - done, cap);
    size_t R = mode == Mode::All ? T : 1;
    RWKV_CU(cuMemcpyHtoDAsync_v2, s.tokens, tokens + done,
            T * sizeof(int32_t), s.stream);
    if (int status = runPlan(s, int64_t(T), int64_t(R), err, errlen))
      return status;
    if (mode == Mode::All)
      RWKV_CU(cuMemcpyDtoHAsync_v2, logits + done * vocab, s.logits,
              R * vocab * sizeof(float), s.stream);
    else if (done + T == n)
      RWKV_CU(cuMemcpyDtoHAsync_v2, logits, s.logits, vocab * sizeof(float),
              s.stream);
    // The stream orders the next chunk's copies after these launches.
    done += T;
  }
  return sync(s, err, errlen);
}

} // namespace rwkv_cuda
