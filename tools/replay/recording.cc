// Loading and matching of recorded exchanges.
#include "replay/recording.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace hfchain::replay {
namespace {

bool equalsIgnoreCase(const std::string& a, const std::string& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

Error recordingError(const std::string& file, const std::string& problem) {
  return makeError(ErrorClass::kConfigRejected, "invalid recording " + file + ": " + problem);
}

// Parses `text` as JSON, or returns nullopt when it is not JSON.
std::optional<nlohmann::json> parseJsonBody(const std::string& text) {
  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// Reads a JSON object of string values into name/value pairs.
Result<std::vector<std::pair<std::string, std::string>>> readHeaders(const nlohmann::json& node,
                                                                     const std::string& file,
                                                                     const std::string& where) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (node.is_null()) return headers;
  if (!node.is_object()) return recordingError(file, where + " must be an object");
  for (const auto& [name, value] : node.items()) {
    if (!value.is_string()) {
      return recordingError(file, where + "." + name + " must be a string");
    }
    headers.emplace_back(name, value.get<std::string>());
  }
  return headers;
}

Result<std::string> readString(const nlohmann::json& object, const char* key,
                               const std::string& file, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    return recordingError(file, where + "." + key + " is missing or not a string");
  }
  return it->get<std::string>();
}

}  // namespace

std::string Recording::body() const {
  std::string joined;
  for (const std::string& chunk : body_chunks) joined += chunk;
  return joined;
}

std::string Recording::responseHeader(const std::string& name) const {
  for (const auto& [key, value] : response_headers) {
    if (equalsIgnoreCase(key, name)) return value;
  }
  return {};
}

bool Recording::isEventStream() const {
  std::string type = responseHeader("Content-Type");
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type.find("text/event-stream") != std::string::npos;
}

Result<Recording> parseRecording(const std::string& json_text, const std::string& file) {
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    return recordingError(file, e.what());
  }
  if (!root.is_object()) return recordingError(file, "the top level must be a JSON object");

  auto request = root.find("request");
  auto response = root.find("response");
  if (request == root.end() || !request->is_object()) {
    return recordingError(file, "\"request\" is missing or not an object");
  }
  if (response == root.end() || !response->is_object()) {
    return recordingError(file, "\"response\" is missing or not an object");
  }

  Recording recording;
  recording.file = file;

  auto method = readString(*request, "method", file, "request");
  if (!method) return method.error();
  recording.method = std::move(method).value();
  auto path = readString(*request, "path", file, "request");
  if (!path) return path.error();
  recording.path = std::move(path).value();
  if (recording.path.empty() || recording.path.front() != '/') {
    return recordingError(file, "request.path must start with '/', got \"" + recording.path + "\"");
  }

  auto body = request->find("body");
  if (body != request->end() && body->is_string()) {
    recording.request_body = body->get<std::string>();
    recording.request_json = parseJsonBody(*recording.request_body);
  } else if (body != request->end() && !body->is_null()) {
    return recordingError(file, "request.body must be a string or null");
  }
  auto request_headers =
      readHeaders(request->value("headers", nlohmann::json()), file, "request.headers");
  if (!request_headers) return request_headers.error();
  recording.request_headers = std::move(request_headers).value();

  auto status = response->find("status");
  if (status == response->end() || !status->is_number_integer() || status->get<int>() < 100 ||
      status->get<int>() > 999) {
    return recordingError(file, "response.status is missing or not an integer from 100 to 999");
  }
  recording.status = status->get<int>();
  auto reason = response->find("reason");
  if (reason != response->end() && reason->is_string()) {
    recording.reason = reason->get<std::string>();
  }
  auto response_headers =
      readHeaders(response->value("headers", nlohmann::json()), file, "response.headers");
  if (!response_headers) return response_headers.error();
  recording.response_headers = std::move(response_headers).value();

  auto chunks = response->find("body_chunks");
  if (chunks == response->end() || !chunks->is_array()) {
    return recordingError(file, "response.body_chunks is missing or not an array");
  }
  for (const nlohmann::json& chunk : *chunks) {
    if (!chunk.is_string()) {
      return recordingError(file, "response.body_chunks must contain only strings");
    }
    recording.body_chunks.push_back(chunk.get<std::string>());
  }
  return recording;
}

Result<Recording> loadRecordingFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return recordingError(path, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return recordingError(path, "reading the file failed");
  return parseRecording(text.str(), path);
}

Result<std::vector<Recording>> loadRecordings(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return makeError(ErrorClass::kConfigRejected, "recording path not found: " + path);
  }

  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".json") {
        files.push_back(entry.path().string());
      }
    }
    if (ec) {
      return makeError(ErrorClass::kConfigRejected,
                       "cannot list recording folder " + path + ": " + ec.message());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      return makeError(ErrorClass::kConfigRejected, "no *.json recordings in folder " + path);
    }
  } else {
    files.push_back(path);
  }

  std::vector<Recording> recordings;
  for (const std::string& file : files) {
    auto recording = loadRecordingFile(file);
    if (!recording) return recording.error();
    recordings.push_back(std::move(recording).value());
  }
  return recordings;
}

bool requestMatches(const Recording& recording, const std::string& method, const std::string& path,
                    const std::string& body) {
  if (recording.method != method || recording.path != path) return false;
  if (!recording.request_body || recording.request_body->empty()) return body.empty();
  if (recording.request_json) {
    std::optional<nlohmann::json> request_json = parseJsonBody(body);
    return request_json && *request_json == *recording.request_json;
  }
  return body == *recording.request_body;
}

}  // namespace hfchain::replay
