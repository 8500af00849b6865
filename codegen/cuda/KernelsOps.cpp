//===- KernelsOps.cpp - Kernels of the non-linear op families -------------===//
//
// Each generator writes the extern "C" wrapper of a template of
// kernels/ops.cuh with the op's shapes as constants, and binds the wrapper's
// parameters to the op's operands, results, weights and state slots.
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/Kernels.h"
#include "codegen/cuda/KernelsLinear.h"

#include "rwkv/RWKVDialect.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

#include <cstdio>

using namespace mlir;
using namespace mlir::rwkv;

namespace rwkvc::cuda {

llvm::StringRef cudaTypeName(ElemType t) {
  switch (t) {
  case ElemType::F32:
    return "float";
  case ElemType::F16:
    return "__half";
  case ElemType::BF16:
    return "__nv_bfloat16";
  }
  return "float";
}

namespace {

llvm::Error opError(Operation *op, const llvm::Twine &what) {
  std::string loc;
  llvm::raw_string_ostream os(loc);
  op->getLoc().print(os);
  return llvm::createStringError(llvm::Twine("--target=cuda: ") +
                                 op->getName().getStringRef() + " at " + loc +
                                 ": " + what);
}

/// A float as an exact CUDA literal (hexadecimal).
std::string floatLiteral(float v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%af", double(v));
  return buf;
}

/// The element type of a weight the kernels read.
llvm::Expected<ElemType> elemType(Operation *op, Value v) {
  Type t = cast<RankedTensorType>(v.getType()).getElementType();
  if (t.isF32())
    return ElemType::F32;
  if (t.isF16())
    return ElemType::F16;
  if (t.isBF16())
    return ElemType::BF16;
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return opError(op, "weights of type " + s + " have no CUDA kernel yet");
}

int64_t numElements(Value v) {
  return cast<RankedTensorType>(v.getType()).getNumElements();
}

/// The channels of an activation (its last dimension).
int64_t channels(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape().back();
}

bool isWeight(Value v) { return v.getDefiningOp<WeightOp>() != nullptr; }

/// The CUDA type of the elements of an activation (float) or a weight.
std::string typeOf(Value v) {
  Type t = cast<RankedTensorType>(v.getType()).getElementType();
  return t.isF16() ? "__half" : t.isBF16() ? "__nv_bfloat16" : "float";
}

Param param(ParamRole role, Value v = {}) {
  Param p;
  p.role = role;
  p.value = v;
  return p;
}

/// Builds one kernel: its parameter list in text and in bindings.
class KernelBuilder {
public:
  explicit KernelBuilder(const OpContext &cx) : cx(cx) {}

  void input(llvm::StringRef name, Value v) {
    add("const float *" + name.str(), param(ParamRole::Input, v));
  }
  /// An operand that is an activation or a per-channel weight; returns
  /// the CUDA type of its elements.
  std::string operand(llvm::StringRef name, Value v) {
    std::string type = typeOf(v);
    add("const " + type + " *" + name.str(),
        param(isWeight(v) ? ParamRole::Weight : ParamRole::Input, v));
    return type;
  }
  void output(llvm::StringRef name, Value v, int aliasOf = -1) {
    Param p = param(ParamRole::Output, v);
    p.aliasOf = aliasOf;
    add("float *" + name.str(), p);
  }
  void weight(llvm::StringRef type, llvm::StringRef name, Value v) {
    add(("const " + type + " *" + name).str(), param(ParamRole::Weight, v));
  }
  void state(llvm::StringRef name, llvm::StringRef slot) {
    Param p = param(ParamRole::State);
    p.state = slot.str();
    add("float *" + name.str(), p);
  }
  void tokens(llvm::StringRef name) {
    add("const int *" + name.str(), param(ParamRole::Tokens));
  }
  void rows(llvm::StringRef name) {
    add("long long " + name.str(), param(ParamRole::NRows));
  }
  void nTokens(llvm::StringRef name) {
    add("long long " + name.str(), param(ParamRole::NTokens));
  }
  void null(llvm::StringRef decl) { add(decl.str(), param(ParamRole::Null)); }
  /// The index the next parameter gets.
  int next() const { return int(params.size()); }

  /// The kernel: `body` calls the template; grid over the op's rows.
  KernelText finish(llvm::StringRef body, std::array<GridDim, 3> grid,
                    uint32_t block, uint32_t dynamicShared = 0) {
    KernelText k;
    k.definition =
        llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0}) "
                      "{1}({2}) {{\n  {3}\n}\n",
                      block, kKernelName, llvm::join(decls, ", "), body)
            .str();
    k.shape.grid = grid;
    k.shape.block = {block, 1, 1};
    k.shape.dynamicShared = dynamicShared;
    k.params = std::move(params);
    return k;
  }

  GridDim rowsDim() const { return GridDim::rows(cx.rows); }

private:
  void add(std::string decl, Param p) {
    decls.push_back(std::move(decl));
    params.push_back(std::move(p));
  }
  const OpContext &cx;
  std::vector<std::string> decls;
  std::vector<Param> params;
};

using Kernels = std::vector<KernelText>;

int32_t ceilDiv(int64_t a, int64_t b) { return int32_t((a + b - 1) / b); }

/// The block of a reduction over n values: a multiple of 32, at most 256.
uint32_t reductionBlock(int64_t n) {
  return uint32_t(std::min<int64_t>(256, (n + 31) / 32 * 32));
}

/// The block of a layer norm (one block a row): reductionBlock's, or more
/// for a wide row, 8 channels a thread (one step of rwkv_layer_norm's
/// loads) up to 512 threads (1024 leave 64 registers a thread, and the
/// token-shift variant spills). On an H200 a row of C = 4096 took 8.4 us on
/// 256 threads and 5.7-6.6 on 512; C = 768 5.2-6.1 us on 256 and 6.0-6.7 on
/// 96 (docs/performance.md, "On an H200").
uint32_t normBlock(int64_t c) {
  return std::max(reductionBlock(c),
                  uint32_t(std::min<int64_t>((c / 8 + 31) / 32 * 32, 512)));
}

/// Checks that a per-channel operand holds `c` f32 values (when a weight).
llvm::Error checkChannels(Operation *op, Value v, int64_t c,
                          llvm::StringRef what) {
  auto t = cast<RankedTensorType>(v.getType());
  if (isWeight(v)) {
    if (!isa<FloatType>(t.getElementType()) || t.getNumElements() != c)
      return opError(op, what + " must be " + llvm::Twine(c) +
                             " floats for the CUDA kernels");
    return llvm::Error::success();
  }
  if (channels(v) != c)
    return opError(op, what + " has " + llvm::Twine(channels(v)) +
                           " channels, not " + llvm::Twine(c));
  return llvm::Error::success();
}

/// An element-wise map of kernels/ops.cuh (RWKV_EW_*): out = OP(a, b, t).
llvm::Expected<Kernels> elementwise(Operation *op, const OpContext &cx,
                                    int code, Value a, Value b, Value t,
                                    Value out) {
  int64_t c = channels(a);
  KernelBuilder k(cx);
  k.input("a", a);
  bool bRows = b && !isWeight(b), tRows = t && !isWeight(t);
  std::string bType = "float", tType = "float";
  if (b) {
    if (llvm::Error e = checkChannels(op, b, c, "the second operand"))
      return std::move(e);
    bType = k.operand("b", b);
  } else {
    k.null("const float *b");
  }
  if (t) {
    if (llvm::Error e = checkChannels(op, t, c, "the mix"))
      return std::move(e);
    tType = k.operand("t", t);
  } else {
    k.null("const float *t");
  }
  // The output may take a's buffer, or b's when b is a row like it.
  k.output("out", out, 0);
  k.rows("rows");
  std::string body =
      llvm::formatv("rwkv_elementwise<{0}, {1}, {2}, {3}, {4}, {5}>(a, b, t, "
                    "out, rows);",
                    code, c, bRows, tRows, bType, tType);
  return Kernels{k.finish(body,
                          {GridDim::constant(ceilDiv(c, 256)), k.rowsDim(),
                           GridDim::constant(1)},
                          256)};
}

int decayCode(DecayKind kind) {
  switch (kind) {
  case DecayKind::neg_exp:
    return 8;
  case DecayKind::exp_neg_exp:
    return 9;
  case DecayKind::exp_neg_sigmoid:
    return 10;
  case DecayKind::exp:
    return 11;
  }
  return 11;
}

/// rwkv_store_last_row: the state slot := the last row of `x`.
KernelText storeLastRow(const OpContext &cx, Value x, llvm::StringRef slot,
                        int64_t c) {
  KernelBuilder k(cx);
  k.input("x", x);
  k.state("state", slot);
  k.rows("rows");
  return k.finish(llvm::formatv("rwkv_store_last_row<{0}>(x, state, rows);",
                                c)
                      .str(),
                  {GridDim::constant(ceilDiv(c, 256)), GridDim::constant(1),
                   GridDim::constant(1)},
                  256);
}

llvm::Expected<Kernels> layerNorm(Operation *op, const OpContext &cx,
                                  Value x, Value w, Value b, float eps,
                                  Value out, Value prev,
                                  llvm::StringRef slot) {
  int64_t c = channels(x);
  if (llvm::Error e = checkChannels(op, w, c, "the weight"))
    return std::move(e);
  if (llvm::Error e = checkChannels(op, b, c, "the bias"))
    return std::move(e);
  // shift 0: no token shift; 1: the shifted rows (the slot stored by a
  // second launch); 2: one row, the slot read and stored in the launch.
  auto norm = [&](int shift) {
    KernelBuilder k(cx);
    k.input("x", x);
    std::string wType = k.operand("weight", w);
    std::string bType = k.operand("bias", b);
    k.output("out", out);
    if (prev) {
      k.output("prev", prev);
      k.state("state", slot);
    } else {
      k.null("float *prev");
      k.null("float *state");
    }
    k.rows("rows");
    KernelText t = k.finish(
        llvm::formatv("rwkv_layer_norm<{0}, {1}, {2}, {3}>(x, weight, bias, "
                      "out, prev, state, rows, {4});",
                      c, shift, wType, bType, floatLiteral(eps))
            .str(),
        {k.rowsDim(), GridDim::constant(1), GridDim::constant(1)},
        normBlock(c));
    return t;
  };
  if (!prev)
    return Kernels{norm(0)};
  bool r = cx.rows == GridDim::R;
  KernelText one = norm(2), many = norm(1), store = storeLastRow(cx, out, slot, c);
  one.when = r ? When::ROne : When::TOne;
  many.when = store.when = r ? When::RMany : When::TMany;
  return Kernels{one, many, store};
}

/// How rwkv_wkv5 and rwkv_wkv5_group read an op's decay and bonus: the
/// decay per token (a row, RWKV-6) or per channel, each of them per head
/// when it holds H values.
struct WKV5Params {
  bool wRows = false, wHead = false, uHead = false;
};

llvm::Expected<WKV5Params> wkv5Params(WKV5Op op) {
  int64_t c = channels(op.getR()), h = op.getHeads();
  WKV5Params p;
  p.wRows = !isWeight(op.getW());
  int64_t wn = p.wRows ? c : numElements(op.getW());
  int64_t un = numElements(op.getU());
  if (!p.wRows && wn != c && wn != h)
    return opError(op, "the decay has " + llvm::Twine(wn) +
                           " values (C or H expected)");
  if (un != c && un != h)
    return opError(op, "the bonus has " + llvm::Twine(un) +
                           " values (C or H expected)");
  p.wHead = !p.wRows && wn == h;
  p.uHead = un == h;
  return p;
}

llvm::Expected<Kernels> wkv5(WKV5Op op, const OpContext &cx) {
  int64_t c = channels(op.getR()), h = op.getHeads(), n = c / h;
  auto params = wkv5Params(op);
  if (!params)
    return params.takeError();
  if (n > 128)
    return opError(op, "head size " + llvm::Twine(n) +
                           " is above 128, the most a thread keeps in "
                           "registers");
  KernelBuilder k(cx);
  k.input("r", op.getR());
  k.input("k", op.getK());
  k.input("v", op.getV());
  std::string wType = k.operand("w", op.getW());
  std::string uType = k.operand("u", op.getU());
  k.state("state", op.getState());
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_wkv5<{0}, {1}, {2}, {3}, {4}, {5}, {6}>(r, k, v, "
                    "w, u, state, out, rows);",
                    c, n, params->wRows, params->wHead, params->uHead, wType,
                    uType)
          .str(),
      {GridDim::constant(int32_t(h)), GridDim::constant(1),
       GridDim::constant(1)},
      uint32_t(n))};
}

llvm::Expected<Kernels> wkv7(WKV7Op op, const OpContext &cx) {
  int64_t c = channels(op.getR()), h = op.getHeads(), n = c / h;
  if (n > 128)
    return opError(op, "head size " + llvm::Twine(n) +
                           " is above 128, the most a thread keeps in "
                           "registers");
  KernelBuilder k(cx);
  k.input("r", op.getR());
  k.input("w", op.getW());
  k.input("k", op.getK());
  k.input("v", op.getV());
  k.input("a", op.getA());
  k.input("b", op.getB());
  k.state("state", op.getState());
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_wkv7<{0}, {1}>(r, w, k, v, a, b, state, out, rows);",
                    c, n)
          .str(),
      {GridDim::constant(int32_t(h)), GridDim::constant(1),
       GridDim::constant(1)},
      uint32_t(n))};
}

llvm::Expected<Kernels> wkv4(WKV4Op op, const OpContext &cx) {
  int64_t c = channels(op.getK());
  for (auto [v, what] : {std::pair(op.getW(), "the decay"),
                         std::pair(op.getU(), "the bonus")})
    if (llvm::Error e = checkChannels(op, v, c, what))
      return std::move(e);
  KernelBuilder k(cx);
  k.input("k", op.getK());
  k.input("v", op.getV());
  std::string wType = k.operand("w", op.getW());
  std::string uType = k.operand("u", op.getU());
  k.state("aa", op.getAa());
  k.state("bb", op.getBb());
  k.state("pp", op.getPp());
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_wkv4<{0}, {1}, {2}>(k, v, w, u, aa, bb, pp, out, "
                    "rows);",
                    c, wType, uType)
          .str(),
      {GridDim::constant(ceilDiv(c, 64)), GridDim::constant(1),
       GridDim::constant(1)},
      64)};
}

/// A kernel over (rows, heads) with a block of the head size rounded up.
llvm::Expected<Kernels> perHead(Operation *op, const OpContext &cx,
                                KernelBuilder &k, int64_t c, int64_t h,
                                llvm::StringRef call) {
  int64_t n = c / h;
  if (n > 1024)
    return opError(op, "head size above 1024");
  return Kernels{k.finish(call, {k.rowsDim(), GridDim::constant(int32_t(h)),
                                 GridDim::constant(1)},
                          uint32_t((n + 31) / 32 * 32))};
}

llvm::Expected<Kernels> wkv7Prep(WKV7PrepOp op, const OpContext &cx) {
  int64_t c = channels(op.getK()), h = op.getHeads();
  for (auto [v, what] : {std::pair(op.getKK(), "k_k"),
                         std::pair(op.getKA(), "k_a")})
    if (llvm::Error e = checkChannels(op, v, c, what))
      return std::move(e);
  KernelBuilder k(cx);
  k.input("k", op.getK());
  k.input("a", op.getA());
  std::string kkType = k.operand("k_k", op.getKK());
  std::string kaType = k.operand("k_a", op.getKA());
  k.output("new_k", op.getNewK());
  k.output("neg_kk", op.getNegKk());
  k.output("kk_a", op.getKkA());
  k.rows("rows");
  return perHead(op, cx, k, c, h,
                 llvm::formatv("rwkv_wkv7_prep<{0}, {1}, {2}, {3}>(k, a, "
                               "k_k, k_a, new_k, neg_kk, kk_a, rows);",
                               c, c / h, kkType, kaType)
                     .str());
}

llvm::Expected<Kernels> headBonus(HeadBonusOp op, const OpContext &cx) {
  int64_t c = channels(op.getR()), h = op.getHeads();
  if (llvm::Error e = checkChannels(op, op.getRK(), c, "r_k"))
    return std::move(e);
  KernelBuilder k(cx);
  k.input("r", op.getR());
  k.input("k", op.getK());
  k.input("v", op.getV());
  std::string rkType = k.operand("r_k", op.getRK());
  k.output("out", op.getResult());
  k.rows("rows");
  return perHead(op, cx, k, c, h,
                 llvm::formatv("rwkv_head_bonus<{0}, {1}, {2}>(r, k, v, r_k, "
                               "out, rows);",
                               c, c / h, rkType)
                     .str());
}

llvm::Expected<Kernels> groupNorm(GroupNormOp op, const OpContext &cx) {
  int64_t c = channels(op.getInput()), g = op.getGroups();
  for (auto [v, what] : {std::pair(op.getWeight(), "the weight"),
                         std::pair(op.getBias(), "the bias")})
    if (llvm::Error e = checkChannels(op, v, c, what))
      return std::move(e);
  KernelBuilder k(cx);
  k.input("x", op.getInput());
  std::string wType = k.operand("weight", op.getWeight());
  std::string bType = k.operand("bias", op.getBias());
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_group_norm<{0}, {1}, {2}, {3}>(x, weight, bias, "
                    "out, rows, {4});",
                    c, g, wType, bType,
                    floatLiteral(op.getEpsilon().convertToFloat()))
          .str(),
      {k.rowsDim(), GridDim::constant(int32_t(g)), GridDim::constant(1)},
      reductionBlock(c / g))};
}

llvm::Expected<Kernels> embedding(EmbeddingOp op, const OpContext &cx) {
  auto type = elemType(op, op.getTable());
  if (!type)
    return type.takeError();
  int64_t c = channels(op.getResult());
  KernelBuilder k(cx);
  k.tokens("tokens");
  k.weight(cudaTypeName(*type), "table", op.getTable());
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_embedding<{0}, {1}>(tokens, table, out, rows);",
                    cudaTypeName(*type), c)
          .str(),
      {k.rowsDim(), GridDim::constant(1), GridDim::constant(1)}, 256)};
}

llvm::Expected<Kernels> lastToken(LastTokenOp op, const OpContext &cx) {
  int64_t c = channels(op.getInput());
  KernelBuilder k(cx);
  k.input("in", op.getInput());
  k.output("out", op.getResult());
  k.nTokens("T");
  k.rows("R");
  return Kernels{k.finish(
      llvm::formatv("rwkv_last_rows<{0}>(in, out, T, R);", c).str(),
      {GridDim::constant(ceilDiv(c, 256)), GridDim::rows(GridDim::R),
       GridDim::constant(1)},
      256)};
}

llvm::Expected<Kernels> tokenShift(TokenShiftOp op, const OpContext &cx) {
  int64_t c = channels(op.getInput());
  KernelBuilder k(cx);
  k.input("x", op.getInput());
  k.state("state", op.getState());
  k.output("prev", op.getResult());
  k.rows("rows");
  Kernels ks;
  ks.push_back(k.finish(
      llvm::formatv("rwkv_token_shift<{0}>(x, state, prev, rows);", c).str(),
      {GridDim::constant(ceilDiv(c, 256)), k.rowsDim(), GridDim::constant(1)},
      256));
  ks.push_back(storeLastRow(cx, op.getInput(), op.getState(), c));
  return ks;
}

llvm::Expected<Kernels> ddlerp(DDLerpOp op, const OpContext &cx) {
  int64_t c = channels(op.getInput());
  auto w1 = cast<RankedTensorType>(op.getW1().getType());
  auto w2 = cast<RankedTensorType>(op.getW2().getType());
  int64_t f = int64_t(op.getMaa().size());
  if (w2.getRank() != 3 || w2.getDimSize(0) != f || w2.getDimSize(2) != c ||
      w1.getNumElements() != c * f * w2.getDimSize(1) || f > 8)
    return opError(op, "unexpected shapes of the mixes");
  int64_t d = w2.getDimSize(1);
  auto t1 = elemType(op, op.getW1());
  if (!t1)
    return t1.takeError();
  auto t2 = elemType(op, op.getW2());
  if (!t2)
    return t2.takeError();
  if (llvm::Error e = checkChannels(op, op.getMaaX(), c, "maa_x"))
    return std::move(e);
  KernelBuilder k(cx);
  k.input("x", op.getInput());
  k.input("prev", op.getPrev());
  std::string mType = k.operand("maa_x", op.getMaaX());
  std::string maa, outs;
  for (auto [i, m] : llvm::enumerate(op.getMaa())) {
    if (llvm::Error e = checkChannels(op, m, c, "a mix"))
      return std::move(e);
    if (k.operand("maa" + std::to_string(i), m) != mType)
      return opError(op, "the mixes have different types");
    maa += (i ? ", maa" : "maa") + std::to_string(i);
  }
  k.weight(cudaTypeName(*t1), "w1", op.getW1());
  k.weight(cudaTypeName(*t2), "w2", op.getW2());
  for (auto [i, r] : llvm::enumerate(op.getResults())) {
    k.output("out" + std::to_string(i), r);
    outs += (i ? ", out" : "out") + std::to_string(i);
  }
  k.rows("rows");
  std::string body = llvm::formatv(
      "const {7} *maa[] = {{{0}};\n  float *const outs[] = {{{1}};\n  "
      "rwkv_ddlerp<{2}, {3}, {4}, {5}, {6}, {7}>(x, prev, maa_x, maa, w1, w2, "
      "outs, rows);",
      maa, outs, cudaTypeName(*t1), cudaTypeName(*t2), c, f, d, mType);
  return Kernels{k.finish(body,
                          {k.rowsDim(), GridDim::constant(1),
                           GridDim::constant(1)},
                          256, uint32_t((c + f * d) * 4))};
}

int activationCode(Activation a) {
  return a == Activation::tanh ? 1 : a == Activation::sigmoid ? 2 : 0;
}

/// The generic linear maps of ops.cuh (rwkv_linear_generic): any shape,
/// layout and input transform, one thread per output.
llvm::Expected<Kernels> linearGeneric(Operation *op, const OpContext &cx,
                                      int in, Value a, Value b,
                                      llvm::ArrayRef<Value> mixes,
                                      Value weight, ValueRange results,
                                      bool outIn) {
  auto type = elemType(op, weight);
  if (!type)
    return type.takeError();
  int64_t kdim = channels(a), seg = int64_t(results.size());
  int64_t n = channels(results[0]);
  if (seg > 4)
    return opError(op, "more than 4 packed projections");
  KernelBuilder k(cx);
  k.input("a", a);
  if (b)
    k.input("b", b);
  else
    k.null("const float *b");
  std::string mix, outs;
  std::string mType = mixes.empty() ? "float" : typeOf(mixes[0]);
  for (int64_t s = 0; s < seg; ++s) {
    std::string name = "mix" + std::to_string(s);
    if (s < int64_t(mixes.size())) {
      if (llvm::Error e = checkChannels(op, mixes[s], kdim, "a mix"))
        return std::move(e);
      if (k.operand(name, mixes[s]) != mType)
        return opError(op, "the mixes have different types");
    } else {
      k.null("const " + mType + " *" + name);
    }
    mix += (s ? ", " : "") + name;
  }
  k.weight(cudaTypeName(*type), "w", weight);
  int residual = k.next() + int(seg);
  for (int64_t s = 0; s < seg; ++s) {
    if (cx.residual)
      k.output("out" + std::to_string(s), cx.result, residual);
    else
      k.output("out" + std::to_string(s), results[s]);
    outs += (s ? ", out" : "out") + std::to_string(s);
  }
  if (cx.residual) {
    if (seg != 1 || channels(cx.residual) != n)
      return opError(op, "a fused residual of another shape");
    k.input("residual", cx.residual);
  } else {
    k.null("const float *residual");
  }
  k.rows("rows");
  std::string body = llvm::formatv(
      "const {8} *mix[] = {{{0}};\n  float *const out[] = {{{1}};\n  "
      "rwkv_linear_generic<{2}, {3}, {4}, {5}, {6}, {7}, {8}>(a, b, mix, w, "
      "out, residual, rows);",
      mix, outs, cudaTypeName(*type), kdim, n, seg, in, outIn, mType);
  return Kernels{k.finish(body,
                          {GridDim::constant(ceilDiv(seg * n, 128)),
                           k.rowsDim(), GridDim::constant(1)},
                          128)};
}

llvm::Expected<Kernels> loraGeneric(LoraOp op, const OpContext &cx) {
  if (cx.mixA)
    return opError(op, "a LoRA that reads its input's lerp needs linear.cuh's "
                       "kernels");
  auto ta = elemType(op, op.getA());
  if (!ta)
    return ta.takeError();
  auto tb = elemType(op, op.getB());
  if (!tb)
    return tb.takeError();
  auto a = cast<RankedTensorType>(op.getA().getType());
  auto b = cast<RankedTensorType>(op.getB().getType());
  int64_t c = a.getDimSize(0), d = a.getDimSize(1), co = b.getDimSize(1);
  KernelBuilder k(cx);
  k.input("x", op.getInput());
  k.weight(cudaTypeName(*ta), "A", op.getA());
  k.weight(cudaTypeName(*tb), "B", op.getB());
  std::string biasType = "float";
  if (Value bias = op.getBias()) {
    if (llvm::Error e = checkChannels(op, bias, co, "the bias"))
      return std::move(e);
    biasType = k.operand("bias", bias);
  } else {
    k.null("const float *bias");
  }
  k.output("out", op.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_lora_generic<{0}, {1}, {2}, {3}, {4}, {5}, {6}, "
                    "{7}>(x, A, B, bias, out, rows);",
                    cudaTypeName(*ta), cudaTypeName(*tb), c, d, co,
                    activationCode(op.getAct()),
                    activationCode(op.getOutAct()), biasType)
          .str(),
      {k.rowsDim(), GridDim::constant(1), GridDim::constant(1)}, 256,
      uint32_t((c + d) * 4))};
}

} // namespace

std::optional<WKV7Group> matchWKV7Group(WKV7Op wkv) {
  WKV7Group g;
  g.wkv = wkv;
  g.prep = wkv.getK().getDefiningOp<WKV7PrepOp>();
  if (!g.prep || g.prep->getBlock() != wkv->getBlock() ||
      wkv.getA() != g.prep.getNegKk() || wkv.getB() != g.prep.getKkA() ||
      g.prep.getHeads() != wkv.getHeads())
    return std::nullopt;
  auto only = [](Value v) -> Operation * {
    return v.hasOneUse() ? *v.getUsers().begin() : nullptr;
  };
  if (only(g.prep.getNegKk()) != wkv || only(g.prep.getKkA()) != wkv)
    return std::nullopt;
  g.norm = dyn_cast_or_null<GroupNormOp>(only(wkv.getResult()));
  if (!g.norm || g.norm.getGroups() != wkv.getHeads())
    return std::nullopt;
  g.sum = dyn_cast_or_null<AddOp>(only(g.norm.getResult()));
  if (!g.sum)
    return std::nullopt;
  Value other = g.sum.getLhs() == g.norm.getResult() ? g.sum.getRhs()
                                                      : g.sum.getLhs();
  g.bonus = other.getDefiningOp<HeadBonusOp>();
  if (!g.bonus || !other.hasOneUse() || g.bonus.getR() != wkv.getR() ||
      g.bonus.getK() != g.prep.getNewK() || g.bonus.getV() != wkv.getV() ||
      g.bonus.getHeads() != wkv.getHeads())
    return std::nullopt;
  for (Operation *user : g.prep.getNewK().getUsers())
    if (user != wkv && user != g.bonus)
      return std::nullopt;
  g.gate = dyn_cast_or_null<MulOp>(only(g.sum.getResult()));
  if (!g.gate)
    return std::nullopt;
  Value gate = g.gate.getLhs() == g.sum.getResult() ? g.gate.getRhs()
                                                     : g.gate.getLhs();
  if (gate == g.sum.getResult() || isWeight(gate) ||
      gate.getType() != wkv.getResult().getType())
    return std::nullopt;
  if (Operation *def = gate.getDefiningOp())
    if (def->getBlock() != wkv->getBlock() || !def->isBeforeInBlock(wkv))
      return std::nullopt;
  for (Operation *op : {g.norm.getOperation(), g.bonus.getOperation(),
                        g.sum.getOperation(), g.gate.getOperation()})
    if (op->getBlock() != wkv->getBlock())
      return std::nullopt;
  int64_t c = channels(wkv.getR()), n = c / wkv.getHeads();
  if (n % 32 != 0 || n > 128)
    return std::nullopt;
  return g;
}

llvm::Expected<std::vector<KernelText>>
generateWKV7Group(WKV7Group g, const OpContext &cx) {
  Operation *op = g.wkv;
  int64_t c = channels(g.wkv.getR()), h = g.wkv.getHeads(), n = c / h;
  for (auto [v, what] :
       {std::pair(g.prep.getKK(), "k_k"), std::pair(g.prep.getKA(), "k_a"),
        std::pair(g.bonus.getRK(), "r_k"),
        std::pair(g.norm.getWeight(), "the group norm's weight"),
        std::pair(g.norm.getBias(), "the group norm's bias")})
    if (llvm::Error e = checkChannels(op, v, c, what))
      return std::move(e);
  Value gate = g.gate.getLhs() == g.sum.getResult() ? g.gate.getRhs()
                                                     : g.gate.getLhs();
  KernelBuilder k(cx);
  k.input("r", g.wkv.getR());
  k.input("w", g.wkv.getW());
  k.input("k", g.prep.getK());
  k.input("v", g.wkv.getV());
  k.input("a", g.prep.getA());
  k.input("g", gate);
  std::string kk = k.operand("k_k", g.prep.getKK());
  std::string ka = k.operand("k_a", g.prep.getKA());
  std::string rk = k.operand("r_k", g.bonus.getRK());
  std::string gw = k.operand("gn_weight", g.norm.getWeight());
  std::string gb = k.operand("gn_bias", g.norm.getBias());
  k.state("state", g.wkv.getState());
  k.output("out", g.gate.getResult());
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_wkv7_group<{0}, {1}, {2}, {3}, {4}, {5}, {6}>(r, w, "
                    "k, v, a, g, k_k, k_a, r_k, gn_weight, gn_bias, state, "
                    "out, rows, {7});",
                    c, n, kk, ka, rk, gw, gb,
                    floatLiteral(g.norm.getEpsilon().convertToFloat()))
          .str(),
      {GridDim::constant(int32_t(h)), GridDim::constant(1),
       GridDim::constant(1)},
      uint32_t(n))};
}

std::optional<WKV5Group> matchWKV5Group(WKV5Op wkv) {
  WKV5Group g;
  g.wkv = wkv;
  Value y = wkv.getResult();
  if (!y.hasOneUse())
    return std::nullopt;
  g.norm = dyn_cast<GroupNormOp>(*y.getUsers().begin());
  if (!g.norm || g.norm.getGroups() != wkv.getHeads() ||
      g.norm->getBlock() != wkv->getBlock())
    return std::nullopt;
  int64_t c = channels(wkv.getR()), n = c / wkv.getHeads();
  if (n % 32 != 0 || n > 128)
    return std::nullopt;
  Value normed = g.norm.getResult();
  if (normed.hasOneUse())
    if (auto mul = dyn_cast<MulOp>(*normed.getUsers().begin())) {
      Value other = mul.getLhs() == normed ? mul.getRhs() : mul.getLhs();
      Operation *def = other.getDefiningOp();
      if (other != normed && !isWeight(other) &&
          other.getType() == normed.getType() &&
          mul->getBlock() == wkv->getBlock() &&
          (!def || (def->getBlock() == wkv->getBlock() &&
                    def->isBeforeInBlock(wkv))))
        g.gate = mul;
    }
  return g;
}

llvm::Expected<std::vector<KernelText>>
generateWKV5Group(WKV5Group g, const OpContext &cx) {
  WKV5Op op = g.wkv;
  int64_t c = channels(op.getR()), h = op.getHeads(), n = c / h;
  auto params = wkv5Params(op);
  if (!params)
    return params.takeError();
  for (auto [v, what] :
       {std::pair(g.norm.getWeight(), "the group norm's weight"),
        std::pair(g.norm.getBias(), "the group norm's bias")})
    if (llvm::Error e = checkChannels(op, v, c, what))
      return std::move(e);
  KernelBuilder k(cx);
  k.input("r", op.getR());
  k.input("k", op.getK());
  k.input("v", op.getV());
  std::string wType = k.operand("w", op.getW());
  std::string uType = k.operand("u", op.getU());
  std::string gw = k.operand("gn_weight", g.norm.getWeight());
  std::string gb = k.operand("gn_bias", g.norm.getBias());
  Value result = g.norm.getResult();
  if (g.gate) {
    Value normed = g.norm.getResult();
    k.input("g", g.gate.getLhs() == normed ? g.gate.getRhs()
                                           : g.gate.getLhs());
    result = g.gate.getResult();
  } else {
    k.null("const float *g");
  }
  k.state("state", op.getState());
  k.output("out", result);
  k.rows("rows");
  return Kernels{k.finish(
      llvm::formatv("rwkv_wkv5_group<{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}, "
                    "{8}, {9}>(r, k, v, w, u, gn_weight, gn_bias, g, state, "
                    "out, rows, {10});",
                    c, n, params->wRows, params->wHead, params->uHead,
                    bool(g.gate),
                    wType, uType, gw, gb,
                    floatLiteral(g.norm.getEpsilon().convertToFloat()))
          .str(),
      {GridDim::constant(int32_t(h)), GridDim::constant(1),
       GridDim::constant(1)},
      uint32_t(n))};
}

bool takesResidual(Operation *op) {
  if (auto linear = dyn_cast<LinearOp>(op))
    return linear.getLayout() == WeightLayout::out_in;
  return isa<MixLinearOp, GateLinearOp, ReluSqLinearOp>(op);
}

llvm::Expected<std::vector<KernelText>> generateKernels(Operation *op,
                                                        const OpContext &cx) {
  using R = llvm::Expected<Kernels>;
  // The linear maps: linear.cuh's warp GEMV and tensor-core GEMM
  // (KernelsLinear.cpp); the generic kernels below where it refuses the op.
  if (isLinearKernelOp(op)) {
    R linear = generateLinearKernels(op, cx);
    if (linear)
      return linear;
    R generic = generateGenericKernels(op, cx);
    if (generic) {
      llvm::consumeError(linear.takeError());
      return generic;
    }
    llvm::consumeError(generic.takeError());
    return linear;
  }
  return generateGenericKernels(op, cx);
}

llvm::Expected<std::vector<KernelText>>
generateGenericKernels(Operation *op, const OpContext &cx) {
  using R = llvm::Expected<Kernels>;
  return llvm::TypeSwitch<Operation *, R>(op)
      .Case([&](EmbeddingOp o) { return embedding(o, cx); })
      .Case([&](LastTokenOp o) { return lastToken(o, cx); })
      .Case([&](LayerNormOp o) {
        return layerNorm(o, cx, o.getInput(), o.getWeight(), o.getBias(),
                         o.getEpsilon().convertToFloat(), o.getResult(), {},
                         {});
      })
      .Case([&](NormShiftOp o) {
        return layerNorm(o, cx, o.getInput(), o.getWeight(), o.getBias(),
                         o.getEpsilon().convertToFloat(), o.getNormalized(),
                         o.getPrev(), o.getState());
      })
      .Case([&](GroupNormOp o) { return groupNorm(o, cx); })
      .Case([&](TokenShiftOp o) { return tokenShift(o, cx); })
      .Case([&](LerpOp o) {
        return elementwise(o, cx, 7, o.getA(), o.getB(), o.getT(),
                           o.getResult());
      })
      .Case([&](AddOp o) {
        return elementwise(o, cx, 1, o.getLhs(), o.getRhs(), {},
                           o.getResult());
      })
      .Case([&](MulOp o) {
        return elementwise(o, cx, 2, o.getLhs(), o.getRhs(), {},
                           o.getResult());
      })
      .Case([&](SigmoidOp o) {
        return elementwise(o, cx, 3, o.getInput(), {}, {}, o.getResult());
      })
      .Case([&](SiluOp o) {
        return elementwise(o, cx, 4, o.getInput(), {}, {}, o.getResult());
      })
      .Case([&](ReluSqOp o) {
        return elementwise(o, cx, 5, o.getInput(), {}, {}, o.getResult());
      })
      .Case([&](TanhOp o) {
        return elementwise(o, cx, 6, o.getInput(), {}, {}, o.getResult());
      })
      .Case([&](DecayOp o) -> R {
        if (isWeight(o.getInput()))
          return opError(o, "a decay of a weight should have been folded "
                            "into a derived weight");
        return elementwise(o, cx, decayCode(o.getKind()), o.getInput(), {},
                           {}, o.getResult());
      })
      .Case([&](DDLerpOp o) { return ddlerp(o, cx); })
      .Case([&](WKV4Op o) { return wkv4(o, cx); })
      .Case([&](WKV5Op o) { return wkv5(o, cx); })
      .Case([&](WKV7Op o) { return wkv7(o, cx); })
      .Case([&](WKV7PrepOp o) { return wkv7Prep(o, cx); })
      .Case([&](HeadBonusOp o) { return headBonus(o, cx); })
      .Case([&](LinearOp o) {
        return linearGeneric(o, cx, 0, o.getInput(), {}, {}, o.getWeight(),
                             o->getResults(),
                             o.getLayout() == WeightLayout::out_in);
      })
      .Case([&](MixLinearOp o) {
        Value t = o.getT();
        return linearGeneric(o, cx, 1, o.getA(), o.getB(), t,
                             o.getWeight(), o->getResults(), true);
      })
      .Case([&](PackedMixLinearOp o) {
        SmallVector<Value> mixes(o.getMixes());
        return linearGeneric(o, cx, 1, o.getA(), o.getB(), mixes,
                             o.getWeight(), o.getResults(), true);
      })
      .Case([&](GateLinearOp o) {
        return linearGeneric(o, cx, 2, o.getG(), o.getY(), {}, o.getWeight(),
                             o->getResults(), true);
      })
      .Case([&](ReluSqLinearOp o) {
        return linearGeneric(o, cx, 3, o.getInput(), {}, {}, o.getWeight(),
                             o->getResults(), true);
      })
      .Case([&](LoraOp o) { return loraGeneric(o, cx); })
      .Default([&](Operation *o) -> R {
        return opError(o, "no CUDA kernel for this op");
      });
}

} // namespace rwkvc::cuda
