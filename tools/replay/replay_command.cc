// Argument parsing and the signal wait of `hfchain replay`.
#include "replay/replay_command.h"

#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <limits>
#include <mutex>
#include <optional>

namespace hfchain::replay {
namespace {

Error usageError(const std::string& message) {
  return makeError(ErrorClass::kInvalidRequest, message);
}

// Parses a whole decimal word as an integer in [min, max].
std::optional<long long> parseInteger(const std::string& word, long long min, long long max) {
  long long value = 0;
  const char* end = word.data() + word.size();
  auto [ptr, ec] = std::from_chars(word.data(), end, value);
  if (ec != std::errc() || ptr != end || word.empty() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

std::string replayUsage() {
  return "usage: hfchain replay PATH --port N [--any] [--chunk-bytes N] [--chunk-delay-ms D]\n"
         "                      [--host 127.0.0.1]\n"
         "\n"
         "Serves recorded upstream exchanges over HTTP on a loopback address until SIGINT or\n"
         "SIGTERM.\n"
         "\n"
         "  PATH                a recording file or a folder of *.json recordings\n"
         "  --port N            TCP port to listen on; 0 picks a free port (printed at start)\n"
         "  --any               respond to every request with the next recording in turn,\n"
         "                      whatever was requested\n"
         "  --chunk-bytes N     write the body in chunks of N bytes (default: as recorded)\n"
         "  --chunk-delay-ms D  wait D milliseconds between body chunks (default: 0)\n"
         "  --host H            loopback address to bind: 127.0.0.1 (default), ::1 or\n"
         "                      localhost\n";
}

Result<ReplayCommandArgs> parseReplayArgs(const std::vector<std::string>& args) {
  ReplayCommandArgs parsed;
  bool port_given = false;

  for (size_t i = 0; i < args.size(); ++i) {
    std::string word = args[i];
    std::optional<std::string> inline_value;
    if (word.rfind("--", 0) == 0) {
      const size_t equals = word.find('=');
      if (equals != std::string::npos) {
        inline_value = word.substr(equals + 1);
        word.resize(equals);
      }
    }
    // Returns the value of an option, from "--name=value" or from the next word.
    auto takeValue = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };

    if (word == "--help" || word == "-h") {
      parsed.help = true;
    } else if (word == "--any") {
      parsed.options.any = true;
    } else if (word == "--port") {
      std::optional<std::string> value = takeValue();
      if (!value) return usageError("--port needs a value");
      std::optional<long long> port = parseInteger(*value, 0, 65535);
      if (!port) return usageError("invalid --port \"" + *value + "\": expected 0 to 65535");
      parsed.options.port = static_cast<uint16_t>(*port);
      port_given = true;
    } else if (word == "--chunk-bytes") {
      std::optional<std::string> value = takeValue();
      if (!value) return usageError("--chunk-bytes needs a value");
      std::optional<long long> bytes = parseInteger(*value, 1, std::numeric_limits<int32_t>::max());
      if (!bytes) {
        return usageError("invalid --chunk-bytes \"" + *value + "\": expected a positive integer");
      }
      parsed.options.chunk_bytes = static_cast<size_t>(*bytes);
    } else if (word == "--chunk-delay-ms") {
      std::optional<std::string> value = takeValue();
      if (!value) return usageError("--chunk-delay-ms needs a value");
      std::optional<long long> delay = parseInteger(*value, 0, 3'600'000);
      if (!delay) {
        return usageError("invalid --chunk-delay-ms \"" + *value +
                          "\": expected 0 to 3600000 milliseconds");
      }
      parsed.options.chunk_delay_ms = static_cast<int>(*delay);
    } else if (word == "--host") {
      std::optional<std::string> value = takeValue();
      if (!value) return usageError("--host needs a value");
      if (!isLoopbackHost(*value)) {
        return usageError("invalid --host \"" + *value +
                          "\": only loopback addresses are allowed (127.0.0.1, ::1, localhost)");
      }
      parsed.options.host = *value;
    } else if (word.rfind("-", 0) == 0 && word.size() > 1) {
      return usageError("unknown option \"" + args[i] + "\"");
    } else if (parsed.path.empty()) {
      parsed.path = word;
    } else {
      return usageError("unexpected argument \"" + word + "\": PATH was already given as \"" +
                        parsed.path + "\"");
    }
  }

  if (parsed.help) return parsed;
  if (parsed.path.empty()) return usageError("missing PATH (a recording file or folder)");
  if (!port_given) return usageError("missing --port N (use --port 0 for a free port)");
  return parsed;
}

int runReplayCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Result<ReplayCommandArgs> parsed = parseReplayArgs(args);
  if (!parsed) {
    err << "hfchain replay: " << parsed.error().message << "\n" << replayUsage();
    return 2;
  }
  if (parsed.value().help) {
    out << replayUsage();
    return 0;
  }

  Result<std::vector<Recording>> recordings = loadRecordings(parsed.value().path);
  if (!recordings) {
    err << "hfchain replay: " << recordings.error().message << "\n";
    return 1;
  }

  // Block the stop signals before the server threads start so that they inherit the mask and
  // sigwait below receives the signal.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t previous_mask;
  pthread_sigmask(SIG_BLOCK, &stop_signals, &previous_mask);

  std::mutex err_mutex;
  ReplayOptions options = parsed.value().options;
  options.log = [&err, &err_mutex](std::string_view line) {
    std::lock_guard<std::mutex> lock(err_mutex);
    err << line << std::endl;
  };

  const size_t count = recordings.value().size();
  Result<std::unique_ptr<ReplayServer>> server =
      ReplayServer::start(std::move(recordings).value(), std::move(options));
  if (!server) {
    pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
    err << "hfchain replay: " << server.error().message << "\n";
    return 1;
  }
  out << "replay: serving " << count << " recordings on " << server.value()->baseUrl() << std::endl;

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  {
    std::lock_guard<std::mutex> lock(err_mutex);
    err << "replay: received signal " << signal_number << ", stopping" << std::endl;
  }
  server.value()->stop();
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  return 0;
}

}  // namespace hfchain::replay
