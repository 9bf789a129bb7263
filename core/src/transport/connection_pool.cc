// Keep-alive connection pooling, base URL parsing and client TLS contexts.
#include "transport/connection_pool.h"

#include <Poco/Exception.h>
#include <Poco/Net/AcceptCertificateHandler.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/Socket.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>

#include <algorithm>
#include <mutex>
#include <utility>

namespace hfchain::transport {
namespace {

// Poco's own keep-alive timer reconnects silently when it expires; the pool decides on reuse
// itself, so the Poco timer is set far beyond kMaxIdleTime.
constexpr int kPocoKeepAliveSeconds = 3600;

std::string inQuotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

Error configError(std::string_view what, std::string message) {
  return makeError(ErrorClass::kConfigRejected, std::string(what) + " " + std::move(message));
}

// A session whose protected reconnect() is made callable, so connect() can run before
// sendRequest and report its own failures.
template <typename SessionBase, bool kTls>
class BasicConnection final : public Connection {
 public:
  template <typename... Args>
  explicit BasicConnection(Args&&... args) : session_(std::forward<Args>(args)...) {
    session_.setKeepAlive(true);
    session_.setKeepAliveTimeout(Poco::Timespan(kPocoKeepAliveSeconds, 0));
  }

  Poco::Net::HTTPClientSession& session() override { return session_; }

  void connect() override {
    session_.open();
    if constexpr (kTls) finishHandshake();
  }

 private:
  class OpenableSession : public SessionBase {
   public:
    using SessionBase::SessionBase;
    void open() { this->reconnect(); }
  };

  // Poco 1.11 returns from connect without an error when its blocking SSL_connect stops on a
  // socket timeout, and then skips the host name check. A handshake that is not complete here
  // is treated as a connect timeout, and the certificate is checked again explicitly.
  // NOTE: the handshake inside Poco's connect is bounded by the socket's receive timeout,
  // which Poco sets only after the handshake, so a server that accepts TCP and never responds to
  // TLS may hold the connect step longer than timeouts.connect_ms.
  void finishHandshake() {
    Poco::Net::SecureStreamSocket socket(session_.socket());
    const Poco::Timespan saved = socket.getReceiveTimeout();
    socket.setReceiveTimeout(Poco::Timespan(0, 1000));
    const int result = socket.completeHandshake();
    socket.setReceiveTimeout(saved);
    if (result != 1) throw Poco::TimeoutException("TLS handshake did not complete");
    if (socket.context()->verificationMode() != Poco::Net::Context::VERIFY_NONE) {
      socket.verifyPeerCertificate();
    }
  }

  OpenableSession session_;
};

// True when an idle keep-alive connection can carry another request: it is connected, has
// no recorded network error, and has nothing to read. Readable data on an idle connection
// means the server closed it (EOF) or sent bytes that belong to no request.
bool looksReusable(Connection& connection) {
  Poco::Net::HTTPClientSession& session = connection.session();
  if (!session.connected() || session.networkException() != nullptr) return false;
  try {
    return !session.socket().poll(Poco::Timespan(0),
                                  Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR);
  } catch (const Poco::Exception&) {
    return false;
  }
}

}  // namespace

std::string Endpoint::origin() const {
  std::string out = tls ? "https://" : "http://";
  if (host.find(':') != std::string::npos) {
    out += "[" + host + "]";
  } else {
    out += host;
  }
  return out + ":" + std::to_string(port);
}

Result<Endpoint> parseEndpoint(std::string_view url, std::string_view what) {
  if (url.empty()) {
    return configError(what, "is missing; set it to scheme://host[:port][/prefix]");
  }
  Poco::URI uri;
  try {
    uri = Poco::URI(std::string(url));
  } catch (const Poco::Exception& e) {
    return configError(what, inQuotes(url) + " is not a valid URL: " + e.message());
  }
  if (!uri.getUserInfo().empty()) {
    return configError(what,
                       "contains user information before the host; pass credentials "
                       "as a token or header instead");
  }
  const std::string scheme = uri.getScheme();
  if (scheme != "http" && scheme != "https") {
    return configError(what,
                       inQuotes(url) + " has scheme " + inQuotes(scheme) + "; use http or https");
  }
  if (uri.getHost().empty()) {
    return configError(what, inQuotes(url) + " has no host");
  }
  if (!uri.getRawQuery().empty() || !uri.getFragment().empty()) {
    return configError(what, inQuotes(url) +
                                 " has a query or fragment; give only "
                                 "scheme://host[:port][/prefix]");
  }
  Endpoint endpoint;
  endpoint.tls = scheme == "https";
  endpoint.host = uri.getHost();
  endpoint.port = uri.getPort();
  if (endpoint.port == 0) {
    return configError(what, inQuotes(url) + " has port 0");
  }
  endpoint.base_path = uri.getPathEtc();
  while (!endpoint.base_path.empty() && endpoint.base_path.back() == '/') {
    endpoint.base_path.pop_back();
  }
  return endpoint;
}

Result<Poco::Net::Context::Ptr> makeClientTlsContext(bool verify, const std::string& ca_file,
                                                     std::string_view what) {
  static std::once_flag ssl_initialized;
  std::call_once(ssl_initialized, [] { Poco::Net::initializeSSL(); });

  Poco::Net::Context::Params params;
  // For a client, strict differs from relaxed only in that Poco also checks the host name of a
  // loopback address against the certificate (Poco NetSSL, SecureSocketImpl).
  params.verificationMode =
      verify ? Poco::Net::Context::VERIFY_STRICT : Poco::Net::Context::VERIFY_NONE;
  params.caLocation = ca_file;
  params.loadDefaultCAs = ca_file.empty();
  try {
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    // A per-context handler keeps Poco from looking up an application-wide SSLManager
    // configuration, which a library embedded in another program does not have.
    if (verify) {
      context->setInvalidCertificateHandler(new Poco::Net::RejectCertificateHandler(false));
    } else {
      context->setInvalidCertificateHandler(new Poco::Net::AcceptCertificateHandler(false));
    }
    return context;
  } catch (const Poco::Exception& e) {
    std::string source = ca_file.empty() ? "the system CA store" : "ca_file " + inQuotes(ca_file);
    return configError(what, "TLS set-up with " + source + " failed: " + e.displayText());
  }
}

std::unique_ptr<Connection> makeConnection(const Endpoint& endpoint,
                                           const Poco::Net::Context::Ptr& tls_context) {
  if (endpoint.tls) {
    return std::make_unique<BasicConnection<Poco::Net::HTTPSClientSession, true>>(
        endpoint.host, endpoint.port, tls_context);
  }
  return std::make_unique<BasicConnection<Poco::Net::HTTPClientSession, false>>(endpoint.host,
                                                                                endpoint.port);
}

ConnectionPool::ConnectionPool(Endpoint endpoint, Poco::Net::Context::Ptr tls_context)
    : endpoint_(std::move(endpoint)), tls_context_(std::move(tls_context)) {}

ConnectionPool::~ConnectionPool() {
  for (IdleConnection& idle : idle_) discard(std::move(idle.connection));
}

ConnectionPool::Lease ConnectionPool::acquire() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<Connection>> stale;
  Lease lease;
  {
    std::lock_guard lock(mutex_);
    // Newest first: the most recently used connection is the least likely to be closed.
    while (!idle_.empty()) {
      IdleConnection idle = std::move(idle_.back());
      idle_.pop_back();
      if (now - idle.since < kMaxIdleTime && looksReusable(*idle.connection)) {
        lease.connection = std::move(idle.connection);
        lease.reused = true;
        break;
      }
      stale.push_back(std::move(idle.connection));
    }
  }
  for (auto& connection : stale) discard(std::move(connection));
  if (lease.reused) {
    reused_.fetch_add(1);
    return lease;
  }
  lease.connection = makeConnection(endpoint_, tls_context_);
  opened_.fetch_add(1);
  return lease;
}

void ConnectionPool::release(std::unique_ptr<Connection> connection) {
  if (!connection) return;
  if (!looksReusable(*connection)) {
    discard(std::move(connection));
    return;
  }
  std::unique_ptr<Connection> evicted;
  {
    std::lock_guard lock(mutex_);
    if (idle_.size() >= kMaxIdleConnections) {
      evicted = std::move(idle_.front().connection);
      idle_.erase(idle_.begin());
    }
    idle_.push_back({std::move(connection), std::chrono::steady_clock::now()});
  }
  discard(std::move(evicted));
}

void ConnectionPool::discard(std::unique_ptr<Connection> connection) {
  if (!connection) return;
  try {
    connection->session().abort();
  } catch (const Poco::Exception&) {
    // The socket is closed by the destructor below either way.
  }
}

size_t ConnectionPool::idleCount() const {
  std::lock_guard lock(mutex_);
  return idle_.size();
}

}  // namespace hfchain::transport
