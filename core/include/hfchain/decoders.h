// Decoders that turn upstream response bodies (TGI native and OpenAI-compatible, streamed or
// whole) into hfchain::Event values, and the mapping of HTTP error responses to typed errors.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "hfchain/error.h"
#include "hfchain/event.h"
#include "hfchain/sse.h"

namespace hfchain {

// Receives decoded events. The event is valid only during the call; copy what you keep.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void onEvent(const Event& event) = 0;
};

enum class StreamFormat : uint32_t {
  // TGI native: /generate_stream events {"token":{...},"generated_text":..,"details":..} and
  // /generate bodies {"generated_text":..,"details":..}, also as the one-element array of the
  // serverless "/" route.
  kTgi = 1,
  // OpenAI-compatible: /v1/chat/completions chunks (choices[].delta.content), /v1/completions
  // chunks (choices[].text) and their non-streamed bodies, including the older TGI chat
  // streams without a final "data: [DONE]".
  kOpenAi = 2,
};

struct DecoderOptions {
  // Maximum size of one server-sent event; see sse::Parser::Options.
  size_t max_event_bytes = sse::kDefaultMaxEventBytes;
};

// Decodes one streamed (text/event-stream) response body into events.
//
// A successful stream yields kToken events followed by exactly one kFinish; a failed one ends
// with one kError. After the final event the decoder ignores further input. Memory stays
// constant per stream: the decoder keeps the current event, the finish reason and the usage,
// never the tokens seen so far.
//
// kTgi: each event with a `token` gives a kToken (special tokens such as "</s>" included, with
// Event::special set, and empty token texts included because they count as generated tokens).
// The event whose `details` or `generated_text` is non-null additionally gives the kFinish:
// finish_reason from details (empty when details were not requested), usage.completion_tokens
// from details.generated_tokens and usage.prompt_tokens from details.input_length when sent.
// An event {"error": ..., "error_type": ...} gives a kError of class kUpstreamValidation when
// error_type is "validation" and kUpstreamGeneration otherwise.
//
// kOpenAi: choices[0].delta.content (or choices[0].text for completions) gives a kToken when it
// is a non-empty string. Empty contents are skipped because OpenAI-compatible servers send ""
// on the role-only first chunk and on the finish chunk, and these chunks carry no token id.
// Only the choice with index 0 is read. finish_reason and usage are remembered; "data: [DONE]"
// gives the kFinish. A stream that sent a finish_reason and then ended without [DONE] (TGI
// before 2.1) also finishes cleanly at end of input. An error object
// {"error":{"message","type","code"}} or {"error":"..","error_type":".."} gives a kError.
//
// Both: events whose `event` field is neither "message" nor "error" are ignored. An event
// named "error" whose data is not a JSON error object gives a kError with the data as message.
// Data that is not valid JSON gives a kError of class kStreamParse; an event larger than
// max_event_bytes gives kEventTooLarge; input that ends before the final event gives
// kStreamIncomplete.
//
// Not thread-safe: one decoder belongs to one stream.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;

  // Decodes the next chunk of the body and passes the resulting events to `sink`.
  virtual void feed(std::string_view chunk, EventSink& sink) = 0;

  // Marks the end of the body. Emits the kFinish of an OpenAI stream that ended without
  // [DONE] after a finish_reason, or a kStreamIncomplete error when no final event was seen.
  virtual void finish(EventSink& sink) = 0;

  // True once a kFinish or kError was emitted.
  virtual bool done() const = 0;

  // Number of kToken events emitted so far.
  virtual int64_t tokenCount() const = 0;

  // The underlying SSE parser, for its buffer size and last event id.
  virtual const sse::Parser& parser() const = 0;
};

std::unique_ptr<StreamDecoder> makeStreamDecoder(StreamFormat format, DecoderOptions options = {});

// Decodes a whole non-streamed 200 body: one kToken with the whole text (omitted when the
// answer has no text, as for a tool call) followed by a kFinish, or a single kError when the
// body is not valid JSON, has no generated text, or is an error object.
// NOTE: tool calls are not carried, because Event has no field for them.
void decodeCompleteBody(StreamFormat format, std::string_view body, EventSink& sink);

// Maps an HTTP error response of an upstream to a typed error:
// 401 and 403 give kUpstreamAuth, 404 kUpstreamNotFound, 429 kRateLimited, 503 with a JSON
// `estimated_time` kModelLoading (estimated_time_s set), other 5xx kUpstream5xx, other 4xx
// kUpstreamValidation. A 3xx that reached this point (a redirect not followed, such as a renamed
// model on the Hub) gives kUpstreamNotFound.
// The message comes from the JSON `error` (a string, or an object with `message`), `message`
// or `detail` field, else from the plain-text body, trimmed and cut to about 1000 bytes.
// error_type comes from `error_type` or `error.type`. `retry_after_header` is the raw
// Retry-After value (delta-seconds or an HTTP date), empty when absent.
Error parseUpstreamError(int status, std::string_view content_type, std::string_view body,
                         std::string_view retry_after_header);

// Parses a Retry-After value, either delta-seconds or an HTTP date (RFC 9110, section 10.2.3),
// into milliseconds from `now`. Returns -1 when the value is empty or invalid, and 0 for a date
// in the past.
int64_t parseRetryAfterMs(std::string_view header, std::chrono::system_clock::time_point now =
                                                       std::chrono::system_clock::now());

}  // namespace hfchain
