// How a hook says no: one log line and an errno, so
// every refusal looks the same whichever function the program called.
#pragma once

#include <string_view>

#include "runtime/log.hpp"
#include "runtime/policy.hpp"

namespace lp::refuse {

// "name:port", "1.2.3.4:port" or "[v6]:port": the destination as the
// program asked for it.
void put_target(log::line& ln, const policy::decision& d) noexcept;

// Logs "<call> <target>: refused: <d.reason>", sets errno = d.error, returns -1.
int by_policy(const char* call, const policy::decision& d) noexcept;

// Logs "<call> <subject>: refused: <why>", sets errno = err, returns -1.
int with(const char* call, std::string_view subject, const char* why, int err) noexcept;

}  // namespace lp::refuse
