// Runs the hfchain CLI as a child process and captures what it prints.
#pragma once

#include <Poco/Pipe.h>
#include <Poco/PipeStream.h>
#include <Poco/Process.h>
#include <Poco/StreamCopier.h>

#include <string>
#include <thread>
#include <vector>

namespace hfchain::testing {

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `program` with `args` and optional standard input, waits for it to exit, and returns
// its output. `env` entries are set for the child only.
inline ProcessResult runProcess(const std::string& program, const std::vector<std::string>& args,
                                const Poco::Process::Env& env = {}, const std::string& input = "") {
  Poco::Pipe in_pipe, out_pipe, err_pipe;
  Poco::ProcessHandle handle =
      Poco::Process::launch(program, args, ".", &in_pipe, &out_pipe, &err_pipe, env);
  ProcessResult result;
  {
    Poco::PipeOutputStream to_child(in_pipe);
    to_child << input;
    to_child.close();
  }
  std::thread err_reader([&] {
    Poco::PipeInputStream from_child(err_pipe);
    Poco::StreamCopier::copyToString(from_child, result.err);
  });
  Poco::PipeInputStream from_child(out_pipe);
  Poco::StreamCopier::copyToString(from_child, result.out);
  err_reader.join();
  result.exit_code = handle.wait();
  return result;
}

inline ProcessResult runCli(const std::vector<std::string>& args,
                            const Poco::Process::Env& env = {}, const std::string& input = "") {
  Poco::Process::Env full = env;
  full["HFCHAIN_PLUGIN_PATH"] = HFCHAIN_PLUGIN_DIR;
  return runProcess(HFCHAIN_CLI_PATH, args, full, input);
}

}  // namespace hfchain::testing
