// Parsing and validation of the fallback link's settings.
#include "fallback_config.h"

#include <algorithm>
#include <optional>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::fallback {
namespace {

namespace sdk = hfchain::sdk;

constexpr int64_t kMaxMs = int64_t{24} * 60 * 60 * 1000;  // one day
constexpr int64_t kMaxEntries = 10'000'000;

std::optional<int> classFromName(const std::string& name) {
  for (int value = HFC_ERROR_NONE + 1; value <= HFC_ERROR_INTERNAL; ++value) {
    if (name == sdk::errorClassName(static_cast<sdk::ErrorClass>(value))) return value;
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

bool readNumber(const nlohmann::json& object, const std::string& key, const std::string& where,
                double low, double high, double& out, std::string& error) {
  if (!object.contains(key)) return true;
  const nlohmann::json& value = object[key];
  if (!value.is_number() || value.get<double>() < low || value.get<double>() > high) {
    error = where + key + " is " + value.dump() + "; expected a number from " +
            nlohmann::json(low).dump() + " to " + nlohmann::json(high).dump();
    return false;
  }
  out = value.get<double>();
  return true;
}

bool readString(const nlohmann::json& object, const std::string& key, const std::string& where,
                std::string& out, std::string& error) {
  if (!object.contains(key)) return true;
  if (!object[key].is_string()) {
    error = where + key + " is " + object[key].dump() + "; expected a string";
    return false;
  }
  out = object[key].get<std::string>();
  return true;
}

// Reads a value that may be one item or a list of items.
nlohmann::json asList(const nlohmann::json& value) {
  return value.is_array() ? value : nlohmann::json::array({value});
}

bool parseStatus(const nlohmann::json& item, const std::string& where, Triggers& on,
                 std::string& error) {
  std::string text = item.is_string() ? item.get<std::string>() : "";
  if (text.size() == 3 && text[0] >= '1' && text[0] <= '5' && (text[1] == 'x' || text[1] == 'X') &&
      (text[2] == 'x' || text[2] == 'X')) {
    on.status_classes.set(static_cast<size_t>(text[0] - '0'));
    return true;
  }
  int64_t code = -1;
  if (item.is_number_integer()) {
    code = item.get<int64_t>();
  } else if (!text.empty() && std::all_of(text.begin(), text.end(), ::isdigit) &&
             text.size() <= 3) {
    code = std::stoi(text);
  }
  if (code < 100 || code > 599) {
    error = where + "status has " + item.dump() +
            "; expected an HTTP status from 100 to 599 or a class such as \"5xx\"";
    return false;
  }
  on.statuses.insert(static_cast<int>(code));
  return true;
}

bool parseTriggers(const nlohmann::json& value, const std::string& where, Triggers& on,
                   std::string& error) {
  if (!checkKeys(value, where, {"status", "class", "timeout_ms"}, error)) return false;
  on = Triggers{};
  if (value.contains("status")) {
    for (const nlohmann::json& item : asList(value["status"])) {
      if (!parseStatus(item, where, on, error)) return false;
    }
  }
  if (value.contains("class")) {
    for (const nlohmann::json& item : asList(value["class"])) {
      std::optional<int> error_class =
          item.is_string() ? classFromName(item.get<std::string>()) : std::nullopt;
      if (!error_class) {
        error = where + "class has " + item.dump() + "; expected one of " + allClassNames();
        return false;
      }
      on.error_classes.set(static_cast<size_t>(*error_class));
    }
  }
  return readInteger(value, "timeout_ms", where, 1, kMaxMs, on.timeout_ms, error);
}

bool parseTier(const nlohmann::json& value, const std::string& where, TierConfig& tier,
               std::string& error) {
  if (!checkKeys(value, where,
                 {"name", "targets", "model", "on", "hedge", "links", "cache", "local"}, error)) {
    return false;
  }
  if (!value.contains("name") || !value["name"].is_string() ||
      value["name"].get<std::string>().empty()) {
    error = where + "name is " + (value.contains("name") ? value["name"].dump() : "missing") +
            "; expected a non-empty string naming the tier";
    return false;
  }
  tier.name = value["name"].get<std::string>();
  const bool has_targets = value.contains("targets");
  const bool has_cache = value.contains("cache");
  const bool has_local = value.contains("local");
  if (int(has_targets) + int(has_cache) + int(has_local) > 1) {
    error = where + "has more than one of targets, cache and local; a tier is one of them";
    return false;
  }
  if (has_targets) {
    const nlohmann::json& targets = asList(value["targets"]);
    for (const nlohmann::json& target : targets) {
      if (!target.is_string() || target.get<std::string>().empty()) {
        error = where + "targets has " + target.dump() + "; expected target names";
        return false;
      }
      tier.targets.push_back(target.get<std::string>());
    }
    if (tier.targets.empty()) {
      error = where + "targets is empty; name at least one target or leave the key out";
      return false;
    }
  }
  tier.kind = has_cache     ? TierKind::kCache
              : has_local   ? TierKind::kLocal
              : has_targets ? TierKind::kTargets
                            : TierKind::kPassThrough;
  const bool calls_chain = tier.kind == TierKind::kTargets || tier.kind == TierKind::kPassThrough;
  for (const char* key : {"model", "on", "hedge", "links"}) {
    if (!calls_chain && value.contains(key)) {
      error = where + key + " is set on a " + (has_cache ? "cache" : "local") +
              " tier, which sends nothing upstream; remove it";
      return false;
    }
  }
  if (!readString(value, "model", where, tier.model, error)) return false;
  tier.on = defaultTriggers();
  if (value.contains("on") && !parseTriggers(value["on"], where + "on.", tier.on, error)) {
    return false;
  }
  if (value.contains("hedge")) {
    const nlohmann::json& hedge = value["hedge"];
    if (!checkKeys(hedge, where + "hedge.", {"after_ms"}, error)) return false;
    if (!hedge.contains("after_ms")) {
      error = where + "hedge.after_ms is missing; expected milliseconds without a first event";
      return false;
    }
    if (!readInteger(hedge, "after_ms", where + "hedge.", 0, kMaxMs, tier.hedge_after_ms, error)) {
      return false;
    }
    if (tier.targets.size() < 2) {
      error = where + "hedge needs at least two targets in the tier, to send the hedge to";
      return false;
    }
  }
  if (value.contains("links")) {
    if (!value["links"].is_array()) {
      error = where + "links is " + value["links"].dump() +
              "; expected a list of links such as [{link: auth, settings: {...}}]";
      return false;
    }
    tier.links = value["links"];
  }
  if (has_cache) {
    const nlohmann::json& cache =
        value["cache"].is_null() ? nlohmann::json::object() : value["cache"];
    if (!checkKeys(cache, where + "cache.", {"max_entries", "ttl_ms"}, error)) return false;
    int64_t max_entries = static_cast<int64_t>(tier.cache.max_entries);
    if (!readInteger(cache, "max_entries", where + "cache.", 1, kMaxEntries, max_entries, error) ||
        !readInteger(cache, "ttl_ms", where + "cache.", 1, kMaxMs * 30, tier.cache.ttl_ms, error)) {
      return false;
    }
    tier.cache.max_entries = static_cast<size_t>(max_entries);
  }
  if (has_local) {
    const nlohmann::json& local = value["local"];
    if (!checkKeys(local, where + "local.", {"answer"}, error)) return false;
    if (!local.contains("answer") || !local["answer"].is_string()) {
      error = where + "local.answer is " +
              (local.contains("answer") ? local["answer"].dump() : std::string("missing")) +
              "; expected the answer text";
      return false;
    }
    tier.local_answer = local["answer"].get<std::string>();
  }
  return true;
}

}  // namespace

bool Triggers::matches(int http_status, int error_class) const {
  if (http_status > 0) {
    if (statuses.count(http_status) != 0) return true;
    size_t hundreds = static_cast<size_t>(http_status / 100);
    if (hundreds < status_classes.size() && status_classes.test(hundreds)) return true;
  }
  if (error_class == HFC_ERROR_TIMEOUT && timeout_ms > 0) return true;
  return error_class > 0 && static_cast<size_t>(error_class) < error_classes.size() &&
         error_classes.test(static_cast<size_t>(error_class));
}

Triggers defaultTriggers() {
  Triggers on;
  on.status_classes.set(5);
  on.statuses.insert(429);
  for (int error_class :
       {HFC_ERROR_TIMEOUT, HFC_ERROR_CONNECT_FAILED, HFC_ERROR_CONNECTION_RESET,
        HFC_ERROR_CIRCUIT_OPEN, HFC_ERROR_MODEL_LOADING, HFC_ERROR_UPSTREAM_5XX,
        HFC_ERROR_RATE_LIMITED, HFC_ERROR_STREAM_INCOMPLETE, HFC_ERROR_STREAM_PARSE}) {
    on.error_classes.set(static_cast<size_t>(error_class));
  }
  return on;
}

std::unique_ptr<FallbackConfig> parseFallbackConfig(const nlohmann::json& settings,
                                                    std::string& error) {
  if (!checkKeys(settings, "", {"tiers", "health", "hedge_budget", "on_broken_stream", "resume"},
                 error)) {
    return nullptr;
  }
  auto config = std::make_unique<FallbackConfig>();
  if (!settings.contains("tiers") || !settings["tiers"].is_array() || settings["tiers"].empty()) {
    error = "tiers is " + (settings.contains("tiers") ? settings["tiers"].dump() : "missing") +
            "; expected a non-empty list of tiers such as [{name: main, targets: [a, b]}]";
    return nullptr;
  }
  bool has_cache = false;
  for (size_t i = 0; i < settings["tiers"].size(); ++i) {
    TierConfig tier;
    std::string where = "tiers[" + std::to_string(i) + "].";
    if (!parseTier(settings["tiers"][i], where, tier, error)) return nullptr;
    for (const TierConfig& earlier : config->tiers) {
      if (earlier.name == tier.name) {
        error = where + "name '" + tier.name + "' is used by an earlier tier; names must differ";
        return nullptr;
      }
    }
    if (tier.kind == TierKind::kCache) {
      if (has_cache) {
        error = where + "cache: only one cache tier is allowed";
        return nullptr;
      }
      has_cache = true;
    }
    config->tiers.push_back(std::move(tier));
  }

  if (settings.contains("health")) {
    const nlohmann::json& health = settings["health"];
    HealthSettings& out = config->health;
    if (!checkKeys(health, "health.", {"latency_weight", "error_weight", "alpha"}, error) ||
        !readNumber(health, "latency_weight", "health.", 0, 1e6, out.latency_weight, error) ||
        !readNumber(health, "error_weight", "health.", 0, 1e6, out.error_weight, error) ||
        !readNumber(health, "alpha", "health.", 0.001, 1, out.alpha, error)) {
      return nullptr;
    }
  }
  if (settings.contains("hedge_budget")) {
    const nlohmann::json& budget = settings["hedge_budget"];
    BudgetSettings& out = config->hedge_budget;
    if (!checkKeys(budget, "hedge_budget.", {"ratio", "window_ms", "min_per_window"}, error) ||
        !readNumber(budget, "ratio", "hedge_budget.", 0, 100, out.ratio, error) ||
        !readInteger(budget, "window_ms", "hedge_budget.", 1, kMaxMs, out.window_ms, error) ||
        !readInteger(budget, "min_per_window", "hedge_budget.", 0, 1'000'000, out.min_per_window,
                     error)) {
      return nullptr;
    }
  }
  if (settings.contains("on_broken_stream")) {
    const nlohmann::json& policy = settings["on_broken_stream"];
    if (policy == "error") {
      config->on_broken_stream = BrokenStreamPolicy::kError;
    } else if (policy == "resume") {
      config->on_broken_stream = BrokenStreamPolicy::kResume;
    } else {
      error = "on_broken_stream is " + policy.dump() + "; expected error or resume";
      return nullptr;
    }
  }
  if (settings.contains("resume")) {
    const nlohmann::json& resume = settings["resume"];
    int64_t overlap = static_cast<int64_t>(config->resume.min_overlap_chars);
    if (!checkKeys(resume, "resume.", {"chat_prompt", "min_overlap_chars"}, error) ||
        !readString(resume, "chat_prompt", "resume.", config->resume.chat_prompt, error) ||
        !readInteger(resume, "min_overlap_chars", "resume.", 1, 100'000, overlap, error)) {
      return nullptr;
    }
    config->resume.min_overlap_chars = static_cast<size_t>(overlap);
  }
  return config;
}

}  // namespace hfchain::plugins::fallback
