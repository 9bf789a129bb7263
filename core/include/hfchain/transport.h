// The HTTP transport: the end of every chain, which turns a Request into one HTTP/1.1 call to a
// target and its answer into a Response with an event stream. See docs/transport.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "hfchain/request.h"
#include "hfchain/response.h"
#include "hfchain/result.h"
#include "hfchain/target.h"

namespace hfchain {

namespace transport {
class ConnectionPool;
}  // namespace transport

// Counters of one transport's connection pool, for tests and diagnostics.
struct TransportStats {
  uint64_t connections_opened = 0;  // new connections started, failed attempts included
  uint64_t connections_reused = 0;  // requests sent on a pooled keep-alive connection
  size_t idle_connections = 0;      // connections waiting in the pool right now
};

// Sends requests to one target.
//
// Protocols: TGI native (/generate, /generate_stream; chat requests go to TGI's
// /v1/chat/completions), OpenAI-compatible chat completions, and the Hugging Face serverless
// API (/models/{model}). Each send() makes one HTTP request and does not retry it.
// NOTE: when writing the request to a pooled keep-alive connection fails, Poco reopens the
// connection and writes it once more; nothing is resent after a response byte arrived.
//
// Keep-alive connections are pooled per transport, so per target and host. A connection
// goes back to the pool only when its response body was read to the end. A stream destroyed
// before its end closes its connection.
//
// Thread-safe: send() may be called from many threads at once. A Response and its stream may
// outlive the Transport that produced them.
class Transport {
 public:
  // Validates the target (base_url scheme http or https with a host, positive timeouts) and
  // prepares the TLS context for https. Errors have class kConfigRejected and name the target
  // and the invalid value. No connection is made here.
  static Result<std::shared_ptr<Transport>> create(const TargetConfig& config);

  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Sends `request` and returns once the response status and headers arrived, or on failure.
  // The request is not changed; it is taken by non-const reference to match Next::call.
  //
  // The response has `error` set for failures before any event (invalid request, connect
  // failure, timeout, HTTP status >= 300); its stream then delivers that error as its only
  // event. Otherwise the stream reads the body as the caller pulls events and always ends
  // with one kFinish or one kError. Never throws: an unexpected exception becomes a kInternal
  // error.
  Response send(Request& request);

  const TargetConfig& config() const { return config_; }
  TransportStats stats() const;

 private:
  Transport(TargetConfig config, std::shared_ptr<transport::ConnectionPool> pool);

  TargetConfig config_;
  std::shared_ptr<transport::ConnectionPool> pool_;
};

using TransportPtr = std::shared_ptr<Transport>;

}  // namespace hfchain
