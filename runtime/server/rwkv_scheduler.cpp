//===- rwkv_scheduler.cpp - Continuous batching over rwkv_eval_batch ------===//
//
//   queue ──admit (free slot)──▶ active ──one rwkv_eval_batch per step──▶
//     prefill: prompt[pos, pos + chunk)      logits only after its last chunk
//     decode:  the token sampled last step   logits → sample → next token
//   ──finish (stop, length, cancelled, error)──▶ slot free for the queue
//
// Generation follows rwkv_generate (rwkv_generate.cpp): sample with the
// request's sampler, stop before feeding end of text, else feed the token
// (next step), record it with ChatRWKV's occurrence weight and stream its
// bytes through the Emitter (stop strings, UTF-8); the token that completes
// a stop string or reaches max_tokens is fed too, so the final state is
// that of prompt + every generated token (what the state cache keeps).
//
//===----------------------------------------------------------------------===//

#include "rwkv_scheduler.h"

#include "rwkv_emitter.h"
#include "rwkv_internal.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace rwkv_serving {

using Clock = std::chrono::steady_clock;

/// A request in the batch: its state, sampler and emitter.
struct Scheduler::Seq {
  std::shared_ptr<Request> r;
  rwkv_state *state = nullptr;
  rwkv_sampler *sampler = nullptr;
  std::unique_ptr<rwkv_internal::Emitter> emitter;
  size_t pos = 0;          // prompt tokens fed
  const char *finishing = nullptr; // finish after feeding `feed`
  std::vector<int32_t> feed;       // `next`, and "\n\n" ending a chat turn
  bool emittedAny = false;

  ~Seq() {
    rwkv_state_free(state);
    rwkv_sampler_free(sampler);
  }

  /// The emitter's callback: text to the request (leading spaces of a chat
  /// reply dropped); nonzero when the client has gone.
  static int emit(void *user, const char *text, size_t n) {
    Seq &s = *static_cast<Seq *>(user);
    Request &r = *s.r;
    if (r.chat && !s.emittedAny)
      while (n && *text == ' ')
        ++text, --n;
    if (n) {
      s.emittedAny = true;
      std::lock_guard<std::mutex> lock(r.mu);
      r.text.append(text, n);
      r.cv.notify_all();
    }
    return r.cancelled ? 1 : 0;
  }
};

Scheduler::Scheduler(const rwkv_model *model, const rwkv_tokenizer *tok,
                     size_t parallel, size_t queueCapacity,
                     size_t prefillChunk)
    : model(model), tok(tok), parallel(std::max<size_t>(parallel, 1)),
      queueCapacity(queueCapacity),
      prefillChunk(std::max<size_t>(prefillChunk, 1)),
      vocab(rwkv_n_vocab(model)) {
  size_t k = 0;
  char err[256];
  rwkv_tokenize(tok, "\n\n", 2, nullptr, 0, &k, err, sizeof err);
  turnEnd.resize(k);
  rwkv_tokenize(tok, "\n\n", 2, turnEnd.data(), k, &k, err, sizeof err);
  thread = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  shutdown();
  for (rwkv_state *state : spare)
    rwkv_state_free(state);
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping)
      return;
    stopping = true;
  }
  cv.notify_all();
  thread.join();
  for (auto &s : active)
    finish(*s, "stop", "the server is shutting down");
  active.clear();
  std::lock_guard<std::mutex> lock(mu);
  for (auto &r : queue) {
    std::lock_guard<std::mutex> rlock(r->mu);
    r->error = "the server is shutting down";
    r->done = true;
    r->cv.notify_all();
  }
  queue.clear();
}

bool Scheduler::submit(const std::shared_ptr<Request> &r) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stopping || queue.size() >= queueCapacity)
      return false;
    queue.push_back(r);
  }
  cv.notify_all();
  return true;
}

void Scheduler::wake() { cv.notify_all(); }

SchedulerStats Scheduler::stats() {
  SchedulerStats s;
  {
    std::lock_guard<std::mutex> lock(mu);
    s.queued = queue.size();
  }
  std::lock_guard<std::mutex> lock(statsMu);
  s.active = st.active;
  s.lastBatch = st.lastBatch;
  s.steps = st.steps;
  s.promptTokens = st.promptTokens;
  s.generatedTokens = st.generatedTokens;
  auto now = Clock::now();
  uint64_t n = 0;
  for (auto &[t, k] : recent)
    if (now - t <= std::chrono::seconds(10))
      n += k;
  s.tokensPerSecond = double(n) / 10.0;
  return s;
}

/// Sets up a sequence's state (the cached one, or the initial state) and
/// sampler. False: finished with the error.
bool Scheduler::admit(Seq &s) {
  Request &r = *s.r;
  char err[256];
  if (!spare.empty()) {
    s.state = spare.back();
    spare.pop_back();
    if (!r.cached.nTokens)
      rwkv_state_clear(s.state);
  } else {
    s.state = rwkv_state_new(model, err, sizeof err);
  }
  if (s.state && r.cached.nTokens &&
      rwkv_state_write(s.state, r.cached.state.data(), err, sizeof err) !=
          RWKV_OK) {
    rwkv_state_free(s.state);
    s.state = nullptr;
  }
  if (s.state)
    s.sampler = rwkv_sampler_create(vocab, &r.sampling, err, sizeof err);
  if (!s.state || !s.sampler) {
    finish(s, "stop", err);
    return false;
  }
  int32_t eos = rwkv_tokenizer_eos(tok);
  if (r.banEos && eos >= 0)
    rwkv_sampler_ban(s.sampler, eos);
  for (size_t id = rwkv_tokenizer_n_tokens(tok); id < vocab; ++id)
    rwkv_sampler_ban(s.sampler, int32_t(id));
  s.pos = r.cached.nTokens;
  r.cached.state = {}; // uploaded: free it
  s.emitter = std::make_unique<rwkv_internal::Emitter>(r.stops, Seq::emit, &s);
  {
    std::lock_guard<std::mutex> lock(r.mu);
    r.started = true;
    r.conversation = r.prompt;
  }
  return true;
}

/// The logits after the prompt or after the last generated token: record
/// the log-probabilities, sample the next token (fed in the next step).
void Scheduler::afterLogits(Seq &s, float *logits) {
  Request &r = *s.r;
  if (r.completionTokens >= r.maxTokens)
    return finish(s, "length");
  if (r.cancelled || s.emitter->cancelled)
    return finish(s, "stop", "cancelled");
  TokenLogprob lp{};
  bool wantLogprobs = r.topLogprobs >= 0;
  double lse = 0;
  if (wantLogprobs)
    lse = rwkv_internal::logSumExp(logits, vocab);
  std::vector<float> raw; // the sampler changes the logits in place
  if (wantLogprobs)
    raw.assign(logits, logits + vocab);
  int32_t id = rwkv_sampler_sample(s.sampler, logits);
  if (id < 0 || id == rwkv_tokenizer_eos(tok))
    return finish(s, "stop");
  if (wantLogprobs) {
    lp.id = id;
    lp.logprob = double(raw[size_t(id)]) - lse;
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    size_t k = std::min(size_t(r.topLogprobs), vocab);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [&](int32_t a, int32_t b) {
                        return raw[size_t(a)] > raw[size_t(b)] ||
                               (raw[size_t(a)] == raw[size_t(b)] && a < b);
                      });
    for (size_t i = 0; i < k; ++i)
      lp.top.emplace_back(order[i], double(raw[size_t(order[i])]) - lse);
    std::lock_guard<std::mutex> lock(r.mu);
    r.logprobs.push_back(std::move(lp));
  }
  rwkv_sampler_accept(s.sampler, id, rwkv_internal::occurrenceWeight(tok, id));
  {
    std::lock_guard<std::mutex> lock(r.mu);
    ++r.completionTokens;
  }
  const uint8_t *b;
  size_t n = rwkv_token_bytes(tok, id, &b);
  s.feed = {id};
  if (s.emitter->push(b, n)) {
    s.finishing = "stop";
  } else if (r.completionTokens >= r.maxTokens) {
    s.finishing = "length";
    if (r.chat) // the turn ends as rwkv_chat_turn's: "\n\n" fed
      s.feed.insert(s.feed.end(), turnEnd.begin(), turnEnd.end());
  }
}

/// The state after the prompt, for the cache (a later request that
/// shares the prompt but not the reply: a regeneration, an edited turn).
void Scheduler::keepPromptState(Seq &s) {
  if (!s.r->keepState)
    return;
  std::vector<float> state(rwkv_state_size(model) / sizeof(float));
  char err[256];
  if (rwkv_state_read(s.state, state.data(), err, sizeof err) != RWKV_OK)
    return;
  std::lock_guard<std::mutex> lock(s.r->mu);
  s.r->promptState = std::move(state);
}

void Scheduler::finish(Seq &s, const char *reason, const std::string &error) {
  Request &r = *s.r;
  if (s.emitter && error.empty())
    s.emitter->finish();
  std::vector<float> state;
  if (error.empty() && r.keepState && s.state) {
    state.resize(rwkv_state_size(model) / sizeof(float));
    char err[256];
    if (rwkv_state_read(s.state, state.data(), err, sizeof err) != RWKV_OK)
      state.clear();
  }
  std::lock_guard<std::mutex> lock(r.mu);
  r.finishReason = reason;
  r.error = error;
  r.finalState = std::move(state);
  r.done = true;
  r.cv.notify_all();
  // Kept for the next request: a fresh state (0.1B: 2.4 MB) costs its
  // page faults again, which on this VM took longer than a decode step.
  if (s.state && spare.size() < parallel)
    spare.push_back(s.state);
  else
    rwkv_state_free(s.state);
  s.state = nullptr;
}

void Scheduler::run() {
  std::vector<rwkv_state *> states;
  std::vector<const int32_t *> tokens;
  std::vector<size_t> counts;
  std::vector<float *> logits;
  std::vector<bool> wants;
  // The step's logits, a row of n_vocab floats per sequence: first the
  // sequences of one token, in order, so that the batch entry writes them
  // in place (rwkv_eval_batch), then the others that want logits.
  std::vector<float> rows;
  while (true) {
    std::vector<std::unique_ptr<Seq>> admitted;
    {
      std::unique_lock<std::mutex> lock(mu);
      if (stopping)
        return;
      // A client that left while waiting leaves the queue.
      for (auto it = queue.begin(); it != queue.end();)
        if ((*it)->cancelled) {
          std::lock_guard<std::mutex> rlock((*it)->mu);
          (*it)->error = "cancelled";
          (*it)->done = true;
          (*it)->cv.notify_all();
          it = queue.erase(it);
        } else {
          ++it;
        }
      while (active.size() + admitted.size() < parallel && !queue.empty()) {
        admitted.push_back(std::make_unique<Seq>());
        admitted.back()->r = std::move(queue.front());
        queue.pop_front();
      }
      if (active.empty() && admitted.empty()) {
        cv.wait_for(lock, std::chrono::milliseconds(200));
        continue;
      }
    }
    for (auto &s : admitted)
      if (!s->r->cancelled && admit(*s))
        active.push_back(std::move(s));
      else if (s->r->cancelled)
        finish(*s, "stop", "cancelled");
    // A client that left frees its slot now.
    for (auto &s : active)
      if (s->r->cancelled && s->state)
        finish(*s, "stop", "cancelled");
    active.erase(std::remove_if(active.begin(), active.end(),
                                [](auto &s) { return !s->state; }),
                 active.end());
    {
      std::lock_guard<std::mutex> lock(statsMu);
      st.active = active.size();
    }
    if (active.empty())
      continue;

    // One step: every active sequence advances by its chunk or its token.
    states.clear();
    tokens.clear();
    counts.clear();
    logits.clear();
    wants.clear();
    uint64_t prefilled = 0, decoded = 0;
    size_t singles = 0;
    for (auto &s : active) {
      states.push_back(s->state);
      const std::vector<int32_t> &p = s->r->prompt;
      bool want;
      if (s->pos < p.size()) {
        size_t n = std::min(prefillChunk, p.size() - s->pos);
        tokens.push_back(p.data() + s->pos);
        counts.push_back(n);
        want = s->pos + n == p.size(); // only after the prompt's last chunk
        prefilled += n;
      } else {
        tokens.push_back(s->feed.data());
        counts.push_back(s->feed.size());
        want = !s->finishing;
        ++decoded;
      }
      singles += counts.back() == 1;
      wants.push_back(counts.back() == 1 || want);
    }
    size_t wanted = size_t(std::count(wants.begin(), wants.end(), true));
    if (rows.size() < wanted * vocab)
      rows.resize(wanted * vocab);
    for (size_t i = 0, single = 0, other = singles; i < active.size(); ++i)
      logits.push_back(counts[i] == 1 ? rows.data() + single++ * vocab
                       : wants[i]     ? rows.data() + other++ * vocab
                                      : nullptr);
    char err[256] = "";
    int status = rwkv_eval_batch(states.data(), tokens.data(), counts.data(),
                                 active.size(), logits.data(), err, sizeof err);
    for (size_t i = 0; i < active.size(); ++i) {
      Seq &s = *active[i];
      if (status != RWKV_OK) {
        finish(s, "stop", err);
        continue;
      }
      const std::vector<int32_t> &p = s.r->prompt;
      if (s.pos < p.size()) {
        s.pos += counts[i];
        if (s.pos == p.size()) {
          keepPromptState(s);
          afterLogits(s, logits[i]);
        }
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(s.r->mu);
        s.r->conversation.insert(s.r->conversation.end(), s.feed.begin(),
                                 s.feed.end());
      }
      if (s.finishing)
        finish(s, s.finishing);
      else
        afterLogits(s, logits[i]);
    }
    active.erase(std::remove_if(active.begin(), active.end(),
                                [](auto &s) { return !s->state; }),
                 active.end());
    std::lock_guard<std::mutex> lock(statsMu);
    st.active = active.size();
    st.lastBatch = states.size();
    ++st.steps;
    st.promptTokens += prefilled;
    st.generatedTokens += decoded;
    auto now = Clock::now();
    recent.emplace_back(now, decoded);
    while (!recent.empty() && now - recent.front().first > std::chrono::seconds(10))
      recent.pop_front();
  }
}

} // namespace rwkv_serving
