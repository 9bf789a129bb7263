// The HTTP gateway: serves an Engine over OpenAI-compatible and TGI-compatible routes, with
// Prometheus metrics, a health check and hot reload of the engine's config file.
//
//   hfchain::GatewayOptions options;
//   options.port = 8080;
//   auto gateway = hfchain::Gateway::start(engine, options);
//   ...
//   (*gateway)->stop();
//
// Routes: POST /v1/chat/completions, POST /generate, POST /generate_stream, GET /metrics,
// GET /health. See docs/gateway.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hfchain/engine.h"
#include "hfchain/result.h"

namespace hfchain {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: the system picks a free port; Gateway::port() returns it
  // Maximum number of connections served at once. An idle kept-alive connection keeps its
  // thread busy for up to 5 s.
  int threads = 16;
  size_t max_body_bytes = 4 * 1024 * 1024;  // larger request bodies get 413
  // The engine's config file. When set, it is checked for changes every
  // `reload_poll_interval` and reloaded into the engine on change.
  std::string config_path;
  std::chrono::milliseconds reload_poll_interval{500};
  // Accepted inbound keys (Authorization: Bearer KEY). Empty: no inbound key check.
  std::vector<std::string> api_keys;
  // The tenant of an inbound key, set as the request metadata "tenant" for budget and
  // limit links. A key without an entry has no tenant.
  std::map<std::string, std::string> key_tenants;
  // How long stop() lets running requests finish before it closes their connections.
  std::chrono::milliseconds drain_timeout{10000};
};

class Gateway {
 public:
  // Binds host:port and starts serving `engine`, which must outlive the gateway. Returns an
  // error of class kInvalidRequest when the options are invalid, kInternal when the socket
  // cannot be bound.
  static Result<std::unique_ptr<Gateway>> start(Engine& engine, GatewayOptions options);

  // Stops the gateway as stop() does.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // The bound port.
  uint16_t port() const;
  // Returns "http://HOST:PORT".
  std::string baseUrl() const;

  // Reads the config file and reloads the engine when its content changed since the last
  // check, or always when `force` is set. Returns false when there is no config file or the
  // reload failed; the running chain then stays in place. Thread-safe.
  bool checkConfig(bool force = false);

  // Stops accepting connections, lets running requests finish for up to drain_timeout,
  // then closes the connections still open and cancels their requests. Calling it again
  // does nothing.
  void stop();

  class Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The inbound keys of an API key file, and the tenant of each key that names one.
struct ApiKeys {
  std::vector<std::string> keys;
  std::map<std::string, std::string> tenants;
};

// Reads inbound API keys from a file: one key a line, optionally followed by white space and
// the key's tenant. Blank lines and lines starting with '#' are skipped. Errors have class
// kInvalidRequest: a file that cannot be read or has no key, or a line with more than two
// fields, which is named by its number and never by its key.
Result<ApiKeys> loadApiKeysFile(const std::string& path);

}  // namespace hfchain
