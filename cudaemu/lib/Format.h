//===- Format.h - Text of the emulator's reports -----------------*- C++
//-*-===//

#ifndef RWKV_CUDAEMU_FORMAT_H
#define RWKV_CUDAEMU_FORMAT_H

#include <string>
#include <vector>

namespace rwkv_emu {

/// printf into a std::string.
std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/// "3", "0-31", "0-15, 40, 42-43": a sorted list of thread or lane numbers.
std::string ranges(const std::vector<unsigned> &sorted);

} // namespace rwkv_emu

#endif // RWKV_CUDAEMU_FORMAT_H
