// The request that travels down the chain, and the small header list it shares with
// responses.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hfchain/error.h"

namespace hfchain {

// HTTP header fields in arrival order. Look-ups ignore case, as HTTP does.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  // Returns the first value of `name`, or nullptr.
  const std::string* find(std::string_view name) const;
  // Replaces every field called `name` with one field.
  void set(std::string name, std::string value);
  void add(std::string name, std::string value) {
    fields_.emplace_back(std::move(name), std::move(value));
  }
  // Removes every field called `name`; returns how many were removed.
  size_t remove(std::string_view name);

  const std::vector<Field>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// A cancellation flag. Copies share one flag; child() makes a flag that is also cancelled
// when its parent is, so a hedged copy of a request can be cancelled alone.
class CancelToken {
 public:
  CancelToken() : node_(std::make_shared<Node>()) {}
  void cancel() { node_->cancelled.store(true, std::memory_order_relaxed); }
  bool cancelled() const {
    for (const Node* node = node_.get(); node != nullptr; node = node->parent.get()) {
      if (node->cancelled.load(std::memory_order_relaxed)) return true;
    }
    return false;
  }
  CancelToken child() const {
    CancelToken token;
    token.node_->parent = node_;
    return token;
  }

 private:
  struct Node {
    std::atomic<bool> cancelled{false};
    std::shared_ptr<const Node> parent;
  };
  std::shared_ptr<Node> node_;
};

struct Message {
  std::string role;  // "system", "user", "assistant", "tool"
  std::string content;
};

using Clock = std::chrono::steady_clock;

// A text-generation request. A request is either a chat (messages) or a raw prompt
// (inputs); the transport turns it into the target protocol's body.
//
// Links may change the request before calling the rest of the chain. A link that calls the
// rest more than once passes a copy when it needs the original back, because links further
// down may change what they are given.
struct Request {
  std::string id;                 // unique per request; set by the engine when empty
  std::string target;             // the target to send to; empty: the config's default
  std::string model;              // overrides the target's model when not empty
  std::vector<Message> messages;  // chat request
  std::string inputs;             // raw prompt (TGI /generate); used when messages is empty
  // Generation parameters under their TGI names (max_new_tokens, temperature, top_p, top_k,
  // stop, seed, repetition_penalty, do_sample, ...). The transport renames them for
  // OpenAI-compatible targets (max_new_tokens becomes max_tokens).
  nlohmann::json parameters = nlohmann::json::object();
  bool stream = true;  // ask the upstream for an event stream
  Headers headers;     // extra headers for the upstream request
  // Caller facts: "key" (the secret inbound key), "key_id" (its fingerprint, safe to log
  // and store; the engine adds it), "tenant", ...; never sent upstream.
  Headers metadata;
  std::optional<Clock::time_point> deadline;  // the whole request must end by then
  CancelToken cancel;                         // set when the caller gives up on the request

  bool isChat() const { return !messages.empty(); }

  // Returns parameters[name] as an integer, or `fallback` when absent or not a number.
  int64_t intParameter(std::string_view name, int64_t fallback) const;
};

// Reads chat messages in the OpenAI form: a JSON array of objects with a string "role" and a
// "content" that is a string, null, or an array of {"type": "text", "text": STRING} parts,
// which are joined. Appends them to `out`. Errors have class kInvalidRequest and name the
// message index; `out` may then hold the messages before it.
Error parseChatMessages(const nlohmann::json& messages, std::vector<Message>& out);

// Returns a fingerprint of a caller key that is safe to log, store and show: "key-" and the
// first 16 hex digits of its SHA-256. Equal keys give equal fingerprints.
std::string keyFingerprint(std::string_view key);

}  // namespace hfchain
