#!/usr/bin/env bash
# Sets up, builds, and runs every test (lit + FileCheck, GoogleTest, the
# bounded fuzz runs) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)" "$@"
