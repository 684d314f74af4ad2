// The proxy chain the command line asked for, checked and ready for the
// interposer: URLs parsed, credentials and isolation applied, the first hop
// resolved to an address.
#pragma once

#include <string>
#include <vector>

#include "leakproof/proxy.hpp"
#include "wrapper/options.hpp"

namespace lp::wrapper {

// Throws usage_error for a bad URL or credentials; dies when the first hop's
// name cannot be resolved.
std::vector<leakproof::proxy> build_chain(const options& o);

// LEAKPROOF_ROUTES: the routes as PATTERN=TARGET words, their proxies'
// URLs checked and the hops a connection may start with resolved to
// addresses (every hop outside strict mode). Throws usage_error.
std::string build_routes(const options& o);

// `bytes` random bytes as hex, for isolation tokens and the map's name.
std::string random_hex(std::size_t bytes);

}  // namespace lp::wrapper
