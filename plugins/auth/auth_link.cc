// The auth link: puts a bearer token from the settings, an environment variable or a file
// into the upstream request's headers. The token never appears in a log or an error.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hfchain/sdk/link.h"

namespace hfchain::plugins::auth {
namespace {

namespace sdk = hfchain::sdk;

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

class AuthLink : public sdk::Link {
 public:
  static std::unique_ptr<AuthLink> create(const nlohmann::json& settings, std::string& error) {
    static const char* kKnown[] = {"token",  "token_env", "token_file", "header",
                                   "scheme", "required",  "overwrite"};
    for (const auto& [key, value] : settings.items()) {
      bool known = false;
      for (const char* name : kKnown) known = known || key == name;
      if (!known) {
        error = "unknown setting '" + key +
                "'; expected token, token_env, token_file, header, scheme, required or overwrite";
        return nullptr;
      }
    }
    auto link = std::make_unique<AuthLink>();
    int sources = 0;
    if (settings.contains("token")) {
      if (!settings["token"].is_string()) {
        error = "token must be a string, e.g. token: ${env:HF_TOKEN}";
        return nullptr;
      }
      link->token_ = settings["token"].get<std::string>();
      ++sources;
    }
    if (settings.contains("token_env")) {
      if (!settings["token_env"].is_string()) {
        error = "token_env must name an environment variable, e.g. token_env: HF_TOKEN";
        return nullptr;
      }
      std::string name = settings["token_env"].get<std::string>();
      const char* value = std::getenv(name.c_str());
      link->token_ = value != nullptr ? value : "";
      link->source_ = "environment variable " + name;
      ++sources;
    }
    if (settings.contains("token_file")) {
      if (!settings["token_file"].is_string()) {
        error = "token_file must be a path";
        return nullptr;
      }
      std::string path = settings["token_file"].get<std::string>();
      std::ifstream file(path, std::ios::binary);
      if (!file) {
        error = "token_file " + path + " cannot be opened; check the path and its permissions";
        return nullptr;
      }
      std::stringstream content;
      content << file.rdbuf();
      link->token_ = trimmed(content.str());
      link->source_ = "file " + path;
      ++sources;
    }
    if (sources > 1) {
      error = "set only one of token, token_env and token_file";
      return nullptr;
    }
    link->header_ = settings.value("header", std::string("Authorization"));
    link->scheme_ = settings.value("scheme", std::string("Bearer"));
    link->overwrite_ = settings.value("overwrite", true);
    bool required = settings.value("required", true);
    if (required && link->token_.empty()) {
      error = "no token: the " +
              (link->source_.empty() ? std::string("token setting") : link->source_) +
              " is empty or missing; set one, or set required: false to send requests without it";
      return nullptr;
    }
    return link;
  }

  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    if (!token_.empty() && (overwrite_ || !request.header(header_))) {
      request.setHeader(header_, scheme_.empty() ? token_ : scheme_ + " " + token_);
      if (host().log_enabled(HFC_LOG_TRACE)) {
        request.log(HFC_LOG_TRACE, "auth", "set the " + header_ + " header");
      }
    }
    return next(request);
  }

 private:
  static const hfc_host_api& host() { return sdk::host(); }

  std::string token_;
  std::string source_;
  std::string header_;
  std::string scheme_;
  bool overwrite_ = true;
};

}  // namespace
}  // namespace hfchain::plugins::auth

HFCHAIN_PLUGIN("auth", "1.0.0",
               HFCHAIN_LINK(hfchain::plugins::auth::AuthLink, "auth",
                            "adds a bearer token from settings, an environment variable or a file"))
