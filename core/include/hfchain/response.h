// Responses and their event streams.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "hfchain/error.h"
#include "hfchain/event.h"
#include "hfchain/request.h"

namespace hfchain {

// A pull-based stream of events. The reader calls next() until it returns false; the last
// event delivered is a kFinish or a kError. Destroying the stream before its end cancels
// it: a transport closes the upstream connection.
//
// A stream is read by one thread at a time.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // Writes the next event to `out` and returns true, or returns false at the end.
  virtual bool next(Event& out) = 0;
};

using EventStreamPtr = std::unique_ptr<EventStream>;

// A stream over events held in memory, for answers a link makes itself and for tests.
class VectorEventStream : public EventStream {
 public:
  explicit VectorEventStream(std::vector<Event> events) : events_(std::move(events)) {}
  bool next(Event& out) override;

 private:
  std::vector<Event> events_;
  size_t position_ = 0;
};

struct Response {
  int status = 0;   // HTTP status of the answer; 0 when none was received
  Headers headers;  // response headers worth passing on (x-hfchain-served-by, ...)
  // Set when the call failed before any event: connect errors, HTTP error statuses, links
  // that reject the request. The stream then delivers the same error as its only event.
  Error error;
  EventStreamPtr stream;  // never null in a response returned by the chain

  bool ok() const { return error.ok(); }
};

// Builds a response that answers with `text` in one token event and a finish event.
Response makeTextResponse(std::string text, std::string finish_reason = "stop");

// Builds a failed response whose stream delivers `error` as its only event.
Response makeErrorResponse(Error error);

}  // namespace hfchain
