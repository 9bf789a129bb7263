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
