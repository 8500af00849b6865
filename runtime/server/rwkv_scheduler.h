//===- rwkv_scheduler.h - Continuous batching over rwkv_eval_batch -*- C++ -*-===//
//
// One thread runs the model for every request of the server. Each step it
// admits waiting requests into free slots (up to `parallel`), drops the
// cancelled ones, and makes one rwkv_eval_batch call over every active
// sequence:
//
//   prefilling  the next <= prefillChunk tokens of its prompt (chunked so
//               that a long prompt does not stall the others' decoding)
//   decoding    the token sampled after the last step (one token)
//
// then samples a token for each sequence whose logits are new. Sequences
// join and leave the batch at every step. A request starts from the state
// its HTTP thread found in the state cache (only the rest of its prompt is
// prefilled) and ends with the state after its conversation, for the HTTP
// thread to store.
//
// Thread-safety: submit/cancel/stats from any thread; a Request's outputs
// are guarded by its mutex.
//
//===----------------------------------------------------------------------===//

#ifndef RWKV_SCHEDULER_H
#define RWKV_SCHEDULER_H

#include "rwkv_runtime.h"
#include "rwkv_state_cache.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rwkv_serving {

/// The log-probability of one generated token and the top alternatives
/// (OpenAI's logprobs.content[i]).
struct TokenLogprob {
  int32_t id;
  double logprob;
  std::vector<std::pair<int32_t, double>> top; // most likely first
};

/// One generation: what the HTTP thread asks, and what the scheduler
/// writes back (under `mu`, with `cv` notified).
struct Request {
  // ---- in (set before submit, then read-only)
  std::vector<int32_t> prompt; // >= 1 token
  CachedState cached;          // nTokens 0: from the initial state
  rwkv_sampler_params sampling;
  uint64_t maxTokens = 16;
  std::vector<std::string> stops; // stop strings (not emitted)
  bool banEos = false;            // chat: never sample end of text
  bool chat = false; // the reply's first spaces dropped; after max_tokens
                     // "\n\n" is fed, ending the turn (rwkv_chat_turn)
  int topLogprobs = -1;           // >= 0: record logprobs with this many
  bool keepState = false;         // return the final state (state cache)

  // ---- out, guarded by mu
  std::mutex mu;
  std::condition_variable cv;
  std::string text;   // emitted, not yet taken by the HTTP thread
  std::vector<TokenLogprob> logprobs;
  bool started = false;  // admitted into the batch
  bool done = false;
  std::string finishReason; // "stop" or "length"
  std::string error;        // non-empty: the generation failed
  uint64_t completionTokens = 0;
  std::vector<int32_t> conversation; // prompt + generated tokens, all fed
  std::vector<float> finalState;     // after `conversation` (keepState)
  std::vector<float> promptState;    // after `prompt` (keepState)

  std::atomic<bool> cancelled{false}; // the client left or timed out
};

struct SchedulerStats {
  size_t queued = 0, active = 0, lastBatch = 0;
  uint64_t steps = 0, promptTokens = 0, generatedTokens = 0;
  double tokensPerSecond = 0; // generated, over the last 10 s
};

class Scheduler {
public:
  Scheduler(const rwkv_model *model, const rwkv_tokenizer *tok,
            size_t parallel, size_t queueCapacity, size_t prefillChunk);
  ~Scheduler(); // shutdown()

  /// Stops the thread; the requests in the batch and in the queue end with
  /// an error, later submits are refused. Idempotent.
  void shutdown();

  /// Queues `r`; false when the queue is full.
  bool submit(const std::shared_ptr<Request> &r);
  /// Wakes the thread so that a cancelled request leaves at once.
  void wake();
  SchedulerStats stats();

private:
  struct Seq;
  void run();
  bool admit(Seq &s);
  void afterLogits(Seq &s, float *logits);
  void keepPromptState(Seq &s);
  void finish(Seq &s, const char *reason, const std::string &error = "");

  const rwkv_model *model;
  const rwkv_tokenizer *tok;
  const size_t parallel, queueCapacity, prefillChunk, vocab;
  std::vector<int32_t> turnEnd; // "\n\n" tokenized: ends a chat turn

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Request>> queue;
  bool stopping = false;
  std::vector<std::unique_ptr<Seq>> active; // scheduler thread only
  std::vector<rwkv_state *> spare; // states of finished requests, reused

  std::mutex statsMu;
  SchedulerStats st;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>>
      recent; // (step end, tokens generated in it), last 10 s
  std::thread thread;
};

} // namespace rwkv_serving

#endif // RWKV_SCHEDULER_H
