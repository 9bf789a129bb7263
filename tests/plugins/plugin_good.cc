// A well-formed test plugin: "upper" upper-cases the text of every token, "tag" appends
// its value to a header of the upstream request, "nest" runs nested links and "pass" does
// nothing.
#include <cctype>

#include "hfchain/sdk/link.h"

namespace {

namespace sdk = hfchain::sdk;

class UpperStream : public sdk::Stream {
 public:
  explicit UpperStream(sdk::Response inner) : inner_(std::move(inner)) {}
  bool next(sdk::Event& out) override {
    if (!inner_.next(out)) return false;
    if (out.isToken()) {
      std::string text(out.text());
      for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.setText(text);
    }
    return true;
  }

 private:
  sdk::Response inner_;
};

class Upper : public sdk::Link {
 public:
  static std::unique_ptr<Upper> create(const nlohmann::json&, std::string&) {
    return std::make_unique<Upper>();
  }
  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    sdk::Response response = next(request);
    sdk::Response inner = sdk::takeStream(response);
    return sdk::wrap(std::move(response), std::make_unique<UpperStream>(std::move(inner)));
  }
};

class Tag : public sdk::Link {
 public:
  static std::unique_ptr<Tag> create(const nlohmann::json& settings, std::string& error) {
    if (!settings.contains("value") || !settings["value"].is_string()) {
      error = "value must be a string";
      return nullptr;
    }
    auto link = std::make_unique<Tag>();
    link->value_ = settings["value"].get<std::string>();
    return link;
  }
  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    std::string seen(request.header("x-tag").value_or(""));
    request.setHeader("x-tag", seen.empty() ? value_ : seen + "," + value_);
    return next(request);
  }

 private:
  std::string value_;
};

// Passes every request on unchanged: the cost of a link and nothing else.
class Pass : public sdk::Link {
 public:
  static std::unique_ptr<Pass> create(const nlohmann::json&, std::string&) {
    return std::make_unique<Pass>();
  }
  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override { return next(request); }
};

// Runs its own nested links, given in the "links" setting, before the rest of the chain.
class Nest : public sdk::Link {
 public:
  static std::unique_ptr<Nest> create(const nlohmann::json& settings, std::string& error) {
    auto link = std::make_unique<Nest>();
    link->chain_ = sdk::NestedChain::build(settings.value("links", nlohmann::json::array()), error);
    if (!link->chain_) return nullptr;
    return link;
  }
  sdk::Response roundTrip(sdk::Request& request, sdk::Next& next) override {
    return chain_->call(request, next);
  }

 private:
  std::unique_ptr<sdk::NestedChain> chain_;
};

}  // namespace

HFCHAIN_PLUGIN("test-good", "1.2.3", HFCHAIN_LINK(Upper, "upper", "upper-cases token text"),
               HFCHAIN_LINK(Tag, "tag", "appends its value to the x-tag header"),
               HFCHAIN_LINK(Nest, "nest", "runs the links of its settings, then the rest"),
               HFCHAIN_LINK(Pass, "pass", "passes every request on unchanged"))
