//===- PthReader.cpp - PyTorch .pth (torch.save zip) reader ---------------===//
//
//   zip archive (libzip opens and checks it):
//     <archive>/data.pkl     pickle of {name: tensor}   (frontend/Pickle.cpp)
//     <archive>/data/<key>   raw little-endian storage <key>
//     <archive>/byteorder    optional, must be "little"
//
// torch.save stores every entry uncompressed; such storages are mapped in
// place. libzip has no public call for an entry's data offset, so the
// central directory is walked here (bounds-checked, zip64 aware) to find
// each local header, and the result is cross-checked against libzip's view.
// A compressed entry is read through libzip into an owned buffer.
//
//===----------------------------------------------------------------------===//

#include "frontend/Checkpoint.h"
#include "frontend/Pickle.h"
#include "frontend/ReaderSupport.h"

#include "llvm/ADT/StringMap.h"

#include <zip.h>

using namespace llvm;
using namespace rwkvc::detail;

namespace rwkvc {

namespace {

struct EntryLoc {
  uint64_t dataOffset = 0;
  uint64_t compSize = 0;
  uint16_t method = 0;
};

/// Walks the central directory of the zip in `z` and records where each
/// entry's data begins. Every offset is checked against the buffer.
Error walkCentralDirectory(ArrayRef<uint8_t> z, StringMap<EntryLoc> &out) {
  auto bad = [](const Twine &why) {
    return createStringError(inconvertibleErrorCode(),
                             ("zip: bad central directory: " + why).str());
  };
  const uint64_t size = z.size();
  if (size < 22)
    return bad("no end of central directory record");
  // The end record is the last 22 bytes plus a comment of up to 65535.
  uint64_t eocd = UINT64_MAX;
  for (uint64_t pos = size - 22, stop = size > 65557 ? size - 65557 : 0;;
       --pos) {
    if (readLE<uint32_t>(&z[pos]) == 0x06054b50 &&
        pos + 22 + readLE<uint16_t>(&z[pos + 20]) <= size) {
      eocd = pos;
      break;
    }
    if (pos == stop)
      break;
  }
  if (eocd == UINT64_MAX)
    return bad("no end of central directory record");
  uint64_t count = readLE<uint16_t>(&z[eocd + 10]);
  uint64_t cdSize = readLE<uint32_t>(&z[eocd + 12]);
  uint64_t cdOffset = readLE<uint32_t>(&z[eocd + 16]);
  if (count == 0xffff || cdSize == 0xffffffff || cdOffset == 0xffffffff) {
    if (eocd < 20 || readLE<uint32_t>(&z[eocd - 20]) != 0x07064b50)
      return bad("missing zip64 locator");
    uint64_t z64 = readLE<uint64_t>(&z[eocd - 20 + 8]);
    if (z64 > size || size - z64 < 56 ||
        readLE<uint32_t>(&z[z64]) != 0x06064b50)
      return bad("bad zip64 end record");
    count = readLE<uint64_t>(&z[z64 + 32]);
    cdSize = readLE<uint64_t>(&z[z64 + 40]);
    cdOffset = readLE<uint64_t>(&z[z64 + 48]);
  }
  if (cdOffset > size || cdSize > size - cdOffset)
    return bad("directory runs past the end of the file");
  uint64_t pos = cdOffset, cdEnd = cdOffset + cdSize;
  for (uint64_t i = 0; i < count; ++i) {
    if (cdEnd - pos < 46 || readLE<uint32_t>(&z[pos]) != 0x02014b50)
      return bad("entry " + Twine(i) + " is malformed");
    EntryLoc loc;
    loc.method = readLE<uint16_t>(&z[pos + 10]);
    loc.compSize = readLE<uint32_t>(&z[pos + 20]);
    uint64_t uncompSize = readLE<uint32_t>(&z[pos + 24]);
    uint64_t nameLen = readLE<uint16_t>(&z[pos + 28]);
    uint64_t extraLen = readLE<uint16_t>(&z[pos + 30]);
    uint64_t commentLen = readLE<uint16_t>(&z[pos + 32]);
    uint64_t lho = readLE<uint32_t>(&z[pos + 42]);
    if (cdEnd - pos - 46 < nameLen + extraLen + commentLen)
      return bad("entry " + Twine(i) + " is malformed");
    StringRef name(reinterpret_cast<const char *>(&z[pos + 46]), nameLen);
    // zip64 extended information: the 64-bit values of the saturated fields.
    uint64_t e = pos + 46 + nameLen, eEnd = e + extraLen;
    while (eEnd - e >= 4) {
      uint16_t id = readLE<uint16_t>(&z[e]);
      uint64_t len = readLE<uint16_t>(&z[e + 2]);
      if (eEnd - e - 4 < len)
        return bad("entry '" + name + "' has a malformed extra field");
      if (id == 0x0001) {
        uint64_t f = e + 4, fEnd = f + len;
        auto take64 = [&](uint64_t &v) {
          if (v != 0xffffffff)
            return true;
          if (fEnd - f < 8)
            return false;
          v = readLE<uint64_t>(&z[f]);
          f += 8;
          return true;
        };
        if (!take64(uncompSize) || !take64(loc.compSize) || !take64(lho))
          return bad("entry '" + name + "' has a short zip64 field");
      }
      e += 4 + len;
    }
    if (lho > size || size - lho < 30 ||
        readLE<uint32_t>(&z[lho]) != 0x04034b50)
      return bad("entry '" + name + "' has no local header");
    uint64_t data = lho + 30 + readLE<uint16_t>(&z[lho + 26]) +
                    readLE<uint16_t>(&z[lho + 28]);
    if (data > size || loc.compSize > size - data)
      return bad("entry '" + name + "' runs past the end of the file");
    loc.dataOffset = data;
    out[name] = loc;
    pos += 46 + nameLen + extraLen + commentLen;
  }
  return Error::success();
}

/// What the reader may allocate for one file (decompressed entries and
/// copies of strided views, together): kOwnedPerFileByte times the file
/// size, and at least kOwnedFloor.
constexpr uint64_t kOwnedPerFileByte = 4;
constexpr uint64_t kOwnedFloor = uint64_t(64) << 20;

class PthArchive {
public:
  PthArchive(Checkpoint &ckpt, StringRef file)
      : ckpt(ckpt), file(file),
        ownedBudget(std::max(kOwnedFloor,
                             kOwnedPerFileByte * ckpt.file->getBufferSize())) {}
  ~PthArchive() {
    if (za)
      zip_discard(za);
  }

  Error open();
  /// The bytes of entry `entry` (mapped when stored uncompressed).
  Expected<ArrayRef<uint8_t>> entryBytes(StringRef entry);
  StringRef prefix() const { return archivePrefix; }
  /// A buffer of `n` bytes owned by the checkpoint, or an error naming
  /// `what` when it would take the reader over its budget.
  Expected<uint8_t *> allocateOwned(uint64_t n, const Twine &what);
  bool hasEntry(StringRef entry) const { return locations.count(entry); }

private:
  Error fail(const Twine &why) { return fileError(file, why); }

  Checkpoint &ckpt;
  StringRef file;
  zip_t *za = nullptr;
  StringMap<EntryLoc> locations;
  std::string archivePrefix; // "<archive>/"
  const uint64_t ownedBudget;
  uint64_t owned = 0;
};

Expected<uint8_t *> PthArchive::allocateOwned(uint64_t n, const Twine &what) {
  if (n > ownedBudget - owned)
    return fail(what + " would take the memory the reader allocates to " +
                Twine(owned + n) + " bytes, over its limit of " +
                Twine(ownedBudget) + " (" + Twine(kOwnedPerFileByte) +
                " x the file size, at least " + Twine(kOwnedFloor >> 20) +
                " MiB)");
  owned += n;
  return ckpt.allocate(n);
}

Error PthArchive::open() {
  StringRef buf = ckpt.file->getBuffer();
  zip_error_t zerr;
  zip_error_init(&zerr);
  zip_source_t *src =
      zip_source_buffer_create(buf.data(), buf.size(), 0, &zerr);
  if (src)
    za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
  if (!za) {
    std::string msg = zip_error_strerror(&zerr);
    if (src)
      zip_source_free(src);
    zip_error_fini(&zerr);
    return fail("zip: cannot open archive: " + msg);
  }
  zip_error_fini(&zerr);

  if (Error e = walkCentralDirectory(
          ArrayRef<uint8_t>(buf.bytes_begin(), buf.size()), locations))
    return fail(toString(std::move(e)));

  zip_int64_t n = zip_get_num_entries(za, 0);
  for (zip_int64_t i = 0; i < n; ++i) {
    zip_stat_t st;
    if (zip_stat_index(za, i, 0, &st) != 0 || !(st.valid & ZIP_STAT_NAME))
      return fail("zip: cannot read entry " + Twine(i));
    auto it = locations.find(st.name);
    if (it == locations.end() || it->second.compSize != st.comp_size ||
        it->second.method != st.comp_method)
      return fail("zip: bad central directory: entry '" + Twine(st.name) +
                  "' disagrees with libzip");
    StringRef name(st.name);
    if (name.ends_with("/data.pkl") && name.count('/') == 1) {
      if (!archivePrefix.empty())
        return fail("zip: more than one '<archive>/data.pkl'");
      archivePrefix = name.drop_back(strlen("data.pkl")).str();
    }
  }
  if (archivePrefix.empty())
    return fail("zip: no '<archive>/data.pkl' entry: not a torch.save "
                "checkpoint");
  return Error::success();
}

Expected<ArrayRef<uint8_t>> PthArchive::entryBytes(StringRef entry) {
  zip_int64_t idx = zip_name_locate(za, entry.str().c_str(), 0);
  auto it = locations.find(entry);
  if (idx < 0 || it == locations.end())
    return fail("zip: missing entry '" + entry + "'");
  const EntryLoc &loc = it->second;
  const uint8_t *base = ckpt.file->getBuffer().bytes_begin();
  if (loc.method == ZIP_CM_STORE)
    return ArrayRef<uint8_t>(base + loc.dataOffset, loc.compSize);

  zip_stat_t st;
  if (zip_stat_index(za, idx, 0, &st) != 0)
    return fail("zip: cannot read entry '" + entry + "'");
  // Deflate expands at most ~1032:1; refuse sizes the data cannot justify.
  if (st.size / 1100 > st.comp_size)
    return fail("zip: entry '" + entry + "' claims " + Twine(st.size) +
                " bytes from " + Twine(st.comp_size) + " compressed bytes");
  zip_file_t *zf = zip_fopen_index(za, idx, 0);
  if (!zf)
    return fail("zip: cannot decompress entry '" + entry +
                "': " + zip_strerror(za));
  auto owned = allocateOwned(st.size, "zip: decompressing entry '" + entry +
                                          "' (" + Twine(st.size) + " bytes)");
  if (!owned) {
    zip_fclose(zf);
    return owned.takeError();
  }
  uint8_t *dst = *owned;
  zip_int64_t got = zip_fread(zf, dst, st.size);
  bool ok = got >= 0 && uint64_t(got) == st.size;
  std::string why = ok ? "" : zip_file_strerror(zf);
  zip_fclose(zf);
  if (!ok)
    return fail("zip: cannot decompress entry '" + entry + "': " + why);
  return ArrayRef<uint8_t>(dst, st.size);
}

/// Builds the canonical tensor `name` from a _rebuild_tensor_v2 reference,
/// mapping contiguous views and copying strided ones.
Error buildTensor(Checkpoint &ckpt, PthArchive &ar, StringRef file,
                  StringRef name, const pickle::TensorRef &ref,
                  StringMap<ArrayRef<uint8_t>> &storages) {
  auto fail = [&](const Twine &why) {
    return fileError(file, "tensor '" + name + "': " + why);
  };
  const pickle::StorageRef &sto = *ref.storage;
  if (!sto.dtype)
    return fail("storage type " + sto.typeName +
                " is not supported (float32, float16 and bfloat16 are)");
  DType dtype = *sto.dtype;
  unsigned elem = floatElementBytes(dtype);
  std::string entry = (ar.prefix() + "data/" + sto.key).str();
  auto cached = storages.find(entry);
  if (cached == storages.end()) {
    auto bytes = ar.entryBytes(entry);
    if (!bytes)
      return bytes.takeError();
    cached = storages.insert({entry, *bytes}).first;
  }
  ArrayRef<uint8_t> storage = cached->second;
  auto storageBytes = mulChecked(sto.numel, elem);
  if (!storageBytes || *storageBytes > storage.size())
    return fail("storage '" + sto.key + "' of " + Twine(sto.numel) +
                " elements runs past the end of its zip entry (" +
                Twine(storage.size()) + " bytes)");

  Tensor t;
  t.name = name.str();
  t.dtype = dtype;
  t.shape.assign(ref.size.begin(), ref.size.end());
  auto numel = checkedNumElements(t.shape);
  if (!numel)
    return fail("bad shape " + shapeString(t.shape));
  // The furthest element the view touches must lie inside the storage.
  bool contiguous = true;
  uint64_t last = ref.offset, expect = 1;
  for (size_t d = ref.size.size(); d-- > 0;) {
    int64_t sz = ref.size[d], st = ref.stride[d];
    if (st < 0)
      return fail("negative stride");
    if (sz != 1 && uint64_t(st) != expect)
      contiguous = false;
    expect *= uint64_t(sz); // bounded by numel, checked above
    if (*numel == 0)
      continue;
    auto reach = mulChecked(uint64_t(sz - 1), uint64_t(st));
    auto sum = reach ? addChecked(last, *reach) : std::nullopt;
    if (!sum)
      return fail("view overflows");
    last = *sum;
  }
  if (*numel && last >= sto.numel)
    return fail("view (offset " + Twine(ref.offset) + ", shape " +
                shapeString(t.shape) + ") runs past the end of storage '" +
                sto.key + "' (" + Twine(sto.numel) + " elements)");
  // A view that visits elements more than once (a stride of 0, overlapping
  // strides) could be made far larger than the file; torch.save writes none.
  if (*numel > sto.numel)
    return fail("view (shape " + shapeString(t.shape) + ", " + Twine(*numel) +
                " elements) is larger than storage '" + sto.key + "' (" +
                Twine(sto.numel) + " elements): it repeats elements");
  t.nbytes = *numel * elem;
  if (contiguous || *numel == 0) {
    // An empty view may name any offset; keep the pointer in bounds.
    t.data = storage.data() + (*numel ? ref.offset * elem : 0);
    t.mapped = ckpt.file->getBuffer().bytes_begin() <= t.data &&
               t.data < ckpt.file->getBuffer().bytes_end();
  } else {
    auto owned = ar.allocateOwned(t.nbytes, "tensor '" + name +
                                                "': copying its strided view");
    if (!owned)
      return owned.takeError();
    uint8_t *dst = *owned;
    SmallVector<int64_t, 4> index(t.shape.size(), 0);
    for (uint64_t i = 0; i < *numel; ++i) {
      uint64_t src = ref.offset;
      for (size_t d = 0; d < index.size(); ++d)
        src += uint64_t(index[d]) * uint64_t(ref.stride[d]);
      std::memcpy(dst + i * elem, storage.data() + src * elem, elem);
      for (size_t d = index.size(); d-- > 0;) {
        if (++index[d] < t.shape[d])
          break;
        index[d] = 0;
      }
    }
    t.data = dst;
  }
  ckpt.tensors.push_back(std::move(t));
  return Error::success();
}

} // namespace

Expected<std::unique_ptr<Checkpoint>>
readPth(std::unique_ptr<MemoryBuffer> buffer, StringRef name) {
  auto ckpt = std::make_unique<Checkpoint>();
  ckpt->format = Format::Pth;
  ckpt->path = name.str();
  ckpt->file = std::move(buffer);

  PthArchive ar(*ckpt, name);
  if (Error e = ar.open())
    return std::move(e);

  std::string byteorder = (ar.prefix() + "byteorder").str();
  if (ar.hasEntry(byteorder)) {
    auto bytes = ar.entryBytes(byteorder);
    if (!bytes)
      return bytes.takeError();
    StringRef order(reinterpret_cast<const char *>(bytes->data()),
                    bytes->size());
    if (order.trim() != "little")
      return fileError(name, "zip: byteorder '" + order.trim() +
                                 "' is not supported (little-endian only)");
  }
  auto pkl = ar.entryBytes((ar.prefix() + "data.pkl").str());
  if (!pkl)
    return pkl.takeError();
  auto pickled = pickle::unpickle(
      StringRef(reinterpret_cast<const char *>(pkl->data()), pkl->size()));
  if (!pickled)
    return fileError(name, toString(pickled.takeError()));
  const pickle::Value &root = *pickled->root;
  if (root.kind != pickle::Value::Dict)
    return fileError(name, "data.pkl: the pickle is not a dict of tensors");

  StringMap<ArrayRef<uint8_t>> storages;
  StringMap<bool> seen;
  ArrayRef<pickle::ValueRef> items = root.items(); // key, value, key, ...
  for (size_t k = 0; k + 1 < items.size(); k += 2) {
    const pickle::Value &key = *items[k], &value = *items[k + 1];
    if (key.kind != pickle::Value::String)
      return fileError(name, "data.pkl: a key of the state dict is not a "
                             "string");
    if (value.kind != pickle::Value::Tensor)
      return fileError(name, "data.pkl: value of '" + key.str() +
                                 "' is not a tensor");
    if (!seen.insert({key.str(), true}).second)
      return fileError(name,
                       "data.pkl: tensor '" + key.str() + "' appears twice");
    if (Error e =
            buildTensor(*ckpt, ar, name, key.str(), *value.tensor, storages))
      return std::move(e);
  }
  return std::move(ckpt);
}

} // namespace rwkvc
