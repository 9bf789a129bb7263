// Deadline arithmetic and timeout messages of the transport.
#include "transport/deadlines.h"

#include <algorithm>

namespace hfchain::transport {
namespace {

std::chrono::milliseconds ms(int64_t count) { return std::chrono::milliseconds(count); }

}  // namespace

int64_t Limit::remainingMs(Clock::time_point now) const {
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(at - now).count();
  return std::max<int64_t>(left, 1);
}

Deadlines::Deadlines(const Timeouts& timeouts, std::optional<Clock::time_point> request_deadline,
                     Clock::time_point start)
    : timeouts_(timeouts),
      total_end_(start + ms(timeouts.total_ms)),
      request_end_(request_deadline) {}

Limit Deadlines::earliest(Clock::time_point phase_end, DeadlineKind phase) const {
  Limit limit{phase_end, phase};
  if (total_end_ < limit.at) limit = {total_end_, DeadlineKind::kTotal};
  if (request_end_ && *request_end_ < limit.at) limit = {*request_end_, DeadlineKind::kRequest};
  return limit;
}

Limit Deadlines::connect(Clock::time_point now) const {
  return earliest(now + ms(timeouts_.connect_ms), DeadlineKind::kConnect);
}

Limit Deadlines::firstByte(Clock::time_point now) const {
  return earliest(now + ms(timeouts_.first_byte_ms), DeadlineKind::kFirstByte);
}

Limit Deadlines::read(Clock::time_point last_data) const {
  return earliest(last_data + ms(timeouts_.idle_ms), DeadlineKind::kIdle);
}

Error Deadlines::timeoutError(const Limit& limit, const std::string& target) const {
  const std::string where = " from target \"" + target + "\"";
  std::string message;
  switch (limit.kind) {
    case DeadlineKind::kConnect:
      message = "connecting to target \"" + target + "\" took more than " +
                std::to_string(timeouts_.connect_ms) + " ms (timeouts.connect_ms)";
      break;
    case DeadlineKind::kFirstByte:
      message = "no response status" + where + " within " +
                std::to_string(timeouts_.first_byte_ms) + " ms (timeouts.first_byte_ms)";
      break;
    case DeadlineKind::kIdle:
      message = "no event" + where + " for " + std::to_string(timeouts_.idle_ms) +
                " ms (timeouts.idle_ms)";
      break;
    case DeadlineKind::kTotal:
      message = "the exchange with target \"" + target + "\" took more than " +
                std::to_string(timeouts_.total_ms) + " ms (timeouts.total_ms)";
      break;
    case DeadlineKind::kRequest:
      message = "the request deadline passed while waiting for target \"" + target + "\"";
      break;
  }
  Error error = makeError(ErrorClass::kTimeout, std::move(message));
  error.target = target;
  return error;
}

}  // namespace hfchain::transport
