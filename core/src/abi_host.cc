// The host callback table of the plugin ABI, implemented over the engine's own objects.
#include "abi_host.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "chain_builder.h"
#include "hfchain/clock.h"
#include "hfchain/log.h"
#include "hfchain/metrics.h"
#include "hfchain/target.h"
#include "hfchain/token_counter.h"

namespace hfchain::abi {
namespace {

std::string_view view(hfc_str text) {
  return text.data == nullptr ? std::string_view() : std::string_view(text.data, text.size);
}
hfc_str str(std::string_view text) { return hfc_str{text.data(), text.size()}; }

Poco::Message::Priority priorityOf(hfc_log_level level) {
  switch (level) {
    case HFC_LOG_TRACE:
      return Poco::Message::PRIO_TRACE;
    case HFC_LOG_DEBUG:
      return Poco::Message::PRIO_DEBUG;
    case HFC_LOG_INFO:
      return Poco::Message::PRIO_INFORMATION;
    case HFC_LOG_WARNING:
      return Poco::Message::PRIO_WARNING;
    case HFC_LOG_ERROR:
      return Poco::Message::PRIO_ERROR;
  }
  return Poco::Message::PRIO_INFORMATION;
}

void hostLog(const hfc_request* request, hfc_log_level level, hfc_str logger, hfc_str message) {
  std::string name = "hfchain.plugin.";
  name += view(logger);
  Poco::Logger& target = Poco::Logger::get(name);
  Poco::Message::Priority priority = priorityOf(level);
  if (!target.is(priority)) return;
  std::string text;
  if (request != nullptr) text = HFC_RID(fromAbi(request)->id);
  text += view(message);
  target.log(Poco::Message(target.name(), text, priority));
}

int hostLogEnabled(hfc_log_level level) {
  return Poco::Logger::get("hfchain.plugin").is(priorityOf(level)) ? 1 : 0;
}

hfc_str requestGet(const hfc_request* raw, hfc_request_field field) {
  const Request& request = *fromAbi(raw);
  switch (field) {
    case HFC_REQUEST_ID:
      return str(request.id);
    case HFC_REQUEST_TARGET:
      return str(request.target);
    case HFC_REQUEST_MODEL:
      return str(request.model);
    case HFC_REQUEST_INPUTS:
      return str(request.inputs);
  }
  return hfc_str{nullptr, 0};
}

int requestSet(hfc_request* raw, hfc_request_field field, hfc_str value) {
  Request& request = *fromAbi(raw);
  switch (field) {
    case HFC_REQUEST_ID:
      return 0;  // the id names the request in every log line, so it never changes
    case HFC_REQUEST_TARGET:
      request.target = view(value);
      return 1;
    case HFC_REQUEST_MODEL:
      request.model = view(value);
      return 1;
    case HFC_REQUEST_INPUTS:
      request.inputs = view(value);
      return 1;
  }
  return 0;
}

int requestGetStream(const hfc_request* raw) { return fromAbi(raw)->stream ? 1 : 0; }

int requestParamGet(const hfc_request* raw, hfc_str name, hfc_str* json_out) {
  thread_local std::string scratch;
  const nlohmann::json& parameters = fromAbi(raw)->parameters;
  auto it = parameters.find(std::string(view(name)));
  if (it == parameters.end()) {
    *json_out = hfc_str{"", 0};
    return 0;
  }
  scratch = it->dump();
  *json_out = str(scratch);
  return 1;
}

int requestParamSet(hfc_request* raw, hfc_str name, hfc_str json) {
  nlohmann::json& parameters = fromAbi(raw)->parameters;
  if (json.data == nullptr) {
    parameters.erase(std::string(view(name)));
    return 1;
  }
  nlohmann::json value = nlohmann::json::parse(view(json), nullptr, false);
  if (value.is_discarded()) return 0;
  parameters[std::string(view(name))] = std::move(value);
  return 1;
}

int headerGet(const Headers& headers, hfc_str name, hfc_str* value_out) {
  const std::string* value = headers.find(view(name));
  if (value == nullptr) return 0;
  *value_out = str(*value);
  return 1;
}

void headerSet(Headers& headers, hfc_str name, hfc_str value) {
  if (value.data == nullptr) {
    headers.remove(view(name));
  } else {
    headers.set(std::string(view(name)), std::string(view(value)));
  }
}

int requestHeaderGet(const hfc_request* raw, hfc_str name, hfc_str* value_out) {
  return headerGet(fromAbi(raw)->headers, name, value_out);
}
void requestHeaderSet(hfc_request* raw, hfc_str name, hfc_str value) {
  headerSet(fromAbi(raw)->headers, name, value);
}
int requestMetaGet(const hfc_request* raw, hfc_str name, hfc_str* value_out) {
  return headerGet(fromAbi(raw)->metadata, name, value_out);
}
void requestMetaSet(hfc_request* raw, hfc_str name, hfc_str value) {
  headerSet(fromAbi(raw)->metadata, name, value);
}

size_t messageCount(const hfc_request* raw) { return fromAbi(raw)->messages.size(); }

int messageGet(const hfc_request* raw, size_t index, hfc_str* role_out, hfc_str* content_out) {
  const auto& messages = fromAbi(raw)->messages;
  if (index >= messages.size()) return 0;
  *role_out = str(messages[index].role);
  *content_out = str(messages[index].content);
  return 1;
}

int messageInsert(hfc_request* raw, size_t index, hfc_str role, hfc_str content) {
  auto& messages = fromAbi(raw)->messages;
  if (index > messages.size()) return 0;
  messages.insert(messages.begin() + static_cast<std::ptrdiff_t>(index),
                  Message{std::string(view(role)), std::string(view(content))});
  return 1;
}

int messageErase(hfc_request* raw, size_t index) {
  auto& messages = fromAbi(raw)->messages;
  if (index >= messages.size()) return 0;
  messages.erase(messages.begin() + static_cast<std::ptrdiff_t>(index));
  return 1;
}

int messageSet(hfc_request* raw, size_t index, hfc_str role, hfc_str content) {
  auto& messages = fromAbi(raw)->messages;
  if (index >= messages.size()) return 0;
  messages[index] = Message{std::string(view(role)), std::string(view(content))};
  return 1;
}

int64_t deadlineRemainingMs(const hfc_request* raw) {
  const auto& deadline = fromAbi(raw)->deadline;
  if (!deadline) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
  return std::max<int64_t>(0, left.count());
}

void setDeadlineMs(hfc_request* raw, int64_t from_now_ms) {
  Request& request = *fromAbi(raw);
  if (from_now_ms < 0) {
    request.deadline.reset();
    return;
  }
  request.deadline = Clock::now() + std::chrono::milliseconds(from_now_ms);
}

hfc_request* requestClone(const hfc_request* raw) {
  auto* copy = new Request(*fromAbi(raw));
  copy->cancel = fromAbi(raw)->cancel.child();
  return toAbi(copy);
}
void requestCancel(hfc_request* raw) { fromAbi(raw)->cancel.cancel(); }
int requestIsCancelled(const hfc_request* raw) { return fromAbi(raw)->cancel.cancelled() ? 1 : 0; }
void requestFree(hfc_request* raw) { delete fromAbi(raw); }

hfc_response* nextCall(hfc_next* next, hfc_request* request) {
  return releaseToAbi(fromAbi(next)->call(*fromAbi(request)));
}

hfc_next* nextClone(const hfc_next* next) {
  return toAbi(reinterpret_cast<const Next*>(next)->clone().release());
}
void nextFree(hfc_next* next) { delete fromAbi(next); }

int targetInfo(const hfc_next* next, hfc_str name, hfc_target_info* out) {
  const TargetConfig* target =
      reinterpret_cast<const Next*>(next)->findTarget(std::string(view(name)));
  if (target == nullptr) return 0;
  const Next* chain = reinterpret_cast<const Next*>(next);
  *out =
      hfc_target_info{str(target->name), str(protocolName(target->protocol)), str(target->base_url),
                      str(target->model), chain->contextWindow(target->name, "")};
  return 1;
}

// The note of the last count on this thread, which hfc_token_count.note borrows.
thread_local std::string count_note;

void fillCount(const TokenCount& count, hfc_token_count* out) {
  count_note = count.note;
  *out = hfc_token_count{count.tokens, static_cast<uint32_t>(count.method), str(count_note)};
}

int countRequestTokens(const hfc_next* next, const hfc_request* raw, hfc_token_count* out) {
  const Next* chain = reinterpret_cast<const Next*>(next);
  const Request& request = *fromAbi(raw);
  if (chain->findTarget(request.target) == nullptr) return 0;
  const TokenCounter* counter = chain->tokenCounter(request.target);
  if (counter == nullptr) counter = estimateTokenCounter().get();
  fillCount(counter->countRequest(request), out);
  return 1;
}

int countTextTokens(const hfc_next* next, hfc_str target, hfc_str text, hfc_token_count* out) {
  const Next* chain = reinterpret_cast<const Next*>(next);
  const std::string name(view(target));
  if (chain->findTarget(name) == nullptr) return 0;
  const TokenCounter* counter = chain->tokenCounter(name);
  if (counter == nullptr) counter = estimateTokenCounter().get();
  fillCount(counter->countText(view(text)), out);
  return 1;
}

Response* responseOf(hfc_response* raw) { return reinterpret_cast<Response*>(raw); }
const Response* responseOf(const hfc_response* raw) {
  return reinterpret_cast<const Response*>(raw);
}

int responseStatus(const hfc_response* raw) { return responseOf(raw)->status; }

int responseError(const hfc_response* raw, hfc_error* out) {
  const Error& error = responseOf(raw)->error;
  if (error.ok()) return 0;
  *out = hfc_error{static_cast<uint32_t>(error.cls), error.http_status, str(error.message),
                   error.retry_after_ms, error.estimated_time_s};
  return 1;
}

int responseHeaderGet(const hfc_response* raw, hfc_str name, hfc_str* value_out) {
  return headerGet(responseOf(raw)->headers, name, value_out);
}
void responseHeaderSet(hfc_response* raw, hfc_str name, hfc_str value) {
  headerSet(responseOf(raw)->headers, name, value);
}

int responseNextEvent(hfc_response* raw, hfc_event* out) {
  Response& response = *responseOf(raw);
  if (!response.stream) return 0;
  return response.stream->next(*fromAbi(out)) ? 1 : 0;
}

hfc_response* responseNewText(int status, hfc_str text, hfc_str finish_reason) {
  Response response = makeTextResponse(std::string(view(text)), std::string(view(finish_reason)));
  response.status = status;
  return releaseToAbi(std::move(response));
}

hfc_response* responseNewError(const hfc_error* error) {
  return releaseToAbi(makeErrorResponse(errorFromAbi(*error)));
}

// Events produced by a plugin's stream hooks.
class HookedEventStream : public EventStream {
 public:
  HookedEventStream(const hfc_stream_hooks& hooks, void* state) : hooks_(hooks), state_(state) {}
  ~HookedEventStream() override {
    if (hooks_.destroy != nullptr) hooks_.destroy(state_);
  }
  bool next(Event& out) override {
    if (finished_) return false;
    out.clear();
    if (hooks_.next(state_, toAbi(&out)) == 0) {
      finished_ = true;
      return false;
    }
    if (out.kind != EventKind::kToken) finished_ = true;
    return true;
  }

 private:
  hfc_stream_hooks hooks_;
  void* state_;
  bool finished_ = false;
};

hfc_response* responseNewStream(hfc_response* base, const hfc_stream_hooks* hooks, void* state) {
  Response response;
  if (base != nullptr) {
    response = std::move(*responseOf(base));
    delete responseOf(base);
  } else {
    response.status = 200;
  }
  response.stream = std::make_unique<HookedEventStream>(*hooks, state);
  return releaseToAbi(std::move(response));
}

hfc_response* responseTakeStream(hfc_response* raw) {
  Response taken;
  Response& source = *responseOf(raw);
  taken.status = source.status;
  taken.error = source.error;
  taken.stream = std::move(source.stream);
  return releaseToAbi(std::move(taken));
}

void responseFree(hfc_response* raw) { delete responseOf(raw); }

hfc_event* eventNew() { return toAbi(new Event()); }
void eventFree(hfc_event* event) { delete fromAbi(event); }
void eventCopy(hfc_event* to, const hfc_event* from) { *fromAbi(to) = *fromAbi(from); }

hfc_str eventGet(const hfc_event* raw, hfc_event_field field) {
  const Event& event = *fromAbi(raw);
  switch (field) {
    case HFC_EVENT_TEXT:
      return str(event.text);
    case HFC_EVENT_FINISH_REASON:
      return str(event.finish_reason);
    case HFC_EVENT_GENERATED_TEXT:
      return str(event.generated_text);
    case HFC_EVENT_ERROR_MESSAGE:
      return str(event.error.message);
    case HFC_EVENT_SERVED_BY:
      return str(event.served_by);
  }
  return hfc_str{nullptr, 0};
}

void eventSet(hfc_event* raw, hfc_event_field field, hfc_str value) {
  Event& event = *fromAbi(raw);
  switch (field) {
    case HFC_EVENT_TEXT:
      event.text = view(value);
      return;
    case HFC_EVENT_FINISH_REASON:
      event.finish_reason = view(value);
      return;
    case HFC_EVENT_GENERATED_TEXT:
      event.generated_text = view(value);
      return;
    case HFC_EVENT_ERROR_MESSAGE:
      event.error.message = view(value);
      return;
    case HFC_EVENT_SERVED_BY:
      event.served_by = view(value);
      return;
  }
}

int64_t eventGetInt(const hfc_event* raw, hfc_event_int field) {
  const Event& event = *fromAbi(raw);
  switch (field) {
    case HFC_EVENT_KIND:
      return static_cast<int64_t>(event.kind);
    case HFC_EVENT_TOKEN_ID:
      return event.token_id;
    case HFC_EVENT_SPECIAL:
      return event.special ? 1 : 0;
    case HFC_EVENT_PROMPT_TOKENS:
      return event.usage.prompt_tokens;
    case HFC_EVENT_COMPLETION_TOKENS:
      return event.usage.completion_tokens;
    case HFC_EVENT_ERROR_CLASS:
      return static_cast<int64_t>(event.error.cls);
    case HFC_EVENT_ERROR_HTTP_STATUS:
      return event.error.http_status;
  }
  return 0;
}

void eventSetInt(hfc_event* raw, hfc_event_int field, int64_t value) {
  Event& event = *fromAbi(raw);
  switch (field) {
    case HFC_EVENT_KIND:
      if (value >= HFC_EVENT_TOKEN && value <= HFC_EVENT_ERROR) {
        event.kind = static_cast<EventKind>(value);
      }
      return;
    case HFC_EVENT_TOKEN_ID:
      event.token_id = value;
      return;
    case HFC_EVENT_SPECIAL:
      event.special = value != 0;
      return;
    case HFC_EVENT_PROMPT_TOKENS:
      event.usage.prompt_tokens = value;
      return;
    case HFC_EVENT_COMPLETION_TOKENS:
      event.usage.completion_tokens = value;
      return;
    case HFC_EVENT_ERROR_CLASS:
      if (value >= 0 && value <= static_cast<int64_t>(ErrorClass::kInternal)) {
        event.error.cls = static_cast<ErrorClass>(value);
      }
      return;
    case HFC_EVENT_ERROR_HTTP_STATUS:
      event.error.http_status = static_cast<int>(value);
      return;
  }
}

int eventGetLogprob(const hfc_event* raw, double* out) {
  const Event& event = *fromAbi(raw);
  if (!event.logprob) return 0;
  *out = *event.logprob;
  return 1;
}

void eventSetError(hfc_event* raw, const hfc_error* error) {
  Event& event = *fromAbi(raw);
  event.kind = EventKind::kError;
  event.error = errorFromAbi(*error);
}

int64_t nowMs() { return timeSource().nowMs(); }
int sleepMs(const hfc_request* request, int64_t ms) {
  return timeSource().sleepMs(request != nullptr ? fromAbi(request) : nullptr, ms) ? 1 : 0;
}
void metricAdd(hfc_str name, hfc_str labels, double delta) {
  Metrics::global().add(view(name), view(labels), delta);
}
void metricSet(hfc_str name, hfc_str labels, double value) {
  Metrics::global().set(view(name), view(labels), value);
}
void metricObserve(hfc_str name, hfc_str labels, double value) {
  Metrics::global().observe(view(name), view(labels), value);
}

hfc_chain* chainBuild(hfc_str links_json, char* error_out, size_t error_capacity) {
  auto report = [&](const std::string& message) {
    if (error_capacity == 0) return;
    size_t n = std::min(message.size(), error_capacity - 1);
    std::memcpy(error_out, message.data(), n);
    error_out[n] = '\0';
  };
  if (internal::currentBuildScope() == nullptr) {
    report("chain_build may only be called from a link's create hook");
    return nullptr;
  }
  nlohmann::json entries = nlohmann::json::parse(view(links_json), nullptr, false);
  if (entries.is_discarded()) {
    report("the nested chain is not valid JSON");
    return nullptr;
  }
  std::vector<LinkPtr> links;
  std::string error = internal::buildLinksFromJson(entries, links);
  if (!error.empty()) {
    report(error);
    return nullptr;
  }
  return reinterpret_cast<hfc_chain*>(new internal::NestedChain(std::move(links)));
}

hfc_response* chainCall(hfc_chain* chain, hfc_next* next, hfc_request* request) {
  const auto* nested = reinterpret_cast<const internal::NestedChain*>(chain);
  return releaseToAbi(nested->call(*fromAbi(next), *fromAbi(request)));
}

void chainFree(hfc_chain* chain) { delete reinterpret_cast<internal::NestedChain*>(chain); }

const hfc_host_api kHostApi = {
    HFC_ABI_VERSION,
    sizeof(hfc_host_api),
    &hostLog,
    &hostLogEnabled,
    &requestGet,
    &requestSet,
    &requestGetStream,
    &requestParamGet,
    &requestParamSet,
    &requestHeaderGet,
    &requestHeaderSet,
    &requestMetaGet,
    &requestMetaSet,
    &messageCount,
    &messageGet,
    &messageInsert,
    &messageErase,
    &messageSet,
    &deadlineRemainingMs,
    &setDeadlineMs,
    &requestClone,
    &requestFree,
    &requestCancel,
    &requestIsCancelled,
    &nextCall,
    &nextClone,
    &nextFree,
    &targetInfo,
    &responseStatus,
    &responseError,
    &responseHeaderGet,
    &responseHeaderSet,
    &responseNextEvent,
    &responseNewText,
    &responseNewError,
    &responseNewStream,
    &responseTakeStream,
    &responseFree,
    &eventNew,
    &eventFree,
    &eventCopy,
    &eventGet,
    &eventSet,
    &eventGetInt,
    &eventSetInt,
    &eventGetLogprob,
    &eventSetError,
    &nowMs,
    &sleepMs,
    &metricAdd,
    &metricSet,
    &metricObserve,
    &chainBuild,
    &chainCall,
    &chainFree,
    &countRequestTokens,
    &countTextTokens,
};

}  // namespace

const hfc_host_api* hostApi() { return &kHostApi; }

Error errorFromAbi(const hfc_error& error) {
  Error out;
  uint32_t cls = error.error_class;
  out.cls = cls <= static_cast<uint32_t>(ErrorClass::kInternal) && cls != 0
                ? static_cast<ErrorClass>(cls)
                : ErrorClass::kInternal;
  out.http_status = error.http_status;
  out.message = view(error.message);
  out.retry_after_ms = error.retry_after_ms;
  out.estimated_time_s = error.estimated_time_s;
  return out;
}

Response adoptFromAbi(hfc_response* raw, const std::string& link_name) {
  if (raw == nullptr) {
    return makeErrorResponse(
        makeError(ErrorClass::kInternal, "link '" + link_name + "' returned no response"));
  }
  Response response = std::move(*responseOf(raw));
  delete responseOf(raw);
  if (!response.stream) {
    // A response whose stream a wrapper took and never gave back still has to end.
    Error error = response.error.ok()
                      ? makeError(ErrorClass::kInternal,
                                  "link '" + link_name + "' returned a response without events")
                      : response.error;
    response.stream = makeErrorResponse(error).stream;
  }
  return response;
}

}  // namespace hfchain::abi
