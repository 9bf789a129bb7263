// A value or an hfchain::Error, returned by the fallible calls of the replay tools.
#pragma once

#include <utility>
#include <variant>

#include "hfchain/error.h"

namespace hfchain::replay {

// NOTE: core has no Result type yet, so the replay tools carry this small one. Replace it with
// the core type once core provides one.
template <typename T>
class Result {
 public:
  Result(T value) : state_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  // Returns the value. Calling these when ok() is false is a bug.
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }

  // Returns the error. Calling this when ok() is true is a bug.
  const Error& error() const { return std::get<Error>(state_); }

 private:
  std::variant<T, Error> state_;
};

}  // namespace hfchain::replay
