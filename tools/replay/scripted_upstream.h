// ScriptedUpstream: a loopback fault-injection upstream for tests. Each request gets the next
// exchange of a script as its response, written byte by byte as scripted, including faults that a
// regular HTTP server cannot produce (no status line, connection reset, stalled body).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "replay/result.h"
#include "replay/script.h"

namespace hfchain::replay {

// A request as the scripted upstream received it.
struct ReceivedRequest {
  std::string method;
  std::string path;                                          // request target: path and query
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order
  std::string body;                                          // chunked bodies are decoded
  std::chrono::steady_clock::time_point arrival;             // when the header block was complete
  int64_t arrival_ms = 0;  // milliseconds since the upstream started
  // Index of the exchange sent in response, or -1 when the script was exhausted.
  int exchange_index = -1;

  // Returns the first header named `name` (compared without case), or an empty string.
  std::string header(const std::string& name) const;
};

// Serves one script on a loopback port. Every exchange is served on its own connection and
// ends it: responses carry "Connection: close" unless the script sets a Connection header.
// The body uses chunked transfer encoding (one HTTP chunk per write) unless the script gives a
// Content-Length header, in which case the bytes are written unframed. Once the script runs
// out, requests get 500 with {"error": ..., "error_type": "replay"}. All methods are
// thread-safe.
class ScriptedUpstream {
 public:
  // Binds a free port on `host` (a loopback address) and starts accepting. `name` labels
  // messages, e.g. "primary".
  static Result<std::unique_ptr<ScriptedUpstream>> start(std::string name, Script script,
                                                         const std::string& host = "127.0.0.1");

  ~ScriptedUpstream();
  ScriptedUpstream(const ScriptedUpstream&) = delete;
  ScriptedUpstream& operator=(const ScriptedUpstream&) = delete;

  // Closes the listening socket and every accepted connection, ending stalls, delays and
  // exchanges without a status line, and joins the threads. Returns within about 100 ms,
  // because the accept loop and held connections check the stop flag every 50 ms. Calling it
  // again does nothing.
  void stop();

  const std::string& name() const;
  uint16_t port() const;
  // Returns "http://127.0.0.1:PORT".
  std::string baseUrl() const;

  // Returns a copy of the requests received so far, in arrival order.
  std::vector<ReceivedRequest> requests() const;
  size_t requestCount() const;
  // Blocks until at least `count` requests have arrived or `timeout` passes. Returns whether
  // the count was reached.
  bool waitForRequests(size_t count, std::chrono::milliseconds timeout) const;

  class Impl;

 private:
  explicit ScriptedUpstream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Several named scripted upstreams, e.g. "primary" and "fallback", each on its own port.
class ScriptedUpstreams {
 public:
  // Starts one upstream per entry of an "upstream_script" object (name -> exchanges).
  static Result<std::unique_ptr<ScriptedUpstreams>> start(const nlohmann::json& upstream_script);
  static Result<std::unique_ptr<ScriptedUpstreams>> start(std::map<std::string, Script> scripts);

  // Returns the upstream called `name`, or nullptr.
  ScriptedUpstream* find(const std::string& name) const;
  std::vector<std::string> names() const;
  // Returns the number of requests each upstream received, by name.
  std::map<std::string, size_t> requestCounts() const;
  // Stops every upstream.
  void stop();

 private:
  std::map<std::string, std::unique_ptr<ScriptedUpstream>> upstreams_;
};

}  // namespace hfchain::replay
