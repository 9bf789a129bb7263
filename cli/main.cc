// hfchain: send text-generation requests through a chain of policy links.
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "hfchain/abi/hfchain_plugin.h"
#include "hfchain/log.h"
#include "replay/replay_command.h"

namespace {

constexpr const char* kUsage = R"(usage: hfchain <command> [options]

Commands:
  generate [--config FILE] [--target NAME] [--json] PROMPT|-
           Send PROMPT through the chain and print the tokens as they arrive.
           --url URL --protocol tgi|openai|hf-serverless [--model ID]
                         send to that endpoint; through the chain of --config when
                         given, through no links otherwise
           --raw         send PROMPT as a raw prompt instead of a chat message
           --system TEXT add a system message
           --max-new-tokens N, --temperature X, --param NAME=JSON
           --no-stream   ask for a whole answer instead of an event stream
           --key KEY, --tenant NAME   caller metadata for the links
           --timeout-ms N the whole request's deadline
  check FILE...          Validate config files; print every problem as file:line:column.
  plugins [--config FILE] [--plugin-path DIR]
                         List the plugins found, with their ABI versions.
  replay PATH --port N [--any] [--chunk-bytes N] [--chunk-delay-ms D]
                         Serve recorded Hugging Face exchanges on 127.0.0.1.
  audit summarize FILE|- [--by key|model|day|tenant|target ...] [--json]
                         Total the requests, tokens, cost and outcomes of a budget audit
                         log, grouped by the columns named (default key, model, day);
                         exit 5 when invalid lines were skipped (docs/audit.md).
  models info MODEL_ID [--json]
                         Print the Hub's information about a model (honours HF_ENDPOINT
                         and HF_TOKEN).
  serve [--config FILE] [--host ADDR] [--port N] [--threads N] [--api-keys-file FILE]
                         Serve the chain over HTTP until SIGINT/SIGTERM (docs/gateway.md).
  tokens encode --tokenizer FILE [--no-special-tokens] [TEXT|-]
                         Print the token ids of TEXT as a JSON array.
  tokens count (--tokenizer FILE [--chat-template FILE] | --config FILE --target NAME)
           [--chat MESSAGES.json] [--limit N] [--json] [TEXT|-]
                         Print the token count of TEXT, or of a chat rendered with the
                         model's chat template; exit 1 when it is over --limit.
  version                Print the version.

Options for every command:
  --log-level LEVEL      error, warning (default), information, debug or trace; logs go
                         to stderr.

Environment:
  HF_TOKEN               token for the Hugging Face Hub and the default config
  HF_ENDPOINT            Hub address (default https://huggingface.co)
  HFCHAIN_PLUGIN_PATH    extra plugin folders, separated by ':'

Exit codes:
  0  success
  1  the request failed: an upstream error, an error event, or a stream cut short
  2  invalid command-line arguments
  3  the config or a plugin was rejected
  4  an unexpected internal failure
  5  audit summarize skipped invalid lines; the totals leave them out
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> words(argv + 1, argv + argc);
  // Writing to a closed pipe (hfchain generate ... | head) must end quietly, not by signal.
  std::signal(SIGPIPE, SIG_IGN);
  if (words.empty() || words[0] == "--help" || words[0] == "-h" || words[0] == "help") {
    std::cout << kUsage;
    return words.empty() ? hfchain::cli::kExitUsage : hfchain::cli::kExitOk;
  }
  std::string command = words[0];
  hfchain::cli::Arguments args(std::vector<std::string>(words.begin() + 1, words.end()));
  std::string error;
  std::string level = args.take("--log-level", error).value_or("warning");
  if (!error.empty()) {
    std::cerr << "hfchain: " << error << "\n";
    return hfchain::cli::kExitUsage;
  }
  try {
    hfchain::log::configure(level);
  } catch (const std::exception&) {
    std::cerr << "hfchain: invalid --log-level '" << level
              << "'; use error, warning, information, debug or trace\n";
    return hfchain::cli::kExitUsage;
  }
  try {
    if (command == "generate")
      return hfchain::cli::runGenerate(std::move(args), std::cout, std::cerr);
    if (command == "check") return hfchain::cli::runCheck(std::move(args), std::cout, std::cerr);
    if (command == "plugins")
      return hfchain::cli::runPlugins(std::move(args), std::cout, std::cerr);
    if (command == "models") return hfchain::cli::runModels(std::move(args), std::cout, std::cerr);
    if (command == "audit") return hfchain::cli::runAudit(std::move(args), std::cout, std::cerr);
    if (command == "serve") return hfchain::cli::runServe(std::move(args), std::cout, std::cerr);
    if (command == "tokens") return hfchain::cli::runTokens(std::move(args), std::cout, std::cerr);
    if (command == "replay")
      return hfchain::replay::runReplayCommand(args.rest(), std::cout, std::cerr);
    if (command == "version" || command == "--version") {
      std::cout << "hfchain " << HFCHAIN_VERSION << " (plugin ABI " << HFC_ABI_VERSION << ")\n";
      return hfchain::cli::kExitOk;
    }
  } catch (const std::exception& e) {
    std::cerr << "hfchain: internal error: " << e.what() << "\n";
    return hfchain::cli::kExitInternal;
  }
  std::cerr << "hfchain: unknown command '" << command << "'; run hfchain --help\n";
  return hfchain::cli::kExitUsage;
}
