// Line splitting and field handling of the incremental Server-Sent Events parser.
#include "hfchain/sse.h"

#include <cstring>
#include <limits>

namespace hfchain::sse {
namespace {

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
constexpr std::string_view kDefaultEventType = "message";

// Returns the first occurrence of `byte` in [begin, end), or end.
const char* findByte(const char* begin, const char* end, char byte) {
  const void* found = std::memchr(begin, byte, static_cast<size_t>(end - begin));
  return found == nullptr ? end : static_cast<const char*>(found);
}

// Parses a `retry` value. Returns -1 unless it is a non-empty run of ASCII digits; clamps
// values that do not fit in int64_t.
int64_t parseRetry(std::string_view value) {
  if (value.empty()) return -1;
  int64_t result = 0;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (char c : value) {
    if (c < '0' || c > '9') return -1;
    const int digit = c - '0';
    result = result > (kMax - digit) / 10 ? kMax : result * 10 + digit;
  }
  return result;
}

}  // namespace

Error Parser::feed(std::string_view chunk, MessageSink& sink) {
  if (!failure_.ok()) return failure_;
  if (at_stream_start_) {
    chunk = skipByteOrderMark(chunk);
    if (at_stream_start_) return {};
  }
  if (skip_leading_lf_ && !chunk.empty()) {
    skip_leading_lf_ = false;
    if (chunk.front() == '\n') chunk.remove_prefix(1);
  }
  return parseLines(chunk, sink);
}

std::string_view Parser::skipByteOrderMark(std::string_view chunk) {
  while (!chunk.empty() && bom_bytes_seen_ < kByteOrderMark.size()) {
    if (chunk.front() != kByteOrderMark[bom_bytes_seen_]) {
      // The bytes matched so far were the start of an ordinary first line. They contain no
      // line ending, so they belong to the pending line.
      line_.append(kByteOrderMark.data(), bom_bytes_seen_);
      bom_bytes_seen_ = 0;
      at_stream_start_ = false;
      return chunk;
    }
    ++bom_bytes_seen_;
    chunk.remove_prefix(1);
  }
  if (bom_bytes_seen_ == kByteOrderMark.size()) {
    bom_bytes_seen_ = 0;
    at_stream_start_ = false;
  }
  return chunk;
}

Error Parser::parseLines(std::string_view chunk, MessageSink& sink) {
  const char* pos = chunk.data();
  const char* const end = pos + chunk.size();
  // CR line endings are rare, so the position of the next CR is searched once and reused
  // until the scan passes it, instead of searching for both bytes on every line.
  const char* next_cr = findByte(pos, end, '\r');

  while (pos < end) {
    if (next_cr < pos) next_cr = findByte(pos, end, '\r');
    const char* line_end = findByte(pos, next_cr, '\n');

    if (line_end == end) {
      const size_t size = static_cast<size_t>(end - pos);
      if (line_.size() + size + data_.size() > options_.max_event_bytes) {
        return tooLarge(line_.size() + size + data_.size());
      }
      line_.append(pos, size);
      return {};
    }

    const std::string_view piece(pos, static_cast<size_t>(line_end - pos));
    const char* next = line_end + 1;
    if (*line_end == '\r') {
      if (next == end) {
        skip_leading_lf_ = true;
      } else if (*next == '\n') {
        ++next;
      }
    }

    if (line_.size() + piece.size() + data_.size() > options_.max_event_bytes) {
      return tooLarge(line_.size() + piece.size() + data_.size());
    }
    if (line_.empty()) {
      processLine(piece, sink);
    } else {
      line_.append(piece);
      processLine(line_, sink);
      line_.clear();
    }
    pos = next;
  }
  return {};
}

void Parser::processLine(std::string_view line, MessageSink& sink) {
  if (line.empty()) {
    dispatch(sink);
    return;
  }
  if (line.front() == ':') return;

  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) {
    processField(line, {});
    return;
  }
  std::string_view value = line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  processField(line.substr(0, colon), value);
}

void Parser::processField(std::string_view name, std::string_view value) {
  if (name == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (name == "event") {
    event_type_.assign(value);
  } else if (name == "id") {
    if (value.find('\0') == std::string_view::npos) last_event_id_.assign(value);
  } else if (name == "retry") {
    const int64_t retry = parseRetry(value);
    if (retry >= 0) retry_ms_ = retry;
  }
}

void Parser::dispatch(MessageSink& sink) {
  if (has_data_) {
    Message message;
    message.event = event_type_.empty() ? kDefaultEventType : std::string_view(event_type_);
    message.data = data_;
    message.id = last_event_id_;
    sink.onMessage(message);
  }
  data_.clear();
  has_data_ = false;
  event_type_.clear();
}

Error Parser::tooLarge(size_t size) {
  failure_ =
      makeError(ErrorClass::kEventTooLarge,
                "server-sent event of at least " + std::to_string(size) +
                    " bytes exceeds the limit of " + std::to_string(options_.max_event_bytes) +
                    " bytes; raise max_event_bytes if the upstream sends larger events");
  return failure_;
}

void Parser::finish() {
  line_.clear();
  data_.clear();
  has_data_ = false;
  event_type_.clear();
  skip_leading_lf_ = false;
  bom_bytes_seen_ = 0;
  at_stream_start_ = true;
}

void Parser::reset() {
  finish();
  last_event_id_.clear();
  retry_ms_ = -1;
  failure_ = Error{};
}

size_t Parser::bufferCapacity() const {
  return line_.capacity() + data_.capacity() + event_type_.capacity() + last_event_id_.capacity();
}

}  // namespace hfchain::sse
