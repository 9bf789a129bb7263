// The engine: builds a chain from a config and sends requests through it. This is the
// API for programs that embed hfchain.
//
//   auto engine = hfchain::Engine::create(hfchain::parseConfig(yaml, "inline").config);
//   hfchain::Request request;
//   request.messages = {{"user", "Hello"}};
//   hfchain::Response response = (*engine)->stream(std::move(request));
//   hfchain::Event event;
//   while (response.stream->next(event)) { ... }
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hfchain/config.h"
#include "hfchain/link.h"
#include "hfchain/plugin.h"
#include "hfchain/response.h"
#include "hfchain/result.h"

namespace hfchain {

class Transport;
class TokenCounter;
namespace internal {
class ContextWindowResolver;
}  // namespace internal

// One immutable build of a config: link instances, target transports and the plugins they
// come from. Requests hold the snapshot they started with until their stream ends.
class ChainSnapshot : public std::enable_shared_from_this<ChainSnapshot> {
 public:
  // Builds every link and target of `config`, loading plugins through `registry`. All
  // problems are returned together, with the config position of each.
  static Result<std::shared_ptr<const ChainSnapshot>> build(const Config& config,
                                                            PluginRegistry& registry);
  // A snapshot whose chain ends in `terminal` instead of the config's targets: used by
  // `hfchain generate --url` and by tests.
  using Terminal = std::function<Response(Request&)>;
  static Result<std::shared_ptr<const ChainSnapshot>> build(const Config& config,
                                                            PluginRegistry& registry,
                                                            Terminal terminal);

  // Sends `request` through the links and then to its target.
  Response send(Request& request) const;

  const Config& config() const { return config_; }
  const std::vector<LinkPtr>& links() const { return links_; }
  // Returns the token counter of target `name` (the default target when empty), or null.
  const TokenCounter* tokenCounter(const std::string& name) const;
  // Returns the context window of target `name`, 0 when unknown; see Next::contextWindow.
  int64_t contextWindow(const std::string& name, const std::string& request_id) const;
  uint64_t generation() const { return generation_; }

 private:
  friend class ChainNext;
  Response dispatch(Request& request) const;

  Config config_;
  std::vector<LinkPtr> links_;
  std::vector<std::pair<std::string, std::shared_ptr<Transport>>> transports_;
  // Per target, in config order: how its tokens are counted and where its window comes from.
  struct TargetTokens {
    std::string name;
    std::shared_ptr<const TokenCounter> counter;
    std::shared_ptr<internal::ContextWindowResolver> window;
  };
  std::vector<TargetTokens> target_tokens_;
  const TargetTokens* findTargetTokens(const std::string& name) const;
  Terminal terminal_;
  uint64_t generation_ = 0;
};

using ChainSnapshotPtr = std::shared_ptr<const ChainSnapshot>;

// The result of Engine::generate: the whole answer, or the error that ended it.
struct Generation {
  std::string text;
  std::string finish_reason;
  Usage usage;
  std::string served_by;
  int status = 0;
  Error error;  // set when the answer failed; `text` then holds what arrived before
  bool ok() const { return error.ok(); }
};

class Engine {
 public:
  // Builds the first snapshot. `registry` may be shared between engines; when null the
  // engine makes its own.
  static Result<std::unique_ptr<Engine>> create(const Config& config,
                                                std::shared_ptr<PluginRegistry> registry = nullptr);

  // Sends a request and returns the response with its event stream. Thread-safe. The
  // stream keeps the snapshot the request started with alive until it is destroyed.
  Response stream(Request request);
  // Sends a request and reads the whole answer. Thread-safe.
  Generation generate(Request request);

  // Builds a new snapshot from `config` and swaps it in atomically. Requests already
  // running finish on the snapshot they started with. On failure the running snapshot
  // stays in place and every problem is returned.
  Result<ChainSnapshotPtr> reload(const Config& config);

  ChainSnapshotPtr snapshot() const;
  PluginRegistry& registry() { return *registry_; }

 private:
  Engine() = default;

  std::shared_ptr<PluginRegistry> registry_;
  mutable std::mutex mutex_;
  ChainSnapshotPtr snapshot_;
};

// Returns a new request id: 16 hex digits, unique within the process and unlikely to
// repeat across processes.
std::string newRequestId();

// Reads a stream to its end into a Generation.
Generation collect(Response response);

}  // namespace hfchain
