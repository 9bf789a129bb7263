// `hfchain serve`: runs the HTTP gateway until SIGINT or SIGTERM; SIGHUP reloads the config.
#include <signal.h>

#include <string>

#include "cli.h"
#include "hfchain/engine.h"
#include "hfchain/gateway.h"

namespace hfchain::cli {
namespace {

// Parses a whole decimal number in [minimum, maximum]; sets `error` naming `option` otherwise.
int64_t parseNumber(const std::string& option, const std::string& text, int64_t minimum,
                    int64_t maximum, std::string& error) {
  size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || value < minimum || value > maximum) {
    error = option + " is '" + text + "'; use a whole number from " + std::to_string(minimum) +
            " to " + std::to_string(maximum);
  }
  return value;
}

}  // namespace

int runServe(Arguments args, std::ostream& out, std::ostream& err) {
  std::string error;
  std::string config_path = args.take("--config", error).value_or("");
  GatewayOptions options;
  options.host = args.take("--host", error).value_or("127.0.0.1");
  std::optional<std::string> port = args.take("--port", error);
  std::optional<std::string> threads = args.take("--threads", error);
  std::optional<std::string> keys_file = args.take("--api-keys-file", error);
  if (error.empty() && port) options.port = parseNumber("--port", *port, 0, 65535, error);
  if (error.empty() && threads)
    options.threads = parseNumber("--threads", *threads, 1, 1024, error);
  if (error.empty()) {
    if (auto unknown = args.unknownOption()) error = *unknown;
  }
  if (error.empty() && !args.rest().empty()) error = "unexpected argument '" + args.rest()[0] + "'";
  if (!error.empty()) {
    err << "hfchain serve: " << error << "\n";
    return kExitUsage;
  }
  if (keys_file) {
    Result<ApiKeys> keys = loadApiKeysFile(*keys_file);
    if (!keys.ok()) {
      err << "hfchain serve: " << keys.error().message << "\n";
      return kExitUsage;
    }
    options.api_keys = std::move(keys->keys);
    options.key_tenants = std::move(keys->tenants);
  }

  ParsedConfig parsed = loadConfig(config_path);
  if (!parsed.ok()) {
    for (const auto& issue : parsed.issues) err << issue.describe() << "\n";
    return kExitConfig;
  }
  Result<std::unique_ptr<Engine>> engine = Engine::create(parsed.config, makeRegistry());
  if (!engine.ok()) {
    err << engine.error().message << "\n";
    return kExitConfig;
  }
  options.config_path = config_path;

  // Block the signals before the server threads start so that they inherit the mask and
  // sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  sigset_t previous_mask;
  pthread_sigmask(SIG_BLOCK, &signals, &previous_mask);

  Result<std::unique_ptr<Gateway>> gateway = Gateway::start(**engine, options);
  if (!gateway.ok()) {
    pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
    err << "hfchain serve: " << gateway.error().message << "\n";
    return kExitFailed;
  }
  out << "serve: listening on " << (*gateway)->baseUrl() << std::endl;

  int signal_number = 0;
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    if (config_path.empty()) {
      err << "serve: SIGHUP ignored because no --config file was given" << std::endl;
      continue;
    }
    err << "serve: SIGHUP received, reloading " << config_path << std::endl;
    (*gateway)->checkConfig(true);
  }
  err << "serve: received signal " << signal_number << ", stopping" << std::endl;
  (*gateway)->stop();
  pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
  return kExitOk;
}

}  // namespace hfchain::cli
