#!/usr/bin/env bash
# Sets up, builds, and runs every test (lit + FileCheck, GoogleTest, the
# bounded fuzz runs) through ctest; then builds the frontend, the runtime and
# their tests with ASan+UBSan in build-san and runs those
# (RWKVC_SKIP_SANITIZE=1 skips that step).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"

if [ "${RWKVC_SKIP_SANITIZE:-0}" != 1 ]; then
  start=$(date +%s)
  if [ ! -f build-san/build.ninja ]; then
    cmake -G Ninja -S . -B build-san -DRWKVC_SANITIZE=address,undefined \
      "-DRWKVC_TEST_SUITES=frontend;runtime;tokenizer"
  fi
  cmake --build build-san -j "$(nproc)" --target rwkvc-unittests
  # Under ASan the bounded-input tests cannot limit their address space
  # (RLIMIT_AS): the resident-memory limit stands in for it.
  ASAN_OPTIONS=hard_rss_limit_mb=4096 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-san --output-on-failure -j "$(nproc)"
  echo "sanitizer step (ASan+UBSan build and tests): $(($(date +%s) - start)) s"
fi
