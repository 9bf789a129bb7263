// Loading link plugins: shared libraries that export the entry point of
// hfchain/abi/hfchain_plugin.h.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hfchain/abi/hfchain_plugin.h"
#include "hfchain/link.h"
#include "hfchain/result.h"

namespace hfchain {

struct LinkTypeInfo {
  std::string name;
  std::string description;
};

struct PluginInfo {
  std::string path;
  std::string name;
  std::string version;
  uint32_t abi_version = 0;
  std::vector<LinkTypeInfo> links;
};

// One loaded plugin library. The library stays mapped while any PluginLibrary pointer or
// link instance made from it is alive.
class PluginLibrary {
 public:
  // Loads `path` and checks the descriptor before calling anything else in it: the ABI
  // version, the struct sizes and the link entries. A rejected library is unloaded.
  // Errors have class kPluginRejected and name the file and the reason.
  static Result<std::shared_ptr<PluginLibrary>> load(const std::string& path);
  // Wraps a descriptor linked into the process, for embedders and tests.
  static Result<std::shared_ptr<PluginLibrary>> fromDescriptor(
      const hfc_plugin_descriptor* descriptor, const std::string& origin);
  ~PluginLibrary();
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;

  const PluginInfo& info() const { return info_; }
  const hfc_link_descriptor* findLink(const std::string& name) const;

 private:
  PluginLibrary() = default;
  static Result<std::shared_ptr<PluginLibrary>> check(std::shared_ptr<PluginLibrary> library,
                                                      const hfc_plugin_descriptor* descriptor);

  void* handle_ = nullptr;
  const hfc_plugin_descriptor* descriptor_ = nullptr;
  PluginInfo info_;
};

using PluginLibraryPtr = std::shared_ptr<PluginLibrary>;

// Creates a link instance of type `link_name` from `library` with settings given as a JSON
// object. Errors have class kPluginRejected and carry the plugin's own reason.
Result<LinkPtr> createPluginLink(const PluginLibraryPtr& library, const std::string& link_name,
                                 const std::string& settings_json);

// Finds plugins on a search path and keeps each loaded library once. Thread-safe.
//
// A link type "foo" is looked up among the loaded plugins first, then in the file
// libhfchain_link_foo.so in each search folder in order. Folders come from the config, then
// from the HFCHAIN_PLUGIN_PATH environment variable (colon-separated), then from the folder
// of installed plugins.
class PluginRegistry {
 public:
  explicit PluginRegistry(std::vector<std::string> search_path = {});

  // Loads the library at `path` (or returns the one already loaded from it).
  Result<PluginLibraryPtr> loadFile(const std::string& path);
  // Returns the library providing link type `link_name`, loading it from the search path.
  Result<PluginLibraryPtr> findLinkType(const std::string& link_name,
                                        const std::vector<std::string>& extra_folders = {});
  // Adds a library made from a descriptor linked into the process.
  Result<PluginLibraryPtr> addStatic(const hfc_plugin_descriptor* descriptor,
                                     const std::string& origin);
  // Loads every plugin file found on the search path; returns the errors of files that
  // failed, and keeps the others.
  std::vector<Error> loadAll(const std::vector<std::string>& extra_folders = {});

  std::vector<PluginInfo> list() const;
  std::vector<std::string> searchPath(const std::vector<std::string>& extra_folders = {}) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> search_path_;
  std::map<std::string, PluginLibraryPtr> by_path_;
};

}  // namespace hfchain
