// leakproof — everything of the sans-IO core in one include.
#pragma once

#include "leakproof/error.hpp"
#include "leakproof/handshake.hpp"
#include "leakproof/proxy.hpp"
