// leakproof wrapper — finding the interposer and checking the command.
#pragma once

#include <string>

#include "leakproof/proxy.hpp"

namespace lp::wrapper {

// libleakproof.so next to the wrapper (build tree), else
// <bindir>/../<libdir>/leakproof/libleakproof.so (installed). Empty if none.
std::string find_library();

// COMMAND resolved through PATH like execvp would. Empty if not found.
std::string resolve_command(const std::string& name);

// Why `path` cannot run under the interposer ("" when it can): setuid/setgid,
// file capabilities, static or foreign-architecture ELF — the loader would
// ignore LD_PRELOAD and the program would run unproxied. Scripts are judged
// by their interpreter.
std::string refusal_reason(const std::string& path);

// refusal_reason() of a static ELF program of our architecture (no
// PT_INTERP: gcc -static, Go with CGO_ENABLED=0). LD_PRELOAD cannot reach
// those; the wrapper runs them under the seccomp supervisor instead.
extern const char* const static_reason;

// The first `limit` bytes of a file; false when it cannot be read. (No
// iostreams in the wrapper: their locale set-up alone costs a dozen page
// faults at every start.)
bool read_text(const std::string& path, std::string& out, std::size_t limit = 1 << 20);

// A proxy as a URL again (credentials %-encoded), for the interposer's env.
std::string to_url(const leakproof::proxy& p);

}  // namespace lp::wrapper
