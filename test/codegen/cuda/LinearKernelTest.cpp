//===- LinearKernelTest.cpp - The CUDA linear-map kernels, without a GPU --===//
//
//   LinearGenerator.*  what generateLinearKernels binds and launches (When,
//                      rows, params, the residual's alias), what it refuses
//   Linear/Emulator.*  every case of emulatorCases() (LinearCases.h),
//                      compiled into this test as host C++ (linear-emu.cu,
//                      written at build time by linear-kernel-gen) and run
//                      by the emulator's scheduler in the forward, reverse
//                      and random schedules, for 1, 3, 17 and 70 rows,
//                      against a double reference
//   LinearNVRTC.*      the kernels of realCases() (linear-real.cu) through
//                      NVRTC for sm_80 and sm_90: no spills, <= 255
//                      registers; skipped without libnvrtc
//
// Tolerances (max-abs, per output): a length-K dot product summed in f32 in
// any order is within gamma_K * sum_k |w_k x_k| of the exact one, gamma_K =
// K * 2^-24 (Higham, "Accuracy and Stability of Numerical Algorithms",
// 3.1); the reference computes the input transform in float exactly as the
// kernel does (-ffp-contract=off on both sides, the emulator's __expf is
// libm's expf) and, where the kernel rounds the input to f16/bf16 for the
// tensor cores, rounds it the same way, so everything else is exact in
// double. A residual adds one f32 rounding (2^-24 |y|). LoRA adds the first
// product's bound, carried through B (the activations are 1-Lipschitz),
// and a few ulp for tanhf/expf.
//
//===----------------------------------------------------------------------===//

#include "LinearCases.h"

#include "codegen/cuda/NVRTC.h"

#include "Scheduler.h"
#include "rwkv_cuda_emu_half.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseMap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <random>
#include <sstream>

extern "C" const rwkv_emu_module rwkv_linear_test_module;

using namespace rwkvc::cuda;
using namespace rwkvc::cuda::test;
using rwkv_emu::Order;
using rwkv_emu::Schedule;

namespace {

constexpr double kU = 1.0 / (1 << 24); // f32 unit roundoff

// --- Host buffers -------------------------------------------------------------

struct Host {
  ElemType type = ElemType::F32;
  std::vector<float> f32;     // F32 storage
  std::vector<uint16_t> half; // F16/BF16 storage
  size_t size() const { return type == ElemType::F32 ? f32.size() : half.size(); }
  double at(size_t i) const {
    if (type == ElemType::F32)
      return f32[i];
    return type == ElemType::F16 ? rwkv_emu::f16_to_f32(half[i])
                                 : rwkv_emu::bf16_to_f32(half[i]);
  }
  void *data() {
    return type == ElemType::F32 ? static_cast<void *>(f32.data())
                                 : static_cast<void *>(half.data());
  }
};

ElemType elemTypeOf(mlir::Value v) {
  mlir::Type t = llvm::cast<mlir::ShapedType>(v.getType()).getElementType();
  return t.isF16() ? ElemType::F16 : t.isBF16() ? ElemType::BF16 : ElemType::F32;
}

Host random(ElemType type, size_t n, double lo, double hi, std::mt19937 &rng) {
  std::uniform_real_distribution<float> uni{float(lo), float(hi)};
  Host h;
  h.type = type;
  for (size_t i = 0; i < n; ++i) {
    float f = uni(rng);
    if (type == ElemType::F32)
      h.f32.push_back(f);
    else
      h.half.push_back(type == ElemType::F16 ? rwkv_emu::f32_to_f16(f)
                                             : rwkv_emu::f32_to_bf16(f));
  }
  return h;
}

/// The rounding the tensor-core GEMM applies to its input.
float roundTo(ElemType t, float x) {
  if (t == ElemType::F16)
    return rwkv_emu::f16_to_f32(rwkv_emu::f32_to_f16(x));
  if (t == ElemType::BF16)
    return rwkv_emu::bf16_to_f32(rwkv_emu::f32_to_bf16(x));
  return x;
}

float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

float act(const std::string &a, float x) {
  if (a == "tanh")
    return tanhf(x);
  if (a == "sigmoid")
    return sigmoidf(x);
  return x;
}

// --- One case: buffers, launches, reference ------------------------------------

struct Outcome {
  std::vector<std::vector<float>> y; // per segment, rows x N
};

class CaseRun {
public:
  CaseRun(const LinearCase &c, ParsedCase &p, int64_t rows, unsigned seed)
      : c(c), rows(rows) {
    std::mt19937 rng(seed);
    // The function's arguments, in caseModule's order.
    std::vector<std::string> names = {"a"};
    if (c.kind == Kind::Mix || c.kind == Kind::MixRows ||
        c.kind == Kind::Gate || c.kind == Kind::Packed ||
        (c.kind == Kind::Lora && c.lerp))
      names.push_back("b");
    if (c.kind == Kind::MixRows)
      names.push_back("t0");
    if (c.residual)
      names.push_back("res");
    auto args = p.func.getArguments();
    for (size_t i = 0; i < names.size(); ++i) {
      int64_t cols = llvm::cast<mlir::ShapedType>(args[i].getType()).getDimSize(1);
      bool mix = names[i] == "t0";
      byName[names[i]] = random(ElemType::F32, size_t(rows * cols),
                                mix ? 0.0 : -1.0, 1.0, rng);
      byValue[args[i]] = names[i];
    }
    p.func.walk([&](mlir::rwkv::WeightOp w) {
      std::string name = w.getName().str();
      auto type = llvm::cast<mlir::ShapedType>(w.getType());
      double scale = name == "wa" ? 2.0 / std::sqrt(double(c.k)) : 1.0;
      bool mix = name[0] == 't';
      byName[name] = random(elemTypeOf(w.getResult()),
                            size_t(type.getNumElements()),
                            mix ? 0.0 : -scale, scale, rng);
      byValue[w.getResult()] = name;
    });
    // Outputs: NaN, so that an element never written fails.
    std::vector<mlir::Value> outs;
    if (p.ctx.residual)
      outs.push_back(p.ctx.result);
    else
      outs.assign(p.op->result_begin(), p.op->result_end());
    for (size_t s = 0; s < outs.size(); ++s) {
      std::string name = "y" + std::to_string(s);
      Host h;
      h.f32.assign(size_t(rows * c.n), std::nanf(""));
      byName[name] = h;
      byValue[outs[s]] = name;
    }
  }

  /// Runs `kernels` (named `names` in the module) one after another in
  /// `schedule`, their temporaries (ParamRole::Temp) filled with NaN first;
  /// with `inPlace`, the output is the residual's buffer.
  std::string launch(const std::vector<const KernelText *> &kernels,
                     const std::vector<std::string> &names, Schedule schedule,
                     bool inPlace) {
    for (auto &[n, h] : byName)
      if (n[0] == 'y')
        std::fill(h.f32.begin(), h.f32.end(), std::nanf(""));
    if (inPlace)
      byName["y0"].f32 = byName["res"].f32;
    temps.clear();
    for (const KernelText *k : kernels)
      for (const Param &prm : k->params)
        if (prm.role == ParamRole::Temp)
          temps[prm.temp].assign(size_t(rows * prm.tempBytes / 4),
                                 std::nanf(""));
    for (size_t i = 0; i < kernels.size(); ++i)
      if (std::string failure =
              launchOne(*kernels[i], names[i], schedule, inPlace);
          !failure.empty())
        return "kernel " + names[i] + ": " + failure;
    return "";
  }

  /// Runs `kernel` (named `name` in the module) in `schedule`.
  std::string launchOne(const KernelText &kernel, const std::string &name,
                        Schedule schedule, bool inPlace) {
    const rwkv_emu_kernel *k = nullptr;
    for (uint32_t i = 0; i < rwkv_linear_test_module.kernel_count; ++i)
      if (name == rwkv_linear_test_module.kernels[i].name)
        k = &rwkv_linear_test_module.kernels[i];
    if (!k)
      return "no kernel " + name;
    if (k->param_count != kernel.params.size())
      return "param count " + std::to_string(k->param_count) +
             " != " + std::to_string(kernel.params.size());
    std::vector<uint64_t> slots;
    for (const Param &prm : kernel.params) {
      uint64_t v = 0;
      if (prm.role == ParamRole::NRows) {
        v = uint64_t(rows);
      } else if (prm.role == ParamRole::Temp) {
        v = uint64_t(reinterpret_cast<uintptr_t>(temps[prm.temp].data()));
      } else if (prm.role == ParamRole::Input ||
                 prm.role == ParamRole::Output ||
                 prm.role == ParamRole::Weight) {
        auto it = byValue.find(prm.value);
        if (it == byValue.end())
          return "a param bound to an unknown value";
        std::string n = it->second;
        if (inPlace && n == "res")
          n = "y0";
        v = uint64_t(reinterpret_cast<uintptr_t>(byName[n].data()));
      } else {
        return "unexpected param role";
      }
      slots.push_back(v);
    }
    std::vector<void *> params;
    for (uint64_t &s : slots)
      params.push_back(&s);
    auto dim = [&](const GridDim &g) {
      int64_t n = g.source == GridDim::One ? 1 : (rows + g.per - 1) / g.per;
      return unsigned(g.count * n);
    };
    rwkv_emu::LaunchParams lp;
    lp.kernel = k;
    lp.grid = {dim(kernel.shape.grid[0]), dim(kernel.shape.grid[1]),
               dim(kernel.shape.grid[2])};
    lp.block = {kernel.shape.block[0], kernel.shape.block[1],
                kernel.shape.block[2]};
    lp.dynamicSharedBytes = kernel.shape.dynamicShared;
    lp.params = params.data();
    lp.schedule = schedule;
    std::string report;
    if (!rwkv_emu::runGrid(lp, report))
      return report.empty() ? "launch failed" : report;
    return "";
  }

  /// Compares the outputs with the reference; `roundX`: the kernel rounds
  /// its input to the weight type (the tensor-core GEMM). Empty if within
  /// the tolerance, else the worst element.
  std::string check(bool roundX) {
    const Host &a = byName["a"];
    std::vector<float> x(size_t(c.k));
    double worst = 0, worstTol = 0;
    std::string where;
    auto compare = [&](size_t s, int64_t r, int64_t n, double ref, double tol) {
      float got = byName["y" + std::to_string(s)].f32[size_t(r * c.n + n)];
      double err = std::fabs(double(got) - ref);
      if (!(err <= tol) && (where.empty() || err / tol > worst / worstTol)) {
        worst = err, worstTol = tol;
        std::ostringstream os;
        os << "segment " << s << " row " << r << " column " << n << ": got "
           << got << ", want " << ref << " (max-abs error " << err
           << " > tolerance " << tol << ")";
        where = os.str();
      }
    };
    auto residual = [&](int64_t r, int64_t n, double &ref, double &tol) {
      if (!c.residual)
        return;
      ref += byName["res"].f32[size_t(r * c.n + n)];
      tol += kU * std::fabs(ref);
    };
    if (c.kind == Kind::Lora) {
      const Host &A = byName["wa"], &B = byName["wb"];
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> h(size_t(c.d)), hTol(size_t(c.d));
        auto input = [&](int64_t k) { // a, or the fused lerp's a + (b - a) t
          size_t i = size_t(r * c.k + k);
          float av = a.f32[i];
          if (!c.lerp)
            return av;
          float bv = byName["b"].f32[i], tv = float(byName["t0"].at(size_t(k)));
          return av + (bv - av) * tv;
        };
        for (int64_t j = 0; j < c.d; ++j) {
          double s = 0, scale = 0;
          for (int64_t k = 0; k < c.k; ++k) {
            double p = input(k) * A.at(size_t(k * c.d + j));
            s += p, scale += std::fabs(p);
          }
          h[j] = act(c.act, float(s));
          hTol[j] = c.k * kU * scale + 4 * kU * (std::fabs(h[j]) + 1);
        }
        for (int64_t n = 0; n < c.n; ++n) {
          double s = c.bias ? byName["bias"].at(size_t(n)) : 0, scale = 0,
                 carried = 0;
          for (int64_t j = 0; j < c.d; ++j) {
            double w = B.at(size_t(j * c.n + n));
            s += h[j] * w, scale += std::fabs(h[j] * w);
            carried += hTol[j] * std::fabs(w);
          }
          double ref = act(c.outAct, float(s));
          double tol = (c.d + 1) * kU * (scale + std::fabs(s)) + carried +
                       4 * kU * (std::fabs(ref) + 1);
          residual(r, n, ref, tol);
          compare(0, r, n, ref, tol);
        }
      }
      return where;
    }
    if (c.kind == Kind::InOut) {
      const Host &w = byName["w"];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t n = 0; n < c.n; ++n) {
          double s = 0, scale = 0;
          for (int64_t k = 0; k < c.k; ++k) {
            double p = a.f32[size_t(r * c.k + k)] * w.at(size_t(k * c.n + n));
            s += p, scale += std::fabs(p);
          }
          double tol = c.k * kU * scale;
          residual(r, n, s, tol);
          compare(0, r, n, s, tol);
        }
      return where;
    }
    const Host &w = byName["w"];
    const ElemType wt = w.type;
    const int segs = c.kind == Kind::Packed ? c.seg : 1;
    for (int s = 0; s < segs; ++s) {
      const Host *t = nullptr;
      if (c.kind == Kind::Mix || c.kind == Kind::MixRows)
        t = &byName["t0"];
      if (c.kind == Kind::Packed)
        t = &byName["t" + std::to_string(s)];
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < c.k; ++k) {
          size_t i = size_t(r * c.k + k);
          float av = a.f32[i], v = av;
          switch (c.kind) {
          case Kind::Mix:
          case Kind::Packed:
          case Kind::MixRows: {
            float bv = byName["b"].f32[i];
            float tv = float(t->at(c.kind == Kind::MixRows ? i : size_t(k)));
            v = av + (bv - av) * tv;
            break;
          }
          case Kind::Gate:
            v = sigmoidf(av) * byName["b"].f32[i];
            break;
          case Kind::ReluSq: {
            float m = std::max(av, 0.0f);
            v = m * m;
            break;
          }
          default:
            break;
          }
          x[size_t(k)] = roundX ? roundTo(wt, v) : v;
        }
        for (int64_t n = 0; n < c.n; ++n) {
          double sum = 0, scale = 0;
          size_t row = size_t((s * c.n + n) * c.k);
          for (int64_t k = 0; k < c.k; ++k) {
            double p = double(x[size_t(k)]) * w.at(row + size_t(k));
            sum += p, scale += std::fabs(p);
          }
          double tol = c.k * kU * scale;
          residual(r, n, sum, tol);
          compare(size_t(s), r, n, sum, tol);
        }
      }
    }
    return where;
  }

private:
  const LinearCase &c;
  int64_t rows;
  std::map<std::string, Host> byName;
  llvm::DenseMap<mlir::Value, std::string> byValue;
  std::map<int, std::vector<float>> temps;
};

/// The kernel names linear-kernel-gen gave: lin_<case>_<i>, identical
/// definitions under the first name.
const std::map<std::string, std::string> &emulatorNames() {
  static const std::map<std::string, std::string> names = [] {
    std::map<std::string, std::string> byDef, out;
    mlir::MLIRContext context;
    registerDialects(context);
    for (const LinearCase &c : emulatorCases()) {
      ParsedCase p = parseCase(context, c);
      auto kernels = generateLinearKernels(p.op, p.ctx);
      if (!kernels) {
        llvm::consumeError(kernels.takeError());
        continue;
      }
      for (size_t i = 0; i < kernels->size(); ++i) {
        auto [it, fresh] =
            byDef.emplace((*kernels)[i].definition, kernelName(c, i));
        out[kernelName(c, i)] = it->second;
      }
    }
    return out;
  }();
  return names;
}

// --- Emulator ------------------------------------------------------------------

class Emulator : public ::testing::TestWithParam<LinearCase> {};

TEST_P(Emulator, MatchesDoubleReference) {
  const LinearCase &c = GetParam();
  mlir::MLIRContext context;
  registerDialects(context);
  ParsedCase p = parseCase(context, c);
  ASSERT_TRUE(p.op) << caseModule(c);
  auto kernels = generateLinearKernels(p.op, p.ctx);
  ASSERT_TRUE(bool(kernels)) << llvm::toString(kernels.takeError());
  // The one-row launches (a LoRA has two), then the many-row one.
  std::vector<const KernelText *> sets[2];
  std::vector<std::string> names[2];
  for (size_t i = 0; i < kernels->size(); ++i) {
    When w = (*kernels)[i].when;
    size_t set = w == When::TOne || w == When::ROne ? 0 : 1;
    sets[set].push_back(&(*kernels)[i]);
    names[set].push_back(emulatorNames().at(kernelName(c, i)));
  }
  ASSERT_EQ(sets[0].size(), c.kind == Kind::Lora ? 2u : 1u);
  ASSERT_EQ(sets[1].size(), 1u);
  const bool halfGemm = c.type != "f32" && c.kind != Kind::InOut &&
                        c.kind != Kind::Lora;
  const std::vector<Schedule> schedules = {
      {Order::Forward, 0}, {Order::Reverse, 0}, {Order::Random, 7}};
  for (size_t i = 0; i < 2; ++i) {
    // The one-row variant is also correct (if slower) for more rows.
    std::vector<int64_t> rowCounts =
        i == 0 ? std::vector<int64_t>{1, 3}
               : std::vector<int64_t>{1, 3, 17, 70};
    for (int64_t rows : rowCounts) {
      CaseRun run(c, p, rows, unsigned(rows * 31 + i));
      for (size_t si = 0; si < schedules.size(); ++si) {
        const Schedule &s = schedules[si];
        bool inPlace = c.residual && si == 1;
        std::string failure = run.launch(sets[i], names[i], s, inPlace);
        ASSERT_EQ(failure, "") << "kernel " << i << ", " << rows << " rows, "
                               << rwkv_emu::toString(s);
        EXPECT_EQ(run.check(/*roundX=*/halfGemm && i == 1), "")
            << "kernel " << i << ", " << rows << " rows, "
            << rwkv_emu::toString(s) << (inPlace ? ", in place" : "");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Linear, Emulator, ::testing::ValuesIn(emulatorCases()),
    [](const ::testing::TestParamInfo<LinearCase> &info) {
      return info.param.name;
    });

// --- Generator -------------------------------------------------------------------

TEST(LinearGenerator, VariantsParamsAndAlias) {
  mlir::MLIRContext context;
  registerDialects(context);
  LinearCase c;
  c.kind = Kind::Mix;
  c.k = 256, c.n = 128, c.residual = true;
  ParsedCase p = parseCase(context, c, GridDim::R);
  ASSERT_TRUE(p.op);
  auto kernels = generateLinearKernels(p.op, p.ctx);
  ASSERT_TRUE(bool(kernels)) << llvm::toString(kernels.takeError());
  ASSERT_EQ(kernels->size(), 2u);
  EXPECT_EQ((*kernels)[0].when, When::ROne);
  EXPECT_EQ((*kernels)[1].when, When::RMany);
  for (const KernelText &k : *kernels) {
    // rows, a, b, t0, W, residual, out
    ASSERT_EQ(k.params.size(), 7u);
    EXPECT_EQ(k.params[0].role, ParamRole::NRows);
    EXPECT_EQ(k.params[1].role, ParamRole::Input);
    EXPECT_EQ(k.params[2].role, ParamRole::Input);
    EXPECT_EQ(k.params[3].role, ParamRole::Weight); // the mix
    EXPECT_EQ(k.params[4].role, ParamRole::Weight);
    EXPECT_EQ(k.params[5].role, ParamRole::Input);
    EXPECT_EQ(k.params[5].value, p.ctx.residual);
    EXPECT_EQ(k.params[6].role, ParamRole::Output);
    EXPECT_EQ(k.params[6].value, p.ctx.result);
    EXPECT_EQ(k.params[6].aliasOf, 5);
    EXPECT_EQ(k.shape.grid[1].source, GridDim::R);
    EXPECT_NE(k.definition.find(kKernelName.str()), std::string::npos);
  }
  EXPECT_EQ((*kernels)[1].shape.grid[1].per, 64);
}

TEST(LinearGenerator, Refuses) {
  mlir::MLIRContext context;
  registerDialects(context);
  context.getDiagEngine().registerHandler([](mlir::Diagnostic &) {});
  LinearCase c;
  c.kind = Kind::Packed;
  c.seg = 2;
  ParsedCase p = parseCase(context, c);
  ASSERT_TRUE(p.op);
  // A residual on an op with two results.
  LinearContext ctx;
  ctx.residual = p.func.getArgument(0);
  ctx.result = p.func.getArgument(1);
  auto kernels = generateLinearKernels(p.op, ctx);
  ASSERT_FALSE(bool(kernels));
  EXPECT_NE(llvm::toString(kernels.takeError()).find("one result"),
            std::string::npos);
  // Not a linear map.
  auto notLinear = generateLinearKernels(p.func, LinearContext{});
  ASSERT_FALSE(bool(notLinear));
  llvm::consumeError(notLinear.takeError());
}

// --- NVRTC -----------------------------------------------------------------------

TEST(LinearNVRTC, RealShapesNoSpills) {
  auto version = nvrtcVersion();
  if (!version)
    GTEST_SKIP() << "no NVRTC: " << llvm::toString(version.takeError());
  std::ifstream in(LINEAR_REAL_CU);
  ASSERT_TRUE(in.good()) << LINEAR_REAL_CU;
  std::stringstream text;
  text << in.rdbuf();
  std::string source = text.str();
  // sm_80 and sm_90 at the same time (NVRTC is thread-safe per program).
  auto compile = [&](std::string arch) {
    CompileOptions options;
    options.realArchs = {arch};
    options.ptxArch = "";
    options.extraOptions = {"-I" RWKV_CUDA_EMU_INCLUDE_DIR};
    return compileCUDA(source, "linear-real.cu", options);
  };
  auto sm80 = std::async(std::launch::async, compile, "sm_80");
  auto sm90 = compile("sm_90");
  auto r80 = sm80.get();
  ASSERT_TRUE(bool(r80)) << llvm::toString(r80.takeError());
  ASSERT_TRUE(bool(sm90)) << llvm::toString(sm90.takeError());
  std::vector<KernelReport> reports = r80->reports;
  reports.insert(reports.end(), sm90->reports.begin(), sm90->reports.end());
  EXPECT_EQ(llvm::toString(checkKernelResources(reports)), "");
  size_t kernels = 0;
  for (size_t at = source.find("extern \"C\" __global__"); at != std::string::npos;
       at = source.find("extern \"C\" __global__", at + 1))
    ++kernels;
  EXPECT_EQ(reports.size(), 2 * kernels);
  std::ostringstream table;
  for (const KernelReport &r : reports)
    if (r.arch == "sm_90")
      table << "  " << r.kernel << ": " << r.registers << " registers, "
            << r.sharedBytes << " bytes shared\n";
  std::cout << "sm_90 (" << sm90->reports.size() << " kernels):\n"
            << table.str();
}

} // namespace
