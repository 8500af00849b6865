//===- RuntimeTest.cpp - The runtime's C API on the fake model ------------===//

#include "FakeModel.h"
#include "TestUtil.h"
#include "rwkv_runtime.h"

#include <cinttypes>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace rt_test;

namespace {

class Runtime : public ::testing::Test {
protected:
  void SetUp() override {
    model = rwkv_model_open(err, sizeof err);
    ASSERT_NE(model, nullptr) << err;
  }
  void TearDown() override { rwkv_model_close(model); }

  std::vector<float> newState() {
    std::vector<float> s(rwkv_state_size(model) / sizeof(float));
    rwkv_state_reset(model, s.data());
    return s;
  }

  /// Logits after `tokens` from the initial state, in `mode`/`chunk`.
  std::vector<float> eval(const std::vector<int32_t> &tokens, int mode,
                          size_t chunk,
                          std::vector<float> *stateOut = nullptr) {
    std::vector<float> state = newState(), logits(rwkv_n_vocab(model));
    EXPECT_EQ(rwkv_eval(model, state.data(), tokens.data(), tokens.size(),
                        logits.data(), mode, chunk, err, sizeof err),
              RWKV_OK)
        << err;
    if (stateOut)
      *stateOut = state;
    return logits;
  }

  rwkv_model *model = nullptr;
  char err[512] = {};
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 2, 6, 5, 3, 5, 8, 9, 7};
};

// Tests that the handle reports the linked descriptor and embedded weights.
TEST_F(Runtime, OpenReportsTheLinkedModel) {
  EXPECT_EQ(rwkv_model_get_desc(model), &rwkv_model_descriptor);
  EXPECT_EQ(rwkv_n_vocab(model), size_t(fake::kVocab));
  EXPECT_EQ(rwkv_state_size(model), size_t(fake::kStateFloats * 4));
  const uint8_t *w = rwkv_model_weights(model);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w) % 64, 0u);
  fake::Weights expected = fake::makeWeights();
  EXPECT_EQ(memcmp(w, &expected, sizeof expected), 0);
}

// Tests the default chunk of sequence calls: the fake model's weights (a
// few hundred bytes) fit the caches, so chunk 0 means RWKV_DEFAULT_CHUNK
// (RWKV_STREAMING_CHUNK is for models over RWKV_CACHED_WEIGHT_BYTES), within
// rwkv_max_chunk; a null model gets 1, as rwkv_max_chunk gives.
TEST_F(Runtime, DefaultChunkFollowsTheWeightsSize) {
  ASSERT_LE(rwkv_model_get_desc(model)->weights_bytes, RWKV_CACHED_WEIGHT_BYTES);
  EXPECT_EQ(rwkv_default_chunk(model),
            std::min<size_t>(RWKV_DEFAULT_CHUNK, rwkv_max_chunk(model)));
  EXPECT_EQ(rwkv_default_chunk(nullptr), 1u);
}

// Tests that reset initialises every slot by its init kind.
TEST_F(Runtime, StateResetPerInitKind) {
  std::vector<float> state(fake::kStateFloats, 42.0f);
  rwkv_state_reset(model, state.data());
  fake::Weights w = fake::makeWeights();
  for (int c = 0; c < 4; ++c) {
    EXPECT_EQ(state[0 + c], 0.0f) << "zero slot";
    EXPECT_EQ(state[4 + c], -1e30f) << "NEG_LARGE slot";
    EXPECT_EQ(state[8 + c], w.initS[c]) << "WEIGHT slot";
  }
}

// Tests that rwkv_state_copy copies the whole state.
TEST_F(Runtime, StateCopy) {
  std::vector<float> a, b(fake::kStateFloats, 0.0f);
  eval(prompt, RWKV_EVAL_SEQ, 0, &a);
  rwkv_state_copy(model, b.data(), a.data());
  EXPECT_EQ(a, b);
}

// Tests that SEQ mode computes what the recurrence says.
TEST_F(Runtime, EvalMatchesTheRecurrence) {
  std::vector<float> state = newState(), expected(fake::kVocab);
  fake::Weights w = fake::makeWeights();
  for (int32_t t : prompt)
    fake::step(w, state.data(), t);
  fake::head(w, state.data(), expected.data());
  EXPECT_EQ(eval(prompt, RWKV_EVAL_SEQ, 0), expected);
  // The fake is order-sensitive, so the tests below can catch reordering.
  std::vector<int32_t> reversed(prompt.rbegin(), prompt.rend());
  EXPECT_NE(eval(reversed, RWKV_EVAL_SEQ, 0), expected);
}

// Tests that RNN mode, SEQ mode and every chunk size agree bit for bit.
TEST_F(Runtime, RnnSeqAndEveryChunkAgree) {
  std::vector<float> refState, state;
  std::vector<float> ref = eval(prompt, RWKV_EVAL_RNN, 0, &refState);
  for (size_t chunk = 0; chunk <= prompt.size() + 2; ++chunk) {
    EXPECT_EQ(eval(prompt, RWKV_EVAL_SEQ, chunk, &state), ref)
        << "chunk " << chunk;
    EXPECT_EQ(state, refState) << "chunk " << chunk;
  }
  // The chunk is ignored in RNN mode.
  EXPECT_EQ(eval(prompt, RWKV_EVAL_RNN, 5), ref);
}

// Tests RWKV_HUGE_PAGES: "1" copies even this small image into read-only,
// 2 MiB-aligned memory in transparent huge pages, with the bytes and the
// logits of the image where it lies; "0" leaves it there (models over
// RWKV_CACHED_WEIGHT_BYTES take the copy by default: docs/runtime.md).
TEST_F(Runtime, HugePagesCopyKeepsWeightsAndLogits) {
  std::vector<float> ref = eval(prompt, RWKV_EVAL_SEQ, 0);
  const uint8_t *where = rwkv_model_weights(model);
  std::string mode;
  if (FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r")) {
    char line[128] = "";
    if (fgets(line, sizeof line, f))
      mode = line;
    fclose(f);
  }
  if (mode.empty() || mode.find("[never]") != std::string::npos)
    GTEST_SKIP() << "transparent huge pages are off on this machine";
  for (const char *env : {"1", "0"}) {
    SCOPED_TRACE(std::string("RWKV_HUGE_PAGES=") + env);
    setenv("RWKV_HUGE_PAGES", env, 1);
    rwkv_model *m = rwkv_model_open(err, sizeof err);
    unsetenv("RWKV_HUGE_PAGES");
    ASSERT_NE(m, nullptr) << err;
    const uint8_t *w = rwkv_model_weights(m);
    if (env[0] == '1') {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(w) % (2u << 20), 0u);
      EXPECT_NE(w, where);
    } else {
      EXPECT_EQ(w == where, rwkv_model_get_desc(m)->weights_embedded != 0);
    }
    fake::Weights expected = fake::makeWeights();
    EXPECT_EQ(memcmp(w, &expected, sizeof expected), 0);
    std::vector<float> state(rwkv_state_size(m) / sizeof(float)),
        logits(rwkv_n_vocab(m));
    rwkv_state_reset(m, state.data());
    ASSERT_EQ(rwkv_eval(m, state.data(), prompt.data(), prompt.size(),
                        logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(logits, ref);
    rwkv_model_close(m);
  }
}

// Tests that the thread count is the machine's cores until set, that 0
// restores that default and a negative count is refused, and that the fake
// model (no threaded ops, no libomp) evaluates the same under any count.
TEST_F(Runtime, ThreadCount) {
  int cores = rwkv_get_threads();
  EXPECT_GE(cores, 1);
  EXPECT_EQ(rwkv_set_threads(-1), RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(rwkv_get_threads(), cores);
  ASSERT_EQ(rwkv_set_threads(1), RWKV_OK);
  EXPECT_EQ(rwkv_get_threads(), 1);
  std::vector<float> one = eval(prompt, RWKV_EVAL_SEQ, 0);
  ASSERT_EQ(rwkv_set_threads(3), RWKV_OK);
  EXPECT_EQ(rwkv_get_threads(), 3);
  std::vector<float> three = eval(prompt, RWKV_EVAL_SEQ, 0);
  EXPECT_EQ(one, three);
  ASSERT_EQ(rwkv_set_threads(0), RWKV_OK);
  EXPECT_EQ(rwkv_get_threads(), cores);
}

// Tests that rwkv_eval_batch gives each sequence what rwkv_state_eval gives
// it alone (one token, several tokens, logits skipped; the one-token
// sequences 0, 3 and 4 through the model's batch entry), and that a bad
// argument anywhere in the batch is refused before any state changes.
TEST_F(Runtime, EvalBatchMatchesOneByOne) {
  const std::vector<std::vector<int32_t>> seqs = {
      {3}, {14, 15, 9}, {2, 6, 5, 3, 5, 8, 9, 7}, {1}, {7}};
  std::vector<rwkv_state *> states;
  std::vector<std::vector<float>> expected, got;
  for (const auto &s : seqs) {
    expected.push_back(eval(s, s.size() == 1 ? RWKV_EVAL_RNN : RWKV_EVAL_SEQ,
                            0));
    states.push_back(rwkv_state_new(model, err, sizeof err));
    ASSERT_NE(states.back(), nullptr) << err;
    got.emplace_back(rwkv_n_vocab(model), 0.0f);
  }
  std::vector<const int32_t *> tokens;
  std::vector<size_t> counts;
  std::vector<float *> logits;
  for (size_t i = 0; i < seqs.size(); ++i) {
    tokens.push_back(seqs[i].data());
    counts.push_back(seqs[i].size());
    logits.push_back(i == 3 ? nullptr : got[i].data());
  }
  ASSERT_EQ(rwkv_eval_batch(states.data(), tokens.data(), counts.data(),
                            seqs.size(), logits.data(), err, sizeof err),
            RWKV_OK)
      << err;
  for (size_t i : {0, 1, 2, 4})
    EXPECT_EQ(got[i], expected[i]) << "sequence " << i;
  std::vector<float> host(fake::kStateFloats), ref;
  eval(seqs[3], RWKV_EVAL_RNN, 0, &ref);
  ASSERT_EQ(rwkv_state_read(states[3], host.data(), err, sizeof err), RWKV_OK);
  EXPECT_EQ(host, ref) << "a sequence without logits still advances";

  // Logits rows one after the other (the server's layout: the batch entry
  // writes them in place) give the same logits; so do the rows of the
  // sequences of one token that lie apart (copied from the entry's buffer).
  size_t vocab = rwkv_n_vocab(model);
  for (bool apart : {false, true}) {
    std::vector<float> block(seqs.size() * vocab, 0.0f);
    std::vector<rwkv_state *> fresh;
    for (size_t i = 0; i < seqs.size(); ++i) {
      fresh.push_back(rwkv_state_new(model, err, sizeof err));
      ASSERT_NE(fresh.back(), nullptr) << err;
    }
    // Contiguous: sequences 0, 3, 4 (one token each) in rows 0, 1, 2.
    size_t slot[] = {0, 3, 4, 1, 2};
    if (apart)
      std::swap(slot[1], slot[3]);
    for (size_t i = 0; i < seqs.size(); ++i)
      logits[i] = block.data() + slot[i] * vocab;
    ASSERT_EQ(rwkv_eval_batch(fresh.data(), tokens.data(), counts.data(),
                              seqs.size(), logits.data(), err, sizeof err),
              RWKV_OK)
        << err;
    for (size_t i = 0; i < seqs.size(); ++i) {
      EXPECT_EQ(std::vector<float>(logits[i], logits[i] + vocab), expected[i])
          << "sequence " << i << (apart ? ", rows apart" : ", rows in a block");
      rwkv_state_free(fresh[i]);
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i)
    logits[i] = i == 3 ? nullptr : got[i].data();

  // One bad token in sequence 3: nothing is evaluated.
  std::vector<float> before(fake::kStateFloats);
  ASSERT_EQ(rwkv_state_read(states[0], before.data(), err, sizeof err),
            RWKV_OK);
  const int32_t bad = fake::kVocab;
  tokens[3] = &bad;
  EXPECT_EQ(rwkv_eval_batch(states.data(), tokens.data(), counts.data(),
                            seqs.size(), logits.data(), err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("rwkv_eval_batch"), std::string::npos)
      << err;
  ASSERT_EQ(rwkv_state_read(states[0], host.data(), err, sizeof err), RWKV_OK);
  EXPECT_EQ(host, before);
  // One state twice.
  tokens[3] = seqs[3].data();
  rwkv_state *fourth = states[3];
  states[3] = states[0];
  EXPECT_EQ(rwkv_eval_batch(states.data(), tokens.data(), counts.data(),
                            seqs.size(), logits.data(), err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("share one state"), std::string::npos)
      << err;
  for (size_t i : {0, 1, 2, 4})
    rwkv_state_free(states[i]);
  rwkv_state_free(fourth);
}

// Tests that out-of-range tokens, empty prompts and bad modes are refused
// with the state and logits untouched.
TEST_F(Runtime, BadEvalArgumentsAreRefused) {
  std::vector<float> state = newState(), before = state;
  std::vector<float> logits(fake::kVocab, 7.0f);
  for (int32_t bad : {-1, int32_t(fake::kVocab), INT32_MAX}) {
    std::vector<int32_t> tokens = {1, 2, bad, 3};
    EXPECT_EQ(rwkv_eval(model, state.data(), tokens.data(), tokens.size(),
                        logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
              RWKV_ERROR_ARGUMENT);
    EXPECT_NE(std::string(err).find("token " + std::to_string(bad) +
                                    " (at position 2) is out of range"),
              std::string::npos)
        << err;
  }
  int32_t one = 1;
  EXPECT_EQ(rwkv_eval(model, state.data(), &one, 0, logits.data(),
                      RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(rwkv_eval(model, state.data(), &one, 1, logits.data(), 7, 0, err,
                      sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(rwkv_eval(model, nullptr, &one, 1, logits.data(), RWKV_EVAL_SEQ, 0,
                      err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(state, before);
  EXPECT_EQ(logits, std::vector<float>(fake::kVocab, 7.0f));
  // A tiny or absent message buffer is fine.
  int32_t bad = -5;
  char small[8];
  EXPECT_EQ(rwkv_eval(model, state.data(), &bad, 1, logits.data(),
                      RWKV_EVAL_SEQ, 0, small, sizeof small),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(strlen(small), 7u);
  EXPECT_EQ(rwkv_eval(model, state.data(), &bad, 1, logits.data(),
                      RWKV_EVAL_SEQ, 0, nullptr, 0),
            RWKV_ERROR_ARGUMENT);
}

class StateFile : public Runtime {
protected:
  /// Saves the state after `prompt` to `file` and returns its bytes.
  std::vector<uint8_t> saved() {
    std::vector<float> state;
    eval(prompt, RWKV_EVAL_SEQ, 0, &state);
    EXPECT_EQ(
        rwkv_state_save(model, state.data(), file.c_str(), err, sizeof err),
        RWKV_OK)
        << err;
    return readBytes(file);
  }
  /// Loads `bytes` as a state file; expects `status` and a message that
  /// names the file and contains `needle`. The state must stay untouched.
  void expectRefused(const std::vector<uint8_t> &bytes, int status,
                     const std::string &needle) {
    writeBytes(file, bytes);
    std::vector<float> state(fake::kStateFloats, 3.0f), before = state;
    EXPECT_EQ(
        rwkv_state_load(model, state.data(), file.c_str(), err, sizeof err),
        status)
        << err;
    std::string msg = err;
    EXPECT_NE(msg.find("'" + file + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(state, before);
  }

  TempDir dir;
  std::string file = dir.path("state.bin");
};

// Tests that a saved state loads back bit for bit.
TEST_F(StateFile, SaveLoadRoundTrip) {
  std::vector<float> state;
  eval(prompt, RWKV_EVAL_SEQ, 0, &state);
  ASSERT_EQ(rwkv_state_save(model, state.data(), file.c_str(), err, sizeof err),
            RWKV_OK)
      << err;
  std::vector<uint8_t> bytes = readBytes(file);
  ASSERT_GE(bytes.size(), 12u);
  EXPECT_EQ(memcmp(bytes.data(), "RWKVSTAT\1\0\0\0", 12), 0);
  std::vector<float> loaded(fake::kStateFloats, 0.0f);
  ASSERT_EQ(
      rwkv_state_load(model, loaded.data(), file.c_str(), err, sizeof err),
      RWKV_OK)
      << err;
  EXPECT_EQ(loaded, state);
  // Saving over an existing file replaces it and leaves no temporary.
  ASSERT_EQ(
      rwkv_state_save(model, loaded.data(), file.c_str(), err, sizeof err),
      RWKV_OK);
  EXPECT_EQ(readBytes(file), bytes);
  EXPECT_EQ(std::system(("test $(ls '" + dir.dir + "' | wc -l) -eq 1").c_str()),
            0);
}

// Tests that a prompt split across a saved and reloaded state gives the
// logits of one run over the whole prompt.
TEST_F(StateFile, SplitPromptAcrossSavedState) {
  std::vector<float> whole = eval(prompt, RWKV_EVAL_SEQ, 0);
  for (size_t cut = 1; cut < prompt.size(); ++cut) {
    std::vector<int32_t> head(prompt.begin(), prompt.begin() + cut);
    std::vector<int32_t> tail(prompt.begin() + cut, prompt.end());
    std::vector<float> state;
    eval(head, RWKV_EVAL_RNN, 0, &state);
    ASSERT_EQ(
        rwkv_state_save(model, state.data(), file.c_str(), err, sizeof err),
        RWKV_OK);
    std::vector<float> resumed(fake::kStateFloats, 0.0f);
    std::vector<float> logits(fake::kVocab);
    ASSERT_EQ(
        rwkv_state_load(model, resumed.data(), file.c_str(), err, sizeof err),
        RWKV_OK);
    ASSERT_EQ(rwkv_eval(model, resumed.data(), tail.data(), tail.size(),
                        logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
              RWKV_OK);
    EXPECT_EQ(logits, whole) << "cut at " << cut;
  }
}

// Tests that a state of another model is refused, showing both hashes.
TEST_F(StateFile, OtherModelIsRefused) {
  std::vector<uint8_t> bytes = saved();
  uint64_t other = 0x1111222233334444ULL;
  memcpy(bytes.data() + 12, &other, 8); // after magic and version
  fixChecksum(bytes);
  expectRefused(bytes, RWKV_ERROR_MISMATCH, "belongs to another model");
  EXPECT_NE(std::string(err).find("0x1111222233334444"), std::string::npos)
      << err;
  EXPECT_NE(std::string(err).find("0x0123456789abcdef"), std::string::npos)
      << err;
}

// Tests that a state file whose data hold NaN or Inf (with a valid
// checksum) is refused, naming the file and the first bad slot.
TEST_F(StateFile, NonFiniteIsRefused) {
  for (float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    std::vector<uint8_t> bytes = saved();
    // The data are the kStateFloats floats before the 8-byte checksum; put
    // the bad value in the last float (the last slot).
    size_t at = bytes.size() - 8 - 4;
    memcpy(bytes.data() + at, &bad, 4);
    fixChecksum(bytes);
    expectRefused(bytes, RWKV_ERROR_FORMAT, "non-finite");
    EXPECT_NE(std::string(err).find("slot"), std::string::npos) << err;
  }
}

// Tests that a state with another slot layout is refused.
TEST_F(StateFile, OtherLayoutIsRefused) {
  std::vector<uint8_t> bytes = saved();
  std::string s(bytes.begin(), bytes.end());
  size_t at = s.find("state.0.att.pp");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 12] = 'q'; // "state.0.att.qp"
  fixChecksum(bytes);
  expectRefused(bytes, RWKV_ERROR_MISMATCH, "another state layout");
}

// Tests that every truncation of a state file is refused.
TEST_F(StateFile, TruncatedIsRefused) {
  std::vector<uint8_t> bytes = saved();
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
    expectRefused(cut, RWKV_ERROR_FORMAT,
                  len < 8 ? "not an rwkvc state file" : "truncated");
  }
}

// Tests that corrupt files are refused: magic, version, data, trailing.
TEST_F(StateFile, CorruptIsRefused) {
  std::vector<uint8_t> bytes = saved();
  std::vector<uint8_t> bad = bytes;
  bad[0] = 'X';
  expectRefused(bad, RWKV_ERROR_FORMAT, "not an rwkvc state file");
  bad = bytes;
  bad[8] = 2;
  expectRefused(bad, RWKV_ERROR_FORMAT, "format version 2");
  bad = bytes;
  bad[bytes.size() - 12] ^= 0x40; // inside the float data
  expectRefused(bad, RWKV_ERROR_FORMAT, "checksum");
  bad = bytes;
  bad.push_back(0);
  expectRefused(bad, RWKV_ERROR_FORMAT, "corrupt");
}

// Tests that a file far longer than this model's state files is refused
// after a bounded read: a state of this model has exactly saved().size()
// bytes, and the reader stops at twice that + 1 MiB (an endless file such
// as /dev/zero once was read until memory ran out).
TEST_F(StateFile, LongFilesAreReadOnlyToTheirLimit) {
  size_t size = saved().size(), limit = 2 * size + (size_t(1) << 20);
  std::vector<uint8_t> bytes(limit + 1, 0);
  expectRefused(bytes, RWKV_ERROR_FORMAT,
                "is longer than " + std::to_string(limit) +
                    " bytes: not a state of this model (its state files "
                    "have " +
                    std::to_string(size) + " bytes)");
  bytes.resize(limit); // within the limit: read, and refused for what it is
  expectRefused(bytes, RWKV_ERROR_FORMAT, "not an rwkvc state file");
  std::vector<float> state(fake::kStateFloats, 3.0f);
  EXPECT_EQ(rwkv_state_load(model, state.data(), "/dev/zero", err, sizeof err),
            RWKV_ERROR_FORMAT);
  EXPECT_NE(std::string(err).find("'/dev/zero' is longer than"),
            std::string::npos)
      << err;
}

// Tests that I/O failures are reported and leave nothing behind.
TEST_F(StateFile, IoErrors) {
  std::vector<float> state = newState();
  std::string missing = dir.path("missing.bin");
  EXPECT_EQ(
      rwkv_state_load(model, state.data(), missing.c_str(), err, sizeof err),
      RWKV_ERROR_IO);
  EXPECT_NE(std::string(err).find(missing), std::string::npos) << err;
  std::string noDir = dir.path("no/such/dir.bin");
  EXPECT_EQ(
      rwkv_state_save(model, state.data(), noDir.c_str(), err, sizeof err),
      RWKV_ERROR_IO);
  // Renaming over a directory fails after the temporary is written: it must
  // be removed again.
  std::string sub = dir.path("sub");
  ASSERT_EQ(std::system(("mkdir '" + sub + "'").c_str()), 0);
  EXPECT_EQ(rwkv_state_save(model, state.data(), sub.c_str(), err, sizeof err),
            RWKV_ERROR_IO);
  EXPECT_NE(std::string(err).find(sub), std::string::npos) << err;
  EXPECT_EQ(std::system(("test $(ls '" + dir.dir + "' | wc -l) -eq 1").c_str()),
            0);
}

} // namespace
