// The HTTP gateway over loopback: a real Poco server in front of an engine whose targets are
// scripted upstreams, called with a Poco HTTP client.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "gateway/wire_format.h"
#include "hfchain/engine.h"
#include "hfchain/gateway.h"
#include "hfchain/metrics.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct HttpAnswer {
  int status = 0;
  std::string content_type;
  std::string retry_after;
  std::string body;
};

HttpAnswer call(uint16_t port, const std::string& method, const std::string& path,
                const std::string& body = "", const std::string& bearer = "") {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!body.empty()) {
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
  }
  if (!bearer.empty()) request.set("Authorization", "Bearer " + bearer);
  session.sendRequest(request) << body;
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  HttpAnswer answer;
  answer.status = response.getStatus();
  answer.content_type = response.getContentType();
  answer.retry_after = response.get("Retry-After", "");
  std::ostringstream text;
  text << in.rdbuf();
  answer.body = text.str();
  return answer;
}

size_t countOf(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++count;
  }
  return count;
}

// Returns the JSON payloads of the "data:" lines of an event stream, without [DONE].
std::vector<json> dataEvents(const std::string& stream) {
  std::vector<json> events;
  std::istringstream lines(stream);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("data:", 0) != 0) continue;
    std::string payload = line.substr(5);
    if (payload.find("[DONE]") != std::string::npos) continue;
    events.push_back(json::parse(payload));
  }
  return events;
}

std::string chatDelta(const std::string& content, const char* finish_reason = nullptr) {
  json chunk = {{"id", "chatcmpl-1"},
                {"object", "chat.completion.chunk"},
                {"created", 1700000000},
                {"model", "m"},
                {"choices",
                 json::array({{{"index", 0},
                               {"delta", {{"content", content}}},
                               {"finish_reason", finish_reason ? json(finish_reason) : json()}}})}};
  return "data: " + chunk.dump() + "\n\n";
}

json sseExchange(const std::vector<std::string>& chunks, bool repeat = false) {
  json list = json::array();
  for (const std::string& chunk : chunks) list.push_back({{"text", chunk}});
  json exchange = {{"status", 200},
                   {"headers", {{"content-type", "text/event-stream"}}},
                   {"chunks", list},
                   {"end", "close"}};
  if (repeat) exchange["repeat"] = true;
  return exchange;
}

json jsonExchange(const json& body, bool repeat = false) {
  json exchange = {{"status", 200},
                   {"headers", {{"content-type", "application/json"}}},
                   {"chunks", json::array({{{"text", body.dump()}}})},
                   {"end", "close"}};
  if (repeat) exchange["repeat"] = true;
  return exchange;
}

// A TGI /generate body whose whole text is `text`.
json tgiWhole(const std::string& text) {
  return {{"generated_text", text},
          {"details", {{"finish_reason", "length"}, {"generated_tokens", 2}}}};
}

std::string chatBody(bool stream, const std::string& extra = "") {
  return R"({"model":"m","stream":)" + std::string(stream ? "true" : "false") +
         R"(,"messages":[{"role":"user","content":"hi"}])" + extra + "}";
}

std::string targetsYaml(const replay::ScriptedUpstreams& servers, const std::string& protocol,
                        const std::string& default_target = "") {
  std::string yaml = default_target.empty() ? "" : "default_target: " + default_target + "\n";
  yaml += "targets:\n";
  for (const std::string& name : servers.names()) {
    yaml += "  " + name + ":\n    protocol: " + protocol +
            "\n    base_url: " + servers.find(name)->baseUrl() +
            "\n    model: m\n    timeouts: {idle_ms: 2000, total_ms: 5000}\n";
  }
  return yaml;
}

// A running gateway over scripted upstreams.
class GatewayFixture {
 public:
  GatewayFixture(const json& script, const std::string& protocol, GatewayOptions options = {}) {
    auto upstreams = replay::ScriptedUpstreams::start(script);
    EXPECT_TRUE(upstreams.ok()) << upstreams.error().message;
    servers_ = std::move(upstreams).value();
    ParsedConfig parsed = parseConfig(targetsYaml(*servers_, protocol), "gateway-test.yaml");
    EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.issues[0].describe());
    auto engine = Engine::create(parsed.config);
    EXPECT_TRUE(engine.ok()) << engine.error().message;
    engine_ = std::move(engine).value();
    auto gateway = Gateway::start(*engine_, std::move(options));
    EXPECT_TRUE(gateway.ok()) << gateway.error().message;
    gateway_ = std::move(gateway).value();
  }
  ~GatewayFixture() {
    gateway_->stop();
    servers_->stop();
  }

  uint16_t port() const { return gateway_->port(); }
  replay::ScriptedUpstreams& servers() { return *servers_; }

 private:
  std::unique_ptr<replay::ScriptedUpstreams> servers_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<Gateway> gateway_;
};

TEST(Gateway, OpenAiStreamAddsMissingDone) {
  GatewayFixture fixture(
      {{"primary",
        json::array({sseExchange({chatDelta("Hel"), chatDelta("lo"), chatDelta("", "stop")})})}},
      "openai");
  HttpAnswer answer = call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true));
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.content_type, "text/event-stream");
  EXPECT_EQ(countOf(answer.body, "data: [DONE]"), 1u) << answer.body;
  EXPECT_EQ(answer.body.substr(answer.body.size() - 14), "data: [DONE]\n\n");
  std::string text;
  std::string finish_reason;
  for (const json& event : dataEvents(answer.body)) {
    EXPECT_EQ(event["object"], "chat.completion.chunk");
    const json& choice = event["choices"][0];
    text += choice["delta"].value("content", "");
    if (choice["finish_reason"].is_string()) finish_reason = choice["finish_reason"];
  }
  EXPECT_EQ(text, "Hello");
  EXPECT_EQ(finish_reason, "stop");
}

TEST(Gateway, OpenAiStreamKeepsOneDone) {
  GatewayFixture fixture(
      {{"primary",
        json::array({sseExchange({chatDelta("OK"), chatDelta("", "stop"), "data: [DONE]\n\n"})})}},
      "openai");
  HttpAnswer answer = call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true));
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(countOf(answer.body, "[DONE]"), 1u) << answer.body;
}

TEST(Gateway, OpenAiWholeAnswerIsJson) {
  json completion = {
      {"id", "chatcmpl-9"},
      {"object", "chat.completion"},
      {"created", 1700000000},
      {"model", "m"},
      {"choices", json::array({{{"index", 0},
                                {"message", {{"role", "assistant"}, {"content", "Hi there"}}},
                                {"finish_reason", "stop"}}})},
      {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 2}, {"total_tokens", 7}}}};
  GatewayFixture fixture({{"primary", json::array({jsonExchange(completion)})}}, "openai");
  HttpAnswer answer = call(fixture.port(), "POST", "/v1/chat/completions",
                           chatBody(false, R"(,"max_tokens":12,"temperature":0.5)"));
  ASSERT_EQ(answer.status, 200) << answer.body;
  json body = json::parse(answer.body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["choices"][0]["message"]["content"], "Hi there");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  json sent = json::parse(fixture.servers().find("primary")->requests().at(0).body);
  EXPECT_EQ(sent["max_tokens"], 12);
  EXPECT_EQ(sent["temperature"], 0.5);
  EXPECT_EQ(sent["stream"], false);
}

std::string tgiToken(int index, const std::string& text, bool last) {
  json event = {
      {"index", index},
      {"token", {{"id", index}, {"text", text}, {"logprob", -0.1}, {"special", false}}},
      {"generated_text", last ? json("ab") : json()},
      {"details", last ? json({{"finish_reason", "length"}, {"generated_tokens", 2}}) : json()}};
  return "data: " + event.dump() + "\n\n";
}

TEST(Gateway, TgiStreamEndsWithGeneratedText) {
  GatewayFixture fixture(
      {{"primary", json::array({sseExchange({tgiToken(1, "a", false), tgiToken(2, "b", true)})})}},
      "tgi");
  HttpAnswer answer = call(fixture.port(), "POST", "/generate_stream",
                           R"({"inputs":"x","parameters":{"max_new_tokens":2}})");
  ASSERT_EQ(answer.status, 200) << answer.body;
  std::vector<json> events = dataEvents(answer.body);
  ASSERT_GE(events.size(), 3u) << answer.body;
  EXPECT_EQ(events[0]["token"]["text"], "a");
  EXPECT_EQ(events[1]["token"]["text"], "b");
  EXPECT_EQ(events.back()["generated_text"], "ab");
  EXPECT_EQ(events.back()["details"]["finish_reason"], "length");
  EXPECT_EQ(countOf(answer.body, "[DONE]"), 0u);
}

TEST(Gateway, TgiGenerateReturnsWholeText) {
  GatewayFixture fixture({{"primary", json::array({jsonExchange(tgiWhole("ab"))})}}, "tgi");
  HttpAnswer answer = call(fixture.port(), "POST", "/generate", R"({"inputs":"x"})");
  ASSERT_EQ(answer.status, 200) << answer.body;
  json body = json::parse(answer.body);
  EXPECT_EQ(body["generated_text"], "ab");
  EXPECT_EQ(body["details"]["finish_reason"], "length");
}

TEST(Gateway, ErrorAsFirstEventBecomesJsonError) {
  // Case C05 r2: the upstream returns 200 and its only event is a validation error.
  json error_stream =
      sseExchange({"data:{\"error\":\"Input validation error: `top_p` must be > 0.0 and < 1.0\","
                   "\"error_type\":\"validation\"}\n\n"});
  GatewayFixture fixture({{"primary", json::array({error_stream})}}, "openai");
  HttpAnswer answer =
      call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true, R"(,"top_p":0.0)"));
  EXPECT_TRUE(answer.status == 400 || answer.status == 422) << answer.status;
  EXPECT_EQ(answer.content_type, "application/json");
  json body = json::parse(answer.body);
  EXPECT_NE(body["error"]["message"].get<std::string>().find("top_p"), std::string::npos);
  EXPECT_EQ(countOf(answer.body, "[DONE]"), 0u);
}

TEST(Gateway, CutStreamEndsWithErrorEvent) {
  // Case C06 r1: three deltas, then the upstream closes without a finish.
  GatewayFixture fixture(
      {{"primary",
        json::array({sseExchange({chatDelta("The"), chatDelta(" answer"), chatDelta(" is")})})}},
      "openai");
  HttpAnswer answer = call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true));
  EXPECT_EQ(answer.status, 200);
  std::vector<json> events = dataEvents(answer.body);
  ASSERT_EQ(events.size(), 4u) << answer.body;
  std::string text;
  for (size_t i = 0; i < 3; ++i) text += events[i]["choices"][0]["delta"].value("content", "");
  EXPECT_EQ(text, "The answer is");
  ASSERT_TRUE(events[3].contains("error")) << events[3].dump();
  EXPECT_FALSE(events[3]["error"]["message"].get<std::string>().empty());
  EXPECT_EQ(countOf(answer.body, "[DONE]"), 0u);
}

TEST(Gateway, UpstreamRateLimitKeepsRetryAfter) {
  json limited = {{"status", 429},
                  {"headers", {{"content-type", "application/json"}, {"retry-after", "2"}}},
                  {"chunks", json::array({{{"text", R"({"error":"slow down"})"}}})},
                  {"end", "close"}};
  GatewayFixture fixture({{"primary", json::array({limited})}}, "openai");
  HttpAnswer answer = call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true));
  EXPECT_EQ(answer.status, 429) << answer.body;
  EXPECT_EQ(answer.retry_after, "2");
  json body = json::parse(answer.body);
  EXPECT_EQ(body["error"]["code"], "rate_limited");
  EXPECT_EQ(body["error"]["type"], "rate_limit_error");
}

TEST(Gateway, BadRequestsGetErrorStatuses) {
  GatewayOptions options;
  options.max_body_bytes = 1024;
  GatewayFixture fixture({{"primary", json::array()}}, "openai", options);
  HttpAnswer unknown = call(fixture.port(), "GET", "/v2/nothing");
  EXPECT_EQ(unknown.status, 404);
  HttpAnswer malformed = call(fixture.port(), "POST", "/v1/chat/completions", "{\"model\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_NE(malformed.body.find("not valid JSON"), std::string::npos) << malformed.body;
  HttpAnswer no_messages = call(fixture.port(), "POST", "/v1/chat/completions", "{}");
  EXPECT_EQ(no_messages.status, 400);
  EXPECT_NE(no_messages.body.find("messages"), std::string::npos) << no_messages.body;
  HttpAnswer tgi = call(fixture.port(), "POST", "/generate", "[1]");
  EXPECT_EQ(tgi.status, 400);
  EXPECT_TRUE(json::parse(tgi.body).contains("error_type")) << tgi.body;
  HttpAnswer large = call(fixture.port(), "POST", "/generate", std::string(2048, ' '));
  EXPECT_EQ(large.status, 413);
  HttpAnswer wrong_method = call(fixture.port(), "GET", "/generate");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(fixture.servers().find("primary")->requestCount(), 0u);
}

TEST(Gateway, MetricsAndHealth) {
  GatewayFixture fixture({{"primary", json::array()}}, "openai");
  ASSERT_EQ(call(fixture.port(), "GET", "/nothing").status, 404);
  HttpAnswer health = call(fixture.port(), "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");
  HttpAnswer metrics = call(fixture.port(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("hfchain_gateway_requests_total{route=\"other\",status=\"404\"}"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("hfchain_gateway_request_duration_seconds"), std::string::npos);
}

TEST(Gateway, ApiKeysRejectUnknownCallers) {
  GatewayOptions options;
  options.api_keys = {"key-one"};
  GatewayFixture fixture(
      {{"primary", json::array({sseExchange({chatDelta("OK"), chatDelta("", "stop")})})}}, "openai",
      options);
  HttpAnswer missing = call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true));
  EXPECT_EQ(missing.status, 401);
  HttpAnswer wrong =
      call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true), "key-two");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.body.find("key-two"), std::string::npos);
  HttpAnswer accepted =
      call(fixture.port(), "POST", "/v1/chat/completions", chatBody(true), "key-one");
  EXPECT_EQ(accepted.status, 200) << accepted.body;
  EXPECT_EQ(fixture.servers().find("primary")->requestCount(), 1u);
}

TEST(Gateway, ApiKeyFileGivesTenants) {
  fs::path path = fs::temp_directory_path() / "hfchain-gateway-keys.txt";
  std::ofstream(path) << "# inbound keys\nkey-one team-a\n\nkey-two\n";
  Result<ApiKeys> keys = loadApiKeysFile(path.string());
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->keys, (std::vector<std::string>{"key-one", "key-two"}));
  ASSERT_EQ(keys->tenants.size(), 1u);
  EXPECT_EQ(keys->tenants.at("key-one"), "team-a");

  std::ofstream(path) << "key-one team-a extra\n";
  Result<ApiKeys> bad = loadApiKeysFile(path.string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("line 1 has more than two fields"), std::string::npos);
  EXPECT_EQ(bad.error().message.find("key-one"), std::string::npos) << bad.error().message;

  // A key listed twice is an error whether or not the tenants differ, and the message names
  // the lines, never the key.
  for (const char* second : {"key-one team-b", "key-one team-a", "key-one"}) {
    std::ofstream(path) << "key-one team-a\n# comment\nkey-two\n" << second << "\n";
    Result<ApiKeys> duplicate = loadApiKeysFile(path.string());
    ASSERT_FALSE(duplicate.ok()) << second;
    EXPECT_NE(duplicate.error().message.find("lists the same key on lines 1 and 4"),
              std::string::npos)
        << duplicate.error().message;
    EXPECT_EQ(duplicate.error().message.find("key-one"), std::string::npos)
        << duplicate.error().message;
  }
  fs::remove(path);
}

TEST(Gateway, TenantOfKeyReachesLinks) {
  const std::string plugin = std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/plugin_counter.so";
  ParsedConfig parsed = parseConfig(
      "targets:\n  t:\n    protocol: tgi\n    base_url: http://127.0.0.1:9\n"
      "chain:\n  - link: count\n    plugin: " +
          plugin + "\n",
      "tenant-test.yaml");
  ASSERT_TRUE(parsed.ok());
  auto engine = Engine::create(parsed.config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  GatewayOptions options;
  options.api_keys = {"key-one", "key-two"};
  options.key_tenants = {{"key-one", "team-a"}};
  auto gateway = Gateway::start(**engine, options);
  ASSERT_TRUE(gateway.ok()) << gateway.error().message;

  HttpAnswer tenant =
      call((*gateway)->port(), "POST", "/generate", R"({"inputs":"abc"})", "key-one");
  ASSERT_EQ(tenant.status, 200) << tenant.body;
  json seen = json::parse(json::parse(tenant.body)["generated_text"].get<std::string>());
  EXPECT_EQ(seen["tenant"], "team-a");
  EXPECT_EQ(seen["key_id"], keyFingerprint("key-one"));

  HttpAnswer none = call((*gateway)->port(), "POST", "/generate", R"({"inputs":"abc"})", "key-two");
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(json::parse(json::parse(none.body)["generated_text"].get<std::string>())["tenant"], "");
  (*gateway)->stop();
}

// Headers that links set on the response, here the budget link's output limit, reach the
// caller of both a stream and a whole answer.
TEST(Gateway, LinkHeadersReachCaller) {
  auto servers = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({sseExchange({tgiToken(1, "a", false), tgiToken(2, "b", false),
                                                 tgiToken(3, "c", false), tgiToken(4, "d", true)},
                                                true)})}});
  ASSERT_TRUE(servers.ok()) << servers.error().message;
  ParsedConfig parsed =
      parseConfig(targetsYaml(**servers, "tgi") +
                      "chain:\n  - link: budget\n    settings: {max_output_tokens: 2}\n",
                  "headers-test.yaml");
  ASSERT_TRUE(parsed.ok()) << configError(parsed.issues).message;
  parsed.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
  auto engine = Engine::create(parsed.config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  auto gateway = Gateway::start(**engine, GatewayOptions{});
  ASSERT_TRUE(gateway.ok()) << gateway.error().message;

  for (const std::string path : {"/generate_stream", "/generate"}) {
    Poco::Net::HTTPClientSession session("127.0.0.1", (*gateway)->port());
    session.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest request("POST", path, Poco::Net::HTTPMessage::HTTP_1_1);
    const std::string body = R"({"inputs":"abc","parameters":{"max_new_tokens":10}})";
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::ostringstream text;
    text << in.rdbuf();
    EXPECT_EQ(response.getStatus(), 200) << path << ": " << text.str();
    EXPECT_EQ(response.get("x-hfchain-output-limit", ""), "2") << path;
    EXPECT_FALSE(response.get("x-hfchain-request-id", "").empty()) << path;
  }
  (*gateway)->stop();
  (*servers)->stop();
}

// An over-window request can never succeed, so the caller gets 400 without Retry-After, not
// the 429 of a spent budget.
TEST(Gateway, OverWindowRequestIsBadRequest) {
  auto servers = replay::ScriptedUpstreams::start(
      json{{"primary", json::array({sseExchange({tgiToken(1, "a", true)}, true)})}});
  ASSERT_TRUE(servers.ok()) << servers.error().message;
  ParsedConfig parsed = parseConfig(
      targetsYaml(**servers, "tgi") + "    context_window: 64\nchain:\n  - link: budget\n",
      "window-test.yaml");
  ASSERT_TRUE(parsed.ok()) << configError(parsed.issues).message;
  parsed.config.plugin_path = {HFCHAIN_PLUGIN_DIR};
  auto engine = Engine::create(parsed.config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  auto gateway = Gateway::start(**engine, GatewayOptions{});
  ASSERT_TRUE(gateway.ok()) << gateway.error().message;

  HttpAnswer answer = call((*gateway)->port(), "POST", "/v1/chat/completions",
                           chatBody(true, R"(,"max_tokens":100)"));
  EXPECT_EQ(answer.status, 400) << answer.body;
  EXPECT_TRUE(answer.retry_after.empty()) << answer.retry_after;
  json error = json::parse(answer.body)["error"];
  EXPECT_EQ(error["code"], "budget_exceeded");
  EXPECT_EQ(error["type"], "invalid_request_error");
  EXPECT_NE(error["message"].get<std::string>().find("64"), std::string::npos) << error;
  EXPECT_EQ((*servers)->find("primary")->requestCount(), 0u);
  (*gateway)->stop();
  (*servers)->stop();
}

TEST(Gateway, CallerDisconnectCancelsStream) {
  // Writing to the closed connection must fail with EPIPE instead of ending the test process.
  std::signal(SIGPIPE, SIG_IGN);
  json chunks = json::array({{{"text", chatDelta("first")}}});
  for (int i = 0; i < 20; ++i) chunks.push_back({{"text", chatDelta(" more")}, {"delay_ms", 20}});
  chunks.push_back({{"text", chatDelta("", "stop")}});
  json exchange = {{"status", 200},
                   {"headers", {{"content-type", "text/event-stream"}}},
                   {"chunks", chunks},
                   {"end", "close"}};
  GatewayFixture fixture({{"primary", json::array({exchange})}}, "openai");

  const double before = Metrics::global().value("hfchain_gateway_disconnects_total",
                                                R"(route="/v1/chat/completions")");
  {
    Poco::Net::HTTPClientSession session("127.0.0.1", fixture.port());
    session.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest request("POST", "/v1/chat/completions", "HTTP/1.1");
    std::string body = chatBody(true);
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    ASSERT_EQ(response.getStatus(), 200);
    std::string line;
    ASSERT_TRUE(std::getline(in, line));
    EXPECT_NE(line.find("first"), std::string::npos) << line;
    session.reset();
  }

  double after = before;
  for (int i = 0; i < 200 && after == before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    after = Metrics::global().value("hfchain_gateway_disconnects_total",
                                    R"(route="/v1/chat/completions")");
  }
  EXPECT_EQ(after, before + 1);
}

TEST(GatewayStatus, ErrorClassesMapToStatuses) {
  struct Case {
    ErrorClass cls;
    int upstream_status;
    int expected;
  };
  const Case cases[] = {
      {ErrorClass::kInvalidRequest, 0, 400},       {ErrorClass::kUpstreamValidation, 200, 422},
      {ErrorClass::kUpstreamValidation, 400, 400}, {ErrorClass::kUpstreamAuth, 403, 403},
      {ErrorClass::kUpstreamAuth, 0, 401},         {ErrorClass::kUpstreamNotFound, 404, 404},
      {ErrorClass::kRateLimited, 429, 429},        {ErrorClass::kCircuitOpen, 0, 503},
      {ErrorClass::kModelLoading, 503, 503},       {ErrorClass::kTimeout, 0, 504},
      {ErrorClass::kConnectFailed, 0, 502},        {ErrorClass::kUpstream5xx, 500, 502},
      {ErrorClass::kBudgetExceeded, 0, 429},       {ErrorClass::kBudgetExceeded, 429, 429},
      {ErrorClass::kBudgetExceeded, 400, 400},     {ErrorClass::kContextOverflow, 0, 400},
      {ErrorClass::kStreamIncomplete, 200, 502},   {ErrorClass::kInternal, 0, 500},
  };
  for (const Case& item : cases) {
    Error error = makeError(item.cls, "x");
    error.http_status = item.upstream_status;
    EXPECT_EQ(gateway::httpStatusFor(error), item.expected) << errorClassName(item.cls);
  }
}

TEST(GatewayStatus, RetryAfterRoundsUp) {
  Error limited = makeError(ErrorClass::kRateLimited, "x");
  EXPECT_EQ(gateway::retryAfterSeconds(limited), -1);
  limited.retry_after_ms = 1001;
  EXPECT_EQ(gateway::retryAfterSeconds(limited), 2);
  limited.retry_after_ms = 0;
  EXPECT_EQ(gateway::retryAfterSeconds(limited), 0);
  Error loading = makeError(ErrorClass::kModelLoading, "x");
  loading.estimated_time_s = 12.5;
  EXPECT_EQ(gateway::retryAfterSeconds(loading), 13);
}

// Polls /health until the generation differs from `old_generation` or a second passes.
bool waitForGeneration(uint16_t port, uint64_t old_generation) {
  for (int i = 0; i < 100; ++i) {
    json health = json::parse(call(port, "GET", "/health").body);
    if (health["generation"].get<uint64_t>() != old_generation) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(Gateway, ConfigEditReloadsTargets) {
  auto upstreams = replay::ScriptedUpstreams::start(
      json{{"a", json::array({jsonExchange(tgiWhole("A"), true)})},
           {"b", json::array({jsonExchange(tgiWhole("B"), true)})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto& servers = *upstreams.value();
  auto directory = std::filesystem::temp_directory_path() / ("gateway-reload-" + newRequestId());
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "chain.yaml").string();
  auto write = [&path](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write(targetsYaml(servers, "tgi", "a"));

  ParsedConfig parsed = loadConfigFile(path);
  ASSERT_TRUE(parsed.ok());
  auto engine = Engine::create(parsed.config);
  ASSERT_TRUE(engine.ok()) << engine.error().message;
  GatewayOptions options;
  options.config_path = path;
  options.reload_poll_interval = std::chrono::milliseconds(10);
  auto gateway = Gateway::start(**engine, options);
  ASSERT_TRUE(gateway.ok()) << gateway.error().message;
  const uint16_t port = (*gateway)->port();
  const std::string body = R"({"inputs":"x"})";
  EXPECT_EQ(json::parse(call(port, "POST", "/generate", body).body)["generated_text"], "A");

  const uint64_t first = (*engine)->snapshot()->generation();
  write(targetsYaml(servers, "tgi", "b"));
  ASSERT_TRUE(waitForGeneration(port, first));
  EXPECT_EQ(json::parse(call(port, "POST", "/generate", body).body)["generated_text"], "B");

  const double failures = Metrics::global().value("hfchain_config_reload_failures_total");
  write("targets:\n  a: [not, a, target\n");
  for (int i = 0;
       i < 100 && Metrics::global().value("hfchain_config_reload_failures_total") == failures;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Metrics::global().value("hfchain_config_reload_failures_total"), failures + 1);
  EXPECT_EQ(json::parse(call(port, "POST", "/generate", body).body)["generated_text"], "B");

  (*gateway)->stop();
  servers.stop();
  std::filesystem::remove_all(directory);
}

TEST(GatewayCli, ServeStopsOnSignal) {
  auto directory = std::filesystem::temp_directory_path() / ("gateway-cli-" + newRequestId());
  std::filesystem::create_directories(directory);
  const std::string path = (directory / "chain.yaml").string();
  // Nothing listens on the discard port, so a generation request would fail; this test only
  // needs the gateway's own routes.
  std::ofstream(path) << "targets:\n  primary:\n    protocol: tgi\n"
                         "    base_url: http://127.0.0.1:9\n";

  Poco::Pipe out_pipe;
  Poco::Pipe err_pipe;
  Poco::ProcessHandle handle = Poco::Process::launch(
      HFCHAIN_CLI_PATH, {"serve", "--config", path, "--port", "0"}, ".", nullptr, &out_pipe,
      &err_pipe, Poco::Process::Env{{"HFCHAIN_PLUGIN_PATH", HFCHAIN_PLUGIN_DIR}});
  Poco::PipeInputStream from_child(out_pipe);
  std::string line;
  ASSERT_TRUE(std::getline(from_child, line));
  const std::string prefix = "serve: listening on http://127.0.0.1:";
  ASSERT_EQ(line.rfind(prefix, 0), 0u) << line;
  const auto port = static_cast<uint16_t>(std::stoi(line.substr(prefix.size())));

  HttpAnswer health = call(port, "GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["generation"], 1);

  Poco::Process::requestTermination(handle.id());
  Poco::PipeInputStream errors(err_pipe);
  std::string err;
  Poco::StreamCopier::copyToString(errors, err);
  EXPECT_EQ(handle.wait(), 0) << err;
  EXPECT_NE(err.find("stopping"), std::string::npos) << err;
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace hfchain
