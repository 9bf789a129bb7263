// The replay tools return the engine's Result type.
#pragma once

#include "hfchain/result.h"

namespace hfchain::replay {

using hfchain::Result;

}  // namespace hfchain::replay
