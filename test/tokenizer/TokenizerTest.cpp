//===- TokenizerTest.cpp - Compiled tokenizers against the test vectors ---===//
//
// Compiles bytes, world and 20b with rwkvc::compileTokenizer from the files
// rwkvc ships (data/tokenizers), opens the blobs with the runtime, and checks
// every line of the test vectors RWKVC_SHARED_DIR/tokenizers/vectors-20B.jsonl
// and vectors-world.jsonl exactly, round trips, streaming UTF-8, the
// compile-time errors, and how rwkvc finds the files (TokenizerFiles.h).
//
//===----------------------------------------------------------------------===//

#include "frontend/Tokenizer.h"
#include "frontend/TokenizerFiles.h"
#include "rwkv_runtime.h"
#include "test/TimeScale.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include "gtest/gtest.h"

#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

/// The tokenizer files that ship with rwkvc.
const std::string kDir = RWKVC_SOURCE_DIR "/data/tokenizers";
/// The test vectors (shared test assets, optional).
const std::string kVectorsDir = RWKVC_SHARED_DIR "/tokenizers";
using rwkvc::testing::kTimeScale;
using rwkvc::testing::threadCpuSeconds;

struct TokDeleter {
  void operator()(rwkv_tokenizer *t) const { rwkv_tokenizer_close(t); }
};
using Tok = std::unique_ptr<rwkv_tokenizer, TokDeleter>;

#define REQUIRE_VECTORS(file)                                                  \
  if (!std::ifstream(kVectorsDir + "/" + file).good())                         \
  GTEST_SKIP() << "the test vectors are missing from " << kVectorsDir          \
               << " (set RWKVC_SHARED_DIR)"

/// The blob of `spec`, compiled once per test program (20B takes ~0.5 s).
std::vector<uint8_t> compile(const std::string &spec, int64_t vocab = 0) {
  static std::map<std::pair<std::string, int64_t>, std::vector<uint8_t>> cache;
  auto it = cache.find({spec, vocab});
  if (it != cache.end())
    return it->second;
  auto blob = rwkvc::compileTokenizer(spec, vocab, kDir);
  if (!blob) {
    ADD_FAILURE() << llvm::toString(blob.takeError());
    return {};
  }
  return cache[{spec, vocab}] = *blob;
}

Tok open(const std::vector<uint8_t> &blob) {
  char err[256] = "";
  rwkv_tokenizer *t = rwkv_tokenizer_open(blob.data(), blob.size(), 0, err,
                                          sizeof err);
  EXPECT_NE(t, nullptr) << err;
  return Tok(t);
}

std::vector<int32_t> encode(const rwkv_tokenizer *t, const std::string &s) {
  size_t n = 0;
  char err[256] = "";
  EXPECT_EQ(rwkv_tokenize(t, s.data(), s.size(), nullptr, 0, &n, err,
                          sizeof err),
            RWKV_OK)
      << err;
  std::vector<int32_t> ids(n);
  size_t n2 = 0;
  EXPECT_EQ(rwkv_tokenize(t, s.data(), s.size(), ids.data(), ids.size(), &n2,
                          err, sizeof err),
            RWKV_OK)
      << err;
  EXPECT_EQ(n, n2);
  return ids;
}

std::string decode(const rwkv_tokenizer *t, const std::vector<int32_t> &ids) {
  size_t n = 0;
  char err[256] = "";
  EXPECT_EQ(rwkv_detokenize(t, ids.data(), ids.size(), nullptr, 0, &n, err,
                            sizeof err),
            RWKV_OK)
      << err;
  std::string s(n, '\0');
  EXPECT_EQ(rwkv_detokenize(t, ids.data(), ids.size(), s.data(), s.size(), &n,
                            err, sizeof err),
            RWKV_OK)
      << err;
  return s;
}

/// Checks every line of a vectors-*.jsonl file; returns the lines passed.
void checkVectors(const std::string &spec, const std::string &file,
                  int64_t vocab) {
  Tok t = open(compile(spec, vocab));
  ASSERT_TRUE(t);
  auto buf = llvm::MemoryBuffer::getFile(kVectorsDir + "/" + file);
  ASSERT_TRUE(bool(buf)) << file;
  llvm::StringRef text = (*buf)->getBuffer();
  int lines = 0, passed = 0;
  while (!text.empty()) {
    llvm::StringRef line;
    std::tie(line, text) = text.split('\n');
    if (line.trim().empty())
      continue;
    ++lines;
    llvm::Expected<llvm::json::Value> v = llvm::json::parse(line);
    ASSERT_TRUE(bool(v)) << llvm::toString(v.takeError());
    const llvm::json::Object *o = v->getAsObject();
    ASSERT_TRUE(o);
    std::string s = o->getString("text")->str();
    std::vector<int32_t> want;
    for (const llvm::json::Value &id : *o->getArray("ids"))
      want.push_back(int32_t(*id.getAsInteger()));
    std::vector<int32_t> got = encode(t.get(), s);
    EXPECT_EQ(got, want) << file << " line " << lines << ": " << s;
    EXPECT_EQ(decode(t.get(), want), s) << file << " line " << lines;
    passed += got == want && decode(t.get(), want) == s;
  }
  EXPECT_EQ(lines, 13) << file;
  printf("%s: %d/%d lines pass\n", file.c_str(), passed, lines);
}

std::string randomUtf8(std::mt19937 &rng, size_t chars) {
  // Ranges without combining marks, so the text is its own NFC.
  static const uint32_t ranges[][2] = {{0x20, 0x7E},     {0x9, 0xA},
                                       {0xA0, 0xFF},     {0x400, 0x45F},
                                       {0x4E00, 0x9FFF}, {0x3041, 0x3096},
                                       {0x1F600, 0x1F64F}};
  std::string s;
  for (size_t i = 0; i < chars; ++i) {
    const auto &r = ranges[rng() % 7];
    uint32_t cp = r[0] + rng() % (r[1] - r[0] + 1);
    if (rng() % 3 == 0)
      cp = ' ';
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6));
      s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += char(0xE0 | (cp >> 12));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    } else {
      s += char(0xF0 | (cp >> 18));
      s += char(0x80 | ((cp >> 12) & 0x3F));
      s += char(0x80 | ((cp >> 6) & 0x3F));
      s += char(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

// Tests that the 20B tokenizer gives Hugging Face's ids for every vector.
TEST(Tokenizer, Vectors20B) {
  REQUIRE_VECTORS("vectors-20B.jsonl");
  checkVectors("20b", "vectors-20B.jsonl", 50277);
}

// Tests that the World tokenizer gives the reference ids for every vector.
TEST(Tokenizer, VectorsWorld) {
  REQUIRE_VECTORS("vectors-world.jsonl");
  checkVectors("world", "vectors-world.jsonl", 65536);
}

// Tests added tokens, NFC and the pre-tokenizer's corner cases on 20B.
TEST(Tokenizer, Bpe20BCorners) {
  Tok t = open(compile("20b"));
  ASSERT_TRUE(t);
  // Special tokens are matched in raw text.
  std::vector<int32_t> ids = encode(t.get(), "a<|endoftext|>b");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], 0);
  // NFC: e + combining acute encodes as the precomposed e-acute.
  EXPECT_EQ(encode(t.get(), "caf\xC3\xA9"), encode(t.get(), "cafe\xCC\x81"));
  // Hangul jamo compose to the syllable.
  EXPECT_EQ(encode(t.get(), "\xED\x95\x9C"),
            encode(t.get(), "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"));
  // Contractions, trailing whitespace, a long space run (added tokens).
  std::string s = "I'll've   \n\n  x" + std::string(30, ' ') + "y  ";
  EXPECT_EQ(decode(t.get(), encode(t.get(), s)), s);
  // Invalid UTF-8 is refused, naming the offset.
  size_t n;
  char err[256];
  EXPECT_EQ(rwkv_tokenize(t.get(), "ab\xFF", 3, nullptr, 0, &n, err,
                          sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("offset 2"), std::string::npos) << err;
  EXPECT_EQ(rwkv_tokenizer_eos(t.get()), 0);
  EXPECT_STREQ(rwkv_tokenizer_kind(t.get()), "bpe");
  // One 200 KB pre-token (no spaces) encodes quickly (heap-based merges).
  std::string word;
  while (word.size() < 200000)
    word += "Supercalifragilisticexpialidocious";
  double t0 = threadCpuSeconds();
  std::vector<int32_t> longIds = encode(t.get(), word);
  EXPECT_LT(threadCpuSeconds() - t0, 2.0 * kTimeScale);
  EXPECT_EQ(decode(t.get(), longIds), word);
}

// Tests that decode(encode(x)) == x for random texts on every tokenizer,
// and random bytes (not UTF-8) on the byte-level ones (bytes, world).
TEST(Tokenizer, RoundTrips) {
  std::mt19937 rng(1234);
  for (const char *spec : {"bytes", "world", "20b"}) {
    Tok t = open(compile(spec));
    ASSERT_TRUE(t);
    for (int i = 0; i < 200; ++i) {
      std::string s = randomUtf8(rng, rng() % 64);
      EXPECT_EQ(decode(t.get(), encode(t.get(), s)), s) << spec;
    }
    if (std::string(spec) == "20b")
      continue;
    for (int i = 0; i < 200; ++i) {
      std::string s(rng() % 64, '\0');
      for (char &c : s)
        c = char(rng());
      EXPECT_EQ(decode(t.get(), encode(t.get(), s)), s) << spec;
    }
  }
}

// Tests that World encoding is a trie walk, not a scan over the vocabulary:
// 1 MB encodes well within a second.
TEST(Tokenizer, WorldIsFast) {
  Tok t = open(compile("world"));
  ASSERT_TRUE(t);
  std::mt19937 rng(7);
  std::string s;
  while (s.size() < (1 << 20))
    s += randomUtf8(rng, 100);
  double t0 = threadCpuSeconds();
  std::vector<int32_t> ids = encode(t.get(), s);
  EXPECT_LT(threadCpuSeconds() - t0, 1.0 * kTimeScale);
  EXPECT_EQ(decode(t.get(), ids), s);
}

// Tests that decoding any ids never crashes, and that the streaming decoder
// never splits a character and loses nothing.
TEST(Tokenizer, StreamingDecode) {
  std::mt19937 rng(99);
  for (const char *spec : {"bytes", "world", "20b"}) {
    Tok t = open(compile(spec));
    ASSERT_TRUE(t);
    size_t nTok = rwkv_tokenizer_n_tokens(t.get());
    // Random ids: arbitrary (possibly invalid) UTF-8, streamed losslessly.
    for (int i = 0; i < 100; ++i) {
      std::vector<int32_t> ids(rng() % 20);
      for (int32_t &id : ids)
        id = int32_t(rng() % nTok);
      std::string all = decode(t.get(), ids), streamed;
      rwkv_utf8_stream st;
      rwkv_utf8_stream_init(&st);
      for (int32_t id : ids) {
        const uint8_t *b;
        size_t n = rwkv_token_bytes(t.get(), id, &b);
        std::string out(n + 4, '\0');
        out.resize(rwkv_utf8_stream_push(&st, b, n, out.data()));
        streamed += out;
      }
      char tail[4];
      streamed.append(tail, rwkv_utf8_stream_flush(&st, tail));
      EXPECT_EQ(streamed, all) << spec;
    }
    // Valid text token by token: every chunk is valid UTF-8 on its own.
    for (int i = 0; i < 100; ++i) {
      std::string s = randomUtf8(rng, 40);
      std::vector<int32_t> ids = encode(t.get(), s);
      rwkv_utf8_stream st;
      rwkv_utf8_stream_init(&st);
      std::string streamed;
      for (int32_t id : ids) {
        const uint8_t *b;
        size_t n = rwkv_token_bytes(t.get(), id, &b);
        std::string out(n + 4, '\0');
        out.resize(rwkv_utf8_stream_push(&st, b, n, out.data()));
        EXPECT_EQ(rwkv_utf8_valid_prefix(out.data(), out.size()), out.size())
            << spec;
        streamed += out;
      }
      char tail[4];
      EXPECT_EQ(rwkv_utf8_stream_flush(&st, tail), 0u);
      EXPECT_EQ(streamed, s) << spec;
    }
  }
  // A byte at a time through an emoji: nothing until it is complete.
  rwkv_utf8_stream st;
  rwkv_utf8_stream_init(&st);
  const char *emoji = "\xF0\x9F\x98\x80";
  char out[8];
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(rwkv_utf8_stream_push(&st, emoji + i, 1, out), 0u);
  EXPECT_EQ(rwkv_utf8_stream_push(&st, emoji + 3, 1, out), 4u);
  EXPECT_EQ(std::string(out, 4), emoji);
  // A token without bytes (end of text: rwkv_token_bytes gives 0 and null)
  // with nothing pending: nothing out, no copy from null (UBSan checks it in
  // a RWKVC_SANITIZE=undefined build), and the state stays usable.
  EXPECT_EQ(rwkv_utf8_stream_push(&st, nullptr, 0, out), 0u);
  EXPECT_EQ(rwkv_utf8_stream_flush(&st, out), 0u);
  EXPECT_EQ(rwkv_utf8_stream_push(&st, emoji, 2, out), 0u);
  EXPECT_EQ(rwkv_utf8_stream_push(&st, nullptr, 0, out), 0u);
  EXPECT_EQ(rwkv_utf8_stream_push(&st, emoji + 2, 2, out), 4u);
  EXPECT_EQ(std::string(out, 4), emoji);
}

// Tests the bytes tokenizer and the out-of-range checks of the C API.
TEST(Tokenizer, Bytes) {
  Tok t = open(compile("bytes", 256));
  ASSERT_TRUE(t);
  EXPECT_EQ(encode(t.get(), "Az\n"), (std::vector<int32_t>{65, 122, 10}));
  EXPECT_EQ(rwkv_tokenizer_eos(t.get()), -1);
  int32_t bad[] = {65, 256};
  size_t n;
  char err[256];
  EXPECT_EQ(rwkv_detokenize(t.get(), bad, 2, nullptr, 0, &n, err, sizeof err),
            RWKV_ERROR_ARGUMENT);
  EXPECT_NE(std::string(err).find("token 256 (item 2) is out of range"),
            std::string::npos)
      << err;
}

// Tests the compile-time errors: unknown spec, missing file, a vocabulary
// larger than the model's, malformed vocabulary lines.
TEST(Tokenizer, CompileErrors) {
  auto msg = [](llvm::Expected<std::vector<uint8_t>> r) {
    EXPECT_FALSE(bool(r));
    return r ? std::string() : llvm::toString(r.takeError());
  };
  EXPECT_NE(msg(rwkvc::compileTokenizer("gpt9", 0, kDir))
                .find("unknown tokenizer 'gpt9'"),
            std::string::npos);
  EXPECT_NE(msg(rwkvc::compileTokenizer("/nonexistent/tok.json", 0, kDir))
                .find("cannot read the tokenizer file '/nonexistent/tok.json'"),
            std::string::npos);
  EXPECT_NE(msg(rwkvc::compileTokenizer("bytes", 16, kDir))
                .find("tokenizer 'bytes' has 256 tokens, the model only 16"),
            std::string::npos);
  EXPECT_NE(
      msg(rwkvc::compileTokenizer("world", 50277, kDir))
          .find("tokenizer 'world' has 65530 tokens, the model only 50277"),
      std::string::npos);
  std::string path = ::testing::TempDir() + "bad-vocab.txt";
  std::ofstream(path) << "1 'a' 1\n2 'bc' 3\n";
  EXPECT_NE(msg(rwkvc::compileTokenizer(path, 0, kDir))
                .find("line 2: the literal has 2 bytes but the line says 3"),
            std::string::npos);
  std::ofstream(path) << "1 'a' 1\n2 b'\\xff' 1\n3 '\\u00e9' 2\n";
  auto ok = rwkvc::compileTokenizer(path, 0, kDir);
  ASSERT_TRUE(bool(ok)) << llvm::toString(ok.takeError());
  Tok t = open(*ok);
  EXPECT_EQ(encode(t.get(), "a\xC3\xA9\xFF"),
            (std::vector<int32_t>{1, 3, 2}));
  std::string json = ::testing::TempDir() + "bad-tok.json";
  std::ofstream(json) << "{\"model\": {\"type\": \"Unigram\"}}";
  EXPECT_NE(msg(rwkvc::compileTokenizer(json, 0, kDir))
                .find("only byte-level BPE models"),
            std::string::npos);
  EXPECT_EQ(rwkvc::defaultTokenizerFor(65536), "world");
  EXPECT_EQ(rwkvc::defaultTokenizerFor(50277), "20b");
  EXPECT_EQ(rwkvc::defaultTokenizerFor(256), "bytes");
  EXPECT_EQ(rwkvc::defaultTokenizerFor(16), "");
}

// Tests where rwkvc finds world and 20b: ../share/rwkvc/tokenizers beside its
// executable (the build tree has a copy beside build/bin/rwkvc), or
// --tokenizer-dir; and the one-line error naming both options when the file
// is not there.
TEST(Tokenizer, BundledFolder) {
  EXPECT_EQ(rwkvc::bundledTokenizerDir("/opt/rwkvc/bin/rwkvc"),
            "/opt/rwkvc/share/rwkvc/tokenizers");
  EXPECT_EQ(rwkvc::bundledTokenizerFile("world"), "rwkv_vocab_v20230424.txt");
  EXPECT_EQ(rwkvc::bundledTokenizerFile("20b"), "20B_tokenizer.json");
  EXPECT_EQ(rwkvc::bundledTokenizerFile("bytes"), "");

  std::string buildRwkvc = RWKVC_BINARY_DIR "/bin/rwkvc";
  auto world = rwkvc::compileTokenizerFound("world", 65536, "", buildRwkvc);
  ASSERT_TRUE(bool(world)) << llvm::toString(world.takeError());
  EXPECT_EQ(*world, compile("world", 65536));
  auto viaDir = rwkvc::compileTokenizerFound("20b", 50277, kDir, "/nowhere/x");
  ASSERT_TRUE(bool(viaDir)) << llvm::toString(viaDir.takeError());
  EXPECT_EQ(*viaDir, compile("20b", 50277));

  auto msg = [](llvm::Expected<std::vector<uint8_t>> r) {
    EXPECT_FALSE(bool(r));
    return r ? std::string() : llvm::toString(r.takeError());
  };
  EXPECT_EQ(msg(rwkvc::compileTokenizerFound("world", 0, "", "/nowhere/bin/x")),
            "tokenizer 'world': rwkv_vocab_v20230424.txt is not in rwkvc's "
            "tokenizer folder '/nowhere/share/rwkvc/tokenizers'; give its "
            "path with --tokenizer FILE or its folder with --tokenizer-dir "
            "DIR");
  EXPECT_EQ(msg(rwkvc::compileTokenizerFound("20b", 0, "/nowhere", "")),
            "tokenizer '20b': 20B_tokenizer.json is not in --tokenizer-dir "
            "'/nowhere'; give its path with --tokenizer FILE or its folder "
            "with --tokenizer-dir DIR");
  // Other specs do not look in the folder.
  EXPECT_TRUE(bool(rwkvc::compileTokenizerFound("bytes", 256, "", "")));
}

// Tests that the assembly rwkvc emits for the blob assembles and defines
// both symbols with the blob's bytes and size.
TEST(Tokenizer, BlobAssembly) {
  std::string asmText = rwkvc::tokenizerBlobAssembly("/tmp/a \"b\".tok");
  EXPECT_NE(asmText.find(".incbin \"/tmp/a \\\"b\\\".tok\""),
            std::string::npos)
      << asmText;
  for (const char *sym : {".globl rwkv_tokenizer_blob\n",
                          ".globl rwkv_tokenizer_blob_size\n", ".balign 8",
                          ".quad .Lrwkv_tokenizer_blob_end - "
                          "rwkv_tokenizer_blob"})
    EXPECT_NE(asmText.find(sym), std::string::npos) << sym;
}

// Tests that the runtime refuses corrupt blobs and blobs larger than the
// model's vocabulary.
TEST(Tokenizer, BlobChecks) {
  std::vector<uint8_t> blob = compile("bytes");
  char err[256];
  EXPECT_EQ(rwkv_tokenizer_open(blob.data(), blob.size(), 100, err, sizeof err),
            nullptr);
  EXPECT_NE(std::string(err).find("256 tokens but the model only 100"),
            std::string::npos)
      << err;
  std::vector<uint8_t> bad = blob;
  bad[60] ^= 1;
  EXPECT_EQ(rwkv_tokenizer_open(bad.data(), bad.size(), 0, err, sizeof err),
            nullptr);
  EXPECT_NE(std::string(err).find("checksum"), std::string::npos) << err;
  EXPECT_EQ(rwkv_tokenizer_open(blob.data(), 30, 0, err, sizeof err), nullptr);
  bad = blob;
  bad[8] = 9;
  EXPECT_EQ(rwkv_tokenizer_open(bad.data(), bad.size(), 0, err, sizeof err),
            nullptr);
  EXPECT_NE(std::string(err).find("format version 9"), std::string::npos)
      << err;
}

} // namespace
