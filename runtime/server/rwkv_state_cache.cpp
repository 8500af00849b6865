//===- rwkv_state_cache.cpp - The server's state cache -------------------===//
//
// The blob format of rwkv_cache_format.h, the lookup of the longest cached
// prefix, and the two backends: an LRU in memory and Redis through hiredis
// (one short-lived connection per call, so any HTTP thread may use it).
//
//===----------------------------------------------------------------------===//

#include "rwkv_state_cache.h"

#include "format/rwkv_cache_format.h"
#include "format/rwkv_fnv1a.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

namespace rwkv_serving {

std::vector<std::string>
StateCache::prefixKeys(const std::vector<int32_t> &tokens, size_t n) const {
  std::vector<std::string> keys;
  keys.reserve(n);
  uint64_t h = RWKV_FNV1A64_OFFSET;
  for (size_t k = 0; k < n; ++k) {
    uint8_t le[4];
    uint32_t id = uint32_t(tokens[k]);
    for (int b = 0; b < 4; ++b)
      le[b] = uint8_t(id >> (8 * b));
    h = rwkv_fnv1a64_update(h, le, 4);
    keys.push_back(fmt::format("{}{:016x}:{:016x}", RWKV_CACHE_KEY_PREFIX,
                               modelHash, h));
  }
  return keys;
}

std::string StateCache::encode(const std::vector<int32_t> &tokens, size_t n,
                               const std::vector<float> &state) const {
  rwkv_cache_blob_header h{};
  memcpy(h.magic, RWKV_CACHE_MAGIC, 8);
  h.version = RWKV_CACHE_VERSION;
  h.model_hash = modelHash;
  h.n_tokens = n;
  h.state_floats = state.size();
  std::string blob(sizeof h + 4 * n + 4 * state.size(), '\0');
  memcpy(&blob[sizeof h], tokens.data(), 4 * n);
  memcpy(&blob[sizeof h + 4 * n], state.data(), 4 * state.size());
  h.checksum =
      rwkv_fnv1a64(blob.data() + sizeof h, blob.size() - sizeof h);
  memcpy(&blob[0], &h, sizeof h);
  return blob;
}

bool StateCache::decode(const std::string &blob,
                        const std::vector<int32_t> &tokens,
                        CachedState &out) const {
  rwkv_cache_blob_header h;
  if (blob.size() < sizeof h)
    return false;
  memcpy(&h, blob.data(), sizeof h);
  if (memcmp(h.magic, RWKV_CACHE_MAGIC, 8) || h.version != RWKV_CACHE_VERSION ||
      h.model_hash != modelHash || h.state_floats != stateFloats ||
      h.n_tokens > tokens.size() ||
      blob.size() != sizeof h + 4 * (h.n_tokens + h.state_floats) ||
      rwkv_fnv1a64(blob.data() + sizeof h, blob.size() - sizeof h) !=
          h.checksum ||
      memcmp(blob.data() + sizeof h, tokens.data(), 4 * h.n_tokens))
    return false;
  out.nTokens = size_t(h.n_tokens);
  out.state.resize(stateFloats);
  memcpy(out.state.data(), blob.data() + sizeof h + 4 * h.n_tokens,
         4 * stateFloats);
  return true;
}

bool StateCache::lookup(const std::vector<int32_t> &tokens, size_t maxLen,
                        CachedState &out) {
  maxLen = std::min(maxLen, tokens.size());
  std::vector<std::string> keys = prefixKeys(tokens, maxLen);
  std::vector<size_t> found;
  if (!present(keys, found)) {
    ++errors;
    ++misses;
    return false;
  }
  std::sort(found.rbegin(), found.rend());
  for (size_t k : found) {
    std::string blob;
    if (!get(keys[k], blob))
      continue;
    if (decode(blob, tokens, out) && out.nTokens == k + 1) {
      ++hits;
      return true;
    }
    ++rejected; // another model, corrupt, or a hash collision
  }
  ++misses;
  return false;
}

void StateCache::store(const std::vector<int32_t> &tokens,
                       const std::vector<float> &state) {
  if (tokens.empty() || state.size() != stateFloats)
    return;
  std::string key = prefixKeys(tokens, tokens.size()).back();
  if (put(key, encode(tokens, tokens.size(), state)))
    ++stores;
  else
    ++errors;
}

CacheStats StateCache::stats() const {
  CacheStats s;
  s.hits = hits;
  s.misses = misses;
  s.stores = stores;
  s.rejected = rejected;
  s.errors = errors;
  s.bytes = bytes;
  s.entries = entries;
  return s;
}

namespace {

/// Least recently used entries go first when the blobs exceed the budget.
class MemoryStateCache final : public StateCache {
public:
  MemoryStateCache(uint64_t modelHash, size_t stateFloats, uint64_t budget)
      : StateCache(modelHash, stateFloats), budget(budget) {}
  const char *kind() const override { return "memory"; }

protected:
  bool present(const std::vector<std::string> &keys,
               std::vector<size_t> &found) override {
    std::lock_guard<std::mutex> lock(mu);
    for (size_t i = 0; i < keys.size(); ++i)
      if (index.count(keys[i]))
        found.push_back(i);
    return true;
  }
  bool get(const std::string &key, std::string &blob) override {
    std::lock_guard<std::mutex> lock(mu);
    auto it = index.find(key);
    if (it == index.end())
      return false;
    lru.splice(lru.begin(), lru, it->second); // most recently used
    blob = it->second->second;
    return true;
  }
  bool put(const std::string &key, std::string blob) override {
    if (blob.size() > budget)
      return true; // never fits: not an error
    std::lock_guard<std::mutex> lock(mu);
    erase(key);
    lru.emplace_front(key, std::move(blob));
    index[key] = lru.begin();
    bytes += lru.front().second.size();
    ++entries;
    while (bytes > budget)
      erase(lru.back().first);
    return true;
  }

private:
  void erase(const std::string &key) {
    auto it = index.find(key);
    if (it == index.end())
      return;
    bytes -= it->second->second.size();
    --entries;
    lru.erase(it->second);
    index.erase(it);
  }

  const uint64_t budget;
  std::mutex mu;
  std::list<std::pair<std::string, std::string>> lru; // most recent first
  std::unordered_map<std::string,
                     std::list<std::pair<std::string, std::string>>::iterator>
      index;
};

/// Redis through hiredis: a connection per call (loopback or LAN: well
/// under a millisecond to open), so the HTTP threads share nothing.
class RedisStateCache final : public StateCache {
public:
  RedisStateCache(uint64_t modelHash, size_t stateFloats, std::string host,
                  int port)
      : StateCache(modelHash, stateFloats), host(std::move(host)),
        port(port) {}
  const char *kind() const override { return "redis"; }

  /// Opens a connection; null on failure, with the reason in `*why` if
  /// given, else on stderr.
  redisContext *connect(std::string *why = nullptr) {
    timeval timeout{2, 0};
    redisContext *c = redisConnectWithTimeout(host.c_str(), port, timeout);
    if (!c || c->err) {
      std::string reason = c ? c->errstr : "cannot allocate a connection";
      if (why)
        *why = reason;
      else
        fmt::print(stderr, "state cache: redis://{}:{}: {}\n", host, port,
                   reason);
      if (c)
        redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, timeout);
    return c;
  }

protected:
  bool present(const std::vector<std::string> &keys,
               std::vector<size_t> &found) override {
    if (keys.empty())
      return true;
    std::unique_ptr<redisContext, void (*)(redisContext *)> c(connect(),
                                                              redisFree);
    if (!c)
      return false;
    // One round trip: EXISTS of every prefix, pipelined.
    for (const std::string &key : keys)
      redisAppendCommand(c.get(), "EXISTS %b", key.data(), key.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      void *reply = nullptr;
      if (redisGetReply(c.get(), &reply) != REDIS_OK || !reply)
        return fail(c.get());
      auto *r = static_cast<redisReply *>(reply);
      if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        found.push_back(i);
      freeReplyObject(r);
    }
    return true;
  }
  bool get(const std::string &key, std::string &blob) override {
    std::unique_ptr<redisContext, void (*)(redisContext *)> c(connect(),
                                                              redisFree);
    if (!c)
      return false;
    auto *r = static_cast<redisReply *>(
        redisCommand(c.get(), "GET %b", key.data(), key.size()));
    if (!r)
      return fail(c.get());
    bool ok = r->type == REDIS_REPLY_STRING;
    if (ok)
      blob.assign(r->str, r->len);
    freeReplyObject(r);
    return ok;
  }
  bool put(const std::string &key, std::string blob) override {
    std::unique_ptr<redisContext, void (*)(redisContext *)> c(connect(),
                                                              redisFree);
    if (!c)
      return false;
    auto *r = static_cast<redisReply *>(redisCommand(
        c.get(), "SET %b %b", key.data(), key.size(), blob.data(), blob.size()));
    if (!r)
      return fail(c.get());
    bool ok = r->type == REDIS_REPLY_STATUS;
    if (!ok)
      fmt::print(stderr, "state cache: redis SET: {}\n",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    if (ok) {
      bytes += blob.size();
      ++entries;
    }
    return ok;
  }

private:
  bool fail(redisContext *c) {
    fmt::print(stderr, "state cache: redis://{}:{}: {}\n", host, port,
               c->errstr);
    return false;
  }

  const std::string host;
  const int port;
};

/// "256M" etc. as bytes; false if not a size.
bool parseSize(const std::string &s, uint64_t &out) {
  size_t digits = 0;
  while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9')
    ++digits;
  if (digits == 0 || digits > 15)
    return false;
  uint64_t n = std::stoull(s.substr(0, digits));
  std::string unit = s.substr(digits);
  int shift = unit.empty() ? 0
              : unit == "K" || unit == "k" ? 10
              : unit == "M" || unit == "m" ? 20
              : unit == "G" || unit == "g" ? 30
                                           : -1;
  if (shift < 0)
    return false;
  out = n << shift;
  return true;
}

} // namespace

bool makeStateCache(const std::string &spec, uint64_t modelHash,
                    size_t stateFloats, std::unique_ptr<StateCache> &cache,
                    std::string &err) {
  cache.reset();
  const std::string redis = "redis://";
  if (spec.compare(0, redis.size(), redis) == 0) {
    std::string rest = spec.substr(redis.size());
    size_t colon = rest.rfind(':');
    std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
    std::string portText = colon == std::string::npos ? "6379"
                                                      : rest.substr(colon + 1);
    uint64_t port = 0;
    if (host.empty() || !parseSize(portText, port) ||
        portText.find_first_not_of("0123456789") != std::string::npos ||
        port == 0 || port > 65535) {
      err = fmt::format("'{}' is not redis://HOST:PORT", spec);
      return false;
    }
    auto r = std::make_unique<RedisStateCache>(modelHash, stateFloats, host,
                                               int(port));
    std::string why;
    redisContext *c = r->connect(&why); // fail early: the server needs it
    if (!c) {
      err = fmt::format("cannot connect to the state cache {}: {}", spec, why);
      return false;
    }
    redisFree(c);
    cache = std::move(r);
    return true;
  }
  uint64_t budget;
  if (spec.empty() || spec == "0")
    return true;
  if (!parseSize(spec, budget)) {
    err = fmt::format("'{}' is not a size (e.g. 256M, 1G) or redis://HOST:PORT",
                      spec);
    return false;
  }
  cache = std::make_unique<MemoryStateCache>(modelHash, stateFloats, budget);
  return true;
}

} // namespace rwkv_serving
