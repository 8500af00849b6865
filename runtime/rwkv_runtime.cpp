//===- rwkv_runtime.cpp - Model handle, state, evaluation, state files ----===//
//
// Implements rwkv_runtime.h on top of the generated object's symbols
// (rwkv_abi.h). Depends on libc, libstdc++ and POSIX only (no LLVM): a
// compiled model links this archive and nothing else of rwkvc. Built without
// exceptions; every failure is a status code plus a message.
//
//===----------------------------------------------------------------------===//

#include "format/rwkv_state_format.h"
#include "rwkv_cuda.h"
#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the runtime writes state files little-endian and assumes such a host"
#endif

// Defined by the weights object when the weights are embedded; null (weak,
// undefined) otherwise.
extern "C" const uint8_t rwkv_weights_blob[] __attribute__((weak));

// Defined by the generated object of a model with CPU code only: a model
// compiled for CUDA alone links without them (null here), and the runtime
// calls them only on the CPU backend.
#pragma weak rwkv_model_forward_one
#pragma weak rwkv_model_forward_seq
#pragma weak rwkv_model_forward_all
#pragma weak rwkv_model_forward_batch
#pragma weak rwkv_model_forward_prefix

struct rwkv_model {
  const rwkv_model_desc *desc = nullptr; // the generated descriptor (static)
  const uint8_t *weights = nullptr;      // (weights_bytes) embedded or mapped
  void *mapping = nullptr;               // mmap'ed region, or null
  size_t mappingBytes = 0;               // length of `mapping`
  void *huge = nullptr;                  // the weights' copy in huge pages
  size_t hugeBytes = 0;                  // length of `huge`
  uint32_t backend = RWKV_BACKEND_CPU;   // what runs it (enum rwkv_backend)
  rwkv_cuda::Model *cuda = nullptr;      // RWKV_BACKEND_CUDA: the device side
  bool graphs = true;  // CUDA decode replays a graph ($RWKV_CUDA_GRAPHS != 0)
  std::string device;  // rwkv_model_device_info
};

// A state: on the CPU backend host memory in the host layout; on CUDA the
// device state (same layout) and its buffers.
struct rwkv_state {
  const rwkv_model *model;
  std::vector<float> data;          // CPU: (state_floats) the state
  rwkv_cuda::State *cuda = nullptr; // CUDA
};


namespace {

/// Directory of the executable or shared library that holds the model
/// (the object defining rwkv_model_descriptor), with a trailing '/'.
bool executableDir(std::string &dir) {
  std::string file;
  Dl_info info;
  if (dladdr(static_cast<const void *>(&rwkv_model_descriptor), &info) &&
      info.dli_fname && strchr(info.dli_fname, '/')) {
    // A shared library (or an executable started by a path).
    char *real = realpath(info.dli_fname, nullptr);
    if (real) {
      file = real;
      free(real);
    }
  }
  if (file.empty()) {
    std::vector<char> buf(4096);
    ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    if (n <= 0)
      return false;
    file.assign(buf.data(), size_t(n));
  }
  size_t slash = file.rfind('/');
  dir = slash == std::string::npos ? "./" : file.substr(0, slash + 1);
  return true;
}

/// Maps the weight file beside the executable into `m`.
int mapWeights(rwkv_model &m, char *err, size_t errlen) {
  const rwkv_model_desc &d = *m.desc;
  if (!d.weights_file || !*d.weights_file)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                "the model's weights are neither embedded nor named by a "
                "weights file");
  std::string path;
  if (d.weights_file[0] != '/') {
    if (!executableDir(path))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                  "cannot find the executable's directory (/proc/self/exe): "
                  "{}",
                  strerror(errno));
  }
  path += d.weights_file;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                "cannot open the weights file '{}': {} (it must lie beside "
                "the executable or shared library)",
                path.c_str(), strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO, "cannot stat '{}': {}",
                path.c_str(), strerror(e));
  }
  // The image, then the trailer that names its model (rwkv_abi.h).
  int64_t fileBytes = d.weights_bytes + int64_t(sizeof(rwkv_weights_trailer));
  if (int64_t(st.st_size) != fileBytes) {
    close(fd);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the weights file '{}' has {} bytes but this model needs {} (a weights file of another model or build?)",
                path.c_str(), int64_t(st.st_size), fileBytes);
  }
  rwkv_weights_trailer trailer;
  ssize_t got = pread(fd, &trailer, sizeof trailer, off_t(d.weights_bytes));
  if (got != ssize_t(sizeof trailer)) {
    int e = got < 0 ? errno : EIO;
    close(fd);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO, "cannot read '{}': {}",
                path.c_str(), strerror(e));
  }
  if (memcmp(trailer.magic, RWKV_WEIGHTS_MAGIC, sizeof trailer.magic) != 0 ||
      trailer.weights_bytes != uint64_t(d.weights_bytes)) {
    close(fd);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "'{}' is not a weights file written by rwkvc (its last {} "
                "bytes are not the trailer that names the model)",
                path.c_str(), sizeof trailer);
  }
  if (trailer.model_hash != d.model_hash) {
    close(fd);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the weights file '{}' holds the weights of another model or "
                "build (model hash {:#018x}; this one's is {:#018x}): use the "
                "weights file written with this executable",
                path.c_str(), trailer.model_hash, d.model_hash);
  }
  if (d.weights_bytes == 0) {
    close(fd);
    return RWKV_OK;
  }
  void *p =
      mmap(nullptr, size_t(d.weights_bytes), PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (p == MAP_FAILED)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO, "cannot map '{}': {}", path.c_str(),
                strerror(e));
  m.mapping = p;
  m.mappingBytes = size_t(d.weights_bytes);
  m.weights = static_cast<const uint8_t *>(p);
  return RWKV_OK;
}

/// Whether the weights go to huge pages (RWKV_HUGE_PAGES: "0" never, "1"
/// any image, unset or "auto" images of more than RWKV_CACHED_WEIGHT_BYTES,
/// those that stream from memory), and whether the kernel's transparent
/// huge pages are on for madvise'd memory.
bool wantsHugePages(int64_t bytes) {
  const char *env = getenv("RWKV_HUGE_PAGES");
  if (env && strcmp(env, "0") == 0)
    return false;
  bool any = env && strcmp(env, "1") == 0;
  if (bytes <= 0 || (!any && bytes <= RWKV_CACHED_WEIGHT_BYTES))
    return false;
  FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (!f)
    return false;
  char mode[128] = "";
  bool on = fgets(mode, sizeof mode, f) && !strstr(mode, "[never]");
  fclose(f);
  return on;
}

/// MemAvailable of /proc/meminfo in bytes (0 if unknown).
uint64_t availableMemory() {
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f)
    return 0;
  char line[256];
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
      break;
  fclose(f);
  return uint64_t(kb) << 10;
}

/// Copies the weight image of `m` into anonymous memory in transparent huge
/// pages (2 MiB), read-only, and points `m.weights` there; the mapping or
/// embedded image it came from is released. On this VM (docs/performance.md,
/// "Weights in huge pages") the kernel's DAMON samples pages every 0.5 s
/// and the hypervisor then rebuilds its translations of the process's 4 KiB
/// pages: decode of the 0.1B shape stalled 150-200 ms at every sample; 2
/// MiB pages are 512 times fewer translations (and TLB entries). Skipped,
/// leaving the image where it is, when huge pages are off, the copy would
/// take more than half the available memory (the mapping of a large model
/// can be evicted, a copy cannot), or the memory cannot be mapped.
void intoHugePages(rwkv_model &m) {
  constexpr size_t kHuge = size_t(2) << 20;
  int64_t bytes = m.desc->weights_bytes;
  if (!m.weights || !wantsHugePages(bytes) ||
      uint64_t(bytes) > availableMemory() / 2)
    return;
  size_t size = (size_t(bytes) + kHuge - 1) / kHuge * kHuge;
  void *raw = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED)
    return;
  // Aligned to 2 MiB; the slack on both sides goes back.
  uintptr_t start = (uintptr_t(raw) + kHuge - 1) & ~uintptr_t(kHuge - 1);
  uint8_t *huge = reinterpret_cast<uint8_t *>(start);
  if (start > uintptr_t(raw))
    munmap(raw, start - uintptr_t(raw));
  size_t tail = uintptr_t(raw) + size + kHuge - (start + size);
  if (tail)
    munmap(huge + size, tail);
  if (madvise(huge, size, MADV_HUGEPAGE) != 0) {
    munmap(huge, size);
    return;
  }
  // In chunks, each chunk of the source released once copied, so that the
  // process holds the image about once (its peak resident memory).
  constexpr size_t kChunk = size_t(64) << 20;
  long page = sysconf(_SC_PAGESIZE);
  for (size_t off = 0; off < size_t(bytes); off += kChunk) {
    size_t n = std::min(kChunk, size_t(bytes) - off);
    memcpy(huge + off, m.weights + off, n);
    if (!m.mapping && page > 0) {
      // The embedded image: drop this process's pages of it (clean, file
      // backed: they stay in the page cache).
      uintptr_t lo = (uintptr_t(m.weights + off) + page - 1) & ~uintptr_t(page - 1);
      uintptr_t hi = uintptr_t(m.weights + off + n) & ~uintptr_t(page - 1);
      if (hi > lo)
        madvise(reinterpret_cast<void *>(lo), hi - lo, MADV_DONTNEED);
    }
  }
  mprotect(huge, size, PROT_READ);
  if (m.mapping) {
    munmap(m.mapping, m.mappingBytes);
    m.mapping = nullptr;
    m.mappingBytes = 0;
  }
  m.huge = huge;
  m.hugeBytes = size;
  m.weights = huge;
}

/// Checks the slot table against state_floats and the weight image, so a
/// broken descriptor is reported instead of writing out of bounds.
int checkSlots(const rwkv_model_desc &d, char *err, size_t errlen) {
  if (d.state_floats < 0 || d.n_slots < 0 || (d.n_slots && !d.slots) ||
      d.n_vocab <= 0 || d.weights_bytes < 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                "the model descriptor is malformed (n_vocab {}, state_floats {}, n_slots {})",
                d.n_vocab, d.state_floats, d.n_slots);
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &s = d.slots[i];
    const char *name = s.name ? s.name : "?";
    if (s.offset < 0 || s.size < 0 || s.offset + s.size > d.state_floats)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                  "state slot '{}' [{}, +{}) lies outside the state ({} floats)",
                  name, s.offset, s.size, d.state_floats);
    if (s.init == RWKV_SLOT_WEIGHT &&
        (s.init_weight_offset < 0 ||
         s.init_weight_offset + s.size * 4 > d.weights_bytes))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                  "state slot '{}' is initialised from weight bytes [{}, +{}) outside the weight image ({} bytes)",
                  name, s.init_weight_offset, s.size * 4, d.weights_bytes);
    if (s.init != RWKV_SLOT_ZERO && s.init != RWKV_SLOT_NEG_LARGE &&
        s.init != RWKV_SLOT_WEIGHT)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
                  "state slot '{}' has unknown init kind {}", name, s.init);
  }
  return RWKV_OK;
}

/// Little-endian writer/reader for the state file.
struct Writer {
  std::vector<uint8_t> bytes;
  void raw(const void *p, size_t n) {
    const uint8_t *b = static_cast<const uint8_t *>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str(const char *s) {
    size_t n = s ? strlen(s) : 0;
    u32(uint32_t(n));
    raw(s ? s : "", n);
  }
};

struct Reader {
  const uint8_t *p;
  size_t left;
  bool ok = true;
  bool raw(void *out, size_t n) {
    if (!ok || n > left)
      return ok = false;
    memcpy(out, p, n);
    p += n;
    left -= n;
    return true;
  }
  uint32_t u32() {
    uint32_t v = 0;
    raw(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    raw(&v, 8);
    return v;
  }
  std::string str() {
    uint32_t n = u32();
    if (!ok || n > left) {
      ok = false;
      return {};
    }
    std::string s(reinterpret_cast<const char *>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

/// The size of a state file of the model `d` (docs/state-format.md).
size_t stateFileBytes(const rwkv_model_desc &d) {
  auto str = [](const char *s) { return 4 + (s ? strlen(s) : 0); };
  size_t n = sizeof(rwkv_state_file_head) + str(d.rwkv_version) + 8;
  for (int64_t i = 0; i < d.n_slots; ++i)
    n += str(d.slots[i].name) + 16;
  return n + 8 + size_t(d.state_floats) * sizeof(float) + 8;
}

/// Reads the file at `path` into `out`, at most `limit` bytes: a longer file
/// (or an endless one, /dev/zero) stops at limit + 1 bytes, which the caller
/// refuses.
bool readFile(const char *path, std::vector<uint8_t> &out, size_t limit,
              int &errnum) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    errnum = errno;
    return false;
  }
  uint8_t buf[1 << 16];
  while (out.size() <= limit) {
    size_t want = std::min(sizeof buf, limit + 1 - out.size());
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      errnum = errno;
      close(fd);
      return false;
    }
    if (n == 0)
      break;
    out.insert(out.end(), buf, buf + n);
  }
  close(fd);
  return true;
}

bool writeAll(int fd, const uint8_t *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

/// Checks that `n` >= 1 and every id is in [0, n_vocab).
int checkTokens(const rwkv_model &m, const int32_t *tokens, size_t n,
                const char *fn, char *err, size_t errlen) {
  if (n == 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "{}: no tokens to evaluate",
                fn);
  int64_t vocab = m.desc->n_vocab;
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                  "token {} (at position {}) is out of range: the "
                  "vocabulary has {} tokens (0..{})",
                  tokens[i], i, vocab, vocab - 1);
  return RWKV_OK;
}

size_t maxChunk(const rwkv_model &m) {
  size_t perToken = 64 * size_t(m.desc->n_embd > 0 ? m.desc->n_embd : 1);
  return std::clamp<size_t>(RWKV_SCRATCH_BUDGET / perToken, 1,
                            RWKV_MAX_CHUNK_LIMIT);
}

/// The chunk of a sequence call given 0 (rwkv_default_chunk).
size_t defaultChunk(const rwkv_model &m) {
  return m.desc->weights_bytes > RWKV_CACHED_WEIGHT_BYTES
             ? size_t(RWKV_STREAMING_CHUNK)
             : size_t(RWKV_DEFAULT_CHUNK);
}

/// The chunk a sequence call uses: 0 is the default, all within the cap.
size_t chunkSize(const rwkv_model &m, size_t chunk) {
  return std::min(chunk == 0 ? defaultChunk(m) : chunk, maxChunk(m));
}

/// One evaluation through the generated code: what evalChunks reads, and
/// how far it got (read back after a failed allocation ended it).
struct EvalCall {
  const rwkv_model *m;
  float *state;          // (state_floats)
  const int32_t *tokens; // (n)
  size_t n;
  float *logits; // (n_vocab), or (n, n_vocab) when `all`
  bool rnn;      // forward_one per token, else chunks of `step`
  bool all;      // forward_all
  size_t step;   // tokens per sequence call
  size_t done;   // tokens whose forward call has returned
};

/// The forward calls of one evaluation (run by runGuarded: owns nothing).
void evalChunks(void *arg) {
  EvalCall &c = *static_cast<EvalCall *>(arg);
  rwkv_internal::applyThreads();
  const uint8_t *w = c.m->weights;
  size_t vocab = size_t(c.m->desc->n_vocab);
  if (c.rnn) {
    for (; c.done < c.n; ++c.done)
      rwkv_model_forward_one(w, c.state, c.tokens[c.done], c.logits);
    return;
  }
  // The chunks before the last need no logits: the prefix entry, where the
  // model has one, skips the head.
  bool prefix = (c.m->desc->entries & RWKV_ENTRY_FORWARD_PREFIX) &&
                rwkv_model_forward_prefix;
  while (c.done < c.n) {
    size_t len = std::min(c.n - c.done, c.step);
    if (c.all)
      rwkv_model_forward_all(w, c.state, c.tokens + c.done, int64_t(len),
                             c.logits + c.done * vocab);
    else if (prefix && c.done + len < c.n)
      rwkv_model_forward_prefix(w, c.state, c.tokens + c.done, int64_t(len));
    else
      rwkv_model_forward_seq(w, c.state, c.tokens + c.done, int64_t(len),
                             c.logits);
    c.done += len;
  }
}

/// One call of the generated batch entry (run by runGuarded: owns nothing).
struct BatchCall {
  const rwkv_model *m;
  float *const *states;  // (n) the rows' states
  const int32_t *tokens; // (n) one token per row
  size_t n;
  float *logits; // (n, n_vocab)
};

void evalBatchRows(void *arg) {
  BatchCall &c = *static_cast<BatchCall *>(arg);
  rwkv_internal::applyThreads();
  rwkv_model_forward_batch(c.m->weights, c.states, c.tokens, int64_t(c.n),
                           c.logits);
}

/// Whether `m` decodes several one-token sequences in one call: CPU code
/// with the batch entry (CUDA states take the per-sequence path).
bool hasBatchEntry(const rwkv_model &m) {
  return !m.cuda && (m.desc->entries & RWKV_ENTRY_FORWARD_BATCH) &&
         rwkv_model_forward_batch;
}

/// The most rows of one batch-entry call: its scratch grows with them as a
/// sequence call's with its tokens (maxChunk), and the logits it returns
/// take n_vocab floats a row (at most RWKV_SCRATCH_BUDGET bytes of them).
size_t maxBatchRows(const rwkv_model &m) {
  size_t rowBytes = size_t(m.desc->n_vocab) * sizeof(float);
  return std::min(maxChunk(m),
                  std::max<size_t>(2, RWKV_SCRATCH_BUDGET / rowBytes));
}

/// How many batch-entry calls decode `n` rows: groups of about
/// kBatchGroupRows. The CPU batch entry's product tiles take 8 rows at a
/// time (codegen/cpu/LowerLinear.cpp, kBatchTokens); a call of 16 rows,
/// whose inputs no longer stay in L1 beside each other, decoded fewer
/// tokens per second than two calls of 8, while 12 rows did better in one
/// call than in two of 6 (0.1B f16, 2 threads, scripts/batch_bench.c, 2
/// alternating runs: 16 rows 511 tok/s in one call, 613-682 in two; 12
/// rows 590-603 in one, 413-472 in two). So up to 4 rows past a multiple
/// of 8 join the groups before them.
constexpr size_t kBatchGroupRows = 8;
size_t batchGroups(const rwkv_model &m, size_t n) {
  size_t byMemory = (n + maxBatchRows(m) - 1) / maxBatchRows(m);
  return std::max({size_t(1), (n + 3) / kBatchGroupRows, byMemory});
}

/// Decodes sequences `rows` (one token each, CPU states) of an
/// rwkv_eval_batch call with the generated batch entry, in batchGroups
/// groups of equal size. The entry allocates all its scratch before
/// it touches a state, so a failed allocation leaves the group's states
/// as they were.
int evalBatchEntry(const rwkv_model &m, rwkv_state *const *states,
                   const int32_t *const *tokens, float *const *logits,
                   const std::vector<size_t> &rows, const char *fn, char *err,
                   size_t errlen) {
  size_t vocab = size_t(m.desc->n_vocab);
  size_t groups = batchGroups(m, rows.size());
  size_t per = (rows.size() + groups - 1) / groups;
  std::vector<float *> ptrs(per);
  std::vector<int32_t> toks(per);
  // Kept from call to call (a server decodes every step through here): a
  // fresh buffer of 2 MB (8 rows of 65,536 logits) per call cost more page
  // faults than the step's work on this VM (0.1B, B = 8: 160 against 270
  // tok per CPU-s). At most RWKV_SCRATCH_BUDGET bytes per thread.
  thread_local std::vector<float> out;
  for (size_t first = 0; first < rows.size(); first += per) {
    size_t n = std::min(per, rows.size() - first);
    for (size_t r = 0; r < n; ++r) {
      ptrs[r] = states[rows[first + r]]->data.data();
      toks[r] = tokens[rows[first + r]][0];
    }
    // Rows whose logits lie one after the other (n_vocab floats apart, as
    // the server lays them out) take the entry's output in place.
    float *direct = logits[rows[first]];
    for (size_t r = 1; r < n && direct; ++r)
      if (logits[rows[first + r]] != direct + r * vocab)
        direct = nullptr;
    if (!direct && out.size() < per * vocab)
      out.resize(per * vocab);
    BatchCall call{&m, ptrs.data(), toks.data(), n,
                   direct ? direct : out.data()};
    if (size_t failed = rwkv_internal::runGuarded(evalBatchRows, &call))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                       "{}: out of memory: the model's code could not "
                       "allocate {} bytes of scratch to decode sequences {} "
                       "and {} more at once; their states are as before",
                       fn, failed, rows[first], n - 1);
    for (size_t r = 0; r < n && !direct; ++r)
      if (float *dst = logits[rows[first + r]])
        memcpy(dst, out.data() + r * vocab, vocab * sizeof(float));
  }
  return RWKV_OK;
}

/// Checks the mode (unless `all`) and the token ids of an evaluation.
int checkEval(const rwkv_model &m, const int32_t *tokens, size_t n, int mode,
              bool all, const char *fn, char *err, size_t errlen) {
  if (!all && mode != RWKV_EVAL_RNN && mode != RWKV_EVAL_SEQ)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "{}: unknown mode {} (RWKV_EVAL_RNN or RWKV_EVAL_SEQ)", fn,
                mode);
  return checkTokens(m, tokens, n, fn, err, errlen);
}

/// An evaluation on a CUDA state (checked by checkEval).
int evalCuda(rwkv_cuda::State &s, const rwkv_model &m, const int32_t *tokens,
             size_t n, float *logits, int mode, size_t chunk, bool all,
             const char *fn, char *err, size_t errlen) {
  rwkv_cuda::Mode how = all                     ? rwkv_cuda::Mode::All
                        : mode == RWKV_EVAL_RNN ? rwkv_cuda::Mode::Rnn
                                                : rwkv_cuda::Mode::Seq;
  return rwkv_cuda::eval(s, tokens, n, logits, how, chunkSize(m, chunk), fn,
                         err, errlen);
}

/// The host-buffer calls on CUDA: a state of the call's own, the caller's
/// state uploaded to it, evaluated and downloaded (correct, not fast).
int evalCudaHost(const rwkv_model &m, float *state, const int32_t *tokens,
                 size_t n, float *logits, int mode, size_t chunk, bool all,
                 const char *fn, char *err, size_t errlen) {
  rwkv_cuda::State *s = nullptr;
  int status = rwkv_cuda::stateNew(*m.cuda, /*graphs=*/false, &s, err, errlen);
  if (!status)
    status = rwkv_cuda::stateWrite(*s, state, err, errlen);
  if (!status)
    status = evalCuda(*s, m, tokens, n, logits, mode, chunk, all, fn, err,
                      errlen);
  if (!status)
    status = rwkv_cuda::stateRead(*s, state, err, errlen);
  rwkv_cuda::stateFree(s);
  return status;
}

/// Evaluation on a host state (on CUDA: evalCudaHost): `mode`
/// RWKV_EVAL_RNN or RWKV_EVAL_SEQ (the logits after the last token), or
/// with `all` every position's logits (forward_all, n * n_vocab floats;
/// mode ignored).
///
/// When the generated code runs out of memory the call ends with
/// RWKV_ERROR_MEMORY. Sequence calls always take scratch memory, so they
/// first copy the state and put it back then: the state is as before the
/// call. forward_one keeps its activations on the stack and takes none (the
/// CPU pipeline's test checks it), so RNN mode copies nothing; should a
/// model's forward_one fail to allocate all the same, the state, which
/// that call left half-updated, is reset to the initial state.
int evalHost(const rwkv_model &m, float *state, const int32_t *tokens,
             size_t n, float *logits, int mode, size_t chunk, bool all,
             const char *fn, char *err, size_t errlen) {
  if (int status = checkEval(m, tokens, n, mode, all, fn, err, errlen))
    return status;
  if (m.cuda)
    return evalCudaHost(m, state, tokens, n, logits, mode, chunk, all, fn, err,
                        errlen);
  EvalCall call{};
  call.m = &m;
  call.state = state;
  call.tokens = tokens;
  call.n = n;
  call.logits = logits;
  call.rnn = !all && mode == RWKV_EVAL_RNN;
  call.all = all;
  call.step = chunkSize(m, chunk);
  size_t stateBytes = size_t(m.desc->state_floats) * sizeof(float);
  // Kept from call to call, as evalBatchEntry's logits: a fresh copy of
  // the state (0.1B: 2.4 MB) per call was paid in page faults each time
  // (a server prefills every prompt through here).
  thread_local std::unique_ptr<float[]> saved;
  thread_local size_t savedFloats = 0;
  if (!call.rnn) {
    if (savedFloats < size_t(m.desc->state_floats)) {
      saved.reset(new (std::nothrow) float[m.desc->state_floats]);
      savedFloats = saved ? size_t(m.desc->state_floats) : 0;
    }
    if (!saved)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                       "{}: out of memory for a copy of the state ({} bytes)",
                       fn, stateBytes);
    memcpy(saved.get(), state, stateBytes);
  }
  size_t failed = rwkv_internal::runGuarded(evalChunks, &call);
  if (!failed)
    return RWKV_OK;
  if (call.rnn) {
    rwkv_state_reset(&m, state);
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                     "{}: out of memory: the model's code could not allocate "
                     "{} bytes of scratch at token {} of {} (RNN mode); the "
                     "state was reset to the initial state",
                     fn, failed, call.done, n);
  }
  memcpy(state, saved.get(), stateBytes);
  return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                   "{}: out of memory: the model's code could not allocate {} "
                   "bytes of scratch at tokens {}..{} of {} (chunks of {}); "
                   "the state is as before the call",
                   fn, failed, call.done,
                   call.done + std::min(n - call.done, call.step) - 1, n,
                   call.step);
}

} // namespace

extern "C" {

rwkv_model *rwkv_model_open(char *err, size_t errlen) {
  return rwkv_model_open_device(RWKV_DEVICE_AUTO, err, errlen);
}

int rwkv_device_from_name(const char *name) {
  if (!name)
    return -1;
  if (!strcmp(name, "auto"))
    return RWKV_DEVICE_AUTO;
  if (!strcmp(name, "cpu"))
    return RWKV_DEVICE_CPU;
  if (!strcmp(name, "cuda"))
    return RWKV_DEVICE_CUDA;
  return -1;
}

rwkv_model *rwkv_model_open_device(int device, char *err, size_t errlen) {
  const rwkv_model_desc &d = rwkv_model_descriptor;
  if (device != RWKV_DEVICE_AUTO && device != RWKV_DEVICE_CPU &&
      device != RWKV_DEVICE_CUDA) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
              "rwkv_model_open_device: unknown device {} (RWKV_DEVICE_AUTO, "
              "_CPU or _CUDA)",
              device);
    return nullptr;
  }
  if (d.abi_version != RWKV_ABI_VERSION) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
         "the compiled model has ABI version {} but this runtime implements "
         "version {}: rebuild the model with a matching rwkvc",
         d.abi_version, unsigned(RWKV_ABI_VERSION));
    return nullptr;
  }
  // CPU code needs its entry points linked in (they are weak here).
  bool hasCpu = (d.backends & RWKV_BACKEND_CPU) && rwkv_model_forward_one &&
                rwkv_model_forward_seq && rwkv_model_forward_all;
  bool hasCuda = d.backends & RWKV_BACKEND_CUDA;
  if (!hasCpu && !hasCuda) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
              "the compiled model has no CPU code (backends 0x{:x}) and no "
              "CUDA kernels: rebuild the model",
              d.backends);
    return nullptr;
  }
  if (device == RWKV_DEVICE_CPU && !hasCpu) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
              "the compiled model has no CPU code (backends 0x{:x}): run it "
              "on CUDA, or rebuild it for the CPU",
              d.backends);
    return nullptr;
  }
  if (device == RWKV_DEVICE_CUDA && !hasCuda) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
              "the compiled model has no CUDA kernels (backends 0x{:x}): run "
              "it on the CPU, or rebuild it with rwkvc --target=cuda",
              d.backends);
    return nullptr;
  }
  if (checkSlots(d, err, errlen) != RWKV_OK)
    return nullptr;
  std::unique_ptr<rwkv_model> m(new (std::nothrow) rwkv_model);
  if (!m) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY, "out of memory");
    return nullptr;
  }
  m->desc = &d;
  if (d.weights_embedded) {
    if (!rwkv_weights_blob) {
      RWKV_FAIL(err, errlen, RWKV_ERROR_MODEL,
           "the model says its weights are embedded, but no "
           "rwkv_weights_blob was linked in");
      return nullptr;
    }
    m->weights = rwkv_weights_blob;
  } else if (mapWeights(*m, err, errlen) != RWKV_OK) {
    return nullptr;
  }
  if (!m->weights) {
    // An empty weight image: give the generated code a valid pointer.
    alignas(64) static const uint8_t empty[64] = {};
    m->weights = empty;
  }
  m->device = "cpu";
  if (device != RWKV_DEVICE_CPU && hasCuda) {
    const char *graphs = getenv("RWKV_CUDA_GRAPHS");
    m->graphs = !graphs || strcmp(graphs, "0") != 0;
    std::vector<float> initial(size_t(d.state_floats));
    rwkv_state_reset(m.get(), initial.data());
    char why[512] = "";
    int status =
        rwkv_cuda::open(d, m->weights, initial.data(), &m->cuda, why,
                        sizeof why);
    if (status == RWKV_OK) {
      m->backend = RWKV_BACKEND_CUDA;
      m->device = std::string("cuda: ") + rwkv_cuda::describe(*m->cuda);
    } else if (device == RWKV_DEVICE_AUTO && hasCpu) {
      m->device = std::string("cpu (CUDA not used: ") + why + ")";
    } else {
      RWKV_SET_ERROR(err, errlen, "{}", why);
      rwkv_model_close(m.release());
      return nullptr;
    }
  }
  if (m->backend == RWKV_BACKEND_CPU)
    intoHugePages(*m);
  return m.release();
}

void rwkv_model_close(rwkv_model *model) {
  if (!model)
    return;
  rwkv_cuda::close(model->cuda);
  if (model->mapping)
    munmap(model->mapping, model->mappingBytes);
  if (model->huge)
    munmap(model->huge, model->hugeBytes);
  delete model;
}

const char *rwkv_model_device_info(const rwkv_model *model) {
  return model ? model->device.c_str() : "";
}

const rwkv_model_desc *rwkv_model_get_desc(const rwkv_model *model) {
  return model->desc;
}

const uint8_t *rwkv_model_weights(const rwkv_model *model) {
  return model->weights;
}

size_t rwkv_n_vocab(const rwkv_model *model) {
  return size_t(model->desc->n_vocab);
}

size_t rwkv_state_size(const rwkv_model *model) {
  return size_t(model->desc->state_floats) * sizeof(float);
}

void rwkv_state_reset(const rwkv_model *model, float *state) {
  const rwkv_model_desc &d = *model->desc;
  // Floats no slot covers start at zero too.
  memset(state, 0, rwkv_state_size(model));
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &s = d.slots[i];
    float *dst = state + s.offset;
    switch (s.init) {
    case RWKV_SLOT_NEG_LARGE:
      for (int64_t j = 0; j < s.size; ++j)
        dst[j] = -1e30f;
      break;
    case RWKV_SLOT_WEIGHT:
      memcpy(dst, model->weights + s.init_weight_offset,
             size_t(s.size) * sizeof(float));
      break;
    default:
      break; // RWKV_SLOT_ZERO: done by the memset.
    }
  }
}

void rwkv_state_copy(const rwkv_model *model, float *dst, const float *src) {
  if (dst != src)
    memmove(dst, src, rwkv_state_size(model));
}

int rwkv_eval(const rwkv_model *model, float *state, const int32_t *tokens,
              size_t n, float *logits, int mode, size_t chunk, char *err,
              size_t errlen) {
  if (!model || !state || !logits || (n && !tokens))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_eval: null model, state, tokens or logits");
  return evalHost(*model, state, tokens, n, logits, mode, chunk,
                  /*all=*/false, "rwkv_eval", err, errlen);
}

int rwkv_state_save(const rwkv_model *model, const float *state,
                    const char *path, char *err, size_t errlen) {
  if (!model || !state || !path)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_save: null model, state or path");
  const rwkv_model_desc &d = *model->desc;
  // docs/state-format.md, version 1.
  Writer w;
  rwkv_state_file_head head;
  memcpy(head.magic, RWKV_STATE_MAGIC, sizeof head.magic);
  head.version = RWKV_STATE_FORMAT_VERSION;
  head.model_hash = d.model_hash;
  w.raw(&head, sizeof head);
  w.str(d.rwkv_version);
  w.u64(uint64_t(d.n_slots));
  for (int64_t i = 0; i < d.n_slots; ++i) {
    w.str(d.slots[i].name);
    w.u64(uint64_t(d.slots[i].offset));
    w.u64(uint64_t(d.slots[i].size));
  }
  w.u64(uint64_t(d.state_floats));
  w.raw(state, rwkv_state_size(model));
  w.u64(rwkv_fnv1a64(w.bytes.data(), w.bytes.size()));

  std::string tmp = std::string(path) + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                "cannot write the state file '{}': {}", path, strerror(errno));
  bool ok = writeAll(fd, w.bytes.data(), w.bytes.size()) && fsync(fd) == 0;
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (ok && rename(tmp.c_str(), path) != 0) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    unlink(tmp.c_str());
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                "cannot write the state file '{}': {}", path, strerror(e));
  }
  return RWKV_OK;
}

int rwkv_state_load(const rwkv_model *model, float *state, const char *path,
                    char *err, size_t errlen) {
  if (!model || !state || !path)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_load: null model, state or path");
  const rwkv_model_desc &d = *model->desc;
  // A state file of this model has stateFileBytes(d) bytes; one of another
  // model is read to be named as such, up to twice that + 1 MiB. Anything
  // longer (an endless /dev/zero) is not read to its end.
  size_t expected = stateFileBytes(d);
  size_t limit = 2 * expected + (size_t(1) << 20);
  std::vector<uint8_t> bytes;
  int errnum = 0;
  if (!readFile(path, bytes, limit, errnum))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                "cannot read the state file '{}': {}", path, strerror(errnum));
  if (bytes.size() > limit)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                     "the state file '{}' is longer than {} bytes: not a "
                     "state of this model (its state files have {} bytes)",
                     path, limit, expected);
  Reader r{bytes.data(), bytes.size()};
  rwkv_state_file_head head;
  if (!r.raw(head.magic, sizeof head.magic) ||
      memcmp(head.magic, RWKV_STATE_MAGIC, sizeof head.magic) != 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "'{}' is not an rwkvc state file (no RWKVSTAT magic)", path);
  head.version = r.u32();
  if (!r.ok)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the state file '{}' is truncated", path);
  if (head.version != RWKV_STATE_FORMAT_VERSION)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the state file '{}' has format version {}; this runtime "
                "reads version {}",
                path, unsigned(head.version),
                unsigned(RWKV_STATE_FORMAT_VERSION));
  uint64_t hash = r.u64();
  std::string rwkvVersion = r.str();
  uint64_t nSlots = r.u64();
  struct Slot {
    std::string name;
    uint64_t offset, size;
  };
  std::vector<Slot> slots;
  for (uint64_t i = 0; r.ok && i < nSlots; ++i) {
    Slot s;
    s.name = r.str();
    s.offset = r.u64();
    s.size = r.u64();
    slots.push_back(std::move(s));
  }
  uint64_t nFloats = r.u64();
  // What remains: nFloats floats, then the u64 checksum.
  if (!r.ok || nFloats > r.left / 4 || r.left < nFloats * 4 + 8)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the state file '{}' is truncated", path);
  if (r.left != nFloats * 4 + 8)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the state file '{}' is corrupt: {} bytes after the state "
                "data",
                path, r.left - size_t(nFloats * 4 + 8));
  const uint8_t *data = r.p;
  uint64_t sum;
  memcpy(&sum, data + nFloats * 4, 8);
  if (sum != rwkv_fnv1a64(bytes.data(), bytes.size() - 8))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                "the state file '{}' is corrupt (checksum mismatch)", path);
  if (hash != d.model_hash)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                "the state file '{}' belongs to another model: its model hash "
                "is 0x{:016x}, this model's is 0x{:016x}",
                path, hash, d.model_hash);
  const char *ours = d.rwkv_version ? d.rwkv_version : "";
  if (rwkvVersion != ours)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                "the state file '{}' is for RWKV version '{}', this model is "
                "RWKV version '{}'",
                path, rwkvVersion.c_str(), ours);
  if (nSlots != uint64_t(d.n_slots))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                "the state file '{}' has {} state slots, this model has {}",
                path, nSlots, d.n_slots);
  for (size_t i = 0; i < slots.size(); ++i) {
    const rwkv_state_slot &o = d.slots[i];
    const char *name = o.name ? o.name : "";
    if (slots[i].name != name || slots[i].offset != uint64_t(o.offset) ||
        slots[i].size != uint64_t(o.size))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                  "the state file '{}' has another state layout: slot {} is "
                  "'{}' at {} (+{} floats), this model's is '{}' at {} (+{})",
                  path, i, slots[i].name.c_str(), slots[i].offset,
                  slots[i].size, name, o.offset, o.size);
  }
  if (nFloats != uint64_t(d.state_floats))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                "the state file '{}' holds {} floats, this model's state has {}",
                path, nFloats, d.state_floats);
  // A state is finite: NaN or Inf (written by a faulty run, or edited with
  // the checksum redone) would give NaN logits from then on.
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &o = d.slots[i];
    for (int64_t j = 0; j < o.size; ++j) {
      float v;
      memcpy(&v, data + size_t(o.offset + j) * 4, 4);
      if (!std::isfinite(v))
        return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                         "the state file '{}' holds a non-finite value ({}) "
                         "in slot {} '{}' at float {}",
                         path, v, i, o.name ? o.name : "", j);
    }
  }
  memcpy(state, data, size_t(nFloats) * 4);
  return RWKV_OK;
}


//===----------------------------------------------------------------------===//
// State handles (CPU backend: host memory)
//===----------------------------------------------------------------------===//

uint32_t rwkv_model_backend(const rwkv_model *model) {
  return model ? model->backend : uint32_t(RWKV_BACKEND_CPU);
}

size_t rwkv_max_chunk(const rwkv_model *model) {
  return model ? maxChunk(*model) : 1;
}

size_t rwkv_default_chunk(const rwkv_model *model) {
  return model ? chunkSize(*model, 0) : 1;
}

rwkv_state *rwkv_state_new(const rwkv_model *model, char *err, size_t errlen) {
  if (!model) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "rwkv_state_new: null model");
    return nullptr;
  }
  rwkv_state *s = new (std::nothrow) rwkv_state{model, {}, nullptr};
  if (!s) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY, "out of memory for a state");
    return nullptr;
  }
  if (model->cuda) {
    if (rwkv_cuda::stateNew(*model->cuda, model->graphs, &s->cuda, err,
                            errlen)) {
      delete s;
      return nullptr;
    }
    return s;
  }
  s->data.resize(size_t(model->desc->state_floats));
  rwkv_state_reset(model, s->data.data());
  return s;
}

void rwkv_state_free(rwkv_state *state) {
  if (state)
    rwkv_cuda::stateFree(state->cuda);
  delete state;
}

const rwkv_model *rwkv_state_get_model(const rwkv_state *state) {
  return state->model;
}

void rwkv_state_clear(rwkv_state *state) {
  if (state->cuda)
    rwkv_cuda::stateClear(*state->cuda, nullptr, 0);
  else
    rwkv_state_reset(state->model, state->data.data());
}

rwkv_state *rwkv_state_clone(const rwkv_state *src, char *err, size_t errlen) {
  if (!src) {
    RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "rwkv_state_clone: null state");
    return nullptr;
  }
  rwkv_state *s = rwkv_state_new(src->model, err, errlen);
  if (s && rwkv_state_assign(s, src, err, errlen) != RWKV_OK) {
    rwkv_state_free(s);
    return nullptr;
  }
  return s;
}

int rwkv_state_assign(rwkv_state *dst, const rwkv_state *src, char *err,
                      size_t errlen) {
  if (!dst || !src)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_assign: null state");
  if (dst->model->desc != src->model->desc)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                "rwkv_state_assign: the states belong to different models");
  if (dst == src)
    return RWKV_OK;
  if (dst->cuda && src->cuda && dst->model == src->model)
    return rwkv_cuda::stateCopy(*dst->cuda, *src->cuda, err, errlen);
  if (!dst->cuda && !src->cuda) {
    dst->data = src->data;
    return RWKV_OK;
  }
  // Between backends (two handles of one model): through the host layout.
  std::vector<float> host(rwkv_state_size(src->model) / sizeof(float));
  if (int status = rwkv_state_read(src, host.data(), err, errlen))
    return status;
  return rwkv_state_write(dst, host.data(), err, errlen);
}

int rwkv_state_read(const rwkv_state *state, float *host, char *err,
                    size_t errlen) {
  if (!state || !host)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_read: null state or buffer");
  if (state->cuda)
    return rwkv_cuda::stateRead(*state->cuda, host, err, errlen);
  memcpy(host, state->data.data(), state->data.size() * sizeof(float));
  return RWKV_OK;
}

int rwkv_state_write(rwkv_state *state, const float *host, char *err,
                     size_t errlen) {
  if (!state || !host)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_write: null state or buffer");
  if (state->cuda)
    return rwkv_cuda::stateWrite(*state->cuda, host, err, errlen);
  memmove(state->data.data(), host, state->data.size() * sizeof(float));
  return RWKV_OK;
}

int rwkv_state_save_file(const rwkv_state *state, const char *path, char *err,
                         size_t errlen) {
  if (!state)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_save_file: null state");
  if (!state->cuda)
    return rwkv_state_save(state->model, state->data.data(), path, err,
                           errlen);
  std::vector<float> host(rwkv_state_size(state->model) / sizeof(float));
  if (int status = rwkv_state_read(state, host.data(), err, errlen))
    return status;
  return rwkv_state_save(state->model, host.data(), path, err, errlen);
}

int rwkv_state_load_file(rwkv_state *state, const char *path, char *err,
                         size_t errlen) {
  if (!state)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_load_file: null state");
  if (!state->cuda)
    return rwkv_state_load(state->model, state->data.data(), path, err,
                           errlen);
  // Checked on the host: a refused file leaves the device state as it was.
  std::vector<float> host(rwkv_state_size(state->model) / sizeof(float));
  if (int status = rwkv_state_load(state->model, host.data(), path, err,
                                   errlen))
    return status;
  return rwkv_state_write(state, host.data(), err, errlen);
}

int rwkv_state_eval(rwkv_state *state, const int32_t *tokens, size_t n,
                    float *logits, int mode, size_t chunk, char *err,
                    size_t errlen) {
  if (!state || !logits || (n && !tokens))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_eval: null state, tokens or logits");
  if (!state->cuda)
    return evalHost(*state->model, state->data.data(), tokens, n, logits,
                    mode, chunk, /*all=*/false, "rwkv_state_eval", err,
                    errlen);
  if (int status = checkEval(*state->model, tokens, n, mode, false,
                             "rwkv_state_eval", err, errlen))
    return status;
  return evalCuda(*state->cuda, *state->model, tokens, n, logits, mode, chunk,
                  false, "rwkv_state_eval", err, errlen);
}

int rwkv_state_eval_all(rwkv_state *state, const int32_t *tokens, size_t n,
                        float *logits, size_t chunk, char *err,
                        size_t errlen) {
  if (!state || !logits || (n && !tokens))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                "rwkv_state_eval_all: null state, tokens or logits");
  if (!state->cuda)
    return evalHost(*state->model, state->data.data(), tokens, n, logits,
                    RWKV_EVAL_SEQ, chunk, /*all=*/true,
                    "rwkv_state_eval_all", err, errlen);
  if (int status = checkEval(*state->model, tokens, n, RWKV_EVAL_SEQ, true,
                             "rwkv_state_eval_all", err, errlen))
    return status;
  return evalCuda(*state->cuda, *state->model, tokens, n, logits,
                  RWKV_EVAL_SEQ, chunk, true, "rwkv_state_eval_all", err,
                  errlen);
}

int rwkv_eval_batch(rwkv_state *const *states, const int32_t *const *tokens,
                    const size_t *n_tokens, size_t batch,
                    float *const *logits, char *err, size_t errlen) {
  constexpr const char *fn = "rwkv_eval_batch";
  if (batch && (!states || !tokens || !n_tokens || !logits))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "{}: null states, tokens, n_tokens or logits", fn);
  for (size_t i = 0; i < batch; ++i) {
    if (!states[i] || !tokens[i] || !n_tokens[i])
      return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                       "{}: sequence {} has no state or no tokens", fn, i);
    if (states[i]->model != states[0]->model)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_MISMATCH,
                       "{}: the state of sequence {} belongs to another model",
                       fn, i);
    for (size_t j = 0; j < i; ++j)
      if (states[j] == states[i])
        return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                         "{}: sequences {} and {} share one state", fn, j, i);
    char why[256] = {};
    if (int status = checkTokens(*states[i]->model, tokens[i], n_tokens[i],
                                 fn, why, sizeof why))
      return RWKV_FAIL(err, errlen, status, "{}: sequence {}: {}", fn, i, why);
  }
  if (!batch)
    return RWKV_OK;
  // The sequences of one token (decoding) go through the generated batch
  // entry, which reads each weight once for all of them; a single one
  // through forward_one, decode's own kernel.
  const rwkv_model &m = *states[0]->model;
  std::vector<size_t> rows;
  if (hasBatchEntry(m))
    for (size_t i = 0; i < batch; ++i)
      if (n_tokens[i] == 1)
        rows.push_back(i);
  if (rows.size() < 2)
    rows.clear();
  std::vector<float> unused;
  for (size_t i = 0, next = 0; i < batch; ++i) {
    if (next < rows.size() && rows[next] == i) {
      ++next;
      continue;
    }
    float *out = logits[i];
    if (!out) {
      unused.resize(rwkv_n_vocab(states[i]->model));
      out = unused.data();
    }
    int mode = n_tokens[i] == 1 ? RWKV_EVAL_RNN : RWKV_EVAL_SEQ;
    if (int status = rwkv_state_eval(states[i], tokens[i], n_tokens[i], out,
                                     mode, 0, err, errlen))
      return status;
  }
  if (rows.empty())
    return RWKV_OK;
  return evalBatchEntry(m, states, tokens, logits, rows, fn, err, errlen);
}

} // extern "C"
