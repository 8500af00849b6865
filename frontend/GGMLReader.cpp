//===- GGMLReader.cpp - rwkv.cpp ggml .bin reader -------------------------===//
//
// Reads rwkv.cpp's model files (versions 100 and 101; docs/formats.md) and
// undoes the transforms of rwkv.cpp's converter so that the tensors come out
// with BlinkDL's PyTorch names, shapes and values:
//
//   ggml record (dims reversed, `.time_` squeezed, decays pre-computed)
//     --reverse dims--> stored PyTorch shape
//     --per-version inverse transform--> canonical tensor
//
// Untransformed tensors (and the slices of v7's att.x_rwkvag) stay mapped;
// transposed and non-linearly inverted tensors own a buffer. A quantized
// tensor that must be transposed is dequantized to f32 first.
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/ReaderSupport.h"

#include "llvm/ADT/StringExtras.h"

#include <cmath>

using namespace llvm;
using namespace rwkvc::detail;

namespace rwkvc {

namespace {

/// rwkv.cpp's data type codes (tensor types and the header's file type).
std::optional<DType> ggmlTypeFromCode(int32_t code) {
  switch (code) {
  case 0:
    return DType::F32;
  case 1:
    return DType::F16;
  case 2:
    return DType::Q4_0;
  case 3:
    return DType::Q4_1;
  case 7:
    return DType::Q5_0;
  case 8:
    return DType::Q5_1;
  case 9:
    return DType::Q8_0;
  default:
    return std::nullopt;
  }
}

const char *ggmlFileTypeName(DType t) {
  switch (t) {
  case DType::F32:
    return "FP32";
  case DType::F16:
    return "FP16";
  case DType::Q4_0:
    return "Q4_0";
  case DType::Q4_1:
    return "Q4_1";
  case DType::Q5_0:
    return "Q5_0";
  case DType::Q5_1:
    return "Q5_1";
  case DType::Q8_0:
    return "Q8_0";
  default:
    return "?";
  }
}

/// The RWKV version as far as the converter's transforms depend on it.
enum class GGMLArch { V4, V5, V6, V7 };

/// A tensor record as stored, with its dims put in PyTorch order.
struct Record {
  std::string name;
  DType dtype;
  SmallVector<int64_t, 4> shape;
  const uint8_t *data;
  uint64_t nbytes;
};

class GGMLConverter {
public:
  GGMLConverter(Checkpoint &ckpt, StringRef file, GGMLArch arch, int64_t nEmbd)
      : ckpt(ckpt), file(file), arch(arch), nEmbd(nEmbd) {}

  Error convert(const Record &r);

private:
  Error fail(const Record &r, const Twine &why) {
    return fileError(file, "ggml: tensor '" + r.name + "': " + why);
  }
  void emitMapped(const Record &r, StringRef name, ArrayRef<int64_t> shape,
                  const uint8_t *data, uint64_t nbytes) {
    Tensor t;
    t.name = name.str();
    t.dtype = r.dtype;
    t.shape.assign(shape.begin(), shape.end());
    t.data = data;
    t.nbytes = nbytes;
    t.mapped = true;
    ckpt.tensors.push_back(std::move(t));
  }
  Error reshape(const Record &r, ArrayRef<int64_t> shape) {
    auto n = checkedNumElements(shape);
    if (!n || *n != checkedNumElements(r.shape))
      return fail(r, "stored shape " + shapeString(r.shape) +
                         " cannot be reshaped to " + shapeString(shape));
    emitMapped(r, r.name, shape, r.data, r.nbytes);
    return Error::success();
  }
  Error transposeLast2(const Record &r);
  Error applyElementwise(const Record &r, ArrayRef<int64_t> shape,
                         double (*fn)(double));
  Error splitXRwkvag(const Record &r, StringRef prefix);

  Checkpoint &ckpt;
  StringRef file;
  GGMLArch arch;
  int64_t nEmbd;
};

/// Stored shape with trailing size-1 dims dropped: (H, 1, 1) -> (H),
/// (H, N, 1) -> (H, N).
SmallVector<int64_t, 4> dropTrailingOnes(ArrayRef<int64_t> shape) {
  SmallVector<int64_t, 4> s(shape.begin(), shape.end());
  while (s.size() > 1 && s.back() == 1)
    s.pop_back();
  return s;
}

} // namespace

Error GGMLConverter::transposeLast2(const Record &r) {
  if (r.shape.size() < 2)
    return fail(r, "expected a matrix, found shape " + shapeString(r.shape));
  SmallVector<int64_t, 4> shape(r.shape.begin(), r.shape.end());
  uint64_t rows = shape[shape.size() - 2], cols = shape.back();
  std::swap(shape[shape.size() - 2], shape.back());
  uint64_t numel = *checkedNumElements(r.shape);
  uint64_t slices = rows * cols ? numel / (rows * cols) : 0;

  Tensor t;
  t.name = r.name;
  t.shape = shape;
  std::vector<float> decoded;
  const uint8_t *src = r.data;
  unsigned elemBytes = floatElementBytes(r.dtype);
  t.dtype = r.dtype;
  if (!elemBytes) {
    // Quantized blocks run along the stored rows; a transpose breaks them up,
    // so the tensor is dequantized to f32.
    Tensor q;
    q.dtype = r.dtype;
    q.shape = r.shape;
    q.data = r.data;
    q.nbytes = r.nbytes;
    decoded = q.toF32();
    src = reinterpret_cast<const uint8_t *>(decoded.data());
    elemBytes = 4;
    t.dtype = DType::F32;
  }
  t.nbytes = numel * elemBytes;
  uint8_t *dst = ckpt.allocate(t.nbytes);
  uint64_t sliceBytes = rows * cols * elemBytes;
  for (uint64_t s = 0; s < slices; ++s)
    transposeInto(dst + s * sliceBytes, src + s * sliceBytes, rows, cols,
                  elemBytes);
  t.data = dst;
  ckpt.tensors.push_back(std::move(t));
  return Error::success();
}

Error GGMLConverter::applyElementwise(const Record &r, ArrayRef<int64_t> shape,
                                      double (*fn)(double)) {
  if (isQuantized(r.dtype))
    return fail(r, "a quantized decay/bonus tensor is not supported");
  Tensor in;
  in.dtype = r.dtype;
  in.shape = r.shape;
  in.data = r.data;
  in.nbytes = r.nbytes;
  std::vector<float> v = in.toF32();
  Tensor t;
  t.name = r.name;
  t.dtype = DType::F32;
  t.shape.assign(shape.begin(), shape.end());
  t.nbytes = v.size() * 4;
  float *dst = reinterpret_cast<float *>(ckpt.allocate(t.nbytes));
  for (size_t i = 0; i < v.size(); ++i)
    dst[i] = float(fn(double(v[i])));
  t.data = reinterpret_cast<const uint8_t *>(dst);
  ckpt.tensors.push_back(std::move(t));
  return Error::success();
}

Error GGMLConverter::splitXRwkvag(const Record &r, StringRef prefix) {
  uint64_t numel = *checkedNumElements(r.shape);
  if (numel != uint64_t(6 * nEmbd))
    return fail(r, "expected 6 x " + Twine(nEmbd) + " elements, found shape " +
                       shapeString(r.shape));
  uint64_t partBytes = r.nbytes / 6; // C elements; whole blocks if quantized
  static const char *const parts[] = {"att.x_r", "att.x_w", "att.x_k",
                                      "att.x_v", "att.x_a", "att.x_g"};
  int64_t shape[] = {1, 1, nEmbd};
  for (int i = 0; i < 6; ++i)
    emitMapped(r, (prefix + parts[i]).str(), shape, r.data + i * partBytes,
               partBytes);
  return Error::success();
}

static double invV4Decay(double t) { return std::log(-t); } // t = -exp(w)
static double invV5Decay(double t) {
  return std::log(-std::log(t));
} // exp(-exp(w))
static double invExp(double t) { return std::log(t); } // t = exp(u)

Error GGMLConverter::convert(const Record &r) {
  StringRef name = r.name;
  // "blocks.<i>.att.time_decay" -> suffix "att.time_decay".
  StringRef suffix = name;
  if (suffix.consume_front("blocks.")) {
    size_t dot = suffix.find('.');
    suffix = dot == StringRef::npos ? StringRef() : suffix.drop_front(dot + 1);
  }
  StringRef prefix = name.drop_back(suffix.size());
  int64_t vec[] = {1, 1, nEmbd};

  // Mixing vectors were squeezed from (1, 1, C) to (C).
  bool isMix = suffix.starts_with("att.time_mix_") ||
               suffix.starts_with("ffn.time_mix_") ||
               suffix.starts_with("ffn.time_maa_") ||
               (suffix.starts_with("att.time_maa_") && suffix.size() == 14);
  if (isMix)
    return reshape(r, vec);

  switch (arch) {
  case GGMLArch::V4:
    if (suffix == "att.time_decay")
      return applyElementwise(r, r.shape, invV4Decay);
    break;
  case GGMLArch::V5:
    if (suffix == "att.time_decay")
      return applyElementwise(r, dropTrailingOnes(r.shape), invV5Decay);
    if (suffix == "att.time_first")
      return applyElementwise(r, dropTrailingOnes(r.shape), invExp);
    if (suffix == "att.time_faaaa")
      return reshape(r, dropTrailingOnes(r.shape));
    break;
  case GGMLArch::V6:
    if (suffix == "att.time_maa_w1" || suffix == "att.time_maa_w2" ||
        suffix == "att.time_decay_w1" || suffix == "att.time_decay_w2")
      return transposeLast2(r);
    if (suffix == "att.time_decay")
      return reshape(r, vec);
    if (suffix == "att.time_faaaa")
      return reshape(r, dropTrailingOnes(r.shape));
    break;
  case GGMLArch::V7:
    if (suffix == "att.x_rwkvag")
      return splitXRwkvag(r, prefix);
    if (is_contained({"att.w1", "att.a1", "att.v1", "att.g1", "att.w2",
                      "att.a2", "att.v2", "att.g2"},
                     suffix))
      return transposeLast2(r);
    break;
  }
  emitMapped(r, r.name, r.shape, r.data, r.nbytes);
  return Error::success();
}

Expected<std::unique_ptr<Checkpoint>>
readGGML(std::unique_ptr<MemoryBuffer> buffer, StringRef name) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->format = Format::GGML;
  ckpt->path = name.str();
  const uint8_t *base =
      reinterpret_cast<const uint8_t *>(buffer->getBufferStart());
  const uint64_t size = buffer->getBufferSize();
  ckpt->file = std::move(buffer);

  if (size < 24)
    return fileError(name, "ggml: truncated header (" + Twine(size) +
                               " bytes, need 24)");
  int32_t hdr[6];
  for (int i = 0; i < 6; ++i)
    hdr[i] = readLE<int32_t>(base + 4 * i);
  if (uint32_t(hdr[0]) != 0x67676d66)
    return fileError(name, "ggml: bad magic (expected 'ggmf')");
  int32_t version = hdr[1], nVocab = hdr[2], nEmbd = hdr[3], nLayer = hdr[4];
  if (version != 100 && version != 101)
    return fileError(name, "ggml: unsupported file version " + Twine(version) +
                               " (100 and 101 are supported)");
  auto fileType = ggmlTypeFromCode(hdr[5]);
  if (!fileType)
    return fileError(name, "ggml: unknown file data type " + Twine(hdr[5]));
  if (nVocab <= 0 || nEmbd <= 0 || nLayer <= 0)
    return fileError(name, "ggml: bad header: n_vocab " + Twine(nVocab) +
                               ", n_embed " + Twine(nEmbd) + ", n_layer " +
                               Twine(nLayer));
  ckpt->ggmlVersion = version;
  ckpt->ggmlFileType = ggmlFileTypeName(*fileType);

  std::vector<Record> records;
  uint64_t off = 24;
  while (off < size) {
    uint64_t left = size - off;
    if (left < 12)
      return fileError(name,
                       "ggml: truncated tensor record at offset " + Twine(off));
    int32_t nDims = readLE<int32_t>(base + off);
    int32_t nameLen = readLE<int32_t>(base + off + 4);
    int32_t typeCode = readLE<int32_t>(base + off + 8);
    if (nDims < 1 || nDims > 4)
      return fileError(name, "ggml: tensor record at offset " + Twine(off) +
                                 " has " + Twine(nDims) +
                                 " dimensions (1 to 4 allowed)");
    if (nameLen < 1 || nameLen > 1024)
      return fileError(name, "ggml: tensor record at offset " + Twine(off) +
                                 " has a bad name length " + Twine(nameLen));
    auto dtype = ggmlTypeFromCode(typeCode);
    if (!dtype)
      return fileError(name, "ggml: tensor record at offset " + Twine(off) +
                                 " has unknown data type " + Twine(typeCode));
    off += 12;
    if (size - off < uint64_t(4 * nDims + nameLen))
      return fileError(name, "ggml: truncated tensor record at offset " +
                                 Twine(off - 12));
    Record r;
    r.dtype = *dtype;
    for (int i = 0; i < nDims; ++i) {
      int32_t d = readLE<int32_t>(base + off + 4 * i);
      if (d < 1)
        return fileError(name, "ggml: tensor record at offset " +
                                   Twine(off - 12) + " has dimension " +
                                   Twine(d));
      r.shape.insert(r.shape.begin(), d); // ggml order is reversed
    }
    off += 4 * nDims;
    r.name.assign(reinterpret_cast<const char *>(base + off), nameLen);
    off += nameLen;
    auto numel = checkedNumElements(r.shape);
    auto nbytes = numel ? checkedStorageBytes(r.dtype, *numel) : std::nullopt;
    if (!nbytes)
      return fileError(name, "ggml: tensor '" + r.name + "': shape " +
                                 shapeString(r.shape) + " is not valid for " +
                                 dtypeName(r.dtype));
    if (isQuantized(r.dtype) && version == 100)
      return fileError(name, "ggml: tensor '" + r.name +
                                 "': quantized tensors of file version 100 "
                                 "use an obsolete block layout; requantize "
                                 "with a current rwkv.cpp");
    if (*nbytes > size - off)
      return fileError(name, "ggml: tensor '" + r.name + "': data (" +
                                 Twine(*nbytes) +
                                 " bytes) runs past the end of the file");
    r.data = base + off;
    r.nbytes = *nbytes;
    off += *nbytes;
    records.push_back(std::move(r));
  }

  // The header carries no version; the converter's tensor names tell it.
  GGMLArch arch = GGMLArch::V4;
  for (const Record &r : records) {
    StringRef n = r.name;
    if (n.ends_with(".att.x_rwkvag") || n.ends_with(".att.k_k"))
      arch = GGMLArch::V7;
    else if (n.ends_with(".att.time_maa_x") && arch != GGMLArch::V7)
      arch = GGMLArch::V6;
    else if (n.ends_with(".att.ln_x.weight") && arch == GGMLArch::V4)
      arch = GGMLArch::V5;
  }

  GGMLConverter conv(*ckpt, name, arch, nEmbd);
  for (const Record &r : records)
    if (Error e = conv.convert(r))
      return std::move(e);
  return std::move(ckpt);
}

} // namespace rwkvc
