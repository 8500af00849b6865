//===- main.cpp - The command line of a compiled model --------------------===//
//
// main() of every executable rwkvc builds: `NAME [options]` runs the model
// linked beside it on token ids, saves/loads states, benchmarks, and prints
// the descriptor. Options are parsed by hand (no LLVM in compiled models);
// docs/runtime.md lists them and must stay true to the usage text below.
//
// Exit status: 0 success, 1 a runtime error (weights, state files, I/O),
// 2 a command-line error (unknown option, bad or out-of-range value).
//
//===----------------------------------------------------------------------===//

#include "rwkv_runtime.h"

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sys/resource.h>

namespace {

const char *progName = "model";

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

/// Prints "NAME: error: MESSAGE" to stderr, then `hint` if not null.
__attribute__((format(printf, 1, 0))) void report(const char *fmt, va_list ap,
                                                  const char *hint) {
  fprintf(stderr, "%s: error: ", progName);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  if (hint)
    fprintf(stderr, hint, progName);
}

/// Prints a runtime error.
__attribute__((format(printf, 1, 2))) void error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap, nullptr);
  va_end(ap);
}

/// Prints a command-line error with a hint and returns the usage status.
__attribute__((format(printf, 1, 2))) int usageError(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(fmt, ap, "(run '%s --help' for the options)\n");
  va_end(ap);
  return kExitUsage;
}

void printHelp() {
  printf(
      "usage: %s [options]\n"
      "\n"
      "Runs the RWKV model compiled into this executable on token ids.\n"
      "\n"
      "options:\n"
      "  --tokens LIST       the prompt as comma-separated token ids, e.g.\n"
      "                      --tokens 34,105,110 (each in 0..n_vocab-1)\n"
      "  --logits-out FILE   write the logits after the last token to FILE\n"
      "                      as n_vocab raw little-endian float32 values\n"
      "  --print-logits      print the logits after the last token, one per\n"
      "                      line (%%.6f)\n"
      "  --mode rnn|seq      rnn: one token at a time (forward_one);\n"
      "                      seq: chunks of tokens (forward_seq); default seq\n"
      "  --chunk N           seq mode: at most N tokens per forward_seq call\n"
      "                      (default 0: the whole prompt at once)\n"
      "  --state-in FILE     start from the state saved in FILE instead of\n"
      "                      the initial state\n"
      "  --state-out FILE    save the state after the tokens to FILE\n"
      "  --bench [N]         measure decode tokens/s (N tokens one at a time,\n"
      "                      each the argmax of the last logits) and prefill\n"
      "                      tokens/s (N tokens in one chunk, and in chunks\n"
      "                      of --chunk if given); print the times and the\n"
      "                      peak memory; default N = 512\n"
      "  --info              print the model's descriptor: versions, sizes,\n"
      "                      hash, weights, state slots\n"
      "  --help              print this help\n"
      "\n"
      "Options taking a value accept --opt VALUE and --opt=VALUE.\n"
      "Exit status: 0 success, 1 runtime error, 2 command-line error.\n",
      progName);
}

/// Parses a non-negative decimal integer (the whole string).
bool parseUnsigned(const std::string &s, uint64_t &out) {
  if (s.empty() || s.size() > 19)
    return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return false;
    v = v * 10 + uint64_t(c - '0');
  }
  out = v;
  return true;
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

struct Options {
  bool haveTokens = false;
  std::vector<int64_t> tokens; // checked against n_vocab once known
  std::string logitsOut;
  bool printLogits = false;
  int mode = RWKV_EVAL_SEQ;
  uint64_t chunk = 0;
  bool chunkGiven = false;
  std::string stateIn, stateOut;
  bool bench = false;
  uint64_t benchTokens = 512;
  bool info = false;
  bool help = false;
};

/// Parses --tokens' list. Returns false after printing the error.
bool parseTokens(const std::string &list, std::vector<int64_t> &out) {
  size_t start = 0, item = 1;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string text = trim(list.substr(start, comma - start));
    bool negative = !text.empty() && text[0] == '-';
    uint64_t v;
    if (!parseUnsigned(negative ? text.substr(1) : text, v) ||
        v > uint64_t(INT32_MAX)) {
      usageError("--tokens: item %zu, '%s', is not a token id (expected "
                 "comma-separated integers like 34,105,110)",
                 item, text.c_str());
      return false;
    }
    out.push_back(negative ? -int64_t(v) : int64_t(v));
    if (comma == std::string::npos)
      return true;
    start = comma + 1;
    ++item;
  }
}

/// Parses argv into `o`. Returns -1 to go on, else the exit status.
int parseArgs(int argc, char **argv, Options &o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0)
      return usageError("unexpected argument '%s' (text prompts are not "
                        "supported yet: give token ids with --tokens)",
                        arg.c_str());
    std::string name = arg, value;
    bool inlineValue = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inlineValue = true;
    }
    bool takesValue = name == "--tokens" || name == "--logits-out" ||
                      name == "--mode" || name == "--chunk" ||
                      name == "--state-in" || name == "--state-out";
    bool isFlag = name == "--print-logits" || name == "--info" ||
                  name == "--help" || name == "--bench";
    if (!takesValue && !isFlag)
      return usageError("unknown option '%s'", name.c_str());
    if (takesValue && !inlineValue) {
      if (i + 1 >= argc)
        return usageError("%s needs a value", name.c_str());
      value = argv[++i];
    }
    if (inlineValue && isFlag && name != "--bench")
      return usageError("%s takes no value", name.c_str());

    if (name == "--tokens") {
      o.tokens.clear();
      if (!parseTokens(value, o.tokens))
        return kExitUsage;
      o.haveTokens = true;
    } else if (name == "--logits-out") {
      o.logitsOut = value;
    } else if (name == "--mode") {
      if (value == "rnn")
        o.mode = RWKV_EVAL_RNN;
      else if (value == "seq")
        o.mode = RWKV_EVAL_SEQ;
      else
        return usageError("--mode: '%s' is not rnn or seq", value.c_str());
    } else if (name == "--chunk") {
      if (!parseUnsigned(value, o.chunk))
        return usageError("--chunk: '%s' is not a non-negative integer",
                          value.c_str());
      o.chunkGiven = true;
    } else if (name == "--state-in") {
      o.stateIn = value;
    } else if (name == "--state-out") {
      o.stateOut = value;
    } else if (name == "--bench") {
      o.bench = true;
      // The count is optional: --bench=N, or --bench N when N is a number.
      if (!inlineValue && i + 1 < argc && argv[i + 1][0] >= '0' &&
          argv[i + 1][0] <= '9') {
        value = argv[++i];
        inlineValue = true;
      }
      if (inlineValue &&
          (!parseUnsigned(value, o.benchTokens) || o.benchTokens == 0))
        return usageError("--bench: '%s' is not a positive integer",
                          value.c_str());
    } else if (name == "--print-logits") {
      o.printLogits = true;
    } else if (name == "--info") {
      o.info = true;
    } else if (name == "--help") {
      o.help = true;
    }
  }
  return -1;
}

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

void printInfo(const rwkv_model_desc &d) {
  printf("model: %s\n", d.model_name ? d.model_name : "(unnamed)");
  printf("rwkv version: %s\n", d.rwkv_version ? d.rwkv_version : "?");
  printf("abi version: %u (runtime: %u)\n", d.abi_version,
         unsigned(RWKV_ABI_VERSION));
  printf("n_vocab: %" PRId64 "\nn_embd: %" PRId64 "\nn_layer: %" PRId64 "\n",
         d.n_vocab, d.n_embd, d.n_layer);
  printf("model hash: 0x%016" PRIx64 "\n", d.model_hash);
  if (d.weights_embedded)
    printf("weights: %" PRId64 " bytes, embedded\n", d.weights_bytes);
  else
    printf("weights: %" PRId64 " bytes, in the file '%s' beside the "
           "executable\n",
           d.weights_bytes, d.weights_file ? d.weights_file : "");
  printf("state: %" PRId64 " floats (%" PRId64 " bytes), %" PRId64 " slots\n",
         d.state_floats, d.state_floats * 4, d.n_slots);
  for (int64_t i = 0; i < d.n_slots; ++i) {
    const rwkv_state_slot &s = d.slots[i];
    printf("  %-32s offset %-10" PRId64 " size %-10" PRId64 " init %s",
           s.name ? s.name : "?", s.offset, s.size, initName(s.init));
    if (s.init == RWKV_SLOT_WEIGHT)
      printf(" (weight byte %" PRId64 ")", s.init_weight_offset);
    printf("\n");
  }
}

bool writeLogits(const std::string &path, const std::vector<float> &logits) {
  FILE *f = fopen(path.c_str(), "wb");
  if (!f) {
    error("cannot write the logits to '%s': %s", path.c_str(), strerror(errno));
    return false;
  }
  size_t n = fwrite(logits.data(), sizeof(float), logits.size(), f);
  int e = errno;
  if (fclose(f) != 0 || n != logits.size()) {
    error("cannot write the logits to '%s': %s", path.c_str(), strerror(e));
    return false;
  }
  return true;
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - t0)
      .count();
}

void printRate(const char *what, uint64_t n, double ms) {
  printf("%s: %.1f tokens/s (%" PRIu64 " tokens, %.1f ms)\n", what,
         ms > 0 ? double(n) * 1000.0 / ms : 0.0, n, ms);
}

size_t argmax(const std::vector<float> &v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best])
      best = i;
  return best;
}

/// --bench: decode and prefill throughput from the initial state.
int bench(const rwkv_model *m, const Options &o) {
  using clock = std::chrono::steady_clock;
  const uint64_t n = o.benchTokens;
  const size_t vocab = rwkv_n_vocab(m);
  const uint8_t *w = rwkv_model_weights(m);
  std::vector<float> state(rwkv_state_size(m) / sizeof(float));
  std::vector<float> logits(vocab);
  char err[512];
  auto total0 = clock::now();

  // Decode: one token at a time, each the argmax of the previous logits.
  rwkv_state_reset(m, state.data());
  rwkv_model_forward_one(w, state.data(), 0, logits.data()); // warm-up
  rwkv_state_reset(m, state.data());
  int32_t tok = 0;
  auto t0 = clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    rwkv_model_forward_one(w, state.data(), tok, logits.data());
    tok = int32_t(argmax(logits));
  }
  printRate("decode", n, msSince(t0));

  // Prefill: n tokens (i % n_vocab) in one forward_seq call, then chunked.
  std::vector<int32_t> tokens(n);
  for (uint64_t i = 0; i < n; ++i)
    tokens[i] = int32_t(i % vocab);
  rwkv_state_reset(m, state.data());
  rwkv_model_forward_seq(w, state.data(), tokens.data(),
                         int64_t(n < 16 ? n : 16), logits.data()); // warm-up
  struct Run {
    const char *label;
    uint64_t chunk;
  };
  std::vector<Run> runs = {{"prefill", 0}};
  std::string chunkLabel;
  if (o.chunkGiven && o.chunk != 0) {
    chunkLabel = "prefill (chunk " + std::to_string(o.chunk) + ")";
    runs.push_back({chunkLabel.c_str(), o.chunk});
  }
  for (const Run &r : runs) {
    rwkv_state_reset(m, state.data());
    t0 = clock::now();
    if (rwkv_eval(m, state.data(), tokens.data(), n, logits.data(),
                  RWKV_EVAL_SEQ, r.chunk, err, sizeof err) != RWKV_OK) {
      error("%s", err);
      return kExitError;
    }
    printRate(r.label, n, msSince(t0));
  }
  printf("total: %.1f ms\n", msSince(total0));
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    printf("peak memory: %.1f MiB\n", double(ru.ru_maxrss) / 1024.0);
  return 0;
}

int run(const Options &o) {
  const rwkv_model_desc &d = rwkv_model_descriptor;
  if (o.info) {
    printInfo(d);
    if (!o.haveTokens && !o.bench)
      return 0;
  }
  if (!o.haveTokens) {
    if (!o.logitsOut.empty() || o.printLogits || !o.stateIn.empty() ||
        !o.stateOut.empty())
      return usageError("--logits-out, --print-logits, --state-in and "
                        "--state-out need --tokens");
    if (!o.bench)
      return usageError("nothing to do: give --tokens, --bench or --info");
  }
  for (size_t i = 0; i < o.tokens.size(); ++i)
    if (o.tokens[i] < 0 || o.tokens[i] >= d.n_vocab)
      return usageError("--tokens: token %" PRId64 " (item %zu) is out of "
                        "range: the vocabulary has %" PRId64
                        " tokens (0..%" PRId64 ")",
                        o.tokens[i], i + 1, d.n_vocab, d.n_vocab - 1);

  char err[512];
  rwkv_model *m = rwkv_model_open(err, sizeof err);
  if (!m) {
    error("%s", err);
    return kExitError;
  }
  int status = 0;
  if (o.haveTokens) {
    std::vector<float> state(rwkv_state_size(m) / sizeof(float));
    std::vector<float> logits(rwkv_n_vocab(m));
    std::vector<int32_t> tokens(o.tokens.begin(), o.tokens.end());
    if (!o.stateIn.empty()) {
      if (rwkv_state_load(m, state.data(), o.stateIn.c_str(), err,
                          sizeof err) != RWKV_OK) {
        error("%s", err);
        status = kExitError;
      }
    } else {
      rwkv_state_reset(m, state.data());
    }
    if (status == 0 &&
        rwkv_eval(m, state.data(), tokens.data(), tokens.size(), logits.data(),
                  o.mode, o.chunk, err, sizeof err) != RWKV_OK) {
      error("%s", err);
      status = kExitError;
    }
    if (status == 0 && !o.logitsOut.empty() &&
        !writeLogits(o.logitsOut, logits))
      status = kExitError;
    if (status == 0 && o.printLogits)
      for (float v : logits)
        printf("%.6f\n", double(v));
    if (status == 0 && !o.stateOut.empty() &&
        rwkv_state_save(m, state.data(), o.stateOut.c_str(), err, sizeof err) !=
            RWKV_OK) {
      error("%s", err);
      status = kExitError;
    }
  }
  if (status == 0 && o.bench)
    status = bench(m, o);
  rwkv_model_close(m);
  return status;
}

} // namespace

int main(int argc, char **argv) {
  if (argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    progName = slash ? slash + 1 : argv[0];
  }
  Options o;
  int status = parseArgs(argc, argv, o);
  if (status >= 0)
    return status;
  if (o.help) {
    printHelp();
    return 0;
  }
  status = run(o);
  if (fflush(stdout) != 0 && status == 0) {
    error("cannot write to stdout: %s", strerror(errno));
    status = kExitError;
  }
  return status;
}
