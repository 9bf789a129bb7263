// Incremental Server-Sent Events parser: turns a byte stream, delivered in chunks of any size,
// into the messages of the WHATWG "event stream" format (HTML Living Standard, section
// "Server-sent events", parsing an event stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "hfchain/error.h"

namespace hfchain::sse {

// Default bound of Parser::Options::max_event_bytes. Token events of TGI and OpenAI-compatible
// servers are a few hundred bytes, while a final event that repeats the whole generated text
// can reach the size of the whole response.
inline constexpr size_t kDefaultMaxEventBytes = 4 * 1024 * 1024;

// One dispatched message. The views point into the parser's buffers or into the chunk being
// fed, so they are valid only during the MessageSink::onMessage call.
struct Message {
  std::string_view event;  // the `event` field, "message" when the block set none
  std::string_view data;   // `data` lines joined with "\n"
  std::string_view id;     // the last event id in force when the message was dispatched
};

// Receives the messages that Parser::feed dispatches.
class MessageSink {
 public:
  virtual ~MessageSink() = default;
  virtual void onMessage(const Message& message) = 0;
};

// Parses an event stream incrementally.
//
// Follows the WHATWG rules:
//  - LF, CR and CRLF end a line, also when the CR and the LF arrive in different chunks.
//  - One leading UTF-8 byte order mark is skipped. Lines starting with ':' are comments.
//  - `data` lines are joined with "\n". A line without a colon is a field with an empty value,
//    and one space after the colon is removed.
//  - An `id` containing NUL is ignored, and `retry` is taken only when it is all ASCII digits.
//  - A block without `data` lines is not dispatched, but its `id` still becomes the last event
//    id. An unterminated block at the end of input is dropped.
//
// Bytes are passed through unchanged: a multi-byte UTF-8 character split across chunks comes
// out whole, and the parser does not validate UTF-8 (the JSON decoders above it do).
//
// Memory is bounded: the pending partial line plus the pending data of the current block may
// not exceed Options::max_event_bytes. Buffers are reused between events, so a stream of small
// events does not allocate after the first few.
//
// Not thread-safe: one parser belongs to one stream.
class Parser {
 public:
  struct Options {
    // Maximum size in bytes of one event: the pending line plus the data lines gathered so
    // far for the current block.
    size_t max_event_bytes = kDefaultMaxEventBytes;
  };

  Parser() = default;
  explicit Parser(Options options) : options_(options) {}

  // Parses `chunk` and calls sink.onMessage for each complete message in it, in order.
  // Returns an error of class kEventTooLarge when an event grows past max_event_bytes. The
  // parser then stays failed, so every later feed returns the same error until reset().
  Error feed(std::string_view chunk, MessageSink& sink);

  // Same as above for any callable taking (const Message&).
  template <typename Callback>
  requires std::is_invocable_v<Callback&, const Message&> Error feed(std::string_view chunk,
                                                                     Callback&& callback) {
    CallbackSink<std::remove_reference_t<Callback>> sink(callback);
    return feed(chunk, static_cast<MessageSink&>(sink));
  }

  // Marks the end of input: drops an unterminated block and a pending partial line, as the
  // standard requires. The last event id and retry value are kept; feeding may start again
  // with a new stream (whose leading byte order mark is skipped again).
  void finish();

  // Returns the parser to its initial state, including the last event id and a failure.
  void reset();

  // True when a partial line or data lines of an undispatched block are pending.
  bool hasPendingEvent() const { return !line_.empty() || has_data_; }

  // Bytes held for the current event: the pending partial line plus the pending data.
  size_t bufferedBytes() const { return line_.size() + data_.size(); }

  // Bytes allocated by the parser's buffers, for checking that memory stays bounded.
  size_t bufferCapacity() const;

  std::string_view lastEventId() const { return last_event_id_; }

  // The last valid `retry` value in milliseconds, or -1 when the stream set none.
  int64_t retryMs() const { return retry_ms_; }

  const Options& options() const { return options_; }

 private:
  template <typename Callback>
  class CallbackSink final : public MessageSink {
   public:
    explicit CallbackSink(Callback& callback) : callback_(callback) {}
    void onMessage(const Message& message) override { callback_(message); }

   private:
    Callback& callback_;
  };

  // Consumes the bytes of a possible leading byte order mark; returns the rest of the chunk.
  std::string_view skipByteOrderMark(std::string_view chunk);
  Error parseLines(std::string_view chunk, MessageSink& sink);
  void processLine(std::string_view line, MessageSink& sink);
  void processField(std::string_view name, std::string_view value);
  void dispatch(MessageSink& sink);
  Error tooLarge(size_t size);

  Options options_;
  std::string line_;  // a line that started in an earlier chunk and has not ended yet
  std::string data_;  // data lines of the current block, joined with "\n"
  bool has_data_ = false;
  std::string event_type_;
  std::string last_event_id_;
  int64_t retry_ms_ = -1;
  bool skip_leading_lf_ = false;  // the previous chunk ended with CR, so a leading LF is its pair
  size_t bom_bytes_seen_ = 0;     // bytes of a leading byte order mark matched so far
  bool at_stream_start_ = true;   // still deciding whether the stream starts with a BOM
  Error failure_;
};

}  // namespace hfchain::sse
