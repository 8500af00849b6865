//===- main.cpp - The command line of a compiled model --------------------===//
//
// main() of every executable rwkvc builds: `NAME "prompt" [options]`
// generates text, chats, measures perplexity, tokenizes; `NAME --tokens ...`
// runs the model on token ids, saves/loads states, benchmarks, and prints
// the descriptor. This file is argument parsing plus calls of the public API
// (rwkv_runtime.h): generation, chat and perplexity live in the library.
// One option table (kOptions) gives both the parser and --help;
// docs/runtime.md lists the options and must stay true to it.
//
// Exit status: 0 success, 1 a runtime error (weights, state files, I/O),
// 2 a command-line error (unknown option, bad or out-of-range value).
//
//===----------------------------------------------------------------------===//

#include "rwkv_runtime.h"

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

const char *progName = "model";

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

/// Prints "NAME: error: MESSAGE" (a runtime error) to stderr.
template <typename... Args>
void error(fmt::format_string<Args...> f, Args &&...args) {
  fmt::print(stderr, "{}: error: {}\n", progName,
             fmt::format(f, std::forward<Args>(args)...));
}

/// Prints a command-line error with a hint and returns the usage status.
template <typename... Args>
int usageError(fmt::format_string<Args...> f, Args &&...args) {
  error(f, std::forward<Args>(args)...);
  fmt::print(stderr, "(run '{} --help' for the options)\n", progName);
  return kExitUsage;
}

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

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
  // Text.
  bool havePrompt = false;
  std::string prompt;
  std::string promptFile;
  rwkv_generate_params gen; // sampling, max_tokens (-n)
  bool seedGiven = false;
  std::vector<std::string> stops;
  std::vector<int32_t> stopTokens;
  bool chat = false;
  std::string pplFile;
  bool haveTokenize = false, haveDetokenize = false;
  std::string tokenizeText;
  std::vector<int64_t> detokenizeIds;
  bool verbose = false;
  Options() { rwkv_generate_params_default(&gen); }
  bool textMode() const {
    return havePrompt || !promptFile.empty() || chat || !pplFile.empty() ||
           haveTokenize || haveDetokenize;
  }
};

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

/// Parses a finite decimal number (the whole string).
bool parseFloat(const std::string &s, float &out) {
  if (s.empty())
    return false;
  char *end = nullptr;
  errno = 0;
  double v = strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !std::isfinite(v))
    return false;
  out = float(v);
  return true;
}

std::string trim(const std::string &s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos)
    return {};
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

/// Parses a comma-separated id list; returns the complaint, or "" if fine.
std::string parseIds(const std::string &list, std::vector<int64_t> &out) {
  out.clear();
  size_t start = 0, item = 1;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string text = trim(list.substr(start, comma - start));
    bool negative = !text.empty() && text[0] == '-';
    uint64_t v;
    if (!parseUnsigned(negative ? text.substr(1) : text, v) ||
        v > uint64_t(INT32_MAX))
      return fmt::format("item {}, '{}', is not a token id (expected "
                         "comma-separated integers like 34,105,110)",
                         item, text);
    out.push_back(negative ? -int64_t(v) : int64_t(v));
    if (comma == std::string::npos)
      return {};
    start = comma + 1;
    ++item;
  }
}

/// What an option takes.
enum class Value {
  None,     // a flag
  Required, // --opt VALUE or --opt=VALUE
  Optional, // --opt, --opt=VALUE, or --opt VALUE when VALUE is a number
};

/// Stores `value` (NUL-terminated; null for an Optional option given
/// without one) into the options; returns the complaint ("" if fine),
/// printed as "NAME: COMPLAINT".
using Setter = std::string (*)(Options &, const char *value);

struct Option {
  const char *name;    // "--top-p", or "" for the PROMPT argument
  const char *metavar; // shown after the name in --help ("" for none)
  Value value;
  Setter set;       // where the value goes (see the set* templates)
  const char *help; // lines for --help, '\n'-separated
};

std::string notA(const std::string &value, const char *what) {
  return fmt::format("'{}' is not {}", value, what);
}

/// The member of Options that a path of member pointers names.
template <auto... Path> auto &field(Options &o) { return (o.*....*Path); }

template <auto... Path> std::string setFlag(Options &o, const char *) {
  field<Path...>(o) = true;
  return {};
}
template <auto... Path> std::string setText(Options &o, const char *v) {
  field<Path...>(o) = v;
  return {};
}
template <auto... Path> std::string setCount(Options &o, const char *v) {
  return parseUnsigned(v, field<Path...>(o))
             ? std::string()
             : notA(v, "a non-negative integer");
}

/// The values a number option accepts.
enum class Range { Any, NonNegative, OpenUnit /* (0, 1] */, Unit /* [0, 1] */ };

template <Range R, auto... Path>
std::string setNumber(Options &o, const char *v) {
  float &x = field<Path...>(o);
  static const char *const what[] = {"a number", "a number >= 0",
                                     "a number in (0, 1]",
                                     "a number in [0, 1]"};
  bool ok = parseFloat(v, x) &&
            (R == Range::Any || (R == Range::NonNegative && x >= 0) ||
             (R == Range::OpenUnit && x > 0 && x <= 1) ||
             (R == Range::Unit && x >= 0 && x <= 1));
  return ok ? std::string() : notA(v, what[int(R)]);
}

constexpr auto kSampling = &rwkv_generate_params::sampling;
using Sampling = rwkv_sampler_params;

/// The options: parseArgs and printHelp both read this table.
constexpr Option kOptions[] = {
    // ---- text generation
    {"", "PROMPT", Value::Required, nullptr,
     "the prompt (UTF-8); the generated text is\n"
     "streamed to stdout token by token"},
    {"-f", "FILE", Value::Required, setText<&Options::promptFile>,
     "read the prompt from FILE"},
    {"-n", "N", Value::Required,
     setCount<&Options::gen, &rwkv_generate_params::max_tokens>,
     "generate at most N tokens (default 100)"},
    {"--temperature", "T", Value::Required,
     setNumber<Range::NonNegative, &Options::gen, kSampling,
               &Sampling::temperature>,
     "0 = greedy (argmax); default 1.0"},
    {"--top-p", "P", Value::Required,
     setNumber<Range::OpenUnit, &Options::gen, kSampling, &Sampling::top_p>,
     "nucleus sampling mass in (0, 1]; default 0.85"},
    {"--top-k", "K", Value::Required,
     [](Options &o, const char *v) {
       uint64_t k;
       if (!parseUnsigned(v, k) || k > uint64_t(INT32_MAX))
         return notA(v, "a non-negative integer");
       o.gen.sampling.top_k = int32_t(k);
       return std::string();
     },
     "keep the K most likely tokens; 0 (default) = off"},
    {"--presence-penalty", "A", Value::Required,
     setNumber<Range::Any, &Options::gen, kSampling,
               &Sampling::presence_penalty>,
     "ChatRWKV alpha_presence (default 0.2)"},
    {"--frequency-penalty", "A", Value::Required,
     setNumber<Range::Any, &Options::gen, kSampling,
               &Sampling::frequency_penalty>,
     "ChatRWKV alpha_frequency (default 0.2)"},
    {"--penalty-decay", "D", Value::Required,
     setNumber<Range::Unit, &Options::gen, kSampling,
               &Sampling::penalty_decay>,
     "ChatRWKV alpha_decay (default 0.996)"},
    {"--seed", "S", Value::Required,
     [](Options &o, const char *v) {
       o.seedGiven = true;
       return setCount<&Options::gen, kSampling, &Sampling::seed>(o, v);
     },
     "seed of the sampler's PRNG (default: from the\n"
     "clock; --verbose prints it)"},
    {"--stop", "STR", Value::Required,
     [](Options &o, const char *v) {
       if (!*v)
         return std::string("the stop string is empty");
       o.stops.push_back(v);
       return std::string();
     },
     "stop when the output contains STR (repeatable;\n"
     "STR is not printed)"},
    {"--stop-token", "ID", Value::Required,
     [](Options &o, const char *v) {
       uint64_t id;
       if (!parseUnsigned(v, id) || id > uint64_t(INT32_MAX))
         return notA(v, "a token id");
       o.stopTokens.push_back(int32_t(id));
       return std::string();
     },
     "stop when token ID is sampled (repeatable; the\n"
     "end-of-text token 0 of world/20b always stops)"},
    {"--chat", "", Value::None, setFlag<&Options::chat>,
     "interactive chat on stdin (\"User: ...\\n\\n\n"
     "Assistant:\"), the state kept between turns;\n"
     "PROMPT, if any, is fed first"},
    {"--ppl", "FILE", Value::Required, setText<&Options::pplFile>,
     "print the perplexity of the text in FILE\n"
     "(sequence mode, all positions' logits, in\n"
     "chunks of --chunk tokens, default 16)"},
    {"--tokenize", "TEXT", Value::Required,
     [](Options &o, const char *v) {
       o.haveTokenize = true;
       return setText<&Options::tokenizeText>(o, v);
     },
     "print the token ids of TEXT"},
    {"--detokenize", "LIST", Value::Required,
     [](Options &o, const char *v) {
       o.haveDetokenize = true;
       return parseIds(v, o.detokenizeIds);
     },
     "print the text of comma-separated token ids"},
    {"--verbose", "", Value::None, setFlag<&Options::verbose>,
     "print prompt and generation tokens/s to stderr"},
    // ---- token ids and the model
    {"--tokens", "LIST", Value::Required,
     [](Options &o, const char *v) {
       o.haveTokens = true;
       return parseIds(v, o.tokens);
     },
     "the prompt as comma-separated token ids, e.g.\n"
     "--tokens 34,105,110 (each in 0..n_vocab-1)"},
    {"--logits-out", "FILE", Value::Required, setText<&Options::logitsOut>,
     "write the logits after the last token to FILE\n"
     "as n_vocab raw little-endian float32 values"},
    {"--print-logits", "", Value::None, setFlag<&Options::printLogits>,
     "print the logits after the last token, one per\n"
     "line (%.6f)"},
    {"--mode", "rnn|seq", Value::Required,
     [](Options &o, const char *v) {
       if (strcmp(v, "rnn") && strcmp(v, "seq"))
         return notA(v, "rnn or seq");
       o.mode = strcmp(v, "rnn") ? RWKV_EVAL_SEQ : RWKV_EVAL_RNN;
       return std::string();
     },
     "rnn: one token at a time (forward_one);\n"
     "seq: chunks of tokens (forward_seq); default seq"},
    {"--chunk", "N", Value::Required,
     [](Options &o, const char *v) {
       o.chunkGiven = true;
       return setCount<&Options::chunk>(o, v);
     },
     "seq mode: at most N tokens per forward_seq call\n"
     "(default 0: 16; capped so that scratch memory\n"
     "stays bounded, see docs/runtime.md)"},
    {"--state-in", "FILE", Value::Required, setText<&Options::stateIn>,
     "start from the state saved in FILE instead of\n"
     "the initial state (also for PROMPT and --chat)"},
    {"--state-out", "FILE", Value::Required, setText<&Options::stateOut>,
     "save the state after the tokens (after the\n"
     "generation, after the chat) to FILE"},
    {"--bench", "[N]", Value::Optional,
     [](Options &o, const char *v) {
       o.bench = true;
       if (!v)
         return std::string(); // the default count
       return parseUnsigned(v, o.benchTokens) && o.benchTokens != 0
                  ? std::string()
                  : notA(v, "a positive integer");
     },
     "measure decode tokens/s (N tokens one at a time,\n"
     "each the argmax of the last logits) and prefill\n"
     "tokens/s (N tokens in chunks of the default\n"
     "size, and of --chunk if given); print the times\n"
     "and the peak memory; default N = 512"},
    {"--info", "", Value::None, setFlag<&Options::info>,
     "print the model's descriptor: versions, sizes,\n"
     "hash, weights, state slots"},
    {"--help", "", Value::None, setFlag<&Options::help>, "print this help"},
};
/// kOptions[0, kTextOptions) are the text options, the rest the model's
/// (from --tokens on).
constexpr size_t kTextOptions = 17;
constexpr bool sameName(const char *a, const char *b) {
  return *a == *b && (!*a || sameName(a + 1, b + 1));
}
static_assert(sameName(kOptions[kTextOptions].name, "--tokens"),
              "kTextOptions must point at --tokens");

const Option *findOption(const std::string &name) {
  for (const Option &opt : kOptions)
    if (*opt.name && name == opt.name)
      return &opt;
  return nullptr;
}

void printOptions(size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) {
    const Option &opt = kOptions[i];
    std::string head = opt.name;
    if (*opt.metavar)
      head += (head.empty() ? "" : " ") + std::string(opt.metavar);
    std::string help = opt.help;
    size_t nl = help.find('\n');
    fmt::print("  {:<18}  {}\n", head, help.substr(0, nl));
    while (nl != std::string::npos) {
      size_t next = help.find('\n', nl + 1);
      fmt::print("{:22}{}\n", "", help.substr(nl + 1, next - nl - 1));
      nl = next;
    }
  }
}

void printHelp() {
  fmt::print("usage: {} [options] [\"PROMPT\"]\n"
             "\n"
             "Generates text from PROMPT with the RWKV model and tokenizer "
             "compiled\n"
             "into this executable, or runs the model on token ids "
             "(--tokens).\n"
             "\n"
             "text generation:\n",
             progName);
  printOptions(0, kTextOptions);
  fmt::print("  Ctrl-C stops the generation (in --chat: the reply; at the "
             "User:\n"
             "  prompt, the chat) cleanly; --state-out still saves the "
             "state.\n"
             "\n"
             "token ids and the model:\n");
  printOptions(kTextOptions, std::size(kOptions));
  fmt::print("\n"
             "Options taking a value accept --opt VALUE and --opt=VALUE; "
             "'--' ends\n"
             "the options (for a prompt that starts with '-').\n"
             "Exit status: 0 success, 1 runtime error, 2 command-line "
             "error.\n");
}

/// Parses argv into `o`. Returns -1 to go on, else the exit status.
int parseArgs(int argc, char **argv, Options &o) {
  bool optionsEnded = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (!optionsEnded && arg == "--") {
      optionsEnded = true;
      continue;
    }
    bool isOption = !optionsEnded && arg.size() >= 2 && arg[0] == '-' &&
                    !(arg[1] >= '0' && arg[1] <= '9');
    if (!isOption) {
      if (o.havePrompt)
        return usageError("unexpected argument '{}': give one prompt (quote "
                          "it if it has spaces)",
                          arg);
      o.prompt = arg;
      o.havePrompt = true;
      continue;
    }
    std::string name = arg, value;
    bool inlineValue = false;
    size_t eq = arg.find('=');
    if (eq != std::string::npos && arg.compare(0, 2, "--") == 0) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      inlineValue = true;
    }
    const Option *opt = findOption(name);
    if (!opt)
      return usageError("unknown option '{}'", name);
    switch (opt->value) {
    case Value::None:
      if (inlineValue)
        return usageError("{} takes no value", name);
      break;
    case Value::Required:
      if (!inlineValue) {
        if (i + 1 >= argc)
          return usageError("{} needs a value", name);
        value = argv[++i];
      }
      break;
    case Value::Optional:
      if (!inlineValue && i + 1 < argc && argv[i + 1][0] >= '0' &&
          argv[i + 1][0] <= '9') {
        value = argv[++i];
        inlineValue = true;
      }
      break;
    }
    std::string complaint = opt->set(
        o, opt->value == Value::Optional && !inlineValue ? nullptr
                                                         : value.c_str());
    if (!complaint.empty())
      return usageError("{}: {}", name, complaint);
  }
  return -1;
}

//===----------------------------------------------------------------------===//
// The model: --info, --tokens, --bench
//===----------------------------------------------------------------------===//

bool writeLogits(const std::string &path, const std::vector<float> &logits) {
  FILE *f = fopen(path.c_str(), "wb");
  if (!f) {
    error("cannot write the logits to '{}': {}", path, strerror(errno));
    return false;
  }
  errno = 0;
  size_t n = fwrite(logits.data(), sizeof(float), logits.size(), f);
  int e = n != logits.size() ? errno : 0;
  if (fclose(f) != 0 && e == 0)
    e = errno; // the buffered data failed to reach the file
  if (n == logits.size() && e == 0)
    return true;
  error("cannot write the logits to '{}': {}", path,
        e ? std::string(strerror(e))
          : fmt::format("short write ({} of {} floats)", n, logits.size()));
  return false;
}

double perSecond(uint64_t n, double ms) {
  return ms > 0 ? double(n) * 1000.0 / ms : 0.0;
}

/// Owns a state handle.
struct State {
  rwkv_state *s = nullptr;
  ~State() { rwkv_state_free(s); }
};

/// --bench: decode and prefill throughput (rwkv_bench).
int bench(const rwkv_model *m, const Options &o) {
  char err[512];
  rwkv_bench_result r;
  if (rwkv_bench(m, o.benchTokens, o.chunkGiven ? o.chunk : 0, &r, err,
                 sizeof err) != RWKV_OK) {
    error("{}", err);
    return kExitError;
  }
  auto rate = [&](const std::string &what, double ms) {
    fmt::print("{}: {:.1f} tokens/s ({} tokens, {:.1f} ms)\n", what,
               perSecond(r.n_tokens, ms), r.n_tokens, ms);
  };
  rate("decode", r.decode_ms);
  rate("prefill", r.prefill_ms);
  if (r.chunk != 0)
    rate(fmt::format("prefill (chunk {})", r.chunk), r.prefill_chunk_ms);
  fmt::print("total: {:.1f} ms\n", r.total_ms);
  fmt::print("peak memory: {:.1f} MiB\n", double(r.peak_rss_kib) / 1024.0);
  return 0;
}

/// Creates `st` from --state-in, or the initial state.
bool openState(const rwkv_model *m, const Options &o, State &st) {
  char err[512];
  st.s = rwkv_state_new(m, err, sizeof err);
  if (st.s && (o.stateIn.empty() ||
               rwkv_state_load_file(st.s, o.stateIn.c_str(), err,
                                    sizeof err) == RWKV_OK))
    return true;
  error("{}", err);
  return false;
}

/// --state-out, if given.
bool saveState(const State &st, const Options &o) {
  char err[512];
  if (o.stateOut.empty() ||
      rwkv_state_save_file(st.s, o.stateOut.c_str(), err, sizeof err) ==
          RWKV_OK)
    return true;
  error("{}", err);
  return false;
}

/// --tokens: evaluate, then --logits-out, --print-logits, --state-out.
int runTokens(const rwkv_model *m, const Options &o) {
  char err[512];
  State st;
  if (!openState(m, o, st))
    return kExitError;
  std::vector<float> logits(rwkv_n_vocab(m));
  std::vector<int32_t> tokens(o.tokens.begin(), o.tokens.end());
  if (rwkv_state_eval(st.s, tokens.data(), tokens.size(), logits.data(),
                      o.mode, o.chunk, err, sizeof err) != RWKV_OK) {
    error("{}", err);
    return kExitError;
  }
  if (!o.logitsOut.empty() && !writeLogits(o.logitsOut, logits))
    return kExitError;
  if (o.printLogits)
    for (float v : logits)
      fmt::print("{:.6f}\n", double(v));
  return saveState(st, o) ? 0 : kExitError;
}

//===----------------------------------------------------------------------===//
// Text: tokenizer, generation, chat, perplexity (all in the library)
//===----------------------------------------------------------------------===//

volatile sig_atomic_t interrupted = 0;

/// errno of the first failed write to stdout (reported by main).
int stdoutErrno = 0;

void onSigint(int) { interrupted = 1; }

/// Ctrl-C (SIGINT) and SIGTERM set `interrupted` (no SA_RESTART, so a
/// blocking read returns): the generation stops and --state-out still saves.
void installSigint() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

/// Refuses invalid UTF-8 (all tokenizers: a prompt is text).
bool checkUtf8(const std::string &s, const std::string &what) {
  size_t v = rwkv_utf8_valid_prefix(s.data(), s.size());
  if (v == s.size())
    return true;
  error("{} is not valid UTF-8: byte {:#04x} at offset {}", what,
        unsigned(uint8_t(s[v])), v);
  return false;
}

bool tokenize(const rwkv_tokenizer *tok, const std::string &s,
              std::vector<int32_t> &ids) {
  char err[512];
  size_t n = 0;
  if (rwkv_tokenize(tok, s.data(), s.size(), nullptr, 0, &n, err,
                    sizeof err) != RWKV_OK) {
    error("{}", err);
    return false;
  }
  ids.resize(n);
  return rwkv_tokenize(tok, s.data(), s.size(), ids.data(), n, &n, err,
                       sizeof err) == RWKV_OK;
}

/// The emit callback: writes to stdout and flushes; stops on Ctrl-C and on
/// a failed write (ferror(stdout) stays set: main reports it).
int emitStdout(void *, const char *text, size_t n) {
  if (n && (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0)) {
    stdoutErrno = errno;
    return 1;
  }
  return interrupted || ferror(stdout) ? 1 : 0;
}

/// The progress callback of --ppl: stops on Ctrl-C.
int progressStop(void *, size_t, size_t) { return interrupted ? 1 : 0; }

/// --tokenize / --detokenize: the tokenizer only, no weights.
int runTokenizer(const rwkv_tokenizer *tok, const Options &o) {
  if (o.haveTokenize) {
    if (!checkUtf8(o.tokenizeText, "--tokenize: the text"))
      return kExitUsage;
    std::vector<int32_t> ids;
    if (!tokenize(tok, o.tokenizeText, ids))
      return kExitError;
    fmt::print("{}\n", fmt::join(ids, ","));
  }
  if (o.haveDetokenize) {
    std::vector<int32_t> ids(o.detokenizeIds.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (o.detokenizeIds[i] < 0 ||
          size_t(o.detokenizeIds[i]) >= rwkv_tokenizer_n_tokens(tok))
        return usageError("--detokenize: token {} (item {}) is out of range: "
                          "the tokenizer has {} tokens",
                          o.detokenizeIds[i], i + 1,
                          rwkv_tokenizer_n_tokens(tok));
      ids[i] = int32_t(o.detokenizeIds[i]);
    }
    char err[512];
    size_t n = 0;
    rwkv_detokenize(tok, ids.data(), ids.size(), nullptr, 0, &n, err,
                    sizeof err);
    std::string text(n, '\0');
    rwkv_detokenize(tok, ids.data(), ids.size(), text.data(), n, &n, err,
                    sizeof err);
    fwrite(text.data(), 1, text.size(), stdout);
  }
  return 0;
}

/// The longest --chat message: a longer line is read to its end and
/// dropped, so that memory stays bounded whatever stdin holds.
constexpr size_t kMaxMessage = size_t(1) << 20;

/// Reads a line of stdin; false at the end or on Ctrl-C. `tooLong` is set
/// (and `line` emptied) for a line over kMaxMessage bytes.
bool readLine(std::string &line, bool &tooLong) {
  char buf[4096];
  bool got = false;
  tooLong = false;
  while (fgets(buf, sizeof buf, stdin)) {
    got = true;
    line += buf;
    bool end = !line.empty() && line.back() == '\n';
    if (line.size() > kMaxMessage) {
      tooLong = true;
      line.clear();
    }
    if (end || interrupted)
      break;
  }
  return got && !interrupted;
}

/// A text session: the model, its state, the logits after what it has seen.
struct Text {
  const Options &o;
  const rwkv_tokenizer *tok;
  rwkv_model *m = nullptr;
  State st;
  std::vector<float> logits;
  rwkv_generate_result total = {}; // for --verbose
  char err[512];

  Text(const Options &o, const rwkv_tokenizer *tok) : o(o), tok(tok) {}
  ~Text() { rwkv_model_close(m); }

  void add(const rwkv_generate_result &r) {
    total.n_fed += r.n_fed;
    total.fed_ms += r.fed_ms;
    total.n_generated += r.n_generated;
    total.generate_ms += r.generate_ms;
  }

  /// --ppl: the file streamed, in constant memory.
  int perplexity() {
    rwkv_perplexity_result r;
    if (rwkv_perplexity_file(st.s, tok, o.pplFile.c_str(), o.chunk,
                             progressStop, nullptr, &r, err,
                             sizeof err) != RWKV_OK) {
      error("--ppl: {}", err);
      return kExitError;
    }
    if (r.n_predictions == 0) {
      error("--ppl: interrupted before the first prediction");
      return kExitError;
    }
    fmt::print("perplexity: {:.4f} ({} tokens, {} predictions, {:.4f} "
               "nats/token)\n",
               r.perplexity, r.n_tokens, r.n_predictions,
               r.nll / double(r.n_predictions));
    return 0;
  }

  /// --chat: "User: MSG\n\nAssistant:" per turn, replies stop at "\n\n".
  int chat(const rwkv_generate_params &p) {
    for (uint64_t turn = 0; !interrupted && !ferror(stdout); ++turn) {
      fmt::print("User: ");
      fflush(stdout);
      std::string line;
      bool tooLong;
      if (!readLine(line, tooLong))
        break;
      if (tooLong) {
        error("the message is longer than {} bytes: skipped", kMaxMessage);
        continue;
      }
      rwkv_generate_params q = p;
      q.sampling.seed = p.sampling.seed + turn;
      rwkv_generate_result r;
      int status = rwkv_chat_turn(st.s, tok, logits.data(), line.data(),
                                  line.size(), &q, o.mode, o.chunk, emitStdout,
                                  nullptr, &r, err, sizeof err);
      if (status == RWKV_ERROR_ARGUMENT) {
        error("{}", err); // e.g. not UTF-8: the next message may be fine
        continue;
      }
      if (status != RWKV_OK) {
        error("{}", err);
        return kExitError;
      }
      add(r);
      if (r.stop == RWKV_STOP_EMPTY)
        continue;
      fmt::print("\n\n");
      fflush(stdout);
      interrupted = 0; // Ctrl-C ends a reply, not the chat
    }
    fmt::print("\n");
    return 0;
  }

  /// Feeds the prompt: -f FILE streamed in constant memory, or PROMPT.
  int feedPrompt() {
    int status = RWKV_OK;
    if (!o.promptFile.empty())
      status = rwkv_feed_file(st.s, tok, o.promptFile.c_str(), logits.data(),
                              o.mode, o.chunk, progressStop, nullptr, &total,
                              err, sizeof err);
    else if (o.havePrompt)
      status = rwkv_feed_text(st.s, tok, o.prompt.data(), o.prompt.size(),
                              logits.data(), o.mode, o.chunk, &total, err,
                              sizeof err);
    else
      return 0;
    if (status != RWKV_OK) {
      error("{}", err);
      return kExitError;
    }
    if (total.n_fed == 0 && !interrupted) {
      error("the prompt has no tokens");
      return kExitError;
    }
    return 0;
  }

  int run() {
    m = rwkv_model_open(err, sizeof err);
    if (!m) {
      error("{}", err);
      return kExitError;
    }
    if (!openState(m, o, st))
      return kExitError;
    logits.resize(rwkv_n_vocab(m));
    installSigint();
    rwkv_generate_params p = o.gen;
    p.stop_tokens = o.stopTokens.data();
    p.n_stop_tokens = o.stopTokens.size();
    std::vector<const char *> stops;
    for (const std::string &s : o.stops)
      stops.push_back(s.c_str());
    p.stop_strings = stops.data();
    p.n_stop_strings = stops.size();
    if (!o.seedGiven)
      p.sampling.seed =
          uint64_t(std::chrono::steady_clock::now().time_since_epoch()
                       .count()) ^
          (uint64_t(getpid()) << 32);
    if (o.verbose && p.sampling.temperature > 0)
      fmt::print(stderr, "seed: {}\n", p.sampling.seed);

    int status = 0;
    if (!o.pplFile.empty()) {
      status = perplexity();
    } else {
      if (int fed = feedPrompt())
        return fed;
      if (o.chat) {
        status = chat(p);
      } else if (!interrupted) {
        rwkv_generate_result r;
        if (rwkv_generate(st.s, tok, logits.data(), &p, emitStdout, nullptr,
                          &r, err, sizeof err) != RWKV_OK) {
          error("{}", err);
          return kExitError;
        }
        add(r);
      }
      if (o.verbose)
        fmt::print(stderr,
                   "\nprompt: {} tokens, {:.1f} ms ({:.1f} tokens/s)\n"
                   "generation: {} tokens, {:.1f} ms ({:.1f} tokens/s)\n",
                   total.n_fed, total.fed_ms,
                   perSecond(total.n_fed, total.fed_ms), total.n_generated,
                   total.generate_ms,
                   perSecond(total.n_generated, total.generate_ms));
    }
    if (status == 0 && !saveState(st, o))
      status = kExitError;
    return status;
  }
};

/// A closing guard for the tokenizer.
struct Tokenizer {
  rwkv_tokenizer *t = nullptr;
  ~Tokenizer() { rwkv_tokenizer_close(t); }
};

int runText(const Options &o) {
  if (o.havePrompt && o.prompt.empty())
    return usageError("the prompt is empty: give some text (or --chat, or "
                      "-f FILE)");
  char err[512];
  const rwkv_model_desc &d = rwkv_model_descriptor;
  Tokenizer tok;
  tok.t = rwkv_tokenizer_open_linked(size_t(d.n_vocab > 0 ? d.n_vocab : 0),
                                     err, sizeof err);
  if (!tok.t) {
    error("{}", err);
    return kExitError;
  }
  if (o.haveTokenize || o.haveDetokenize)
    return runTokenizer(tok.t, o);

  // -f and --ppl files are checked as they are read (rwkv_feed_file).
  if (o.havePrompt && o.pplFile.empty() && o.promptFile.empty() &&
      !checkUtf8(o.prompt, "the prompt"))
    return kExitUsage;
  return Text(o, tok.t).run();
}

int run(const Options &o) {
  const rwkv_model_desc &d = rwkv_model_descriptor;
  if (o.info) {
    rwkv_model_describe(stdout); // a failed write: main reports it
    if (!o.haveTokens && !o.bench && !o.textMode())
      return 0;
  }
  if (o.textMode()) {
    if (o.haveTokens || o.bench || !o.logitsOut.empty() || o.printLogits)
      return usageError("--tokens, --bench, --logits-out and --print-logits "
                        "do not combine with a prompt, -f, --chat, --ppl, "
                        "--tokenize or --detokenize");
    return runText(o);
  }
  if (!o.haveTokens) {
    if (!o.logitsOut.empty() || o.printLogits || !o.stateIn.empty() ||
        !o.stateOut.empty())
      return usageError("--logits-out, --print-logits, --state-in and "
                        "--state-out need --tokens");
    if (!o.bench)
      return usageError("nothing to do: give a prompt, --chat, --tokens, "
                        "--bench or --info");
  }
  for (size_t i = 0; i < o.tokens.size(); ++i)
    if (o.tokens[i] < 0 || o.tokens[i] >= d.n_vocab)
      return usageError("--tokens: token {} (item {}) is out of range: the "
                        "vocabulary has {} tokens (0..{})",
                        o.tokens[i], i + 1, d.n_vocab, d.n_vocab - 1);

  char err[512];
  rwkv_model *m = rwkv_model_open(err, sizeof err);
  if (!m) {
    error("{}", err);
    return kExitError;
  }
  int status = o.haveTokens ? runTokens(m, o) : 0;
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
  // Every write to stdout is checked here: a failed one sets its error flag
  // (the emit callback stops the generation at the first).
  errno = 0;
  if (fflush(stdout) != 0 && stdoutErrno == 0)
    stdoutErrno = errno;
  if (ferror(stdout) && status == 0) {
    error("cannot write to stdout: {}",
          stdoutErrno ? strerror(stdoutErrno) : "a write failed");
    status = kExitError;
  }
  return status;
}
