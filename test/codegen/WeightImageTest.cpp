//===- WeightImageTest.cpp - The streaming packer against the old one -----===//
//
// The oracle is the packer rwkvc had before it streamed: each tensor
// expanded to f32 (Tensor::toF32), derived in f32, converted element by
// element with APFloat into an image held whole in memory. packWeights must
// write the same bytes, whatever its threads, and hash them as imageHash
// does. Checked on a crafted layout (every source type, quantized blocks
// cut by segment boundaries, derived and stacked weights, padding) and on
// the layouts of the tiny models through the CPU pipeline.
//
//===----------------------------------------------------------------------===//

#include "codegen/WeightImage.h"
#include "Compiler.h"
#include "codegen/Quantize.h"
#include "frontend/EmbedFile.h"
#include "frontend/Importer.h"
#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Object/ELFObjectFile.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/TargetParser/Triple.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace rwkvc;
using mlir::rwkv::DecayKind;

namespace {

/// The frontend's block format of a quantized image type.
DType blocksOf(mlir::rwkv::QuantType q) {
  return *llvm::StringSwitch<std::optional<DType>>(
              mlir::rwkv::stringifyQuantKind(q.getKind()))
              .Case("q4_0", DType::Q4_0)
              .Case("q4_1", DType::Q4_1)
              .Case("q5_0", DType::Q5_0)
              .Case("q5_1", DType::Q5_1)
              .Case("q8_0", DType::Q8_0)
              .Default(std::nullopt);
}

/// Rows of rwkv.cpp's blocks of `kind` (`rowBlocks` a row) at `image`
/// rearranged as the image stores them (docs/formats.md, "Block rows"):
/// each row in groups of 16 blocks (the last: the rest), a group's d, then
/// (_1) its m, then (5-bit) its fifth bits, each block's in block order,
/// then its code bytes in words of 4: word 0 of each block, then word 1, ...
void splitRows(DType kind, uint8_t *image, uint64_t rows, uint64_t rowBlocks) {
  struct Parts { int d, m, qh, qs, codeBytes; };
  Parts p = kind == DType::Q4_0   ? Parts{0, -1, -1, 2, 16}
            : kind == DType::Q4_1 ? Parts{0, 2, -1, 4, 16}
            : kind == DType::Q5_0 ? Parts{0, -1, 2, 6, 16}
            : kind == DType::Q5_1 ? Parts{0, 2, 4, 8, 16}
                                  : Parts{0, -1, -1, 2, 32};
  uint64_t blockBytes = dtypeStorageBytes(kind, 32);
  std::vector<uint8_t> row(rowBlocks * blockBytes);
  for (uint64_t r = 0; r < rows; ++r) {
    uint8_t *src = image + r * row.size();
    uint8_t *out = row.data();
    for (uint64_t g = 0; g < rowBlocks; g += 16) {
      std::vector<uint8_t> codes, high, d, m;
      uint64_t end = std::min<uint64_t>(g + 16, rowBlocks);
      for (int word = 0; word < p.codeBytes / 4; ++word)
        for (uint64_t blk = g; blk < end; ++blk) {
          const uint8_t *at = src + blk * blockBytes + p.qs + 4 * word;
          codes.insert(codes.end(), at, at + 4);
        }
      for (uint64_t blk = g; blk < end; ++blk) {
        const uint8_t *block = src + blk * blockBytes;
        if (p.qh >= 0)
          high.insert(high.end(), block + p.qh, block + p.qh + 4);
        d.insert(d.end(), block + p.d, block + p.d + 2);
        if (p.m >= 0)
          m.insert(m.end(), block + p.m, block + p.m + 2);
      }
      for (const std::vector<uint8_t> *part : {&d, &m, &high, &codes})
        out = std::copy(part->begin(), part->end(), out);
    }
    std::copy(row.begin(), row.end(), src);
  }
}

/// The packer before streaming, kept as it was, and block-quantized image
/// types: each part's blocks as stored when it has the image's format, else
/// its values quantized whole (quantizeBlocks), then each row split into
/// its parts (splitRows).
std::vector<uint8_t> oraclePack(const ModelLayout &layout,
                                const Checkpoint &ckpt) {
  std::vector<uint8_t> image(layout.weightsBytes, 0);
  for (const WeightEntry &w : layout.weights) {
    std::vector<std::string> sources = w.parts;
    if (sources.empty())
      sources.push_back(w.derive ? w.source : w.name);
    if (auto q = llvm::dyn_cast<mlir::rwkv::QuantType>(
            w.type.getElementType())) {
      DType kind = blocksOf(q);
      uint8_t *dst = image.data() + w.offset;
      for (const std::string &sourceName : sources) {
        const Tensor *t = ckpt.find(sourceName);
        uint64_t bytes = dtypeStorageBytes(kind, t->numElements());
        if (t->dtype == kind)
          std::memcpy(dst, t->data, bytes);
        else
          quantizeBlocks(kind, t->toF32().data(), dst, t->numElements() / 32);
        dst += bytes;
      }
      uint64_t rowBlocks = uint64_t(w.type.getShape().back()) / 32;
      splitRows(kind, image.data() + w.offset,
                w.numElements() / 32 / rowBlocks, rowBlocks);
      continue;
    }
    std::vector<float> values;
    for (const std::string &sourceName : sources) {
      std::vector<float> part = ckpt.find(sourceName)->toF32();
      values.insert(values.end(), part.begin(), part.end());
    }
    if (w.derive)
      for (float &v : values)
        v = evaluateDecay(*w.derive, v);
    uint8_t *dst = image.data() + w.offset;
    mlir::Type e = w.type.getElementType();
    if (e.isF32()) {
      std::memcpy(dst, values.data(), values.size() * 4);
      continue;
    }
    const llvm::fltSemantics &semantics =
        e.isBF16() ? llvm::APFloat::BFloat() : llvm::APFloat::IEEEhalf();
    for (size_t i = 0; i < values.size(); ++i) {
      bool lost;
      llvm::APFloat h(values[i]);
      h.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &lost);
      uint16_t bits = uint16_t(h.bitcastToAPInt().getZExtValue());
      std::memcpy(dst + 2 * i, &bits, 2);
    }
  }
  return image;
}

/// Packs `layout` with `threads` threads into memory; checks the returned
/// hash against imageHash of the bytes.
std::vector<uint8_t> pack(const ModelLayout &layout, const Checkpoint &ckpt,
                          unsigned threads) {
  MemoryImageSink sink(layout.weightsBytes);
  PackOptions options;
  options.threads = threads;
  uint64_t lastDone = 0;
  options.progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GT(done, lastDone);
    EXPECT_EQ(total, uint64_t(layout.weightsBytes));
    lastDone = done;
  };
  auto hash = packWeights(layout, ckpt, sink, options);
  if (!hash) {
    ADD_FAILURE() << llvm::toString(hash.takeError());
    return {};
  }
  EXPECT_EQ(lastDone, uint64_t(layout.weightsBytes));
  EXPECT_EQ(*hash, imageHash(sink.bytes));
  return std::move(sink.bytes);
}

/// The first differing byte, for a readable failure.
std::string firstDifference(const ModelLayout &layout,
                            const std::vector<uint8_t> &a,
                            const std::vector<uint8_t> &b) {
  if (a.size() != b.size())
    return "sizes " + std::to_string(a.size()) + " and " +
           std::to_string(b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == b[i])
      continue;
    std::string where = "padding";
    for (const WeightEntry &w : layout.weights)
      if (i >= uint64_t(w.offset) && i < w.offset + w.bytes())
        where = w.name + " byte " + std::to_string(i - w.offset);
    return "byte " + std::to_string(i) + " (" + where + "): " +
           std::to_string(a[i]) + " vs " + std::to_string(b[i]);
  }
  return "none";
}

//===----------------------------------------------------------------------===//
// A crafted layout
//===----------------------------------------------------------------------===//

class CraftedImage : public ::testing::Test {
protected:
  CraftedImage() {
    context.loadDialect<mlir::rwkv::RWKVDialect>();
    ckpt.path = "crafted.safetensors";
  }

  /// A checkpoint tensor of `n` elements of `dtype` (a multiple of 32 for
  /// quantized types) with random bits, and some special values.
  void addTensor(const std::string &name, DType dtype, uint64_t n) {
    uint64_t bytes = dtypeStorageBytes(dtype, n);
    uint8_t *data = ckpt.allocate(bytes);
    for (uint64_t i = 0; i < bytes; ++i)
      data[i] = uint8_t(rng());
    // Values a float type would hold: random, but of a moderate exponent
    // mostly (random bits are NaN or huge too often), with the specials.
    if (dtype == DType::F32) {
      std::normal_distribution<float> normal(0.0f, 2.0f);
      for (uint64_t i = 0; i < n; ++i) {
        float v = normal(rng);
        std::memcpy(data + 4 * i, &v, 4);
      }
      const uint32_t special[] = {0x7f800001, 0xffc12345, 0x7f800000,
                                  0x00000003, 0x477ff000, 0x33000000,
                                  0x387ff000, 0x80000000, 0x7f7fffff};
      for (size_t i = 0; i < std::size(special) && i < n; ++i)
        std::memcpy(data + 4 * (i * 7 % n), &special[i], 4);
    } else if (dtype == DType::F16 || dtype == DType::BF16) {
      const uint16_t special[] = {0x7c01, 0xfe00, 0x7c00, 0x0001,
                                  0x7f81, 0xffc0, 0x7f80, 0x8000};
      for (size_t i = 0; i < std::size(special) && i < n; ++i)
        std::memcpy(data + 2 * (i * 5 % n), &special[i], 2);
    }
    Tensor t;
    t.name = name;
    t.dtype = dtype;
    t.shape = {int64_t(n)};
    t.data = data;
    t.nbytes = bytes;
    ckpt.tensors.push_back(std::move(t));
  }

  /// A weight of `n` elements of `type` at the next offset (64-aligned,
  /// `gap` bytes after the previous one, or at `at` if later).
  WeightEntry &addWeight(const std::string &name, mlir::Type type, uint64_t n,
                         uint64_t gap = 0, uint64_t at = 0) {
    WeightEntry w;
    w.name = name;
    w.type = mlir::RankedTensorType::get({int64_t(n)}, type);
    w.offset = int64_t(std::max(llvm::alignTo(end + gap, 64), at));
    end = w.offset + w.bytes();
    layout.weights.push_back(std::move(w));
    return layout.weights.back();
  }

  void finish(uint64_t tail) { layout.weightsBytes = int64_t(end + tail); }

  mlir::MLIRContext context;
  mlir::Builder b{&context};
  Checkpoint ckpt;
  ModelLayout layout;
  uint64_t end = 0;
  std::mt19937_64 rng{7};
};

TEST_F(CraftedImage, EqualsTheOldPackerWithAnyThreads) {
  constexpr uint64_t MiB = 1 << 20;
  mlir::Type f32 = b.getF32Type(), f16 = b.getF16Type(),
             bf16 = b.getBF16Type();
  // A large matrix across two segment boundaries, at an odd element.
  addTensor("big", DType::F32, 1531 * 2011);
  addWeight("big", f16, 1531 * 2011, 4);
  // Every float source to every image type, copies included.
  for (auto [src, srcName] : {std::pair{DType::F32, "f32"},
                              std::pair{DType::F16, "f16"},
                              std::pair{DType::BF16, "bf16"}})
    for (auto [dst, dstName] :
         {std::pair{f32, "f32"}, std::pair{f16, "f16"}, std::pair{bf16, "bf16"}}) {
      std::string name = std::string(srcName) + "_to_" + dstName;
      addTensor(name, src, 3001);
      addWeight(name, dst, 3001, 100);
    }
  // Quantized sources, one across a segment boundary 1000 elements in (not
  // a whole block).
  int i = 0;
  for (DType q : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0}) {
    for (mlir::Type dst : {f32, f16, bf16}) {
      std::string name = "q" + std::to_string(i++);
      addTensor(name, q, 32 * 190);
      addWeight(name, dst, 32 * 190, 0, i == 1 ? 8 * MiB - 4000 : 0);
    }
  }
  // Derived weights of each kind, from f32 and f16 sources.
  for (DecayKind kind : {DecayKind::neg_exp, DecayKind::exp_neg_exp,
                         DecayKind::exp_neg_sigmoid, DecayKind::exp}) {
    for (auto [src, dst] : {std::pair{DType::F32, f32},
                            std::pair{DType::F16, f16}}) {
      std::string name = "decay" + std::to_string(i++);
      addTensor(name + ".src", src, 777);
      WeightEntry &w = addWeight(name, dst, 777, 1000);
      w.derive = kind;
      w.source = name + ".src";
    }
  }
  // A stack of three parts of different types.
  addTensor("part0", DType::F32, 4096);
  addTensor("part1", DType::F16, 2048);
  addTensor("part2", DType::Q8_0, 1024);
  WeightEntry &stack = addWeight("stack", bf16, 4096 + 2048 + 1024);
  stack.parts = {"part0", "part1", "part2"};
  // Block-quantized images: every float source quantized, the same format
  // copied, another requantized; the first across the 16 MiB segment
  // boundary with a block cut 10 bytes in, a q8_0 copy across the 20 MiB
  // one (in a row of 30 blocks); a stack of a copied and a quantized part
  // (two rows each).
  i = 0;
  for (DType q : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0}) {
    mlir::Type dst = mlir::rwkv::QuantType::get(
        &context, *mlir::rwkv::symbolizeQuantKind(dtypeName(q)));
    for (DType src : {DType::F32, DType::F16, DType::BF16, q,
                      q == DType::Q8_0 ? DType::Q4_1 : DType::Q8_0}) {
      std::string name = "to_" + dtypeName(q).str() + "_" + std::to_string(i++);
      uint64_t blockBytes = dtypeStorageBytes(q, 32);
      addTensor(name, src, 32 * 300);
      // Rows of 30 blocks, but for the first two (one row of 300).
      addWeight(name, dst, 32 * 300, 0,
                i == 1   ? 16 * MiB - 10 - 7 * blockBytes
                : i == 24 ? 20 * MiB - 1000
                          : 0)
          .type = mlir::RankedTensorType::get(
          i <= 2 ? llvm::ArrayRef<int64_t>{32 * 300}
                 : llvm::ArrayRef<int64_t>{10, 32 * 30},
          dst);
    }
  }
  addTensor("qpart0", DType::Q5_1, 32 * 64);
  addTensor("qpart1", DType::F32, 32 * 64);
  WeightEntry &qstack = addWeight(
      "qstack", mlir::rwkv::QuantType::get(&context, mlir::rwkv::QuantKind::q5_1),
      32 * 128);
  qstack.type = mlir::RankedTensorType::get({4, 32 * 32}, qstack.type.getElementType());
  qstack.parts = {"qpart0", "qpart1"};
  finish(/*tail=*/5000);
  ASSERT_GT(layout.weightsBytes, int64_t(20 * MiB));

  std::vector<uint8_t> want = oraclePack(layout, ckpt);
  for (unsigned threads : {1u, 2u, 5u}) {
    SCOPED_TRACE(threads);
    std::vector<uint8_t> got = pack(layout, ckpt, threads);
    EXPECT_TRUE(got == want) << firstDifference(layout, got, want);
  }
}

TEST_F(CraftedImage, DecodesAnyRangeOfQuantizedBlocks) {
  for (DType q : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                  DType::Q8_0, DType::F16, DType::BF16, DType::F32}) {
    addTensor(std::string(dtypeName(q)), q, 32 * 5);
    const Tensor &t = ckpt.tensors.back();
    std::vector<float> all = t.toF32();
    for (auto [first, count] : {std::pair{0, 160}, std::pair{5, 20},
                                std::pair{31, 2}, std::pair{17, 120},
                                std::pair{64, 32}, std::pair{159, 1}}) {
      std::vector<float> part(count);
      t.decodeF32(first, count, part.data());
      EXPECT_EQ(0, std::memcmp(part.data(), all.data() + first, count * 4))
          << dtypeName(q).str() << " [" << first << ", +" << count << ")";
    }
  }
}

TEST_F(CraftedImage, ErrorsNameTheWeight) {
  mlir::Type f32 = b.getF32Type();
  addTensor("a", DType::F32, 100);
  addWeight("a", f32, 100);
  WeightEntry &missing = addWeight("b", f32, 10);
  finish(0);
  DiscardImageSink sink;
  auto r = packWeights(layout, ckpt, sink);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()), "crafted.safetensors: tensor 'b' is missing");

  addTensor("b", DType::F32, 11);
  r = packWeights(layout, ckpt, sink);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()),
            "crafted.safetensors: tensor 'b' has 11 elements, the layout expects 10");

  ckpt.tensors.back().shape = {10};
  missing.offset = 200; // overlaps a (0..400)
  r = packWeights(layout, ckpt, sink);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()),
            "weights 'a' and 'b' overlap in the image");

  missing.offset = layout.weightsBytes - 8;
  r = packWeights(layout, ckpt, sink);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()),
            "weight 'b' lies outside the image or is misaligned");
}

/// A sink that fails on the segment at 4 MiB.
class FailingSink : public ImageSink {
public:
  llvm::Error write(uint64_t offset, llvm::ArrayRef<uint8_t>) override {
    if (offset == kImageSegmentBytes)
      return llvm::createStringError("disk full");
    return llvm::Error::success();
  }
};

TEST_F(CraftedImage, SinkErrorsStopThePacking) {
  addTensor("big", DType::F32, 3 << 20);
  addWeight("big", b.getF32Type(), 3 << 20);
  finish(0);
  FailingSink sink;
  PackOptions options;
  options.threads = 3;
  auto r = packWeights(layout, ckpt, sink, options);
  ASSERT_FALSE(bool(r));
  EXPECT_EQ(llvm::toString(r.takeError()), "disk full");
}

TEST(ImageHash, CoversEveryByte) {
  std::vector<uint8_t> image(kImageSegmentBytes * 2 + 100, 0);
  uint64_t h = imageHash(image);
  image[kImageSegmentBytes + 17] = 1; // padding counts too
  EXPECT_NE(imageHash(image), h);
  image[kImageSegmentBytes + 17] = 0;
  EXPECT_EQ(imageHash(image), h);
  image.push_back(0); // so does the size
  EXPECT_NE(imageHash(image), h);
}

//===----------------------------------------------------------------------===//
// The object that embeds an image
//===----------------------------------------------------------------------===//

TEST(BlobObject, DefinesTheSymbolsOverTheData) {
  for (bool large : {false, true}) {
    llvm::Triple triple("x86_64-pc-linux-gnu");
    auto object = blobObject("rwkv_weights_blob", 1000, 4096, triple, large);
    ASSERT_TRUE(bool(object)) << llvm::toString(object.takeError());
    EXPECT_EQ(object->dataOffset % 4096, 0u);
    std::string bytes(object->head.begin(), object->head.end());
    for (int i = 0; i < 1000; ++i)
      bytes += char(i * 7);
    bytes.append(object->tail.begin(), object->tail.end());
    auto obj = llvm::object::ObjectFile::createObjectFile(
        llvm::MemoryBufferRef(bytes, "weights.o"));
    ASSERT_TRUE(bool(obj)) << llvm::toString(obj.takeError());
    EXPECT_EQ((*obj)->getArch(), llvm::Triple::x86_64);
    std::map<std::string, std::pair<std::string, uint64_t>> symbols;
    for (const llvm::object::SymbolRef &s : (*obj)->symbols()) {
      auto name = s.getName();
      auto section = s.getSection();
      ASSERT_TRUE(name && section);
      auto sectionName = (*section)->getName();
      auto contents = (*section)->getContents();
      ASSERT_TRUE(sectionName && contents);
      symbols[name->str()] = {sectionName->str(), contents->size()};
      if (*name == "rwkv_weights_blob") {
        EXPECT_EQ((*section)->getAlignment().value(), 4096u);
        EXPECT_EQ(contents->size(), 1000u);
        EXPECT_EQ(uint8_t((*contents)[999]), uint8_t(999 * 7));
        EXPECT_EQ(llvm::object::ELFSectionRef(**section).getFlags() &
                      llvm::ELF::SHF_X86_64_LARGE,
                  large ? uint64_t(llvm::ELF::SHF_X86_64_LARGE) : 0u);
      } else {
        uint64_t size;
        std::memcpy(&size, contents->data(), 8);
        EXPECT_EQ(size, 1000u);
      }
    }
    EXPECT_EQ(symbols["rwkv_weights_blob"].first,
              large ? ".lrodata.rwkv_weights_blob" : ".rodata.rwkv_weights_blob");
    EXPECT_EQ(symbols["rwkv_weights_blob_size"].first,
              ".rodata.rwkv_weights_blob_size");
  }
  llvm::Triple arm("aarch64-linux-gnu");
  EXPECT_TRUE(bool(blobObject("x", 10, 64, arm, /*large=*/false)));
  auto large = blobObject("x", 10, 64, arm, /*large=*/true);
  ASSERT_FALSE(bool(large));
  EXPECT_EQ(llvm::toString(large.takeError()),
            "cannot embed 10 bytes in an object for aarch64-linux-gnu: above "
            "2 GiB only x86-64's large-data section keeps code-to-data "
            "references in range");
  auto mac = blobObject("x", 10, 64, llvm::Triple("x86_64-apple-darwin"), false);
  ASSERT_FALSE(bool(mac));
  EXPECT_EQ(llvm::toString(mac.takeError()),
            "cannot embed data in an object for x86_64-apple-darwin (only "
            "x86-64 and AArch64 ELF objects are written)");
}

//===----------------------------------------------------------------------===//
// The tiny models through the CPU pipeline
//===----------------------------------------------------------------------===//

class TinyModelImages
    : public ::testing::TestWithParam<std::pair<const char *, const char *>> {
};

TEST_P(TinyModelImages, EqualTheOldPacker) {
  auto [file, weightType] = GetParam();
  std::string path = std::string(RWKVC_SHARED_DIR) + "/models/tiny/" + file;
  if (llvm::StringRef(file).starts_with("examples/"))
    path = std::string(RWKVC_SOURCE_DIR) + "/" + file;
  if (!llvm::sys::fs::exists(path))
    GTEST_SKIP() << path << " not found (set RWKVC_SHARED_DIR)";
  static const bool registered = (registerBuiltinTargets(), true);
  (void)registered;
  auto model = readModel(path);
  ASSERT_TRUE(bool(model)) << llvm::toString(model.takeError());
  mlir::MLIRContext context;
  context.loadDialect<mlir::rwkv::RWKVDialect, mlir::func::FuncDialect>();
  auto module = importModel(context, *model->checkpoint, model->info, {});
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  auto target = TargetRegistry::lookup("cpu");
  ASSERT_TRUE(bool(target));
  mlir::rwkv::WeightType type =
      *mlir::rwkv::symbolizeWeightType(weightType);
  ASSERT_TRUE(mlir::succeeded(runPipeline(
      **module, *target, {true, type}, PipelineStop::Lowered,
      [](mlir::PassManager &) { return mlir::success(); })));
  auto layout = readModelLayout(**module);
  ASSERT_TRUE(bool(layout)) << llvm::toString(layout.takeError());
  std::vector<uint8_t> want = oraclePack(*layout, *model->checkpoint);
  std::vector<uint8_t> got = pack(*layout, *model->checkpoint, 2);
  EXPECT_TRUE(got == want) << firstDifference(*layout, got, want);
}

INSTANTIATE_TEST_SUITE_P(
    , TinyModelImages,
    ::testing::Values(
        std::pair{"examples/rwkvc-tiny.pth", "keep"},
        std::pair{"tiny-rwkv-4v0-660K.pth", "f16"},
        std::pair{"tiny-rwkv-4v0-660K-Q5_1.bin", "keep"},
        std::pair{"tiny-rwkv-4v0-660K-Q5_1.bin", "q8_0"},
        std::pair{"tiny-rwkv-5v1-730K.pth", "q4_0"},
        std::pair{"tiny-rwkv-7v0-834K-Q5_0.bin", "keep"},
        std::pair{"tiny-rwkv-7v0-834K-FP16.bin", "q5_1"},
        std::pair{"tiny-rwkv-5v2-730K-bf16.pth", "f16"},
        std::pair{"tiny-rwkv-6v0-1m-FP16.bin", "bf16"},
        std::pair{"tiny-rwkv-6v0-1m-Q5_0.bin", "f16"},
        std::pair{"tiny-rwkv-7v0-834K.safetensors", "bf16"},
        std::pair{"tiny-rwkv-7v0-834K-bf16.pth", "keep"}));

} // namespace
