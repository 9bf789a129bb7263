// Keep-alive HTTP connections to one endpoint, and the parsing of a target's base URL.
#pragma once

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "hfchain/result.h"

namespace hfchain::transport {

// The parts of a base URL that a connection needs.
struct Endpoint {
  bool tls = false;
  std::string host;  // without brackets for IPv6 literals
  uint16_t port = 0;
  std::string base_path;  // "" or "/prefix" without a trailing slash

  // Returns "http://host:port" (https for TLS), with brackets around IPv6 literals.
  std::string origin() const;
};

// Parses scheme://host[:port][/prefix]. Errors (class kConfigRejected) name `what`, for
// example `target "tgi" base_url`, and the value, except that user information is never
// echoed because it may hold a password.
Result<Endpoint> parseEndpoint(std::string_view url, std::string_view what);

// Builds the TLS context of a client: certificates are verified against `ca_file`, or the
// system store when it is empty, unless `verify` is false. Errors have class kConfigRejected.
Result<Poco::Net::Context::Ptr> makeClientTlsContext(bool verify, const std::string& ca_file,
                                                     std::string_view what);

// One HTTP client session that can be connected explicitly, so that connect failures and
// timeouts are distinguished from those of the exchange itself.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual Poco::Net::HTTPClientSession& session() = 0;
  // Opens the TCP connection (and performs the TLS handshake). Throws Poco exceptions.
  virtual void connect() = 0;
};

// Makes an unconnected session for `endpoint`; `tls_context` is used when endpoint.tls.
std::unique_ptr<Connection> makeConnection(const Endpoint& endpoint,
                                           const Poco::Net::Context::Ptr& tls_context);

// A bounded set of idle keep-alive connections to one endpoint. Thread-safe.
class ConnectionPool {
 public:
  // At most this many idle connections are kept; more are closed when released.
  static constexpr size_t kMaxIdleConnections = 16;
  // An idle connection older than this is closed instead of reused, because servers and
  // proxies close idle keep-alive connections after a time of their choosing.
  static constexpr std::chrono::seconds kMaxIdleTime{20};

  ConnectionPool(Endpoint endpoint, Poco::Net::Context::Ptr tls_context);
  ~ConnectionPool();

  struct Lease {
    std::unique_ptr<Connection> connection;
    bool reused = false;  // true when taken from the pool, already connected
  };

  // Returns a pooled connection that still looks open, or a new unconnected one.
  Lease acquire();

  // Puts a connection whose last response was read to the end back into the pool.
  void release(std::unique_ptr<Connection> connection);

  // Closes a connection that must not be reused (broken, or its body was not read).
  static void discard(std::unique_ptr<Connection> connection);

  const Endpoint& endpoint() const { return endpoint_; }

  uint64_t connectionsOpened() const { return opened_.load(); }
  uint64_t connectionsReused() const { return reused_.load(); }
  size_t idleCount() const;

 private:
  struct IdleConnection {
    std::unique_ptr<Connection> connection;
    std::chrono::steady_clock::time_point since;
  };

  const Endpoint endpoint_;
  const Poco::Net::Context::Ptr tls_context_;
  mutable std::mutex mutex_;
  std::vector<IdleConnection> idle_;  // guarded by mutex_; most recently released last
  std::atomic<uint64_t> opened_{0};
  std::atomic<uint64_t> reused_{0};
};

}  // namespace hfchain::transport
