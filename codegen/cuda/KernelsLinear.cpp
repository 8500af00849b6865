//===- KernelsLinear.cpp - CUDA kernels of the linear maps ---------------===//
//
// Lowers the linear-map ops of the rwkv dialect to CUDA kernel text: an
// extern "C" wrapper per variant that instantiates a template of
// kernels/linear.cuh with the op's shapes, weight type, input transform,
// segments and fused residual as constants, with its launch shape and the
// binding of its parameters:
//
//   out_in product  ──▶ rwkv_linear_gemv       (one row)
//                   ──▶ rwkv_linear_gemm_mma   (more rows, f16/bf16 W)
//                       rwkv_linear_gemm_f32   (more rows, f32 W)
//   in_out product  ──▶ rwkv_linear_in_out<RB = 1 | 4>
//   lora            ──▶ rwkv_lora_down + rwkv_lora_up (one row: two launches
//                       over the whole GPU), rwkv_lora<RB = 4> (more rows)
//
//===----------------------------------------------------------------------===//

#include "codegen/cuda/KernelsLinear.h"

#include "rwkv/RWKVDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
namespace rwkv = mlir::rwkv;

namespace rwkvc::cuda {

namespace {

llvm::Error failure(Operation *op, const llvm::Twine &what) {
  std::string name = op->getName().getStringRef().str();
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 name + ": " + what);
}

llvm::Expected<ElemType> weightType(Operation *op, Value w) {
  Type t = cast<ShapedType>(w.getType()).getElementType();
  if (t.isF32())
    return ElemType::F32;
  if (t.isF16())
    return ElemType::F16;
  if (t.isBF16())
    return ElemType::BF16;
  return failure(op, "the CUDA linear kernels read f32, f16 or bf16 weights "
                     "(dequantize first)");
}

/// A per-channel vector (a mix, a bias): K f32, f16 or bf16 values, bound
/// as a weight when it is one; `type` is set to its CUDA element type.
llvm::Expected<Param> vectorParam(Operation *op, Value v, int64_t k,
                                  llvm::StringRef what, std::string &type) {
  auto shaped = cast<ShapedType>(v.getType());
  llvm::Expected<ElemType> et = weightType(op, v);
  if (!et || !shaped.hasStaticShape() || shaped.getNumElements() != k) {
    if (!et)
      llvm::consumeError(et.takeError());
    return failure(op, llvm::Twine(what) + " must be " + llvm::Twine(k) +
                           " f32, f16 or bf16 values");
  }
  type = cudaTypeName(*et).str();
  Param p;
  p.role = v.getDefiningOp<rwkv::WeightOp>() ? ParamRole::Weight
                                             : ParamRole::Input;
  p.value = v;
  return p;
}

Param param(ParamRole role, Value v = {}) {
  Param p;
  p.role = role;
  p.value = v;
  return p;
}

int64_t dim(Value v, unsigned i) {
  return cast<ShapedType>(v.getType()).getDimSize(i);
}

When whenOne(const LinearContext &c) {
  return c.rows == GridDim::R ? When::ROne : When::TOne;
}
When whenMany(const LinearContext &c) {
  return c.rows == GridDim::R ? When::RMany : When::TMany;
}

/// Binds the output(s) and the residual; appends the residual param before
/// the outputs. Returns the C++ argument of the residual.
llvm::Expected<std::string> bindOutputs(Operation *op,
                                        const LinearContext &ctx,
                                        std::vector<Param> &params,
                                        llvm::ArrayRef<Value> results) {
  if (!ctx.residual) {
    for (Value r : results)
      params.push_back(param(ParamRole::Output, r));
    return std::string("nullptr");
  }
  if (results.size() != 1)
    return failure(op, "a fused residual needs an op with one result");
  if (!ctx.result || ctx.residual.getType() != results[0].getType())
    return failure(op, "the fused residual must have the result's type");
  params.push_back(param(ParamRole::Input, ctx.residual));
  Param out = param(ParamRole::Output, ctx.result);
  out.aliasOf = int(params.size()) - 1;
  params.push_back(out);
  return std::string("residual");
}

/// Output rows of W a GEMV warp computes: the most (4, 2, 1) that still
/// gives 256 blocks (two 8-warp blocks per SM of an H100/H200, and enough
/// 16-byte loads in flight per SM); staging the input is then shared by
/// 8, 16 or 32 rows.
int rowsPerWarp(int64_t seg, int64_t n) {
  for (int rpw : {4, 2})
    if (seg * ((n + 8 * rpw - 1) / (8 * rpw)) >= 256)
      return rpw;
  return 1;
}

// linear.cuh's RWKV_LIN_*.
enum Transform { Plain = 0, Mix = 1, Gate = 2, ReluSq = 3, MixRows = 4 };

/// A data-dependent mix: an activation like the input (rank 2, rows not 1).
bool isRowMix(Value t) {
  auto type = cast<ShapedType>(t.getType());
  return type.getRank() == 2 && type.getDimSize(0) != 1;
}

/// The out_in family: y_s = W_s TR(a, b; t_s) (+ residual).
llvm::Expected<std::vector<KernelText>>
outInKernels(Operation *op, const LinearContext &ctx, Transform tr, Value a,
             Value b, ValueRange mixes, Value weight, ValueRange results) {
  llvm::Expected<ElemType> et = weightType(op, weight);
  if (!et)
    return et.takeError();
  const int64_t seg = std::max<int64_t>(1, int64_t(results.size()));
  const int64_t k = dim(weight, 1), rowsW = dim(weight, 0);
  const int64_t n = dim(results[0], 1);
  if (ShapedType::isDynamic(k) || ShapedType::isDynamic(rowsW) ||
      ShapedType::isDynamic(n) || rowsW != seg * n || dim(a, 1) != k)
    return failure(op, "the weight must be [" + llvm::Twine(seg) + " x N][K] "
                       "for an input of K and results of N channels");
  if (tr == Mix && int64_t(mixes.size()) != seg)
    return failure(op, "one mix per result");
  if (tr == Mix && isRowMix(mixes[0]))
    tr = MixRows;
  for (Value t : mixes)
    if ((tr == MixRows) != isRowMix(t) ||
        (tr == MixRows && t.getType() != a.getType()))
      return failure(op, "the mixes must all be per-channel or all "
                         "activations like the input");

  // Params: rows, a, [b], [t...], W, [residual], out...
  std::vector<Param> params;
  params.push_back(param(ParamRole::NRows));
  params.push_back(param(ParamRole::Input, a));
  std::string sig = "long long rows, const float *__restrict__ a";
  std::string bArg = "nullptr";
  if (tr == Mix || tr == MixRows || tr == Gate) {
    params.push_back(param(ParamRole::Input, b));
    sig += ", const float *__restrict__ b";
    bArg = "b";
  }
  std::string ts, mixType = "float";
  for (int64_t s = 0; s < seg; ++s) {
    if (tr != Mix && tr != MixRows) {
      ts += s ? ", nullptr" : "nullptr";
      continue;
    }
    if (tr == MixRows) {
      params.push_back(param(ParamRole::Input, mixes[s]));
    } else {
      std::string type;
      llvm::Expected<Param> p = vectorParam(op, mixes[s], k, "a mix", type);
      if (!p)
        return p.takeError();
      if (s > 0 && type != mixType)
        return failure(op, "the mixes have different types");
      mixType = type;
      params.push_back(*p);
    }
    sig += llvm::formatv(", const {0} *__restrict__ t{1}", mixType, s).str();
    ts += llvm::formatv("{0}t{1}", s ? ", " : "", s).str();
  }
  llvm::StringRef w = cudaTypeName(*et);
  params.push_back(param(ParamRole::Weight, weight));
  sig += llvm::formatv(", const {0} *__restrict__ w", w).str();
  llvm::Expected<std::string> res =
      bindOutputs(op, ctx, params, llvm::to_vector(results));
  if (!res)
    return res.takeError();
  if (ctx.residual)
    sig += ", const float *residual";
  std::string outs;
  for (int64_t s = 0; s < seg; ++s) {
    sig += llvm::formatv(", float *out{0}", s).str();
    outs += llvm::formatv("{0}out{1}", s ? ", " : "", s).str();
  }
  const char *resFlag = ctx.residual ? "true" : "false";

  auto define = [&](unsigned threads, const std::string &call) {
    return llvm::formatv("extern \"C\" __global__ void __launch_bounds__({0})\n"
                         "{1}({2}) {{\n"
                         "  const {9} *const t[{3}] = {{{4}};\n"
                         "  float *const out[{3}] = {{{5}};\n"
                         "  {6}(rows, a, {7}, t, w, {8}, out);\n"
                         "}\n",
                         threads, kKernelName, sig, seg, ts, outs, call, bArg,
                         *res, mixType)
        .str();
  };

  std::vector<KernelText> kernels(2);
  // One row: the GEMV.
  const int rpw = rowsPerWarp(seg, n);
  KernelText &gemv = kernels[0];
  gemv.definition =
      define(256, llvm::formatv("rwkv_linear_gemv<{0}, {1}, {2}, {3}, {4}, "
                                "{5}, {6}>",
                                w, k, n, seg, int(tr), rpw, resFlag)
                      .str());
  gemv.shape.grid = {GridDim::constant(int32_t(seg * ((n + 8 * rpw - 1) /
                                                      (8 * rpw)))),
                     GridDim::rows(ctx.rows), GridDim::constant(1)};
  gemv.shape.block = {256, 1, 1};
  gemv.params = params;
  gemv.when = whenOne(ctx);

  // More rows: the GEMM (tensor cores for half weights).
  KernelText &gemm = kernels[1];
  const bool f32 = *et == ElemType::F32;
  std::string call =
      f32 ? llvm::formatv("rwkv_linear_gemm_f32<{0}, {1}, {2}, {3}, {4}>", k,
                          n, seg, int(tr), resFlag)
                .str()
          : llvm::formatv("rwkv_linear_gemm_mma<{0}, {1}, {2}, {3}, {4}, {5}>",
                          w, k, n, seg, int(tr), resFlag)
                .str();
  gemm.definition = define(f32 ? 256 : 128, call);
  gemm.shape.grid = {GridDim::constant(int32_t(seg * ((n + 63) / 64))),
                     GridDim::rows(ctx.rows, 64), GridDim::constant(1)};
  gemm.shape.block = {f32 ? 256u : 128u, 1, 1};
  gemm.params = std::move(params);
  gemm.when = whenMany(ctx);
  return kernels;
}

/// rwkv.linear {in_out}: y = x W (+ residual), W [K][N].
llvm::Expected<std::vector<KernelText>>
inOutKernels(rwkv::LinearOp op, const LinearContext &ctx) {
  Value weight = op.getWeight();
  llvm::Expected<ElemType> et = weightType(op, weight);
  if (!et)
    return et.takeError();
  const int64_t k = dim(weight, 0), n = dim(weight, 1);
  if (ShapedType::isDynamic(k) || ShapedType::isDynamic(n) ||
      dim(op.getInput(), 1) != k || dim(op.getResult(), 1) != n)
    return failure(op, "the in_out weight must be [K][N]");
  std::vector<Param> params = {param(ParamRole::NRows),
                               param(ParamRole::Input, op.getInput()),
                               param(ParamRole::Weight, weight)};
  llvm::Expected<std::string> res =
      bindOutputs(op, ctx, params, {op.getResult()});
  if (!res)
    return res.takeError();
  llvm::StringRef w = cudaTypeName(*et);
  std::vector<KernelText> kernels;
  for (int rb : {1, 4}) {
    KernelText kt;
    kt.definition =
        llvm::formatv(
            "extern \"C\" __global__ void __launch_bounds__(256)\n"
            "{0}(long long rows, const float *__restrict__ x, "
            "const {1} *__restrict__ w{2}, float *out) {{\n"
            "  rwkv_linear_in_out<{1}, {3}, {4}, {5}, {6}>(rows, x, w, {7}, "
            "out);\n"
            "}\n",
            kKernelName, w, ctx.residual ? ", const float *residual" : "", k,
            n, rb, ctx.residual ? "true" : "false", *res)
            .str();
    kt.shape.grid = {GridDim::constant(int32_t((n + 255) / 256)),
                     GridDim::rows(ctx.rows, rb), GridDim::constant(1)};
    kt.shape.block = {256, 1, 1};
    kt.params = params;
    kt.when = rb == 1 ? whenOne(ctx) : whenMany(ctx);
    kernels.push_back(std::move(kt));
  }
  return kernels;
}

int activation(rwkv::Activation a) {
  switch (a) {
  case rwkv::Activation::tanh:
    return 1;
  case rwkv::Activation::sigmoid:
    return 2;
  default:
    return 0;
  }
}

/// A LoRA's input as its kernels read it: x, or a fused lerp's a + (b - a) t
/// (OpContext::mixA), with the params, signature and arguments that say so.
struct LoraInput {
  int count = 1;         // params: x, or a, b, t
  int transform = Plain; // linear.cuh's RWKV_LIN_PLAIN or _MIX
  std::string mixType = "float";
  std::string sig = ", const float *__restrict__ x";
  std::string args = "x, (const float *)nullptr, (const float *)nullptr";
};

/// rwkv.lora on one row, in two launches over the whole GPU
/// (rwkv_lora_down, rwkv_lora_up) that meet in a temporary of partial sums:
/// one block of 512 threads streaming A and B alone was most of a decoded
/// token at real sizes (H200, 7B shape: 470 us for the gate's D = 480 LoRA,
/// against 28 us for R, K and V together). `params`: the one-block kernel's
/// (NRows, x or a, b, t, A, B, [bias], [residual], out...).
std::vector<KernelText>
loraSplitKernels(rwkv::LoraOp op, const LinearContext &ctx, const LoraInput &in,
                 const std::vector<Param> &params, ElemType ea, ElemType eb,
                 llvm::StringRef biasType, llvm::StringRef biasArg,
                 llvm::StringRef residualArg) {
  const int64_t c = dim(op.getA(), 0), d = dim(op.getA(), 1);
  const int64_t co = dim(op.getB(), 1);
  // Rows of A a block: 16-120 KiB of A each (C = 4096: 64 or 32 blocks),
  // and G * D partial sums for every block of the second launch to add
  // (32-61 KiB at C = 4096, D = 128-480).
  const int64_t cs = d > 256 ? 128 : 64, g = (c + cs - 1) / cs;
  Param temp;
  temp.role = ParamRole::Temp;
  temp.tempBytes = g * d * 4;
  KernelText down;
  down.definition =
      llvm::formatv("extern \"C\" __global__ void __launch_bounds__(256)\n"
                    "{0}(long long rows{5}, const {1} *__restrict__ A, float "
                    "*part) {{\n"
                    "  rwkv_lora_down<{1}, {2}, {3}, {4}, {6}, {7}>(rows, {8}, "
                    "A, part);\n"
                    "}\n",
                    kKernelName, cudaTypeName(ea), c, d, cs, in.sig,
                    in.transform, in.mixType, in.args)
          .str();
  down.shape.grid = {GridDim::constant(int32_t(g)), GridDim::rows(ctx.rows),
                     GridDim::constant(1)};
  down.shape.block = {256, 1, 1}; // RWKV_LORA_SPLIT_THREADS
  down.params.assign(params.begin(), params.begin() + 2 + in.count);
  down.params.push_back(temp);
  down.when = whenOne(ctx);

  KernelText up;
  up.params = {params[0], temp};
  std::string sig = llvm::formatv("long long rows, const float *part, const "
                                  "{0} *__restrict__ B",
                                  cudaTypeName(eb))
                        .str();
  for (size_t i = 2 + in.count; i < params.size(); ++i) {
    Param p = params[i];
    if (p.aliasOf >= 0)
      p.aliasOf -= in.count; // the input and A leave, the temporary comes
    up.params.push_back(p);
  }
  if (op.getBias())
    sig += ", const " + biasType.str() + " *__restrict__ bias";
  if (ctx.residual)
    sig += ", const float *residual";
  sig += ", float *out";
  const int64_t piece = eb == ElemType::F32 ? 4 : 8; // 16 bytes
  const int64_t vb = co % piece == 0 ? piece : 1;
  up.definition =
      llvm::formatv(
          "extern \"C\" __global__ void __launch_bounds__(256)\n"
          "{0}({1}) {{\n"
          "  rwkv_lora_up<{2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, "
          "{10}>(rows, part, B, {11}, {12}, out);\n"
          "}\n",
          kKernelName, sig, cudaTypeName(eb), d, co, g, activation(op.getAct()),
          activation(op.getOutAct()), op.getBias() ? "true" : "false",
          ctx.residual ? "true" : "false",
          op.getBias() ? biasType : llvm::StringRef("float"),
          op.getBias() ? biasArg : llvm::StringRef("(const float *)nullptr"),
          residualArg)
          .str();
  up.shape.grid = {GridDim::constant(int32_t((co + 8 * vb - 1) / (8 * vb))),
                   GridDim::rows(ctx.rows), GridDim::constant(1)};
  up.shape.block = {256, 1, 1};
  up.when = whenOne(ctx);
  return {down, up};
}

/// rwkv.lora: y = out_act(bias + act(x A) B) (+ residual).
llvm::Expected<std::vector<KernelText>> loraKernels(rwkv::LoraOp op,
                                                    const LinearContext &ctx) {
  llvm::Expected<ElemType> ea = weightType(op, op.getA());
  if (!ea)
    return ea.takeError();
  llvm::Expected<ElemType> eb = weightType(op, op.getB());
  if (!eb)
    return eb.takeError();
  const int64_t c = dim(op.getA(), 0), d = dim(op.getA(), 1);
  const int64_t co = dim(op.getB(), 1);
  if (ShapedType::isDynamic(c) || ShapedType::isDynamic(d) ||
      ShapedType::isDynamic(co) || dim(op.getB(), 0) != d ||
      dim(op.getInput(), 1) != c || dim(op.getResult(), 1) != co)
    return failure(op, "A must be [C][D] and B [D][C']");
  // The input: x, or a fused lerp's a, b and per-channel t (OpContext).
  LoraInput in;
  std::vector<Param> params = {param(ParamRole::NRows)};
  if (ctx.mixA) {
    if (dim(ctx.mixA, 1) != c || ctx.mixB.getType() != ctx.mixA.getType())
      return failure(op, "the fused lerp's inputs must have C channels");
    llvm::Expected<Param> t =
        vectorParam(op, ctx.mixT, c, "the fused lerp's mix", in.mixType);
    if (!t)
      return t.takeError();
    params.push_back(param(ParamRole::Input, ctx.mixA));
    params.push_back(param(ParamRole::Input, ctx.mixB));
    params.push_back(*t);
    in.count = 3, in.transform = Mix;
    in.sig = llvm::formatv(", const float *__restrict__ a, const float "
                           "*__restrict__ b, const {0} *__restrict__ t",
                           in.mixType)
                 .str();
    in.args = "a, b, t";
  } else {
    params.push_back(param(ParamRole::Input, op.getInput()));
  }
  params.push_back(param(ParamRole::Weight, op.getA()));
  params.push_back(param(ParamRole::Weight, op.getB()));
  std::string sig = llvm::formatv("long long rows{2}, const {0} *__restrict__ "
                                  "A, const {1} *__restrict__ B",
                                  cudaTypeName(*ea), cudaTypeName(*eb), in.sig)
                        .str();
  std::string biasArg = "(const float *)nullptr", biasType = "float";
  if (Value bias = op.getBias()) {
    llvm::Expected<Param> p = vectorParam(op, bias, co, "the bias", biasType);
    if (!p)
      return p.takeError();
    params.push_back(*p);
    sig += ", const " + biasType + " *__restrict__ bias";
    biasArg = "bias";
  }
  llvm::Expected<std::string> res =
      bindOutputs(op, ctx, params, {op.getResult()});
  if (!res)
    return res.takeError();
  if (ctx.residual)
    sig += ", const float *residual";
  sig += ", float *out";
  std::vector<KernelText> kernels =
      loraSplitKernels(op, ctx, in, params, *ea, *eb, biasType, biasArg, *res);
  const int rb = 4; // rows a block of the many-row kernel
  KernelText kt;
  kt.definition =
      llvm::formatv("extern \"C\" __global__ void __launch_bounds__(512, 1)\n"
                    "{0}({1}) {{\n"
                    "  rwkv_lora<{2}, {3}, {4}, {5}, {6}, {7}, {8}, {9}, "
                    "{10}, {11}, {14}, {15}>(rows, {16}, A, B, {12}, {13}, "
                    "out);\n"
                    "}\n",
                    kKernelName, sig, cudaTypeName(*ea), cudaTypeName(*eb), c,
                    d, co, activation(op.getAct()), activation(op.getOutAct()),
                    op.getBias() ? "true" : "false", rb,
                    ctx.residual ? "true" : "false", biasArg, *res,
                    in.transform, in.mixType, in.args)
          .str();
  kt.shape.grid = {GridDim::constant(1), GridDim::rows(ctx.rows, rb),
                   GridDim::constant(1)};
  kt.shape.block = {512, 1, 1}; // RWKV_LORA_THREADS
  kt.params = params;
  kt.when = whenMany(ctx);
  kernels.push_back(std::move(kt));
  return kernels;
}

} // namespace

bool isLinearKernelOp(Operation *op) {
  return isa<rwkv::LinearOp, rwkv::MixLinearOp, rwkv::GateLinearOp,
             rwkv::ReluSqLinearOp, rwkv::PackedMixLinearOp, rwkv::LoraOp>(op);
}

llvm::Expected<std::vector<KernelText>>
generateLinearKernels(Operation *op, const LinearContext &ctx) {
  if (ctx.rows != GridDim::T && ctx.rows != GridDim::R)
    return failure(op, "the rows of a linear map are T or R");
  if (bool(ctx.residual) != bool(ctx.result))
    return failure(op, "a fused residual needs both residual and result");
  return llvm::TypeSwitch<Operation *,
                          llvm::Expected<std::vector<KernelText>>>(op)
      .Case([&](rwkv::LinearOp o) -> llvm::Expected<std::vector<KernelText>> {
        if (o.getLayout() == rwkv::WeightLayout::in_out)
          return inOutKernels(o, ctx);
        return outInKernels(op, ctx, Plain, o.getInput(), {}, {},
                            o.getWeight(), op->getResults());
      })
      .Case([&](rwkv::MixLinearOp o) {
        return outInKernels(op, ctx, Mix, o.getA(), o.getB(),
                            ValueRange(o.getT()), o.getWeight(),
                            op->getResults());
      })
      .Case([&](rwkv::GateLinearOp o) {
        return outInKernels(op, ctx, Gate, o.getG(), o.getY(), {},
                            o.getWeight(), op->getResults());
      })
      .Case([&](rwkv::ReluSqLinearOp o) {
        return outInKernels(op, ctx, ReluSq, o.getInput(), {}, {},
                            o.getWeight(), op->getResults());
      })
      .Case([&](rwkv::PackedMixLinearOp o) {
        return outInKernels(op, ctx, Mix, o.getA(), o.getB(), o.getMixes(),
                            o.getWeight(), op->getResults());
      })
      .Case([&](rwkv::LoraOp o) { return loraKernels(o, ctx); })
      .Default([&](Operation *) -> llvm::Expected<std::vector<KernelText>> {
        return failure(op, "not a linear map");
      });
}

} // namespace rwkvc::cuda
