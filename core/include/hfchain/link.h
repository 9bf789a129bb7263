// The link interface inside the engine. Plugins reach it through the C ABI (see
// hfchain/abi/hfchain_plugin.h and the SDK in hfchain/sdk/link.h); embedders may also
// implement it directly in C++.
#pragma once

#include <memory>
#include <string>

#include "hfchain/request.h"
#include "hfchain/response.h"
#include "hfchain/target.h"

namespace hfchain {

class TokenCounter;

// The rest of the chain after a link. Valid until that link's roundTrip returns.
class Next {
 public:
  virtual ~Next() = default;
  // Sends `request` through the remaining links and the target. Never throws; failures
  // come back as error responses. Safe to call several times and from several threads.
  virtual Response call(Request& request) = 0;
  // Returns a copy that stays valid after the link's roundTrip returns, for calls that
  // may outlive it.
  virtual std::unique_ptr<Next> clone() const = 0;
  // Returns the running config's target called `name` (the default target when empty), or
  // null.
  virtual const TargetConfig* findTarget(const std::string& name) const = 0;
  // Returns the token counter of target `name` (the default target when empty), or null
  // when there is no such target or the chain has no counters.
  virtual const TokenCounter* tokenCounter(const std::string& /*name*/) const { return nullptr; }
  // Returns the context window of target `name` in tokens, 0 when unknown. A target with
  // `context_window: auto` is looked up on first use, so the first call may block for a
  // few seconds; `request_id` goes into the log lines of that look-up.
  virtual int64_t contextWindow(const std::string& name, const std::string& /*request_id*/) const {
    const TargetConfig* target = findTarget(name);
    return target == nullptr ? 0 : target->context_window;
  }
};

// A policy link in the style of Go's http.RoundTripper: it receives the request and the
// rest of the chain, and may change the request, call the rest zero or more times, wrap the
// response stream, or answer itself. roundTrip is called from many threads at once.
class Link {
 public:
  virtual ~Link() = default;
  virtual Response roundTrip(Request& request, Next& next) = 0;
  virtual const std::string& name() const = 0;
};

using LinkPtr = std::shared_ptr<Link>;

}  // namespace hfchain
