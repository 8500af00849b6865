#!/usr/bin/env bash
# Installs, idempotently and non-interactively, every Debian package that
# building and testing rwkvc need. When everything is present it only checks.
set -euo pipefail

PACKAGES=(
  # LLVM/MLIR 22 toolchain: headers, libraries, lit/FileCheck, compiler, linker
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools clang-22 lld-22
  libclang-rt-22-dev          # libFuzzer, ASan and UBSan runtimes (fuzzers, RWKVC_SANITIZE)
  libomp-22-dev               # LLVM OpenMP runtime: models whose ops run on several threads link it
  # build system and libraries
  cmake ninja-build libfmt-dev libgtest-dev libgmock-dev libzip-dev
  zlib1g-dev libzstd-dev
  # the server (--serve): HTTP, JSON, the Redis state cache
  libcpp-httplib-dev nlohmann-json3-dev libhiredis-dev
  # the server's tests: a Redis and an nginx on loopback
  redis-server nginx-light
  # reference scripts used by the tests
  python3-numpy
  # the bundled model's training corpus, whose held-out part the quantized
  # formats' perplexity test reads (scripts/heldout_text.py, e2e-quant)
  python3.11-doc
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
