// Chain snapshots, the chain walk, and the engine facade.
#include "hfchain/engine.h"

#include <atomic>
#include <random>

#include "chain_builder.h"
#include "hfchain/log.h"
#include "hfchain/token_counter.h"
#include "hfchain/transport.h"
#include "token_count/context_window.h"

namespace hfchain {
namespace {

Poco::Logger& logger() { return log::get("hfchain.engine"); }

std::atomic<uint64_t> next_generation{1};

// Keeps the snapshot, and so the plugin code behind a wrapped stream, alive while the
// stream is read.
class SnapshotStream : public EventStream {
 public:
  SnapshotStream(EventStreamPtr inner, ChainSnapshotPtr snapshot)
      : inner_(std::move(inner)), snapshot_(std::move(snapshot)) {}
  ~SnapshotStream() override { inner_.reset(); }  // the stream goes before the plugin code
  bool next(Event& out) override { return inner_->next(out); }

 private:
  EventStreamPtr inner_;
  ChainSnapshotPtr snapshot_;
};

}  // namespace

// The rest of the chain from link `index` on. Lives on the stack of the link calling it;
// a clone also owns a reference to the snapshot, so it may outlive that call.
class ChainNext : public Next {
 public:
  ChainNext(const ChainSnapshot& snapshot, size_t index) : snapshot_(snapshot), index_(index) {}

  Response call(Request& request) override {
    if (index_ >= snapshot_.links_.size()) return snapshot_.dispatch(request);
    ChainNext rest(snapshot_, index_ + 1);
    return snapshot_.links_[index_]->roundTrip(request, rest);
  }

  std::unique_ptr<Next> clone() const override {
    auto copy = std::make_unique<ChainNext>(snapshot_, index_);
    copy->owner_ = snapshot_.shared_from_this();
    return copy;
  }

  const TargetConfig* findTarget(const std::string& name) const override {
    return snapshot_.config_.findTarget(name.empty() ? snapshot_.config_.default_target : name);
  }
  const TokenCounter* tokenCounter(const std::string& name) const override {
    return snapshot_.tokenCounter(name);
  }
  int64_t contextWindow(const std::string& name, const std::string& request_id) const override {
    return snapshot_.contextWindow(name, request_id);
  }

 private:
  const ChainSnapshot& snapshot_;
  size_t index_;
  std::shared_ptr<const ChainSnapshot> owner_;
};

Result<ChainSnapshotPtr> ChainSnapshot::build(const Config& config, PluginRegistry& registry) {
  return build(config, registry, nullptr);
}

Result<ChainSnapshotPtr> ChainSnapshot::build(const Config& config, PluginRegistry& registry,
                                              Terminal terminal) {
  auto snapshot = std::shared_ptr<ChainSnapshot>(new ChainSnapshot());
  snapshot->config_ = config;
  snapshot->terminal_ = std::move(terminal);
  std::vector<ConfigIssue> issues;
  {
    internal::BuildScope scope(registry, config.plugin_path);
    snapshot->links_ = internal::buildLinks(config.chain, config.source, issues);
  }
  if (!snapshot->terminal_) {
    for (const TargetConfig& target : config.targets) {
      Result<std::shared_ptr<Transport>> transport = Transport::create(target);
      if (!transport.ok()) {
        issues.push_back({config.source, 0, 0, transport.error().message});
        continue;
      }
      snapshot->transports_.emplace_back(target.name, *transport);
    }
  }
  for (const TargetConfig& target : config.targets) {
    Result<TokenCounterConstSharedPtr> counter = makeTokenCounter(target);
    if (!counter.ok()) {
      issues.push_back({config.source, 0, 0, counter.error().message});
      continue;
    }
    snapshot->target_tokens_.push_back(
        {target.name, *counter, std::make_shared<internal::ContextWindowResolver>(target)});
  }
  if (!issues.empty()) return configError(issues);
  snapshot->generation_ = next_generation.fetch_add(1);
  return ChainSnapshotPtr(std::move(snapshot));
}

const ChainSnapshot::TargetTokens* ChainSnapshot::findTargetTokens(const std::string& name) const {
  const std::string& wanted = name.empty() ? config_.default_target : name;
  for (const TargetTokens& entry : target_tokens_) {
    if (entry.name == wanted) return &entry;
  }
  return nullptr;
}

const TokenCounter* ChainSnapshot::tokenCounter(const std::string& name) const {
  const TargetTokens* entry = findTargetTokens(name);
  return entry == nullptr ? nullptr : entry->counter.get();
}

int64_t ChainSnapshot::contextWindow(const std::string& name, const std::string& request_id) const {
  const TargetTokens* entry = findTargetTokens(name);
  return entry == nullptr ? 0 : entry->window->get(request_id);
}

Response ChainSnapshot::send(Request& request) const {
  ChainNext start(*this, 0);
  return start.call(request);
}

Response ChainSnapshot::dispatch(Request& request) const {
  if (terminal_) return terminal_(request);
  const std::string& name = request.target.empty() ? config_.default_target : request.target;
  for (const auto& [target_name, transport] : transports_) {
    if (target_name == name) return transport->send(request);
  }
  std::string known;
  for (const auto& [target_name, transport] : transports_) {
    known += (known.empty() ? "" : ", ") + target_name;
  }
  Error error = makeError(
      ErrorClass::kInvalidRequest,
      name.empty()
          ? "the request names no target and the config has no "
            "default_target; set one"
          : "unknown target '" + name + "' (configured: " + (known.empty() ? "none" : known) + ")");
  HFC_LOG_WARNING(logger(), HFC_RID(request.id) + error.message);
  return makeErrorResponse(std::move(error));
}

Result<std::unique_ptr<Engine>> Engine::create(const Config& config,
                                               std::shared_ptr<PluginRegistry> registry) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->registry_ = registry ? std::move(registry) : std::make_shared<PluginRegistry>();
  Result<ChainSnapshotPtr> snapshot = ChainSnapshot::build(config, *engine->registry_);
  if (!snapshot.ok()) return snapshot.error();
  engine->snapshot_ = *snapshot;
  HFC_LOG_INFO(logger(), "engine started with " + config.source + ": " +
                             std::to_string(config.chain.size()) + " links, " +
                             std::to_string(config.targets.size()) + " targets");
  return engine;
}

ChainSnapshotPtr Engine::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

Response Engine::stream(Request request) {
  if (request.id.empty()) request.id = newRequestId();
  if (const std::string* key = request.metadata.find("key");
      key != nullptr && request.metadata.find("key_id") == nullptr) {
    request.metadata.set("key_id", keyFingerprint(*key));
  }
  ChainSnapshotPtr current = snapshot();
  Response response = current->send(request);
  if (!response.stream) response.stream = makeErrorResponse(response.error).stream;
  response.stream =
      std::make_unique<SnapshotStream>(std::move(response.stream), std::move(current));
  return response;
}

Generation Engine::generate(Request request) { return collect(stream(std::move(request))); }

Result<ChainSnapshotPtr> Engine::reload(const Config& config) {
  Result<ChainSnapshotPtr> built = ChainSnapshot::build(config, *registry_);
  if (!built.ok()) {
    HFC_LOG_ERROR(logger(), "reload from " + config.source +
                                " rejected; the running chain stays in place:\n" +
                                built.error().message);
    return built;
  }
  {
    std::lock_guard lock(mutex_);
    snapshot_ = *built;
  }
  HFC_LOG_INFO(logger(), "reloaded " + config.source + " as generation " +
                             std::to_string(built->get()->generation()));
  return built;
}

std::string newRequestId() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
  uint64_t value = seed + counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL;
  value ^= value >> 31;
  static const char* kDigits = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    id[static_cast<size_t>(i)] = kDigits[value & 0xF];
    value >>= 4;
  }
  return id;
}

Generation collect(Response response) {
  Generation result;
  result.status = response.status;
  if (const std::string* served = response.headers.find("x-hfchain-served-by")) {
    result.served_by = *served;
  }
  Event event;
  bool ended = false;
  while (response.stream && response.stream->next(event)) {
    if (!event.served_by.empty()) result.served_by = event.served_by;
    switch (event.kind) {
      case EventKind::kToken:
        result.text += event.text;
        break;
      case EventKind::kFinish:
        result.finish_reason = event.finish_reason;
        result.usage = event.usage;
        ended = true;
        break;
      case EventKind::kError:
        result.error = event.error;
        ended = true;
        break;
    }
    if (ended) break;
  }
  if (!ended) {
    result.error = response.error.ok()
                       ? makeError(ErrorClass::kStreamIncomplete,
                                   "the stream ended without a finish or error event")
                       : response.error;
  }
  return result;
}

}  // namespace hfchain
