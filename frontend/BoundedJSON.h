//===- BoundedJSON.h - JSON parsing with depth and size limits --*- C++ -*-===//
//
// llvm::json::parse recurses once per nesting level and gives every
// non-empty object a 64-bucket hash table (about 4.6 KB), so a small hostile
// file can overflow the stack or ask for gigabytes. parseBoundedJSON first
// scans the text (no recursion, no allocation) and refuses it when it nests
// deeper, or holds more objects or values, than the limits; only then does
// it call llvm::json::parse. Every JSON file rwkvc reads goes through here
// (docs/formats.md, "Limits").
//
//===----------------------------------------------------------------------===//

#ifndef RWKVC_FRONTEND_BOUNDEDJSON_H
#define RWKVC_FRONTEND_BOUNDEDJSON_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>

namespace rwkvc {

struct JSONLimits {
  /// Arrays and objects nested inside one another (the top level is 1).
  unsigned maxDepth = 64;
  /// Objects ('{'), each costing a hash table once parsed.
  uint64_t maxObjects = 65536;
  /// Values and object members, counted as the commas, '{' and '[' outside
  /// strings plus one (an upper bound on both).
  uint64_t maxValues = uint64_t(1) << 22;
};

/// llvm::json::parse(text) after checking `limits`. A text over a limit gives
/// an error naming the limit, e.g. "JSON nests deeper than 64 levels (at byte
/// 4096)"; the caller prefixes the file name.
llvm::Expected<llvm::json::Value>
parseBoundedJSON(llvm::StringRef text, const JSONLimits &limits = {});

} // namespace rwkvc

#endif // RWKVC_FRONTEND_BOUNDEDJSON_H
