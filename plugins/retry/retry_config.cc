// Parsing and validation of the retry link's settings.
#include "retry_config.h"

#include <algorithm>
#include <limits>

namespace hfchain::plugins::retry {
namespace {

constexpr int kMaxAttemptsLimit = 100;
constexpr int64_t kMaxMs = int64_t{24} * 60 * 60 * 1000;  // one day

// Returns the error class called `name`, the names sdk::errorClassName returns.
std::optional<sdk::ErrorClass> classFromName(const std::string& name) {
  for (int value = HFC_ERROR_NONE + 1; value <= HFC_ERROR_INTERNAL; ++value) {
    auto error_class = static_cast<sdk::ErrorClass>(value);
    if (name == sdk::errorClassName(error_class)) return error_class;
  }
  return std::nullopt;
}

std::string allClassNames() {
  std::string names;
  for (int value = HFC_ERROR_NONE + 1; value <= HFC_ERROR_INTERNAL; ++value) {
    if (!names.empty()) names += ", ";
    names += sdk::errorClassName(static_cast<sdk::ErrorClass>(value));
  }
  return names;
}

bool readInteger(const nlohmann::json& object, const std::string& key, const std::string& where,
                 int64_t low, int64_t high, int64_t& out, std::string& error) {
  if (!object.contains(key)) return true;
  const nlohmann::json& value = object[key];
  if (!value.is_number_integer() || value.get<int64_t>() < low || value.get<int64_t>() > high) {
    error = where + key + " is " + value.dump() + "; expected an integer from " +
            std::to_string(low) + " to " + std::to_string(high);
    return false;
  }
  out = value.get<int64_t>();
  return true;
}

bool checkKeys(const nlohmann::json& object, const std::string& where,
               const std::vector<std::string>& known, std::string& error) {
  if (!object.is_object()) {
    error = (where.empty() ? std::string("settings") : where.substr(0, where.size() - 1)) +
            " must be a mapping, not " + object.dump();
    return false;
  }
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string list;
    for (const std::string& name : known) list += (list.empty() ? "" : ", ") + name;
    error = "unknown setting '" + where + key + "'; expected one of " + list;
    return false;
  }
  return true;
}

// Parses one status entry: 503, "503" or "500-599".
bool parseStatus(const nlohmann::json& value, const std::string& where, StatusRange& out,
                 std::string& error) {
  auto valid = [](int64_t code) { return code >= 100 && code <= 599; };
  if (value.is_number_integer() && valid(value.get<int64_t>())) {
    out.low = out.high = static_cast<int>(value.get<int64_t>());
    return true;
  }
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    size_t dash = text.find('-');
    try {
      size_t used = 0;
      int64_t low = std::stoll(text.substr(0, dash), &used);
      bool whole = used == (dash == std::string::npos ? text.size() : dash);
      int64_t high = low;
      if (dash != std::string::npos) {
        std::string rest = text.substr(dash + 1);
        high = std::stoll(rest, &used);
        whole = whole && used == rest.size();
      }
      if (whole && valid(low) && valid(high) && low <= high) {
        out.low = static_cast<int>(low);
        out.high = static_cast<int>(high);
        return true;
      }
    } catch (const std::exception&) {
      // Reported below with the value.
    }
  }
  error = where + " is " + value.dump() +
          "; expected an HTTP status such as 503 or a range such as \"500-599\"";
  return false;
}

bool parseRule(const nlohmann::json& entry, const std::string& where, Rule& rule,
               std::string& error) {
  if (!checkKeys(entry, where + ".", {"when", "action"}, error)) return false;
  if (!entry.contains("action") || !entry["action"].is_string()) {
    error = where + ".action is missing or not a string; expected retry, fail or fallback";
    return false;
  }
  std::string action = entry["action"].get<std::string>();
  if (action == "retry") {
    rule.action = Action::kRetry;
  } else if (action == "fail") {
    rule.action = Action::kFail;
  } else if (action == "fallback") {
    rule.action = Action::kFallback;
  } else {
    error = where + ".action is '" + action + "'; expected retry, fail or fallback";
    return false;
  }
  rule.name = where;
  if (!entry.contains("when")) return true;  // no condition: matches every failure
  const nlohmann::json& when = entry["when"];
  if (!checkKeys(when, where + ".when.", {"status", "class"}, error)) return false;
  if (when.contains("status")) {
    const nlohmann::json& status = when["status"];
    nlohmann::json list = status.is_array() ? status : nlohmann::json::array({status});
    if (list.empty()) {
      error = where + ".when.status is an empty list; give at least one status or range";
      return false;
    }
    for (size_t i = 0; i < list.size(); ++i) {
      StatusRange range;
      std::string item =
          where + ".when.status" + (status.is_array() ? "[" + std::to_string(i) + "]" : "");
      if (!parseStatus(list[i], item, range, error)) return false;
      rule.statuses.push_back(range);
    }
  }
  if (when.contains("class")) {
    const nlohmann::json& classes = when["class"];
    nlohmann::json list = classes.is_array() ? classes : nlohmann::json::array({classes});
    if (list.empty()) {
      error = where + ".when.class is an empty list; give at least one error class";
      return false;
    }
    for (const nlohmann::json& name : list) {
      std::optional<sdk::ErrorClass> error_class;
      if (name.is_string()) error_class = classFromName(name.get<std::string>());
      if (!error_class) {
        error =
            where + ".when.class contains " + name.dump() + "; expected one of " + allClassNames();
        return false;
      }
      rule.classes.push_back(*error_class);
    }
  }
  return true;
}

// Applies the policy keys present in `object` on top of `policy`. `where` prefixes key names
// in messages, e.g. "targets.primary.".
bool applyPolicy(const nlohmann::json& object, const std::string& where, Policy& policy,
                 std::string& error) {
  int64_t attempts = policy.max_attempts;
  if (!readInteger(object, "max_attempts", where, 1, kMaxAttemptsLimit, attempts, error)) {
    return false;
  }
  policy.max_attempts = static_cast<int>(attempts);
  if (!readInteger(object, "max_retry_after_ms", where, 0, kMaxMs, policy.max_retry_after_ms,
                   error) ||
      !readInteger(object, "max_loading_wait_ms", where, 0, kMaxMs, policy.max_loading_wait_ms,
                   error)) {
    return false;
  }
  if (object.contains("backoff")) {
    const nlohmann::json& backoff = object["backoff"];
    std::string inner = where + "backoff.";
    if (!checkKeys(backoff, inner, {"base_ms", "cap_ms", "jitter"}, error) ||
        !readInteger(backoff, "base_ms", inner, 0, kMaxMs, policy.base_ms, error) ||
        !readInteger(backoff, "cap_ms", inner, 0, kMaxMs, policy.cap_ms, error)) {
      return false;
    }
    if (backoff.contains("jitter")) {
      const nlohmann::json& jitter = backoff["jitter"];
      if (jitter == "full") {
        policy.jitter = true;
      } else if (jitter == "none") {
        policy.jitter = false;
      } else {
        error = inner + "jitter is " + jitter.dump() + "; expected full or none";
        return false;
      }
    }
    if (policy.cap_ms < policy.base_ms) {
      error = inner + "cap_ms (" + std::to_string(policy.cap_ms) + ") is below base_ms (" +
              std::to_string(policy.base_ms) + "); expected cap_ms >= base_ms";
      return false;
    }
  }
  if (object.contains("on")) {
    const nlohmann::json& on = object["on"];
    if (!on.is_array()) {
      error = where + "on must be a list of {when, action} entries, not " + on.dump();
      return false;
    }
    policy.rules.clear();
    for (size_t i = 0; i < on.size(); ++i) {
      Rule rule;
      if (!parseRule(on[i], where + "on[" + std::to_string(i) + "]", rule, error)) return false;
      policy.rules.push_back(std::move(rule));
    }
  }
  return true;
}

bool parseBudget(const nlohmann::json& value, BudgetSettings& budget, std::string& error) {
  if (value.is_boolean()) {
    budget.enabled = value.get<bool>();
    return true;
  }
  if (!checkKeys(value, "budget.", {"ratio", "window_ms", "min_retries_per_window"}, error) ||
      !readInteger(value, "window_ms", "budget.", 1, kMaxMs, budget.window_ms, error) ||
      !readInteger(value, "min_retries_per_window", "budget.", 0,
                   std::numeric_limits<int32_t>::max(), budget.min_retries_per_window, error)) {
    return false;
  }
  if (value.contains("ratio")) {
    const nlohmann::json& ratio = value["ratio"];
    if (!ratio.is_number() || ratio.get<double>() < 0 || ratio.get<double>() > 100) {
      error = "budget.ratio is " + ratio.dump() +
              "; expected a number from 0 to 100 (retries allowed per request)";
      return false;
    }
    budget.ratio = ratio.get<double>();
  }
  return true;
}

}  // namespace

const char* actionName(Action action) {
  switch (action) {
    case Action::kRetry:
      return "retry";
    case Action::kFail:
      return "fail";
    case Action::kFallback:
      return "fallback";
  }
  return "fail";
}

bool Rule::matches(const sdk::ErrorInfo& error) const {
  if (!statuses.empty()) {
    bool any = std::any_of(statuses.begin(), statuses.end(), [&](const StatusRange& range) {
      return error.http_status >= range.low && error.http_status <= range.high;
    });
    if (!any) return false;
  }
  if (!classes.empty() &&
      std::find(classes.begin(), classes.end(), error.error_class) == classes.end()) {
    return false;
  }
  return true;
}

Action Policy::actionFor(const sdk::ErrorInfo& error, const Rule** matched) const {
  for (const Rule& rule : rules) {
    if (rule.matches(error)) {
      if (matched != nullptr) *matched = &rule;
      return rule.action;
    }
  }
  if (matched != nullptr) *matched = nullptr;
  return Action::kFail;
}

int64_t Policy::backoffCeilingMs(int retry) const {
  int64_t ceiling = base_ms;
  for (int i = 0; i < retry && ceiling < cap_ms; ++i) ceiling *= 2;
  return std::min(ceiling, cap_ms);
}

const Policy& RetryConfig::policyFor(const std::string& target) const {
  auto found = targets.find(target);
  return found != targets.end() ? found->second : policy;
}

std::vector<Rule> defaultRules() {
  Rule by_class;
  by_class.classes = {HFC_ERROR_RATE_LIMITED,     HFC_ERROR_MODEL_LOADING,
                      HFC_ERROR_UPSTREAM_5XX,     HFC_ERROR_CONNECT_FAILED,
                      HFC_ERROR_TIMEOUT,          HFC_ERROR_CONNECTION_RESET,
                      HFC_ERROR_STREAM_INCOMPLETE};
  by_class.action = Action::kRetry;
  by_class.name = "default rules";
  Rule by_status;
  by_status.statuses = {{429, 429}, {500, 599}};
  by_status.action = Action::kRetry;
  by_status.name = "default rules";
  return {by_class, by_status};
}

std::optional<RetryConfig> parseRetryConfig(const nlohmann::json& settings, std::string& error) {
  static const std::vector<std::string> kPolicyKeys = {
      "max_attempts", "backoff", "max_retry_after_ms", "max_loading_wait_ms", "on"};
  std::vector<std::string> top_keys = kPolicyKeys;
  top_keys.push_back("budget");
  top_keys.push_back("targets");
  if (!checkKeys(settings, "", top_keys, error)) return std::nullopt;

  RetryConfig config;
  config.policy.rules = defaultRules();
  if (!applyPolicy(settings, "", config.policy, error)) return std::nullopt;
  if (settings.contains("budget") && !parseBudget(settings["budget"], config.budget, error)) {
    return std::nullopt;
  }
  if (settings.contains("targets")) {
    const nlohmann::json& targets = settings["targets"];
    if (!targets.is_object()) {
      error = "targets must map target names to settings, e.g. {primary: {max_attempts: 6}}";
      return std::nullopt;
    }
    for (const auto& [name, overrides] : targets.items()) {
      std::string where = "targets." + name + ".";
      if (!checkKeys(overrides, where, kPolicyKeys, error)) return std::nullopt;
      Policy policy = config.policy;
      if (!applyPolicy(overrides, where, policy, error)) return std::nullopt;
      config.targets.emplace(name, std::move(policy));
    }
  }
  return config;
}

}  // namespace hfchain::plugins::retry
