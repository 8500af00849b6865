//===- Format.cpp - Text of the emulator's reports ------------------------===//

#include "Format.h"

#include <cstdarg>
#include <cstdio>

namespace rwkv_emu {

std::string format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, fmt, copy);
  va_end(copy);
  std::string s(n > 0 ? size_t(n) : 0, '\0');
  if (n > 0)
    vsnprintf(s.data(), s.size() + 1, fmt, args);
  va_end(args);
  return s;
}

std::string ranges(const std::vector<unsigned> &sorted) {
  std::string s;
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j + 1 < sorted.size() && sorted[j + 1] == sorted[j] + 1)
      ++j;
    if (!s.empty())
      s += ", ";
    s += std::to_string(sorted[i]);
    if (j > i)
      s += "-" + std::to_string(sorted[j]);
    i = j + 1;
  }
  return s;
}

} // namespace rwkv_emu
