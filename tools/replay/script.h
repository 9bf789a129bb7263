// Scripts for ScriptedUpstream: per-request HTTP exchanges, including faults such as a status
// line never sent, a connection reset and a stalled body. The JSON form is the one of the
// "upstream_script" entries in tests/data/cases/*.json.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "replay/result.h"

namespace hfchain::replay {

// One write unit of a scripted body: the bytes are written (and framed as one HTTP chunk in
// chunked mode) after waiting delay_ms.
struct ScriptChunk {
  std::string bytes;
  int delay_ms = 0;
};

// Connection ending after the last body chunk.
enum class ExchangeEnd {
  kClose,  // clean end of the body, then the connection is closed
  kReset,  // the connection is aborted with a TCP reset (SO_LINGER 0)
  kStall,  // nothing more is sent; the connection stays open until the client or stop() ends it
};

// One scripted response to one HTTP request.
struct ScriptedExchange {
  std::optional<int> status;  // nullopt: accept the request but never send a status line
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<ScriptChunk> chunks;
  size_t write_size = 0;  // when > 0, each chunk is split further into writes of this size
  ExchangeEnd end = ExchangeEnd::kClose;
  bool repeat = false;  // serve this exchange for this and every later request
  // When set, the connection is reset once this many body bytes have been written.
  std::optional<size_t> reset_after_bytes;
};

using Script = std::vector<ScriptedExchange>;

// Parses the list of exchanges of one upstream. Errors name the exchange index and the field.
Result<Script> parseScript(const nlohmann::json& exchanges);

// Parses an "upstream_script" object: upstream name -> list of exchanges.
Result<std::map<std::string, Script>> parseUpstreamScripts(const nlohmann::json& upstream_script);

}  // namespace hfchain::replay
