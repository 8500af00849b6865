//===- ElementwiseOpsTest.cpp - JIT tests of norm/element-wise/linear ops -===//
//
// As WKVOpsTest.cpp, for layer_norm, group_norm, token_shift, lerp,
// add/mul, sigmoid/silu/relu_sq/tanh, decay, linear and lora: the real
// lowering, JIT-compiled, against double-precision references on random
// inputs, with T = 1 (`_one` and `_seq`) and sequences (with the state of
// token_shift carried across calls).
//
// exp and tanh are lowered to MLIR's polynomial approximations
// (rwkv-loops-to-llvm), not libm: their tolerances are stated with them.
//
//===----------------------------------------------------------------------===//

#include "OpTestUtil.h"
#include "codegen/Quantize.h"
#include "codegen/WeightImage.h"
#include "codegen/cpu/Passes.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <tuple>

using namespace rwkvc::testing;

namespace {

const TokenRun kRuns[] = {{"T=1 _one", 1, {1}, true},
                     {"T=1 _seq", 1, {1}, false},
                     {"T=5", 5, {5}, false},
                     {"T=7 as 3+4", 7, {3, 4}, false}};

std::string cat(std::initializer_list<std::string> parts) {
  std::string s;
  for (auto &p : parts)
    s += p;
  return s;
}

// The harness rounds weights to f16/bf16 itself (the references use the
// rounded values): check it against the compiler's conversions.
TEST(JitHarness, WeightRoundingMatchesCompilerConversions) {
  std::mt19937 rng(1);
  std::vector<float> xs = randomVector(rng, 20000, -70000, 70000);
  for (float scale : {1e-3f, 1e-6f, 3e-8f, 1.0f})
    for (int i = 0; i < 2000; ++i)
      xs.push_back(xs[i] * scale);
  xs.insert(xs.end(), {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1.0009765625f,
                       1.00048828125f, 1.00146484375f, 5.9604645e-8f, 2.9802322e-8f});
  for (float x : xs) {
#ifdef __FLT16_MAX__
    float h = static_cast<float>(static_cast<_Float16>(x));
    ASSERT_EQ(roundToF16(x), h) << x;
#endif
    // bf16: the top 16 bits of f32, rounded to nearest even.
    uint32_t u;
    std::memcpy(&u, &x, 4);
    uint32_t lo = u & 0xffff, hi = u & 0xffff0000u;
    if (lo > 0x8000 || (lo == 0x8000 && (hi & 0x10000)))
      hi += 0x10000;
    float b;
    std::memcpy(&b, &hi, 4);
    ASSERT_EQ(roundToBF16(x), b) << x;
  }
}

//===----------------------------------------------------------------------===//
// layer_norm, group_norm
//===----------------------------------------------------------------------===//

/// Normalizes each of `groups` groups of each token, then the affine map.
std::vector<double> normReference(int64_t C, int64_t T, int64_t groups,
                                  double eps, const std::vector<float> &x,
                                  const std::vector<double> &w,
                                  const std::vector<double> &b) {
  std::vector<double> y(T * C);
  int64_t G = C / groups;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t g = 0; g < groups; ++g) {
      const float *p = &x[t * C + g * G];
      double mean = 0, var = 0;
      for (int64_t i = 0; i < G; ++i)
        mean += p[i];
      mean /= G;
      for (int64_t i = 0; i < G; ++i)
        var += (p[i] - mean) * (p[i] - mean);
      var /= G;
      double inv = 1 / std::sqrt(var + eps);
      for (int64_t i = 0; i < G; ++i) {
        int64_t c = g * G + i;
        y[t * C + c] = (p[i] - mean) * inv * w[c] + b[c];
      }
    }
  return y;
}

class LayerNormTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(LayerNormTest, MatchesFormula) {
  const int64_t C = GetParam();
  auto jit = compileOrFail(substitute(R"(
func.func @f(%x: $A, %w: $P, %b: $P) -> $A {
  %y = rwkv.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f32} : ($A, $P, $P) -> $A
  return %y : $A
}
)",
                                      {{"A", act(C)}, {"P", vec(C)}}));
  ASSERT_TRUE(jit);
  std::mt19937 rng(2000 + C);
  auto w = randomVector(rng, C, -2, 2), b = randomVector(rng, C, -1, 1);
  for (const TokenRun &run : kRuns) {
    int64_t T = run.tokens;
    // An offset mean and a spread of scales, as in a residual stream.
    auto x = randomVector(rng, T * C, -4, 6);
    std::vector<float> y;
    runInChunks(*jit, {&x, &w, &b}, {&y}, run.chunks, run.oneKernel);
    // f32 sums of C terms, rsqrt as a polynomial/Newton approximation
    // (~2 ulp): outputs O(|w| * 2) with ~1e-6 relative error.
    EXPECT_TRUE(closeTo(cat({"layer_norm C=", std::to_string(C), " ", run.name}), y,
                        normReference(C, T, 1, 1e-5, x, toDouble(w), toDouble(b)),
                        1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Channels, LayerNormTest, ::testing::Values(64, 24, 40),
                         [](const auto &info) {
                           return "C" + std::to_string(info.param);
                         });

TEST(LayerNormWeights, BF16WeightAndF16Bias) {
  const int64_t C = 48, T = 3;
  auto jit = compileOrFail(R"(
rwkv.weight_decl @w : tensor<48xbf16>
rwkv.weight_decl @b : tensor<48xf16>
func.func @f(%x: tensor<?x48xf32>) -> tensor<?x48xf32> {
  %w = rwkv.weight @w : tensor<48xbf16>
  %b = rwkv.weight @b : tensor<48xf16>
  %y = rwkv.layer_norm %x, %w, %b {epsilon = 1.0e-05 : f32} : (tensor<?x48xf32>, tensor<48xbf16>, tensor<48xf16>) -> tensor<?x48xf32>
  return %y : tensor<?x48xf32>
}
)");
  ASSERT_TRUE(jit);
  std::mt19937 rng(2100);
  auto w = randomVector(rng, C, -2, 2), b = randomVector(rng, C, -1, 1),
       x = randomVector(rng, T * C, -3, 3);
  ASSERT_FALSE(jit->setWeight("w", w));
  ASSERT_FALSE(jit->setWeight("b", b));
  std::vector<double> wd(C), bd(C);
  for (int64_t c = 0; c < C; ++c) {
    wd[c] = roundToBF16(w[c]);
    bd[c] = roundToF16(b[c]);
  }
  std::vector<float> y;
  runInChunks(*jit, {&x}, {&y}, {T});
  EXPECT_TRUE(closeTo("layer_norm bf16 weight, f16 bias", y,
                      normReference(C, T, 1, 1e-5, x, wd, bd), 1e-5));
}

using GroupParam = std::tuple<int64_t, int64_t>; // C, groups

class GroupNormTest : public ::testing::TestWithParam<GroupParam> {};

TEST_P(GroupNormTest, MatchesFormula) {
  auto [C, groups] = GetParam();
  auto jit = compileOrFail(substitute(R"(
func.func @f(%x: $A, %w: $P, %b: $P) -> $A {
  %y = rwkv.group_norm %x, %w, %b {groups = $G : i64, epsilon = 6.4e-04 : f32} : ($A, $P, $P) -> $A
  return %y : $A
}
)",
                                      {{"A", act(C)},
                                       {"P", vec(C)},
                                       {"G", std::to_string(groups)}}));
  ASSERT_TRUE(jit);
  std::mt19937 rng(2200 + C + groups);
  auto w = randomVector(rng, C, -2, 2), b = randomVector(rng, C, -1, 1);
  for (const TokenRun &run : kRuns) {
    int64_t T = run.tokens;
    auto x = randomVector(rng, T * C, -2, 2);
    // One group with a tiny spread: the epsilon matters there.
    for (int64_t i = 0; i < C / groups; ++i)
      x[i] = 0.5f + 0.01f * x[i];
    std::vector<float> y;
    runInChunks(*jit, {&x, &w, &b}, {&y}, run.chunks, run.oneKernel);
    // As layer_norm.
    EXPECT_TRUE(closeTo(cat({"group_norm C=", std::to_string(C), " groups=",
                             std::to_string(groups), " ", run.name}),
                        y,
                        normReference(C, T, groups, 6.4e-4, x, toDouble(w),
                                      toDouble(b)),
                        1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(Groups, GroupNormTest,
                         ::testing::Values(GroupParam{64, 4}, GroupParam{64, 1},
                                           GroupParam{96, 12}),
                         [](const auto &info) {
                           return "C" + std::to_string(std::get<0>(info.param)) +
                                  "G" + std::to_string(std::get<1>(info.param));
                         });

//===----------------------------------------------------------------------===//
// token_shift
//===----------------------------------------------------------------------===//

TEST(TokenShift, CarriesStateAcrossCalls) {
  for (int64_t C : {64, 24}) {
    auto jit = compileOrFail(substitute(R"(
rwkv.state_decl @other : tensor<5xf32> init <zero>
rwkv.state_decl @shift : $P init <zero>
func.func @f(%x: $A) -> $A {
  %y = rwkv.token_shift %x state @shift : $A
  return %y : $A
}
)",
                                        {{"A", act(C)}, {"P", vec(C)}}));
    ASSERT_TRUE(jit);
    std::mt19937 rng(2300 + C);
    for (const TokenRun &run : kRuns) {
      int64_t T = run.tokens;
      auto x = randomVector(rng, T * C, -1, 1), s0 = randomVector(rng, C, -1, 1);
      std::copy(s0.begin(), s0.end(), jit->slot("shift"));
      std::vector<double> ref(T * C);
      for (int64_t c = 0; c < C; ++c)
        ref[c] = s0[c];
      for (int64_t i = C; i < T * C; ++i)
        ref[i] = x[i - C];
      std::vector<float> y;
      runInChunks(*jit, {&x}, {&y}, run.chunks, run.oneKernel);
      std::string what = cat({"token_shift C=", std::to_string(C), " ", run.name});
      // Copies: exact.
      EXPECT_TRUE(closeTo(what + ": y", y, ref, 0));
      std::vector<float> s(jit->slot("shift"), jit->slot("shift") + C);
      EXPECT_TRUE(closeTo(what + ": slot = last token", s,
                          std::vector<double>(x.end() - C, x.end()), 0));
      EXPECT_EQ(jit->slot("other")[0], 0.0f);
    }
  }
}

//===----------------------------------------------------------------------===//
// lerp, add, mul, activations, decay: element-wise maps
//===----------------------------------------------------------------------===//

/// Compiles `body` (one op producing %y from %x and, if given, %p of type
/// `pType`), runs it for every TokenRun with inputs drawn in [lo, hi) and
/// compares with `ref` element by element (`ref(x, p, c)`).
void checkMap(const std::string &what, int64_t C, const std::string &body,
              const std::string &pType, float lo, float hi, float plo,
              float phi, std::function<double(double, double)> ref,
              double absTol, double relTol, bool perTokenP = false) {
  std::string A = act(C);
  std::string source =
      pType.empty()
          ? substitute("func.func @f(%x: $A) -> $A {\n  " + body +
                           "\n  return %y : $A\n}\n",
                       {{"A", A}})
          : substitute("func.func @f(%x: $A, %p: $Q) -> $A {\n  " + body +
                           "\n  return %y : $A\n}\n",
                       {{"A", A}, {"Q", pType}});
  auto jit = compileOrFail(source);
  ASSERT_TRUE(jit) << source;
  std::mt19937 rng(std::hash<std::string>()(what) & 0xffff);
  std::vector<float> p = perTokenP ? std::vector<float>() : randomVector(rng, C, plo, phi);
  for (const TokenRun &run : kRuns) {
    int64_t T = run.tokens;
    auto x = randomVector(rng, T * C, lo, hi);
    if (perTokenP)
      p = randomVector(rng, T * C, plo, phi);
    std::vector<double> expect(T * C);
    double worstRel = 0;
    for (int64_t i = 0; i < T * C; ++i)
      expect[i] = ref(x[i], pType.empty() ? 0.0 : double(p[perTokenP ? i : i % C]));
    std::vector<float> y;
    if (pType.empty())
      runInChunks(*jit, {&x}, {&y}, run.chunks, run.oneKernel);
    else
      runInChunks(*jit, {&x, &p}, {&y}, run.chunks, run.oneKernel);
    // |diff| <= absTol + relTol * |ref|: report the scaled error against 1.
    std::vector<double> scaledRef(T * C);
    std::vector<float> scaledGot(T * C);
    for (int64_t i = 0; i < T * C; ++i) {
      double bound = absTol + relTol * std::fabs(expect[i]);
      double diff = double(y[i]) - expect[i];
      scaledGot[i] = diff == 0 ? 0.0f : float(diff / bound);
      scaledRef[i] = 0;
      worstRel = std::max(worstRel, std::fabs(double(y[i]) - expect[i]));
    }
    std::printf("[ maxdiff  ] %-64s %.3g abs\n",
                (what + " " + run.name).c_str(), worstRel);
    EXPECT_TRUE(closeTo(what + " " + run.name + " (|diff| / (abs + rel*|ref|))",
                        scaledGot, scaledRef, 1.0));
  }
}

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

TEST(ElementwiseMaps, Lerp) {
  const int64_t C = 40;
  // lerp(a, b, t) = a + (b - a) * t: one f32 fma, ~1 ulp of O(1).
  auto lerp = [](double a, double b, double t) { return a + (b - a) * t; };
  // The mix per channel as (1, 1, C); a and b both activations: use b = 2x.
  checkMap("lerp(x, 2x, t(1,1,C))", C,
           substitute("%b = rwkv.add %x, %x : ($A, $A) -> $A\n"
                      "  %y = rwkv.lerp %x, %b, %p : ($A, $A, tensor<1x1x40xf32>) -> $A",
                      {{"A", act(C)}}),
           "tensor<1x1x40xf32>", -2, 2, 0, 1,
           [&](double x, double t) { return lerp(x, 2 * x, t); }, 1e-6, 1e-6);
  checkMap("lerp(x, 2x, t per token)", C,
           substitute("%b = rwkv.add %x, %x : ($A, $A) -> $A\n"
                      "  %y = rwkv.lerp %x, %b, %p : ($A, $A, $A) -> $A",
                      {{"A", act(C)}}),
           act(C), -2, 2, 0, 1,
           [&](double x, double t) { return lerp(x, 2 * x, t); }, 1e-6, 1e-6,
           /*perTokenP=*/true);
}

TEST(ElementwiseMaps, AddMulBroadcast) {
  const int64_t C = 24;
  // One f32 operation: correctly rounded, 6e-8 relative.
  checkMap("add x + p(C)", C,
           substitute("%y = rwkv.add %x, %p : ($A, tensor<24xf32>) -> $A", {{"A", act(C)}}),
           vec(C), -2, 2, -2, 2, [](double x, double p) { return x + p; }, 0, 1.2e-7);
  checkMap("mul x * p(C)", C,
           substitute("%y = rwkv.mul %x, %p : ($A, tensor<24xf32>) -> $A", {{"A", act(C)}}),
           vec(C), -2, 2, -2, 2, [](double x, double p) { return x * p; }, 0, 1.2e-7);
}

TEST(ElementwiseMaps, Activations) {
  const int64_t C = 40;
  std::string A = act(C);
  // exp is MLIR's polynomial approximation (range reduction + degree-5
  // polynomial, ~2 ulp); sigmoid = 1 / (1 + exp(-x)), silu = x sigmoid(x):
  // a few ulp relative, 1e-6 relative + 1e-7 absolute is generous but tight
  // enough to catch a wrong coefficient or range reduction.
  checkMap("sigmoid", C, substitute("%y = rwkv.sigmoid %x : $A", {{"A", A}}), "",
           -12, 12, 0, 0, [](double x, double) { return sigmoid(x); }, 1e-7, 1e-6);
  checkMap("silu", C, substitute("%y = rwkv.silu %x : $A", {{"A", A}}), "", -12, 12,
           0, 0, [](double x, double) { return x * sigmoid(x); }, 1e-7, 1e-6);
  // max(x, 0)^2: one f32 product, correctly rounded.
  checkMap("relu_sq", C, substitute("%y = rwkv.relu_sq %x : $A", {{"A", A}}), "", -4,
           4, 0, 0,
           [](double x, double) { return x > 0 ? x * x : 0.0; }, 0, 1.2e-7);
  // tanh is MLIR's rational approximation (clamped to +-7.9, odd rational
  // of degree 13/6): documented ~1e-6 absolute near the clamp; 2e-6.
  checkMap("tanh", C, substitute("%y = rwkv.tanh %x : $A", {{"A", A}}), "", -9, 9, 0,
           0, [](double x, double) { return std::tanh(x); }, 2e-6, 0);
}

TEST(ElementwiseMaps, DecayKinds) {
  const int64_t C = 40;
  std::string A = act(C);
  struct Kind {
    const char *name;
    std::function<double(double)> f;
  } kinds[] = {
      {"neg_exp", [](double d) { return -std::exp(d); }},
      {"exp_neg_exp", [](double d) { return std::exp(-std::exp(d)); }},
      {"exp_neg_sigmoid",
       [](double d) { return std::exp(-std::exp(-0.5) * sigmoid(d)); }},
      {"exp", [](double d) { return std::exp(d); }},
  };
  for (const Kind &k : kinds) {
    std::string attr = std::string("{kind = #rwkv.decay_kind<") + k.name + ">}";
    // Composed polynomial exps: a few ulp each, 2e-6 relative (the inner
    // exp's error is scaled by exp(d) <= e^2 in exp_neg_exp).
    // Per channel (computed once per call) and per token (a map).
    checkMap(std::string("decay ") + k.name + " per channel", C,
             "%d = rwkv.decay %p " + attr +
                 " : tensor<40xf32> -> tensor<40xf32>\n"
                 "  %y = rwkv.mul %x, %d : (" + A + ", tensor<40xf32>) -> " + A,
             vec(C), 1, 1.0001f, -3, 2,
             [&](double x, double d) { return x * k.f(d); }, 1e-7, 4e-6);
    checkMap(std::string("decay ") + k.name + " per token", C,
             substitute("%y = rwkv.decay %x " + attr + " : $A -> $A", {{"A", A}}), "",
             -3, 2, 0, 0, [&](double x, double) { return k.f(x); }, 1e-7, 4e-6);
  }
}

// The packer's decays (folded weights) against the same references: libm's
// exp in f32, a few ulp; 1e-6 relative.
TEST(ElementwiseMaps, PackerDecayKinds) {
  struct Kind {
    mlir::rwkv::DecayKind kind;
    std::function<double(double)> f;
  } kinds[] = {
      {mlir::rwkv::DecayKind::neg_exp, [](double d) { return -std::exp(d); }},
      {mlir::rwkv::DecayKind::exp_neg_exp,
       [](double d) { return std::exp(-std::exp(d)); }},
      {mlir::rwkv::DecayKind::exp_neg_sigmoid,
       [](double d) { return std::exp(-std::exp(-0.5) * sigmoid(d)); }},
      {mlir::rwkv::DecayKind::exp, [](double d) { return std::exp(d); }},
  };
  for (const Kind &k : kinds)
    for (double d = -3; d <= 2; d += 0.125) {
      double want = k.f(d);
      EXPECT_NEAR(rwkvc::evaluateDecay(k.kind, float(d)), want,
                  1e-6 * std::abs(want) + 1e-30)
          << mlir::rwkv::stringifyDecayKind(k.kind).str() << " of " << d;
    }
}

//===----------------------------------------------------------------------===//
// linear, lora
//===----------------------------------------------------------------------===//

/// Rounds `v` to the values a weight of `type` holds.
std::vector<double> stored(const std::vector<float> &v, const std::string &type) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = type == "f16" ? roundToF16(v[i]) : type == "bf16" ? roundToBF16(v[i]) : v[i];
  return out;
}

// The linear tests' runs: T = 1 both ways, a sequence of 5 (a tile of 4
// tokens and one more) and of 9.
const TokenRun kLinearRuns[] = {{"T=1 _one", 1, {1}, true},
                                {"T=1 _seq", 1, {1}, false},
                                {"T=5", 5, {5}, false},
                                {"T=9", 9, {9}, false}};

using LinearParam = std::tuple<std::pair<int64_t, int64_t>, bool, std::string>;

class LinearTest : public ::testing::TestWithParam<LinearParam> {};

TEST_P(LinearTest, MatchesMatrixProduct) {
  auto [io, inOut, type] = GetParam();
  auto [in, out] = io;
  std::string wType = inOut ? "tensor<" + std::to_string(in) + "x" + std::to_string(out) + "x" + type + ">"
                            : "tensor<" + std::to_string(out) + "x" + std::to_string(in) + "x" + type + ">";
  auto jit = compileOrFail(substitute(R"(
rwkv.weight_decl @w : $W
func.func @f(%x: $X) -> $Y {
  %w = rwkv.weight @w : $W
  %y = rwkv.linear %x, %w $L : ($X, $W) -> $Y
  return %y : $Y
}
)",
                                      {{"W", wType},
                                       {"X", act(in)},
                                       {"Y", act(out)},
                                       {"L", inOut ? "{layout = #rwkv.weight_layout<in_out>}" : ""}}));
  ASSERT_TRUE(jit);
  std::mt19937 rng(3000 + in * 7 + out + inOut * 13 + type.size());
  auto w = randomVector(rng, in * out, -1, 1);
  ASSERT_FALSE(jit->setWeight("w", w));
  std::vector<double> W = stored(w, type);
  for (const TokenRun &run : kLinearRuns) {
    int64_t T = run.tokens;
    auto x = randomVector(rng, T * in, -1, 1);
    std::vector<double> ref(T * out);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t i = 0; i < in; ++i)
          s += double(x[t * in + i]) * (inOut ? W[i * out + o] : W[o * in + i]);
        ref[t * out + o] = s;
      }
    std::vector<float> y;
    runInChunks(*jit, {&x}, {&y}, run.chunks, run.oneKernel);
    // f32 accumulation of `in` products of O(1) (weights exact in f32):
    // ~sqrt(in) * |partial sums| * 6e-8 <= 1e-5 for in <= 64.
    EXPECT_TRUE(closeTo(cat({"linear ", inOut ? "in_out" : "out_in", " ", type, " in=",
                             std::to_string(in), " out=", std::to_string(out), " ",
                             run.name}),
                        y, ref, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, LinearTest,
    ::testing::Combine(::testing::Values(std::pair<int64_t, int64_t>{24, 7},
                                         std::pair<int64_t, int64_t>{64, 48}),
                       ::testing::Bool(), ::testing::Values("f32", "f16", "bf16")),
    [](const auto &info) {
      const auto &io = std::get<0>(info.param);
      return "In" + std::to_string(io.first) + "Out" + std::to_string(io.second) +
             (std::get<1>(info.param) ? "_in_out_" : "_out_in_") +
             std::get<2>(info.param);
    });

/// A block-quantized out_in linear (N, K): the weight quantized by the
/// compiler's quantizer and placed as the packer places it, against two
/// double-precision references over its decoded values (the frontend's
/// decoder): x as it is, and x quantized per block of 32 as the kernels do
/// (d_x = max|x| / 127, q_x = x · (127 / max|x|) rounded to nearest even, in
/// f32). Decode always takes the quantized one; a sequence with AVX-512 VNNI
/// and N a multiple of 16 too (emitQuantizedSequenceTile: tiles of 32
/// rows and a last one of 16 for N = 48), and with AVX2 (or AVX-VNNI) and N
/// a multiple of 8 (tiles of 16 rows, a last one of 8 for N = 40);
/// otherwise (N = 40 with AVX-512, or the generic code) a sequence
/// dequantizes the rows to f32 and takes x as it is. Each runs
/// with the dot products this machine's compiler picks and, where it runs
/// them, AVX-VNNI's, AVX2's and the generic ones. K = 608 is a whole group of
/// 16 blocks and 3 more (QuantRowLayout).
using QuantLinearParam =
    std::tuple<std::pair<int64_t, int64_t>, rwkvc::DType, const char *>;

class QuantLinearTest : public ::testing::TestWithParam<QuantLinearParam> {};

/// x quantized per block of 32 as LowerQuantLinear.cpp's quantizeBlockOf.
std::vector<double> quantizedInput(const std::vector<float> &x) {
  std::vector<double> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0;
    for (size_t j = b; j < b + 32; ++j)
      amax = std::max(amax, std::fabs(x[j]));
    float d = amax * (1.0f / 127.0f);
    float inv = amax > 0 ? 127.0f / std::max(amax, 1e-30f) : 0.0f;
    for (size_t j = b; j < b + 32; ++j)
      out[j] = double(d) * std::nearbyint(x[j] * inv);
  }
  return out;
}

TEST_P(QuantLinearTest, MatchesBlockProduct) {
  auto [shape, kind, dotParam] = GetParam();
  auto [in, out] = shape;
  std::string host = mlir::rwkv::cpu::selectQuantDot("", "");
  std::string dot = *dotParam ? dotParam : host;
  if (dot == "avx2" && host == "generic")
    GTEST_SKIP() << "this machine has no AVX2";
  if (dot == "avx-vnni" && host != "avx-vnni" && host != "avx512-vnni")
    GTEST_SKIP() << "this machine has no 256-bit vpdpbusd";
  std::string name = rwkvc::dtypeName(kind).str();
  for (char &c : name)
    c = char(std::tolower(c));
  std::string wType = "tensor<" + std::to_string(out) + "x" +
                      std::to_string(in) + "x!rwkv.quant<" + name + ">>";
  auto jit = compileOrFail(substitute(R"(
rwkv.weight_decl @w : $W
func.func @f(%x: $X) -> $Y {
  %w = rwkv.weight @w : $W
  %y = rwkv.linear %x, %w : ($X, $W) -> $Y
  return %y : $Y
}
)",
                               {{"W", wType}, {"X", act(in)}, {"Y", act(out)}}),
                    dot);
  ASSERT_TRUE(jit);
  std::mt19937 rng(4000 + in * 7 + out + int(kind));
  auto w = randomVector(rng, in * out, -1, 1);
  std::vector<uint8_t> blocks(rwkvc::dtypeStorageBytes(kind, w.size()));
  rwkvc::quantizeBlocks(kind, w.data(), blocks.data(), w.size() / 32);
  ASSERT_FALSE(jit->setQuantizedWeight("w", blocks));
  rwkvc::Tensor t;
  t.dtype = kind;
  t.shape = {int64_t(w.size())};
  t.data = blocks.data();
  t.nbytes = blocks.size();
  std::vector<float> W = t.toF32();
  bool dots = dot != "generic" && out % (dot == "avx512-vnni" ? 16 : 8) == 0;
  for (const TokenRun &run : kLinearRuns) {
    int64_t T = run.tokens;
    auto x = randomVector(rng, T * in, -1, 1);
    bool quantized = run.oneKernel || dots;
    std::vector<double> xs =
        quantized ? quantizedInput(x) : std::vector<double>(x.begin(), x.end());
    std::vector<double> ref(T * out);
    for (int64_t tok = 0; tok < T; ++tok)
      for (int64_t o = 0; o < out; ++o) {
        double sum = 0;
        for (int64_t i = 0; i < in; ++i)
          sum += xs[tok * in + i] * W[o * in + i];
        ref[tok * out + o] = sum;
      }
    std::vector<float> y;
    runInChunks(*jit, {&x}, {&y}, run.chunks, run.oneKernel);
    // f32 sums of up to 608 products of O(1), the block scales' products
    // rounded to f32 once (measured <= 1.4e-6 for K <= 96; K = 608 and 224
    // pass within the same bound); the two references are 2-4e-2
    // apart, so a kernel that took the other one fails.
    EXPECT_TRUE(closeTo(cat({"linear ", name, " in=", std::to_string(in),
                             " out=", std::to_string(out), " ", run.name,
                             quantized ? " (x quantized)" : " (x as is)"}),
                        y, ref, 1e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, QuantLinearTest,
    ::testing::Combine(::testing::Values(std::pair<int64_t, int64_t>{64, 48},
                                         std::pair<int64_t, int64_t>{224, 32},
                                         std::pair<int64_t, int64_t>{64, 40},
                                         std::pair<int64_t, int64_t>{608, 32}),
                       ::testing::Values(rwkvc::DType::Q8_0, rwkvc::DType::Q4_0,
                                         rwkvc::DType::Q4_1, rwkvc::DType::Q5_0,
                                         rwkvc::DType::Q5_1),
                       ::testing::Values("", "avx-vnni", "avx2", "generic")),
    [](const auto &info) {
      const auto &io = std::get<0>(info.param);
      std::string dot = std::get<2>(info.param);
      for (char &c : dot)
        if (c == '-')
          c = '_';
      return "In" + std::to_string(io.first) + "Out" +
             std::to_string(io.second) + "_" +
             rwkvc::dtypeName(std::get<1>(info.param)).str() +
             (dot.empty() ? "" : "_" + dot);
    });

struct LoraCase {
  const char *name;
  const char *act, *outAct;
  bool bias;
  std::string type;
};

void PrintTo(const LoraCase &c, std::ostream *os) { *os << c.name; }

class LoraTest : public ::testing::TestWithParam<LoraCase> {};

TEST_P(LoraTest, MatchesFormula) {
  const LoraCase &lc = GetParam();
  const int64_t C = 40, D = 24, Cout = 40;
  std::string aType = "tensor<40x24x" + lc.type + ">", bType = "tensor<24x40x" + lc.type + ">";
  std::string source = substitute(
      std::string(R"(
rwkv.weight_decl @a : $AT
rwkv.weight_decl @b : $BT
$BIASDECL
func.func @f(%x: $X) -> $Y {
  %a = rwkv.weight @a : $AT
  %b = rwkv.weight @b : $BT
  $BIASREAD
  %y = rwkv.lora %x, %a, %b$BIAS {act = #rwkv.activation<$ACT>, out_act = #rwkv.activation<$OUT>} : ($X, $AT, $BT$BIASTYPE) -> $Y
  return %y : $Y
}
)"),
      {{"AT", aType},
       {"BT", bType},
       {"X", act(C)},
       {"Y", act(Cout)},
       {"BIASDECL", lc.bias ? "rwkv.weight_decl @bias : tensor<1x1x40xf32>" : ""},
       {"BIASREAD", lc.bias ? "%bias = rwkv.weight @bias : tensor<1x1x40xf32>" : ""},
       {"BIAS", lc.bias ? ", %bias" : ""},
       {"BIASTYPE", lc.bias ? ", tensor<1x1x40xf32>" : ""},
       {"ACT", lc.act},
       {"OUT", lc.outAct}});
  auto jit = compileOrFail(source);
  ASSERT_TRUE(jit);
  std::mt19937 rng(3500 + std::hash<std::string>()(lc.name) % 1000);
  auto a = randomVector(rng, C * D, -0.5f, 0.5f), b = randomVector(rng, D * Cout, -0.5f, 0.5f),
       bias = randomVector(rng, Cout, -1, 1);
  ASSERT_FALSE(jit->setWeight("a", a));
  ASSERT_FALSE(jit->setWeight("b", b));
  if (lc.bias)
    ASSERT_FALSE(jit->setWeight("bias", bias));
  std::vector<double> A = stored(a, lc.type), B = stored(b, lc.type);
  auto apply = [](const std::string &f, double v) {
    return f == "tanh" ? std::tanh(v) : f == "sigmoid" ? sigmoid(v) : v;
  };
  for (const TokenRun &run : kRuns) {
    int64_t T = run.tokens;
    auto x = randomVector(rng, T * C, -1, 1);
    std::vector<double> ref(T * Cout);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> h(D);
      for (int64_t d = 0; d < D; ++d) {
        double s = 0;
        for (int64_t c = 0; c < C; ++c)
          s += double(x[t * C + c]) * A[c * D + d];
        h[d] = apply(lc.act, s);
      }
      for (int64_t o = 0; o < Cout; ++o) {
        double s = lc.bias ? double(bias[o]) : 0.0;
        for (int64_t d = 0; d < D; ++d)
          s += h[d] * B[d * Cout + o];
        ref[t * Cout + o] = apply(lc.outAct, s);
      }
    }
    std::vector<float> y;
    runInChunks(*jit, {&x}, {&y}, run.chunks, run.oneKernel);
    // Two f32 products of 40 and 24 terms (~5e-6) and the polynomial
    // tanh (2e-6 absolute, then scaled by sum |B| <= 12) / sigmoid.
    EXPECT_TRUE(closeTo(cat({"lora ", lc.name, " ", run.name}), y, ref, 3e-5));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Forms, LoraTest,
    ::testing::Values(LoraCase{"tanh_none_f32", "tanh", "none", false, "f32"},
                      LoraCase{"none_sigmoid_bias_f32", "none", "sigmoid", true, "f32"},
                      LoraCase{"sigmoid_none_bias_f16", "sigmoid", "none", true, "f16"},
                      LoraCase{"none_none_bf16", "none", "none", false, "bf16"}),
    [](const auto &info) { return std::string(info.param.name); });

} // namespace
