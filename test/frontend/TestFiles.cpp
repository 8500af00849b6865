//===- TestFiles.cpp - Crafted checkpoint files for the frontend tests ----===//

#include "TestFiles.h"

#include <zip.h>

#include <cmath>
#include <cstring>
#include <initializer_list>

namespace rwkvc::testing {

namespace {

struct ModelBuilder {
  std::vector<TensorSpec> out;
  uint32_t seed = 1;
  void add(std::string name, std::initializer_list<int64_t> shape,
           float scale = 0.5f, float bias = 0.0f) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    TensorSpec t{std::move(name), shape, {}};
    for (int64_t i = 0; i < n; ++i) {
      seed = seed * 1664525u + 1013904223u;
      t.values.push_back(bias +
                         scale * (float(seed >> 8) / float(1 << 24) - 0.5f));
    }
    out.push_back(std::move(t));
  }
  static std::string L(int i, const char *s) {
    return "blocks." + std::to_string(i) + "." + s;
  }
  void common(int layers, int64_t C, int64_t F, int64_t V, bool v4ffn) {
    (void)v4ffn;
    add("emb.weight", {V, C});
    for (int i = 0; i < layers; ++i) {
      for (const char *s : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias"})
        add(L(i, s), {C});
      if (i == 0) {
        add(L(i, "ln0.weight"), {C});
        add(L(i, "ln0.bias"), {C});
      }
      for (const char *s : {"att.key.weight", "att.value.weight",
                            "att.receptance.weight", "att.output.weight"})
        add(L(i, s), {C, C});
      add(L(i, "ffn.key.weight"), {F, C});
      add(L(i, "ffn.value.weight"), {C, F});
    }
    add("ln_out.weight", {C});
    add("ln_out.bias", {C});
    add("head.weight", {V, C});
  }
};

void appendU32(std::string &s, uint32_t v) {
  s.append(reinterpret_cast<char *>(&v), 4);
}
void appendI32(std::string &s, int32_t v) {
  s.append(reinterpret_cast<char *>(&v), 4);
}

uint16_t toHalf(float f) {
  // Round-to-nearest-even for normal values; enough for test data.
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t man = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff)
    return uint16_t(sign | 0x7c00 | (man ? 0x200 : 0));
  if (exp <= 0)
    return uint16_t(sign); // flush tiny values to zero
  if (exp >= 31)
    return uint16_t(sign | 0x7c00);
  uint32_t h = sign | (uint32_t(exp) << 10) | (man >> 13);
  uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;
  return uint16_t(h);
}

uint16_t toBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

std::string storageBytes(const TensorSpec &t, DType dtype, bool transpose) {
  std::vector<float> v = t.values;
  if (transpose) { // store (R, C) column-major: element (r, c) at c * R + r
    int64_t R = t.shape[0], C = t.shape[1];
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = 0; c < C; ++c)
        v[c * R + r] = t.values[r * C + c];
  }
  std::string s;
  for (float f : v) {
    if (dtype == DType::F32) {
      s.append(reinterpret_cast<char *>(&f), 4);
    } else {
      uint16_t h = dtype == DType::F16 ? toHalf(f) : toBF16(f);
      s.append(reinterpret_cast<char *>(&h), 2);
    }
  }
  return s;
}

} // namespace

std::vector<TensorSpec> tinyV4Model() {
  ModelBuilder b;
  const int64_t C = 32, F = 64, V = 32;
  b.common(1, C, F, V, true);
  auto L = ModelBuilder::L;
  b.add(L(0, "att.time_decay"), {C}, 3.0f, -0.5f);
  b.add(L(0, "att.time_first"), {C});
  for (const char *s : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
                        "ffn.time_mix_k", "ffn.time_mix_r"})
    b.add(L(0, s), {1, 1, C}, 0.5f, 0.5f);
  b.add(L(0, "ffn.receptance.weight"), {C, C});
  return b.out;
}

std::vector<TensorSpec> tinyV51Model() {
  ModelBuilder b;
  const int64_t C = 32, F = 64, V = 32, H = 4;
  b.common(2, C, F, V, false);
  auto L = ModelBuilder::L;
  for (int i = 0; i < 2; ++i) {
    b.add(L(i, "att.time_decay"), {H}, 2.0f);
    b.add(L(i, "att.time_faaaa"), {H});
    for (const char *s : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
                          "att.time_mix_g", "ffn.time_mix_k", "ffn.time_mix_r"})
      b.add(L(i, s), {1, 1, C}, 0.5f, 0.5f);
    b.add(L(i, "att.ln_x.weight"), {C});
    b.add(L(i, "att.ln_x.bias"), {C});
    b.add(L(i, "att.gate.weight"), {C, C});
    b.add(L(i, "ffn.receptance.weight"), {C, C});
  }
  return b.out;
}

std::vector<TensorSpec> tinyV7Model() {
  ModelBuilder b;
  const int64_t C = 32, F = 64, V = 32, H = 2, N = 16, D = 8;
  b.common(2, C, F, V, false);
  auto L = ModelBuilder::L;
  for (int i = 0; i < 2; ++i) {
    for (const char *s :
         {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
          "att.w0", "att.a0", "att.v0", "att.k_k", "att.k_a", "ffn.x_k"})
      b.add(L(i, s), {1, 1, C});
    for (const char *x : {"w", "a", "v", "g"}) {
      b.add(L(i, (std::string("att.") + x + "1").c_str()), {C, D});
      b.add(L(i, (std::string("att.") + x + "2").c_str()), {D, C});
    }
    b.add(L(i, "att.r_k"), {H, N});
    b.add(L(i, "att.ln_x.weight"), {C});
    b.add(L(i, "att.ln_x.bias"), {C});
    b.add(L(i, "att.time_state"), {H, N, N});
  }
  return b.out;
}

void appendBinUnicode(std::string &p, const std::string &s) {
  p += 'X';
  appendU32(p, uint32_t(s.size()));
  p += s;
}
void appendBinInt(std::string &p, int64_t v) {
  p += 'J';
  appendI32(p, int32_t(v));
}

std::string makeViewPickle(int64_t numel, const std::vector<int64_t> &size,
                           const std::vector<int64_t> &stride) {
  std::string p = "\x80\x02}";
  appendBinUnicode(p, "w");
  p += "ctorch._utils\n_rebuild_tensor_v2\n((";
  appendBinUnicode(p, "storage");
  p += "ctorch\nFloatStorage\n";
  appendBinUnicode(p, "0");
  appendBinUnicode(p, "cpu");
  appendBinInt(p, numel);
  p += "tQ";
  appendBinInt(p, 0);
  p += "(";
  for (int64_t d : size)
    appendBinInt(p, d);
  p += "t(";
  for (int64_t s : stride)
    appendBinInt(p, s);
  p += "t\x89"; // NEWFALSE
  p += "ccollections\nOrderedDict\n)RtRs.";
  return p;
}

std::string makeStateDictPickle(const std::vector<TensorSpec> &tensors,
                                const PthOptions &opts) {
  const char *storage = opts.dtype == DType::F32   ? "FloatStorage"
                        : opts.dtype == DType::F16 ? "HalfStorage"
                                                   : "BFloat16Storage";
  std::string p = "\x80\x02}(";
  bool transposed = false;
  int64_t total = 0, offset = 0;
  for (const TensorSpec &t : tensors)
    total += int64_t(t.values.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSpec &t = tensors[i];
    bool transpose = opts.transposeFirst && !transposed && t.shape.size() == 2;
    transposed |= transpose;
    appendBinUnicode(p, t.name);
    p += "ctorch._utils\n_rebuild_tensor_v2\n(";
    p += "(";
    appendBinUnicode(p, "storage");
    p += std::string("ctorch\n") + storage + "\n";
    appendBinUnicode(p, opts.oneStorage ? "0" : std::to_string(i));
    appendBinUnicode(p, "cpu");
    appendBinInt(p, opts.oneStorage ? total : int64_t(t.values.size()));
    p += "tQ";                               // TUPLE, BINPERSID
    appendBinInt(p, opts.oneStorage ? offset : 0); // storage offset
    offset += int64_t(t.values.size());
    p += "(";
    for (int64_t d : t.shape)
      appendBinInt(p, d);
    p += "t(";
    std::vector<int64_t> stride(t.shape.size(), 1);
    for (size_t d = t.shape.size(); d-- > 1;)
      stride[d - 1] = stride[d] * t.shape[d];
    if (transpose)
      stride = {1, t.shape[0]};
    for (int64_t s : stride)
      appendBinInt(p, s);
    p += "t\x89";                         // NEWFALSE
    p += "ccollections\nOrderedDict\n)R"; // OrderedDict()
    p += "tR";                            // args, REDUCE
  }
  if (!opts.extraGlobal.empty()) {
    appendBinUnicode(p, "evil");
    p += "c" + opts.extraGlobal + "\n";
    appendBinUnicode(p, "echo pwned");
    p += "\x85R"; // TUPLE1, REDUCE
  }
  p += "u.";
  return p;
}

std::string
makeZip(const std::vector<std::pair<std::string, std::string>> &entries,
        bool compress) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t *src = zip_source_buffer_create(nullptr, 0, 0, &err);
  zip_source_keep(src);
  zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
  for (const auto &[name, bytes] : entries) {
    zip_source_t *s = zip_source_buffer(za, bytes.data(), bytes.size(), 0);
    zip_int64_t idx = zip_file_add(za, name.c_str(), s, ZIP_FL_ENC_UTF_8);
    zip_set_file_compression(za, idx, compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE,
                             0);
  }
  zip_close(za);
  std::string out;
  zip_source_open(src);
  zip_source_seek(src, 0, SEEK_END);
  out.resize(zip_source_tell(src));
  zip_source_seek(src, 0, SEEK_SET);
  zip_source_read(src, out.data(), out.size());
  zip_source_close(src);
  zip_source_free(src);
  zip_error_fini(&err);
  return out;
}

std::string makePth(const std::vector<TensorSpec> &tensors,
                    const PthOptions &opts) {
  std::vector<std::pair<std::string, std::string>> entries;
  entries.push_back({"archive/data.pkl", makeStateDictPickle(tensors, opts)});
  entries.push_back({"archive/byteorder", "little"});
  bool transposed = false;
  std::string shared;
  for (size_t i = 0; i < tensors.size(); ++i) {
    bool transpose =
        opts.transposeFirst && !transposed && tensors[i].shape.size() == 2;
    transposed |= transpose;
    std::string bytes = storageBytes(tensors[i], opts.dtype, transpose);
    if (opts.oneStorage)
      shared += bytes;
    else
      entries.push_back({"archive/data/" + std::to_string(i), bytes});
  }
  if (opts.oneStorage)
    entries.push_back({"archive/data/0", shared});
  entries.push_back({"archive/version", "3\n"});
  return makeZip(entries, opts.compress);
}

std::string makeSafeTensors(const std::vector<TensorSpec> &tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::string data;
  for (const TensorSpec &t : tensors) {
    header += ",\"" + t.name + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      header += (d ? "," : "") + std::to_string(t.shape[d]);
    size_t begin = data.size();
    data += storageBytes(t, DType::F32, false);
    header += "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  header += "}";
  std::string out;
  uint64_t n = header.size();
  out.append(reinterpret_cast<char *>(&n), 8);
  return out + header + data;
}

std::string makeSafeTensorsWithHeader(const std::string &json,
                                      size_t dataBytes) {
  std::string out;
  uint64_t n = json.size();
  out.append(reinterpret_cast<char *>(&n), 8);
  return out + json + std::string(dataBytes, '\0');
}

std::string makeGGMLV4(const std::vector<TensorSpec> &tensors) {
  int64_t C = 0, V = 0, layers = 0;
  for (const TensorSpec &t : tensors) {
    if (t.name == "emb.weight") {
      V = t.shape[0];
      C = t.shape[1];
    }
    if (t.name.find(".ln1.weight") != std::string::npos)
      ++layers;
  }
  std::string out;
  for (int32_t v :
       {0x67676d66, 101, int32_t(V), int32_t(C), int32_t(layers), 0})
    appendI32(out, v);
  for (const TensorSpec &t : tensors) {
    std::vector<int64_t> shape = t.shape;
    std::vector<float> values = t.values;
    if (t.name.find(".time_") != std::string::npos) {
      std::vector<int64_t> squeezed;
      for (int64_t d : shape)
        if (d != 1)
          squeezed.push_back(d);
      shape = squeezed;
    }
    if (t.name.find("att.time_decay") != std::string::npos)
      for (float &v : values)
        v = -std::exp(v);
    appendI32(out, int32_t(shape.size()));
    appendI32(out, int32_t(t.name.size()));
    appendI32(out, 0);
    for (size_t d = shape.size(); d-- > 0;)
      appendI32(out, int32_t(shape[d]));
    out += t.name;
    out.append(reinterpret_cast<const char *>(values.data()),
               values.size() * 4);
  }
  return out;
}

} // namespace rwkvc::testing
