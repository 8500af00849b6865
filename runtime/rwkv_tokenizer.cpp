//===- rwkv_tokenizer.cpp - Tokenizers of compiled models -----------------===//
//
// Reads the tokenizer blob rwkvc links into a model (docs/tokenizers.md) and
// implements encode/decode for its three kinds:
//
//   bytes  id = byte
//   world  greedy longest match over the UTF-8 bytes, through a trie kept as
//          one hash table (node, byte) -> child
//   bpe    Hugging Face byte-level BPE (GPT-NeoX 20B):
//            text --split on added tokens (normalized: false)-->
//            pieces --NFC--> --split on added tokens (normalized: true)-->
//            pieces --GPT-2 pre-tokenizer regex--> words --BPE merges--> ids
//
// Plus the streaming UTF-8 helper. No LLVM: a compiled model needs only libc,
// libstdc++ and libm. Built with -fno-exceptions.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"
#include "format/rwkv_tokenizer_format.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

extern "C" {
extern const uint8_t rwkv_tokenizer_blob[] __attribute__((weak));
extern const uint64_t rwkv_tokenizer_blob_size __attribute__((weak));
}


namespace {

#include "rwkv_unicode_tables.inc"

//===----------------------------------------------------------------------===//
// Unicode
//===----------------------------------------------------------------------===//

/// Decodes one UTF-8 character at s[i]; returns its length (0: invalid).
size_t decodeUtf8(const uint8_t *s, size_t n, size_t i, uint32_t &cp) {
  uint8_t b = s[i];
  if (b < 0x80) {
    cp = b;
    return 1;
  }
  size_t len;
  uint32_t min;
  if ((b & 0xE0) == 0xC0) {
    len = 2, cp = b & 0x1F, min = 0x80;
  } else if ((b & 0xF0) == 0xE0) {
    len = 3, cp = b & 0x0F, min = 0x800;
  } else if ((b & 0xF8) == 0xF0) {
    len = 4, cp = b & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > n)
    return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i + k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

template <size_t N>
bool inRanges(const uint32_t (&r)[N][2], uint32_t cp) {
  size_t lo = 0, hi = N;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (r[mid][1] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < N && r[lo][0] <= cp;
}

bool isLetter(uint32_t cp) {
  if (cp < 0x80)
    return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return inRanges(kLetterRanges, cp);
}

bool isNumber(uint32_t cp) {
  if (cp < 0x80)
    return cp >= '0' && cp <= '9';
  return inRanges(kNumberRanges, cp);
}

/// Unicode White_Space (what the regex \s matches in Rust/Oniguruma).
bool isSpace(uint32_t cp) {
  return (cp >= 0x9 && cp <= 0xD) || cp == 0x20 || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

uint32_t ccc(uint32_t cp) {
  if (cp < 0x300)
    return 0;
  size_t n = sizeof kCcc / sizeof kCcc[0], lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (kCcc[mid][0] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && kCcc[lo][0] == cp ? kCcc[lo][1] : 0;
}

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161,
                   kTBase = 0x11A7, kLCount = 19, kVCount = 21, kTCount = 28,
                   kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(uint32_t cp, std::vector<uint32_t> &out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount)
      out.push_back(kTBase + s % kTCount);
    return;
  }
  size_t n = sizeof kDecomp / sizeof kDecomp[0], lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (kDecomp[mid][0] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < n && kDecomp[lo][0] == cp) {
    for (uint32_t k = 0; k < kDecomp[lo][2]; ++k)
      out.push_back(kDecompData[kDecomp[lo][1] + k]);
    return;
  }
  out.push_back(cp);
}

/// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase &&
      b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 &&
      b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  size_t n = sizeof kCompose / sizeof kCompose[0], lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (kCompose[mid][0] < a || (kCompose[mid][0] == a && kCompose[mid][1] < b))
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < n && kCompose[lo][0] == a && kCompose[lo][1] == b)
    return kCompose[lo][2];
  return 0;
}

/// NFC of valid UTF-8 `s`.
std::string nfc(const std::string &s) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(s.data());
  bool trivial = true;
  for (size_t i = 0; i < s.size() && trivial; ++i)
    trivial = p[i] < 0xCC; // every code point below U+0300
  if (trivial)
    return s;
  std::vector<uint32_t> d;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = 0;
    size_t len = decodeUtf8(p, s.size(), i, cp);
    if (len == 0) { // not reached: the text was validated
      cp = 0xFFFD;
      len = 1;
    }
    decompose(cp, d);
    i += len;
  }
  // Canonical ordering: stable sort of each run of non-starters by ccc.
  for (size_t i = 0; i < d.size();) {
    if (ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc(d[j]) != 0)
      ++j;
    for (size_t a = i + 1; a < j; ++a) // stable insertion sort
      for (size_t b = a; b > i && ccc(d[b - 1]) > ccc(d[b]); --b)
        std::swap(d[b - 1], d[b]);
    i = j;
  }
  // Canonical composition.
  std::vector<uint32_t> out;
  long starter = -1;
  for (uint32_t c : d) {
    uint32_t cc = ccc(c);
    if (starter >= 0) {
      bool adjacent = long(out.size()) - 1 == starter;
      uint32_t last = ccc(out.back());
      bool blocked = !adjacent && (last == 0 || last >= cc);
      if (!blocked) {
        if (uint32_t comp = compose(out[size_t(starter)], c)) {
          out[size_t(starter)] = comp;
          continue;
        }
      }
    }
    if (cc == 0)
      starter = long(out.size());
    out.push_back(c);
  }
  std::string r;
  for (uint32_t c : out)
    appendUtf8(r, c);
  return r;
}

//===----------------------------------------------------------------------===//
// A hash table with uint64_t keys (open addressing, linear probing)
//===----------------------------------------------------------------------===//

class FlatMap {
public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2)
      cap *= 2;
    keys.assign(cap, kEmpty);
    vals.assign(cap, 0);
    mask = cap - 1;
    count = 0;
  }
  /// Inserts unless present; returns the value now stored.
  uint64_t insert(uint64_t key, uint64_t val) {
    if ((count + 1) * 2 > keys.size())
      grow();
    size_t i = hash(key) & mask;
    while (keys[i] != kEmpty) {
      if (keys[i] == key)
        return vals[i];
      i = (i + 1) & mask;
    }
    keys[i] = key;
    vals[i] = val;
    ++count;
    return val;
  }
  bool find(uint64_t key, uint64_t &val) const {
    if (keys.empty())
      return false;
    size_t i = hash(key) & mask;
    while (keys[i] != kEmpty) {
      if (keys[i] == key) {
        val = vals[i];
        return true;
      }
      i = (i + 1) & mask;
    }
    return false;
  }

private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  void grow() {
    std::vector<uint64_t> k = std::move(keys), v = std::move(vals);
    reserve(k.empty() ? 8 : k.size());
    for (size_t i = 0; i < k.size(); ++i)
      if (k[i] != kEmpty)
        insert(k[i], v[i]);
  }
  std::vector<uint64_t> keys, vals;
  size_t mask = 0, count = 0;
};

/// A byte trie: node 0 is the root; edges in one hash table.
class Trie {
public:
  Trie() : tokens(1, -1) {}
  void insert(const uint8_t *s, size_t n, int32_t id) {
    uint64_t node = 0;
    for (size_t i = 0; i < n; ++i) {
      uint64_t next = tokens.size();
      next = edges.insert((node << 8) | s[i], next);
      if (next == tokens.size())
        tokens.push_back(-1);
      node = next;
    }
    if (tokens[node] < 0)
      tokens[node] = id;
  }
  bool empty() const { return tokens.size() == 1; }
  /// The longest token that is a prefix of s[0, n): its id and length.
  int32_t longest(const uint8_t *s, size_t n, size_t &len) const {
    uint64_t node = 0;
    int32_t best = -1;
    len = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!edges.find((node << 8) | s[i], node))
        break;
      if (tokens[node] >= 0) {
        best = tokens[node];
        len = i + 1;
      }
    }
    return best;
  }

private:
  FlatMap edges;
  std::vector<int32_t> tokens; // per node: the token ending there, or -1
};

//===----------------------------------------------------------------------===//
// The blob
//===----------------------------------------------------------------------===//

// The layout is format/rwkv_tokenizer_format.h's.
constexpr size_t kHeaderSize = sizeof(rwkv_tokenizer_header);
constexpr uint32_t kBytes = RWKV_TOKENIZER_BYTES, kWorld = RWKV_TOKENIZER_WORLD,
                   kBpe = RWKV_TOKENIZER_BPE;

uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

} // namespace

struct rwkv_tokenizer {
  uint32_t kind = 0;
  uint32_t nTokens = 0;
  int32_t eos = -1;
  bool nfc = false;
  std::vector<uint32_t> tokEnd; // (n_tokens) end of token i's bytes in pool
  std::vector<uint8_t> pool;
  Trie vocab;                 // world: every token
  Trie rawAdded, normAdded;   // bpe: added tokens matched before/after NFC
  int32_t byteToken[256];     // bpe: the token of each single byte
  FlatMap merges;             // bpe: (left << 32 | right) -> rank << 32 | id

  const uint8_t *bytes(uint32_t id, size_t &n) const {
    uint32_t b = id ? tokEnd[id - 1] : 0;
    n = tokEnd[id] - b;
    return pool.data() + b;
  }
};

namespace {

bool parseBlob(rwkv_tokenizer &t, const uint8_t *p, size_t size,
               size_t nVocab, char *err, size_t errlen) {
  rwkv_tokenizer_header h;
  if (size < kHeaderSize + 8 ||
      memcmp(p, RWKV_TOKENIZER_MAGIC, sizeof h.magic) != 0) {
    RWKV_SET_ERROR(err, errlen, "the tokenizer blob is not an rwkvc tokenizer "
                          "(bad magic or only {} bytes)",
             size);
    return false;
  }
  memcpy(&h, p, kHeaderSize);
  if (h.version != RWKV_TOKENIZER_FORMAT_VERSION) {
    RWKV_SET_ERROR(err, errlen,
             "the tokenizer blob has format version {}; this runtime reads "
             "version {}",
             h.version, unsigned(RWKV_TOKENIZER_FORMAT_VERSION));
    return false;
  }
  t.kind = h.kind;
  t.nTokens = h.n_tokens;
  t.eos = h.eos;
  uint32_t nMerges = h.n_merges, nAdded = h.n_added, poolSize = h.pool_size;
  uint64_t total = h.total_size;
  t.nfc = h.flags & RWKV_TOKENIZER_FLAG_NFC;
  uint64_t need = rwkv_tokenizer_blob_bytes(t.nTokens, poolSize, nMerges, nAdded);
  if (total != size || need != size) {
    RWKV_SET_ERROR(err, errlen,
             "the tokenizer blob is truncated or corrupt ({} bytes, header "
             "says {}, sections need {})",
             size, (unsigned long long)total, (unsigned long long)need);
    return false;
  }
  if (rwkv_fnv1a64(p, size - 8) != rd64(p + size - 8)) {
    RWKV_SET_ERROR(err, errlen, "the tokenizer blob is corrupt (bad checksum)");
    return false;
  }
  if (t.kind < kBytes || t.kind > kBpe || t.nTokens == 0 ||
      (t.eos < -1 || t.eos >= int64_t(t.nTokens))) {
    RWKV_SET_ERROR(err, errlen, "the tokenizer blob is corrupt (kind {}, {} tokens, "
                          "end of text {})",
             t.kind, t.nTokens, t.eos);
    return false;
  }
  if (nVocab && t.nTokens > nVocab) {
    RWKV_SET_ERROR(err, errlen,
             "the tokenizer has {} tokens but the model only {} logits",
             t.nTokens, nVocab);
    return false;
  }
  const uint8_t *q = p + kHeaderSize;
  t.tokEnd.resize(t.nTokens);
  uint32_t prev = 0;
  for (uint32_t i = 0; i < t.nTokens; ++i) {
    t.tokEnd[i] = rd32(q + 4 * size_t(i));
    if (t.tokEnd[i] < prev || t.tokEnd[i] > poolSize) {
      RWKV_SET_ERROR(err, errlen, "the tokenizer blob is corrupt (token {})", i);
      return false;
    }
    prev = t.tokEnd[i];
  }
  q += 4 * size_t(t.nTokens);
  t.pool.assign(q, q + poolSize);
  q += (size_t(poolSize) + 3) & ~size_t(3);

  if (t.kind == kWorld) {
    for (uint32_t i = 0; i < t.nTokens; ++i) {
      size_t n;
      const uint8_t *b = t.bytes(i, n);
      if (n)
        t.vocab.insert(b, n, int32_t(i));
    }
  }
  if (t.kind == kBpe) {
    std::fill(std::begin(t.byteToken), std::end(t.byteToken), -1);
    for (uint32_t i = 0; i < t.nTokens; ++i) {
      size_t n;
      const uint8_t *b = t.bytes(i, n);
      if (n == 1 && t.byteToken[b[0]] < 0)
        t.byteToken[b[0]] = int32_t(i);
    }
    t.merges.reserve(nMerges);
    for (uint32_t r = 0; r < nMerges; ++r, q += 12) {
      uint32_t a = rd32(q), b = rd32(q + 4), c = rd32(q + 8);
      if (a >= t.nTokens || b >= t.nTokens || c >= t.nTokens) {
        RWKV_SET_ERROR(err, errlen, "the tokenizer blob is corrupt (merge {})", r);
        return false;
      }
      t.merges.insert((uint64_t(a) << 32) | b, (uint64_t(r) << 32) | c);
    }
    for (uint32_t k = 0; k < nAdded; ++k, q += 8) {
      uint32_t id = rd32(q), f = rd32(q + 4);
      size_t n;
      if (id >= t.nTokens) {
        RWKV_SET_ERROR(err, errlen, "the tokenizer blob is corrupt (added {})", k);
        return false;
      }
      const uint8_t *b = t.bytes(id, n);
      if (n)
        (f & RWKV_TOKENIZER_ADDED_NORMALIZED ? t.normAdded : t.rawAdded)
            .insert(b, n, int32_t(id));
    }
  }
  return true;
}

//===----------------------------------------------------------------------===//
// Encoding
//===----------------------------------------------------------------------===//

/// Byte-pair merges over one pre-token: repeatedly merge the adjacent pair
/// of lowest rank, leftmost first (what Hugging Face's BPE does without
/// dropout). Symbols form a linked list; candidate merges wait in a min-heap
/// on (rank, position) and are checked when popped, O(n log n) per word.
bool bpeWord(const rwkv_tokenizer &t, const uint8_t *s, size_t n,
             std::vector<int32_t> &out, char *err, size_t errlen) {
  struct Sym {
    uint32_t id;
    int64_t prev, next; // -1: none
    bool alive;
  };
  std::vector<Sym> sym(n);
  for (size_t i = 0; i < n; ++i) {
    if (t.byteToken[s[i]] < 0) {
      RWKV_SET_ERROR(err, errlen, "the tokenizer has no token for byte {:#04x}",
               s[i]);
      return false;
    }
    sym[i] = {uint32_t(t.byteToken[s[i]]), int64_t(i) - 1,
              i + 1 < n ? int64_t(i) + 1 : -1, true};
  }
  struct Cand {
    uint64_t rank;
    uint64_t pos;
    uint32_t left, right, merged;
    bool operator>(const Cand &o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::vector<Cand> heap;
  auto push = [&](int64_t pos) {
    if (pos < 0 || sym[size_t(pos)].next < 0)
      return;
    const Sym &a = sym[size_t(pos)], &b = sym[size_t(a.next)];
    uint64_t v;
    if (t.merges.find((uint64_t(a.id) << 32) | b.id, v)) {
      heap.push_back({v >> 32, uint64_t(pos), a.id, b.id,
                      uint32_t(v & 0xffffffffu)});
      std::push_heap(heap.begin(), heap.end(), std::greater<Cand>());
    }
  };
  for (size_t i = 0; i + 1 < n; ++i)
    push(int64_t(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<Cand>());
    Cand c = heap.back();
    heap.pop_back();
    Sym &a = sym[c.pos];
    if (!a.alive || a.next < 0 || a.id != c.left ||
        sym[size_t(a.next)].id != c.right)
      continue; // stale: a neighbour was merged since
    Sym &b = sym[size_t(a.next)];
    a.id = c.merged;
    b.alive = false;
    a.next = b.next;
    if (b.next >= 0)
      sym[size_t(b.next)].prev = int64_t(c.pos);
    push(a.prev);
    push(int64_t(c.pos));
  }
  for (int64_t i = n ? 0 : -1; i >= 0; i = sym[size_t(i)].next)
    out.push_back(int32_t(sym[size_t(i)].id));
  return true;
}

/// The GPT-2 pre-tokenizer:
///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// over valid UTF-8 `s`, then BPE on each match.
bool bpeText(const rwkv_tokenizer &t, const std::string &text,
             std::vector<int32_t> &out, char *err, size_t errlen) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(text.data());
  std::vector<uint32_t> cps;
  std::vector<size_t> off; // byte offset of each code point, plus the end
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0xFFFD;
    size_t len = decodeUtf8(p, text.size(), i, cp);
    if (len == 0)
      len = 1;
    cps.push_back(cp);
    off.push_back(i);
    i += len;
  }
  off.push_back(text.size());
  const size_t n = cps.size();
  auto cls = [&](size_t k) { // 0 space, 1 letter, 2 number, 3 other
    uint32_t c = cps[k];
    return isSpace(c) ? 0 : isLetter(c) ? 1 : isNumber(c) ? 2 : 3;
  };
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    // Contractions.
    if (cps[i] == '\'' && i + 1 < n) {
      uint32_t a = cps[i + 1], b = i + 2 < n ? cps[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') ||
               (a == 'l' && b == 'l'))
        end = i + 3;
    }
    if (end == i) {
      size_t j = cps[i] == ' ' && i + 1 < n ? i + 1 : i;
      int c = cls(j);
      if (c != 0) { // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        end = j + 1;
        while (end < n && cls(end) == c)
          ++end;
      } else { // `\s+(?!\S)`, `\s+`
        size_t k = i;
        while (k < n && cls(k) == 0)
          ++k;
        end = k == n || k - i == 1 ? k : k - 1;
      }
    }
    if (!bpeWord(t, p + off[i], off[end] - off[i], out, err, errlen))
      return false;
    i = end;
  }
  return true;
}

/// Splits `s` on the leftmost-longest matches of `trie`; calls `text` on the
/// pieces between matches and pushes the matched ids.
template <typename F>
bool splitAdded(const Trie &trie, const std::string &s,
                std::vector<int32_t> &out, F text) {
  if (trie.empty())
    return text(s);
  const uint8_t *p = reinterpret_cast<const uint8_t *>(s.data());
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    int32_t id = trie.longest(p + i, s.size() - i, len);
    if (id < 0) {
      ++i;
      continue;
    }
    if (i > start && !text(s.substr(start, i - start)))
      return false;
    out.push_back(id);
    i += len;
    start = i;
  }
  return start >= s.size() || text(s.substr(start));
}

bool encode(const rwkv_tokenizer &t, const std::string &s,
            std::vector<int32_t> &out, char *err, size_t errlen) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(s.data());
  switch (t.kind) {
  case kBytes:
    for (size_t i = 0; i < s.size(); ++i) {
      if (p[i] >= t.nTokens) {
        RWKV_SET_ERROR(err, errlen, "byte {:#04x} has no token", p[i]);
        return false;
      }
      out.push_back(p[i]);
    }
    return true;
  case kWorld:
    for (size_t i = 0; i < s.size();) {
      size_t len;
      int32_t id = t.vocab.longest(p + i, s.size() - i, len);
      if (id < 0) {
        RWKV_SET_ERROR(err, errlen,
                 "byte {:#04x} at offset {} starts no token of the "
                 "vocabulary",
                 p[i], i);
        return false;
      }
      out.push_back(id);
      i += len;
    }
    return true;
  default:
    return splitAdded(t.rawAdded, s, out, [&](const std::string &piece) {
      return splitAdded(t.normAdded, t.nfc ? nfc(piece) : piece, out,
                        [&](const std::string &q) {
                          return bpeText(t, q, out, err, errlen);
                        });
    });
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

extern "C" {

rwkv_tokenizer *rwkv_tokenizer_open(const void *blob, size_t size,
                                    size_t n_vocab, char *err, size_t errlen) {
  if (!blob) {
    RWKV_SET_ERROR(err, errlen, "no tokenizer blob given");
    return nullptr;
  }
  rwkv_tokenizer *t = new rwkv_tokenizer;
  if (!parseBlob(*t, static_cast<const uint8_t *>(blob), size, n_vocab, err,
                 errlen)) {
    delete t;
    return nullptr;
  }
  return t;
}

rwkv_tokenizer *rwkv_tokenizer_open_linked(size_t n_vocab, char *err,
                                           size_t errlen) {
  if (!rwkv_tokenizer_blob || !&rwkv_tokenizer_blob_size) {
    RWKV_SET_ERROR(err, errlen,
             "no tokenizer is linked into this executable (the model was "
             "compiled without one): give token ids with --tokens instead");
    return nullptr;
  }
  return rwkv_tokenizer_open(rwkv_tokenizer_blob,
                             size_t(rwkv_tokenizer_blob_size), n_vocab, err,
                             errlen);
}

void rwkv_tokenizer_close(rwkv_tokenizer *tok) { delete tok; }

const char *rwkv_tokenizer_kind(const rwkv_tokenizer *tok) {
  return tok->kind == kBytes ? "bytes" : tok->kind == kWorld ? "world" : "bpe";
}

size_t rwkv_tokenizer_n_tokens(const rwkv_tokenizer *tok) {
  return tok->nTokens;
}

int32_t rwkv_tokenizer_eos(const rwkv_tokenizer *tok) { return tok->eos; }

size_t rwkv_utf8_valid_prefix(const char *text, size_t len) {
  const uint8_t *p = reinterpret_cast<const uint8_t *>(text);
  size_t i = 0;
  while (i < len) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t n = decodeUtf8(p, len, i, cp);
    if (n == 0)
      return i;
    i += n;
  }
  return len;
}

int rwkv_tokenize(const rwkv_tokenizer *tok, const char *text, size_t len,
                  int32_t *ids, size_t cap, size_t *n_ids, char *err,
                  size_t errlen) {
  if (!tok || (!text && len) || !n_ids || (!ids && cap)) {
    RWKV_SET_ERROR(err, errlen, "rwkv_tokenize: null argument");
    return RWKV_ERROR_ARGUMENT;
  }
  *n_ids = 0;
  size_t valid = tok->kind == kBpe ? rwkv_utf8_valid_prefix(text, len) : len;
  if (valid != len) {
    RWKV_SET_ERROR(err, errlen,
             "the text is not valid UTF-8 (byte {:#04x} at offset {})",
             uint8_t(text[valid]), valid);
    return RWKV_ERROR_ARGUMENT;
  }
  std::vector<int32_t> out;
  if (!encode(*tok, std::string(text, len), out, err, errlen))
    return RWKV_ERROR_ARGUMENT;
  *n_ids = out.size();
  if (cap)
    memcpy(ids, out.data(), std::min(cap, out.size()) * sizeof(int32_t));
  return RWKV_OK;
}

int rwkv_detokenize(const rwkv_tokenizer *tok, const int32_t *ids, size_t n,
                    char *out, size_t cap, size_t *n_bytes, char *err,
                    size_t errlen) {
  if (!tok || (!ids && n) || !n_bytes || (!out && cap)) {
    RWKV_SET_ERROR(err, errlen, "rwkv_detokenize: null argument");
    return RWKV_ERROR_ARGUMENT;
  }
  *n_bytes = 0;
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || uint32_t(ids[i]) >= tok->nTokens) {
      RWKV_SET_ERROR(err, errlen,
               "token {} (item {}) is out of range: the tokenizer has {} "
               "tokens",
               ids[i], i + 1, tok->nTokens);
      return RWKV_ERROR_ARGUMENT;
    }
    size_t len;
    tok->bytes(uint32_t(ids[i]), len);
    total += len;
  }
  size_t at = 0;
  for (size_t i = 0; i < n && at < cap; ++i) {
    size_t len;
    const uint8_t *b = tok->bytes(uint32_t(ids[i]), len);
    size_t k = std::min(len, cap - at);
    memcpy(out + at, b, k);
    at += k;
  }
  *n_bytes = total;
  return RWKV_OK;
}

size_t rwkv_token_bytes(const rwkv_tokenizer *tok, int32_t id,
                        const uint8_t **bytes) {
  *bytes = nullptr;
  if (!tok || id < 0 || uint32_t(id) >= tok->nTokens)
    return 0;
  size_t n;
  const uint8_t *b = tok->bytes(uint32_t(id), n);
  if (n)
    *bytes = b;
  return n;
}

void rwkv_utf8_stream_init(rwkv_utf8_stream *s) { memset(s, 0, sizeof *s); }

namespace {
/// Length of the sequence a lead byte starts (1 for ASCII and invalid).
size_t seqLen(uint8_t b) {
  return (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3
                                : (b & 0xF8) == 0xF0 ? 4
                                                     : 1;
}
} // namespace

size_t rwkv_utf8_stream_push(rwkv_utf8_stream *s, const void *in, size_t n,
                             char *out) {
  // Everything pending + new, minus an incomplete (so far well-formed)
  // sequence at the end.
  size_t total = s->npending + n;
  if (total == 0)
    return 0; // nothing to copy (and `in` may be null)
  std::vector<uint8_t> buf(s->pending, s->pending + s->npending);
  buf.insert(buf.end(), static_cast<const uint8_t *>(in),
             static_cast<const uint8_t *>(in) + n);
  size_t keep = 0;
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (size_t back = 1; back <= 3 && back <= total; ++back) {
    uint8_t b = buf[total - back];
    if ((b & 0xC0) == 0x80)
      continue; // a continuation byte: keep looking
    size_t need = seqLen(b);
    if (need > back)
      keep = back; // incomplete: hold it back
    break;
  }
  size_t emit = total - keep;
  if (emit)
    memcpy(out, buf.data(), emit);
  if (keep)
    memcpy(s->pending, buf.data() + emit, keep);
  s->npending = uint32_t(keep);
  return emit;
}

size_t rwkv_utf8_stream_flush(rwkv_utf8_stream *s, char *out) {
  size_t n = s->npending;
  if (n)
    memcpy(out, s->pending, n);
  s->npending = 0;
  return n;
}

} // extern "C"
