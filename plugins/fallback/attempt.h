// One attempt of the fallback link (a copy of the request sent to one target of one tier, up
// to its first event) and the plan that yields the attempts in order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fallback_state.h"

namespace hfchain::plugins::fallback {

struct Attempt {
  size_t tier = 0;
  std::string target;  // empty in a pass-through tier, which keeps the caller's target
  std::unique_ptr<sdk::OwnedRequest> request;
  sdk::Response response;  // status and headers; its stream is moved to `inner`
  sdk::Response inner;
  std::unique_ptr<sdk::Event> first;
  bool has_first = false;
  // Set when the attempt failed before any event reached the caller, with in_stream telling
  // whether the failure was the first event (or a stream without events) rather than an
  // error response.
  std::optional<sdk::ErrorInfo> failure;
  bool in_stream = false;
  bool handover = false;  // a retry link set x-hfchain-handover: fallback
  int64_t started_ms = 0;
  int64_t first_event_ms = -1;  // time from the call to the first event

  // Returns "tier/target", the form used in logs and metric labels.
  std::string label(const FallbackState& state) const;
  // Returns the name recorded as served_by: the target, or what the rest of the chain named.
  std::string servedBy() const;
};

// Returns a new attempt whose request is a copy of `original` sent to `target` (empty: the
// caller's target) with the tier's model override and attempt deadline.
std::unique_ptr<Attempt> prepareAttempt(const FallbackState& state, const sdk::Request& original,
                                        size_t tier, const std::string& target);

// Sends the attempt's request through the tier's links and `next`, and reads the first event.
// Fills response, inner, first and, on failure, failure.
void runAttempt(const FallbackState& state, sdk::Next& next, Attempt& attempt);

// Returns whether the attempt's failure moves the request on to the next endpoint or tier.
bool triggersFallback(const FallbackState& state, const Attempt& attempt);

// Returns "class (HTTP status)" for logs.
std::string describeFailure(const sdk::ErrorInfo& failure);

// Counts and logs one move from `from` to `to` (both "tier/target").
void noteFallback(const sdk::Request& request, const std::string& from, const std::string& to,
                  const std::string& reason);

// The order of attempts: the tiers in order, and in a tier with targets, its targets by
// health score as it stood when the tier was entered. Not thread-safe.
class Plan {
 public:
  explicit Plan(StatePtr state) : state_(std::move(state)) {}

  // Moves to the next tier and returns false when there is none.
  bool enterNextTier();
  // Returns the index of the current tier, valid after enterNextTier returned true.
  size_t tier() const { return tier_; }
  // Returns the next target of the current tier ("" in a pass-through tier), or nullopt.
  std::optional<std::string> takeTarget();
  bool hasTarget() const { return next_target_ < targets_.size(); }

 private:
  StatePtr state_;
  size_t tier_ = static_cast<size_t>(-1);
  std::vector<std::string> targets_;
  size_t next_target_ = 0;
};

}  // namespace hfchain::plugins::fallback
