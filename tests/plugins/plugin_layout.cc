// A plugin that claims the host's ABI version but whose descriptor is larger than the
// host's, as if built from a header with an extra field.
#include "hfchain/abi/hfchain_plugin.h"

namespace {

struct LargerDescriptor {
  hfc_plugin_descriptor base;
  void* extra;
};

const LargerDescriptor kDescriptor = {
    {HFC_ABI_VERSION, sizeof(LargerDescriptor), "test-layout", "1.0.0", 0, nullptr}, nullptr};

}  // namespace

extern "C" __attribute__((visibility("default"))) const hfc_plugin_descriptor* hfchain_plugin_init(
    uint32_t) {
  return &kDescriptor.base;
}
