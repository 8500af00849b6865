//===- CliTest.cpp - The compiled model's command line (fake-model) -------===//
//
// Runs the executables fake-model (weights embedded) and fake-model-ext
// (weights mapped from a file beside it), built from FakeModel.cpp and
// rwkv_runtime_main, and compares their output with the in-process API.
//
//===----------------------------------------------------------------------===//

#include "FakeModel.h"
#include "TestUtil.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace rt_test;

namespace {

const std::string kFake = FAKE_MODEL_DIR "/fake-model";
const std::string kFakeExt = FAKE_MODEL_DIR "/fake-model-ext";

class Cli : public ::testing::Test {
protected:
  CliResult run(const std::string &args) { return runCli(dir, kFake, args); }

  /// In-process logits after `tokens` from the initial state.
  std::vector<float> expectedLogits(const std::vector<int32_t> &tokens) {
    char err[256];
    rwkv_model *m = rwkv_model_open(err, sizeof err);
    EXPECT_NE(m, nullptr) << err;
    std::vector<float> state(fake::kStateFloats), logits(fake::kVocab);
    rwkv_state_reset(m, state.data());
    EXPECT_EQ(rwkv_eval(m, state.data(), tokens.data(), tokens.size(),
                        logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
              RWKV_OK);
    rwkv_model_close(m);
    return logits;
  }

  std::vector<float> readLogits(const std::string &path) {
    std::vector<uint8_t> b = readBytes(path);
    EXPECT_EQ(b.size(), size_t(fake::kVocab) * 4) << path;
    std::vector<float> v(b.size() / 4);
    memcpy(v.data(), b.data(), v.size() * 4);
    return v;
  }

  /// The weights file of fake-model-ext: `n` bytes of `weights`, then the
  /// trailer of rwkv_abi.h naming `hash` (and `n` as the image's size).
  static std::vector<uint8_t> weightsFile(const void *weights, size_t n,
                                          uint64_t hash = fake::kExtHash) {
    std::vector<uint8_t> file(static_cast<const uint8_t *>(weights),
                              static_cast<const uint8_t *>(weights) + n);
    rwkv_weights_trailer trailer{};
    memcpy(trailer.magic, RWKV_WEIGHTS_MAGIC, sizeof trailer.magic);
    trailer.weights_bytes = n;
    trailer.model_hash = hash;
    const auto *t = reinterpret_cast<const uint8_t *>(&trailer);
    file.insert(file.end(), t, t + sizeof trailer);
    return file;
  }

  /// Copies fake-model-ext into the temp dir, with the weights file of
  /// `weights` beside it.
  std::string extModel(const void *weights, size_t n) {
    std::string exe = dir.path("fake-model-ext");
    EXPECT_EQ(std::system(("cp '" + kFakeExt + "' '" + exe + "'").c_str()), 0);
    if (weights)
      writeBytes(dir.path("fake-model-ext.weights"), weightsFile(weights, n));
    return exe;
  }

  /// Expects a command-line failure with `status` and `needle` in stderr.
  void expectError(const CliResult &r, int status, const std::string &needle) {
    EXPECT_EQ(r.status, status) << r.err;
    EXPECT_EQ(r.err.rfind("fake-model: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }

  TempDir dir;
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 2, 6, 5};
  const std::string promptArg = "--tokens 3,14,15,9,2,6,5";
};

// Tests that --help explains every option.
TEST_F(Cli, Help) {
  CliResult r = run("--help");
  EXPECT_EQ(r.status, 0) << r.err;
  for (const char *opt :
       {"--tokens", "--logits-out", "--print-logits", "--mode", "--chunk",
        "--state-in", "--state-out", "--bench", "--info", "--help"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
}

// Tests that --logits-out writes the logits as raw float32, in every mode.
TEST_F(Cli, LogitsOutInEveryMode) {
  std::vector<float> expected = expectedLogits(prompt);
  for (const char *mode : {"", "--mode seq", "--mode=rnn", "--chunk 2",
                           "--mode seq --chunk=3", "--chunk 100"}) {
    std::string out = dir.path("logits.bin");
    CliResult r = run(promptArg + " --logits-out " + out + " " + mode);
    ASSERT_EQ(r.status, 0) << mode << ": " << r.err;
    EXPECT_EQ(readLogits(out), expected) << mode;
  }
}

// Tests that --print-logits prints one %.6f value per line.
TEST_F(Cli, PrintLogits) {
  std::vector<float> expected = expectedLogits(prompt);
  CliResult r = run("--print-logits --tokens=3,14,15,9,2,6,5");
  ASSERT_EQ(r.status, 0) << r.err;
  std::ostringstream want;
  char line[64];
  for (float v : expected) {
    snprintf(line, sizeof line, "%.6f\n", double(v));
    want << line;
  }
  EXPECT_EQ(r.out, want.str());
}

// Tests that --state-out then --state-in continues the prompt exactly.
TEST_F(Cli, StateOutStateIn) {
  std::string state = dir.path("s.bin"), logits = dir.path("l.bin");
  ASSERT_EQ(run("--tokens 3,14,15 --state-out " + state).status, 0);
  CliResult r = run("--tokens 9,2,6,5 --mode rnn --state-in " + state +
                    " --logits-out " + logits);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(readLogits(logits), expectedLogits(prompt));

  // A corrupt state file is one clear error.
  std::vector<uint8_t> bytes = readBytes(state);
  bytes[0] = 'x';
  writeBytes(state, bytes);
  expectError(run("--tokens 1 --state-in " + state), 1,
              "'" + state + "' is not an rwkvc state file");
  expectError(run("--tokens 1 --state-in " + dir.path("none.bin")), 1,
              "cannot read the state file");
}

// Tests that the model's code running out of memory is one clear error and
// exit status 1, not a crash, and that no state file is written after it.
// FAKE_MODEL_FAIL_ALLOC=K fails the fake model's K-th scratch request
// (FakeModel.h: 2 per call, its rows, then the head's buffer).
TEST_F(Cli, OutOfMemory) {
  std::string state = dir.path("s.bin");
  CliResult r = withoutAllocatorWarnings(runCli(dir, "env",
                                                "FAKE_MODEL_FAIL_ALLOC=2 '" +
                                                    kFake + "' " + promptArg +
                                                    " --state-out " + state));
  expectError(r, 1,
              "rwkv_state_eval: out of memory: the model's code could not "
              "allocate 4611686018427387904 bytes of scratch at tokens 0..6 "
              "of 7 (chunks of 16); the state is as before the call\n");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(access(state.c_str(), F_OK), 0) << "no state file";
  r = withoutAllocatorWarnings(runCli(dir, "env",
                                      "FAKE_MODEL_FAIL_ALLOC=4 '" + kFake +
                                          "' " + promptArg + " --mode rnn"));
  expectError(r, 1, "at token 1 of 7 (RNN mode); the state was reset");
}

// Tests that the weights are mapped from the file beside the executable,
// and that a missing or wrong-sized file is a clear error.
TEST_F(Cli, ExternalWeights) {
  fake::Weights w = fake::makeWeights();
  std::string exe = extModel(&w, sizeof w);
  std::string logits = dir.path("l.bin");
  CliResult r = runCli(dir, exe, promptArg + " --logits-out " + logits);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(readLogits(logits), expectedLogits(prompt));

  r = runCli(dir, exe, "--info");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("in the file 'fake-model-ext.weights'"),
            std::string::npos)
      << r.out;

  writeBytes(dir.path("fake-model-ext.weights"), &w, 100);
  r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("has 100 bytes but this model needs 416"),
            std::string::npos)
      << r.err;

  // The raw image alone, 32 bytes longer: not a weights file.
  std::vector<uint8_t> raw(sizeof w + sizeof(rwkv_weights_trailer), 0);
  memcpy(raw.data(), &w, sizeof w);
  writeBytes(dir.path("fake-model-ext.weights"), raw);
  r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("is not a weights file written by rwkvc"),
            std::string::npos)
      << r.err;

  // The weights of another model of the same size (the embedded model's
  // hash): refused, naming both hashes.
  writeBytes(dir.path("fake-model-ext.weights"),
             weightsFile(&w, sizeof w, fake::kHash));
  r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("holds the weights of another model or build"),
            std::string::npos)
      << r.err;
  for (uint64_t hash : {fake::kHash, fake::kExtHash}) {
    char text[32];
    snprintf(text, sizeof text, "%#018llx", (unsigned long long)hash);
    EXPECT_NE(r.err.find(text), std::string::npos) << r.err;
  }

  ASSERT_EQ(unlink(dir.path("fake-model-ext.weights").c_str()), 0);
  r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("cannot open the weights file '" + dir.dir +
                       "/fake-model-ext.weights'"),
            std::string::npos)
      << r.err;
}

// Tests that a state saved by another model is refused, naming the file.
TEST_F(Cli, StateOfAnotherModel) {
  fake::Weights w = fake::makeWeights();
  std::string exe = extModel(&w, sizeof w);
  std::string state = dir.path("ext-state.bin");
  ASSERT_EQ(runCli(dir, exe, "--tokens 1,2 --state-out " + state).status, 0);
  expectError(run("--tokens 3 --state-in " + state), 1,
              "the state file '" + state +
                  "' belongs to another model: its model hash is "
                  "0xfedcba9876543210, this model's is 0x0123456789abcdef");
}

// Tests that a model of another ABI version is refused (but --info works).
TEST_F(Cli, AbiVersionMismatch) {
  std::string exe = FAKE_MODEL_DIR "/fake-model-badabi";
  CliResult r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  std::string runtimeAbi = std::to_string(RWKV_ABI_VERSION);
  EXPECT_NE(r.err.find("fake-model-badabi: error: the compiled model has ABI "
                       "version 99 but this runtime implements version " +
                       runtimeAbi),
            std::string::npos)
      << r.err;
  r = runCli(dir, exe, "--info");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("abi version: 99 (runtime: " + runtimeAbi + ")"),
            std::string::npos)
      << r.out;
}

// Tests that a model without CPU code is refused with one clear error (but
// --info works and shows its backends).
TEST_F(Cli, NoCpuBackend) {
  std::string exe = FAKE_MODEL_DIR "/fake-model-nocpu";
  CliResult r = runCli(dir, exe, "--tokens 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("fake-model-nocpu: error: the compiled model has no "
                       "CPU code (backends 0x0)"),
            std::string::npos)
      << r.err;
  r = runCli(dir, exe, "--info");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("backends: none this runtime runs"), std::string::npos)
      << r.out;
  r = runCli(dir, FAKE_MODEL_DIR "/fake-model", "--info");
  EXPECT_NE(r.out.find("backends: cpu\ncpu entries: forward_seq, forward_one, "
                       "forward_all, forward_batch\n"),
            std::string::npos)
      << r.out;
}

// Tests that --bench reports decode and prefill rates and peak memory.
TEST_F(Cli, Bench) {
  CliResult r = run("--bench 64 --chunk 8");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char *want :
       {"decode: ", "tokens/s (64 tokens, ",
        "prefill: ", "prefill (chunk 8): ", "total: ", "peak memory: ", " MiB"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  r = run("--bench");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("(512 tokens, "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("chunk"), std::string::npos) << r.out;
}

// Tests that --info prints the descriptor.
TEST_F(Cli, Info) {
  CliResult r = run("--info");
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char *want :
       {"model: fake.pth", "rwkv version: 7", "n_vocab: 16",
        "model hash: 0x0123456789abcdef", "weights: 384 bytes, embedded",
        "state: 12 floats (48 bytes), 3 slots", "state.0.att.pp", "init -1e30",
        "init weight (weight byte 64)"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

// Tests that bad command lines are refused with exit status 2 and a hint.
TEST_F(Cli, BadCommandLines) {
  struct Case {
    const char *args, *needle;
  } cases[] = {
      {"", "nothing to do"},
      {"--frob", "unknown option '--frob'"},
      {"--tokens", "--tokens needs a value"},
      {"--tokens 1,x,3", "item 2, 'x', is not a token id"},
      {"--tokens 1,,3", "item 2, '', is not a token id"},
      {"--tokens 1.5", "item 1, '1.5', is not a token id"},
      {"--tokens 99999999999", "is not a token id"},
      {"--tokens 1,16", "token 16 (item 2) is out of range: the vocabulary "
                        "has 16 tokens (0..15)"},
      {"--tokens=-1", "token -1 (item 1) is out of range"},
      {"--mode foo --tokens 1", "--mode: 'foo' is not rnn or seq"},
      {"--chunk -3 --tokens 1", "--chunk: '-3' is not a non-negative"},
      {"--bench=0", "--bench: '0' is not a positive integer"},
      {"--info=yes", "--info takes no value"},
      {"--logits-out x.bin", "need --tokens"},
      {"hello world", "unexpected argument 'world'"},
  };
  for (const Case &c : cases) {
    CliResult r = run(c.args);
    expectError(r, 2, c.needle);
    EXPECT_NE(r.err.find("fake-model --help"), std::string::npos)
        << c.args << ": " << r.err;
  }
}

// Tests that an unwritable --logits-out or --state-out is a runtime error.
TEST_F(Cli, UnwritableOutputs) {
  expectError(run("--tokens 1 --logits-out " + dir.path("no/l.bin")), 1,
              "cannot write the logits");
  expectError(run("--tokens 1 --state-out " + dir.path("no/s.bin")), 1,
              "cannot write the state file");
  // A write that fails when the buffered logits reach the file reports the
  // real reason (not "Success").
  expectError(run("--tokens 1 --logits-out /dev/full"), 1,
              "cannot write the logits to '/dev/full': No space left on "
              "device");
  // A failed write to stdout is an error, not a silent success.
  std::string cmd = "'" + kFake +
                    "' --tokens 1 --print-logits >/dev/full 2>'" +
                    dir.path("err.txt") + "'";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << rc;
  EXPECT_NE(readText(dir.path("err.txt"))
                .find("cannot write to stdout: No space left on device"),
            std::string::npos)
      << readText(dir.path("err.txt"));
}

} // namespace
