// Targets: the upstream endpoints a chain can send to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hfchain/request.h"

namespace hfchain {

enum class Protocol {
  kTgi,           // TGI native: POST {base}/generate and {base}/generate_stream
  kOpenAi,        // OpenAI-compatible: POST {base}/v1/chat/completions (base may end in /v1)
  kHfServerless,  // Hugging Face serverless: POST {base}/models/{model}, TGI bodies
};

std::string_view protocolName(Protocol protocol);
std::optional<Protocol> protocolFromName(std::string_view name);

// A secret such as an API token. Its value is never printed: describe() names only where it
// came from ("environment variable HF_TOKEN", "file /run/secrets/hf").
struct Secret {
  std::string value;
  std::string source;
  bool empty() const { return value.empty(); }
  std::string describe() const { return source.empty() ? "an inline value" : source; }
};

struct Timeouts {
  int64_t connect_ms = 10'000;     // TCP and TLS connection set-up
  int64_t first_byte_ms = 60'000;  // request sent until the response status arrives
  int64_t idle_ms = 30'000;        // longest silence between two stream events
  int64_t total_ms = 300'000;      // the whole exchange, including the stream
};

// How a target's tokens are counted before a request is sent.
enum class TokenCounterKind {
  kAuto,       // the tokenizer when one is configured, otherwise an estimate
  kTokenizer,  // the tokenizer.json of `tokenizer`; a config without one is rejected
  kRemote,     // TGI's POST {base}/tokenize; an estimate when the call fails
  kEstimate,   // characters per token for each script
};

struct TargetConfig {
  std::string name;
  Protocol protocol = Protocol::kOpenAi;
  std::string base_url;        // scheme://host[:port][/prefix]
  std::string model;           // default model id; a request's own model wins
  int64_t context_window = 0;  // tokens; 0 when unknown
  // Ask the endpoint for the context window on first use: TGI's /info for tgi targets,
  // the model's config.json on the Hub otherwise.
  bool context_window_auto = false;
  std::string tokenizer;      // path of a tokenizer.json; empty when none
  std::string chat_template;  // path of a tokenizer_config.json with the chat template
  TokenCounterKind token_counter = TokenCounterKind::kAuto;
  Secret token;  // sent as "Authorization: Bearer" unless a link set one already
  Timeouts timeouts;
  bool tls_verify = true;  // verify the server certificate against ca_file or the system store
  std::string ca_file;     // PEM bundle; empty means the system store
  size_t max_event_bytes = 1 << 20;  // largest single stream event accepted
  Headers headers;                   // extra headers sent with every request
};

}  // namespace hfchain
