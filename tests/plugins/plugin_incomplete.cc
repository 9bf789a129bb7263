// A plugin whose link descriptor lacks its round_trip hook.
#include "hfchain/abi/hfchain_plugin.h"

namespace {

hfc_create_result create(const hfc_host_api*, hfc_str, void**, char*, size_t) {
  return HFC_CREATE_FAILED;
}
void destroy(void*) {}

const hfc_link_descriptor kLinks[] = {
    {sizeof(hfc_link_descriptor), "incomplete", "lacks round_trip", &create, &destroy, nullptr}};
const hfc_plugin_descriptor kDescriptor = {
    HFC_ABI_VERSION, sizeof(hfc_plugin_descriptor), "test-incomplete", "1.0.0", 1, kLinks};

}  // namespace

extern "C" __attribute__((visibility("default"))) const hfc_plugin_descriptor* hfchain_plugin_init(
    uint32_t) {
  return &kDescriptor;
}
