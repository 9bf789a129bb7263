// Parsing and rendering of the Hub's model information.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "hfchain/hub.h"

namespace hfchain::hub {
namespace {

using nlohmann::json;

std::string stringField(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t integerField(const json& object, const char* name) {
  auto it = object.find(name);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
}

std::vector<std::string> stringList(const json& object, const char* name) {
  std::vector<std::string> out;
  auto it = object.find(name);
  if (it == object.end() || !it->is_array()) return out;
  for (const json& item : *it) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

std::string join(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// The Hub has sent the provider mapping both as an object keyed by provider and as a list of
// objects with a `provider` field.
std::vector<InferenceProvider> providerMapping(const json& mapping) {
  std::vector<InferenceProvider> out;
  auto read = [&](const std::string& provider, const json& entry) {
    if (!entry.is_object()) return;
    InferenceProvider item;
    item.provider = provider.empty() ? stringField(entry, "provider") : provider;
    item.status = stringField(entry, "status");
    item.provider_id = stringField(entry, "providerId");
    item.task = stringField(entry, "task");
    out.push_back(std::move(item));
  };
  if (mapping.is_object()) {
    for (const auto& [provider, entry] : mapping.items()) read(provider, entry);
  } else if (mapping.is_array()) {
    for (const json& entry : mapping) read("", entry);
  }
  return out;
}

std::string formatCount(int64_t count) {
  if (count < 0) return "";
  if (count < 1000) return std::to_string(count);
  const char* units[] = {"K", "M", "B", "T"};
  double value = static_cast<double>(count);
  int unit = -1;
  while (value >= 1000 && unit < 3) {
    value /= 1000;
    ++unit;
  }
  char text[64];
  std::snprintf(text, sizeof text, "%.2f %s (%lld)", value, units[unit],
                static_cast<long long>(count));
  return text;
}

}  // namespace

Result<ModelInfo> parseModelInfo(std::string_view json_text) {
  json body;
  try {
    body = json::parse(json_text);
  } catch (const json::exception& e) {
    return makeError(ErrorClass::kStreamParse,
                     std::string("the Hub's model information is not valid JSON: ") + e.what());
  }
  if (!body.is_object()) {
    return makeError(ErrorClass::kStreamParse, "the Hub's model information is not an object");
  }

  ModelInfo info;
  info.id = stringField(body, "id");
  if (info.id.empty()) info.id = stringField(body, "modelId");
  info.author = stringField(body, "author");
  info.sha = stringField(body, "sha");
  info.pipeline_tag = stringField(body, "pipeline_tag");
  info.library_name = stringField(body, "library_name");
  info.tags = stringList(body, "tags");
  if (auto gated = body.find("gated"); gated != body.end() && gated->is_string()) {
    info.gated = gated->get<std::string>();
  }
  info.is_private = body.value("private", false);
  info.disabled = body.value("disabled", false);
  info.downloads = integerField(body, "downloads");
  info.likes = integerField(body, "likes");
  info.created_at = stringField(body, "createdAt");
  info.last_modified = stringField(body, "lastModified");
  info.inference = stringField(body, "inference");

  if (auto safetensors = body.find("safetensors");
      safetensors != body.end() && safetensors->is_object()) {
    info.total_parameters = integerField(*safetensors, "total");
  }
  if (auto config = body.find("config"); config != body.end() && config->is_object()) {
    info.architectures = stringList(*config, "architectures");
    info.model_type = stringField(*config, "model_type");
  }
  if (auto card = body.find("cardData"); card != body.end() && card->is_object()) {
    info.license = stringField(*card, "license");
    if (info.license.empty()) info.license = join(stringList(*card, "license"), ", ");
  }
  if (auto mapping = body.find("inferenceProviderMapping"); mapping != body.end()) {
    info.inference_providers = providerMapping(*mapping);
  }
  return info;
}

std::string formatModelInfo(const ModelInfo& info) {
  std::ostringstream out;
  auto line = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    char label[32];
    std::snprintf(label, sizeof label, "%-15s", (std::string(name) + ":").c_str());
    out << label << value << "\n";
  };
  line("id", info.id);
  if (!info.requested_id.empty() && info.requested_id != info.id) {
    line("renamed from", info.requested_id);
  }
  line("author", info.author);
  line("sha", info.sha);
  line("pipeline", info.pipeline_tag);
  line("library", info.library_name);
  line("architectures", join(info.architectures, ", "));
  line("model type", info.model_type);
  line("parameters", formatCount(info.total_parameters));
  line("license", info.license);
  line("gated", info.gated.empty() ? "no" : info.gated);
  line("private", info.is_private ? "yes" : "no");
  if (info.disabled) line("disabled", "yes");
  line("downloads", info.downloads < 0 ? "" : std::to_string(info.downloads));
  line("likes", info.likes < 0 ? "" : std::to_string(info.likes));
  line("created", info.created_at);
  line("last modified", info.last_modified);
  line("inference", info.inference);
  for (const InferenceProvider& provider : info.inference_providers) {
    std::string value = provider.provider + " -> " + provider.provider_id;
    if (!provider.status.empty()) value += " (" + provider.status + ")";
    if (!provider.task.empty()) value += " [" + provider.task + "]";
    line("provider", value);
  }
  line("tags", join(info.tags, ", "));
  return out.str();
}

}  // namespace hfchain::hub
