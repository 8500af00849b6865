//===- rwkv_server.cpp - OpenAI-compatible HTTP endpoints -----------------===//
//
//   HTTP thread (cpp-httplib pool)            scheduler thread
//   ─────────────────────────────             ────────────────
//   parse + check JSON (400/404/413)
//   render chat → prompt, tokenize
//   state cache: longest cached prefix
//   submit (503 when the queue is full) ───▶  batch steps (rwkv_scheduler)
//   stream text / wait for the end     ◀───   text, finish, final state
//   store the final state in the cache
//   respond (JSON or server-sent events)
//
// Errors are OpenAI's error objects: {"error": {"message", "type", "param",
// "code"}}. One line per request goes to stderr (set_logger).
//
//===----------------------------------------------------------------------===//

#include "rwkv_server.h"

#include "rwkv_cli.h"
#include "rwkv_scheduler.h"
#include "rwkv_state_cache.h"

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>
#include <mutex>

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace rwkv_serving {
namespace {

/// A request the API refuses: status and OpenAI error fields.
struct ApiError {
  int status;
  std::string message, param, code;
  const char *type() const {
    return status == 404 ? "not_found_error"
           : status == 429 || status == 503 ? "server_overloaded"
           : status >= 500 ? "server_error"
                           : "invalid_request_error";
  }
  json body() const {
    return {{"error",
             {{"message", message},
              {"type", type()},
              {"param", param.empty() ? json() : json(param)},
              {"code", code.empty() ? json() : json(code)}}}};
  }
};

std::string dump(const json &j) {
  // Generated text may hold invalid UTF-8 (a byte-level tokenizer): replace.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// What the request log line says about a completion (set by the handler
/// and the stream, printed by the logger: all on the request's thread).
thread_local std::string tlsLogInfo;

/// The parameters of a completion, checked.
struct Sampling {
  rwkv_sampler_params sampling;
  uint64_t maxTokens;
  std::vector<std::string> stops;
  bool stream = false, includeUsage = false;
  int topLogprobs = -1;
};

double number(const json &body, const char *name, double def, double lo,
              double hi) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return def;
  if (!it->is_number())
    throw ApiError{400, fmt::format("'{}' must be a number", name), name,
                   "invalid_type"};
  double v = it->get<double>();
  if (!(v >= lo && v <= hi))
    throw ApiError{400, fmt::format("'{}' must be in [{}, {}]", name, lo, hi),
                   name, "invalid_value"};
  return v;
}

uint64_t integer(const json &body, const char *name, uint64_t def,
                 uint64_t hi) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return def;
  if (!it->is_number_integer() || (it->is_number_integer() && *it < 0) ||
      it->get<uint64_t>() > hi)
    throw ApiError{400,
                   fmt::format("'{}' must be an integer in [0, {}]", name, hi),
                   name, "invalid_value"};
  return it->get<uint64_t>();
}

bool boolean(const json &body, const char *name, bool def) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null())
    return def;
  if (!it->is_boolean())
    throw ApiError{400, fmt::format("'{}' must be true or false", name), name,
                   "invalid_type"};
  return it->get<bool>();
}

Sampling parseSampling(const json &body, uint64_t defaultMaxTokens,
                       size_t vocab) {
  Sampling s;
  rwkv_sampler_params_default(&s.sampling);
  // OpenAI's defaults (not ChatRWKV's): temperature 1, top_p 1, no
  // penalties; penalty_decay stays ChatRWKV's 0.996.
  s.sampling.temperature = float(number(body, "temperature", 1, 0, 100));
  s.sampling.top_p = float(number(body, "top_p", 1, 0, 1));
  if (s.sampling.top_p <= 0)
    throw ApiError{400, "'top_p' must be in (0, 1]", "top_p", "invalid_value"};
  s.sampling.top_k = int32_t(integer(body, "top_k", 0, INT32_MAX));
  s.sampling.presence_penalty =
      float(number(body, "presence_penalty", 0, -2, 2));
  s.sampling.frequency_penalty =
      float(number(body, "frequency_penalty", 0, -2, 2));
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer())
      throw ApiError{400, "'seed' must be an integer", "seed", "invalid_type"};
    s.sampling.seed = body["seed"].is_number_unsigned()
                          ? body["seed"].get<uint64_t>()
                          : uint64_t(body["seed"].get<int64_t>());
  } else {
    s.sampling.seed =
        uint64_t(std::chrono::system_clock::now().time_since_epoch().count());
  }
  s.maxTokens = integer(body, "max_tokens", defaultMaxTokens, 1u << 30);
  s.maxTokens = integer(body, "max_completion_tokens", s.maxTokens, 1u << 30);
  if (integer(body, "n", 1, 1u << 30) != 1)
    throw ApiError{400, "only 'n': 1 is supported", "n", "invalid_value"};
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    json list = it->is_array() ? *it : json::array({*it});
    if (list.size() > 4)
      throw ApiError{400, "'stop' takes at most 4 strings", "stop",
                     "invalid_value"};
    for (const json &x : list) {
      if (!x.is_string() || x.get<std::string>().empty())
        throw ApiError{400, "'stop' must be a non-empty string or a list of "
                            "them",
                       "stop", "invalid_type"};
      s.stops.push_back(x.get<std::string>());
    }
  }
  s.stream = boolean(body, "stream", false);
  if (auto it = body.find("stream_options"); it != body.end() && !it->is_null()) {
    if (!it->is_object())
      throw ApiError{400, "'stream_options' must be an object",
                     "stream_options", "invalid_type"};
    s.includeUsage = boolean(*it, "include_usage", false);
  }
  return s;
}

/// ChatRWKV's cleaning of a message: \r dropped, blank lines collapsed,
/// leading and trailing white space trimmed (rwkv_chat_turn).
std::string cleanMessage(std::string m) {
  m.erase(std::remove(m.begin(), m.end(), '\r'), m.end());
  std::string out;
  for (char c : m)
    if (!(c == '\n' && !out.empty() && out.back() == '\n'))
      out += c;
  size_t b = out.find_first_not_of(" \t\n"), e = out.find_last_not_of(" \t\n");
  return b == std::string::npos ? "" : out.substr(b, e - b + 1);
}

/// The chat as RWKV's prompt: "Role: content" turns separated by a blank
/// line, then "\n\nAssistant:" for the reply (docs/serving.md).
std::string renderChat(const json &messages) {
  if (!messages.is_array() || messages.empty())
    throw ApiError{400, "'messages' must be a non-empty list", "messages",
                   "invalid_type"};
  std::string prompt;
  for (const json &m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw ApiError{400, "each message needs a 'role' string", "messages",
                     "invalid_type"};
    std::string role = m["role"].get<std::string>();
    const char *name = role == "system" || role == "developer" ? "System"
                       : role == "user"                        ? "User"
                       : role == "assistant"                   ? "Assistant"
                                                               : nullptr;
    if (!name)
      throw ApiError{400, fmt::format("unknown role '{}'", role), "messages",
                     "invalid_value"};
    std::string content;
    const json &c = m.contains("content") ? m["content"] : json();
    if (c.is_string()) {
      content = c.get<std::string>();
    } else if (c.is_array()) { // [{"type": "text", "text": ...}]
      for (const json &part : c) {
        if (!part.is_object() || part.value("type", "") != "text" ||
            !part.contains("text") || !part["text"].is_string())
          throw ApiError{400, "only text content parts are supported",
                         "messages", "invalid_value"};
        content += part["text"].get<std::string>();
      }
    } else if (!c.is_null()) {
      throw ApiError{400, "a message's 'content' must be a string",
                     "messages", "invalid_type"};
    }
    if (!prompt.empty())
      prompt += "\n\n";
    prompt += fmt::format("{}: {}", name, cleanMessage(content));
  }
  return prompt + "\n\nAssistant:";
}

} // namespace

/// The server: model, tokenizer, scheduler, state cache, HTTP.
struct Server {
  const rwkv_model *model;
  const rwkv_tokenizer *tok;
  std::string host, modelId;
  size_t maxPrompt;
  double timeout;
  bool logRequests;
  std::unique_ptr<StateCache> cache;
  std::unique_ptr<Scheduler> scheduler;
  httplib::Server http;
  std::thread listener;
  int port = 0;
  std::atomic<uint64_t> nextId{1};

  std::mutex metricsMu;
  std::map<std::pair<std::string, int>, uint64_t> requests; // (path, status)
  uint64_t promptTokens = 0, completionTokens = 0, cachedTokens = 0;

  std::string newId(const char *prefix) {
    return fmt::format("{}-{:x}{:06x}", prefix,
                       uint64_t(std::time(nullptr)), nextId++);
  }

  void routes();
  void complete(const httplib::Request &req, httplib::Response &res,
                bool chat);
  std::string metrics();
};

namespace {

/// A completion in flight, shared by the handler and the stream.
struct Job {
  Server *server;
  bool chat;
  std::string id, model;
  int64_t created;
  Sampling params;
  std::shared_ptr<Request> r;
  Clock::time_point deadline;

  /// Waits until text or the end arrives (or `wait` passes); moves the new
  /// text into `text`. True when the request is done.
  bool poll(std::string &text, std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(r->mu);
    r->cv.wait_for(lock, wait, [&] { return r->done || !r->text.empty(); });
    text += r->text;
    r->text.clear();
    return r->done;
  }

  const char *finishReason() const {
    return r->finishReason == "length" ? "length" : "stop";
  }

  json usage() const {
    uint64_t cached = r->cached.nTokens;
    return {{"prompt_tokens", r->prompt.size()},
            {"completion_tokens", r->completionTokens},
            {"total_tokens", r->prompt.size() + r->completionTokens},
            {"prompt_tokens_details", {{"cached_tokens", cached}}}};
  }

  json logprobs() const {
    json content = json::array();
    auto tokenJson = [&](int32_t id, double lp) {
      const uint8_t *b;
      size_t n = rwkv_token_bytes(server->tok, id, &b);
      return json{{"token", std::string(reinterpret_cast<const char *>(b), n)},
                  {"logprob", lp},
                  {"bytes", std::vector<int>(b, b + n)}};
    };
    for (const TokenLogprob &t : r->logprobs) {
      json entry = tokenJson(t.id, t.logprob);
      json top = json::array();
      for (auto &[id, lp] : t.top)
        top.push_back(tokenJson(id, lp));
      entry["top_logprobs"] = top;
      content.push_back(entry);
    }
    return {{"content", content}};
  }

  /// Counts, logs, and keeps the final state in the cache. Called once the
  /// request is done, before the client hears the end.
  void finished() {
    Server &s = *server;
    {
      std::lock_guard<std::mutex> lock(s.metricsMu);
      s.promptTokens += r->prompt.size();
      s.completionTokens += r->completionTokens;
      s.cachedTokens += r->cached.nTokens;
    }
    tlsLogInfo = fmt::format(
        " prompt={} cached={} completion={} finish={}{}", r->prompt.size(),
        r->cached.nTokens, r->completionTokens, finishReason(),
        r->error.empty() ? "" : " error=" + r->error);
    if (s.cache && !r->promptState.empty())
      s.cache->store(r->prompt, r->promptState);
    if (s.cache && r->error.empty() && !r->finalState.empty())
      s.cache->store(r->conversation, r->finalState);
  }

  json chunk(json choice) const {
    choice["index"] = 0;
    return {{"id", id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model},
            {"choices", json::array({choice})}};
  }

  json textChoice(const std::string &text, json finish) const {
    if (chat)
      return {{"delta", text.empty() && finish.is_null()
                            ? json{{"role", "assistant"}, {"content", ""}}
                        : text.empty() ? json::object()
                                       : json{{"content", text}}},
              {"logprobs", nullptr},
              {"finish_reason", finish}};
    return {{"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}};
  }
};

bool sendEvent(httplib::DataSink &sink, const std::string &data) {
  std::string event = "data: " + data + "\n\n";
  return sink.write(event.data(), event.size());
}

} // namespace

void Server::complete(const httplib::Request &req, httplib::Response &res,
                      bool chat) {
  json body;
  try {
    body = json::parse(req.body);
  } catch (const json::parse_error &e) {
    throw ApiError{400, fmt::format("the body is not valid JSON: {}", e.what()),
                   "", "invalid_json"};
  }
  if (!body.is_object())
    throw ApiError{400, "the body must be a JSON object", "", "invalid_json"};
  if (auto it = body.find("model"); it != body.end() && !it->is_null()) {
    if (!it->is_string())
      throw ApiError{400, "'model' must be a string", "model", "invalid_type"};
    if (it->get<std::string>() != modelId)
      throw ApiError{404,
                     fmt::format("the model '{}' does not exist (this server "
                                 "serves '{}')",
                                 it->get<std::string>(), modelId),
                     "model", "model_not_found"};
  }
  auto job = std::make_shared<Job>();
  job->server = this;
  job->chat = chat;
  job->id = newId(chat ? "chatcmpl" : "cmpl");
  job->model = modelId;
  job->created = int64_t(std::time(nullptr));
  // OpenAI: 16 tokens for completions; a chat reply ends at its blank line.
  job->params = parseSampling(body, chat ? 1024 : 16, rwkv_n_vocab(model));
  auto r = job->r = std::make_shared<Request>();
  r->sampling = job->params.sampling;
  r->maxTokens = job->params.maxTokens;
  r->stops = job->params.stops;
  std::string text;
  if (chat) {
    text = renderChat(body.contains("messages") ? body["messages"] : json());
    r->stops.push_back("\n\n"); // the end of the reply's turn
    r->banEos = true;
    r->chat = true;
    if (boolean(body, "logprobs", false))
      r->topLogprobs = int(integer(body, "top_logprobs", 0, rwkv_n_vocab(model)));
    if (r->topLogprobs >= 0 && job->params.stream)
      throw ApiError{400, "'logprobs' is not supported with 'stream'",
                     "logprobs", "invalid_value"};
  } else {
    const json &p = body.contains("prompt") ? body["prompt"] : json();
    if (p.is_array() && p.size() == 1 && p[0].is_string())
      text = p[0].get<std::string>();
    else if (p.is_string())
      text = p.get<std::string>();
    else
      throw ApiError{400, "'prompt' must be a string", "prompt",
                     "invalid_type"};
  }
  if (size_t v = rwkv_utf8_valid_prefix(text.data(), text.size());
      v != text.size())
    throw ApiError{400, fmt::format("the prompt is not valid UTF-8 (byte {})", v),
                   chat ? "messages" : "prompt", "invalid_value"};
  size_t n = 0;
  char err[256];
  if (rwkv_tokenize(tok, text.data(), text.size(), nullptr, 0, &n, err,
                    sizeof err) != RWKV_OK)
    throw ApiError{400, err, chat ? "messages" : "prompt", "invalid_value"};
  if (n == 0)
    throw ApiError{400, "the prompt is empty", "prompt", "invalid_value"};
  if (n > maxPrompt)
    throw ApiError{413,
                   fmt::format("the prompt has {} tokens; this server takes at "
                               "most {}",
                               n, maxPrompt),
                   chat ? "messages" : "prompt", "context_length_exceeded"};
  r->prompt.resize(n);
  rwkv_tokenize(tok, text.data(), text.size(), r->prompt.data(), n, &n, err,
                sizeof err);
  r->keepState = cache != nullptr;
  // The longest cached prefix; at least one token is left to prefill, whose
  // logits start the generation.
  if (cache)
    cache->lookup(r->prompt, n - 1, r->cached);
  job->deadline = Clock::now() + std::chrono::microseconds(
                                     int64_t(timeout * 1e6));
  if (!scheduler->submit(r))
    throw ApiError{503, "the server is busy (its queue is full): retry later",
                   "", "queue_full"};

  if (!job->params.stream) {
    std::string out;
    while (!job->poll(out, std::chrono::milliseconds(200)))
      if (Clock::now() > job->deadline) {
        r->cancelled = true;
        scheduler->wake();
        throw ApiError{504, "the request timed out", "", "timeout"};
      }
    job->finished();
    if (!r->error.empty())
      throw ApiError{500, "the generation failed: " + r->error, "",
                     "generation_failed"};
    json choice = chat ? json{{"message", {{"role", "assistant"},
                                           {"content", out}}}}
                       : json{{"text", out}};
    choice["index"] = 0;
    choice["finish_reason"] = job->finishReason();
    choice["logprobs"] = r->topLogprobs >= 0 ? job->logprobs() : json();
    json reply = {{"id", job->id},
                  {"object", chat ? "chat.completion" : "text_completion"},
                  {"created", job->created},
                  {"model", modelId},
                  {"choices", json::array({choice})},
                  {"usage", job->usage()}};
    res.set_content(dump(reply), "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream", [job](size_t, httplib::DataSink &sink) {
        Request &r = *job->r;
        auto gone = [&] {
          r.cancelled = true; // the slot is freed at the next step
          job->server->scheduler->wake();
          tlsLogInfo = " client disconnected";
          return false;
        };
        if (job->chat && !sendEvent(sink, dump(job->chunk(job->textChoice(
                                              "", json())))))
          return gone();
        auto lastWrite = Clock::now();
        while (true) {
          std::string text;
          bool done = job->poll(text, std::chrono::milliseconds(100));
          if (!text.empty()) {
            if (!sendEvent(sink, dump(job->chunk(job->textChoice(text, json())))))
              return gone();
            lastWrite = Clock::now();
          }
          if (done)
            break;
          if (Clock::now() > job->deadline) {
            r.cancelled = true;
            job->server->scheduler->wake();
            sendEvent(sink, dump(ApiError{504, "the request timed out", "",
                                          "timeout"}
                                     .body()));
            sink.done();
            return true;
          }
          // A comment now and then: a client that left is noticed even
          // while nothing is generated (a long prefill, a long queue).
          if (Clock::now() - lastWrite > std::chrono::milliseconds(500)) {
            if (!sink.is_writable() || !sink.write(": keep-alive\n\n", 14))
              return gone();
            lastWrite = Clock::now();
          }
        }
        job->finished();
        if (!r.error.empty()) {
          sendEvent(sink, dump(ApiError{500, "the generation failed: " + r.error,
                                        "", "generation_failed"}
                                   .body()));
        } else {
          sendEvent(sink, dump(job->chunk(
                              job->textChoice("", job->finishReason()))));
          if (job->params.includeUsage) {
            json last = job->chunk(json::object());
            last["choices"] = json::array();
            last["usage"] = job->usage();
            sendEvent(sink, dump(last));
          }
        }
        sendEvent(sink, "[DONE]");
        sink.done();
        return true;
      });
}

std::string Server::metrics() {
  SchedulerStats st = scheduler->stats();
  std::string out;
  auto metric = [&](const char *name, const char *type, const char *help,
                    auto value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help,
                       type, value);
  };
  {
    std::lock_guard<std::mutex> lock(metricsMu);
    out += "# HELP rwkv_requests_total HTTP requests answered, by path and "
           "status.\n# TYPE rwkv_requests_total counter\n";
    for (auto &[key, n] : requests)
      out += fmt::format("rwkv_requests_total{{path=\"{}\",status=\"{}\"}} {}\n",
                         key.first, key.second, n);
    metric("rwkv_prompt_tokens_total", "counter",
           "Prompt tokens of finished completions.", promptTokens);
    metric("rwkv_prompt_tokens_cached_total", "counter",
           "Prompt tokens taken from the state cache (not prefilled).",
           cachedTokens);
    metric("rwkv_completion_tokens_total", "counter",
           "Tokens generated by finished completions.", completionTokens);
  }
  metric("rwkv_generated_tokens_per_second", "gauge",
         "Tokens generated per second over the last 10 s.",
         st.tokensPerSecond);
  metric("rwkv_queue_length", "gauge", "Requests waiting for a slot.",
         st.queued);
  metric("rwkv_active_sequences", "gauge", "Sequences in the batch.",
         st.active);
  metric("rwkv_batch_size", "gauge",
         "Sequences evaluated by the last rwkv_eval_batch step.", st.lastBatch);
  metric("rwkv_batch_steps_total", "counter", "rwkv_eval_batch steps.",
         st.steps);
  metric("rwkv_prefill_tokens_total", "counter",
         "Prompt tokens evaluated by the batch steps.", st.promptTokens);
  if (cache) {
    CacheStats c = cache->stats();
    metric("rwkv_state_cache_hits_total", "counter",
           "Requests that started from a cached state.", c.hits);
    metric("rwkv_state_cache_misses_total", "counter",
           "Requests that found no cached prefix.", c.misses);
    metric("rwkv_state_cache_rejected_total", "counter",
           "Cached states not used: another model, corrupt, or a collision.",
           c.rejected);
    metric("rwkv_state_cache_errors_total", "counter",
           "Failed cache operations (Redis unreachable, ...).", c.errors);
    metric("rwkv_state_cache_bytes", "gauge",
           "Bytes of states held (memory) or stored by this server (Redis).",
           c.bytes);
    metric("rwkv_state_cache_entries", "gauge",
           "States held (memory) or stored by this server (Redis).",
           c.entries);
  }
  return out;
}

void Server::routes() {
  auto guarded = [](auto handler) {
    return [handler](const httplib::Request &req,
                           httplib::Response &res) {
      tlsLogInfo.clear();
      try {
        handler(req, res);
      } catch (const ApiError &e) {
        res.status = e.status;
        if (e.status == 503)
          res.set_header("Retry-After", "1");
        res.set_content(dump(e.body()), "application/json");
        tlsLogInfo = " error=" + e.message;
      } catch (const std::exception &e) {
        ApiError a{500, fmt::format("internal error: {}", e.what()), "",
                   "internal_error"};
        res.status = 500;
        res.set_content(dump(a.body()), "application/json");
        tlsLogInfo = " error=" + a.message;
      }
    };
  };
  http.Post("/v1/completions",
            guarded([this](const httplib::Request &q, httplib::Response &s) {
              complete(q, s, false);
            }));
  http.Post("/v1/chat/completions",
            guarded([this](const httplib::Request &q, httplib::Response &s) {
              complete(q, s, true);
            }));
  http.Get("/v1/models", guarded([this](const httplib::Request &,
                                        httplib::Response &s) {
             json m = {{"id", modelId},
                       {"object", "model"},
                       {"created", 0},
                       {"owned_by", "rwkvc"}};
             s.set_content(dump({{"object", "list"},
                                 {"data", json::array({m})}}),
                           "application/json");
           }));
  http.Get("/health", [](const httplib::Request &, httplib::Response &s) {
    s.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request &, httplib::Response &s) {
    s.set_content(metrics(), "text/plain; version=0.0.4");
  });
  // Unknown paths and httplib's own refusals (413 payload, 400 header)
  // become error objects too.
  http.set_error_handler([](const httplib::Request &req,
                            httplib::Response &res) {
    if (!res.body.empty())
      return;
    ApiError e{res.status,
               res.status == 404
                   ? fmt::format("no such endpoint: {} {}", req.method, req.path)
                   : fmt::format("HTTP {}", res.status),
               "", res.status == 404 ? "unknown_url" : ""};
    if (res.status == 413)
      e.message = "the request body is too large";
    res.set_content(dump(e.body()), "application/json");
  });
  http.set_logger([this](const httplib::Request &req,
                         const httplib::Response &res) {
    static const std::map<std::string, std::string> known = {
        {"/v1/completions", ""}, {"/v1/chat/completions", ""},
        {"/v1/models", ""},      {"/health", ""},
        {"/metrics", ""}};
    std::string path = known.count(req.path) ? req.path : "other";
    {
      std::lock_guard<std::mutex> lock(metricsMu);
      ++requests[{path, res.status}];
    }
    if (logRequests)
      fmt::print(stderr, "{} {} {} {}{}\n", req.remote_addr, req.method,
                 req.path, res.status, tlsLogInfo);
    tlsLogInfo.clear();
  });
}

} // namespace rwkv_serving

using rwkv_serving::Server;

struct rwkv_server {
  std::unique_ptr<Server> s;
};

extern "C" {

void rwkv_server_params_default(rwkv_server_params *p) {
  *p = {};
  p->host = "127.0.0.1";
  p->port = 8080;
  p->parallel = 8;
  p->queue = 64;
  p->state_cache = "256M";
  p->max_prompt_tokens = 32768;
  p->prefill_chunk = 64;
  p->timeout_s = 600;
  p->model_id = nullptr;
  p->log_requests = 1;
}

rwkv_server *rwkv_server_start(const rwkv_model *model,
                               const rwkv_tokenizer *tok,
                               const rwkv_server_params *p, char *err,
                               size_t errlen) {
  auto fail = [&](const std::string &m) -> rwkv_server * {
    if (err && errlen)
      snprintf(err, errlen, "%s", m.c_str());
    return nullptr;
  };
  try {
    if (!model || !tok || !p)
      return fail("rwkv_server_start: null model, tokenizer or parameters");
    if (p->port < 0 || p->port > 65535 || p->parallel == 0 ||
        p->prefill_chunk == 0 || p->max_prompt_tokens == 0 ||
        !(p->timeout_s > 0))
      return fail("rwkv_server_start: a parameter is out of range (port "
                  "0..65535, parallel, prefill_chunk, max_prompt_tokens and "
                  "timeout_s > 0)");
    auto s = std::make_unique<Server>();
    s->model = model;
    s->tok = tok;
    s->host = p->host ? p->host : "127.0.0.1";
    const rwkv_model_desc *d = rwkv_model_get_desc(model);
    s->modelId = p->model_id ? p->model_id : d->model_name;
    s->maxPrompt = p->max_prompt_tokens;
    s->timeout = p->timeout_s;
    s->logRequests = p->log_requests != 0;
    std::string why;
    if (!rwkv_serving::makeStateCache(p->state_cache ? p->state_cache : "",
                                     d->model_hash, size_t(d->state_floats),
                                     s->cache, why))
      return fail(why);
    s->scheduler = std::make_unique<rwkv_serving::Scheduler>(
        model, tok, p->parallel, p->queue, p->prefill_chunk);
    // Threads: every slot may hold a stream, the queue waits in them too.
    size_t threads = p->parallel + p->queue + 4;
    s->http.new_task_queue = [threads] {
      return new httplib::ThreadPool(threads);
    };
    s->http.set_payload_max_length(size_t(64) << 20);
    s->http.set_read_timeout(30, 0);
    s->http.set_write_timeout(30, 0);
    s->routes();
    s->port = p->port == 0 ? s->http.bind_to_any_port(s->host)
                           : (s->http.bind_to_port(s->host, p->port) ? p->port
                                                                      : -1);
    if (s->port < 0)
      return fail(fmt::format("cannot listen on {}:{} (address in use or not "
                              "local?)",
                              s->host, p->port));
    Server *raw = s.get();
    s->listener = std::thread([raw] { raw->http.listen_after_bind(); });
    return new rwkv_server{std::move(s)};
  } catch (const std::exception &e) {
    return fail(fmt::format("rwkv_server_start: {}", e.what()));
  }
}

int rwkv_server_port(const rwkv_server *s) { return s ? s->s->port : -1; }

void rwkv_server_stop(rwkv_server *s) {
  if (!s)
    return;
  try {
    // End the requests first: their handlers then return, and the HTTP
    // pool can join its threads.
    s->s->scheduler->shutdown();
    s->s->http.stop();
    if (s->s->listener.joinable())
      s->s->listener.join();
    s->s->scheduler.reset();
  } catch (...) {
  }
  delete s;
}

namespace {
volatile sig_atomic_t gStop = 0;
void onSignal(int) { gStop = 1; }
} // namespace

int rwkv_serve(const rwkv_server_params *p, const char *device,
               const char *prog) {
  char err[512];
  const char *env = getenv("RWKV_DEVICE");
  const char *name = device ? device : env && *env ? env : "auto";
  rwkv_model *m =
      rwkv_model_open_device(rwkv_device_from_name(name), err, sizeof err);
  if (!m)
    return rwkv_cli_error(prog, RWKV_EXIT_ERROR, err);
  rwkv_tokenizer *tok =
      rwkv_tokenizer_open_linked(rwkv_n_vocab(m), err, sizeof err);
  if (!tok) {
    rwkv_model_close(m);
    return rwkv_cli_error(prog, RWKV_EXIT_ERROR, err);
  }
  rwkv_server_params q = *p;
  if (!q.model_id)
    q.model_id = prog;
  rwkv_server *s = rwkv_server_start(m, tok, &q, err, sizeof err);
  if (!s) {
    rwkv_tokenizer_close(tok);
    rwkv_model_close(m);
    return rwkv_cli_error(prog, RWKV_EXIT_ERROR, err);
  }
  signal(SIGINT, onSignal);
  signal(SIGTERM, onSignal);
  fmt::print(stderr,
             "{}: serving '{}' on http://{}:{} ({}; {} parallel, state cache "
             "{})\n",
             prog, q.model_id, q.host ? q.host : "127.0.0.1",
             rwkv_server_port(s), rwkv_model_device_info(m), q.parallel,
             q.state_cache && *q.state_cache ? q.state_cache : "off");
  while (!gStop)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  fmt::print(stderr, "{}: stopping\n", prog);
  rwkv_server_stop(s);
  rwkv_tokenizer_close(tok);
  rwkv_model_close(m);
  return RWKV_EXIT_OK;
}

} // extern "C"
