// Parsing of the limits link's settings.
#include "limits_config.h"

#include <algorithm>
#include <cmath>

namespace hfchain::plugins::limits {
namespace {

constexpr int64_t kMaxMs = 24LL * 3600 * 1000;  // one day: anything longer is a typo

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

// scope: global | target | key, or a list of target and key.
bool readScope(const nlohmann::json& settings, LimitsConfig& config, std::string& error) {
  if (!settings.contains("scope")) return true;
  const nlohmann::json& scope = settings["scope"];
  nlohmann::json items = scope.is_array() ? scope : nlohmann::json::array({scope});
  for (const nlohmann::json& item : items) {
    if (item == "target") {
      config.per_target = true;
    } else if (item == "key") {
      config.per_key = true;
    } else if (item == "global" && !scope.is_array()) {
      // One set of limits for every request.
    } else {
      error = "scope must be global, target, key or [target, key], got " + scope.dump();
      return false;
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<LimitsConfig> parseLimitsConfig(const nlohmann::json& settings,
                                                std::string& error) {
  if (!settings.is_object()) {
    error = "settings must be a map, got " + settings.dump();
    return nullptr;
  }
  static const char* const kKnown[] = {
      "requests_per_second",    "burst",       "tokens_per_minute", "token_burst",
      "default_max_new_tokens", "max_wait_ms", "max_concurrent",    "max_queue",
      "queue_timeout_ms",       "scope"};
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
  auto config = std::make_unique<LimitsConfig>();
  bool ok =
      readDouble(settings, "requests_per_second", 0, 1e6, config->requests_per_second, error) &&
      readDouble(settings, "burst", 1, 1e6, config->burst, error) &&
      readDouble(settings, "tokens_per_minute", 0, 1e12, config->tokens_per_minute, error) &&
      readDouble(settings, "token_burst", 1, 1e12, config->token_burst, error) &&
      readInt(settings, "default_max_new_tokens", 0, 10'000'000, config->default_max_new_tokens,
              error) &&
      readInt(settings, "max_wait_ms", 0, kMaxMs, config->max_wait_ms, error) &&
      readInt(settings, "max_concurrent", 0, 1'000'000, config->max_concurrent, error) &&
      readInt(settings, "max_queue", 0, 1'000'000, config->max_queue, error) &&
      readInt(settings, "queue_timeout_ms", 0, kMaxMs, config->queue_timeout_ms, error) &&
      readScope(settings, *config, error);
  if (!ok) return nullptr;
  if (config->requests_per_second == 0 && config->tokens_per_minute == 0 &&
      config->max_concurrent == 0) {
    error = "no limit is set; set requests_per_second, tokens_per_minute or max_concurrent";
    return nullptr;
  }
  if (settings.contains("burst") && config->requests_per_second == 0) {
    error = "burst is set but requests_per_second is not; set requests_per_second too";
    return nullptr;
  }
  if (settings.contains("token_burst") && config->tokens_per_minute == 0) {
    error = "token_burst is set but tokens_per_minute is not; set tokens_per_minute too";
    return nullptr;
  }
  if ((settings.contains("max_queue") || settings.contains("queue_timeout_ms")) &&
      config->max_concurrent == 0) {
    error = "max_queue and queue_timeout_ms apply to max_concurrent, which is not set";
    return nullptr;
  }
  if (!settings.contains("burst")) config->burst = std::max(1.0, config->requests_per_second);
  if (!settings.contains("token_burst")) config->token_burst = config->tokens_per_minute;
  return config;
}

}  // namespace hfchain::plugins::limits
