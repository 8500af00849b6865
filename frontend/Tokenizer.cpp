//===- Tokenizer.cpp - Compiling a tokenizer into the model blob ----------===//
//
// vocabulary file --parse + validate--> Vocab --serialise--> blob (v1)
//
// The blob layout is runtime/format/rwkv_tokenizer_format.h (documented in
// docs/tokenizers.md), which the runtime reader (runtime/rwkv_tokenizer.cpp)
// includes too.
//
//===----------------------------------------------------------------------===//

#include "frontend/Tokenizer.h"
#include "frontend/TokenizerFiles.h"

#include "frontend/BoundedJSON.h"
#include "frontend/EmbedFile.h"
#include "frontend/ReaderSupport.h"
#include "runtime/format/rwkv_tokenizer_format.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/ConvertUTF.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <array>
#include <map>
#include <optional>

using namespace llvm;

namespace rwkvc {
namespace {

// The blob's constants and layout: runtime/format/rwkv_tokenizer_format.h.
enum Kind : uint32_t {
  kBytes = RWKV_TOKENIZER_BYTES,
  kWorld = RWKV_TOKENIZER_WORLD,
  kBpe = RWKV_TOKENIZER_BPE
};
enum AddedFlags : uint32_t {
  kAddedSpecial = RWKV_TOKENIZER_ADDED_SPECIAL,
  kAddedNormalized = RWKV_TOKENIZER_ADDED_NORMALIZED
};

/// What a blob holds, before serialisation.
struct Vocab {
  Kind kind = kBytes;
  std::vector<std::string> tokens; // (n_tokens) bytes of each id
  int32_t eos = -1;
  bool nfc = false;
  std::vector<std::array<uint32_t, 3>> merges; // (left, right, result)
  std::vector<std::pair<uint32_t, uint32_t>> added; // (id, AddedFlags)
};

Error fail(const Twine &msg) {
  return createStringError(inconvertibleErrorCode(), msg);
}

void put32(std::vector<uint8_t> &b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(uint8_t(v >> (8 * i)));
}
void put64(std::vector<uint8_t> &b, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b.push_back(uint8_t(v >> (8 * i)));
}

std::vector<uint8_t> serialise(const Vocab &v) {
  uint64_t pool = 0;
  for (const std::string &t : v.tokens)
    pool += t.size();
  rwkv_tokenizer_header h = {};
  memcpy(h.magic, RWKV_TOKENIZER_MAGIC, sizeof h.magic);
  h.version = kTokenizerBlobVersion;
  h.kind = v.kind;
  h.n_tokens = uint32_t(v.tokens.size());
  h.eos = v.eos;
  h.flags = v.nfc ? RWKV_TOKENIZER_FLAG_NFC : 0;
  h.n_merges = uint32_t(v.merges.size());
  h.n_added = uint32_t(v.added.size());
  h.pool_size = uint32_t(pool);
  h.total_size =
      rwkv_tokenizer_blob_bytes(h.n_tokens, pool, h.n_merges, h.n_added);
  // The header's fields one by one, little-endian whatever the host.
  std::vector<uint8_t> b(h.magic, h.magic + sizeof h.magic);
  for (uint32_t x : {h.version, h.kind, h.n_tokens, uint32_t(h.eos), h.flags,
                     h.n_merges, h.n_added, h.pool_size})
    put32(b, x);
  put64(b, h.total_size);
  assert(b.size() == sizeof h && "blob header size");
  uint32_t end = 0;
  for (const std::string &t : v.tokens)
    put32(b, end += uint32_t(t.size()));
  for (const std::string &t : v.tokens)
    b.insert(b.end(), t.begin(), t.end());
  while (b.size() % 4)
    b.push_back(0);
  for (const auto &m : v.merges)
    for (uint32_t x : m)
      put32(b, x);
  for (const auto &a : v.added) {
    put32(b, a.first);
    put32(b, a.second);
  }
  put64(b, rwkv_fnv1a64(b.data(), b.size()));
  assert(b.size() == h.total_size && "blob size");
  return b;
}

Expected<std::unique_ptr<MemoryBuffer>> readFile(StringRef path) {
  auto buf = detail::openRegularFile(path);
  if (!buf)
    return fail("cannot read the tokenizer file '" + path +
                "': " + toString(buf.takeError()));
  return std::move(*buf);
}

void appendUtf8(std::string &out, uint32_t cp) {
  char buf[4];
  char *p = buf;
  ConvertCodePointToUTF8(cp, p);
  out.append(buf, p);
}

/// Decodes a Python str or bytes literal ('..', "..", b'..', b"..").
/// Returns false when it is malformed.
bool parsePyLiteral(StringRef lit, std::string &out) {
  bool isBytes = lit.consume_front("b");
  if (lit.size() < 2 || (lit.front() != '\'' && lit.front() != '"') ||
      lit.back() != lit.front())
    return false;
  lit = lit.drop_front().drop_back();
  for (size_t i = 0; i < lit.size(); ++i) {
    char c = lit[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= lit.size())
      return false;
    char e = lit[i];
    auto hex = [&](size_t n, uint32_t &v) {
      if (i + n >= lit.size()) // needs lit[i + 1, i + n]
        return false;
      unsigned long long x;
      if (getAsUnsignedInteger(lit.substr(i + 1, n), 16, x))
        return false;
      v = uint32_t(x);
      i += n;
      return true;
    };
    uint32_t v;
    switch (e) {
    case '\\': out += '\\'; break;
    case '\'': out += '\''; break;
    case '"': out += '"'; break;
    case 'n': out += '\n'; break;
    case 'r': out += '\r'; break;
    case 't': out += '\t'; break;
    case 'a': out += '\a'; break;
    case 'b': out += '\b'; break;
    case 'f': out += '\f'; break;
    case 'v': out += '\v'; break;
    case 'x':
      if (!hex(2, v))
        return false;
      if (isBytes)
        out += char(v);
      else
        appendUtf8(out, v);
      break;
    case 'u':
    case 'U':
      if (isBytes) {
        out += '\\';
        out += e;
        break;
      }
      if (!hex(e == 'u' ? 4 : 8, v) || v > 0x10FFFF)
        return false;
      appendUtf8(out, v);
      break;
    default:
      if (e >= '0' && e <= '7') { // octal, up to 3 digits
        v = 0;
        size_t k = 0;
        for (; k < 3 && i + k < lit.size() && lit[i + k] >= '0' &&
               lit[i + k] <= '7';
             ++k)
          v = v * 8 + uint32_t(lit[i + k] - '0');
        i += k - 1;
        if (isBytes)
          out += char(v & 0xFF);
        else
          appendUtf8(out, v);
      } else { // Python keeps unknown escapes
        out += '\\';
        out += e;
      }
    }
  }
  return true;
}

/// An RWKV World vocabulary: `<id> <python literal> <byte length>` per line.
Expected<Vocab> readWorld(StringRef path) {
  auto buf = readFile(path);
  if (!buf)
    return buf.takeError();
  Vocab v;
  v.kind = kWorld;
  v.eos = 0;
  std::map<uint32_t, std::string> byId;
  StringRef text = (*buf)->getBuffer();
  unsigned lineNo = 0;
  while (!text.empty()) {
    StringRef line;
    std::tie(line, text) = text.split('\n');
    ++lineNo;
    line = line.rtrim("\r");
    if (line.trim().empty())
      continue;
    auto bad = [&](const Twine &why) {
      return fail("tokenizer file '" + path + "', line " + Twine(lineNo) +
                  ": " + why);
    };
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == StringRef::npos || sp2 <= sp1)
      return bad("expected '<id> <literal> <length>'");
    unsigned id, len;
    if (line.substr(0, sp1).getAsInteger(10, id))
      return bad("'" + line.substr(0, sp1) + "' is not a token id");
    if (line.substr(sp2 + 1).getAsInteger(10, len))
      return bad("'" + line.substr(sp2 + 1) + "' is not a byte length");
    std::string bytes;
    if (!parsePyLiteral(line.substr(sp1 + 1, sp2 - sp1 - 1), bytes))
      return bad("malformed literal " + line.substr(sp1 + 1, sp2 - sp1 - 1));
    if (bytes.size() != len)
      return bad("the literal has " + Twine(bytes.size()) +
                 " bytes but the line says " + Twine(len));
    if (id == 0)
      return bad("id 0 is reserved for the end of text");
    if (id >= (1u << 24))
      return bad("id " + Twine(id) + " is too large");
    if (!byId.emplace(id, std::move(bytes)).second)
      return bad("id " + Twine(id) + " appears twice");
  }
  if (byId.empty())
    return fail("tokenizer file '" + path + "' has no tokens");
  v.tokens.resize(byId.rbegin()->first + 1);
  for (auto &[id, b] : byId)
    v.tokens[id] = std::move(b);
  return v;
}

/// GPT-2's bytes_to_unicode, inverted: byte-level character -> byte.
std::map<uint32_t, uint8_t> byteLevelDecoder() {
  std::map<uint32_t, uint8_t> m;
  uint32_t n = 0;
  for (uint32_t b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                     (b >= 0xAE && b <= 0xFF);
    m[printable ? b : 256 + n++] = uint8_t(b);
  }
  return m;
}

/// A Hugging Face tokenizer.json with a byte-level BPE model.
Expected<Vocab> readHfJson(StringRef path) {
  auto buf = readFile(path);
  if (!buf)
    return buf.takeError();
  auto bad = [&](const Twine &why) {
    return fail("tokenizer file '" + path + "': " + why);
  };
  Expected<json::Value> parsed = parseBoundedJSON((*buf)->getBuffer());
  if (!parsed)
    return bad("not valid JSON: " + toString(parsed.takeError()));
  const json::Object *root = parsed->getAsObject();
  if (!root)
    return bad("not a Hugging Face tokenizer (no top-level object)");
  const json::Object *model = root->getObject("model");
  if (!model || model->getString("type") != StringRef("BPE"))
    return bad("only byte-level BPE models (\"model\": {\"type\": \"BPE\"}) "
               "are supported");
  const json::Object *pre = root->getObject("pre_tokenizer");
  if (!pre || pre->getString("type") != StringRef("ByteLevel"))
    return bad("only the ByteLevel pre-tokenizer is supported");
  if (pre->getBoolean("add_prefix_space").value_or(false))
    return bad("ByteLevel add_prefix_space is not supported");
  if (pre->getBoolean("use_regex").value_or(true) == false)
    return bad("ByteLevel use_regex false is not supported");
  Vocab v;
  v.kind = kBpe;
  if (const json::Value *norm = root->get("normalizer")) {
    if (norm->kind() != json::Value::Null) {
      const json::Object *o = norm->getAsObject();
      if (!o || o->getString("type") != StringRef("NFC"))
        return bad("only the NFC normalizer (or none) is supported");
      v.nfc = true;
    }
  }
  const json::Object *vocab = model->getObject("vocab");
  const json::Array *merges = model->getArray("merges");
  if (!vocab || !merges)
    return bad("the model has no vocab or no merges");
  std::map<uint32_t, uint8_t> dec = byteLevelDecoder();
  std::map<std::string, uint32_t> idOf; // byte-level string -> id
  uint32_t maxId = 0;
  std::map<uint32_t, std::string> bytesOf;
  for (const auto &kv : *vocab) {
    std::optional<int64_t> id = kv.second.getAsInteger();
    if (!id || *id < 0 || *id >= (1 << 24))
      return bad("vocab entry '" + StringRef(kv.first) + "' has no valid id");
    std::string bytes;
    const json::ObjectKey &key = kv.first;
    StringRef s = key;
    for (size_t i = 0; i < s.size();) {
      const UTF8 *p = reinterpret_cast<const UTF8 *>(s.data() + i);
      UTF32 cp;
      const UTF8 *q = p;
      if (convertUTF8Sequence(&q, p + (s.size() - i), &cp, strictConversion) !=
          conversionOK)
        return bad("vocab entry '" + s + "' is not valid UTF-8");
      auto it = dec.find(cp);
      if (it == dec.end())
        return bad("vocab entry '" + s + "' is not byte-level encoded");
      bytes += char(it->second);
      i += size_t(q - p);
    }
    idOf[s.str()] = uint32_t(*id);
    bytesOf[uint32_t(*id)] = bytes;
    maxId = std::max(maxId, uint32_t(*id));
  }
  if (const json::Array *added = root->getArray("added_tokens")) {
    for (const json::Value &a : *added) {
      const json::Object *o = a.getAsObject();
      std::optional<int64_t> id = o ? o->getInteger("id") : std::nullopt;
      std::optional<StringRef> content =
          o ? o->getString("content") : std::nullopt;
      if (!id || !content || *id < 0 || *id >= (1 << 24) || content->empty())
        return bad("malformed added_tokens entry");
      if (o->getBoolean("lstrip").value_or(false) ||
          o->getBoolean("rstrip").value_or(false) ||
          o->getBoolean("single_word").value_or(false))
        return bad("added token '" + *content +
                   "': lstrip/rstrip/single_word are not supported");
      bool special = o->getBoolean("special").value_or(false);
      bool normalized = o->getBoolean("normalized").value_or(!special);
      bytesOf[uint32_t(*id)] = content->str();
      maxId = std::max(maxId, uint32_t(*id));
      v.added.push_back({uint32_t(*id), (special ? kAddedSpecial : 0u) |
                                            (normalized ? kAddedNormalized
                                                        : 0u)});
      if (*content == "<|endoftext|>")
        v.eos = int32_t(*id);
    }
  }
  v.tokens.resize(maxId + 1);
  for (auto &[id, b] : bytesOf)
    v.tokens[id] = b;
  for (size_t r = 0; r < merges->size(); ++r) {
    const json::Value &m = (*merges)[r];
    std::string a, b;
    if (std::optional<StringRef> s = m.getAsString()) {
      auto [l, rr] = s->split(' ');
      a = l.str();
      b = rr.str();
    } else if (const json::Array *pair = m.getAsArray();
               pair && pair->size() == 2 && (*pair)[0].getAsString() &&
               (*pair)[1].getAsString()) {
      a = (*pair)[0].getAsString()->str();
      b = (*pair)[1].getAsString()->str();
    } else {
      return bad("merge " + Twine(r) + " is malformed");
    }
    auto ia = idOf.find(a), ib = idOf.find(b), ic = idOf.find(a + b);
    if (ia == idOf.end() || ib == idOf.end() || ic == idOf.end())
      return bad("merge " + Twine(r) + " ('" + a + " " + b +
                 "') names a token not in the vocab");
    v.merges.push_back({ia->second, ib->second, ic->second});
  }
  // Byte-level BPE starts from single bytes; bytes that never occur in
  // UTF-8 (0xC0, 0xC1, 0xF5..0xFF) may lack a token (20B has none for 0xC0
  // and 0xC1); the runtime reports any other gap when it meets the byte.
  return v;
}

} // namespace

std::string tokenizerBlobAssembly(StringRef blobPath) {
  return embedFileAssembly("rwkv_tokenizer_blob", blobPath, 8);
}

std::string defaultTokenizerFor(int64_t vocabSize) {
  switch (vocabSize) {
  case 256:
    return "bytes";
  case 50277:
  case 50304:
    return "20b";
  case 65536:
    return "world";
  default:
    return "";
  }
}

Expected<std::vector<uint8_t>> compileTokenizer(StringRef spec,
                                                int64_t vocabSize,
                                                StringRef searchDir) {
  Expected<Vocab> v = fail("");
  consumeError(v.takeError());
  std::string path;
  auto inDir = [&](StringRef name) {
    SmallString<256> p(searchDir);
    sys::path::append(p, name);
    return std::string(p);
  };
  if (spec == "bytes") {
    Vocab b;
    b.kind = kBytes;
    for (unsigned i = 0; i < 256; ++i)
      b.tokens.push_back(std::string(1, char(i)));
    v = std::move(b);
  } else if (spec == "world" || spec.ends_with(".txt")) {
    path = spec == "world" ? inDir(bundledTokenizerFile(spec)) : spec.str();
    v = readWorld(path);
  } else if (spec == "20b" || spec.ends_with(".json")) {
    path = spec == "20b" ? inDir(bundledTokenizerFile(spec)) : spec.str();
    v = readHfJson(path);
  } else {
    return fail("unknown tokenizer '" + spec +
                "': expected bytes, world, 20b, a Hugging Face tokenizer "
                ".json or an RWKV World vocabulary .txt");
  }
  if (!v)
    return v.takeError();
  if (vocabSize > 0 && int64_t(v->tokens.size()) > vocabSize)
    return fail("tokenizer '" + spec + "' has " + Twine(v->tokens.size()) +
                " tokens, the model only " + Twine(vocabSize));
  return serialise(*v);
}

} // namespace rwkvc
