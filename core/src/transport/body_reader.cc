// Deadline-bounded body reads on a pooled connection.
#include "transport/body_reader.h"

#include <Poco/Exception.h>
#include <Poco/Timespan.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "hfchain/log.h"

namespace hfchain::transport {

BodyReader::BodyReader(std::shared_ptr<ConnectionPool> pool, std::unique_ptr<Connection> connection,
                       std::istream& body, bool reusable, ExchangeInfo info)
    : pool_(std::move(pool)),
      connection_(std::move(connection)),
      body_(&body),
      reusable_(reusable),
      info_(std::move(info)),
      last_data_(Clock::now()),
      logger_(log::get("hfchain.transport")) {}

BodyReader::~BodyReader() { release(); }

void BodyReader::close() {
  cancel_watch_.reset();
  ConnectionPool::discard(std::move(connection_));
  connection_.reset();
}

void BodyReader::release() {
  // A pooled connection must not be shut down by this request's later cancellation.
  cancel_watch_.reset();
  if (!connection_) return;
  if (at_end_ && reusable_) {
    pool_->release(std::move(connection_));
    return;
  }
  HFC_LOG_DEBUG(logger_, HFC_RID(info_.request_id) + "closing the connection to target \"" +
                             info_.target + "\" because its response was not read to the end");
  close();
}

namespace {

// The registry behind CancelWatch, with its checking thread.
class CancelWatcher {
 public:
  static CancelWatcher& instance() {
    static CancelWatcher watcher;
    return watcher;
  }

  uint64_t add(const Poco::Net::StreamSocket& socket, const CancelToken& cancel) {
    std::lock_guard lock(mutex_);
    if (!running_) {
      // The previous thread, if any, stopped when it found nothing to watch.
      if (thread_.joinable()) thread_.join();
      running_ = true;
      thread_ = std::thread([this] { run(); });
    }
    uint64_t id = next_id_++;
    entries_.emplace(id, Entry{socket, cancel});
    return id;
  }

  void remove(uint64_t id) {
    std::lock_guard lock(mutex_);
    entries_.erase(id);
  }

  ~CancelWatcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Entry {
    Poco::Net::StreamSocket socket;  // shares the connection's socket
    CancelToken cancel;
  };

  // Checks every 100 ms; ends once nothing is registered, so an idle process keeps no
  // thread for it.
  void run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(100));
      if (entries_.empty()) break;
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (!it->second.cancel.cancelled()) {
          ++it;
          continue;
        }
        try {
          it->second.socket.shutdown();
        } catch (const Poco::Exception&) {
          // Already closed: the blocked call has returned by itself.
        }
        it = entries_.erase(it);
      }
    }
    running_ = false;
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<uint64_t, Entry> entries_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace

CancelWatch::CancelWatch(const Poco::Net::StreamSocket& socket, const CancelToken& cancel)
    : id_(CancelWatcher::instance().add(socket, cancel)) {}

CancelWatch::~CancelWatch() { CancelWatcher::instance().remove(id_); }

Error cancelledError(const std::string& target) {
  Error error = makeError(ErrorClass::kCancelled,
                          "the request to target \"" + target + "\" was cancelled by its caller");
  error.target = target;
  return error;
}

Result<size_t> BodyReader::read(char* buffer, size_t size) {
  return readUntil(buffer, size, info_.deadlines.read(last_data_));
}

Result<size_t> BodyReader::readUntil(char* buffer, size_t size, const Limit& limit) {
  if (at_end_ || !connection_ || size == 0) return size_t{0};
  const auto now = Clock::now();
  if (limit.expired(now)) {
    close();
    return info_.deadlines.timeoutError(limit, info_.target);
  }
  try {
    if (info_.cancel.cancelled()) {
      close();
      return cancelledError(info_.target);
    }
    if (!cancel_watch_) {
      cancel_watch_ = std::make_unique<CancelWatch>(connection_->session().socket(), info_.cancel);
    }
    std::streambuf* buf = body_->rdbuf();
    // The socket timeout bounds the one blocking receive below: sgetc() fills the stream
    // buffer with a single read of the session, and sgetn() then copies what arrived.
    connection_->session().socket().setReceiveTimeout(
        Poco::Timespan(std::max<int64_t>(1, limit.remainingMs(Clock::now())) * 1000));
    if (buf->sgetc() == std::char_traits<char>::eof()) {
      if (info_.cancel.cancelled()) {
        close();
        return cancelledError(info_.target);
      }
      at_end_ = true;
      return size_t{0};
    }
    const std::streamsize available = std::max<std::streamsize>(buf->in_avail(), 1);
    const std::streamsize count = buf->sgetn(
        buffer, std::min<std::streamsize>(available, static_cast<std::streamsize>(size)));
    last_data_ = Clock::now();
    return static_cast<size_t>(count);
  } catch (const Poco::TimeoutException&) {
    close();
    return info_.deadlines.timeoutError(limit, info_.target);
  } catch (const Poco::Exception& e) {
    close();
    if (info_.cancel.cancelled()) return cancelledError(info_.target);
    Error error = makeError(ErrorClass::kConnectionReset,
                            "the connection to target \"" + info_.target +
                                "\" broke while reading the response: " + e.displayText());
    error.target = info_.target;
    return error;
  } catch (const std::exception& e) {
    close();
    Error error =
        makeError(ErrorClass::kConnectionReset,
                  "reading the response of target \"" + info_.target + "\" failed: " + e.what());
    error.target = info_.target;
    return error;
  }
}

Result<std::string> BodyReader::readAll(size_t max_bytes, bool& truncated) {
  truncated = false;
  std::string body;
  std::array<char, 16 * 1024> buffer;
  while (true) {
    auto count = read(buffer.data(), buffer.size());
    if (!count) return count.error();
    if (*count == 0) return body;
    const size_t room = max_bytes - body.size();
    if (*count > room) {
      body.append(buffer.data(), room);
      truncated = true;
      return body;
    }
    body.append(buffer.data(), *count);
  }
}

bool BodyReader::drain(int64_t max_wait_ms, size_t max_bytes) {
  if (at_end_) return true;
  if (!connection_) return false;
  const Limit cap{Clock::now() + std::chrono::milliseconds(max_wait_ms), DeadlineKind::kIdle};
  std::array<char, 4096> buffer;
  size_t dropped = 0;
  while (dropped <= max_bytes) {
    const Limit own = info_.deadlines.read(last_data_);
    auto count = readUntil(buffer.data(), buffer.size(), own.at < cap.at ? own : cap);
    if (!count) return false;
    if (*count == 0) return true;
    dropped += *count;
  }
  return false;
}

}  // namespace hfchain::transport
