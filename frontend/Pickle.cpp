//===- Pickle.cpp - Restricted unpickler for torch state dicts ------------===//
//
// Protocol 2-5 opcodes that torch.save emits for a dict of tensors, plus a
// few harmless ones (lists, floats, longs). Callables are interpreted by
// name only:
//
//   collections.OrderedDict(), builtins.dict()      -> empty dict
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
//                                                    -> tensor reference
//   torch._utils._rebuild_parameter(tensor, ...)    -> that tensor
//   torch.<T>Storage (persistent-id storage types)  -> type names only
//
// Anything else named by GLOBAL/STACK_GLOBAL is refused before it could be
// used, and unknown opcodes are refused by name and byte offset.
//
//===----------------------------------------------------------------------===//

#include "frontend/Pickle.h"
#include "frontend/ReaderSupport.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace llvm;
using rwkvc::detail::readLE;

namespace rwkvc {
namespace pickle {

namespace {

/// Storage classes torch.save names in persistent ids.
std::optional<std::optional<DType>> storageType(StringRef g) {
  if (g == "torch.FloatStorage")
    return std::optional<DType>(DType::F32);
  if (g == "torch.HalfStorage")
    return std::optional<DType>(DType::F16);
  if (g == "torch.BFloat16Storage")
    return std::optional<DType>(DType::BF16);
  if (is_contained({"torch.DoubleStorage", "torch.LongStorage",
                    "torch.IntStorage", "torch.ShortStorage",
                    "torch.CharStorage", "torch.ByteStorage",
                    "torch.BoolStorage"},
                   g))
    return std::optional<DType>(); // known, but not a supported dtype
  return std::nullopt;
}

bool isAllowedGlobal(StringRef g) {
  return storageType(g) ||
         is_contained({"collections.OrderedDict", "builtins.dict",
                       "torch._utils._rebuild_tensor_v2",
                       "torch._utils._rebuild_parameter"},
                      g);
}

/// Names of the pickle opcodes, for error messages.
const char *opcodeName(uint8_t op) {
  switch (op) {
#define OP(byte, name)                                                         \
  case byte:                                                                   \
    return name;
    OP('(', "MARK")
    OP('.', "STOP") OP('0', "POP") OP('1', "POP_MARK") OP('2', "DUP") OP(
        'F', "FLOAT") OP('I', "INT") OP('J', "BININT") OP('K', "BININT1")
        OP('L', "LONG") OP('M', "BININT2") OP('N', "NONE") OP('P', "PERSID") OP(
            'Q', "BINPERSID") OP('R', "REDUCE") OP('S',
                                                   "STRING") OP('T',
                                                                "BINSTRING")
            OP('U', "SHORT_BINSTRING") OP('V', "UNICODE") OP(
                'X', "BINUNICODE") OP('a', "APPEND") OP('b',
                                                        "BUILD") OP('c',
                                                                    "GLOBAL")
                OP('d', "DICT") OP('}', "EMPTY_DICT") OP('e', "APPENDS") OP(
                    'g', "GET") OP('h', "BINGET") OP('i',
                                                     "INST") OP('j',
                                                                "LONG_BINGET")
                    OP('l', "LIST") OP(']', "EMPTY_LIST") OP('o', "OBJ") OP(
                        'p', "PUT") OP('q', "BINPUT") OP('r', "LONG_BINPUT")
                        OP('s', "SETITEM") OP('t', "TUPLE") OP(
                            ')',
                            "EMPTY_TUPLE") OP('u',
                                              "SETITEMS") OP('G', "BINFLOAT")
                            OP(0x80, "PROTO") OP(0x81, "NEWOBJ") OP(
                                0x82, "EXT1") OP(0x83,
                                                 "EXT2") OP(0x84, "EXT4")
                                OP(0x85, "TUPLE1") OP(0x86, "TUPLE2") OP(
                                    0x87, "TUPLE3") OP(0x88, "NEWTRUE")
                                    OP(0x89, "NEWFALSE") OP(0x8a, "LONG1") OP(
                                        0x8b, "LONG4") OP(0x42, "BINBYTES")
                                        OP(0x43, "SHORT_BINBYTES") OP(
                                            0x8c, "SHORT_BINUNICODE")
                                            OP(0x8d, "BINUNICODE8") OP(
                                                0x8e, "BINBYTES8")
                                                OP(0x8f, "EMPTY_SET") OP(
                                                    0x90,
                                                    "ADDITEMS") OP(0x91, "FROZE"
                                                                         "NSET")
                                                    OP(0x92, "NEWOBJ_EX") OP(
                                                        0x93,
                                                        "STACK_GLOBAL")
                                                        OP(0x94, "MEMOIZE") OP(
                                                            0x95, "FRAME")
                                                            OP(0x96, "BYTEARRAY"
                                                                     "8") OP(
                                                                0x97,
                                                                "NEXT_BUFFER")
                                                                OP(0x98,
                                                                   "READONLY_"
                                                                   "BUFFER")
#undef OP
                                                                    default
        : return "unknown";
  }
}

class Unpickler {
public:
  explicit Unpickler(StringRef bytes)
      : p(bytes.bytes_begin()), end(bytes.bytes_end()),
        begin(bytes.bytes_begin()),
        budget(std::min(kBudgetFloor + kBudgetPerByte * uint64_t(bytes.size()),
                        kBudgetCap)),
        arena(std::make_unique<BumpPtrAllocator>()) {}

  Expected<ValueRef> run();
  std::unique_ptr<BumpPtrAllocator> takeArena() { return std::move(arena); }

private:
  /// The bytes held: everything in the arena, the memo table, the stack.
  /// run() checks it against the budget after every opcode; one opcode
  /// allocates at most a copy of something already counted, or of the
  /// pickle's own bytes.
  uint64_t held() const {
    return arena->getBytesAllocated() + memo.getMemorySize() +
           stack.capacity() * sizeof(ValueRef) +
           marks.capacity() * sizeof(size_t);
  }
  Error overBudget() {
    return fail("building the pickle's objects would take more than " +
                Twine(budget) + " bytes of memory (" + Twine(kBudgetPerByte) +
                " per pickle byte + " + Twine(kBudgetFloor >> 20) +
                " MiB, at most " + Twine(kBudgetCap >> 20) + " MiB)");
  }
  template <typename T> T *allocate(size_t n = 1) {
    return arena->Allocate<T>(n);
  }
  ValueRef make(Value::Kind k) {
    ValueRef v = new (allocate<Value>()) Value();
    v->kind = k;
    return v;
  }
  /// A string or global value holding a copy of `s`.
  ValueRef makeString(Value::Kind k, StringRef s) {
    ValueRef v = make(k);
    char *chars = allocate<char>(s.size());
    std::memcpy(chars, s.data(), s.size());
    v->chars = chars;
    v->size = uint32_t(s.size());
    return v;
  }
  /// Appends `more` to the items of container `c`, doubling its slots when
  /// they are full (the old slots stay in the arena, counted). A container
  /// made with its items (a tuple) gets exactly as many slots.
  Error append(ValueRef c, ArrayRef<ValueRef> more) {
    uint64_t n = uint64_t(c->size) + more.size();
    if (n > UINT32_MAX)
      return overBudget();
    if (n > c->capacity) {
      uint64_t cap = c->capacity || c->kind == Value::Tuple
                         ? std::max<uint64_t>(n, 2 * uint64_t(c->capacity))
                         : std::max<uint64_t>(n, 4);
      if (cap * sizeof(ValueRef) > budget)
        return overBudget();
      cap = std::min<uint64_t>(cap, UINT32_MAX);
      ValueRef *slots = allocate<ValueRef>(cap);
      std::copy_n(c->slots, c->size, slots);
      c->slots = slots;
      c->capacity = uint32_t(cap);
    }
    std::copy(more.begin(), more.end(), c->slots + c->size);
    c->size = uint32_t(n);
    return Error::success();
  }
  /// A container of kind `k` holding `items`.
  Expected<ValueRef> makeContainer(Value::Kind k, ArrayRef<ValueRef> items) {
    ValueRef v = make(k);
    if (Error e = append(v, items))
      return std::move(e);
    return v;
  }
  Error fail(const Twine &msg) {
    return createStringError(
        inconvertibleErrorCode(),
        ("data.pkl: " + msg + " (at byte offset " + Twine(opOffset) + ")")
            .str());
  }
  Expected<const uint8_t *> take(uint64_t n) {
    if (uint64_t(end - p) < n)
      return fail("truncated pickle");
    const uint8_t *r = p;
    p += n;
    return r;
  }
  Expected<ValueRef> pop() {
    if (stack.size() <= markBase())
      return fail("stack underflow");
    ValueRef v = stack.back();
    stack.pop_back();
    return v;
  }
  size_t markBase() const { return marks.empty() ? 0 : marks.back(); }
  /// Removes the topmost MARK; returns the stack position it marked (the
  /// items above it are the caller's to take, then to drop with
  /// stack.resize).
  Expected<size_t> popMark() {
    if (marks.empty())
      return fail("no MARK on the stack");
    size_t m = marks.back();
    marks.pop_back();
    return m;
  }
  ArrayRef<ValueRef> above(size_t m) const {
    return ArrayRef<ValueRef>(stack).drop_front(m);
  }
  Expected<std::string> readLine() {
    const uint8_t *nl = std::find(p, end, '\n');
    if (nl == end)
      return fail("truncated pickle");
    std::string s(p, nl);
    p = nl + 1;
    return s;
  }
  Error pushString(uint64_t len) {
    auto d = take(len);
    if (!d)
      return d.takeError();
    if (len > UINT32_MAX)
      return fail("a string of " + Twine(len) + " bytes is not supported");
    stack.push_back(makeString(
        Value::String, StringRef(reinterpret_cast<const char *>(*d), len)));
    return Error::success();
  }
  Error pushInt(int64_t i) {
    auto v = make(Value::Int);
    v->i = i;
    stack.push_back(v);
    return Error::success();
  }
  Error pushGlobal(const std::string &qualname) {
    if (!isAllowedGlobal(qualname))
      return fail("global '" + qualname + "' is not allowed");
    stack.push_back(makeString(Value::Global, qualname));
    return Error::success();
  }
  Error setItems(ValueRef dict, ArrayRef<ValueRef> kv) {
    if (dict->kind != Value::Dict)
      return fail("SETITEM(S) on a non-dict");
    if (kv.size() % 2)
      return fail("SETITEMS with an odd number of items");
    return append(dict, kv);
  }
  Expected<ValueRef> persistentLoad(ValueRef pid);
  Expected<ValueRef> reduce(ValueRef callable, ValueRef args);

  const uint8_t *p, *end, *begin;
  uint64_t opOffset = 0;
  const uint64_t budget;
  std::unique_ptr<BumpPtrAllocator> arena;
  std::vector<ValueRef> stack;
  std::vector<size_t> marks;
  DenseMap<uint64_t, ValueRef> memo;
};

Expected<ValueRef> Unpickler::persistentLoad(ValueRef pid) {
  // ('storage', storage_type, key, location, numel)
  ArrayRef<ValueRef> f =
      pid->kind == Value::Tuple ? pid->items() : ArrayRef<ValueRef>();
  if (f.size() != 5 || f[0]->kind != Value::String ||
      f[0]->str() != "storage" || f[1]->kind != Value::Global ||
      f[2]->kind != Value::String || f[4]->kind != Value::Int || f[4]->i < 0)
    return fail("persistent id is not a torch storage "
                "('storage', type, key, location, numel)");
  auto type = storageType(f[1]->str());
  if (!type)
    return fail("'" + f[1]->str() + "' is not a storage type");
  // A memoized pid can be loaded again for three bytes: each load takes a
  // StorageRef of its own (the strings are the pid's).
  auto *storage = new (allocate<StorageRef>()) StorageRef();
  storage->typeName = f[1]->str();
  storage->dtype = *type;
  storage->key = f[2]->str();
  storage->numel = uint64_t(f[4]->i);
  auto v = make(Value::Storage);
  v->storage = storage;
  return v;
}

static bool intTuple(const Value &v, SmallVectorImpl<int64_t> &out) {
  if (v.kind != Value::Tuple)
    return false;
  for (ValueRef e : v.items()) {
    if (e->kind != Value::Int)
      return false;
    out.push_back(e->i);
  }
  return true;
}

Expected<ValueRef> Unpickler::reduce(ValueRef callable, ValueRef args) {
  if (callable->kind != Value::Global)
    return fail("REDUCE of something that is not an allowed global");
  if (args->kind != Value::Tuple)
    return fail("REDUCE arguments are not a tuple");
  StringRef g = callable->str();
  ArrayRef<ValueRef> a = args->items();
  if (g == "collections.OrderedDict" || g == "builtins.dict") {
    if (!a.empty())
      return fail(g + "() with arguments is not supported");
    return make(Value::Dict);
  }
  if (g == "torch._utils._rebuild_tensor_v2") {
    // (storage, storage_offset, size, stride, requires_grad, hooks[, meta])
    if (a.size() < 4 || a[0]->kind != Value::Storage ||
        a[1]->kind != Value::Int || a[1]->i < 0)
      return fail("bad arguments to torch._utils._rebuild_tensor_v2");
    SmallVector<int64_t, 4> size, stride;
    if (!intTuple(*a[2], size) || !intTuple(*a[3], stride) ||
        size.size() != stride.size())
      return fail("bad size/stride in torch._utils._rebuild_tensor_v2");
    // Size and stride tuples may be memoized and reused: each tensor takes
    // copies of its own.
    auto copy = [&](ArrayRef<int64_t> ints) {
      int64_t *d = allocate<int64_t>(ints.size());
      std::copy(ints.begin(), ints.end(), d);
      return ArrayRef<int64_t>(d, ints.size());
    };
    auto *tensor = new (allocate<TensorRef>()) TensorRef();
    tensor->storage = a[0]->storage;
    tensor->offset = uint64_t(a[1]->i);
    tensor->size = copy(size);
    tensor->stride = copy(stride);
    auto v = make(Value::Tensor);
    v->tensor = tensor;
    return v;
  }
  if (g == "torch._utils._rebuild_parameter") {
    if (a.empty() || a[0]->kind != Value::Tensor)
      return fail("bad arguments to torch._utils._rebuild_parameter");
    return a[0];
  }
  return fail("global '" + g + "' cannot be called");
}

Expected<ValueRef> Unpickler::run() {
  while (true) {
    opOffset = p - begin;
    if (p == end)
      return fail("truncated pickle (no STOP)");
    uint8_t op = *p++;
    Error err = Error::success();
    switch (op) {
    case 0x80: { // PROTO
      auto d = take(1);
      if (!d)
        return d.takeError();
      if (**d < 2 || **d > 5)
        return fail("unsupported pickle protocol " + Twine(**d));
      break;
    }
    case 0x95: { // FRAME: a length hint only
      if (auto d = take(8); !d)
        return d.takeError();
      break;
    }
    case '.': { // STOP
      if (stack.size() != 1 || !marks.empty())
        return fail("STOP with " + Twine(stack.size()) +
                    " values on the stack");
      return stack.back();
    }
    case '(':
      marks.push_back(stack.size());
      break;
    case '}':
      stack.push_back(make(Value::Dict));
      break;
    case ']':
      stack.push_back(make(Value::List));
      break;
    case ')':
      stack.push_back(make(Value::Tuple));
      break;
    case 'N':
      stack.push_back(make(Value::None));
      break;
    case 0x88:
    case 0x89: { // NEWTRUE, NEWFALSE
      auto v = make(Value::Bool);
      v->i = op == 0x88;
      stack.push_back(v);
      break;
    }
    case 'K': { // BININT1
      auto d = take(1);
      if (!d)
        return d.takeError();
      err = pushInt(**d);
      break;
    }
    case 'M': { // BININT2
      auto d = take(2);
      if (!d)
        return d.takeError();
      err = pushInt(readLE<uint16_t>(*d));
      break;
    }
    case 'J': { // BININT
      auto d = take(4);
      if (!d)
        return d.takeError();
      err = pushInt(readLE<int32_t>(*d));
      break;
    }
    case 0x8a: { // LONG1: little-endian two's complement, up to 8 bytes here
      auto n = take(1);
      if (!n)
        return n.takeError();
      if (**n > 8)
        return fail("LONG1 integer wider than 64 bits");
      auto d = take(**n);
      if (!d)
        return d.takeError();
      uint64_t u = 0;
      for (unsigned i = 0; i < **n; ++i)
        u |= uint64_t((*d)[i]) << (8 * i);
      if (**n && **n < 8 && ((*d)[**n - 1] & 0x80))
        u |= ~uint64_t(0) << (8 * **n); // sign-extend
      err = pushInt(int64_t(u));
      break;
    }
    case 'G': { // BINFLOAT: big-endian double
      auto d = take(8);
      if (!d)
        return d.takeError();
      uint64_t u = 0;
      for (int i = 0; i < 8; ++i)
        u = (u << 8) | (*d)[i];
      auto v = make(Value::Float);
      std::memcpy(&v->f, &u, 8);
      stack.push_back(v);
      break;
    }
    case 'X': { // BINUNICODE
      auto d = take(4);
      if (!d)
        return d.takeError();
      err = pushString(readLE<uint32_t>(*d));
      break;
    }
    case 0x8c: { // SHORT_BINUNICODE
      auto d = take(1);
      if (!d)
        return d.takeError();
      err = pushString(**d);
      break;
    }
    case 0x8d: { // BINUNICODE8
      auto d = take(8);
      if (!d)
        return d.takeError();
      err = pushString(readLE<uint64_t>(*d));
      break;
    }
    case 'c': { // GLOBAL "module\nname\n"
      auto module = readLine();
      if (!module)
        return module.takeError();
      auto name = readLine();
      if (!name)
        return name.takeError();
      err = pushGlobal(*module + "." + *name);
      break;
    }
    case 0x93: { // STACK_GLOBAL
      auto name = pop();
      if (!name)
        return name.takeError();
      auto module = pop();
      if (!module)
        return module.takeError();
      if ((*module)->kind != Value::String || (*name)->kind != Value::String)
        return fail("STACK_GLOBAL of non-strings");
      err = pushGlobal(((*module)->str() + "." + (*name)->str()).str());
      break;
    }
    case 'q':
    case 'r':
    case 0x94: { // BINPUT, LONG_BINPUT, MEMOIZE
      uint64_t idx = memo.size();
      if (op != 0x94) {
        auto d = take(op == 'q' ? 1 : 4);
        if (!d)
          return d.takeError();
        idx = op == 'q' ? **d : readLE<uint32_t>(*d);
      }
      if (stack.size() <= markBase())
        return fail("memoizing from an empty stack");
      memo[idx] = stack.back();
      break;
    }
    case 'h':
    case 'j': { // BINGET, LONG_BINGET
      auto d = take(op == 'h' ? 1 : 4);
      if (!d)
        return d.takeError();
      uint64_t idx = op == 'h' ? **d : readLE<uint32_t>(*d);
      auto it = memo.find(idx);
      if (it == memo.end())
        return fail("memo key " + Twine(idx) + " is not defined");
      stack.push_back(it->second);
      break;
    }
    case 't': { // TUPLE
      auto m = popMark();
      if (!m)
        return m.takeError();
      auto v = makeContainer(Value::Tuple, above(*m));
      if (!v)
        return v.takeError();
      stack.resize(*m);
      stack.push_back(*v);
      break;
    }
    case 0x85:
    case 0x86:
    case 0x87: { // TUPLE1..3
      unsigned n = op - 0x84;
      if (stack.size() < markBase() + n)
        return fail("stack underflow");
      auto v = makeContainer(Value::Tuple, ArrayRef(stack).take_back(n));
      if (!v)
        return v.takeError();
      stack.resize(stack.size() - n);
      stack.push_back(*v);
      break;
    }
    case 'a': { // APPEND
      auto item = pop();
      if (!item)
        return item.takeError();
      if (stack.size() <= markBase() || stack.back()->kind != Value::List)
        return fail("APPEND to a non-list");
      err = append(stack.back(), *item);
      break;
    }
    case 'e': { // APPENDS
      auto m = popMark();
      if (!m)
        return m.takeError();
      if (*m <= markBase() || stack[*m - 1]->kind != Value::List)
        return fail("APPENDS to a non-list");
      err = append(stack[*m - 1], above(*m));
      stack.resize(*m);
      break;
    }
    case 's': { // SETITEM
      auto value = pop();
      if (!value)
        return value.takeError();
      auto key = pop();
      if (!key)
        return key.takeError();
      if (stack.size() <= markBase())
        return fail("SETITEM without a dict");
      ValueRef kv[] = {*key, *value};
      err = setItems(stack.back(), kv);
      break;
    }
    case 'u': { // SETITEMS
      auto m = popMark();
      if (!m)
        return m.takeError();
      if (*m <= markBase())
        return fail("SETITEMS without a dict");
      err = setItems(stack[*m - 1], above(*m));
      stack.resize(*m);
      break;
    }
    case 'Q': { // BINPERSID
      auto pid = pop();
      if (!pid)
        return pid.takeError();
      auto v = persistentLoad(*pid);
      if (!v)
        return v.takeError();
      stack.push_back(*v);
      break;
    }
    case 'R': { // REDUCE
      auto args = pop();
      if (!args)
        return args.takeError();
      auto callable = pop();
      if (!callable)
        return callable.takeError();
      auto v = reduce(*callable, *args);
      if (!v)
        return v.takeError();
      stack.push_back(*v);
      break;
    }
    case 'b': { // BUILD: only the (ignored) state of an OrderedDict
      auto state = pop();
      if (!state)
        return state.takeError();
      if (stack.size() <= markBase() || stack.back()->kind != Value::Dict)
        return fail("BUILD on something other than a dict");
      break;
    }
    default:
      return fail(formatv("unsupported pickle opcode 0x{0:x-2} ({1})", op,
                          opcodeName(op))
                      .str());
    }
    if (err)
      return std::move(err);
    if (held() > budget)
      return overBudget();
  }
}

} // namespace

Expected<Pickled> unpickle(StringRef bytes) {
  Unpickler u(bytes);
  auto root = u.run();
  if (!root)
    return root.takeError();
  Pickled result;
  result.arena = u.takeArena();
  result.root = *root;
  return result;
}

} // namespace pickle
} // namespace rwkvc
