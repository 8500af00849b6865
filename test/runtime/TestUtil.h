//===- TestUtil.h - Helpers shared by the runtime tests -------------------===//

#ifndef RWKV_TEST_RUNTIME_TESTUTIL_H
#define RWKV_TEST_RUNTIME_TESTUTIL_H

#include "gtest/gtest.h"
#include "runtime/format/rwkv_fnv1a.h"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace rt_test {

/// A fresh directory for one test, removed with its files afterwards.
class TempDir {
public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "rwkv-runtime-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()))
      dir = buf.data();
  }
  ~TempDir() {
    if (!dir.empty())
      std::system(("rm -rf '" + dir + "'").c_str());
  }
  std::string path(const std::string &name) const { return dir + "/" + name; }
  std::string dir;
};

inline std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void writeBytes(const std::string &path, const void *data, size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char *>(data), std::streamsize(n));
}

inline void writeBytes(const std::string &path,
                       const std::vector<uint8_t> &bytes) {
  writeBytes(path, bytes.data(), bytes.size());
}

inline std::string readText(const std::string &path) {
  std::vector<uint8_t> b = readBytes(path);
  return std::string(b.begin(), b.end());
}

/// Rewrites the trailing checksum (rwkv_fnv1a64) of a state file or
/// tokenizer blob image after an edit.
inline void fixChecksum(std::vector<uint8_t> &bytes) {
  uint64_t sum = rwkv_fnv1a64(bytes.data(), bytes.size() - 8);
  memcpy(bytes.data() + bytes.size() - 8, &sum, 8);
}

struct CliResult {
  int status = -1;
  std::string out, err;
};

/// Runs `exe args` (args as shell words) in `dir`'s files out/err.
inline CliResult runCli(const TempDir &dir, const std::string &exe,
                        const std::string &args) {
  std::string out = dir.path("stdout.txt"), err = dir.path("stderr.txt");
  std::string cmd = "'" + exe + "' " + args + " >'" + out + "' 2>'" + err + "'";
  int rc = std::system(cmd.c_str());
  CliResult r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = readText(out);
  r.err = readText(err);
  return r;
}

/// `r` without the line ASan's allocator prints when it lets a request
/// fail (allocator_may_return_null, set by FakeModel.cpp in the sanitizer
/// build): "==PID==WARNING: AddressSanitizer failed to allocate 0x... bytes".
inline CliResult withoutAllocatorWarnings(CliResult r) {
  std::string kept;
  size_t start = 0;
  while (start < r.err.size()) {
    size_t end = r.err.find('\n', start);
    end = end == std::string::npos ? r.err.size() : end + 1;
    std::string line = r.err.substr(start, end - start);
    if (!(line.rfind("==", 0) == 0 &&
          line.find("WARNING: AddressSanitizer failed to allocate") !=
              std::string::npos))
      kept += line;
    start = end;
  }
  r.err = kept;
  return r;
}

} // namespace rt_test

#endif // RWKV_TEST_RUNTIME_TESTUTIL_H
