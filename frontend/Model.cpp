//===- Model.cpp - RWKV version detection and tensor checks ---------------===//
//
// describeModel: detect the version from tensor names (spec "Numerics"),
// infer the hyper-parameters from a few tensors, then build the full list of
// tensors the version needs (name, shape, whether quantized storage is
// allowed) and check the checkpoint against it. Tensors outside the list are
// reported as extras; blocks.i.att.time_state is recognised.
//
//===----------------------------------------------------------------------===//

#include "frontend/Model.h"
#include "frontend/ReaderSupport.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace llvm;
using namespace rwkvc::detail;

namespace rwkvc {

StringRef versionName(Version v) {
  switch (v) {
  case Version::V4:
    return "4";
  case Version::V5_0:
    return "5.0";
  case Version::V5_1:
    return "5.1";
  case Version::V5_2:
    return "5.2";
  case Version::V6:
    return "6";
  case Version::V7:
    return "7";
  }
  llvm_unreachable("bad Version");
}

std::string layerTensorName(int64_t i, StringRef suffix) {
  return ("blocks." + Twine(i) + "." + suffix).str();
}

namespace {

/// One tensor the version needs.
struct Expected_ {
  std::string name;
  SmallVector<int64_t, 4> shape;
  bool matrix; // a weight matrix: quantized storage is allowed
};

/// NaN and Inf counts of IEEE values of `Bits` (little-endian) whose
/// exponent field is `expMask` and mantissa `manMask`: branch-free, so that
/// the compiler vectorizes the scan (it reads every weight of the model).
template <typename Bits>
std::pair<uint64_t, uint64_t> countNonFiniteBits(const uint8_t *data,
                                                 uint64_t n, Bits expMask,
                                                 Bits manMask) {
  uint64_t nan = 0, special = 0;
  for (uint64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, data + sizeof(Bits) * i, sizeof(Bits));
    bool isSpecial = (b & expMask) == expMask;
    special += isSpecial;
    nan += isSpecial & ((b & manMask) != 0);
  }
  return {nan, special - nan};
}

} // namespace

std::pair<uint64_t, uint64_t> countNonFinite(const Tensor &t, uint64_t first,
                                             uint64_t count) {
  static_assert(llvm::endianness::native == llvm::endianness::little,
                "the scan reads little-endian values in place");
  switch (t.dtype) {
  case DType::F32:
    return countNonFiniteBits<uint32_t>(t.data + 4 * first, count, 0x7f800000,
                                        0x7fffff);
  case DType::F16:
    return countNonFiniteBits<uint16_t>(t.data + 2 * first, count, 0x7c00,
                                        0x3ff);
  case DType::BF16:
    return countNonFiniteBits<uint16_t>(t.data + 2 * first, count, 0x7f80,
                                        0x7f);
  default:
    break;
  }
  // Quantized: dequantized a few thousand blocks at a time.
  uint64_t nan = 0, inf = 0;
  std::vector<float> chunk(std::min<uint64_t>(count, 1 << 16));
  for (uint64_t i = 0; i < count; i += chunk.size()) {
    uint64_t k = std::min<uint64_t>(chunk.size(), count - i);
    t.decodeF32(first + i, k, chunk.data());
    for (uint64_t j = 0; j < k; ++j) {
      nan += std::isnan(chunk[j]);
      inf += std::isinf(chunk[j]);
    }
  }
  return {nan, inf};
}

namespace {

class Describer {
public:
  Describer(const Checkpoint &ck, bool scan) : ck(ck), scan(scan) {
    for (const Tensor &t : ck.tensors)
      byName.try_emplace(t.name, &t);
  }
  llvm::Expected<ModelInfo> run();

private:
  Error fail(const Twine &why) { return fileError(ck.path, why); }
  /// The tensor `name`, which must exist with `rank` dimensions.
  llvm::Expected<const Tensor *> get(StringRef name, size_t rank) {
    auto it = byName.find(name);
    if (it == byName.end())
      return fail("missing tensor '" + name + "'" + versionSuffix());
    if (it->second->shape.size() != rank)
      return fail(name + ": expected " + Twine(rank) + " dimensions, found " +
                  shapeString(it->second->shape));
    return it->second;
  }
  std::string versionSuffix() const {
    return haveVersion ? (" (RWKV-" + versionName(info.version) + ")").str()
                       : std::string();
  }
  Error detectVersion();
  Error inferSizes();
  std::vector<Expected_> expectedTensors() const;
  Error checkTensors();
  void scanValues();

  const Checkpoint &ck;
  bool scan; // count NaN and Inf values (reads every weight)
  StringMap<const Tensor *> byName;
  ModelInfo info;
  bool haveVersion = false;
};

Error Describer::detectVersion() {
  for (const Tensor &t : ck.tensors)
    if (!byName.count(t.name) || byName[t.name] != &t)
      return fail("tensor '" + t.name + "' appears twice");
  auto has = [&](StringRef suffix) {
    return byName.count(layerTensorName(0, suffix)) != 0;
  };
  if (has("att.k_k")) {
    info.version = Version::V7;
  } else if (has("att.time_maa_x")) {
    info.version = Version::V6;
  } else if (has("att.ln_x.weight")) {
    auto it = byName.find(layerTensorName(0, "att.time_decay"));
    if (it != byName.end() && it->second->shape.size() == 2)
      info.version = Version::V5_2;
    else if (has("att.gate.weight"))
      info.version = Version::V5_1;
    else
      info.version = Version::V5_0;
  } else if (has("att.time_decay")) {
    info.version = Version::V4;
  } else {
    return fail("unknown RWKV version: no blocks.0.att.{k_k, time_maa_x, "
                "ln_x.weight, time_decay} tensor (not an RWKV checkpoint?)");
  }
  haveVersion = true;
  return Error::success();
}

Error Describer::inferSizes() {
  auto emb = get("emb.weight", 2);
  if (!emb)
    return emb.takeError();
  info.vocab = (*emb)->shape[0];
  info.nEmbd = (*emb)->shape[1];

  // Layers: one more than the highest block index named anywhere, so that
  // a hole in the numbering is a missing tensor, not a shorter model.
  int64_t maxBlock = -1;
  for (const Tensor &t : ck.tensors) {
    StringRef rest = t.name;
    if (!rest.consume_front("blocks."))
      continue;
    int64_t i;
    if (!rest.consumeInteger(10, i) && rest.starts_with(".") && i >= 0 &&
        i < (int64_t(1) << 20))
      maxBlock = std::max(maxBlock, i);
  }
  info.nLayer = maxBlock + 1;
  if (info.nLayer == 0)
    return fail("no blocks.<i>.* tensors");
  // Stops at the first hole, at most one past the number of tensors.
  for (int64_t i = 0; i < info.nLayer; ++i)
    if (!byName.count(layerTensorName(i, "ln1.weight")))
      return fail("missing tensor '" + layerTensorName(i, "ln1.weight") + "'" +
                  versionSuffix());

  auto ffn = get(layerTensorName(0, "ffn.key.weight"), 2);
  if (!ffn)
    return ffn.takeError();
  info.ffn = (*ffn)->shape[0];

  const Tensor *heads = nullptr;
  switch (info.version) {
  case Version::V4:
    return Error::success();
  case Version::V5_0:
  case Version::V5_1:
  case Version::V5_2: {
    bool twoD = info.version == Version::V5_2;
    auto d = get(layerTensorName(0, "att.time_decay"), twoD ? 2 : 1);
    if (!d)
      return d.takeError();
    heads = *d;
    info.bonusIsTimeFirst =
        byName.count(layerTensorName(0, "att.time_first")) != 0;
    break;
  }
  case Version::V6: {
    auto u = get(layerTensorName(0, "att.time_faaaa"), 2);
    if (!u)
      return u.takeError();
    heads = *u;
    auto w1 = get(layerTensorName(0, "att.time_maa_w1"), 2);
    if (!w1)
      return w1.takeError();
    if ((*w1)->shape[1] % 5)
      return fail(layerTensorName(0, "att.time_maa_w1") + ": width " +
                  Twine((*w1)->shape[1]) + " is not a multiple of 5");
    info.loraMix = (*w1)->shape[1] / 5;
    auto dw1 = get(layerTensorName(0, "att.time_decay_w1"), 2);
    if (!dw1)
      return dw1.takeError();
    info.loraDecay = (*dw1)->shape[1];
    break;
  }
  case Version::V7: {
    auto rk = get(layerTensorName(0, "att.r_k"), 2);
    if (!rk)
      return rk.takeError();
    heads = *rk;
    for (auto [suffix, field] :
         {std::pair<const char *, int64_t *>{"att.w1", &info.loraDecay},
          {"att.a1", &info.loraA},
          {"att.g1", &info.loraG}}) {
      auto t = get(layerTensorName(0, suffix), 2);
      if (!t)
        return t.takeError();
      *field = (*t)->shape[1];
    }
    info.v7LayerZeroHasV = byName.count(layerTensorName(0, "att.v1")) != 0;
    int64_t vLayer = info.nLayer > 1 ? 1 : 0;
    if (vLayer == 1 || info.v7LayerZeroHasV) {
      auto v1 = get(layerTensorName(vLayer, "att.v1"), 2);
      if (!v1)
        return v1.takeError();
      info.loraV = (*v1)->shape[1];
    }
    break;
  }
  }
  info.nHead = heads->shape[0];
  if (heads->shape.size() == 2) {
    info.headSize = heads->shape[1];
  } else if (info.nHead > 0 && info.nEmbd % info.nHead == 0) {
    info.headSize = info.nEmbd / info.nHead;
  }
  if (info.nHead <= 0 || info.headSize <= 0 ||
      mulChecked(info.nHead, info.headSize) != uint64_t(info.nEmbd))
    return fail(heads->name + ": shape " + shapeString(heads->shape) +
                " does not split n_embd " + Twine(info.nEmbd) + " into heads");
  return Error::success();
}

std::vector<Expected_> Describer::expectedTensors() const {
  const int64_t C = info.nEmbd, V = info.vocab, F = info.ffn, H = info.nHead,
                N = info.headSize;
  std::vector<Expected_> out;
  auto add = [&](std::string name, std::initializer_list<int64_t> shape,
                 bool matrix = false) {
    out.push_back({std::move(name), SmallVector<int64_t, 4>(shape), matrix});
  };
  add("emb.weight", {V, C}, true);
  for (int64_t i = 0; i < info.nLayer; ++i) {
    auto L = [&](StringRef s) { return layerTensorName(i, s); };
    auto vec = [&](StringRef s) { add(L(s), {1, 1, C}); };
    auto mat = [&](StringRef s, int64_t rows, int64_t cols) {
      add(L(s), {rows, cols}, true);
    };
    for (const char *s : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"})
      add(L(s), {C});
    if (i == 0) {
      add(L("ln0.weight"), {C});
      add(L("ln0.bias"), {C});
    }
    for (const char *s : {"att.key.weight", "att.value.weight",
                          "att.receptance.weight", "att.output.weight"})
      mat(s, C, C);
    mat("ffn.key.weight", F, C);
    mat("ffn.value.weight", C, F);
    if (info.version != Version::V4) {
      add(L("att.ln_x.weight"), {C});
      add(L("att.ln_x.bias"), {C});
    }
    switch (info.version) {
    case Version::V4:
      add(L("att.time_decay"), {C});
      add(L("att.time_first"), {C});
      for (const char *s :
           {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
            "ffn.time_mix_k", "ffn.time_mix_r"})
        vec(s);
      mat("ffn.receptance.weight", C, C);
      break;
    case Version::V5_0:
    case Version::V5_1:
    case Version::V5_2: {
      bool perChannel = info.version == Version::V5_2;
      const char *bonus =
          info.bonusIsTimeFirst ? "att.time_first" : "att.time_faaaa";
      for (const char *s : {"att.time_decay", bonus}) {
        if (perChannel)
          add(L(s), {H, N});
        else
          add(L(s), {H});
      }
      for (const char *s :
           {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
            "ffn.time_mix_k", "ffn.time_mix_r"})
        vec(s);
      if (info.version != Version::V5_0) {
        vec("att.time_mix_g");
        mat("att.gate.weight", C, C);
      }
      mat("ffn.receptance.weight", C, C);
      break;
    }
    case Version::V6:
      for (const char *s :
           {"att.time_maa_x", "att.time_maa_w", "att.time_maa_k",
            "att.time_maa_v", "att.time_maa_r", "att.time_maa_g",
            "att.time_decay", "ffn.time_maa_k", "ffn.time_maa_r"})
        vec(s);
      mat("att.time_maa_w1", C, 5 * info.loraMix);
      add(L("att.time_maa_w2"), {5, info.loraMix, C});
      mat("att.time_decay_w1", C, info.loraDecay);
      mat("att.time_decay_w2", info.loraDecay, C);
      add(L("att.time_faaaa"), {H, N});
      mat("att.gate.weight", C, C);
      mat("ffn.receptance.weight", C, C);
      break;
    case Version::V7: {
      for (const char *s :
           {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
            "att.w0", "att.a0", "att.k_k", "att.k_a", "ffn.x_k"})
        vec(s);
      add(L("att.r_k"), {H, N});
      std::vector<std::pair<const char *, int64_t>> loras = {
          {"w", info.loraDecay}, {"a", info.loraA}, {"g", info.loraG}};
      if (i > 0 || info.v7LayerZeroHasV) {
        loras.push_back({"v", info.loraV});
        vec("att.v0");
      }
      for (auto [x, d] : loras) {
        mat((Twine("att.") + x + "1").str(), C, d);
        mat((Twine("att.") + x + "2").str(), d, C);
      }
      break;
    }
    }
  }
  add("ln_out.weight", {C});
  add("ln_out.bias", {C});
  add("head.weight", {V, C}, true);
  return out;
}

Error Describer::checkTensors() {
  StringSet<> expectedNames;
  for (const Expected_ &e : expectedTensors()) {
    expectedNames.insert(e.name);
    auto it = byName.find(e.name);
    if (it == byName.end())
      return fail("missing tensor '" + e.name + "'" + versionSuffix());
    const Tensor &t = *it->second;
    if (ArrayRef<int64_t>(t.shape) != ArrayRef<int64_t>(e.shape))
      return fail(e.name + ": expected shape " + shapeString(e.shape) +
                  ", found " + shapeString(t.shape));
    if (isQuantized(t.dtype) && !e.matrix)
      return fail(e.name + ": element type " + dtypeName(t.dtype) +
                  " is not allowed here (f32, f16 or bf16 needed)");
  }
  int64_t stateLayers = 0;
  for (const Tensor &t : ck.tensors) {
    if (expectedNames.count(t.name))
      continue;
    StringRef rest = t.name;
    int64_t layer;
    if (info.version != Version::V4 && rest.consume_front("blocks.") &&
        !rest.consumeInteger(10, layer) && rest == ".att.time_state") {
      SmallVector<int64_t, 4> want = {info.nHead, info.headSize, info.headSize};
      if (ArrayRef<int64_t>(t.shape) != ArrayRef<int64_t>(want))
        return fail(t.name + ": expected shape " + shapeString(want) +
                    ", found " + shapeString(t.shape));
      if (isQuantized(t.dtype))
        return fail(t.name + ": element type " + dtypeName(t.dtype) +
                    " is not allowed here (f32, f16 or bf16 needed)");
      info.hasTimeState = true;
      ++stateLayers;
      continue;
    }
    info.extraTensors.push_back(t.name);
  }
  if (info.hasTimeState) {
    std::string msg =
        formatv("att.time_state present in {0} of {1} layers (state-tuned "
                "initial state S)",
                stateLayers, info.nLayer);
    if (info.version == Version::V7)
      msg += "; interpreted in RWKV-7's own [value i][key j] order (no "
             "reference implementation reads it)";
    else
      msg += "; stored [head][value i][key j], the transpose of S[j][i]";
    info.anomalies.push_back(msg);
  }
  if (info.v7LayerZeroHasV)
    info.anomalies.push_back("blocks.0.att.v0/v1/v2 present but unused "
                             "(layer 0 has no value residual)");
  for (const std::string &x : info.extraTensors)
    info.anomalies.push_back("extra tensor '" + x + "' is not used by RWKV-" +
                             versionName(info.version).str());
  return Error::success();
}

void Describer::scanValues() {
  uint64_t bytes[8] = {};
  for (const Tensor &t : ck.tensors) {
    info.parameterCount += t.numElements();
    bytes[unsigned(t.dtype)] += t.nbytes;
    if (!scan)
      continue;
    auto [nan, inf] = countNonFinite(t, 0, t.numElements());
    ck.releasePages(t.data, t.nbytes); // the packer reads it again, later
    if (nan + inf) {
      info.nonFiniteValues += nan + inf;
      info.anomalies.push_back(
          formatv("{0}: {1} NaN and {2} Inf values", t.name, nan, inf));
    }
  }
  for (unsigned i = 0; i < 8; ++i)
    if (bytes[i])
      info.bytesByType.emplace_back(dtypeName(DType(i)).str(), bytes[i]);
}

llvm::Expected<ModelInfo> Describer::run() {
  if (Error e = detectVersion())
    return std::move(e);
  if (Error e = inferSizes())
    return std::move(e);
  if (Error e = checkTensors())
    return std::move(e);
  scanValues();
  return info;
}

} // namespace

llvm::Expected<ModelInfo> describeModel(const Checkpoint &ckpt,
                                        bool scanValues) {
  return Describer(ckpt, scanValues).run();
}

} // namespace rwkvc
