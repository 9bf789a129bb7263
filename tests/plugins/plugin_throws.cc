// A plugin written against the bare C ABI whose create and round_trip throw, which the ABI
// forbids; the host must survive it.
#include <stdexcept>

#include "hfchain/abi/hfchain_plugin.h"

namespace {

hfc_create_result create(const hfc_host_api*, hfc_str settings, void** instance, char*, size_t) {
  if (settings.size > 2) throw std::runtime_error("create always throws with settings");
  *instance = reinterpret_cast<void*>(1);
  return HFC_CREATE_OK;
}
void destroy(void*) {}
hfc_response* roundTrip(void*, hfc_request*, hfc_next*) {
  throw std::runtime_error("round_trip always throws");
}

const hfc_link_descriptor kLinks[] = {
    {sizeof(hfc_link_descriptor), "thrower", "throws", &create, &destroy, &roundTrip}};
const hfc_plugin_descriptor kDescriptor = {
    HFC_ABI_VERSION, sizeof(hfc_plugin_descriptor), "test-throws", "1.0.0", 1, kLinks};

}  // namespace

extern "C" __attribute__((visibility("default"))) const hfc_plugin_descriptor* hfchain_plugin_init(
    uint32_t) {
  return &kDescriptor;
}
