// The `hfchain replay` command: serves recorded exchanges until SIGINT or SIGTERM.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "replay/replay_server.h"
#include "replay/result.h"

namespace hfchain::replay {

// Settings parsed from the words after `hfchain replay`.
struct ReplayCommandArgs {
  std::string path;  // a recording file or a folder of *.json recordings
  ReplayOptions options;
  bool help = false;  // --help was given: print the usage and exit 0
};

// Returns the usage text of the command, ending with a newline.
std::string replayUsage();

// Parses the words after the verb, e.g. {"tests/data/recorded", "--port", "0", "--any"}.
// Errors name the bad word or value.
Result<ReplayCommandArgs> parseReplayArgs(const std::vector<std::string>& args);

// Runs `hfchain replay PATH --port N [--any] [--chunk-bytes N] [--chunk-delay-ms D]
// [--host 127.0.0.1]`. `args` are the words after "replay". Prints
// "replay: serving K recordings on http://HOST:PORT" to `out` and flushes it, then serves until
// the process receives SIGINT or SIGTERM. Returns 0 after a signal, 2 for bad arguments (with
// the usage on `err`) and 1 when the recordings cannot be loaded or the port cannot be bound.
// SIGINT and SIGTERM are blocked in the calling thread while it serves, so call it from the
// main thread before other threads start.
int runReplayCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace hfchain::replay
