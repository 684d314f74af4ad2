// Starting the command: under the seccomp supervisor, in the wrapper's place.
#pragma once

#include <string>

#include "wrapper/command.hpp"
#include "wrapper/options.hpp"

namespace lp::wrapper {

// Runs `path` (checked as `check`) with the options' command line; `map` is
// the placeholder map, removed here when the command cannot run. Returns the
// exit status only when the command did not replace the wrapper.
int launch(const std::string& path, const command_check& check, const options& o,
           const std::string& map);

}  // namespace lp::wrapper
