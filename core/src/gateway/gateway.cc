// The gateway's server lifecycle and the config file watch.
#include "hfchain/gateway.h"

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "gateway/request_handler.h"
#include "hfchain/log.h"
#include "hfchain/metrics.h"

namespace hfchain {
namespace {

Poco::Logger& logger() { return log::get("hfchain.gateway"); }

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(gateway::SharedState& state) : state_(state) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new gateway::RequestHandler(state_);
  }

 private:
  gateway::SharedState& state_;
};

// The file's modification time and content hash, to notice edits.
struct FileStamp {
  std::filesystem::file_time_type mtime{};
  size_t hash = 0;
  bool operator==(const FileStamp&) const = default;
};

bool readFile(const std::string& path, std::string& content) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  content = buffer.str();
  return true;
}

}  // namespace

class Gateway::Impl {
 public:
  Impl(Engine& engine, GatewayOptions options) : options_(std::move(options)) {
    state_.engine = &engine;
    state_.max_body_bytes = options_.max_body_bytes;
    state_.api_keys.insert(options_.api_keys.begin(), options_.api_keys.end());
    state_.key_tenants.insert(options_.key_tenants.begin(), options_.key_tenants.end());
  }

  Error listen() {
    try {
      Poco::Net::SocketAddress address(options_.host, options_.port);
      Poco::Net::ServerSocket socket(address, 64);
      port_ = socket.address().port();
      auto* params = new Poco::Net::HTTPServerParams;
      params->setMaxThreads(options_.threads);
      params->setMaxQueued(256);
      params->setKeepAlive(true);
      params->setKeepAliveTimeout(Poco::Timespan(5, 0));
      pool_ = std::make_unique<Poco::ThreadPool>(2, options_.threads + 2);
      server_ = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(state_), *pool_, socket,
                                                        params);
      server_->start();
    } catch (const Poco::Exception& e) {
      return makeError(ErrorClass::kInternal, "cannot listen on " + options_.host + ":" +
                                                  std::to_string(options_.port) + ": " +
                                                  e.displayText());
    }
    HFC_LOG_INFO(logger(), "listening on " + baseUrl() + " with " +
                               std::to_string(options_.threads) + " threads");
    if (!options_.config_path.empty()) {
      std::string content;
      if (readFile(options_.config_path, content)) stamp_ = currentStamp(content);
      watcher_ = std::thread([this] { watchConfig(); });
    }
    return {};
  }

  std::string baseUrl() const {
    const bool ipv6 = options_.host.find(':') != std::string::npos;
    return "http://" + (ipv6 ? "[" + options_.host + "]" : options_.host) + ":" +
           std::to_string(port_);
  }

  bool checkConfig(bool force) {
    if (options_.config_path.empty()) return false;
    std::lock_guard reload_lock(reload_mutex_);
    std::string content;
    if (!readFile(options_.config_path, content)) {
      HFC_LOG_ERROR(logger(), "cannot read the config file " + options_.config_path +
                                  "; the running chain stays in place");
      Metrics::global().add("hfchain_config_reload_failures_total", "", 1);
      return false;
    }
    // The content hash decides, because an edit within the file system's time resolution
    // keeps the modification time and a touch changes it without changing the content.
    FileStamp stamp = currentStamp(content);
    const bool changed = stamp.hash != stamp_.hash;
    if (stamp != stamp_ && !changed) {
      HFC_LOG_DEBUG(logger(), options_.config_path + " was touched but its content is the same");
    }
    stamp_ = stamp;
    if (!changed && !force) return false;
    return reload(content);
  }

  void stop() {
    {
      std::lock_guard lock(stop_mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    stop_condition_.notify_all();
    if (watcher_.joinable()) watcher_.join();
    if (!server_) return;

    HFC_LOG_INFO(logger(), "stopping: no new connections; running requests get up to " +
                               std::to_string(options_.drain_timeout.count()) + " ms");
    state_.stopping = true;
    server_->stopAll(false);
    const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
    while (activeCount() > 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (size_t left = activeCount(); left > 0) {
      HFC_LOG_WARNING(logger(),
                      "stopping: cancelling " + std::to_string(left) + " requests still running");
      state_.cancelAll();
    }
    server_->stopAll(true);
    pool_->joinAll();
    server_.reset();
    HFC_LOG_INFO(logger(), "stopped");
  }

  uint16_t port() const { return port_; }

 private:
  size_t activeCount() {
    std::lock_guard lock(state_.active_mutex);
    return state_.active.size();
  }

  FileStamp currentStamp(const std::string& content) const {
    FileStamp stamp;
    std::error_code ignored;
    stamp.mtime = std::filesystem::last_write_time(options_.config_path, ignored);
    stamp.hash = std::hash<std::string>{}(content);
    return stamp;
  }

  bool reload(const std::string& content) {
    const std::string& path = options_.config_path;
    std::string base_dir = std::filesystem::path(path).parent_path().string();
    ParsedConfig parsed = parseConfig(content, path, base_dir.empty() ? "." : base_dir);
    Metrics& metrics = Metrics::global();
    if (!parsed.ok()) {
      HFC_LOG_ERROR(logger(),
                    "the changed config " + path + " is invalid; the running chain stays in place");
      for (const ConfigIssue& issue : parsed.issues) {
        HFC_LOG_ERROR(logger(), issue.describe());
      }
      metrics.add("hfchain_config_reload_failures_total", "", 1);
      return false;
    }
    Result<ChainSnapshotPtr> reloaded = state_.engine->reload(parsed.config);
    if (!reloaded.ok()) {
      HFC_LOG_ERROR(logger(), "reloading " + path + " failed; the running chain stays in place");
      std::istringstream lines(reloaded.error().message);
      for (std::string line; std::getline(lines, line);) HFC_LOG_ERROR(logger(), line);
      metrics.add("hfchain_config_reload_failures_total", "", 1);
      return false;
    }
    HFC_LOG_INFO(logger(), "reloaded " + path + " as generation " +
                               std::to_string(reloaded.value()->generation()));
    metrics.add("hfchain_config_reloads_total", "", 1);
    return true;
  }

  void watchConfig() {
    std::unique_lock lock(stop_mutex_);
    while (!stopped_) {
      stop_condition_.wait_for(lock, options_.reload_poll_interval);
      if (stopped_) break;
      lock.unlock();
      checkConfig(false);
      lock.lock();
    }
  }

  GatewayOptions options_;
  gateway::SharedState state_;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  uint16_t port_ = 0;

  std::mutex reload_mutex_;  // one reload at a time
  FileStamp stamp_;

  std::mutex stop_mutex_;
  std::condition_variable stop_condition_;
  bool stopped_ = false;
  std::thread watcher_;
};

Result<std::unique_ptr<Gateway>> Gateway::start(Engine& engine, GatewayOptions options) {
  if (options.threads < 1) {
    return makeError(ErrorClass::kInvalidRequest,
                     "threads is " + std::to_string(options.threads) + "; use 1 or more");
  }
  if (options.max_body_bytes == 0) {
    return makeError(ErrorClass::kInvalidRequest, "max_body_bytes must be more than 0");
  }
  auto impl = std::make_unique<Impl>(engine, std::move(options));
  if (Error error = impl->listen(); !error.ok()) return error;
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() { stop(); }
uint16_t Gateway::port() const { return impl_->port(); }
std::string Gateway::baseUrl() const { return impl_->baseUrl(); }
bool Gateway::checkConfig(bool force) { return impl_->checkConfig(force); }
void Gateway::stop() { impl_->stop(); }

Result<ApiKeys> loadApiKeysFile(const std::string& path) {
  std::string content;
  if (!readFile(path, content)) {
    return makeError(ErrorClass::kInvalidRequest, "cannot read the API key file " + path);
  }
  ApiKeys result;
  // The line each key was first seen on. A key listed twice, perhaps with two tenants, is an
  // error, because silently taking either line could put a caller in the wrong tenant.
  std::map<std::string, int> first_line;
  std::istringstream lines(content);
  int number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++number;
    std::istringstream fields(line);
    std::string key, tenant, extra;
    fields >> key >> tenant >> extra;
    if (key.empty() || key[0] == '#') continue;
    if (!extra.empty()) {
      return makeError(ErrorClass::kInvalidRequest,
                       "the API key file " + path + " line " + std::to_string(number) +
                           " has more than two fields; write KEY or KEY TENANT");
    }
    if (auto [seen, inserted] = first_line.emplace(key, number); !inserted) {
      // The key itself is a secret, so only the line numbers identify it.
      return makeError(ErrorClass::kInvalidRequest,
                       "the API key file " + path + " lists the same key on lines " +
                           std::to_string(seen->second) + " and " + std::to_string(number) +
                           "; keep one line per key");
    }
    if (!tenant.empty()) result.tenants[key] = tenant;
    result.keys.push_back(std::move(key));
  }
  if (result.keys.empty()) {
    return makeError(ErrorClass::kInvalidRequest, "the API key file " + path + " has no key");
  }
  return result;
}

}  // namespace hfchain
