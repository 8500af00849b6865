//===- rwkv_generate.cpp - Generation, chat turns and perplexity ----------===//
//
// The text features of rwkv_runtime.h on a state handle:
//
//   rwkv_feed_text   text --tokenize--> ids --rwkv_state_eval--> logits
//   rwkv_generate    logits --sample--> id --forward (RNN)--> logits ...
//                    id --bytes--> stop strings --UTF-8 stream--> emit()
//   rwkv_chat_turn   "User: MSG\n\nAssistant:" fed, reply generated
//   rwkv_perplexity  ids --rwkv_state_eval_all (chunks)--> log-softmax rows
//
// Built without exceptions; every failure is a status code plus a message.
//
//===----------------------------------------------------------------------===//

#include "rwkv_emitter.h"
#include "rwkv_internal.h"
#include "rwkv_runtime.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>


namespace {

using rwkv_internal::Emitter;
using rwkv_internal::occurrenceWeight;
using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Why a text is not valid UTF-8, or an empty string.
bool checkUtf8(const char *text, size_t len, const char *what, char *err,
               size_t errlen) {
  size_t v = rwkv_utf8_valid_prefix(text, len);
  if (v == len)
    return true;
  RWKV_SET_ERROR(err, errlen, "{} is not valid UTF-8: byte {:#04x} at offset {}",
           what, unsigned(uint8_t(text[v])), v);
  return false;
}

int generate(rwkv_state *state, const rwkv_tokenizer *tok, float *logits,
             const rwkv_generate_params &p,
             const std::vector<std::string> &stops, bool banEos,
             rwkv_emit_fn emit, void *user, rwkv_generate_result &r,
             char *err, size_t errlen) {
  const rwkv_model *m = rwkv_state_get_model(state);
  size_t vocab = rwkv_n_vocab(m);
  rwkv_sampler *s = rwkv_sampler_create(vocab, &p.sampling, err, errlen);
  if (!s)
    return RWKV_ERROR_ARGUMENT;
  int32_t eos = rwkv_tokenizer_eos(tok);
  if (banEos && eos >= 0)
    rwkv_sampler_ban(s, eos);
  // Logits past the vocabulary (padding, e.g. 20B's 50277 tokens in 50304
  // logits) are never sampled.
  for (size_t id = rwkv_tokenizer_n_tokens(tok); id < vocab; ++id)
    rwkv_sampler_ban(s, int32_t(id));
  Emitter out(stops, emit, user);
  auto t0 = Clock::now();
  int status = RWKV_OK;
  r.stop = RWKV_STOP_MAX_TOKENS;
  for (uint64_t i = 0; i < p.max_tokens; ++i) {
    if (out.cancelled) {
      r.stop = RWKV_STOP_CALLBACK;
      break;
    }
    int32_t id = rwkv_sampler_sample(s, logits);
    if (id < 0) {
      r.stop = RWKV_STOP_NO_TOKEN;
      break;
    }
    if (id == eos) {
      r.stop = RWKV_STOP_EOS;
      break;
    }
    if (std::find(p.stop_tokens, p.stop_tokens + p.n_stop_tokens, id) !=
        p.stop_tokens + p.n_stop_tokens) {
      r.stop = RWKV_STOP_TOKEN;
      break;
    }
    status = rwkv_state_eval(state, &id, 1, logits, RWKV_EVAL_RNN, 0, err,
                             errlen);
    if (status != RWKV_OK)
      break;
    rwkv_sampler_accept(s, id, occurrenceWeight(tok, id));
    ++r.n_generated;
    const uint8_t *b;
    size_t n = rwkv_token_bytes(tok, id, &b);
    if (out.push(b, n)) {
      r.stop = RWKV_STOP_STRING;
      break;
    }
  }
  if (r.stop == RWKV_STOP_MAX_TOKENS && out.cancelled)
    r.stop = RWKV_STOP_CALLBACK;
  out.finish();
  r.generate_ms += msSince(t0);
  rwkv_sampler_free(s);
  return status;
}

/// Checks the parameters rwkv_generate takes and collects the stop strings.
int stopStrings(const rwkv_generate_params *p, std::vector<std::string> &out,
                char *err, size_t errlen) {
  if (!p)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "null generation parameters");
  if ((p->n_stop_strings && !p->stop_strings) ||
      (p->n_stop_tokens && !p->stop_tokens))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "null stop strings or stop tokens");
  for (size_t i = 0; i < p->n_stop_strings; ++i) {
    if (!p->stop_strings[i] || !*p->stop_strings[i])
      return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "stop string {} is empty", i + 1);
    out.push_back(p->stop_strings[i]);
  }
  return RWKV_OK;
}

/// A text file read in pieces of at most kPiece bytes, so that a file of any
/// size (or an endless stream) is tokenized and fed in constant memory. A
/// piece ends where no token can span the cut: after a '\n' followed by a
/// byte b that is not white space and that no token of the tokenizer holds
/// right after a '\n' (none of the RWKV world vocabulary does, and the 20B
/// pre-tokenizer splits there), so the tokens are those of the whole text.
/// A piece without such a place (a line longer than kPiece) is cut before
/// its last UTF-8 character. Every piece is checked: UTF-8 and no
/// NUL byte (not text: `-f /dev/zero`), errors naming the file and the
/// offset in it.
class TextFile {
public:
  static constexpr size_t kPiece = size_t(1) << 20;

  TextFile(const char *path, const rwkv_tokenizer *tok)
      : path(path), joinsNewline(256, false) {
    const size_t n = rwkv_tokenizer_n_tokens(tok);
    for (size_t id = 0; id < n; ++id) {
      const uint8_t *b;
      size_t len = rwkv_token_bytes(tok, int32_t(id), &b);
      for (size_t k = 0; k + 1 < len; ++k)
        if (b[k] == '\n')
          joinsNewline[b[k + 1]] = true;
    }
  }
  ~TextFile() {
    if (f)
      fclose(f);
  }

  int open(char *err, size_t errlen) {
    f = fopen(path, "rb");
    if (!f)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                       "cannot read the file '{}': {}", path,
                       strerror(errno));
    return RWKV_OK;
  }

  /// The next piece in `piece`; an empty piece at the end of the file.
  int next(std::string &piece, char *err, size_t errlen) {
    piece.clear();
    while (!eof && buf.size() < kPiece) {
      size_t old = buf.size();
      buf.resize(kPiece);
      size_t got = fread(&buf[old], 1, kPiece - old, f);
      buf.resize(old + got);
      if (got == 0) {
        if (ferror(f))
          return RWKV_FAIL(err, errlen, RWKV_ERROR_IO,
                           "cannot read the file '{}': {}", path,
                           strerror(errno));
        eof = true;
      }
    }
    if (buf.empty()) {
      if (consumed == 0)
        return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                         "the file '{}' is empty", path);
      return RWKV_OK;
    }
    size_t cut = eof ? buf.size() : cutPoint();
    if (const void *nul = memchr(buf.data(), 0, cut))
      return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                       "the file '{}' is not text: a NUL byte at offset {}",
                       path,
                       consumed + size_t(static_cast<const char *>(nul) -
                                         buf.data()));
    size_t v = rwkv_utf8_valid_prefix(buf.data(), cut);
    if (v != cut)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_FORMAT,
                       "the text of '{}' is not valid UTF-8: byte {:#04x} "
                       "at offset {}",
                       path, unsigned(uint8_t(buf[v])), consumed + v);
    piece.assign(buf, 0, cut);
    buf.erase(0, cut);
    consumed += cut;
    return RWKV_OK;
  }

  /// Bytes handed out so far.
  uint64_t bytes() const { return consumed; }

private:
  size_t cutPoint() const {
    for (size_t i = buf.size() - 1; i > 0; --i)
      if (buf[i - 1] == '\n' && !isspace(uint8_t(buf[i])) &&
          !joinsNewline[uint8_t(buf[i])])
        return i;
    // One long line: before the start of its last character.
    size_t i = buf.size() - 1;
    while (i > 0 && (uint8_t(buf[i]) & 0xC0) == 0x80 && buf.size() - i < 4)
      --i;
    return i > 0 ? i : buf.size();
  }

  const char *path;
  std::vector<bool> joinsNewline; // [b]: a token holds '\n' then byte b
  FILE *f = nullptr;
  std::string buf; // read, not yet handed out
  bool eof = false;
  uint64_t consumed = 0;
};

/// Tokenizes a piece checked by TextFile (valid UTF-8).
int tokenizePiece(const rwkv_tokenizer *tok, const std::string &piece,
                  std::vector<int32_t> &ids, char *err, size_t errlen) {
  size_t n = 0;
  if (int status = rwkv_tokenize(tok, piece.data(), piece.size(), nullptr, 0,
                                 &n, err, errlen))
    return status;
  ids.resize(n);
  return rwkv_tokenize(tok, piece.data(), piece.size(), ids.data(), n, &n,
                       err, errlen);
}

} // namespace

extern "C" {

void rwkv_generate_params_default(rwkv_generate_params *p) {
  memset(p, 0, sizeof *p);
  rwkv_sampler_params_default(&p->sampling);
  p->max_tokens = 100;
}

int rwkv_feed_text(rwkv_state *state, const rwkv_tokenizer *tok,
                   const char *text, size_t len, float *logits, int mode,
                   size_t chunk, rwkv_generate_result *result, char *err,
                   size_t errlen) {
  if (!state || !tok || !logits || (len && !text))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                    "rwkv_feed_text: null state, tokenizer, text or logits");
  if (!checkUtf8(text, len, "the text", err, errlen))
    return RWKV_ERROR_ARGUMENT;
  size_t n = 0;
  if (int status =
          rwkv_tokenize(tok, text, len, nullptr, 0, &n, err, errlen))
    return status;
  if (n == 0)
    return RWKV_OK;
  std::vector<int32_t> ids(n);
  if (int status =
          rwkv_tokenize(tok, text, len, ids.data(), n, &n, err, errlen))
    return status;
  auto t0 = Clock::now();
  if (int status = rwkv_state_eval(state, ids.data(), n, logits, mode, chunk,
                                   err, errlen))
    return status;
  if (result) {
    result->fed_ms += msSince(t0);
    result->n_fed += n;
  }
  return RWKV_OK;
}

int rwkv_generate(rwkv_state *state, const rwkv_tokenizer *tok, float *logits,
                  const rwkv_generate_params *p, rwkv_emit_fn emit, void *user,
                  rwkv_generate_result *result, char *err, size_t errlen) {
  if (!state || !tok || !logits)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                    "rwkv_generate: null state, tokenizer or logits");
  std::vector<std::string> stops;
  if (int status = stopStrings(p, stops, err, errlen))
    return status;
  rwkv_generate_result r = {};
  int status = generate(state, tok, logits, *p, stops, p->ban_eos != 0, emit,
                        user, r, err, errlen);
  if (result)
    *result = r;
  return status;
}

int rwkv_chat_turn(rwkv_state *state, const rwkv_tokenizer *tok,
                   float *logits, const char *message, size_t len,
                   const rwkv_generate_params *p, int mode, size_t chunk,
                   rwkv_emit_fn emit, void *user,
                   rwkv_generate_result *result, char *err, size_t errlen) {
  if (!state || !tok || !logits || (len && !message))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT, "rwkv_chat_turn: null state, tokenizer, "
                                 "message or logits");
  std::vector<std::string> stops;
  if (int status = stopStrings(p, stops, err, errlen))
    return status;
  stops.push_back("\n\n");
  rwkv_generate_result r = {};
  // ChatRWKV: \r\n -> \n, no blank lines inside a message, stripped.
  std::string msg;
  for (size_t i = 0; i < len; ++i)
    if (message[i] != '\r')
      msg += message[i];
  size_t pos;
  while ((pos = msg.find("\n\n")) != std::string::npos)
    msg.replace(pos, 2, "\n");
  size_t b = msg.find_first_not_of(" \t\n\r");
  msg = b == std::string::npos
            ? std::string()
            : msg.substr(b, msg.find_last_not_of(" \t\n\r") - b + 1);
  int status = RWKV_OK;
  if (msg.empty()) {
    r.stop = RWKV_STOP_EMPTY;
  } else if (!checkUtf8(msg.data(), msg.size(), "the message", err, errlen)) {
    status = RWKV_ERROR_ARGUMENT;
  } else {
    std::string turn = "User: " + msg + "\n\nAssistant:";
    status = rwkv_feed_text(state, tok, turn.data(), turn.size(), logits, mode,
                            chunk, &r, err, errlen);
    if (status == RWKV_OK) {
      // A stop asked for while the prompt was fed (Ctrl-C) is seen here: the
      // reply then has no token.
      static const char kAssistant[] = "Assistant:";
      if (emit && emit(user, kAssistant, sizeof kAssistant - 1) != 0)
        r.stop = RWKV_STOP_CALLBACK;
      else
        status = generate(state, tok, logits, *p, stops, /*banEos=*/true,
                          emit, user, r, err, errlen);
    }
    // A reply cut short (max_tokens, the callback) still ends with "\n\n" in
    // the state, so that the next turn has RWKV's format.
    if (status == RWKV_OK && r.stop != RWKV_STOP_STRING)
      status = rwkv_feed_text(state, tok, "\n\n", 2, logits, mode, chunk, &r,
                              err, errlen);
  }
  if (result)
    *result = r;
  return status;
}

int rwkv_perplexity(rwkv_state *state, const int32_t *tokens, size_t n,
                    size_t chunk, rwkv_progress_fn progress, void *user,
                    rwkv_perplexity_result *r, char *err, size_t errlen) {
  if (!state || !r || (n && !tokens))
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                    "rwkv_perplexity: null state, tokens or result");
  *r = rwkv_perplexity_result{};
  r->n_tokens = n;
  if (n < 2)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                    "the text has {} token(s); perplexity needs at least 2",
                    n);
  const rwkv_model *m = rwkv_state_get_model(state);
  const size_t vocab = rwkv_n_vocab(m);
  for (size_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || size_t(tokens[i]) >= vocab)
      return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                      "token {} (at position {}) is out of range: the "
                      "vocabulary has {} tokens (0..{})",
                      int(tokens[i]), i, vocab, vocab - 1);
  // Feed tokens[0..n-1): row t predicts tokens[t + 1]. The rows of logits
  // held take at most RWKV_SCRATCH_BUDGET (a 65,536-token vocabulary in
  // chunks of 4096 would take 1 GiB): fewer tokens per chunk if need be.
  const size_t total = n - 1,
               maxRows = std::max<size_t>(
                   1, RWKV_SCRATCH_BUDGET / (vocab * sizeof(float))),
               step = std::min({chunk ? chunk : rwkv_default_chunk(m),
                                rwkv_max_chunk(m), maxRows}),
               rows = std::min(step, total);
  std::unique_ptr<float[]> logits(new (std::nothrow) float[rows * vocab]);
  if (!logits)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_MEMORY,
                     "rwkv_perplexity: out of memory for {} rows of logits "
                     "({} bytes)",
                     rows, rows * vocab * sizeof(float));
  double nll = 0;
  size_t done = 0;
  while (done < total) {
    size_t len = std::min(step, total - done);
    if (int status = rwkv_state_eval_all(state, tokens + done, len,
                                         logits.get(), 0, err, errlen))
      return status;
    for (size_t t = 0; t < len; ++t) {
      const float *row = logits.get() + t * vocab;
      nll += rwkv_internal::logSumExp(row, vocab) -
             double(row[size_t(tokens[done + t + 1])]);
    }
    done += len;
    r->n_predictions = done;
    r->nll = nll;
    r->perplexity = std::exp(nll / double(done));
    if (progress && progress(user, done, total) != 0)
      break;
  }
  return RWKV_OK;
}

int rwkv_feed_file(rwkv_state *state, const rwkv_tokenizer *tok,
                   const char *path, float *logits, int mode, size_t chunk,
                   rwkv_progress_fn progress, void *user,
                   rwkv_generate_result *result, char *err, size_t errlen) {
  if (!state || !tok || !path || !logits)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_feed_file: null state, tokenizer, path or logits");
  TextFile file(path, tok);
  if (int status = file.open(err, errlen))
    return status;
  std::string piece;
  for (;;) {
    if (int status = file.next(piece, err, errlen))
      return status;
    if (piece.empty())
      return RWKV_OK;
    if (int status = rwkv_feed_text(state, tok, piece.data(), piece.size(),
                                    logits, mode, chunk, result, err, errlen))
      return status;
    if (progress && progress(user, size_t(file.bytes()), 0) != 0)
      return RWKV_OK;
  }
}

namespace {
/// Maps the progress of one piece's rwkv_perplexity to the whole file's.
struct PieceProgress {
  rwkv_progress_fn progress;
  void *user;
  size_t before; // predictions of the earlier pieces
  static int call(void *self, size_t done, size_t) {
    auto *p = static_cast<PieceProgress *>(self);
    return p->progress(p->user, p->before + done, 0);
  }
};
} // namespace

int rwkv_perplexity_file(rwkv_state *state, const rwkv_tokenizer *tok,
                         const char *path, size_t chunk,
                         rwkv_progress_fn progress, void *user,
                         rwkv_perplexity_result *r, char *err, size_t errlen) {
  if (!state || !tok || !path || !r)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "rwkv_perplexity_file: null state, tokenizer, path or "
                     "result");
  *r = rwkv_perplexity_result{};
  TextFile file(path, tok);
  if (int status = file.open(err, errlen))
    return status;
  std::string piece;
  std::vector<int32_t> ids, pieceIds; // ids: the last token before + piece
  for (;;) {
    if (int status = file.next(piece, err, errlen))
      return status;
    if (piece.empty())
      break;
    if (int status = tokenizePiece(tok, piece, pieceIds, err, errlen))
      return status;
    r->n_tokens += pieceIds.size();
    ids.insert(ids.end(), pieceIds.begin(), pieceIds.end());
    if (ids.size() < 2)
      continue; // wait for a second token
    // The state has seen everything before ids[0]; rwkv_perplexity feeds
    // ids[0..n-1) and scores ids[1..n), so ids.back() starts the next piece.
    PieceProgress pp{progress, user, size_t(r->n_predictions)};
    rwkv_perplexity_result pr;
    if (int status = rwkv_perplexity(
            state, ids.data(), ids.size(), chunk,
            progress ? PieceProgress::call : nullptr, &pp, &pr, err, errlen))
      return status;
    r->n_predictions += pr.n_predictions;
    r->nll += pr.nll;
    if (r->n_predictions)
      r->perplexity = std::exp(r->nll / double(r->n_predictions));
    if (pr.n_predictions < ids.size() - 1)
      return RWKV_OK; // stopped by `progress`
    ids.assign(1, ids.back());
  }
  if (r->n_predictions == 0)
    return RWKV_FAIL(err, errlen, RWKV_ERROR_ARGUMENT,
                     "the text of '{}' has {} token(s); perplexity needs at "
                     "least 2",
                     path, r->n_tokens);
  return RWKV_OK;
}

} // extern "C"
