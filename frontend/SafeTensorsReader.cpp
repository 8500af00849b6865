//===- SafeTensorsReader.cpp - .safetensors reader ------------------------===//
//
//   u64 N (little-endian); N bytes of JSON; data
//   JSON: { "__metadata__": {str: str}, name: {"dtype": "F32"|"F16"|"BF16",
//           "shape": [..], "data_offsets": [begin, end]}, ... }
//
// Offsets are relative to the first byte after the header. Every tensor is
// mapped in place; tensors are listed in the order of their data.
//
//===----------------------------------------------------------------------===//

#include "frontend/BoundedJSON.h"
#include "frontend/Checkpoint.h"
#include "frontend/ReaderSupport.h"

#include "llvm/Support/JSON.h"

#include <algorithm>

using namespace llvm;
using namespace rwkvc::detail;

namespace rwkvc {

static std::optional<DType> parseSafeTensorsDType(StringRef s) {
  if (s == "F32")
    return DType::F32;
  if (s == "F16")
    return DType::F16;
  if (s == "BF16")
    return DType::BF16;
  return std::nullopt;
}

Expected<std::unique_ptr<Checkpoint>>
readSafeTensors(std::unique_ptr<MemoryBuffer> buffer, StringRef name) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->format = Format::SafeTensors;
  ckpt->path = name.str();
  const uint8_t *base =
      buffer->getBufferStart()
          ? reinterpret_cast<const uint8_t *>(buffer->getBufferStart())
          : nullptr;
  uint64_t size = buffer->getBufferSize();
  ckpt->file = std::move(buffer);

  if (size < 8)
    return fileError(name, "safetensors: truncated header length");
  uint64_t headerLen = readLE<uint64_t>(base);
  if (headerLen > size - 8)
    return fileError(name, "safetensors: header length " + Twine(headerLen) +
                               " runs past the end of the file (" +
                               Twine(size) + " bytes)");
  StringRef headerText(reinterpret_cast<const char *>(base + 8), headerLen);
  Expected<json::Value> header = parseBoundedJSON(headerText);
  if (!header)
    return fileError(name, "safetensors: bad JSON header: " +
                               toString(header.takeError()));
  const json::Object *root = header->getAsObject();
  if (!root)
    return fileError(name, "safetensors: header is not a JSON object");

  const uint8_t *data = base + 8 + headerLen;
  uint64_t dataSize = size - 8 - headerLen;
  std::vector<std::pair<uint64_t, Tensor>> ordered;
  for (const auto &kv : *root) {
    StringRef key = kv.first;
    if (key == "__metadata__") {
      const json::Object *meta = kv.second.getAsObject();
      if (!meta)
        return fileError(name, "safetensors: __metadata__ is not an object");
      for (const auto &m : *meta) {
        auto s = m.second.getAsString();
        if (!s)
          return fileError(name, "safetensors: __metadata__ value '" +
                                     m.first.str() + "' is not a string");
        ckpt->metadata.emplace_back(m.first.str(), s->str());
      }
      continue;
    }
    auto bad = [&](const Twine &why) {
      return fileError(name, "safetensors: tensor '" + key + "': " + why);
    };
    const json::Object *info = kv.second.getAsObject();
    if (!info)
      return bad("entry is not an object");
    auto dtypeStr = info->getString("dtype");
    const json::Array *shape = info->getArray("shape");
    const json::Array *offsets = info->getArray("data_offsets");
    if (!dtypeStr || !shape || !offsets)
      return bad("needs 'dtype', 'shape' and 'data_offsets'");
    auto dtype = parseSafeTensorsDType(*dtypeStr);
    if (!dtype)
      return bad("unsupported dtype '" + *dtypeStr +
                 "' (F32, F16 and BF16 are supported)");
    Tensor t;
    t.name = key.str();
    t.dtype = *dtype;
    for (const json::Value &d : *shape) {
      auto v = d.getAsInteger();
      if (!v || *v < 0)
        return bad("shape has a non-integer or negative dimension");
      t.shape.push_back(*v);
    }
    if (offsets->size() != 2)
      return bad("data_offsets must hold two integers");
    auto begin = (*offsets)[0].getAsInteger();
    auto end = (*offsets)[1].getAsInteger();
    if (!begin || !end || *begin < 0 || *end < *begin)
      return bad("data_offsets must be two increasing non-negative integers");
    if (uint64_t(*end) > dataSize)
      return bad("storage [" + Twine(*begin) + ", " + Twine(*end) +
                 ") runs past the end of the file (" + Twine(dataSize) +
                 " data bytes)");
    auto numel = checkedNumElements(t.shape);
    auto nbytes = numel ? checkedStorageBytes(t.dtype, *numel) : std::nullopt;
    if (!nbytes || *nbytes != uint64_t(*end - *begin))
      return bad("shape " + shapeString(t.shape) + " of " + *dtypeStr +
                 " does not match its " + Twine(*end - *begin) +
                 " bytes of data");
    t.data = data + *begin;
    t.nbytes = *nbytes;
    t.mapped = true;
    ordered.emplace_back(uint64_t(*begin), std::move(t));
  }
  llvm::sort(ordered, [](const auto &a, const auto &b) {
    if (a.first != b.first)
      return a.first < b.first;
    return a.second.name < b.second.name;
  });
  for (auto &p : ordered)
    ckpt->tensors.push_back(std::move(p.second));
  llvm::sort(ckpt->metadata);
  return std::move(ckpt);
}

} // namespace rwkvc
