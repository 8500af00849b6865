//===- CudaRuntimeTest.cpp - The runtime's CUDA backend on the emulator ---===//
//
// The C API on the toy model of FakeCudaModel.h, linked in with CPU code and
// an emulator image of its kernels, run through libcuda-emu.so.1 (ctest sets
// RWKV_CUDA_LIBRARY): results against the C++ reference, chunking, graph
// replay, state transfers between the backends; the image choice and the
// program checks (rwkv_cuda.h); and the command line of fake-cuda-model
// (CUDA only) and fake-cuda-cpu-model (both) with the driver missing, no
// device, an old driver, little device memory, and each --device.
//
//===----------------------------------------------------------------------===//

#include "FakeCudaModel.h"
#include "TestUtil.h"
#include "rwkv_cli.h"
#include "rwkv_cuda.h"
#include "rwkv_runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace fake_cuda;
using namespace rt_test;

namespace {

const std::string kCudaModel = FAKE_MODEL_DIR "/fake-cuda-model";
const std::string kBothModel = FAKE_MODEL_DIR "/fake-cuda-cpu-model";
const std::string kCpuModel = FAKE_MODEL_DIR "/fake-model";

/// The reference: the initial state and the logits after every token.
struct Reference {
  Weights w = makeWeights();
  std::vector<float> state = initial();

  static std::vector<float> initial() {
    Weights w = makeWeights();
    std::vector<float> s(kStateFloats, 0.0f);
    for (int64_t k = 0; k < kLayers; ++k)
      for (int64_t c = 0; c < kEmbd; ++c) {
        s[size_t(k * kLayerFloats + kEmbd + c)] = w.layers[k].initS[c];
        s[size_t(k * kLayerFloats + 2 * kEmbd + c)] = -1e30f;
      }
    return s;
  }
  /// Feeds `tokens`; returns (n, V) logits.
  std::vector<float> run(const std::vector<int32_t> &tokens) {
    std::vector<float> logits(tokens.size() * kVocab);
    float h[kEmbd];
    for (size_t i = 0; i < tokens.size(); ++i) {
      step(w, state.data(), tokens[i], h);
      head(w, h, logits.data() + i * kVocab);
    }
    return logits;
  }
};

std::vector<int32_t> someTokens(size_t n, uint32_t seed = 1) {
  std::vector<int32_t> t(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    t[i] = int32_t((seed >> 8) % kVocab);
  }
  return t;
}

std::vector<float> lastRow(const std::vector<float> &all) {
  return std::vector<float>(all.end() - kVocab, all.end());
}

// The kernels compute every float as the reference does, in the same order,
// both without FMA contraction (-ffp-contract=off): the results are equal.
::testing::AssertionResult same(const std::vector<float> &a,
                                const std::vector<float> &b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure()
           << a.size() << " floats, expected " << b.size();
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i]))
      return ::testing::AssertionFailure()
             << "float " << i << " is " << a[i] << ", expected " << b[i];
  return ::testing::AssertionSuccess();
}
#define EXPECT_SAME(a, b) EXPECT_TRUE(same(a, b))

class CudaRuntime : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_NE(std::getenv("RWKV_CUDA_LIBRARY"), nullptr)
        << "ctest sets RWKV_CUDA_LIBRARY to the emulator";
    m = rwkv_model_open_device(RWKV_DEVICE_CUDA, err, sizeof err);
    ASSERT_NE(m, nullptr) << err;
  }
  void TearDown() override { rwkv_model_close(m); }

  rwkv_state *newState(const rwkv_model *model) {
    rwkv_state *s = rwkv_state_new(model, err, sizeof err);
    EXPECT_NE(s, nullptr) << err;
    return s;
  }
  std::vector<float> read(const rwkv_state *s) {
    std::vector<float> v(kStateFloats);
    EXPECT_EQ(rwkv_state_read(s, v.data(), err, sizeof err), RWKV_OK) << err;
    return v;
  }
  /// Feeds `tokens` to `s` in `mode` with `chunk`; returns the logits.
  std::vector<float> eval(rwkv_state *s, const std::vector<int32_t> &tokens,
                          int mode, size_t chunk = 0) {
    std::vector<float> logits(kVocab);
    EXPECT_EQ(rwkv_state_eval(s, tokens.data(), tokens.size(), logits.data(),
                              mode, chunk, err, sizeof err),
              RWKV_OK)
        << err;
    return logits;
  }
  std::vector<float> evalAll(rwkv_state *s, const std::vector<int32_t> &tokens,
                             size_t chunk) {
    std::vector<float> logits(tokens.size() * kVocab);
    EXPECT_EQ(rwkv_state_eval_all(s, tokens.data(), tokens.size(),
                                  logits.data(), chunk, err, sizeof err),
              RWKV_OK)
        << err;
    return logits;
  }

  char err[512] = "";
  rwkv_model *m = nullptr;
};

// Tests that the model runs on the emulated GPU and says so.
TEST_F(CudaRuntime, OpensOnCuda) {
  EXPECT_EQ(rwkv_model_backend(m), uint32_t(RWKV_BACKEND_CUDA));
  std::string info = rwkv_model_device_info(m);
  EXPECT_EQ(info.rfind("cuda: rwkv-cuda-emu", 0), 0u) << info;
  EXPECT_NE(info.find("compute capability 8.0"), std::string::npos) << info;
  EXPECT_NE(info.find("kernels: emulator"), std::string::npos) << info;
  rwkv_model *a = rwkv_model_open(err, sizeof err); // auto
  ASSERT_NE(a, nullptr) << err;
  EXPECT_EQ(rwkv_model_backend(a), uint32_t(RWKV_BACKEND_CUDA));
  rwkv_model_close(a);
  rwkv_model *c = rwkv_model_open_device(RWKV_DEVICE_CPU, err, sizeof err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(rwkv_model_backend(c), uint32_t(RWKV_BACKEND_CPU));
  EXPECT_STREQ(rwkv_model_device_info(c), "cpu");
  rwkv_model_close(c);
  EXPECT_EQ(rwkv_model_open_device(7, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("unknown device 7"), std::string::npos);
  EXPECT_EQ(rwkv_device_from_name("cuda"), RWKV_DEVICE_CUDA);
  EXPECT_EQ(rwkv_device_from_name("gpu"), -1);
}

// Tests that a new state is the initial state, and clear restores it.
TEST_F(CudaRuntime, InitialStateAndClear) {
  rwkv_state *s = newState(m);
  EXPECT_SAME(read(s), Reference::initial());
  eval(s, {1, 2, 3}, RWKV_EVAL_SEQ);
  EXPECT_NE(read(s), Reference::initial());
  rwkv_state_clear(s);
  EXPECT_SAME(read(s), Reference::initial());
  rwkv_state_free(s);
}

// Tests RNN, SEQ (T-dependent grids, T_ONE/T_MANY kernels, the layer loop)
// and eval_all (R = T) against the reference, logits and state.
TEST_F(CudaRuntime, ModesMatchReference) {
  std::vector<int32_t> tokens = someTokens(37);
  Reference ref;
  std::vector<float> all = ref.run(tokens);
  for (int mode : {RWKV_EVAL_RNN, RWKV_EVAL_SEQ}) {
    rwkv_state *s = newState(m);
    EXPECT_SAME(eval(s, tokens, mode), lastRow(all)) << "mode " << mode;
    EXPECT_SAME(read(s), ref.state);
    rwkv_state_free(s);
  }
  rwkv_state *s = newState(m);
  EXPECT_SAME(evalAll(s, tokens, 0), all);
  EXPECT_SAME(read(s), ref.state);
  // One token in SEQ mode runs the T == 1 kernels.
  std::vector<float> one = Reference().run({5});
  rwkv_state_clear(s);
  EXPECT_SAME(eval(s, {5}, RWKV_EVAL_SEQ), one);
  rwkv_state_clear(s);
  EXPECT_SAME(evalAll(s, {5}, 0), one);
  rwkv_state_free(s);
}

// Tests that any chunking gives the logits and state of one call.
TEST_F(CudaRuntime, ChunkedEqualsUnchunked) {
  std::vector<int32_t> tokens = someTokens(50, 7);
  Reference ref;
  std::vector<float> all = ref.run(tokens);
  for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(16),
                       size_t(49), size_t(50), size_t(4096)}) {
    rwkv_state *s = newState(m);
    EXPECT_SAME(eval(s, tokens, RWKV_EVAL_SEQ, chunk), lastRow(all))
        << "chunk " << chunk;
    EXPECT_SAME(read(s), ref.state);
    rwkv_state_clear(s);
    EXPECT_SAME(evalAll(s, tokens, chunk), all);
    rwkv_state_free(s);
  }
}

// Tests that decoding by graph replay equals the plan launched step by step
// ($RWKV_CUDA_GRAPHS=0 at open), and that a state keeps its graph across
// calls that grow its buffers (the graph is captured again).
TEST_F(CudaRuntime, GraphReplayEqualsPlan) {
  setenv("RWKV_CUDA_GRAPHS", "0", 1);
  rwkv_model *plain = rwkv_model_open_device(RWKV_DEVICE_CUDA, err, sizeof err);
  unsetenv("RWKV_CUDA_GRAPHS");
  ASSERT_NE(plain, nullptr) << err;
  rwkv_state *g = newState(m), *p = newState(plain);
  Reference ref;
  std::vector<int32_t> tokens = someTokens(30, 3);
  std::vector<float> all = ref.run(tokens);
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::vector<int32_t> one = {tokens[i]};
    std::vector<float> want(all.begin() + long(i * kVocab),
                            all.begin() + long((i + 1) * kVocab));
    EXPECT_SAME(eval(g, one, RWKV_EVAL_RNN), want) << "token " << i;
    EXPECT_SAME(eval(p, one, RWKV_EVAL_RNN), want) << "token " << i;
    if (i == 10) { // a long call in between: new buffers, a new graph
      rwkv_state *tmp = newState(m);
      evalAll(tmp, someTokens(40), 40);
      rwkv_state_free(tmp);
      std::vector<float> saved = read(g);
      evalAll(g, someTokens(40), 40);
      ASSERT_EQ(rwkv_state_write(g, saved.data(), err, sizeof err), RWKV_OK);
    }
  }
  EXPECT_SAME(read(g), read(p));
  rwkv_state_free(g);
  rwkv_state_free(p);
  rwkv_model_close(plain);
}

// Tests read/write, clone/assign and state files on the device, and that a
// state saved on CUDA loads on the CPU backend (and back) and goes on alike.
TEST_F(CudaRuntime, StateTransfers) {
  TempDir dir;
  rwkv_state *s = newState(m);
  eval(s, someTokens(9), RWKV_EVAL_SEQ);
  std::vector<float> host = read(s);
  rwkv_state *c = rwkv_state_clone(s, err, sizeof err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_SAME(read(c), host);
  rwkv_state *w = newState(m);
  ASSERT_EQ(rwkv_state_write(w, host.data(), err, sizeof err), RWKV_OK);
  EXPECT_SAME(read(w), host);
  rwkv_state_clear(w);
  ASSERT_EQ(rwkv_state_assign(w, s, err, sizeof err), RWKV_OK);
  EXPECT_SAME(read(w), host);

  std::string file = dir.path("cuda.state");
  ASSERT_EQ(rwkv_state_save_file(s, file.c_str(), err, sizeof err), RWKV_OK)
      << err;
  rwkv_model *cpu = rwkv_model_open_device(RWKV_DEVICE_CPU, err, sizeof err);
  ASSERT_NE(cpu, nullptr) << err;
  rwkv_state *onCpu = newState(cpu);
  ASSERT_EQ(rwkv_state_load_file(onCpu, file.c_str(), err, sizeof err),
            RWKV_OK)
      << err;
  EXPECT_SAME(read(onCpu), host);
  std::vector<int32_t> more = someTokens(11, 5);
  EXPECT_SAME(eval(onCpu, more, RWKV_EVAL_SEQ), eval(c, more, RWKV_EVAL_SEQ));
  // ... and back: a CPU state file on CUDA; a CPU handle assigned to CUDA.
  std::string back = dir.path("cpu.state");
  ASSERT_EQ(rwkv_state_save_file(onCpu, back.c_str(), err, sizeof err),
            RWKV_OK);
  rwkv_state_clear(w);
  ASSERT_EQ(rwkv_state_load_file(w, back.c_str(), err, sizeof err), RWKV_OK)
      << err;
  EXPECT_SAME(read(w), read(onCpu));
  rwkv_state_clear(w);
  ASSERT_EQ(rwkv_state_assign(w, onCpu, err, sizeof err), RWKV_OK) << err;
  EXPECT_SAME(read(w), read(onCpu));
  // A refused file leaves the device state as it was.
  writeBytes(dir.path("junk.state"), "junk", 4);
  EXPECT_EQ(rwkv_state_load_file(w, dir.path("junk.state").c_str(), err,
                                 sizeof err),
            RWKV_ERROR_FORMAT);
  EXPECT_SAME(read(w), read(onCpu));
  for (rwkv_state *x : {s, c, w, onCpu})
    rwkv_state_free(x);
  rwkv_model_close(cpu);
}

// Tests the host-buffer calls on a CUDA model (upload, run, download).
TEST_F(CudaRuntime, HostBufferCalls) {
  std::vector<float> state(kStateFloats), logits(kVocab);
  rwkv_state_reset(m, state.data());
  EXPECT_SAME(state, Reference::initial());
  std::vector<int32_t> tokens = someTokens(21, 9);
  Reference ref;
  std::vector<float> all = ref.run(tokens);
  for (int mode : {RWKV_EVAL_RNN, RWKV_EVAL_SEQ}) {
    rwkv_state_reset(m, state.data());
    ASSERT_EQ(rwkv_eval(m, state.data(), tokens.data(), tokens.size(),
                        logits.data(), mode, 4, err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_SAME(logits, lastRow(all));
    EXPECT_SAME(state, ref.state);
  }
}

// Tests that bad input is refused before anything runs: ids out of range,
// an unknown mode; the state stays as it was.
TEST_F(CudaRuntime, BadInput) {
  rwkv_state *s = newState(m);
  std::vector<float> logits(kVocab);
  std::vector<int32_t> bad = {1, 2, int32_t(kVocab)};
  EXPECT_EQ(rwkv_state_eval(s, bad.data(), bad.size(), logits.data(),
                            RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("out of range"), std::string::npos) << err;
  EXPECT_EQ(rwkv_state_eval(s, bad.data(), 2, logits.data(), 9, 0, err,
                            sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(rwkv_state_eval(s, bad.data(), 0, logits.data(), RWKV_EVAL_SEQ, 0,
                            err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_SAME(read(s), Reference::initial());
  rwkv_state_free(s);
}

// Tests that states of one model run from several threads at once (each
// has its own stream and buffers; every thread makes the context current).
TEST_F(CudaRuntime, StatesOnThreads) {
  std::vector<std::vector<float>> got(4), want(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i) {
    std::vector<int32_t> tokens = someTokens(10 + i, uint32_t(i));
    want[i] = lastRow(Reference().run(tokens));
    threads.emplace_back([this, i, tokens, &got] {
      char e[256];
      rwkv_state *s = rwkv_state_new(m, e, sizeof e);
      got[i].resize(kVocab);
      if (!s ||
          rwkv_state_eval(s, tokens.data(), tokens.size(), got[i].data(),
                          i % 2 ? RWKV_EVAL_RNN : RWKV_EVAL_SEQ, 3, e,
                          sizeof e) != RWKV_OK)
        got[i].clear();
      rwkv_state_free(s);
    });
  }
  for (std::thread &t : threads)
    t.join();
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_SAME(got[i], want[i]);
}

// Tests that a call whose buffers do not fit the device memory fails with
// RWKV_ERROR_MEMORY before anything runs: the state is as before the call
// and the next, smaller call goes on from it. Run by the ctest entry
// CudaOom.StateUnchanged with 1 MiB of emulated device memory (the
// discovered entries leave it out: the limit is read once, at cuInit).
TEST_F(CudaRuntime, OomStateUnchanged) {
  const char *mib = std::getenv("RWKV_CUDA_EMU_MEMORY_MIB");
  if (!mib || strcmp(mib, "1") != 0)
    GTEST_SKIP() << "needs RWKV_CUDA_EMU_MEMORY_MIB=1";
  rwkv_state *s = newState(m);
  Reference ref;
  std::vector<int32_t> first = someTokens(7);
  ref.run(first);
  eval(s, first, RWKV_EVAL_RNN); // the decode graph on small buffers
  // 2000 tokens in one chunk: 2000 KiB of scratch.
  std::vector<int32_t> many = someTokens(2000, 11);
  std::vector<float> logits(many.size() * kVocab);
  for (bool all : {false, true}) {
    int status =
        all ? rwkv_state_eval_all(s, many.data(), many.size(), logits.data(),
                                  many.size(), err, sizeof err)
            : rwkv_state_eval(s, many.data(), many.size(), logits.data(),
                              RWKV_EVAL_SEQ, many.size(), err, sizeof err);
    EXPECT_EQ(status, RWKV_ERROR_MEMORY) << err;
    EXPECT_NE(std::string(err).find("out of device memory"), std::string::npos)
        << err;
    EXPECT_NE(std::string(err).find("the state is as before the call"),
              std::string::npos)
        << err;
    EXPECT_SAME(read(s), ref.state);
  }
  std::vector<float> all = ref.run(many);
  EXPECT_SAME(evalAll(s, many, 64), all);
  EXPECT_SAME(read(s), ref.state);
  std::vector<int32_t> last = {4};
  EXPECT_SAME(eval(s, last, RWKV_EVAL_RNN), ref.run(last));
  rwkv_state_free(s);
}

//===----------------------------------------------------------------------===//
// The image choice and the program checks
//===----------------------------------------------------------------------===//

rwkv_cuda_program programOf(const std::vector<rwkv_cuda_image> &images) {
  rwkv_cuda_program p{};
  p.n_images = int32_t(images.size());
  p.images = images.data();
  return p;
}

// Tests which image runs on which GPU.
TEST(CudaImages, PicksTheBestImage) {
  static const char bytes[] = "x";
  std::vector<rwkv_cuda_image> images = {
      {RWKV_CUDA_IMAGE_CUBIN, 80, bytes, 1},
      {RWKV_CUDA_IMAGE_CUBIN, 86, bytes, 1},
      {RWKV_CUDA_IMAGE_CUBIN, 90, bytes, 1},
      {RWKV_CUDA_IMAGE_PTX, 80, bytes, 2}};
  rwkv_cuda_program p = programOf(images);
  char err[256] = "";
  EXPECT_EQ(rwkv_cuda::pickImage(p, 8, 0, err, sizeof err), 0);
  EXPECT_EQ(rwkv_cuda::pickImage(p, 8, 6, err, sizeof err), 1);
  EXPECT_EQ(rwkv_cuda::pickImage(p, 8, 9, err, sizeof err), 1); // 8.6 runs 8.9
  EXPECT_EQ(rwkv_cuda::pickImage(p, 9, 0, err, sizeof err), 2);
  EXPECT_EQ(rwkv_cuda::pickImage(p, 12, 0, err, sizeof err), 3); // PTX JIT
  EXPECT_EQ(rwkv_cuda::pickImage(p, 7, 5, err, sizeof err), -1);
  EXPECT_STREQ(err,
               "GPU sm_75 is older than the kernels of this model "
               "(sm_80..sm_90)");
  images.pop_back(); // no PTX: a newer GPU has nothing it can run
  p = programOf(images);
  EXPECT_EQ(rwkv_cuda::pickImage(p, 10, 0, err, sizeof err), -1);
  EXPECT_NE(std::string(err).find("no kernels of this model run on GPU "
                                  "sm_100"),
            std::string::npos)
      << err;
  images.push_back({RWKV_CUDA_IMAGE_EMULATOR, 0, bytes, 0});
  p = programOf(images);
  EXPECT_EQ(rwkv_cuda::pickImage(p, 7, 5, err, sizeof err), 3);
}

// Tests that a malformed program is refused with what is wrong.
TEST(CudaImages, ChecksTheProgram) {
  const rwkv_model_desc &good = rwkv_model_descriptor;
  char err[512] = "";
  ASSERT_EQ(rwkv_cuda::checkProgram(good, err, sizeof err), RWKV_OK) << err;
  rwkv_cuda_program p = *good.cuda;
  rwkv_model_desc d = good;
  d.cuda = &p;
  std::vector<rwkv_cuda_step> steps(p.steps, p.steps + p.n_steps);
  std::vector<rwkv_cuda_arg> args(p.args, p.args + p.n_args);
  p.steps = steps.data();
  p.args = args.data();
  auto expectBad = [&](const char *needle) {
    EXPECT_EQ(rwkv_cuda::checkProgram(d, err, sizeof err), RWKV_ERROR_MODEL);
    EXPECT_NE(std::string(err).find(needle), std::string::npos) << err;
  };
  steps[3].kernel = 6;
  expectBad("step 3 launches kernel 6 of 6");
  steps[3].kernel = 2;
  steps[5].kind = RWKV_CUDA_LAUNCH; // the loop never ends
  steps[5].grid[0] = steps[5].grid[1] = steps[5].grid[2] = {1, 1, 0};
  steps[5].block[0] = steps[5].block[1] = steps[5].block[2] = 1;
  expectBad("has no END_LOOP");
  steps[5] = good.cuda->steps[5];
  args[10].layer_stride = 40; // the last layer's state lies past the end
  expectBad("step 3 argument 2 (kind 1) points at [0, 80] outside its buffer "
            "of 72");
  args[10] = good.cuda->args[10];
  steps[0].grid[0].per = 0;
  expectBad("step 0 has a grid dimension");
  steps[0] = good.cuda->steps[0];
  d.cuda = nullptr;
  expectBad("no program");
}

//===----------------------------------------------------------------------===//
// The command line
//===----------------------------------------------------------------------===//

class CudaCli : public ::testing::Test {
protected:
  /// Runs `exe args` with `env` (VAR=value words) before it; the emulator's
  /// own lines are silenced.
  CliResult run(const std::string &exe, const std::string &args,
                const std::string &env = "") {
    return runCli(dir, "env",
                  "RWKV_CUDA_EMU_QUIET=1 " + env + " '" + exe + "' " + args);
  }
  /// Expects a runtime error: exit 1 and stderr exactly one line with
  /// `needle`.
  void expectOneLine(const CliResult &r, const std::string &needle) {
    EXPECT_EQ(r.status, RWKV_EXIT_ERROR) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
  TempDir dir;
  const std::string tokens = "--tokens 3,14,15,9,2,6,5,3,5,8,9,7 ";
};

// Tests that both executables print the reference's logits on CUDA, in
// every mode and the emulator's three schedules, and say what runs them.
TEST_F(CudaCli, LogitsOnCuda) {
  Reference ref;
  std::vector<float> want =
      lastRow(ref.run({3, 14, 15, 9, 2, 6, 5, 3, 5, 8, 9, 7}));
  std::string expected;
  for (float v : want) { // as --print-logits prints them
    char line[64];
    snprintf(line, sizeof line, "%.6f\n", double(v));
    expected += line;
  }
  for (const std::string &exe : {kCudaModel, kBothModel})
    for (const char *mode : {"rnn", "seq"})
      for (const char *schedule : {"forward", "reverse", "random:7"}) {
        CliResult r = run(exe,
                          tokens + "--print-logits --chunk 5 -v --mode " + mode,
                          std::string("RWKV_CUDA_EMU_SCHEDULE=") + schedule);
        EXPECT_EQ(r.status, 0) << r.err;
        EXPECT_EQ(r.out, expected) << exe << " " << mode << " " << schedule;
        EXPECT_NE(r.err.find("device: cuda: rwkv-cuda-emu"), std::string::npos)
            << r.err;
      }
}

// Tests the one-line errors when CUDA cannot run a CUDA-only model, and
// the CPU fall-back of a model that has both.
TEST_F(CudaCli, UnusableCuda) {
  struct Case {
    const char *env, *needle;
  } cases[] = {
      {"RWKV_CUDA_LIBRARY=/nonexistent/libcuda.so.1",
       "cannot load the CUDA driver library '/nonexistent/libcuda.so.1'"},
      {"RWKV_CUDA_EMU_DEVICES=0", "no CUDA device: cuInit failed: "
                                  "CUDA_ERROR_NO_DEVICE"},
      {"RWKV_CUDA_EMU_DRIVER_VERSION=12000",
       "the NVIDIA driver is too old: it runs CUDA 12.0 (version 12000)"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.env);
    for (const char *device : {"", "--device cuda", "--device auto"})
      expectOneLine(run(kCudaModel, tokens + device, c.env),
                    std::string("fake-cuda-model: error: CUDA: ") + c.needle);
    expectOneLine(run(kBothModel, tokens + "--device cuda", c.env), c.needle);
    CliResult r = run(kBothModel, tokens + "--print-logits -v", c.env);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("device: cpu (CUDA not used: CUDA: "),
              std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out, run(kBothModel, tokens + "--print-logits").out);
  }
}

// Tests --device and $RWKV_DEVICE against what the models have.
TEST_F(CudaCli, DeviceChoice) {
  expectOneLine(run(kCudaModel, tokens + "--device cpu"),
                "the compiled model has no CPU code (backends 0x2)");
  expectOneLine(run(kCpuModel, tokens + "--device cuda"),
                "the compiled model has no CUDA kernels (backends 0x1)");
  expectOneLine(run(kCpuModel, tokens, "RWKV_DEVICE=cuda"),
                "has no CUDA kernels");
  CliResult r = run(kCpuModel, tokens + "--device cpu", "RWKV_DEVICE=cuda");
  EXPECT_EQ(r.status, 0) << r.err; // the option wins
  r = run(kBothModel, tokens + "-v", "RWKV_DEVICE=cpu");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("device: cpu\n"), std::string::npos) << r.err;
  r = run(kBothModel, tokens + "--device gpu");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--device: 'gpu' is not auto, cpu or cuda"),
            std::string::npos)
      << r.err;
  r = run(kBothModel, tokens, "RWKV_DEVICE=gpu");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("RWKV_DEVICE='gpu' is not auto, cpu or cuda"),
            std::string::npos)
      << r.err;
}

// Tests that a chunk whose buffers do not fit the device memory fails with
// RWKV_ERROR_MEMORY's message, and smaller chunks then run; a weight image
// that does not fit fails at open.
TEST_F(CudaCli, OutOfDeviceMemory) {
  std::string many = "--tokens ";
  for (int i = 0; i < 2000; ++i)
    many += std::to_string(i % kVocab) + (i + 1 < 2000 ? "," : " ");
  // 2000 tokens * 1 KiB of scratch do not fit in 1 MiB.
  CliResult r =
      run(kCudaModel, many + "--chunk 2000", "RWKV_CUDA_EMU_MEMORY_MIB=1");
  expectOneLine(r, "CUDA: out of device memory for the activations of a call "
                   "(scratch) (2048000 bytes)");
  EXPECT_NE(r.err.find("the state is as before the call"), std::string::npos);
  r = run(kCudaModel, many + "--chunk 64 --print-logits",
          "RWKV_CUDA_EMU_MEMORY_MIB=1");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, run(kCudaModel, many + "--print-logits").out);
}

// Tests that a state file written by the CUDA-only executable loads in the
// CPU build of the same model (and the other way round) and goes on alike.
TEST_F(CudaCli, StateFilesBetweenBuilds) {
  std::string f = dir.path("gpu.state"), g = dir.path("cpu.state");
  CliResult r = run(kCudaModel, "--tokens 1,2,3,4,5 --state-out '" + f + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  r = run(kBothModel, "--device cpu --tokens 6,7,8 --print-logits --state-in '" +
                          f + "' --state-out '" + g + "'");
  ASSERT_EQ(r.status, 0) << r.err;
  std::string want =
      run(kBothModel, "--device cpu --tokens 1,2,3,4,5,6,7,8 --print-logits")
          .out;
  EXPECT_EQ(r.out, want);
  r = run(kCudaModel, "--tokens 9 --print-logits --state-in '" + g + "'");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, run(kBothModel, "--device cpu --tokens 1,2,3,4,5,6,7,8,9 "
                                   "--print-logits")
                       .out);
}

// Tests that --info lists the backends and the CUDA images.
TEST_F(CudaCli, Info) {
  CliResult r = run(kCudaModel, "--info");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("backends: cuda\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cuda: 6 kernels, 8 steps, 1024 scratch bytes per "
                       "token, dynamic shared memory up to 65536 bytes\n"
                       "  cuda image 0: emulator"),
            std::string::npos)
      << r.out;
  EXPECT_NE(run(kBothModel, "--info").out.find("backends: cpu, cuda\n"),
            std::string::npos);
}

} // namespace
