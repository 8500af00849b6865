//===- rwkv_tools.cpp - The model's description and benchmark -------------===//
//
// What the command line's --info and --bench print, as library calls:
//
//   rwkv_model_describe  descriptor + linked tokenizer --> text on a FILE *
//   rwkv_bench           N decode calls, N tokens prefilled --> times
//
// Built without exceptions; every failure is a status code plus a message.
//
//===----------------------------------------------------------------------===//

#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <chrono>
#include <vector>

#include <sys/resource.h>

namespace {

const char *initName(int32_t init) {
  switch (init) {
  case RWKV_SLOT_ZERO:
    return "zero";
  case RWKV_SLOT_NEG_LARGE:
    return "-1e30";
  case RWKV_SLOT_WEIGHT:
    return "weight";
  default:
    return "unknown";
  }
}

/// The CUDA program's images, kernels and plan, one line each image.
void describeCuda(FILE *out, const rwkv_cuda_program *p) {
  if (!p) {
    fmt::print(out, "cuda: no program (the descriptor is malformed)\n");
    return;
  }
  fmt::print(out,
             "cuda: {} kernels, {} steps, {} scratch bytes per token, "
             "dynamic shared memory up to {} bytes\n",
             p->n_kernels, p->n_steps, p->scratch_bytes_per_token,
             p->max_dynamic_shared);
  for (int32_t i = 0; p->images && i < p->n_images; ++i) {
    const rwkv_cuda_image &im = p->images[i];
    if (im.kind == RWKV_CUDA_IMAGE_EMULATOR)
      fmt::print(out, "  cuda image {}: emulator (libcuda-emu.so.1)\n", i);
    else
      fmt::print(out, "  cuda image {}: {} sm_{}, {} bytes\n", i,
                 im.kind == RWKV_CUDA_IMAGE_CUBIN ? "cubin"
                 : im.kind == RWKV_CUDA_IMAGE_PTX ? "PTX"
                                                  : "unknown",
                 im.arch, im.size);
  }
}

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

} // namespace

extern "C" {

int rwkv_model_describe(FILE *out) {
  const rwkv_model_desc &d = rwkv_model_descriptor;
  fmt::print(out, "model: {}\n", d.model_name ? d.model_name : "(unnamed)");
  fmt::print(out, "rwkv version: {}\n", d.rwkv_version ? d.rwkv_version : "?");
  fmt::print(out, "abi version: {} (runtime: {})\n", d.abi_version,
             RWKV_ABI_VERSION);
  bool cpu = d.backends & RWKV_BACKEND_CPU;
  bool cuda = d.backends & RWKV_BACKEND_CUDA;
  fmt::print(out, "backends: {}\n",
             cpu && cuda ? "cpu, cuda"
             : cpu       ? "cpu"
             : cuda      ? "cuda"
                         : "none this runtime runs");
  if (cpu)
    fmt::print(out, "cpu entries: forward_seq, forward_one, forward_all{}{}\n",
               d.entries & RWKV_ENTRY_FORWARD_PREFIX ? ", forward_prefix" : "",
               d.entries & RWKV_ENTRY_FORWARD_BATCH ? ", forward_batch" : "");
  if (cuda)
    describeCuda(out, d.cuda);
  fmt::print(out, "n_vocab: {}\nn_embd: {}\nn_layer: {}\n", d.n_vocab,
             d.n_embd, d.n_layer);
  fmt::print(out, "model hash: {:#018x}\n", d.model_hash);
  if (d.weights_embedded)
    fmt::print(out, "weights: {} bytes, embedded\n", d.weights_bytes);
  else
    fmt::print(out,
               "weights: {} bytes, in the file '{}' beside the executable\n",
               d.weights_bytes, d.weights_file ? d.weights_file : "");
  fmt::print(out, "state: {} floats ({} bytes), {} slots\n", d.state_floats,
             d.state_floats * 4, d.n_slots);
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &s = d.slots[i];
    fmt::print(out, "  {:<32} offset {:<10} size {:<10} init {}",
               s.name ? s.name : "?", s.offset, s.size, initName(s.init));
    if (s.init == RWKV_SLOT_WEIGHT)
      fmt::print(out, " (weight byte {})", s.init_weight_offset);
    fmt::print(out, "\n");
  }
  char err[512];
  rwkv_tokenizer *tok = rwkv_tokenizer_open_linked(
      size_t(d.n_vocab > 0 ? d.n_vocab : 0), err, sizeof err);
  if (tok)
    fmt::print(out, "tokenizer: {}, {} tokens, end of text {}\n",
               rwkv_tokenizer_kind(tok), rwkv_tokenizer_n_tokens(tok),
               rwkv_tokenizer_eos(tok));
  else
    fmt::print(out, "tokenizer: none ({})\n", err);
  rwkv_tokenizer_close(tok);
  return ferror(out) ? RWKV_ERROR_IO : RWKV_OK;
}

int rwkv_bench(const rwkv_model *model, uint64_t n, size_t chunk,
               rwkv_bench_result *r, char *err, size_t errlen) {
  if (!model || !r || n == 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_bench: null model or result, or no tokens");
  *r = rwkv_bench_result{};
  r->n_tokens = n;
  r->chunk = chunk;
  const size_t vocab = rwkv_n_vocab(model);
  rwkv_state *st = rwkv_state_new(model, err, errlen);
  if (!st)
    return RWKV_ERROR_MODEL;
  std::vector<float> logits(vocab);
  int status = RWKV_OK;
  auto eval = [&](const int32_t *ids, size_t count, int mode, size_t c) {
    if (status == RWKV_OK)
      status = rwkv_state_eval(st, ids, count, logits.data(), mode, c, err,
                               errlen);
    return status == RWKV_OK;
  };
  auto total0 = Clock::now();

  // Decode: one token at a time, each the argmax of the previous logits.
  int32_t tok = 0;
  eval(&tok, 1, RWKV_EVAL_RNN, 0); // warm-up
  rwkv_state_clear(st);
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n && eval(&tok, 1, RWKV_EVAL_RNN, 0); ++i) {
    size_t best = 0;
    for (size_t v = 1; v < vocab; ++v)
      if (logits[v] > logits[best])
        best = v;
    tok = int32_t(best);
  }
  r->decode_ms = msSince(t0);

  // Prefill: n tokens (i % n_vocab) in chunks of the default size, then of
  // `chunk`.
  std::vector<int32_t> tokens(n);
  for (uint64_t i = 0; i < n; ++i)
    tokens[i] = int32_t(i % vocab);
  rwkv_state_clear(st);
  eval(tokens.data(), n < 16 ? n : 16, RWKV_EVAL_SEQ, 0); // warm-up
  rwkv_state_clear(st);
  t0 = Clock::now();
  eval(tokens.data(), n, RWKV_EVAL_SEQ, 0);
  r->prefill_ms = msSince(t0);
  if (chunk != 0) {
    rwkv_state_clear(st);
    t0 = Clock::now();
    eval(tokens.data(), n, RWKV_EVAL_SEQ, chunk);
    r->prefill_chunk_ms = msSince(t0);
  }
  r->total_ms = msSince(total0);
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    r->peak_rss_kib = uint64_t(ru.ru_maxrss);
  rwkv_state_free(st);
  return status;
}

} // extern "C"
