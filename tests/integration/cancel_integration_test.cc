// Cancelling a request stops the transport within about 100 ms, whether it is waiting for
// the response status or for the next stream event.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "hfchain/transport.h"
#include "replay/scripted_upstream.h"

namespace hfchain {
namespace {

using std::chrono::milliseconds;

std::shared_ptr<Transport> tgiTransport(const std::string& url) {
  TargetConfig target;
  target.name = "primary";
  target.protocol = Protocol::kTgi;
  target.base_url = url;
  target.timeouts.first_byte_ms = 20'000;
  target.timeouts.idle_ms = 20'000;
  auto transport = Transport::create(target);
  EXPECT_TRUE(transport.ok()) << transport.error().message;
  return *transport;
}

TEST(TransportCancel, StopsWaitingForStatus) {
  auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{
      {"primary", nlohmann::json::array({{{"status", nullptr}, {"repeat", true}}})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto transport = tgiTransport(upstreams.value()->find("primary")->baseUrl());
  Request request;
  request.id = "cancel-status";
  request.inputs = "hi";
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(150));
    request.cancel.cancel();
  });
  auto start = std::chrono::steady_clock::now();
  Response response = transport->send(request);
  auto waited = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(response.error.cls, ErrorClass::kCancelled) << response.error.describe();
  EXPECT_LT(waited, milliseconds(5000)) << "cancellation was not noticed";
}

TEST(TransportCancel, StopsWaitingForNextEvent) {
  std::string token =
      R"(data: {"index":1,"token":{"id":1,"text":"Hi","logprob":-0.1,"special":false},"generated_text":null,"details":null})"
      "\n\n";
  auto upstreams = replay::ScriptedUpstreams::start(nlohmann::json{
      {"primary", nlohmann::json::array({{{"status", 200},
                                          {"headers", {{"content-type", "text/event-stream"}}},
                                          {"chunks", {{{"text", token}}}},
                                          {"end", "stall"},
                                          {"repeat", true}}})}});
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  auto transport = tgiTransport(upstreams.value()->find("primary")->baseUrl());
  Request request;
  request.id = "cancel-stream";
  request.inputs = "hi";
  Response response = transport->send(request);
  ASSERT_TRUE(response.ok()) << response.error.describe();
  Event event;
  ASSERT_TRUE(response.stream->next(event));
  EXPECT_EQ(event.text, "Hi") << event.error.describe();
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(150));
    request.cancel.cancel();
  });
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(response.stream->next(event));
  auto waited = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(event.kind, EventKind::kError);
  EXPECT_EQ(event.error.cls, ErrorClass::kCancelled) << event.error.describe();
  EXPECT_LT(waited, milliseconds(5000)) << "cancellation was not noticed";
}

TEST(TransportCancel, CancelledBeforeSendMakesNoRequest) {
  auto upstreams = replay::ScriptedUpstreams::start(
      nlohmann::json{{"primary", nlohmann::json::array({{{"status", 200}, {"repeat", true}}})}});
  ASSERT_TRUE(upstreams.ok());
  auto transport = tgiTransport(upstreams.value()->find("primary")->baseUrl());
  Request request;
  request.inputs = "hi";
  request.cancel.cancel();
  Response response = transport->send(request);
  EXPECT_EQ(response.error.cls, ErrorClass::kCancelled);
  EXPECT_EQ(upstreams.value()->find("primary")->requestCount(), 0u);
}

}  // namespace
}  // namespace hfchain
