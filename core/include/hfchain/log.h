// Logging macros over Poco::Logger. Logger names form a tree: "hfchain.engine",
// "hfchain.transport", "hfchain.plugin.<name>". Every message about a request starts with
// "[request-id]" so one request can be followed through the chain.
#pragma once

#include <Poco/Logger.h>

#include <string>
#include <string_view>

namespace hfchain::log {

// Returns the logger called `name`, creating it on first use.
inline Poco::Logger& get(const std::string& name) { return Poco::Logger::get(name); }

// Masks a secret for display: only its length and last four characters, and only when it is
// long enough that four characters reveal little.
std::string mask(std::string_view secret);

// Sends log output to stderr at `level` ("error", "warning", "information", "debug",
// "trace"); used by the CLI and tests.
void configure(const std::string& level);

}  // namespace hfchain::log

// The argument is an expression producing a std::string; it is evaluated only when the
// level is enabled.
#define HFC_LOG_AT(logger, level, message)                                                 \
  do {                                                                                     \
    Poco::Logger& hfc_logger_ = (logger);                                                  \
    if (hfc_logger_.is(Poco::Message::level)) {                                            \
      hfc_logger_.log(Poco::Message(hfc_logger_.name(), (message), Poco::Message::level)); \
    }                                                                                      \
  } while (false)

#define HFC_LOG_ERROR(logger, message) HFC_LOG_AT(logger, PRIO_ERROR, message)
#define HFC_LOG_WARNING(logger, message) HFC_LOG_AT(logger, PRIO_WARNING, message)
#define HFC_LOG_INFO(logger, message) HFC_LOG_AT(logger, PRIO_INFORMATION, message)
#define HFC_LOG_DEBUG(logger, message) HFC_LOG_AT(logger, PRIO_DEBUG, message)
#define HFC_LOG_TRACE(logger, message) HFC_LOG_AT(logger, PRIO_TRACE, message)

// Prefixes a message with the request id.
#define HFC_RID(request_id) ("[" + std::string(request_id) + "] ")
