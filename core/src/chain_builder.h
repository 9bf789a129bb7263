// Building link instances from config entries, for the top-level chain and for the nested
// chains that plugins ask the host to build.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hfchain/config.h"
#include "hfchain/link.h"
#include "hfchain/plugin.h"

namespace hfchain::internal {

// Makes a registry and plugin path available to nested chain builds on this thread while a
// chain is being built. Scopes nest.
class BuildScope {
 public:
  BuildScope(PluginRegistry& registry, const std::vector<std::string>& plugin_path);
  ~BuildScope();
  BuildScope(const BuildScope&) = delete;
  BuildScope& operator=(const BuildScope&) = delete;

 private:
  BuildScope* previous_;
  friend struct BuildAccess;

 public:
  PluginRegistry& registry;
  const std::vector<std::string>& plugin_path;
};

// Returns the innermost scope on this thread, or null outside a build.
BuildScope* currentBuildScope();

// Builds each entry of `links`; problems are appended to `issues` with the entry's position.
std::vector<LinkPtr> buildLinks(const std::vector<LinkConfig>& links, const std::string& source,
                                std::vector<ConfigIssue>& issues);

// Parses a JSON array of chain entries ("auth" or {"link", "plugin", "settings"}) and builds
// it in the current scope. Returns an error message, empty on success.
std::string buildLinksFromJson(const nlohmann::json& entries, std::vector<LinkPtr>& out);

// A nested chain: its links, then the outer chain's rest.
class NestedChain {
 public:
  explicit NestedChain(std::vector<LinkPtr> links) : links_(std::move(links)) {}
  Response call(Next& outer, Request& request) const;

 private:
  std::vector<LinkPtr> links_;
};

}  // namespace hfchain::internal
