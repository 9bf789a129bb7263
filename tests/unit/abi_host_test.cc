// The host callback table as a plugin sees it: every call on real engine objects.
#include "abi_host.h"

#include <gtest/gtest.h>

#include "hfchain/clock.h"

namespace hfchain {
namespace {

hfc_str str(std::string_view text) { return hfc_str{text.data(), text.size()}; }
std::string text(hfc_str value) { return std::string(value.data, value.size); }

class AbiHost : public ::testing::Test {
 protected:
  const hfc_host_api& host = *abi::hostApi();
  Request request;
  hfc_request* raw = abi::toAbi(&request);
};

TEST_F(AbiHost, TableDeclaresVersionAndSize) {
  EXPECT_EQ(host.abi_version, HFC_ABI_VERSION);
  EXPECT_EQ(host.struct_size, sizeof(hfc_host_api));
}

TEST_F(AbiHost, RequestFieldsRoundTrip) {
  request.id = "abc";
  EXPECT_EQ(text(host.request_get(raw, HFC_REQUEST_ID)), "abc");
  EXPECT_EQ(host.request_set(raw, HFC_REQUEST_ID, str("other")), 0);  // read-only
  EXPECT_EQ(request.id, "abc");
  EXPECT_EQ(host.request_set(raw, HFC_REQUEST_TARGET, str("light")), 1);
  EXPECT_EQ(request.target, "light");
  EXPECT_EQ(host.request_set(raw, HFC_REQUEST_MODEL, str("m")), 1);
  EXPECT_EQ(request.model, "m");
}

TEST_F(AbiHost, ParametersAreJson) {
  EXPECT_EQ(host.request_param_set(raw, str("max_new_tokens"), str("64")), 1);
  EXPECT_EQ(request.parameters["max_new_tokens"], 64);
  EXPECT_EQ(host.request_param_set(raw, str("stop"), str("[not json")), 0);
  EXPECT_FALSE(request.parameters.contains("stop"));
  hfc_str out{};
  EXPECT_EQ(host.request_param_get(raw, str("max_new_tokens"), &out), 1);
  EXPECT_EQ(text(out), "64");
  EXPECT_EQ(host.request_param_get(raw, str("missing"), &out), 0);
  EXPECT_EQ(host.request_param_set(raw, str("max_new_tokens"), hfc_str{nullptr, 0}), 1);
  EXPECT_FALSE(request.parameters.contains("max_new_tokens"));
}

TEST_F(AbiHost, MessagesRespectBounds) {
  EXPECT_EQ(host.request_message_insert(raw, 0, str("user"), str("hi")), 1);
  EXPECT_EQ(host.request_message_insert(raw, 0, str("system"), str("be brief")), 1);
  EXPECT_EQ(host.request_message_insert(raw, 5, str("user"), str("x")), 0);
  ASSERT_EQ(host.request_message_count(raw), 2u);
  hfc_str role{}, content{};
  ASSERT_EQ(host.request_message_get(raw, 0, &role, &content), 1);
  EXPECT_EQ(text(role), "system");
  EXPECT_EQ(host.request_message_get(raw, 2, &role, &content), 0);
  EXPECT_EQ(host.request_message_set(raw, 1, str("user"), str("hello")), 1);
  EXPECT_EQ(request.messages[1].content, "hello");
  EXPECT_EQ(host.request_message_erase(raw, 7), 0);
  EXPECT_EQ(host.request_message_erase(raw, 0), 1);
  EXPECT_EQ(request.messages.size(), 1u);
}

TEST_F(AbiHost, HeadersIgnoreCaseAndRemove) {
  host.request_header_set(raw, str("Authorization"), str("Bearer x"));
  hfc_str value{};
  ASSERT_EQ(host.request_header_get(raw, str("authorization"), &value), 1);
  EXPECT_EQ(text(value), "Bearer x");
  host.request_header_set(raw, str("AUTHORIZATION"), hfc_str{nullptr, 0});
  EXPECT_EQ(host.request_header_get(raw, str("Authorization"), &value), 0);
}

TEST_F(AbiHost, CloneHasOwnCancellation) {
  hfc_request* copy = host.request_clone(raw);
  host.request_cancel(copy);
  EXPECT_EQ(host.request_is_cancelled(copy), 1);
  EXPECT_EQ(host.request_is_cancelled(raw), 0);
  hfc_request* second = host.request_clone(raw);
  host.request_cancel(raw);
  EXPECT_EQ(host.request_is_cancelled(second), 1);  // the original's cancellation reaches copies
  host.request_free(copy);
  host.request_free(second);
}

TEST_F(AbiHost, DeadlineIsRelativeMilliseconds) {
  EXPECT_EQ(host.request_deadline_remaining_ms(raw), -1);
  host.request_set_deadline_ms(raw, 5000);
  int64_t left = host.request_deadline_remaining_ms(raw);
  EXPECT_GT(left, 4000);
  EXPECT_LE(left, 5000);
}

TEST_F(AbiHost, EventFieldsAndInvalidValues) {
  Event event;
  hfc_event* raw_event = abi::toAbi(&event);
  host.event_set_int(raw_event, HFC_EVENT_KIND, HFC_EVENT_FINISH);
  EXPECT_EQ(event.kind, EventKind::kFinish);
  host.event_set_int(raw_event, HFC_EVENT_KIND, 99);  // ignored: not a kind
  EXPECT_EQ(event.kind, EventKind::kFinish);
  host.event_set(raw_event, HFC_EVENT_FINISH_REASON, str("length"));
  EXPECT_EQ(event.finish_reason, "length");
  hfc_error error{9999, 500, str("boom"), -1, -1};
  host.event_set_error(raw_event, &error);
  EXPECT_EQ(event.kind, EventKind::kError);
  EXPECT_EQ(event.error.cls, ErrorClass::kInternal);  // an unknown class is not trusted
  EXPECT_EQ(event.error.message, "boom");
}

TEST_F(AbiHost, ResponseWithoutStreamStillEnds) {
  Response response = makeTextResponse("x");
  hfc_response* owned = abi::releaseToAbi(std::move(response));
  hfc_response* stream_only = host.response_take_stream(owned);
  host.response_free(stream_only);
  Response adopted = abi::adoptFromAbi(owned, "test-link");
  ASSERT_TRUE(adopted.stream);
  Event event;
  ASSERT_TRUE(adopted.stream->next(event));
  EXPECT_EQ(event.kind, EventKind::kError);
  EXPECT_NE(event.error.message.find("test-link"), std::string::npos);
}

TEST_F(AbiHost, SleepUsesTimeSource) {
  ManualTimeSource clock;
  setTimeSourceForTest(&clock);
  int64_t before = host.now_ms();
  EXPECT_EQ(host.sleep_ms(raw, 1500), 1);
  EXPECT_EQ(host.now_ms() - before, 1500);
  request.cancel.cancel();
  EXPECT_EQ(host.sleep_ms(raw, 10), 0);
  setTimeSourceForTest(nullptr);
  ASSERT_EQ(clock.sleeps().size(), 1u);
  EXPECT_EQ(clock.sleeps()[0], 1500);
}

TEST_F(AbiHost, ChainBuildOutsideCreateFails) {
  char reason[256] = {0};
  std::string links = "[]";
  EXPECT_EQ(host.chain_build(str(links), reason, sizeof(reason)), nullptr);
  EXPECT_NE(std::string(reason).find("create"), std::string::npos) << reason;
}

}  // namespace
}  // namespace hfchain
