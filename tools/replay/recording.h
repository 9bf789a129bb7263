// Recorded HTTP exchanges (tests/data/recorded/*.json) and the rules that match a live request
// against them.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "replay/result.h"

namespace hfchain::replay {

// One recorded request and the response the upstream sent for it.
struct Recording {
  std::string file;  // path the recording was loaded from, for messages

  std::string method;                          // e.g. "POST"
  std::string path;                            // path and query, e.g. "/a?b=1"
  std::optional<std::string> request_body;     // nullopt: the request had no body
  std::optional<nlohmann::json> request_json;  // request_body parsed, when it is JSON
  std::vector<std::pair<std::string, std::string>> request_headers;

  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> response_headers;  // in recorded order
  std::vector<std::string> body_chunks;  // concatenated, the exact body bytes

  // Returns the whole response body.
  std::string body() const;

  // Returns the value of the first response header named `name` (compared without case), or
  // an empty string.
  std::string responseHeader(const std::string& name) const;

  // Returns true when the response is a server-sent event stream (text/event-stream).
  bool isEventStream() const;
};

// Parses one recording from its JSON text. `file` only labels error messages.
Result<Recording> parseRecording(const std::string& json_text, const std::string& file);

// Loads a single recording file.
Result<Recording> loadRecordingFile(const std::string& path);

// Loads `path` when it is a file, or every *.json file of the folder `path` in file name order.
// Fails on the first malformed file and on a folder without recordings.
Result<std::vector<Recording>> loadRecordings(const std::string& path);

// Returns true when the request (method, path with query, body) matches the recording.
// Methods compare exactly and paths compare byte for byte. A recorded body that parses as
// JSON matches a request body with an equal JSON value, so key order and whitespace do not
// matter. Other bodies compare as bytes. A recording without a body matches a request whose
// body is empty.
bool requestMatches(const Recording& recording, const std::string& method, const std::string& path,
                    const std::string& body);

}  // namespace hfchain::replay
