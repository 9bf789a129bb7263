// A plugin built for the next ABI version. Its static initialiser writes a marker file
// (named by HFCHAIN_TEST_MARKER) so a test can tell that loading ran its code and still
// left nothing registered.
#include <cstdio>
#include <cstdlib>

#include "hfchain/abi/hfchain_plugin.h"

namespace {

hfc_response* roundTrip(void*, hfc_request*, hfc_next*) { return nullptr; }
hfc_create_result create(const hfc_host_api*, hfc_str, void** instance, char*, size_t) {
  *instance = nullptr;
  return HFC_CREATE_OK;
}
void destroy(void*) {}

const hfc_link_descriptor kLinks[] = {
    {sizeof(hfc_link_descriptor), "upper_v2", "never loads", &create, &destroy, &roundTrip}};
const hfc_plugin_descriptor kDescriptor = {
    HFC_ABI_VERSION + 1, sizeof(hfc_plugin_descriptor), "test-newer", "2.0.0", 1, kLinks};

struct Marker {
  Marker() {
    if (const char* path = std::getenv("HFCHAIN_TEST_MARKER")) {
      if (FILE* file = std::fopen(path, "w")) std::fclose(file);
    }
  }
} marker;

}  // namespace

extern "C" __attribute__((visibility("default"))) const hfc_plugin_descriptor* hfchain_plugin_init(
    uint32_t) {
  return &kDescriptor;
}
