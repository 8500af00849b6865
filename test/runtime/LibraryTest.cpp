//===- LibraryTest.cpp - State handles, generation, chat, perplexity ------===//
//
// The library half of the C API on the fake model (FakeModel.h, 16 tokens):
// state handles against the host-buffer calls, all-position evaluation,
// perplexity against a one-token-at-a-time reference, generation against a
// reference loop over the public sampler, UTF-8-safe streaming, chat turns,
// sessions against the calls they bundle, the command line's request
// (rwkv_cli.h) checks and id lists.
// The tokenizer is a 16-token "world" blob built here with the format header
// (runtime/format/rwkv_tokenizer_format.h) the compiler writes it with.
//
//===----------------------------------------------------------------------===//

#include "FakeModel.h"
#include "TestUtil.h"
#include "rwkv_cli.h"
#include "rwkv_runtime.h"
#include "runtime/format/rwkv_state_format.h"
#include "runtime/format/rwkv_tokenizer_format.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

using namespace rt_test;

namespace {

/// The tokens of the test tokenizer (id = index; 0 is end of text). Chat
/// templates tokenize: "User: hi\n\nAssistant:" = 1 8 9 2, "\n\n" = 3.
const char *const kTokens[16] = {
    "",       "User: ", "\n\nAssistant:", "\n\n", "\n", "\xc3", "\xa9", " ",
    "h",      "i",      "\xe2\x82",       "\xac", "a",  "b",    ".",    "\xc3\xa9"};

/// A world blob of kTokens, laid out by the format header.
std::vector<uint8_t> worldBlob() {
  std::string pool;
  std::vector<uint32_t> ends;
  for (const char *t : kTokens)
    ends.push_back(uint32_t((pool += t).size()));
  rwkv_tokenizer_header h = {};
  memcpy(h.magic, RWKV_TOKENIZER_MAGIC, sizeof h.magic);
  h.version = RWKV_TOKENIZER_FORMAT_VERSION;
  h.kind = RWKV_TOKENIZER_WORLD;
  h.n_tokens = 16;
  h.eos = 0;
  h.pool_size = uint32_t(pool.size());
  h.total_size = rwkv_tokenizer_blob_bytes(16, pool.size(), 0, 0);
  std::vector<uint8_t> b(reinterpret_cast<uint8_t *>(&h),
                         reinterpret_cast<uint8_t *>(&h) + sizeof h);
  b.insert(b.end(), reinterpret_cast<uint8_t *>(ends.data()),
           reinterpret_cast<uint8_t *>(ends.data() + ends.size()));
  b.insert(b.end(), pool.begin(), pool.end());
  b.resize((b.size() + 3) & ~size_t(3), 0);
  b.resize(b.size() + 8);
  fixChecksum(b);
  EXPECT_EQ(b.size(), h.total_size);
  return b;
}

class Library : public ::testing::Test {
protected:
  void SetUp() override {
    model = rwkv_model_open(err, sizeof err);
    ASSERT_NE(model, nullptr) << err;
    std::vector<uint8_t> blob = worldBlob();
    tok = rwkv_tokenizer_open(blob.data(), blob.size(), fake::kVocab, err,
                              sizeof err);
    ASSERT_NE(tok, nullptr) << err;
    state = rwkv_state_new(model, err, sizeof err);
    ASSERT_NE(state, nullptr) << err;
    logits.resize(fake::kVocab);
  }
  void TearDown() override {
    rwkv_state_free(state);
    rwkv_tokenizer_close(tok);
    rwkv_model_close(model);
  }

  std::vector<float> host(const rwkv_state *s) {
    std::vector<float> h(fake::kStateFloats);
    EXPECT_EQ(rwkv_state_read(s, h.data(), err, sizeof err), RWKV_OK) << err;
    return h;
  }
  std::vector<float> initial() {
    std::vector<float> h(fake::kStateFloats);
    rwkv_state_reset(model, h.data());
    return h;
  }

  rwkv_model *model = nullptr;
  rwkv_tokenizer *tok = nullptr;
  rwkv_state *state = nullptr;
  std::vector<float> logits;
  char err[512] = {};
  const std::vector<int32_t> prompt = {3, 14, 15, 9, 2, 6, 5, 3, 5, 8, 9, 7};
};

// Tests that a handle starts initial and evaluates, reads, writes, clones,
// assigns and clears as the host-buffer calls do.
TEST_F(Library, StateHandleMatchesHostBuffers) {
  EXPECT_EQ(rwkv_model_backend(model), uint32_t(RWKV_BACKEND_CPU));
  EXPECT_EQ(rwkv_state_get_model(state), model);
  EXPECT_EQ(host(state), initial());
  std::vector<float> hs = initial(), hl(fake::kVocab);
  for (int mode : {RWKV_EVAL_RNN, RWKV_EVAL_SEQ}) {
    ASSERT_EQ(rwkv_eval(model, hs.data(), prompt.data(), prompt.size(),
                        hl.data(), mode, 5, err, sizeof err),
              RWKV_OK);
    ASSERT_EQ(rwkv_state_eval(state, prompt.data(), prompt.size(),
                              logits.data(), mode, 5, err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(host(state), hs);
    EXPECT_EQ(logits, hl);
  }
  rwkv_state *copy = rwkv_state_clone(state, err, sizeof err);
  ASSERT_NE(copy, nullptr) << err;
  EXPECT_EQ(host(copy), hs);
  rwkv_state_clear(state);
  EXPECT_EQ(host(state), initial());
  EXPECT_EQ(host(copy), hs); // the clone is independent
  ASSERT_EQ(rwkv_state_assign(state, copy, err, sizeof err), RWKV_OK);
  EXPECT_EQ(host(state), hs);
  std::vector<float> custom(fake::kStateFloats);
  for (size_t i = 0; i < custom.size(); ++i)
    custom[i] = 0.5f * float(i) - 2.0f;
  ASSERT_EQ(rwkv_state_write(copy, custom.data(), err, sizeof err), RWKV_OK);
  EXPECT_EQ(host(copy), custom);
  rwkv_state_free(copy);
  // Bad arguments: one clear error, nothing touched.
  EXPECT_EQ(rwkv_state_eval(state, prompt.data(), 0, logits.data(),
                            RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("rwkv_state_eval: no tokens"),
            std::string::npos)
      << err;
  int32_t bad[] = {1, 16};
  EXPECT_EQ(rwkv_state_eval(state, bad, 2, logits.data(), RWKV_EVAL_RNN, 0,
                            err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(host(state), hs);
  EXPECT_EQ(rwkv_state_read(state, nullptr, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
}

// Tests that a handle's state file is the host format: saved from a handle,
// it loads into a host buffer and back into another handle; a failed load
// leaves the handle untouched.
TEST_F(Library, StateHandleFiles) {
  TempDir dir;
  std::string file = dir.path("s.bin");
  ASSERT_EQ(rwkv_state_eval(state, prompt.data(), prompt.size(),
                            logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_OK);
  ASSERT_EQ(rwkv_state_save_file(state, file.c_str(), err, sizeof err),
            RWKV_OK)
      << err;
  std::vector<uint8_t> bytes = readBytes(file);
  rwkv_state_file_head head;
  ASSERT_GE(bytes.size(), sizeof head);
  memcpy(&head, bytes.data(), sizeof head);
  EXPECT_EQ(memcmp(head.magic, RWKV_STATE_MAGIC, RWKV_STATE_MAGIC_SIZE), 0);
  // Copies: gtest binds references, and the packed members are unaligned.
  uint32_t version = head.version;
  uint64_t hash = head.model_hash;
  EXPECT_EQ(version, uint32_t(RWKV_STATE_FORMAT_VERSION));
  EXPECT_EQ(hash, fake::kHash);
  std::vector<float> h(fake::kStateFloats);
  ASSERT_EQ(rwkv_state_load(model, h.data(), file.c_str(), err, sizeof err),
            RWKV_OK);
  EXPECT_EQ(h, host(state));
  rwkv_state *other = rwkv_state_new(model, err, sizeof err);
  ASSERT_EQ(rwkv_state_load_file(other, file.c_str(), err, sizeof err),
            RWKV_OK)
      << err;
  EXPECT_EQ(host(other), h);
  writeBytes(file, bytes.data(), bytes.size() - 1);
  rwkv_state_clear(other);
  EXPECT_EQ(rwkv_state_load_file(other, file.c_str(), err, sizeof err),
            RWKV_ERROR_FORMAT);
  EXPECT_NE(std::string(err).find("truncated"), std::string::npos) << err;
  EXPECT_EQ(host(other), initial());
  rwkv_state_free(other);
}

// Tests that eval_all writes every position's logits (row t == the logits
// after tokens[0..t] one at a time) for any chunk size, and ends in the same
// state.
TEST_F(Library, EvalAllRowsAreEveryPosition) {
  size_t n = prompt.size(), v = size_t(fake::kVocab);
  std::vector<float> want(n * v), hs = initial();
  for (size_t t = 0; t < n; ++t)
    ASSERT_EQ(rwkv_eval(model, hs.data(), &prompt[t], 1, &want[t * v],
                        RWKV_EVAL_RNN, 0, err, sizeof err),
              RWKV_OK);
  for (size_t chunk : {0, 1, 5, 100}) {
    std::vector<float> all(n * v, -7.0f);
    rwkv_state_clear(state);
    ASSERT_EQ(rwkv_state_eval_all(state, prompt.data(), n, all.data(), chunk,
                                  err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(all, want) << "chunk " << chunk;
    EXPECT_EQ(host(state), hs) << "chunk " << chunk;
  }
}

/// -log softmax(logits)[target], in double.
double nllOf(const std::vector<float> &l, int32_t target) {
  double mx = -INFINITY, sum = 0;
  for (float x : l)
    mx = std::max(mx, double(x));
  for (float x : l)
    sum += std::exp(double(x) - mx);
  return mx + std::log(sum) - double(l[size_t(target)]);
}

// Tests perplexity against a one-token-at-a-time reference, for every chunk
// size, the state it leaves, stopping early, and too short a text.
TEST_F(Library, PerplexityMatchesTokenByToken) {
  double want = 0;
  std::vector<float> hs = initial(), hl(fake::kVocab);
  for (size_t t = 0; t + 1 < prompt.size(); ++t) {
    rwkv_eval(model, hs.data(), &prompt[t], 1, hl.data(), RWKV_EVAL_RNN, 0,
              err, sizeof err);
    want += nllOf(hl, prompt[t + 1]);
  }
  for (size_t chunk : {0, 1, 4, 11}) {
    rwkv_state_clear(state);
    rwkv_perplexity_result r;
    ASSERT_EQ(rwkv_perplexity(state, prompt.data(), prompt.size(), chunk,
                              nullptr, nullptr, &r, err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(r.n_tokens, prompt.size());
    EXPECT_EQ(r.n_predictions, prompt.size() - 1);
    EXPECT_NEAR(r.nll, want, 1e-9 * want) << "chunk " << chunk;
    EXPECT_NEAR(r.perplexity, std::exp(want / double(prompt.size() - 1)),
                1e-9);
    EXPECT_EQ(host(state), hs) << "the last token is scored, not fed";
  }
  // The progress callback stops after the first chunk.
  rwkv_state_clear(state);
  rwkv_perplexity_result r;
  auto stop = [](void *calls, size_t done, size_t total) {
    ++*static_cast<int *>(calls);
    return done < total ? 1 : 0;
  };
  int calls = 0;
  ASSERT_EQ(rwkv_perplexity(state, prompt.data(), prompt.size(), 4, stop,
                            &calls, &r, err, sizeof err),
            RWKV_OK);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.n_predictions, 4u);
  EXPECT_EQ(rwkv_perplexity(state, prompt.data(), 1, 0, nullptr, nullptr, &r,
                            err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("the text has 1 token(s); perplexity needs "
                                  "at least 2"),
            std::string::npos)
      << err;
  int32_t bad[] = {1, 2, 99};
  rwkv_state_clear(state);
  EXPECT_EQ(rwkv_perplexity(state, bad, 3, 1, nullptr, nullptr, &r, err,
                            sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_EQ(host(state), initial()) << "nothing fed on a bad id";
}

/// Collects what rwkv_generate emits; stops after `limit` calls with text.
struct Sink {
  std::vector<std::string> chunks;
  size_t limit = SIZE_MAX;
  static int emit(void *user, const char *text, size_t n) {
    Sink &s = *static_cast<Sink *>(user);
    if (n)
      s.chunks.emplace_back(text, n);
    return s.chunks.size() >= s.limit ? 1 : 0;
  }
  std::string text() const {
    std::string all;
    for (const std::string &c : chunks)
      all += c;
    return all;
  }
};

/// What generation must do, with the public sampler: the ids sampled and
/// fed until max tokens, eos or a stop token.
std::vector<int32_t> referenceIds(const rwkv_model *model,
                                  const rwkv_tokenizer *tok,
                                  std::vector<float> state,
                                  std::vector<float> logits,
                                  const rwkv_generate_params &p) {
  rwkv_sampler *s = rwkv_sampler_create(logits.size(), &p.sampling, nullptr, 0);
  if (p.ban_eos)
    rwkv_sampler_ban(s, 0);
  std::vector<int32_t> ids;
  for (uint64_t i = 0; i < p.max_tokens; ++i) {
    int32_t id = rwkv_sampler_sample(s, logits.data());
    bool stop = id <= 0;
    for (size_t k = 0; k < p.n_stop_tokens; ++k)
      stop |= id == p.stop_tokens[k];
    if (stop)
      break;
    rwkv_eval(model, state.data(), &id, 1, logits.data(), RWKV_EVAL_RNN, 0,
              nullptr, 0);
    const uint8_t *b;
    size_t n = rwkv_token_bytes(tok, id, &b);
    std::string text(reinterpret_cast<const char *>(b), n);
    rwkv_sampler_accept(
        s, id, std::string(" \t0123456789").find(text) != std::string::npos
                   ? 0.0f
                   : 1.0f);
    ids.push_back(id);
  }
  rwkv_sampler_free(s);
  return ids;
}

std::string bytesOf(const rwkv_tokenizer *tok, const std::vector<int32_t> &ids) {
  std::string out;
  for (int32_t id : ids) {
    const uint8_t *b;
    size_t n = rwkv_token_bytes(tok, id, &b);
    out.append(reinterpret_cast<const char *>(b), n);
  }
  return out;
}

// Tests that generation samples, feeds and streams as the reference loop
// does (greedy and sampled), and ends on max tokens, a stop token, a stop
// string (cut, not printed) and the callback.
TEST_F(Library, GenerateMatchesTheReferenceLoop) {
  ASSERT_EQ(rwkv_state_eval(state, prompt.data(), prompt.size(),
                            logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_OK);
  std::vector<float> s0 = host(state), l0 = logits;
  // Generates from the state after the prompt.
  auto rerun = [&](const rwkv_generate_params &p, rwkv_generate_result &r,
                   size_t limit = SIZE_MAX) {
    Sink sink;
    sink.limit = limit;
    EXPECT_EQ(rwkv_state_write(state, s0.data(), err, sizeof err), RWKV_OK);
    logits = l0;
    EXPECT_EQ(rwkv_generate(state, tok, logits.data(), &p, Sink::emit, &sink,
                            &r, err, sizeof err),
              RWKV_OK)
        << err;
    return sink;
  };
  for (float temperature : {0.0f, 1.0f}) {
    rwkv_generate_params p;
    rwkv_generate_params_default(&p);
    p.sampling.temperature = temperature;
    p.sampling.seed = 42;
    p.max_tokens = 40;
    p.ban_eos = 1;
    std::vector<int32_t> want = referenceIds(model, tok, s0, l0, p);
    ASSERT_EQ(want.size(), 40u);
    rwkv_generate_result r;
    Sink sink = rerun(p, r);
    EXPECT_EQ(r.n_generated, 40u);
    EXPECT_EQ(r.stop, RWKV_STOP_MAX_TOKENS);
    EXPECT_EQ(sink.text(), bytesOf(tok, want)) << "temperature " << temperature;
    // The state continues the text: it is the reference's after feeding.
    std::vector<float> hs = s0, hl(fake::kVocab);
    rwkv_eval(model, hs.data(), want.data(), want.size(), hl.data(),
              RWKV_EVAL_RNN, 0, nullptr, 0);
    EXPECT_EQ(host(state), hs);

    // A stop token: the text ends before it.
    int32_t stopTok = want[7];
    size_t firstStop = 0;
    while (want[firstStop] != stopTok)
      ++firstStop;
    p.stop_tokens = &stopTok;
    p.n_stop_tokens = 1;
    sink = rerun(p, r);
    EXPECT_EQ(r.stop, RWKV_STOP_TOKEN);
    EXPECT_EQ(r.n_generated, firstStop);
    EXPECT_EQ(sink.text(),
              bytesOf(tok, std::vector<int32_t>(want.begin(),
                                                want.begin() + firstStop)));
    p.n_stop_tokens = 0;

    // A stop string: the text up to it, the string itself not emitted.
    std::string full = bytesOf(tok, want);
    std::string stop = full.substr(10, 3);
    const char *stops[] = {stop.c_str()};
    p.stop_strings = stops;
    p.n_stop_strings = 1;
    sink = rerun(p, r);
    EXPECT_EQ(r.stop, RWKV_STOP_STRING);
    EXPECT_EQ(sink.text(), full.substr(0, full.find(stop)));
    p.n_stop_strings = 0;

    // The callback stops after its third piece of text.
    sink = rerun(p, r, 3);
    EXPECT_EQ(r.stop, RWKV_STOP_CALLBACK);
    EXPECT_LT(r.n_generated, 40u);
    EXPECT_EQ(sink.text(), bytesOf(tok, std::vector<int32_t>(
                                            want.begin(),
                                            want.begin() + r.n_generated)));
  }
  rwkv_generate_params p;
  rwkv_generate_params_default(&p);
  const char *empty[] = {""};
  p.stop_strings = empty;
  p.n_stop_strings = 1;
  EXPECT_EQ(rwkv_generate(state, tok, logits.data(), &p, nullptr, nullptr,
                          nullptr, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("stop string 1 is empty"), std::string::npos);
}

// Tests that streamed text never splits a valid UTF-8 character between two
// callbacks (the vocabulary has tokens of half characters) and loses no
// byte.
TEST_F(Library, GenerateStreamsWholeCharacters) {
  rwkv_generate_params p;
  rwkv_generate_params_default(&p);
  p.sampling.temperature = 2.0f;
  p.sampling.top_p = 1.0f;
  p.max_tokens = 400;
  p.ban_eos = 1;
  std::vector<float> s0 = host(state);
  std::vector<float> l0(fake::kVocab);
  std::vector<float> tmp = s0;
  rwkv_eval(model, tmp.data(), prompt.data(), 1, l0.data(), RWKV_EVAL_RNN, 0,
            nullptr, 0);
  size_t splitsSeen = 0;
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    p.sampling.seed = seed;
    std::vector<int32_t> ids = referenceIds(model, tok, tmp, l0, p);
    ASSERT_EQ(rwkv_state_write(state, tmp.data(), err, sizeof err), RWKV_OK);
    logits = l0;
    Sink sink;
    ASSERT_EQ(rwkv_generate(state, tok, logits.data(), &p, Sink::emit, &sink,
                            nullptr, err, sizeof err),
              RWKV_OK);
    std::string all = sink.text();
    ASSERT_EQ(all, bytesOf(tok, ids));
    size_t at = 0;
    for (size_t c = 0; c + 1 < sink.chunks.size(); ++c) {
      at += sink.chunks[c].size();
      // No valid multi-byte character may start before `at` and end after.
      for (size_t back = 1; back <= 3 && back <= at; ++back) {
        uint8_t lead = uint8_t(all[at - back]);
        size_t len = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
        if (len > back && at - back + len <= all.size())
          EXPECT_NE(rwkv_utf8_valid_prefix(all.data() + at - back, len), len)
              << "a character split at byte " << at;
      }
    }
    for (size_t i = 0; i + 1 < ids.size(); ++i)
      splitsSeen += (ids[i] == 5 && ids[i + 1] == 6) ||
                    (ids[i] == 10 && ids[i + 1] == 11);
  }
  EXPECT_GT(splitsSeen, 0u) << "the test never generated a split character";
}

// Tests that a failed allocation of the model's code is an error, never a
// crash: RWKV_ERROR_MEMORY with a message naming the tokens; a sequence call
// leaves the state as before it (a failure in forward_one resets it, as
// documented); the blocks the abandoned call held are freed (LeakSanitizer
// checks it in the ASan build); the next call works; the library calls
// built on evaluation pass the error on. The fake model's scratch requests
// (FakeModel.h): 2 per call, its rows, then the head's buffer after the
// tokens.
TEST_F(Library, OutOfMemoryIsAnError) {
  std::vector<int32_t> tokens;
  for (int32_t i = 0; i < 40; ++i)
    tokens.push_back((i * 5 + 3) % 16);
  size_t v = size_t(fake::kVocab);
  ASSERT_EQ(rwkv_state_eval(state, prompt.data(), prompt.size(), logits.data(),
                            RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_OK);
  std::vector<float> before = host(state), hs = before, want(v);
  ASSERT_EQ(rwkv_eval(model, hs.data(), tokens.data(), tokens.size(),
                      want.data(), RWKV_EVAL_SEQ, 16, err, sizeof err),
            RWKV_OK);

  // Request 4: the head of the second chunk of 16, after both chunks have
  // changed the state.
  fake::failAllocAt(4);
  EXPECT_EQ(rwkv_state_eval(state, tokens.data(), tokens.size(), logits.data(),
                            RWKV_EVAL_SEQ, 16, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_STREQ(err, "rwkv_state_eval: out of memory: the model's code could "
                    "not allocate 4611686018427387904 bytes of scratch at "
                    "tokens 16..31 of 40 (chunks of 16); the state is as "
                    "before the call");
  EXPECT_EQ(host(state), before);
  fake::failAllocAt(0);
  ASSERT_EQ(rwkv_state_eval(state, tokens.data(), tokens.size(), logits.data(),
                            RWKV_EVAL_SEQ, 16, err, sizeof err),
            RWKV_OK)
      << err;
  EXPECT_EQ(logits, want);
  EXPECT_EQ(host(state), hs);

  // All positions, and the host-buffer call: the same.
  std::vector<float> all(tokens.size() * v), h = before;
  fake::failAllocAt(2);
  EXPECT_EQ(rwkv_state_eval_all(state, tokens.data(), tokens.size(), all.data(),
                                0, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_NE(std::string(err).find("at tokens 0..15 of 40 (chunks of 16)"),
            std::string::npos)
      << err;
  EXPECT_EQ(host(state), hs);
  fake::failAllocAt(5); // the third chunk's rows
  EXPECT_EQ(rwkv_eval(model, h.data(), tokens.data(), tokens.size(),
                      logits.data(), RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_NE(std::string(err).find("rwkv_eval: out of memory"),
            std::string::npos)
      << err;
  EXPECT_EQ(h, before);

  // RNN mode: the second token's head; the state is reset.
  fake::failAllocAt(4);
  EXPECT_EQ(rwkv_state_eval(state, tokens.data(), 3, logits.data(),
                            RWKV_EVAL_RNN, 0, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_NE(std::string(err).find("at token 1 of 3 (RNN mode); the state was "
                                  "reset to the initial state"),
            std::string::npos)
      << err;
  EXPECT_EQ(host(state), initial());

  // Built on evaluation: feeding text, perplexity, generation.
  rwkv_generate_result fed = {};
  fake::failAllocAt(1);
  EXPECT_EQ(rwkv_feed_text(state, tok, "hi hi", 5, logits.data(), RWKV_EVAL_SEQ,
                           0, &fed, err, sizeof err),
            RWKV_ERROR_MEMORY)
      << err;
  rwkv_perplexity_result r;
  fake::failAllocAt(3); // the second chunk of 16
  EXPECT_EQ(rwkv_perplexity(state, tokens.data(), tokens.size(), 16, nullptr,
                            nullptr, &r, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_EQ(r.n_predictions, 16u) << "the state has seen the first chunk";
  rwkv_generate_params p;
  rwkv_generate_params_default(&p);
  p.sampling.temperature = 0;
  p.ban_eos = 1;
  rwkv_generate_result g;
  Sink sink;
  fake::failAllocAt(5); // the third token generated: its rows
  EXPECT_EQ(rwkv_generate(state, tok, logits.data(), &p, Sink::emit, &sink, &g,
                          err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_NE(std::string(err).find("out of memory"), std::string::npos) << err;

  // A batch of one-token sequences (the batch entry): its second request,
  // the head's buffer, fails; the entry takes it before it touches a state.
  rwkv_state *other = rwkv_state_new(model, err, sizeof err);
  ASSERT_NE(other, nullptr) << err;
  rwkv_state *const both[] = {state, other};
  const int32_t one[] = {3, 5};
  const int32_t *ids[] = {one, one + 1};
  const size_t counts[] = {1, 1};
  std::vector<float> l0(v), l1(v);
  float *const outs[] = {l0.data(), l1.data()};
  std::vector<float> s0 = host(state), s1 = host(other);
  fake::failAllocAt(2);
  EXPECT_EQ(rwkv_eval_batch(both, ids, counts, 2, outs, err, sizeof err),
            RWKV_ERROR_MEMORY);
  EXPECT_STREQ(err, "rwkv_eval_batch: out of memory: the model's code could "
                    "not allocate 4611686018427387904 bytes of scratch to "
                    "decode sequences 0 and 1 more at once; their states are "
                    "as before");
  EXPECT_EQ(host(state), s0);
  EXPECT_EQ(host(other), s1);
  rwkv_state_free(other);
  fake::failAllocAt(0);
}

// Tests a chat turn: the template fed, "Assistant:" emitted before the reply,
// the reply ending at "\n\n", "\n\n" fed after a reply cut short; empty and
// invalid messages.
TEST_F(Library, ChatTurn) {
  rwkv_generate_params p;
  rwkv_generate_params_default(&p);
  p.sampling.temperature = 0;
  p.max_tokens = 3;
  Sink sink;
  rwkv_generate_result r;
  ASSERT_EQ(rwkv_chat_turn(state, tok, logits.data(), "\r\n  hi \n", 8, &p,
                           RWKV_EVAL_SEQ, 0, Sink::emit, &sink, &r, err,
                           sizeof err),
            RWKV_OK)
      << err;
  ASSERT_FALSE(sink.chunks.empty());
  EXPECT_EQ(sink.chunks[0], "Assistant:");
  // The reference: the template's ids, a greedy reply with eos banned, then
  // "\n\n" unless the reply stopped at it.
  std::vector<float> hs = initial(), hl(fake::kVocab);
  std::vector<int32_t> turn = {1, 8, 9, 2};
  rwkv_eval(model, hs.data(), turn.data(), turn.size(), hl.data(),
            RWKV_EVAL_SEQ, 0, nullptr, 0);
  rwkv_generate_params q = p;
  q.ban_eos = 1;
  std::vector<int32_t> reply = referenceIds(model, tok, hs, hl, q);
  std::string text = bytesOf(tok, reply);
  size_t cut = text.find("\n\n");
  EXPECT_EQ(sink.text(), "Assistant:" + text.substr(0, cut));
  EXPECT_EQ(r.stop, cut == std::string::npos ? RWKV_STOP_MAX_TOKENS
                                             : RWKV_STOP_STRING);
  if (cut == std::string::npos) {
    reply.push_back(3);
    EXPECT_EQ(r.n_fed, 5u);
  }
  rwkv_eval(model, hs.data(), reply.data(), reply.size(), hl.data(),
            RWKV_EVAL_RNN, 0, nullptr, 0);
  EXPECT_EQ(host(state), hs);

  std::vector<float> before = host(state);
  sink = Sink();
  ASSERT_EQ(rwkv_chat_turn(state, tok, logits.data(), " \r\n\n ", 5, &p,
                           RWKV_EVAL_SEQ, 0, Sink::emit, &sink, &r, err,
                           sizeof err),
            RWKV_OK);
  EXPECT_EQ(r.stop, RWKV_STOP_EMPTY);
  EXPECT_TRUE(sink.chunks.empty());
  EXPECT_EQ(rwkv_chat_turn(state, tok, logits.data(), "h\xc3", 2, &p,
                           RWKV_EVAL_SEQ, 0, Sink::emit, &sink, &r, err,
                           sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("the message is not valid UTF-8: byte 0xc3 "
                                  "at offset 1"),
            std::string::npos)
      << err;
  EXPECT_EQ(host(state), before);

  // A stop asked for while the message is fed (the callback's first call,
  // "Assistant:", returns nonzero): no reply token, "\n\n" still fed.
  auto stopAtOnce = [](void *calls, const char *, size_t) {
    ++*static_cast<int *>(calls);
    return 1;
  };
  int calls = 0;
  ASSERT_EQ(rwkv_chat_turn(state, tok, logits.data(), "hi", 2, &p,
                           RWKV_EVAL_SEQ, 0, stopAtOnce, &calls, &r, err,
                           sizeof err),
            RWKV_OK)
      << err;
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.n_generated, 0u);
  EXPECT_EQ(r.stop, RWKV_STOP_CALLBACK);
  EXPECT_EQ(r.n_fed, 5u); // "User: hi\n\nAssistant:" (4) and "\n\n" (1)
}

// Tests that a text file fed or scored in pieces (rwkv_feed_file,
// rwkv_perplexity_file) gives what the whole text at once gives: the pieces
// are cut where no token spans the cut (not inside "\n\nAssistant:", a token
// of this vocabulary), and a line longer than a piece before a character.
TEST_F(Library, FilesInPiecesMatchTheWholeText) {
  TempDir dir;
  std::string lines, longLine;
  // 2.5 MiB: three pieces. Lines of 215 bytes: the 1 MiB mark falls in the
  // padding, so the nearest '\n' before a non-space is the one inside the
  // token "\n\nAssistant:"; the cut must go back to the "\nh" before it.
  std::string pad;
  for (int i = 0; i < 98; ++i)
    pad += " a";
  while (lines.size() < (size_t(5) << 19))
    lines += "\nh\xc3\xa9\xe2\x82\xac\n\nAssistant:" + pad;
  while (longLine.size() < (size_t(5) << 19))
    longLine += "\xe2\x82\xac"; // a cut at 1 MiB would split a character
  for (const std::string &text : {lines, longLine}) {
    std::string path = dir.path("t.txt");
    writeBytes(path, text.data(), text.size());
    rwkv_state_clear(state);
    rwkv_generate_result r = {};
    ASSERT_EQ(rwkv_feed_file(state, tok, path.c_str(), logits.data(),
                             RWKV_EVAL_SEQ, 0, nullptr, nullptr, &r, err,
                             sizeof err),
              RWKV_OK)
        << err;
    std::vector<float> wholeLogits(fake::kVocab);
    rwkv_state *whole = rwkv_state_new(model, err, sizeof err);
    rwkv_generate_result w = {};
    ASSERT_EQ(rwkv_feed_text(whole, tok, text.data(), text.size(),
                             wholeLogits.data(), RWKV_EVAL_SEQ, 0, &w, err,
                             sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(r.n_fed, w.n_fed);
    EXPECT_EQ(host(state), host(whole));
    EXPECT_EQ(logits, wholeLogits);
    rwkv_state_free(whole);

    // Perplexity: the same tokens, predictions and score.
    size_t n = 0;
    ASSERT_EQ(rwkv_tokenize(tok, text.data(), text.size(), nullptr, 0, &n,
                            err, sizeof err),
              RWKV_OK);
    std::vector<int32_t> ids(n);
    rwkv_tokenize(tok, text.data(), text.size(), ids.data(), n, &n, err,
                  sizeof err);
    rwkv_perplexity_result want, got;
    rwkv_state_clear(state);
    ASSERT_EQ(rwkv_perplexity(state, ids.data(), n, 0, nullptr, nullptr,
                              &want, err, sizeof err),
              RWKV_OK);
    std::vector<float> wantState = host(state);
    rwkv_state_clear(state);
    ASSERT_EQ(rwkv_perplexity_file(state, tok, path.c_str(), 0, nullptr,
                                   nullptr, &got, err, sizeof err),
              RWKV_OK)
        << err;
    EXPECT_EQ(got.n_tokens, want.n_tokens);
    EXPECT_EQ(got.n_predictions, want.n_predictions);
    EXPECT_NEAR(got.nll, want.nll, 1e-9 * want.nll);
    EXPECT_EQ(host(state), wantState);
  }
}

// Tests the errors of the file calls: each names the file (and the offset),
// and a progress callback stops between pieces.
TEST_F(Library, FileErrorsAndProgress) {
  TempDir dir;
  auto expectRefused = [&](const std::string &path, int status,
                           const std::string &needle) {
    rwkv_generate_result r = {};
    EXPECT_EQ(rwkv_feed_file(state, tok, path.c_str(), logits.data(),
                             RWKV_EVAL_SEQ, 0, nullptr, nullptr, &r, err,
                             sizeof err),
              status);
    EXPECT_NE(std::string(err).find(needle), std::string::npos) << err;
    EXPECT_NE(std::string(err).find(path), std::string::npos) << err;
    rwkv_perplexity_result p;
    EXPECT_EQ(rwkv_perplexity_file(state, tok, path.c_str(), 0, nullptr,
                                   nullptr, &p, err, sizeof err),
              status);
    EXPECT_NE(std::string(err).find(needle), std::string::npos) << err;
  };
  expectRefused(dir.path("none.txt"), RWKV_ERROR_IO, "cannot read the file");
  writeBytes(dir.path("empty.txt"), "", 0);
  expectRefused(dir.path("empty.txt"), RWKV_ERROR_FORMAT, "is empty");
  writeBytes(dir.path("nul.txt"), "hi \0", 4);
  expectRefused(dir.path("nul.txt"), RWKV_ERROR_FORMAT,
                "is not text: a NUL byte at offset 3");
  expectRefused("/dev/zero", RWKV_ERROR_FORMAT, "a NUL byte at offset 0");
  // A bad byte in the second piece: its offset in the file.
  std::string text(size_t(3) << 19, 'a'); // 1.5 MiB
  text[(size_t(3) << 19) - 2] = '\xff';
  writeBytes(dir.path("bad.txt"), text.data(), text.size());
  expectRefused(dir.path("bad.txt"), RWKV_ERROR_FORMAT,
                "is not valid UTF-8: byte 0xff at offset 1572862");
  // One token: nothing to score.
  writeBytes(dir.path("one.txt"), "h", 1);
  rwkv_perplexity_result p;
  EXPECT_EQ(rwkv_perplexity_file(state, tok, dir.path("one.txt").c_str(), 0,
                                 nullptr, nullptr, &p, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("has 1 token(s)"), std::string::npos)
      << err;

  // Progress: stopping after the first of two pieces feeds 1 MiB.
  std::string two(size_t(3) << 19, 'a');
  writeBytes(dir.path("two.txt"), two.data(), two.size());
  auto stop = [](void *calls, size_t, size_t) {
    ++*static_cast<int *>(calls);
    return 1;
  };
  int calls = 0;
  rwkv_generate_result r = {};
  rwkv_state_clear(state);
  ASSERT_EQ(rwkv_feed_file(state, tok, dir.path("two.txt").c_str(),
                           logits.data(), RWKV_EVAL_SEQ, 0, stop, &calls, &r,
                           err, sizeof err),
            RWKV_OK)
      << err;
  EXPECT_EQ(calls, 1);
  EXPECT_LT(r.n_fed, two.size());
  EXPECT_GT(r.n_fed, 0u);
}

// Tests --info and --bench as library calls: the description of the linked
// model (to any FILE *, a failed write reported) and the benchmark figures.
TEST_F(Library, DescribeAndBench) {
  TempDir dir;
  std::string path = dir.path("info.txt");
  FILE *f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(rwkv_model_describe(f), RWKV_OK);
  fclose(f);
  std::string text = readText(path);
  EXPECT_EQ(text.rfind("model: ", 0), 0u) << text;
  EXPECT_NE(text.find("\nn_vocab: 16\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ntokenizer: none ("), std::string::npos) << text;
  f = fopen("/dev/full", "w");
  ASSERT_NE(f, nullptr);
  setvbuf(f, nullptr, _IONBF, 0);
  EXPECT_EQ(rwkv_model_describe(f), RWKV_ERROR_IO);
  fclose(f);

  rwkv_bench_result r;
  EXPECT_EQ(rwkv_bench(model, 0, 0, &r, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  ASSERT_EQ(rwkv_bench(model, 40, 4, &r, err, sizeof err), RWKV_OK) << err;
  EXPECT_EQ(r.n_tokens, 40u);
  EXPECT_EQ(r.chunk, 4u);
  EXPECT_GE(r.decode_ms, 0);
  EXPECT_GE(r.prefill_ms, 0);
  EXPECT_GE(r.prefill_chunk_ms, 0);
  EXPECT_GE(r.total_ms, r.decode_ms + r.prefill_ms + r.prefill_chunk_ms);
  EXPECT_GT(r.peak_rss_kib, 0u);
}

// Tests that a session gives what the calls it bundles give on a state
// handle and logits buffer of one's own, and adds up its totals.
TEST_F(Library, SessionMatchesTheCallsItBundles) {
  EXPECT_EQ(rwkv_session_new(nullptr, tok, err, sizeof err), nullptr);
  rwkv_session *s = rwkv_session_new(model, tok, err, sizeof err);
  ASSERT_NE(s, nullptr) << err;
  EXPECT_EQ(host(rwkv_session_state(s)), initial());
  EXPECT_EQ(std::vector<float>(rwkv_session_logits(s),
                               rwkv_session_logits(s) + fake::kVocab),
            std::vector<float>(fake::kVocab, 0.0f));
  rwkv_generate_params p;
  rwkv_generate_params_default(&p);
  p.max_tokens = 4;
  p.sampling.seed = 7;
  ASSERT_EQ(rwkv_session_feed(s, "hi", 2, RWKV_EVAL_SEQ, 0, err, sizeof err),
            RWKV_OK)
      << err;
  Sink got, want;
  rwkv_generate_result gen, r, ref;
  ASSERT_EQ(rwkv_session_generate(s, &p, Sink::emit, &got, &gen, err,
                                  sizeof err),
            RWKV_OK)
      << err;
  ASSERT_EQ(rwkv_feed_text(state, tok, "hi", 2, logits.data(), RWKV_EVAL_SEQ,
                           0, nullptr, err, sizeof err),
            RWKV_OK);
  ASSERT_EQ(rwkv_generate(state, tok, logits.data(), &p, Sink::emit, &want,
                          &ref, err, sizeof err),
            RWKV_OK);
  EXPECT_EQ(got.text(), want.text());
  EXPECT_EQ(gen.n_generated, ref.n_generated);
  EXPECT_EQ(host(rwkv_session_state(s)), host(state));
  EXPECT_EQ(std::vector<float>(rwkv_session_logits(s),
                               rwkv_session_logits(s) + fake::kVocab),
            logits);
  ASSERT_EQ(rwkv_session_chat(s, "hi", 2, &p, RWKV_EVAL_SEQ, 0, nullptr,
                              nullptr, &r, err, sizeof err),
            RWKV_OK)
      << err;
  ASSERT_EQ(rwkv_chat_turn(state, tok, logits.data(), "hi", 2, &p,
                           RWKV_EVAL_SEQ, 0, nullptr, nullptr, &ref, err,
                           sizeof err),
            RWKV_OK);
  EXPECT_EQ(host(rwkv_session_state(s)), host(state));
  rwkv_generate_result t = rwkv_session_totals(s);
  EXPECT_EQ(t.n_fed, 2u + r.n_fed); // "hi", then the chat turn's template
  EXPECT_EQ(t.n_generated, gen.n_generated + r.n_generated);
  EXPECT_EQ(t.stop, r.stop);
  EXPECT_EQ(rwkv_session_feed(s, "h\xc3", 2, RWKV_EVAL_SEQ, 0, err,
                              sizeof err),
            RWKV_ERROR_ARGUMENT);
  rwkv_session_free(s);
  rwkv_session_free(nullptr);
}

// Tests the command line's request: id lists and the checks of what
// combines, with the messages the executable prints.
TEST(CliRequest, IdsAndChecks) {
  char err[256];
  int64_t ids[4];
  size_t n = 0;
  ASSERT_EQ(rwkv_cli_parse_ids(" 3, -4 ,0000000000005", ids, 4, &n, err,
                               sizeof err),
            RWKV_OK)
      << err;
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(ids[0], 3);
  EXPECT_EQ(ids[1], -4);
  EXPECT_EQ(ids[2], 5);
  EXPECT_EQ(rwkv_cli_parse_ids("1,2,3,4,5", nullptr, 0, &n, err, sizeof err),
            RWKV_OK);
  EXPECT_EQ(n, 5u);
  for (const char *bad : {"1,x", "1,,2", "1.5", "2147483648", "+1", ""}) {
    EXPECT_EQ(rwkv_cli_parse_ids(bad, ids, 4, &n, err, sizeof err),
              RWKV_ERROR_ARGUMENT)
        << bad;
    EXPECT_NE(std::string(err).find("is not a token id"), std::string::npos)
        << err;
  }

  rwkv_cli_request r;
  rwkv_cli_request_default(&r);
  EXPECT_EQ(r.mode, RWKV_EVAL_SEQ);
  EXPECT_EQ(r.bench_tokens, 512u);
  EXPECT_EQ(r.gen.max_tokens, 100u);
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_USAGE);
  EXPECT_NE(std::string(err).find("nothing to do"), std::string::npos);
  r.logits_out = "x.bin";
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_USAGE);
  EXPECT_NE(std::string(err).find("need --tokens"), std::string::npos);
  int64_t tokens[] = {1, fake::kVocab};
  r.tokens = tokens;
  r.n_tokens = 2;
  r.has_tokens = 1;
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_USAGE);
  EXPECT_NE(std::string(err).find("token 16 (item 2) is out of range"),
            std::string::npos)
      << err;
  r.n_tokens = 1;
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_OK) << err;
  r.prompt = "hi";
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_USAGE);
  EXPECT_NE(std::string(err).find("do not combine"), std::string::npos);
  rwkv_cli_request_default(&r);
  r.prompt = "";
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_USAGE);
  EXPECT_NE(std::string(err).find("the prompt is empty"), std::string::npos);
  r.prompt = "hi";
  EXPECT_EQ(rwkv_cli_check(&r, err, sizeof err), RWKV_EXIT_OK);
}

} // namespace
