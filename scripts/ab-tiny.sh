#!/bin/bash
# A/B: before/ and after/ executables of the tiny FP32 models (docs/performance.md),
# alternating, 5 runs each; run in the folder that holds both.
for m in 4v0-660K 5v1-730K 5v2-730K 6v0-1m 7v0-834K; do
  for i in 1 2 3 4 5; do
    for v in before after; do
      out=$(./$v/$m --bench 2000 --chunk 2000 2>&1)
      d=$(echo "$out" | grep -oP '^decode: \K[\d.]+'); p=$(echo "$out" | grep -oP '^prefill \(chunk 2000\): \K[\d.]+')
      echo "$m $v $d $p"
    done
  done
done
