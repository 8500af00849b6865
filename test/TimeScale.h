//===- TimeScale.h - Time bounds of tests under sanitizers ------*- C++ -*-===//
//
// Tests that bound a run time ("1 MB encodes within a second") write the
// bound for an optimised build times kTimeScale: sanitizers (RWKVC_SANITIZE
// defines RWKVC_SANITIZED) make the code several times slower.
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_TEST_TIMESCALE_H
#define RWKVC_TEST_TIMESCALE_H

namespace rwkvc::testing {
#ifdef RWKVC_SANITIZED
constexpr double kTimeScale = 10;
#else
constexpr double kTimeScale = 1;
#endif
} // namespace rwkvc::testing

#endif // RWKVC_TEST_TIMESCALE_H
