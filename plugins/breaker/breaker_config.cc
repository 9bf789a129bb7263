// Parsing of the breaker link's settings.
#include "breaker_config.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <string_view>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::breaker {
namespace {

constexpr int64_t kMaxMs = 24LL * 3600 * 1000;  // one day: anything longer is a typo

// The error classes a call may end with that count as failures unless configured otherwise:
// the target is down, overloaded or unreachable. Caller mistakes (4xx) are not failures.
constexpr std::initializer_list<hfc_error_class> kDefaultFailureClasses = {
    HFC_ERROR_UPSTREAM_5XX,     HFC_ERROR_TIMEOUT,           HFC_ERROR_CONNECT_FAILED,
    HFC_ERROR_CONNECTION_RESET, HFC_ERROR_STREAM_INCOMPLETE, HFC_ERROR_MODEL_LOADING};

constexpr int kErrorClassCount = HFC_ERROR_INTERNAL + 1;

bool readInt(const nlohmann::json& settings, const char* key, int64_t min, int64_t max,
             int64_t& out, std::string& error) {
  if (!settings.contains(key)) return true;
  const nlohmann::json& value = settings[key];
  if (!value.is_number_integer() || value.get<int64_t>() < min || value.get<int64_t>() > max) {
    error = std::string(key) + " must be an integer from " + std::to_string(min) + " to " +
            std::to_string(max) + ", got " + value.dump();
    return false;
  }
  out = value.get<int64_t>();
  return true;
}

// Formats a bound for a message: 1 rather than 1.000000.
std::string formatNumber(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  return nlohmann::json(value).dump();
}

bool readDouble(const nlohmann::json& settings, const char* key, double min, double max,
                double& out, std::string& error) {
  if (!settings.contains(key)) return true;
  const nlohmann::json& value = settings[key];
  if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < min ||
      value.get<double>() > max) {
    error = std::string(key) + " must be a number from " + formatNumber(min) + " to " +
            formatNumber(max) + ", got " + value.dump();
    return false;
  }
  out = value.get<double>();
  return true;
}

bool readFailureClasses(const nlohmann::json& settings, BreakerConfig& config, std::string& error) {
  if (!settings.contains("failure_classes")) {
    for (hfc_error_class error_class : kDefaultFailureClasses)
      config.failure_classes.set(error_class);
    return true;
  }
  const nlohmann::json& list = settings["failure_classes"];
  if (!list.is_array()) {
    error = "failure_classes must be a list of error class names, e.g. [upstream_5xx, timeout]";
    return false;
  }
  for (const nlohmann::json& item : list) {
    bool found = false;
    if (item.is_string()) {
      for (int index = 1; index < kErrorClassCount; ++index) {
        if (item.get<std::string>() == sdk::errorClassName(static_cast<hfc_error_class>(index))) {
          config.failure_classes.set(static_cast<size_t>(index));
          found = true;
        }
      }
    }
    if (!found) {
      std::string names;
      for (int index = 1; index < kErrorClassCount; ++index) {
        names += std::string(names.empty() ? "" : ", ") +
                 sdk::errorClassName(static_cast<hfc_error_class>(index));
      }
      error =
          "failure_classes contains " + item.dump() + ", which is not an error class; use " + names;
      return false;
    }
  }
  return true;
}

bool readFailureStatuses(const nlohmann::json& settings, BreakerConfig& config,
                         std::string& error) {
  if (!settings.contains("failure_statuses")) return true;
  const nlohmann::json& list = settings["failure_statuses"];
  if (!list.is_array()) {
    error = "failure_statuses must be a list of HTTP statuses, e.g. [429, 500]";
    return false;
  }
  for (const nlohmann::json& item : list) {
    if (!item.is_number_integer() || item.get<int>() < 100 || item.get<int>() > 599) {
      error =
          "failure_statuses contains " + item.dump() + "; expected HTTP statuses from 100 to 599";
      return false;
    }
    config.failure_statuses.insert(item.get<int>());
  }
  return true;
}

bool readSlowCall(const nlohmann::json& settings, BreakerConfig& config, std::string& error) {
  if (!settings.contains("slow_call")) return true;
  const nlohmann::json& slow = settings["slow_call"];
  if (!slow.is_object()) {
    error =
        "slow_call must be a map such as {first_token_ms: 5000, gap_ms: 2000}, got " + slow.dump();
    return false;
  }
  for (const auto& [key, value] : slow.items()) {
    if (key != "first_token_ms" && key != "gap_ms") {
      error = "unknown setting slow_call." + key + "; expected first_token_ms or gap_ms";
      return false;
    }
  }
  if (!readInt(slow, "first_token_ms", 0, kMaxMs, config.slow_first_token_ms, error) ||
      !readInt(slow, "gap_ms", 0, kMaxMs, config.slow_gap_ms, error)) {
    error = "slow_call." + error;
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<BreakerConfig> parseBreakerConfig(const nlohmann::json& settings,
                                                  std::string& error) {
  if (!settings.is_object()) {
    error = "settings must be a map, got " + settings.dump();
    return nullptr;
  }
  static const char* const kKnown[] = {
      "failure_rate",     "window_ms",       "min_calls",        "consecutive_failures",
      "open_ms",          "open_backoff",    "open_max_ms",      "half_open_probes",
      "probe_timeout_ms", "failure_classes", "failure_statuses", "slow_call"};
  for (const auto& [key, value] : settings.items()) {
    bool known = false;
    for (const char* name : kKnown) known = known || key == name;
    if (!known) {
      std::string names;
      for (const char* name : kKnown) names += std::string(names.empty() ? "" : ", ") + name;
      error = "unknown setting '" + key + "'; expected one of " + names;
      return nullptr;
    }
  }
  auto config = std::make_unique<BreakerConfig>();
  bool ok = readDouble(settings, "failure_rate", 0, 1, config->failure_rate, error) &&
            readInt(settings, "window_ms", 1, kMaxMs, config->window_ms, error) &&
            readInt(settings, "min_calls", 1, 1'000'000, config->min_calls, error) &&
            readInt(settings, "consecutive_failures", 0, 1'000'000, config->consecutive_failures,
                    error) &&
            readInt(settings, "open_ms", 1, kMaxMs, config->open_ms, error) &&
            readDouble(settings, "open_backoff", 1, 100, config->open_backoff, error) &&
            readInt(settings, "open_max_ms", 1, kMaxMs, config->open_max_ms, error) &&
            readInt(settings, "half_open_probes", 1, 1000, config->half_open_probes, error) &&
            readInt(settings, "probe_timeout_ms", 1, kMaxMs, config->probe_timeout_ms, error) &&
            readFailureClasses(settings, *config, error) &&
            readFailureStatuses(settings, *config, error) && readSlowCall(settings, *config, error);
  if (!ok) return nullptr;
  if (config->failure_rate == 0 && config->consecutive_failures == 0) {
    error =
        "failure_rate and consecutive_failures are both 0, so the breaker could never open; "
        "set at least one of them";
    return nullptr;
  }
  if (!settings.contains("open_max_ms")) {
    config->open_max_ms = std::max(config->open_max_ms, config->open_ms);
  } else if (config->open_max_ms < config->open_ms) {
    error = "open_max_ms (" + std::to_string(config->open_max_ms) +
            ") must not be less than open_ms (" + std::to_string(config->open_ms) + ")";
    return nullptr;
  }
  return config;
}

}  // namespace hfchain::plugins::breaker
