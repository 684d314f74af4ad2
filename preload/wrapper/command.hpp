// Finding the interposer and checking the command.
#pragma once

#include <string>

#include "leakproof/proxy.hpp"
#include "runtime/program.hpp"

namespace lp::wrapper {

// libleakproof.so next to the wrapper (build tree), else
// <bindir>/../<libdir>/leakproof/libleakproof.so (installed). Empty if none.
std::string find_library();

// COMMAND resolved through PATH like execvp would. Empty if not found.
std::string resolve_command(const std::string& name);

// How `path` can run (runtime/program.hpp: the interposer's exec hooks
// make the same check). Scripts are judged by their interpreter.
struct command_check {
    using verdict = program::verdict;
    verdict what = verdict::interposable;
    std::string why;  // "is statically linked …", for the log and for refusals
};
command_check check_command(const std::string& path);

// The first `limit` bytes of a file; false when it cannot be read. (No
// iostreams in the wrapper: their locale set-up alone costs a dozen page
// faults at every start.)
bool read_text(const std::string& path, std::string& out, std::size_t limit = 1 << 20);

}  // namespace lp::wrapper
