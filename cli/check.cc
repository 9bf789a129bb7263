// `hfchain check` and `hfchain plugins`.
#include "cli.h"
#include "hfchain/engine.h"

namespace hfchain::cli {

int runCheck(Arguments args, std::ostream& out, std::ostream& err) {
  if (auto unknown = args.unknownOption()) {
    err << "hfchain check: " << *unknown << "\n";
    return kExitUsage;
  }
  if (args.rest().empty()) {
    err << "hfchain check: name at least one config file, e.g. hfchain check policies/retry.yaml\n";
    return kExitUsage;
  }
  std::shared_ptr<PluginRegistry> registry = makeRegistry();
  int problems = 0;
  for (const std::string& path : args.rest()) {
    ParsedConfig parsed = loadConfigFile(path);
    if (!parsed.ok()) {
      for (const auto& issue : parsed.issues) err << issue.describe() << "\n";
      problems += static_cast<int>(parsed.issues.size());
      continue;
    }
    // Building the chain runs every plugin's own validation of its settings; no request is
    // sent and no connection is made.
    Result<ChainSnapshotPtr> snapshot = ChainSnapshot::build(parsed.config, *registry);
    if (!snapshot.ok()) {
      err << snapshot.error().message << "\n";
      ++problems;
      continue;
    }
    out << path << ": ok (" << parsed.config.targets.size() << " targets, "
        << parsed.config.chain.size() << " links)\n";
  }
  return problems == 0 ? kExitOk : kExitConfig;
}

int runPlugins(Arguments args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::string config_path = args.take("--config", error).value_or("");
  std::vector<std::string> folders = args.takeAll("--plugin-path", error);
  if (!error.empty()) {
    err << "hfchain plugins: " << error << "\n";
    return kExitUsage;
  }
  if (auto unknown = args.unknownOption()) {
    err << "hfchain plugins: " << *unknown << "\n";
    return kExitUsage;
  }
  if (!config_path.empty()) {
    ParsedConfig parsed = loadConfigFile(config_path);
    if (!parsed.ok()) {
      for (const auto& issue : parsed.issues) err << issue.describe() << "\n";
      return kExitConfig;
    }
    folders.insert(folders.end(), parsed.config.plugin_path.begin(),
                   parsed.config.plugin_path.end());
  }
  std::shared_ptr<PluginRegistry> registry = makeRegistry();
  std::vector<Error> failures = registry->loadAll(folders);
  out << "host plugin ABI version " << HFC_ABI_VERSION << "\n";
  for (const PluginInfo& info : registry->list()) {
    out << info.name << " " << info.version << " (ABI " << info.abi_version << ") " << info.path
        << "\n";
    for (const LinkTypeInfo& link : info.links) {
      out << "  link " << link.name << (link.description.empty() ? "" : ": ") << link.description
          << "\n";
    }
  }
  for (const Error& failure : failures) err << failure.message << "\n";
  return failures.empty() ? kExitOk : kExitConfig;
}

}  // namespace hfchain::cli
