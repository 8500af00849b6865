//===- rwkv_cli.cpp - Running a command line's request --------------------===//
//
// rwkv_cli_run: what the executable does once its options are parsed, on
// the public API only:
//
//   --info                        rwkv_model_describe
//   --tokenize / --detokenize     the linked tokenizer, no weights
//   PROMPT, -f, --chat            a session (rwkv_session_*): prompt fed,
//                                 text generated / chat turns from stdin
//   --ppl                         rwkv_perplexity_file
//   --tokens, --logits-out, ...   rwkv_state_eval on a state handle
//   --bench                       rwkv_bench
//
// Ctrl-C (SIGINT) and SIGTERM set a flag that the emit and progress
// callbacks return, so a generation ends cleanly and --state-out still
// saves. Every write to stdout is checked; the first failure is reported.
//
//===----------------------------------------------------------------------===//

#include "rwkv_cli.h"
#include "rwkv_internal.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace {

volatile sig_atomic_t interrupted = 0;

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

double perSecond(uint64_t n, double ms) {
  return ms > 0 ? double(n) * 1000.0 / ms : 0.0;
}

/// The longest --chat message: a longer line is read to its end and
/// dropped, so that memory stays bounded whatever stdin holds.
constexpr size_t kMaxMessage = size_t(1) << 20;

/// One run of the command line: its request, name, and the first failed
/// write to stdout.
class Run {
public:
  Run(const rwkv_cli_request &r, const char *prog) : r(r), prog(prog) {}

  int run();

private:
  template <typename... Args>
  int fail(int status, fmt::format_string<Args...> f, Args &&...args) {
    return rwkv_cli_error(
        prog, status, fmt::format(f, std::forward<Args>(args)...).c_str());
  }
  int fail(int status) { return rwkv_cli_error(prog, status, err); }

  rwkv_model *openModel();
  bool openState(const rwkv_model *m, rwkv_state *&st);
  bool saveState(const rwkv_state *st);
  bool writeLogits(const std::vector<float> &logits);
  int tokens(const rwkv_model *m);
  int bench(const rwkv_model *m);
  bool checkUtf8(const char *s, size_t n, const char *what);
  int tokenizer(const rwkv_tokenizer *tok);
  int text(const rwkv_tokenizer *tok);
  int perplexity(rwkv_state *st, const rwkv_tokenizer *tok);
  int feedPrompt(rwkv_session *s);
  int chat(rwkv_session *s, const rwkv_generate_params &p);
  bool readLine(std::string &line, bool &tooLong);
  int finish(int status);

  static int emitStdout(void *self, const char *text, size_t n);
  static int progressStop(void *, size_t, size_t) { return interrupted; }

  const rwkv_cli_request &r;
  const char *prog;
  int stdoutErrno = 0; // errno of the first failed write to stdout
  char err[512] = "";
};

/// Opens the model on --device (else $RWKV_DEVICE, else auto); with
/// --verbose says what runs it.
rwkv_model *Run::openModel() {
  const char *env = getenv("RWKV_DEVICE");
  const char *name = r.device ? r.device : env && *env ? env : "auto";
  rwkv_model *m = rwkv_model_open_device(rwkv_device_from_name(name), err,
                                         sizeof err);
  if (!m)
    fail(RWKV_EXIT_ERROR);
  else if (r.verbose)
    fmt::print(stderr, "device: {}\n", rwkv_model_device_info(m));
  return m;
}

/// Creates `st` from --state-in, or the initial state.
bool Run::openState(const rwkv_model *m, rwkv_state *&st) {
  st = rwkv_state_new(m, err, sizeof err);
  if (st && (!r.state_in || rwkv_state_load_file(st, r.state_in, err,
                                                 sizeof err) == RWKV_OK))
    return true;
  fail(RWKV_EXIT_ERROR);
  return false;
}

/// --state-out, if given.
bool Run::saveState(const rwkv_state *st) {
  if (!r.state_out ||
      rwkv_state_save_file(st, r.state_out, err, sizeof err) == RWKV_OK)
    return true;
  fail(RWKV_EXIT_ERROR);
  return false;
}

/// --logits-out: n_vocab raw floats; a failure names the real reason.
bool Run::writeLogits(const std::vector<float> &logits) {
  FILE *f = fopen(r.logits_out, "wb");
  if (!f) {
    fail(RWKV_EXIT_ERROR, "cannot write the logits to '{}': {}", r.logits_out,
         strerror(errno));
    return false;
  }
  errno = 0;
  size_t n = fwrite(logits.data(), sizeof(float), logits.size(), f);
  int e = n != logits.size() ? errno : 0;
  if (fclose(f) != 0 && e == 0)
    e = errno; // the buffered data failed to reach the file
  if (n == logits.size() && e == 0)
    return true;
  fail(RWKV_EXIT_ERROR, "cannot write the logits to '{}': {}", r.logits_out,
       e ? std::string(strerror(e))
         : fmt::format("short write ({} of {} floats)", n, logits.size()));
  return false;
}

/// --tokens: evaluate, then --logits-out, --print-logits, --state-out.
int Run::tokens(const rwkv_model *m) {
  rwkv_state *st = nullptr;
  if (!openState(m, st))
    return RWKV_EXIT_ERROR;
  std::vector<float> logits(rwkv_n_vocab(m));
  std::vector<int32_t> ids(r.tokens, r.tokens + r.n_tokens);
  int status = RWKV_EXIT_OK;
  if (rwkv_state_eval(st, ids.data(), ids.size(), logits.data(), r.mode,
                      r.chunk, err, sizeof err) != RWKV_OK)
    status = fail(RWKV_EXIT_ERROR);
  else if (r.logits_out && !writeLogits(logits))
    status = RWKV_EXIT_ERROR;
  else if (r.print_logits)
    for (float v : logits)
      fmt::print("{:.6f}\n", double(v));
  if (status == RWKV_EXIT_OK && !saveState(st))
    status = RWKV_EXIT_ERROR;
  rwkv_state_free(st);
  return status;
}

/// --bench: decode and prefill throughput (rwkv_bench).
int Run::bench(const rwkv_model *m) {
  rwkv_bench_result b;
  if (rwkv_bench(m, r.bench_tokens, r.chunk_given ? r.chunk : 0, &b, err,
                 sizeof err) != RWKV_OK)
    return fail(RWKV_EXIT_ERROR);
  auto rate = [&](const std::string &what, double ms) {
    fmt::print("{}: {:.1f} tokens/s ({} tokens, {:.1f} ms)\n", what,
               perSecond(b.n_tokens, ms), b.n_tokens, ms);
  };
  rate("decode", b.decode_ms);
  rate("prefill", b.prefill_ms);
  if (b.chunk != 0)
    rate(fmt::format("prefill (chunk {})", b.chunk), b.prefill_chunk_ms);
  fmt::print("total: {:.1f} ms\n", b.total_ms);
  fmt::print("peak memory: {:.1f} MiB\n", double(b.peak_rss_kib) / 1024.0);
  return RWKV_EXIT_OK;
}

/// Refuses invalid UTF-8 (all tokenizers: a prompt is text).
bool Run::checkUtf8(const char *s, size_t n, const char *what) {
  size_t v = rwkv_utf8_valid_prefix(s, n);
  if (v == n)
    return true;
  fail(RWKV_EXIT_USAGE, "{} is not valid UTF-8: byte {:#04x} at offset {}",
       what, unsigned(uint8_t(s[v])), v);
  return false;
}

/// --tokenize / --detokenize: the tokenizer only, no weights.
int Run::tokenizer(const rwkv_tokenizer *tok) {
  if (r.tokenize) {
    size_t len = strlen(r.tokenize), n = 0;
    if (!checkUtf8(r.tokenize, len, "--tokenize: the text"))
      return RWKV_EXIT_USAGE;
    std::vector<int32_t> ids;
    if (rwkv_tokenize(tok, r.tokenize, len, nullptr, 0, &n, err,
                      sizeof err) != RWKV_OK)
      return fail(RWKV_EXIT_ERROR);
    ids.resize(n);
    rwkv_tokenize(tok, r.tokenize, len, ids.data(), n, &n, err, sizeof err);
    fmt::print("{}\n", fmt::join(ids, ","));
  }
  if (r.has_detokenize) {
    std::vector<int32_t> ids(r.n_detokenize);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (r.detokenize[i] < 0 ||
          size_t(r.detokenize[i]) >= rwkv_tokenizer_n_tokens(tok))
        return fail(RWKV_EXIT_USAGE,
                    "--detokenize: token {} (item {}) is out of range: the "
                    "tokenizer has {} tokens",
                    r.detokenize[i], i + 1, rwkv_tokenizer_n_tokens(tok));
      ids[i] = int32_t(r.detokenize[i]);
    }
    size_t n = 0;
    rwkv_detokenize(tok, ids.data(), ids.size(), nullptr, 0, &n, err,
                    sizeof err);
    std::string text(n, '\0');
    rwkv_detokenize(tok, ids.data(), ids.size(), text.data(), n, &n, err,
                    sizeof err);
    fwrite(text.data(), 1, text.size(), stdout);
  }
  return RWKV_EXIT_OK;
}

/// The emit callback: writes to stdout and flushes; stops on Ctrl-C and on
/// a failed write (ferror(stdout) stays set: finish reports it).
int Run::emitStdout(void *self, const char *text, size_t n) {
  if (n && (fwrite(text, 1, n, stdout) != n || fflush(stdout) != 0)) {
    static_cast<Run *>(self)->stdoutErrno = errno;
    return 1;
  }
  return interrupted || ferror(stdout) ? 1 : 0;
}

/// --ppl: the file streamed, in constant memory.
int Run::perplexity(rwkv_state *st, const rwkv_tokenizer *tok) {
  rwkv_perplexity_result p;
  if (rwkv_perplexity_file(st, tok, r.ppl_file, r.chunk, progressStop,
                           nullptr, &p, err, sizeof err) != RWKV_OK)
    return fail(RWKV_EXIT_ERROR, "--ppl: {}", err);
  if (p.n_predictions == 0)
    return fail(RWKV_EXIT_ERROR,
                "--ppl: interrupted before the first prediction");
  fmt::print("perplexity: {:.4f} ({} tokens, {} predictions, {:.4f} "
             "nats/token)\n",
             p.perplexity, p.n_tokens, p.n_predictions,
             p.nll / double(p.n_predictions));
  return RWKV_EXIT_OK;
}

/// Feeds the prompt: -f FILE streamed in constant memory, or PROMPT.
int Run::feedPrompt(rwkv_session *s) {
  int status = RWKV_OK;
  if (r.prompt_file)
    status = rwkv_session_feed_file(s, r.prompt_file, r.mode, r.chunk,
                                    progressStop, nullptr, err, sizeof err);
  else if (r.prompt)
    status = rwkv_session_feed(s, r.prompt, strlen(r.prompt), r.mode, r.chunk,
                               err, sizeof err);
  else
    return RWKV_EXIT_OK;
  if (status != RWKV_OK)
    return fail(RWKV_EXIT_ERROR);
  if (rwkv_session_totals(s).n_fed == 0 && !interrupted)
    return fail(RWKV_EXIT_ERROR, "the prompt has no tokens");
  return RWKV_EXIT_OK;
}

/// Reads a line of stdin; false at the end or on Ctrl-C. `tooLong` is set
/// (and `line` emptied) for a line over kMaxMessage bytes.
bool Run::readLine(std::string &line, bool &tooLong) {
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

/// --chat: "User: MSG\n\nAssistant:" per turn, replies stop at "\n\n"; turn
/// k samples with seed + k.
int Run::chat(rwkv_session *s, const rwkv_generate_params &p) {
  for (uint64_t turn = 0; !interrupted && !ferror(stdout); ++turn) {
    fmt::print("User: ");
    fflush(stdout);
    std::string line;
    bool tooLong;
    if (!readLine(line, tooLong))
      break;
    if (tooLong) {
      fail(RWKV_EXIT_ERROR, "the message is longer than {} bytes: skipped",
           kMaxMessage);
      continue;
    }
    rwkv_generate_params q = p;
    q.sampling.seed = p.sampling.seed + turn;
    rwkv_generate_result t;
    int status = rwkv_session_chat(s, line.data(), line.size(), &q, r.mode,
                                   r.chunk, emitStdout, this, &t, err,
                                   sizeof err);
    if (status == RWKV_ERROR_ARGUMENT) {
      fail(RWKV_EXIT_ERROR); // e.g. not UTF-8: the next message may be fine
      continue;
    }
    if (status != RWKV_OK)
      return fail(RWKV_EXIT_ERROR);
    if (t.stop == RWKV_STOP_EMPTY)
      continue;
    fmt::print("\n\n");
    fflush(stdout);
    interrupted = 0; // Ctrl-C ends a reply, not the chat
  }
  fmt::print("\n");
  return RWKV_EXIT_OK;
}

/// A prompt, -f, --chat or --ppl on the model and the linked tokenizer.
int Run::text(const rwkv_tokenizer *tok) {
  rwkv_model *m = openModel();
  if (!m)
    return RWKV_EXIT_ERROR;
  rwkv_session *s = rwkv_session_new(m, tok, err, sizeof err);
  rwkv_state *st = s ? rwkv_session_state(s) : nullptr;
  int status = RWKV_EXIT_OK;
  if (!s)
    status = fail(RWKV_EXIT_ERROR);
  else if (r.state_in &&
           rwkv_state_load_file(st, r.state_in, err, sizeof err) != RWKV_OK)
    status = fail(RWKV_EXIT_ERROR);
  if (status != RWKV_EXIT_OK) {
    rwkv_session_free(s);
    rwkv_model_close(m);
    return status;
  }
  installSigint();
  rwkv_generate_params p = r.gen;
  if (!r.seed_given)
    p.sampling.seed =
        uint64_t(
            std::chrono::steady_clock::now().time_since_epoch().count()) ^
        (uint64_t(getpid()) << 32);
  if (r.verbose && p.sampling.temperature > 0)
    fmt::print(stderr, "seed: {}\n", p.sampling.seed);

  if (r.ppl_file) {
    status = perplexity(st, tok);
  } else if ((status = feedPrompt(s)) == RWKV_EXIT_OK) {
    if (r.chat)
      status = chat(s, p);
    else if (!interrupted &&
             rwkv_session_generate(s, &p, emitStdout, this, nullptr, err,
                                   sizeof err) != RWKV_OK)
      status = fail(RWKV_EXIT_ERROR);
    rwkv_generate_result t = rwkv_session_totals(s);
    if (r.verbose && (r.chat || status == RWKV_EXIT_OK))
      fmt::print(stderr,
                 "\nprompt: {} tokens, {:.1f} ms ({:.1f} tokens/s)\n"
                 "generation: {} tokens, {:.1f} ms ({:.1f} tokens/s)\n",
                 t.n_fed, t.fed_ms, perSecond(t.n_fed, t.fed_ms),
                 t.n_generated, t.generate_ms,
                 perSecond(t.n_generated, t.generate_ms));
  }
  if (status == RWKV_EXIT_OK && !saveState(st))
    status = RWKV_EXIT_ERROR;
  rwkv_session_free(s);
  rwkv_model_close(m);
  return status;
}

/// The stdout check: a failed write anywhere is an error.
int Run::finish(int status) {
  errno = 0;
  if (fflush(stdout) != 0 && stdoutErrno == 0)
    stdoutErrno = errno;
  if (ferror(stdout) && status == RWKV_EXIT_OK)
    status = fail(RWKV_EXIT_ERROR, "cannot write to stdout: {}",
                  stdoutErrno ? strerror(stdoutErrno) : "a write failed");
  return status;
}

/// The generated code allocates its (T, C) activation buffers in every
/// sequence call and frees them on return. By default glibc gives the top
/// of the heap (and any buffer over 128 KiB, mapped on its own) back to the
/// kernel at once, so every call faults its buffers in afresh: twice the
/// time of a prefill in chunks of 16 (docs/performance.md). The command
/// line owns its process: it keeps freed memory for the next call.
void keepFreedMemory() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20); // glibc's largest
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

int Run::run() {
  keepFreedMemory();
  if (r.info) {
    rwkv_model_describe(stdout); // a failed write: finish reports it
    if (!r.has_tokens && !r.bench && !r.prompt && !r.prompt_file && !r.chat &&
        !r.ppl_file && !r.tokenize && !r.has_detokenize)
      return finish(RWKV_EXIT_OK);
  }
  if (int status = rwkv_cli_check(&r, err, sizeof err))
    return fail(status);
  const rwkv_model_desc &d = rwkv_model_descriptor;
  if (r.prompt || r.prompt_file || r.chat || r.ppl_file || r.tokenize ||
      r.has_detokenize) {
    rwkv_tokenizer *tok = rwkv_tokenizer_open_linked(
        size_t(d.n_vocab > 0 ? d.n_vocab : 0), err, sizeof err);
    if (!tok)
      return fail(RWKV_EXIT_ERROR);
    int status;
    if (r.tokenize || r.has_detokenize)
      status = tokenizer(tok);
    // -f and --ppl files are checked as they are read (rwkv_feed_file).
    else if (r.prompt && !r.ppl_file && !r.prompt_file &&
             !checkUtf8(r.prompt, strlen(r.prompt), "the prompt"))
      status = RWKV_EXIT_USAGE;
    else
      status = text(tok);
    rwkv_tokenizer_close(tok);
    return finish(status);
  }
  rwkv_model *m = openModel();
  if (!m)
    return finish(RWKV_EXIT_ERROR);
  int status = r.has_tokens ? tokens(m) : RWKV_EXIT_OK;
  if (status == RWKV_EXIT_OK && r.bench)
    status = bench(m);
  rwkv_model_close(m);
  return finish(status);
}

} // namespace

extern "C" int rwkv_cli_run(const rwkv_cli_request *r, const char *prog) {
  if (!r)
    return RWKV_EXIT_USAGE;
  return Run(*r, prog ? prog : "model").run();
}
