// How the wrapper speaks: one line per message, and its exit codes.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace lp::wrapper {

inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_cannot_run = 126;
inline constexpr int exit_not_found = 127;

// One line on stderr, or stdout for what was asked for (--help, --env).
inline void say(std::FILE* to, const std::string& text) {
    std::fputs(text.c_str(), to);
}

[[noreturn]] inline void die(int code, const std::string& msg) {
    say(stderr, "leakproof: " + msg + "\n");
    std::exit(code);
}

}  // namespace lp::wrapper
