// Link construction shared by chain snapshots and nested chains.
#include "chain_builder.h"

namespace hfchain::internal {
namespace {

thread_local BuildScope* current_scope = nullptr;

// Walks the nested links, then hands over to the outer chain's rest.
class NestedNext : public Next {
 public:
  NestedNext(const std::vector<LinkPtr>& links, size_t index, Next& outer)
      : links_(links), index_(index), outer_(outer) {}

  Response call(Request& request) override {
    if (index_ >= links_.size()) return outer_.call(request);
    NestedNext rest(links_, index_ + 1, outer_);
    return links_[index_]->roundTrip(request, rest);
  }

  std::unique_ptr<Next> clone() const override {
    // The clone owns a clone of the outer rest, which keeps the snapshot (and with it the
    // link holding this nested chain) alive.
    auto owned_outer = outer_.clone();
    auto copy = std::make_unique<OwningNestedNext>(links_, index_, std::move(owned_outer));
    return copy;
  }

  const TargetConfig* findTarget(const std::string& name) const override {
    return outer_.findTarget(name);
  }
  const TokenCounter* tokenCounter(const std::string& name) const override {
    return outer_.tokenCounter(name);
  }
  int64_t contextWindow(const std::string& name, const std::string& request_id) const override {
    return outer_.contextWindow(name, request_id);
  }

 private:
  class OwningNestedNext : public Next {
   public:
    OwningNestedNext(const std::vector<LinkPtr>& links, size_t index, std::unique_ptr<Next> outer)
        : links_(links), index_(index), outer_(std::move(outer)) {}
    Response call(Request& request) override {
      NestedNext walker(links_, index_, *outer_);
      return walker.call(request);
    }
    std::unique_ptr<Next> clone() const override {
      return std::make_unique<OwningNestedNext>(links_, index_, outer_->clone());
    }
    const TargetConfig* findTarget(const std::string& name) const override {
      return outer_->findTarget(name);
    }
    const TokenCounter* tokenCounter(const std::string& name) const override {
      return outer_->tokenCounter(name);
    }
    int64_t contextWindow(const std::string& name, const std::string& request_id) const override {
      return outer_->contextWindow(name, request_id);
    }

   private:
    std::vector<LinkPtr> links_;  // shared pointers: the clone keeps the links alive
    size_t index_;
    std::unique_ptr<Next> outer_;
  };

  const std::vector<LinkPtr>& links_;
  size_t index_;
  Next& outer_;
};

}  // namespace

BuildScope::BuildScope(PluginRegistry& registry_in, const std::vector<std::string>& plugin_path_in)
    : previous_(current_scope), registry(registry_in), plugin_path(plugin_path_in) {
  current_scope = this;
}

BuildScope::~BuildScope() { current_scope = previous_; }

BuildScope* currentBuildScope() { return current_scope; }

std::vector<LinkPtr> buildLinks(const std::vector<LinkConfig>& links, const std::string& source,
                                std::vector<ConfigIssue>& issues) {
  std::vector<LinkPtr> built;
  BuildScope* scope = currentBuildScope();
  if (scope == nullptr) {
    issues.push_back({source, 0, 0, "internal error: links built outside a build scope"});
    return built;
  }
  for (const LinkConfig& link : links) {
    Result<PluginLibraryPtr> library =
        link.plugin_file.empty() ? scope->registry.findLinkType(link.type, scope->plugin_path)
                                 : scope->registry.loadFile(link.plugin_file);
    if (!library.ok()) {
      issues.push_back({source, link.line, link.column, library.error().message});
      continue;
    }
    Result<LinkPtr> made = createPluginLink(*library, link.type, link.settings.dump());
    if (!made.ok()) {
      issues.push_back({source, link.line, link.column, made.error().message});
      continue;
    }
    built.push_back(*made);
  }
  return built;
}

std::string buildLinksFromJson(const nlohmann::json& entries, std::vector<LinkPtr>& out) {
  if (!entries.is_array()) return "a nested chain must be a list of links";
  std::vector<LinkConfig> links;
  for (size_t i = 0; i < entries.size(); ++i) {
    const nlohmann::json& entry = entries[i];
    LinkConfig link;
    if (entry.is_string()) {
      link.type = entry.get<std::string>();
    } else if (entry.is_object() && entry.contains("link") && entry["link"].is_string()) {
      link.type = entry["link"].get<std::string>();
      if (entry.contains("plugin") && entry["plugin"].is_string()) {
        link.plugin_file = entry["plugin"].get<std::string>();
      }
      if (entry.contains("settings")) link.settings = entry["settings"];
      if (link.settings.is_null()) link.settings = nlohmann::json::object();
    } else {
      return "nested link " + std::to_string(i) + " must be a link name or {link, settings}";
    }
    links.push_back(std::move(link));
  }
  std::vector<ConfigIssue> issues;
  out = buildLinks(links, "nested chain", issues);
  std::string message;
  for (const ConfigIssue& issue : issues) message += (message.empty() ? "" : "; ") + issue.message;
  return message;
}

Response NestedChain::call(Next& outer, Request& request) const {
  NestedNext start(links_, 0, outer);
  return start.call(request);
}

}  // namespace hfchain::internal
