// Removes credentials from error messages before they leave the transport, because an
// upstream may echo request headers in its error body.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "hfchain/error.h"

namespace hfchain::transport {

class Redactor {
 public:
  // Secrets shorter than this are not searched for, because short strings also occur in
  // ordinary text.
  static constexpr size_t kMinSecretLength = 6;

  // Adds a secret; for an "Authorization" value such as "Bearer abc", both the whole value
  // and the credentials after the scheme are added.
  void addSecret(std::string_view secret);
  void addAuthorization(std::string_view header_value);

  // Replaces each secret in `text` with "<redacted>".
  std::string apply(std::string text) const;
  void apply(Error& error) const;

 private:
  std::vector<std::string> secrets_;  // longest first, so a value goes before its parts
};

}  // namespace hfchain::transport
