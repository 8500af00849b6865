//===- EmuTest.h - Helpers of the emulator's tests ---------------*- C++
//-*-===//
//
// Launching a kernel of a test module (test/kernels/*.cu, compiled as host
// C++) straight through the scheduler, the schedules every test runs in,
// and the source lines the reports must name (kernel lines marked "// @x").
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDAEMU_TEST_EMUTEST_H
#define RWKV_CUDAEMU_TEST_EMUTEST_H

#include "Scheduler.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

extern "C" const rwkv_emu_module cudaemu_test_wkv7, cudaemu_test_gemv,
    cudaemu_test_mma, cudaemu_test_misc;

namespace rwkv_emu::test {

inline const rwkv_emu_kernel *findKernel(const rwkv_emu_module &module,
                                         const char *name) {
  for (uint32_t i = 0; i < module.kernel_count; ++i)
    if (std::strcmp(module.kernels[i].name, name) == 0)
      return &module.kernels[i];
  return nullptr;
}

struct Launched {
  bool ok = false;
  std::string report;
};

/// Runs kernel `name` of `module` with `args` (by value, as the kernel
/// takes them) in `schedule`.
template <class... Args>
Launched launch(const rwkv_emu_module &module, const char *name, Dim3 grid,
                Dim3 block, size_t dynamicShared, Schedule schedule,
                Args... args) {
  Launched result;
  const rwkv_emu_kernel *kernel = findKernel(module, name);
  if (!kernel) {
    result.report = std::string("no kernel ") + name;
    return result;
  }
  // The thunk reads the parameters with the kernel's own types: the test's
  // arguments must match them in number and size.
  const uint32_t sizes[] = {uint32_t(sizeof(Args))..., 0};
  EXPECT_EQ(kernel->param_count, sizeof...(Args)) << name;
  for (uint32_t i = 0; i < kernel->param_count && i < sizeof...(Args); ++i)
    EXPECT_EQ(kernel->params[i].size, sizes[i]) << name << " parameter " << i;
  void *params[] = {static_cast<void *>(&args)..., nullptr};
  LaunchParams p;
  p.kernel = kernel;
  p.grid = grid;
  p.block = block;
  p.dynamicSharedBytes = dynamicShared;
  p.params = params;
  p.schedule = schedule;
  result.ok = runGrid(p, result.report);
  return result;
}

/// The schedules the kernel tests run in.
inline std::vector<Schedule> allSchedules() {
  return {{Order::Forward, 0},
          {Order::Reverse, 0},
          {Order::Random, 1},
          {Order::Random, 20250611}};
}

/// "wkv7.cu:42": where the kernel file marks `// @marker`.
inline std::string siteOf(const char *file, const char *marker) {
  std::ifstream in(std::string(CUDAEMU_KERNEL_DIR) + "/" + file);
  std::string line, tag = std::string("// @") + marker;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(tag) != std::string::npos &&
        line.size() == line.find(tag) + tag.size())
      return std::string(file) + ":" + std::to_string(n);
  ADD_FAILURE() << "no " << tag << " in " << file;
  return "?";
}

/// Whether `report` names `site` ("misc.cu:42", not "misc.cu:420").
inline bool namesSite(const std::string &report, const std::string &site) {
  for (size_t at = report.find(site); at != std::string::npos;
       at = report.find(site, at + 1)) {
    size_t end = at + site.size();
    if (end == report.size() || !std::isdigit((unsigned char)report[end]))
      return true;
  }
  return false;
}

} // namespace rwkv_emu::test

#endif // RWKV_CUDAEMU_TEST_EMUTEST_H
