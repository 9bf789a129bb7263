// The YAML configuration: targets, the chain of links, and where plugins are found.
//
//   plugin_path: [/opt/hfchain/plugins]
//   default_target: router
//   targets:
//     router:
//       protocol: openai            # openai | tgi | hf-serverless
//       base_url: https://router.huggingface.co/v1
//       model: HuggingFaceTB/SmolLM3-3B
//       context_window: 65536
//       token: ${env:HF_TOKEN}      # or token_file: /run/secrets/hf
//   chain:
//     - link: auth
//       settings: {token: "${env:HF_TOKEN:-}"}
//
// See docs/config.md for every key.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hfchain/result.h"
#include "hfchain/target.h"

namespace hfchain {

// A problem found in a config file, with its position (1-based; 0 when unknown).
struct ConfigIssue {
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;

  // Renders "file:line:column: message", the form editors and CI logs link to.
  std::string describe() const;
};

struct LinkConfig {
  std::string type;         // the link type, e.g. "auth"
  std::string plugin_file;  // an explicit plugin file; empty: found on the search path
  nlohmann::json settings = nlohmann::json::object();
  int line = 0;  // where the entry starts, for errors found later
  int column = 0;
};

struct Config {
  std::string source;    // file path, or a label such as "<built-in default>"
  std::string base_dir;  // relative paths in the file are resolved against this folder
  std::vector<std::string> plugin_path;
  std::vector<TargetConfig> targets;
  std::string default_target;
  std::vector<LinkConfig> chain;

  const TargetConfig* findTarget(const std::string& name) const;
};

// Parses YAML text. Every problem found is returned, not only the first; a config with
// problems is not usable. `${env:NAME}` and `${env:NAME:-default}` in string values are
// replaced by the environment variable; `${file:PATH}` by the file's content without the
// trailing newline.
struct ParsedConfig {
  Config config;
  std::vector<ConfigIssue> issues;
  bool ok() const { return issues.empty(); }
};
ParsedConfig parseConfig(const std::string& yaml_text, const std::string& source,
                         const std::string& base_dir = ".");
ParsedConfig loadConfigFile(const std::string& path);

// The built-in default configuration, used when no --config is given.
const std::string& defaultConfigYaml();

// Joins issues into one Error of class kConfigRejected, one issue a line.
Error configError(const std::vector<ConfigIssue>& issues);

}  // namespace hfchain
