//===- BoundedInputTest.cpp - Hostile files end in an error, in bounds ----===//
//
// The reproducers of "bounded memory and time on every input": JSON nested
// to overflow llvm::json::parse's recursion, stride-0 .pth views, deflate
// bombs spread over many entries, pickles that build far more than their
// size, safetensors headers of many tiny tensors. Each file is generated
// here and read in a child process under a 4 GiB address-space limit and a
// 60 s alarm, so that a regression fails the test (the child dies) instead
// of taking the machine. ASan reserves terabytes of shadow memory, so under
// ASan the address-space limit is left off (scripts/test.sh runs those
// tests with ASAN_OPTIONS=hard_rss_limit_mb instead).
//
//===----------------------------------------------------------------------===//

#include "ErrorOf.h"
#include "TestFiles.h"
#include "test/TimeScale.h"

#include "frontend/BoundedJSON.h"
#include "frontend/Tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define RWKVC_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RWKVC_UNDER_ASAN 1
#endif
#endif

using namespace rwkvc;
using namespace rwkvc::testing;

namespace {

constexpr uint64_t kAddressSpaceLimit = uint64_t(4) << 30;
constexpr unsigned kAlarmSeconds = 60;

/// What a child used: CPU seconds (user + system) and peak resident MiB.
struct ChildUse {
  double cpuSeconds = 0;
  long maxRssMiB = 0;
};

/// Runs `fn` in a child process under the limits above and returns the
/// string it returns, or how the child died. Prints the child's time and
/// peak resident memory, and stores them in `use` if given.
std::string inLimitedChild(const std::function<std::string()> &fn,
                           ChildUse *use = nullptr) {
  int fds[2];
  if (pipe(fds) != 0)
    return "pipe failed";
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0)
    return "fork failed";
  if (pid == 0) {
    close(fds[0]);
#ifndef RWKVC_UNDER_ASAN
    rlimit as = {kAddressSpaceLimit, kAddressSpaceLimit};
    setrlimit(RLIMIT_AS, &as);
#endif
    alarm(kAlarmSeconds); // also ends a hang at 0% CPU
    std::string out = fn();
    for (size_t done = 0; done < out.size();) {
      ssize_t n = write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0)
        break;
      done += size_t(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, size_t(n));
  close(fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double cpu = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               1e-6 * double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
  std::printf("  child: %.2f s (%.2f s CPU), peak RSS %ld MiB\n", seconds, cpu,
              usage.ru_maxrss / 1024);
  if (use)
    *use = {cpu, usage.ru_maxrss / 1024};
  if (WIFSIGNALED(status))
    return "child killed by signal " + std::to_string(WTERMSIG(status));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "child exited with status " + std::to_string(WEXITSTATUS(status));
  return out;
}

/// errorOf(bytes, name) in a limited child.
std::string limitedErrorOf(const std::string &bytes, const std::string &name) {
  return inLimitedChild([&] { return errorOf(bytes, name); });
}

#define EXPECT_LIMITED_FAULT(bytes, name, phrase)                              \
  do {                                                                         \
    std::string msg = limitedErrorOf(bytes, name);                             \
    EXPECT_EQ(msg.rfind(std::string(name) + ": ", 0), 0u) << msg;              \
    EXPECT_NE(msg.find(phrase), std::string::npos) << msg;                     \
  } while (0)

std::string nested(char open, char close, size_t depth) {
  return std::string(depth, open) + std::string(depth, close);
}

// --- JSON ----------------------------------------------------------------

TEST(BoundedJSON, DepthIsCountedOutsideStringsOnly) {
  std::string ok = nested('[', ']', 64);
  EXPECT_TRUE(bool(parseBoundedJSON(ok)));
  auto deep = parseBoundedJSON(nested('[', ']', 65));
  ASSERT_FALSE(bool(deep));
  EXPECT_EQ(llvm::toString(deep.takeError()),
            "JSON nests deeper than 64 levels (at byte 64)");
  // Brackets and escaped quotes inside strings are not nesting.
  std::string s = "{\"a\": \"\\\"" + std::string(1000, '[') + "\\\\\"}";
  auto str = parseBoundedJSON(s);
  ASSERT_TRUE(bool(str)) << llvm::toString(str.takeError());
  EXPECT_EQ(str->getAsObject()->getString("a")->size(), 1002u);
  // Objects and values are counted.
  auto objects = parseBoundedJSON("[{},{},{}]", {64, 2, 100});
  ASSERT_FALSE(bool(objects));
  EXPECT_NE(llvm::toString(objects.takeError()).find("more than 2 objects"),
            std::string::npos);
  auto values = parseBoundedJSON("[1,2,3,4]", {64, 2, 3});
  ASSERT_FALSE(bool(values));
  EXPECT_NE(llvm::toString(values.takeError()).find("more than 3 values"),
            std::string::npos);
}

// A 100 KB safetensors header nested 50,000 deep was a SIGSEGV.
TEST(BoundedInput, SafeTensorsHeaderNested50000Deep) {
  EXPECT_LIMITED_FAULT(
      makeSafeTensorsWithHeader("{\"a\":" + nested('[', ']', 50000) + "}"),
      "deep.safetensors", "bad JSON header: JSON nests deeper than 64 levels");
  std::string objects;
  for (int i = 0; i < 50000; ++i)
    objects += "{\"a\":";
  objects += "1" + std::string(50000, '}');
  EXPECT_LIMITED_FAULT(makeSafeTensorsWithHeader(objects), "deep.safetensors",
                       "JSON nests deeper than 64 levels");
}

// A tokenizer .json nested 100,000 deep was a SIGSEGV, or a hang when the
// overflow landed in malloc and LLVM's crash handler deadlocked.
TEST(BoundedInput, TokenizerJsonNested100000Deep) {
  std::string path = ::testing::TempDir() + "deep-tokenizer.json";
  std::ofstream(path) << "{\"model\": " << nested('[', ']', 100000) << "}";
  std::string msg = inLimitedChild([&]() -> std::string {
    auto blob = compileTokenizer(path, 0, "");
    return blob ? "" : llvm::toString(blob.takeError());
  });
  EXPECT_NE(msg.find("tokenizer file '" + path + "'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("JSON nests deeper than 64 levels"), std::string::npos)
      << msg;
  std::remove(path.c_str());
}

// A device or a pipe would be read to its end (/dev/zero has none:
// `rwkvc --inspect /dev/zero` aborted after 29 s and 2 GB): checkpoints and
// tokenizer files must be regular files, which are mapped.
TEST(BoundedInput, EndlessFilesAreNotRead) {
  std::string msg = inLimitedChild([] {
    auto ck = readCheckpoint("/dev/zero");
    return ck ? std::string() : llvm::toString(ck.takeError());
  });
  EXPECT_EQ(msg, "/dev/zero: cannot open: not a regular file (a pipe or a "
                 "device is not read: save it to a file first)");
  std::string fifo = ::testing::TempDir() + "endless-tokenizer.json";
  std::remove(fifo.c_str());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  msg = inLimitedChild([&]() -> std::string {
    auto blob = compileTokenizer(fifo, 0, "");
    return blob ? "" : llvm::toString(blob.takeError());
  });
  EXPECT_NE(msg.find("cannot read the tokenizer file '" + fifo +
                     "': not a regular file"),
            std::string::npos)
      << msg;
  std::remove(fifo.c_str());
}

// A 16 MB header of 200,000 tiny tensors made the reader take 1 GB (each
// parsed JSON object holds a 64-bucket table).
TEST(BoundedInput, SafeTensorsHeaderOf200000TinyTensors) {
  std::string json = "{";
  for (int i = 0; i < 200000; ++i)
    json += (i ? ",\"t" : "\"t") + std::to_string(i) +
            "\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],"
            "\"pad\":\"" +
            std::string(20, 'x') + "\"}";
  json += "}";
  EXPECT_LIMITED_FAULT(makeSafeTensorsWithHeader(json), "many.safetensors",
                       "JSON holds more than 65536 objects");
}

// --- .pth ------------------------------------------------------------------

std::string pthOfView(int64_t numel, const std::vector<int64_t> &size,
                      const std::vector<int64_t> &stride) {
  return makeZip({{"archive/data.pkl", makeViewPickle(numel, size, stride)},
                  {"archive/data/0", std::string(4 * size_t(numel), '\0')}});
}

// A stride-0 view of (2^20, 2^20) over one element asked for 4 TiB; one of
// (2^15, 2^15) took 4.26 GB and 26 s.
TEST(BoundedInput, PthStrideZeroViews) {
  EXPECT_LIMITED_FAULT(pthOfView(1, {1 << 20, 1 << 20}, {0, 0}), "zero.pth",
                       "tensor 'w': view (shape (1048576, 1048576), "
                       "1099511627776 elements) is larger than storage '0' "
                       "(1 elements): it repeats elements");
  EXPECT_LIMITED_FAULT(pthOfView(1, {1 << 15, 1 << 15}, {0, 0}), "zero.pth",
                       "is larger than storage '0'");
  // Overlapping strides are the same fault.
  EXPECT_LIMITED_FAULT(pthOfView(127, {64, 64}, {1, 1}), "overlap.pth",
                       "it repeats elements");
  // A strided view no larger than its storage is still copied.
  EXPECT_LIMITED_FAULT(pthOfView(64 * 64, {64, 64}, {1, 64}), "t.pth",
                       "unknown RWKV version");
}

// Eight deflated entries in an 11 MB file decompressed to over 3 GB; each
// was within the 1100x per-entry ratio.
TEST(BoundedInput, PthDeflatedEntriesShareOneBudget) {
  std::vector<TensorSpec> spec;
  for (int i = 0; i < 3; ++i) // 3 x 24 MiB, within 64 MiB by themselves
    spec.push_back({"t" + std::to_string(i),
                    {int64_t(6) << 20},
                    std::vector<float>(size_t(6) << 20, 0.0f)});
  PthOptions opts;
  opts.compress = true;
  std::string pth = makePth(spec, opts);
  spec.clear();
  ASSERT_LT(pth.size(), 200000u);
  EXPECT_LIMITED_FAULT(pth, "bomb.pth",
                       "zip: decompressing entry 'archive/data/2' (25165824 "
                       "bytes) would take the memory the reader allocates to ");
  EXPECT_LIMITED_FAULT(pth, "bomb.pth",
                       "over its limit of 67108864 (4 x the file size, at "
                       "least 64 MiB)");
}

std::string pthOfPickle(const std::string &pickle) {
  return makeZip({{"archive/data.pkl", pickle}});
}

// Nested pickle containers took about 190 bytes per pickle byte (a 22.7 MB
// file, 4.3 GB), then, within a budget of 64 bytes per pickle byte, 28 s and
// 1.5 GB. A value now takes 24 bytes of an arena, and the budget stops at
// 32 per pickle byte + 16 MiB, at most 128 MiB: refused in about a second.
TEST(BoundedInput, PickleContainersStayWithinTheirBudget) {
  // A value per byte takes 32 bytes (the value, its stack slot): 8 MiB of
  // them are over the cap.
  size_t n = size_t(8) << 20;
  std::string flat = "\x80\x02" + std::string(n, ']');
  EXPECT_LIMITED_FAULT(pthOfPickle(flat), "lists.pth",
                       "data.pkl: building the pickle's objects would take "
                       "more than 134217728 bytes of memory (32 per pickle "
                       "byte + 16 MiB, at most 128 MiB)");
  // Lists nested in lists, the size of the file: ] ] ] ... a a a.
  n = 22700000;
  std::string pth = pthOfPickle("\x80\x02]" + std::string(n / 2, ']') +
                                std::string(n / 2, 'a') + ".");
  ChildUse use;
  std::string msg =
      inLimitedChild([&] { return errorOf(pth, "nested.pth"); }, &use);
  EXPECT_NE(msg.find("would take more than 134217728 bytes of memory"),
            std::string::npos)
      << msg;
  EXPECT_LT(use.cpuSeconds, 10 * kTimeScale);
#ifndef RWKVC_UNDER_ASAN
  // The child's peak includes what it shares with this process (the test's
  // files, ~100 MiB).
  EXPECT_LT(use.maxRssMiB, 512);
#endif
}

// A memoized persistent id or size tuple can be used again for a few bytes.
// The storages loaded from one pid share its strings (100,000 loads of a
// 1 MiB key once took a copy each); the size and stride of each tensor are
// copies, counted against the budget.
TEST(BoundedInput, PickleMemoizedValuesAreCountedPerCopy) {
  std::string pid = "\x80\x02]((";
  appendBinUnicode(pid, "storage");
  pid += "ctorch\nFloatStorage\n";
  appendBinUnicode(pid, std::string(1 << 20, 'k')); // a 1 MiB storage key
  appendBinUnicode(pid, "cpu");
  appendBinInt(pid, 1);
  pid += "tq\x01";
  for (int i = 0; i < 100000; ++i)
    pid += "h\x01Q"; // BINGET the pid tuple, BINPERSID
  pid += "e.";
  ChildUse use;
  std::string msg = inLimitedChild(
      [&] { return errorOf(pthOfPickle(pid), "pids.pth"); }, &use);
  EXPECT_EQ(msg, "pids.pth: data.pkl: the pickle is not a dict of tensors");
#ifndef RWKVC_UNDER_ASAN
  EXPECT_LT(use.maxRssMiB, 256);
#endif

  std::string sizes = "\x80\x02]((";
  appendBinUnicode(sizes, "storage");
  sizes += "ctorch\nFloatStorage\n";
  appendBinUnicode(sizes, "0");
  appendBinUnicode(sizes, "cpu");
  appendBinInt(sizes, 1);
  sizes += "tQq\x01(";
  for (int i = 0; i < 20000; ++i)
    appendBinInt(sizes, 1);
  sizes += "tq\x02";
  std::string call = "ctorch._utils\n_rebuild_tensor_v2\n(h\x01K";
  call += '\0';
  call += "h\x02h\x02tR";
  for (int i = 0; i < 100000; ++i)
    sizes += call;
  sizes += "e.";
  EXPECT_LIMITED_FAULT(pthOfPickle(sizes), "sizes.pth",
                       "building the pickle's objects would take more than");
}

} // namespace
