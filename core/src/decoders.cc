// Stream and body decoders for TGI and OpenAI-compatible upstreams, and the mapping of HTTP
// error answers to typed errors. JSON is read with simdjson's DOM API, whose parser picks the
// fastest kernel for the CPU at run time and reuses its buffers between documents.
#include "hfchain/decoders.h"

#include <Poco/DateTime.h>
#include <Poco/DateTimeParser.h>
#include <Poco/Exception.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace hfchain {
namespace {

namespace dom = simdjson::dom;

// Upper bound of error messages taken from upstream bodies and events.
constexpr size_t kMaxMessageBytes = 1000;
// Bytes of an undecodable event quoted in a kStreamParse message.
constexpr size_t kQuotedDataBytes = 120;

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  return text;
}

// Trims `text` and cuts it to at most `max_bytes` on a UTF-8 character boundary, marking a cut
// with "...".
std::string boundedText(std::string_view text, size_t max_bytes) {
  text = trim(text);
  if (text.size() <= max_bytes) return std::string(text);
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  std::string out(text.substr(0, cut));
  out += "...";
  return out;
}

ErrorClass classFromStatus(int status, bool has_estimated_time) {
  if (status == 401 || status == 403) return ErrorClass::kUpstreamAuth;
  if (status == 404) return ErrorClass::kUpstreamNotFound;
  if (status == 429) return ErrorClass::kRateLimited;
  if (status == 503 && has_estimated_time) return ErrorClass::kModelLoading;
  if (status >= 500) return ErrorClass::kUpstream5xx;
  if (status >= 400) return ErrorClass::kUpstreamValidation;
  // A redirect that was not followed means the model or route is not served at this URL.
  return ErrorClass::kUpstreamNotFound;
}

// Classifies an error object that arrived inside a 200 response (a stream event or a body).
ErrorClass classifyInBandError(std::string_view error_type, int64_t status) {
  if (status >= 300 && status < 600) return classFromStatus(static_cast<int>(status), false);
  if (error_type == "validation" || error_type == "invalid_request_error") {
    return ErrorClass::kUpstreamValidation;
  }
  return ErrorClass::kUpstreamGeneration;
}

// Reads an integer that may have been sent as a signed, unsigned or whole floating number.
bool readInt(dom::element value, int64_t& out) {
  switch (value.type()) {
    case dom::element_type::INT64:
      out = value.get_int64().value_unsafe();
      return true;
    case dom::element_type::UINT64:
      out = std::numeric_limits<int64_t>::max();
      return true;
    case dom::element_type::DOUBLE: {
      const double number = value.get_double().value_unsafe();
      if (number < 0 || number > 9.0e18) return false;
      out = static_cast<int64_t>(number);
      return true;
    }
    default:
      return false;
  }
}

bool readString(dom::element value, std::string_view& out) {
  return value.get_string().get(out) == simdjson::SUCCESS;
}

// The error-related fields of a JSON object. Views point into the simdjson parser and are
// valid until it parses the next document.
struct ErrorFields {
  bool present = false;  // the object has a non-null `error` field
  std::string_view message;
  std::string_view fallback_message;  // `message` or `detail` at the top level
  std::string_view type;
  int64_t status = 0;  // `code` or `http_status_code` inside the error object
  double estimated_time_s = -1;

  std::string_view bestMessage() const { return message.empty() ? fallback_message : message; }
};

void readErrorObject(dom::object error, ErrorFields& fields) {
  for (const dom::key_value_pair field : error) {
    std::string_view text;
    int64_t number = 0;
    if (field.key == "message") {
      readString(field.value, fields.message);
    } else if (field.key == "type") {
      readString(field.value, fields.type);
    } else if (field.key == "code" || field.key == "http_status_code") {
      if (readInt(field.value, number) && number >= 100 && number < 600) {
        fields.status = number;
      } else if (fields.type.empty() && readString(field.value, text)) {
        fields.type = text;
      }
    }
  }
}

// Reads one top-level field into `fields`; returns false when the key is not error-related.
bool readErrorField(const dom::key_value_pair& field, ErrorFields& fields) {
  if (field.key == "error") {
    dom::object error;
    if (readString(field.value, fields.message)) {
      fields.present = true;
    } else if (field.value.get_object().get(error) == simdjson::SUCCESS) {
      fields.present = true;
      readErrorObject(error, fields);
    }
    return true;
  }
  if (field.key == "error_type") {
    if (fields.type.empty()) readString(field.value, fields.type);
    return true;
  }
  if (field.key == "message" || field.key == "detail") {
    if (fields.fallback_message.empty()) readString(field.value, fields.fallback_message);
    return true;
  }
  if (field.key == "estimated_time") {
    double seconds = 0;
    if (field.value.get_double().get(seconds) == simdjson::SUCCESS) {
      fields.estimated_time_s = seconds;
    }
    return true;
  }
  return false;
}

Error makeInBandError(const ErrorFields& fields) {
  Error error;
  error.cls = classifyInBandError(fields.type, fields.status);
  error.message = boundedText(fields.bestMessage(), kMaxMessageBytes);
  if (error.message.empty()) error.message = "upstream reported an error without a message";
  error.error_type = std::string(fields.type);
  return error;
}

void readUsage(dom::object object, Usage& usage) {
  for (const dom::key_value_pair field : object) {
    if (field.key == "prompt_tokens") {
      readInt(field.value, usage.prompt_tokens);
    } else if (field.key == "completion_tokens") {
      readInt(field.value, usage.completion_tokens);
    } else if (field.key == "total_tokens") {
      readInt(field.value, usage.total_tokens);
    }
  }
}

// Reads TGI `details` into the finish event: finish_reason, generated_tokens, input_length.
void readTgiDetails(dom::object details, Event& finish) {
  for (const dom::key_value_pair field : details) {
    std::string_view reason;
    if (field.key == "finish_reason") {
      if (readString(field.value, reason)) finish.finish_reason.assign(reason);
    } else if (field.key == "generated_tokens") {
      readInt(field.value, finish.usage.completion_tokens);
    } else if (field.key == "input_length") {
      readInt(field.value, finish.usage.prompt_tokens);
    }
  }
  if (finish.usage.prompt_tokens >= 0 && finish.usage.completion_tokens >= 0) {
    finish.usage.total_tokens = finish.usage.prompt_tokens + finish.usage.completion_tokens;
  }
}

void readTgiToken(dom::object token, Event& event) {
  for (const dom::key_value_pair field : token) {
    std::string_view text;
    double logprob = 0;
    if (field.key == "text") {
      if (readString(field.value, text)) event.text.assign(text);
    } else if (field.key == "id") {
      readInt(field.value, event.token_id);
    } else if (field.key == "logprob") {
      if (field.value.get_double().get(logprob) == simdjson::SUCCESS) event.logprob = logprob;
    } else if (field.key == "special") {
      bool special = false;
      if (field.value.get_bool().get(special) == simdjson::SUCCESS) event.special = special;
    }
  }
}

void resetToken(Event& event) {
  event.kind = EventKind::kToken;
  event.text.clear();
  event.token_id = -1;
  event.logprob.reset();
  event.special = false;
}

void resetFinish(Event& event) {
  event.kind = EventKind::kFinish;
  event.finish_reason.clear();
  event.usage = Usage{};
  event.generated_text.clear();
}

// The part of one OpenAI choice that the decoders use. Views are valid until the next parse.
struct OpenAiChoice {
  int64_t index = 0;
  bool has_delta = false;
  bool has_content = false;  // delta.content or message.content is a string
  std::string_view content;
  bool has_text = false;  // completions: `text` is a string
  std::string_view text;
  int64_t token_id = -1;  // delta.token_id, sent by some providers
  std::string_view finish_reason;

  // The generated text of this choice: the chat content, else the completions text.
  bool piece(std::string_view& out) const {
    if (has_content) {
      out = content;
      return true;
    }
    if (!has_delta && has_text) {
      out = text;
      return true;
    }
    return false;
  }
};

void readOpenAiMessage(dom::object message, OpenAiChoice& choice) {
  for (const dom::key_value_pair field : message) {
    if (field.key == "content") {
      choice.has_content = readString(field.value, choice.content);
    } else if (field.key == "token_id") {
      readInt(field.value, choice.token_id);
    }
  }
}

void readOpenAiChoice(dom::object object, OpenAiChoice& choice) {
  for (const dom::key_value_pair field : object) {
    dom::object nested;
    if (field.key == "index") {
      readInt(field.value, choice.index);
    } else if (field.key == "delta" || field.key == "message") {
      if (field.value.get_object().get(nested) == simdjson::SUCCESS) {
        choice.has_delta = true;
        readOpenAiMessage(nested, choice);
      }
    } else if (field.key == "text") {
      choice.has_text = readString(field.value, choice.text);
    } else if (field.key == "finish_reason") {
      readString(field.value, choice.finish_reason);
    }
  }
}

// Finds the choice with index 0 (the first choice when none has an index) in `choices`.
bool readFirstChoice(dom::array choices, OpenAiChoice& out) {
  for (const dom::element element : choices) {
    dom::object object;
    if (element.get_object().get(object) != simdjson::SUCCESS) continue;
    OpenAiChoice choice;
    readOpenAiChoice(object, choice);
    if (choice.index != 0) continue;
    out = choice;
    return true;
  }
  return false;
}

// Shared machinery of the stream decoders: SSE framing, JSON parsing into a reused padded
// buffer, and emission of the final events.
class SseJsonDecoder : public StreamDecoder, private sse::MessageSink {
 public:
  explicit SseJsonDecoder(DecoderOptions options)
      : parser_(sse::Parser::Options{options.max_event_bytes}),
        json_(std::max<size_t>(options.max_event_bytes, simdjson::SIMDJSON_PADDING)) {
    resetToken(token_);
    resetFinish(finish_);
  }

  void feed(std::string_view chunk, EventSink& sink) override {
    if (done_) return;
    sink_ = &sink;
    Error error = parser_.feed(chunk, static_cast<sse::MessageSink&>(*this));
    if (!error.ok() && !done_) emitError(std::move(error));
    sink_ = nullptr;
  }

  void finish(EventSink& sink) override {
    if (done_) return;
    sink_ = &sink;
    const bool cut_off = parser_.hasPendingEvent();
    parser_.finish();
    finishStream(cut_off);
    sink_ = nullptr;
  }

  bool done() const override { return done_; }
  int64_t tokenCount() const override { return token_count_; }
  const sse::Parser& parser() const override { return parser_; }

 protected:
  // Decodes the JSON object of one `message` event.
  virtual void decodeObject(dom::object object) = 0;

  // Called at end of input when no final event was emitted.
  virtual void finishStream(bool cut_off) { emitIncomplete(cut_off); }

  void emitToken() {
    ++token_count_;
    sink_->onEvent(token_);
  }

  void emitFinish() {
    done_ = true;
    sink_->onEvent(finish_);
  }

  void emitError(Error error) {
    done_ = true;
    Event event;
    event.kind = EventKind::kError;
    event.error = std::move(error);
    sink_->onEvent(event);
  }

  void emitIncomplete(bool cut_off) {
    std::string message = "upstream closed the stream before its final event, after " +
                          std::to_string(token_count_) + " tokens";
    if (cut_off) message += "; the last event was cut off";
    emitError(makeError(ErrorClass::kStreamIncomplete, std::move(message)));
  }

  Event token_;   // reused for every kToken so that its text buffer is reused
  Event finish_;  // the pending kFinish

 private:
  void onMessage(const sse::Message& message) override {
    if (done_) return;
    const bool is_error_event = message.event == "error";
    if (message.event != "message" && !is_error_event) return;
    if (handleNonJson(message.data)) return;

    dom::object object;
    const simdjson::error_code code = parseObject(message.data, object);
    if (code != simdjson::SUCCESS) {
      if (is_error_event) {
        emitError(makeError(ErrorClass::kUpstreamGeneration,
                            boundedText(message.data, kMaxMessageBytes)));
        return;
      }
      emitError(makeError(
          ErrorClass::kStreamParse,
          std::string("stream event is not a JSON object (") + simdjson::error_message(code) +
              "); data starts with: " + boundedText(message.data, kQuotedDataBytes)));
      return;
    }
    decodeObject(object);
    if (is_error_event && !done_) {
      emitError(
          makeError(ErrorClass::kUpstreamGeneration, boundedText(message.data, kMaxMessageBytes)));
    }
  }

  // Handles data that is not JSON by design, such as "[DONE]"; returns true when handled.
  virtual bool handleNonJson(std::string_view data) {
    (void)data;
    return false;
  }

  simdjson::error_code parseObject(std::string_view data, dom::object& object) {
    // The DOM parser reads up to simdjson::SIMDJSON_PADDING bytes past the end of its input, so the
    // data is copied into a buffer that keeps that much room.
    if (padded_.size() < data.size() + simdjson::SIMDJSON_PADDING) {
      padded_.resize(data.size() + simdjson::SIMDJSON_PADDING);
    }
    std::memcpy(padded_.data(), data.data(), data.size());
    dom::element root;
    const simdjson::error_code code = json_.parse(padded_.data(), data.size(), false).get(root);
    if (code != simdjson::SUCCESS) return code;
    return root.get_object().get(object);
  }

  sse::Parser parser_;
  dom::parser json_;
  std::string padded_;
  EventSink* sink_ = nullptr;
  bool done_ = false;
  int64_t token_count_ = 0;
};

class TgiStreamDecoder final : public SseJsonDecoder {
 public:
  using SseJsonDecoder::SseJsonDecoder;

 private:
  void decodeObject(dom::object object) override {
    ErrorFields error;
    bool has_token = false;
    bool has_final = false;
    resetToken(token_);
    resetFinish(finish_);

    for (const dom::key_value_pair field : object) {
      dom::object nested;
      std::string_view text;
      if (field.key == "token") {
        if (field.value.get_object().get(nested) == simdjson::SUCCESS) {
          has_token = true;
          readTgiToken(nested, token_);
        }
      } else if (field.key == "generated_text") {
        if (readString(field.value, text)) {
          has_final = true;
          finish_.generated_text.assign(text);
        }
      } else if (field.key == "details") {
        if (field.value.get_object().get(nested) == simdjson::SUCCESS) {
          has_final = true;
          readTgiDetails(nested, finish_);
        }
      } else {
        readErrorField(field, error);
      }
    }

    if (error.present) {
      emitError(makeInBandError(error));
      return;
    }
    if (has_token) emitToken();
    if (has_final) emitFinish();
  }
};

class OpenAiStreamDecoder final : public SseJsonDecoder {
 public:
  using SseJsonDecoder::SseJsonDecoder;

 private:
  bool handleNonJson(std::string_view data) override {
    if (trim(data) != "[DONE]") return false;
    emitFinish();
    return true;
  }

  void decodeObject(dom::object object) override {
    ErrorFields error;
    OpenAiChoice choice;
    bool has_choice = false;

    for (const dom::key_value_pair field : object) {
      dom::array choices;
      dom::object usage;
      if (field.key == "choices") {
        if (field.value.get_array().get(choices) == simdjson::SUCCESS) {
          has_choice = readFirstChoice(choices, choice);
        }
      } else if (field.key == "usage") {
        if (field.value.get_object().get(usage) == simdjson::SUCCESS) {
          readUsage(usage, finish_.usage);
        }
      } else {
        readErrorField(field, error);
      }
    }

    if (error.present) {
      emitError(makeInBandError(error));
      return;
    }
    if (!has_choice) return;
    std::string_view piece;
    if (choice.piece(piece) && !piece.empty()) {
      resetToken(token_);
      token_.text.assign(piece);
      token_.token_id = choice.token_id;
      emitToken();
    }
    if (!choice.finish_reason.empty()) {
      finish_.finish_reason.assign(choice.finish_reason);
      has_finish_reason_ = true;
    }
  }

  void finishStream(bool cut_off) override {
    if (has_finish_reason_ && !cut_off) {
      emitFinish();
      return;
    }
    emitIncomplete(cut_off);
  }

  bool has_finish_reason_ = false;
};

// Emits the events of a whole TGI /generate body.
void decodeTgiBody(dom::object object, EventSink& sink) {
  Event token;
  Event finish;
  finish.kind = EventKind::kFinish;
  bool has_text = false;
  for (const dom::key_value_pair field : object) {
    std::string_view text;
    dom::object details;
    if (field.key == "generated_text") {
      has_text = readString(field.value, text);
      token.text.assign(text);
    } else if (field.key == "details") {
      if (field.value.get_object().get(details) == simdjson::SUCCESS) {
        readTgiDetails(details, finish);
      }
    }
  }
  if (!has_text) {
    Event error;
    error.kind = EventKind::kError;
    error.error = makeError(ErrorClass::kStreamParse,
                            "response body has no generated_text string; is the target's api "
                            "set to the right protocol?");
    sink.onEvent(error);
    return;
  }
  finish.generated_text = token.text;
  sink.onEvent(token);
  sink.onEvent(finish);
}

// Emits the events of a whole OpenAI chat completion or completions body.
void decodeOpenAiBody(dom::object object, EventSink& sink) {
  Event finish;
  finish.kind = EventKind::kFinish;
  OpenAiChoice choice;
  bool has_choice = false;
  for (const dom::key_value_pair field : object) {
    dom::array choices;
    dom::object usage;
    if (field.key == "choices") {
      if (field.value.get_array().get(choices) == simdjson::SUCCESS) {
        has_choice = readFirstChoice(choices, choice);
      }
    } else if (field.key == "usage") {
      if (field.value.get_object().get(usage) == simdjson::SUCCESS) {
        readUsage(usage, finish.usage);
      }
    }
  }
  if (!has_choice) {
    Event error;
    error.kind = EventKind::kError;
    error.error = makeError(ErrorClass::kStreamParse,
                            "response body has no choice with index 0; is the target's api set "
                            "to the right protocol?");
    sink.onEvent(error);
    return;
  }
  finish.finish_reason.assign(choice.finish_reason);
  std::string_view piece;
  if (choice.piece(piece)) {
    Event token;
    token.text.assign(piece);
    finish.generated_text = token.text;
    sink.onEvent(token);
  }
  sink.onEvent(finish);
}

}  // namespace

std::unique_ptr<StreamDecoder> makeStreamDecoder(StreamFormat format, DecoderOptions options) {
  if (format == StreamFormat::kTgi) return std::make_unique<TgiStreamDecoder>(options);
  return std::make_unique<OpenAiStreamDecoder>(options);
}

void decodeCompleteBody(StreamFormat format, std::string_view body, EventSink& sink) {
  dom::parser parser;
  dom::element root;
  Event error;
  error.kind = EventKind::kError;

  simdjson::error_code code = parser.parse(body.data(), body.size()).get(root);
  dom::array array;
  if (code == simdjson::SUCCESS && root.get_array().get(array) == simdjson::SUCCESS) {
    // The serverless "/" route wraps a TGI response in a one-element array.
    code = array.at(0).get(root);
  }
  dom::object object;
  if (code == simdjson::SUCCESS) code = root.get_object().get(object);
  if (code != simdjson::SUCCESS) {
    error.error = makeError(ErrorClass::kStreamParse,
                            std::string("response body is not a JSON object (") +
                                simdjson::error_message(code) +
                                "); body starts with: " + boundedText(body, kQuotedDataBytes));
    sink.onEvent(error);
    return;
  }

  ErrorFields fields;
  for (const dom::key_value_pair field : object) readErrorField(field, fields);
  if (fields.present) {
    error.error = makeInBandError(fields);
    sink.onEvent(error);
    return;
  }

  if (format == StreamFormat::kTgi) {
    decodeTgiBody(object, sink);
  } else {
    decodeOpenAiBody(object, sink);
  }
}

Error parseUpstreamError(int status, std::string_view content_type, std::string_view body,
                         std::string_view retry_after_header) {
  ErrorFields fields;
  dom::parser parser;
  dom::object object;
  const std::string_view trimmed = trim(body);
  const bool looks_like_json = content_type.find("json") != std::string_view::npos ||
                               (!trimmed.empty() && trimmed.front() == '{');
  bool is_json = false;
  if (looks_like_json &&
      parser.parse(body.data(), body.size()).get_object().get(object) == simdjson::SUCCESS) {
    is_json = true;
    for (const dom::key_value_pair field : object) readErrorField(field, fields);
  }

  Error error;
  error.http_status = status;
  error.cls = classFromStatus(status, fields.estimated_time_s >= 0);
  if (status < 300) error.cls = classifyInBandError(fields.type, fields.status);
  error.error_type = std::string(fields.type);
  error.estimated_time_s = fields.estimated_time_s;
  error.retry_after_ms = parseRetryAfterMs(retry_after_header);
  error.message = boundedText(is_json ? fields.bestMessage() : body, kMaxMessageBytes);
  if (error.message.empty()) {
    error.message = "upstream responded with HTTP " + std::to_string(status) + " without a message";
  }
  return error;
}

int64_t parseRetryAfterMs(std::string_view header, std::chrono::system_clock::time_point now) {
  header = trim(header);
  if (header.empty()) return -1;

  if (std::all_of(header.begin(), header.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Delta-seconds; values beyond about 292 years are clamped.
    constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1000;
    int64_t seconds = 0;
    for (char c : header) {
      seconds = seconds > (kMaxSeconds - (c - '0')) / 10 ? kMaxSeconds : seconds * 10 + (c - '0');
    }
    return seconds * 1000;
  }

  Poco::DateTime date;
  int time_zone_offset_s = 0;
  try {
    if (!Poco::DateTimeParser::tryParse(std::string(header), date, time_zone_offset_s)) {
      return -1;
    }
    date.makeUTC(time_zone_offset_s);
  } catch (const Poco::Exception&) {
    return -1;
  }
  const int64_t date_ms = date.timestamp().epochMicroseconds() / 1000;
  const int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  return std::max<int64_t>(0, date_ms - now_ms);
}

}  // namespace hfchain
