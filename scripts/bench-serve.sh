#!/usr/bin/env bash
# Aggregate generation speed of `NAME --serve` under 1, 4, 8 and 16
# concurrent streams (a benchmark, not a test; docs/performance.md, "The
# server").
#
#   scripts/bench-serve.sh NAME [THREADS] [TOKENS] [TEMPERATURE] [ROUNDS]
#
# NAME: a compiled model (rwkvc MODEL -o NAME); THREADS: --threads of the
# server and of --bench (default 2); TOKENS: tokens per stream (default 64);
# TEMPERATURE: the streams' temperature (default 0: greedy; above 0 each
# stream samples with top_p 1 and seed 1, the server's other defaults);
# ROUNDS: how many times each concurrency runs (default 1), the rounds
# interleaved (1, 4, 8, 16, 1, 4, ...) so that each ratio compares runs
# minutes apart at most; with several rounds each figure is the median
# over the rounds and each ratio the median of the rounds' own ratios
# (this VM's memory bandwidth, which sets one stream's speed, drifts by
# the minute: docs/performance.md, "The server").
# Starts NAME --serve --parallel 16 on a free loopback port (stopped at the
# end, also on failure), runs the streams at each concurrency, each a
# streamed completion of TOKENS tokens (fewer if sampling meets end of
# text) at TEMPERATURE from its own prompt, and prints per concurrency the
# wall time, the aggregate tokens/s
# (every stream's tokens / wall time) and the speed-up over one stream, the
# decode rate (the tokens after each stream's first, over the time from the
# first stream's first token to the last stream's last: the wall time less
# the requests' setup and prompts, as --bench's decode leaves out its
# prefill), and the same per CPU second of the server process (user +
# system time from /proc/PID/stat: steadier than the wall clock on a shared
# machine); then, ROUNDS times, one stream's decode rate against NAME
# --bench's single-sequence decode, alternating, and the median ratio.
# Each round also measures the memory bandwidth of THREADS threads
# (scripts/membw.c, 512 MiB, built with clang-22 when it is there) just
# before its one stream, and prints each round's bandwidth, one-stream rate
# and 8-stream ratio: one stream moves with the bandwidth, which on a shared
# VM differs from minute to minute (docs/performance.md, "The server").
set -euo pipefail
exe=$(realpath "${1:?usage: bench-serve.sh NAME [THREADS] [TOKENS] [TEMPERATURE]}")
threads=${2:-2}
tokens=${3:-64}
temperature=${4:-0}
rounds=${5:-1}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
membw=$(mktemp)
if ! clang-22 -O2 -march=native -pthread "$(dirname "$0")/membw.c" -o "$membw" 2>/dev/null; then
  rm -f "$membw"
  membw=""
fi
"$exe" --serve --port "$port" --parallel 16 --threads "$threads" \
  --state-cache 0 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$log" "$membw"' EXIT

/usr/bin/python3 - "$port" "$tokens" "$pid" "$temperature" "$rounds" "$threads" "$membw" "$exe" <<'PY'
import http.client, json, os, re, socket, statistics, subprocess, sys, threading, time
port, tokens, pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
temperature, rounds = float(sys.argv[4]), max(1, int(sys.argv[5]))
threads, membw, exe = int(sys.argv[6]), sys.argv[7], sys.argv[8]

def bandwidth():
    """GB/s of `threads` threads streaming 512 MiB (scripts/membw.c), or None."""
    if not membw:
        return None
    time.sleep(0.5)  # the server's threads stop spinning (libomp: 200 ms)
    out = subprocess.run([membw, "512", str(threads)], capture_output=True,
                         text=True).stdout
    return float(out.split("GB/s")[0].split()[-1]) if "GB/s" in out else None

def cpu_seconds():
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

for _ in range(300):  # up to 30 s for the server to listen
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("bench-serve: the server did not start")

def stream(i, out):
    """Streams one completion; out[i] = (tokens, time of the first text,
    time of the last)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", body=json.dumps({
        "prompt": f"Stream {i}: the story of", "max_tokens": tokens,
        "temperature": temperature, "seed": 1, "stream": True,
        "stream_options": {"include_usage": True}}))
    n, first, last = 0, None, None
    for line in c.getresponse():
        if not line.startswith(b"data: {"):
            continue
        event = json.loads(line[6:])
        if event.get("usage"):
            n = event["usage"]["completion_tokens"]
        elif event["choices"] and event["choices"][0]["text"]:
            last = time.time()
            first = first or last
    out[i] = (n, first, last)

stream(0, {})  # warm-up
print(f"{'streams':>7} {'tokens':>7} {'wall s':>8} {'tokens/s':>9} "
      f"{'x 1 stream':>10} {'decode/s':>9} {'x 1 stream':>10} {'CPU s':>7} "
      f"{'tokens/CPU s':>12} {'x 1 stream':>10}")
levels = (1, 4, 8, 16)
runs = {k: [] for k in levels}  # (tokens, wall, rate, decode rate, cpu, rate per cpu)
ratios = {k: [] for k in levels}  # each round's ratios to its own one stream
bandwidths = []  # each round's membw, just before its one stream
for _ in range(rounds):
    bandwidths.append(bandwidth())
    for k in levels:
        out = {}
        ts = [threading.Thread(target=stream, args=(i, out)) for i in range(k)]
        t0, c0 = time.time(), cpu_seconds()
        for t in ts: t.start()
        for t in ts: t.join()
        wall, cpu = time.time() - t0, cpu_seconds() - c0
        n = sum(t for t, _, _ in out.values())
        span = (max(l for _, _, l in out.values()) -
                min(f for _, f, _ in out.values()))
        runs[k].append((n, wall, n / wall, (n - k) / span, cpu,
                        n / max(cpu, 1e-9)))
        one = runs[1][-1]
        ratios[k].append(tuple(runs[k][-1][i] / one[i] for i in (2, 3, 5)))
med = statistics.median
for k in levels:
    n, wall, rate, drate, cpu, crate = (med(r[i] for r in runs[k])
                                        for i in range(6))
    x, dx, cx = (med(r[i] for r in ratios[k]) for i in range(3))
    print(f"{k:>7} {n:>7.0f} {wall:>8.2f} {rate:>9.1f} {x:>10.2f} "
          f"{drate:>9.1f} {dx:>10.2f} "
          f"{cpu:>7.2f} {crate:>12.1f} {cx:>10.2f}")
for i, gbs in enumerate(bandwidths):
    print(f"round {i + 1}: membw {threads} threads " +
          (f"{gbs:.1f} GB/s" if gbs else "(not measured)") +
          f", 1 stream {runs[1][i][2]:.1f} tokens/s, 8 streams "
          f"{runs[8][i][2]:.1f} ({ratios[8][i][0]:.2f}x)")

# One stream against --bench's single-sequence decode, alternating a few
# seconds apart (each after 0.5 s for the other's threads to stop spinning).
print(f"one stream's decode/s against {exe} --bench {tokens} --threads "
      f"{threads} decode, alternating:")
against = []
for i in range(rounds):
    time.sleep(0.5)
    out = {}
    stream(0, out)
    n, first, last = out[0]
    alone = (n - 1) / (last - first)
    time.sleep(0.5)
    bench = subprocess.run([exe, "--bench", str(tokens), "--threads",
                            str(threads)], capture_output=True, text=True)
    decode = float(re.search(r"decode: ([0-9.]+) tokens/s", bench.stdout)[1])
    against.append(alone / decode)
    print(f"round {i + 1}: 1 stream {alone:.1f} tokens/s, --bench "
          f"{decode:.1f} ({against[-1]:.2f}x)")
print(f"median 1 stream / --bench: {statistics.median(against):.2f}x")
PY
