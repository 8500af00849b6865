//===- BadInputTest.cpp - Crafted good and bad checkpoints ----------------===//
//
// Small checkpoints built by TestFiles.cpp round-trip through every reader;
// corrupted ones give one error naming the file and the fault, never a
// crash, a hang or an allocation the file cannot justify.
//
//===----------------------------------------------------------------------===//

#include "ErrorOf.h"
#include "TestFiles.h"

#include "frontend/Checkpoint.h"
#include "frontend/Model.h"
#include "frontend/Report.h"

#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace rwkvc;
using namespace rwkvc::testing;

namespace {

#define EXPECT_FAULT(bytes, name, phrase)                                      \
  do {                                                                         \
    std::string msg = errorOf(bytes, name);                                    \
    EXPECT_NE(msg.find(name), std::string::npos) << msg;                       \
    EXPECT_NE(msg.find(phrase), std::string::npos) << msg;                     \
  } while (0)

void expectMatchesSpec(const Checkpoint &ck,
                       const std::vector<TensorSpec> &spec, double tol) {
  ASSERT_EQ(ck.tensors.size(), spec.size());
  for (const TensorSpec &s : spec) {
    const Tensor *t = ck.find(s.name);
    ASSERT_TRUE(t) << s.name;
    EXPECT_EQ(std::vector<int64_t>(t->shape.begin(), t->shape.end()), s.shape)
        << s.name;
    std::vector<float> v = t->toF32();
    ASSERT_EQ(v.size(), s.values.size());
    for (size_t i = 0; i < v.size(); ++i)
      ASSERT_NEAR(v[i], s.values[i], tol * (1 + std::fabs(s.values[i])))
          << s.name << "[" << i << "]";
  }
}

// --- Good files ------------------------------------------------------------

TEST(CraftedFiles, V4RoundTripsThroughEveryContainer) {
  auto spec = tinyV4Model();
  for (auto [bytes, tol] : {std::pair<std::string, double>{makePth(spec), 0},
                            {makePth(spec, {DType::F16}), 1.0 / 1024},
                            {makePth(spec, {DType::BF16}), 1.0 / 128},
                            {makeSafeTensors(spec), 0},
                            // -exp then log in float32: a few ulps.
                            {makeGGMLV4(spec), 1e-6}}) {
    auto ck = readBytes(bytes, "good.bin");
    ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
    expectMatchesSpec(**ck, spec, tol);
    auto info = describeModel(**ck);
    ASSERT_TRUE(bool(info)) << llvm::toString(info.takeError());
    EXPECT_EQ(info->version, Version::V4);
    EXPECT_EQ(info->nLayer, 1);
    EXPECT_EQ(info->nEmbd, 32);
    EXPECT_EQ(info->ffn, 64);
    EXPECT_EQ(info->vocab, 32);
  }
}

TEST(CraftedFiles, CompressedPthIsReadIntoOwnedBuffers) {
  auto spec = tinyV4Model();
  PthOptions opts;
  opts.compress = true;
  auto ck = readBytes(makePth(spec, opts), "deflated.pth");
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  expectMatchesSpec(**ck, spec, 0);
  EXPECT_FALSE((*ck)->tensors[0].mapped);
}

TEST(CraftedFiles, StridedPthViewBecomesAContiguousCopy) {
  auto spec = tinyV4Model();
  PthOptions opts;
  opts.transposeFirst = true; // emb.weight stored column-major
  auto ck = readBytes(makePth(spec, opts), "strided.pth");
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  expectMatchesSpec(**ck, spec, 0);
  EXPECT_FALSE((*ck)->find("emb.weight")->mapped);
  EXPECT_TRUE((*ck)->find("head.weight")->mapped);
}

TEST(CraftedFiles, PthViewsAtStorageOffsetsStayMapped) {
  auto spec = tinyV4Model();
  PthOptions opts;
  opts.oneStorage = true; // every tensor a view into storage "0"
  auto ck = readBytes(makePth(spec, opts), "shared.pth");
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  expectMatchesSpec(**ck, spec, 0);
  for (const Tensor &t : (*ck)->tensors)
    EXPECT_TRUE(t.mapped) << t.name;
  EXPECT_EQ((*ck)->tensors[1].data,
            (*ck)->tensors[0].data + (*ck)->tensors[0].nbytes);
}

TEST(CraftedFiles, V51GateWithPerHeadDecay) {
  auto ck = readBytes(makeSafeTensors(tinyV51Model()), "v51.safetensors");
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  auto info = describeModel(**ck);
  ASSERT_TRUE(bool(info)) << llvm::toString(info.takeError());
  EXPECT_EQ(info->version, Version::V5_1);
  EXPECT_EQ(info->nHead, 4);
  EXPECT_EQ(info->headSize, 8);
  EXPECT_FALSE(info->bonusIsTimeFirst);
  EXPECT_EQ((*ck)->metadata.size(), 1u);
}

TEST(CraftedFiles, V7MultiHeadWithTimeStateAndLayerZeroValueLora) {
  auto ck = readBytes(makePth(tinyV7Model()), "v7.pth");
  ASSERT_TRUE(bool(ck)) << llvm::toString(ck.takeError());
  auto info = describeModel(**ck);
  ASSERT_TRUE(bool(info)) << llvm::toString(info.takeError());
  EXPECT_EQ(info->version, Version::V7);
  EXPECT_EQ(info->nHead, 2);
  EXPECT_EQ(info->headSize, 16);
  EXPECT_EQ(info->loraDecay, 8);
  EXPECT_EQ(info->loraV, 8);
  EXPECT_TRUE(info->hasTimeState);
  EXPECT_TRUE(info->v7LayerZeroHasV);
  EXPECT_TRUE(info->extraTensors.empty());
  std::string report;
  llvm::raw_string_ostream os(report);
  printInspectReport(os, **ck, *info);
  EXPECT_NE(report.find("[value i][key j]"), std::string::npos) << report;
  EXPECT_NE(report.find("time_state:  present"), std::string::npos) << report;
}

TEST(CraftedFiles, ExtraTensorsAreReported) {
  auto spec = tinyV4Model();
  spec.push_back({"blocks.0.att.mystery", {2}, {1, 2}});
  auto ck = readBytes(makeSafeTensors(spec), "extra.safetensors");
  ASSERT_TRUE(bool(ck));
  auto info = describeModel(**ck);
  ASSERT_TRUE(bool(info)) << llvm::toString(info.takeError());
  ASSERT_EQ(info->extraTensors.size(), 1u);
  EXPECT_EQ(info->extraTensors[0], "blocks.0.att.mystery");
}

TEST(CraftedFiles, NonFiniteValuesAreAnomaliesNotErrors) {
  auto spec = tinyV4Model();
  spec[0].values[3] = std::numeric_limits<float>::quiet_NaN();
  spec[0].values[5] = std::numeric_limits<float>::infinity();
  spec[0].values[6] = -std::numeric_limits<float>::infinity();
  for (auto bytes : {makePth(spec), makePth(spec, {DType::BF16}),
                     makePth(spec, {DType::F16}), makeSafeTensors(spec)}) {
    auto ck = readBytes(bytes, "nan.pth");
    ASSERT_TRUE(bool(ck));
    auto info = describeModel(**ck);
    ASSERT_TRUE(bool(info)) << llvm::toString(info.takeError());
    EXPECT_EQ(info->nonFiniteValues, 3u);
    ASSERT_EQ(info->anomalies.size(), 1u);
    EXPECT_NE(info->anomalies[0].find("emb.weight: 1 NaN and 2 Inf"),
              std::string::npos)
        << info->anomalies[0];
  }
}

// --- Bad files -------------------------------------------------------------

TEST(BadInput, MissingFile) {
  auto ck = readCheckpoint("/nonexistent/model.pth");
  ASSERT_FALSE(bool(ck));
  std::string msg = llvm::toString(ck.takeError());
  EXPECT_NE(msg.find("/nonexistent/model.pth: cannot open"), std::string::npos)
      << msg;
}

TEST(BadInput, NotACheckpoint) {
  EXPECT_FAULT(std::string("hello, world, this is text"), "notes.txt",
               "not a checkpoint");
  EXPECT_FAULT(std::string("abc"), "tiny.bin", "too short");
}

TEST(BadInput, TruncatedFilesOfEveryFormat) {
  auto spec = tinyV4Model();
  std::string pth = makePth(spec), st = makeSafeTensors(spec),
              bin = makeGGMLV4(spec);
  EXPECT_FAULT(pth.substr(0, pth.size() / 2), "cut.pth", "zip");
  EXPECT_FAULT(st.substr(0, st.size() / 2), "cut.safetensors",
               "runs past the end");
  EXPECT_FAULT(st.substr(0, 40), "cut.safetensors", "header length");
  EXPECT_FAULT(bin.substr(0, bin.size() - 7), "cut.bin", "runs past the end");
  EXPECT_FAULT(bin.substr(0, 30), "cut.bin", "truncated");
  EXPECT_FAULT(bin.substr(0, 20), "cut.bin", "truncated header");
  // Every prefix (in steps) fails cleanly, whatever the cut.
  for (const std::string *f : {&pth, &st, &bin})
    for (size_t n = 0; n < f->size(); n += 61)
      EXPECT_NE(errorOf(f->substr(0, n), "prefix"), "") << n;
}

TEST(BadInput, ZipWithBadCentralDirectory) {
  std::string pth = makePth(tinyV4Model());
  size_t cd = pth.rfind("PK\x01\x02");
  ASSERT_NE(cd, std::string::npos);
  std::string bad = pth;
  bad[cd + 2] = 'X'; // last directory entry's signature
  EXPECT_FAULT(bad, "badcd.pth", "zip");
  // Every central directory byte flipped: an error or a good read, never a
  // crash or a wrong tensor size.
  size_t first = pth.find("PK\x01\x02");
  for (size_t i = first; i < pth.size(); i += 7) {
    std::string f = pth;
    f[i] ^= 0x5a;
    (void)errorOf(f, "flip.pth");
  }
  // Local header offset of the first entry pointed past the end.
  bad = pth;
  std::memset(&bad[first + 42], 0x7f, 4);
  EXPECT_FAULT(bad, "badoffset.pth", "zip");
}

TEST(BadInput, PickleGlobalsOtherThanTensorsAreRefused) {
  for (const char *global : {"os\nsystem", "builtins\neval", "posix\nsystem",
                             "torch\nload", "collections\ndefaultdict"}) {
    PthOptions opts;
    opts.extraGlobal = global;
    std::string name = std::string(global);
    name.replace(name.find('\n'), 1, ".");
    EXPECT_FAULT(makePth(tinyV4Model(), opts), "evil.pth",
                 "data.pkl: global '" + name + "' is not allowed");
  }
}

TEST(BadInput, UnknownPickleOpcode) {
  auto spec = tinyV4Model();
  std::string good = makeStateDictPickle(spec, {});
  std::string pkl = good;
  pkl.insert(2, "i"); // INST, after PROTO 2
  std::string zip = makeZip({{"archive/data.pkl", pkl}});
  EXPECT_FAULT(zip, "op.pth", "unsupported pickle opcode 0x69 (INST)");
  EXPECT_FAULT(zip, "op.pth", "byte offset 2");
  EXPECT_FAULT(makeZip({{"archive/data.pkl", good.substr(0, 40)}}), "op.pth",
               "truncated pickle");
  EXPECT_FAULT(makeZip({{"other/file", "x"}}), "nopkl.pth", "data.pkl");
}

TEST(BadInput, StoragePastTheEndOfItsEntry) {
  auto spec = tinyV4Model();
  std::vector<std::pair<std::string, std::string>> entries;
  entries.push_back({"archive/data.pkl", makeStateDictPickle(spec, {})});
  for (size_t i = 0; i < spec.size(); ++i) {
    std::string bytes(spec[i].values.size() * 4, '\0');
    if (i == 3)
      bytes.resize(bytes.size() - 4);
    entries.push_back({"archive/data/" + std::to_string(i), bytes});
  }
  EXPECT_FAULT(makeZip(entries), "short.pth", "runs past the end");
}

TEST(BadInput, AbsurdSizesAreRejectedBeforeAllocation) {
  // 2^40 elements in each container.
  std::vector<TensorSpec> huge = {{"emb.weight", {1 << 20, 1 << 20}, {1, 2}}};
  // .pth: the storage claims 2^40 elements but its entry holds 2.
  EXPECT_FAULT(makePth(huge), "huge.pth", "runs past the end");
  // safetensors: shape does not match its data bytes.
  EXPECT_FAULT(makeSafeTensors(huge), "huge.safetensors", "does not match");
  // ggml: dims 2^20 x 2^20.
  std::string bin = makeGGMLV4(tinyV4Model());
  std::string rec;
  for (int32_t v : {2, 10, 0, 1 << 20, 1 << 20})
    rec.append(reinterpret_cast<char *>(&v), 4);
  rec += "emb.weight";
  EXPECT_FAULT(bin.substr(0, 24) + rec + "abcd", "huge.bin",
               "runs past the end");
  // ggml: dims whose product overflows 64 bits.
  rec.clear();
  for (int32_t v : {4, 10, 0, 1 << 30, 1 << 30, 1 << 30, 1 << 30})
    rec.append(reinterpret_cast<char *>(&v), 4);
  rec += "emb.weight";
  EXPECT_FAULT(bin.substr(0, 24) + rec, "overflow.bin", "is not valid");
  // safetensors: header length 2^62.
  std::string st = makeSafeTensors(tinyV4Model());
  uint64_t big = uint64_t(1) << 62;
  std::memcpy(&st[0], &big, 8);
  EXPECT_FAULT(st, "hugeheader.safetensors", "header length");
}

TEST(BadInput, GGMLHeaderFaults) {
  std::string bin = makeGGMLV4(tinyV4Model());
  std::string v = bin;
  int32_t version = 99;
  std::memcpy(&v[4], &version, 4);
  EXPECT_FAULT(v, "v99.bin", "unsupported file version 99");
  std::string t = bin;
  int32_t type = 5;
  std::memcpy(&t[20], &type, 4);
  EXPECT_FAULT(t, "type.bin", "unknown file data type 5");
  std::string q = bin; // a Q5_0 tensor in a version-100 file
  int32_t v100 = 100, q50 = 7;
  std::memcpy(&q[4], &v100, 4);
  std::memcpy(&q[24 + 8], &q50, 4);
  EXPECT_FAULT(q, "old.bin", "file version 100");
}

TEST(BadInput, MissingAndMisShapedTensors) {
  auto spec = tinyV4Model();
  auto missing = spec;
  for (auto it = missing.begin(); it != missing.end(); ++it)
    if (it->name == "blocks.0.att.key.weight") {
      missing.erase(it);
      break;
    }
  EXPECT_FAULT(makeSafeTensors(missing), "missing.safetensors",
               "missing tensor 'blocks.0.att.key.weight'");

  auto misShaped = spec;
  for (TensorSpec &t : misShaped)
    if (t.name == "blocks.0.att.key.weight")
      t.shape = {16, 64};
  EXPECT_FAULT(makeSafeTensors(misShaped), "shape.safetensors",
               "blocks.0.att.key.weight: expected shape (32, 32), found "
               "(16, 64)");

  // A hole in the layer numbering is a missing layer, not a shorter model.
  auto hole = spec;
  hole.push_back({"blocks.2.ln1.weight", {32}, std::vector<float>(32, 1)});
  EXPECT_FAULT(makeSafeTensors(hole), "hole.safetensors",
               "missing tensor 'blocks.1.ln1.weight'");
}

TEST(BadInput, UnknownVersion) {
  std::vector<TensorSpec> spec = {{"emb.weight", {2, 2}, {1, 2, 3, 4}},
                                  {"blocks.0.foo", {2}, {1, 2}}};
  EXPECT_FAULT(makeSafeTensors(spec), "odd.safetensors",
               "unknown RWKV version");
}

TEST(BadInput, SafeTensorsHeaderFaults) {
  auto put = [](const std::string &json) {
    std::string out(8, '\0');
    uint64_t n = json.size();
    std::memcpy(&out[0], &n, 8);
    return out + json + std::string(16, '\0');
  };
  EXPECT_FAULT(put("{\"a\": 1"), "json.safetensors", "bad JSON header");
  EXPECT_FAULT(
      put("{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}"),
      "dtype.safetensors", "unsupported dtype 'I64'");
  EXPECT_FAULT(
      put("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}"),
      "off.safetensors", "runs past the end");
}

} // namespace
