#!/usr/bin/python3
"""Speed figures for docs/performance.md: compile each tiny model's FP32 .bin once, run
`./m --bench N` REPEAT times, print decode and prefill tokens/s (best and median) as a table.

    test/e2e/bench.py --rwkvc build/bin/rwkvc --shared ../shared [--tokens 2000] [--repeat 3]

Single thread (the runtime is single-threaded). Other processes on the machine disturb the
figures: the process CPU time of each run is printed too, so a disturbed run shows as wall time
far above CPU time.
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile

TINY = ["4v0-660K", "5v1-730K", "5v2-730K", "6v0-1m", "7v0-834K"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rwkvc", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to put the executables (default: a temp dir)")
    a = ap.parse_args()
    d = a.dir or tempfile.mkdtemp(prefix="rwkvc-bench-")
    os.makedirs(d, exist_ok=True)
    rows = []
    for m in TINY:
        src = os.path.join(a.shared, "models", "tiny", "tiny-rwkv-%s-FP32.bin" % m)
        exe = os.path.join(d, m)
        if not os.path.exists(exe):
            subprocess.run([a.rwkvc, src, "-o", exe], check=True)
        dec, pre, cpu = [], [], []
        for _ in range(a.repeat):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run([exe, "--bench", str(a.tokens)], check=True,
                                 stdout=subprocess.PIPE, universal_newlines=True).stdout
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            dec.append(float(re.search(r"^decode: ([\d.]+)", out, re.M).group(1)))
            pre.append(float(re.search(r"^prefill: ([\d.]+)", out, re.M).group(1)))
            total = float(re.search(r"^total: ([\d.]+)", out, re.M).group(1))
            cpu.append("%.0f/%.0f" % ((r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
                                      * 1e3, total))
            print(m, out.replace("\n", " | "), "cpu/wall ms", cpu[-1], file=sys.stderr)
        rows.append((m, max(dec), statistics.median(dec), max(pre), statistics.median(pre),
                     " ".join(cpu)))
    print("| model | decode best | decode median | prefill best | prefill median | "
          "CPU/wall ms per run |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.0f | %.0f | %.0f | %.0f | %s |" % r)


if __name__ == "__main__":
    main()
