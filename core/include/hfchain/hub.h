// A client for the Hugging Face Hub model API (GET {endpoint}/api/models/{id}), used to check a
// model before sending requests to it and by the CLI's model information command.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hfchain/result.h"
#include "hfchain/target.h"

namespace hfchain::hub {

// Default Hub address, used when neither HubOptions::endpoint nor HF_ENDPOINT is set.
inline constexpr std::string_view kDefaultEndpoint = "https://huggingface.co";

struct HubOptions {
  std::string endpoint;         // scheme://host[:port]; empty: HF_ENDPOINT, else kDefaultEndpoint
  Secret token;                 // empty: the HF_TOKEN environment variable, when set
  int64_t timeout_ms = 10'000;  // bound of each connect, and of each read of the response
  int max_redirects = 5;        // redirects followed, such as the 307 of a renamed model
  bool tls_verify = true;
  std::string ca_file;  // PEM bundle; empty means the system store
};

// One inference provider that serves the model, from `inferenceProviderMapping`.
struct InferenceProvider {
  std::string provider;     // "hf-inference", "together", ...
  std::string status;       // "live" or "staging"
  std::string provider_id;  // the model's name at that provider
  std::string task;         // "conversational", "text-generation", ...
};

// The fields of the Hub's model information that hfchain uses. Strings are empty and numbers
// -1 when the Hub did not send them.
struct ModelInfo {
  std::string id;            // the current id, which differs from the requested one after a
                             // rename
  std::string requested_id;  // the id passed to fetchModelInfo
  std::string author;
  std::string sha;  // commit of the main branch
  std::string pipeline_tag;
  std::string library_name;
  std::vector<std::string> tags;
  std::string gated;  // "auto" or "manual"; empty when the model is not gated
  bool is_private = false;
  bool disabled = false;
  int64_t downloads = -1;
  int64_t likes = -1;
  std::string created_at;                  // ISO 8601, as sent
  std::string last_modified;               // ISO 8601, as sent
  int64_t total_parameters = -1;           // safetensors.total
  std::vector<std::string> architectures;  // config.architectures
  std::string model_type;                  // config.model_type
  std::string license;                     // cardData.license, lists joined with ", "
  std::string inference;                   // serverless state such as "warm", when sent
  std::vector<InferenceProvider> inference_providers;
};

// Reads the model information of `model_id` ("name" or "owner/name").
//
// Follows up to options.max_redirects redirects; the token is sent only to the host of the
// first request. Errors: kInvalidRequest for a malformed id, kConnectFailed and kTimeout for
// network failures, and for HTTP errors the classes of parseUpstreamError (401 kUpstreamAuth,
// 404 kUpstreamNotFound, ...), each with a message naming the model id and the endpoint.
// Thread-safe.
Result<ModelInfo> fetchModelInfo(std::string_view model_id, const HubOptions& options = {});

// Parses a model information JSON body. Errors have class kStreamParse.
Result<ModelInfo> parseModelInfo(std::string_view json_text);

// Renders the information as aligned "name: value" lines for the CLI.
std::string formatModelInfo(const ModelInfo& info);

}  // namespace hfchain::hub
