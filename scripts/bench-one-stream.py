#!/usr/bin/python3
"""bench-one-stream.py: one stream through `NAME --serve` against NAME's
--bench decode, alternating (a benchmark, not a test; issue 14's "with 1
stream, no slower than --bench decode"; docs/performance.md, "Quantized
pairs, the head into the output").

    chrt -f 20 /usr/bin/python3 scripts/bench-one-stream.py NAME [ROUNDS]

Starts NAME --serve --threads 2 on a free loopback port (stopped at the
end), then ROUNDS times (default 5): one streamed greedy completion of 128
tokens, its decode rate (the tokens after the first over the time from the
first token to the last, as --bench's decode leaves out its prefill), then
NAME --bench 128 --threads 2, each after 0.5 s for the other's threads to
stop spinning. Prints each round's two rates and their ratio, then the
median ratio: runs a few seconds apart share this VM's drifting memory
bandwidth, which sets both.
"""
import http.client, json, re, socket, statistics, subprocess, sys, time

if len(sys.argv) < 2:
    sys.exit("usage: bench-one-stream.py NAME [ROUNDS]")
exe = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
srv = subprocess.Popen([exe, "--serve", "--port", str(port), "--threads", "2",
                        "--state-cache", "0"], stderr=subprocess.DEVNULL)
for _ in range(300):  # up to 30 s for the server to listen
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    srv.terminate()
    sys.exit("bench-one-stream: the server did not start")


def one():
    """Decode tokens/s of one streamed completion of 128 tokens."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", body=json.dumps({
        "prompt": "Stream 0: the story of", "max_tokens": 128, "temperature": 0,
        "stream": True, "stream_options": {"include_usage": True}}))
    n, first, last = 0, None, None
    for line in c.getresponse():
        if not line.startswith(b"data: {"):
            continue
        e = json.loads(line[6:])
        if e.get("usage"):
            n = e["usage"]["completion_tokens"]
        elif e["choices"] and e["choices"][0]["text"]:
            last = time.time()
            first = first or last
    if n < 2 or first is None or last == first:
        sys.exit(f"bench-one-stream: the completion gave {n} tokens")
    return (n - 1) / (last - first)


ratios = []
try:
    one()  # warm-up
    for r in range(rounds):
        time.sleep(0.5)
        a = one()
        time.sleep(0.5)
        out = subprocess.run([exe, "--bench", "128", "--threads", "2"],
                             capture_output=True, text=True).stdout
        b = float(re.search(r"decode: ([0-9.]+) tokens/s", out).group(1))
        ratios.append(a / b)
        print(f"round {r+1}: server one stream decode {a:.1f} tok/s, "
              f"--bench decode {b:.1f} tok/s, ratio {a/b:.3f}", flush=True)
    print(f"median ratio {statistics.median(ratios):.3f}")
finally:
    srv.terminate()
    srv.wait()
