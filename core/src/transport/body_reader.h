// Reads a response body from a pooled connection under the idle and total deadlines, and
// returns the connection to its pool when the body was read to the end.
#pragma once

#include <Poco/Logger.h>
#include <Poco/Net/StreamSocket.h>

#include <cstddef>
#include <istream>
#include <memory>
#include <string>

#include "hfchain/request.h"
#include "hfchain/result.h"
#include "transport/connection_pool.h"
#include "transport/deadlines.h"

namespace hfchain::transport {

// Facts about one exchange that its body reader and error messages need.
struct ExchangeInfo {
  std::string target;      // target name, for error messages and Event::served_by
  std::string request_id;  // for log lines
  Deadlines deadlines;
  CancelToken cancel;  // the request's cancellation flag
};

// While alive, shuts the socket down when the request is cancelled, so that a blocking
// send or receive on it returns within about 100 ms. A background thread checks every
// registered request's flag every 100 ms.
class CancelWatch {
 public:
  CancelWatch(const Poco::Net::StreamSocket& socket, const CancelToken& cancel);
  ~CancelWatch();
  CancelWatch(const CancelWatch&) = delete;
  CancelWatch& operator=(const CancelWatch&) = delete;

 private:
  uint64_t id_;
};

// The error of a request its caller cancelled.
Error cancelledError(const std::string& target);

// Owns the connection of one exchange after the response headers arrived. Not thread-safe.
class BodyReader {
 public:
  // `body` is the session's response stream. `reusable` is false when the connection cannot
  // carry another request after this body (Connection: close, or a body that ends only when
  // the server closes the connection).
  BodyReader(std::shared_ptr<ConnectionPool> pool, std::unique_ptr<Connection> connection,
             std::istream& body, bool reusable, ExchangeInfo info);
  ~BodyReader();
  BodyReader(const BodyReader&) = delete;
  BodyReader& operator=(const BodyReader&) = delete;

  // Reads the bytes available next, blocking until some arrive, into `buffer`. Returns the
  // number read, or 0 at the end of the body. On a timeout (kTimeout) or a broken connection
  // (kConnectionReset) the connection is closed and the error returned.
  Result<size_t> read(char* buffer, size_t size);

  // Reads the rest of the body. When it is longer than `max_bytes`, returns the first
  // `max_bytes` and sets `truncated`; the connection is then closed at release.
  Result<std::string> readAll(size_t max_bytes, bool& truncated);

  // Reads and drops the rest of the body, waiting at most `max_wait_ms` and reading at most
  // `max_bytes`, so that the connection can be reused. Returns true when the end was reached.
  bool drain(int64_t max_wait_ms, size_t max_bytes);

  // Gives the connection back to the pool when the body was read to the end and the
  // connection is reusable, and closes it otherwise. Later reads return 0.
  void release();

  bool atEnd() const { return at_end_; }
  const ExchangeInfo& info() const { return info_; }

 private:
  void close();
  Result<size_t> readUntil(char* buffer, size_t size, const Limit& limit);

  std::shared_ptr<ConnectionPool> pool_;
  std::unique_ptr<Connection> connection_;
  std::istream* body_;
  bool reusable_;
  ExchangeInfo info_;
  bool at_end_ = false;
  Clock::time_point last_data_;
  std::unique_ptr<CancelWatch> cancel_watch_;
  Poco::Logger& logger_;
};

}  // namespace hfchain::transport
