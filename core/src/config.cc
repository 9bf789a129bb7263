// Parsing and validation of the YAML configuration.
#include "hfchain/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace hfchain {
namespace {

// Collects issues while walking one document, each with the position of the node at fault.
class Reader {
 public:
  Reader(std::string file, std::vector<ConfigIssue>& issues)
      : file_(std::move(file)), issues_(issues) {}

  void report(const YAML::Node& node, std::string message) {
    ConfigIssue issue;
    issue.file = file_;
    if (node.IsDefined()) {
      issue.line = node.Mark().line + 1;
      issue.column = node.Mark().column + 1;
    }
    issue.message = std::move(message);
    issues_.push_back(std::move(issue));
  }
  void reportAt(int line, int column, std::string message) {
    issues_.push_back(ConfigIssue{file_, line, column, std::move(message)});
  }

  // Reports every key of `map` that is not in `known`, with the list of keys that are.
  void checkKeys(const YAML::Node& map, const std::set<std::string>& known,
                 const std::string& where) {
    for (const auto& entry : map) {
      std::string key = entry.first.Scalar();
      if (known.count(key) != 0) continue;
      std::string allowed;
      for (const auto& name : known) allowed += (allowed.empty() ? "" : ", ") + name;
      report(entry.first,
             "unknown key '" + key + "' in " + where + "; expected one of: " + allowed);
    }
  }

  bool expectMap(const YAML::Node& node, const std::string& what) {
    if (node.IsMap()) return true;
    report(node, what + " must be a mapping of keys to values");
    return false;
  }

  // Returns the scalar with ${env:...} and ${file:...} expanded, or nullopt after reporting.
  std::optional<std::string> string(const YAML::Node& node, const std::string& what) {
    if (!node.IsScalar()) {
      report(node, what + " must be a string");
      return std::nullopt;
    }
    return expand(node, node.Scalar(), what);
  }

  std::optional<int64_t> integer(const YAML::Node& node, const std::string& what,
                                 int64_t min_value) {
    if (!node.IsScalar()) {
      report(node, what + " must be a whole number");
      return std::nullopt;
    }
    try {
      size_t used = 0;
      int64_t value = std::stoll(node.Scalar(), &used);
      if (used == node.Scalar().size()) {
        if (value < min_value) {
          report(node, what + " is " + node.Scalar() + " but must be at least " +
                           std::to_string(min_value));
          return std::nullopt;
        }
        return value;
      }
    } catch (const std::exception&) {
    }
    report(node, what + " must be a whole number, not '" + node.Scalar() + "'");
    return std::nullopt;
  }

  std::optional<bool> boolean(const YAML::Node& node, const std::string& what) {
    if (node.IsScalar()) {
      const std::string& text = node.Scalar();
      if (text == "true" || text == "yes" || text == "on") return true;
      if (text == "false" || text == "no" || text == "off") return false;
    }
    report(node, what + " must be true or false");
    return std::nullopt;
  }

  std::optional<std::string> expand(const YAML::Node& node, const std::string& text,
                                    const std::string& what) {
    static const std::regex kReference(R"(\$\{(env|file):([^}:]*)(:-([^}]*))?\})");
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), kReference);
    size_t last = 0;
    bool failed = false;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const std::smatch& match = *it;
      out.append(text, last, static_cast<size_t>(match.position()) - last);
      last = static_cast<size_t>(match.position() + match.length());
      std::string kind = match[1];
      std::string name = match[2];
      bool has_default = match[3].matched;
      if (kind == "env") {
        const char* value = std::getenv(name.c_str());
        if (value != nullptr) {
          out += value;
        } else if (has_default) {
          out += match[4].str();
        } else {
          report(node, what + " uses environment variable " + name +
                           ", which is not set; set it, or write ${env:" + name +
                           ":-} to allow an empty value");
          failed = true;
        }
      } else {
        std::ifstream file(name, std::ios::binary);
        if (!file) {
          report(node, what + " reads file " + name + ", which cannot be opened");
          failed = true;
          continue;
        }
        std::stringstream content;
        content << file.rdbuf();
        std::string value = content.str();
        while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
        out += value;
      }
    }
    out.append(text, last, std::string::npos);
    if (failed) return std::nullopt;
    return out;
  }

  // Converts a settings subtree to JSON, expanding references in strings. Plain scalars
  // that look like booleans, numbers or null become those; quoted scalars stay strings.
  nlohmann::json toJson(const YAML::Node& node, const std::string& what) {
    switch (node.Type()) {
      case YAML::NodeType::Null:
      case YAML::NodeType::Undefined:
        return nullptr;
      case YAML::NodeType::Sequence: {
        nlohmann::json array = nlohmann::json::array();
        for (const auto& item : node) array.push_back(toJson(item, what));
        return array;
      }
      case YAML::NodeType::Map: {
        nlohmann::json object = nlohmann::json::object();
        for (const auto& entry : node) object[entry.first.Scalar()] = toJson(entry.second, what);
        return object;
      }
      case YAML::NodeType::Scalar:
        break;
    }
    const std::string& text = node.Scalar();
    if (node.Tag() != "!") {
      if (text == "true" || text == "false") return text == "true";
      if (text == "null" || text == "~") return nullptr;
      static const std::regex kInteger(R"([-+]?[0-9]+)");
      static const std::regex kFloat(R"([-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?)");
      if (std::regex_match(text, kInteger)) {
        try {
          return std::stoll(text);
        } catch (const std::exception&) {
        }
      }
      if (std::regex_match(text, kFloat)) return std::stod(text);
    }
    std::optional<std::string> expanded = expand(node, text, what);
    return expanded ? nlohmann::json(*expanded) : nlohmann::json(text);
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::vector<ConfigIssue>& issues_;
};

std::string resolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(base_dir) / path).lexically_normal().string();
}

void readTimeouts(Reader& reader, const YAML::Node& node, const std::string& where, Timeouts& out) {
  if (!reader.expectMap(node, where)) return;
  reader.checkKeys(node, {"connect_ms", "first_byte_ms", "idle_ms", "total_ms"}, where);
  auto read = [&](const char* key, int64_t& field) {
    if (node[key]) {
      if (auto value = reader.integer(node[key], where + "." + key, 1)) field = *value;
    }
  };
  read("connect_ms", out.connect_ms);
  read("first_byte_ms", out.first_byte_ms);
  read("idle_ms", out.idle_ms);
  read("total_ms", out.total_ms);
}

void readTokenCounting(Reader& reader, const YAML::Node& node, const std::string& where,
                       const std::string& base_dir, TargetConfig& target) {
  if (node["tokenizer"]) {
    if (auto path = reader.string(node["tokenizer"], where + ".tokenizer")) {
      target.tokenizer = resolvePath(base_dir, *path);
    }
  }
  if (node["chat_template"]) {
    if (auto path = reader.string(node["chat_template"], where + ".chat_template")) {
      target.chat_template = resolvePath(base_dir, *path);
    }
  }
  if (node["token_counter"]) {
    if (auto text = reader.string(node["token_counter"], where + ".token_counter")) {
      if (*text == "auto") {
        target.token_counter = TokenCounterKind::kAuto;
      } else if (*text == "tokenizer") {
        target.token_counter = TokenCounterKind::kTokenizer;
      } else if (*text == "remote") {
        target.token_counter = TokenCounterKind::kRemote;
      } else if (*text == "estimate") {
        target.token_counter = TokenCounterKind::kEstimate;
      } else {
        reader.report(node["token_counter"], where + ".token_counter is '" + *text +
                                                 "'; expected auto, tokenizer, remote or estimate");
      }
    }
  }
  if (target.token_counter == TokenCounterKind::kTokenizer && target.tokenizer.empty()) {
    reader.report(node, where +
                            " sets token_counter: tokenizer but no tokenizer; add tokenizer: "
                            "PATH/tokenizer.json");
  }
  if (target.token_counter == TokenCounterKind::kRemote && node["protocol"] &&
      node["protocol"].IsScalar() && node["protocol"].Scalar() != "tgi") {
    reader.report(node["token_counter"], where +
                                             ".token_counter is remote, which needs TGI's "
                                             "/tokenize; use it only with protocol: tgi");
  }
}

void readTarget(Reader& reader, const std::string& name, const YAML::Node& node,
                const std::string& base_dir, Config& config) {
  std::string where = "target '" + name + "'";
  if (!reader.expectMap(node, where)) return;
  reader.checkKeys(node,
                   {"protocol", "base_url", "model", "context_window", "token", "token_file",
                    "timeouts", "tls_verify", "ca_file", "max_event_bytes", "headers", "tokenizer",
                    "chat_template", "token_counter"},
                   where);
  TargetConfig target;
  target.name = name;
  if (!node["protocol"]) {
    reader.report(node, where + " has no protocol; add protocol: openai, tgi or hf-serverless");
  } else if (auto text = reader.string(node["protocol"], where + ".protocol")) {
    if (auto protocol = protocolFromName(*text)) {
      target.protocol = *protocol;
    } else {
      reader.report(node["protocol"],
                    where + ".protocol is '" + *text + "'; expected openai, tgi or hf-serverless");
    }
  }
  if (!node["base_url"]) {
    reader.report(node, where +
                            " has no base_url; add the endpoint's URL, e.g. "
                            "https://router.huggingface.co/v1");
  } else if (auto url = reader.string(node["base_url"], where + ".base_url")) {
    if (!url->starts_with("http://") && !url->starts_with("https://")) {
      reader.report(node["base_url"],
                    where + ".base_url is '" + *url + "'; it must start with http:// or https://");
    }
    target.base_url = *url;
  }
  if (node["model"]) {
    if (auto model = reader.string(node["model"], where + ".model")) target.model = *model;
  }
  if (node["context_window"]) {
    if (node["context_window"].IsScalar() && node["context_window"].Scalar() == "auto") {
      target.context_window_auto = true;
    } else if (auto value = reader.integer(node["context_window"], where + ".context_window", 1)) {
      target.context_window = *value;
    }
  }
  readTokenCounting(reader, node, where, base_dir, target);
  if (node["token"] && node["token_file"]) {
    reader.report(node["token_file"], where + " sets both token and token_file; keep one");
  }
  if (node["token"]) {
    if (auto token = reader.string(node["token"], where + ".token")) {
      target.token.value = *token;
      target.token.source = where + ".token";
    }
  } else if (node["token_file"]) {
    if (auto path = reader.string(node["token_file"], where + ".token_file")) {
      std::string resolved = resolvePath(base_dir, *path);
      std::ifstream file(resolved, std::ios::binary);
      if (!file) {
        reader.report(node["token_file"], where + ".token_file " + resolved + " cannot be opened");
      } else {
        std::stringstream content;
        content << file.rdbuf();
        std::string value = content.str();
        while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
          value.pop_back();
        target.token.value = value;
        target.token.source = "file " + resolved;
      }
    }
  }
  if (node["timeouts"])
    readTimeouts(reader, node["timeouts"], where + ".timeouts", target.timeouts);
  if (node["tls_verify"]) {
    if (auto value = reader.boolean(node["tls_verify"], where + ".tls_verify"))
      target.tls_verify = *value;
  }
  if (node["ca_file"]) {
    if (auto path = reader.string(node["ca_file"], where + ".ca_file")) {
      target.ca_file = resolvePath(base_dir, *path);
    }
  }
  if (node["max_event_bytes"]) {
    if (auto value = reader.integer(node["max_event_bytes"], where + ".max_event_bytes", 64)) {
      target.max_event_bytes = static_cast<size_t>(*value);
    }
  }
  if (node["headers"] && reader.expectMap(node["headers"], where + ".headers")) {
    for (const auto& entry : node["headers"]) {
      if (auto value = reader.string(entry.second, where + ".headers." + entry.first.Scalar())) {
        target.headers.add(entry.first.Scalar(), *value);
      }
    }
  }
  config.targets.push_back(std::move(target));
}

void readChain(Reader& reader, const YAML::Node& node, const std::string& base_dir,
               Config& config) {
  if (!node.IsSequence()) {
    reader.report(node, "chain must be a list of links, e.g. - link: auth");
    return;
  }
  for (const auto& entry : node) {
    LinkConfig link;
    link.line = entry.Mark().line + 1;
    link.column = entry.Mark().column + 1;
    if (entry.IsScalar()) {  // the short form "- auth"
      link.type = entry.Scalar();
      config.chain.push_back(std::move(link));
      continue;
    }
    if (!reader.expectMap(entry, "a chain entry")) continue;
    reader.checkKeys(entry, {"link", "plugin", "settings"}, "a chain entry");
    if (!entry["link"]) {
      reader.report(entry, "a chain entry has no link; add link: <type>, e.g. link: auth");
      continue;
    }
    auto type = reader.string(entry["link"], "link");
    if (!type) continue;
    link.type = *type;
    if (entry["plugin"]) {
      if (auto path = reader.string(entry["plugin"], "plugin of link '" + link.type + "'")) {
        link.plugin_file = resolvePath(base_dir, *path);
      }
    }
    if (entry["settings"]) {
      const YAML::Node& settings = entry["settings"];
      if (!settings.IsMap() && !settings.IsNull()) {
        reader.report(settings, "settings of link '" + link.type + "' must be a mapping");
        continue;
      }
      link.settings = reader.toJson(settings, "settings of link '" + link.type + "'");
      if (link.settings.is_null()) link.settings = nlohmann::json::object();
    }
    config.chain.push_back(std::move(link));
  }
}

}  // namespace

std::string ConfigIssue::describe() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  return out + ": " + message;
}

const TargetConfig* Config::findTarget(const std::string& name) const {
  for (const auto& target : targets) {
    if (target.name == name) return &target;
  }
  return nullptr;
}

ParsedConfig parseConfig(const std::string& yaml_text, const std::string& source,
                         const std::string& base_dir) {
  ParsedConfig parsed;
  parsed.config.source = source;
  parsed.config.base_dir = base_dir;
  Reader reader(source, parsed.issues);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    reader.reportAt(e.mark.line + 1, e.mark.column + 1, "invalid YAML: " + e.msg);
    return parsed;
  }
  if (!root.IsMap()) {
    reader.reportAt(1, 1, "the config must be a mapping with targets and chain");
    return parsed;
  }
  Config& config = parsed.config;
  reader.checkKeys(root, {"plugin_path", "default_target", "targets", "chain"}, "the config");
  if (root["plugin_path"]) {
    const YAML::Node& paths = root["plugin_path"];
    if (paths.IsScalar()) {
      if (auto path = reader.string(paths, "plugin_path"))
        config.plugin_path.push_back(resolvePath(base_dir, *path));
    } else if (paths.IsSequence()) {
      for (const auto& item : paths) {
        if (auto path = reader.string(item, "plugin_path entry")) {
          config.plugin_path.push_back(resolvePath(base_dir, *path));
        }
      }
    } else {
      reader.report(paths, "plugin_path must be a folder or a list of folders");
    }
  }
  if (root["targets"]) {
    if (reader.expectMap(root["targets"], "targets")) {
      for (const auto& entry : root["targets"]) {
        readTarget(reader, entry.first.Scalar(), entry.second, base_dir, config);
      }
    }
  }
  if (root["chain"]) readChain(reader, root["chain"], base_dir, config);
  if (root["default_target"]) {
    if (auto name = reader.string(root["default_target"], "default_target")) {
      config.default_target = *name;
      if (config.findTarget(*name) == nullptr) {
        std::string known;
        for (const auto& target : config.targets)
          known += (known.empty() ? "" : ", ") + target.name;
        reader.report(root["default_target"], "default_target '" + *name +
                                                  "' is not defined under targets (defined: " +
                                                  (known.empty() ? "none" : known) + ")");
      }
    }
  } else if (config.targets.size() == 1) {
    config.default_target = config.targets.front().name;
  }
  return parsed;
}

ParsedConfig loadConfigFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    ParsedConfig parsed;
    parsed.config.source = path;
    parsed.issues.push_back(ConfigIssue{path, 0, 0, "cannot open the config file; check the path"});
    return parsed;
  }
  std::stringstream content;
  content << file.rdbuf();
  std::string base_dir = std::filesystem::path(path).parent_path().string();
  return parseConfig(content.str(), path, base_dir.empty() ? "." : base_dir);
}

Error configError(const std::vector<ConfigIssue>& issues) {
  std::string message;
  for (const auto& issue : issues) message += (message.empty() ? "" : "\n") + issue.describe();
  return makeError(ErrorClass::kConfigRejected, message);
}

std::string_view protocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kTgi:
      return "tgi";
    case Protocol::kOpenAi:
      return "openai";
    case Protocol::kHfServerless:
      return "hf-serverless";
  }
  return "openai";
}

std::optional<Protocol> protocolFromName(std::string_view name) {
  if (name == "tgi") return Protocol::kTgi;
  if (name == "openai") return Protocol::kOpenAi;
  if (name == "hf-serverless") return Protocol::kHfServerless;
  return std::nullopt;
}

}  // namespace hfchain
