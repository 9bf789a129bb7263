// The fallback link against scripted loopback upstreams: which targets and tiers are tried
// and in what order, what the caller sees, hedging, the cache tier, per-tier links and
// broken streams.
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Timespan.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "hfchain/engine.h"
#include "hfchain/metrics.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using nlohmann::json;

// One TGI stream event carrying token `text`; the last one also carries the final details.
std::string tgiEvent(int index, const std::string& text, bool last) {
  json event = {{"index", index},
                {"token", {{"id", index}, {"text", text}, {"logprob", -0.1}, {"special", false}}},
                {"generated_text", nullptr},
                {"details", nullptr}};
  if (last) {
    event["details"] = {{"finish_reason", "length"}, {"generated_tokens", index}};
  }
  return "data: " + event.dump() + "\n\n";
}

// An exchange streaming `tokens`; with `finish` false the stream ends without its final
// event, as an upstream that closes mid-answer does.
json tgiExchange(const std::vector<std::string>& tokens, bool finish = true, int first_delay_ms = 0,
                 bool repeat = true) {
  json chunks = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    json chunk = {
        {"text", tgiEvent(static_cast<int>(i + 1), tokens[i], finish && i + 1 == tokens.size())}};
    if (i == 0 && first_delay_ms > 0) chunk["delay_ms"] = first_delay_ms;
    chunks.push_back(chunk);
  }
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", "close"},
          {"repeat", repeat}};
}

// An OpenAI chat stream of `tokens`; with `finish` false it ends without finish_reason.
json openaiExchange(const std::vector<std::string>& tokens, bool finish = true) {
  json chunks = json::array();
  for (const std::string& token : tokens) {
    json chunk = {
        {"choices", {{{"index", 0}, {"delta", {{"content", token}}}, {"finish_reason", nullptr}}}}};
    chunks.push_back({{"text", "data: " + chunk.dump() + "\n\n"}});
  }
  if (finish) {
    json last = {
        {"choices", {{{"index", 0}, {"delta", json::object()}, {"finish_reason", "stop"}}}}};
    chunks.push_back({{"text", "data: " + last.dump() + "\n\n"}});
    chunks.push_back({{"text", "data: [DONE]\n\n"}});
  }
  return {{"status", 200},
          {"headers", {{"content-type", "text/event-stream"}}},
          {"chunks", chunks},
          {"end", "close"},
          {"repeat", true}};
}

json statusExchange(int status, bool repeat = true) {
  return {{"status", status},
          {"headers", {{"content-type", "application/json"}}},
          {"chunks", {{{"text", R"({"error":"scripted failure","error_type":"overloaded"})"}}}},
          {"end", "close"},
          {"repeat", repeat}};
}

struct Seen {
  Response response;
  std::vector<Event> events;
  std::string text;
  std::vector<std::string> tokens;
  std::vector<std::string> served_by;  // of every event
  std::optional<Error> error;
  std::string finish_reason;

  std::string header(const std::string& name) const {
    const std::string* value = response.headers.find(name);
    return value != nullptr ? *value : "";
  }
};

Seen readAll(Response response) {
  Seen seen;
  Event event;
  while (response.stream->next(event)) {
    seen.events.push_back(event);
    seen.served_by.push_back(event.served_by);
    if (event.kind == EventKind::kToken) {
      seen.text += event.text;
      seen.tokens.push_back(event.text);
    } else if (event.kind == EventKind::kFinish) {
      seen.finish_reason = event.finish_reason;
    } else {
      seen.error = event.error;
    }
  }
  seen.response = std::move(response);
  return seen;
}

class FallbackTest : public ::testing::Test {
 protected:
  // Starts the upstreams of `script` and an engine whose targets are those upstreams (TGI
  // unless named in `openai`) and whose chain is `chain_yaml`.
  void start(const json& script, const std::string& chain_yaml,
             const std::set<std::string>& openai = {}) {
    auto upstreams = replay::ScriptedUpstreams::start(script);
    ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
    upstreams_ = std::move(upstreams).value();
    std::string yaml = "targets:\n";
    for (const std::string& name : upstreams_->names()) {
      const bool is_openai = openai.count(name) != 0;
      yaml += "  " + name + ":\n    protocol: " + (is_openai ? "openai" : "tgi") +
              "\n    base_url: " + upstreams_->find(name)->baseUrl() + (is_openai ? "/v1" : "") +
              "\n    model: m\n"
              "    timeouts: {connect_ms: 1000, first_byte_ms: 2000, idle_ms: 2000, "
              "total_ms: 5000}\n";
    }
    yaml += "default_target: " + upstreams_->names().front() + "\n" + chain_yaml;
    startYaml(yaml);
  }

  void startYaml(const std::string& yaml) {
    ParsedConfig parsed = parseConfig(yaml, "fallback-test.yaml");
    ASSERT_TRUE(parsed.ok()) << parsed.issues[0].describe() << "\n" << yaml;
    auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
    auto engine = Engine::create(parsed.config, registry);
    ASSERT_TRUE(engine.ok()) << engine.error().message << "\n" << yaml;
    engine_ = std::move(engine).value();
  }

  static Request prompt(const std::string& text) {
    Request request;
    request.inputs = text;
    request.parameters["max_new_tokens"] = 20;
    request.deadline = Clock::now() + std::chrono::seconds(10);
    return request;
  }

  static Request chat(const std::string& text) {
    Request request;
    request.messages = {{"user", text}};
    request.deadline = Clock::now() + std::chrono::seconds(10);
    return request;
  }

  Seen send(Request request) { return readAll(engine_->stream(std::move(request))); }

  size_t count(const std::string& name) const { return upstreams_->find(name)->requestCount(); }

  std::unique_ptr<replay::ScriptedUpstreams> upstreams_;
  std::unique_ptr<Engine> engine_;
};

const std::string kTwoTiers = R"(chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a]}
        - {name: light, targets: [b], model: small-model}
)";

TEST_F(FallbackTest, MainFailsWith503ThenLightServes) {
  const double before = Metrics::global().value(
      "hfchain_fallback_total", "from=\"main/a\",to=\"light/b\",reason=\"upstream_5xx\"");
  start({{"a", {statusExchange(503)}}, {"b", {openaiExchange({"Hello", " there"})}}}, kTwoTiers,
        {"b"});
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "Hello there");
  EXPECT_EQ(seen.header("x-hfchain-served-by"), "b");
  EXPECT_EQ(seen.header("x-hfchain-tier"), "light");
  ASSERT_EQ(seen.served_by.size(), 3u);
  for (const std::string& served_by : seen.served_by) EXPECT_EQ(served_by, "b");
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 1u);
  // The light tier's model override reaches the upstream.
  json body = json::parse(upstreams_->find("b")->requests()[0].body);
  EXPECT_EQ(body["model"], "small-model");
  EXPECT_EQ(Metrics::global().value("hfchain_fallback_total",
                                    "from=\"main/a\",to=\"light/b\",reason=\"upstream_5xx\""),
            before + 1);
}

TEST_F(FallbackTest, NonTriggerFailureIsReturned) {
  start({{"a", {statusExchange(400)}}, {"b", {tgiExchange({"unused"})}}}, kTwoTiers);
  Seen seen = send(prompt("hi"));
  ASSERT_TRUE(seen.error);
  EXPECT_EQ(seen.error->http_status, 400);
  EXPECT_EQ(seen.header("x-hfchain-tier"), "main");
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 0u);
}

TEST_F(FallbackTest, EveryTierFailingReturnsLastError) {
  start({{"a", {statusExchange(503)}}, {"b", {statusExchange(502)}}}, kTwoTiers);
  Seen seen = send(prompt("hi"));
  ASSERT_TRUE(seen.error);
  EXPECT_EQ(seen.error->http_status, 502);
  EXPECT_EQ(seen.header("x-hfchain-served-by"), "b");
  EXPECT_EQ(seen.header("x-hfchain-tier"), "light");
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 1u);
}

TEST_F(FallbackTest, FirstEventErrorTriggers) {
  json error_stream = {
      {"status", 200},
      {"headers", {{"content-type", "text/event-stream"}}},
      {"chunks", {{{"text", "data: {\"error\":\"boom\",\"error_type\":\"generation\"}\n\n"}}}},
      {"end", "close"},
      {"repeat", true}};
  start({{"a", {error_stream}}, {"b", {tgiExchange({"fine"})}}}, kTwoTiers);
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "fine");
  EXPECT_EQ(seen.header("x-hfchain-served-by"), "b");
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 1u);
}

TEST_F(FallbackTest, AttemptTimeoutTriggers) {
  json never = {{"status", nullptr}, {"chunks", json::array()}, {"end", "stall"}, {"repeat", true}};
  start({{"a", {never}}, {"b", {tgiExchange({"late", " but", " here"})}}}, R"(chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a], on: {class: [timeout], timeout_ms: 150}}
        - {name: light, targets: [b]}
)");
  auto started = Clock::now();
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "late but here");
  EXPECT_EQ(seen.header("x-hfchain-tier"), "light");
  EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(1900))
      << "the attempt deadline of 150 ms did not cut the first attempt short";
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 1u);
}

TEST_F(FallbackTest, HealthOrdersEndpointsAfterFailures) {
  start({{"a", {statusExchange(503)}}, {"b", {tgiExchange({"ok"})}}}, R"(chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a, b]}
)");
  Seen first = send(prompt("one"));
  ASSERT_FALSE(first.error) << first.error->describe();
  EXPECT_EQ(first.header("x-hfchain-served-by"), "b");
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 1u);
  // a failed and b answered, so b now has the better score and is tried first.
  for (int i = 0; i < 3; ++i) {
    Seen next = send(prompt("again"));
    ASSERT_FALSE(next.error) << next.error->describe();
    EXPECT_EQ(next.header("x-hfchain-served-by"), "b");
  }
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 4u);
}

TEST_F(FallbackTest, OpenCircuitTriggers) {
  if (!std::filesystem::exists(std::string(HFCHAIN_PLUGIN_DIR) + "/libhfchain_link_breaker.so")) {
    GTEST_SKIP() << "the breaker link is not built";
  }
  start({{"a", {statusExchange(503)}}, {"b", {tgiExchange({"ok"})}}},
        kTwoTiers + R"(  - link: breaker
    settings: {consecutive_failures: 1, failure_rate: 0, open_ms: 60000}
)");
  Seen first = send(prompt("one"));
  ASSERT_FALSE(first.error) << first.error->describe();
  Seen second = send(prompt("two"));
  ASSERT_FALSE(second.error) << second.error->describe();
  EXPECT_EQ(second.header("x-hfchain-served-by"), "b");
  // The open circuit answered the second request for a without calling it.
  EXPECT_EQ(count("a"), 1u);
  EXPECT_EQ(count("b"), 2u);
}

// C06 r1 and r2: a stream that breaks after three tokens ends with an error and nothing
// spliced; a stream that breaks before its first event falls back.
TEST_F(FallbackTest, BrokenStreamErrorPolicyMatchesCaseC06) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/cases/C06.json");
  json case_file = json::parse(file);
  start(case_file["upstream_script"], R"(chain:
  - link: fallback
    settings:
      on_broken_stream: error
      tiers:
        - {name: main, targets: [primary]}
        - {name: second, targets: [secondary]}
)",
        {"primary", "secondary"});
  Seen r1 = send(chat("What is it?"));
  EXPECT_EQ(r1.tokens, (std::vector<std::string>{"The", " answer", " is"}));
  ASSERT_TRUE(r1.error);
  EXPECT_EQ(r1.error->cls, ErrorClass::kStreamIncomplete) << r1.error->describe();
  ASSERT_EQ(r1.events.size(), 4u);
  EXPECT_EQ(r1.events.back().kind, EventKind::kError);
  EXPECT_EQ(r1.events.back().served_by, "primary");
  EXPECT_TRUE(r1.finish_reason.empty());
  EXPECT_EQ(count("primary"), 1u);
  EXPECT_EQ(count("secondary"), 0u);

  Seen r2 = send(chat("What is it?"));
  ASSERT_FALSE(r2.error) << r2.error->describe();
  EXPECT_EQ(r2.text, "OK");
  EXPECT_EQ(r2.finish_reason, "stop");
  EXPECT_EQ(r2.header("x-hfchain-served-by"), "secondary");
  EXPECT_EQ(count("primary"), 2u);
  EXPECT_EQ(count("secondary"), 1u);
}

TEST_F(FallbackTest, ResumeSplicesOneContinuousStream) {
  start({{"a", {tgiExchange({"The", " answer", " is"}, /*finish=*/false)}},
         {"b", {tgiExchange({"The answer", " is", " 42", "."})}}},
        R"(chain:
  - link: fallback
    settings:
      on_broken_stream: resume
      tiers:
        - {name: main, targets: [a]}
        - {name: light, targets: [b]}
)");
  Seen seen = send(prompt("Q: "));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "The answer is 42.");
  EXPECT_EQ(seen.tokens, (std::vector<std::string>{"The", " answer", " is", " 42", "."}));
  EXPECT_EQ(seen.finish_reason, "length");
  EXPECT_EQ(seen.events.back().generated_text, "The answer is 42.");
  EXPECT_EQ(seen.served_by.front(), "a");
  EXPECT_EQ(seen.served_by.back(), "b");
  ASSERT_EQ(count("b"), 1u);
  json body = json::parse(upstreams_->find("b")->requests()[0].body);
  EXPECT_EQ(body["inputs"], "Q: The answer is");
  EXPECT_EQ(body["parameters"]["max_new_tokens"], 17);
}

TEST_F(FallbackTest, ResumeKeepsTextWithoutRepeat) {
  start({{"a", {openaiExchange({"Paris", " is", " the"}, /*finish=*/false)}},
         {"b", {openaiExchange({" capital", " of France."})}}},
        R"(chain:
  - link: fallback
    settings:
      on_broken_stream: resume
      tiers:
        - {name: main, targets: [a]}
        - {name: light, targets: [b]}
)",
        {"a", "b"});
  Seen seen = send(chat("Where?"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "Paris is the capital of France.");
  ASSERT_EQ(count("b"), 1u);
  json body = json::parse(upstreams_->find("b")->requests()[0].body);
  ASSERT_EQ(body["messages"].size(), 3u) << body.dump();
  EXPECT_EQ(body["messages"][1]["role"], "assistant");
  EXPECT_EQ(body["messages"][1]["content"], "Paris is the");
  EXPECT_EQ(body["messages"][2]["role"], "user");
}

// A TGI upstream that answers one request with its headers, sends its first token after
// `first_token_ms`, then waits for the client to close the connection.
class SlowUpstream {
 public:
  explicit SlowUpstream(int first_token_ms)
      : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)), first_token_ms_(first_token_ms) {
    thread_ = std::thread([this] { serve(); });
  }
  ~SlowUpstream() {
    stop_ = true;
    thread_.join();
  }
  std::string baseUrl() const {
    return "http://127.0.0.1:" + std::to_string(socket_.address().port());
  }
  bool requested() const { return requested_; }
  bool closedByClient() const { return closed_by_client_; }

 private:
  void serve() {
    if (!socket_.poll(Poco::Timespan(5, 0), Poco::Net::Socket::SELECT_READ)) return;
    Poco::Net::StreamSocket connection = socket_.acceptConnection();
    char buffer[4096];
    connection.setReceiveTimeout(Poco::Timespan(2, 0));
    connection.receiveBytes(buffer, sizeof(buffer));
    requested_ = true;
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    connection.sendBytes(head.data(), static_cast<int>(head.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(first_token_ms_));
    std::string event = tgiEvent(1, "slow", false);
    std::ostringstream chunk;
    chunk << std::hex << event.size() << "\r\n" << event << "\r\n";
    std::string bytes = chunk.str();
    try {
      connection.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
      for (int waited = 0; waited < 3000 && !stop_; waited += 50) {
        if (!connection.poll(Poco::Timespan(0, 50'000), Poco::Net::Socket::SELECT_READ)) continue;
        if (connection.receiveBytes(buffer, sizeof(buffer)) <= 0) {
          closed_by_client_ = true;
          return;
        }
      }
    } catch (const Poco::Exception&) {
      closed_by_client_ = true;  // a reset is a close too
    }
  }

  Poco::Net::ServerSocket socket_;
  int first_token_ms_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> requested_{false};
  std::atomic<bool> closed_by_client_{false};
};

std::string hedgeYaml(const std::string& slow_url, const std::string& fast_url,
                      const std::string& budget) {
  auto target = [](const std::string& url) {
    return "    protocol: tgi\n    base_url: " + url +
           "\n    timeouts: {connect_ms: 1000, first_byte_ms: 2000, idle_ms: 2000, "
           "total_ms: 5000}\n";
  };
  return "targets:\n  slow:\n" + target(slow_url) + "  fast:\n" + target(fast_url) +
         "default_target: slow\n"
         "chain:\n"
         "  - link: fallback\n"
         "    settings:\n"
         "      hedge_budget: " +
         budget +
         "\n"
         "      tiers:\n"
         "        - {name: main, targets: [slow, fast], hedge: {after_ms: 50}}\n";
}

TEST_F(FallbackTest, HedgeToFastEndpointWins) {
  auto fast = replay::ScriptedUpstreams::start(json{{"fast", {tgiExchange({"quick"})}}});
  ASSERT_TRUE(fast.ok());
  SlowUpstream slow(300);
  startYaml(
      hedgeYaml(slow.baseUrl(), (*fast)->find("fast")->baseUrl(), "{ratio: 0, min_per_window: 1}"));
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "quick");
  EXPECT_EQ(seen.header("x-hfchain-served-by"), "fast");
  EXPECT_EQ(seen.served_by.back(), "fast");
  EXPECT_TRUE(slow.requested());
  EXPECT_EQ((*fast)->find("fast")->requestCount(), 1u);
  seen = Seen{};  // the loser is joined when the winner's stream goes
  engine_.reset();
  for (int i = 0; i < 60 && !slow.closedByClient(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(slow.closedByClient()) << "the losing hedge kept its connection open";
}

TEST_F(FallbackTest, ExhaustedHedgeBudgetStopsHedging) {
  auto fast = replay::ScriptedUpstreams::start(json{{"fast", {tgiExchange({"quick"})}}});
  ASSERT_TRUE(fast.ok());
  SlowUpstream slow(150);
  startYaml(
      hedgeYaml(slow.baseUrl(), (*fast)->find("fast")->baseUrl(), "{ratio: 0, min_per_window: 0}"));
  Response response = engine_->stream(prompt("hi"));
  Event event;
  ASSERT_TRUE(response.stream->next(event));
  EXPECT_EQ(event.kind, EventKind::kToken);
  EXPECT_EQ(event.text, "slow");
  EXPECT_EQ(event.served_by, "slow");
  EXPECT_EQ((*fast)->find("fast")->requestCount(), 0u);
}

TEST_F(FallbackTest, CacheTierServesEarlierAnswer) {
  start({{"a", {tgiExchange({"cached", " answer"}, true, 0, false), statusExchange(503)}}},
        R"(chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a]}
        - {name: stored, cache: {max_entries: 10, ttl_ms: 60000}}
)");
  Seen fresh = send(prompt("same question"));
  ASSERT_FALSE(fresh.error) << fresh.error->describe();
  EXPECT_EQ(fresh.text, "cached answer");

  Seen cached = send(prompt("same question"));
  ASSERT_FALSE(cached.error) << cached.error->describe();
  EXPECT_EQ(cached.tokens, (std::vector<std::string>{"cached", " answer"}));
  EXPECT_EQ(cached.finish_reason, "length");
  EXPECT_EQ(cached.header("x-hfchain-served-by"), "cache");
  EXPECT_EQ(cached.header("x-hfchain-tier"), "stored");
  EXPECT_EQ(cached.served_by.back(), "cache");

  Seen other = send(prompt("another question"));
  ASSERT_TRUE(other.error);
  EXPECT_EQ(other.error->http_status, 503);
  EXPECT_EQ(count("a"), 3u);
}

TEST_F(FallbackTest, LocalTierAnswersLast) {
  start({{"a", {statusExchange(503)}}}, R"(chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a]}
        - {name: last-resort, local: {answer: "Try again later."}}
)");
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "Try again later.");
  EXPECT_EQ(seen.header("x-hfchain-served-by"), "local");
  EXPECT_EQ(seen.header("x-hfchain-tier"), "last-resort");
}

TEST_F(FallbackTest, TierLinksRunOnlyForTheirTier) {
  const std::string plugin = std::string(HFCHAIN_TEST_PLUGIN_DIR) + "/plugin_good.so";
  start({{"a", {statusExchange(503)}}, {"b", {tgiExchange({"quiet", " words"})}}},
        "chain:\n"
        "  - link: fallback\n"
        "    settings:\n"
        "      tiers:\n"
        "        - name: main\n"
        "          targets: [a]\n"
        "          links: [{link: tag, plugin: " +
            plugin +
            ", settings: {value: main}}]\n"
            "        - name: light\n"
            "          targets: [b]\n"
            "          links:\n"
            "            - {link: tag, plugin: " +
            plugin +
            ", settings: {value: light}}\n"
            "            - {link: upper, plugin: " +
            plugin + "}\n");
  Seen seen = send(prompt("hi"));
  ASSERT_FALSE(seen.error) << seen.error->describe();
  EXPECT_EQ(seen.text, "QUIET WORDS");
  ASSERT_EQ(count("a"), 1u);
  ASSERT_EQ(count("b"), 1u);
  EXPECT_EQ(upstreams_->find("a")->requests()[0].header("x-tag"), "main");
  EXPECT_EQ(upstreams_->find("b")->requests()[0].header("x-tag"), "light");
}

TEST_F(FallbackTest, RejectsInvalidSettings) {
  ParsedConfig parsed = parseConfig(R"(targets:
  a: {protocol: tgi, base_url: "http://127.0.0.1:9"}
chain:
  - link: fallback
    settings:
      tiers:
        - {name: main, targets: [a], on: {status: ["6xx"]}}
)",
                                    "bad.yaml");
  ASSERT_TRUE(parsed.ok());
  auto registry = std::make_shared<PluginRegistry>(std::vector<std::string>{HFCHAIN_PLUGIN_DIR});
  auto engine = Engine::create(parsed.config, registry);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.error().message.find("tiers[0].on.status"), std::string::npos)
      << engine.error().message;
}

}  // namespace
}  // namespace hfchain
