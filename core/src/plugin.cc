// Plugin loading: dlopen, descriptor checks, and the adapter that makes a plugin's link an
// engine Link.
#include "hfchain/plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "abi_host.h"
#include "hfchain/log.h"

namespace hfchain {
namespace {

Poco::Logger& logger() { return log::get("hfchain.plugin"); }

Error rejected(const std::string& origin, const std::string& reason) {
  return makeError(ErrorClass::kPluginRejected, "plugin " + origin + " rejected: " + reason);
}

// Calls into a plugin go through here: an exception that a plugin lets escape is not
// allowed by the ABI, but it must not take the process down either.
class PluginLink : public Link {
 public:
  PluginLink(PluginLibraryPtr library, const hfc_link_descriptor* descriptor, void* instance)
      : library_(std::move(library)),
        descriptor_(descriptor),
        instance_(instance),
        name_(descriptor->name) {}

  ~PluginLink() override {
    try {
      descriptor_->destroy(instance_);
    } catch (...) {
      HFC_LOG_ERROR(logger(), "link '" + name_ + "' threw from destroy; the exception was dropped");
    }
  }

  Response roundTrip(Request& request, Next& next) override {
    hfc_response* raw = nullptr;
    try {
      raw = descriptor_->round_trip(instance_, abi::toAbi(&request), abi::toAbi(&next));
    } catch (...) {
      HFC_LOG_ERROR(logger(), HFC_RID(request.id) + "link '" + name_ +
                                  "' let an exception escape round_trip");
      return makeErrorResponse(
          makeError(ErrorClass::kInternal, "link '" + name_ + "' failed with an exception"));
    }
    return abi::adoptFromAbi(raw, name_);
  }

  const std::string& name() const override { return name_; }

 private:
  PluginLibraryPtr library_;  // keeps the code mapped while the instance lives
  const hfc_link_descriptor* descriptor_;
  void* instance_;
  std::string name_;
};

bool isPluginFileName(const std::filesystem::path& path) {
  std::string name = path.filename().string();
  return name.starts_with("libhfchain_link_") && path.extension() == ".so";
}

}  // namespace

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::load(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return rejected(path, "no such file; check the plugin path and HFCHAIN_PLUGIN_PATH");
  }
  dlerror();
  // RTLD_LOCAL keeps each plugin's symbols to itself, so two plugins built from different
  // SDK versions do not bind to each other's inline functions.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    return rejected(path, std::string("cannot be loaded as a shared library: ") +
                              (reason != nullptr ? reason : "unknown dlopen error"));
  }
  std::shared_ptr<PluginLibrary> library(new PluginLibrary());
  library->handle_ = handle;
  library->info_.path = path;

  dlerror();
  void* symbol = dlsym(handle, HFC_PLUGIN_INIT_SYMBOL);
  if (symbol == nullptr) {
    return rejected(path, "it does not export " HFC_PLUGIN_INIT_SYMBOL
                          "; it is not an hfchain plugin (build it with HFCHAIN_PLUGIN)");
  }
  auto init = reinterpret_cast<hfc_plugin_init_fn>(symbol);
  const hfc_plugin_descriptor* descriptor = nullptr;
  try {
    descriptor = init(HFC_ABI_VERSION);
  } catch (...) {
    return rejected(path, HFC_PLUGIN_INIT_SYMBOL " threw an exception");
  }
  return check(std::move(library), descriptor);
}

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::fromDescriptor(
    const hfc_plugin_descriptor* descriptor, const std::string& origin) {
  std::shared_ptr<PluginLibrary> library(new PluginLibrary());
  library->info_.path = origin;
  return check(std::move(library), descriptor);
}

Result<std::shared_ptr<PluginLibrary>> PluginLibrary::check(
    std::shared_ptr<PluginLibrary> library, const hfc_plugin_descriptor* descriptor) {
  const std::string& path = library->info_.path;
  if (descriptor == nullptr) {
    return rejected(path, "it declined to load (its entry point returned no descriptor)");
  }
  // The version and the size are read before anything else in the descriptor, because a
  // plugin of another ABI may lay out the rest differently.
  if (descriptor->abi_version != HFC_ABI_VERSION) {
    return rejected(path, "it was built for plugin ABI version " +
                              std::to_string(descriptor->abi_version) + ", but this hfchain " +
                              "implements version " + std::to_string(HFC_ABI_VERSION) +
                              "; rebuild it against this hfchain's SDK");
  }
  if (descriptor->struct_size != sizeof(hfc_plugin_descriptor)) {
    return rejected(path, "its plugin descriptor is " + std::to_string(descriptor->struct_size) +
                              " bytes, expected " + std::to_string(sizeof(hfc_plugin_descriptor)) +
                              " for ABI version " + std::to_string(HFC_ABI_VERSION) +
                              "; rebuild it against this hfchain's SDK");
  }
  if (descriptor->name == nullptr || descriptor->name[0] == '\0') {
    return rejected(path, "its descriptor has no plugin name");
  }
  if (descriptor->link_count == 0 || descriptor->links == nullptr) {
    return rejected(path, "it provides no links");
  }
  PluginInfo& info = library->info_;
  info.name = descriptor->name;
  info.version = descriptor->version != nullptr ? descriptor->version : "";
  info.abi_version = descriptor->abi_version;
  for (uint32_t i = 0; i < descriptor->link_count; ++i) {
    const hfc_link_descriptor& link = descriptor->links[i];
    if (link.struct_size != sizeof(hfc_link_descriptor)) {
      return rejected(path, "its link descriptor " + std::to_string(i) + " is " +
                                std::to_string(link.struct_size) + " bytes, expected " +
                                std::to_string(sizeof(hfc_link_descriptor)));
    }
    if (link.name == nullptr || link.name[0] == '\0' || link.create == nullptr ||
        link.destroy == nullptr || link.round_trip == nullptr) {
      return rejected(path, "its link descriptor " + std::to_string(i) +
                                " lacks a name or one of create, destroy and round_trip");
    }
    info.links.push_back({link.name, link.description != nullptr ? link.description : ""});
  }
  library->descriptor_ = descriptor;
  return library;
}

PluginLibrary::~PluginLibrary() {
  if (handle_ != nullptr) dlclose(handle_);
}

const hfc_link_descriptor* PluginLibrary::findLink(const std::string& name) const {
  if (descriptor_ == nullptr) return nullptr;
  for (uint32_t i = 0; i < descriptor_->link_count; ++i) {
    if (name == descriptor_->links[i].name) return &descriptor_->links[i];
  }
  return nullptr;
}

Result<LinkPtr> createPluginLink(const PluginLibraryPtr& library, const std::string& link_name,
                                 const std::string& settings_json) {
  const hfc_link_descriptor* descriptor = library->findLink(link_name);
  if (descriptor == nullptr) {
    return rejected(library->info().path, "it has no link called '" + link_name + "'");
  }
  char reason[1024] = {0};
  void* instance = nullptr;
  hfc_create_result result = HFC_CREATE_FAILED;
  try {
    result = descriptor->create(abi::hostApi(), hfc_str{settings_json.data(), settings_json.size()},
                                &instance, reason, sizeof(reason));
  } catch (...) {
    return makeError(ErrorClass::kPluginRejected,
                     "link '" + link_name + "' threw an exception while being created");
  }
  reason[sizeof(reason) - 1] = '\0';
  if (result != HFC_CREATE_OK || instance == nullptr) {
    std::string why = reason[0] != '\0' ? reason : "no reason given";
    return makeError(ErrorClass::kPluginRejected,
                     "link '" + link_name + "' rejected its settings: " + why);
  }
  return LinkPtr(std::make_shared<PluginLink>(library, descriptor, instance));
}

PluginRegistry::PluginRegistry(std::vector<std::string> search_path)
    : search_path_(std::move(search_path)) {}

std::vector<std::string> PluginRegistry::searchPath(
    const std::vector<std::string>& extra_folders) const {
  std::vector<std::string> folders = extra_folders;
  if (const char* env = std::getenv("HFCHAIN_PLUGIN_PATH"); env != nullptr) {
    std::stringstream parts(env);
    std::string folder;
    while (std::getline(parts, folder, ':')) {
      if (!folder.empty()) folders.push_back(folder);
    }
  }
  std::lock_guard lock(mutex_);
  folders.insert(folders.end(), search_path_.begin(), search_path_.end());
  return folders;
}

Result<PluginLibraryPtr> PluginRegistry::loadFile(const std::string& path) {
  std::error_code ec;
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  if (ec) key = path;
  {
    std::lock_guard lock(mutex_);
    if (auto it = by_path_.find(key); it != by_path_.end()) return it->second;
  }
  Result<PluginLibraryPtr> loaded = PluginLibrary::load(path);
  if (!loaded.ok()) {
    HFC_LOG_WARNING(logger(), loaded.error().message);
    return loaded;
  }
  HFC_LOG_INFO(logger(), "loaded plugin " + loaded->get()->info().name + " " +
                             loaded->get()->info().version + " from " + path);
  std::lock_guard lock(mutex_);
  auto [it, inserted] = by_path_.emplace(key, *loaded);
  return it->second;
}

Result<PluginLibraryPtr> PluginRegistry::addStatic(const hfc_plugin_descriptor* descriptor,
                                                   const std::string& origin) {
  Result<PluginLibraryPtr> made = PluginLibrary::fromDescriptor(descriptor, origin);
  if (!made.ok()) return made;
  std::lock_guard lock(mutex_);
  by_path_[origin] = *made;
  return made;
}

Result<PluginLibraryPtr> PluginRegistry::findLinkType(
    const std::string& link_name, const std::vector<std::string>& extra_folders) {
  {
    std::lock_guard lock(mutex_);
    for (const auto& [path, library] : by_path_) {
      if (library->findLink(link_name) != nullptr) return library;
    }
  }
  std::vector<std::string> folders = searchPath(extra_folders);
  std::string file_name = "libhfchain_link_";
  for (char c : link_name) file_name += (c == '-') ? '_' : c;
  file_name += ".so";
  for (const std::string& folder : folders) {
    std::filesystem::path candidate = std::filesystem::path(folder) / file_name;
    std::error_code ec;
    if (!std::filesystem::exists(candidate, ec)) continue;
    Result<PluginLibraryPtr> loaded = loadFile(candidate.string());
    if (!loaded.ok()) return loaded;
    if (loaded->get()->findLink(link_name) != nullptr) return loaded;
  }
  std::string searched;
  for (const std::string& folder : folders) searched += (searched.empty() ? "" : ", ") + folder;
  return makeError(ErrorClass::kPluginRejected,
                   "unknown link type '" + link_name + "': no loaded plugin provides it and no " +
                       file_name + " was found in " +
                       (searched.empty() ? "(empty search path)" : searched) +
                       "; add its folder to plugin_path or HFCHAIN_PLUGIN_PATH");
}

std::vector<Error> PluginRegistry::loadAll(const std::vector<std::string>& extra_folders) {
  std::vector<Error> errors;
  for (const std::string& folder : searchPath(extra_folders)) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
      if (!entry.is_regular_file() || !isPluginFileName(entry.path())) continue;
      Result<PluginLibraryPtr> loaded = loadFile(entry.path().string());
      if (!loaded.ok()) errors.push_back(loaded.error());
    }
  }
  return errors;
}

std::vector<PluginInfo> PluginRegistry::list() const {
  std::lock_guard lock(mutex_);
  std::vector<PluginInfo> infos;
  for (const auto& [path, library] : by_path_) infos.push_back(library->info());
  return infos;
}

}  // namespace hfchain
