// ScriptedUpstream on raw Poco sockets, so that every byte, pause and connection end is exactly
// as scripted.
#include "replay/scripted_upstream.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <thread>

#include "replay/replay_server.h"

namespace hfchain::replay {
namespace {

constexpr size_t kMaxHeaderBytes = 1 << 20;
constexpr size_t kMaxBodyBytes = size_t{64} << 20;
// How often blocked waits look at the stop flag. stop() also shuts the sockets down, so this
// only bounds the case where a shutdown does not wake a waiting call.
constexpr auto kPollInterval = std::chrono::milliseconds(50);

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const size_t last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

std::string hexSize(size_t size) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%zx", size);
  return buffer;
}

std::string findHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                       const std::string& name) {
  const std::string expected = lowercase(name);
  for (const auto& [key, value] : headers) {
    if (lowercase(key) == expected) return value;
  }
  return {};
}

bool hasHeader(const std::vector<std::pair<std::string, std::string>>& headers,
               const std::string& name) {
  const std::string expected = lowercase(name);
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& header) { return lowercase(header.first) == expected; });
}

// An accepted connection. The socket is closed only under close_mutex, so that stop() can
// shut it down from another thread without racing against the close.
struct Connection {
  Poco::Net::StreamSocket socket;
  std::mutex close_mutex;
  bool closed = false;  // guarded by close_mutex
  std::atomic<bool> finished{false};
  std::thread thread;
};

// Reads request lines and bodies from a connection through a small buffer.
class SocketReader {
 public:
  explicit SocketReader(Connection& connection) : connection_(connection) {}

  // Reads up to and including "\r\n\r\n". Returns the block without it, or nullopt when the
  // peer closed first or the block exceeds kMaxHeaderBytes.
  std::optional<std::string> readHeaderBlock() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (buffer_.size() > kMaxHeaderBytes || !fill()) return std::nullopt;
    }
    std::string block = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
    return block;
  }

  std::optional<std::string> readLine() {
    size_t end;
    while ((end = buffer_.find("\r\n")) == std::string::npos) {
      if (buffer_.size() > kMaxHeaderBytes || !fill()) return std::nullopt;
    }
    std::string line = buffer_.substr(0, end);
    buffer_.erase(0, end + 2);
    return line;
  }

  std::optional<std::string> readBytes(size_t count) {
    while (buffer_.size() < count) {
      if (!fill()) return std::nullopt;
    }
    std::string bytes = buffer_.substr(0, count);
    buffer_.erase(0, count);
    return bytes;
  }

 private:
  bool fill() {
    char chunk[16384];
    try {
      const int received = connection_.socket.receiveBytes(chunk, sizeof(chunk));
      if (received <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(received));
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  Connection& connection_;
  std::string buffer_;
};

}  // namespace

std::string ReceivedRequest::header(const std::string& name) const {
  return findHeader(headers, name);
}

class ScriptedUpstream::Impl {
 public:
  Impl(std::string name, Script script) : name_(std::move(name)), script_(std::move(script)) {}

  Error start(const std::string& host);
  void stop();

  const std::string& name() const { return name_; }
  uint16_t port() const { return port_; }
  std::string baseUrl() const;
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  size_t requestCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
  }
  bool waitForRequests(size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return requests_.size() >= count; });
  }

 private:
  void acceptLoop();
  void serveConnection(Connection* connection);
  // Reads one request. Returns nullopt when the client closed or sent a malformed request.
  std::optional<ReceivedRequest> readRequest(Connection& connection);
  // Records the request and picks its exchange. Returns -1 when the script is exhausted.
  // Stores the 1-based position of the request in `request_number`.
  int assignExchange(ReceivedRequest& request, size_t& request_number);
  void serveExchange(Connection& connection, const ScriptedExchange& exchange);
  void sendExhausted(Connection& connection, size_t request_number);

  bool sendAll(Connection& connection, const std::string& bytes);
  // Closes the connection, with a TCP reset when `reset` is true.
  void closeConnection(Connection& connection, bool reset);
  // Reads and discards input until the client closes or the upstream stops.
  void holdUntilClosed(Connection& connection);
  // Waits `delay_ms`. Returns false when the upstream is stopping.
  bool waitDelay(int delay_ms);
  bool stopping() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stopping_;
  }

  const std::string name_;
  const Script script_;
  Poco::Net::ServerSocket server_socket_;
  uint16_t port_ = 0;
  std::string host_;
  std::chrono::steady_clock::time_point start_time_;
  std::thread acceptor_;

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;                  // signals stop and each new request
  bool stopping_ = false;                               // guarded by mutex_
  size_t next_exchange_ = 0;                            // guarded by mutex_
  std::optional<size_t> repeat_exchange_;               // guarded by mutex_
  std::vector<ReceivedRequest> requests_;               // guarded by mutex_
  std::list<std::unique_ptr<Connection>> connections_;  // guarded by mutex_
};

Error ScriptedUpstream::Impl::start(const std::string& host) {
  try {
    server_socket_.bind(Poco::Net::SocketAddress(host, 0), /*reuseAddress=*/true);
    server_socket_.listen(64);
    port_ = server_socket_.address().port();
    host_ = server_socket_.address().host().toString();
  } catch (const Poco::Exception& e) {
    return makeError(
        ErrorClass::kConnectFailed,
        "scripted upstream \"" + name_ + "\" cannot listen on " + host + ": " + e.displayText());
  }
  start_time_ = std::chrono::steady_clock::now();
  acceptor_ = std::thread(&Impl::acceptLoop, this);
  return {};
}

void ScriptedUpstream::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (acceptor_.joinable()) acceptor_.join();

  std::list<std::unique_ptr<Connection>> connections;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    connections.swap(connections_);
  }
  for (const std::unique_ptr<Connection>& connection : connections) {
    std::lock_guard<std::mutex> lock(connection->close_mutex);
    if (connection->closed) continue;
    try {
      connection->socket.shutdown();
    } catch (const Poco::Exception&) {
      // The peer may already have reset the connection; the close below still runs.
    }
  }
  for (const std::unique_ptr<Connection>& connection : connections) {
    if (connection->thread.joinable()) connection->thread.join();
    closeConnection(*connection, /*reset=*/false);
  }
  try {
    server_socket_.close();
  } catch (const Poco::Exception&) {
  }
}

std::string ScriptedUpstream::Impl::baseUrl() const {
  const bool ipv6 = host_.find(':') != std::string::npos;
  return "http://" + (ipv6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

void ScriptedUpstream::Impl::acceptLoop() {
  const Poco::Timespan poll_interval(
      std::chrono::duration_cast<std::chrono::microseconds>(kPollInterval).count());
  while (!stopping()) {
    Poco::Net::StreamSocket socket;
    try {
      if (!server_socket_.poll(poll_interval, Poco::Net::Socket::SELECT_READ)) continue;
      socket = server_socket_.acceptConnection();
      socket.setNoDelay(true);
    } catch (const Poco::Exception&) {
      continue;
    }

    auto connection = std::make_unique<Connection>();
    connection->socket = socket;
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      closeConnection(*connection, /*reset=*/false);
      return;
    }
    // Join the threads of connections that are done, so that a long test does not pile them up.
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->finished) {
        (*it)->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
    connection->thread = std::thread(&Impl::serveConnection, this, connection.get());
    connections_.push_back(std::move(connection));
  }
}

void ScriptedUpstream::Impl::serveConnection(Connection* connection) {
  std::optional<ReceivedRequest> request = readRequest(*connection);
  if (request) {
    size_t request_number = 0;
    const int index = assignExchange(*request, request_number);
    if (index < 0) {
      sendExhausted(*connection, request_number);
    } else {
      serveExchange(*connection, script_[static_cast<size_t>(index)]);
    }
  }
  closeConnection(*connection, /*reset=*/false);
  connection->finished = true;
}

std::optional<ReceivedRequest> ScriptedUpstream::Impl::readRequest(Connection& connection) {
  SocketReader reader(connection);
  std::optional<std::string> block = reader.readHeaderBlock();
  if (!block) return std::nullopt;

  ReceivedRequest request;
  request.arrival = std::chrono::steady_clock::now();
  request.arrival_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(request.arrival - start_time_).count();

  size_t line_end = block->find("\r\n");
  const std::string request_line = block->substr(0, line_end);
  const size_t first_space = request_line.find(' ');
  const size_t second_space = request_line.find(' ', first_space + 1);
  if (first_space == std::string::npos || second_space == std::string::npos) return std::nullopt;
  request.method = request_line.substr(0, first_space);
  request.path = request_line.substr(first_space + 1, second_space - first_space - 1);

  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = block->find("\r\n", start);
    const std::string line =
        block->substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    request.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
  }

  if (lowercase(request.header("Expect")) == "100-continue") {
    sendAll(connection, "HTTP/1.1 100 Continue\r\n\r\n");
  }

  if (lowercase(request.header("Transfer-Encoding")).find("chunked") != std::string::npos) {
    while (true) {
      std::optional<std::string> size_line = reader.readLine();
      if (!size_line) return std::nullopt;
      const size_t size = std::strtoul(size_line->c_str(), nullptr, 16);
      if (size == 0) {
        // Skip trailers up to the empty line that ends the body.
        std::optional<std::string> trailer;
        while ((trailer = reader.readLine()) && !trailer->empty()) {
        }
        break;
      }
      if (request.body.size() + size > kMaxBodyBytes) return std::nullopt;
      std::optional<std::string> data = reader.readBytes(size);
      if (!data || !reader.readLine()) return std::nullopt;
      request.body += *data;
    }
  } else if (const std::string length = request.header("Content-Length"); !length.empty()) {
    const size_t size = std::strtoul(length.c_str(), nullptr, 10);
    if (size > kMaxBodyBytes) return std::nullopt;
    std::optional<std::string> data = reader.readBytes(size);
    if (!data) return std::nullopt;
    request.body = std::move(*data);
  }
  return request;
}

int ScriptedUpstream::Impl::assignExchange(ReceivedRequest& request, size_t& request_number) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (repeat_exchange_) {
      request.exchange_index = static_cast<int>(*repeat_exchange_);
    } else if (next_exchange_ < script_.size()) {
      const size_t index = next_exchange_++;
      if (script_[index].repeat) repeat_exchange_ = index;
      request.exchange_index = static_cast<int>(index);
    }
    requests_.push_back(request);
    request_number = requests_.size();
  }
  cv_.notify_all();
  return request.exchange_index;
}

void ScriptedUpstream::Impl::serveExchange(Connection& connection,
                                           const ScriptedExchange& exchange) {
  if (!exchange.status) {
    holdUntilClosed(connection);
    return;
  }
  const int status = *exchange.status;
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                     Poco::Net::HTTPResponse::getReasonForStatus(
                         static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status)) +
                     "\r\n";
  for (const auto& [name, value] : exchange.headers) head += name + ": " + value + "\r\n";
  const bool body_allowed = status >= 200 && status != 204 && status != 304;
  const bool chunked = body_allowed && !hasHeader(exchange.headers, "Content-Length");
  if (chunked && !hasHeader(exchange.headers, "Transfer-Encoding")) {
    head += "Transfer-Encoding: chunked\r\n";
  }
  if (!hasHeader(exchange.headers, "Connection")) head += "Connection: close\r\n";
  head += "\r\n";
  if (!sendAll(connection, head)) return;

  size_t body_sent = 0;
  const std::optional<size_t> reset_after = exchange.reset_after_bytes;
  if (reset_after && *reset_after == 0) {
    closeConnection(connection, /*reset=*/true);
    return;
  }
  for (const ScriptChunk& chunk : exchange.chunks) {
    if (chunk.delay_ms > 0 && !waitDelay(chunk.delay_ms)) return;
    const size_t write_size = exchange.write_size > 0 ? exchange.write_size : chunk.bytes.size();
    for (size_t offset = 0; offset < chunk.bytes.size(); offset += write_size) {
      const std::string piece = chunk.bytes.substr(offset, write_size);
      size_t take = piece.size();
      bool reset_now = false;
      if (reset_after && body_sent + take >= *reset_after) {
        take = *reset_after - body_sent;
        reset_now = true;
      }
      // A reset inside a piece leaves its chunk frame incomplete, as a dropped upstream would.
      std::string bytes;
      if (chunked) {
        bytes = hexSize(piece.size()) + "\r\n" + piece.substr(0, take);
        if (take == piece.size()) bytes += "\r\n";
      } else {
        bytes = piece.substr(0, take);
      }
      if (!sendAll(connection, bytes)) return;
      body_sent += take;
      if (reset_now) {
        closeConnection(connection, /*reset=*/true);
        return;
      }
    }
  }

  switch (exchange.end) {
    case ExchangeEnd::kClose:
      if (chunked) sendAll(connection, "0\r\n\r\n");
      return;
    case ExchangeEnd::kReset:
      closeConnection(connection, /*reset=*/true);
      return;
    case ExchangeEnd::kStall:
      holdUntilClosed(connection);
      return;
  }
}

void ScriptedUpstream::Impl::sendExhausted(Connection& connection, size_t request_number) {
  const nlohmann::json error = {
      {"error", "scripted upstream \"" + name_ + "\": script exhausted at request " +
                    std::to_string(request_number) + " (the script has " +
                    std::to_string(script_.size()) +
                    " exchanges and none is marked \"repeat\": true)"},
      {"error_type", "replay"}};
  const std::string body = error.dump();
  sendAll(connection,
          "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
}

bool ScriptedUpstream::Impl::sendAll(Connection& connection, const std::string& bytes) {
  size_t sent = 0;
  try {
    while (sent < bytes.size()) {
      const int count =
          connection.socket.sendBytes(bytes.data() + sent, static_cast<int>(bytes.size() - sent));
      if (count <= 0) return false;
      sent += static_cast<size_t>(count);
    }
  } catch (const Poco::Exception&) {
    return false;
  }
  return true;
}

void ScriptedUpstream::Impl::closeConnection(Connection& connection, bool reset) {
  std::lock_guard<std::mutex> lock(connection.close_mutex);
  if (connection.closed) return;
  connection.closed = true;
  try {
    if (reset) {
      // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
      connection.socket.setLinger(true, 0);
    } else {
      connection.socket.shutdownSend();
    }
  } catch (const Poco::Exception&) {
    // The peer may be gone already; closing is all that is left to do.
  }
  try {
    connection.socket.close();
  } catch (const Poco::Exception&) {
  }
}

void ScriptedUpstream::Impl::holdUntilClosed(Connection& connection) {
  const Poco::Timespan poll_interval(
      std::chrono::duration_cast<std::chrono::microseconds>(kPollInterval).count());
  char discard[4096];
  while (!stopping()) {
    try {
      if (!connection.socket.poll(poll_interval, Poco::Net::Socket::SELECT_READ)) continue;
      if (connection.socket.receiveBytes(discard, sizeof(discard)) <= 0) return;
    } catch (const Poco::Exception&) {
      return;
    }
  }
}

bool ScriptedUpstream::Impl::waitDelay(int delay_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, std::chrono::milliseconds(delay_ms), [this] { return stopping_; });
  return !stopping_;
}

ScriptedUpstream::ScriptedUpstream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ScriptedUpstream::~ScriptedUpstream() { stop(); }

Result<std::unique_ptr<ScriptedUpstream>> ScriptedUpstream::start(std::string name, Script script,
                                                                  const std::string& host) {
  if (!isLoopbackHost(host)) {
    return makeError(ErrorClass::kConfigRejected,
                     "scripted upstream host must be a loopback address, got \"" + host + "\"");
  }
  auto impl = std::make_unique<Impl>(std::move(name), std::move(script));
  Error error = impl->start(host);
  if (!error.ok()) return error;
  return std::unique_ptr<ScriptedUpstream>(new ScriptedUpstream(std::move(impl)));
}

void ScriptedUpstream::stop() { impl_->stop(); }
const std::string& ScriptedUpstream::name() const { return impl_->name(); }
uint16_t ScriptedUpstream::port() const { return impl_->port(); }
std::string ScriptedUpstream::baseUrl() const { return impl_->baseUrl(); }
std::vector<ReceivedRequest> ScriptedUpstream::requests() const { return impl_->requests(); }
size_t ScriptedUpstream::requestCount() const { return impl_->requestCount(); }
bool ScriptedUpstream::waitForRequests(size_t count, std::chrono::milliseconds timeout) const {
  return impl_->waitForRequests(count, timeout);
}

Result<std::unique_ptr<ScriptedUpstreams>> ScriptedUpstreams::start(
    const nlohmann::json& upstream_script) {
  auto scripts = parseUpstreamScripts(upstream_script);
  if (!scripts) return scripts.error();
  return start(std::move(scripts).value());
}

Result<std::unique_ptr<ScriptedUpstreams>> ScriptedUpstreams::start(
    std::map<std::string, Script> scripts) {
  auto upstreams = std::make_unique<ScriptedUpstreams>();
  for (auto& [name, script] : scripts) {
    auto upstream = ScriptedUpstream::start(name, std::move(script));
    if (!upstream) return upstream.error();
    upstreams->upstreams_.emplace(name, std::move(upstream).value());
  }
  return upstreams;
}

ScriptedUpstream* ScriptedUpstreams::find(const std::string& name) const {
  auto it = upstreams_.find(name);
  return it == upstreams_.end() ? nullptr : it->second.get();
}

std::vector<std::string> ScriptedUpstreams::names() const {
  std::vector<std::string> names;
  for (const auto& [name, upstream] : upstreams_) names.push_back(name);
  return names;
}

std::map<std::string, size_t> ScriptedUpstreams::requestCounts() const {
  std::map<std::string, size_t> counts;
  for (const auto& [name, upstream] : upstreams_) counts[name] = upstream->requestCount();
  return counts;
}

void ScriptedUpstreams::stop() {
  for (auto& [name, upstream] : upstreams_) upstream->stop();
}

}  // namespace hfchain::replay
