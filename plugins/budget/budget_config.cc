// Parsing of the budget link's settings. Every message names the key, the value and what is
// allowed, because `hfchain check` shows it to the policy's author.
#include "budget_config.h"

#include <filesystem>
#include <initializer_list>
#include <set>
#include <system_error>

namespace hfchain::plugins::budget {
namespace {

constexpr int64_t kMaxTokens = 100'000'000;
constexpr int64_t kMaxWindowSeconds = 366LL * 86400;

bool checkKeys(const nlohmann::json& object, const std::string& where,
               std::initializer_list<const char*> known, std::string& error) {
  if (!object.is_object()) {
    error =
        (where.empty() ? std::string("settings") : where) + " must be a map, got " + object.dump();
    return false;
  }
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (const char* name : known) found = found || key == name;
    if (found) continue;
    std::string names;
    for (const char* name : known) names += std::string(names.empty() ? "" : ", ") + name;
    error = "unknown setting '" + where + key + "'; expected one of " + names;
    return false;
  }
  return true;
}

bool readInt(const nlohmann::json& object, const char* key, const std::string& where, int64_t min,
             int64_t max, int64_t& out, std::string& error) {
  if (!object.contains(key)) return true;
  const nlohmann::json& value = object[key];
  if (!value.is_number_integer() || value.get<int64_t>() < min || value.get<int64_t>() > max) {
    error = where + key + " must be an integer from " + std::to_string(min) + " to " +
            std::to_string(max) + ", got " + value.dump();
    return false;
  }
  out = value.get<int64_t>();
  return true;
}

bool readBool(const nlohmann::json& object, const char* key, const std::string& where, bool& out,
              std::string& error) {
  if (!object.contains(key)) return true;
  if (!object[key].is_boolean()) {
    error = where + key + " must be true or false, got " + object[key].dump();
    return false;
  }
  out = object[key].get<bool>();
  return true;
}

bool readString(const nlohmann::json& object, const char* key, const std::string& where,
                std::string& out, std::string& error) {
  if (!object.contains(key)) return true;
  if (!object[key].is_string() || object[key].get<std::string>().empty()) {
    error = where + key + " must be a non-empty string, got " + object[key].dump();
    return false;
  }
  out = object[key].get<std::string>();
  return true;
}

bool readOverflowPolicy(const nlohmann::json& object, const std::string& where, OverflowPolicy& out,
                        std::string& error) {
  if (!object.contains("on_context_overflow")) return true;
  const nlohmann::json& value = object["on_context_overflow"];
  for (OverflowPolicy policy : {OverflowPolicy::kReject, OverflowPolicy::kClamp,
                                OverflowPolicy::kTruncate, OverflowPolicy::kFallback}) {
    if (value == overflowPolicyName(policy)) {
      out = policy;
      return true;
    }
  }
  error = where + "on_context_overflow must be reject, clamp, truncate or fallback, got " +
          value.dump();
  return false;
}

bool readOutputCount(const nlohmann::json& object, const std::string& where, OutputCount& out,
                     std::string& error) {
  if (!object.contains("output_count")) return true;
  const nlohmann::json& value = object["output_count"];
  if (value == "auto") {
    out = OutputCount::kAuto;
  } else if (value == "events") {
    out = OutputCount::kEvents;
  } else if (value == "text") {
    out = OutputCount::kText;
  } else {
    error = where + "output_count must be auto, events or text, got " + value.dump();
    return false;
  }
  return true;
}

// Reads the keys a target may override into `policy`, which starts as the link-wide values.
bool readPolicy(const nlohmann::json& object, const std::string& where, TargetPolicy& policy,
                std::string& error) {
  return readOverflowPolicy(object, where, policy.on_context_overflow, error) &&
         readInt(object, "min_new_tokens", where, 1, kMaxTokens, policy.min_new_tokens, error) &&
         readInt(object, "default_max_new_tokens", where, 0, kMaxTokens,
                 policy.default_max_new_tokens, error) &&
         readInt(object, "max_output_tokens", where, 0, kMaxTokens, policy.max_output_tokens,
                 error) &&
         readBool(object, "enforce_max_output_tokens", where, policy.enforce_max_output_tokens,
                  error) &&
         readOutputCount(object, where, policy.output_count, error);
}

bool readRule(const nlohmann::json& value, const std::string& where, BudgetRule& rule,
              std::string& error) {
  if (!checkKeys(value, where, {"name", "scope", "limit_tokens", "window_seconds"}, error)) {
    return false;
  }
  if (!value.contains("name")) {
    error = where + "name is missing; give every budget a unique name such as daily-per-key";
    return false;
  }
  if (!readString(value, "name", where, rule.name, error)) return false;
  if (value.contains("scope")) {
    const nlohmann::json& scope = value["scope"];
    if (scope == "global") {
      rule.scope = Scope::kGlobal;
    } else if (scope == "tenant") {
      rule.scope = Scope::kTenant;
    } else if (scope == "key") {
      rule.scope = Scope::kKey;
    } else {
      error = where + "scope must be global, tenant or key, got " + scope.dump();
      return false;
    }
  }
  if (!value.contains("limit_tokens")) {
    error = where + "limit_tokens is missing; expected the tokens allowed per window";
    return false;
  }
  return readInt(value, "limit_tokens", where, 1, 1'000'000'000'000LL, rule.limit_tokens, error) &&
         readInt(value, "window_seconds", where, 1, kMaxWindowSeconds, rule.window_seconds, error);
}

bool readBudgets(const nlohmann::json& settings, BudgetConfig& config, std::string& error) {
  if (!settings.contains("budgets")) return true;
  const nlohmann::json& budgets = settings["budgets"];
  if (!budgets.is_array()) {
    error =
        "budgets must be a list such as [{name: daily, scope: key, limit_tokens: 100000}], "
        "got " +
        budgets.dump();
    return false;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < budgets.size(); ++i) {
    BudgetRule rule;
    if (!readRule(budgets[i], "budgets[" + std::to_string(i) + "].", rule, error)) return false;
    if (!names.insert(rule.name).second) {
      error = "budgets[" + std::to_string(i) + "].name \"" + rule.name +
              "\" is used by an earlier budget; names must be unique";
      return false;
    }
    config.budgets.push_back(std::move(rule));
  }
  return true;
}

bool readTargets(const nlohmann::json& settings, BudgetConfig& config, std::string& error) {
  if (!settings.contains("targets")) return true;
  const nlohmann::json& targets = settings["targets"];
  if (!targets.is_object()) {
    error = "targets must be a map of target name to overrides, got " + targets.dump();
    return false;
  }
  for (const auto& [name, value] : targets.items()) {
    const std::string where = "targets." + name + ".";
    if (!checkKeys(
            value, where,
            {"on_context_overflow", "min_new_tokens", "default_max_new_tokens", "max_output_tokens",
             "enforce_max_output_tokens", "output_count", "context_window"},
            error)) {
      return false;
    }
    TargetPolicy policy = config.defaults;
    if (!readPolicy(value, where, policy, error) ||
        !readInt(value, "context_window", where, 1, kMaxTokens, policy.context_window, error)) {
      return false;
    }
    config.targets[name] = policy;
  }
  return true;
}

// Rejects combinations of values that no request can satisfy. `where` starts the message,
// e.g. "targets.chat: ", because a target's values may be inherited from the link's.
bool checkPolicyLimits(const TargetPolicy& policy, const std::string& where, std::string& error) {
  const std::string min_new = where + "min_new_tokens " + std::to_string(policy.min_new_tokens);
  if (policy.default_max_new_tokens > 0 && policy.min_new_tokens > policy.default_max_new_tokens) {
    error = min_new + " exceeds default_max_new_tokens " +
            std::to_string(policy.default_max_new_tokens) +
            ", so every request without max_new_tokens would be rejected; lower min_new_tokens "
            "or raise default_max_new_tokens";
    return false;
  }
  if (policy.max_output_tokens > 0 && policy.min_new_tokens > policy.max_output_tokens) {
    error = min_new + " exceeds max_output_tokens " + std::to_string(policy.max_output_tokens) +
            "; lower min_new_tokens or raise max_output_tokens";
    return false;
  }
  if (policy.context_window > 0 && policy.min_new_tokens > policy.context_window) {
    error = min_new + " exceeds context_window " + std::to_string(policy.context_window) +
            ", so no request fits the window; lower min_new_tokens or raise context_window";
    return false;
  }
  return true;
}

// Returns whether `a` and `b` name one file, comparing the paths with symbolic links, "."
// and ".." resolved as far as they exist.
bool samePath(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  if (a == b) return true;
  std::error_code error_a;
  std::error_code error_b;
  const std::filesystem::path canonical_a = std::filesystem::weakly_canonical(a, error_a);
  const std::filesystem::path canonical_b = std::filesystem::weakly_canonical(b, error_b);
  if (error_a || error_b) {
    return std::filesystem::path(a).lexically_normal() ==
           std::filesystem::path(b).lexically_normal();
  }
  return canonical_a == canonical_b;
}

}  // namespace

const char* overflowPolicyName(OverflowPolicy policy) {
  switch (policy) {
    case OverflowPolicy::kReject:
      return "reject";
    case OverflowPolicy::kClamp:
      return "clamp";
    case OverflowPolicy::kTruncate:
      return "truncate";
    case OverflowPolicy::kFallback:
      return "fallback";
  }
  return "reject";
}

const TargetPolicy& BudgetConfig::policyFor(const std::string& name) const {
  auto it = targets.find(name);
  return it == targets.end() ? defaults : it->second;
}

// Checks that `path`, the value of setting `key`, can name a file the link writes: it is not
// a directory or other special file, and its folder exists.
bool checkWritablePath(const std::string& key, const std::string& path, std::string& error) {
  if (path.empty()) return true;
  namespace fs = std::filesystem;
  std::error_code code;
  const fs::file_status status = fs::status(path, code);
  if (fs::exists(status) && !fs::is_regular_file(status)) {
    error = key + " \"" + path + "\" is not a regular file; set " + key +
            " to the path of a file, for example \"" + (fs::path(path) / "budget.json").string() +
            "\"";
    return false;
  }
  const fs::path folder = fs::path(path).parent_path();
  if (!folder.empty() && !fs::is_directory(folder, code)) {
    error = key + " \"" + path + "\": the folder \"" + folder.string() +
            "\" does not exist; create it or choose another path";
    return false;
  }
  return true;
}

std::unique_ptr<BudgetConfig> parseBudgetConfig(const nlohmann::json& settings,
                                                std::string& error) {
  if (!checkKeys(settings, "",
                 {"on_context_overflow", "min_new_tokens", "default_max_new_tokens",
                  "max_output_tokens", "enforce_max_output_tokens", "output_count", "targets",
                  "budgets", "state_file", "audit_file", "prices", "prices_file"},
                 error)) {
    return nullptr;
  }
  auto config = std::make_unique<BudgetConfig>();
  // Targets are read after the link-wide values, so that an override starts from them.
  // `prices` and `prices_file` are validated by PriceTable::fromSettings.
  bool ok = readPolicy(settings, "", config->defaults, error) &&
            readTargets(settings, *config, error) && readBudgets(settings, *config, error) &&
            readString(settings, "state_file", "", config->state_file, error) &&
            readString(settings, "audit_file", "", config->audit_file, error);
  if (!ok) return nullptr;
  if (!config->state_file.empty() && config->budgets.empty()) {
    error = "state_file is set but budgets is empty; add a budget or remove state_file";
    return nullptr;
  }
  if (!checkWritablePath("state_file", config->state_file, error) ||
      !checkWritablePath("audit_file", config->audit_file, error)) {
    return nullptr;
  }
  if (!checkPolicyLimits(config->defaults, "", error)) return nullptr;
  for (const auto& [name, policy] : config->targets) {
    if (!checkPolicyLimits(policy, "targets." + name + ": ", error)) return nullptr;
  }
  if (!config->state_file.empty() && samePath(config->state_file, config->audit_file)) {
    error = "state_file \"" + config->state_file + "\" and audit_file \"" + config->audit_file +
            "\" name the same file, and the audit lines would corrupt the budget state; give "
            "them different paths";
    return nullptr;
  }
  return config;
}

}  // namespace hfchain::plugins::budget
