//===- BoundedJSON.cpp - JSON parsing with depth and size limits ----------===//
//
// One pass over the text, outside strings (a backslash escapes the next
// byte): '{' and '[' open a level, '}' and ']' close one, '{' counts an
// object and ',', '{', '[' count values. Malformed text that stays within
// the limits is left for llvm::json::parse to report.
//
//===----------------------------------------------------------------------===//

#include "frontend/BoundedJSON.h"

#include "llvm/ADT/Twine.h"

using namespace llvm;

namespace rwkvc {

static Error limitError(const Twine &msg) {
  return createStringError(inconvertibleErrorCode(), msg.str());
}

Expected<json::Value> parseBoundedJSON(StringRef text,
                                       const JSONLimits &limits) {
  uint64_t depth = 0, objects = 0, values = 1;
  bool inString = false;
  for (size_t i = 0, n = text.size(); i < n; ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
      continue;
    }
    switch (c) {
    case '"':
      inString = true;
      break;
    case '{':
      if (++objects > limits.maxObjects)
        return limitError("JSON holds more than " + Twine(limits.maxObjects) +
                          " objects (at byte " + Twine(i) + ")");
      [[fallthrough]];
    case '[':
      if (++depth > limits.maxDepth)
        return limitError("JSON nests deeper than " + Twine(limits.maxDepth) +
                          " levels (at byte " + Twine(i) + ")");
      [[fallthrough]];
    case ',':
      if (++values > limits.maxValues)
        return limitError("JSON holds more than " + Twine(limits.maxValues) +
                          " values (at byte " + Twine(i) + ")");
      break;
    case '}':
    case ']':
      if (depth)
        --depth;
      break;
    default:
      break;
    }
  }
  return json::parse(text);
}

} // namespace rwkvc
