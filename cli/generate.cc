// `hfchain generate`: one request through the chain, printed as it streams.
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "hfchain/engine.h"
#include "hfchain/transport.h"

namespace hfchain::cli {
namespace {

nlohmann::json eventJson(const Event& event) {
  nlohmann::json line;
  switch (event.kind) {
    case EventKind::kToken:
      line["type"] = "token";
      line["text"] = event.text;
      if (event.token_id >= 0) line["id"] = event.token_id;
      if (event.logprob) line["logprob"] = *event.logprob;
      line["special"] = event.special;
      break;
    case EventKind::kFinish:
      line["type"] = "finish";
      line["finish_reason"] = event.finish_reason;
      if (event.usage.prompt_tokens >= 0) line["prompt_tokens"] = event.usage.prompt_tokens;
      if (event.usage.completion_tokens >= 0) {
        line["completion_tokens"] = event.usage.completion_tokens;
      }
      break;
    case EventKind::kError:
      line["type"] = "error";
      line["class"] = std::string(errorClassName(event.error.cls));
      line["message"] = event.error.message;
      if (event.error.http_status != 0) line["status"] = event.error.http_status;
      if (!event.error.error_type.empty()) line["error_type"] = event.error.error_type;
      if (event.error.retry_after_ms >= 0) line["retry_after_ms"] = event.error.retry_after_ms;
      break;
  }
  if (!event.served_by.empty()) line["served_by"] = event.served_by;
  return line;
}

// Fills the request from the options; returns an error message or an empty string.
std::string buildRequest(Arguments& args, Request& request) {
  std::string error;
  if (auto target = args.take("--target", error)) request.target = *target;
  if (auto model = args.take("--model", error)) request.model = *model;
  std::optional<std::string> system = args.take("--system", error);
  if (auto value = args.take("--max-new-tokens", error)) {
    try {
      request.parameters["max_new_tokens"] = std::stoll(*value);
    } catch (const std::exception&) {
      return "--max-new-tokens must be a whole number, not '" + *value + "'";
    }
  }
  if (auto value = args.take("--temperature", error)) {
    try {
      request.parameters["temperature"] = std::stod(*value);
    } catch (const std::exception&) {
      return "--temperature must be a number, not '" + *value + "'";
    }
  }
  for (const std::string& pair : args.takeAll("--param", error)) {
    size_t equals = pair.find('=');
    if (equals == std::string::npos || equals == 0) {
      return "--param takes NAME=JSON, e.g. --param top_p=0.9; got '" + pair + "'";
    }
    nlohmann::json value = nlohmann::json::parse(pair.substr(equals + 1), nullptr, false);
    if (value.is_discarded()) value = pair.substr(equals + 1);  // a bare word is a string
    request.parameters[pair.substr(0, equals)] = value;
  }
  if (auto key = args.take("--key", error)) request.metadata.set("key", *key);
  if (auto tenant = args.take("--tenant", error)) request.metadata.set("tenant", *tenant);
  if (auto value = args.take("--timeout-ms", error)) {
    try {
      request.deadline = Clock::now() + std::chrono::milliseconds(std::stoll(*value));
    } catch (const std::exception&) {
      return "--timeout-ms must be a whole number, not '" + *value + "'";
    }
  }
  request.stream = !args.flag("--no-stream");
  bool raw = args.flag("--raw");
  if (!error.empty()) return error;
  if (auto unknown = args.unknownOption()) return *unknown;

  std::vector<std::string> words;
  for (const std::string& word : args.rest()) {
    if (word != "--") words.push_back(word);
  }
  if (words.empty()) return "no prompt given; pass it as an argument, or - to read standard input";
  std::string prompt;
  if (words.size() == 1 && words[0] == "-") {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    for (const std::string& word : words) prompt += (prompt.empty() ? "" : " ") + word;
  }
  if (raw) {
    request.inputs = prompt;
  } else {
    if (system) request.messages.push_back({"system", *system});
    request.messages.push_back({"user", prompt});
  }
  return "";
}

}  // namespace

int runGenerate(Arguments args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::string config_path = args.take("--config", error).value_or("");
  std::optional<std::string> url = args.take("--url", error);
  std::optional<std::string> protocol_name = args.take("--protocol", error);
  bool json = args.flag("--json");
  Request request;
  std::string request_error = buildRequest(args, request);
  if (!error.empty() || !request_error.empty()) {
    err << "hfchain generate: " << (error.empty() ? request_error : error) << "\n";
    return kExitUsage;
  }

  ParsedConfig parsed;
  if (url) {
    // With --url the chain comes from --config only when one is given.
    if (!config_path.empty()) parsed = loadConfig(config_path);
  } else {
    parsed = loadConfig(config_path);
  }
  if (!parsed.ok()) {
    for (const auto& issue : parsed.issues) err << issue.describe() << "\n";
    return kExitConfig;
  }

  std::shared_ptr<PluginRegistry> registry = makeRegistry();
  Result<ChainSnapshotPtr> snapshot = Error{};
  std::shared_ptr<Transport> direct;
  if (url) {
    TargetConfig target;
    target.name = "url";
    target.base_url = *url;
    auto protocol = protocolFromName(protocol_name.value_or("openai"));
    if (!protocol) {
      err << "hfchain generate: --protocol is '" << *protocol_name
          << "'; use tgi, openai or hf-serverless\n";
      return kExitUsage;
    }
    target.protocol = *protocol;
    Result<std::shared_ptr<Transport>> made = Transport::create(target);
    if (!made.ok()) {
      err << "hfchain generate: " << made.error().message << "\n";
      return kExitUsage;
    }
    direct = *made;
    parsed.config.targets.clear();
    parsed.config.default_target.clear();
    if (parsed.config.source.empty()) parsed.config.source = "--url";
    snapshot = ChainSnapshot::build(parsed.config, *registry,
                                    [direct](Request& r) { return direct->send(r); });
  } else {
    snapshot = ChainSnapshot::build(parsed.config, *registry);
  }
  if (!snapshot.ok()) {
    err << snapshot.error().message << "\n";
    return kExitConfig;
  }

  request.id = newRequestId();
  Response response = (*snapshot)->send(request);
  std::string served_by;
  if (const std::string* header = response.headers.find("x-hfchain-served-by")) served_by = *header;
  Event event;
  bool finished = false;
  Error failure = response.error;
  while (response.stream && response.stream->next(event)) {
    if (!event.served_by.empty()) served_by = event.served_by;
    if (json) {
      out << eventJson(event).dump() << "\n" << std::flush;
    } else if (event.kind == EventKind::kToken) {
      out << event.text << std::flush;
    }
    if (event.kind == EventKind::kFinish) finished = true;
    if (event.kind == EventKind::kError) failure = event.error;
    if (event.kind != EventKind::kToken) break;
  }
  if (!json) out << "\n" << std::flush;
  if (!finished && failure.ok()) {
    failure = makeError(ErrorClass::kStreamIncomplete, "the stream ended without its final event");
  }
  if (served_by == "local-responder") {
    std::string reason;
    if (const std::string* header = response.headers.find("x-hfchain-local-reason"))
      reason = *header;
    err << "hfchain: this answer came from the local responder" << (reason.empty() ? "" : ": ")
        << reason << "\n";
  }
  if (!failure.ok()) {
    err << "hfchain: request " << request.id << " failed: " << failure.describe();
    if (!failure.error_type.empty()) err << " [error_type " << failure.error_type << "]";
    err << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace hfchain::cli
