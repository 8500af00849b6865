//===- Importer.cpp - Checkpoint to rwkv dialect --------------------------===//
//
// Emits the layer stack of docs/math.md as rwkv ops over
// (T, C) activations:
//
//   x = LN(emb[tokens]; ln0)
//   for each layer: x += TimeMix(LN(x; ln1)); x += ChannelMix(LN(x; ln2))
//   logits = head(LN(last_token(x); ln_out))
//
// Weights are declared lazily on first use, in use order, with the stored
// element type; state slots are declared per layer in layer order.
//
// Every op is located by the checkpoint tensor or layer it comes from, a
// NameLoc over the file: `"blocks.3.att.key"("model.pth":0:0)` for the key
// projection of layer 3, `"blocks.3.att"(...)` for the rest of its time mix,
// so that verifier and pass diagnostics say where (`-mlir-print-debuginfo`
// prints them).
//
//===----------------------------------------------------------------------===//

#include "frontend/Importer.h"

#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::rwkv;
using llvm::Expected;

namespace rwkvc {
namespace {

class Importer {
public:
  Importer(MLIRContext &context, const Checkpoint &ckpt, const ModelInfo &info,
           const ImportOptions &options)
      : ctx(context), ckpt(ckpt), info(info), options(options),
        b(&context), fileLoc(FileLineColLoc::get(&context, ckpt.path, 0, 0)),
        loc(fileLoc) {}

  Expected<OwningOpRef<ModuleOp>> run();

private:
  // Locations.
  /// `name` (a tensor, a tensor's prefix or a layer part) in the checkpoint.
  Location named(const Twine &name) {
    return NameLoc::get(b.getStringAttr(name), fileLoc);
  }
  /// The location of an op that applies the weight `w`: the weight's tensor
  /// without its `.weight` suffix (`blocks.3.att.key`); `loc` otherwise.
  Location locOf(Value w) {
    if (auto op = w.getDefiningOp<WeightOp>()) {
      StringRef name = op.getName();
      name.consume_back(".weight");
      return named(name);
    }
    return loc;
  }
  /// Sets `loc`, the location of the ops built without a weight of their
  /// own, for a scope (a layer's time mix, its channel mix, the head).
  class LocScope {
  public:
    LocScope(Importer &im, Location scoped) : im(im), saved(im.loc) {
      im.loc = scoped;
    }
    ~LocScope() { im.loc = saved; }

  private:
    Importer &im;
    Location saved;
  };

  // Types.
  Type elementType(DType t);
  RankedTensorType act(int64_t channels) {
    return RankedTensorType::get({ShapedType::kDynamic, channels},
                                 b.getF32Type());
  }

  // Weights and state.
  Value weight(StringRef name);
  Value layerWeight(int64_t layer, StringRef suffix) {
    return weight(layerTensorName(layer, suffix));
  }
  bool hasLayerTensor(int64_t layer, StringRef suffix) const {
    return ckpt.find(layerTensorName(layer, suffix)) != nullptr;
  }
  FlatSymbolRefAttr stateSlot(int64_t layer, StringRef slot,
                              ArrayRef<int64_t> shape, StateInit init,
                              StringRef initWeight = {});

  // Building blocks.
  Value layerNorm(Value x, StringRef prefix);
  Value linear(Value x, Value w, WeightLayout layout = WeightLayout::out_in);
  Value tokenShift(Value x, int64_t layer, StringRef part);
  Value lerp(Value a, Value b, Value t) {
    return LerpOp::create(this->b, locOf(t), a.getType(), a, b, t);
  }
  Value mul(Value a, Value c) {
    return MulOp::create(b, loc, a.getType(), a, c);
  }
  Value add(Value a, Value c) {
    return AddOp::create(b, loc, a.getType(), a, c);
  }
  Value decay(Value d, DecayKind kind) {
    auto t = cast<RankedTensorType>(d.getType());
    return DecayOp::create(
        b, locOf(d), RankedTensorType::get(t.getShape(), b.getF32Type()), d,
        DecayKindAttr::get(&ctx, kind));
  }
  Value lora(Value x, StringRef a, StringRef bw, Value bias, Activation act,
             Activation outAct, int64_t layer);

  /// The (H, N, N) WKV state slot of `layer`, from `time_state` if tuned.
  FlatSymbolRefAttr wkvSlot(int64_t layer);
  /// ln_x: group norm over the heads.
  Value groupNorm(Value y, int64_t layer) {
    Value w = layerWeight(layer, "att.ln_x.weight");
    return GroupNormOp::create(
        b, locOf(w), y.getType(), y, w,
        layerWeight(layer, "att.ln_x.bias"), b.getI64IntegerAttr(info.nHead),
        b.getF32FloatAttr(options.groupNormEpsilon));
  }
  /// y * silu(W_g xg) (RWKV-5.1/5.2/6).
  Value gate(Value y, Value xg, int64_t layer) {
    return mul(y, SiluOp::create(
                      b, loc, linear(xg, layerWeight(layer, "att.gate.weight"))));
  }

  // Layers.
  Value timeMixV4(Value xa, int64_t layer);
  Value timeMixV5(Value xa, int64_t layer);
  Value timeMixV6(Value xa, int64_t layer);
  Value timeMixV7(Value xa, int64_t layer, Value &vFirst);
  Value channelMix(Value xf, int64_t layer);
  Value gatedFFN(Value xk, Value xr, int64_t layer);

  MLIRContext &ctx;
  const Checkpoint &ckpt;
  const ModelInfo &info;
  const ImportOptions &options;
  OpBuilder b;
  Location fileLoc; // the checkpoint file
  Location loc;     // the current scope (LocScope)
  ModuleOp module;
  OpBuilder::InsertPoint declPoint;
  llvm::StringSet<> declared;
  std::string missing; // first tensor found missing, if any
};

Type Importer::elementType(DType t) {
  switch (t) {
  case DType::F32:
    return b.getF32Type();
  case DType::F16:
    return b.getF16Type();
  case DType::BF16:
    return b.getBF16Type();
  case DType::Q4_0:
    return QuantType::get(&ctx, QuantKind::q4_0);
  case DType::Q4_1:
    return QuantType::get(&ctx, QuantKind::q4_1);
  case DType::Q5_0:
    return QuantType::get(&ctx, QuantKind::q5_0);
  case DType::Q5_1:
    return QuantType::get(&ctx, QuantKind::q5_1);
  case DType::Q8_0:
    return QuantType::get(&ctx, QuantKind::q8_0);
  }
  llvm_unreachable("unknown dtype");
}

Value Importer::weight(StringRef name) {
  Location at = named(name);
  const Tensor *t = ckpt.find(name);
  if (!t) {
    if (missing.empty())
      missing = name.str();
    // Keep building with a placeholder type; run() reports the error.
    return WeightOp::create(b, at, RankedTensorType::get({1}, b.getF32Type()),
                            name);
  }
  auto type = RankedTensorType::get(t->shape, elementType(t->dtype));
  if (declared.insert(name).second) {
    OpBuilder::InsertionGuard guard(b);
    b.restoreInsertionPoint(declPoint);
    WeightDeclOp::create(b, at, b.getStringAttr(name), TypeAttr::get(type),
                         DecayKindAttr(), FlatSymbolRefAttr(), ArrayAttr());
  }
  return WeightOp::create(b, at, type, name);
}

FlatSymbolRefAttr Importer::stateSlot(int64_t layer, StringRef slot,
                                      ArrayRef<int64_t> shape, StateInit init,
                                      StringRef initWeight) {
  std::string name = llvm::formatv("state.{0}.{1}", layer, slot).str();
  OpBuilder::InsertionGuard guard(b);
  b.restoreInsertionPoint(declPoint);
  StateDeclOp::create(
      b, loc, b.getStringAttr(name),
      TypeAttr::get(RankedTensorType::get(shape, b.getF32Type())),
      StateInitAttr::get(&ctx, init),
      initWeight.empty() ? FlatSymbolRefAttr()
                         : FlatSymbolRefAttr::get(&ctx, initWeight));
  return FlatSymbolRefAttr::get(&ctx, name);
}

Value Importer::layerNorm(Value x, StringRef prefix) {
  Value w = weight((prefix + ".weight").str());
  Value bias = weight((prefix + ".bias").str());
  return LayerNormOp::create(b, named(prefix), x.getType(), x, w, bias,
                             b.getF32FloatAttr(1e-5f));
}

Value Importer::linear(Value x, Value w, WeightLayout layout) {
  auto wt = cast<RankedTensorType>(w.getType());
  int64_t out = layout == WeightLayout::out_in ? wt.getDimSize(0)
                                               : wt.getDimSize(1);
  auto xt = cast<RankedTensorType>(x.getType());
  auto resultType =
      RankedTensorType::get({xt.getDimSize(0), out}, b.getF32Type());
  return LinearOp::create(b, locOf(w), resultType, x, w,
                          WeightLayoutAttr::get(&ctx, layout));
}

Value Importer::tokenShift(Value x, int64_t layer, StringRef part) {
  FlatSymbolRefAttr slot = stateSlot(layer, (part + ".shift").str(),
                                     {info.nEmbd}, StateInit::zero);
  return TokenShiftOp::create(b, loc, x.getType(), x, slot);
}

Value Importer::lora(Value x, StringRef a, StringRef bw, Value bias,
                     Activation actKind, Activation outAct, int64_t layer) {
  Value wa = layerWeight(layer, a);
  Value wb = layerWeight(layer, bw);
  auto bt = cast<RankedTensorType>(wb.getType());
  return LoraOp::create(b, locOf(wa), act(bt.getDimSize(bt.getRank() - 1)), x, wa,
                        wb, bias, ActivationAttr::get(&ctx, actKind),
                        ActivationAttr::get(&ctx, outAct));
}

//===----------------------------------------------------------------------===//
// RWKV-4
//===----------------------------------------------------------------------===//

Value Importer::timeMixV4(Value xa, int64_t l) {
  int64_t c = info.nEmbd;
  Value prev = tokenShift(xa, l, "att");
  Value xk = lerp(prev, xa, layerWeight(l, "att.time_mix_k"));
  Value xv = lerp(prev, xa, layerWeight(l, "att.time_mix_v"));
  Value xr = lerp(prev, xa, layerWeight(l, "att.time_mix_r"));
  Value r = SigmoidOp::create(b, loc, linear(xr, layerWeight(l, "att.receptance.weight")));
  Value k = linear(xk, layerWeight(l, "att.key.weight"));
  Value v = linear(xv, layerWeight(l, "att.value.weight"));
  Value w = decay(layerWeight(l, "att.time_decay"), DecayKind::neg_exp);
  Value u = layerWeight(l, "att.time_first");
  FlatSymbolRefAttr aa = stateSlot(l, "att.aa", {c}, StateInit::zero);
  FlatSymbolRefAttr bb = stateSlot(l, "att.bb", {c}, StateInit::zero);
  FlatSymbolRefAttr pp = stateSlot(l, "att.pp", {c}, StateInit::neg_large);
  Value wkv = WKV4Op::create(b, loc, k.getType(), k, v, w, u, aa, bb, pp);
  return linear(mul(r, wkv), layerWeight(l, "att.output.weight"));
}

//===----------------------------------------------------------------------===//
// RWKV-5 (5.0, 5.1, 5.2) and RWKV-6 share the matrix-valued recurrence
//===----------------------------------------------------------------------===//

/// The WKV state of layer `l`: (H, N, N), from `time_state` when tuned.
static std::pair<StateInit, std::string> wkvInit(const Checkpoint &ckpt,
                                                 const ImportOptions &options,
                                                 int64_t l) {
  std::string timeState = layerTensorName(l, "att.time_state");
  if (options.useTimeState && ckpt.find(timeState))
    return {StateInit::weight, timeState};
  return {StateInit::zero, ""};
}

FlatSymbolRefAttr Importer::wkvSlot(int64_t l) {
  auto [init, initWeight] = wkvInit(ckpt, options, l);
  if (!initWeight.empty())
    (void)weight(initWeight); // declare it for the initializer
  return stateSlot(l, "att.wkv", {info.nHead, info.headSize, info.headSize},
                   init, initWeight);
}

Value Importer::timeMixV5(Value xa, int64_t l) {
  bool gated = info.version != Version::V5_0 && hasLayerTensor(l, "att.gate.weight");
  Value prev = tokenShift(xa, l, "att");
  Value xk = lerp(prev, xa, layerWeight(l, "att.time_mix_k"));
  Value xv = lerp(prev, xa, layerWeight(l, "att.time_mix_v"));
  Value xr = lerp(prev, xa, layerWeight(l, "att.time_mix_r"));
  Value xg = gated ? lerp(prev, xa, layerWeight(l, "att.time_mix_g")) : Value();
  Value r = linear(xr, layerWeight(l, "att.receptance.weight"));
  Value k = linear(xk, layerWeight(l, "att.key.weight"));
  Value v = linear(xv, layerWeight(l, "att.value.weight"));
  Value w = decay(layerWeight(l, "att.time_decay"), DecayKind::exp_neg_exp);
  // The bonus follows its tensor's name: exp(time_first) or time_faaaa.
  Value u = hasLayerTensor(l, "att.time_first")
                ? decay(layerWeight(l, "att.time_first"), DecayKind::exp)
                : layerWeight(l, "att.time_faaaa");
  Value y = WKV5Op::create(b, loc, r.getType(), r, k, v, w, u, wkvSlot(l),
                           b.getI64IntegerAttr(info.nHead));
  y = groupNorm(y, l);
  if (gated)
    y = gate(y, xg, l);
  return linear(y, layerWeight(l, "att.output.weight"));
}

Value Importer::timeMixV6(Value xa, int64_t l) {
  Value prev = tokenShift(xa, l, "att");
  SmallVector<Value> maa;
  for (StringRef m : {"w", "k", "v", "r", "g"})
    maa.push_back(layerWeight(l, ("att.time_maa_" + m).str()));
  Value w1 = layerWeight(l, "att.time_maa_w1");
  Value w2 = layerWeight(l, "att.time_maa_w2");
  SmallVector<Type> types(5, xa.getType());
  auto mixes = DDLerpOp::create(b, loc, types, xa, prev,
                                layerWeight(l, "att.time_maa_x"), maa, w1, w2);
  Value xw = mixes.getResult(0), xk = mixes.getResult(1),
        xv = mixes.getResult(2), xr = mixes.getResult(3),
        xg = mixes.getResult(4);
  Value d = lora(xw, "att.time_decay_w1", "att.time_decay_w2",
                 layerWeight(l, "att.time_decay"), Activation::tanh,
                 Activation::none, l);
  Value w = decay(d, DecayKind::exp_neg_exp);
  Value r = linear(xr, layerWeight(l, "att.receptance.weight"));
  Value k = linear(xk, layerWeight(l, "att.key.weight"));
  Value v = linear(xv, layerWeight(l, "att.value.weight"));
  Value u = layerWeight(l, "att.time_faaaa");
  Value y = WKV5Op::create(b, loc, r.getType(), r, k, v, w, u, wkvSlot(l),
                           b.getI64IntegerAttr(info.nHead));
  y = groupNorm(y, l);
  return linear(gate(y, xg, l), layerWeight(l, "att.output.weight"));
}

//===----------------------------------------------------------------------===//
// RWKV-7
//===----------------------------------------------------------------------===//

Value Importer::timeMixV7(Value xa, int64_t l, Value &vFirst) {
  int64_t h = info.nHead;
  Value prev = tokenShift(xa, l, "att");
  auto mix = [&](StringRef m) {
    return lerp(xa, prev, layerWeight(l, ("att.x_" + m).str()));
  };
  Value xr = mix("r"), xw = mix("w"), xk = mix("k"), xv = mix("v"),
        xaa = mix("a"), xg = mix("g");
  Value r = linear(xr, layerWeight(l, "att.receptance.weight"));
  Value k = linear(xk, layerWeight(l, "att.key.weight"));
  Value v = linear(xv, layerWeight(l, "att.value.weight"));
  Value d = lora(xw, "att.w1", "att.w2", layerWeight(l, "att.w0"),
                 Activation::tanh, Activation::none, l);
  Value w = decay(d, DecayKind::exp_neg_sigmoid);
  if (l == 0) {
    vFirst = v;
  } else {
    Value mixV = lora(xv, "att.v1", "att.v2", layerWeight(l, "att.v0"),
                      Activation::none, Activation::sigmoid, l);
    v = lerp(v, vFirst, mixV);
  }
  Value a = lora(xaa, "att.a1", "att.a2", layerWeight(l, "att.a0"),
                 Activation::none, Activation::sigmoid, l);
  Value g = lora(xg, "att.g1", "att.g2", Value(), Activation::sigmoid,
                 Activation::none, l);
  auto prep = WKV7PrepOp::create(
      b, loc, TypeRange{k.getType(), k.getType(), k.getType()}, k, a,
      layerWeight(l, "att.k_k"), layerWeight(l, "att.k_a"),
      b.getI64IntegerAttr(h));
  Value newK = prep.getNewK();
  Value y = WKV7Op::create(b, loc, r.getType(), r, w, newK, v, prep.getNegKk(),
                           prep.getKkA(), wkvSlot(l), b.getI64IntegerAttr(h));
  y = groupNorm(y, l);
  Value bonus = HeadBonusOp::create(b, loc, r.getType(), r, newK, v,
                                    layerWeight(l, "att.r_k"),
                                    b.getI64IntegerAttr(h));
  y = add(y, bonus);
  return linear(mul(y, g), layerWeight(l, "att.output.weight"));
}

//===----------------------------------------------------------------------===//
// Channel mix (all versions)
//===----------------------------------------------------------------------===//

/// RWKV-4/5/6's channel mix after its token-shift mixes:
/// sigmoid(W_r xr) * (W_v relu(W_k xk)^2).
Value Importer::gatedFFN(Value xk, Value xr, int64_t l) {
  Value r = SigmoidOp::create(
      b, loc, linear(xr, layerWeight(l, "ffn.receptance.weight")));
  Value k = ReluSqOp::create(b, loc,
                             linear(xk, layerWeight(l, "ffn.key.weight")));
  return mul(r, linear(k, layerWeight(l, "ffn.value.weight")));
}

Value Importer::channelMix(Value xf, int64_t l) {
  Value prev = tokenShift(xf, l, "ffn");
  switch (info.version) {
  case Version::V4:
  case Version::V5_0:
  case Version::V5_1:
  case Version::V5_2:
    return gatedFFN(lerp(prev, xf, layerWeight(l, "ffn.time_mix_k")),
                    lerp(prev, xf, layerWeight(l, "ffn.time_mix_r")), l);
  case Version::V6:
    return gatedFFN(lerp(xf, prev, layerWeight(l, "ffn.time_maa_k")),
                    lerp(xf, prev, layerWeight(l, "ffn.time_maa_r")), l);
  case Version::V7: {
    Value xk = lerp(xf, prev, layerWeight(l, "ffn.x_k"));
    Value k = ReluSqOp::create(b, loc, linear(xk, layerWeight(l, "ffn.key.weight")));
    return linear(k, layerWeight(l, "ffn.value.weight"));
  }
  }
  llvm_unreachable("unknown version");
}

Expected<OwningOpRef<ModuleOp>> Importer::run() {
  OwningOpRef<ModuleOp> owned = ModuleOp::create(loc);
  module = *owned;
  module->setAttr("rwkv.version", b.getStringAttr(versionName(info.version)));
  module->setAttr("rwkv.source", b.getStringAttr(ckpt.path));
  b.setInsertionPointToStart(module.getBody());
  declPoint = b.saveInsertionPoint();

  auto tokensType = RankedTensorType::get({ShapedType::kDynamic},
                                          b.getI32Type());
  auto logitsType = RankedTensorType::get({1, info.vocab}, b.getF32Type());
  auto fn = func::FuncOp::create(b, loc, kForwardFunction,
                                 b.getFunctionType({tokensType}, {logitsType}));
  // Declarations go before the function, in the order they are made.
  declPoint = OpBuilder::InsertPoint(module.getBody(), Block::iterator(fn));
  Block *body = fn.addEntryBlock();
  b.setInsertionPointToEnd(body);

  Value emb = weight("emb.weight");
  Value x = EmbeddingOp::create(b, locOf(emb), act(info.nEmbd),
                                body->getArgument(0), emb);
  x = layerNorm(x, "blocks.0.ln0");
  Value vFirst;
  for (int64_t l = 0; l < info.nLayer; ++l) {
    std::string prefix = layerTensorName(l, "");
    LocScope layerScope(*this, named(StringRef(prefix).drop_back()));
    // One rwkv.layers op per layer: it reads the residual stream (and
    // RWKV-7's value of layer 0) and yields the next residual stream (and,
    // in layer 0, that value).
    SmallVector<Value> inputs = {x};
    if (vFirst)
      inputs.push_back(vFirst);
    bool yieldsValue = info.version == Version::V7 && l == 0;
    SmallVector<Type> results(yieldsValue ? 2 : 1, x.getType());
    auto layer = LayersOp::create(b, loc, results, l, l, LayerStrideAttr(),
                                  inputs);
    Block *body = new Block();
    layer.getBody().push_back(body);
    for (Value input : inputs)
      body->addArgument(input.getType(), loc);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(body);
    x = body->getArgument(0);
    Value v = vFirst ? body->getArgument(1) : Value();

    Value xa = layerNorm(x, prefix + "ln1");
    Value att;
    {
      LocScope attScope(*this, named(prefix + "att"));
      switch (info.version) {
      case Version::V4:
        att = timeMixV4(xa, l);
        break;
      case Version::V5_0:
      case Version::V5_1:
      case Version::V5_2:
        att = timeMixV5(xa, l);
        break;
      case Version::V6:
        att = timeMixV6(xa, l);
        break;
      case Version::V7:
        att = timeMixV7(xa, l, v);
        break;
      }
    }
    x = add(x, att);
    Value ffn;
    {
      LocScope ffnScope(*this, named(prefix + "ffn"));
      ffn = channelMix(layerNorm(x, prefix + "ln2"), l);
    }
    x = add(x, ffn);
    SmallVector<Value> yields = {x};
    if (yieldsValue)
      yields.push_back(v);
    YieldOp::create(b, loc, yields);
    x = layer.getResult(0);
    if (yieldsValue)
      vFirst = layer.getResult(1);
  }
  LocScope headScope(*this, named("head"));
  Value last = LastTokenOp::create(
      b, loc, RankedTensorType::get({1, info.nEmbd}, b.getF32Type()), x);
  last = layerNorm(last, "ln_out");
  Value logits = linear(last, weight("head.weight"));
  func::ReturnOp::create(b, loc, logits);

  if (!missing.empty())
    return llvm::createStringError(llvm::formatv(
        "{0}: tensor '{1}' is missing for RWKV-{2}", ckpt.path, missing,
        versionName(info.version)));
  std::string diagnostics;
  {
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &d) {
      llvm::raw_string_ostream(diagnostics)
          << d.getLocation() << ": " << d.str() << "\n";
      return success();
    });
    if (failed(verify(module)))
      return llvm::createStringError(
          llvm::formatv("{0}: the imported module does not verify: {1}",
                        ckpt.path, diagnostics));
  }
  return std::move(owned);
}

} // namespace

Expected<OwningOpRef<ModuleOp>> importModel(MLIRContext &context,
                                            const Checkpoint &ckpt,
                                            const ModelInfo &info,
                                            const ImportOptions &options) {
  context.loadDialect<RWKVDialect, func::FuncDialect>();
  return Importer(context, ckpt, info, options).run();
}

} // namespace rwkvc
