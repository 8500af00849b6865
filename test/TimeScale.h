//===- TimeScale.h - Time bounds of tests under sanitizers ------*- C++ -*-===//
//
// Tests that bound a run time ("1 MB encodes within a second") to catch an
// algorithm of the wrong complexity write the bound for an optimised build
// times kTimeScale: sanitizers (RWKVC_SANITIZE defines RWKVC_SANITIZED) make
// the code several times slower. They measure the thread's CPU time
// (threadCpuSeconds), which other jobs on a loaded machine do not inflate
// as they do wall time.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_TIMESCALE_H
#define RWKVC_TEST_TIMESCALE_H

#include <ctime>

namespace rwkvc::testing {
#ifdef RWKVC_SANITIZED
constexpr double kTimeScale = 10;
#else
constexpr double kTimeScale = 1;
#endif

/// CPU time of the calling thread, in seconds.
inline double threadCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}
} // namespace rwkvc::testing

#endif // RWKVC_TEST_TIMESCALE_H
