// The host side of the plugin ABI: the callback table, and the conversions between the
// opaque ABI handles and the engine's C++ objects.
#pragma once

#include "hfchain/abi/hfchain_plugin.h"
#include "hfchain/event.h"
#include "hfchain/link.h"
#include "hfchain/request.h"
#include "hfchain/response.h"

namespace hfchain::abi {

// The callback table handed to every plugin.
const hfc_host_api* hostApi();

// The opaque handles are the engine's own objects; these casts are the only place that
// knows it.
inline hfc_request* toAbi(Request* request) { return reinterpret_cast<hfc_request*>(request); }
inline Request* fromAbi(hfc_request* request) { return reinterpret_cast<Request*>(request); }
inline const Request* fromAbi(const hfc_request* request) {
  return reinterpret_cast<const Request*>(request);
}
inline hfc_event* toAbi(Event* event) { return reinterpret_cast<hfc_event*>(event); }
inline Event* fromAbi(hfc_event* event) { return reinterpret_cast<Event*>(event); }
inline const Event* fromAbi(const hfc_event* event) {
  return reinterpret_cast<const Event*>(event);
}
inline hfc_next* toAbi(Next* next) { return reinterpret_cast<hfc_next*>(next); }
inline Next* fromAbi(hfc_next* next) { return reinterpret_cast<Next*>(next); }

// Responses cross the boundary as heap objects owned by whoever holds the pointer.
inline hfc_response* releaseToAbi(Response response) {
  return reinterpret_cast<hfc_response*>(new Response(std::move(response)));
}
// Takes ownership back from the ABI. A null pointer becomes an internal error.
Response adoptFromAbi(hfc_response* response, const std::string& link_name);

Error errorFromAbi(const hfc_error& error);

}  // namespace hfchain::abi
