// Compiles the budget plugin's host-independent sources into the unit tests, once for all
// budget_*_test.cc files. The plugin is a MODULE library that tests cannot link.
#include "../../plugins/budget/budget_config.cc"
#include "../../plugins/budget/context_window.cc"
#include "../../plugins/budget/output_limiter.cc"
#include "../../plugins/budget/text_boundaries.cc"
#include "../../plugins/budget/truncation.cc"
