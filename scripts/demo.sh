#!/usr/bin/env bash
# The main job on the embedded default: set up, build, and run the bundled
# RWKV-4 example through rwkv-opt's target-independent pipeline, printing
# the result. (Later stages replace this with a compiled checkpoint.)
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
echo "== rwkv-opt --rwkv-optimize-pipeline examples/rwkv4.mlir"
./build/bin/rwkv-opt --rwkv-optimize-pipeline examples/rwkv4.mlir
