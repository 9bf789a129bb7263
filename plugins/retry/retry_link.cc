// The retry link: sends a fresh copy of the request again when an attempt fails with an
// error that its rules call retryable. Between attempts it waits a jittered exponential
// backoff that never undercuts the server's Retry-After, within the request's deadline and
// a retry budget. A stream counts as failed only while nothing has reached the caller, so
// the link reads the first event before it answers and passes every later event through.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "hfchain/sdk/link.h"
#include "retry_budget.h"
#include "retry_config.h"

namespace hfchain::plugins::retry {
namespace {

namespace sdk = hfchain::sdk;

constexpr const char* kLogger = "retry";
// Metadata set on every attempt's copy, so that a second retry link further down makes a
// single attempt instead of multiplying the attempts of this one.
constexpr const char* kLayerMeta = "hfchain-retry-layer";
constexpr const char* kHandoverHeader = "x-hfchain-handover";

std::string labels(const std::string& target, const char* error_class = nullptr) {
  std::string out = "target=\"" + target + "\"";
  if (error_class != nullptr) out += std::string(",class=\"") + error_class + "\"";
  return out;
}

std::string describe(const sdk::ErrorInfo& error) {
  std::string out = sdk::errorClassName(error.error_class);
  if (error.http_status != 0) out += " (HTTP " + std::to_string(error.http_status) + ")";
  return out;
}

// Draws a wait from [0, ceiling_ms].
int64_t drawJitter(int64_t ceiling_ms) {
  if (ceiling_ms <= 0) return 0;
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return std::uniform_int_distribution<int64_t>(0, ceiling_ms)(generator);
}

// Delivers the event the link already read, then the rest of the inner stream. Keeps the
// attempt's request copy alive for as long as the stream may use it.
class ReplayFirst : public sdk::Stream {
 public:
  ReplayFirst(sdk::Response inner, std::unique_ptr<sdk::Event> first,
              std::unique_ptr<sdk::OwnedRequest> attempt)
      : inner_(std::move(inner)), first_(std::move(first)), attempt_(std::move(attempt)) {}

  bool next(sdk::Event& out) override {
    if (first_) {
      out.copyFrom(*first_);
      first_.reset();
      return true;
    }
    return inner_.next(out);
  }

 private:
  sdk::Response inner_;
  std::unique_ptr<sdk::Event> first_;
  std::unique_ptr<sdk::OwnedRequest> attempt_;
};

// One attempt's result: the response to hand back as it is, and the failure when it failed
// before anything reached the caller.
struct Attempt {
  sdk::Response response;
  std::optional<sdk::ErrorInfo> failure;
};

class RetryLink : public sdk::Link {
 public:
  static std::unique_ptr<RetryLink> create(const nlohmann::json& settings, std::string& error) {
    std::optional<RetryConfig> config = parseRetryConfig(settings, error);
    if (!config) return nullptr;
    return std::unique_ptr<RetryLink>(new RetryLink(std::move(*config)));
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    if (request.meta(kLayerMeta)) {
      request.log(HFC_LOG_DEBUG, kLogger,
                  "a retry link further up owns the retries of this request; making one attempt");
      return next(request);
    }
    const std::string target = targetName(request, next);
    const Policy& policy = config_.policyFor(target);
    {
      std::lock_guard lock(mutex_);
      budgetFor(target).recordRequest(sdk::nowMs());
    }

    for (int attempt = 1;; ++attempt) {
      auto copy = std::make_unique<sdk::OwnedRequest>(request);
      sdk::Request view = copy->view();
      view.setMeta(kLayerMeta, "1");
      Attempt result = send(view, next, std::move(copy));
      if (!result.failure) return std::move(result.response);
      const sdk::ErrorInfo& failure = *result.failure;

      const Rule* rule = nullptr;
      Action action = policy.actionFor(failure, &rule);
      if (failure.error_class == HFC_ERROR_CANCELLED || request.cancelled()) {
        return std::move(result.response);
      }
      if (action == Action::kFail) return std::move(result.response);
      if (action == Action::kFallback) {
        request.log(HFC_LOG_INFO, kLogger,
                    "attempt " + std::to_string(attempt) + " failed with " + describe(failure) +
                        "; " + rule->name + " hands it over to a fallback link");
        result.response.setHeader(kHandoverHeader, "fallback");
        return std::move(result.response);
      }

      std::optional<int64_t> wait = waitBefore(request, policy, failure, attempt, target);
      if (!wait) return std::move(result.response);
      if (!acquireBudget(request, target, failure)) return std::move(result.response);

      request.log(HFC_LOG_INFO, kLogger,
                  "attempt " + std::to_string(attempt) + " of " +
                      std::to_string(policy.max_attempts) + " to target " + target +
                      " failed with " + describe(failure) + "; retrying in " +
                      std::to_string(*wait) + " ms");
      sdk::metricAdd("hfchain_retry_attempts_total",
                     labels(target, sdk::errorClassName(failure.error_class)));
      sdk::ErrorInfo last = failure;
      // Free the failed attempt before waiting, so its connection is not held meanwhile.
      result = Attempt{};
      if (*wait > 0 && !sdk::sleepMs(&request, *wait)) {
        if (request.cancelled()) {
          return sdk::Response::error(sdk::ErrorInfo{
              HFC_ERROR_CANCELLED, 0, "the request was cancelled while waiting to retry"});
        }
        request.log(HFC_LOG_WARNING, kLogger,
                    "the request deadline passed while waiting to retry; returning the last error");
        return sdk::Response::error(last);
      }
    }
  }

 private:
  explicit RetryLink(RetryConfig config) : config_(std::move(config)) {}

  static std::string targetName(const sdk::Request& request, const sdk::Next& next) {
    if (!request.target().empty()) return std::string(request.target());
    std::optional<sdk::TargetInfo> info = next.target("");
    return info ? info->name : std::string("default");
  }

  // Sends one attempt. A response that failed up front, or whose first event is an error,
  // is a failed attempt; otherwise the response is returned with its first event replayed.
  static Attempt send(sdk::Request& view, sdk::Next& next,
                      std::unique_ptr<sdk::OwnedRequest> copy) {
    Attempt result;
    sdk::Response response = next(view);
    if (std::optional<sdk::ErrorInfo> error = response.error()) {
      result.failure = std::move(error);
      result.response = std::move(response);
      return result;
    }
    sdk::Response inner = sdk::takeStream(response);
    auto first = std::make_unique<sdk::Event>(sdk::Event::make());
    if (!inner.next(*first)) {
      first.reset();
    } else if (first->isError()) {
      sdk::ErrorInfo failure;
      failure.error_class = first->errorClass();
      failure.http_status = static_cast<int>(first->getInt(HFC_EVENT_ERROR_HTTP_STATUS));
      failure.message = std::string(first->errorMessage());
      result.failure = std::move(failure);
    }
    result.response = sdk::wrap(
        std::move(response),
        std::make_unique<ReplayFirst>(std::move(inner), std::move(first), std::move(copy)));
    return result;
  }

  // Returns how long to wait before the next attempt, or nullopt when the link must give up
  // because attempts are spent, the server's Retry-After or loading estimate is above its
  // ceiling, or the wait does not fit the request's deadline.
  std::optional<int64_t> waitBefore(const sdk::Request& request, const Policy& policy,
                                    const sdk::ErrorInfo& failure, int attempt,
                                    const std::string& target) const {
    const std::string what = describe(failure);
    if (attempt >= policy.max_attempts) {
      request.log(HFC_LOG_WARNING, kLogger,
                  "giving up on target " + target + " after " + std::to_string(attempt) +
                      " attempts (max_attempts); the last failed with " + what);
      return std::nullopt;
    }
    int64_t backoff = policy.backoffCeilingMs(attempt - 1);
    int64_t wait = policy.jitter ? drawJitter(backoff) : backoff;
    if (failure.retry_after_ms >= 0) {
      if (failure.retry_after_ms > policy.max_retry_after_ms) {
        request.log(HFC_LOG_WARNING, kLogger,
                    "target " + target + " asks to retry after " +
                        std::to_string(failure.retry_after_ms) +
                        " ms, more than max_retry_after_ms (" +
                        std::to_string(policy.max_retry_after_ms) + " ms); failing with " + what);
        return std::nullopt;
      }
      // Retry-After is a floor: a larger backoff draw may add to it, never shorten it.
      wait = std::max(wait, failure.retry_after_ms);
    }
    if (failure.error_class == HFC_ERROR_MODEL_LOADING && failure.estimated_time_s >= 0) {
      auto loading_ms = static_cast<int64_t>(std::ceil(failure.estimated_time_s * 1000));
      if (loading_ms > policy.max_loading_wait_ms) {
        request.log(HFC_LOG_WARNING, kLogger,
                    "the model of target " + target + " needs about " + std::to_string(loading_ms) +
                        " ms to load, more than max_loading_wait_ms (" +
                        std::to_string(policy.max_loading_wait_ms) + " ms); failing");
        return std::nullopt;
      }
      wait = std::max(wait, loading_ms);
    }
    int64_t remaining = request.deadlineRemainingMs();
    if (remaining >= 0 && wait >= remaining) {
      request.log(HFC_LOG_WARNING, kLogger,
                  "a wait of " + std::to_string(wait) + " ms before retrying " + what +
                      " does not fit the " + std::to_string(remaining) +
                      " ms left before the request deadline; failing");
      return std::nullopt;
    }
    return wait;
  }

  bool acquireBudget(const sdk::Request& request, const std::string& target,
                     const sdk::ErrorInfo& failure) {
    int64_t requests = 0;
    int64_t retries = 0;
    {
      std::lock_guard lock(mutex_);
      RetryBudget& budget = budgetFor(target);
      int64_t now = sdk::nowMs();
      if (budget.tryAcquireRetry(now)) return true;
      requests = budget.requestsInWindow(now);
      retries = budget.retriesInWindow(now);
    }
    request.log(HFC_LOG_WARNING, kLogger,
                "the retry budget of target " + target + " is spent (" + std::to_string(retries) +
                    " retries for " + std::to_string(requests) + " requests in the last " +
                    std::to_string(config_.budget.window_ms) + " ms); returning " +
                    describe(failure) + " without retrying");
    sdk::metricAdd("hfchain_retry_budget_exhausted_total", labels(target));
    return false;
  }

  // Requires mutex_.
  RetryBudget& budgetFor(const std::string& target) {
    auto found = budgets_.find(target);
    if (found == budgets_.end())
      found = budgets_.emplace(target, RetryBudget(config_.budget)).first;
    return found->second;
  }

  const RetryConfig config_;
  std::mutex mutex_;
  std::map<std::string, RetryBudget> budgets_;  // by target name; guarded by mutex_
};

}  // namespace
}  // namespace hfchain::plugins::retry

HFCHAIN_PLUGIN("retry", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::retry::RetryLink, "retry",
                            "retries failed attempts with jittered backoff, Retry-After and a "
                            "retry budget"))
