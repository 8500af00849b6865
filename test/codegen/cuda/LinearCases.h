//===- LinearCases.h - The linear-map ops the CUDA kernel tests use -*- C++ -*-===//
//
// One case is one linear-map op in a module of its own (MLIR text), with
// its weights declared and its activations as function arguments; with a
// residual, the function adds the product to the argument %res (the add is
// what the emitter fuses: LinearContext{residual = %res, result = the add}).
// linear-kernel-gen writes the kernels of a list of cases into a .cu file
// (kernel i of case c is named lin_<c.name>_<i>); LinearKernelTest parses
// the same cases, generates the same kernels and runs them.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_TEST_CODEGEN_CUDA_LINEARCASES_H
#define RWKV_TEST_CODEGEN_CUDA_LINEARCASES_H

#include "codegen/cuda/KernelsLinear.h"

#include "rwkv/RWKVDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <cstdint>
#include <string>
#include <vector>

namespace rwkvc::cuda::test {

enum class Kind { Linear, InOut, Mix, MixRows, Gate, ReluSq, Packed, Lora };

struct LinearCase {
  std::string name; // a C identifier
  Kind kind = Kind::Linear;
  std::string type = "f16"; // the weights: f32, f16 or bf16
  std::string vecType = "f32"; // the static mixes and the bias
  int64_t k = 64, n = 64;   // lora: k = C, n = C'
  int seg = 1;              // packed: the segments
  int64_t d = 32;           // lora: the rank
  std::string act = "none", outAct = "none"; // lora
  bool bias = false;                          // lora
  bool lerp = false; // lora: the input is rwkv.lerp(a, b, t0), fused
  bool residual = false;
};

inline std::string tensor(const std::string &rows, int64_t cols,
                          const std::string &type = "f32") {
  return "tensor<" + rows + "x" + std::to_string(cols) + "x" + type + ">";
}

/// The module of a case: func @main with the op (and the residual add).
inline std::string caseModule(const LinearCase &c) {
  std::string decls, body, args, ins, types;
  auto weight = [&](const std::string &name, const std::string &type) {
    decls += "rwkv.weight_decl @" + name + " : " + type + "\n";
    body += "  %" + name + " = rwkv.weight @" + name + " : " + type + "\n";
  };
  auto arg = [&](const std::string &name, const std::string &type) {
    args += (args.empty() ? "%" : ", %") + name + ": " + type;
  };
  auto operand = [&](const std::string &name, const std::string &type) {
    ins += (ins.empty() ? "%" : ", %") + name;
    types += (types.empty() ? "" : ", ") + type;
  };
  const std::string x = tensor("?", c.k), y = tensor("?", c.n);
  std::string op, attrs, results = "%y", resultTypes = y;
  switch (c.kind) {
  case Kind::Linear:
  case Kind::ReluSq:
    arg("a", x);
    weight("w", tensor(std::to_string(c.n), c.k, c.type));
    operand("a", x);
    operand("w", tensor(std::to_string(c.n), c.k, c.type));
    op = c.kind == Kind::Linear ? "rwkv.linear" : "rwkv.relu_sq_linear";
    break;
  case Kind::InOut:
    arg("a", x);
    weight("w", tensor(std::to_string(c.k), c.n, c.type));
    operand("a", x);
    operand("w", tensor(std::to_string(c.k), c.n, c.type));
    op = "rwkv.linear";
    attrs = " {layout = #rwkv.weight_layout<in_out>}";
    break;
  case Kind::Mix:
  case Kind::MixRows:
  case Kind::Gate: {
    arg("a", x);
    arg("b", x);
    operand("a", x);
    operand("b", x);
    if (c.kind == Kind::Mix) {
      std::string t =
          "tensor<1x1x" + std::to_string(c.k) + "x" + c.vecType + ">";
      weight("t0", t);
      operand("t0", t);
    } else if (c.kind == Kind::MixRows) {
      arg("t0", x);
      operand("t0", x);
    }
    weight("w", tensor(std::to_string(c.n), c.k, c.type));
    operand("w", tensor(std::to_string(c.n), c.k, c.type));
    op = c.kind == Kind::Gate ? "rwkv.gate_linear" : "rwkv.mix_linear";
    break;
  }
  case Kind::Packed: {
    arg("a", x);
    arg("b", x);
    std::string t = "tensor<" + std::to_string(c.k) + "x" + c.vecType + ">";
    std::string mixes, mixTypes;
    results.clear();
    resultTypes.clear();
    for (int s = 0; s < c.seg; ++s) {
      std::string name = "t" + std::to_string(s);
      weight(name, t);
      mixes += (s ? ", %" : "%") + name;
      mixTypes += ", " + t;
      results += (s ? ", %y" : "%y") + std::to_string(s);
      resultTypes += (s ? ", " : "") + y;
    }
    std::string w = tensor(std::to_string(c.n * c.seg), c.k, c.type);
    weight("w", w);
    body += "  " + results + " = rwkv.packed_mix_linear %a, %b [" + mixes +
            "], %w : (" + x + ", " + x + mixTypes + ", " + w + ") -> (" +
            resultTypes + ")\n";
    return decls + "func.func @main(" + args + ") -> (" + resultTypes +
           ") {\n" + body + "  return " + results + " : " + resultTypes +
           "\n}\n";
  }
  case Kind::Lora: {
    arg("a", x);
    std::string ta = tensor(std::to_string(c.k), c.d, c.type);
    std::string tb = tensor(std::to_string(c.d), c.n, c.type);
    weight("wa", ta);
    weight("wb", tb);
    if (c.lerp) {
      arg("b", x);
      std::string t =
          "tensor<1x1x" + std::to_string(c.k) + "x" + c.vecType + ">";
      weight("t0", t);
      body += "  %x = rwkv.lerp %a, %b, %t0 : (" + x + ", " + x + ", " + t +
              ") -> " + x + "\n";
      operand("x", x);
    } else {
      operand("a", x);
    }
    operand("wa", ta);
    operand("wb", tb);
    if (c.bias) {
      std::string t =
          "tensor<1x1x" + std::to_string(c.n) + "x" + c.vecType + ">";
      weight("bias", t);
      operand("bias", t);
    }
    op = "rwkv.lora";
    attrs = " {act = #rwkv.activation<" + c.act +
            ">, out_act = #rwkv.activation<" + c.outAct + ">}";
    break;
  }
  }
  if (c.residual)
    arg("res", y);
  body += "  %y = " + op + " " + ins + attrs + " : (" + types + ") -> " + y +
          "\n";
  std::string ret = "%y";
  if (c.residual) {
    body += "  %r = rwkv.add %res, %y : (" + y + ", " + y + ") -> " + y + "\n";
    ret = "%r";
  }
  return decls + "func.func @main(" + args + ") -> " + y + " {\n" + body +
         "  return " + ret + " : " + y + "\n}\n";
}

/// A parsed case: the op and the context the emitter would give it.
struct ParsedCase {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  mlir::func::FuncOp func;
  mlir::Operation *op = nullptr;
  LinearContext ctx;
};

inline void registerDialects(mlir::MLIRContext &context) {
  context.loadDialect<mlir::rwkv::RWKVDialect, mlir::func::FuncDialect>();
}

/// Parses case `c` (null module on a parse or verifier error, reported on
/// the context's diagnostics).
inline ParsedCase parseCase(mlir::MLIRContext &context, const LinearCase &c,
                            GridDim::Source rows = GridDim::T) {
  ParsedCase p;
  p.module = mlir::parseSourceString<mlir::ModuleOp>(caseModule(c), &context);
  if (!p.module)
    return p;
  p.func = p.module->lookupSymbol<mlir::func::FuncOp>("main");
  p.func.walk([&](mlir::Operation *o) {
    if (isLinearKernelOp(o))
      p.op = o;
    if (auto add = llvm::dyn_cast<mlir::rwkv::AddOp>(o)) {
      p.ctx.residual = add.getLhs();
      p.ctx.result = add.getResult();
    }
    if (auto lerp = llvm::dyn_cast<mlir::rwkv::LerpOp>(o)) // as the emitter
      p.ctx.mixA = lerp.getA(), p.ctx.mixB = lerp.getB(),
      p.ctx.mixT = lerp.getT();
  });
  p.ctx.rows = rows;
  return p;
}

inline std::string kernelName(const LinearCase &c, size_t i) {
  return "lin_" + c.name + "_" + std::to_string(i);
}

/// Appends a case to `cases` and returns it (valid until the next append).
inline LinearCase *addCase(std::vector<LinearCase> &cases, std::string name,
                           Kind kind, std::string type, int64_t k, int64_t n) {
  LinearCase c;
  c.name = std::move(name);
  c.kind = kind;
  c.type = std::move(type);
  c.k = k;
  c.n = n;
  cases.push_back(c);
  return &cases.back();
}

/// The cases the emulator runs: small shapes with tails (N not a multiple
/// of 16, odd N, K not a multiple of 8, K above a staging chunk), every
/// transform, segments, residual, in_out and lora variants, each weight
/// type.
inline std::vector<LinearCase> emulatorCases() {
  std::vector<LinearCase> cases;
  for (std::string t : {"f32", "f16", "bf16"}) {
    auto add = [&](std::string name, Kind kind, int64_t k, int64_t n) {
      return addCase(cases, name + "_" + t, kind, t, k, n);
    };
    add("plain", Kind::Linear, 64, 64);
    add("plain_tail", Kind::Linear, 256, 130);
    add("plain_odd", Kind::Linear, 128, 77);
    add("mix", Kind::Mix, 128, 256)->vecType = t; // a mix of the weights' type
    add("mix_rows", Kind::MixRows, 96, 64);
    add("gate", Kind::Gate, 192, 64);
    add("relu_sq", Kind::ReluSq, 512, 128);
    LinearCase *p = add("packed", Kind::Packed, 128, 64);
    p->seg = 3, p->vecType = t;
    add("res", Kind::Linear, 256, 128)->residual = true;
    add("mix_res", Kind::Mix, 64, 96)->residual = true;
    add("in_out", Kind::InOut, 128, 96);
    add("in_out_res", Kind::InOut, 64, 300)->residual = true;
    LinearCase *l = add("lora", Kind::Lora, 128, 128);
    l->d = 32, l->act = "tanh", l->outAct = "sigmoid", l->bias = true,
    l->vecType = t;
    l = add("lora_plain", Kind::Lora, 64, 96);
    l->d = 64;
    // D = 48: stage 1 one thread per column (a row of A is not a power of
    // 2 of 16-byte pieces); C' = 60: f16/bf16 stage 2 one thread per column.
    l = add("lora_d48", Kind::Lora, 96, 60);
    l->d = 48, l->act = "sigmoid", l->outAct = "tanh", l->bias = true,
    l->residual = true;
  }
  // The generic paths and staging chunks, once.
  auto add = [&](std::string name, Kind kind, int64_t k, int64_t n,
                 std::string t) { return addCase(cases, name, kind, t, k, n); };
  add("odd_k_f16", Kind::Gate, 100, 40, "f16");
  add("odd_k_f32", Kind::Mix, 102, 40, "f32");
  add("chunk_f16", Kind::Mix, 2304, 24, "f16");
  add("chunk_in_out_bf16", Kind::InOut, 1100, 40, "bf16");
  LinearCase *l = add("chunk_lora_f16", Kind::Lora, 1100, 64, "f16");
  l->d = 64, l->act = "tanh";
  l = add("lora_d320_f32", Kind::Lora, 64, 66, "f32");
  l->d = 320, l->bias = true;
  l = add("lora_d128_f32", Kind::Lora, 64, 64, "f32"); // 32 threads a row of A
  l->d = 128, l->act = "sigmoid";
  // The one-row launches: 3 slices of A (C = 300, the last partial), a row
  // of A 60 pieces (the 7B gate's D), B in 16-byte pieces; then D = 96 with
  // C' = 130: B one column a thread.
  l = add("lora_d480_f16", Kind::Lora, 300, 136, "f16");
  l->d = 480, l->act = "sigmoid", l->residual = true;
  l = add("lora_d96_bf16", Kind::Lora, 200, 130, "bf16");
  l->d = 96, l->bias = true, l->outAct = "tanh";
  // The input's lerp read by the kernels (RWKV-7's w, a, v, g LoRAs), with
  // a residual, both one-row launches and the many-row kernel.
  l = add("lora_lerp_f16", Kind::Lora, 160, 96, "f16");
  l->d = 64, l->act = "tanh", l->lerp = true, l->vecType = "f16",
  l->residual = true;
  return cases;
}

/// The real shapes: every variant at C = 4096 for each weight type, and
/// the other shapes (C = 768, 2048; FFN 4C and 3.5C; LoRA D = 32, 64, 128;
/// the heads 65536 and 50277) for one half type each. Registers depend on
/// the variant, hardly on the constants: this keeps NVRTC's time small.
inline std::vector<LinearCase> realCases() {
  std::vector<LinearCase> cases;
  auto add = [&](std::string name, Kind kind, int64_t c, std::string t,
                 int64_t k, int64_t n) {
    return addCase(cases, name + "_" + std::to_string(c) + "_" + t, kind, t,
                   k, n);
  };
  auto lora = [&](int64_t c, std::string t, int64_t d) {
    LinearCase *l = add("lora" + std::to_string(d), Kind::Lora, c, t, c, c);
    l->d = d, l->act = "tanh", l->outAct = "sigmoid", l->bias = true;
  };
  for (std::string t : {"f16", "bf16", "f32"}) {
    const int64_t c = 4096;
    add("att", Kind::Linear, c, t, c, c);
    add("mix", Kind::Mix, c, t, c, c)->vecType = t;
    add("mix_rows", Kind::MixRows, c, t, c, c);
    add("ffn_key", Kind::Mix, c, t, c, 4 * c);
    add("ffn_value", Kind::ReluSq, c, t, 4 * c, c)->residual = true;
    add("out", Kind::Gate, c, t, c, c)->residual = true;
    add("rkv", Kind::Packed, c, t, c, c)->seg = 3;
    add("in_out", Kind::InOut, c, t, c, c);
    add("head", Kind::Linear, c, t, c, 65536);
    lora(c, t, 64);
  }
  add("ffn_key35", Kind::Mix, 768, "f16", 768, 2688);
  add("ffn_value35", Kind::ReluSq, 768, "f16", 2688, 768);
  add("head50277", Kind::Linear, 768, "f16", 768, 50277);
  add("head50277", Kind::Linear, 768, "bf16", 768, 50277);
  lora(768, "f16", 32);
  add("att", Kind::Linear, 2048, "bf16", 2048, 2048);
  add("ffn_key", Kind::Mix, 2048, "bf16", 2048, 8192);
  add("ffn_value35", Kind::ReluSq, 2048, "bf16", 7168, 2048);
  lora(2048, "bf16", 128);
  lora(4096, "f16", 480); // the 7B gate
  lora(4096, "bf16", 96);
  return cases;
}

} // namespace rwkvc::cuda::test

#endif // RWKV_TEST_CODEGEN_CUDA_LINEARCASES_H
