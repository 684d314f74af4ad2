// Starting the command: under the seccomp supervisor, in the wrapper's place.
#pragma once

#include <string>

#include "wrapper/command.hpp"
#include "wrapper/options.hpp"

namespace lp::wrapper {

// Runs `path` (checked as `check`) with the options' command line; `map_fd`
// is the placeholder map (placeholder::create), which LEAKPROOF_MAP names
// by the /proc path of whoever keeps it open: the supervisor, or this
// wrapper when it waits for the command. Returns the exit status only when
// the command did not replace the wrapper.
int launch(const std::string& path, const command_check& check, const options& o, int map_fd);

}  // namespace lp::wrapper
