//===- TextCliTest.cpp - Text generation on the command line --------------===//
//
// Runs fake-model-text (FakeModel.h with 256 tokens and a bytes tokenizer
// blob linked in as rwkvc links one) and fake-model (no tokenizer): prompts,
// sampling options, stop strings/tokens, --tokenize/--detokenize, -f, --ppl,
// --chat with saved state, Ctrl-C, and bad input.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"
#include "test/TimeScale.h"

#include <algorithm>
#include <fcntl.h>
#include <string>
#include <sys/resource.h>
#include <vector>

using namespace rt_test;

namespace {

const std::string kText = FAKE_MODEL_DIR "/fake-model-text";
const std::string kNoTok = FAKE_MODEL_DIR "/fake-model";

class TextCli : public ::testing::Test {
protected:
  CliResult run(const std::string &args) { return runCli(dir, kText, args); }
  void expectError(const CliResult &r, int status, const std::string &needle) {
    EXPECT_EQ(r.status, status) << r.err;
    EXPECT_EQ(r.err.rfind("fake-model-text: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
  TempDir dir;
};

// Tests that greedy generation prints the same text every time, and -n.
TEST_F(TextCli, GreedyIsDeterministic) {
  CliResult r = run("hello -n 5 --temperature 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "fqitf");
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(run("hello -n 10 --temperature=0").out, "fqitfqfqfq");
  EXPECT_EQ(run("hello -n 0").out, "");
  // '--' ends the options: a prompt that starts with '-'.
  EXPECT_EQ(run("-n 3 --temperature 0 -- -hello").status, 0);
}

// Tests that a seed reproduces a sampled generation.
TEST_F(TextCli, SeedIsReproducible) {
  std::string args = "hello -n 40 --seed 7 --temperature 1.5 --top-p 1 "
                     "--top-k 20 --presence-penalty 0.3 --frequency-penalty "
                     "0.3 --penalty-decay 0.99";
  CliResult a = run(args), b = run(args);
  ASSERT_EQ(a.status, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.size(), 40u);
  EXPECT_NE(run("hello -n 40 --seed 8 --temperature 1.5 --top-p 1").out,
            a.out);
}

// Tests stop strings (not printed) and stop tokens.
TEST_F(TextCli, Stops) {
  EXPECT_EQ(run("hello -n 10 --temperature 0 --stop qf").out, "fqitf");
  EXPECT_EQ(run("hello -n 10 --temperature 0 --stop zz --stop it").out, "fq");
  EXPECT_EQ(run("hello -n 10 --temperature 0 --stop-token 105").out, "fq");
  // A stop string never seen: everything is printed.
  EXPECT_EQ(run("hello -n 10 --temperature 0 --stop fqx").out, "fqitfqfqfq");
}

// Tests --tokenize and --detokenize with the bytes tokenizer.
TEST_F(TextCli, TokenizeDetokenize) {
  CliResult r = run("--tokenize 'h\xC3\xA9!'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "104,195,169,33\n");
  r = run("--detokenize 104,195,169,33");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "h\xC3\xA9!");
  expectError(run("--detokenize 1,x"), 2, "--detokenize: item 2, 'x'");
  expectError(run("--detokenize 300"), 2, "token 300 (item 1) is out of "
                                          "range: the tokenizer has 256");
}

// Tests -f, --ppl, --verbose, and --state-out/--state-in continuing a text.
TEST_F(TextCli, FilesPerplexityState) {
  writeBytes(dir.path("p.txt"), "hello", 5);
  CliResult r = run("-f " + dir.path("p.txt") + " -n 5 --temperature 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "fqitf");
  r = run("--ppl " + dir.path("p.txt"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("perplexity: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("(5 tokens, 4 predictions"), std::string::npos);
  r = run("hello -n 3 --temperature 0 --verbose");
  EXPECT_NE(r.err.find("prompt: 5 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("generation: 3 tokens"), std::string::npos) << r.err;
  // "hel" then "lo" from the saved state == "hello" at once: the state
  // after a generation holds the prompt and every printed token.
  std::string s = dir.path("s.bin");
  ASSERT_EQ(run("hel -n 0 --state-out " + s).status, 0);
  EXPECT_EQ(run("lo -n 5 --temperature 0 --state-in " + s).out, "fqitf");
  expectError(run("-f " + dir.path("none.txt")), 1,
              "cannot read the file '" + dir.path("none.txt") + "'");
  writeBytes(dir.path("empty.txt"), "", 0);
  expectError(run("-f " + dir.path("empty.txt")), 1, "is empty");
}

// Tests --chat: turns in RWKV's format, replies end at "\n\n", the state is
// kept between turns and saved at the end.
TEST_F(TextCli, Chat) {
  writeBytes(dir.path("in.txt"), "hi\n\nhow are you\n", 16);
  std::string s = dir.path("chat.bin");
  CliResult r = run("--chat -n 4 --temperature 0 --state-out " + s + " <" +
                    dir.path("in.txt"));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("User: Assistant:", 0), 0u) << r.out;
  EXPECT_NE(readBytes(s).size(), 0u);
  // The second reply depends on the first turn (state kept): it differs
  // from a chat that starts with the second message.
  writeBytes(dir.path("in2.txt"), "how are you\n", 12);
  CliResult fresh =
      run("--chat -n 4 --temperature 0 <" + dir.path("in2.txt"));
  ASSERT_EQ(fresh.status, 0);
  size_t second = r.out.rfind("Assistant:");
  EXPECT_NE(r.out.substr(second, 14),
            fresh.out.substr(fresh.out.find("Assistant:"), 14));
}

// Tests that a --chat message over 1 MiB is skipped with an error (memory
// stays bounded whatever stdin holds) and the chat goes on.
TEST_F(TextCli, ChatLongMessage) {
  std::string in(size_t(2) << 20, 'a');
  in += "\nhi\n";
  writeBytes(dir.path("in.txt"), in.data(), in.size());
  CliResult r =
      run("--chat -n 4 --temperature 0 <'" + dir.path("in.txt") + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("the message is longer than 1048576 bytes: skipped"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.rfind("User: User: Assistant:", 0), 0u) << r.out;
}

// Tests that Ctrl-C ends the chat cleanly and --state-out still saves.
TEST_F(TextCli, CtrlC) {
  std::string s = dir.path("c.bin");
  std::string cmd = "sleep 1.5 | '" + kText + "' --chat --state-out '" + s +
                    "' >/dev/null 2>&1 & pid=$!; sleep 0.4; kill -INT $pid; "
                    "wait $pid";
  int rc = std::system(cmd.c_str()); // system() runs sh
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << rc;
  EXPECT_NE(readBytes(s).size(), 0u);
  // During a long generation.
  cmd = "'" + kText + "' hi -n 100000000 --temperature 0 --state-out '" + s +
        "2' >/dev/null 2>&1 & pid=$!; sleep 0.3; kill -INT $pid; wait $pid";
  rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << rc;
  EXPECT_NE(readBytes(s + "2").size(), 0u);
  // SIGTERM is handled as Ctrl-C: the state is still saved.
  cmd = "'" + kText + "' hi -n 100000000 --temperature 0 --state-out '" + s +
        "3' >/dev/null 2>&1 & pid=$!; sleep 0.3; kill -TERM $pid; wait $pid";
  rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << rc;
  EXPECT_NE(readBytes(s + "3").size(), 0u);
}

// Tests that a failed write to stdout is an error (status 1, the reason),
// not a silent success: generation, chat and --tokenize.
TEST_F(TextCli, StdoutWriteError) {
  writeBytes(dir.path("in.txt"), "hi\n", 3);
  for (std::string args :
       {std::string("hello -n 50 --temperature 0"), std::string("--tokenize hello"),
        "--chat -n 4 --temperature 0 <'" + dir.path("in.txt") + "'"}) {
    std::string err = dir.path("err.txt");
    std::string cmd =
        "'" + kText + "' " + args + " >/dev/full 2>'" + err + "'";
    int rc = std::system(cmd.c_str());
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << args << ": " << rc;
    EXPECT_NE(readText(err).find("fake-model-text: error: cannot write to "
                                 "stdout: No space left on device"),
              std::string::npos)
        << args << ": " << readText(err);
  }
}

// Tests that running out of memory while feeding the prompt, generating or
// scoring --ppl is one clear error with exit status 1 (FakeModel.h).
TEST_F(TextCli, OutOfMemory) {
  writeBytes(dir.path("in.txt"), "hello there\n", 12);
  for (std::string args :
       {std::string("FAKE_MODEL_FAIL_ALLOC=2 '") + kText + "' hello",
        std::string("FAKE_MODEL_FAIL_ALLOC=9 '") + kText +
            "' hello -n 20 --temperature 0",
        "FAKE_MODEL_FAIL_ALLOC=1 '" + kText + "' --ppl '" + dir.path("in.txt") +
            "'"}) {
    CliResult r = withoutAllocatorWarnings(runCli(dir, "env", args));
    expectError(r, 1, "out of memory: the model's code could not allocate");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// Tests bad input: empty prompt, invalid UTF-8, bad option values, two
// prompts, and a model without a tokenizer.
TEST_F(TextCli, BadInput) {
  expectError(run("''"), 2, "the prompt is empty");
  expectError(run("\"$(printf 'ab\\377')\""), 2,
              "the prompt is not valid UTF-8: byte 0xff at offset 2");
  expectError(run("--tokenize \"$(printf '\\300\\200')\""), 2,
              "not valid UTF-8");
  writeBytes(dir.path("bad.txt"), "ok\xE4\xB8", 4);
  expectError(run("-f " + dir.path("bad.txt")), 1,
              "is not valid UTF-8: byte 0xe4 at offset 2");
  expectError(run("a b"), 2, "unexpected argument 'b'");
  expectError(run("a --temperature -1"), 2, "--temperature: '-1'");
  expectError(run("a --top-p 0"), 2, "--top-p: '0' is not a number in (0, 1]");
  expectError(run("a --top-k x"), 2, "--top-k: 'x'");
  expectError(run("a --penalty-decay 2"), 2, "--penalty-decay: '2'");
  expectError(run("a --seed -4"), 2, "--seed: '-4'");
  expectError(run("a -n x"), 2, "-n: 'x'");
  expectError(run("a --stop ''"), 2, "--stop: the stop string is empty");
  expectError(run("a --tokens 1"), 2, "do not combine");
  CliResult r = runCli(dir, kNoTok, "hello");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("fake-model: error: no tokenizer is linked into this "
                       "executable"),
            std::string::npos)
      << r.err;
}

// Tests that --info names the tokenizer, and goes on to a prompt.
TEST_F(TextCli, Info) {
  CliResult r = run("--info hello -n 3 --temperature 0");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("tokenizer: bytes, 256 tokens, end of text -1\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.substr(r.out.size() - 3), "fqi");
  r = runCli(dir, kNoTok, "--info");
  EXPECT_NE(r.out.find("tokenizer: none (no tokenizer is linked"),
            std::string::npos)
      << r.out;
}

// Tests that --help lists the text options.
TEST_F(TextCli, Help) {
  CliResult r = run("--help");
  for (const char *opt :
       {"-n N", "-f FILE", "--temperature", "--top-p", "--top-k",
        "--presence-penalty", "--frequency-penalty", "--penalty-decay",
        "--seed", "--stop STR", "--stop-token", "--chat", "--ppl",
        "--tokenize", "--detokenize", "--verbose", "Ctrl-C"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

// Tests that --help lists the server's options, and that --serve refuses
// what does not combine or cannot start with one clear error
// (test/serve/serve_test.py runs the server itself).
TEST_F(TextCli, ServeOptions) {
  CliResult r = run("--help");
  for (const char *opt : {"--serve", "--host ADDR", "--port N", "--parallel N",
                          "--state-cache SIZE|URL", "--queue N",
                          "--max-prompt N", "--timeout S"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  expectError(run("--serve hello"), 2, "--serve takes no prompt");
  expectError(run("--serve --tokens 1"), 2, "--serve takes no prompt");
  expectError(run("--serve --port 70000"), 2, "--port: '70000' is not");
  expectError(run("--serve --parallel 0"), 2, "--parallel: '0' is not");
  expectError(run("--serve --timeout 0"), 2, "--timeout: '0' is not");
  expectError(run("--serve --port 0 --state-cache 12X"), 1,
              "'12X' is not a size");
  expectError(run("--serve --port 0 --state-cache redis://127.0.0.1:x"), 1,
              "is not redis://HOST:PORT");
  // Port 1 on loopback: nothing listens there (and no root daemon does).
  expectError(run("--serve --port 0 --state-cache redis://127.0.0.1:1"), 1,
              "cannot connect to the state cache");
}

/// What a child run used: its exit status, peak resident memory and CPU time.
struct ChildUse {
  int status = -1;
  double maxRssMiB = 0, cpuSeconds = 0;
};

/// Runs `exe args...` with stdout and stderr to /dev/null; wait4 gives the
/// child's own rusage (not that of earlier children of the test).
ChildUse runMeasured(const std::string &exe, std::vector<std::string> args) {
  args.insert(args.begin(), exe);
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  ChildUse use;
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
    return use;
  use.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  use.maxRssMiB = double(ru.ru_maxrss) / 1024.0;
  use.cpuSeconds = double(ru.ru_utime.tv_sec) + ru.ru_utime.tv_usec * 1e-6 +
                   double(ru.ru_stime.tv_sec) + ru.ru_stime.tv_usec * 1e-6;
  return use;
}

// Tests that long inputs run in constant memory (docs/runtime.md, "Long
// inputs"): a 20 MB prompt file (20 million tokens with the bytes
// tokenizer; fed at once it would need ~100 GB of forward_seq scratch) and
// a 1,000,000-token --ppl each stay under 100 MB resident (ASan's shadow
// memory: 400 MB). The CPU bounds (the child's, not wall time) are far
// above the ~2 s each takes.
TEST_F(TextCli, LongInputsInConstantMemory) {
  using rwkvc::testing::kTimeScale;
#ifdef RWKVC_SANITIZED
  const double kMaxRssMiB = 400;
#else
  const double kMaxRssMiB = 100;
#endif
  std::string line = "a line of a long prompt, with some words in it\n";
  std::string big;
  big.reserve(size_t(20) << 20);
  while (big.size() + line.size() <= (size_t(20) << 20))
    big += line;
  std::string path = dir.path("big.txt");
  writeBytes(path, big.data(), big.size());
  big = std::string();
  std::string state = dir.path("s.bin");
  ChildUse use = runMeasured(kText, {"-f", path, "-n", "0", "--state-out",
                                     state});
  EXPECT_EQ(use.status, 0);
  EXPECT_LT(use.maxRssMiB, kMaxRssMiB);
  EXPECT_LT(use.cpuSeconds, 60 * kTimeScale);
  EXPECT_NE(readBytes(state).size(), 0u);

  std::string text;
  while (text.size() + line.size() <= 1000000)
    text += line;
  text.append(1000000 - text.size(), 'x'); // 1,000,000 tokens
  writeBytes(path, text.data(), text.size());
  use = runMeasured(kText, {"--ppl", path});
  EXPECT_EQ(use.status, 0);
  EXPECT_LT(use.maxRssMiB, kMaxRssMiB);
  EXPECT_LT(use.cpuSeconds, 60 * kTimeScale);
  CliResult r = run("--ppl " + path);
  EXPECT_NE(r.out.find("(1000000 tokens, 999999 predictions"),
            std::string::npos)
      << r.out;

  // An endless input of no text ends with an error, not an abort.
  expectError(run("-f /dev/zero"), 1,
              "the file '/dev/zero' is not text: a NUL byte at offset 0");
  expectError(run("--ppl /dev/zero"), 1, "a NUL byte at offset 0");
}

} // namespace
