// ReplayServer: a loopback HTTP server that responds to requests with recorded upstream exchanges,
// so that policies can be tested offline against real Hugging Face responses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "replay/recording.h"
#include "replay/result.h"

namespace hfchain::replay {

struct ReplayOptions {
  // Address to bind. Only loopback addresses (127.0.0.0/8, ::1, localhost) are accepted.
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 lets the system choose a free port; see ReplayServer::port()

  // Respond to every request with the next recording in turn, whatever the request was.
  bool any = false;

  // When > 0, the body is written in chunks of this many bytes instead of the recorded chunks.
  size_t chunk_bytes = 0;
  // Pause in milliseconds between two body chunks. Each chunk is flushed before the pause.
  int chunk_delay_ms = 0;

  // Receives one line per unmatched request and per failed write. May be empty. It is called
  // from server threads, so it must be thread-safe.
  std::function<void(std::string_view)> log;
};

// Serves a fixed set of recordings over HTTP/1.1 on a loopback address.
//
// A request gets the response of the recording with the same method, path (with query) and body
// (see requestMatches). When several recordings match, they are served in turn. Unmatched requests
// get 404 with {"error": ..., "error_type": "replay"}. Event streams are sent with chunked
// transfer encoding and all other bodies with Content-Length. All methods are thread-safe.
class ReplayServer {
 public:
  // Binds the socket and starts serving. Fails on an empty recording list, a host that is not
  // loopback, or a socket error.
  static Result<std::unique_ptr<ReplayServer>> start(std::vector<Recording> recordings,
                                                     ReplayOptions options);

  ~ReplayServer();
  ReplayServer(const ReplayServer&) = delete;
  ReplayServer& operator=(const ReplayServer&) = delete;

  // Stops accepting, aborts open connections and waits for the handler threads. Returns within
  // a few hundred milliseconds even while a client keeps a connection open or a chunk delay runs.
  // Calling it again does nothing.
  void stop();

  uint16_t port() const;
  // Returns "http://HOST:PORT" with the bound port.
  std::string baseUrl() const;

  size_t recordingCount() const;
  // Returns how many requests each recording has served, indexed like the loaded recordings.
  std::vector<size_t> servedCounts() const;
  // Returns how many requests got the 404 for "no matching recording".
  size_t unmatchedCount() const;

  class Impl;

 private:
  explicit ReplayServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Returns true for host names that resolve only to the local machine: "localhost", "::1" and
// IPv4 addresses in 127.0.0.0/8.
bool isLoopbackHost(const std::string& host);

}  // namespace hfchain::replay
