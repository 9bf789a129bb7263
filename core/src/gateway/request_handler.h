// The gateway's per-request handler and the state it shares with the server.
#pragma once

#include <Poco/Net/HTTPRequestHandler.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "hfchain/engine.h"

namespace hfchain::gateway {

// State shared by every handler, owned by the gateway, which outlives its handlers.
struct SharedState {
  Engine* engine = nullptr;
  size_t max_body_bytes = 0;
  std::unordered_set<std::string> api_keys;                  // empty: no inbound key check
  std::unordered_map<std::string, std::string> key_tenants;  // inbound key to tenant

  // Cancel tokens of the requests in progress, so that stop() can cancel them.
  std::mutex active_mutex;
  std::map<std::string, CancelToken> active;
  std::atomic<bool> stopping{false};

  void cancelAll();
};

// Serves one HTTP request: routing, inbound key check, body limits, the engine call and
// the response in the route's format.
class RequestHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit RequestHandler(SharedState& state) : state_(state) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override;

 private:
  SharedState& state_;
};

}  // namespace hfchain::gateway
