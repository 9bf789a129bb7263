// PCRE2 wrapper for the tokenizer.
#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode_text.h"

namespace hfchain::tokenizer_detail {

namespace {

pcre2_code* asCode(void* code) { return static_cast<pcre2_code*>(code); }

// Match data and a JIT stack per thread, so that concurrent encodes do not share them. The
// default JIT stack of 32 KiB is too small for long runs of whitespace or punctuation.
struct ThreadMatchState {
  pcre2_match_data* match_data = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;

  ThreadMatchState() {
    match_data = pcre2_match_data_create(4, nullptr);
    jit_stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~ThreadMatchState() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_data_free(match_data);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;
};

ThreadMatchState& threadMatchState() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

std::unique_ptr<Regex> Regex::compile(std::string_view pattern, std::string& error) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error_code,
                                   &error_offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(error_code, buffer, sizeof(buffer));
    error = "invalid regex at offset " + std::to_string(error_offset) + ": " +
            reinterpret_cast<const char*>(buffer);
    return nullptr;
  }
  // JIT is an optimisation only: if it is unavailable the interpreter gives the same matches.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code));
}

std::string Regex::escape(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() * 2);
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

Regex::~Regex() { pcre2_code_free(asCode(code_)); }

void Regex::findAll(std::string_view text,
                    std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  ThreadMatchState& state = threadMatchState();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t offset = 0;
  while (offset <= text.size()) {
    int rc = pcre2_match(asCode(code_), subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                         state.match_data, state.context);
    if (rc < 0) break;
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(state.match_data);
    std::size_t start = ovector[0];
    std::size_t end = ovector[1];
    if (end == start) {
      // Empty matches produce no piece; step over one character to continue.
      if (start >= text.size()) break;
      offset = start + utf8Length(static_cast<unsigned char>(text[start]));
      continue;
    }
    out.emplace_back(start, end);
    offset = end;
  }
}

}  // namespace hfchain::tokenizer_detail
