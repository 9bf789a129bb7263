// The hfchain plugin SDK: write a link as an ordinary C++ class, and export it with
// HFCHAIN_PLUGIN. Header-only; depends on the C ABI header and nlohmann/json.
//
//   class Upper : public hfchain::sdk::Link {
//    public:
//     static std::unique_ptr<Upper> create(const nlohmann::json& settings, std::string& error);
//     hfchain::sdk::Response roundTrip(hfchain::sdk::Request& request,
//                                      hfchain::sdk::Next& next) override;
//   };
//   HFCHAIN_PLUGIN("upper-plugin", "1.0.0", HFCHAIN_LINK(Upper, "upper", "Upper-cases text"))
//
// Exceptions thrown by a link are caught here and become error responses, so none crosses
// into the host.
#pragma once

#include <cstring>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "hfchain/abi/hfchain_plugin.h"

namespace hfchain::sdk {
inline namespace v1 {

using ErrorClass = hfc_error_class;

namespace detail {

// The host's callback table, set when the host first creates a link of this plugin. One
// host per process, so one pointer per plugin library.
inline const hfc_host_api*& hostSlot() {
  static const hfc_host_api* host = nullptr;
  return host;
}

inline hfc_str toStr(std::string_view text) { return hfc_str{text.data(), text.size()}; }
inline std::string_view toView(hfc_str text) {
  return text.data == nullptr ? std::string_view() : std::string_view(text.data, text.size);
}

}  // namespace detail

// Returns the stable snake_case name of an error class, the same names the engine uses in
// logs and error bodies.
inline const char* errorClassName(ErrorClass error_class) {
  static const char* const kNames[] = {"none",
                                       "invalid_request",
                                       "upstream_validation",
                                       "upstream_auth",
                                       "upstream_not_found",
                                       "rate_limited",
                                       "model_loading",
                                       "upstream_5xx",
                                       "upstream_generation",
                                       "timeout",
                                       "connect_failed",
                                       "connection_reset",
                                       "stream_incomplete",
                                       "stream_parse",
                                       "event_too_large",
                                       "circuit_open",
                                       "budget_exceeded",
                                       "context_overflow",
                                       "cancelled",
                                       "config_rejected",
                                       "plugin_rejected",
                                       "internal"};
  auto index = static_cast<size_t>(error_class);
  return index < sizeof(kNames) / sizeof(kNames[0]) ? kNames[index] : "internal";
}

// Returns the host's callback table. Valid once a link of this plugin has been created.
inline const hfc_host_api& host() { return *detail::hostSlot(); }

// A failure, as links create and inspect it.
struct ErrorInfo {
  ErrorClass error_class = HFC_ERROR_INTERNAL;
  int http_status = 0;
  std::string message;
  int64_t retry_after_ms = -1;
  double estimated_time_s = -1;

  hfc_error toAbi() const {
    return hfc_error{static_cast<uint32_t>(error_class), http_status, detail::toStr(message),
                     retry_after_ms, estimated_time_s};
  }
  static ErrorInfo fromAbi(const hfc_error& error) {
    return ErrorInfo{static_cast<ErrorClass>(error.error_class), error.http_status,
                     std::string(detail::toView(error.message)), error.retry_after_ms,
                     error.estimated_time_s};
  }
};

// A view of the host's request. Strings returned as string_view stay valid until the
// request is changed.
class Request {
 public:
  explicit Request(hfc_request* raw) : raw_(raw) {}

  std::string_view id() const { return field(HFC_REQUEST_ID); }
  std::string_view target() const { return field(HFC_REQUEST_TARGET); }
  std::string_view model() const { return field(HFC_REQUEST_MODEL); }
  std::string_view inputs() const { return field(HFC_REQUEST_INPUTS); }
  void setTarget(std::string_view value) { setField(HFC_REQUEST_TARGET, value); }
  void setModel(std::string_view value) { setField(HFC_REQUEST_MODEL, value); }
  void setInputs(std::string_view value) { setField(HFC_REQUEST_INPUTS, value); }
  bool stream() const { return host().request_get_stream(raw_) != 0; }

  // Generation parameter `name` (TGI naming: max_new_tokens, temperature, ...).
  std::optional<nlohmann::json> param(std::string_view name) const {
    hfc_str json{};
    if (host().request_param_get(raw_, detail::toStr(name), &json) == 0) return std::nullopt;
    return nlohmann::json::parse(detail::toView(json), nullptr, false);
  }
  void setParam(std::string_view name, const nlohmann::json& value) {
    std::string text = value.dump();
    host().request_param_set(raw_, detail::toStr(name), detail::toStr(text));
  }
  void removeParam(std::string_view name) {
    host().request_param_set(raw_, detail::toStr(name), hfc_str{nullptr, 0});
  }

  std::optional<std::string_view> header(std::string_view name) const {
    hfc_str value{};
    if (host().request_header_get(raw_, detail::toStr(name), &value) == 0) return std::nullopt;
    return detail::toView(value);
  }
  void setHeader(std::string_view name, std::string_view value) {
    host().request_header_set(raw_, detail::toStr(name), detail::toStr(value));
  }
  void removeHeader(std::string_view name) {
    host().request_header_set(raw_, detail::toStr(name), hfc_str{nullptr, 0});
  }

  // Caller metadata such as "key" and "tenant"; never sent upstream.
  std::optional<std::string_view> meta(std::string_view name) const {
    hfc_str value{};
    if (host().request_meta_get(raw_, detail::toStr(name), &value) == 0) return std::nullopt;
    return detail::toView(value);
  }
  void setMeta(std::string_view name, std::string_view value) {
    host().request_meta_set(raw_, detail::toStr(name), detail::toStr(value));
  }

  size_t messageCount() const { return host().request_message_count(raw_); }
  // Role and content of message `index`; both empty when out of range.
  std::pair<std::string_view, std::string_view> message(size_t index) const {
    hfc_str role{}, content{};
    if (host().request_message_get(raw_, index, &role, &content) == 0) return {};
    return {detail::toView(role), detail::toView(content)};
  }
  bool insertMessage(size_t index, std::string_view role, std::string_view content) {
    return host().request_message_insert(raw_, index, detail::toStr(role),
                                         detail::toStr(content)) != 0;
  }
  bool setMessage(size_t index, std::string_view role, std::string_view content) {
    return host().request_message_set(raw_, index, detail::toStr(role), detail::toStr(content)) !=
           0;
  }
  bool eraseMessage(size_t index) { return host().request_message_erase(raw_, index) != 0; }

  // The content of the last message with role "user", or the raw inputs of a non-chat
  // request.
  std::string_view lastUserText() const {
    for (size_t i = messageCount(); i > 0; --i) {
      auto [role, content] = message(i - 1);
      if (role == "user") return content;
    }
    return inputs();
  }

  int64_t deadlineRemainingMs() const { return host().request_deadline_remaining_ms(raw_); }
  void cancel() { host().request_cancel(raw_); }
  bool cancelled() const { return host().request_is_cancelled(raw_) != 0; }
  void setDeadlineMs(int64_t from_now_ms) { host().request_set_deadline_ms(raw_, from_now_ms); }

  hfc_request* raw() const { return raw_; }

  // Logs through the host, which adds the request id.
  void log(hfc_log_level level, std::string_view logger, std::string_view message) const {
    host().log(raw_, level, detail::toStr(logger), detail::toStr(message));
  }

 private:
  std::string_view field(hfc_request_field f) const {
    return detail::toView(host().request_get(raw_, f));
  }
  void setField(hfc_request_field f, std::string_view value) {
    host().request_set(raw_, f, detail::toStr(value));
  }

  hfc_request* raw_;
};

// A request copy owned by the link, for calls that must not see each other's changes.
class OwnedRequest {
 public:
  explicit OwnedRequest(const Request& original) : raw_(host().request_clone(original.raw())) {}
  ~OwnedRequest() { host().request_free(raw_); }
  OwnedRequest(const OwnedRequest&) = delete;
  OwnedRequest& operator=(const OwnedRequest&) = delete;
  Request view() const { return Request(raw_); }

 private:
  hfc_request* raw_;
};

// A view of an event. Owned by the host, or by this object when made with Event::make().
class Event {
 public:
  explicit Event(hfc_event* raw) : raw_(raw) {}
  static Event make() { return Event(host().event_new(), true); }
  ~Event() {
    if (owned_) host().event_free(raw_);
  }
  Event(Event&& other) noexcept : raw_(other.raw_), owned_(std::exchange(other.owned_, false)) {}
  Event& operator=(Event&&) = delete;
  Event(const Event&) = delete;

  hfc_event_kind kind() const { return static_cast<hfc_event_kind>(getInt(HFC_EVENT_KIND)); }
  bool isToken() const { return kind() == HFC_EVENT_TOKEN; }
  bool isFinish() const { return kind() == HFC_EVENT_FINISH; }
  bool isError() const { return kind() == HFC_EVENT_ERROR; }
  void setKind(hfc_event_kind kind) { setInt(HFC_EVENT_KIND, kind); }

  std::string_view text() const { return get(HFC_EVENT_TEXT); }
  void setText(std::string_view value) { set(HFC_EVENT_TEXT, value); }
  std::string_view finishReason() const { return get(HFC_EVENT_FINISH_REASON); }
  void setFinishReason(std::string_view value) { set(HFC_EVENT_FINISH_REASON, value); }
  std::string_view generatedText() const { return get(HFC_EVENT_GENERATED_TEXT); }
  void setGeneratedText(std::string_view value) { set(HFC_EVENT_GENERATED_TEXT, value); }
  std::string_view errorMessage() const { return get(HFC_EVENT_ERROR_MESSAGE); }
  ErrorClass errorClass() const { return static_cast<ErrorClass>(getInt(HFC_EVENT_ERROR_CLASS)); }
  std::string_view servedBy() const { return get(HFC_EVENT_SERVED_BY); }
  int64_t tokenId() const { return getInt(HFC_EVENT_TOKEN_ID); }
  int64_t completionTokens() const { return getInt(HFC_EVENT_COMPLETION_TOKENS); }
  int64_t promptTokens() const { return getInt(HFC_EVENT_PROMPT_TOKENS); }
  void setCompletionTokens(int64_t value) { setInt(HFC_EVENT_COMPLETION_TOKENS, value); }

  void setError(const ErrorInfo& error) {
    hfc_error abi = error.toAbi();
    host().event_set_error(raw_, &abi);
  }
  void copyFrom(const Event& other) { host().event_copy(raw_, other.raw_); }

  std::string_view get(hfc_event_field f) const {
    return detail::toView(host().event_get(raw_, f));
  }
  void set(hfc_event_field f, std::string_view value) {
    host().event_set(raw_, f, detail::toStr(value));
  }
  int64_t getInt(hfc_event_int f) const { return host().event_get_int(raw_, f); }
  void setInt(hfc_event_int f, int64_t value) { host().event_set_int(raw_, f, value); }

  hfc_event* raw() const { return raw_; }

 private:
  Event(hfc_event* raw, bool owned) : raw_(raw), owned_(owned) {}
  hfc_event* raw_;
  bool owned_ = false;
};

// An owned response. Moving passes ownership; destroying frees it, which cancels its
// stream if it was not read to the end.
class Response {
 public:
  Response() = default;
  explicit Response(hfc_response* raw) : raw_(raw) {}
  ~Response() { reset(); }
  Response(Response&& other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
  Response& operator=(Response&& other) noexcept {
    if (this != &other) {
      reset();
      raw_ = std::exchange(other.raw_, nullptr);
    }
    return *this;
  }
  Response(const Response&) = delete;
  Response& operator=(const Response&) = delete;

  // An answer of `text` as one token event and a finish event.
  static Response text(std::string_view text, std::string_view finish_reason = "stop",
                       int status = 200) {
    return Response(
        host().response_new_text(status, detail::toStr(text), detail::toStr(finish_reason)));
  }
  // A failed answer.
  static Response error(const ErrorInfo& error) {
    hfc_error abi = error.toAbi();
    return Response(host().response_new_error(&abi));
  }

  int status() const { return host().response_status(raw_); }
  // The failure, when the response failed before its first event.
  std::optional<ErrorInfo> error() const {
    hfc_error abi{};
    if (host().response_error(raw_, &abi) == 0) return std::nullopt;
    return ErrorInfo::fromAbi(abi);
  }
  std::optional<std::string_view> header(std::string_view name) const {
    hfc_str value{};
    if (host().response_header_get(raw_, detail::toStr(name), &value) == 0) return std::nullopt;
    return detail::toView(value);
  }
  void setHeader(std::string_view name, std::string_view value) {
    host().response_header_set(raw_, detail::toStr(name), detail::toStr(value));
  }
  // Reads the next event into `out`; false at the end of the stream.
  bool next(Event& out) { return host().response_next_event(raw_, out.raw()) != 0; }

  hfc_response* raw() const { return raw_; }
  hfc_response* release() { return std::exchange(raw_, nullptr); }

 private:
  void reset() {
    if (raw_ != nullptr) host().response_free(std::exchange(raw_, nullptr));
  }
  hfc_response* raw_ = nullptr;
};

// Facts about a target of the running config.
struct TargetInfo {
  std::string name;
  std::string protocol;
  std::string base_url;
  std::string model;
  int64_t context_window = 0;
};

// A token count from the host; see hfc_token_count.
struct TokenCount {
  int64_t tokens = 0;
  hfc_count_method method = HFC_COUNT_ESTIMATE;
  std::string note;  // why an estimate was used in place of the configured counter

  bool estimate() const { return method == HFC_COUNT_ESTIMATE; }
};

class Next {
 public:
  explicit Next(hfc_next* raw) : raw_(raw) {}
  // Sends the request through the rest of the chain.
  Response operator()(Request& request) { return Response(host().next_call(raw_, request.raw())); }
  // The target called `name`, or the default target when `name` is empty.
  std::optional<TargetInfo> target(std::string_view name) const {
    hfc_target_info info{};
    if (host().target_info(raw_, detail::toStr(name), &info) == 0) return std::nullopt;
    return TargetInfo{std::string(detail::toView(info.name)),
                      std::string(detail::toView(info.protocol)),
                      std::string(detail::toView(info.base_url)),
                      std::string(detail::toView(info.model)), info.context_window};
  }
  // Counts the input tokens of `request` as the model of its target sees them; nullopt
  // when the request names no configured target.
  std::optional<TokenCount> countTokens(const Request& request) const {
    hfc_token_count count{};
    if (host().count_request_tokens(raw_, request.raw(), &count) == 0) return std::nullopt;
    return toCount(count);
  }
  // Counts plain text (no special tokens) with the tokenizer of target `target_name`
  // (the default target when empty); nullopt when there is no such target.
  std::optional<TokenCount> countText(std::string_view target_name, std::string_view text) const {
    hfc_token_count count{};
    if (host().count_text_tokens(raw_, detail::toStr(target_name), detail::toStr(text), &count) ==
        0) {
      return std::nullopt;
    }
    return toCount(count);
  }
  hfc_next* raw() const { return raw_; }

 private:
  static TokenCount toCount(const hfc_token_count& count) {
    return TokenCount{count.tokens, static_cast<hfc_count_method>(count.method),
                      std::string(detail::toView(count.note))};
  }
  hfc_next* raw_;
};

// A copy of Next that stays valid after roundTrip returns, for calls that may outlive it
// (a hedged request still in flight when another one won).
class OwnedNext {
 public:
  explicit OwnedNext(const Next& next) : raw_(host().next_clone(next.raw())) {}
  ~OwnedNext() { host().next_free(raw_); }
  OwnedNext(const OwnedNext&) = delete;
  OwnedNext& operator=(const OwnedNext&) = delete;
  Next view() const { return Next(raw_); }

 private:
  hfc_next* raw_;
};

// Links that the host built for this link, e.g. a fallback tier's own checks. Build it in
// create(); call() runs a request through its links and then through `next`.
class NestedChain {
 public:
  // Returns null and sets `error` when an entry is unknown or rejects its settings.
  static std::unique_ptr<NestedChain> build(const nlohmann::json& links, std::string& error) {
    std::string text = links.dump();
    char reason[1024] = {0};
    hfc_chain* raw = host().chain_build(detail::toStr(text), reason, sizeof(reason));
    if (raw == nullptr) {
      error = reason;
      return nullptr;
    }
    return std::unique_ptr<NestedChain>(new NestedChain(raw));
  }
  ~NestedChain() { host().chain_free(raw_); }
  NestedChain(const NestedChain&) = delete;
  NestedChain& operator=(const NestedChain&) = delete;

  Response call(Request& request, Next& next) const {
    return Response(host().chain_call(raw_, next.raw(), request.raw()));
  }

 private:
  explicit NestedChain(hfc_chain* raw) : raw_(raw) {}
  hfc_chain* raw_;
};

// Monotonic milliseconds from the host's clock, which tests may replace.
inline int64_t nowMs() { return host().now_ms(); }
// Waits up to `ms` on the host's clock; false when `request` was cancelled or ran out of
// time first.
inline bool sleepMs(const Request* request, int64_t ms) {
  return host().sleep_ms(request != nullptr ? request->raw() : nullptr, ms) != 0;
}

// Metrics exported by the gateway; labels are empty or like target="a",class="timeout".
inline void metricAdd(std::string_view name, std::string_view labels, double delta = 1) {
  host().metric_add(detail::toStr(name), detail::toStr(labels), delta);
}
inline void metricSet(std::string_view name, std::string_view labels, double value) {
  host().metric_set(detail::toStr(name), detail::toStr(labels), value);
}
inline void metricObserve(std::string_view name, std::string_view labels, double value) {
  host().metric_observe(detail::toStr(name), detail::toStr(labels), value);
}

// A stream a link makes: override next() to write one event into `out` and return true,
// or return false at the end. The last event must be a finish or an error.
class Stream {
 public:
  virtual ~Stream() = default;
  virtual bool next(Event& out) = 0;
};

namespace detail {

inline int streamNext(void* state, hfc_event* out) {
  Event event(out);
  try {
    return static_cast<Stream*>(state)->next(event) ? 1 : 0;
  } catch (const std::exception& e) {
    event.setError(ErrorInfo{HFC_ERROR_INTERNAL, 0, std::string("stream threw: ") + e.what()});
  } catch (...) {
    event.setError(ErrorInfo{HFC_ERROR_INTERNAL, 0, "stream threw a non-standard exception"});
  }
  return 1;
}

inline void streamDestroy(void* state) { delete static_cast<Stream*>(state); }

inline const hfc_stream_hooks kStreamHooks{sizeof(hfc_stream_hooks), &streamNext, &streamDestroy};

}  // namespace detail

// Returns a response that keeps `base`'s status, headers and error and delivers the events
// of `stream`. Use takeStream first to give the wrapper the inner events.
inline Response wrap(Response base, std::unique_ptr<Stream> stream) {
  return Response(
      host().response_new_stream(base.release(), &detail::kStreamHooks, stream.release()));
}

// A response that answers only with the events of `stream`, with status 200.
inline Response respond(std::unique_ptr<Stream> stream) {
  return Response(host().response_new_stream(nullptr, &detail::kStreamHooks, stream.release()));
}

// Moves the event stream out of `response` into a response of its own, so a wrapper can
// read it while `response` keeps the status and headers.
inline Response takeStream(Response& response) {
  return Response(host().response_take_stream(response.raw()));
}

class Link {
 public:
  virtual ~Link() = default;
  virtual Response roundTrip(Request& request, Next& next) = 0;
};

namespace detail {

template <typename T>
hfc_create_result createLink(const hfc_host_api* host_api, hfc_str settings_json,
                             void** instance_out, char* error_out, size_t error_capacity) {
  auto report = [&](std::string_view message) {
    if (error_capacity == 0) return;
    size_t n = std::min(message.size(), error_capacity - 1);
    std::memcpy(error_out, message.data(), n);
    error_out[n] = '\0';
  };
  // A host whose callback table differs from the one this plugin was compiled against
  // would be called through the wrong slots, so the plugin refuses to start.
  if (host_api == nullptr || host_api->abi_version != HFC_ABI_VERSION ||
      host_api->struct_size != sizeof(hfc_host_api)) {
    report("the host's callback table does not match this plugin's SDK (plugin ABI version " +
           std::to_string(HFC_ABI_VERSION) + "); rebuild the plugin against the host's SDK");
    return HFC_CREATE_FAILED;
  }
  hostSlot() = host_api;
  try {
    nlohmann::json settings = nlohmann::json::parse(toView(settings_json), nullptr, false);
    if (settings.is_discarded()) {
      report("settings are not valid JSON");
      return HFC_CREATE_INVALID_SETTINGS;
    }
    if (settings.is_null()) settings = nlohmann::json::object();
    std::string error;
    std::unique_ptr<T> link = T::create(settings, error);
    if (!link) {
      report(error.empty() ? "the link rejected its settings" : error);
      return HFC_CREATE_INVALID_SETTINGS;
    }
    *instance_out = static_cast<Link*>(link.release());
    return HFC_CREATE_OK;
  } catch (const std::exception& e) {
    report(std::string("create threw: ") + e.what());
  } catch (...) {
    report("create threw a non-standard exception");
  }
  return HFC_CREATE_FAILED;
}

inline void destroyLink(void* instance) { delete static_cast<Link*>(instance); }

inline hfc_response* roundTripLink(void* instance, hfc_request* raw_request, hfc_next* raw_next) {
  Request request(raw_request);
  Next next(raw_next);
  try {
    return static_cast<Link*>(instance)->roundTrip(request, next).release();
  } catch (const std::exception& e) {
    return Response::error(ErrorInfo{HFC_ERROR_INTERNAL, 0, std::string("link threw: ") + e.what()})
        .release();
  } catch (...) {
    return Response::error(ErrorInfo{HFC_ERROR_INTERNAL, 0, "link threw a non-standard exception"})
        .release();
  }
}

}  // namespace detail

// Describes link class T. T must provide
//   static std::unique_ptr<T> create(const nlohmann::json& settings, std::string& error);
// which returns null and sets `error` when the settings are invalid.
template <typename T>
constexpr hfc_link_descriptor linkDescriptor(const char* name, const char* description) {
  return hfc_link_descriptor{
      sizeof(hfc_link_descriptor), name, description, &detail::createLink<T>, &detail::destroyLink,
      &detail::roundTripLink};
}

}  // namespace v1
}  // namespace hfchain::sdk

#define HFCHAIN_LINK(Type, name, description) \
  ::hfchain::sdk::linkDescriptor<Type>(name, description)

// Exports the plugin entry point with one or more HFCHAIN_LINK entries.
#define HFCHAIN_PLUGIN(plugin_name, plugin_version, ...)                         \
  namespace {                                                                    \
  const hfc_link_descriptor hfchain_plugin_links_[] = {__VA_ARGS__};             \
  const hfc_plugin_descriptor hfchain_plugin_descriptor_ = {                     \
      HFC_ABI_VERSION,                                                           \
      sizeof(hfc_plugin_descriptor),                                             \
      plugin_name,                                                               \
      plugin_version,                                                            \
      sizeof(hfchain_plugin_links_) / sizeof(hfchain_plugin_links_[0]),          \
      hfchain_plugin_links_};                                                    \
  }                                                                              \
  extern "C" __attribute__((visibility("default"))) const hfc_plugin_descriptor* \
  hfchain_plugin_init(uint32_t /*host_abi_version*/) {                           \
    return &hfchain_plugin_descriptor_;                                          \
  }
