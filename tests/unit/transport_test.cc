// Transport tests against a Poco HTTP server on a loopback port chosen by the system.
#include "hfchain/transport.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/Logger.h>
#include <Poco/Message.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace hfchain {
namespace {

using nlohmann::json;
using ServerRequest = Poco::Net::HTTPServerRequest;
using ServerResponse = Poco::Net::HTTPServerResponse;

// What the test server received.
struct SeenRequest {
  std::string method;
  std::string uri;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string header(const std::string& name) const {
    for (const auto& [key, value] : headers) {
      if (Poco::icompare(key, name) == 0) return value;
    }
    return "";
  }
  json bodyJson() const { return json::parse(body); }
};

// A flag that a server thread sets and a test waits for, with a bound.
class Signal {
 public:
  void set() {
    std::lock_guard lock(mutex_);
    set_ = true;
    cv_.notify_all();
  }
  bool waitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool set_ = false;
};

// A loopback HTTP/1.1 server whose responses come from a test-provided function.
class TestUpstream {
 public:
  using Handler = std::function<void(const SeenRequest&, ServerResponse&)>;

  explicit TestUpstream(Handler handler) : handler_(std::move(handler)), threads_(2, 16) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::AutoPtr<Poco::Net::HTTPServerParams> params(new Poco::Net::HTTPServerParams);
    params->setKeepAlive(true);
    params->setMaxThreads(16);
    // Idle dispatcher threads wait this long for work; ThreadPool::joinAll in the destructor
    // waits for them, so a short time keeps shutdown fast.
    params->setThreadIdleTime(Poco::Timespan(0, 50'000));
    params->setTimeout(Poco::Timespan(5, 0));
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), threads_, socket, params);
    server_->start();
  }

  ~TestUpstream() {
    stopping_.set();
    // The server's accept loop checks for a stop every 250 ms; connecting wakes it at once.
    std::atomic<bool> stopped{false};
    std::thread waker([&] {
      for (int attempt = 0; attempt < 100 && !stopped.load(); ++attempt) {
        try {
          Poco::Net::StreamSocket socket;
          socket.connect(Poco::Net::SocketAddress("127.0.0.1", port()), Poco::Timespan(0, 100'000));
        } catch (const Poco::Exception&) {
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    });
    server_->stopAll(true);
    stopped.store(true);
    waker.join();
    threads_.joinAll();
  }

  uint16_t port() const { return server_->port(); }
  std::string baseUrl() const { return "http://127.0.0.1:" + std::to_string(port()); }
  int connections() const { return server_->totalConnections(); }

  std::vector<SeenRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  SeenRequest lastRequest() {
    std::lock_guard lock(mutex_);
    return requests_.empty() ? SeenRequest{} : requests_.back();
  }

  // Set when the test server shuts down; handlers that wait use it to stop early.
  Signal& stopping() { return stopping_; }

 private:
  class RecordingHandler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit RecordingHandler(TestUpstream& upstream) : upstream_(upstream) {}
    void handleRequest(ServerRequest& request, ServerResponse& response) override {
      SeenRequest seen;
      seen.method = request.getMethod();
      seen.uri = request.getURI();
      for (const auto& [name, value] : request) seen.headers.emplace_back(name, value);
      Poco::StreamCopier::copyToString(request.stream(), seen.body);
      {
        std::lock_guard lock(upstream_.mutex_);
        upstream_.requests_.push_back(seen);
      }
      upstream_.handler_(seen, response);
    }

   private:
    TestUpstream& upstream_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(TestUpstream& upstream) : upstream_(upstream) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const ServerRequest&) override {
      return new RecordingHandler(upstream_);
    }

   private:
    TestUpstream& upstream_;
  };

  Handler handler_;
  Poco::ThreadPool threads_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::mutex mutex_;
  std::vector<SeenRequest> requests_;
  Signal stopping_;
};

std::string tgiToken(int index, const std::string& text) {
  return "data: " +
         json({{"index", index},
               {"token", {{"id", index}, {"text", text}, {"logprob", -0.5}, {"special", false}}},
               {"generated_text", nullptr},
               {"details", nullptr}})
             .dump() +
         "\n\n";
}

std::string tgiFinal(int index, const std::string& text, const std::string& full) {
  return "data: " +
         json({{"index", index},
               {"token", {{"id", index}, {"text", text}, {"logprob", -0.5}, {"special", false}}},
               {"generated_text", full},
               {"details", {{"finish_reason", "length"}, {"generated_tokens", index}}}})
             .dump() +
         "\n\n";
}

std::string openAiChunk(const std::string& content, const char* finish_reason = nullptr) {
  json chunk = {{"object", "chat.completion.chunk"},
                {"choices",
                 {{{"index", 0},
                   {"delta", {{"role", "assistant"}, {"content", content}}},
                   {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}}}}};
  return "data: " + chunk.dump() + "\n\n";
}

// Sends an event stream in the given pieces, flushing each one.
void sendEvents(ServerResponse& response, const std::vector<std::string>& pieces) {
  response.setChunkedTransferEncoding(true);
  response.setContentType("text/event-stream");
  std::ostream& out = response.send();
  for (const std::string& piece : pieces) {
    out << piece;
    out.flush();
  }
}

void sendJson(ServerResponse& response, int status, const std::string& body) {
  response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  response.setContentType("application/json");
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  response.send() << body;
}

// The three-token TGI stream used by most tests.
void sendTgiStream(const SeenRequest&, ServerResponse& response) {
  sendEvents(response,
             {tgiToken(1, "Hello"), tgiToken(2, ","), tgiFinal(3, " world", "Hello, world")});
}

TargetConfig targetFor(const TestUpstream& upstream, Protocol protocol,
                       const std::string& suffix = "") {
  TargetConfig target;
  target.name = "local";
  target.protocol = protocol;
  target.base_url = upstream.baseUrl() + suffix;
  target.model = "org/model";
  target.timeouts.connect_ms = 500;
  target.timeouts.first_byte_ms = 500;
  target.timeouts.idle_ms = 500;
  target.timeouts.total_ms = 2000;
  return target;
}

TransportPtr makeTransport(const TargetConfig& target) {
  auto transport = Transport::create(target);
  EXPECT_TRUE(transport.ok()) << (transport.ok() ? "" : transport.error().describe());
  return transport.ok() ? *transport : nullptr;
}

Request promptRequest(bool stream = true) {
  Request request;
  request.id = "req-1";
  request.inputs = "Say hello";
  request.parameters = {{"max_new_tokens", 8}, {"temperature", 0.5}, {"do_sample", true}};
  request.stream = stream;
  return request;
}

Request chatRequest(bool stream = true) {
  Request request;
  request.id = "req-2";
  request.messages = {{"system", "Be brief."}, {"user", "Hi"}};
  request.parameters = {{"max_new_tokens", 16}, {"seed", 7}, {"details", true}};
  request.stream = stream;
  return request;
}

std::vector<Event> drain(Response& response) {
  std::vector<Event> events;
  Event event;
  while (response.stream && response.stream->next(event)) events.push_back(event);
  return events;
}

std::string tokenText(const std::vector<Event>& events) {
  std::string text;
  for (const Event& event : events) {
    if (event.kind == EventKind::kToken) text += event.text;
  }
  return text;
}

json loadRecording(const std::string& name) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/recorded/" + name);
  return json::parse(file);
}

std::string recordedBody(const json& recording) {
  std::string body;
  for (const auto& chunk : recording["response"]["body_chunks"]) body += chunk.get<std::string>();
  return body;
}

// ---------------------------------------------------------------------------------------------
// Target validation

TEST(TransportCreate, RejectsUnsupportedScheme) {
  TargetConfig target;
  target.name = "bad";
  target.base_url = "ftp://127.0.0.1/models";
  auto transport = Transport::create(target);
  ASSERT_FALSE(transport.ok());
  EXPECT_EQ(transport.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(transport.error().message.find("\"bad\""), std::string::npos);
  EXPECT_NE(transport.error().message.find("ftp"), std::string::npos);
}

TEST(TransportCreate, RejectsMissingHost) {
  TargetConfig target;
  target.name = "nohost";
  target.base_url = "http:///v1";
  auto transport = Transport::create(target);
  ASSERT_FALSE(transport.ok());
  EXPECT_EQ(transport.error().cls, ErrorClass::kConfigRejected);
  EXPECT_NE(transport.error().message.find("no host"), std::string::npos);
}

TEST(TransportCreate, RejectsEmptyUrlAndUserInfo) {
  TargetConfig target;
  target.name = "t";
  auto empty = Transport::create(target);
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.error().message.find("missing"), std::string::npos);

  target.base_url = "http://user:hunter22@127.0.0.1:8080";
  auto with_password = Transport::create(target);
  ASSERT_FALSE(with_password.ok());
  EXPECT_EQ(with_password.error().message.find("hunter22"), std::string::npos);
}

TEST(TransportCreate, RejectsNonPositiveTimeout) {
  TargetConfig target;
  target.name = "t";
  target.base_url = "http://127.0.0.1:8080";
  target.timeouts.idle_ms = 0;
  auto transport = Transport::create(target);
  ASSERT_FALSE(transport.ok());
  EXPECT_NE(transport.error().message.find("timeouts.idle_ms"), std::string::npos);
}

TEST(TransportCreate, AcceptsHttpsWithSystemStore) {
  TargetConfig target;
  target.name = "tls";
  target.base_url = "https://127.0.0.1:8443/v1/";
  auto transport = Transport::create(target);
  EXPECT_TRUE(transport.ok()) << transport.error().describe();
}

// ---------------------------------------------------------------------------------------------
// Protocol paths and bodies

TEST(TransportTgi, StreamUsesGenerateStream) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  EXPECT_EQ(response.status, 200);
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.uri, "/generate_stream");
  json body = seen.bodyJson();
  EXPECT_EQ(body["inputs"], "Say hello");
  EXPECT_EQ(body["parameters"]["max_new_tokens"], 8);
  EXPECT_EQ(body["parameters"]["do_sample"], true);
  EXPECT_FALSE(body["parameters"].contains("details"));
  EXPECT_FALSE(body.contains("stream"));
  EXPECT_EQ(seen.header("Accept"), "text/event-stream");
  EXPECT_EQ(seen.header("Content-Type"), "application/json");
  EXPECT_EQ(seen.header("User-Agent").rfind("hfchain/", 0), 0u);

  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].text, "Hello");
  EXPECT_EQ(events[1].text, ",");
  EXPECT_EQ(events[2].text, " world");
  EXPECT_EQ(events[3].kind, EventKind::kFinish);
  EXPECT_EQ(events[3].finish_reason, "length");
  for (const Event& event : events) EXPECT_EQ(event.served_by, "local");
  EXPECT_EQ(*response.headers.find("x-hfchain-served-by"), "local");
}

TEST(TransportTgi, NonStreamUsesGenerateWithDetails) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendJson(response, 200,
             R"({"generated_text":"Hi there","details":{"finish_reason":"eos_token",)"
             R"("generated_tokens":2}})");
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi, "/"));
  Request request = promptRequest(/*stream=*/false);
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.uri, "/generate");
  EXPECT_EQ(seen.bodyJson()["parameters"]["details"], true);
  EXPECT_EQ(seen.header("Accept"), "application/json");
  EXPECT_EQ(tokenText(events), "Hi there");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, EventKind::kFinish);
  EXPECT_EQ(events.back().served_by, "local");
}

TEST(TransportTgi, ChatGoesToOpenAiRoute) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendEvents(response, {openAiChunk("Hey"), openAiChunk("", "stop"), "data: [DONE]\n\n"});
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi, "/prefix"));
  Request request = chatRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.uri, "/prefix/v1/chat/completions");
  json body = seen.bodyJson();
  EXPECT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["max_tokens"], 16);
  EXPECT_FALSE(body.contains("details"));
  EXPECT_EQ(tokenText(events), "Hey");
  EXPECT_EQ(events.back().kind, EventKind::kFinish);
}

TEST(TransportOpenAi, BaseEndingInV1KeepsVersion) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendEvents(response, {openAiChunk("A"), openAiChunk("B", "length"), "data: [DONE]\n\n"});
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kOpenAi, "/v1"));
  Request request = chatRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.uri, "/v1/chat/completions");
  json body = seen.bodyJson();
  EXPECT_EQ(body["model"], "org/model");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["max_tokens"], 16);
  EXPECT_EQ(body["seed"], 7);
  EXPECT_FALSE(body.contains("max_new_tokens"));
  EXPECT_FALSE(body.contains("details"));
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][1]["content"], "Hi");
  EXPECT_EQ(tokenText(events), "AB");
  EXPECT_EQ(events.back().finish_reason, "length");
}

TEST(TransportOpenAi, BaseWithoutVersionAddsV1) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendJson(response, 200,
             R"({"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},)"
             R"("finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}})");
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kOpenAi, "/api/"));
  Request request = promptRequest(/*stream=*/false);
  request.model = "other/model";
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.uri, "/api/v1/chat/completions");
  json body = seen.bodyJson();
  EXPECT_EQ(body["model"], "other/model");
  EXPECT_EQ(body["stream"], false);
  EXPECT_FALSE(body.contains("stream_options"));
  EXPECT_FALSE(body.contains("do_sample"));
  EXPECT_EQ(body["temperature"], 0.5);
  ASSERT_EQ(body["messages"].size(), 1u);
  EXPECT_EQ(body["messages"][0]["role"], "user");
  EXPECT_EQ(body["messages"][0]["content"], "Say hello");
  EXPECT_EQ(tokenText(events), "ok");
  EXPECT_EQ(events.back().kind, EventKind::kFinish);
}

TEST(TransportServerless, PromptGoesToModelUrlWithStreamField) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kHfServerless, "/hf-inference"));
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);

  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.uri, "/hf-inference/models/org/model");
  json body = seen.bodyJson();
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["inputs"], "Say hello");
  EXPECT_EQ(tokenText(events), "Hello, world");
}

TEST(TransportServerless, ChatGoesToModelChatRoute) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendEvents(response, {openAiChunk("x", "stop"), "data: [DONE]\n\n"});
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kHfServerless));
  Request request = chatRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  drain(response);
  EXPECT_EQ(upstream.lastRequest().uri, "/models/org/model/v1/chat/completions");
}

TEST(TransportServerless, MissingModelIsInvalidRequest) {
  TestUpstream upstream(sendTgiStream);
  TargetConfig target = targetFor(upstream, Protocol::kHfServerless);
  target.model.clear();
  auto transport = makeTransport(target);
  Request request = promptRequest();
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kInvalidRequest);
  EXPECT_TRUE(upstream.requests().empty());
  std::vector<Event> events = drain(response);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::kError);
}

TEST(TransportRequest, EmptyRequestIsInvalid) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request;
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kInvalidRequest);
}

TEST(TransportRequest, RecordedTgiStreamArrivesInOrder) {
  const json recording = loadRecording("tgi-stream-llama3.2-3b.json");
  const std::string body = recordedBody(recording);
  TestUpstream upstream([&](const SeenRequest&, ServerResponse& response) {
    // Pieces of 7 bytes split events and lines at arbitrary points.
    std::vector<std::string> pieces;
    for (size_t i = 0; i < body.size(); i += 7) pieces.push_back(body.substr(i, 7));
    sendEvents(response, pieces);
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);
  ASSERT_EQ(events.size(), 51u);
  EXPECT_EQ(events[0].text, " ");
  EXPECT_EQ(events[0].token_id, 220);
  EXPECT_EQ(events[49].text, "17");
  EXPECT_EQ(events[50].kind, EventKind::kFinish);
  EXPECT_EQ(tokenText(events), " 1. 2. 3. 4. 5. 6. 7. 8. 9. 10. 11. 12. 13. 14. 15. 16. 17");
}

TEST(TransportRequest, JsonAnswerToStreamRequestIsDecodedWhole) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendJson(response, 200, R"([{"generated_text":"whole answer"}])");
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kHfServerless));
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);
  EXPECT_EQ(tokenText(events), "whole answer");
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, EventKind::kFinish);
}

// ---------------------------------------------------------------------------------------------
// Headers

TEST(TransportHeaders, TargetTokenBecomesBearer) {
  TestUpstream upstream(sendTgiStream);
  TargetConfig target = targetFor(upstream, Protocol::kTgi);
  target.token = {"hf_target_secret_value", "environment variable HF_TOKEN"};
  target.headers.add("X-Team", "search");
  auto transport = makeTransport(target);
  Request request = promptRequest();
  request.headers.add("X-Trace", "abc");
  Response response = transport->send(request);
  drain(response);
  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.header("Authorization"), "Bearer hf_target_secret_value");
  EXPECT_EQ(seen.header("X-Team"), "search");
  EXPECT_EQ(seen.header("X-Trace"), "abc");
}

TEST(TransportHeaders, RequestAuthorizationWins) {
  TestUpstream upstream(sendTgiStream);
  TargetConfig target = targetFor(upstream, Protocol::kTgi);
  target.token = {"hf_target_secret_value", ""};
  auto transport = makeTransport(target);
  Request request = promptRequest();
  request.headers.add("Authorization", "Bearer link_token_value");
  Response response = transport->send(request);
  drain(response);
  SeenRequest seen = upstream.lastRequest();
  EXPECT_EQ(seen.header("Authorization"), "Bearer link_token_value");
  int count = 0;
  for (const auto& [name, value] : seen.headers) {
    if (Poco::icompare(name, "Authorization") == 0) ++count;
  }
  EXPECT_EQ(count, 1);
}

TEST(TransportHeaders, RequestHeaderOverridesTargetHeader) {
  TestUpstream upstream(sendTgiStream);
  TargetConfig target = targetFor(upstream, Protocol::kTgi);
  target.headers.add("X-Priority", "low");
  auto transport = makeTransport(target);
  Request request = promptRequest();
  request.headers.add("x-priority", "high");
  request.headers.add("Content-Length", "1");  // framing headers are the transport's
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  drain(response);
  EXPECT_EQ(upstream.lastRequest().header("X-Priority"), "high");
}

TEST(TransportHeaders, LineBreakInHeaderIsInvalid) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  request.headers.add("X-Evil", "a\r\nX-Injected: 1");
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kInvalidRequest);
  EXPECT_TRUE(upstream.requests().empty());
}

// Collects log messages so a test can check what was logged.
class CapturingChannel : public Poco::Channel {
 public:
  void log(const Poco::Message& message) override {
    std::lock_guard lock(mutex_);
    text_ += message.getText() + "\n";
  }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

TEST(TransportHeaders, TokenNeverInErrorsOrLogs) {
  const std::string token = "hf_very_secret_token_123";
  // The server echoes the credentials it received, as some misconfigured proxies do.
  TestUpstream upstream([](const SeenRequest& seen, ServerResponse& response) {
    sendJson(response, 401,
             json({{"error", "Invalid credentials: " + seen.header("Authorization")}}).dump());
  });
  Poco::AutoPtr<CapturingChannel> channel(new CapturingChannel);
  Poco::Logger& logger = Poco::Logger::get("hfchain.transport");
  Poco::Channel::Ptr old_channel = logger.getChannel();
  const int old_level = logger.getLevel();
  logger.setChannel(channel);
  logger.setLevel(Poco::Message::PRIO_TRACE);

  TargetConfig target = targetFor(upstream, Protocol::kOpenAi);
  target.token = {token, "environment variable HF_TOKEN"};
  auto transport = makeTransport(target);
  Request request = chatRequest();
  Response response = transport->send(request);
  std::vector<Event> events = drain(response);

  logger.setChannel(old_channel);
  logger.setLevel(old_level);

  EXPECT_EQ(response.error.cls, ErrorClass::kUpstreamAuth);
  EXPECT_EQ(response.status, 401);
  EXPECT_EQ(response.error.message.find(token), std::string::npos) << response.error.message;
  EXPECT_NE(response.error.message.find("<redacted>"), std::string::npos);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].error.message.find(token), std::string::npos);
  const std::string logged = channel->text();
  EXPECT_FALSE(logged.empty());
  EXPECT_EQ(logged.find(token), std::string::npos) << logged;
}

// ---------------------------------------------------------------------------------------------
// Failures and deadlines

TEST(TransportFailure, ConnectionRefused) {
  uint16_t port = 0;
  {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = socket.address().port();
  }
  TargetConfig target;
  target.name = "gone";
  target.protocol = Protocol::kTgi;
  target.base_url = "http://127.0.0.1:" + std::to_string(port);
  target.timeouts.connect_ms = 300;
  auto transport = makeTransport(target);
  Request request = promptRequest();
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kConnectFailed) << response.error.describe();
  EXPECT_EQ(response.error.target, "gone");
  EXPECT_EQ(response.status, 0);
  std::vector<Event> events = drain(response);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::kError);
  EXPECT_EQ(events[0].served_by, "gone");
}

TEST(TransportFailure, FirstByteTimeout) {
  TestUpstream* self = nullptr;
  TestUpstream upstream([&](const SeenRequest& seen, ServerResponse& response) {
    self->stopping().waitFor(std::chrono::milliseconds(400));
    sendTgiStream(seen, response);
  });
  self = &upstream;
  TargetConfig target = targetFor(upstream, Protocol::kTgi);
  target.timeouts.first_byte_ms = 100;
  auto transport = makeTransport(target);
  Request request = promptRequest();
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kTimeout);
  EXPECT_NE(response.error.message.find("timeouts.first_byte_ms"), std::string::npos)
      << response.error.message;
  EXPECT_NE(response.error.message.find("\"local\""), std::string::npos);
}

TEST(TransportFailure, IdleTimeoutMidStream) {
  TestUpstream* self = nullptr;
  TestUpstream upstream([&](const SeenRequest&, ServerResponse& response) {
    response.setChunkedTransferEncoding(true);
    response.setContentType("text/event-stream");
    std::ostream& out = response.send();
    out << tgiToken(1, "first");
    out.flush();
    self->stopping().waitFor(std::chrono::milliseconds(400));
  });
  self = &upstream;
  TargetConfig target = targetFor(upstream, Protocol::kTgi);
  target.timeouts.idle_ms = 100;
  auto transport = makeTransport(target);
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].text, "first");
  EXPECT_EQ(events[1].kind, EventKind::kError);
  EXPECT_EQ(events[1].error.cls, ErrorClass::kTimeout);
  EXPECT_NE(events[1].error.message.find("no event"), std::string::npos);
  EXPECT_NE(events[1].error.message.find("timeouts.idle_ms"), std::string::npos);
  EXPECT_EQ(events[1].error.target, "local");
}

TEST(TransportFailure, RequestDeadlineCapsTimeouts) {
  TestUpstream* self = nullptr;
  TestUpstream upstream([&](const SeenRequest& seen, ServerResponse& response) {
    self->stopping().waitFor(std::chrono::milliseconds(400));
    sendTgiStream(seen, response);
  });
  self = &upstream;
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  request.deadline = Clock::now() + std::chrono::milliseconds(100);
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kTimeout);
  EXPECT_NE(response.error.message.find("request deadline"), std::string::npos)
      << response.error.message;
}

TEST(TransportFailure, ExpiredDeadlineSendsNothing) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  request.deadline = Clock::now() - std::chrono::milliseconds(1);
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kTimeout);
  EXPECT_TRUE(upstream.requests().empty());
}

TEST(TransportFailure, ServerEndsStreamEarly) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendEvents(response, {tgiToken(1, "a"), tgiToken(2, "b")});
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  Request request = promptRequest();
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  std::vector<Event> events = drain(response);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(tokenText(events), "ab");
  EXPECT_EQ(events[2].kind, EventKind::kError);
  EXPECT_EQ(events[2].error.cls, ErrorClass::kStreamIncomplete);
  EXPECT_EQ(events[2].error.target, "local");
}

TEST(TransportFailure, RateLimitedWithRetryAfter) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    response.set("Retry-After", "3");
    response.set("X-Request-Id", "upstream-42");
    sendJson(response, 429, R"({"error":"Rate limit reached. Please retry later."})");
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kOpenAi));
  Request request = chatRequest();
  Response response = transport->send(request);
  EXPECT_EQ(response.status, 429);
  EXPECT_EQ(response.error.cls, ErrorClass::kRateLimited);
  EXPECT_EQ(response.error.http_status, 429);
  EXPECT_EQ(response.error.retry_after_ms, 3000);
  EXPECT_EQ(response.error.target, "local");
  ASSERT_NE(response.headers.find("retry-after"), nullptr);
  EXPECT_EQ(*response.headers.find("retry-after"), "3");
  ASSERT_NE(response.headers.find("x-request-id"), nullptr);
  EXPECT_EQ(*response.headers.find("x-request-id"), "upstream-42");
}

TEST(TransportFailure, RecordedModelLoading503) {
  const json recording = loadRecording("serverless-503-model-loading.json");
  const std::string body = recordedBody(recording);
  TestUpstream upstream(
      [&](const SeenRequest&, ServerResponse& response) { sendJson(response, 503, body); });
  auto transport = makeTransport(targetFor(upstream, Protocol::kHfServerless));
  Request request = promptRequest();
  Response response = transport->send(request);
  EXPECT_EQ(response.status, 503);
  EXPECT_EQ(response.error.cls, ErrorClass::kModelLoading);
  EXPECT_DOUBLE_EQ(response.error.estimated_time_s, 20.0);
  EXPECT_NE(response.error.message.find("loading"), std::string::npos);
}

TEST(TransportFailure, HttpsToPlainServerFailsHandshake) {
  // A plain HTTP server that responds to anything with 400 and closes, as a TLS client sees it.
  Poco::Net::ServerSocket listener(Poco::Net::SocketAddress("127.0.0.1", 0));
  const uint16_t port = listener.address().port();
  std::thread server([&listener] {
    if (!listener.poll(Poco::Timespan(2, 0), Poco::Net::Socket::SELECT_READ)) return;
    Poco::Net::StreamSocket connection = listener.acceptConnection();
    const std::string reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    connection.sendBytes(reply.data(), static_cast<int>(reply.size()));
    connection.close();
  });
  TargetConfig target;
  target.name = "local";
  target.protocol = Protocol::kTgi;
  target.base_url = "https://127.0.0.1:" + std::to_string(port);
  target.timeouts.connect_ms = 1000;
  target.timeouts.first_byte_ms = 1000;
  auto transport = makeTransport(target);
  Request request = promptRequest();
  Response response = transport->send(request);
  server.join();
  EXPECT_EQ(response.error.cls, ErrorClass::kConnectFailed) << response.error.describe();
  EXPECT_NE(response.error.message.find("TLS"), std::string::npos) << response.error.message;
}

// ---------------------------------------------------------------------------------------------
// Connection pooling

TEST(TransportPool, ReusesKeepAliveConnection) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  for (int i = 0; i < 3; ++i) {
    Request request = promptRequest();
    Response response = transport->send(request);
    ASSERT_TRUE(response.ok()) << response.error.describe();
    std::vector<Event> events = drain(response);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().kind, EventKind::kFinish);
  }
  EXPECT_EQ(upstream.connections(), 1);
  TransportStats stats = transport->stats();
  EXPECT_EQ(stats.connections_opened, 1u);
  EXPECT_EQ(stats.connections_reused, 2u);
  EXPECT_EQ(stats.idle_connections, 1u);
}

TEST(TransportPool, ErrorAnswerKeepsConnection) {
  TestUpstream upstream([](const SeenRequest&, ServerResponse& response) {
    sendJson(response, 422, R"({"error":"Input validation error","error_type":"validation"})");
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  for (int i = 0; i < 2; ++i) {
    Request request = promptRequest();
    Response response = transport->send(request);
    EXPECT_EQ(response.error.cls, ErrorClass::kUpstreamValidation);
  }
  EXPECT_EQ(upstream.connections(), 1);
}

TEST(TransportPool, EarlyDestroyClosesConnection) {
  Signal write_failed;
  TestUpstream upstream([&](const SeenRequest&, ServerResponse& response) {
    response.setChunkedTransferEncoding(true);
    response.setContentType("text/event-stream");
    std::ostream& out = response.send();
    for (int i = 0; i < 100; ++i) {
      out << tgiToken(i + 1, "t");
      out.flush();
      if (!out.good()) {
        write_failed.set();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  {
    Request request = promptRequest();
    Response response = transport->send(request);
    ASSERT_TRUE(response.ok()) << response.error.describe();
    Event event;
    ASSERT_TRUE(response.stream->next(event));
    EXPECT_EQ(event.kind, EventKind::kToken);
  }  // the stream is destroyed after one event
  EXPECT_TRUE(write_failed.waitFor(std::chrono::seconds(3)));
  EXPECT_EQ(transport->stats().idle_connections, 0u);
}

TEST(TransportPool, ManyThreadsShareTransport) {
  TestUpstream upstream(sendTgiStream);
  auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        Request request = promptRequest();
        Response response = transport->send(request);
        std::vector<Event> events = drain(response);
        if (!events.empty() && events.back().kind == EventKind::kFinish &&
            tokenText(events) == "Hello, world") {
          ++finished;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(finished.load(), 20);
  EXPECT_LE(upstream.connections(), 4);
}

TEST(TransportPool, StreamOutlivesTransport) {
  TestUpstream upstream(sendTgiStream);
  Response response;
  {
    auto transport = makeTransport(targetFor(upstream, Protocol::kTgi));
    Request request = promptRequest();
    response = transport->send(request);
  }
  std::vector<Event> events = drain(response);
  EXPECT_EQ(tokenText(events), "Hello, world");
}

}  // namespace
}  // namespace hfchain
