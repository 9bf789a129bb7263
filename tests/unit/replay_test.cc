// Loopback tests of the replay server and the scripted fault-injection upstream, with Poco's
// HTTP client and raw sockets as clients.
#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "replay/recording.h"
#include "replay/replay_command.h"
#include "replay/replay_server.h"
#include "replay/script.h"
#include "replay/scripted_upstream.h"

namespace hfchain::replay {
namespace {

using ::testing::HasSubstr;
using json = nlohmann::json;

const std::string kRecordedDir = std::string(HFCHAIN_TEST_DATA_DIR) + "/recorded";
const std::string kCasesDir = std::string(HFCHAIN_TEST_DATA_DIR) + "/cases";

// Upper bound for stop() in the tests below. Reaching it means stop() hangs on a held
// connection; it is not a speed requirement.
constexpr auto kStopBound = std::chrono::seconds(5);

struct HttpResult {
  int status = 0;
  std::string reason;
  std::string body;
  Poco::Net::HTTPResponse response;
  // Poco's response stream turns a socket error into a bad stream state and keeps the
  // exception in the session, so a broken body shows here rather than as a throw.
  std::string body_error;
};

// Sends one request with Poco's client and reads the whole response.
HttpResult sendRequest(uint16_t port, const std::string& method, const std::string& path,
                       const std::string& body = "",
                       const std::string& content_type = "application/json",
                       Poco::Timespan timeout = Poco::Timespan(5, 0)) {
  Poco::Net::HTTPClientSession session("127.0.0.1", port);
  session.setTimeout(timeout);
  Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
  if (!body.empty()) {
    request.setContentType(content_type);
    request.setContentLength64(static_cast<Poco::Int64>(body.size()));
  }
  session.sendRequest(request) << body;
  HttpResult result;
  std::istream& in = session.receiveResponse(result.response);
  Poco::StreamCopier::copyToString(in, result.body);
  if (in.bad() && session.networkException() != nullptr) {
    result.body_error = session.networkException()->displayText();
  } else if (in.bad()) {
    result.body_error = "the response stream failed without a network exception";
  }
  result.status = result.response.getStatus();
  result.reason = result.response.getReason();
  return result;
}

// Sends raw bytes and returns everything the server writes until it closes the connection.
std::string sendRaw(uint16_t port, const std::string& bytes) {
  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", port));
  socket.setReceiveTimeout(Poco::Timespan(5, 0));
  socket.sendBytes(bytes.data(), static_cast<int>(bytes.size()));
  std::string received;
  char buffer[4096];
  int count;
  while ((count = socket.receiveBytes(buffer, sizeof(buffer))) > 0) received.append(buffer, count);
  return received;
}

Recording makeRecording(const std::string& method, const std::string& path, const json& body,
                        const std::string& response_body,
                        const std::string& content_type = "application/json") {
  json recording = {
      {"source", "unit test"},
      {"request",
       {{"method", method},
        {"base_url", "http://x"},
        {"path", path},
        {"headers", json::object()},
        {"body", body}}},
      {"response",
       {{"status", 200},
        {"reason", "OK"},
        {"headers",
         {{"Content-Type", content_type}, {"Content-Length", "999"}, {"X-Recorded", "yes"}}},
        {"body_chunks", json::array({response_body})}}},
      {"meta", json::object()}};
  Result<Recording> parsed = parseRecording(recording.dump(), "inline.json");
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  return parsed.value();
}

std::unique_ptr<ReplayServer> startReplay(std::vector<Recording> recordings,
                                          ReplayOptions options = {}) {
  Result<std::unique_ptr<ReplayServer>> server =
      ReplayServer::start(std::move(recordings), std::move(options));
  EXPECT_TRUE(server.ok()) << (server.ok() ? "" : server.error().message);
  return std::move(server).value();
}

std::unique_ptr<ScriptedUpstream> startScripted(const json& exchanges) {
  Result<Script> script = parseScript(exchanges);
  EXPECT_TRUE(script.ok()) << (script.ok() ? "" : script.error().message);
  Result<std::unique_ptr<ScriptedUpstream>> upstream =
      ScriptedUpstream::start("primary", std::move(script).value());
  EXPECT_TRUE(upstream.ok()) << (upstream.ok() ? "" : upstream.error().message);
  return std::move(upstream).value();
}

// Runs stop() on another thread and returns whether it finished within kStopBound.
template <typename Server>
bool stopsWithinBound(Server& server) {
  std::future<void> stopped = std::async(std::launch::async, [&server] { server.stop(); });
  return stopped.wait_for(kStopBound) == std::future_status::ready;
}

// --- Recordings ---

TEST(Recording, LoadsEveryRecordedFile) {
  Result<std::vector<Recording>> recordings = loadRecordings(kRecordedDir);
  ASSERT_TRUE(recordings.ok()) << recordings.error().message;
  EXPECT_GE(recordings.value().size(), 40u);
  for (const Recording& recording : recordings.value()) {
    EXPECT_FALSE(recording.method.empty()) << recording.file;
    EXPECT_EQ(recording.path.front(), '/') << recording.file;
  }
}

TEST(Recording, MalformedFileNamesPathAndJsonError) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("replay_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "broken.json").string();
  std::ofstream(file) << "{\"request\": {\"method\": \"GET\",";

  Result<std::vector<Recording>> recordings = loadRecordings(dir.string());
  std::filesystem::remove_all(dir);

  ASSERT_FALSE(recordings.ok());
  EXPECT_EQ(recordings.error().cls, ErrorClass::kConfigRejected);
  EXPECT_THAT(recordings.error().message, HasSubstr(file));
  EXPECT_THAT(recordings.error().message, HasSubstr("parse error"));
}

TEST(Recording, MissingFieldIsReported) {
  Result<Recording> recording =
      parseRecording(R"({"request": {"method": "GET", "path": "/x"}, "response": {}})", "a.json");
  ASSERT_FALSE(recording.ok());
  EXPECT_THAT(recording.error().message, HasSubstr("a.json"));
  EXPECT_THAT(recording.error().message, HasSubstr("response.status"));
}

TEST(Recording, MatchesJsonBodyAsValue) {
  Recording recording =
      makeRecording("POST", "/v1/chat", json{{"a", 1}, {"b", {1, 2}}}.dump(), "{}");
  EXPECT_TRUE(requestMatches(recording, "POST", "/v1/chat", R"({ "b" : [1,2], "a":1 })"));
  EXPECT_FALSE(requestMatches(recording, "POST", "/v1/chat", R"({"a": 2, "b": [1, 2]})"));
  EXPECT_FALSE(requestMatches(recording, "POST", "/v1/chat", ""));
  EXPECT_FALSE(requestMatches(recording, "GET", "/v1/chat", R"({"a": 1, "b": [1, 2]})"));
  EXPECT_FALSE(requestMatches(recording, "POST", "/v1/chat?x=1", R"({"a": 1, "b": [1, 2]})"));
}

TEST(Recording, MatchesTextBodyAsBytes) {
  Recording text = makeRecording("POST", "/t", "plain words", "{}");
  EXPECT_TRUE(requestMatches(text, "POST", "/t", "plain words"));
  EXPECT_FALSE(requestMatches(text, "POST", "/t", "plain  words"));
}

TEST(Recording, NullBodyMatchesEmptyBody) {
  Recording no_body = makeRecording("GET", "/n", nullptr, "{}");
  EXPECT_TRUE(requestMatches(no_body, "GET", "/n", ""));
  EXPECT_FALSE(requestMatches(no_body, "GET", "/n", "x"));
}

// --- ReplayServer ---

TEST(ReplayServer, AnswersRecordedStreamForReorderedJson) {
  Result<Recording> recording = loadRecordingFile(kRecordedDir + "/tgi-chat-stream-3.2.1.json");
  ASSERT_TRUE(recording.ok()) << recording.error().message;
  const std::string expected_body = recording.value().body();
  const std::string path = recording.value().path;
  json body = json::parse(*recording.value().request_body);
  auto server = startReplay({recording.value()});

  // nlohmann::json sorts keys, so the dump differs in order and spacing from the recording.
  const std::string reordered = body.dump(2);
  ASSERT_NE(reordered, *recording.value().request_body);
  HttpResult result = sendRequest(server->port(), "POST", path, reordered);

  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, expected_body);
  EXPECT_TRUE(result.response.getChunkedTransferEncoding());
  EXPECT_EQ(result.response.getContentType(), "text/event-stream");
  EXPECT_EQ(result.response.get("x-compute-type", ""), "2-a10-g");
  EXPECT_EQ(server->servedCounts(), std::vector<size_t>{1});
  EXPECT_EQ(server->unmatchedCount(), 0u);
}

TEST(ReplayServer, UsesContentLengthForJsonBodies) {
  auto server =
      startReplay({makeRecording("GET", "/api/models/m?expand=x", nullptr, R"({"id":"m"})")});
  HttpResult result = sendRequest(server->port(), "GET", "/api/models/m?expand=x");

  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, R"({"id":"m"})");
  EXPECT_FALSE(result.response.getChunkedTransferEncoding());
  // The recorded Content-Length (999) is dropped and the real length sent.
  EXPECT_EQ(result.response.getContentLength64(), 10);
  EXPECT_EQ(result.response.get("X-Recorded", ""), "yes");
}

TEST(ReplayServer, KeepsRecordedStatusAndReason) {
  Result<Recording> recording =
      loadRecordingFile(kRecordedDir + "/serverless-503-model-loading.json");
  ASSERT_TRUE(recording.ok()) << recording.error().message;
  ReplayOptions options;
  options.any = true;
  auto server = startReplay({recording.value()}, options);

  HttpResult result = sendRequest(server->port(), "POST", "/anything", "{}");

  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(result.reason, "Service Unavailable");
  EXPECT_EQ(result.body, recording.value().body());
}

TEST(ReplayServer, AnyModeServesRecordingsInTurn) {
  ReplayOptions options;
  options.any = true;
  auto server = startReplay({makeRecording("POST", "/a", nullptr, "first"),
                             makeRecording("POST", "/b", nullptr, "second")},
                            options);

  EXPECT_EQ(sendRequest(server->port(), "GET", "/unrelated").body, "first");
  EXPECT_EQ(sendRequest(server->port(), "POST", "/other", "{\"x\":1}").body, "second");
  EXPECT_EQ(sendRequest(server->port(), "DELETE", "/z").body, "first");
  EXPECT_EQ(server->servedCounts(), (std::vector<size_t>{2, 1}));
}

TEST(ReplayServer, SameRequestRecordingsTakeTurns) {
  auto server = startReplay(
      {makeRecording("POST", "/g", nullptr, "one"), makeRecording("POST", "/g", nullptr, "two")});
  EXPECT_EQ(sendRequest(server->port(), "POST", "/g").body, "one");
  EXPECT_EQ(sendRequest(server->port(), "POST", "/g").body, "two");
  EXPECT_EQ(sendRequest(server->port(), "POST", "/g").body, "one");
}

TEST(ReplayServer, UnmatchedRequestGets404WithHint) {
  auto server = startReplay(
      {makeRecording("POST", "/a", nullptr, "x"), makeRecording("POST", "/b", nullptr, "y")});
  HttpResult result = sendRequest(server->port(), "POST", "/missing?q=1", "{\"k\":1}");

  EXPECT_EQ(result.status, 404);
  json body = json::parse(result.body);
  EXPECT_EQ(body["error_type"], "replay");
  const std::string message = body["error"];
  EXPECT_THAT(message, HasSubstr("POST /missing?q=1"));
  EXPECT_THAT(message, HasSubstr("2 recordings loaded"));
  EXPECT_THAT(message, HasSubstr("--any"));
  EXPECT_EQ(server->unmatchedCount(), 1u);
  EXPECT_EQ(server->servedCounts(), (std::vector<size_t>{0, 0}));
}

TEST(ReplayServer, SplitsEventStreamIntoChunksOfN) {
  const std::string body = "data: {\"token\":\"abc\"}\n\ndata: [DONE]\n\n";
  ReplayOptions options;
  options.chunk_bytes = 5;
  options.chunk_delay_ms = 1;
  auto server =
      startReplay({makeRecording("GET", "/s", nullptr, body, "text/event-stream")}, options);

  const std::string raw =
      sendRaw(server->port(), "GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

  // Rebuild the body from the chunked framing and check every chunk but the last has 5 bytes.
  const size_t header_end = raw.find("\r\n\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_THAT(raw.substr(0, header_end), HasSubstr("Transfer-Encoding: chunked"));
  std::string rebuilt;
  std::vector<size_t> sizes;
  size_t position = header_end + 4;
  while (true) {
    const size_t line_end = raw.find("\r\n", position);
    ASSERT_NE(line_end, std::string::npos);
    const size_t size = std::stoul(raw.substr(position, line_end - position), nullptr, 16);
    if (size == 0) break;
    sizes.push_back(size);
    rebuilt += raw.substr(line_end + 2, size);
    position = line_end + 2 + size + 2;
  }
  EXPECT_EQ(rebuilt, body);
  ASSERT_EQ(sizes.size(), (body.size() + 4) / 5);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) EXPECT_EQ(sizes[i], 5u) << "chunk " << i;
}

TEST(ReplayServer, ChunkedJsonBodyArrivesExact) {
  std::string body = "{\"generated_text\":\"";
  for (int i = 0; i < 300; ++i) body += "tok ";
  body += "\"}";
  ReplayOptions options;
  options.chunk_bytes = 64;
  auto server = startReplay({makeRecording("POST", "/gen", nullptr, body)}, options);

  HttpResult result = sendRequest(server->port(), "POST", "/gen");

  EXPECT_EQ(result.body, body);
  EXPECT_EQ(result.response.getContentLength64(), static_cast<Poco::Int64>(body.size()));
}

TEST(ReplayServer, StopReturnsDuringChunkDelay) {
  ReplayOptions options;
  options.chunk_bytes = 1;
  options.chunk_delay_ms = 60'000;
  auto server =
      startReplay({makeRecording("GET", "/slow", nullptr, "abc", "text/event-stream")}, options);
  Poco::Net::HTTPClientSession session("127.0.0.1", server->port());
  session.setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest request("GET", "/slow", Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  char first = 0;
  in.get(first);
  EXPECT_EQ(first, 'a');

  EXPECT_TRUE(stopsWithinBound(*server));
}

TEST(ReplayServer, RejectsNonLoopbackHost) {
  ReplayOptions options;
  options.host = "0.0.0.0";
  Result<std::unique_ptr<ReplayServer>> server =
      ReplayServer::start({makeRecording("GET", "/", nullptr, "")}, options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.error().message, HasSubstr("0.0.0.0"));
}

// --- hfchain replay arguments ---

TEST(ReplayCommand, ParsesAllOptions) {
  Result<ReplayCommandArgs> args =
      parseReplayArgs({"recs", "--port", "0", "--any", "--chunk-bytes=16", "--chunk-delay-ms", "20",
                       "--host", "::1"});
  ASSERT_TRUE(args.ok()) << args.error().message;
  EXPECT_EQ(args.value().path, "recs");
  EXPECT_EQ(args.value().options.port, 0);
  EXPECT_TRUE(args.value().options.any);
  EXPECT_EQ(args.value().options.chunk_bytes, 16u);
  EXPECT_EQ(args.value().options.chunk_delay_ms, 20);
  EXPECT_EQ(args.value().options.host, "::1");
}

TEST(ReplayCommand, BadValuesExitWithCode2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"recs", "--port", "70000"}, "70000"},
      {{"recs", "--port", "12x"}, "12x"},
      {{"recs", "--port", "0", "--chunk-bytes", "0"}, "--chunk-bytes \"0\""},
      {{"recs", "--port", "0", "--chunk-delay-ms", "-5"}, "-5"},
      {{"recs", "--port", "0", "--host", "10.0.0.1"}, "10.0.0.1"},
      {{"recs", "--port", "0", "--bogus"}, "--bogus"},
      {{"recs"}, "--port"},
      {{"--port", "0"}, "PATH"},
  };
  for (const auto& [args, expected] : cases) {
    std::ostringstream out;
    std::ostringstream err;
    EXPECT_EQ(runReplayCommand(args, out, err), 2) << expected;
    EXPECT_THAT(err.str(), HasSubstr(expected));
    EXPECT_THAT(err.str(), HasSubstr("usage: hfchain replay"));
  }
}

// An output stream buffer that another thread can read while runReplayCommand writes to it.
class SharedTextBuffer : public std::streambuf {
 public:
  // Waits until a full line has been written and returns it, or "" after `timeout`.
  std::string waitForLine(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [this] { return text_.find('\n') != std::string::npos; });
    const size_t end = text_.find('\n');
    return end == std::string::npos ? "" : text_.substr(0, end);
  }

 protected:
  int_type overflow(int_type c) override {
    if (c != traits_type::eof()) {
      const char ch = traits_type::to_char_type(c);
      xsputn(&ch, 1);
    }
    return traits_type::not_eof(c);
  }
  std::streamsize xsputn(const char* data, std::streamsize count) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      text_.append(data, static_cast<size_t>(count));
    }
    cv_.notify_all();
    return count;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string text_;
};

TEST(ReplayCommand, ServesUntilSigterm) {
  SharedTextBuffer out_buffer;
  std::ostream out(&out_buffer);
  std::ostringstream err;
  std::promise<int> exit_code;
  std::thread command([&] {
    exit_code.set_value(
        runReplayCommand({kRecordedDir + "/hub-model-info-full.json", "--port", "0"}, out, err));
  });

  const std::string line = out_buffer.waitForLine(std::chrono::seconds(5));
  const std::string prefix = "replay: serving 1 recordings on http://127.0.0.1:";
  const bool started = line.rfind(prefix, 0) == 0;
  EXPECT_TRUE(started) << "first output line: \"" << line << "\", errors: " << err.str();
  if (started) {
    const auto port = static_cast<uint16_t>(std::stoi(line.substr(prefix.size())));
    EXPECT_EQ(sendRequest(port, "GET", "/api/models/meta-llama/Llama-3.1-8B-Instruct").status, 200);
  }

  // The command blocks SIGTERM in its own thread and waits for it there, so the signal goes to
  // that thread only. The thread is joined in every case so that a failure cannot abort.
  pthread_kill(command.native_handle(), SIGTERM);
  std::future<int> finished = exit_code.get_future();
  const bool stopped = finished.wait_for(kStopBound) == std::future_status::ready;
  command.join();
  EXPECT_TRUE(stopped);
  EXPECT_EQ(finished.get(), 0);
}

TEST(ReplayCommand, MissingPathExitsWithCode1) {
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runReplayCommand({"/nonexistent/recordings", "--port", "0"}, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/recordings"));
}

// --- Scripts ---

TEST(Script, ParsesEveryCaseFile) {
  for (const auto& entry : std::filesystem::directory_iterator(kCasesDir)) {
    if (entry.path().extension() != ".json") continue;
    std::ifstream in(entry.path());
    json root = json::parse(in);
    if (!root.contains("upstream_script")) continue;
    Result<std::map<std::string, Script>> scripts = parseUpstreamScripts(root["upstream_script"]);
    EXPECT_TRUE(scripts.ok()) << entry.path() << ": "
                              << (scripts.ok() ? "" : scripts.error().message);
  }
}

TEST(Script, DecodesTextHexAndParts) {
  Result<Script> script = parseScript(json::parse(R"([{"status": 200, "chunks": [
      {"text": "a\r\n"}, {"hex": "f09f98"}, {"parts": [{"text": "x"}, {"repeat": "ab", "count": 3},
      {"hex": "80"}], "delay_ms": 5}]}])"));
  ASSERT_TRUE(script.ok()) << script.error().message;
  const std::vector<ScriptChunk>& chunks = script.value()[0].chunks;
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].bytes, "a\r\n");
  EXPECT_EQ(chunks[1].bytes, "\xf0\x9f\x98");
  EXPECT_EQ(chunks[2].bytes, "xababab\x80");
  EXPECT_EQ(chunks[2].delay_ms, 5);
}

TEST(Script, RejectsInvalidFields) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([{"status": 200, "end": "explode"}])", "explode"},
      {R"([{"status": 200, "chunks": [{"hex": "abc"}]}])", "odd number"},
      {R"([{"status": 200, "chunks": [{"hex": "zz"}]}])", "non-hex"},
      {R"([{"status": 200, "chunks": [{"text": "a", "hex": "61"}]}])", "exactly one"},
      {R"([{"status": 200, "colour": "red"}])", "colour"},
      {R"([{"status": "200"}])", "status"},
      {R"([{"status": 200, "write_size": 0}])", "write_size"},
      {R"({"status": 200})", "array"},
  };
  for (const auto& [text, expected] : cases) {
    Result<Script> script = parseScript(json::parse(text));
    ASSERT_FALSE(script.ok()) << text;
    EXPECT_THAT(script.error().message, HasSubstr(expected)) << text;
  }
}

// --- ScriptedUpstream ---

TEST(ScriptedUpstream, RecordsRequestsAndServesInOrder) {
  auto upstream = startScripted(json::parse(R"([
      {"status": 503, "headers": {"content-type": "application/json", "retry-after": "1"},
       "chunks": [{"text": "{\"error\":\"overloaded\"}"}], "end": "close"},
      {"status": 200, "headers": {"content-type": "application/json"},
       "chunks": [{"text": "{\"generated_text\":\"ok\"}"}], "end": "close"}])"));

  HttpResult first = sendRequest(upstream->port(), "POST", "/generate?x=1", R"({"inputs":"hi"})");
  HttpResult second = sendRequest(upstream->port(), "GET", "/info");

  EXPECT_EQ(first.status, 503);
  EXPECT_EQ(first.response.get("retry-after", ""), "1");
  EXPECT_EQ(first.body, R"({"error":"overloaded"})");
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, R"({"generated_text":"ok"})");

  std::vector<ReceivedRequest> requests = upstream->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/generate?x=1");
  EXPECT_EQ(requests[0].body, R"({"inputs":"hi"})");
  EXPECT_EQ(requests[0].header("content-type"), "application/json");
  EXPECT_EQ(requests[0].exchange_index, 0);
  EXPECT_EQ(requests[1].method, "GET");
  EXPECT_EQ(requests[1].body, "");
  EXPECT_EQ(requests[1].exchange_index, 1);
  EXPECT_LE(requests[0].arrival, requests[1].arrival);
  EXPECT_GE(requests[0].arrival_ms, 0);
}

TEST(ScriptedUpstream, DecodesChunkedRequestBody) {
  auto upstream = startScripted(json::parse(R"([{"status": 204, "end": "close"}])"));
  const std::string raw = sendRaw(upstream->port(),
                                  "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                  "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  EXPECT_THAT(raw, HasSubstr("HTTP/1.1 204"));
  ASSERT_EQ(upstream->requestCount(), 1u);
  EXPECT_EQ(upstream->requests()[0].body, "abcde");
}

TEST(ScriptedUpstream, WritesOneHttpChunkPerWrite) {
  auto upstream = startScripted(json::parse(R"([{"status": 200,
      "headers": {"content-type": "text/event-stream"},
      "chunks": [{"text": "data: a\r"}, {"text": "\n\r\n", "delay_ms": 1}, {"hex": "f09f"}],
      "write_size": 4, "end": "close"}])"));

  const std::string raw = sendRaw(upstream->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");

  const std::string expected_body =
      "4\r\ndata\r\n4\r\n: a\r\r\n3\r\n\n\r\n\r\n2\r\n\xf0\x9f\r\n0\r\n\r\n";
  const size_t header_end = raw.find("\r\n\r\n");
  ASSERT_NE(header_end, std::string::npos);
  EXPECT_THAT(raw.substr(0, header_end), HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(raw.substr(0, header_end), HasSubstr("Connection: close"));
  EXPECT_EQ(raw.substr(header_end + 4), expected_body);
}

TEST(ScriptedUpstream, ContentLengthHeaderWritesUnframedBody) {
  auto upstream = startScripted(json::parse(R"([{"status": 200,
      "headers": {"content-length": "5"}, "chunks": [{"text": "he"}, {"text": "llo"}]}])"));
  HttpResult result = sendRequest(upstream->port(), "GET", "/");
  EXPECT_EQ(result.body, "hello");
  EXPECT_FALSE(result.response.getChunkedTransferEncoding());
}

TEST(ScriptedUpstream, NullStatusNeverAnswers) {
  auto upstream = startScripted(json::parse(R"([{"status": null, "end": "stall"}])"));

  EXPECT_THROW(sendRequest(upstream->port(), "POST", "/generate", "{}", "application/json",
                           Poco::Timespan(0, 200'000)),
               Poco::TimeoutException);
  EXPECT_EQ(upstream->requestCount(), 1u);
  EXPECT_TRUE(stopsWithinBound(*upstream));
}

TEST(ScriptedUpstream, ResetEndGivesClientAnError) {
  auto upstream = startScripted(json::parse(R"([{"status": 200,
      "headers": {"content-type": "text/event-stream"},
      "chunks": [{"text": "data: {\"token\":1}\n\n"}], "end": "reset"}])"));

  // The reset may reach the client before or after it has read the status line.
  std::string error;
  try {
    HttpResult result = sendRequest(upstream->port(), "GET", "/stream");
    EXPECT_EQ(result.status, 200);
    error = result.body_error;
  } catch (const Poco::Exception& e) {
    error = e.displayText();
  }
  EXPECT_THAT(error, HasSubstr("reset"));
}

TEST(ScriptedUpstream, ResetAfterBytesCutsBody) {
  auto upstream = startScripted(json::parse(R"([{"status": 200,
      "headers": {"content-length": "10"}, "chunks": [{"text": "0123456789"}],
      "reset_after_bytes": 4}])"));

  Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", upstream->port()));
  socket.setReceiveTimeout(Poco::Timespan(5, 0));
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  socket.sendBytes(request.data(), static_cast<int>(request.size()));
  std::string received;
  bool reset = false;
  char buffer[256];
  try {
    int count;
    while ((count = socket.receiveBytes(buffer, sizeof(buffer))) > 0) {
      received.append(buffer, count);
    }
  } catch (const Poco::Net::ConnectionResetException&) {
    reset = true;
  }
  EXPECT_TRUE(reset);
  // Whatever arrived before the reset never goes past the fourth body byte.
  EXPECT_EQ(received.find("45"), std::string::npos);
}

TEST(ScriptedUpstream, StallEndsWhenStopped) {
  auto upstream = startScripted(json::parse(R"([{"status": 200,
      "headers": {"content-type": "text/event-stream"},
      "chunks": [{"text": "data: a\n\n"}], "end": "stall"}])"));
  Poco::Net::HTTPClientSession session("127.0.0.1", upstream->port());
  session.setTimeout(Poco::Timespan(5, 0));
  Poco::Net::HTTPRequest request("GET", "/", Poco::Net::HTTPMessage::HTTP_1_1);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::istream& in = session.receiveResponse(response);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "data: a");

  EXPECT_TRUE(stopsWithinBound(*upstream));
  // The stream ends without its terminating chunk, so the client sees an error or EOF.
  std::string rest;
  try {
    Poco::StreamCopier::copyToString(in, rest);
  } catch (const Poco::Exception&) {
  }
  EXPECT_EQ(rest, "\n");
}

TEST(ScriptedUpstream, RepeatServesLastExchangeForever) {
  auto upstream = startScripted(json::parse(R"([
      {"status": 429, "chunks": [{"text": "slow down"}]},
      {"status": 200, "chunks": [{"text": "ok"}], "repeat": true}])"));
  EXPECT_EQ(sendRequest(upstream->port(), "GET", "/").status, 429);
  for (int i = 0; i < 3; ++i) {
    HttpResult result = sendRequest(upstream->port(), "GET", "/");
    EXPECT_EQ(result.status, 200) << "request " << i;
    EXPECT_EQ(result.body, "ok") << "request " << i;
  }
  EXPECT_EQ(upstream->requestCount(), 4u);
  EXPECT_EQ(upstream->requests().back().exchange_index, 1);
}

TEST(ScriptedUpstream, ExhaustedScriptAnswers500) {
  auto upstream = startScripted(json::parse(R"([{"status": 200, "chunks": [{"text": "x"}]}])"));
  EXPECT_EQ(sendRequest(upstream->port(), "GET", "/").status, 200);

  HttpResult result = sendRequest(upstream->port(), "GET", "/");

  EXPECT_EQ(result.status, 500);
  json body = json::parse(result.body);
  EXPECT_EQ(body["error_type"], "replay");
  EXPECT_THAT(body["error"].get<std::string>(), HasSubstr("script exhausted at request 2"));
  EXPECT_EQ(upstream->requestCount(), 2u);
  EXPECT_EQ(upstream->requests()[1].exchange_index, -1);
}

TEST(ScriptedUpstreams, NamedUpstreamsUseSeparatePorts) {
  Result<std::unique_ptr<ScriptedUpstreams>> upstreams = ScriptedUpstreams::start(json::parse(R"({
      "primary": [{"status": 500, "chunks": [{"text": "down"}]}],
      "fallback": [{"status": 200, "chunks": [{"text": "up"}]}]})"));
  ASSERT_TRUE(upstreams.ok()) << upstreams.error().message;
  ScriptedUpstream* primary = upstreams.value()->find("primary");
  ScriptedUpstream* fallback = upstreams.value()->find("fallback");
  ASSERT_NE(primary, nullptr);
  ASSERT_NE(fallback, nullptr);
  EXPECT_NE(primary->port(), fallback->port());
  EXPECT_EQ(upstreams.value()->find("other"), nullptr);

  EXPECT_EQ(sendRequest(primary->port(), "GET", "/").body, "down");
  EXPECT_EQ(sendRequest(fallback->port(), "GET", "/").body, "up");
  EXPECT_EQ(upstreams.value()->requestCounts(),
            (std::map<std::string, size_t>{{"fallback", 1}, {"primary", 1}}));
}

}  // namespace
}  // namespace hfchain::replay
