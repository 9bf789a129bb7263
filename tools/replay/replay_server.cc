// ReplayServer on top of Poco::Net::HTTPServer.
#include "replay/replay_server.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

namespace hfchain::replay {
namespace {

// Headers that describe the framing of the recorded connection. The server frames the
// replayed body itself, so these are never copied from a recording.
constexpr std::string_view kFramingHeaders[] = {"content-length", "transfer-encoding", "connection",
                                                "keep-alive"};

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool isFramingHeader(const std::string& name) {
  const std::string lower = lowercase(name);
  return std::find(std::begin(kFramingHeaders), std::end(kFramingHeaders), lower) !=
         std::end(kFramingHeaders);
}

// Splits the body into the pieces that are written and flushed one at a time.
std::vector<std::string> bodyPieces(const Recording& recording, size_t chunk_bytes) {
  if (chunk_bytes == 0) return recording.body_chunks;
  const std::string body = recording.body();
  std::vector<std::string> pieces;
  for (size_t offset = 0; offset < body.size(); offset += chunk_bytes) {
    pieces.push_back(body.substr(offset, chunk_bytes));
  }
  return pieces;
}

}  // namespace

class ReplayServer::Impl {
 public:
  Impl(std::vector<Recording> recordings, ReplayOptions options)
      : recordings_(std::move(recordings)),
        options_(std::move(options)),
        served_(recordings_.size(), 0),
        pool_(/*minCapacity=*/2, /*maxCapacity=*/64, /*idleTime=*/5) {}

  Error start();
  void stop();
  void handle(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response);

  uint16_t port() const { return bound_port_; }
  std::string baseUrl() const;
  size_t recordingCount() const { return recordings_.size(); }
  std::vector<size_t> servedCounts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return served_;
  }
  size_t unmatchedCount() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return unmatched_;
  }

 private:
  // Picks the recording for a request and counts it as served, or returns nullopt.
  std::optional<size_t> selectRecording(const std::string& method, const std::string& path,
                                        const std::string& body);
  void sendUnmatched(const std::string& method, const std::string& path,
                     Poco::Net::HTTPServerResponse& response);
  void sendRecording(const Recording& recording, Poco::Net::HTTPServerResponse& response);
  // Waits for the chunk delay. Returns false when the server is stopping.
  bool waitChunkDelay();
  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  const std::vector<Recording> recordings_;
  const ReplayOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;       // guarded by mutex_
  std::vector<size_t> served_;  // guarded by mutex_
  size_t unmatched_ = 0;        // guarded by mutex_
  size_t next_any_ = 0;         // guarded by mutex_

  uint16_t bound_port_ = 0;
  std::string bound_host_;
  // pool_ must outlive server_, whose connections run on it.
  Poco::ThreadPool pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

namespace {

class ReplayRequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit ReplayRequestHandler(ReplayServer::Impl& impl) : impl_(impl) {}

  // Poco::Net::HTTPRequestHandler
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    impl_.handle(request, response);
  }

 private:
  ReplayServer::Impl& impl_;
};

class ReplayHandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit ReplayHandlerFactory(ReplayServer::Impl& impl) : impl_(impl) {}

  // Poco::Net::HTTPRequestHandlerFactory
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ReplayRequestHandler(impl_);
  }

 private:
  ReplayServer::Impl& impl_;
};

}  // namespace

Error ReplayServer::Impl::start() {
  try {
    Poco::Net::SocketAddress address(options_.host, options_.port);
    Poco::Net::ServerSocket socket;
    socket.bind(address, /*reuseAddress=*/true);
    socket.listen(64);
    bound_port_ = socket.address().port();
    bound_host_ = socket.address().host().toString();

    auto params = Poco::makeAuto<Poco::Net::HTTPServerParams>();
    params->setKeepAlive(true);
    params->setMaxThreads(64);
    params->setMaxQueued(256);
    server_ = std::make_unique<Poco::Net::HTTPServer>(Poco::makeShared<ReplayHandlerFactory>(*this),
                                                      pool_, socket, params);
    server_->start();
  } catch (const Poco::Exception& e) {
    return makeError(ErrorClass::kConnectFailed, "replay server cannot listen on " + options_.host +
                                                     ":" + std::to_string(options_.port) + ": " +
                                                     e.displayText());
  }
  return {};
}

void ReplayServer::Impl::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (server_) {
    // Stops accepting (the acceptor polls every 250 ms in Poco 1.11) and shuts down the
    // sockets of open connections, so handlers blocked on a client return.
    server_->stopAll(/*abortCurrent=*/true);
  }
  pool_.joinAll();
}

std::string ReplayServer::Impl::baseUrl() const {
  const bool ipv6 = bound_host_.find(':') != std::string::npos;
  const std::string host = ipv6 ? "[" + bound_host_ + "]" : bound_host_;
  return "http://" + host + ":" + std::to_string(bound_port_);
}

std::optional<size_t> ReplayServer::Impl::selectRecording(const std::string& method,
                                                          const std::string& path,
                                                          const std::string& body) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.any) {
    const size_t index = next_any_++ % recordings_.size();
    ++served_[index];
    return index;
  }
  // Among several matching recordings the least served one wins, so they take turns.
  std::optional<size_t> best;
  for (size_t i = 0; i < recordings_.size(); ++i) {
    if (!requestMatches(recordings_[i], method, path, body)) continue;
    if (!best || served_[i] < served_[*best]) best = i;
  }
  if (best) {
    ++served_[*best];
  } else {
    ++unmatched_;
  }
  return best;
}

void ReplayServer::Impl::handle(Poco::Net::HTTPServerRequest& request,
                                Poco::Net::HTTPServerResponse& response) {
  const std::string method = request.getMethod();
  const std::string path = request.getURI();
  std::string body;
  try {
    Poco::StreamCopier::copyToString(request.stream(), body);
  } catch (const Poco::Exception& e) {
    log("replay: reading the body of " + method + " " + path + " failed: " + e.displayText());
    return;
  }

  const std::optional<size_t> index = selectRecording(method, path, body);
  try {
    if (index) {
      sendRecording(recordings_[*index], response);
    } else {
      sendUnmatched(method, path, response);
    }
  } catch (const Poco::Exception& e) {
    log("replay: writing the response to " + method + " " + path + " failed: " + e.displayText());
  }
}

void ReplayServer::Impl::sendUnmatched(const std::string& method, const std::string& path,
                                       Poco::Net::HTTPServerResponse& response) {
  const std::string message =
      "no recording matches " + method + " " + path + " (" + std::to_string(recordings_.size()) +
      " recordings loaded; matching compares method, path with query "
      "and body; run with --any to serve the recordings in turn for every request)";
  log("replay: " + message);
  nlohmann::json error = {{"error", message}, {"error_type", "replay"}};
  const std::string text = error.dump();
  response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
  response.setContentType("application/json");
  response.setContentLength64(static_cast<Poco::Int64>(text.size()));
  response.send().write(text.data(), static_cast<std::streamsize>(text.size())).flush();
}

bool ReplayServer::Impl::waitChunkDelay() {
  std::unique_lock<std::mutex> lock(mutex_);
  if (options_.chunk_delay_ms > 0) {
    stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.chunk_delay_ms),
                      [this] { return stopping_; });
  }
  return !stopping_;
}

void ReplayServer::Impl::sendRecording(const Recording& recording,
                                       Poco::Net::HTTPServerResponse& response) {
  const std::string reason =
      recording.reason.empty()
          ? Poco::Net::HTTPResponse::getReasonForStatus(
                static_cast<Poco::Net::HTTPResponse::HTTPStatus>(recording.status))
          : recording.reason;
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(recording.status),
                              reason);
  for (const auto& [name, value] : recording.response_headers) {
    if (!isFramingHeader(name)) response.add(name, value);
  }

  const std::vector<std::string> pieces = bodyPieces(recording, options_.chunk_bytes);
  if (recording.isEventStream()) {
    response.setChunkedTransferEncoding(true);
  } else {
    size_t length = 0;
    for (const std::string& piece : pieces) length += piece.size();
    response.setContentLength64(static_cast<Poco::Int64>(length));
  }

  std::ostream& out = response.send();
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0 && !waitChunkDelay()) return;
    out.write(pieces[i].data(), static_cast<std::streamsize>(pieces[i].size()));
    out.flush();
    if (!out) {
      log("replay: the client of " + recording.file + " went away after " + std::to_string(i) +
          " of " + std::to_string(pieces.size()) + " body chunks");
      return;
    }
  }
}

ReplayServer::ReplayServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ReplayServer::~ReplayServer() { stop(); }

Result<std::unique_ptr<ReplayServer>> ReplayServer::start(std::vector<Recording> recordings,
                                                          ReplayOptions options) {
  if (recordings.empty()) {
    return makeError(ErrorClass::kConfigRejected, "replay server needs at least one recording");
  }
  if (!isLoopbackHost(options.host)) {
    return makeError(ErrorClass::kConfigRejected,
                     "replay server host must be a loopback address (127.0.0.1, ::1 or "
                     "localhost), got \"" +
                         options.host + "\"");
  }
  if (options.chunk_delay_ms < 0) {
    return makeError(ErrorClass::kConfigRejected,
                     "chunk delay must be >= 0 ms, got " + std::to_string(options.chunk_delay_ms));
  }
  auto impl = std::make_unique<Impl>(std::move(recordings), std::move(options));
  Error error = impl->start();
  if (!error.ok()) return error;
  return std::unique_ptr<ReplayServer>(new ReplayServer(std::move(impl)));
}

void ReplayServer::stop() { impl_->stop(); }
uint16_t ReplayServer::port() const { return impl_->port(); }
std::string ReplayServer::baseUrl() const { return impl_->baseUrl(); }
size_t ReplayServer::recordingCount() const { return impl_->recordingCount(); }
std::vector<size_t> ReplayServer::servedCounts() const { return impl_->servedCounts(); }
size_t ReplayServer::unmatchedCount() const { return impl_->unmatchedCount(); }

bool isLoopbackHost(const std::string& host) {
  if (lowercase(host) == "localhost") return true;
  Poco::Net::IPAddress address;
  if (!Poco::Net::IPAddress::tryParse(host, address)) return false;
  return address.isLoopback();
}

}  // namespace hfchain::replay
