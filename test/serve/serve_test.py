#!/usr/bin/env python3
"""Tests of `NAME --serve` (docs/serving.md) on the bundled model.

  serve_test.py --rwkvc RWKVC --src SRC --work DIR GROUP

GROUP:
  api     the endpoints with urllib and raw sockets: completions and chat,
          streamed and not (same text at temperature 0), usage, /metrics,
          continuous batching (concurrent streams equal sequential ones, in
          fewer steps), bad input (malformed JSON, wrong types, invalid
          UTF-8, a prompt over the limit, an unknown model or path, a full
          queue), a client that leaves mid-stream, a request over --timeout,
          and the state cache: the
          second turn of a chat prefills only its new tokens and its logits
          equal a fresh run over the whole conversation.
  openai  the official `openai` npm client (installed under DIR/node; the
          group skips, exit 77, when npm cannot reach the registry).
  redis   Redis + two servers + nginx on loopback: a conversation started
          on one replica continues on the other without re-prefilling; a
          blob of another model is never used.

Every server and daemon listens on 127.0.0.1 on a free port and is killed
at the end, also on failure; every wait is bounded.
"""

import argparse
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

SKIP = 77
PROCS = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, log, **kw):
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True, **kw)
    PROCS.append(p)
    return p


def stop_all():
    for p in PROCS:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for p in PROCS:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def wait_port(port, proc, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


class Server:
    def __init__(self, exe, work, name, *args):
        self.port = free_port()
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.proc = start([exe, "--serve", "--port", str(self.port),
                           "--threads", "1", *args], self.log)
        wait_port(self.port, self.proc)
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method, path, body=None, raw=None, timeout=60):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        c.close()
        return r.status, text

    def post(self, path, body=None, raw=None, status=200):
        st, text = self.request("POST", path, body, raw)
        assert st == status, f"{path}: status {st}, wanted {status}: {text!r}"
        return json.loads(text)

    def stream(self, path, body):
        """The events of a streamed request, parsed; the last is [DONE]."""
        st, text = self.request("POST", path, dict(body, stream=True))
        assert st == 200, (st, text)
        events = []
        for block in text.decode().split("\n\n"):
            if block.startswith("data: "):
                data = block[len("data: "):]
                events.append(data if data == "[DONE]" else json.loads(data))
        assert events and events[-1] == "[DONE]", events[-3:]
        return events[:-1]

    def metrics(self):
        st, text = self.request("GET", "/metrics")
        assert st == 200
        out = {}
        for line in text.decode().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                out[key] = float(value)
        return out


def check_error(reply, code=None):
    err = reply["error"]
    assert isinstance(err["message"], str) and err["message"], reply
    assert "type" in err and "param" in err and "code" in err, reply
    if code:
        assert err["code"] == code, reply


def compile_model(args):
    # Compiled every run (seconds): a model linked against an older runtime
    # would test that runtime.
    exe = os.path.join(args.work, "tiny")
    subprocess.run([args.rwkvc, os.path.join(args.src, "examples",
                                             "rwkvc-tiny.pth"),
                    "--batch-entry=on", "-o", exe + ".tmp"], check=True, timeout=600)
    os.replace(exe + ".tmp", exe)
    return exe


def chat_prompt(messages):
    """docs/serving.md: the chat as RWKV's prompt."""
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    turns = [f"{names[m['role']]}: {m['content'].strip()}" for m in messages]
    return "\n\n".join(turns) + "\n\nAssistant:"


# ---------------------------------------------------------------- api

def test_endpoints(s):
    st, text = s.request("GET", "/health")
    assert st == 200 and json.loads(text)["status"] == "ok"
    models = json.loads(s.request("GET", "/v1/models")[1])
    assert [m["id"] for m in models["data"]] == ["tiny"], models

    # Completions: streamed text equals the non-streamed one at T = 0.
    body = {"model": "tiny", "prompt": "The history of", "max_tokens": 24,
            "temperature": 0}
    whole = s.post("/v1/completions", body)
    text = whole["choices"][0]["text"]
    assert whole["object"] == "text_completion"
    assert whole["usage"] == {"prompt_tokens": len("The history of"),
                              "completion_tokens": 24, "total_tokens": 38,
                              "prompt_tokens_details": {"cached_tokens": 0}}, \
        whole["usage"]
    assert whole["choices"][0]["finish_reason"] == "length"
    events = s.stream("/v1/completions",
                      dict(body, stream_options={"include_usage": True}))
    assert all(e["id"] == events[0]["id"] for e in events)
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == text
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["choices"] == [] and \
        events[-1]["usage"]["completion_tokens"] == 24, events[-1]

    # Chat: the same, and the reply stops at its blank line ("stop").
    chat = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "What is Python?"}],
            "max_tokens": 200, "temperature": 0}
    whole = s.post("/v1/chat/completions", chat)
    reply = whole["choices"][0]["message"]["content"]
    assert whole["choices"][0]["finish_reason"] == "stop", whole
    assert whole["usage"]["prompt_tokens"] == len(chat_prompt(chat["messages"]))
    events = s.stream("/v1/chat/completions", chat)
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert "".join(e["choices"][0]["delta"].get("content", "")
                   for e in events) == reply
    assert events[-1]["choices"][0]["finish_reason"] == "stop"

    # stop strings end the text before them.
    cut = s.post("/v1/completions", dict(body, stop=[text[5:8]]))
    assert cut["choices"][0]["text"] == text[:text.find(text[5:8])], cut
    assert cut["choices"][0]["finish_reason"] == "stop"
    # A seed makes sampling repeatable.
    seeded = dict(body, temperature=1.0, top_p=0.9, top_k=20, seed=7,
                  presence_penalty=0.5, frequency_penalty=0.5)
    a = s.post("/v1/completions", seeded)["choices"][0]["text"]
    b = s.post("/v1/completions", seeded)["choices"][0]["text"]
    assert a == b, (a, b)
    print("endpoints: ok")


def test_batching(s):
    """Concurrent streams give the texts of sequential runs, in fewer
    batch steps than tokens (sequences share steps). The four requests go
    out back to back on connections opened beforehand. Whether the server
    takes the later ones while the first is still decoding depends on the
    machine's load (the tiny model decodes 200 tokens in about 10 ms; a
    loaded CI machine once served four streams of 40 tokens one after
    another, and another time four of 120): the texts must match on every
    attempt, and of up to 5 attempts one must share steps."""
    prompts = ["Once upon a time", "The river", "In 1990,", "def main():"]
    n = 200
    seq = [s.post("/v1/completions", {"prompt": p, "max_tokens": n,
                                      "temperature": 0})["choices"][0]["text"]
           for p in prompts]
    tries = []
    for attempt in range(5):
        before = s.metrics()
        conns = [http.client.HTTPConnection("127.0.0.1", s.port, timeout=60)
                 for _ in prompts]
        for c in conns:
            c.connect()
        for c, p in zip(conns, prompts):
            c.request("POST", "/v1/completions", body=json.dumps(
                {"prompt": p, "max_tokens": n, "temperature": 0,
                 "stream": True}))
        texts = []
        for c in conns:
            raw = c.getresponse().read().decode()
            texts.append("".join(json.loads(b[6:])["choices"][0]["text"]
                                 for b in raw.split("\n\n")
                                 if b.startswith("data: {")))
            c.close()
        after = s.metrics()
        assert texts == seq, (texts, seq)
        steps = after["rwkv_batch_steps_total"] - \
            before["rwkv_batch_steps_total"]
        tokens = after["rwkv_completion_tokens_total"] - \
            before["rwkv_completion_tokens_total"]
        assert tokens == n * len(prompts), tokens
        tries.append(steps)
        if steps < tokens:
            break
    assert tries[-1] < tokens, ("no attempt shared steps", tries, tokens)
    print(f"batching: 4 concurrent streams, {tokens:.0f} tokens in "
          f"{tries[-1]:.0f} steps (attempt {len(tries)}): ok")


def test_bad_input(s, small):
    def bad(raw, status, code=None, path="/v1/completions"):
        st, text = s.request("POST", path, raw=raw)
        assert st == status, (raw, st, text)
        check_error(json.loads(text), code)

    bad(b'{"prompt": "x"', 400, "invalid_json")
    bad(b'[1, 2]', 400, "invalid_json")
    bad(b'{"prompt": "x\xff\xfe"}', 400)            # invalid UTF-8
    bad(b'{"prompt": 5}', 400, "invalid_type")
    bad(b'{"prompt": "x", "temperature": "hot"}', 400, "invalid_type")
    bad(b'{"prompt": "x", "max_tokens": -1}', 400, "invalid_value")
    bad(b'{"prompt": "x", "top_p": 0}', 400, "invalid_value")
    bad(b'{"prompt": "x", "stream": "yes"}', 400, "invalid_type")
    bad(b'{"prompt": "x", "stop": [""]}', 400, "invalid_type")
    bad(b'{"prompt": ""}', 400, "invalid_value")
    bad(b'{"messages": "hi"}', 400, "invalid_type", "/v1/chat/completions")
    bad(b'{"messages": [{"role": "robot", "content": "x"}]}', 400,
        "invalid_value", "/v1/chat/completions")
    bad(b'{"prompt": "x", "model": "gpt-4"}', 404, "model_not_found")
    st, text = s.request("GET", "/v1/nothing")
    assert st == 404, st
    check_error(json.loads(text), "unknown_url")
    # The prompt limit of `small` (--max-prompt 64).
    st, text = small.request("POST", "/v1/completions",
                             {"prompt": "word " * 20})
    assert st == 413, (st, text)
    check_error(json.loads(text), "context_length_exceeded")
    # The server still serves.
    assert s.post("/v1/completions", {"prompt": "ok", "max_tokens": 2})
    print("bad input: ok")


def open_stream(port, body):
    """A streamed request on a raw socket, its first event read."""
    sock = socket.create_connection(("127.0.0.1", port), 10)
    data = json.dumps(dict(body, stream=True)).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: " +
                 str(len(data)).encode() + b"\r\n\r\n" + data)
    got = b""
    while b"data: " not in got:
        chunk = sock.recv(4096)
        assert chunk, got
        got += chunk
    return sock


def wait_metric(s, name, value, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if s.metrics().get(name) == value:
            return time.time() - t0
        time.sleep(0.05)
    raise AssertionError(f"{name} is {s.metrics().get(name)}, not {value}, "
                         f"after {timeout} s")


def test_disconnect_and_queue(small):
    """`small` has --parallel 1 --queue 1: a client that leaves mid-stream
    frees its slot at once; a request beyond the queue gets 503."""
    endless = {"prompt": "Once", "max_tokens": 1000000, "temperature": 1}
    a = open_stream(small.port, endless)
    assert small.metrics()["rwkv_active_sequences"] == 1
    # The slot is taken, one request waits, the next is refused.
    b = socket.create_connection(("127.0.0.1", small.port), 10)
    data = json.dumps(dict(endless, stream=True)).encode()
    b.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" +
              data)
    wait_metric(small, "rwkv_queue_length", 1)
    st, text = small.request("POST", "/v1/completions", {"prompt": "x"})
    assert st == 503, (st, text)
    check_error(json.loads(text), "queue_full")
    # The waiting client leaves: the queue empties while the slot is still
    # taken; then the streaming one leaves and frees its slot at once.
    b.close()
    wait_metric(small, "rwkv_queue_length", 0)
    assert small.metrics()["rwkv_active_sequences"] == 1
    a.close()
    took = wait_metric(small, "rwkv_active_sequences", 0)
    assert small.post("/v1/completions", {"prompt": "x", "max_tokens": 3})
    log = open(small.log_path).read()
    assert "client disconnected" in log, log
    print(f"disconnect: slot free after {took:.2f} s; queue full: 503: ok")


def test_timeout(exe, work):
    """A request over --timeout ends with 504 and leaves the batch."""
    s = Server(exe, work, "timeout", "--timeout", "1")
    t0 = time.time()
    st, text = s.request("POST", "/v1/completions",
                         {"prompt": "Once", "max_tokens": 1000000})
    took = time.time() - t0
    assert st == 504 and 1 <= took < 10, (st, took, text)
    check_error(json.loads(text), "timeout")
    wait_metric(s, "rwkv_active_sequences", 0)
    print(f"timeout: 504 after {took:.1f} s: ok")


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max()
    return x - m - math.log(np.exp(x - m).sum())


def test_state_cache(s, exe, work):
    """The second turn prefills only its new tokens, and its logits equal
    those of a fresh run over the whole conversation."""
    turn1 = [{"role": "user", "content": "Tell me about rivers."}]
    r1 = s.post("/v1/chat/completions", {"messages": turn1, "max_tokens": 400,
                                         "temperature": 0})
    assert r1["choices"][0]["finish_reason"] == "stop", r1
    reply = r1["choices"][0]["message"]["content"]
    conversation = r1["usage"]["prompt_tokens"] + \
        r1["usage"]["completion_tokens"]
    turn2 = turn1 + [{"role": "assistant", "content": reply},
                     {"role": "user", "content": "And lakes?"}]
    before = s.metrics()
    r2 = s.post("/v1/chat/completions",
                {"messages": turn2, "max_tokens": 1, "temperature": 0,
                 "logprobs": True, "top_logprobs": 256})
    after = s.metrics()
    prompt2 = chat_prompt(turn2)
    usage = r2["usage"]
    assert usage["prompt_tokens"] == len(prompt2.encode()), usage
    # The state after turn 1: its reply and the "\n\n" that ended it.
    assert usage["prompt_tokens_details"]["cached_tokens"] == conversation, \
        (usage, conversation)
    new = usage["prompt_tokens"] - usage["prompt_tokens_details"]["cached_tokens"]
    assert new < usage["prompt_tokens"] // 2, usage
    prefilled = after["rwkv_prefill_tokens_total"] - \
        before["rwkv_prefill_tokens_total"]
    assert prefilled == new, (prefilled, new)
    assert after["rwkv_state_cache_hits_total"] == \
        before["rwkv_state_cache_hits_total"] + 1

    # A fresh run over the whole conversation (the bytes tokenizer: ids are
    # the bytes).
    ids = ",".join(str(b) for b in prompt2.encode())
    out = os.path.join(work, "fresh.logits")
    subprocess.run([exe, "--tokens", ids, "--logits-out", out], check=True,
                   timeout=120)
    fresh = log_softmax(np.fromfile(out, dtype="<f4"))
    top = r2["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert len(top) == 256
    served = np.full(256, np.nan)
    for t in top:
        served[t["bytes"][0]] = t["logprob"]
    # Tolerance 1e-5: both are f32 evaluations of the same tokens; the
    # served state went through one-token (RNN) steps for the reply where
    # the fresh run used sequence mode, which round differently in the last
    # bits (~1e-6 on these logits). Log-probabilities are the logits less
    # one constant, so they compare the logits themselves.
    diff = np.abs(served - fresh).max()
    assert diff <= 1e-5, diff
    assert int(np.argmax(served)) == int(np.argmax(fresh))
    print(f"state cache: turn 2 prefilled {new} of {usage['prompt_tokens']} "
          f"tokens; logprobs max-abs diff {diff:.2e}: ok")


def group_api(args, exe):
    s = Server(exe, args.work, "api", "--parallel", "4")
    small = Server(exe, args.work, "small", "--parallel", "1", "--queue", "1",
                   "--max-prompt", "64")
    test_endpoints(s)
    test_batching(s)
    test_bad_input(s, small)
    test_disconnect_and_queue(small)
    test_timeout(exe, args.work)
    test_state_cache(s, exe, args.work)


# ---------------------------------------------------------------- openai

CLIENT_JS = r"""
const OpenAI = require('openai');
const client = new OpenAI({baseURL: process.argv[2], apiKey: 'none'});
function check(c, m) { if (!c) { console.error('FAIL: ' + m); process.exit(1); } }
(async () => {
  const messages = [{role: 'user', content: 'What is a compiler?'}];
  const whole = await client.chat.completions.create(
      {model: 'tiny', messages, max_tokens: 40, temperature: 0});
  const text = whole.choices[0].message.content;
  const stream = await client.chat.completions.create(
      {model: 'tiny', messages, max_tokens: 40, temperature: 0, stream: true,
       stream_options: {include_usage: true}});
  let streamed = '', chunks = 0, usage = null, finish = null;
  for await (const chunk of stream) {
    check(chunk.object === 'chat.completion.chunk', 'chunk object');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length) {
      streamed += chunk.choices[0].delta.content || '';
      finish = chunk.choices[0].finish_reason || finish;
      ++chunks;
    }
  }
  check(streamed === text, `chat: streamed ${JSON.stringify(streamed)} != ${JSON.stringify(text)}`);
  check(chunks >= 3, 'chat: chunks');
  check(finish === whole.choices[0].finish_reason, 'chat: finish_reason');
  check(usage && usage.prompt_tokens === whole.usage.prompt_tokens &&
        usage.completion_tokens === whole.usage.completion_tokens &&
        usage.total_tokens === usage.prompt_tokens + usage.completion_tokens,
        'chat: usage ' + JSON.stringify(usage));

  const c = await client.completions.create(
      {model: 'tiny', prompt: 'The compiler', max_tokens: 30, temperature: 0});
  check(c.usage.prompt_tokens === 12 && c.usage.completion_tokens === 30,
        'completion: usage ' + JSON.stringify(c.usage));
  const cs = await client.completions.create(
      {model: 'tiny', prompt: 'The compiler', max_tokens: 30, temperature: 0,
       stream: true, stream_options: {include_usage: true}});
  let ctext = '', cusage = null;
  for await (const chunk of cs) {
    if (chunk.usage) cusage = chunk.usage;
    if (chunk.choices.length) ctext += chunk.choices[0].text;
  }
  check(ctext === c.choices[0].text, 'completion: streamed text');
  check(cusage && cusage.completion_tokens === 30, 'completion: usage');
  try {
    await client.completions.create({model: 'other', prompt: 'x'});
    check(false, 'unknown model accepted');
  } catch (e) {
    check(e.status === 404, 'unknown model: status ' + e.status);
  }
  console.log(`openai client: chat ${chunks} chunks, completion ok`);
})().catch(e => { console.error(e); process.exit(1); });
"""


def group_openai(args, exe):
    node = shutil.which("node")
    npm = shutil.which("npm")
    if not node or not npm:
        print("SKIP: node or npm is not installed")
        return SKIP
    folder = os.path.join(args.work, "node")
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(os.path.join(folder, "node_modules", "openai")):
        with open(os.path.join(folder, "package.json"), "w") as f:
            f.write('{"name": "rwkvc-serve-test", "private": true}\n')
        try:
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund",
                                "openai@4"], cwd=folder, timeout=300,
                               capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            r = None
        if r is None or r.returncode != 0:
            print("SKIP: npm cannot install the openai package (no registry?)"
                  + ("" if r is None else "\n" + r.stderr[-2000:]))
            return SKIP
    script = os.path.join(folder, "client.js")
    with open(script, "w") as f:
        f.write(CLIENT_JS)
    s = Server(exe, args.work, "openai")
    subprocess.run([node, script, s.url + "/v1"], check=True, timeout=120,
                   cwd=folder)
    return 0


# ---------------------------------------------------------------- redis

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  upstream rwkv {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://rwkv;
      proxy_http_version 1.1;
      proxy_buffering off;
    }}
  }}
}}
"""


def group_redis(args, exe):
    for tool in ("redis-server", "redis-cli", "nginx"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} is not installed (scripts/setup.sh)")
            return SKIP
    work = args.work
    rport = free_port()
    redis = start(["redis-server", "--port", str(rport), "--bind",
                   "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
                  open(os.path.join(work, "redis.log"), "w"))
    wait_port(rport, redis)
    url = f"redis://127.0.0.1:{rport}"
    a = Server(exe, work, "replica-a", "--state-cache", url)
    b = Server(exe, work, "replica-b", "--state-cache", url)
    nport = free_port()
    ndir = os.path.join(work, "nginx")
    os.makedirs(ndir, exist_ok=True)
    conf = os.path.join(ndir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=ndir, a=a.port, b=b.port, port=nport))
    nginx = start(["nginx", "-c", conf, "-p", ndir],
                  open(os.path.join(work, "nginx.log"), "w"))
    wait_port(nport, nginx)

    def via_nginx(body):
        c = http.client.HTTPConnection("127.0.0.1", nport, timeout=60)
        c.request("POST", "/v1/chat/completions", body=json.dumps(body))
        r = c.getresponse()
        text = r.read()
        assert r.status == 200, (r.status, text)
        return json.loads(text)

    def served(server):
        return server.metrics().get(
            'rwkv_requests_total{path="/v1/chat/completions",status="200"}', 0)

    turn1 = [{"role": "user", "content": "Tell me about rivers."}]
    r1 = via_nginx({"messages": turn1, "max_tokens": 400, "temperature": 0})
    assert r1["choices"][0]["finish_reason"] == "stop", r1
    # The count follows the response (the server logs after sending it).
    t0 = time.time()
    while served(a) + served(b) < 1 and time.time() - t0 < 10:
        time.sleep(0.05)
    first = a if served(a) == 1 else b
    other = b if first is a else a
    assert served(first) == 1 and served(other) == 0
    turn2 = turn1 + [{"role": "assistant",
                      "content": r1["choices"][0]["message"]["content"]},
                     {"role": "user", "content": "And the ocean?"}]
    r2 = via_nginx({"messages": turn2, "max_tokens": 5, "temperature": 0})
    # nginx's round robin sent turn 2 to the other replica, which found the
    # state of turn 1 in Redis.
    t0 = time.time()
    while served(a) + served(b) < 2 and time.time() - t0 < 10:
        time.sleep(0.05)
    assert served(other) == 1, (served(a), served(b))
    cached = r2["usage"]["prompt_tokens_details"]["cached_tokens"]
    conversation = r1["usage"]["prompt_tokens"] + \
        r1["usage"]["completion_tokens"]
    assert cached == conversation, (cached, conversation)
    assert other.metrics()["rwkv_state_cache_hits_total"] == 1

    # A blob of another model under the key is never used: rewrite the
    # model hash in the stored blobs' headers (bytes 16..24).
    keys = subprocess.run(["redis-cli", "-p", str(rport), "--raw", "KEYS",
                           "rwkvc:state:*"], capture_output=True, check=True,
                          timeout=30).stdout.split()
    assert keys, "no state in Redis"
    import struct
    for key in keys:
        blob = subprocess.run(["redis-cli", "-p", str(rport), "--raw", "GET",
                               key], capture_output=True, check=True,
                              timeout=30).stdout[:-1]  # --raw adds "\n"
        assert blob[:7] == b"RWKVSTC", blob[:8]
        forged = blob[:16] + struct.pack("<Q", 0x1234) + blob[24:]
        subprocess.run(["redis-cli", "-p", str(rport), "-x", "SET", key],
                       input=forged, check=True, timeout=30,
                       capture_output=True)
    r3 = via_nginx({"messages": turn2, "max_tokens": 5, "temperature": 0})
    assert r3["usage"]["prompt_tokens_details"]["cached_tokens"] == 0, r3
    rejected = sum(s.metrics()["rwkv_state_cache_rejected_total"]
                   for s in (a, b))
    assert rejected >= 1, rejected
    print(f"redis + nginx: turn 2 on the other replica, {cached} of "
          f"{r2['usage']['prompt_tokens']} tokens from Redis; a forged "
          f"model hash is refused: ok")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rwkvc", required=True)
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("group", choices=["api", "openai", "redis"])
    args = ap.parse_args()
    args.work = os.path.join(args.work, args.group)
    os.makedirs(args.work, exist_ok=True)
    exe = compile_model(args)
    try:
        status = {"api": lambda: group_api(args, exe) or 0,
                  "openai": lambda: group_openai(args, exe),
                  "redis": lambda: group_redis(args, exe)}[args.group]()
    finally:
        stop_all()
    return status


if __name__ == "__main__":
    sys.exit(main())
