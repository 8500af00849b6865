//===- Scheduler.h - Runs a CUDA grid as fibers on the host ------*- C++
//-*-===//
//
// The fiber scheduler of the CUDA emulator. A grid runs block after block on
// the calling OS thread; a block's threads are fibers that switch to the
// scheduler at every __syncthreads, __syncwarp, shuffle, vote and mma
// (rwkv_cuda_emu_abi.h), in the order the schedule gives:
//
//   forward     threads 0, 1, ..., n-1, each until it waits; blocks likewise
//   reverse     threads n-1, ..., 0; blocks from the last
//   random:SEED a seeded random pick among the threads that can run, blocks
//               shuffled (the seed is mixed with the launch and block index)
//
// What a block may not do is reported, never hung on: a __syncthreads some
// thread reaches at another call site, a barrier or a mask lane a thread
// never reaches (it exited or waits elsewhere: deadlock), a lane calling a
// collective with a mask that leaves it out or names lanes the block does
// not have, lanes of one mask at different collectives, a shuffle reading a
// lane outside the mask, __trap(), more than 48 KiB of static shared memory.
// Shared memory is per block and filled with 0xff bytes (NaN) before use.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_CUDAEMU_SCHEDULER_H
#define RWKV_CUDAEMU_SCHEDULER_H

#include "rwkv_cuda_emu_abi.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv_emu {

enum class Order { Forward, Reverse, Random };

struct Schedule {
  Order order = Order::Forward;
  uint64_t seed = 0; // Random only
};

/// Parses "forward", "reverse" or "random:SEED" (SEED: a decimal integer);
/// false with `error` set otherwise.
bool parseSchedule(std::string_view text, Schedule &out, std::string &error);
/// The schedule RWKV_CUDA_EMU_SCHEDULE names (forward when unset or empty).
bool scheduleFromEnvironment(Schedule &out, std::string &error);
/// "forward", "reverse", "random:SEED".
std::string toString(const Schedule &schedule);

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// CUDA's limits, as the emulated device reports them.
constexpr unsigned kMaxThreadsPerBlock = 1024;
constexpr size_t kMaxStaticSharedBytes = 48 * 1024;
constexpr size_t kMaxSharedBytesPerBlock = 227 * 1024; // sm_90's opt-in

struct LaunchParams {
  const rwkv_emu_kernel *kernel = nullptr;
  Dim3 grid, block;
  size_t dynamicSharedBytes = 0;
  /// Static plus dynamic shared memory a block may use (the device's
  /// opt-in maximum).
  size_t sharedLimitBytes = kMaxSharedBytesPerBlock;
  /// One pointer per kernel parameter, as cuLaunchKernel's kernelParams.
  void *const *params = nullptr;
  Schedule schedule;
  /// Mixed into the random schedule's seed, so that successive launches of
  /// one kernel interleave differently (and reproducibly).
  uint64_t launchIndex = 0;
};

/// Runs every block of the grid on the calling thread. Returns true when
/// every emulated thread returned; otherwise false with `report` set to the
/// diagnostic: what went wrong, the kernel, block and schedule, the threads
/// and the call sites. Fiber stacks and shared memory belong to the calling
/// OS thread: any number of threads may run grids at the same time. The
/// stack of an emulated thread is 64 KiB (256 KiB in sanitizer builds;
/// RWKV_CUDA_EMU_STACK_KIB overrides), under a guard page.
bool runGrid(const LaunchParams &launch, std::string &report);

} // namespace rwkv_emu

#endif // RWKV_CUDAEMU_SCHEDULER_H
