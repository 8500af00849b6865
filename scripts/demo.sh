#!/usr/bin/env bash
# The main job on the embedded default: set up, build rwkvc, compile the
# bundled checkpoint examples/rwkvc-tiny.pth (a 1M-parameter byte-level
# RWKV-7 trained by scripts/train_tiny.py) into a native executable, and
# generate text from a prompt.
#   ./scripts/demo.sh ["prompt"] [extra options for the executable]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build.sh
prompt="${1:-The function}"
shift || true
./build/bin/rwkvc -v examples/rwkvc-tiny.pth -o build/rwkvc-tiny
echo "== build/rwkvc-tiny \"$prompt\" -n 200 --seed 42 $*"
./build/rwkvc-tiny "$prompt" -n 200 --seed 42 "$@"
echo
