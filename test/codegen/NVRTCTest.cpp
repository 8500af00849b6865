//===- NVRTCTest.cpp - The NVRTC step of the CUDA target ------------------===//
//
// The ptxas report parser and the resource check need no CUDA; the compile
// tests run NVRTC when it is found (CUDA 13 at /usr/local/cuda on the
// project's machines) and are skipped with the reason otherwise.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/NVRTC.h"

#include "llvm/Support/Error.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace rwkvc::cuda;

namespace {

// What NVRTC 13.0 logs for two kernels compiled with --ptxas-options=-v.
const char *kLog = R"(ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'spilly' for 'sm_80'
ptxas info    : Function properties for spilly
ptxas         .     176 bytes stack frame, 188 bytes spill stores, 188 bytes spill loads
ptxas info    : Used 24 registers, used 0 barriers, 176 bytes cumulative stack size, 360 bytes cmem[0]
ptxas info    : Compile time = 82.767 ms
ptxas info    : Compiling entry function 'add' for 'sm_90'
ptxas info    : Function properties for add
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 10 registers, used 1 barriers, 1024 bytes smem
ptxas info    : Compile time = 15.258 ms
)";

TEST(NVRTC, ParsesThePtxasReport) {
  std::vector<KernelReport> r = parsePtxasReport(kLog);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].kernel, "spilly");
  EXPECT_EQ(r[0].arch, "sm_80");
  EXPECT_EQ(r[0].registers, 24u);
  EXPECT_EQ(r[0].stackBytes, 176u);
  EXPECT_EQ(r[0].spillStoreBytes, 188u);
  EXPECT_EQ(r[0].spillLoadBytes, 188u);
  EXPECT_EQ(r[0].sharedBytes, 0u);
  EXPECT_EQ(r[1].kernel, "add");
  EXPECT_EQ(r[1].arch, "sm_90");
  EXPECT_EQ(r[1].registers, 10u);
  EXPECT_EQ(r[1].spillStoreBytes + r[1].spillLoadBytes, 0u);
  EXPECT_EQ(r[1].sharedBytes, 1024u);
}

TEST(NVRTC, ResourceCheckNamesTheKernel) {
  std::vector<KernelReport> r = parsePtxasReport(kLog);
  std::string message = llvm::toString(checkKernelResources(r));
  EXPECT_NE(message.find("kernel 'spilly' on sm_80 spills (188 bytes stored, "
                         "188 loaded)"),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find("'add'"), std::string::npos) << message;

  ResourceLimits tight;
  tight.maxRegisters = 8;
  tight.maxStaticShared = 512;
  message = llvm::toString(checkKernelResources({r[1]}, tight));
  EXPECT_NE(message.find("kernel 'add' on sm_90 uses 10 registers (at most 8)"),
            std::string::npos)
      << message;
  r[1].registers = 4;
  message = llvm::toString(checkKernelResources({r[1]}, tight));
  EXPECT_NE(message.find("uses 1024 bytes of static shared memory (at most "
                         "512)"),
            std::string::npos)
      << message;
  EXPECT_FALSE(bool(checkKernelResources({r[1]})));
}

/// Skips the test when this machine has no NVRTC.
#define REQUIRE_NVRTC()                                                        \
  do {                                                                         \
    auto version = nvrtcVersion();                                             \
    if (!version)                                                              \
      GTEST_SKIP() << llvm::toString(version.takeError());                     \
  } while (0)

const char *kKernels = R"(
extern "C" __global__ void add(float *x, const float *y, int n) {
  __shared__ float s[256];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  s[threadIdx.x] = i < n ? y[i] : 0.0f;
  __syncthreads();
  if (i < n)
    x[i] += s[255 - threadIdx.x];
}
extern "C" __global__ void pressure(float *x) {
  float a[64];
#pragma unroll
  for (int i = 0; i < 64; i++)
    a[i] = x[i * blockDim.x + threadIdx.x];
  float s = 0;
#pragma unroll
  for (int i = 0; i < 64; i++)
    s += a[i] * a[63 - i] * x[i];
  x[threadIdx.x] = s;
}
)";

TEST(NVRTC, CompilesForEveryArchitectureWithReports) {
  REQUIRE_NVRTC();
  auto result = compileCUDA(kKernels, "kernels.cu");
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  std::vector<std::string> archs;
  for (const CompiledImage &image : result->images) {
    archs.push_back(image.arch);
    ASSERT_FALSE(image.bytes.empty()) << image.arch;
    if (image.isPTX) {
      std::string ptx(image.bytes.begin(), image.bytes.end());
      EXPECT_NE(ptx.find(".entry add("), std::string::npos);
    } else {
      // An ELF cubin.
      EXPECT_EQ(std::string(image.bytes.begin(), image.bytes.begin() + 4),
                "\x7f"
                "ELF");
    }
  }
  EXPECT_EQ(archs, (std::vector<std::string>{"sm_80", "sm_86", "sm_89",
                                             "sm_90", "compute_90"}));
  // Two kernels on four real architectures, none spilling.
  ASSERT_EQ(result->reports.size(), 8u);
  for (const KernelReport &r : result->reports) {
    EXPECT_GT(r.registers, 0u) << r.kernel << " " << r.arch;
    if (r.kernel == "add")
      EXPECT_EQ(r.sharedBytes, 1024u);
  }
  EXPECT_FALSE(bool(checkKernelResources(result->reports)));
}

TEST(NVRTC, ASpillIsAnErrorNamingTheKernel) {
  REQUIRE_NVRTC();
  CompileOptions options;
  options.realArchs = {"sm_80"};
  options.ptxArch.clear();
  options.extraOptions = {"--maxrregcount=16"};
  auto result = compileCUDA(kKernels, "kernels.cu", options);
  ASSERT_TRUE(bool(result)) << llvm::toString(result.takeError());
  std::string message = llvm::toString(checkKernelResources(result->reports));
  EXPECT_NE(message.find("kernel 'pressure' on sm_80 spills"),
            std::string::npos)
      << message;
}

TEST(NVRTC, ACompileErrorCarriesTheLog) {
  REQUIRE_NVRTC();
  auto result = compileCUDA("__global__ void k() { undeclared = 1; }\n",
                            "broken.cu");
  ASSERT_FALSE(bool(result));
  std::string message = llvm::toString(result.takeError());
  EXPECT_NE(message.find("broken.cu: NVRTC"), std::string::npos) << message;
  EXPECT_NE(message.find("undeclared"), std::string::npos) << message;
}

TEST(NVRTC, AMissingLibraryIsOneClearError) {
  // The library is looked up once per process: look in a fresh one (the
  // threadsafe style re-executes this test alone).
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("RWKV_NVRTC_LIBRARY", "/nonexistent/libnvrtc.so.13", 1);
        auto version = nvrtcVersion();
        std::string message =
            version ? "" : llvm::toString(version.takeError());
        fprintf(stderr, "%s\n", message.c_str());
        exit(message.empty() ? 1 : 0);
      },
      testing::ExitedWithCode(0),
      "--target=cuda needs NVIDIA's NVRTC .*/nonexistent/libnvrtc.so.13");
}

} // namespace
