// `hfchain models info`: the Hub's facts about a model.
#include <nlohmann/json.hpp>

#include "cli.h"
#include "hfchain/hub.h"

namespace hfchain::cli {
namespace {

nlohmann::json toJson(const hub::ModelInfo& info) {
  nlohmann::json providers = nlohmann::json::array();
  for (const auto& provider : info.inference_providers) {
    providers.push_back({{"provider", provider.provider},
                         {"status", provider.status},
                         {"provider_id", provider.provider_id},
                         {"task", provider.task}});
  }
  return {{"id", info.id},
          {"requested_id", info.requested_id},
          {"author", info.author},
          {"sha", info.sha},
          {"pipeline_tag", info.pipeline_tag},
          {"library_name", info.library_name},
          {"tags", info.tags},
          {"gated", info.gated},
          {"private", info.is_private},
          {"disabled", info.disabled},
          {"downloads", info.downloads},
          {"likes", info.likes},
          {"created_at", info.created_at},
          {"last_modified", info.last_modified},
          {"total_parameters", info.total_parameters},
          {"architectures", info.architectures},
          {"model_type", info.model_type},
          {"license", info.license},
          {"inference", info.inference},
          {"inference_providers", providers}};
}

}  // namespace

int runModels(Arguments args, std::ostream& out, std::ostream& err) {
  bool json = args.flag("--json");
  if (auto unknown = args.unknownOption()) {
    err << "hfchain models: " << *unknown << "\n";
    return kExitUsage;
  }
  const std::vector<std::string>& words = args.rest();
  if (words.size() != 2 || words[0] != "info") {
    err << "hfchain models: usage: hfchain models info MODEL_ID [--json]\n";
    return kExitUsage;
  }
  Result<hub::ModelInfo> info = hub::fetchModelInfo(words[1]);
  if (!info.ok()) {
    err << "hfchain models: " << info.error().describe() << "\n";
    return kExitFailed;
  }
  if (json) {
    out << toJson(*info).dump(2) << "\n";
  } else {
    out << hub::formatModelInfo(*info);
  }
  return kExitOk;
}

}  // namespace hfchain::cli
