// The tree-walking evaluator of chat templates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "chat_template/ast.h"
#include "chat_template/value.h"

namespace hfchain::chat_template {

// Bounds on one render, so that a hostile template fails with an error naming the limit
// instead of hanging or exhausting memory or the stack. The defaults are far above what the
// shipped templates need: they loop a few times per message and call no macros.
struct RenderLimits {
  int64_t max_loop_iterations = 1'000'000;  // all for-loop iterations and range() items
  int max_call_depth = 64;                  // nested macro calls
  // Nested statements and expressions being evaluated at once, across macro calls; bounds
  // the evaluator's stack use (about 1 KiB a level in a debug build).
  int max_nesting = 1000;
  std::size_t max_output_bytes = 64u << 20;  // the output and each string built
};

// Renders `nodes` with `globals` as the top-level variables. Throws RenderError; `offset`
// is set to the source offset of the expression or statement that failed.
std::string evaluate(const NodeList& nodes, const ValueDict& globals, const RenderLimits& limits,
                     std::size_t& offset);

}  // namespace hfchain::chat_template
