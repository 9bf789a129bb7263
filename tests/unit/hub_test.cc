// Hub model information tests: recorded Hub bodies served from a loopback Poco HTTP server.
#include "hfchain/hub.h"

#include <Poco/AutoPtr.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/ThreadPool.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace hfchain::hub {
namespace {

using nlohmann::json;

// A recorded response: status, headers and body.
struct Reply {
  int status = 200;
  std::map<std::string, std::string> headers;
  std::string body;
};

Reply loadReply(const std::string& name) {
  std::ifstream file(std::string(HFCHAIN_TEST_DATA_DIR) + "/recorded/" + name);
  const json recording = json::parse(file);
  Reply reply;
  reply.status = recording["response"]["status"];
  for (const auto& [key, value] : recording["response"]["headers"].items()) {
    if (key == "Content-Type" || key == "Location") reply.headers[key] = value;
  }
  for (const auto& chunk : recording["response"]["body_chunks"]) {
    reply.body += chunk.get<std::string>();
  }
  return reply;
}

// A loopback server that responds to GET requests by path from a fixed table, else with 404.
class FakeHub {
 public:
  explicit FakeHub(std::map<std::string, Reply> replies)
      : replies_(std::move(replies)), threads_(2, 16) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    Poco::AutoPtr<Poco::Net::HTTPServerParams> params(new Poco::Net::HTTPServerParams);
    params->setMaxThreads(16);
    // Idle dispatcher threads wait this long for work; ThreadPool::joinAll in the destructor
    // waits for them, so a short time keeps shutdown fast.
    params->setThreadIdleTime(Poco::Timespan(0, 50'000));
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), threads_, socket,
                                                      params);
    server_->start();
  }

  ~FakeHub() {
    // The accept loop checks for a stop every 250 ms; connecting wakes it at once.
    std::atomic<bool> stopped{false};
    std::thread waker([&] {
      for (int attempt = 0; attempt < 100 && !stopped.load(); ++attempt) {
        try {
          Poco::Net::StreamSocket socket;
          socket.connect(Poco::Net::SocketAddress("127.0.0.1", server_->port()),
                         Poco::Timespan(0, 100'000));
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

  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::vector<std::string> paths() {
    std::lock_guard lock(mutex_);
    return paths_;
  }
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mutex_);
    return authorizations_;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(FakeHub& hub) : hub_(hub) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      {
        std::lock_guard lock(hub_.mutex_);
        hub_.paths_.push_back(request.getURI());
        hub_.authorizations_.push_back(request.get("Authorization", ""));
      }
      Reply reply;
      auto it = hub_.replies_.find(request.getURI());
      if (it != hub_.replies_.end()) {
        reply = it->second;
      } else {
        reply.status = 404;
        reply.headers["Content-Type"] = "application/json";
        reply.body = R"({"error":"Repository not found"})";
      }
      response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
      for (const auto& [name, value] : reply.headers) response.set(name, value);
      response.setContentLength(static_cast<std::streamsize>(reply.body.size()));
      response.send() << reply.body;
    }

   private:
    FakeHub& hub_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(FakeHub& hub) : hub_(hub) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(hub_);
    }

   private:
    FakeHub& hub_;
  };

  std::map<std::string, Reply> replies_;
  Poco::ThreadPool threads_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::mutex mutex_;
  std::vector<std::string> paths_;
  std::vector<std::string> authorizations_;
};

const char* kRenamedPath = "/api/models/meta-llama/Meta-Llama-3.1-8B-Instruct";
const char* kCurrentPath = "/api/models/meta-llama/Llama-3.1-8B-Instruct";

std::map<std::string, Reply> recordedHub() {
  return {{kRenamedPath, loadReply("hub-307-renamed-model.json")},
          {kCurrentPath, loadReply("hub-model-info-full.json")}};
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

void expectLlamaInfo(const ModelInfo& info) {
  EXPECT_EQ(info.id, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(info.author, "meta-llama");
  EXPECT_EQ(info.sha, "0e9e39f249a16976918f6564b8830bc894c89659");
  EXPECT_EQ(info.pipeline_tag, "text-generation");
  EXPECT_EQ(info.library_name, "transformers");
  EXPECT_EQ(info.gated, "manual");
  EXPECT_FALSE(info.is_private);
  EXPECT_FALSE(info.disabled);
  EXPECT_EQ(info.downloads, 5795728);
  EXPECT_EQ(info.likes, 3763);
  EXPECT_EQ(info.created_at, "2024-07-18T08:56:00.000Z");
  EXPECT_EQ(info.last_modified, "2024-09-25T17:00:57.000Z");
  EXPECT_EQ(info.total_parameters, 8030261248);
  ASSERT_EQ(info.architectures.size(), 1u);
  EXPECT_EQ(info.architectures[0], "LlamaForCausalLM");
  EXPECT_EQ(info.model_type, "llama");
  EXPECT_EQ(info.license, "llama3.1");
  EXPECT_EQ(info.inference, "warm");
  ASSERT_FALSE(info.tags.empty());
  EXPECT_EQ(info.tags[0], "transformers");
}

TEST(HubParse, RecordedFullModelInfo) {
  auto info = parseModelInfo(loadReply("hub-model-info-full.json").body);
  ASSERT_TRUE(info.ok()) << info.error().describe();
  expectLlamaInfo(*info);
  EXPECT_TRUE(info->inference_providers.empty());
}

TEST(HubParse, ProviderMappingObject) {
  auto info = parseModelInfo(loadReply("hub-model-info-provider-mapping.json").body);
  ASSERT_TRUE(info.ok()) << info.error().describe();
  EXPECT_EQ(info->id, "meta-llama/Llama-3.3-70B-Instruct");
  ASSERT_EQ(info->inference_providers.size(), 8u);
  bool found_cerebras = false;
  for (const InferenceProvider& provider : info->inference_providers) {
    if (provider.provider != "cerebras") continue;
    found_cerebras = true;
    EXPECT_EQ(provider.provider_id, "llama-3.3-70b");
    EXPECT_EQ(provider.status, "live");
    EXPECT_EQ(provider.task, "conversational");
  }
  EXPECT_TRUE(found_cerebras);
}

TEST(HubParse, ProviderMappingList) {
  auto info = parseModelInfo(
      R"({"id":"a/b","gated":false,"inferenceProviderMapping":[)"
      R"({"provider":"together","providerId":"a/b-turbo","status":"staging","task":"text-generation"}]})");
  ASSERT_TRUE(info.ok()) << info.error().describe();
  EXPECT_TRUE(info->gated.empty());
  ASSERT_EQ(info->inference_providers.size(), 1u);
  EXPECT_EQ(info->inference_providers[0].provider, "together");
  EXPECT_EQ(info->inference_providers[0].status, "staging");
  EXPECT_EQ(info->total_parameters, -1);
  EXPECT_EQ(info->downloads, -1);
}

TEST(HubParse, InvalidJsonIsParseError) {
  auto info = parseModelInfo("{not json");
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().cls, ErrorClass::kStreamParse);
}

TEST(HubFetch, FollowsRenameRedirect) {
  FakeHub hub(recordedHub());
  HubOptions options;
  options.endpoint = hub.url();
  options.token = {"hf_hub_token_value", ""};
  auto info = fetchModelInfo("meta-llama/Meta-Llama-3.1-8B-Instruct", options);
  ASSERT_TRUE(info.ok()) << info.error().describe();
  expectLlamaInfo(*info);
  EXPECT_EQ(info->requested_id, "meta-llama/Meta-Llama-3.1-8B-Instruct");
  std::vector<std::string> paths = hub.paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], kRenamedPath);
  EXPECT_EQ(paths[1], kCurrentPath);
  for (const std::string& authorization : hub.authorizations()) {
    EXPECT_EQ(authorization, "Bearer hf_hub_token_value");
  }
}

TEST(HubFetch, EndpointFromEnvironment) {
  FakeHub hub(recordedHub());
  ScopedEnv endpoint("HF_ENDPOINT", hub.url());
  ScopedEnv token("HF_TOKEN", "hf_environment_token");
  auto info = fetchModelInfo("meta-llama/Llama-3.1-8B-Instruct");
  ASSERT_TRUE(info.ok()) << info.error().describe();
  EXPECT_EQ(info->id, "meta-llama/Llama-3.1-8B-Instruct");
  ASSERT_EQ(hub.authorizations().size(), 1u);
  EXPECT_EQ(hub.authorizations()[0], "Bearer hf_environment_token");
}

TEST(HubFetch, RedirectLimitStopsLoop) {
  Reply loop;
  loop.status = 307;
  loop.headers["Location"] = "/api/models/a/loop";
  FakeHub hub({{"/api/models/a/loop", loop}});
  HubOptions options;
  options.endpoint = hub.url();
  options.max_redirects = 2;
  auto info = fetchModelInfo("a/loop", options);
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.error().message.find("redirects"), std::string::npos);
  EXPECT_EQ(hub.paths().size(), 3u);
}

TEST(HubFetch, NotFoundNamesModel) {
  FakeHub hub({});
  HubOptions options;
  options.endpoint = hub.url();
  auto info = fetchModelInfo("nobody/nothing", options);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().cls, ErrorClass::kUpstreamNotFound);
  EXPECT_EQ(info.error().http_status, 404);
  EXPECT_NE(info.error().message.find("\"nobody/nothing\""), std::string::npos);
}

TEST(HubFetch, UnauthorizedNamesModelWithoutToken) {
  Reply denied;
  denied.status = 401;
  denied.headers["Content-Type"] = "application/json";
  denied.body = R"({"error":"Invalid credentials in Authorization header hf_secret_abcdef"})";
  FakeHub hub({{"/api/models/org/gated", denied}});
  HubOptions options;
  options.endpoint = hub.url();
  options.token = {"hf_secret_abcdef", ""};
  auto info = fetchModelInfo("org/gated", options);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().cls, ErrorClass::kUpstreamAuth);
  EXPECT_NE(info.error().message.find("\"org/gated\""), std::string::npos);
  EXPECT_NE(info.error().message.find("HF_TOKEN"), std::string::npos);
  EXPECT_EQ(info.error().message.find("hf_secret_abcdef"), std::string::npos);
}

TEST(HubFetch, InvalidModelIdSendsNothing) {
  FakeHub hub({});
  HubOptions options;
  options.endpoint = hub.url();
  for (const char* id : {"", "a/b/c", "../etc", "a b", "/a"}) {
    auto info = fetchModelInfo(id, options);
    ASSERT_FALSE(info.ok()) << id;
    EXPECT_EQ(info.error().cls, ErrorClass::kInvalidRequest) << id;
  }
  EXPECT_TRUE(hub.paths().empty());
}

TEST(HubFetch, ConnectRefused) {
  uint16_t port = 0;
  {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = socket.address().port();
  }
  HubOptions options;
  options.endpoint = "http://127.0.0.1:" + std::to_string(port);
  options.timeout_ms = 300;
  auto info = fetchModelInfo("gpt2", options);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().cls, ErrorClass::kConnectFailed);
  EXPECT_NE(info.error().message.find("\"gpt2\""), std::string::npos);
}

TEST(HubFormat, ListsMainFields) {
  auto info = parseModelInfo(loadReply("hub-model-info-full.json").body);
  ASSERT_TRUE(info.ok());
  info->requested_id = "meta-llama/Meta-Llama-3.1-8B-Instruct";
  const std::string text = formatModelInfo(*info);
  EXPECT_NE(text.find("id:            meta-llama/Llama-3.1-8B-Instruct\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("renamed from:  meta-llama/Meta-Llama-3.1-8B-Instruct"), std::string::npos);
  EXPECT_NE(text.find("parameters:    8.03 B (8030261248)"), std::string::npos) << text;
  EXPECT_NE(text.find("license:       llama3.1"), std::string::npos);
  EXPECT_NE(text.find("gated:         manual"), std::string::npos);
  EXPECT_NE(text.find("architectures: LlamaForCausalLM"), std::string::npos);
}

}  // namespace
}  // namespace hfchain::hub
