// Secret removal for transport error messages.
#include "transport/redactor.h"

#include <algorithm>

namespace hfchain::transport {

void Redactor::addSecret(std::string_view secret) {
  if (secret.size() < kMinSecretLength) return;
  std::string value(secret);
  if (std::find(secrets_.begin(), secrets_.end(), value) != secrets_.end()) return;
  secrets_.push_back(std::move(value));
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

void Redactor::addAuthorization(std::string_view header_value) {
  addSecret(header_value);
  const size_t space = header_value.find(' ');
  if (space == std::string_view::npos) return;
  std::string_view credentials = header_value.substr(space + 1);
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  addSecret(credentials);
}

std::string Redactor::apply(std::string text) const {
  static constexpr std::string_view kMark = "<redacted>";
  for (const std::string& secret : secrets_) {
    size_t position = 0;
    while ((position = text.find(secret, position)) != std::string::npos) {
      text.replace(position, secret.size(), kMark);
      position += kMark.size();
    }
  }
  return text;
}

void Redactor::apply(Error& error) const {
  if (secrets_.empty()) return;
  error.message = apply(std::move(error.message));
  error.error_type = apply(std::move(error.error_type));
}

}  // namespace hfchain::transport
