//===- rwkv_state_cache.h - The server's state cache ------------*- C++ -*-===//
//
// After each request the server keeps the state at the end of its
// conversation (prompt + generated tokens), keyed by the hash of that token
// prefix; a request whose prompt extends a cached prefix (the next turn of
// a chat) starts from the cached state and prefills only its new tokens.
//
//   MemoryStateCache  LRU within a byte budget, in this process
//   RedisStateCache   in Redis (hiredis), shared by replicas; the budget
//                     and eviction are Redis's (maxmemory, allkeys-lru)
//
// Entries are rwkv_cache_format.h blobs in both: a blob of another model
// (model hash), a corrupt one, or one whose tokens are not the request's
// prefix is never used. Thread-safe: the HTTP threads look up and store.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_STATE_CACHE_H
#define RWKV_STATE_CACHE_H

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rwkv_serving {

/// A state found in the cache: the first nTokens of the request's prompt
/// and the state after them (state_floats floats, host layout).
struct CachedState {
  size_t nTokens = 0;
  std::vector<float> state;
};

/// Counters for /metrics.
struct CacheStats {
  uint64_t hits = 0, misses = 0, stores = 0, rejected = 0, errors = 0;
  uint64_t bytes = 0;   // held (memory); stored by this replica (Redis)
  uint64_t entries = 0; // held (memory); stored by this replica (Redis)
};

class StateCache {
public:
  StateCache(uint64_t modelHash, size_t stateFloats)
      : modelHash(modelHash), stateFloats(stateFloats) {}
  virtual ~StateCache() = default;

  /// The longest prefix tokens[0..k), 1 <= k <= maxLen, with a usable
  /// entry; false on a miss (also when the backend fails: logged, counted).
  bool lookup(const std::vector<int32_t> &tokens, size_t maxLen,
              CachedState &out);
  /// Keeps `state` as the state after `tokens` (replacing an entry).
  void store(const std::vector<int32_t> &tokens, const std::vector<float> &state);

  CacheStats stats() const;
  virtual const char *kind() const = 0;

  /// hex16(model_hash) ":" hex16(prefix hash) (rwkv_cache_format.h) of
  /// every prefix tokens[0..k), k = 1..n, in keys[k - 1].
  std::vector<std::string> prefixKeys(const std::vector<int32_t> &tokens,
                                      size_t n) const;
  /// Encodes a blob; decodes one, true if usable for `tokens`.
  std::string encode(const std::vector<int32_t> &tokens, size_t n,
                     const std::vector<float> &state) const;
  bool decode(const std::string &blob, const std::vector<int32_t> &tokens,
              CachedState &out) const;

protected:
  /// The indices of the keys present, in any order; false if the backend
  /// failed.
  virtual bool present(const std::vector<std::string> &keys,
                       std::vector<size_t> &found) = 0;
  /// The blob under `key` (false: gone or failed).
  virtual bool get(const std::string &key, std::string &blob) = 0;
  virtual bool put(const std::string &key, std::string blob) = 0;

  const uint64_t modelHash;
  const size_t stateFloats;
  std::atomic<uint64_t> hits{0}, misses{0}, stores{0}, rejected{0}, errors{0};
  std::atomic<uint64_t> bytes{0}, entries{0};
};

/// The cache `spec` names: a size ("256M", "1G", "65536"; K/M/G are
/// powers of 1024) for memory, "redis://HOST:PORT" for Redis; "0" or ""
/// for none (*cache null). Returns false with the reason in `err`.
bool makeStateCache(const std::string &spec, uint64_t modelHash,
                    size_t stateFloats, std::unique_ptr<StateCache> &cache,
                    std::string &err);

} // namespace rwkv_serving

#endif // RWKV_STATE_CACHE_H
