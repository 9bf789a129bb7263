// A test plugin whose "count" link responds with what the host's token counting returns for
// the request: its input count, the count of its raw inputs as plain text, the target's
// context window, the caller key's fingerprint and tenant, as one JSON token.
#include "hfchain/sdk/link.h"

namespace {

namespace sdk = hfchain::sdk;

nlohmann::json describe(const std::optional<sdk::TokenCount>& count) {
  if (!count) return nullptr;
  return {{"tokens", count->tokens},
          {"method", static_cast<int>(count->method)},
          {"note", count->note}};
}

class Count : public sdk::Link {
 public:
  static std::unique_ptr<Count> create(const nlohmann::json&, std::string&) {
    return std::make_unique<Count>();
  }
  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    std::optional<sdk::TargetInfo> target = next.target(request.target());
    nlohmann::json answer = {{"request", describe(next.countTokens(request))},
                             {"text", describe(next.countText(request.target(), request.inputs()))},
                             {"context_window", target ? target->context_window : -1},
                             {"key_id", std::string(request.meta("key_id").value_or(""))},
                             {"tenant", std::string(request.meta("tenant").value_or(""))}};
    return sdk::Response::text(answer.dump());
  }
};

}  // namespace

HFCHAIN_PLUGIN("test-counter", "1.0.0", HFCHAIN_LINK(Count, "count", "Answers with token counts"))
