// Option parsing and the shared set-up of the CLI commands.
#include <unistd.h>

#include <filesystem>

#include "cli.h"

namespace hfchain::cli {

std::optional<std::string> Arguments::take(const std::string& name, std::string& error) {
  for (size_t i = 0; i < words_.size(); ++i) {
    const std::string& word = words_[i];
    if (word == name) {
      if (i + 1 >= words_.size()) {
        error = name + " needs a value";
        words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(i));
        return std::nullopt;
      }
      std::string value = words_[i + 1];
      words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(i),
                   words_.begin() + static_cast<std::ptrdiff_t>(i + 2));
      return value;
    }
    if (word.starts_with(name + "=")) {
      std::string value = word.substr(name.size() + 1);
      words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(i));
      return value;
    }
    if (word == "--") break;
  }
  return std::nullopt;
}

std::vector<std::string> Arguments::takeAll(const std::string& name, std::string& error) {
  std::vector<std::string> values;
  while (auto value = take(name, error)) values.push_back(*value);
  return values;
}

bool Arguments::flag(const std::string& name) {
  for (size_t i = 0; i < words_.size(); ++i) {
    if (words_[i] == "--") break;
    if (words_[i] == name) {
      words_.erase(words_.begin() + static_cast<std::ptrdiff_t>(i));
      return true;
    }
  }
  return false;
}

std::optional<std::string> Arguments::unknownOption() const {
  for (const std::string& word : words_) {
    if (word == "--") break;
    if (word.starts_with("--")) return "unknown option '" + word + "'; run hfchain --help";
  }
  return std::nullopt;
}

std::shared_ptr<PluginRegistry> makeRegistry() {
  std::vector<std::string> folders;
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    folders.push_back((exe.parent_path() / "plugins").string());
    folders.push_back((exe.parent_path().parent_path() / "lib" / "hfchain" / "plugins").string());
  }
  folders.push_back(HFCHAIN_BUILD_PLUGIN_DIR);
  return std::make_shared<PluginRegistry>(std::move(folders));
}

ParsedConfig loadConfig(const std::string& path) {
  if (path.empty()) return parseConfig(defaultConfigYaml(), "<built-in default>");
  return loadConfigFile(path);
}

}  // namespace hfchain::cli
