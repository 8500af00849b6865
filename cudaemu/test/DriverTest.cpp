//===- DriverTest.cpp - libcuda-emu.so.1 through dlopen, as the runtime
//----===//
//
// Opens the library RWKV_CUDA_LIBRARY names (ctest sets it to the build's
// libcuda-emu.so.1), looks the driver API up with dlsym, and runs the test
// kernels (linked into this binary, compiled as host C++) through it:
// memory, modules, launches, errors, and a decode step captured as a graph
// and replayed token after token with the state kept on the device.
//
//===----------------------------------------------------------------------===//

#include "Wkv7Reference.h"
#include "rwkv_cuda_driver.h"
#include "rwkv_cuda_emu_abi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <vector>

extern "C" const rwkv_emu_module cudaemu_test_wkv7, cudaemu_test_misc;

using namespace rwkv_emu::test;
using ::testing::HasSubstr;

namespace {

/// The driver API, looked up by name as the runtime does.
struct Driver {
  void *handle = nullptr;
#define MEMBER(name, params) CUresult(*name) params = nullptr;
  RWKV_CUDA_DRIVER_FUNCTIONS(MEMBER)
#undef MEMBER
};

Driver &driver() {
  static Driver d = [] {
    Driver d;
    const char *path = std::getenv("RWKV_CUDA_LIBRARY");
    if (!path) {
      ADD_FAILURE() << "RWKV_CUDA_LIBRARY is not set (ctest sets it)";
      return d;
    }
    d.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!d.handle) {
      ADD_FAILURE() << dlerror();
      return d;
    }
#define LOOKUP(name, params)                                                   \
  d.name = reinterpret_cast<decltype(d.name)>(dlsym(d.handle, #name));
    RWKV_CUDA_DRIVER_FUNCTIONS(LOOKUP)
#undef LOOKUP
    return d;
  }();
  return d;
}

std::string name(CUresult r) {
  const char *s = nullptr;
  driver().cuGetErrorName(r, &s);
  return s ? s : "?";
}

#define EXPECT_CU(expected, call) EXPECT_EQ(name(call), name(expected))
#define ASSERT_OK(call) ASSERT_EQ(name(call), "CUDA_SUCCESS")

class DriverTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    Driver &d = driver();
    ASSERT_NE(d.handle, nullptr);
    ASSERT_OK(d.cuInit(0));
    ASSERT_OK(d.cuDevicePrimaryCtxRetain(&context, 0));
    ASSERT_OK(d.cuCtxSetCurrent(context));
  }
  static void TearDownTestSuite() { driver().cuDevicePrimaryCtxRelease_v2(0); }
  CUdeviceptr alloc(size_t bytes) {
    CUdeviceptr p = 0;
    EXPECT_EQ(name(d.cuMemAlloc_v2(&p, bytes)), "CUDA_SUCCESS");
    return p;
  }
  CUdeviceptr upload(const std::vector<float> &v) {
    CUdeviceptr p = alloc(v.size() * sizeof(float));
    EXPECT_EQ(name(d.cuMemcpyHtoD_v2(p, v.data(), v.size() * sizeof(float))),
              "CUDA_SUCCESS");
    return p;
  }
  CUfunction function(CUmodule m, const char *kernel) {
    CUfunction f = nullptr;
    EXPECT_EQ(name(d.cuModuleGetFunction(&f, m, kernel)), "CUDA_SUCCESS");
    return f;
  }

  static CUcontext context;
  Driver &d = driver();
};
CUcontext DriverTest::context = nullptr;

TEST_F(DriverTest, ExportsTheABINames) {
  for (const char *v1 : {"cuMemAlloc", "cuMemFree", "cuMemcpyHtoD",
                         "cuStreamDestroy", "cuDeviceTotalMem"})
    EXPECT_EQ(dlsym(d.handle, v1), nullptr)
        << v1 << ": the 32-bit API must not be found";
#define PRESENT(fn, params) EXPECT_NE(d.fn, nullptr) << #fn;
  RWKV_CUDA_DRIVER_FUNCTIONS(PRESENT)
#undef PRESENT
}

TEST_F(DriverTest, DescribesTheDevice) {
  int version = 0, count = 0, value = 0;
  ASSERT_OK(d.cuDriverGetVersion(&version));
  EXPECT_EQ(version, 13000);
  ASSERT_OK(d.cuDeviceGetCount(&count));
  EXPECT_EQ(count, 1);
  char text[128];
  ASSERT_OK(d.cuDeviceGetName(text, sizeof text, 0));
  EXPECT_THAT(text, HasSubstr("rwkv-cuda-emu"));
  auto attribute = [&](CUdevice_attribute a) {
    EXPECT_EQ(name(d.cuDeviceGetAttribute(&value, a, 0)), "CUDA_SUCCESS");
    return value;
  };
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), 8);
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR), 0);
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_WARP_SIZE), 32);
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), 108);
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK), 49152);
  EXPECT_EQ(attribute(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN),
            163 * 1024);
  size_t total = 0, free = 0;
  ASSERT_OK(d.cuDeviceTotalMem_v2(&total, 0));
  EXPECT_GT(total, size_t(1) << 20);
  ASSERT_OK(d.cuMemGetInfo_v2(&free, &total));
  EXPECT_LE(free, total);
  EXPECT_CU(CUDA_ERROR_INVALID_DEVICE,
            d.cuDeviceGetAttribute(&value, CU_DEVICE_ATTRIBUTE_WARP_SIZE, 1));
  const char *s = nullptr;
  ASSERT_OK(d.cuGetErrorString(CUDA_ERROR_LAUNCH_FAILED, &s));
  EXPECT_STREQ(s, "unspecified launch failure");
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, d.cuGetErrorName(CUresult(12345), &s));
}

TEST_F(DriverTest, NeedsACurrentContext) {
  CUdeviceptr p;
  ASSERT_OK(d.cuCtxSetCurrent(nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_CONTEXT, d.cuMemAlloc_v2(&p, 64));
  ASSERT_OK(d.cuCtxSetCurrent(context));
  CUcontext current = nullptr;
  ASSERT_OK(d.cuCtxGetCurrent(&current));
  EXPECT_EQ(current, context);
}

TEST_F(DriverTest, Memory) {
  size_t before, after, total;
  ASSERT_OK(d.cuMemGetInfo_v2(&before, &total));
  CUdeviceptr a = alloc(1000), b = alloc(1000);
  ASSERT_OK(d.cuMemGetInfo_v2(&after, &total));
  EXPECT_EQ(before - after, 2048u); // 256-byte granules
  EXPECT_EQ(a % 256, 0u);
  std::vector<unsigned char> host(1000, 0);
  ASSERT_OK(d.cuMemcpyDtoH_v2(host.data(), a, 1000));
  EXPECT_EQ(host, std::vector<unsigned char>(1000, 0xff)) << "poisoned";
  std::vector<unsigned char> in(1000);
  for (size_t i = 0; i < in.size(); ++i)
    in[i] = (unsigned char)(i * 7);
  ASSERT_OK(d.cuMemcpyHtoD_v2(a, in.data(), 1000));
  ASSERT_OK(d.cuMemcpyDtoD_v2(b, a, 1000));
  ASSERT_OK(d.cuMemsetD8_v2(b, 0x5a, 10));
  ASSERT_OK(d.cuMemsetD32_v2(b + 12, 0x01020304u, 2));
  ASSERT_OK(d.cuMemcpyDtoH_v2(host.data(), b, 1000));
  for (size_t i = 0; i < 1000; ++i) {
    unsigned char want = i < 10              ? 0x5a
                         : i >= 12 && i < 20 ? (unsigned char)(4 - (i - 12) % 4)
                                             : in[i];
    ASSERT_EQ(host[i], want) << i;
  }
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            d.cuMemcpyHtoD_v2(a + 1, in.data(), 1000));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, d.cuMemsetD32_v2(a + 2, 0, 1));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, d.cuMemFree_v2(a + 4));
  ASSERT_OK(d.cuMemFree_v2(a));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE, d.cuMemFree_v2(a));
  ASSERT_OK(d.cuMemFree_v2(b));
}

TEST_F(DriverTest, RefusesImagesNotForTheEmulator) {
  CUmodule m;
  const char cubin[16] = "\x7f"
                         "ELF\2\1\1";
  EXPECT_CU(CUDA_ERROR_INVALID_IMAGE, d.cuModuleLoadData(&m, cubin));
  EXPECT_CU(CUDA_ERROR_INVALID_IMAGE,
            d.cuModuleLoadData(&m, ".version 8.8\n.target sm_80\n"));
  rwkv_emu_module other = cudaemu_test_misc;
  other.abi_version = 99;
  EXPECT_CU(CUDA_ERROR_INVALID_IMAGE, d.cuModuleLoadData(&m, &other));
  ASSERT_OK(d.cuModuleLoadData(&m, &cudaemu_test_misc));
  CUfunction f;
  EXPECT_CU(CUDA_ERROR_NOT_FOUND, d.cuModuleGetFunction(&f, m, "wkv7_step"));
  ASSERT_OK(d.cuModuleUnload(m));
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, d.cuModuleGetFunction(&f, m, "indices"));
}

TEST_F(DriverTest, LaunchesAKernel) {
  Wkv7Case c = makeWkv7(/*T=*/4, /*H=*/2, 11);
  std::vector<float> refState, refY;
  wkv7Reference(c, refState, refY);
  CUmodule m;
  ASSERT_OK(d.cuModuleLoadDataEx(&m, &cudaemu_test_wkv7, 0, nullptr, nullptr));
  CUfunction f = function(m, "wkv7_step");
  CUdeviceptr r = upload(c.r), w = upload(c.w), k = upload(c.k),
              a = upload(c.a), b = upload(c.b), v = upload(c.v),
              state = upload(c.state), y = alloc(refY.size() * sizeof(float));
  void *params[] = {&c.T, &c.C, &r, &w, &k, &a, &b, &v, &state, &y};
  ASSERT_OK(d.cuLaunchKernel(f, c.H, 1, 1, kHeadSize, 1, 1, 0, nullptr, params,
                             nullptr));
  ASSERT_OK(d.cuCtxSynchronize());
  std::vector<float> outY(refY.size()), outState(refState.size());
  ASSERT_OK(d.cuMemcpyDtoH_v2(outY.data(), y, outY.size() * sizeof(float)));
  ASSERT_OK(d.cuMemcpyDtoH_v2(outState.data(), state,
                              outState.size() * sizeof(float)));
  EXPECT_EQ(outY, refY);
  EXPECT_EQ(outState, refState);
  for (CUdeviceptr p : {r, w, k, a, b, v, state, y})
    ASSERT_OK(d.cuMemFree_v2(p));
  ASSERT_OK(d.cuModuleUnload(m));
}

// A model built as a shared library: its module image (a relocated
// pointer) and thunks (its own thread_local worker) work from there too.
TEST_F(DriverTest, LaunchesFromASharedLibrary) {
  void *model = dlopen(CUDAEMU_TEST_MODEL, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(model, nullptr) << dlerror();
  const void *image = dlsym(model, "cudaemu_test_gemv");
  ASSERT_NE(image, nullptr);
  CUmodule m;
  ASSERT_OK(d.cuModuleLoadData(&m, image));
  CUfunction f = function(m, "gemv_f16");
  int R = 8, C = 64;
  std::vector<uint16_t> W(size_t(R) * C, 0x3c00); // 1.0
  std::vector<float> x(C);
  for (int i = 0; i < C; ++i)
    x[i] = float(i);
  CUdeviceptr pw = alloc(W.size() * 2), px = upload(x), py = alloc(R * 4);
  ASSERT_OK(d.cuMemcpyHtoD_v2(pw, W.data(), W.size() * 2));
  void *params[] = {&R, &C, &pw, &px, &py};
  ASSERT_OK(
      d.cuLaunchKernel(f, 2, 1, 1, 128, 1, 1, 0, nullptr, params, nullptr));
  std::vector<float> y(R);
  ASSERT_OK(d.cuMemcpyDtoH_v2(y.data(), py, R * 4));
  EXPECT_EQ(y, std::vector<float>(R, 64 * 63 / 2));
  for (CUdeviceptr p : {pw, px, py})
    ASSERT_OK(d.cuMemFree_v2(p));
  ASSERT_OK(d.cuModuleUnload(m));
  dlclose(model);
}

// The runtime's decode loop: one token's upload, step and download captured
// once, replayed per token; the state never leaves the device.
TEST_F(DriverTest, ReplaysACapturedDecodeStep) {
  constexpr int T = 3, H = 2;
  Wkv7Case c = makeWkv7(T, H, 12);
  std::vector<float> refState, refY;
  wkv7Reference(c, refState, refY);
  CUmodule m;
  ASSERT_OK(d.cuModuleLoadData(&m, &cudaemu_test_wkv7));
  CUfunction f = function(m, "wkv7_step");
  size_t tokenBytes = size_t(c.C) * sizeof(float);
  std::vector<float> hostIn(6 * size_t(c.C)), hostY(c.C, -1.0f);
  CUdeviceptr in = alloc(6 * tokenBytes), y = alloc(tokenBytes),
              state = upload(c.state);
  CUdeviceptr r = in, w = in + tokenBytes, k = in + 2 * tokenBytes,
              a = in + 3 * tokenBytes, b = in + 4 * tokenBytes,
              v = in + 5 * tokenBytes;
  int one = 1;
  void *params[] = {&one, &c.C, &r, &w, &k, &a, &b, &v, &state, &y};

  CUstream stream;
  ASSERT_OK(d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  ASSERT_OK(d.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  ASSERT_OK(d.cuMemcpyHtoDAsync_v2(in, hostIn.data(), 6 * tokenBytes, stream));
  ASSERT_OK(d.cuLaunchKernel(f, H, 1, 1, kHeadSize, 1, 1, 0, stream, params,
                             nullptr));
  ASSERT_OK(d.cuMemcpyDtoHAsync_v2(hostY.data(), y, tokenBytes, stream));
  CUgraph graph;
  ASSERT_OK(d.cuStreamEndCapture(stream, &graph));
  EXPECT_EQ(hostY, std::vector<float>(c.C, -1.0f)) << "capture ran the work";
  CUgraphExec exec;
  ASSERT_OK(d.cuGraphInstantiateWithFlags(&exec, graph, 0));
  one = 99; // parameters were captured by value

  for (int t = 0; t < T; ++t) {
    const std::vector<float> *inputs[] = {&c.r, &c.w, &c.k, &c.a, &c.b, &c.v};
    for (int i = 0; i < 6; ++i)
      std::memcpy(&hostIn[size_t(i) * c.C], inputs[i]->data() + size_t(t) * c.C,
                  tokenBytes);
    ASSERT_OK(d.cuGraphLaunch(exec, stream));
    ASSERT_OK(d.cuStreamSynchronize(stream));
    EXPECT_EQ(std::vector<float>(hostY),
              std::vector<float>(refY.begin() + size_t(t) * c.C,
                                 refY.begin() + size_t(t + 1) * c.C))
        << "token " << t;
  }
  std::vector<float> outState(refState.size());
  ASSERT_OK(d.cuMemcpyDtoH_v2(outState.data(), state,
                              outState.size() * sizeof(float)));
  EXPECT_EQ(outState, refState);
  ASSERT_OK(d.cuGraphExecDestroy(exec));
  ASSERT_OK(d.cuGraphDestroy(graph));
  ASSERT_OK(d.cuStreamDestroy_v2(stream));
  for (CUdeviceptr p : {in, y, state})
    ASSERT_OK(d.cuMemFree_v2(p));
  ASSERT_OK(d.cuModuleUnload(m));
}

TEST_F(DriverTest, CaptureRules) {
  CUstream stream;
  ASSERT_OK(d.cuStreamCreate(&stream, 0));
  CUdeviceptr p = alloc(256);
  char host[256] = {};
  CUgraph graph = nullptr;
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
            d.cuStreamBeginCapture_v2(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL));
  // A synchronous copy invalidates a global-mode capture.
  ASSERT_OK(d.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_GLOBAL));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
            d.cuMemcpyHtoD_v2(p, host, 256));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            d.cuStreamEndCapture(stream, &graph));
  EXPECT_EQ(graph, nullptr);
  // So does synchronizing the capturing stream.
  ASSERT_OK(d.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_RELAXED));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
            d.cuStreamSynchronize(stream));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            d.cuStreamEndCapture(stream, &graph));
  // Work on the NULL stream while a blocking stream captures.
  ASSERT_OK(d.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_RELAXED));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_IMPLICIT,
            d.cuMemsetD8Async(p, 0, 256, nullptr));
  EXPECT_CU(CUDA_ERROR_STREAM_CAPTURE_INVALIDATED,
            d.cuStreamEndCapture(stream, &graph));
  EXPECT_CU(CUDA_ERROR_ILLEGAL_STATE, d.cuStreamEndCapture(stream, &graph));
  ASSERT_OK(d.cuMemFree_v2(p));
  ASSERT_OK(d.cuStreamDestroy_v2(stream));
}

TEST_F(DriverTest, LaunchChecks) {
  CUmodule m;
  ASSERT_OK(d.cuModuleLoadData(&m, &cudaemu_test_misc));
  CUfunction f = function(m, "dynamic_reverse");
  std::vector<float> in(64, 1.0f);
  CUdeviceptr pin = upload(in), pout = alloc(64 * sizeof(float));
  void *params[] = {&pin, &pout};
  EXPECT_CU(
      CUDA_ERROR_INVALID_VALUE,
      d.cuLaunchKernel(f, 1, 1, 1, 2048, 1, 1, 0, nullptr, params, nullptr));
  EXPECT_CU(CUDA_ERROR_INVALID_VALUE,
            d.cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 64 * 1024, nullptr, params,
                             nullptr));
  ASSERT_OK(d.cuFuncSetAttribute(
      f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 * 1024));
  ASSERT_OK(d.cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 64 * 1024, nullptr, params,
                             nullptr));
  EXPECT_CU(
      CUDA_ERROR_INVALID_VALUE,
      d.cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, nullptr, nullptr, nullptr));
  setenv("RWKV_CUDA_EMU_SCHEDULE", "sideways", 1);
  EXPECT_CU(
      CUDA_ERROR_INVALID_VALUE,
      d.cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 256, nullptr, params, nullptr));
  unsetenv("RWKV_CUDA_EMU_SCHEDULE");
  for (CUdeviceptr p : {pin, pout})
    ASSERT_OK(d.cuMemFree_v2(p));
  ASSERT_OK(d.cuModuleUnload(m));
}

// A kernel that fails makes the context unusable, as on a GPU, until the
// primary context is released to nothing.
TEST_F(DriverTest, KernelFailureIsSticky) {
  CUmodule m;
  ASSERT_OK(d.cuModuleLoadData(&m, &cudaemu_test_misc));
  CUfunction f = function(m, "bad_divergent_barrier");
  CUdeviceptr out = alloc(64 * sizeof(int));
  void *params[] = {&out};
  EXPECT_CU(
      CUDA_ERROR_LAUNCH_FAILED,
      d.cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 0, nullptr, params, nullptr));
  EXPECT_CU(CUDA_ERROR_LAUNCH_FAILED, d.cuCtxSynchronize());
  EXPECT_CU(CUDA_ERROR_LAUNCH_FAILED, d.cuMemFree_v2(out));
  ASSERT_OK(d.cuDevicePrimaryCtxRelease_v2(0)); // frees everything
  ASSERT_OK(d.cuDevicePrimaryCtxRetain(&context, 0));
  ASSERT_OK(d.cuCtxSetCurrent(context));
  ASSERT_OK(d.cuCtxSynchronize());
  EXPECT_CU(CUDA_ERROR_INVALID_HANDLE, d.cuModuleUnload(m));
}

} // namespace
