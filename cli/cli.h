// Shared pieces of the hfchain command-line tool.
#pragma once

#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "hfchain/config.h"
#include "hfchain/plugin.h"

namespace hfchain::cli {

// Exit codes, also listed in `hfchain --help` and docs/cli.md.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed =
    1;                                // the request failed: upstream error, error event, cut stream
inline constexpr int kExitUsage = 2;  // invalid command-line arguments
inline constexpr int kExitConfig = 3;    // the config or a plugin was rejected
inline constexpr int kExitInternal = 4;  // an unexpected failure inside hfchain
// `audit summarize` printed totals but skipped invalid lines.
inline constexpr int kExitSkippedLines = 5;

// Words after the verb, with simple option look-up. Options take their value as the next
// word ("--config FILE") or after '=' ("--config=FILE").
class Arguments {
 public:
  explicit Arguments(std::vector<std::string> words) : words_(std::move(words)) {}

  // Removes and returns the value of `name`; sets `error` when the value is missing.
  std::optional<std::string> take(const std::string& name, std::string& error);
  // Removes every occurrence of `name` and returns their values.
  std::vector<std::string> takeAll(const std::string& name, std::string& error);
  // Removes the flag `name` and returns whether it was present.
  bool flag(const std::string& name);
  // The words left; an option left here is unknown.
  const std::vector<std::string>& rest() const { return words_; }
  // Returns an error naming the first word that starts with "--", if any is left.
  std::optional<std::string> unknownOption() const;

 private:
  std::vector<std::string> words_;
};

// The plugin registry with the CLI's default search folders: the build's plugin folder,
// the installed plugin folder next to the binary, then HFCHAIN_PLUGIN_PATH.
std::shared_ptr<PluginRegistry> makeRegistry();

// Loads --config FILE, or the built-in default when `path` is empty.
ParsedConfig loadConfig(const std::string& path);

int runGenerate(Arguments args, std::ostream& out, std::ostream& err);
int runCheck(Arguments args, std::ostream& out, std::ostream& err);
int runPlugins(Arguments args, std::ostream& out, std::ostream& err);
int runModels(Arguments args, std::ostream& out, std::ostream& err);
int runAudit(Arguments args, std::ostream& out, std::ostream& err);
int runServe(Arguments args, std::ostream& out, std::ostream& err);
int runTokens(Arguments args, std::ostream& out, std::ostream& err);

}  // namespace hfchain::cli
