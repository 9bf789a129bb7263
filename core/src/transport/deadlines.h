// The four deadlines of one HTTP exchange (connect, first byte, idle, total) and the
// request's own deadline, combined into the timeout of the next blocking socket call.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "hfchain/error.h"
#include "hfchain/request.h"
#include "hfchain/target.h"

namespace hfchain::transport {

enum class DeadlineKind {
  kConnect,    // timeouts.connect_ms
  kFirstByte,  // timeouts.first_byte_ms
  kIdle,       // timeouts.idle_ms
  kTotal,      // timeouts.total_ms
  kRequest,    // Request::deadline
};

// The earliest deadline that applies to one blocking call, and which one it is.
struct Limit {
  Clock::time_point at;
  DeadlineKind kind = DeadlineKind::kTotal;

  // Milliseconds left from `now`, at least 1 because Poco takes a timeout of 0 as "none".
  // Call expired() first.
  int64_t remainingMs(Clock::time_point now) const;
  bool expired(Clock::time_point now) const { return now >= at; }
};

class Deadlines {
 public:
  Deadlines(const Timeouts& timeouts, std::optional<Clock::time_point> request_deadline,
            Clock::time_point start);

  Limit connect(Clock::time_point now) const;
  Limit firstByte(Clock::time_point now) const;
  // The limit of a body read; `last_data` is when the previous bytes arrived.
  Limit read(Clock::time_point last_data) const;

  // Builds the kTimeout error for an expired `limit`, naming the deadline and the target.
  Error timeoutError(const Limit& limit, const std::string& target) const;

 private:
  Limit earliest(Clock::time_point phase_end, DeadlineKind phase) const;

  Timeouts timeouts_;
  Clock::time_point total_end_;
  std::optional<Clock::time_point> request_end_;
};

}  // namespace hfchain::transport
